//! Tests of the HDF5 reader on files written by h5py
//! (`tests/data/make_hdf5_fixtures.py`, whose formulas these tests
//! recompute), and on damaged copies of them.

use std::path::{Path, PathBuf};

use super::*;

/// The path of a fixture file.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// `v[i, j] = 0.25 * (i * cols + j) - 3`, as the fixtures write vectors.
fn vectors_formula(rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols).map(|n| 0.25 * n as f32 - 3.0).collect()
}

/// `n[i, j] = (7 * (i * cols + j)) % 101 - 1`, as the fixtures write ids.
fn ids_formula(rows: usize, cols: usize) -> Vec<i64> {
    (0..rows * cols).map(|n| (7 * n as i64) % 101 - 1).collect()
}

fn vectors_of(file: &str, name: &str) -> Result<Matrix> {
    read_vectors(&fixture(file), Some(name))
}

fn ids_of(file: &str, name: &str) -> Result<IdMatrix> {
    read_ids(&fixture(file), Some(name))
}

fn error(r: Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn ann_benchmarks_layout_of_h5py_defaults() {
    // Superblock 0, version 1 headers, a symbol-table root group.
    let f = "ann-v0.hdf5";
    let train = vectors_of(f, "train").unwrap(); // contiguous
    assert_eq!((train.rows(), train.dim()), (7, 5));
    assert_eq!(train.as_slice(), vectors_formula(7, 5));
    let test = vectors_of(f, "/test").unwrap(); // chunks of 2 x 3 over 5 x 5
    assert_eq!((test.rows(), test.dim()), (5, 5));
    assert_eq!(test.as_slice(), vectors_formula(5, 5));
    let gt = ids_of(f, "neighbors").unwrap(); // chunked + gzip, int32
    assert_eq!((gt.rows, gt.dim), (5, 4));
    assert_eq!(gt.ids, ids_formula(5, 4));
    assert!(gt.ids.contains(&-1));
}

#[test]
fn newest_format_layouts_and_filters() {
    // Superblock 3, version 2 headers, link messages, layout 4 and 5.
    let f = "ann-latest.hdf5";
    assert_eq!(
        vectors_of(f, "train").unwrap().as_slice(),
        vectors_formula(7, 5)
    );
    assert_eq!(
        vectors_of(f, "test").unwrap().as_slice(),
        vectors_formula(5, 5)
    ); // fixed array
    assert_eq!(ids_of(f, "neighbors").unwrap().ids, ids_formula(5, 4)); // + gzip
    let d = vectors_of(f, "distances").unwrap(); // gzip + shuffle, 3 x 3 chunks
    assert_eq!((d.rows(), d.as_slice()), (5, &vectors_formula(5, 4)[..]));
    assert_eq!(ids_of(f, "one-chunk").unwrap().ids, ids_formula(3, 2)); // single chunk
}

#[test]
fn element_types_convert() {
    let f = "ann-latest.hdf5";
    assert_eq!(
        vectors_of(f, "extra/f64").unwrap().as_slice(),
        vectors_formula(2, 3)
    );
    assert_eq!(
        vectors_of(f, "extra/big-endian").unwrap().as_slice(),
        vectors_formula(2, 3)
    );
    let u8s = vectors_of(f, "extra/u8").unwrap();
    assert_eq!(u8s.as_slice(), [0.0, 40.0, 80.0, 120.0, 160.0, 200.0]);
    let i8s = vectors_of(f, "extra/i8").unwrap();
    assert_eq!(i8s.as_slice(), [0.0, -20.0, -40.0, -60.0, -80.0, -100.0]);
    let wide = ids_of(f, "extra/i64").unwrap();
    assert_eq!((wide.rows, wide.dim, wide.ids), (2, 3, ids_formula(2, 3)));
    assert_eq!(
        ids_of(f, "extra/u8").unwrap().ids,
        [0, 40, 80, 120, 160, 200]
    );
}

#[test]
fn choosing_a_dataset() {
    let e = error(read_vectors(&fixture("ann-v0.hdf5"), None));
    assert!(
        e.contains("ann-v0.hdf5#NAME")
            && e.contains(
                "neighbors (int32 [5 x 4]), test (float32 [5 x 5]), train (float32 [7 x 5])"
            ),
        "{e}"
    );
    let e = error(vectors_of("ann-latest.hdf5", "nope"));
    assert!(
        e.contains("no dataset 'nope'") && e.contains("extra/ (group)"),
        "{e}"
    );
    assert!(e.contains("growable (float32 [2 x 2])"), "{e}");
    let e = error(vectors_of("ann-latest.hdf5", "extra/nope"));
    assert!(
        e.contains("group 'extra' has: big-endian (big-endian float32 [2 x 3])"),
        "{e}"
    );
    assert!(error(vectors_of("ann-latest.hdf5", "extra")).contains("a group"));
    assert!(error(vectors_of("ann-latest.hdf5", "train/x")).contains("not a group"));
}

#[test]
fn what_is_refused_is_named() {
    let e = error(vectors_of("ann-v0.hdf5", "neighbors"));
    assert!(e.contains("int32 values (ids"), "{e}");
    let e = error(ids_of("ann-v0.hdf5", "train"));
    assert!(e.contains("float32 values, not integer ids"), "{e}");
    let e = error(vectors_of("ann-latest.hdf5", "extra/flat"));
    assert!(e.contains("shape (4,)") && e.contains("2-D"), "{e}");
    let e = error(vectors_of("ann-latest.hdf5", "growable"));
    assert!(
        e.contains("extensible array") && e.contains("byte offset 6928"),
        "{e}"
    );
    let e = error(read_vectors(&fixture("make_hdf5_fixtures.py"), Some("x")));
    assert!(e.contains("not an HDF5 file"), "{e}");
}

#[test]
fn truncated_copy_names_the_offset() {
    let e = error(vectors_of("ann-v0-truncated.hdf5", "train"));
    assert!(
        e.contains("truncated file")
            && e.contains("byte offset 40")
            && e.contains("ends at byte offset 13696")
            && e.contains("4000 bytes"),
        "{e}"
    );
}

/// Reads every dataset of the fixture `file` from `bytes`: each result,
/// as text.
fn read_all(bytes: &[u8], names: &[&str]) -> Vec<Result<(), String>> {
    let path = Path::new("damaged.hdf5");
    names
        .iter()
        .map(|&name| {
            let f = H5File::from_bytes(bytes.to_vec()).map_err(|e| format!("{e:#}"))?;
            let r = if name == "neighbors" || name == "one-chunk" {
                ids(f, path, Some(name)).map(|_| ())
            } else {
                vectors(f, path, Some(name)).map(|_| ())
            };
            r.map_err(|e| format!("{e:#}"))
        })
        .collect()
}

/// The fixtures with the datasets each holds.
const DAMAGED: [(&str, &[&str]); 2] = [
    ("ann-v0.hdf5", &["train", "test", "neighbors"]),
    (
        "ann-latest.hdf5",
        &[
            "train",
            "test",
            "neighbors",
            "distances",
            "one-chunk",
            "extra/f64",
        ],
    ),
];

#[test]
fn every_truncation_is_an_error_with_an_offset() {
    for (file, names) in DAMAGED {
        let whole = std::fs::read(fixture(file)).unwrap();
        assert!(read_all(&whole, names).iter().all(Result::is_ok), "{file}");
        for cut in 0..whole.len() {
            let mut bytes = whole[..cut].to_vec();
            // The end-of-file address made to agree, so that the reads
            // past the end are what fails, not the first check.
            let eof_at = if whole[8] == 0 { 40 } else { 28 };
            if cut >= eof_at + 8 {
                bytes[eof_at..eof_at + 8].copy_from_slice(&(cut as u64).to_le_bytes());
            }
            for r in read_all(&bytes, names) {
                if let Err(e) = r {
                    assert!(e.contains("byte offset"), "{file} cut at {cut}: {e}");
                }
            }
        }
    }
}

#[test]
fn damaged_bytes_never_panic() {
    for (file, names) in DAMAGED {
        let whole = std::fs::read(fixture(file)).unwrap();
        for at in 0..whole.len() {
            for value in [0x00, 0xFF, whole[at] ^ 0x80, whole[at].wrapping_add(1)] {
                let mut bytes = whole.clone();
                bytes[at] = value;
                read_all(&bytes, names);
            }
        }
    }
}

#[test]
fn superblock_version_2_reads_as_3() {
    let mut bytes = std::fs::read(fixture("ann-latest.hdf5")).unwrap();
    assert_eq!(bytes[8], 3);
    bytes[8] = 2;
    assert_eq!(read_all(&bytes, &["train", "neighbors"]), [Ok(()), Ok(())]);
    bytes[8] = 4;
    let e = read_all(&bytes, &["train"]).remove(0).unwrap_err();
    assert!(e.contains("superblock version 4 at byte offset 8"), "{e}");
}

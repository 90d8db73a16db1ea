//! The binary formats of big-ann-benchmarks: `.fbin` (`float32`), `.u8bin`
//! (`uint8`), `.i8bin` (`int8`) and `.ibin` (`int32` ids). Each file is a
//! little-endian `u32` row count and `u32` dimension, then `rows * dim`
//! little-endian elements, row-major. Byte values become `f32`, as
//! `.bvecs` bytes do.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use vector_accelerate::Matrix;

use super::source::{open_input, read_decoded, try_alloc, widen_int, IdMatrix};

/// Bytes of the header: the row count and the dimension.
const HEADER: u64 = 8;

/// The element type of a bin file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// `.fbin`: little-endian `f32`.
    F32,
    /// `.u8bin`: `u8`.
    U8,
    /// `.i8bin`: `i8`.
    I8,
    /// `.ibin`: little-endian `i32` (ids).
    I32,
}

impl Element {
    /// Bytes per element.
    fn size(self) -> u64 {
        match self {
            Element::U8 | Element::I8 => 1,
            Element::F32 | Element::I32 => 4,
        }
    }

    /// The element type's name, for messages.
    fn name(self) -> &'static str {
        match self {
            Element::F32 => "float32",
            Element::U8 => "uint8",
            Element::I8 => "int8",
            Element::I32 => "int32",
        }
    }
}

/// Reads the vectors of a `.fbin`, `.u8bin` or `.i8bin` file as `f32` rows.
pub fn read_vectors(path: &Path, element: Element) -> Result<Matrix> {
    let (mut file, rows, dim) = open(path, element, false)?;
    let count = rows * dim;
    let mut data = try_alloc::<f32>(count)?;
    match element {
        Element::F32 => read_decoded(&mut file, count, &f32::from_le_bytes, &mut data)?,
        Element::U8 => read_decoded(&mut file, count, &|b: [u8; 1]| f32::from(b[0]), &mut data)?,
        Element::I8 => read_decoded(
            &mut file,
            count,
            &|b: [u8; 1]| f32::from(b[0] as i8),
            &mut data,
        )?,
        Element::I32 => {
            bail!("an .ibin file holds int32 ids, not vectors ({rows} rows of {dim} ids)")
        }
    }
    Ok(Matrix::new(data, dim)?)
}

/// Reads the ids of an `.ibin` file. A big-ann-benchmarks ground-truth file
/// (the ids followed by as many `float32` distances) is read too: the
/// distances are left unread.
pub fn read_ids(path: &Path) -> Result<IdMatrix> {
    let (mut file, rows, dim) = open(path, Element::I32, true)?;
    let mut ids = try_alloc::<i64>(rows * dim)?;
    let decode = |b: [u8; 4]| widen_int(b, false, true);
    read_decoded(&mut file, rows * dim, &decode, &mut ids)?;
    Ok(IdMatrix { rows, dim, ids })
}

/// Opens a bin file, reads its header and checks the file's size against
/// it; returns the file at the first element with `(rows, dim)`. With
/// `distances_may_follow`, a second block of `rows * dim` `f32` values may
/// follow the elements.
fn open(path: &Path, element: Element, distances_may_follow: bool) -> Result<(File, usize, usize)> {
    let (mut file, len) = open_input(path)?;
    if len < HEADER {
        bail!(
            "truncated file: {len} bytes, too short for the 8-byte header (u32 rows, u32 dim) \
             at byte offset 0"
        );
    }
    let mut header = [0u8; HEADER as usize];
    std::io::Read::read_exact(&mut file, &mut header).context("read failed")?;
    let rows = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let dim = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if dim == 0 {
        bail!("invalid header: dimension 0 at byte offset 4 (must be at least 1)");
    }
    if rows == 0 {
        bail!("the file has zero rows (row count 0 at byte offset 0)");
    }
    let data = u64::from(rows) * u64::from(dim) * element.size();
    let found = len - HEADER;
    let extra = found.saturating_sub(data);
    if found < data {
        bail!(
            "truncated file: the header (rows {rows}, dim {dim}) calls for {data} bytes of {} \
             data from byte offset {HEADER} to {}, but the file ends at byte offset {len}",
            element.name(),
            HEADER + data
        );
    }
    let distances = u64::from(rows) * u64::from(dim) * 4;
    if extra > 0 && !(distances_may_follow && extra == distances) {
        bail!(
            "the file has {extra} unexpected bytes after the data of the header (rows {rows}, \
             dim {dim}), from byte offset {}",
            HEADER + data
        );
    }
    usize::try_from(u64::from(rows) * u64::from(dim) * 8)
        .with_context(|| format!("{rows} rows of dimension {dim} are too many"))?;
    Ok((file, rows as usize, dim as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bin file of `rows x dim` with `payload` after its header, in a
    /// fresh temporary folder (removed by the caller).
    fn write_bin(name: &str, rows: u32, dim: u32, payload: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vaccel-bin-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let mut bytes = rows.to_le_bytes().to_vec();
        bytes.extend(dim.to_le_bytes());
        bytes.extend(payload);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn cleanup(path: &Path) {
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    fn error(path: &Path, element: Element) -> String {
        let e = match element {
            Element::I32 => read_ids(path).map(|_| ()),
            _ => read_vectors(path, element).map(|_| ()),
        };
        format!("{:#}", e.unwrap_err())
    }

    #[test]
    fn every_element_type_round_trips() {
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = write_bin("a.fbin", 3, 4, &bytes);
        let m = read_vectors(&p, Element::F32).unwrap();
        assert_eq!((m.rows(), m.dim(), m.as_slice()), (3, 4, &values[..]));
        cleanup(&p);

        let raw: Vec<u8> = (0..6).map(|i| i * 50).collect();
        let p = write_bin("a.u8bin", 2, 3, &raw);
        let m = read_vectors(&p, Element::U8).unwrap();
        assert_eq!(m.as_slice(), [0.0, 50.0, 100.0, 150.0, 200.0, 250.0]);
        let m = read_vectors(&p, Element::I8).unwrap();
        assert_eq!(m.as_slice(), [0.0, 50.0, 100.0, -106.0, -56.0, -6.0]);
        cleanup(&p);

        let ids: Vec<i32> = vec![0, -1, 7, i32::MAX, i32::MIN, 3];
        let bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = write_bin("a.ibin", 3, 2, &bytes);
        let got = read_ids(&p).unwrap();
        let want: Vec<i64> = ids.iter().map(|&v| i64::from(v)).collect();
        assert_eq!((got.rows, got.dim, &got.ids[..]), (3, 2, &want[..]));
        assert_eq!(got.row(1), [7, i64::from(i32::MAX)]);
        cleanup(&p);
    }

    #[test]
    fn ground_truth_with_distances_reads_its_ids() {
        let mut bytes: Vec<u8> = [4i32, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.extend([0.5f32, 1.5].iter().flat_map(|v| v.to_le_bytes()));
        let p = write_bin("gt.ibin", 1, 2, &bytes);
        assert_eq!(read_ids(&p).unwrap().ids, [4, 5]);
        cleanup(&p);
        // The same trailing bytes after vectors are refused.
        let p = write_bin("x.fbin", 1, 1, &bytes[..8]);
        let e = error(&p, Element::F32);
        assert!(
            e.contains("4 unexpected bytes") && e.contains("byte offset 12"),
            "{e}"
        );
        cleanup(&p);
    }

    #[test]
    fn truncated_files_and_bad_headers_name_the_offset() {
        let p = write_bin("t.fbin", 3, 4, &[0; 47]);
        let e = error(&p, Element::F32);
        assert!(
            e.contains("truncated")
                && e.contains("48 bytes of float32")
                && e.contains("to 56")
                && e.contains("ends at byte offset 55"),
            "{e}"
        );
        cleanup(&p);
        let p = write_bin("t.ibin", 2, 2, &[0; 15]);
        let e = error(&p, Element::I32);
        assert!(e.contains("int32") && e.contains("byte offset 23"), "{e}");
        cleanup(&p);
        let p = write_bin("z.u8bin", 2, 0, &[]);
        assert!(error(&p, Element::U8).contains("dimension 0 at byte offset 4"));
        cleanup(&p);
        let p = write_bin("z.i8bin", 0, 3, &[]);
        assert!(error(&p, Element::I8).contains("zero rows"));
        cleanup(&p);
        // Only part of a header.
        let p = write_bin("h.fbin", 7, 0, &[]);
        std::fs::write(&p, [7, 0, 0, 0, 1]).unwrap();
        let e = error(&p, Element::F32);
        assert!(e.contains("5 bytes") && e.contains("header"), "{e}");
        cleanup(&p);
        // A header claiming 2^32 - 1 rows of 2^32 - 1 is refused from the
        // size alone, before any allocation.
        let p = write_bin("big.fbin", u32::MAX, u32::MAX, &[0; 16]);
        assert!(error(&p, Element::F32).contains("truncated"));
        cleanup(&p);
    }
}

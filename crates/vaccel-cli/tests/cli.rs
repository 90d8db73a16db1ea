//! End-to-end tests of the `vaccel` binary on small files (CPU backend):
//! results are checked against an fp64 brute force that tolerates genuine
//! ties, and every bad input must fail with one line and no output file.

use std::fs;

mod common;

use common::*;

/// Rows to compare: dense `f32` rows, or packed bytes of binary rows.
#[derive(Clone, Copy)]
enum Rows<'a> {
    F32(&'a [f32], usize),
    Bits(&'a [u8], usize),
}

impl Rows<'_> {
    fn len(&self) -> usize {
        match self {
            Rows::F32(d, dim) => d.len() / dim,
            Rows::Bits(d, bytes) => d.len() / bytes,
        }
    }
}

/// Whether a metric ranks larger values first.
fn largest_first(metric: &str) -> bool {
    metric == "ip"
}

/// The fp64 reference distance between row `i` of `a` and row `j` of `b`.
fn ref_dist(metric: &str, a: Rows<'_>, i: usize, b: Rows<'_>, j: usize) -> f64 {
    match (a, b) {
        (Rows::F32(a, dim), Rows::F32(b, _)) => {
            let x: Vec<f64> = a[i * dim..(i + 1) * dim]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let y: Vec<f64> = b[j * dim..(j + 1) * dim]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let pairs = || x.iter().zip(&y);
            let dot: f64 = pairs().map(|(p, q)| p * q).sum();
            let l2: f64 = pairs().map(|(p, q)| (p - q).powi(2)).sum();
            let norm = |v: &[f64]| v.iter().map(|p| p * p).sum::<f64>().sqrt();
            match metric {
                "l2" => l2,
                "euclidean" => l2.sqrt(),
                "cosine" => {
                    let den = norm(&x) * norm(&y);
                    1.0 - if den == 0.0 { 0.0 } else { dot / den }
                }
                "ip" => dot,
                "l1" => pairs().map(|(p, q)| (p - q).abs()).sum(),
                "linf" => pairs().map(|(p, q)| (p - q).abs()).fold(0.0, f64::max),
                "minkowski:3" => pairs()
                    .map(|(p, q)| (p - q).abs().powi(3))
                    .sum::<f64>()
                    .cbrt(),
                "hamming" => pairs().filter(|(p, q)| (**p > 0.0) != (**q > 0.0)).count() as f64,
                "jaccard" => {
                    let min: f64 = pairs().map(|(p, q)| p.min(*q)).sum();
                    let max: f64 = pairs().map(|(p, q)| p.max(*q)).sum();
                    if max == 0.0 {
                        0.0
                    } else {
                        1.0 - min / max
                    }
                }
                _ => panic!("no reference for {metric}"),
            }
        }
        (Rows::Bits(a, n), Rows::Bits(b, _)) => {
            let (x, y) = (&a[i * n..(i + 1) * n], &b[j * n..(j + 1) * n]);
            let count = |f: fn(u8, u8) -> u8| {
                x.iter()
                    .zip(y)
                    .map(|(p, q)| f(*p, *q).count_ones())
                    .sum::<u32>() as f64
            };
            match metric {
                "hamming" => count(|p, q| p ^ q),
                "jaccard" => {
                    let union = count(|p, q| p | q);
                    if union == 0.0 {
                        0.0
                    } else {
                        1.0 - count(|p, q| p & q) / union
                    }
                }
                _ => panic!("no binary reference for {metric}"),
            }
        }
        _ => panic!("mixed kinds"),
    }
}

/// Checks ids and distances written by `vaccel knn` against the brute force.
fn check(metric: &str, base: Rows<'_>, queries: Rows<'_>, k: usize, ids: &[i64], dists: &[f32]) {
    let (n, nq) = (base.len(), queries.len());
    assert_eq!(ids.len(), nq * k);
    let largest = largest_first(metric);
    let m = k.min(n);
    for qi in 0..nq {
        let all: Vec<f64> = (0..n)
            .map(|j| ref_dist(metric, queries, qi, base, j))
            .collect();
        let scale = all.iter().fold(1.0f64, |s, d| s.max(d.abs()));
        let tol = 1e-4 * scale;
        let row = &ids[qi * k..(qi + 1) * k];
        let row_d = &dists[qi * k..(qi + 1) * k];
        for j in m..k {
            assert_eq!(row[j], -1, "query {qi}: rank {j} should be missing");
            let missing = if largest {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            };
            assert_eq!(row_d[j], missing, "query {qi}: rank {j} missing value");
        }
        let mut seen = row[..m].to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), m, "query {qi}: duplicate ids {row:?}");
        for j in 0..m {
            let id = row[j];
            assert!(id >= 0 && (id as usize) < n, "query {qi}: bad id {id}");
            let d = all[id as usize];
            assert!(
                (row_d[j] as f64 - d).abs() <= tol,
                "{metric} query {qi} rank {j}: distance {} vs fp64 {d}",
                row_d[j]
            );
            if j > 0 {
                let ok = if largest {
                    row_d[j] <= row_d[j - 1]
                } else {
                    row_d[j] >= row_d[j - 1]
                };
                assert!(ok, "{metric} query {qi}: not sorted best first: {row_d:?}");
            }
        }
        let cmp = |a: &f64, b: &f64| {
            if largest {
                b.total_cmp(a)
            } else {
                a.total_cmp(b)
            }
        };
        let mut want = all.clone();
        want.sort_by(cmp);
        let mut got: Vec<f64> = row[..m].iter().map(|&id| all[id as usize]).collect();
        got.sort_by(cmp);
        for j in 0..m {
            assert!(
                (got[j] - want[j]).abs() <= tol,
                "{metric} query {qi} rank {j}: got {} want {} (ids {row:?})",
                got[j],
                want[j]
            );
        }
    }
}

/// Runs `vaccel knn` on the CPU and returns the ids and distances.
fn run_knn(
    dir: &TempDir,
    base: &str,
    queries: &str,
    k: usize,
    metric: &str,
) -> (Vec<i64>, Vec<f32>) {
    let k_text = k.to_string();
    let out = vaccel(&[
        "knn",
        "--device",
        "cpu",
        "--base",
        &dir.arg(base),
        "--queries",
        &dir.arg(queries),
        "-k",
        &k_text,
        "--metric",
        metric,
        "--ids",
        &dir.arg("ids.npy"),
        "--distances",
        &dir.arg("dists.npy"),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{metric}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "--quiet printed to stderr");
    let (rows, cols, ids) = read_ids(&dir.path("ids.npy"));
    assert_eq!(cols, k);
    let dists = read_dists(&dir.path("dists.npy"));
    assert_eq!(dists.len(), rows * k);
    (ids, dists)
}

const METRICS: [&str; 9] = [
    "l2",
    "euclidean",
    "cosine",
    "ip",
    "l1",
    "linf",
    "minkowski:3",
    "hamming",
    "jaccard",
];

#[test]
fn every_metric_matches_an_fp64_brute_force() {
    let dir = TempDir::new("metrics");
    let dim = 17;
    let mut g = Lcg(1);
    let base = g.vec(150 * dim);
    let queries = g.vec(12 * dim);
    // Weighted Jaccard needs non-negative values.
    let base_pos: Vec<f32> = base.iter().map(|v| v.abs()).collect();
    let queries_pos: Vec<f32> = queries.iter().map(|v| v.abs()).collect();
    write_f32(&dir.path("base.npy"), dim, &base);
    write_f32(&dir.path("queries.npy"), dim, &queries);
    write_f32(&dir.path("base_pos.npy"), dim, &base_pos);
    write_f32(&dir.path("queries_pos.npy"), dim, &queries_pos);
    for metric in METRICS {
        let (b, q) = if metric == "jaccard" {
            (&base_pos, &queries_pos)
        } else {
            (&base, &queries)
        };
        let (files_b, files_q) = if metric == "jaccard" {
            ("base_pos.npy", "queries_pos.npy")
        } else {
            ("base.npy", "queries.npy")
        };
        let (ids, dists) = run_knn(&dir, files_b, files_q, 5, metric);
        check(
            metric,
            Rows::F32(b, dim),
            Rows::F32(q, dim),
            5,
            &ids,
            &dists,
        );
    }
}

#[test]
fn k_beyond_and_equal_to_the_base_size() {
    let dir = TempDir::new("bigk");
    let dim = 5;
    let mut g = Lcg(2);
    let base = g.vec(6 * dim);
    let queries = g.vec(3 * dim);
    write_f32(&dir.path("base.npy"), dim, &base);
    write_f32(&dir.path("queries.npy"), dim, &queries);
    for metric in ["l2", "ip"] {
        for k in [9, 6] {
            let (ids, dists) = run_knn(&dir, "base.npy", "queries.npy", k, metric);
            check(
                metric,
                Rows::F32(&base, dim),
                Rows::F32(&queries, dim),
                k,
                &ids,
                &dists,
            );
            if k == 9 {
                let tail = if metric == "ip" {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                };
                assert_eq!(&ids[6..9], &[-1, -1, -1]);
                assert_eq!(&dists[6..9], &[tail; 3]);
            } else {
                let mut row = ids[..6].to_vec();
                row.sort();
                assert_eq!(row, vec![0, 1, 2, 3, 4, 5]);
            }
        }
    }
}

#[test]
fn packed_binary_rows_for_hamming_and_jaccard() {
    let dir = TempDir::new("binary");
    let bytes = 3;
    let mut g = Lcg(3);
    let base = g.bytes(80 * bytes);
    let queries = g.bytes(7 * bytes);
    write_u8(&dir.path("base.npy"), bytes, &base);
    write_u8(&dir.path("queries.npy"), bytes, &queries);
    for metric in ["hamming", "jaccard"] {
        let (ids, dists) = run_knn(&dir, "base.npy", "queries.npy", 4, metric);
        check(
            metric,
            Rows::Bits(&base, bytes),
            Rows::Bits(&queries, bytes),
            4,
            &ids,
            &dists,
        );
    }
}

#[test]
fn fvecs_and_bvecs_inputs() {
    let dir = TempDir::new("vecs");
    let dim = 6;
    let mut g = Lcg(4);
    let base = g.vec(40 * dim);
    let queries = g.vec(5 * dim);
    write_fvecs(&dir.path("base.fvecs"), dim, &base);
    write_fvecs(&dir.path("queries.fvecs"), dim, &queries);
    let (ids, dists) = run_knn(&dir, "base.fvecs", "queries.fvecs", 3, "l2");
    check(
        "l2",
        Rows::F32(&base, dim),
        Rows::F32(&queries, dim),
        3,
        &ids,
        &dists,
    );

    // bvecs: bytes become f32 values.
    let raw = g.bytes(30 * dim);
    let mut file = Vec::new();
    for row in raw.chunks(dim) {
        file.extend((dim as i32).to_le_bytes());
        file.extend(row);
    }
    fs::write(dir.path("base.bvecs"), file).unwrap();
    let as_f32: Vec<f32> = raw.iter().map(|&b| b as f32).collect();
    write_f32(&dir.path("q.npy"), dim, &as_f32[..4 * dim]);
    let (ids, dists) = run_knn(&dir, "base.bvecs", "q.npy", 2, "l1");
    check(
        "l1",
        Rows::F32(&as_f32, dim),
        Rows::F32(&as_f32[..4 * dim], dim),
        2,
        &ids,
        &dists,
    );
    for q in 0..4 {
        assert_eq!(
            ids[q * 2],
            q as i64,
            "a base row is its own nearest neighbour"
        );
    }
}

/// A big-ann-benchmarks bin file: `u32` rows and dimension, then `payload`.
fn bin_file(rows: usize, dim: usize, payload: &[u8]) -> Vec<u8> {
    let mut out = (rows as u32).to_le_bytes().to_vec();
    out.extend((dim as u32).to_le_bytes());
    out.extend(payload);
    out
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn fbin_u8bin_and_i8bin_inputs() {
    let dir = TempDir::new("bin");
    let dim = 6;
    let mut g = Lcg(5);
    let base = g.vec(40 * dim);
    let queries = g.vec(5 * dim);
    fs::write(dir.path("base.fbin"), bin_file(40, dim, &le_bytes(&base))).unwrap();
    fs::write(dir.path("q.fbin"), bin_file(5, dim, &le_bytes(&queries))).unwrap();
    let (ids, dists) = run_knn(&dir, "base.fbin", "q.fbin", 3, "l2");
    let (b, q) = (Rows::F32(&base, dim), Rows::F32(&queries, dim));
    check("l2", b, q, 3, &ids, &dists);

    // Bytes become f32 values: unsigned for .u8bin, signed for .i8bin.
    let raw = g.bytes(30 * dim);
    let unsigned: Vec<f32> = raw.iter().map(|&b| f32::from(b)).collect();
    let signed: Vec<f32> = raw.iter().map(|&b| f32::from(b as i8)).collect();
    for (file, values) in [("base.u8bin", &unsigned), ("base.i8bin", &signed)] {
        fs::write(dir.path(file), bin_file(30, dim, &raw)).unwrap();
        write_f32(&dir.path("q.npy"), dim, &values[..4 * dim]);
        let (ids, dists) = run_knn(&dir, file, "q.npy", 2, "l1");
        let (b, q) = (Rows::F32(values, dim), Rows::F32(&values[..4 * dim], dim));
        check("l1", b, q, 2, &ids, &dists);
        for (q, id) in ids.chunks(2).enumerate() {
            assert_eq!(
                id[0], q as i64,
                "{file}: a base row is its own nearest neighbour"
            );
        }
    }
}

/// The bytes of a committed test file in `tests/data`.
fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

#[test]
fn ann_benchmarks_hdf5_inputs() {
    let dir = TempDir::new("hdf5");
    // The fixtures' vectors: v[i, j] = 0.25 * (i * cols + j) - 3.
    let formula = |rows: usize, cols: usize| -> Vec<f32> {
        (0..rows * cols).map(|n| 0.25 * n as f32 - 3.0).collect()
    };
    let (train, test) = (formula(7, 5), formula(5, 5));
    for file in ["ann-v0.hdf5", "ann-latest.hdf5"] {
        fs::write(dir.path(file), fixture(file)).unwrap();
        let base = format!("{file}#train");
        let queries = format!("{file}#test");
        let (ids, dists) = run_knn(&dir, &base, &queries, 3, "l2");
        let (b, q) = (Rows::F32(&train, 5), Rows::F32(&test, 5));
        check("l2", b, q, 3, &ids, &dists);
        assert_eq!(&ids[..3], [0, 1, 2], "{file}");
    }
}

/// The bits of a value that is a normal (or zero) float16 exactly.
fn f16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let sign = (b >> 16) as u16 & 0x8000;
    if v == 0.0 {
        return sign;
    }
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    assert!(
        (1..31).contains(&exp) && b & 0x1fff == 0,
        "{v} is not a float16"
    );
    sign | (exp as u16) << 10 | ((b & 0x7f_ffff) >> 13) as u16
}

#[test]
fn fortran_order_float64_and_float16_files_give_the_float32_results() {
    let dir = TempDir::new("dtypes");
    let (rows, nq, dim) = (60, 9, 7);
    let mut g = Lcg(5);
    // Multiples of 1/64 in [-1, 1]: exact in float16, float32 and float64.
    let mut on_grid =
        |n: usize| -> Vec<f32> { g.vec(n).iter().map(|x| (x * 64.0).round() / 64.0).collect() };
    let (base, queries) = (on_grid(rows * dim), on_grid(nq * dim));
    write_f32(&dir.path("base.npy"), dim, &base);
    write_f32(&dir.path("queries.npy"), dim, &queries);
    let by_columns = |v: &[f32], rows: usize| -> Vec<f32> {
        (0..dim)
            .flat_map(|c| (0..rows).map(move |r| v[r * dim + c]))
            .collect()
    };
    let (base_f, queries_f) = (by_columns(&base, rows), by_columns(&queries, nq));
    let f4 = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let f8 = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect() };
    let f8_be =
        |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|&x| (x as f64).to_be_bytes()).collect() };
    let f2 = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|&x| f16_bits(x).to_le_bytes()).collect() };
    let (shape, q_shape) = (format!("({rows}, {dim})"), format!("({nq}, {dim})"));
    let files = [
        (
            "base_fortran_f4.npy",
            npy_bytes("<f4", true, &shape, &f4(&base_f)),
        ),
        ("base_f8.npy", npy_bytes("<f8", false, &shape, &f8(&base))),
        (
            "base_fortran_f8_be.npy",
            npy_bytes(">f8", true, &shape, &f8_be(&base_f)),
        ),
        ("base_f2.npy", npy_bytes("<f2", false, &shape, &f2(&base))),
        (
            "base_fortran_f2.npy",
            npy_bytes("<f2", true, &shape, &f2(&base_f)),
        ),
        (
            "q_fortran_f8.npy",
            npy_bytes("<f8", true, &q_shape, &f8(&queries_f)),
        ),
    ];
    for (name, bytes) in &files {
        fs::write(dir.path(name), bytes).unwrap();
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for metric in ["l2", "cosine", "ip"] {
        let (want_ids, want_d) = run_knn(&dir, "base.npy", "queries.npy", 5, metric);
        check(
            metric,
            Rows::F32(&base, dim),
            Rows::F32(&queries, dim),
            5,
            &want_ids,
            &want_d,
        );
        for (name, _) in &files {
            let (b, q) = match name.strip_prefix("q_") {
                Some(_) => ("base.npy", *name),
                None => (*name, "queries.npy"),
            };
            let (ids, d) = run_knn(&dir, b, q, 5, metric);
            assert_eq!(ids, want_ids, "{metric} {name}");
            assert_eq!(bits(&d), bits(&want_d), "{metric} {name}");
        }
    }
}

#[test]
fn threshold_binarises_for_hamming() {
    let dir = TempDir::new("threshold");
    // Only the threshold 0.5 separates these rows: 0.3 is a 0 bit, 0.7 a 1 bit.
    write_f32(&dir.path("base.npy"), 2, &[0.3, 0.3, 0.7, 0.7]);
    write_f32(&dir.path("queries.npy"), 2, &[0.7, 0.7]);
    let ids = dir.arg("ids.npy");
    let args = |t: &'static str| {
        let mut a = vec!["knn", "--device", "cpu", "-k", "1", "--metric", "hamming"];
        a.extend(["--threshold", t]);
        a
    };
    for (t, want) in [("0.5", 1), ("0", 0)] {
        let mut a = args(t);
        let (b, q) = (dir.arg("base.npy"), dir.arg("queries.npy"));
        a.extend(["--base", &b, "--queries", &q, "--ids", &ids, "-q"]);
        let out = vaccel(&a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(read_ids(&dir.path("ids.npy")).2, vec![want]);
    }
}

#[test]
fn summary_line_unless_quiet() {
    let dir = TempDir::new("summary");
    write_f32(&dir.path("base.npy"), 2, &[0.0, 0.0, 1.0, 1.0]);
    let b = dir.arg("base.npy");
    let ids = dir.arg("ids.npy");
    let args = [
        "knn",
        "--device",
        "cpu",
        "--base",
        &b,
        "--queries",
        &b,
        "-k",
        "1",
    ];
    let out = vaccel(&[&args[..], &["--metric", "l2", "--ids", &ids]].concat());
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("queries/s") && err.contains("cpu"), "{err}");
    assert_eq!(read_ids(&dir.path("ids.npy")).2, vec![0, 1]);
    assert_eq!(dir.files(), vec!["base.npy", "ids.npy"]);
}

#[test]
fn info_and_demo_on_the_cpu() {
    let out = vaccel(&["info", "--device", "cpu"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CPU threads") && text.contains("NVRTC"),
        "{text}"
    );

    let demo = [
        "demo",
        "--device",
        "cpu",
        "--n",
        "3000",
        "--dim",
        "24",
        "--queries",
        "40",
        "--clusters",
        "20",
        "--verify",
        "40",
    ];
    let out = vaccel(&demo);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("verified 40/40 queries against an fp64 reference"),
        "{text}"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let out = vaccel(&["knn", "--base", "a.npy"]);
    assert_eq!(out.status.code(), Some(2));
}

/// An error case: the files to write into the folder, the arguments after
/// `knn --device cpu` (with `@name` meaning a path in the folder), and a
/// word the message must contain.
struct Case {
    files: Vec<(&'static str, Vec<u8>)>,
    args: Vec<&'static str>,
    word: &'static str,
}

fn f32_npy(rows: usize, cols: usize) -> Vec<u8> {
    let data: Vec<u8> = Lcg(9)
        .vec(rows * cols)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    npy_bytes("<f4", false, &format!("({rows}, {cols})"), &data)
}

fn fvecs_bytes(dims: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &d in dims {
        out.extend(d.to_le_bytes());
        out.extend(vec![0u8; 4 * d.max(0) as usize]);
    }
    out
}

fn error_cases() -> Vec<(&'static str, Case)> {
    let std_args = |metric: &'static str, k: &'static str| {
        vec![
            "--base",
            "@base.npy",
            "--queries",
            "@q.npy",
            "-k",
            k,
            "--metric",
            metric,
            "--ids",
            "@ids.npy",
            "--distances",
            "@d.npy",
        ]
    };
    let base_args = |base: &'static str| {
        let rest = [
            "--queries",
            "@q.npy",
            "-k",
            "1",
            "--metric",
            "l2",
            "--ids",
            "@ids.npy",
        ];
        [vec!["--base", base], rest.to_vec()].concat()
    };
    let ok_files = || vec![("base.npy", f32_npy(10, 4)), ("q.npy", f32_npy(3, 4))];
    let with_base = |base: Vec<u8>| vec![("base.npy", base), ("q.npy", f32_npy(3, 4))];
    let mut truncated = f32_npy(10, 4);
    truncated.truncate(truncated.len() - 10);
    vec![
        (
            "missing file",
            Case {
                files: vec![("q.npy", f32_npy(3, 4))],
                args: std_args("l2", "3"),
                word: "not found",
            },
        ),
        (
            "int32 dtype",
            Case {
                files: with_base(npy_bytes("<i4", false, "(2, 2)", &[0; 16])),
                args: std_args("l2", "3"),
                word: "dtype '<i4' (int32)",
            },
        ),
        (
            "3-D shape",
            Case {
                files: with_base(npy_bytes("<f4", false, "(2, 2, 1)", &[0; 16])),
                args: std_args("l2", "3"),
                word: "2-D",
            },
        ),
        (
            "dimension mismatch",
            Case {
                files: vec![("base.npy", f32_npy(10, 4)), ("q.npy", f32_npy(3, 5))],
                args: std_args("l2", "3"),
                word: "dimension",
            },
        ),
        (
            "k = 0",
            Case {
                files: ok_files(),
                args: std_args("l2", "0"),
                word: "k must be at least 1",
            },
        ),
        (
            "unknown metric",
            Case {
                files: ok_files(),
                args: std_args("l7", "3"),
                word: "unknown metric",
            },
        ),
        (
            "truncated npy",
            Case {
                files: with_base(truncated),
                args: std_args("l2", "3"),
                word: "truncated",
            },
        ),
        (
            "bad magic",
            Case {
                files: with_base(b"PK\x03\x04 this is a zip file".to_vec()),
                args: std_args("l2", "3"),
                word: "magic",
            },
        ),
        (
            "unsupported version",
            Case {
                files: with_base({
                    let mut b = f32_npy(10, 4);
                    b[6] = 7;
                    b
                }),
                args: std_args("l2", "3"),
                word: "version 7.0",
            },
        ),
        (
            "truncated fortran order",
            Case {
                files: with_base(npy_bytes("<f4", true, "(2, 4)", &[0; 31])),
                args: std_args("l2", "3"),
                word: "truncated file: expected 32 bytes of data for shape (2, 4), found 31",
            },
        ),
        (
            "truncated float64",
            Case {
                files: with_base(npy_bytes("<f8", true, "(2, 4)", &[0; 32])),
                args: std_args("l2", "3"),
                word: "expected 64 bytes",
            },
        ),
        (
            "big-endian integers",
            Case {
                files: with_base(npy_bytes(">i4", false, "(2, 4)", &[0; 32])),
                args: std_args("l2", "3"),
                word: "big-endian dtype '>i4'",
            },
        ),
        (
            "zero rows",
            Case {
                files: with_base(npy_bytes("<f4", false, "(0, 4)", &[])),
                args: std_args("l2", "3"),
                word: "zero rows",
            },
        ),
        (
            "binary base with f32 queries",
            Case {
                files: with_base(npy_bytes("|u1", false, "(3, 4)", &[1; 12])),
                args: std_args("hamming", "3"),
                word: "binary",
            },
        ),
        (
            "l2 on binary rows",
            Case {
                files: vec![
                    ("base.npy", npy_bytes("|u1", false, "(3, 4)", &[1; 12])),
                    ("q.npy", npy_bytes("|u1", false, "(1, 4)", &[1; 4])),
                ],
                args: std_args("l2", "3"),
                word: "not supported",
            },
        ),
        (
            "threshold with l2",
            Case {
                files: ok_files(),
                args: [std_args("l2", "3"), vec!["--threshold", "0.5"]].concat(),
                word: "threshold",
            },
        ),
        (
            "negative values for weighted jaccard",
            Case {
                files: ok_files(),
                args: std_args("jaccard", "3"),
                word: "jaccard",
            },
        ),
        (
            "same output twice",
            Case {
                files: ok_files(),
                args: vec![
                    "--base",
                    "@base.npy",
                    "--queries",
                    "@q.npy",
                    "-k",
                    "1",
                    "--metric",
                    "l2",
                    "--ids",
                    "@ids.npy",
                    "--distances",
                    "@./ids.npy",
                ],
                word: "same file",
            },
        ),
        (
            "unknown extension",
            Case {
                files: vec![("base.txt", vec![1, 2, 3]), ("q.npy", f32_npy(3, 4))],
                args: vec![
                    "--base",
                    "@base.txt",
                    "--queries",
                    "@q.npy",
                    "-k",
                    "1",
                    "--metric",
                    "l2",
                    "--ids",
                    "@ids.npy",
                ],
                word: ".fvecs",
            },
        ),
        (
            "inconsistent fvecs dimensions",
            Case {
                files: vec![
                    ("base.fvecs", fvecs_bytes(&[4, 4, 5, 4])),
                    ("q.npy", f32_npy(3, 4)),
                ],
                args: vec![
                    "--base",
                    "@base.fvecs",
                    "--queries",
                    "@q.npy",
                    "-k",
                    "1",
                    "--metric",
                    "l2",
                    "--ids",
                    "@ids.npy",
                ],
                word: "inconsistent",
            },
        ),
        (
            "truncated fvecs",
            Case {
                files: vec![
                    ("base.fvecs", {
                        let mut b = fvecs_bytes(&[4, 4, 4]);
                        b.truncate(b.len() - 3);
                        b
                    }),
                    ("q.npy", f32_npy(3, 4)),
                ],
                args: vec![
                    "--base",
                    "@base.fvecs",
                    "--queries",
                    "@q.npy",
                    "-k",
                    "1",
                    "--metric",
                    "l2",
                    "--ids",
                    "@ids.npy",
                ],
                word: "truncated",
            },
        ),
        (
            "truncated fbin",
            Case {
                files: vec![
                    ("base.fbin", bin_file(10, 4, &[0; 100])),
                    ("q.npy", f32_npy(3, 4)),
                ],
                args: base_args("@base.fbin"),
                word: "the file ends at byte offset 108",
            },
        ),
        (
            "ids as vectors",
            Case {
                files: vec![
                    ("base.ibin", bin_file(2, 4, &[0; 32])),
                    ("q.npy", f32_npy(3, 4)),
                ],
                args: base_args("@base.ibin"),
                word: "int32 ids",
            },
        ),
        (
            "hdf5 without a dataset",
            Case {
                files: vec![
                    ("ann.hdf5", fixture("ann-v0.hdf5")),
                    ("q.npy", f32_npy(3, 5)),
                ],
                args: base_args("@ann.hdf5"),
                word: "ann.hdf5#NAME'; the file has: neighbors (int32 [5 x 4]), test",
            },
        ),
        (
            "truncated hdf5",
            Case {
                files: vec![
                    ("cut.hdf5", fixture("ann-v0-truncated.hdf5")),
                    ("q.npy", f32_npy(3, 5)),
                ],
                args: base_args("@cut.hdf5#train"),
                word: concat!(
                    "cut.hdf5#train': truncated file: ",
                    "the superblock (end-of-file address at byte offset 40)"
                ),
            },
        ),
        (
            "missing output folder",
            Case {
                files: ok_files(),
                args: vec![
                    "--base",
                    "@base.npy",
                    "--queries",
                    "@q.npy",
                    "-k",
                    "1",
                    "--metric",
                    "l2",
                    "--ids",
                    "@no/such/folder/ids.npy",
                ],
                word: "folder",
            },
        ),
    ]
}

#[test]
fn bad_inputs_fail_with_one_line_and_leave_no_output() {
    for (name, case) in error_cases() {
        let dir = TempDir::new("errors");
        for (file, bytes) in &case.files {
            fs::write(dir.path(file), bytes).unwrap();
        }
        let before = dir.files();
        let args: Vec<String> = ["knn", "--device", "cpu"]
            .iter()
            .map(|s| s.to_string())
            .chain(case.args.iter().map(|a| match a.strip_prefix('@') {
                Some(f) => dir.arg(f),
                None => a.to_string(),
            }))
            .collect();
        let out = vaccel(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with("error: "), "{name}: {err}");
        assert!(
            err.to_lowercase().contains(&case.word.to_lowercase()),
            "{name}: expected '{}' in: {err}",
            case.word
        );
        assert_eq!(dir.files(), before, "{name}: files changed");
    }
}

#[test]
fn a_failed_run_keeps_an_existing_output() {
    let dir = TempDir::new("keep");
    write_f32(&dir.path("base.npy"), 4, &[0.5; 8]);
    write_f32(&dir.path("q.npy"), 3, &[0.5; 3]);
    fs::write(dir.path("ids.npy"), b"old").unwrap();
    let (b, q, ids) = (dir.arg("base.npy"), dir.arg("q.npy"), dir.arg("ids.npy"));
    let out = vaccel(&[
        "knn",
        "--device",
        "cpu",
        "--base",
        &b,
        "--queries",
        &q,
        "-k",
        "1",
        "--metric",
        "l2",
        "--ids",
        &ids,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fs::read(dir.path("ids.npy")).unwrap(), b"old");
    assert_eq!(dir.files(), vec!["base.npy", "ids.npy", "q.npy"]);
}

#[test]
fn hist_prints_the_bins_and_draws_a_png() {
    let dir = TempDir::new("hist");
    // A 1-D array: 0.5, 1.5, ..., 9.5 (one per bin of 10 over [0, 10]),
    // the edge values 0 and 10, and a NaN.
    let mut v: Vec<f32> = (0..10).map(|i| i as f32 + 0.5).collect();
    v.extend([0.0, 10.0, f32::NAN, -3.0]);
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let shape = format!("({},)", v.len());
    fs::write(dir.path("x.npy"), npy_bytes("<f4", false, &shape, &bytes)).unwrap();
    let x = dir.arg("x.npy");
    let png = dir.arg("h.png");
    let args = [
        "hist", &x, "--bins", "10", "--range", "0,10", "--kde", "--png", &png, "--device", "cpu",
    ];
    let out = vaccel(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(rows.len(), 10, "{text}");
    assert!(
        rows[0].starts_with("[           0,            1)"),
        "{text}"
    );
    assert!(rows[9].contains("10]"), "{text}");
    // 0 joins the first bin, 10 the closed last one.
    let count = |r: &str| r.split_whitespace().nth(3).unwrap().parse::<u64>().unwrap();
    assert_eq!(
        rows.iter().map(|r| count(r)).collect::<Vec<_>>(),
        [2, 1, 1, 1, 1, 1, 1, 1, 1, 2]
    );
    assert!(text.contains("below: 1, above: 0, non-finite: 1"), "{text}");
    assert!(text.contains("Scott's bandwidth"), "{text}");
    let picture = fs::read(dir.path("h.png")).unwrap();
    assert_eq!(&picture[..8], b"\x89PNG\r\n\x1a\n");
    // Logarithmic bins on a 2-D array; the base changes the default range.
    write_f32(&dir.path("p.npy"), 2, &[0.5, 3.0, 40.0, 700.0]);
    let p = dir.arg("p.npy");
    let out = vaccel(&[
        "hist", &p, "--bins", "4", "--log", "--base", "10", "--device", "cpu",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("over [0.1, 1000]"),
        "{text}"
    );
    let out = vaccel(&[
        "hist", &p, "--bins", "4", "--log", "--base", "2", "--device", "cpu",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("over [0.5, 1024]"),
        "{text}"
    );
    // Errors: one line, non-zero exit, no picture.
    for (args, word) in [
        (vec!["--bins", "0"], "bins"),
        (vec!["--range", "3,1"], "range"),
        (vec!["--range", "a,b"], "not a number"),
        (vec!["--log", "--range", "-1,5"], "log range"),
    ] {
        let bad = dir.arg("bad.png");
        let mut all = vec!["hist", x.as_str(), "--device", "cpu", "--png", &bad];
        all.extend(args.iter());
        let out = vaccel(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error:") && err.contains(word),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!dir.path("bad.png").exists());
    }
}

#[test]
fn stats_summarises_each_column_and_refuses_nan_unless_skipped() {
    let dir = TempDir::new("stats");
    // 5 x 2: column 0 is 1..5, column 1 is 10, 20, NaN, 40, 50.
    let v: Vec<f32> = vec![1.0, 10.0, 2.0, 20.0, 3.0, f32::NAN, 4.0, 40.0, 5.0, 50.0];
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    fs::write(dir.path("t.npy"), npy_bytes("<f4", false, "(5, 2)", &bytes)).unwrap();
    let t = dir.arg("t.npy");
    let out = vaccel(&["stats", &t, "--device", "cpu"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("non-finite") && err.contains("column 1"),
        "{err}"
    );
    let out = vaccel(&["stats", &t, "--device", "cpu", "--skip-non-finite"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |j: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(j))
            .unwrap_or_else(|| panic!("no row {j}: {text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // column count nonfin mean std min 25% 50% 75% max skew kurt
    assert_eq!(
        row("0")[1..10],
        [
            "5", "0", "3.000000", "1.581139", "1.000000", "2.000000", "3.000000", "4.000000",
            "5.000000"
        ]
    );
    assert_eq!(row("1")[1..4], ["4", "1", "30.000000"]);
    assert_eq!(row("1")[7], "30.000000"); // median of 10, 20, 40, 50
}

#[test]
fn bench_knn_runs_each_metric_on_the_same_data_and_checks_it() {
    let args = |metrics: &'static str| {
        vaccel(&[
            "bench",
            "knn",
            "--device",
            "cpu",
            "--n",
            "3000",
            "--dims",
            "50",
            "--queries",
            "30",
            "-k",
            "5",
            "--repeats",
            "1",
            "--data",
            "gaussian",
            "--metrics",
            metrics,
        ])
    };
    let out = args("cosine,ip,cosine-similarity");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for metric in ["cosine", "ip", "cosine-similarity"] {
        let row = text
            .lines()
            .find(|l| l.starts_with("| gaussian |") && l.contains(&format!("| {metric} |")))
            .unwrap_or_else(|| panic!("no {metric} row in:\n{text}"));
        assert!(row.contains("| 8/8 |"), "{row}");
    }
    let out = args("l1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("l1"), "{err}");
}

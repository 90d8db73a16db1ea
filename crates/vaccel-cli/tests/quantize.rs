//! End-to-end tests of `vaccel quantize train|encode|decode|search` (CPU
//! backend): the files the binary writes are checked against independent
//! computations (codes from the saved thresholds, scales and codebooks,
//! searches against brute force over the decoded rows), every option is
//! shown to change the output, and bad input fails with one line and no
//! output file.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use vector_accelerate::quantize::{Codec, Quantizer};

/// Rows of `dim` values around `clusters` centres (so k-means has structure
/// to find), row-major.
fn clustered(rows: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut g = Lcg(seed);
    let centres = g.vec(clusters * dim);
    (0..rows)
        .flat_map(|r| {
            let c = (r * 7 + r / 3) % clusters;
            centres[c * dim..(c + 1) * dim].to_vec()
        })
        .zip(g.vec(rows * dim))
        .map(|(c, e)| 2.0 * c + 0.2 * e)
        .collect()
}

/// Runs `vaccel quantize ARGS --device cpu`, expecting success; returns stderr.
fn ok(args: &[&str]) -> String {
    let mut all = vec!["quantize"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--device", "cpu"]);
    let out = vaccel(&all);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {err}");
    err
}

fn read_f32_npy(path: &Path) -> (usize, usize, Vec<f32>) {
    let (r, c, b) = read_npy(path, "<f4");
    let v = b
        .chunks_exact(4)
        .map(|x| f32::from_le_bytes(x.try_into().unwrap()))
        .collect();
    (r, c, v)
}

fn load(path: &Path) -> Quantizer {
    Quantizer::load(path).unwrap()
}

#[test]
fn product_fit_encode_decode_search_agree_with_the_codebooks() {
    let dir = TempDir::new("pq");
    let (n, d) = (700, 12);
    let x = clustered(n, d, 20, 1);
    write_f32(&dir.path("x.npy"), d, &x);
    let queries = clustered(9, d, 20, 2);
    write_f32(&dir.path("q.npy"), d, &queries);
    let err = ok(&[
        "train",
        "--kind",
        "pq",
        "--m",
        "3",
        "--nbits",
        "5",
        "--iterations",
        "7",
        "--data",
        &dir.arg("x.npy"),
        "--out",
        &dir.arg("pq.vaq"),
    ]);
    assert!(err.contains("iteration 7: inertia"), "{err}");
    let Quantizer::Product(pq) = load(&dir.path("pq.vaq")) else {
        panic!("not a product quantizer")
    };
    assert_eq!((pq.m(), pq.nbits(), pq.dim()), (3, 5, d));

    let err = ok(&[
        "encode",
        "--quantizer",
        &dir.arg("pq.vaq"),
        "--data",
        &dir.arg("x.npy"),
        "--out",
        &dir.arg("codes.npy"),
        "--quality",
    ]);
    assert!(err.contains("quality: MSE"), "{err}");
    let (rows, bpr, codes) = read_npy(&dir.path("codes.npy"), "|u1");
    assert_eq!((rows, bpr), (n, 2)); // 3 x 5 bits
    let (kc, ds, cent) = (32, 4, pq.centroids());
    let code = |r: usize, j: usize| {
        let row = u16::from_le_bytes([codes[r * 2], codes[r * 2 + 1]]);
        ((row >> (5 * j)) & 31) as usize
    };
    // Each code is a nearest centroid of its sub-space (fp64, ties allowed).
    for r in 0..n {
        for j in 0..3 {
            let dist = |c: usize| -> f64 {
                (0..ds)
                    .map(|t| {
                        (x[r * d + j * ds + t] as f64 - cent[(j * kc + c) * ds + t] as f64).powi(2)
                    })
                    .sum()
            };
            let best = (0..kc).map(dist).fold(f64::INFINITY, f64::min);
            assert!(
                dist(code(r, j)) <= best + 1e-5 * (1.0 + best),
                "row {r} sub-space {j}"
            );
        }
    }
    ok(&[
        "decode",
        "--quantizer",
        &dir.arg("pq.vaq"),
        "--codes",
        &dir.arg("codes.npy"),
        "--out",
        &dir.arg("back.npy"),
    ]);
    let (br, bc, back) = read_f32_npy(&dir.path("back.npy"));
    assert_eq!((br, bc), (n, d));
    for r in 0..n {
        for j in 0..3 {
            assert_eq!(
                &back[r * d + j * ds..r * d + (j + 1) * ds],
                &cent[(j * kc + code(r, j)) * ds..(j * kc + code(r, j) + 1) * ds]
            );
        }
    }

    // Search over codes: the asymmetric distance is the distance to the
    // decoded row; re-ranked results are the exact nearest in the shortlist.
    let (pqa, ca) = (dir.arg("pq.vaq"), dir.arg("codes.npy"));
    for (metric, rerank) in [("l2", false), ("ip", false), ("l2", true)] {
        let mut args = vec!["search", "--quantizer", &pqa, "--codes", &ca];
        let (q, ids, dists, xs) = (
            dir.arg("q.npy"),
            dir.arg("ids.npy"),
            dir.arg("d.npy"),
            dir.arg("x.npy"),
        );
        args.extend_from_slice(&["--queries", &q, "-k", "5", "--metric", metric]);
        args.extend_from_slice(&["--ids", &ids, "--distances", &dists]);
        if rerank {
            args.extend_from_slice(&["--rerank", &xs, "--shortlist", "700"]);
        }
        ok(&args);
        let (_, k, got) = read_ids(&dir.path("ids.npy"));
        let got_d = read_dists(&dir.path("d.npy"));
        let rows = if rerank { &x } else { &back };
        for qi in 0..9 {
            let score = |j: usize| -> f64 {
                let pairs = (0..d).map(|t| (queries[qi * d + t] as f64, rows[j * d + t] as f64));
                match metric {
                    "l2" => pairs.map(|(a, b)| (a - b).powi(2)).sum(),
                    _ => -pairs.map(|(a, b)| a * b).sum::<f64>(),
                }
            };
            let mut all: Vec<f64> = (0..n).map(score).collect();
            all.sort_by(f64::total_cmp);
            for t in 0..k {
                let id = got[qi * k + t] as usize;
                let s = score(id);
                assert!(
                    (s - all[t]).abs() <= 1e-4 * (1.0 + all[t].abs()),
                    "{metric} q{qi} t{t}"
                );
                let reported = if metric == "ip" {
                    -got_d[qi * k + t]
                } else {
                    got_d[qi * k + t]
                };
                assert!(
                    (reported as f64 - s).abs() <= 1e-3 * (1.0 + s.abs()),
                    "{metric} distance"
                );
            }
        }
    }
}

#[test]
fn scalar_codes_follow_the_saved_parameters() {
    let dir = TempDir::new("sq");
    let (n, d) = (300, 7);
    let x = clustered(n, d, 5, 3);
    write_f32(&dir.path("x.npy"), d, &x);
    for (kind, extra, bits) in [
        ("sq8", vec![], 8),
        ("sq4", vec![], 4),
        ("sq8", vec!["--range", "asymmetric"], 8),
        ("sq4", vec!["--per-vector"], 4),
        ("sq8", vec!["--clip", "0.9"], 8),
    ] {
        let mut args = vec!["train", "--kind", kind];
        args.extend(extra.iter().copied());
        let (xa, qa, ca, ba) = (
            dir.arg("x.npy"),
            dir.arg("q.vaq"),
            dir.arg("c.npy"),
            dir.arg("b.npy"),
        );
        args.extend_from_slice(&["--data", &xa, "--out", &qa]);
        ok(&args);
        let Quantizer::Scalar(sq) = load(&dir.path("q.vaq")) else {
            panic!("not scalar")
        };
        ok(&["encode", "--quantizer", &qa, "--data", &xa, "--out", &ca]);
        ok(&["decode", "--quantizer", &qa, "--codes", &ca, "--out", &ba]);
        let (rows, bpr, codes) = read_npy(&dir.path("c.npy"), "|u1");
        let per_vector = extra.contains(&"--per-vector");
        let code_bytes = if bits == 8 { d } else { d.div_ceil(2) };
        assert_eq!(
            (rows, bpr),
            (n, code_bytes + if per_vector { 8 } else { 0 }),
            "{extra:?}"
        );
        let (_, _, back) = read_f32_npy(&dir.path("b.npy"));
        let asym = extra.contains(&"--range");
        for r in 0..n {
            let row = &codes[r * bpr..(r + 1) * bpr];
            let (scales, offsets): (Vec<f32>, Vec<f32>) = if per_vector {
                let f = |i: usize| f32::from_le_bytes(row[i..i + 4].try_into().unwrap());
                (vec![f(code_bytes); d], vec![f(code_bytes + 4); d])
            } else {
                (sq.scales().to_vec(), sq.offsets().to_vec())
            };
            for j in 0..d {
                let raw = if bits == 8 {
                    row[j]
                } else {
                    (row[j / 2] >> (4 * (j % 2))) & 15
                };
                let c = match (asym, bits) {
                    (true, _) => raw as f64,
                    (false, 8) => raw as i8 as f64,
                    (false, _) => (((raw << 4) as i8) >> 4) as f64,
                };
                let want = offsets[j] as f64 + c * scales[j] as f64;
                let got = back[r * d + j] as f64;
                assert!(
                    (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{extra:?} r{r} j{j}"
                );
                // Within half a step of the value, unless clipping saturated it.
                let v = x[r * d + j] as f64;
                if !extra.contains(&"--clip") {
                    assert!(
                        (got - v).abs() <= 0.5 * scales[j] as f64 * 1.001 + 1e-6,
                        "{extra:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn binary_codes_are_the_bits_above_the_threshold_and_search_by_hamming() {
    let dir = TempDir::new("bq");
    let (n, d) = (200, 13);
    let x = clustered(n, d, 6, 4);
    write_f32(&dir.path("x.npy"), d, &x);
    let q = clustered(5, d, 6, 5);
    write_f32(&dir.path("q.npy"), d, &q);
    let means: Vec<f32> = (0..d)
        .map(|j| ((0..n).map(|r| x[r * d + j] as f64).sum::<f64>() / n as f64) as f32)
        .collect();
    for (threshold, t) in [
        ("zero", vec![0.0; d]),
        ("0.25", vec![0.25; d]),
        ("mean", means),
    ] {
        let (xa, qa, ca) = (dir.arg("x.npy"), dir.arg("b.vaq"), dir.arg("c.npy"));
        ok(&[
            "train",
            "--kind",
            "binary",
            "--threshold",
            threshold,
            "--data",
            &xa,
            "--out",
            &qa,
        ]);
        ok(&["encode", "--quantizer", &qa, "--data", &xa, "--out", &ca]);
        let (rows, bpr, codes) = read_npy(&dir.path("c.npy"), "|u1");
        assert_eq!((rows, bpr), (n, 2));
        let bit = |codes: &[u8], r: usize, j: usize| (codes[r * 2 + j / 8] >> (j % 8)) & 1 == 1;
        for r in 0..n {
            for j in 0..d {
                let v = x[r * d + j];
                // The mean is compared in f32 by the library; skip values on it.
                if (v - t[j]).abs() > 1e-5 {
                    assert_eq!(bit(&codes, r, j), v > t[j], "{threshold} r{r} j{j}");
                }
            }
            assert_eq!(codes[r * 2 + 1] >> 5, 0, "padding bits are zero");
        }
        // Decoding gives 1.0 for a set bit and 0.0 for a clear one.
        let back = dir.arg("back.npy");
        ok(&["decode", "--quantizer", &qa, "--codes", &ca, "--out", &back]);
        let (br, bd, bits) = read_f32_npy(&dir.path("back.npy"));
        assert_eq!((br, bd), (n, d));
        for r in 0..n {
            for j in 0..d {
                let want = if bit(&codes, r, j) { 1.0 } else { 0.0 };
                assert_eq!(bits[r * d + j], want, "{threshold} decode r{r} j{j}");
            }
        }
        // Hamming search: distances are the brute-force popcounts.
        let (ids, dists) = (dir.arg("i.npy"), dir.arg("d.npy"));
        let qf = dir.arg("q.npy");
        ok(&[
            "search",
            "--quantizer",
            &qa,
            "--codes",
            &ca,
            "--queries",
            &qf,
            "-k",
            "4",
            "--ids",
            &ids,
            "--distances",
            &dists,
        ]);
        let (_, k, got) = read_ids(&dir.path("i.npy"));
        let got_d = read_dists(&dir.path("d.npy"));
        for qi in 0..5 {
            let qbits: Vec<bool> = (0..d).map(|j| q[qi * d + j] > t[j]).collect();
            let ham = |r: usize| (0..d).filter(|&j| bit(&codes, r, j) != qbits[j]).count();
            let mut all: Vec<usize> = (0..n).map(ham).collect();
            all.sort();
            for s in 0..k {
                assert_eq!(got_d[qi * k + s] as usize, all[s], "{threshold} q{qi}");
                assert_eq!(ham(got[qi * k + s] as usize), all[s]);
            }
        }
        // The codes themselves as queries: each row finds itself at distance 0.
        ok(&[
            "search",
            "--quantizer",
            &qa,
            "--codes",
            &ca,
            "--queries",
            &ca,
            "-k",
            "1",
            "--ids",
            &ids,
            "--distances",
            &dists,
        ]);
        assert!(read_dists(&dir.path("d.npy")).iter().all(|&v| v == 0.0));
    }
}

/// Fits with `args` and returns the saved file's bytes.
fn fitted(dir: &TempDir, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    let (x, out) = (dir.arg("x.npy"), dir.arg("opt.vaq"));
    all.extend_from_slice(&["--data", &x, "--out", &out]);
    ok(&all);
    fs::read(dir.path("opt.vaq")).unwrap()
}

#[test]
fn every_fit_option_changes_the_quantizer() {
    let dir = TempDir::new("options");
    let x = clustered(400, 10, 8, 6);
    write_f32(&dir.path("x.npy"), 10, &x);
    let pq = ["--kind", "pq", "--m", "5", "--nbits", "4"];
    let base = fitted(&dir, &pq);
    for extra in [
        &["--seed", "3"][..],
        &["--iterations", "2"],
        &["--max-training-points", "100"],
    ] {
        let with: Vec<&str> = pq.iter().chain(extra).copied().collect();
        assert_ne!(fitted(&dir, &with), base, "{extra:?}");
    }
    assert_ne!(
        fitted(&dir, &["--kind", "pq", "--m", "5", "--nbits", "5"]),
        base
    );
    // --pad makes a dimension that M does not divide usable.
    let Quantizer::Product(p) = Quantizer::from_bytes(&fitted(
        &dir,
        &["--kind", "pq", "--m", "3", "--nbits", "4", "--pad"],
    ))
    .unwrap() else {
        panic!()
    };
    assert_eq!((p.dim(), p.dsub()), (10, 4));

    let sq = fitted(&dir, &["--kind", "sq8"]);
    for extra in [
        &["--range", "asymmetric"][..],
        &["--per-vector"],
        &["--clip", "0.8"],
    ] {
        let with: Vec<&str> = ["--kind", "sq8"].iter().chain(extra).copied().collect();
        assert_ne!(fitted(&dir, &with), sq, "{extra:?}");
    }
    assert_ne!(fitted(&dir, &["--kind", "sq4"]), sq);
    let zero = fitted(&dir, &["--kind", "binary"]);
    assert_eq!(
        fitted(&dir, &["--kind", "binary", "--threshold", "zero"]),
        zero
    );
    assert_ne!(
        fitted(&dir, &["--kind", "binary", "--threshold", "mean"]),
        zero
    );
    assert_ne!(
        fitted(&dir, &["--kind", "binary", "--threshold", "-0.5"]),
        zero
    );
}

#[test]
fn search_options_change_the_result() {
    let dir = TempDir::new("search-options");
    let (n, d) = (500, 8);
    let x = clustered(n, d, 10, 7);
    write_f32(&dir.path("x.npy"), d, &x);
    write_f32(&dir.path("q.npy"), d, &clustered(20, d, 10, 8));
    let (xa, qa, ca, qf, ids) = (
        dir.arg("x.npy"),
        dir.arg("q.vaq"),
        dir.arg("c.npy"),
        dir.arg("q.npy"),
        dir.arg("i.npy"),
    );
    ok(&[
        "train", "--kind", "pq", "--m", "2", "--nbits", "4", "--data", &xa, "--out", &qa,
    ]);
    ok(&["encode", "--quantizer", &qa, "--data", &xa, "--out", &ca]);
    let run = |extra: &[&str]| {
        let mut a = vec![
            "search",
            "--quantizer",
            &qa,
            "--codes",
            &ca,
            "--queries",
            &qf,
        ];
        a.extend_from_slice(&["-k", "3", "--ids", &ids]);
        a.extend_from_slice(extra);
        ok(&a);
        read_ids(&dir.path("i.npy")).2
    };
    let plain = run(&[]);
    assert_ne!(run(&["--metric", "ip"]), plain);
    let reranked = run(&["--rerank", &xa]);
    assert_ne!(reranked, plain);
    assert_ne!(run(&["--rerank", &xa, "--shortlist", "3"]), reranked);
}

/// Runs `vaccel quantize ARGS --device cpu` in `dir` (`@name` is a path
/// there) expecting a one-line failure mentioning `word` and no new file.
fn fails(dir: &TempDir, args: &[&str], word: &str) {
    let before = dir.files();
    let mut all = vec!["quantize".to_string()];
    all.extend(args.iter().map(|a| match a.strip_prefix('@') {
        Some(f) => dir.arg(f),
        None => a.to_string(),
    }));
    all.extend(["--device".to_string(), "cpu".to_string()]);
    let out = vaccel(&all.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.to_lowercase().contains(&word.to_lowercase()),
        "{args:?}: expected '{word}' in: {err}"
    );
    assert_eq!(dir.files(), before, "{args:?}: files changed");
}

#[test]
fn bad_inputs_fail_with_one_line_and_leave_no_output() {
    let dir = TempDir::new("quantize-errors");
    write_f32(&dir.path("x.npy"), 10, &clustered(300, 10, 4, 9));
    write_f32(&dir.path("x9.npy"), 9, &clustered(300, 9, 4, 9));
    write_f32(&dir.path("few.npy"), 10, &clustered(20, 10, 4, 9));
    let mut nan = clustered(300, 10, 4, 9);
    nan[57] = f32::NAN;
    write_f32(&dir.path("nan.npy"), 10, &nan);
    ok(&[
        "train",
        "--kind",
        "pq",
        "--m",
        "5",
        "--nbits",
        "4",
        "--data",
        &dir.arg("x.npy"),
        "--out",
        &dir.arg("pq.vaq"),
    ]);
    ok(&[
        "train",
        "--kind",
        "sq8",
        "--data",
        &dir.arg("x.npy"),
        "--out",
        &dir.arg("sq.vaq"),
    ]);
    ok(&[
        "train",
        "--kind",
        "binary",
        "--data",
        &dir.arg("x.npy"),
        "--out",
        &dir.arg("b.vaq"),
    ]);
    ok(&[
        "encode",
        "--quantizer",
        &dir.arg("pq.vaq"),
        "--data",
        &dir.arg("x.npy"),
        "--out",
        &dir.arg("pqc.npy"),
    ]);
    ok(&[
        "encode",
        "--quantizer",
        &dir.arg("b.vaq"),
        "--data",
        &dir.arg("x.npy"),
        "--out",
        &dir.arg("bc.npy"),
    ]);
    let whole = fs::read(dir.path("pq.vaq")).unwrap();
    fs::write(dir.path("short.vaq"), &whole[..whole.len() - 5]).unwrap();
    let mut flipped = whole.clone();
    flipped[20] ^= 1;
    fs::write(dir.path("flipped.vaq"), flipped).unwrap();
    fs::write(dir.path("junk.vaq"), b"not a quantizer").unwrap();

    let fit = |kind: &'static str, extra: &[&'static str]| -> Vec<&'static str> {
        let mut a = vec![
            "train", "--kind", kind, "--data", "@x.npy", "--out", "@o.vaq",
        ];
        a.extend_from_slice(extra);
        a
    };
    fails(
        &dir,
        &fit("sq8", &["--m", "4"]),
        "--m does not apply to --kind sq8",
    );
    fails(
        &dir,
        &fit("binary", &["--per-vector"]),
        "--per-vector does not apply",
    );
    fails(
        &dir,
        &fit("pq", &["--threshold", "mean"]),
        "--threshold does not apply",
    );
    fails(&dir, &fit("pq", &[]), "needs --m");
    fails(&dir, &fit("pq", &["--m", "3"]), "3");
    fails(&dir, &fit("pq", &["--m", "5", "--nbits", "3"]), "nbits");
    fails(&dir, &fit("pq", &["--m", "5", "--nbits", "17"]), "nbits");
    fails(
        &dir,
        &fit("pq", &["--m", "5", "--iterations", "0"]),
        "iterations",
    );
    fails(&dir, &fit("sq8", &["--clip", "1.5"]), "1.5");
    fails(
        &dir,
        &fit("sq8", &["--clip", "0.9", "--per-vector"]),
        "clip",
    );
    fails(&dir, &fit("binary", &["--threshold", "high"]), "'high'");
    fails(&dir, &fit("binary", &["--threshold", "inf"]), "finite");
    fails(
        &dir,
        &[
            "fit", "--kind", "pq", "--m", "5", "--nbits", "6", "--data", "@few.npy", "--out",
            "@o.vaq",
        ],
        "fewer than the 64 centroids",
    );
    fails(
        &dir,
        &[
            "train", "--kind", "pq", "--m", "5", "--nbits", "4", "--data", "@nan.npy", "--out",
            "@o.vaq",
        ],
        "row 5",
    );
    fails(
        &dir,
        &[
            "train",
            "--kind",
            "sq8",
            "--data",
            "@missing.npy",
            "--out",
            "@o.vaq",
        ],
        "file not found",
    );

    let enc = |q: &'static str, data: &'static str| {
        vec![
            "encode",
            "--quantizer",
            q,
            "--data",
            data,
            "--out",
            "@o.npy",
        ]
    };
    fails(&dir, &enc("@short.vaq", "@x.npy"), "truncated");
    fails(&dir, &enc("@flipped.vaq", "@x.npy"), "checksum");
    fails(&dir, &enc("@junk.vaq", "@x.npy"), "quantizer");
    fails(&dir, &enc("@pq.vaq", "@x9.npy"), "9");
    fails(&dir, &enc("@pq.vaq", "@bc.npy"), "float32");
    let mut q = enc("@b.vaq", "@x.npy");
    q.push("--quality");
    fails(&dir, &q, "--quality");

    let dec = |q: &'static str, c: &'static str| {
        vec!["decode", "--quantizer", q, "--codes", c, "--out", "@o.npy"]
    };
    fails(&dir, &dec("@sq.vaq", "@pqc.npy"), "rows of 3 bytes");
    fails(&dir, &dec("@pq.vaq", "@x.npy"), "uint8");

    let search = |q: &'static str, c: &'static str, extra: &[&'static str]| {
        let mut a = vec![
            "search",
            "--quantizer",
            q,
            "--codes",
            c,
            "--queries",
            "@x.npy",
        ];
        a.extend_from_slice(&["-k", "2", "--ids", "@i.npy"]);
        a.extend_from_slice(extra);
        a
    };
    fails(
        &dir,
        &search("@pq.vaq", "@pqc.npy", &["--shortlist", "9"]),
        "--shortlist applies only",
    );
    fails(
        &dir,
        &search("@pq.vaq", "@pqc.npy", &["--metric", "cosine"]),
        "cosine",
    );
    fails(
        &dir,
        &search("@pq.vaq", "@pqc.npy", &["--metric", "nope"]),
        "nope",
    );
    fails(
        &dir,
        &search("@b.vaq", "@bc.npy", &["--metric", "l2"]),
        "only with --rerank",
    );
    fails(
        &dir,
        &search("@pq.vaq", "@pqc.npy", &["--rerank", "@few.npy"]),
        "20 rows",
    );
    fails(
        &dir,
        &search(
            "@pq.vaq",
            "@pqc.npy",
            &["--rerank", "@x.npy", "--shortlist", "1"],
        ),
        "shortlist",
    );
    fails(
        &dir,
        &search("@pq.vaq", "@pqc.npy", &["--distances", "@i.npy"]),
        "same file",
    );
    fails(&dir, &search("@pq.vaq", "@bc.npy", &[]), "bytes");
}

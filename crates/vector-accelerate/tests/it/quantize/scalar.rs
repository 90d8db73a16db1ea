//! `ScalarQuantizer` (int8 and int4, per channel or per vector, symmetric
//! or asymmetric): round trips within the documented bounds (checked
//! against f64 arithmetic), CUDA codes identical to the CPU's, the full
//! code range used and every option changing the codes, non-finite values
//! saturated on encode and ignored by training, and search over codes
//! against exact search on the decoded rows, with re-ranking.

use crate::common::*;
use vector_accelerate::quantize::{
    Codec, ScalarBits, ScalarCodes, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope,
    SearchOptions,
};
use vector_accelerate::{knn, Context, Matrix, Metric};

fn all_scalar_options() -> Vec<ScalarOptions> {
    let mut v = Vec::new();
    for bits in [ScalarOptions::int8(), ScalarOptions::int4()] {
        for range in [ScalarRange::Symmetric, ScalarRange::Asymmetric] {
            for scope in [ScalarScope::PerChannel, ScalarScope::PerVector] {
                v.push(bits.with_range(range).with_scope(scope));
            }
        }
    }
    v
}

/// Scale and offset of value `j` of row `r`.
fn value_params(sq: &ScalarQuantizer, codes: &ScalarCodes, r: usize, j: usize) -> (f32, f32) {
    match codes.vector_params() {
        Some((s, o)) => (s[r], o[r]),
        None => (sq.scales()[j], sq.offsets()[j]),
    }
}

/// Code of value `j` of row `r` of host codes, as a signed integer.
fn code_at(codes: &ScalarCodes, r: usize, j: usize) -> i32 {
    let b = codes.as_bytes().unwrap();
    let row = &b[r * codes.bytes_per_row()..];
    let signed = codes.range() == ScalarRange::Symmetric;
    match codes.bits() {
        ScalarBits::Int8 => {
            if signed {
                row[j] as i8 as i32
            } else {
                row[j] as i32
            }
        }
        ScalarBits::Int4 => {
            let n = (row[j / 2] >> (4 * (j % 2))) & 15;
            if signed {
                ((n << 4) as i8 >> 4) as i32
            } else {
                n as i32
            }
        }
    }
}

/// Round trip of `x` under `opts` on `ctx`: codes equal the f64 reference
/// (except values within 1e-3 of a rounding boundary), decoded values within
/// the bound, CUDA codes equal the CPU's.
fn check_scalar(ctx: &Context, x: &Matrix, opts: ScalarOptions, label: &str) {
    let sq = ScalarQuantizer::train(ctx, x, &opts).unwrap();
    let codes = sq.encode(ctx, x).unwrap();
    assert_eq!(codes.device(), ctx.device());
    let host = codes.to_host().unwrap();
    let back = sq.decode(ctx, &codes).unwrap().into_host().unwrap();
    let (qmin, qmax) = match (opts.bits, opts.range) {
        (ScalarBits::Int8, ScalarRange::Symmetric) => (-127.0, 127.0),
        (ScalarBits::Int4, ScalarRange::Symmetric) => (-7.0, 7.0),
        (ScalarBits::Int8, ScalarRange::Asymmetric) => (0.0, 255.0),
        (ScalarBits::Int4, ScalarRange::Asymmetric) => (0.0, 15.0),
    };
    for r in 0..x.rows() {
        for j in 0..x.dim() {
            let v = x.row(r)[j];
            let (s, o) = value_params(&sq, &host, r, j);
            let c = code_at(&host, r, j);
            assert!(
                (qmin..=qmax).contains(&(c as f64)),
                "{label}: code {c} out of range"
            );
            if s > 0.0 {
                let exact = (v as f64 - o as f64) / s as f64;
                let want = exact.round().clamp(qmin, qmax);
                if (exact - exact.floor() - 0.5).abs() > 1e-3 {
                    assert_eq!(
                        c as f64, want,
                        "{label}: row {r} col {j} value {v} scale {s} offset {o}"
                    );
                }
                // Decoded value: offset + code * scale, and within the bound.
                let dec = back.row(r)[j];
                let want_dec = o as f64 + c as f64 * s as f64;
                assert!(
                    (dec as f64 - want_dec).abs() <= 1e-6 * (o.abs() as f64 + 255.0 * s as f64),
                    "{label}"
                );
                let bound =
                    0.5 * s as f64 * (1.0 + 1e-5) + (o.abs() as f64 + 255.0 * s as f64) * 1.2e-7;
                assert!(
                    (dec as f64 - v as f64).abs() <= bound,
                    "{label}: row {r} col {j}: {v} -> {dec} (bound {bound})"
                );
            }
        }
    }
    if let Some(cuda) = cuda() {
        if !ctx.is_cuda() {
            let sqg = ScalarQuantizer::train(&cuda, x, &opts).unwrap();
            assert_eq!(sqg, sq, "{label}: CUDA fit differs from the CPU fit");
            let gc = sqg.encode(&cuda, x).unwrap().to_host().unwrap();
            assert_eq!(gc.as_bytes(), host.as_bytes(), "{label}: CUDA codes differ");
            assert_eq!(gc.vector_params(), host.vector_params(), "{label}");
            let gback = sqg
                .decode(&cuda, &gc.copy_to(&cuda).unwrap())
                .unwrap()
                .into_host()
                .unwrap();
            assert_eq!(
                gback.as_slice(),
                back.as_slice(),
                "{label}: CUDA decode differs"
            );
        }
    }
}

#[test]
fn scalar_modes_round_trip_within_their_bounds_and_backends_agree() {
    let s = seed();
    for_each_backend("scalar_modes_round_trip", |ctx| {
        let mut r = rng(s);
        for &dim in &[1usize, 3, 16, 17, 128, 769] {
            for &rows in &[1usize, 2, 3, 33, 257] {
                let mut x = gaussian(&mut r, rows, dim);
                // Offsets and scales that differ per column.
                let v: Vec<f32> = x
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v * (1.0 + (i % dim) as f32 * 0.1) + (i % 7) as f32)
                    .collect();
                x = Matrix::new(v, dim).unwrap();
                for opts in all_scalar_options() {
                    check_scalar(ctx, &x, opts, &format!("seed {s} {rows}x{dim} {opts:?}"));
                }
            }
        }
        let c = clustered(&mut r, 500, 96, 10, 0.1);
        for opts in all_scalar_options() {
            check_scalar(ctx, &c, opts, &format!("seed {s} clustered {opts:?}"));
        }
    });
}

#[test]
fn asymmetric_codes_use_the_full_range_and_options_change_codes() {
    let s = seed();
    for_each_backend("asymmetric_codes_use_the_full_range", |ctx| {
        let mut r = rng(s);
        let x = gaussian(&mut r, 300, 24);
        for opts in [ScalarOptions::int8(), ScalarOptions::int4()] {
            let opts = opts.with_range(ScalarRange::Asymmetric);
            let sq = ScalarQuantizer::train(ctx, &x, &opts).unwrap();
            let codes = sq.encode(ctx, &x).unwrap().to_host().unwrap();
            let top = if opts.bits == ScalarBits::Int8 {
                255
            } else {
                15
            };
            for j in 0..24 {
                let col: Vec<i32> = (0..300).map(|i| code_at(&codes, i, j)).collect();
                assert_eq!(col.iter().min(), Some(&0), "column {j}");
                assert_eq!(col.iter().max(), Some(&top), "column {j}");
            }
        }
        // Every option changes the codes or their size.
        let base = ScalarOptions::int8();
        let enc = |o: ScalarOptions| {
            let sq = ScalarQuantizer::train(ctx, &x, &o).unwrap();
            sq.encode(ctx, &x)
                .unwrap()
                .to_host()
                .unwrap()
                .to_row_bytes()
                .unwrap()
        };
        let b0 = enc(base);
        for o in [
            base.with_range(ScalarRange::Asymmetric),
            base.with_scope(ScalarScope::PerVector),
            ScalarOptions::int4(),
            base.with_clip(0.9),
        ] {
            assert_ne!(enc(o), b0, "{o:?}");
        }
        // Clipping shrinks the scales.
        let full = ScalarQuantizer::train(ctx, &x, &base).unwrap();
        let clip = ScalarQuantizer::train(ctx, &x, &base.with_clip(0.9)).unwrap();
        assert!(clip.scales().iter().zip(full.scales()).all(|(a, b)| a < b));
    });
}

#[test]
fn scalar_encode_saturates_non_finite_values_and_fit_ignores_them() {
    for_each_backend("scalar_encode_saturates", |ctx| {
        let x = Matrix::new(vec![-2.0, 1.0, 4.0, 3.0, f32::NAN, f32::INFINITY], 2).unwrap();
        for range in [ScalarRange::Symmetric, ScalarRange::Asymmetric] {
            let sq =
                ScalarQuantizer::train(ctx, &x, &ScalarOptions::int8().with_range(range)).unwrap();
            // Column 0 over {-2, 4}; column 1 over {1, 3} (inf ignored).
            let (s0, s1) = (sq.scales()[0], sq.scales()[1]);
            match range {
                ScalarRange::Symmetric => {
                    assert_eq!((s0, s1), (4.0 / 127.0, 3.0 / 127.0));
                }
                ScalarRange::Asymmetric => {
                    assert_eq!((s0, s1), (6.0 / 255.0, 2.0 / 255.0));
                    assert_eq!(sq.offsets(), &[-2.0, 1.0]);
                }
            }
            let c = sq.encode(ctx, &x).unwrap().to_host().unwrap();
            let top = if range == ScalarRange::Symmetric {
                127
            } else {
                255
            };
            assert_eq!(code_at(&c, 2, 1), top, "+inf saturates");
            let zero = match range {
                ScalarRange::Symmetric => 0,
                ScalarRange::Asymmetric => ((0.0f64 + 2.0) / (6.0 / 255.0)).round() as i32,
            };
            assert_eq!(code_at(&c, 2, 0), zero, "NaN encodes as 0.0");
            let neg = Matrix::new(vec![-1e30, f32::NEG_INFINITY], 2).unwrap();
            let cn = sq.encode(ctx, &neg).unwrap().to_host().unwrap();
            let bottom = if range == ScalarRange::Symmetric {
                -127
            } else {
                0
            };
            assert_eq!((code_at(&cn, 0, 0), code_at(&cn, 0, 1)), (bottom, bottom));
        }
    });
}

#[test]
fn scalar_search_matches_exact_search_on_decoded_rows_and_reranks() {
    let s = seed();
    for_each_backend("scalar_search", |ctx| {
        let mut r = rng(s);
        let x = clustered(&mut r, 3000, 40, 30, 0.3);
        let q = clustered(&mut r, 20, 40, 30, 0.3);
        for opts in [
            ScalarOptions::int8(),
            ScalarOptions::int4().with_scope(ScalarScope::PerVector),
        ] {
            let sq = ScalarQuantizer::train(ctx, &x, &opts).unwrap();
            let codes = sq.encode(ctx, &x).unwrap();
            let dec = sq.decode(ctx, &codes).unwrap().into_host().unwrap();
            for metric in [Metric::L2, Metric::InnerProduct] {
                let got = sq
                    .search(
                        ctx,
                        &q,
                        &codes,
                        10,
                        &SearchOptions::default().with_metric(metric),
                    )
                    .unwrap();
                let want = knn(&Context::cpu(), &q, &dec, 10, metric).unwrap();
                let label = format!("seed {s} {opts:?} {metric}");
                assert_close_neighbors(&label, &got, &want, |i| {
                    let qn = sqn(q.row(i));
                    1e-5 * (1.0 + qn + 50.0)
                });
                // Re-ranked: exact distances of the original rows.
                let rr = sq
                    .search(
                        ctx,
                        &q,
                        &codes,
                        10,
                        &SearchOptions::default()
                            .with_metric(metric)
                            .with_rerank(&x, 50),
                    )
                    .unwrap();
                for i in 0..q.rows() {
                    for (j, &id) in rr.row_ids(i).iter().enumerate() {
                        let e = ref_f32(q.row(i), x.row(id as usize), metric, None, 0.0);
                        let d = rr.row_distances(i)[j] as f64;
                        assert!(
                            (d - e).abs() <= 1e-4 * (1.0 + e.abs()),
                            "seed {s}: {d} vs {e}"
                        );
                    }
                }
            }
        }
    });
}

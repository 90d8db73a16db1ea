//! Scalar, binary and product quantization: round trips within the
//! documented bounds (checked against f64 arithmetic), CUDA codes identical
//! to the CPU's, searches over codes against brute-force references, every
//! option changing the output, the file format and typed errors.

use crate::common::*;
use vector_accelerate::quantize::{
    BinaryOptions, BinaryQuantizer, BinaryThreshold, Codec, Codes, PqOptions, ProductQuantizer,
    Quality, Quantizer, QuantizerOptions, ScalarBits, ScalarCodes, ScalarOptions, ScalarQuantizer,
    ScalarRange, ScalarScope, SearchOptions,
};
use vector_accelerate::{knn, Context, Error, Matrix, Metric, MISSING_ID};

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

fn popcount_distance(a: &[f32], b: &[f32], t: &[f32]) -> u32 {
    a.iter()
        .zip(b)
        .zip(t)
        .filter(|((x, y), t)| (**x > **t) != (**y > **t))
        .count() as u32
}

#[test]
fn binary_codes_follow_their_thresholds_and_hamming_search_is_exact() {
    let s = seed();
    for_each_backend("binary_codes_and_search", |ctx| {
        let mut r = rng(s);
        for &dim in &[1usize, 3, 63, 64, 65, 200] {
            let mut x = gaussian(&mut r, 500, dim);
            let shift: Vec<f32> = x
                .as_slice()
                .iter()
                .enumerate()
                .map(|(i, v)| v + (i % dim) as f32 * 0.01 + 0.3)
                .collect();
            x = Matrix::new(shift, dim).unwrap();
            let q = gaussian(&mut r, 7, dim);
            let given: Vec<f32> = (0..dim).map(|j| (j as f32 * 0.37).sin()).collect();
            let mut prev: Option<Vec<u64>> = None;
            for th in [
                BinaryThreshold::Zero,
                BinaryThreshold::Mean,
                BinaryThreshold::Given(given.clone()),
            ] {
                let bq = BinaryQuantizer::train(
                    ctx,
                    &x,
                    &BinaryOptions::default().with_threshold(th.clone()),
                )
                .unwrap();
                if th == BinaryThreshold::Mean {
                    for j in 0..dim {
                        let m: f64 = (0..500).map(|i| x.row(i)[j] as f64).sum::<f64>() / 500.0;
                        assert!((bq.thresholds()[j] as f64 - m).abs() <= 1e-6 * (1.0 + m.abs()));
                    }
                }
                let codes = bq.encode(ctx, &x).unwrap();
                assert_eq!(codes.rows(), 500);
                let t = bq.thresholds();
                // Bits, via the Hamming distance of each row to itself shifted:
                // compare the search with a brute-force reference.
                let nn = bq
                    .search(ctx, &q, &codes, 5, &SearchOptions::default())
                    .unwrap();
                for i in 0..q.rows() {
                    let mut all: Vec<(u32, usize)> = (0..500)
                        .map(|j| (popcount_distance(q.row(i), x.row(j), t), j))
                        .collect();
                    all.sort();
                    let want: Vec<u64> = all[..5].iter().map(|p| p.1 as u64).collect();
                    assert_eq!(
                        nn.row_ids(i),
                        &want[..],
                        "seed {s} dim {dim} {th:?} query {i}"
                    );
                    for (j, p) in all[..5].iter().enumerate() {
                        assert_eq!(nn.row_distances(i)[j], p.0 as f32);
                    }
                }
                let words = codes.to_host_binary().unwrap().view().as_words().to_vec();
                if let Some(p) = &prev {
                    assert_ne!(
                        p, &words,
                        "{th:?} gives the same codes as the previous threshold"
                    );
                }
                prev = Some(words);
                // Re-rank with the original rows.
                let rr = bq
                    .search(
                        ctx,
                        &q,
                        &codes,
                        3,
                        &SearchOptions::default()
                            .with_metric(Metric::L2)
                            .with_rerank(&x, 40),
                    )
                    .unwrap();
                for i in 0..q.rows() {
                    let ids = rr.row_ids(i);
                    assert!(ids.iter().all(|&id| id != MISSING_ID));
                    let d: Vec<f32> = rr.row_distances(i).to_vec();
                    assert!(d.windows(2).all(|w| w[0] <= w[1]));
                    for (j, &id) in ids.iter().enumerate() {
                        let e = ref_f32(q.row(i), x.row(id as usize), Metric::L2, None, 0.0);
                        assert!((d[j] as f64 - e).abs() <= 1e-4 * (1.0 + e));
                    }
                }
            }
        }
    });
}

/// ADC distance of query `q` to row `r` of host codes, in f64.
fn adc_ref(
    pq: &ProductQuantizer,
    q: &[f32],
    codes: &vector_accelerate::quantize::PqCodes,
    r: usize,
    metric: Metric,
) -> f64 {
    let (m, ds, kc) = (pq.m(), pq.dsub(), pq.centroids_per_subspace());
    let mut s = 0f64;
    for j in 0..m {
        let c = codes.code(r, j).unwrap() as usize;
        let cv = &pq.centroids()[(j * kc + c) * ds..(j * kc + c + 1) * ds];
        for (t, &c) in cv.iter().enumerate() {
            let qv = q.get(j * ds + t).copied().unwrap_or(0.0) as f64;
            s += match metric {
                Metric::InnerProduct => qv * c as f64,
                _ => (qv - c as f64).powi(2),
            };
        }
    }
    s
}

#[test]
fn product_quantizer_encodes_nearest_centroids_and_searches_by_adc() {
    let s = seed();
    let cpu = Context::cpu();
    let mut r = rng(s);
    for &(dim, m, nbits, pad) in &[
        (32usize, 8usize, 6u32, false),
        (30, 4, 4, true),
        (24, 3, 8, false),
        (16, 4, 10, false),
        (9, 9, 5, false),
    ] {
        let x = clustered(&mut r, 1500, dim, 20, 0.2);
        let q = clustered(&mut r, 9, dim, 20, 0.2);
        let opts = PqOptions::new(m, nbits)
            .with_padding(pad)
            .with_iterations(8)
            .with_seed(s);
        let pq = ProductQuantizer::train(&cpu, &x, &opts).unwrap();
        let label = format!("seed {s} d {dim} M {m} nbits {nbits}");
        let codes = pq.encode(&cpu, &x).unwrap();
        // Each code is a nearest centroid (f64 check with tolerance for ties).
        let (ds, kc) = (pq.dsub(), pq.centroids_per_subspace());
        for i in (0..x.rows()).step_by(37) {
            for j in 0..m {
                let d = |c: usize| -> f64 {
                    (0..ds)
                        .map(|t| {
                            let xv = x.row(i).get(j * ds + t).copied().unwrap_or(0.0) as f64;
                            (xv - pq.centroids()[(j * kc + c) * ds + t] as f64).powi(2)
                        })
                        .sum()
                };
                let got = d(codes.code(i, j).unwrap() as usize);
                let best = (0..kc).map(d).fold(f64::INFINITY, f64::min);
                assert!(
                    got <= best + 1e-5 * (1.0 + best),
                    "{label}: row {i} sub {j}"
                );
            }
        }
        // Decode gives the centroids.
        let dec = pq.decode(&cpu, &codes).unwrap().into_host().unwrap();
        for i in (0..x.rows()).step_by(101) {
            for j in 0..dim {
                let (sj, t) = (j / ds, j % ds);
                let c = codes.code(i, sj).unwrap() as usize;
                assert_eq!(dec.row(i)[j], pq.centroids()[(sj * kc + c) * ds + t]);
            }
        }
        for metric in [Metric::L2, Metric::InnerProduct] {
            let nn = pq
                .search(
                    &cpu,
                    &q,
                    &codes,
                    10,
                    &SearchOptions::default().with_metric(metric),
                )
                .unwrap();
            for i in 0..q.rows() {
                let mut all: Vec<(f64, usize)> = (0..x.rows())
                    .map(|j| (adc_ref(&pq, q.row(i), &codes, j, metric), j))
                    .collect();
                if metric == Metric::InnerProduct {
                    all.iter_mut().for_each(|p| p.0 = -p.0);
                }
                all.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let kth = all[9].0;
                for (j, &id) in nn.row_ids(i).iter().enumerate() {
                    let v = adc_ref(&pq, q.row(i), &codes, id as usize, metric);
                    let sv = if metric == Metric::InnerProduct {
                        -v
                    } else {
                        v
                    };
                    assert!(
                        sv <= kth + 1e-4 * (1.0 + kth.abs()),
                        "{label} {metric}: query {i} result {j}"
                    );
                    assert!(
                        (nn.row_distances(i)[j] as f64 - v).abs() <= 1e-4 * (1.0 + v.abs()),
                        "{label}"
                    );
                }
            }
            if let Some(g) = cuda() {
                let gcodes = pq.encode(&g, &x).unwrap();
                assert_eq!(
                    gcodes.to_host().unwrap().as_bytes(),
                    codes.as_bytes(),
                    "{label}: CUDA codes differ"
                );
                let gn = pq
                    .search(
                        &g,
                        &q,
                        &gcodes,
                        10,
                        &SearchOptions::default().with_metric(metric),
                    )
                    .unwrap();
                assert_eq!(gn, nn, "{label} {metric}: CUDA ADC search differs");
            }
        }
    }
}

#[test]
fn product_search_over_many_codes_filters_exactly_and_reranks() {
    // More codes than the CUDA scan's sample, so the threshold pass runs.
    let s = seed();
    let cpu = Context::cpu();
    let mut r = rng(s);
    let x = clustered(&mut r, 90_000, 16, 200, 0.3);
    let q = clustered(&mut r, 12, 16, 200, 0.3);
    let pq = ProductQuantizer::train(
        &cpu,
        &x,
        &PqOptions::new(4, 8)
            .with_iterations(4)
            .with_max_training_points(20_000)
            .with_seed(s),
    )
    .unwrap();
    let codes = pq.encode(&cpu, &x).unwrap();
    for metric in [Metric::L2, Metric::InnerProduct] {
        for k in [1usize, 10, 100] {
            let nn = pq
                .search(
                    &cpu,
                    &q,
                    &codes,
                    k,
                    &SearchOptions::default().with_metric(metric),
                )
                .unwrap();
            if let Some(g) = cuda() {
                let gc = codes.copy_to(&g).unwrap();
                let gn = pq
                    .search(
                        &g,
                        &q,
                        &gc,
                        k,
                        &SearchOptions::default().with_metric(metric),
                    )
                    .unwrap();
                assert_eq!(gn, nn, "seed {s} {metric} k {k}");
            }
        }
    }
    // Re-ranking with the original rows beats the codes alone.
    for_each_backend("product_rerank", |ctx| {
        let c = codes.copy_to(ctx).unwrap();
        let exact = knn(&cpu, &q, &x, 10, Metric::L2).unwrap();
        let plain = pq
            .search(ctx, &q, &c, 10, &SearchOptions::default())
            .unwrap();
        let rr = pq
            .search(
                ctx,
                &q,
                &c,
                10,
                &SearchOptions::default().with_rerank(&x, 200),
            )
            .unwrap();
        let recall = |n: &vector_accelerate::Neighbors| -> usize {
            (0..q.rows())
                .map(|i| {
                    n.row_ids(i)
                        .iter()
                        .filter(|id| exact.row_ids(i).contains(id))
                        .count()
                })
                .sum()
        };
        assert!(
            recall(&rr) > recall(&plain),
            "seed {s}: {} vs {}",
            recall(&rr),
            recall(&plain)
        );
        assert!(
            recall(&rr) as f64 >= 0.75 * 120.0,
            "seed {s}: re-ranked recall {}",
            recall(&rr)
        );
    });
}

#[test]
fn product_training_improves_with_bits_and_iterations_on_both_backends() {
    let s = seed();
    for_each_backend("product_training", |ctx| {
        let mut r = rng(s);
        let x = clustered(&mut r, 3000, 32, 50, 0.3);
        let mse = |o: PqOptions| {
            let pq = ProductQuantizer::train(ctx, &x, &o).unwrap();
            let c = pq.encode(ctx, &x).unwrap();
            let d = pq.decode(ctx, &c).unwrap().into_host().unwrap();
            Quality::measure(x.view(), d.view(), c.code_bytes())
                .unwrap()
                .mse
        };
        let base = PqOptions::new(8, 6).with_iterations(10).with_seed(s);
        let m0 = mse(base.clone());
        assert!(mse(PqOptions::new(8, 4).with_iterations(10).with_seed(s)) > m0);
        assert!(mse(base.clone().with_iterations(1)) > m0);
        assert!(mse(PqOptions::new(4, 6).with_iterations(10).with_seed(s)) > m0);
        assert_ne!(mse(base.clone().with_seed(s + 1)), m0);
        assert_ne!(mse(base.with_max_training_points(500)), m0);
        // The variance of the data bounds the error from above.
        let var: f64 = x
            .as_slice()
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            / x.as_slice().len() as f64;
        assert!(m0 < 0.2 * var, "seed {s}: mse {m0} vs variance {var}");
    });
    // Trained on CUDA, the codebooks are as good as the CPU's.
    if let Some(g) = cuda() {
        let mut r = rng(s);
        let x = clustered(&mut r, 4000, 32, 50, 0.3);
        let q = |ctx: &Context| {
            let pq = ProductQuantizer::train(ctx, &x, &PqOptions::new(8, 6).with_seed(s)).unwrap();
            let c = pq.encode(&Context::cpu(), &x).unwrap();
            let d = pq.decode(&Context::cpu(), &c).unwrap().into_host().unwrap();
            Quality::measure(x.view(), d.view(), c.code_bytes())
                .unwrap()
                .mse
        };
        let (a, b) = (q(&Context::cpu()), q(&g));
        assert!(
            (a - b).abs() <= 0.02 * a,
            "seed {s}: CPU mse {a}, CUDA mse {b}"
        );
    }
}

#[test]
fn quality_metrics_follow_their_formulas() {
    let x = Matrix::new(vec![1.0, -2.0, 3.0, 0.0], 2).unwrap();
    let y = Matrix::new(vec![1.5, -2.0, 2.0, 0.0], 2).unwrap();
    let q = Quality::measure(x.view(), y.view(), 2).unwrap();
    assert_eq!(q.mse, (0.25 + 1.0) / 4.0);
    assert_eq!(q.max_error, 1.0);
    assert!((q.snr_db - 10.0 * (14.0f64 / 1.25).log10()).abs() < 1e-12);
    assert!((q.psnr_db - 10.0 * (9.0f64 / 0.3125).log10()).abs() < 1e-12);
    assert_eq!(q.compression_ratio, 8.0);
    assert_eq!(q.per_vector[0].mse, 0.125);
    assert_eq!(q.per_vector[1].max_error, 1.0);
    assert!(Quality::measure(x.view(), Matrix::new(vec![1.0, 2.0], 2).unwrap().view(), 1).is_err());
}

#[test]
fn quantizer_files_round_trip_and_refuse_damage() {
    let s = seed();
    let ctx = Context::cpu();
    let mut r = rng(s);
    let x = gaussian(&mut r, 300, 12);
    let qs = [
        Quantizer::Scalar(
            ScalarQuantizer::train(
                &ctx,
                &x,
                &ScalarOptions::int4().with_range(ScalarRange::Asymmetric),
            )
            .unwrap(),
        ),
        Quantizer::Scalar(
            ScalarQuantizer::train(
                &ctx,
                &x,
                &ScalarOptions::int8().with_scope(ScalarScope::PerVector),
            )
            .unwrap(),
        ),
        Quantizer::Binary(
            BinaryQuantizer::train(
                &ctx,
                &x,
                &BinaryOptions::default().with_threshold(BinaryThreshold::Mean),
            )
            .unwrap(),
        ),
        Quantizer::Product(
            ProductQuantizer::train(&ctx, &x, &PqOptions::new(3, 4).with_iterations(3)).unwrap(),
        ),
    ];
    let dir = std::env::temp_dir().join(format!("va-quant-{s}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, q) in qs.iter().enumerate() {
        let p = dir.join(format!("q{i}.vaq"));
        q.save(&p).unwrap();
        assert_eq!(&Quantizer::load(&p).unwrap(), q);
        let b = q.to_bytes();
        for cut in [0, 7, 12, b.len() / 2, b.len() - 1] {
            let e = Quantizer::from_bytes(&b[..cut]).unwrap_err();
            assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
        }
        let mut flip = b.clone();
        flip[20] ^= 1;
        assert!(Quantizer::from_bytes(&flip)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        let mut ver = b.clone();
        ver[8] = 9;
        assert!(Quantizer::from_bytes(&ver)
            .unwrap_err()
            .to_string()
            .contains("version"));
        std::fs::write(&p, &b[..b.len() - 3]).unwrap();
        assert!(Quantizer::load(&p).is_err());
    }
    assert!(Quantizer::from_bytes(b"not a quantizer at all, clearly")
        .unwrap_err()
        .to_string()
        .contains("magic"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Every kind's options, as a [`Quantizer`] trains them.
fn every_kind() -> Vec<QuantizerOptions> {
    vec![
        QuantizerOptions::Scalar(ScalarOptions::int8()),
        QuantizerOptions::Scalar(ScalarOptions::int4().with_scope(ScalarScope::PerVector)),
        QuantizerOptions::Binary(BinaryOptions::default().with_threshold(BinaryThreshold::Mean)),
        QuantizerOptions::Product(PqOptions::new(3, 5).with_iterations(4)),
    ]
}

#[test]
fn every_quantizer_is_one_codec() {
    let s = seed();
    for_each_backend("codec", |ctx| {
        let mut r = rng(s);
        let (n, d) = (301, 15);
        let x = gaussian(&mut r, n, d);
        let q = gaussian(&mut r, 7, d);
        // int8; int4 plus a scale and offset; one bit each; 3 codes of 5 bits.
        let sizes = [d, d.div_ceil(2) + 8, d.div_ceil(8), 2];
        let mut all_codes = Vec::new();
        for (opts, size) in every_kind().into_iter().zip(sizes) {
            let qz = Quantizer::train(ctx, &x, &opts).unwrap();
            let label = format!("{} on {}", qz.kind_name(), ctx.device());
            assert_eq!(qz.dim(), d, "{label}");
            assert_eq!(qz.code_size(), size, "{label}");
            let codes = qz.encode(ctx, &x).unwrap();
            assert_eq!((codes.rows(), codes.device()), (n, ctx.device()), "{label}");
            // Bytes round trip, and a ragged length is refused.
            let bytes = codes.to_bytes().unwrap();
            assert_eq!(bytes.len(), n * qz.code_size(), "{label}");
            let again = qz.codes_from_bytes(ctx, &bytes).unwrap();
            assert_eq!(again.to_bytes().unwrap(), bytes, "{label}");
            let e = qz
                .codes_from_bytes(ctx, &bytes[..bytes.len() - 1])
                .unwrap_err();
            assert!(matches!(e, Error::RaggedData { .. }), "{label}: {e}");
            // Decode and search agree with the kind's own codec.
            let back = qz.decode(ctx, &again).unwrap().into_host().unwrap();
            assert_eq!((back.rows(), back.dim()), (n, d), "{label}");
            let opts = SearchOptions::default().with_rerank(&x, 20);
            let got = qz.search(ctx, &q, &codes, 5, &opts).unwrap();
            let (own_back, own) = match (&qz, &codes) {
                (Quantizer::Scalar(c), Codes::Scalar(k)) => (
                    c.decode(ctx, k).unwrap(),
                    c.search(ctx, &q, k, 5, &opts).unwrap(),
                ),
                (Quantizer::Binary(c), Codes::Binary(k)) => (
                    c.decode(ctx, k).unwrap(),
                    c.search(ctx, &q, k, 5, &opts).unwrap(),
                ),
                (Quantizer::Product(c), Codes::Product(k)) => (
                    c.decode(ctx, k).unwrap(),
                    c.search(ctx, &q, k, 5, &opts).unwrap(),
                ),
                _ => panic!("{label}: codes of another kind"),
            };
            assert_eq!(own_back.into_host().unwrap(), back, "{label}");
            assert_eq!(own.ids(), got.ids(), "{label}");
            // Re-ranked distances are exact squared L2 to the originals.
            for qi in 0..7 {
                for (j, &id) in got.row_ids(qi).iter().enumerate() {
                    let want: f64 = (0..d)
                        .map(|t| (q.get(qi, t) as f64 - x.get(id as usize, t) as f64).powi(2))
                        .sum();
                    let have = got.row_distances(qi)[j] as f64;
                    assert!((have - want).abs() <= 1e-4 * want.max(1.0), "{label}");
                }
            }
            all_codes.push((qz, codes));
        }
        // Codes of another kind are refused.
        let (sq, sq_codes) = &all_codes[0];
        let (bq, bq_codes) = &all_codes[2];
        for (qz, other) in [(sq, bq_codes), (bq, sq_codes)] {
            let e = qz.decode(ctx, other).unwrap_err();
            assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
            let e = qz.search(ctx, &q, other, 3, &SearchOptions::default());
            assert!(e.is_err());
        }
    });
}

#[test]
fn binary_codes_decode_to_the_side_of_the_threshold() {
    for_each_backend("binary decode", |ctx| {
        let x = Matrix::new(vec![0.5, -1.0, 2.0, 0.0, 0.1, -0.2, 3.0, 0.0], 4).unwrap();
        let bq = BinaryQuantizer::with_thresholds(vec![0.0, 0.0, 1.0, -0.5]).unwrap();
        let back = bq
            .decode(ctx, &bq.encode(ctx, &x).unwrap())
            .unwrap()
            .into_host()
            .unwrap();
        assert_eq!(back.as_slice(), &[1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    });
}

#[test]
fn each_codec_saves_and_loads_its_own_kind_only() {
    let ctx = Context::cpu();
    let x = gaussian(&mut rng(seed()), 64, 6);
    let dir = std::env::temp_dir().join(format!("va-codec-{}", seed()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ps, pb) = (dir.join("s.vaq"), dir.join("b.vaq"));
    let sq = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::default()).unwrap();
    sq.save(&ps).unwrap();
    assert_eq!(ScalarQuantizer::load(&ps).unwrap(), sq);
    BinaryQuantizer::train(&ctx, &x, &BinaryOptions::default())
        .unwrap()
        .save(&pb)
        .unwrap();
    let e = ScalarQuantizer::load(&pb).unwrap_err();
    assert!(e.to_string().contains("binary"), "{e}");
    assert!(ProductQuantizer::load(&ps).is_err());
    assert!(matches!(
        Quantizer::load(&pb).unwrap(),
        Quantizer::Binary(_)
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn quantization_refuses_bad_input_with_typed_errors() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 100, 10);
    let e = ProductQuantizer::train(&ctx, &x, &PqOptions::new(3, 4)).unwrap_err();
    assert!(e.to_string().contains("not a multiple of m"), "{e}");
    for nbits in [3, 17] {
        let e = ProductQuantizer::train(&ctx, &x, &PqOptions::new(2, nbits)).unwrap_err();
        assert!(e.to_string().contains("nbits"), "{e}");
    }
    let e = ProductQuantizer::train(&ctx, &x, &PqOptions::new(2, 8)).unwrap_err();
    assert!(
        e.to_string().contains("fewer than the 256 centroids"),
        "{e}"
    );
    let mut bad = x.as_slice().to_vec();
    bad[57] = f32::NAN;
    let bad = Matrix::new(bad, 10).unwrap();
    let e = ProductQuantizer::train(&ctx, &bad, &PqOptions::new(2, 4)).unwrap_err();
    assert!(e.to_string().contains("row 5 column 7"), "{e}");
    let e = ScalarQuantizer::train(
        &ctx,
        &x,
        &ScalarOptions::int8()
            .with_scope(ScalarScope::PerVector)
            .with_clip(0.99),
    )
    .unwrap_err();
    assert!(e.to_string().contains("per-channel"), "{e}");
    let e = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int8().with_clip(1.5)).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { .. }));
    let sq = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int8()).unwrap();
    let codes = sq.encode(&ctx, &x).unwrap();
    let e = sq
        .search(
            &ctx,
            &x,
            &codes,
            3,
            &SearchOptions::default().with_metric(Metric::L1),
        )
        .unwrap_err();
    assert!(matches!(e, Error::UnsupportedMetric { .. }));
    let other = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int4()).unwrap();
    assert!(other.decode(&ctx, &codes).is_err());
    let e = sq.encode(&ctx, &gaussian(&mut r, 2, 11)).unwrap_err();
    assert!(matches!(e, Error::DimensionMismatch { .. }));
    let e = sq
        .search(
            &ctx,
            &x,
            &codes,
            5,
            &SearchOptions::default().with_rerank(&x, 3),
        )
        .unwrap_err();
    assert!(e.to_string().contains("at least k"), "{e}");
    let e = BinaryQuantizer::train(
        &ctx,
        &x,
        &BinaryOptions::default().with_threshold(BinaryThreshold::Given(vec![0.0; 3])),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DimensionMismatch { .. }));
    if let Some(g) = cuda() {
        // Codes of another device.
        assert!(matches!(
            sq.decode(&g, &codes).unwrap_err(),
            Error::DeviceMismatch { .. }
        ));
    }
}

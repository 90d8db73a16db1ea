//! `ProductQuantizer`: codes are the nearest centroids of each sub-space,
//! search by asymmetric distances (ADC) against an fp64 reference, search
//! over many codes exact on the codes and re-ranked, and training that
//! improves with more bits and iterations on both backends.

use crate::common::*;
use vector_accelerate::quantize::{Codec, PqOptions, ProductQuantizer, Quality, SearchOptions};
use vector_accelerate::{knn, Context, Metric};

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

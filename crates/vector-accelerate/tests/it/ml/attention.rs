//! `AttentionSimilarity` against fp64 of its per-head formula: scores and
//! top-k of projected queries and keys, temperature and the logistic
//! function, projected rows of many shapes (host and resident), every
//! option shown to change the output, and typed errors.

use super::{bias, check_values_and_ranking, inv, mismatch, project64, scale64};
use crate::common::*;
use vector_accelerate::ml::{AttentionSimilarity, Linear};
use vector_accelerate::{Order, Precision};

#[test]
fn attention_similarity_matches_fp64() {
    let _g = sixteen_bit_passes();
    let s = seed();
    for_each_backend("attention_similarity_matches_fp64", |ctx| {
        let mut r = rng(s);
        for (d_model, heads, head_dim, nq, nk) in [
            (1, 1, 1, 1, 1),
            (5, 1, 3, 2, 7),
            (37, 3, 4, 5, 33),
            (96, 12, 8, 9, 130),
        ] {
            let width = heads * head_dim;
            let (wq, wk) = (
                gaussian(&mut r, width, d_model),
                gaussian(&mut r, width, d_model),
            );
            let (bq, bk) = (bias(&mut r, width), bias(&mut r, width));
            let (q, k) = (gaussian(&mut r, nq, d_model), gaussian(&mut r, nk, d_model));
            let (pq, pk) = (project64(&q, &wq, Some(&bq)), project64(&k, &wk, Some(&bk)));
            let (sq, sk) = (scale64(&q, &wq, Some(&bq)), scale64(&k, &wk, Some(&bk)));
            for (temp, sigmoid) in [(None, false), (Some(0.37f32), true)] {
                let mut att = AttentionSimilarity::new(
                    Linear::new(ctx, &wq, Some(&bq)).unwrap(),
                    Linear::new(ctx, &wk, Some(&bk)).unwrap(),
                    heads,
                )
                .unwrap()
                .with_sigmoid(sigmoid);
                if let Some(t) = temp {
                    att = att.with_temperature(t).unwrap();
                }
                let t = temp.map_or((head_dim as f64).sqrt(), |t| t as f64);
                assert_eq!(att.temperature() as f64, t as f32 as f64);
                let label = format!(
                    "{} d {d_model} {heads}x{head_dim} T {t} sigmoid {sigmoid}",
                    ctx.device()
                );
                let scores = att.scores(ctx, &q, &k).unwrap().into_host().unwrap();
                assert_eq!((scores.rows(), scores.dim()), (nq, nk));
                let top = att
                    .top_k(ctx, &q, &att.project_keys(ctx, &k).unwrap(), 4)
                    .unwrap();
                for i in 0..nq {
                    // The per-head formula, head by head.
                    let refs: Vec<f64> = (0..nk)
                        .map(|j| {
                            let per_head: f64 = (0..heads)
                                .map(|h| {
                                    (0..head_dim)
                                        .map(|e| pq[i][h * head_dim + e] * pk[j][h * head_dim + e])
                                        .sum::<f64>()
                                        / t
                                })
                                .sum();
                            let s = per_head / heads as f64;
                            if sigmoid {
                                1.0 / (1.0 + (-s).exp())
                            } else {
                                s
                            }
                        })
                        .collect();
                    let err = |j: usize| {
                        let e: f64 = (0..width)
                            .map(|c| sq[i][c] * pk[j][c].abs() + pq[i][c].abs() * sk[j][c])
                            .sum::<f64>()
                            * 4e-7
                            * (d_model as f64 + width as f64 + 8.0)
                            / (heads as f64 * t);
                        e + 1e-6 * refs[j].abs() + 1e-30
                    };
                    check_values_and_ranking(&label, i, &scores, &top, &refs, Order::Largest, err);
                }
            }
        }
        // Options change the output; typed errors.
        let (w, x) = (gaussian(&mut r, 8, 10), gaussian(&mut r, 4, 10));
        let make = |heads: usize| {
            AttentionSimilarity::new(
                Linear::new(ctx, &w, None).unwrap(),
                Linear::new(ctx, &w, None).unwrap(),
                heads,
            )
        };
        let base = make(2)
            .unwrap()
            .scores(ctx, &x, &x)
            .unwrap()
            .into_host()
            .unwrap();
        assert_ne!(
            base,
            make(4)
                .unwrap()
                .scores(ctx, &x, &x)
                .unwrap()
                .into_host()
                .unwrap()
        );
        assert_ne!(
            base,
            make(2)
                .unwrap()
                .with_temperature(1.0)
                .unwrap()
                .scores(ctx, &x, &x)
                .unwrap()
                .into_host()
                .unwrap()
        );
        assert_ne!(
            base,
            make(2)
                .unwrap()
                .with_sigmoid(true)
                .scores(ctx, &x, &x)
                .unwrap()
                .into_host()
                .unwrap()
        );
        assert_ne!(
            base,
            make(2)
                .unwrap()
                .with_precision(Precision::Bf16)
                .scores(ctx, &x, &x)
                .unwrap()
                .into_host()
                .unwrap()
        );
        inv(make(3), "heads");
        inv(make(0), "heads");
        inv(make(2).unwrap().with_temperature(0.0), "temperature");
        inv(make(2).unwrap().with_temperature(f32::NAN), "temperature");
        mismatch(AttentionSimilarity::new(
            Linear::new(ctx, &w, None).unwrap(),
            Linear::new(ctx, &gaussian(&mut r, 6, 10), None).unwrap(),
            2,
        ));
        let att = make(2).unwrap();
        mismatch(att.scores_projected(ctx, &x, &x)); // unprojected (10 != 8)
        mismatch(att.top_k(ctx, &x, &x, 2));
        mismatch(att.scores(ctx, &gaussian(&mut r, 2, 9), &x));
    });
}

/// Scores of projected rows on the shapes of the CUDA product's tiles
/// (128 x 128, stages of 32 values): rows and keys below, at and past a
/// tile, primes, widths not a multiple of 4; host and resident inputs,
/// with and without the logistic function.
#[test]
fn attention_scores_tile_shapes_match_fp64() {
    let s = seed();
    for_each_backend("attention_scores_tile_shapes_match_fp64", |ctx| {
        let mut r = rng(s);
        for (nq, nk, heads, head_dim) in [
            (1, 1, 1, 1),
            (2, 3, 1, 3),
            (3, 130, 1, 37),
            (127, 129, 1, 64),
            (128, 128, 2, 50),
            (129, 257, 3, 11),
            (131, 127, 12, 64),
        ] {
            let width = heads * head_dim;
            let w = gaussian(&mut r, width, 4);
            let q = gaussian(&mut r, nq, width);
            let k = gaussian(&mut r, nk, width);
            let (qd, kd) = (ctx.upload(&q).unwrap(), ctx.upload(&k).unwrap());
            let alpha = 1.0 / (heads as f64 * (head_dim as f32).sqrt() as f64);
            for sigmoid in [false, true] {
                let att = AttentionSimilarity::new(
                    Linear::new(ctx, &w, None).unwrap(),
                    Linear::new(ctx, &w, None).unwrap(),
                    heads,
                )
                .unwrap()
                .with_sigmoid(sigmoid);
                let host = att
                    .scores_projected(ctx, &q, &k)
                    .unwrap()
                    .into_host()
                    .unwrap();
                let res = att
                    .scores_projected(ctx, &qd, &kd)
                    .unwrap()
                    .into_host()
                    .unwrap();
                let label = format!(
                    "{} {nq}x{nk} {heads}x{head_dim} sigmoid {sigmoid}",
                    ctx.device()
                );
                for (what, got) in [("host", &host), ("resident", &res)] {
                    assert_eq!((got.rows(), got.dim()), (nq, nk), "{label} {what}");
                    for i in 0..nq {
                        for j in 0..nk {
                            let (dot, mag) = q.row(i).iter().zip(k.row(j)).fold(
                                (0.0f64, 0.0f64),
                                |(d, m), (&a, &b)| {
                                    (d + a as f64 * b as f64, m + (a as f64 * b as f64).abs())
                                },
                            );
                            let x = dot * alpha;
                            let want = if sigmoid { 1.0 / (1.0 + (-x).exp()) } else { x };
                            let tol = 4e-7 * (width as f64 + 8.0) * mag * alpha + 1e-6 * want.abs();
                            let g = got.get(i, j) as f64;
                            assert!(
                                (g - want).abs() <= tol + 1e-30,
                                "{label} {what}: ({i},{j}) {g} vs fp64 {want}"
                            );
                        }
                    }
                }
            }
        }
    });
}

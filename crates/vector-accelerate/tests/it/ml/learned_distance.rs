//! `LearnedDistance` against fp64 of its formula (a `Linear` projection,
//! then L2, Euclidean or cosine between projections): projections,
//! distances and k-NN on both backends, every option (metric, bias,
//! precision) shown to change the output, and typed errors.

use super::{bias, check_values_and_ranking, dist64, inv, mismatch, norm2, project64, scale64};
use crate::common::*;
use vector_accelerate::ml::{LearnedDistance, Linear};
use vector_accelerate::{Error, Matrix, Metric, Order, Precision};

#[test]
fn learned_distance_matches_fp64() {
    let _g = sixteen_bit_passes();
    let s = seed();
    for_each_backend("learned_distance_matches_fp64", |ctx| {
        let mut r = rng(s);
        for (d_in, d_out, n, nq) in [
            (1, 1, 1, 1),
            (3, 2, 2, 3),
            (37, 5, 33, 4),
            (130, 33, 257, 7),
        ] {
            let w = gaussian(&mut r, d_out, d_in);
            let b = bias(&mut r, d_out);
            let base = gaussian(&mut r, n, d_in);
            let q = gaussian(&mut r, nq, d_in);
            let (pq, px) = (project64(&q, &w, Some(&b)), project64(&base, &w, Some(&b)));
            let (sq, sx) = (scale64(&q, &w, Some(&b)), scale64(&base, &w, Some(&b)));
            let rel = 4e-7 * (d_in as f64 + 4.0);
            for metric in [Metric::L2, Metric::Euclidean, Metric::Cosine] {
                let ld =
                    LearnedDistance::new(Linear::new(ctx, &w, Some(&b)).unwrap(), metric).unwrap();
                let label = format!("{} {d_in}->{d_out} n {n} {metric}", ctx.device());
                // Projections against fp64.
                let p = ld
                    .project(ctx, &base)
                    .unwrap()
                    .to_host()
                    .unwrap()
                    .into_vec();
                for i in 0..n {
                    for o in 0..d_out {
                        let (g, e) = (p[i * d_out + o] as f64, px[i][o]);
                        assert!(
                            (g - e).abs() <= rel * sx[i][o] + 1e-30,
                            "{label}: projection ({i},{o}) {g} vs {e}"
                        );
                    }
                }
                // Distances and k-NN between projections.
                let d = ld.distances(ctx, &q, &base).unwrap();
                assert_eq!((d.rows(), d.dim()), (nq, n));
                let k = n.min(5) + 1; // one more than there are rows when n < 5
                let nn = ld
                    .knn(ctx, &q, &ld.project(ctx, &base).unwrap(), k)
                    .unwrap();
                for i in 0..nq {
                    let refs: Vec<f64> = px.iter().map(|x| dist64(&pq[i], x, metric)).collect();
                    let t = |j: usize| -> f64 {
                        let e = rel * (norm2(&sq[i]) + norm2(&sx[j])).sqrt() * 4.0;
                        match metric {
                            Metric::L2 => {
                                e * (norm2(&pq[i]).sqrt() + norm2(&px[j]).sqrt() + 1.0) * 2.0
                            }
                            Metric::Euclidean => e * 2.0 + 1e-6,
                            _ => {
                                e / (norm2(&pq[i]).sqrt() * norm2(&px[j]).sqrt()).max(1e-3) * 4.0
                                    + 1e-5
                            }
                        }
                    };
                    check_values_and_ranking(&label, i, &d, &nn, &refs, Order::Smallest, t);
                }
            }
        }
        // Options change the output: metric, bias, precision.
        let w = gaussian(&mut r, 8, 40);
        let (x, q) = (gaussian(&mut r, 30, 40), gaussian(&mut r, 3, 40));
        let with = |m: Metric, b: Option<&[f32]>, p: Precision| {
            LearnedDistance::new(Linear::new(ctx, &w, b).unwrap(), m)
                .unwrap()
                .with_precision(p)
                .distances(ctx, &q, &x)
                .unwrap()
        };
        let plain = with(Metric::L2, None, Precision::Exact);
        assert_ne!(plain, with(Metric::Cosine, None, Precision::Exact));
        assert_ne!(plain, with(Metric::L2, Some(&[3.0; 8]), Precision::Exact));
        assert_ne!(plain, with(Metric::L2, None, Precision::Bf16));
        // Typed errors.
        let lin = || Linear::new(ctx, &w, None).unwrap();
        inv(LearnedDistance::new(lin(), Metric::L1), "metric");
        let ld = LearnedDistance::new(lin(), Metric::L2).unwrap();
        mismatch(ld.distances(ctx, &gaussian(&mut r, 2, 39), &x));
        mismatch(ld.knn(ctx, &q, &x, 3)); // the base is not projected (40 != 8)
        let pb = ld.project(ctx, &x).unwrap();
        assert!(matches!(
            ld.knn(ctx, &q, &pb, 0),
            Err(Error::InvalidK { k: 0 })
        ));
        mismatch(Linear::new(ctx, &w, Some(&[0.0; 7])));
        inv(
            Linear::new(ctx, &Matrix::new(vec![f32::NAN, 1.0], 2).unwrap(), None),
            "weight",
        );
    });
}

//! Distances on every metric and shape, against fp64, on every backend.

use crate::common::*;
use vector_accelerate::distance::{distance, distance_bits, distances_to, pairwise};
use vector_accelerate::{BinaryMatrix, Distance, Matrix, Metric};

fn f32_metrics(dim: usize, r: &mut rand::rngs::StdRng) -> Vec<Distance> {
    use rand::Rng;
    let w: Vec<f32> = (0..dim).map(|_| r.random::<f32>() * 2.0).collect();
    vec![
        Metric::L2.into(),
        Metric::Euclidean.into(),
        Metric::Cosine.into(),
        Metric::CosineSimilarity.into(),
        Metric::InnerProduct.into(),
        Metric::AbsInnerProduct.into(),
        Metric::L1.into(),
        Distance::new(Metric::L1).with_weights(w.clone()),
        Metric::Linf.into(),
        Distance::new(Metric::Linf).with_weights(w),
        Metric::Minkowski(3.0).into(),
        Metric::Minkowski(0.5).into(),
        Metric::Minkowski(30.0).into(),
        Metric::Hamming.into(),
        Distance::new(Metric::HammingNormalized).with_threshold(0.3),
    ]
}

const SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (2, 3),
    (3, 31),
    (33, 32),
    (31, 33),
    (7, 127),
    (5, 1031),
];

#[test]
fn pairwise_matches_fp64_on_every_metric_and_shape() {
    let s = seed();
    for_each_backend("pairwise_matches_fp64_on_every_metric_and_shape", |ctx| {
        let mut r = rng(s);
        for &dim in DIMS {
            for &(nq, nb) in SHAPES {
                let q = gaussian(&mut r, nq, dim);
                let x = gaussian(&mut r, nb, dim);
                for d in f32_metrics(dim, &mut r) {
                    let m = d.metric;
                    let got = pairwise(ctx, &q, &x, d.clone()).unwrap();
                    assert_eq!((got.rows(), got.dim()), (nq, nb));
                    for i in 0..nq {
                        for j in 0..nb {
                            let e = ref_f32(
                                q.row(i),
                                x.row(j),
                                m,
                                d.weights.as_deref(),
                                d.binarize_threshold,
                            );
                            let t = tol(m, dim, sqn(q.row(i)), sqn(x.row(j)), e);
                            let g = got.get(i, j) as f64;
                            assert!(
                                (g - e).abs() <= t,
                                "seed {s} {} {m} nq {nq} nb {nb} dim {dim} ({i},{j}): got {g} fp64 {e} tol {t}",
                                ctx.device()
                            );
                        }
                    }
                }
                // Weighted Jaccard needs non-negative input.
                let (qa, xa) = (nonneg(&mut r, nq, dim), nonneg(&mut r, nb, dim));
                let got = pairwise(ctx, &qa, &xa, Metric::Jaccard).unwrap();
                for i in 0..nq {
                    for j in 0..nb {
                        let e = ref_f32(qa.row(i), xa.row(j), Metric::Jaccard, None, 0.0);
                        assert!(
                            (got.get(i, j) as f64 - e).abs() <= 1e-5,
                            "seed {s} jaccard {i},{j}"
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn binary_pairwise_matches_exact_counts() {
    let s = seed();
    for_each_backend("binary_pairwise_matches_exact_counts", |ctx| {
        let mut r = rng(s);
        for &nbits in &[1usize, 3, 17, 64, 65, 128, 769] {
            for &(nq, nb) in SHAPES {
                let q = bits(&mut r, nq, nbits);
                let x = bits(&mut r, nb, nbits);
                for m in [Metric::Hamming, Metric::HammingNormalized, Metric::Jaccard] {
                    let got = pairwise(ctx, &q, &x, m).unwrap();
                    for i in 0..nq {
                        for j in 0..nb {
                            let e = ref_bits(q.row(i), x.row(j), nbits, m);
                            assert!(
                                (got.get(i, j) as f64 - e).abs() <= 1e-6,
                                "seed {s} {m} bits {nbits} ({i},{j}): {} vs {e}",
                                got.get(i, j)
                            );
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn single_pair_and_one_vs_many_agree_with_the_matrix() {
    let s = seed();
    for_each_backend("single_pair_and_one_vs_many_agree_with_the_matrix", |ctx| {
        let mut r = rng(s);
        let q = gaussian(&mut r, 1, 17);
        let x = gaussian(&mut r, 40, 17);
        for m in [
            Metric::L2,
            Metric::Cosine,
            Metric::L1,
            Metric::Minkowski(1.5),
        ] {
            let row = distances_to(ctx, q.row(0), &x, m).unwrap();
            for (j, v) in row.iter().enumerate() {
                let p = distance(q.row(0), x.row(j), m).unwrap();
                let e = ref_f32(q.row(0), x.row(j), m, None, 0.0);
                let t = tol(m, 17, sqn(q.row(0)), sqn(x.row(j)), e);
                assert!(
                    (*v as f64 - e).abs() <= t && (p as f64 - e).abs() <= t,
                    "seed {s} {m} {j}"
                );
            }
        }
    });
    let a = [0b1011u64];
    let b = [0b0110u64];
    assert_eq!(distance_bits(&a, &b, 4, Metric::Hamming).unwrap(), 3.0);
    assert_eq!(
        distance_bits(&a, &b, 4, Metric::HammingNormalized).unwrap(),
        0.75
    );
    assert_eq!(
        distance_bits(&a, &b, 4, Metric::Jaccard).unwrap(),
        1.0 - 1.0 / 4.0
    );
}

#[test]
fn documented_edge_semantics() {
    for_each_backend("documented_edge_semantics", |ctx| {
        let zero = Matrix::new(vec![0.0; 3], 3).unwrap();
        let v = Matrix::new(vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0], 3).unwrap();
        // Cosine with a zero vector: cos = 0, distance 1.
        let c = pairwise(ctx, &zero, &v, Metric::Cosine).unwrap();
        assert_eq!(c.as_slice(), &[1.0, 1.0]);
        let c = pairwise(ctx, &zero, &v, Metric::CosineSimilarity).unwrap();
        assert_eq!(c.as_slice(), &[0.0, 0.0]);
        // Two empty sets: Jaccard distance 0 (binary and weighted).
        let e = BinaryMatrix::new(vec![0u64; 2], 70).unwrap();
        assert_eq!(
            pairwise(ctx, &e, &e, Metric::Jaccard).unwrap().as_slice(),
            &[0.0]
        );
        assert_eq!(
            pairwise(ctx, &zero, &zero, Metric::Jaccard)
                .unwrap()
                .as_slice(),
            &[0.0]
        );
        // L2 of identical rows is never negative.
        let mut r = rng(seed());
        let x = gaussian(&mut r, 50, 33);
        let d = pairwise(ctx, &x, &x, Metric::L2).unwrap();
        assert!(d.as_slice().iter().all(|v| *v >= 0.0));
        let d = pairwise(ctx, &x, &x, Metric::Cosine).unwrap();
        assert!(d.as_slice().iter().all(|v| (0.0..=2.0).contains(v)));
        // Minkowski is stable for large p and large/small magnitudes.
        let big = Matrix::new(vec![3e30, -2e30, 1e30], 3).unwrap();
        let small = Matrix::new(vec![3e-30, -2e-30, 1e-30], 3).unwrap();
        let o = Matrix::new(vec![0.0; 3], 3).unwrap();
        for (m, p) in [(&big, 30.0f32), (&big, 0.5), (&small, 30.0), (&small, 0.5)] {
            let got = pairwise(ctx, m, &o, Metric::Minkowski(p))
                .unwrap()
                .get(0, 0) as f64;
            let scale = m.row(0)[0].abs() as f64 / 3.0;
            let e = scale * (3f64.powf(p as f64) + 2f64.powf(p as f64) + 1.0).powf(1.0 / p as f64);
            assert!(
                got.is_finite() && ((got - e) / e).abs() < 1e-4,
                "p {p}: {got} vs {e}"
            );
        }
        // NaN propagates into distances.
        let nanq = Matrix::new(vec![f32::NAN, 0.0, 1.0], 3).unwrap();
        for m in [
            Metric::L2,
            Metric::Cosine,
            Metric::InnerProduct,
            Metric::L1,
            Metric::Linf,
            Metric::Minkowski(3.0),
            Metric::Jaccard,
        ] {
            let d = pairwise(ctx, &nanq, &v, m).unwrap();
            assert!(
                d.as_slice().iter().all(|x| x.is_nan()),
                "{m}: {:?}",
                d.as_slice()
            );
        }
    });
}

#[test]
fn every_option_changes_the_output() {
    for_each_backend("every_option_changes_the_output", |ctx| {
        let q = Matrix::new(vec![1.0, -2.0, 0.5], 3).unwrap();
        let x = Matrix::new(vec![-3.0, 1.0, 2.0], 3).unwrap();
        let one = |d: Distance| pairwise(ctx, &q, &x, d).unwrap().get(0, 0);
        assert_ne!(
            one(Metric::Cosine.into()),
            one(Distance::new(Metric::Cosine).normalized_inputs())
        );
        assert_ne!(
            one(Metric::L1.into()),
            one(Distance::new(Metric::L1).with_weights(vec![1.0, 0.0, 1.0]))
        );
        assert_ne!(
            one(Metric::Linf.into()),
            one(Distance::new(Metric::Linf).with_weights(vec![0.1, 1.0, 1.0]))
        );
        assert_ne!(
            one(Metric::Hamming.into()),
            one(Distance::new(Metric::Hamming).with_threshold(0.75))
        );
        assert_ne!(
            one(Metric::InnerProduct.into()),
            one(Metric::AbsInnerProduct.into())
        );
        assert_ne!(one(Metric::L2.into()), one(Metric::Euclidean.into()));
        assert_ne!(
            one(Metric::Cosine.into()),
            one(Metric::CosineSimilarity.into())
        );
        assert_ne!(
            one(Metric::Hamming.into()),
            one(Metric::HammingNormalized.into())
        );
    });
}

//! PCA against an fp64 reference (covariance and a Jacobi eigen solver in
//! this file) on data with a known anisotropic covariance; transforms,
//! encoder and decoder maps, saving and loading, errors.

use super::TempFile;
use crate::common::*;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;
use vector_accelerate::linalg::Activation;
use vector_accelerate::ml::{Pca, WeightStore};
use vector_accelerate::{BinaryMatrix, Context, Error, Matrix, Precision};

/// Standard deviations along the principal axes of the test data.
const SCALES: [f64; 8] = [6.0, 4.0, 2.5, 1.6, 1.0, 0.6, 0.35, 0.2];

/// `rows` points `mu + (z * SCALES) H` with `z` standard normal and `H` a
/// fixed Householder reflection (orthogonal), so the covariance has
/// eigenvalues `SCALES^2` along the rows of `H`; the mean is far from 0.
fn anisotropic(r: &mut StdRng, rows: usize) -> Matrix {
    let d = SCALES.len();
    let v = [1.0, -2.0, 3.0, 0.5, -1.0, 2.0, 0.25, 1.0];
    let vv: f64 = v.iter().map(|x| x * x).sum();
    let h = |i: usize, j: usize| (i == j) as u8 as f64 - 2.0 * v[i] * v[j] / vv;
    let mu: Vec<f64> = (0..d).map(|j| 10.0 - 3.0 * j as f64).collect();
    let mut out = Vec::with_capacity(rows * d);
    for _ in 0..rows {
        let z: Vec<f64> = SCALES
            .iter()
            .map(|s| s * r.sample::<f64, _>(StandardNormal))
            .collect();
        for (j, m) in mu.iter().enumerate() {
            out.push((m + (0..d).map(|i| z[i] * h(i, j)).sum::<f64>()) as f32);
        }
    }
    Matrix::new(out, d).unwrap()
}

/// fp64 column means and covariance (`ddof = 1`) of the f32 data.
fn covariance64(x: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.rows(), x.dim());
    let mut mean = vec![0.0; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(x.row(i)) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut c = vec![0.0; d * d];
    for i in 0..n {
        let r: Vec<f64> = x
            .row(i)
            .iter()
            .zip(&mean)
            .map(|(&v, m)| v as f64 - m)
            .collect();
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] += r[a] * r[b];
            }
        }
    }
    c.iter_mut().for_each(|v| *v /= (n - 1) as f64);
    (mean, c)
}

/// Eigenvalues (decreasing) and unit eigenvectors of a symmetric matrix by
/// cyclic Jacobi rotations in fp64.
fn jacobi_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut a = a.to_vec();
    let mut v: Vec<f64> = (0..d * d)
        .map(|i| (i % (d + 1) == 0) as u8 as f64)
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..d * d)
            .filter(|i| i / d != i % d)
            .map(|i| a[i] * a[i])
            .sum();
        let norm: f64 = a.iter().map(|x| x * x).sum();
        if off <= 1e-30 * norm {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| a[j * d + j].total_cmp(&a[i * d + i]));
    let values = order.iter().map(|&i| a[i * d + i]).collect();
    let vectors = order
        .iter()
        .map(|&j| (0..d).map(|k| v[k * d + j]).collect())
        .collect();
    (values, vectors)
}

fn dot(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(&x, y)| x as f64 * y).sum()
}

fn assert_close(label: &str, got: &Matrix, want: &Matrix, tol: f64) {
    assert_eq!(
        (got.rows(), got.dim()),
        (want.rows(), want.dim()),
        "{label}: shape"
    );
    for (i, (a, b)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
        assert!(
            ((a - b) as f64).abs() <= tol,
            "{label}: element {i}: {a} vs {b} (tol {tol})"
        );
    }
}

#[test]
fn pca_matches_an_fp64_eigen_decomposition() {
    for_each_backend("pca_matches_an_fp64_eigen_decomposition", |ctx| {
        let s = seed();
        let x = anisotropic(&mut rng(s), 3000);
        let d = x.dim();
        let (mean, cov) = covariance64(&x);
        let (values, vectors) = jacobi_eigen(&cov, d);
        let total: f64 = values.iter().sum();
        // The sample's spectrum is near the construction's.
        for (v, sc) in values.iter().zip(SCALES) {
            assert!(
                (v / (sc * sc) - 1.0).abs() < 0.15,
                "seed {s}: eigenvalue {v} vs {}",
                sc * sc
            );
        }
        for k in [1, 3, d] {
            let label = format!("seed {s}, {k} components");
            let pca = Pca::train(ctx, &x, k).unwrap();
            assert_eq!((pca.n_components(), pca.dim()), (k, d));
            for (j, (&m, &r)) in pca.mean().iter().zip(&mean).enumerate() {
                assert!(
                    (m as f64 - r).abs() <= 1e-5 * (1.0 + r.abs()),
                    "{label}: mean {j}: {m} vs {r}"
                );
            }
            let ev = pca.explained_variance();
            let ratio = pca.explained_variance_ratio();
            assert_eq!((ev.len(), ratio.len()), (k, k));
            for i in 0..k {
                let c = pca.components().row(i);
                let tol = 1e-4 * values[0];
                assert!(
                    (ev[i] as f64 - values[i]).abs() <= tol,
                    "{label}: eigenvalue {i}: {} vs {}",
                    ev[i],
                    values[i]
                );
                assert!(
                    (ratio[i] as f64 - values[i] / total).abs() <= 1e-4,
                    "{label}: ratio {i}"
                );
                let norm: f64 = c.iter().map(|&v| v as f64 * v as f64).sum();
                assert!(
                    (norm - 1.0).abs() < 1e-5,
                    "{label}: |component {i}|^2 = {norm}"
                );
                let dp = dot(c, &vectors[i]);
                assert!(
                    dp.abs() > 0.999,
                    "{label}: component {i}: |dot| = {}",
                    dp.abs()
                );
                // The documented sign rule: the largest-magnitude entry is positive.
                let big = c
                    .iter()
                    .copied()
                    .fold(0f32, |a, v| if v.abs() > a.abs() { v } else { a });
                assert!(
                    big > 0.0,
                    "{label}: component {i} has its largest entry {big} negative"
                );
            }
            for i in 1..k {
                assert!(ev[i] <= ev[i - 1], "{label}: variances not decreasing");
            }
            let sum: f32 = ratio.iter().sum();
            assert!(sum <= 1.0 + 1e-6, "{label}: ratios sum to {sum}");
            if k == d {
                assert!((sum - 1.0).abs() <= 1e-5, "{label}: ratios sum to {sum}");
            }
        }
    });
}

#[test]
fn pca_transforms_invert_and_match_the_linear_maps() {
    for_each_backend("pca_transforms_invert_and_match_the_linear_maps", |ctx| {
        let s = seed();
        let x = anisotropic(&mut rng(s), 1500);
        let d = x.dim();
        let probe = anisotropic(&mut rng(s ^ 1), 40);
        // Entries are up to about 10 + 4 * 6 in magnitude.
        let scale = 40.0;
        for k in [d, 2] {
            let label = format!("seed {s}, {k} components");
            let pca = Pca::train(ctx, &x, k).unwrap();
            let z = pca.transform(ctx, &probe).unwrap().into_host().unwrap();
            assert_eq!((z.rows(), z.dim()), (40, k));
            let back = pca.inverse_transform(ctx, &z).unwrap().into_host().unwrap();
            if k == d {
                assert_close(
                    &format!("{label}: inverse(transform(x))"),
                    &back,
                    &probe,
                    2e-5 * scale,
                );
            }
            // The maps give the same numbers.
            let enc = pca.encoder(ctx).unwrap();
            assert_eq!((enc.d_in(), enc.d_out()), (d, k));
            let ze = enc
                .apply(ctx, &probe, Activation::None, Precision::Exact)
                .unwrap()
                .into_host()
                .unwrap();
            assert_close(
                &format!("{label}: encoder"),
                &ze,
                &z,
                1e-5 * scale * d as f64,
            );
            let dec = pca.decoder(ctx).unwrap();
            assert_eq!((dec.d_in(), dec.d_out()), (k, d));
            let xd = dec
                .apply(ctx, &z, Activation::None, Precision::Exact)
                .unwrap()
                .into_host()
                .unwrap();
            assert_close(&format!("{label}: decoder"), &xd, &back, 1e-5 * scale);
            // On the fitted data the coordinates have the explained
            // variances, and dropping components loses exactly the rest.
            let zf = pca.transform(ctx, &x).unwrap().into_host().unwrap();
            let n = x.rows() as f64;
            for c in 0..k {
                let var: f64 = (0..x.rows())
                    .map(|r| (zf.get(r, c) as f64).powi(2))
                    .sum::<f64>()
                    / (n - 1.0);
                let ev = pca.explained_variance()[c] as f64;
                assert!(
                    (var - ev).abs() <= 1e-4 * ev.max(1.0),
                    "{label}: variance of coordinate {c}: {var} vs {ev}"
                );
            }
            let rec = pca
                .inverse_transform(ctx, &zf)
                .unwrap()
                .into_host()
                .unwrap();
            let lost: f64 = rec
                .as_slice()
                .iter()
                .zip(x.as_slice())
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            let (_, cov) = covariance64(&x);
            let (values, _) = jacobi_eigen(&cov, d);
            let rest: f64 = values[k..].iter().sum();
            assert!(
                (lost - rest).abs() <= 1e-3 * values[0],
                "{label}: reconstruction loses {lost}, expected {rest}"
            );
        }
        // Transforms check their widths.
        let pca = Pca::train(ctx, &x, 3).unwrap();
        assert!(matches!(
            pca.transform(ctx, &Matrix::new(vec![0.0; 7], 7).unwrap()),
            Err(Error::DimensionMismatch {
                expected: 8,
                got: 7,
                ..
            })
        ));
        assert!(matches!(
            pca.inverse_transform(ctx, &x),
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 8,
                ..
            })
        ));
    });
}

#[test]
fn pca_saves_and_loads_through_safetensors() {
    let ctx = Context::cpu();
    let s = seed();
    let x = anisotropic(&mut rng(s), 500);
    let pca = Pca::train(&ctx, &x, 5).unwrap();
    let mut st = WeightStore::new();
    pca.save(&mut st, "pca").unwrap();
    assert_eq!(
        st.names(),
        [
            "pca.components",
            "pca.explained_variance",
            "pca.explained_variance_ratio",
            "pca.mean"
        ]
    );
    assert_eq!(st.get("pca.components").unwrap().shape(), &[5, 8]);
    let f = TempFile::new("pca");
    st.save_safetensors(&f.0).unwrap();
    let mut loaded = WeightStore::new();
    loaded.load_safetensors(&f.0).unwrap();
    let back = Pca::from_store(&loaded, "pca").unwrap();
    assert_eq!(back, pca, "seed {s}");
    assert_eq!(
        back.transform(&ctx, &x).unwrap().into_host().unwrap(),
        pca.transform(&ctx, &x).unwrap().into_host().unwrap()
    );

    // Missing and misshapen parts are typed errors.
    assert!(
        matches!(Pca::from_store(&loaded, "other"), Err(Error::MissingTensor { name, .. }) if name == "other.components")
    );
    let mut part = WeightStore::new();
    part.load_safetensors(&f.0).unwrap();
    part.remove("pca.mean").unwrap();
    assert!(
        matches!(Pca::from_store(&part, "pca"), Err(Error::MissingTensor { name, .. }) if name == "pca.mean")
    );
    part.insert_f32("pca.mean", &[7], vec![0.0; 7]).unwrap();
    let e = Pca::from_store(&part, "pca").unwrap_err();
    assert!(
        e.to_string().contains("'pca.mean'") && e.to_string().contains("expected [8], found [7]"),
        "{e}"
    );
    part.insert_f32("pca.components", &[40], vec![0.0; 40])
        .unwrap();
    assert!(matches!(
        Pca::from_store(&part, "pca"),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn pca_rejects_bad_input() {
    for_each_backend("pca_rejects_bad_input", |ctx| {
        let x = anisotropic(&mut rng(seed()), 10);
        for k in [0, 9] {
            match Pca::train(ctx, &x, k) {
                Err(
                    e @ Error::InvalidParameter {
                        name: "n_components",
                        ..
                    },
                ) => {
                    assert!(
                        e.to_string().contains(&k.to_string()) && e.to_string().contains('8'),
                        "{e}"
                    );
                }
                other => panic!("n_components {k}: {other:?}"),
            }
        }
        let one = Matrix::new(x.row(0).to_vec(), 8).unwrap();
        assert!(matches!(
            Pca::train(ctx, &one, 2),
            Err(Error::InvalidParameter { name: "rows", .. })
        ));
        let mut bad = x.clone();
        bad.as_mut_slice()[13] = f32::NAN;
        assert!(matches!(
            Pca::train(ctx, &bad, 2),
            Err(Error::NonFinite { count: 1, .. })
        ));
        bad.as_mut_slice()[13] = f32::INFINITY;
        assert!(matches!(
            Pca::train(ctx, &bad, 2),
            Err(Error::NonFinite { .. })
        ));
        let bits = BinaryMatrix::new(vec![0b1011, 0b0110], 4).unwrap();
        assert!(matches!(
            Pca::train(ctx, &bits, 1),
            Err(Error::InvalidParameter { .. })
        ));
        // Data without variance: zero variances, zero ratios, no NaN.
        let flat = Matrix::new(vec![3.0; 40], 4).unwrap();
        let p = Pca::train(ctx, &flat, 4).unwrap();
        assert!(p.explained_variance().iter().all(|&v| v == 0.0));
        assert!(p.explained_variance_ratio().iter().all(|&v| v == 0.0));
        assert_eq!(p.mean(), &[3.0; 4]);
    });
}

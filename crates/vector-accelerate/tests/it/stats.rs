//! Statistics: descriptive statistics against a two-pass fp64
//! computation and SciPy's figures, merged chunks against the whole,
//! quantiles against a sorted fp64 copy with NumPy's linear interpolation
//! (segments sorted whole up to 4096 values, radix-selected beyond: both
//! sides of that limit are covered, and more levels than one refinement
//! launch holds), covariance and correlation against fp64, CUDA against
//! the CPU (quantiles bit for bit).

#![allow(clippy::needless_range_loop)]

use rand::Rng;
use rand_distr::{Exp1, StandardNormal};

use crate::common::*;
use vector_accelerate::stats::{
    correlation, covariance, describe, median, quantiles, quartiles, Moments, StatsOptions,
};
use vector_accelerate::vector::Axis;
use vector_accelerate::{Context, Error, Matrix};

const AXES: [Axis; 3] = [Axis::All, Axis::PerRow, Axis::PerColumn];

/// The values of each segment along `axis`.
fn segments(x: &Matrix, axis: Axis) -> Vec<Vec<f32>> {
    let (rows, dim, d) = (x.rows(), x.dim(), x.as_slice());
    match axis {
        Axis::All => vec![d.to_vec()],
        Axis::PerRow => d.chunks(dim).map(|r| r.to_vec()).collect(),
        Axis::PerColumn => (0..dim)
            .map(|j| (0..rows).map(|i| d[i * dim + j]).collect())
            .collect(),
    }
}

/// Two-pass fp64 reference: (n, mean, M2, M3, M4, min, max).
fn moments_ref(v: &[f32]) -> (f64, f64, f64, f64, f64, f32, f32) {
    let f: Vec<f64> = v
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| x as f64)
        .collect();
    let n = f.len() as f64;
    let mean = f.iter().sum::<f64>() / n;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &x in &f {
        let d = x - mean;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    let mn = v
        .iter()
        .filter(|x| x.is_finite())
        .fold(f32::INFINITY, |a, &b| a.min(b));
    let mx = v
        .iter()
        .filter(|x| x.is_finite())
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    (n, mean, m2, m3, m4, mn, mx)
}

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= abs + rel * b.abs()
}

/// Checks one accumulator against the fp64 reference of its values.
fn check_moments(m: &Moments, v: &[f32], what: &str) {
    let (n, mean, m2, m3, m4, mn, mx) = moments_ref(v);
    assert_eq!(m.count() as f64, n, "{what}: count");
    assert_eq!(m.min(), Some(mn), "{what}: min");
    assert_eq!(m.max(), Some(mx), "{what}: max");
    let scale = mean.abs() + (m2 / n).sqrt();
    assert!(
        close(m.mean().unwrap(), mean, 1e-13, 1e-13 * scale),
        "{what}: mean {:?} vs {mean}",
        m.mean()
    );
    let (g2, g3, g4) = m.central_sums();
    let sd = (m2 / n).sqrt();
    assert!(
        close(g2, m2, 1e-9, 1e-12 * n * scale * scale),
        "{what}: M2 {g2} vs {m2}"
    );
    assert!(
        close(
            g3,
            m3,
            1e-7,
            1e-9 * n * sd.powi(3) + 1e-15 * n * scale.powi(3)
        ),
        "{what}: M3 {g3} vs {m3}"
    );
    assert!(
        close(
            g4,
            m4,
            1e-7,
            1e-9 * n * sd.powi(4) + 1e-15 * n * scale.powi(4)
        ),
        "{what}: M4 {g4} vs {m4}"
    );
    if n >= 2.0 {
        assert!(
            close(
                m.variance(1).unwrap(),
                m2 / (n - 1.0),
                1e-9,
                1e-12 * scale * scale
            ),
            "{what}: var"
        );
    }
}

fn data(r: &mut rand::rngs::StdRng, rows: usize, dim: usize, kind: usize) -> Matrix {
    let v = (0..rows * dim)
        .map(|_| match kind {
            // Mean large against the spread.
            0 => 1.0e4 + r.sample::<f32, _>(StandardNormal),
            // Skewed.
            1 => r.sample::<f32, _>(Exp1) * 3.0 - 1.0,
            // Integers with ties.
            _ => r.random_range(-5i32..6) as f32,
        })
        .collect();
    Matrix::new(v, dim).unwrap()
}

const SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (2, 1),
    (1, 3),
    (3, 2),
    (17, 31),
    (8, 32),
    (65, 33),
    (255, 4),
    (257, 3),
    (1031, 17),
    (5, 4099),
    (4099, 3),
];

#[test]
fn describe_matches_fp64_on_every_axis() {
    let s = seed();
    for_each_backend("describe_matches_fp64_on_every_axis", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES {
            for kind in 0..3 {
                let x = data(&mut r, rows, dim, kind);
                for axis in AXES {
                    let got = describe(ctx, &x, axis, &StatsOptions::default()).unwrap();
                    let segs = segments(&x, axis);
                    assert_eq!(got.len(), segs.len());
                    for (i, (m, v)) in got.iter().zip(&segs).enumerate() {
                        check_moments(
                            m,
                            v,
                            &format!("seed {s} {rows}x{dim} kind {kind} {axis:?} #{i}"),
                        );
                    }
                }
            }
        }
        // A million values through the whole-array path.
        let x = data(&mut r, 1 << 20, 1, 0);
        let m = describe(ctx, &x, Axis::All, &StatsOptions::default()).unwrap();
        check_moments(&m[0], x.as_slice(), &format!("seed {s} 2^20"));
    });
}

#[test]
fn shape_statistics_equal_scipy() {
    // scipy.stats: skew, skew(bias=False), kurtosis, kurtosis(bias=False),
    // sem; numpy var (ddof 0 and 1) of these values.
    let v = [1.0f32, 2.0, 3.0, 4.0, 10.0, 2.5, -1.0];
    let x = Matrix::new(v.to_vec(), 1).unwrap();
    for_each_backend("shape_statistics_equal_scipy", |ctx| {
        let m = describe(ctx, &x, Axis::All, &StatsOptions::default()).unwrap()[0];
        let want = [
            (m.skewness(true).unwrap(), 1.1253302429298753),
            (m.skewness(false).unwrap(), 1.4585947009009694),
            (m.kurtosis(true).unwrap(), 0.5884931625367575),
            (m.kurtosis(false).unwrap(), 3.2123835900882174),
            (m.standard_error().unwrap(), 1.3021437060833636),
            (m.variance(0).unwrap(), 10.173469387755103),
            (m.variance(1).unwrap(), 11.86904761904762),
            (m.std(1).unwrap(), 11.86904761904762f64.sqrt()),
            (m.sum(), 21.5),
            (m.range().unwrap(), 11.0),
        ];
        for (i, (got, w)) in want.iter().enumerate() {
            assert!(close(*got, *w, 1e-12, 1e-14), "statistic {i}: {got} vs {w}");
        }
        // Options change the output.
        assert_ne!(m.skewness(true), m.skewness(false));
        assert_ne!(m.kurtosis(true), m.kurtosis(false));
        assert_ne!(m.variance(0), m.variance(1));
    });
}

#[test]
fn small_counts_and_constant_values_are_undefined_not_nan() {
    for_each_backend(
        "small_counts_and_constant_values_are_undefined_not_nan",
        |ctx| {
            let one = Matrix::new(vec![4.0], 1).unwrap();
            let m = describe(ctx, &one, Axis::All, &StatsOptions::default()).unwrap()[0];
            assert_eq!(
                (m.count(), m.mean(), m.variance(0)),
                (1, Some(4.0), Some(0.0))
            );
            assert_eq!((m.variance(1), m.standard_error()), (None, None));
            assert_eq!((m.skewness(true), m.kurtosis(true)), (None, None));
            let three = Matrix::new(vec![1.0, 2.0, 4.0], 1).unwrap();
            let m = describe(ctx, &three, Axis::All, &StatsOptions::default()).unwrap()[0];
            assert!(m.skewness(false).is_some() && m.kurtosis(true).is_some());
            assert_eq!(m.kurtosis(false), None);
            let flat = Matrix::new(vec![1.0e6; 1000], 1).unwrap();
            let m = describe(ctx, &flat, Axis::All, &StatsOptions::default()).unwrap()[0];
            assert_eq!(
                (m.variance(1), m.skewness(true), m.kurtosis(false)),
                (Some(0.0), None, None)
            );
        },
    );
}

#[test]
fn moments_merge_like_one_pass() {
    let s = seed();
    for_each_backend("moments_merge_like_one_pass", |ctx| {
        let mut r = rng(s);
        for kind in 0..3 {
            let x = data(&mut r, 20_000, 1, kind);
            let v = x.as_slice();
            let whole = describe(ctx, &x, Axis::All, &StatsOptions::default()).unwrap()[0];
            let mut cuts: Vec<usize> = (0..6).map(|_| r.random_range(1..v.len())).collect();
            cuts.push(0);
            cuts.push(v.len());
            cuts.sort_unstable();
            cuts.dedup();
            let mut merged = Moments::new();
            let mut pushed = Moments::new();
            for w in cuts.windows(2) {
                let part = Matrix::new(v[w[0]..w[1]].to_vec(), 1).unwrap();
                let m = describe(ctx, &part, Axis::All, &StatsOptions::default()).unwrap()[0];
                merged = merged.merge(&m);
            }
            for &x in v {
                pushed.push(x);
            }
            for m in [merged, pushed] {
                assert_eq!(m.count(), whole.count());
                assert_eq!((m.min(), m.max()), (whole.min(), whole.max()));
                let sd = whole.std(0).unwrap();
                assert!(
                    close(m.mean().unwrap(), whole.mean().unwrap(), 1e-13, 1e-12 * sd),
                    "seed {s} mean"
                );
                assert!(
                    close(
                        m.variance(1).unwrap(),
                        whole.variance(1).unwrap(),
                        1e-10,
                        0.0
                    ),
                    "seed {s} var"
                );
                assert!(close(
                    m.skewness(false).unwrap(),
                    whole.skewness(false).unwrap(),
                    1e-8,
                    1e-9
                ));
                assert!(close(
                    m.kurtosis(false).unwrap(),
                    whole.kurtosis(false).unwrap(),
                    1e-8,
                    1e-9
                ));
            }
        }
    });
}

#[test]
fn non_finite_values_are_rejected_or_skipped_and_counted() {
    for_each_backend(
        "non_finite_values_are_rejected_or_skipped_and_counted",
        |ctx| {
            // 4 x 3; column 1 holds a NaN and an inf, column 2 only NaN with a 7.
            let v = vec![
                1.0,
                2.0,
                f32::NAN, //
                3.0,
                f32::NAN,
                7.0, //
                5.0,
                f32::INFINITY,
                f32::NAN, //
                7.0,
                8.0,
                f32::NAN,
            ];
            let x = Matrix::new(v, 3).unwrap();
            match describe(ctx, &x, Axis::PerColumn, &StatsOptions::default()) {
                Err(Error::NonFinite { count, segment, .. }) => {
                    assert_eq!((count, segment.as_str()), (5, "column 1"))
                }
                other => panic!("expected NonFinite, got {other:?}"),
            }
            match quantiles(ctx, &x, &[0.5], Axis::PerRow, &StatsOptions::default()) {
                Err(Error::NonFinite { count, segment, .. }) => {
                    assert_eq!((count, segment.as_str()), (5, "row 0"))
                }
                other => panic!("expected NonFinite, got {other:?}"),
            }
            let skip = StatsOptions::default().with_skip_non_finite(true);
            let m = describe(ctx, &x, Axis::PerColumn, &skip).unwrap();
            assert_eq!(
                m.iter()
                    .map(|c| (c.count(), c.non_finite()))
                    .collect::<Vec<_>>(),
                vec![(4, 0), (2, 2), (1, 3)]
            );
            assert_eq!(m[1].mean(), Some(5.0));
            assert_eq!(m[2].mean(), Some(7.0));
            let q = quantiles(ctx, &x, &[0.0, 0.5, 1.0], Axis::PerColumn, &skip).unwrap();
            assert_eq!(
                q,
                vec![
                    vec![1.0, 4.0, 7.0],
                    vec![2.0, 5.0, 8.0],
                    vec![7.0, 7.0, 7.0]
                ]
            );
            // A segment with nothing finite left.
            let y = Matrix::new(vec![1.0, f32::NAN, 2.0, f32::NAN], 2).unwrap();
            for r in [
                describe(ctx, &y, Axis::PerColumn, &skip).map(|_| ()),
                quantiles(ctx, &y, &[0.5], Axis::PerColumn, &skip).map(|_| ()),
            ] {
                match r {
                    Err(Error::InvalidParameter { value, .. }) => {
                        assert!(value.contains("column 1"), "{value}")
                    }
                    other => panic!("expected InvalidParameter, got {other:?}"),
                }
            }
            // The same on the radix path (segments longer than 4096).
            let mut big: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
            big[17] = f32::NAN;
            big[9000] = f32::NEG_INFINITY;
            let b = Matrix::new(big.clone(), 1).unwrap();
            assert!(matches!(
                quantiles(ctx, &b, &[0.5], Axis::All, &StatsOptions::default()),
                Err(Error::NonFinite { count: 2, .. })
            ));
            let finite: Vec<f32> = big.iter().copied().filter(|v| v.is_finite()).collect();
            let want = quantiles(
                ctx,
                &Matrix::new(finite, 1).unwrap(),
                &[0.3, 0.5],
                Axis::All,
                &skip,
            )
            .unwrap();
            assert_eq!(
                quantiles(ctx, &b, &[0.3, 0.5], Axis::All, &skip).unwrap(),
                want
            );
        },
    );
}

/// NumPy's linear interpolation on a sorted fp64 copy (the plain formula),
/// and the larger magnitude of the two values interpolated (the scale of
/// the rounding error of any interpolation formula).
fn quantile_ref(v: &[f32], q: f64) -> (f64, f64) {
    let mut f: Vec<f64> = v
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| x as f64)
        .collect();
    f.sort_by(f64::total_cmp);
    let h = (f.len() - 1) as f64 * q;
    let i = h.floor() as usize;
    let j = (i + 1).min(f.len() - 1);
    (
        f[i] + (h - i as f64) * (f[j] - f[i]),
        f[i].abs().max(f[j].abs()),
    )
}

fn check_quantile(got: f32, v: &[f32], q: f64, what: &str) {
    let (want, scale) = quantile_ref(v, q);
    let tol = (want.abs() * f32::EPSILON as f64)
        .max(scale * 1e-15)
        .max(f32::MIN_POSITIVE as f64);
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: q {q}: {got} vs {want}"
    );
}

/// Wide-ranging values: many key digits, both signs, zeros and ties.
fn spread(r: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| match r.random_range(0..8) {
            0 => 0.0,
            1 => -0.0,
            2 => r.random_range(-3i32..4) as f32,
            3 => r.sample::<f32, _>(StandardNormal) * 1e-30,
            4 => r.sample::<f32, _>(StandardNormal) * 1e20,
            _ => r.sample::<f32, _>(StandardNormal),
        })
        .collect()
}

#[test]
fn quantiles_match_sorted_fp64() {
    let s = seed();
    for_each_backend("quantiles_match_sorted_fp64", |ctx| {
        let mut r = rng(s);
        let levels = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0, r.random::<f64>()];
        let shapes = [
            (1, 1),
            (2, 1),
            (3, 5),
            (64, 64),
            (4096, 1),
            (4097, 1),
            (3, 4099),
            (5000, 3),
            (1, 10_007),
            (300_001, 1),
        ];
        for (rows, dim) in shapes {
            for kind in 0..4 {
                let x = if kind == 3 {
                    Matrix::new(spread(&mut r, rows * dim), dim).unwrap()
                } else {
                    data(&mut r, rows, dim, kind)
                };
                for axis in AXES {
                    let got = quantiles(ctx, &x, &levels, axis, &StatsOptions::default()).unwrap();
                    let segs = segments(&x, axis);
                    assert_eq!(got.len(), segs.len());
                    for (i, (g, v)) in got.iter().zip(&segs).enumerate() {
                        for (l, &q) in levels.iter().enumerate() {
                            check_quantile(
                                g[l],
                                v,
                                q,
                                &format!("seed {s} {rows}x{dim} kind {kind} {axis:?} #{i}"),
                            );
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn many_levels_on_the_radix_path() {
    let s = seed();
    for_each_backend("many_levels_on_the_radix_path", |ctx| {
        let mut r = rng(s);
        // 201 levels: about 400 ranks, far more slots than one refinement
        // launch holds (12 or 24 per segment), on several segments.
        let levels: Vec<f64> = (0..=200).map(|i| i as f64 / 200.0).collect();
        for (rows, dim) in [(50_000, 1), (6000, 3)] {
            let x = Matrix::new(spread(&mut r, rows * dim), dim).unwrap();
            for axis in [Axis::All, Axis::PerColumn] {
                let got = quantiles(ctx, &x, &levels, axis, &StatsOptions::default()).unwrap();
                for (i, (g, v)) in got.iter().zip(&segments(&x, axis)).enumerate() {
                    for (l, &q) in levels.iter().enumerate() {
                        check_quantile(g[l], v, q, &format!("seed {s} {rows}x{dim} {axis:?} #{i}"));
                    }
                }
            }
        }
    });
}

#[test]
fn median_and_quartiles_equal_numpy() {
    // np.quantile(y, [0, .1, .25, .33, .5, .9, 1]) of these float32 values.
    let y = [3.0f32, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0];
    let x = Matrix::new(y.to_vec(), 1).unwrap();
    for_each_backend("median_and_quartiles_equal_numpy", |ctx| {
        let o = StatsOptions::default();
        let q = quantiles(
            ctx,
            &x,
            &[0.0, 0.1, 0.25, 0.33, 0.5, 0.9, 1.0],
            Axis::All,
            &o,
        )
        .unwrap();
        assert_eq!(q[0], vec![1.0, 1.0, 2.5, 3.0, 4.0, 6.0, 9.0]);
        assert_eq!(median(ctx, &x, Axis::All, &o).unwrap(), vec![4.0]);
        let qs = quartiles(ctx, &x, Axis::All, &o).unwrap()[0];
        assert_eq!((qs.q1, qs.median, qs.q3, qs.iqr()), (2.5, 4.0, 5.0, 2.5));
        assert_eq!(qs.outlier_bounds(), (-1.25, 8.75));
        assert_eq!(qs.fences(3.0), (-5.0, 12.5));
        // Per column of a 2-column matrix: medians of each column.
        let m = Matrix::new(vec![1.0, 10.0, 3.0, 30.0, 2.0, 20.0, 4.0, 40.0], 2).unwrap();
        assert_eq!(
            median(ctx, &m, Axis::PerColumn, &o).unwrap(),
            vec![2.5, 25.0]
        );
        assert_eq!(
            median(ctx, &m, Axis::PerRow, &o).unwrap(),
            vec![5.5, 16.5, 11.0, 22.0]
        );
    });
}

#[test]
fn stats_errors_are_typed() {
    for_each_backend("stats_errors_are_typed", |ctx| {
        let o = StatsOptions::default();
        let x = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2).unwrap();
        let empty = Matrix::new(vec![], 3).unwrap();
        assert!(matches!(
            describe(ctx, &empty, Axis::All, &o),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            quantiles(ctx, &empty, &[0.5], Axis::All, &o),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            quantiles(ctx, &x, &[], Axis::All, &o),
            Err(Error::EmptyInput { .. })
        ));
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            match quantiles(ctx, &x, &[0.5, bad], Axis::All, &o) {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "quantile level"),
                other => panic!("level {bad}: {other:?}"),
            }
        }
        assert!(matches!(
            covariance(ctx, &x, 2),
            Err(Error::InvalidParameter { name: "ddof", .. })
        ));
        assert!(matches!(
            covariance(ctx, &empty, 0),
            Err(Error::EmptyInput { .. })
        ));
        let one_row = Matrix::new(vec![1.0, 2.0], 2).unwrap();
        assert!(matches!(
            correlation(ctx, &one_row),
            Err(Error::InvalidParameter { .. })
        ));
        let constant = Matrix::new(vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0], 2).unwrap();
        match correlation(ctx, &constant) {
            Err(Error::InvalidParameter { value, .. }) => {
                assert!(value.contains("column 1"), "{value}")
            }
            other => panic!("{other:?}"),
        }
        let nan = Matrix::new(vec![1.0, f32::NAN, 2.0, 3.0], 2).unwrap();
        assert!(matches!(
            covariance(ctx, &nan, 1),
            Err(Error::NonFinite { .. })
        ));
    });
}

#[test]
fn covariance_and_correlation_match_fp64() {
    let s = seed();
    for_each_backend("covariance_and_correlation_match_fp64", |ctx| {
        let mut r = rng(s);
        for (rows, dim) in [(2, 1), (3, 3), (100, 17), (1000, 65), (4099, 2)] {
            // Correlated columns with offsets.
            let base: Vec<f32> = (0..rows).map(|_| r.sample(StandardNormal)).collect();
            let v: Vec<f32> = (0..rows * dim)
                .map(|i| {
                    let j = i % dim;
                    100.0 * j as f32
                        + base[i / dim] * (j as f32 * 0.3 - 1.0)
                        + r.sample::<f32, _>(StandardNormal)
                })
                .collect();
            let x = Matrix::new(v, dim).unwrap();
            let cols = segments(&x, Axis::PerColumn);
            let means: Vec<f64> = cols
                .iter()
                .map(|c| c.iter().map(|&v| v as f64).sum::<f64>() / rows as f64)
                .collect();
            let cov_ref = |a: usize, b: usize, ddof: usize| -> f64 {
                (0..rows)
                    .map(|i| (cols[a][i] as f64 - means[a]) * (cols[b][i] as f64 - means[b]))
                    .sum::<f64>()
                    / (rows - ddof) as f64
            };
            for ddof in [0, 1] {
                let c = covariance(ctx, &x, ddof).unwrap();
                assert_eq!((c.rows(), c.dim()), (dim, dim));
                for a in 0..dim {
                    for b in 0..dim {
                        let want = cov_ref(a, b, ddof);
                        let tol = 1e-5 * (cov_ref(a, a, ddof) * cov_ref(b, b, ddof)).sqrt() + 1e-30;
                        let got = c.as_slice()[a * dim + b] as f64;
                        assert!(
                            (got - want).abs() <= tol,
                            "seed {s} {rows}x{dim} ddof {ddof} ({a},{b}): {got} vs {want}"
                        );
                    }
                }
            }
            if rows >= 2 {
                let c = correlation(ctx, &x).unwrap();
                for a in 0..dim {
                    for b in 0..dim {
                        let want = cov_ref(a, b, 1) / (cov_ref(a, a, 1) * cov_ref(b, b, 1)).sqrt();
                        let got = c.as_slice()[a * dim + b] as f64;
                        assert!(
                            (got - want).abs() <= 2e-5,
                            "seed {s} {rows}x{dim} r({a},{b}): {got} vs {want}"
                        );
                        if a == b {
                            assert_eq!(got, 1.0);
                        }
                    }
                }
            }
        }
        // NumPy's figures for a small matrix.
        let a = Matrix::new(
            vec![1.0, 2.0, 0.5, 2.0, 1.0, 0.25, 4.0, 3.0, 1.0, 3.0, 7.0, 2.0],
            3,
        )
        .unwrap();
        let cov = [
            1.6666666666666665,
            1.5,
            0.5416666666666666,
            1.5,
            6.916666666666666,
            2.020833333333333,
            0.5416666666666666,
            2.020833333333333,
            0.5989583333333333,
        ];
        let cor = [
            1.0,
            0.44179262430643446,
            0.5421374765483944,
            0.44179262430643446,
            1.0,
            0.9928502920692636,
            0.5421374765483944,
            0.9928502920692636,
            1.0,
        ];
        let c = covariance(ctx, &a, 1).unwrap();
        let k = correlation(ctx, &a).unwrap();
        for i in 0..9 {
            assert!((c.as_slice()[i] as f64 - cov[i]).abs() < 1e-6, "cov {i}");
            assert!((k.as_slice()[i] as f64 - cor[i]).abs() < 1e-6, "corr {i}");
        }
    });
}

#[test]
fn cuda_stats_agree_with_cpu_and_are_deterministic() {
    let Some(gpu) = cuda() else {
        return;
    };
    eprintln!("[cuda] cuda_stats_agree_with_cpu_and_are_deterministic");
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let o = StatsOptions::default().with_skip_non_finite(true);
    for (rows, dim, kind) in [
        (1 << 21, 1, 0),
        (100_003, 64, 1),
        (10_007, 300, 2),
        (3, 1 << 20, 0),
    ] {
        let mut x = data(&mut r, rows, dim, kind);
        for _ in 0..5 {
            let i = r.random_range(0..rows * dim);
            x.as_mut_slice()[i] = f32::NAN;
        }
        for axis in AXES {
            // Segments of a few values may hold nothing but the NaNs.
            if (axis == Axis::PerRow && dim < 8) || (axis == Axis::PerColumn && rows < 8) {
                continue;
            }
            let a = describe(&cpu, &x, axis, &o).unwrap();
            let b = describe(&gpu, &x, axis, &o).unwrap();
            let b2 = describe(&gpu, &x, axis, &o).unwrap();
            assert_eq!(b, b2, "seed {s}: run to run");
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                let what = format!("seed {s} {rows}x{dim} {axis:?} #{i}");
                assert_eq!(
                    (p.count(), p.non_finite(), p.min(), p.max()),
                    (q.count(), q.non_finite(), q.min(), q.max()),
                    "{what}"
                );
                let sd = p.std(0).unwrap();
                assert!(
                    close(q.mean().unwrap(), p.mean().unwrap(), 1e-13, 1e-12 * sd),
                    "{what}: mean"
                );
                assert!(
                    close(q.variance(0).unwrap(), p.variance(0).unwrap(), 1e-9, 1e-30),
                    "{what}: var"
                );
                if let (Some(u), Some(v)) = (p.skewness(false), q.skewness(false)) {
                    assert!(close(u, v, 1e-6, 1e-7), "{what}: skew {u} {v}");
                }
                if let (Some(u), Some(v)) = (p.kurtosis(false), q.kurtosis(false)) {
                    assert!(close(u, v, 1e-6, 1e-6), "{what}: kurt {u} {v}");
                }
            }
            let levels = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0, 0.123];
            let qa = quantiles(&cpu, &x, &levels, axis, &o).unwrap();
            let qb = quantiles(&gpu, &x, &levels, axis, &o).unwrap();
            assert_eq!(qa, qb, "seed {s} {rows}x{dim} {axis:?}: quantiles");
        }
    }
    // Resident input gives the same.
    let x = data(&mut r, 70_000, 5, 1);
    let d = gpu.upload(&x).unwrap();
    let a = quantiles(&gpu, &x, &[0.5], Axis::PerColumn, &o).unwrap();
    assert_eq!(quantiles(&gpu, &d, &[0.5], Axis::PerColumn, &o).unwrap(), a);
    assert_eq!(
        describe(&gpu, &d, Axis::All, &o).unwrap(),
        describe(&gpu, &x, Axis::All, &o).unwrap()
    );
}

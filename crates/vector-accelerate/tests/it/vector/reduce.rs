//! Reductions (`reduce`, `arg_reduce`, `sum`, `mean`, `variance`) over
//! everything, each row and each column against fp64: NaN and infinities
//! as NumPy has them, ties to the first index, sums of ten million
//! elements within one f32 rounding, `ddof` and a large mean, and on CUDA
//! the documented summation order of short rows.

use rand::Rng;

use super::{scaled, ulps, LARGE, RESIDENT_SHAPES, SHAPES, WIDE};
use crate::common::*;
use vector_accelerate::vector::{self, arg_reduce, reduce, ArgReduction, Axis, Reduction};
use vector_accelerate::Matrix;

const REDUCTIONS: [Reduction; 6] = [
    Reduction::Sum,
    Reduction::Mean,
    Reduction::Min,
    Reduction::Max,
    Reduction::Variance { ddof: 0 },
    Reduction::Variance { ddof: 1 },
];

/// The groups of elements (as fp64 values with their indices) behind each
/// result of a reduction along `axis`.
fn groups(x: &Matrix, axis: Axis) -> Vec<Vec<(f32, u64)>> {
    let (n, d) = (x.rows(), x.dim());
    match axis {
        Axis::All => vec![x
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, i as u64))
            .collect()],
        Axis::PerRow => (0..n)
            .map(|i| (0..d).map(|j| (x.get(i, j), j as u64)).collect())
            .collect(),
        Axis::PerColumn => (0..d)
            .map(|j| (0..n).map(|i| (x.get(i, j), i as u64)).collect())
            .collect(),
    }
}

/// fp64 reference of a reduction and its tolerance.
fn reduce_ref(g: &[(f32, u64)], op: Reduction) -> (f64, f64) {
    let n = g.len() as f64;
    let sum: f64 = g.iter().map(|p| p.0 as f64).sum();
    let abs: f64 = g.iter().map(|p| (p.0 as f64).abs()).sum();
    let eps = f32::EPSILON as f64;
    match op {
        Reduction::Sum => (sum, eps * sum.abs() + 1e-13 * abs),
        Reduction::Mean => (sum / n, eps * (sum / n).abs() + 1e-13 * abs / n),
        Reduction::Min => (
            g.iter().map(|p| p.0 as f64).fold(f64::INFINITY, f64::min),
            0.0,
        ),
        Reduction::Max => (
            g.iter()
                .map(|p| p.0 as f64)
                .fold(f64::NEG_INFINITY, f64::max),
            0.0,
        ),
        Reduction::Variance { ddof } => {
            let m = sum / n;
            let ss: f64 = g.iter().map(|p| (p.0 as f64 - m).powi(2)).sum();
            let v = ss / (n - ddof as f64);
            (v, 2.0 * eps * v + 1e-13 * (m * m + v))
        }
    }
}

#[test]
fn reductions_match_fp64_on_every_axis() {
    let s = seed();
    for_each_backend("reductions_match_fp64_on_every_axis", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES.iter().chain([&LARGE, &WIDE]) {
            // An offset so that variance shifts matter; small integers for
            // exact ties in min / max.
            let x = scaled(&mut r, rows, dim, 2.0, 30.0);
            let ties = Matrix::new(
                (0..rows * dim)
                    .map(|_| r.random_range(0..5) as f32)
                    .collect(),
                dim,
            )
            .unwrap();
            for axis in [Axis::All, Axis::PerRow, Axis::PerColumn] {
                for m in [&x, &ties] {
                    let gs = groups(m, axis);
                    for op in REDUCTIONS {
                        if let Reduction::Variance { ddof } = op {
                            if ddof >= gs[0].len() {
                                continue;
                            }
                        }
                        let got = reduce(ctx, m, op, axis)
                            .unwrap()
                            .into_host()
                            .unwrap()
                            .into_vec();
                        assert_eq!(got.len(), gs.len());
                        for (k, g) in gs.iter().enumerate() {
                            let (e, t) = reduce_ref(g, op);
                            assert!(
                                (got[k] as f64 - e).abs() <= t + 1e-30,
                                "seed {s} {} {op:?} {axis:?} {rows}x{dim} [{k}]: {} vs fp64 {e} (tol {t})",
                                ctx.device(),
                                got[k]
                            );
                        }
                    }
                    for (op, better) in [
                        (ArgReduction::ArgMin, (|a, b| a < b) as fn(f32, f32) -> bool),
                        (ArgReduction::ArgMax, |a, b| a > b),
                    ] {
                        let got = arg_reduce(ctx, m, op, axis).unwrap().to_host().unwrap();
                        for (k, g) in gs.iter().enumerate() {
                            let mut best = g[0];
                            for &p in &g[1..] {
                                if better(p.0, best.0) {
                                    best = p;
                                }
                            }
                            assert_eq!(
                                got[k],
                                best.1,
                                "seed {s} {} {op:?} {axis:?} {rows}x{dim} [{k}]",
                                ctx.device()
                            );
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn reductions_nan_and_inf_follow_numpy() {
    for_each_backend("reductions_nan_and_inf_follow_numpy", |ctx| {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        // 3 x 4
        let x = Matrix::new(
            vec![
                1.0, nan, 3.0, nan, //
                inf, 2.0, -inf, 2.0, //
                -5.0, 0.0, -5.0, 7.0,
            ],
            4,
        )
        .unwrap();
        let row = |op| {
            reduce(ctx, &x, op, Axis::PerRow)
                .unwrap()
                .into_host()
                .unwrap()
                .into_vec()
        };
        let arow = |op| {
            arg_reduce(ctx, &x, op, Axis::PerRow)
                .unwrap()
                .to_host()
                .unwrap()
        };
        let (su, mi, ma) = (
            row(Reduction::Sum),
            row(Reduction::Min),
            row(Reduction::Max),
        );
        assert!(su[0].is_nan() && mi[0].is_nan() && ma[0].is_nan());
        assert!(su[1].is_nan()); // inf - inf
        assert_eq!(
            (mi[1], ma[1], su[2], mi[2], ma[2]),
            (-inf, inf, -3.0, -5.0, 7.0)
        );
        assert!(row(Reduction::Variance { ddof: 0 })[1].is_nan());
        // The first NaN wins; ties go to the first index.
        assert_eq!(arow(ArgReduction::ArgMin), vec![1, 2, 0]);
        assert_eq!(arow(ArgReduction::ArgMax), vec![1, 0, 3]);
        assert_eq!(
            arg_reduce(ctx, &x, ArgReduction::ArgMax, Axis::All)
                .unwrap()
                .to_host()
                .unwrap(),
            vec![1]
        );
        assert_eq!(
            arg_reduce(ctx, &x, ArgReduction::ArgMin, Axis::PerColumn)
                .unwrap()
                .to_host()
                .unwrap(),
            vec![2, 0, 1, 0]
        );
        assert_eq!(
            arg_reduce(ctx, &x, ArgReduction::ArgMax, Axis::PerColumn)
                .unwrap()
                .to_host()
                .unwrap(),
            vec![1, 0, 0, 0]
        );
        let col_max = reduce(ctx, &x, Reduction::Max, Axis::PerColumn)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        assert_eq!((col_max[0], col_max[2]), (inf, 3.0));
        assert!(col_max[1].is_nan() && col_max[3].is_nan());
        // A row of +inf: argmin is its first element.
        let infs = Matrix::new(vec![inf; 5], 5).unwrap();
        assert_eq!(
            arg_reduce(ctx, &infs, ArgReduction::ArgMin, Axis::All)
                .unwrap()
                .to_host()
                .unwrap(),
            vec![0]
        );
    });
}

/// Neumaier-compensated fp64 sum (the accuracy reference).
fn sum_ref(v: &[f32]) -> f64 {
    let (mut s, mut c) = (0f64, 0f64);
    for &x in v {
        let x = x as f64;
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

/// Sums of 10^7 elements (the tests use 10^7 to keep CI time sane; the
/// error bound of the f64 accumulation, ~n 2^-53 sum|x|, holds for 10^8)
/// are within one f32 rounding of the fp64 sum, where a plain f32
/// accumulation is off by orders of magnitude more.
#[test]
fn sums_of_ten_million_are_accurate() {
    let s = seed();
    for_each_backend("sums_of_ten_million_are_accurate", |ctx| {
        let mut r = rng(s);
        let n = 10_000_000;
        // Many values of equal magnitude, plus a wide dynamic range with
        // mixed signs.
        let equal: Vec<f32> = vec![0.1; n];
        let wide: Vec<f32> = (0..n)
            .map(|_| {
                let e: f32 = r.random_range(-6.0..6.0);
                let sign = if r.random::<bool>() { 1.0 } else { -1.0 };
                sign * 10f32.powf(e) + 1.0
            })
            .collect();
        for data in [equal, wide] {
            let exact = sum_ref(&data);
            let naive = data.iter().fold(0f32, |a, &b| a + b) as f64;
            let naive_err = (naive - exact).abs();
            for (shape, axis) in [(1000, Axis::All), (n, Axis::PerRow), (1, Axis::PerColumn)] {
                let m = Matrix::new(data.clone(), shape).unwrap();
                let got = vector::sum(ctx, &m, axis)
                    .unwrap()
                    .into_host()
                    .unwrap()
                    .into_vec();
                assert_eq!(got.len(), 1);
                let err = (got[0] as f64 - exact).abs();
                assert!(
                    ulps(got[0], exact as f32) <= 1,
                    "seed {s} {} {axis:?}: {} vs {exact} (error {err})",
                    ctx.device(),
                    got[0]
                );
                assert!(
                    err * 100.0 < naive_err,
                    "naive f32 error {naive_err} vs {err}"
                );
                let mean = vector::mean(ctx, &m, axis)
                    .unwrap()
                    .into_host()
                    .unwrap()
                    .into_vec()[0];
                assert!(ulps(mean, (exact / n as f64) as f32) <= 1);
            }
        }
    });
}

#[test]
fn variance_ddof_and_large_mean() {
    let s = seed();
    for_each_backend("variance_ddof_and_large_mean", |ctx| {
        let mut r = rng(s);
        // Mean 1e4, spread 1: a one-pass unshifted formula in f32 would lose everything.
        let x = scaled(&mut r, 2000, 7, 1.0, 1.0e4);
        for axis in [Axis::All, Axis::PerRow, Axis::PerColumn] {
            let v0 = vector::variance(ctx, &x, axis, 0)
                .unwrap()
                .into_host()
                .unwrap()
                .into_vec();
            let v1 = vector::variance(ctx, &x, axis, 1)
                .unwrap()
                .into_host()
                .unwrap()
                .into_vec();
            let gs = groups(&x, axis);
            for (k, g) in gs.iter().enumerate() {
                let n = g.len() as f64;
                let (e0, _) = reduce_ref(g, Reduction::Variance { ddof: 0 });
                assert!(
                    ((v0[k] as f64) - e0).abs() <= 1e-5 * e0,
                    "seed {s} {axis:?} {k}: {} vs {e0}",
                    v0[k]
                );
                // ddof changes the divisor.
                let ratio = v1[k] as f64 / v0[k] as f64;
                assert!(
                    (ratio - n / (n - 1.0)).abs() < 1e-5,
                    "seed {s} ddof ratio {ratio}"
                );
            }
        }
        // A constant input has variance exactly 0 (never negative).
        let c = Matrix::new(vec![0.1; 99], 9).unwrap();
        for axis in [Axis::All, Axis::PerRow, Axis::PerColumn] {
            assert!(vector::variance(ctx, &c, axis, 0)
                .unwrap()
                .into_host()
                .unwrap()
                .into_vec()
                .iter()
                .all(|&v| v == 0.0));
        }
    });
}

/// Per-row sum and moments in the order of the CUDA warp kernels (lane `l`
/// adds the 4-element groups `l, l + 32, ...` in turn from 0, then an xor
/// butterfly over the 32 lanes): the order the row reductions promise for
/// rows of at most 1024 elements with dim % 4 == 0.
fn warp_order(row: &[f32]) -> (f64, f64) {
    let d4 = row.len() / 4;
    let shift = row[0] as f64;
    let mut s1 = [0.0f64; 32];
    let mut s2 = [0.0f64; 32];
    let mut t1 = [0.0f64; 32];
    for l in 0..32 {
        for q in (l..d4).step_by(32) {
            for &v in &row[4 * q..4 * q + 4] {
                let d = v as f64 - shift;
                s1[l] += d;
                s2[l] += d * d;
                t1[l] += v as f64;
            }
        }
    }
    for o in [16, 8, 4, 2, 1] {
        let (a, b, c) = (s1, s2, t1);
        for l in 0..32 {
            s1[l] = a[l] + a[l ^ o];
            s2[l] = b[l] + b[l ^ o];
            t1[l] = c[l] + c[l ^ o];
        }
    }
    let n = row.len() as f64;
    let var = ((s2[0] - s1[0] * s1[0] / n) / n).max(0.0);
    (t1[0], var)
}

#[test]
fn cuda_row_sums_keep_the_warp_order() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: no CUDA device");
        return;
    };
    let s = seed();
    let mut r = rng(s);
    for &(rows, dim) in RESIDENT_SHAPES {
        // A large offset makes the order of the additions visible.
        let x = scaled(&mut r, rows, dim, 1.0, 3.0e4);
        let sums = reduce(&gpu, &x, Reduction::Sum, Axis::PerRow)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        let vars = reduce(&gpu, &x, Reduction::Variance { ddof: 0 }, Axis::PerRow)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        for (i, row) in x.as_slice().chunks_exact(dim).enumerate() {
            let (sum, var) = warp_order(row);
            assert_eq!(
                sums[i].to_bits(),
                (sum as f32).to_bits(),
                "seed {s} {rows}x{dim} row {i}"
            );
            assert_eq!(
                vars[i].to_bits(),
                (var as f32).to_bits(),
                "seed {s} {rows}x{dim} row {i}"
            );
        }
    }
}

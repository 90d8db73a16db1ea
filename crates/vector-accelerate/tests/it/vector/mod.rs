//! Vector utilities: the CPU reference against fp64, CUDA against
//! the CPU, on shapes around every block size of the kernels (a warp per
//! row up to 1024 columns, a block of 256 beyond; column partials 32 columns
//! by 8 row lanes in chunks of at least 64 rows). Device outputs are
//! poisoned before kernels run (see `common::backends`).

// Element checks index several parallel arrays by the same position.
#![allow(clippy::needless_range_loop)]

use rand::Rng;
use rand_distr::StandardNormal;

use crate::common::*;
use vector_accelerate::vector::{
    self, arg_reduce, binary, binary_in_place, binary_then, logsumexp, map, map_in_place,
    normalize, normalize_in_place, normalize_with_norms, reduce, softmax, softmax_in_place,
    ArgReduction, Axis, Binary, Operand, Reduction, Unary, MAX_CHAIN,
};
use vector_accelerate::{Context, Error, Matrix};

/// [`normalize_with_norms`] read back: the rows and the norms.
fn host_normalized(ctx: &Context, x: &Matrix) -> (Matrix, Vec<f32>) {
    let (y, n) = normalize_with_norms(ctx, x).unwrap();
    (y.into_host().unwrap(), n.into_host().unwrap().into_vec())
}

const SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (1, 2),
    (2, 3),
    (3, 1),
    (9, 31),
    (8, 32),
    (7, 33),
    (63, 5),
    (64, 4),
    (65, 7),
    (3, 255),
    (3, 256),
    (2, 257),
    (2, 1023),
    (3, 1024),
    (2, 1025),
    (997, 13),
];

const LARGE: (usize, usize) = (4096, 1031);

/// Wider than the CPU's narrow per-column path (4096 columns).
const WIDE: (usize, usize) = (67, 4099);

/// Distance in units in the last place (0 for equal values and for two
/// NaNs; `u32::MAX` when only one is NaN).
fn ulps(a: f32, b: f32) -> u32 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u32::MAX
        };
    }
    let key = |v: f32| {
        let b = v.to_bits() as i64;
        if b < 0x8000_0000 {
            b
        } else {
            -(b - 0x8000_0000)
        }
    };
    (key(a) - key(b)).unsigned_abs().min(u32::MAX as u64) as u32
}

fn scaled(r: &mut rand::rngs::StdRng, rows: usize, dim: usize, scale: f32, offset: f32) -> Matrix {
    Matrix::new(
        (0..rows * dim)
            .map(|_| offset + scale * r.sample::<f32, _>(StandardNormal))
            .collect(),
        dim,
    )
    .unwrap()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

// ------------------------------------------------------------ normalisation

#[test]
fn normalize_matches_fp64_and_keeps_zero_rows_zero() {
    let s = seed();
    for_each_backend("normalize_matches_fp64_and_keeps_zero_rows_zero", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES.iter().chain([&LARGE]) {
            let mut x = scaled(&mut r, rows, dim, 3.0, 0.0);
            // Row 0 is zero (with a negative zero) when there are two rows or more.
            if rows > 1 {
                x.as_mut_slice()[..dim].fill(0.0);
                x.as_mut_slice()[0] = -0.0;
            }
            let (y, norms) = host_normalized(ctx, &x);
            assert_eq!((y.rows(), y.dim(), norms.len()), (rows, dim, rows));
            for i in 0..rows {
                let n64 = sqn(x.row(i)).sqrt();
                assert_eq!(
                    norms[i],
                    n64 as f32,
                    "seed {s} {} {rows}x{dim} norm {i}",
                    ctx.device()
                );
                for j in 0..dim {
                    let g = y.get(i, j);
                    let e = if n64 == 0.0 {
                        x.get(i, j) as f64
                    } else {
                        x.get(i, j) as f64 / n64
                    };
                    assert!(!g.is_nan(), "seed {s} NaN at ({i},{j})");
                    assert!(
                        ulps(g, e as f32) <= 1,
                        "seed {s} {} {rows}x{dim} ({i},{j}): {g} vs fp64 {e}",
                        ctx.device()
                    );
                }
            }
            if rows > 1 {
                assert!(same_bits(y.row(0), x.row(0)), "zero row must stay as it is");
            }
            // The other forms give the same bits.
            let mut d = ctx.upload(&x).unwrap();
            let n3 = normalize_in_place(ctx, &mut d).unwrap();
            assert!(same_bits(d.to_host().unwrap().as_slice(), y.as_slice()));
            assert!(same_bits(n3.to_host().unwrap().as_slice(), &norms));
            assert!(same_bits(
                normalize(ctx, &x).unwrap().into_host().unwrap().as_slice(),
                y.as_slice()
            ));
        }
    });
}

#[test]
fn normalize_non_finite_rows() {
    for_each_backend("normalize_non_finite_rows", |ctx| {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let x = Matrix::new(
            vec![
                1e30, 1e30, -1e30, // no overflow: the norm is accumulated in f64
                1.0, inf, 2.0, // infinite norm: finite -> 0, inf -> NaN
                1.0, nan, 2.0, // NaN row
                3e38, 3e38, 0.0, // norm above f32::MAX
            ],
            3,
        )
        .unwrap();
        let (y, n) = host_normalized(ctx, &x);
        let c = (1.0f64 / 3f64.sqrt()) as f32;
        assert_eq!(y.row(0), &[c, c, -c]);
        assert_eq!(n[0], (3f64.sqrt() * 1e30) as f32);
        assert_eq!(y.row(1)[0], 0.0);
        assert!(y.row(1)[1].is_nan());
        assert!(y.row(2).iter().all(|v| v.is_nan()) && n[2].is_nan());
        assert_eq!(n[1], inf);
        assert_eq!(n[3], inf);
        let h = (0.5f64).sqrt() as f32;
        assert_eq!(y.row(3), &[h, h, 0.0]);
    });
}

// ------------------------------------------------------------ element-wise

/// Every unary op with its fp64 reference, the input it is tested on
/// (`true`: positive inputs) and the ulps allowed against the fp64 value
/// rounded to f32 (0: exact).
type UnaryCase = (Unary, fn(f64) -> f64, bool, u32);

fn unary_cases() -> Vec<UnaryCase> {
    vec![
        (Unary::Add(0.75), |x| x + 0.75, false, 0),
        (Unary::Mul(-1.5), |x| x * -1.5, false, 0),
        (Unary::Pow(2.5), |x| x.powf(2.5), true, 4),
        (Unary::Pow(-3.0), |x| x.powi(-3), false, 4),
        (Unary::Clamp(-0.5, 1.25), |x| x.clamp(-0.5, 1.25), false, 0),
        (Unary::Abs, f64::abs, false, 0),
        (Unary::Square, |x| x * x, false, 0),
        (Unary::Sqrt, f64::sqrt, true, 0),
        (Unary::Reciprocal, |x| 1.0 / x, false, 0),
        (Unary::Neg, |x| -x, false, 0),
        (Unary::Exp, f64::exp, false, 2),
        (Unary::Log, f64::ln, true, 2),
        (Unary::Sin, f64::sin, false, 2),
        (Unary::Cos, f64::cos, false, 2),
        (Unary::Tan, f64::tan, false, 4),
        (Unary::Tanh, f64::tanh, false, 2),
        (Unary::Sigmoid, |x| 1.0 / (1.0 + (-x).exp()), false, 3),
        (Unary::Relu, |x| x.max(0.0), false, 0),
        // The formula's f32 argument -x / sqrt 2 is rounded first (as in
        // PyTorch); the reference takes the same argument and checks erfc.
        (
            Unary::Gelu,
            |x| 0.5 * x * libm::erfc((-(x as f32) * std::f32::consts::FRAC_1_SQRT_2) as f64),
            false,
            4,
        ),
    ]
}

/// Extra ulps CUDA's math library may add to the CPU's.
fn cuda_slack(ctx: &Context, exact: u32) -> u32 {
    match (ctx.is_cuda(), exact) {
        (_, 0) => 0,
        (true, _) => 4,
        (false, _) => 0,
    }
}

#[test]
fn unary_ops_match_fp64() {
    let s = seed();
    for_each_backend("unary_ops_match_fp64", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES {
            let x = scaled(&mut r, rows, dim, 3.0, 0.0);
            let pos =
                Matrix::new(x.as_slice().iter().map(|v| v.abs() + 1e-3).collect(), dim).unwrap();
            for (op, f, positive, tol) in unary_cases() {
                let src = if positive { &pos } else { &x };
                let y = map(ctx, src, &[op]).unwrap().into_host().unwrap();
                let tol = tol + cuda_slack(ctx, tol);
                for (i, (&v, &g)) in src.as_slice().iter().zip(y.as_slice()).enumerate() {
                    let e = f(v as f64) as f32;
                    // GELU far left: erfc's f32 result is subnormal (below
                    // 2^-126 for x < -13.2), so it carries an absolute
                    // error of up to 2^-150, scaled by 0.5 |x|.
                    let sub = if matches!(op, Unary::Gelu) {
                        0.5 * (v as f64).abs() * f32::from_bits(1) as f64
                    } else {
                        0.0
                    };
                    let ulp = (f32::from_bits(e.abs().to_bits() + 1) - e.abs()) as f64;
                    assert!(
                        ulps(g, e) <= tol
                            || (sub > 0.0 && (g as f64 - e as f64).abs() <= sub + tol as f64 * ulp),
                        "seed {s} {} {op:?} {rows}x{dim} [{i}] x = {v}: {g} vs fp64 {e} ({} ulps > {tol})",
                        ctx.device(),
                        ulps(g, e)
                    );
                }
            }
        }
    });
}

#[test]
fn unary_special_values_follow_numpy() {
    for_each_backend("unary_special_values_follow_numpy", |ctx| {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let x = Matrix::new(
            vec![
                -1.0, 0.0, -0.0, inf, -inf, nan, 100.0, -100.0, 1000.0, -1000.0,
            ],
            10,
        )
        .unwrap();
        let m = |op| map(ctx, &x, &[op]).unwrap().into_host().unwrap().into_vec();
        let log = m(Unary::Log);
        assert!(log[0].is_nan() && log[1] == -inf && log[3] == inf && log[5].is_nan());
        let sq = m(Unary::Sqrt);
        assert!(sq[0].is_nan() && sq[1] == 0.0 && sq[2].to_bits() == (-0.0f32).to_bits());
        let sig = m(Unary::Sigmoid);
        assert_eq!(&sig[3..5], &[1.0, 0.0]);
        assert!(sig[5].is_nan());
        assert_eq!(&sig[8..10], &[1.0, 0.0]);
        assert!(sig[6] == 1.0 && sig[7] > 0.0 && sig[7] < 1e-43);
        let rec = m(Unary::Reciprocal);
        assert_eq!((rec[1], rec[2]), (inf, -inf));
        let relu = m(Unary::Relu);
        assert!(relu[5].is_nan() && relu[0] == 0.0 && relu[3] == inf);
        let cl = m(Unary::Clamp(-2.0, 2.0));
        assert!(cl[5].is_nan() && cl[3] == 2.0 && cl[4] == -2.0);
        let g = m(Unary::Gelu);
        assert_eq!((g[6], g[3]), (100.0, inf));
        assert_eq!(g[7], 0.0);
        let t = m(Unary::Tanh);
        assert_eq!(&t[3..5], &[1.0, -1.0]);
    });
}

#[test]
fn map_chain_equals_separate_steps_and_in_place() {
    let s = seed();
    for_each_backend("map_chain_equals_separate_steps_and_in_place", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES {
            let x = scaled(&mut r, rows, dim, 2.0, 0.5);
            let chain = [
                Unary::Mul(1.7),
                Unary::Add(-0.3),
                Unary::Clamp(-1.0, 2.0),
                Unary::Square,
                Unary::Sqrt,
                Unary::Neg,
                Unary::Exp,
                Unary::Tanh,
            ];
            assert_eq!(chain.len(), MAX_CHAIN);
            let fused = map(ctx, &x, &chain).unwrap().into_host().unwrap();
            let mut step = x.clone();
            for op in chain {
                step = map(ctx, &step, &[op]).unwrap().into_host().unwrap();
            }
            assert!(
                same_bits(fused.as_slice(), step.as_slice()),
                "seed {s} {rows}x{dim}"
            );
            let mut z = ctx.upload(&x).unwrap();
            map_in_place(ctx, &mut z, &chain).unwrap();
            let z = z.to_host().unwrap();
            assert!(same_bits(z.as_slice(), fused.as_slice()));
            // An empty chain copies.
            assert!(same_bits(
                map(ctx, &x, &[]).unwrap().into_host().unwrap().as_slice(),
                x.as_slice()
            ));
            // Each option reaches the result.
            assert_ne!(
                map(ctx, &x, &[Unary::Add(1.0)])
                    .unwrap()
                    .into_host()
                    .unwrap(),
                map(ctx, &x, &[Unary::Add(2.0)])
                    .unwrap()
                    .into_host()
                    .unwrap()
            );
        }
    });
}

fn binary_ref(op: Binary, a: f32, b: f32) -> f32 {
    let (x, y) = (a as f64, b as f64);
    match op {
        Binary::Add => (x + y) as f32,
        Binary::Sub => (x - y) as f32,
        Binary::Mul => (x * y) as f32,
        Binary::Div => (x / y) as f32,
        Binary::Pow => x.powf(y) as f32,
        Binary::Max => {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else if b > a {
                b
            } else {
                a
            }
        }
        Binary::Min => {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else if b < a {
                b
            } else {
                a
            }
        }
    }
}

/// The right operand's value at `(i, j)`.
type ElementOf<'a> = Box<dyn Fn(usize, usize) -> f32 + 'a>;

const BINARY: [Binary; 7] = [
    Binary::Add,
    Binary::Sub,
    Binary::Mul,
    Binary::Div,
    Binary::Pow,
    Binary::Max,
    Binary::Min,
];

#[test]
fn binary_broadcasting_matches_fp64() {
    let s = seed();
    for_each_backend("binary_broadcasting_matches_fp64", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES {
            let a = scaled(&mut r, rows, dim, 2.0, 0.0);
            // Positive bases for pow.
            let ap =
                Matrix::new(a.as_slice().iter().map(|v| v.abs() + 0.1).collect(), dim).unwrap();
            let full = scaled(&mut r, rows, dim, 1.5, 0.0);
            let row = scaled(&mut r, 1, dim, 1.5, 0.0);
            let col = scaled(&mut r, rows, 1, 1.5, 0.0);
            let one = Matrix::new(vec![0.625], 1).unwrap();
            let sc: f32 = r.sample(StandardNormal);
            for op in BINARY {
                let left = if op == Binary::Pow { &ap } else { &a };
                let tol = if op == Binary::Pow {
                    4 + cuda_slack(ctx, 4)
                } else {
                    0
                };
                let cases: Vec<(Operand, ElementOf)> = vec![
                    (Operand::Scalar(sc), Box::new(|_, _| sc)),
                    (Operand::from(&full), Box::new(|i, j| full.get(i, j))),
                    (Operand::row(row.as_slice()), Box::new(|_, j| row.get(0, j))),
                    (
                        Operand::column(col.as_slice()),
                        Box::new(|i, _| col.get(i, 0)),
                    ),
                    (Operand::from(&one), Box::new(|_, _| 0.625)),
                ];
                for (k, (b, bv)) in cases.into_iter().enumerate() {
                    let y = binary(ctx, left, op, b).unwrap().into_host().unwrap();
                    for i in 0..rows {
                        for j in 0..dim {
                            let e = binary_ref(op, left.get(i, j), bv(i, j));
                            let g = y.get(i, j);
                            assert!(
                                ulps(g, e) <= tol,
                                "seed {s} {} {op:?} operand {k} {rows}x{dim} ({i},{j}): {g} vs {e}",
                                ctx.device()
                            );
                        }
                    }
                    // In place and with an epilogue.
                    let mut z = ctx.upload(left).unwrap();
                    binary_in_place(ctx, &mut z, op, b, &[]).unwrap();
                    let z = z.to_host().unwrap();
                    assert!(
                        same_bits(z.as_slice(), y.as_slice()),
                        "seed {s} {op:?} in place"
                    );
                    let then = [Unary::Mul(0.5), Unary::Relu];
                    let fused = binary_then(ctx, left, op, b, &then)
                        .unwrap()
                        .into_host()
                        .unwrap();
                    let sep = map(ctx, &y, &then).unwrap().into_host().unwrap();
                    assert!(
                        same_bits(fused.as_slice(), sep.as_slice()),
                        "seed {s} {op:?} then"
                    );
                }
            }
        }
    });
}

#[test]
fn binary_nan_and_ties_follow_numpy() {
    for_each_backend("binary_nan_and_ties_follow_numpy", |ctx| {
        let nan = f32::NAN;
        let a = Matrix::new(vec![nan, 1.0, 2.0, 0.0, -0.0], 5).unwrap();
        let b = Matrix::new(vec![1.0, nan, 2.0, -0.0, 0.0], 5).unwrap();
        let mx = binary(ctx, &a, Binary::Max, &b)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        let mn = binary(ctx, &a, Binary::Min, &b)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        assert!(mx[0].is_nan() && mx[1].is_nan() && mn[0].is_nan() && mn[1].is_nan());
        assert_eq!(mx[2], 2.0);
        // Equal values: the left one.
        assert_eq!(
            (mx[3].to_bits(), mx[4].to_bits()),
            (0.0f32.to_bits(), (-0.0f32).to_bits())
        );
        let d = binary(ctx, &a, Binary::Div, 0.0)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        assert!(d[0].is_nan() && d[1] == f32::INFINITY && d[3].is_nan());
    });
}

// ------------------------------------------------------------ reductions

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

// ------------------------------------------------------------ softmax

#[test]
fn softmax_and_logsumexp_match_fp64() {
    let s = seed();
    for_each_backend("softmax_and_logsumexp_match_fp64", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES {
            let x = scaled(&mut r, rows, dim, 5.0, 100.0);
            let p = softmax(ctx, &x).unwrap().into_host().unwrap();
            let l = logsumexp(ctx, &x).unwrap().into_host().unwrap().into_vec();
            let tol = if ctx.is_cuda() { 8 } else { 4 };
            for i in 0..rows {
                let row: Vec<f64> = x.row(i).iter().map(|&v| v as f64).collect();
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let se: f64 = row.iter().map(|v| (v - m).exp()).sum();
                let lse = m + se.ln();
                assert!(
                    (l[i] as f64 - lse).abs() <= 2e-7 * lse.abs(),
                    "seed {s} {} {rows}x{dim} lse {i}: {} vs {lse}",
                    ctx.device(),
                    l[i]
                );
                for j in 0..dim {
                    // The input is f32: x - m is exact in f32 for these values,
                    // so only exp and the final division round.
                    let e = ((row[j] - m).exp() / se) as f32;
                    let g = p.get(i, j);
                    assert!(
                        ulps(g, e) <= tol || (g as f64 - e as f64).abs() < 1e-37,
                        "seed {s} {} {rows}x{dim} ({i},{j}): {g} vs fp64 {e}",
                        ctx.device()
                    );
                }
            }
            let mut z = ctx.upload(&x).unwrap();
            softmax_in_place(ctx, &mut z).unwrap();
            let z = z.to_host().unwrap();
            assert!(same_bits(z.as_slice(), p.as_slice()));
        }
    });
}

#[test]
fn softmax_infinities_and_nan() {
    for_each_backend("softmax_infinities_and_nan", |ctx| {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        for dim in [4, 300, 2000] {
            let mut rows = vec![vec![0f32; dim]; 5];
            rows[0].iter_mut().for_each(|v| *v = -inf); // all -inf
            rows[1][0] = 1.0; // other entries -inf
            rows[1][1..].iter_mut().for_each(|v| *v = -inf);
            rows[2][1] = inf; // two +inf entries
            rows[2][dim - 1] = inf;
            rows[3][2] = nan;
            rows[4]
                .iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v = 3e38 * (j % 2) as f32);
            let x = Matrix::new(rows.concat(), dim).unwrap();
            let p = softmax(ctx, &x).unwrap().into_host().unwrap();
            let l = logsumexp(ctx, &x).unwrap().into_host().unwrap().into_vec();
            assert!(p.row(0).iter().all(|v| v.is_nan()), "{}", ctx.device());
            assert_eq!(l[0], -inf);
            assert_eq!(p.row(1)[0], 1.0);
            assert!(p.row(1)[1..].iter().all(|&v| v == 0.0));
            assert_eq!(l[1], 1.0);
            assert_eq!((p.row(2)[1], p.row(2)[dim - 1], l[2]), (0.5, 0.5, inf));
            assert_eq!(p.row(2).iter().sum::<f32>(), 1.0);
            assert!(p.row(3).iter().all(|v| v.is_nan()) && l[3].is_nan());
            // Huge finite values: no overflow.
            let half = (dim / 2) as f32;
            assert!(p
                .row(4)
                .iter()
                .all(|&v| v == 0.0 || ulps(v, 1.0 / half) <= 1));
            assert!(ulps(l[4], (3e38f64 + (half as f64).ln()) as f32) <= 1);
        }
    });
}

// ------------------------------------------------------------ backends

/// CUDA against the CPU reference on fresh inputs, and determinism.
#[test]
fn cuda_agrees_with_cpu_and_is_deterministic() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: no CUDA device");
        return;
    };
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    for &(rows, dim) in SHAPES.iter().chain([&LARGE]) {
        let x = scaled(&mut r, rows, dim, 3.0, 0.25);
        let b = scaled(&mut r, 1, dim, 1.0, 0.0);
        let exact = [
            Unary::Mul(0.3),
            Unary::Add(1.0),
            Unary::Clamp(-1.0, 2.0),
            Unary::Square,
            Unary::Reciprocal,
        ];
        let (c, g) = (
            map(&cpu, &x, &exact).unwrap().into_host().unwrap(),
            map(&gpu, &x, &exact).unwrap().into_host().unwrap(),
        );
        assert!(
            same_bits(c.as_slice(), g.as_slice()),
            "seed {s} exact chain {rows}x{dim}"
        );
        for op in BINARY {
            let (c, g) = (
                binary(&cpu, &x, op, Operand::row(b.as_slice()))
                    .unwrap()
                    .into_host()
                    .unwrap(),
                binary(&gpu, &x, op, Operand::row(b.as_slice()))
                    .unwrap()
                    .into_host()
                    .unwrap(),
            );
            let tol = if op == Binary::Pow { 8 } else { 0 };
            assert!(
                c.as_slice()
                    .iter()
                    .zip(g.as_slice())
                    .all(|(a, b)| ulps(*a, *b) <= tol),
                "seed {s} {op:?}"
            );
        }
        let (cn, gn) = (host_normalized(&cpu, &x), host_normalized(&gpu, &x));
        assert!(cn
            .0
            .as_slice()
            .iter()
            .zip(gn.0.as_slice())
            .all(|(a, b)| ulps(*a, *b) <= 1));
        assert!(cn.1.iter().zip(&gn.1).all(|(a, b)| ulps(*a, *b) <= 1));
        for axis in [Axis::All, Axis::PerRow, Axis::PerColumn] {
            for op in [
                Reduction::Sum,
                Reduction::Mean,
                Reduction::Min,
                Reduction::Max,
                Reduction::Variance { ddof: 0 },
            ] {
                let (c, g) = (
                    reduce(&cpu, &x, op, axis)
                        .unwrap()
                        .into_host()
                        .unwrap()
                        .into_vec(),
                    reduce(&gpu, &x, op, axis)
                        .unwrap()
                        .into_host()
                        .unwrap()
                        .into_vec(),
                );
                let tol = match op {
                    Reduction::Min | Reduction::Max => 0,
                    Reduction::Variance { .. } => 8,
                    _ => 1,
                };
                for (a, b) in c.iter().zip(&g) {
                    // Sums near zero: compare against the magnitude of the data.
                    let near = (a - b).abs() as f64 <= 1e-12 * rows as f64 * dim as f64 * 3.0;
                    assert!(
                        ulps(*a, *b) <= tol || near,
                        "seed {s} {op:?} {axis:?} {rows}x{dim}: {a} vs {b}"
                    );
                }
                let again = reduce(&gpu, &x, op, axis)
                    .unwrap()
                    .into_host()
                    .unwrap()
                    .into_vec();
                assert!(
                    same_bits(&g, &again),
                    "seed {s} not deterministic: {op:?} {axis:?}"
                );
            }
            for op in [ArgReduction::ArgMin, ArgReduction::ArgMax] {
                assert_eq!(
                    arg_reduce(&cpu, &x, op, axis).unwrap().to_host().unwrap(),
                    arg_reduce(&gpu, &x, op, axis).unwrap().to_host().unwrap()
                );
            }
        }
        let (c, g) = (
            softmax(&cpu, &x).unwrap().into_host().unwrap(),
            softmax(&gpu, &x).unwrap().into_host().unwrap(),
        );
        assert!(
            c.as_slice()
                .iter()
                .zip(g.as_slice())
                .all(|(a, b)| ulps(*a, *b) <= 4),
            "seed {s} softmax"
        );
        // m + ln(sum exp(x - m)): each backend's expf is within a few ulps,
        // so ln(s) may differ by a few f32 epsilons in absolute terms, many
        // ulps of a result near 0. Bound: 1 ulp, or 4 eps (|m| + ln(dim) + 1).
        let (c, g) = (
            logsumexp(&cpu, &x).unwrap().into_host().unwrap().into_vec(),
            logsumexp(&gpu, &x).unwrap().into_host().unwrap().into_vec(),
        );
        for (i, (a, b)) in c.iter().zip(&g).enumerate() {
            let m = x.row(i).iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
            let t = 4.0 * f32::EPSILON * (m.abs() + (dim as f32).ln() + 1.0);
            assert!(
                ulps(*a, *b) <= 1 || (a - b).abs() <= t,
                "seed {s} logsumexp {rows}x{dim} row {i}: {a} vs {b}"
            );
        }
        let ops = [
            Unary::Exp,
            Unary::Log,
            Unary::Sin,
            Unary::Cos,
            Unary::Tan,
            Unary::Tanh,
            Unary::Sigmoid,
            Unary::Gelu,
            Unary::Pow(1.5),
        ];
        for op in ops {
            let (c, g) = (
                map(&cpu, &x, &[op]).unwrap().into_host().unwrap(),
                map(&gpu, &x, &[op]).unwrap().into_host().unwrap(),
            );
            assert!(
                c.as_slice()
                    .iter()
                    .zip(g.as_slice())
                    .all(|(a, b)| ulps(*a, *b) <= 8),
                "seed {s} {op:?}"
            );
            assert!(same_bits(
                g.as_slice(),
                map(&gpu, &x, &[op])
                    .unwrap()
                    .into_host()
                    .unwrap()
                    .as_slice()
            ));
        }
    }
}

// ------------------------------------------------------------ errors

#[test]
fn vector_errors_are_typed() {
    for_each_backend("vector_errors_are_typed", |ctx| {
        let x = Matrix::new(vec![1.0; 12], 4).unwrap(); // 3 x 4
        let empty = Matrix::new(vec![], 4).unwrap();
        assert!(matches!(
            normalize(ctx, &empty),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            map(ctx, &empty, &[Unary::Abs]),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            vector::sum(ctx, &empty, Axis::All),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            softmax(ctx, &empty),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            binary(ctx, &x, Binary::Add, Operand::row(&[])),
            Err(Error::EmptyInput { .. })
        ));
        let bits = vector_accelerate::BinaryMatrix::new(vec![1], 3).unwrap();
        assert!(matches!(
            normalize(ctx, &bits),
            Err(Error::InvalidParameter { .. })
        ));
        // Broadcasting mismatches name both shapes.
        for bad in [
            Matrix::new(vec![1.0; 8], 4).unwrap(), // 2 x 4
            Matrix::new(vec![1.0; 3], 3).unwrap(), // 1 x 3
            Matrix::new(vec![1.0; 5], 1).unwrap(), // 5 x 1
        ] {
            match binary(ctx, &x, Binary::Mul, &bad) {
                Err(Error::InvalidParameter { value, reason, .. }) => {
                    assert_eq!(value, format!("{} x {}", bad.rows(), bad.dim()));
                    assert!(reason.contains("3 x 4"), "{reason}");
                }
                other => panic!("expected a broadcast error, got {other:?}"),
            }
        }
        let mut m = ctx.upload(&x).unwrap();
        assert!(
            binary_in_place(ctx, &mut m, Binary::Add, Operand::column(&[1.0, 2.0]), &[]).is_err()
        );
        // Clamp bounds.
        for (lo, hi) in [(2.0, 1.0), (f32::NAN, 1.0), (0.0, f32::NAN)] {
            match map(ctx, &x, &[Unary::Clamp(lo, hi)]) {
                Err(Error::InvalidParameter { name, value, .. }) => {
                    assert_eq!(name, "clamp bounds");
                    assert!(value.contains(&format!("{lo}")), "{value}");
                }
                other => panic!("expected a clamp error, got {other:?}"),
            }
        }
        assert!(map(ctx, &x, &[Unary::Clamp(1.0, 1.0)]).is_ok());
        assert!(matches!(
            map(ctx, &x, &[Unary::Abs; MAX_CHAIN + 1]),
            Err(Error::InvalidParameter {
                name: "chain length",
                ..
            })
        ));
        // ddof must be below the count of each reduction (12, 4, 3).
        for (axis, n) in [(Axis::All, 12), (Axis::PerRow, 4), (Axis::PerColumn, 3)] {
            assert!(vector::variance(ctx, &x, axis, n - 1).is_ok());
            match vector::variance(ctx, &x, axis, n) {
                Err(Error::InvalidParameter {
                    name,
                    value,
                    reason,
                }) => {
                    assert_eq!((name, value), ("ddof", n.to_string()));
                    assert!(reason.contains(&n.to_string()));
                }
                other => panic!("expected a ddof error, got {other:?}"),
            }
        }
    });
    // Rows resident on another device are refused.
    if let Some(gpu) = cuda() {
        let x = Matrix::new(vec![1.0; 4], 2).unwrap();
        let on_cpu = Context::cpu().upload(&x).unwrap();
        assert!(matches!(
            vector::sum(&gpu, &on_cpu, Axis::All),
            Err(Error::DeviceMismatch { .. })
        ));
        let mut on_gpu = gpu.upload(&x).unwrap();
        assert!(matches!(
            normalize_in_place(&Context::cpu(), &mut on_gpu),
            Err(Error::DeviceMismatch { .. })
        ));
    }
}

#[test]
fn resident_results_equal_host_results() {
    let s = seed();
    for_each_backend("resident_results_equal_host_results", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in &[(1usize, 1usize), (3, 2), (65, 33), (257, 1025)] {
            let x = scaled(&mut r, rows, dim, 2.0, 0.5);
            let row = scaled(&mut r, 1, dim, 1.0, 0.0);
            let xr = ctx.upload(&x).unwrap();
            let host = |m: &vector_accelerate::DeviceMatrix| {
                assert_eq!(
                    m.device(),
                    ctx.device(),
                    "seed {s}: result not on the context's device"
                );
                assert_eq!((m.rows(), m.dim()), (rows, dim));
                m.to_host().unwrap().into_vec()
            };
            let chain = [Unary::Mul(0.5), Unary::Exp, Unary::Add(-1.0)];
            let want = map(ctx, &x, &chain).unwrap().into_host().unwrap();
            assert!(same_bits(
                &host(&map(ctx, &x, &chain).unwrap()),
                want.as_slice()
            ));
            assert!(same_bits(
                &host(&map(ctx, &xr, &chain).unwrap()),
                want.as_slice()
            ));
            let want = binary_then(
                ctx,
                &x,
                Binary::Sub,
                Operand::row(row.as_slice()),
                &[Unary::Relu],
            )
            .unwrap()
            .into_host()
            .unwrap();
            let got = binary_then(
                ctx,
                &xr,
                Binary::Sub,
                Operand::row(row.as_slice()),
                &[Unary::Relu],
            )
            .unwrap();
            assert!(
                same_bits(&host(&got), want.as_slice()),
                "seed {s} binary {rows}x{dim}"
            );
            let want = softmax(ctx, &x).unwrap().into_host().unwrap();
            assert!(same_bits(
                &host(&softmax(ctx, &xr).unwrap()),
                want.as_slice()
            ));
            // A resident result feeds the next operation without leaving the device.
            let y = map(ctx, &xr, &[Unary::Square]).unwrap();
            let total = vector::sum(ctx, &y, Axis::All)
                .unwrap()
                .into_host()
                .unwrap()
                .into_vec();
            let want = vector::sum(
                ctx,
                &map(ctx, &x, &[Unary::Square]).unwrap().into_host().unwrap(),
                Axis::All,
            )
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
            assert_eq!(total, want, "seed {s} chained {rows}x{dim}");
        }
    });
}

/// Shapes of the resident-reduction checks: those of the family plus every
/// register kernel of the row reductions on CUDA (rows of at most 128, 256,
/// 512 and 1024 elements with dim % 4 == 0; 8, 4, 2, 1 rows per warp at a
/// time, row counts off those multiples).
const RESIDENT_SHAPES: &[(usize, usize)] = &[
    (9, 4),
    (17, 8),
    (65, 128),
    (31, 132),
    (13, 256),
    (7, 260),
    (5, 512),
    (3, 516),
    (6, 1020),
    (1, 1024),
];

/// Values with ties, signed zeros, infinities and (when `nan`) NaNs.
fn awkward(r: &mut rand::rngs::StdRng, rows: usize, dim: usize, nan: bool) -> Matrix {
    let mut m = scaled(r, rows, dim, 2.0, 0.5);
    for v in m.as_mut_slice().iter_mut() {
        match r.random_range(0..40) {
            0 => *v = 3.0,
            1 => *v = -3.0,
            2 => *v = 0.0,
            3 => *v = -0.0,
            4 => *v = f32::INFINITY,
            5 => *v = f32::NEG_INFINITY,
            6 if nan => *v = f32::NAN,
            _ => {}
        }
    }
    m
}

#[test]
fn resident_reductions_equal_host_results() {
    let s = seed();
    for_each_backend("resident_reductions_equal_host_results", |ctx| {
        let mut r = rng(s);
        for &(rows, dim) in SHAPES.iter().chain(RESIDENT_SHAPES).chain([&LARGE]) {
            for data in 0..3 {
                let x = match data {
                    0 => scaled(&mut r, rows, dim, 2.0, 0.5),
                    1 => awkward(&mut r, rows, dim, false),
                    _ => awkward(&mut r, rows, dim, true),
                };
                let xr = ctx.upload(&x).unwrap();
                for axis in [Axis::All, Axis::PerRow, Axis::PerColumn] {
                    let shape = match axis {
                        Axis::All => (1, 1),
                        Axis::PerRow => (rows, 1),
                        Axis::PerColumn => (1, dim),
                    };
                    for op in [
                        Reduction::Sum,
                        Reduction::Mean,
                        Reduction::Min,
                        Reduction::Max,
                        Reduction::Variance { ddof: 0 },
                        Reduction::Variance { ddof: 1 },
                    ] {
                        let want = match reduce(ctx, &x, op, axis) {
                            Ok(w) => w.into_host().unwrap().into_vec(),
                            Err(_) => {
                                // ddof too large: the same typed error.
                                assert!(matches!(
                                    reduce(ctx, &xr, op, axis),
                                    Err(Error::InvalidParameter { .. })
                                ));
                                continue;
                            }
                        };
                        let got = reduce(ctx, &xr, op, axis).unwrap();
                        assert_eq!(got.device(), ctx.device());
                        assert_eq!((got.rows(), got.dim()), shape);
                        let got = got.to_host().unwrap().into_vec();
                        assert!(
                            same_bits(&got, &want),
                            "seed {s} {op:?} {axis:?} {rows}x{dim} data {data}"
                        );
                        let host_in = reduce(ctx, &x, op, axis).unwrap();
                        assert!(same_bits(&host_in.to_host().unwrap().into_vec(), &want));
                    }
                    for op in [ArgReduction::ArgMin, ArgReduction::ArgMax] {
                        let want = arg_reduce(ctx, &x, op, axis).unwrap().to_host().unwrap();
                        let got = arg_reduce(ctx, &xr, op, axis).unwrap();
                        assert_eq!(got.device(), ctx.device());
                        assert_eq!(got.len(), shape.0 * shape.1);
                        assert!(!got.is_empty());
                        assert_eq!(
                            got.to_host().unwrap(),
                            want,
                            "seed {s} {op:?} {axis:?} {rows}x{dim} data {data}"
                        );
                    }
                }
                let want = logsumexp(ctx, &x).unwrap().into_host().unwrap().into_vec();
                let got = logsumexp(ctx, &xr).unwrap();
                assert_eq!(got.device(), ctx.device());
                assert_eq!((got.rows(), got.dim()), (rows, 1));
                assert!(
                    same_bits(&got.to_host().unwrap().into_vec(), &want),
                    "seed {s} logsumexp {rows}x{dim} data {data}"
                );
            }
        }
        // A resident result feeds the next operation.
        let x = scaled(&mut r, 33, 20, 1.0, 0.0);
        let sums = reduce(ctx, &x, Reduction::Sum, Axis::PerRow).unwrap();
        let total = vector::sum(ctx, &sums, Axis::All)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        let host = Matrix::new(
            reduce(ctx, &x, Reduction::Sum, Axis::PerRow)
                .unwrap()
                .into_host()
                .unwrap()
                .into_vec(),
            1,
        )
        .unwrap();
        let want = vector::sum(ctx, &host, Axis::All)
            .unwrap()
            .into_host()
            .unwrap()
            .into_vec();
        assert!(same_bits(&total, &want));
    });
}

#[test]
fn resident_reductions_reject_bad_input() {
    for_each_backend("resident_reductions_reject_bad_input", |ctx| {
        let x = Matrix::new(vec![1.0, 2.0, 3.0], 3).unwrap();
        let e = reduce(ctx, &x, Reduction::Variance { ddof: 3 }, Axis::PerRow);
        assert!(matches!(&e, Err(Error::InvalidParameter { .. })), "{e:?}");
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains('3'), "{msg}");
        let b = vector_accelerate::BinaryMatrix::new(vec![1u64], 3).unwrap();
        assert!(reduce(ctx, &b, Reduction::Sum, Axis::All).is_err());
        assert!(arg_reduce(ctx, &b, ArgReduction::ArgMax, Axis::All).is_err());
        assert!(logsumexp(ctx, &b).is_err());
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

/// Every 997th `f32` bit pattern (both signs, zeros, subnormals, normals,
/// infinities and NaNs on the way) plus the special values.
fn sweep() -> Vec<f32> {
    let mut v: Vec<f32> = (0..=u32::MAX).step_by(997).map(f32::from_bits).collect();
    v.extend([
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        88.72283,
        88.72284,
        -87.33654,
        -103.97208,
        -103.97209,
        1.0,
        -1.0,
        std::f32::consts::FRAC_PI_2,
        std::f32::consts::PI,
        65536.0,
        65537.0,
        -65536.0,
        9.0,
        10.0,
        -10.5,
        1e-30,
        -1e-30,
    ]);
    v
}

#[test]
fn cpu_transcendental_maps_are_within_their_documented_ulps() {
    // (op, reference, documented bound in ulps against the exact value
    // rounded to f32: the CPU bounds of `Unary`'s documentation).
    type Case = (Unary, fn(f64) -> f64, u32);
    let cases: [Case; 6] = [
        (Unary::Exp, f64::exp, 1),
        (Unary::Log, f64::ln, 1),
        (Unary::Sin, f64::sin, 2),
        (Unary::Cos, f64::cos, 2),
        (Unary::Tanh, f64::tanh, 2),
        (Unary::Sigmoid, |x| 1.0 / (1.0 + (-x).exp()), 2),
    ];
    let ctx = Context::cpu();
    let xs = sweep();
    let n = xs.len();
    let x = Matrix::new(xs, n).unwrap();
    for (op, f, bound) in cases {
        let y = map(&ctx, &x, &[op]).unwrap().into_host().unwrap();
        let mut worst = (0u32, 0f32);
        for (&v, &g) in x.as_slice().iter().zip(y.as_slice()) {
            let want = f(v as f64) as f32;
            let u = ulps(g, want);
            if u > worst.0 {
                worst = (u, v);
            }
            assert!(
                u <= bound,
                "{op:?}({v:e} = {:#x}): {g:e} vs fp64 {want:e} ({u} ulps > {bound})",
                v.to_bits()
            );
            // Signed zeros are kept exactly.
            if want == 0.0 && g == 0.0 {
                assert_eq!(
                    g.is_sign_negative(),
                    want.is_sign_negative(),
                    "{op:?}({v:e}): sign of zero"
                );
            }
        }
        eprintln!("{op:?}: at most {} ulps (at x = {:e})", worst.0, worst.1);
        // The chained path and the single-value path give the same bits.
        let z = binary_then(&ctx, &x, Binary::Mul, 1.0, &[op])
            .unwrap()
            .into_host()
            .unwrap();
        assert!(
            same_bits(z.as_slice(), y.as_slice()),
            "{op:?}: binary_then epilogue"
        );
    }
}

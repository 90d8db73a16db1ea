//! Element-wise maps: every `Unary` op of `map` against fp64 within its
//! documented ulps (the CPU's transcendental bounds over a sweep of bit
//! patterns), NaN, infinities and signed zeros as NumPy has them, chains
//! equal to separate steps and to `map_in_place`, and every `Binary` op of
//! `binary` with each broadcast operand (scalar, full, row, column, 1 x 1),
//! in place and with an epilogue (`binary_then`).

use rand::Rng;
use rand_distr::StandardNormal;

use super::{same_bits, scaled, ulps, BINARY, SHAPES};
use crate::common::*;
use vector_accelerate::vector::{
    binary, binary_in_place, binary_then, map, map_in_place, Binary, Operand, Unary, MAX_CHAIN,
};
use vector_accelerate::{Context, Matrix};

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

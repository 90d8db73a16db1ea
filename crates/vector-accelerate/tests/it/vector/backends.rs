//! The vector utilities across backends and inputs: CUDA against the CPU
//! (and the same bits on a second run), and rows resident on the context's
//! device giving the bits of host rows, results staying on the device and
//! feeding the next call.

use rand::Rng;

use super::{host_normalized, same_bits, scaled, ulps, BINARY, LARGE, RESIDENT_SHAPES, SHAPES};
use crate::common::*;
use vector_accelerate::vector::{
    self, arg_reduce, binary, binary_then, logsumexp, map, reduce, softmax, ArgReduction, Axis,
    Binary, Operand, Reduction, Unary,
};
use vector_accelerate::{Context, Error, Matrix};

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

//! The vector utilities' typed errors: empty and binary inputs, broadcast
//! shapes that do not fit (both shapes named), clamp bounds, chain length,
//! `ddof`, and rows resident on another device.

use crate::common::*;
use vector_accelerate::vector::{
    self, arg_reduce, binary, binary_in_place, logsumexp, map, normalize, normalize_in_place,
    reduce, softmax, ArgReduction, Axis, Binary, Operand, Reduction, Unary, MAX_CHAIN,
};
use vector_accelerate::{Context, Error, Matrix};

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

//! Every error of `histogram`, `histogram_2d` and `kde`, typed and naming
//! the offending values.

use super::{m, separate_outliers};
use crate::common::*;
use vector_accelerate::histogram::{histogram, histogram_2d, kde, Bandwidth, BinSpec, MAX_BINS};
use vector_accelerate::{Context, Error, Matrix};

fn invalid(r: Result<impl std::fmt::Debug, Error>, name: &str, value: &str) {
    match r {
        Err(Error::InvalidParameter {
            name: n,
            value: v,
            reason,
        }) => {
            assert_eq!(n, name, "{reason}");
            assert!(
                v.contains(value),
                "value {v} should contain {value} ({reason})"
            );
        }
        other => panic!("expected invalid {name} = {value}, got {other:?}"),
    }
}

#[test]
fn every_error_is_typed_with_the_offending_values() {
    for_each_backend("every_error_is_typed_with_the_offending_values", |ctx| {
        let x = m(vec![1.0, 2.0, 3.0]);
        let u = |bins, range| BinSpec::Uniform { bins, range };
        let log = |base, range| BinSpec::Log {
            bins: 4,
            base,
            range,
        };
        let empty = Matrix::new(vec![], 1).unwrap();
        assert!(matches!(
            histogram(ctx, &empty, &u(3, None), &separate_outliers()),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            kde(ctx, &empty, 3, None, Bandwidth::Scott),
            Err(Error::EmptyInput { .. })
        ));
        invalid(
            histogram(ctx, &x, &u(0, None), &separate_outliers()),
            "bins",
            "0",
        );
        invalid(
            histogram(
                ctx,
                &x,
                &BinSpec::Adaptive { bins: 0 },
                &separate_outliers(),
            ),
            "bins",
            "0",
        );
        invalid(
            histogram(ctx, &x, &u(MAX_BINS + 1, None), &separate_outliers()),
            "bins",
            &(MAX_BINS + 1).to_string(),
        );
        invalid(
            histogram(ctx, &x, &u(3, Some((2.0, 2.0))), &separate_outliers()),
            "range",
            "(2, 2)",
        );
        invalid(
            histogram(ctx, &x, &u(3, Some((3.0, 1.0))), &separate_outliers()),
            "range",
            "(3, 1)",
        );
        invalid(
            histogram(ctx, &x, &u(3, Some((f64::NAN, 1.0))), &separate_outliers()),
            "range",
            "NaN",
        );
        invalid(
            histogram(
                ctx,
                &x,
                &u(3, Some((0.0, f64::INFINITY))),
                &separate_outliers(),
            ),
            "range",
            "inf",
        );
        invalid(
            histogram(
                ctx,
                &x,
                &u(3, Some((1.0, 1.0 + 2.0 * f64::EPSILON))),
                &separate_outliers(),
            ),
            "range",
            "(1, ",
        );
        invalid(
            histogram(ctx, &x, &log(0.0, None), &separate_outliers()),
            "log base",
            "0",
        );
        invalid(
            histogram(ctx, &x, &log(-2.0, None), &separate_outliers()),
            "log base",
            "-2",
        );
        invalid(
            histogram(ctx, &x, &log(1.0, None), &separate_outliers()),
            "log base",
            "1",
        );
        invalid(
            histogram(ctx, &x, &log(f64::INFINITY, None), &separate_outliers()),
            "log base",
            "inf",
        );
        invalid(
            histogram(ctx, &x, &log(10.0, Some((0.0, 5.0))), &separate_outliers()),
            "log range",
            "(0, 5)",
        );
        invalid(
            histogram(ctx, &x, &log(10.0, Some((-1.0, 5.0))), &separate_outliers()),
            "log range",
            "(-1, 5)",
        );
        invalid(
            histogram(ctx, &x, &BinSpec::Edges(vec![1.0]), &separate_outliers()),
            "edges",
            "1 edge",
        );
        invalid(
            histogram(ctx, &x, &BinSpec::Edges(vec![]), &separate_outliers()),
            "edges",
            "0 edge",
        );
        invalid(
            histogram(
                ctx,
                &x,
                &BinSpec::Edges(vec![0.0, 2.0, 2.0]),
                &separate_outliers(),
            ),
            "edges",
            "edge 1 = 2, edge 2 = 2",
        );
        invalid(
            histogram(
                ctx,
                &x,
                &BinSpec::Edges(vec![0.0, 3.0, 1.0]),
                &separate_outliers(),
            ),
            "edges",
            "edge 1 = 3",
        );
        invalid(
            histogram(
                ctx,
                &x,
                &BinSpec::Edges(vec![0.0, f64::NAN]),
                &separate_outliers(),
            ),
            "edges",
            "edge 1 = NaN",
        );
        // No finite (positive) value to take a range or quantiles from.
        let bad = m(vec![f32::NAN, f32::INFINITY]);
        invalid(
            histogram(ctx, &bad, &u(3, None), &separate_outliers()),
            "range",
            "None",
        );
        invalid(
            histogram(
                ctx,
                &bad,
                &BinSpec::Adaptive { bins: 3 },
                &separate_outliers(),
            ),
            "adaptive bins",
            "3",
        );
        invalid(
            histogram(
                ctx,
                &m(vec![-1.0, 0.0]),
                &log(10.0, None),
                &separate_outliers(),
            ),
            "range",
            "None",
        );
        // 2-D: mismatch, too many cells.
        match histogram_2d(
            ctx,
            &x,
            &m(vec![1.0, 2.0]),
            (&u(2, None), &u(2, None)),
            &separate_outliers(),
        ) {
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        invalid(
            histogram_2d(
                ctx,
                &x,
                &x,
                (&u(1 << 12, None), &u(1 << 13, None)),
                &separate_outliers(),
            ),
            "bins",
            &(1usize << 25).to_string(),
        );
        // KDE.
        invalid(kde(ctx, &x, 0, None, Bandwidth::Scott), "grid points", "0");
        invalid(
            kde(ctx, &x, 10, None, Bandwidth::Fixed(0.0)),
            "bandwidth",
            "0",
        );
        invalid(
            kde(ctx, &x, 10, None, Bandwidth::Fixed(-1.0)),
            "bandwidth",
            "-1",
        );
        invalid(
            kde(ctx, &x, 10, None, Bandwidth::Fixed(f64::NAN)),
            "bandwidth",
            "NaN",
        );
        invalid(
            kde(ctx, &x, 10, Some((1.0, 1.0)), Bandwidth::Scott),
            "range",
            "(1, 1)",
        );
        invalid(
            kde(ctx, &m(vec![2.0, 2.0, 2.0]), 10, None, Bandwidth::Scott),
            "bandwidth",
            "Scott",
        );
        invalid(
            kde(ctx, &m(vec![2.0, f32::NAN]), 10, None, Bandwidth::Silverman),
            "bandwidth",
            "Silverman",
        );
        invalid(
            kde(ctx, &bad, 10, None, Bandwidth::Fixed(1.0)),
            "values",
            "none finite",
        );
        // Binary rows are refused.
        let bits = vector_accelerate::BinaryMatrix::new(vec![1, 2], 64).unwrap();
        invalid(
            histogram(ctx, &bits, &u(2, None), &separate_outliers()),
            "input",
            "binary",
        );
    });
    if let Some(gpu) = cuda() {
        let on_cpu = Context::cpu().upload(&m(vec![1.0, 2.0])).unwrap();
        assert!(matches!(
            histogram(
                &gpu,
                &on_cpu,
                &BinSpec::Uniform {
                    bins: 2,
                    range: None
                },
                &separate_outliers()
            ),
            Err(Error::DeviceMismatch { .. })
        ));
    }
}

//! `normalize`, `normalize_in_place` and `normalize_with_norms` against
//! fp64 on every shape: zero rows stay zero, all forms give the same bits,
//! and rows with huge, infinite or NaN elements follow the documented rules.

use super::{host_normalized, same_bits, scaled, ulps, LARGE, SHAPES};
use crate::common::*;
use vector_accelerate::vector::{normalize, normalize_in_place};
use vector_accelerate::Matrix;

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

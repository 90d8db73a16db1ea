//! `softmax`, `softmax_in_place` and `logsumexp` against fp64 on every
//! shape, and rows of infinities, NaN and huge finite values.

use super::{same_bits, scaled, ulps, SHAPES};
use crate::common::*;
use vector_accelerate::vector::{logsumexp, softmax, softmax_in_place};
use vector_accelerate::Matrix;

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

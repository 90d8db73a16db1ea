//! `kde` (Gaussian kernel density estimate on a grid) against fp64, with
//! each `Bandwidth` rule computed here from the sample.

use super::{m, values};
use crate::common::*;
use vector_accelerate::histogram::{kde, Bandwidth};

/// fp64 reference density at `g`.
fn kde_reference(x: &[f32], g: f64, h: f64) -> f64 {
    let fin: Vec<f64> = x
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f64)
        .collect();
    let s: f64 = fin
        .iter()
        .map(|v| (-0.5 * ((g - v) / h).powi(2)).exp())
        .sum();
    s / (fin.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt())
}

fn sample_sd(x: &[f32]) -> (f64, f64, f64, usize) {
    let fin: Vec<f64> = x
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f64)
        .collect();
    let n = fin.len() as f64;
    let mean = fin.iter().sum::<f64>() / n;
    let var = fin.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let lo = fin.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = fin.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (var.sqrt(), lo, hi, fin.len())
}

#[test]
fn kde_matches_fp64_and_the_bandwidth_rules() {
    let s = seed();
    for_each_backend("kde_matches_fp64_and_the_bandwidth_rules", |ctx| {
        let mut r = rng(s);
        for &n in &[2usize, 3, 255, 257, 5000, 70_001] {
            let x = values(&mut r, n, &[0.0], 1.0, 2.0, None);
            let (sd, lo, hi, nf) = sample_sd(&x);
            if nf < 2 {
                continue;
            }
            let mut seen = Vec::new();
            for (bw, want_h) in [
                (Bandwidth::Scott, (nf as f64).powf(-0.2) * sd),
                (Bandwidth::Silverman, (nf as f64 * 0.75).powf(-0.2) * sd),
                (Bandwidth::Fixed(0.3), 0.3),
            ] {
                let k = kde(ctx, &m(x.clone()), 101, None, bw).unwrap();
                assert!(
                    (k.bandwidth / want_h - 1.0).abs() < 1e-12,
                    "seed {s} {bw:?}: {} vs {want_h}",
                    k.bandwidth
                );
                assert_eq!(k.samples as usize, nf);
                assert_eq!(k.non_finite as usize, n - nf);
                let h = k.bandwidth;
                assert!((k.grid[0] - (lo - 3.0 * h)).abs() < 1e-12 * (1.0 + lo.abs()));
                assert!((k.grid[100] - (hi + 3.0 * h)).abs() < 1e-12 * (1.0 + hi.abs()));
                for (g, d) in k.grid.iter().zip(&k.density) {
                    let want = kde_reference(&x, *g, h);
                    assert!(
                        (d - want).abs() <= 1e-10 * want.max(1e-300) + 1e-300,
                        "seed {s} {} n {n} at {g}: {d} vs {want}",
                        ctx.device()
                    );
                }
                // Integrates to about 1 over +-3h beyond the data (trapezoids).
                let dx = k.grid[1] - k.grid[0];
                let integral: f64 = k.density.windows(2).map(|w| (w[0] + w[1]) / 2.0 * dx).sum();
                assert!(integral > 0.98 && integral < 1.01, "{integral}");
                seen.push(k.density);
            }
            // Each rule changes the output.
            assert_ne!(seen[0], seen[1]);
            assert_ne!(seen[0], seen[2]);
        }
        // Given range and grid.
        let x = m(vec![0.0, 1.0, f32::NAN]);
        let k = kde(ctx, &x, 5, Some((-2.0, 2.0)), Bandwidth::Fixed(0.5)).unwrap();
        assert_eq!(k.grid, vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        for (g, d) in k.grid.iter().zip(&k.density) {
            assert!((d - kde_reference(x.as_slice(), *g, 0.5)).abs() < 1e-15);
        }
        let one = kde(ctx, &x, 1, Some((0.5, 2.0)), Bandwidth::Fixed(0.5)).unwrap();
        assert_eq!(one.grid, vec![0.5]);
    });
}

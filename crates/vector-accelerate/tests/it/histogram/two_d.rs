//! `histogram_2d` against an fp64 reference of its cells, outliers and
//! non-finite pairs, for every combination of bin specs and options.

use rand::Rng;

use super::{clip_outliers, m, separate_outliers, values, SIZES};
use crate::common::*;
use vector_accelerate::histogram::{histogram_2d, BinSpec, HistogramOptions, Outliers};
use vector_accelerate::Error;

/// The fp64 reference of a 2-D histogram: `(cells, outside, non_finite)`.
fn reference_2d(x: &[f32], y: &[f32], ex: &[f64], ey: &[f64], clip: bool) -> (Vec<u64>, u64, u64) {
    let (bx, by) = (ex.len() - 1, ey.len() - 1);
    let (mut c, mut out, mut bad) = (vec![0u64; bx * by], 0, 0);
    let place = |v: f64, e: &[f64]| -> (usize, bool) {
        let b = e.len() - 1;
        if v < e[0] {
            (0, true)
        } else if v > e[b] {
            (b - 1, true)
        } else {
            ((e.partition_point(|&t| t <= v) - 1).min(b - 1), false)
        }
    };
    for (&u, &v) in x.iter().zip(y) {
        if !u.is_finite() || !v.is_finite() {
            bad += 1;
            continue;
        }
        let ((i, oi), (j, oj)) = (place(u as f64, ex), place(v as f64, ey));
        if oi || oj {
            out += 1;
            if !clip {
                continue;
            }
        }
        c[i * by + j] += 1;
    }
    (c, out, bad)
}

#[test]
fn histogram_2d_matches_fp64() {
    let s = seed();
    for_each_backend("histogram_2d_matches_fp64", |ctx| {
        let mut r = rng(s);
        let specs = [
            (
                BinSpec::Uniform {
                    bins: 8,
                    range: Some((-2.0, 2.0)),
                },
                BinSpec::Edges(vec![-3.0, -0.5, 0.1, 0.2, 4.0]),
            ),
            (
                BinSpec::Uniform {
                    bins: 3,
                    range: None,
                },
                BinSpec::Log {
                    bins: 4,
                    base: 10.0,
                    range: Some((0.1, 100.0)),
                },
            ),
            (
                BinSpec::Adaptive { bins: 5 },
                BinSpec::Uniform {
                    bins: 1,
                    range: Some((0.0, 1.0)),
                },
            ),
            // Cells beyond shared memory on CUDA (global atomics).
            (
                BinSpec::Uniform {
                    bins: 200,
                    range: Some((-3.0, 3.0)),
                },
                BinSpec::Uniform {
                    bins: 130,
                    range: Some((-3.0, 3.0)),
                },
            ),
        ];
        for &n in SIZES {
            for (sx, sy) in &specs {
                let x = values(&mut r, n, &[-2.0, 0.0, 2.0], 0.0, 1.5, None);
                let y: Vec<f32> = values(&mut r, n, &[0.1, 1.0, 10.0, 0.2], 0.0, 2.0, None)
                    .into_iter()
                    .map(|v| {
                        if v.is_finite() && v <= 0.0 && r.random::<bool>() {
                            -v * 10.0
                        } else {
                            v
                        }
                    })
                    .collect();
                for (opt, clip) in [(separate_outliers(), false), (clip_outliers(), true)] {
                    let h = match histogram_2d(ctx, &m(x.clone()), &m(y.clone()), (sx, sy), &opt) {
                        Ok(h) => h,
                        // Tiny inputs may hold no finite x for a data range.
                        Err(Error::InvalidParameter {
                            name: "range" | "adaptive bins",
                            ..
                        }) if n < 8 => continue,
                        Err(e) => panic!("{e}"),
                    };
                    let (c, out, bad) = reference_2d(&x, &y, &h.edges_x, &h.edges_y, clip);
                    assert_eq!(
                        h.counts,
                        c,
                        "seed {s} {} n {n} {sx:?} {sy:?} clip {clip}",
                        ctx.device()
                    );
                    assert_eq!((h.outside, h.non_finite), (out, bad), "seed {s} n {n}");
                    assert_eq!(h.counts.len(), h.bins_x() * h.bins_y());
                }
            }
        }
        // Row-major cells, density over areas.
        let x = m(vec![0.5, 0.5, 1.5, 2.5]);
        let y = m(vec![0.5, 3.0, 0.5, 0.5]);
        let sx = BinSpec::Edges(vec![0.0, 1.0, 2.0]);
        let sy = BinSpec::Edges(vec![0.0, 1.0, 4.0]);
        let h = histogram_2d(
            ctx,
            &x,
            &y,
            (&sx, &sy),
            &HistogramOptions::default()
                .with_outliers(Outliers::Separate)
                .with_density(true),
        )
        .unwrap();
        assert_eq!(h.counts, vec![1, 1, 1, 0]);
        assert_eq!(h.count(0, 1), 1);
        assert_eq!(h.outside, 1);
        assert_eq!(
            h.density.unwrap(),
            vec![1.0 / 3.0, 1.0 / 9.0, 1.0 / 3.0, 0.0]
        );
        let h = histogram_2d(ctx, &x, &y, (&sx, &sy), &clip_outliers()).unwrap();
        assert_eq!(h.counts, vec![1, 1, 2, 0]);
    });
}

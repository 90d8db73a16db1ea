//! Histograms, 2-D histograms and density estimates across backends and
//! inputs: CUDA gives the CPU's counts (and the same result on a second
//! run) on fresh random inputs of many sizes, and rows resident on the
//! context's device give the host results.

use super::{clip_outliers, m, separate_outliers, values, SIZES};
use crate::common::*;
use vector_accelerate::histogram::{
    histogram, histogram_2d, kde, Bandwidth, BinSpec, HistogramOptions, Outliers,
};
use vector_accelerate::{Context, Matrix};

#[test]
fn cuda_agrees_with_cpu_and_is_deterministic() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: no CUDA device");
        return;
    };
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let specs = [
        BinSpec::Uniform {
            bins: 1024,
            range: Some((-4.0, 4.0)),
        },
        BinSpec::Uniform {
            bins: 1024,
            range: None,
        },
        BinSpec::Uniform {
            bins: 1,
            range: None,
        },
        BinSpec::Uniform {
            bins: 3,
            range: Some((-1.0, 1.0)),
        },
        BinSpec::Uniform {
            bins: 5000,
            range: Some((-4.0, 4.0)),
        },
        BinSpec::Uniform {
            bins: 70_000,
            range: Some((-4.0, 4.0)),
        },
        BinSpec::Log {
            bins: 50,
            base: 10.0,
            range: None,
        },
        BinSpec::Edges(
            (0..700)
                .map(|i| ((i as f64) / 100.0).sinh() - 3.0)
                .collect(),
        ),
        BinSpec::Adaptive { bins: 33 },
    ];
    for &n in SIZES.iter().chain(&[4_000_000usize]) {
        let x = values(&mut r, n, &[-4.0, -1.0, 0.0, 0.5, 1.0, 4.0], 0.0, 1.5, None);
        let xm = m(x.clone());
        let xr = gpu.upload(&xm).unwrap();
        for spec in &specs {
            for opt in [
                separate_outliers(),
                clip_outliers(),
                HistogramOptions::default()
                    .with_outliers(Outliers::Separate)
                    .with_density(true),
            ] {
                let c = histogram(&cpu, &xm, spec, &opt);
                let g = histogram(&gpu, &xm, spec, &opt);
                match (c, g) {
                    (Ok(c), Ok(g)) => {
                        assert_eq!(c, g, "seed {s} n {n} {spec:?} {opt:?}");
                        let again = histogram(&gpu, &xr, spec, &opt).unwrap();
                        assert_eq!(again, g, "seed {s} resident n {n}");
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (c, g) => panic!("seed {s} n {n} {spec:?}: cpu {c:?} cuda {g:?}"),
                }
            }
        }
        let y = values(&mut r, n, &[0.0], 0.5, 1.0, None);
        let ym = m(y);
        for (sx, sy) in [
            (
                BinSpec::Uniform {
                    bins: 16,
                    range: None,
                },
                BinSpec::Uniform {
                    bins: 8,
                    range: Some((-1.0, 2.0)),
                },
            ),
            (
                BinSpec::Edges(vec![-1.0, 0.0, 0.1, 5.0]),
                BinSpec::Log {
                    bins: 9,
                    base: 2.0,
                    range: None,
                },
            ),
            (
                BinSpec::Uniform {
                    bins: 300,
                    range: None,
                },
                BinSpec::Uniform {
                    bins: 300,
                    range: None,
                },
            ),
        ] {
            for opt in [separate_outliers(), clip_outliers()] {
                let c = histogram_2d(&cpu, &xm, &ym, (&sx, &sy), &opt);
                let g = histogram_2d(&gpu, &xm, &ym, (&sx, &sy), &opt);
                match (c, g) {
                    (Ok(c), Ok(g)) => assert_eq!(c, g, "seed {s} 2-D n {n} {sx:?} {sy:?}"),
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (c, g) => panic!("seed {s} n {n}: cpu {c:?} cuda {g:?}"),
                }
            }
        }
        if n <= 100_000 {
            for bw in [Bandwidth::Scott, Bandwidth::Fixed(0.2)] {
                let (c, g) = (kde(&cpu, &xm, 600, None, bw), kde(&gpu, &xm, 600, None, bw));
                let (Ok(c), Ok(g)) = (c, g) else { continue };
                assert!((c.bandwidth / g.bandwidth - 1.0).abs() < 1e-13);
                for (a, b) in c.density.iter().zip(&g.density) {
                    assert!(
                        (a - b).abs() <= 1e-12 * a.abs().max(1e-300),
                        "seed {s} kde n {n}: {a} vs {b}"
                    );
                }
                let again = kde(&gpu, &xr, 600, None, bw).unwrap();
                assert_eq!(again, g, "seed {s} kde not deterministic");
            }
        }
    }
}

#[test]
fn resident_inputs_give_the_host_results() {
    let s = seed();
    for_each_backend("resident_inputs_give_the_host_results", |ctx| {
        let mut r = rng(s);
        let x = Matrix::new(values(&mut r, 3 * 1001, &[0.0], 0.0, 1.0, None), 3).unwrap();
        let y = Matrix::new(values(&mut r, 3 * 1001, &[0.0], 0.0, 1.0, None), 1).unwrap();
        let (xr, yr) = (ctx.upload(&x).unwrap(), ctx.upload(&y).unwrap());
        for spec in [
            BinSpec::Uniform {
                bins: 20,
                range: None,
            },
            BinSpec::Adaptive { bins: 7 },
        ] {
            assert_eq!(
                histogram(ctx, &x, &spec, &separate_outliers()).unwrap(),
                histogram(ctx, &xr, &spec, &separate_outliers()).unwrap()
            );
            // x is 1001 x 3 and y 3003 x 1: same element count, flattened.
            assert_eq!(
                histogram_2d(ctx, &x, &y, (&spec, &spec), &separate_outliers()).unwrap(),
                histogram_2d(ctx, &xr, &yr, (&spec, &spec), &separate_outliers()).unwrap()
            );
        }
        assert_eq!(
            kde(ctx, &x, 50, None, Bandwidth::Silverman).unwrap(),
            kde(ctx, &xr, 50, None, Bandwidth::Silverman).unwrap()
        );
    });
}

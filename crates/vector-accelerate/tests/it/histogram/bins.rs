//! `histogram` with every `BinSpec` against the fp64 reference: uniform
//! bins with a given range on many sizes, ranges taken from the finite
//! values, custom non-uniform edges with values on them, logarithmic bins
//! (given and from the data), adaptive (equal-frequency) edges as linear
//! quantiles, and extreme ranges and values.

use rand::Rng;

use super::{check, clip_outliers, m, normal, pinned, separate_outliers, values, SIZES};
use crate::common::*;
use vector_accelerate::histogram::{histogram, BinSpec};
use vector_accelerate::Error;

#[test]
fn uniform_given_range_matches_fp64_on_many_sizes() {
    let s = seed();
    for_each_backend("uniform_given_range_matches_fp64_on_many_sizes", |ctx| {
        let mut r = rng(s);
        for &n in SIZES {
            for (bins, lo, hi) in [
                (1usize, -1.0, 1.0),
                (3, -2.0, 5.0),
                (10, 0.1, 0.7),
                (1024, -4.0, 4.0),
                (7, -1e-3, 3e-3),
            ] {
                let spec = BinSpec::Uniform {
                    bins,
                    range: Some((lo, hi)),
                };
                let e0 = histogram(ctx, &m(vec![0.0]), &spec, &separate_outliers())
                    .unwrap()
                    .edges;
                let step = (hi - lo) / bins as f64;
                for (i, e) in e0.iter().enumerate() {
                    let want = if i == bins { hi } else { i as f64 * step + lo };
                    assert_eq!(*e, want, "edge {i}");
                }
                let x = values(&mut r, n, &e0, (lo + hi) / 2.0, (hi - lo) / 3.0, None);
                for (opt, clip) in [(separate_outliers(), false), (clip_outliers(), true)] {
                    let h = histogram(ctx, &m(x.clone()), &spec, &opt).unwrap();
                    assert_eq!(h.edges, e0);
                    check(
                        &h,
                        &x,
                        clip,
                        &format!("seed {s} {} n {n} bins {bins} clip {clip}", ctx.device()),
                    );
                }
            }
        }
    });
}

#[test]
fn ranges_from_the_data_use_finite_values() {
    let s = seed();
    for_each_backend("ranges_from_the_data_use_finite_values", |ctx| {
        let mut r = rng(s);
        for &n in SIZES {
            let (lo, hi) = (-3.25f32, 6.5f32);
            let spec = BinSpec::Uniform {
                bins: 13,
                range: None,
            };
            let want = vector_accelerate::histogram::histogram(
                ctx,
                &m(vec![lo, hi]),
                &spec,
                &separate_outliers(),
            )
            .unwrap()
            .edges;
            assert_eq!((want[0], want[13]), (lo as f64, hi as f64));
            let mut x = pinned(&mut r, n.max(2), lo, hi, &want);
            // Non-finite values never widen the range.
            x.push(f32::INFINITY);
            x.push(f32::NAN);
            x.push(f32::NEG_INFINITY);
            let h = histogram(ctx, &m(x.clone()), &spec, &separate_outliers()).unwrap();
            assert_eq!(h.edges, want, "seed {s} n {n}");
            check(
                &h,
                &x,
                false,
                &format!("seed {s} {} data range n {n}", ctx.device()),
            );
            assert_eq!((h.below, h.above), (0, 0));
        }
        // All equal: NumPy's (v - 0.5, v + 0.5).
        let h = histogram(
            ctx,
            &m(vec![2.0; 5]),
            &BinSpec::Uniform {
                bins: 2,
                range: None,
            },
            &separate_outliers(),
        )
        .unwrap();
        assert_eq!(h.edges, vec![1.5, 2.0, 2.5]);
        assert_eq!(h.counts, vec![0, 5]);
    });
}

#[test]
fn custom_non_uniform_edges_and_values_on_them() {
    let s = seed();
    for_each_backend("custom_non_uniform_edges_and_values_on_them", |ctx| {
        let mut r = rng(s);
        // Edges not representable in f32 (0.1, 1/3), tiny and huge bins.
        let tables: Vec<Vec<f64>> = vec![
            vec![-1.0, 0.1, 1.0 / 3.0, 0.35, 2.0, 2.0 + 1e-9, 10.0],
            vec![0.0, 1.0],
            (0..300).map(|i| (i as f64 / 40.0).powi(3) - 50.0).collect(),
            (0..20_001).map(|i| i as f64 * 0.001 - 10.0).collect(),
        ];
        for e in &tables {
            let spec = BinSpec::Edges(e.clone());
            for &n in SIZES {
                let mid = (e[0] + e[e.len() - 1]) / 2.0;
                let x = values(&mut r, n, e, mid, (e[e.len() - 1] - e[0]) / 3.0, None);
                for (opt, clip) in [(separate_outliers(), false), (clip_outliers(), true)] {
                    let h = histogram(ctx, &m(x.clone()), &spec, &opt).unwrap();
                    assert_eq!(&h.edges, e);
                    check(
                        &h,
                        &x,
                        clip,
                        &format!("seed {s} {} {} edges n {n}", ctx.device(), e.len()),
                    );
                }
            }
        }
    });
}

#[test]
fn log_bins_given_and_from_the_data() {
    let s = seed();
    for_each_backend("log_bins_given_and_from_the_data", |ctx| {
        let mut r = rng(s);
        for &n in SIZES {
            for (bins, base, lo, hi) in [
                (5usize, 10.0, 1.0, 1e5),
                (16, 2.0, 0.3, 700.0),
                (64, std::f64::consts::E, 1e-3, 1e3),
                (3, 0.5, 0.25, 8.0),
            ] {
                let spec = BinSpec::Log {
                    bins,
                    base,
                    range: Some((lo, hi)),
                };
                let e = histogram(ctx, &m(vec![1.0]), &spec, &separate_outliers())
                    .unwrap()
                    .edges;
                assert_eq!((e[0], e[bins]), (lo, hi));
                let ratio = (hi / lo).powf(1.0 / bins as f64);
                for w in e.windows(2) {
                    assert!((w[1] / w[0] / ratio - 1.0).abs() < 1e-12, "{e:?}");
                }
                // Log-normal values around the geometric middle, values on
                // and next to the edges, NaN, and zeros and negatives (out of
                // range below).
                let mid = (lo * hi).sqrt();
                let spread = (hi / lo).ln() / 4.0;
                let mut x: Vec<f32> = (0..n)
                    .map(|_| {
                        let u: f64 = r.random();
                        if u < 0.1 {
                            let t = e[r.random_range(0..=bins)] as f32;
                            [t, t.next_up(), t.next_down()][r.random_range(0..3)]
                        } else if u < 0.12 {
                            f32::NAN
                        } else {
                            (mid * (spread * normal(&mut r)).exp()) as f32
                        }
                    })
                    .collect();
                if n > 3 {
                    x[1] = 0.0;
                    x[2] = -5.0;
                }
                for (opt, clip) in [(separate_outliers(), false), (clip_outliers(), true)] {
                    let h = histogram(ctx, &m(x.clone()), &spec, &opt).unwrap();
                    check(
                        &h,
                        &x,
                        clip,
                        &format!("seed {s} {} log base {base} n {n}", ctx.device()),
                    );
                    if n > 3 {
                        assert!(h.below >= 2);
                    }
                }
            }
        }
        // Default range: positive finite values widened to whole powers.
        let x = m(vec![-3.0, 0.0, 0.013, 5.0, 870.0, f32::NAN]);
        let h = histogram(
            ctx,
            &x,
            &BinSpec::Log {
                bins: 5,
                base: 10.0,
                range: None,
            },
            &separate_outliers(),
        )
        .unwrap();
        assert_eq!((h.edges[0], h.edges[5]), (0.01, 1000.0));
        for w in h.edges.windows(2) {
            assert!((w[1] / w[0] - 10.0).abs() < 1e-9, "{:?}", h.edges);
        }
        assert_eq!(h.counts, vec![1, 0, 1, 0, 1]);
        assert_eq!((h.below, h.above, h.non_finite), (2, 0, 1));
        // The base changes the default range (so the edges and counts).
        let h2 = histogram(
            ctx,
            &x,
            &BinSpec::Log {
                bins: 5,
                base: 2.0,
                range: None,
            },
            &separate_outliers(),
        )
        .unwrap();
        assert_eq!((h2.edges[0], h2.edges[5]), (2f64.powi(-7), 1024.0));
        assert_ne!(h2.edges, h.edges);
        // A power of the base as the only value still gets a range.
        let h3 = histogram(
            ctx,
            &m(vec![4.0; 3]),
            &BinSpec::Log {
                bins: 2,
                base: 2.0,
                range: None,
            },
            &separate_outliers(),
        )
        .unwrap();
        assert_eq!((h3.edges[0], h3.edges[2]), (4.0, 8.0));
        assert!((h3.edges[1] - 2f64.powf(2.5)).abs() < 1e-12);
        assert_eq!(h3.counts, vec![3, 0]);
    });
}

#[test]
fn adaptive_edges_are_linear_quantiles() {
    let s = seed();
    for_each_backend("adaptive_edges_are_linear_quantiles", |ctx| {
        let mut r = rng(s);
        for &n in SIZES {
            for bins in [1usize, 4, 10, 100] {
                // Many repeated values (0.25 steps) make equal edges.
                let x: Vec<f32> = values(&mut r, n, &[0.0], 0.0, 2.0, None)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if i % 2 == 0 && v.is_finite() {
                            (v * 4.0).round() / 4.0
                        } else {
                            v
                        }
                    })
                    .collect();
                let mut fin: Vec<f64> = x
                    .iter()
                    .filter(|v| v.is_finite())
                    .map(|&v| v as f64)
                    .collect();
                if fin.is_empty() {
                    assert!(matches!(
                        histogram(
                            ctx,
                            &m(x.clone()),
                            &BinSpec::Adaptive { bins },
                            &separate_outliers()
                        ),
                        Err(Error::InvalidParameter { .. })
                    ));
                    continue;
                }
                fin.sort_by(f64::total_cmp);
                let h = histogram(
                    ctx,
                    &m(x.clone()),
                    &BinSpec::Adaptive { bins },
                    &separate_outliers(),
                )
                .unwrap();
                assert_eq!(h.edges.len(), bins + 1);
                for (i, e) in h.edges.iter().enumerate() {
                    let q = (fin.len() - 1) as f64 * i as f64 / bins as f64;
                    let k = q.floor() as usize;
                    let (want, scale) = if k + 1 < fin.len() {
                        (
                            fin[k] + (fin[k + 1] - fin[k]) * (q - k as f64),
                            fin[k].abs().max(fin[k + 1].abs()),
                        )
                    } else {
                        (fin[k], fin[k].abs())
                    };
                    // Edges are the f32 quantiles (as NumPy's of f32 data).
                    assert!(
                        (e - want).abs()
                            <= 6e-8 * want.abs() + 1e-15 * scale + f32::from_bits(1) as f64,
                        "seed {s} edge {i}: {e} vs {want}"
                    );
                }
                assert_eq!((h.edges[0], h.edges[bins]), (fin[0], fin[fin.len() - 1]));
                check(
                    &h,
                    &x,
                    false,
                    &format!("seed {s} {} adaptive {bins} n {n}", ctx.device()),
                );
                assert_eq!((h.below, h.above), (0, 0));
                // Zero-width bins (repeated edges) stay empty, except a
                // closed zero-width last bin.
                for i in 0..bins - 1 {
                    if h.edges[i] == h.edges[i + 1] {
                        assert_eq!(h.counts[i], 0, "zero-width bin {i} of {:?}", h.edges);
                    }
                }
            }
        }
        // Equal frequency: 100 distinct values in 4 bins of 25.
        let x: Vec<f32> = (0..100).map(|i| (i * 37 % 100) as f32).collect();
        let h = histogram(
            ctx,
            &m(x),
            &BinSpec::Adaptive { bins: 4 },
            &separate_outliers(),
        )
        .unwrap();
        assert_eq!(h.edges, vec![0.0, 24.75, 49.5, 74.25, 99.0]);
        assert_eq!(h.counts, vec![25, 25, 25, 25]);
        // Repeated values: edges [0, 0, 1, 1] on [0 x 3, 1 x 3]: the first
        // bin (zero width) is empty, the last (closed) holds the 1s.
        let h = histogram(
            ctx,
            &m(vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
            &BinSpec::Adaptive { bins: 3 },
            &separate_outliers(),
        )
        .unwrap();
        assert_eq!(h.edges, vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(h.counts, vec![0, 3, 3]);
    });
}

#[test]
fn extreme_ranges_and_values() {
    for_each_backend("extreme_ranges_and_values", |ctx| {
        let x = vec![
            -f32::MAX,
            -1e30,
            -1.0,
            0.0,
            1e-40,
            1.0,
            1e30,
            f32::MAX,
            f32::MIN_POSITIVE,
        ];
        for spec in [
            BinSpec::Uniform {
                bins: 10,
                range: Some((-1e300, 1e300)),
            },
            BinSpec::Uniform {
                bins: 10,
                range: Some((-1e39, 1e38)),
            },
            BinSpec::Uniform {
                bins: 1000,
                range: None,
            },
            BinSpec::Uniform {
                bins: 5,
                range: Some((1.0, 1.0 + 1e-12)),
            },
            BinSpec::Log {
                bins: 7,
                base: 10.0,
                range: None,
            },
            BinSpec::Log {
                bins: 7,
                base: 10.0,
                range: Some((1e-300, 1e300)),
            },
            BinSpec::Edges(vec![-1e300, -1.0, 0.0, 1e-45, 1e-39, 1.0, 1e38, 1e300]),
        ] {
            for (opt, clip) in [(separate_outliers(), false), (clip_outliers(), true)] {
                let h = histogram(ctx, &m(x.clone()), &spec, &opt).unwrap();
                check(&h, &x, clip, &format!("{} {spec:?}", ctx.device()));
            }
        }
    });
}

//! Histograms and kernel density estimates: every backend against
//! an independent fp64 reference written here (edges compared as `f64`,
//! bins found by a plain search), CUDA against the CPU (identical counts)
//! on fresh random inputs of many sizes, values placed exactly on and next
//! to edges, every option shown to change the output, and every error.
//! Device outputs are poisoned before kernels run (see `common::backends`).

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::common::*;
use vector_accelerate::histogram::{
    histogram, histogram_2d, kde, Bandwidth, BinSpec, Histogram, HistogramOptions, Outliers,
    MAX_BINS,
};
use vector_accelerate::{Context, Error, Matrix};

/// Sizes around the kernels' 4-element groups and 256-thread blocks,
/// primes, and a large one (not a multiple of 4).
const SIZES: &[usize] = &[1, 2, 3, 5, 255, 256, 257, 1021, 4099, 65_537, 1_000_003];

const SEPARATE: HistogramOptions = HistogramOptions {
    outliers: Outliers::Separate,
    density: false,
};
const CLIP: HistogramOptions = HistogramOptions {
    outliers: Outliers::Clip,
    density: false,
};

fn m(v: Vec<f32>) -> Matrix {
    Matrix::new(v, 1).unwrap()
}

/// The fp64 reference: `(counts, below, above, non_finite)` with bins
/// `[e_i, e_{i+1})`, the last closed; a value goes to the last bin whose
/// left edge is `<=` it.
fn reference(x: &[f32], e: &[f64], clip: bool) -> (Vec<u64>, u64, u64, u64) {
    let bins = e.len() - 1;
    let (mut c, mut below, mut above, mut bad) = (vec![0u64; bins], 0, 0, 0);
    for &v in x {
        if !v.is_finite() {
            bad += 1;
            continue;
        }
        let v = v as f64;
        let i = if v < e[0] {
            below += 1;
            if !clip {
                continue;
            }
            0
        } else if v > e[bins] {
            above += 1;
            if !clip {
                continue;
            }
            bins - 1
        } else {
            let mut i = 0;
            while i + 1 < bins && e[i + 1] <= v {
                i += 1;
            }
            // Linear walk for short tables is the definition; check a
            // binary search agrees for long ones.
            i
        };
        c[i] += 1;
    }
    (c, below, above, bad)
}

/// The reference of a large table by binary search (the same definition).
fn reference_fast(x: &[f32], e: &[f64], clip: bool) -> (Vec<u64>, u64, u64, u64) {
    if e.len() <= 64 {
        return reference(x, e, clip);
    }
    let bins = e.len() - 1;
    let (mut c, mut below, mut above, mut bad) = (vec![0u64; bins], 0, 0, 0);
    for &v in x {
        if !v.is_finite() {
            bad += 1;
            continue;
        }
        let v = v as f64;
        if v < e[0] {
            below += 1;
            if clip {
                c[0] += 1;
            }
        } else if v > e[bins] {
            above += 1;
            if clip {
                c[bins - 1] += 1;
            }
        } else {
            c[(e.partition_point(|&t| t <= v) - 1).min(bins - 1)] += 1;
        }
    }
    (c, below, above, bad)
}

fn check(h: &Histogram, x: &[f32], clip: bool, what: &str) {
    let (c, b, a, bad) = reference_fast(x, &h.edges, clip);
    assert_eq!(h.counts.len(), h.edges.len() - 1, "{what}");
    if h.counts != c {
        let i = (0..c.len()).find(|&i| c[i] != h.counts[i]).unwrap();
        panic!(
            "{what}: bin {i} [{}, {}] has {} values, the fp64 reference {}",
            h.edges[i],
            h.edges[i + 1],
            h.counts[i],
            c[i]
        );
    }
    assert_eq!(
        (h.below, h.above, h.non_finite),
        (b, a, bad),
        "{what}: below / above / non-finite"
    );
    let total: u64 = h.counts.iter().sum();
    if clip {
        assert_eq!(total + bad, x.len() as u64, "{what}");
    } else {
        assert_eq!(total + b + a + bad, x.len() as u64, "{what}");
    }
}

fn normal(r: &mut StdRng) -> f64 {
    r.sample::<f64, _>(StandardNormal)
}

/// `n` values: mostly N(mid, spread), 10% placed exactly on an edge or
/// one f32 step either side of it, 2% non-finite. Values outside `[lo,
/// hi]` are replaced by `lo` / `hi` when `inside` (so a range taken from
/// the data stays the same).
fn values(
    r: &mut StdRng,
    n: usize,
    edges: &[f64],
    mid: f64,
    spread: f64,
    inside: Option<(f32, f32)>,
) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u: f64 = r.random();
            let v = if u < 0.02 {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][r.random_range(0..3)]
            } else if u < 0.12 {
                let e = edges[r.random_range(0..edges.len())] as f32;
                match r.random_range(0..3) {
                    0 => e,
                    1 => e.next_up(),
                    _ => e.next_down(),
                }
            } else {
                (mid + spread * normal(r)) as f32
            };
            match inside {
                Some((lo, hi)) if v.is_finite() => v.clamp(lo, hi),
                _ => v,
            }
        })
        .collect()
}

/// Values with pinned extremes `lo` and `hi` (first and last), the rest
/// inside, on the edges of `edges` where given.
fn pinned(r: &mut StdRng, n: usize, lo: f32, hi: f32, edges: &[f64]) -> Vec<f32> {
    let mid = (lo as f64 + hi as f64) / 2.0;
    let spread = (hi as f64 - lo as f64) / 5.0;
    let mut x = values(r, n, edges, mid, spread, Some((lo, hi)));
    x[0] = lo;
    if n > 1 {
        x[n - 1] = hi;
    }
    x
}

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
                let e0 = histogram(ctx, &m(vec![0.0]), &spec, &SEPARATE)
                    .unwrap()
                    .edges;
                let step = (hi - lo) / bins as f64;
                for (i, e) in e0.iter().enumerate() {
                    let want = if i == bins { hi } else { i as f64 * step + lo };
                    assert_eq!(*e, want, "edge {i}");
                }
                let x = values(&mut r, n, &e0, (lo + hi) / 2.0, (hi - lo) / 3.0, None);
                for (opt, clip) in [(SEPARATE, false), (CLIP, true)] {
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
            let want =
                vector_accelerate::histogram::histogram(ctx, &m(vec![lo, hi]), &spec, &SEPARATE)
                    .unwrap()
                    .edges;
            assert_eq!((want[0], want[13]), (lo as f64, hi as f64));
            let mut x = pinned(&mut r, n.max(2), lo, hi, &want);
            // Non-finite values never widen the range.
            x.push(f32::INFINITY);
            x.push(f32::NAN);
            x.push(f32::NEG_INFINITY);
            let h = histogram(ctx, &m(x.clone()), &spec, &SEPARATE).unwrap();
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
            &SEPARATE,
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
                for (opt, clip) in [(SEPARATE, false), (CLIP, true)] {
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
                let e = histogram(ctx, &m(vec![1.0]), &spec, &SEPARATE)
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
                for (opt, clip) in [(SEPARATE, false), (CLIP, true)] {
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
            &SEPARATE,
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
            &SEPARATE,
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
            &SEPARATE,
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
                        histogram(ctx, &m(x.clone()), &BinSpec::Adaptive { bins }, &SEPARATE),
                        Err(Error::InvalidParameter { .. })
                    ));
                    continue;
                }
                fin.sort_by(f64::total_cmp);
                let h =
                    histogram(ctx, &m(x.clone()), &BinSpec::Adaptive { bins }, &SEPARATE).unwrap();
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
        let h = histogram(ctx, &m(x), &BinSpec::Adaptive { bins: 4 }, &SEPARATE).unwrap();
        assert_eq!(h.edges, vec![0.0, 24.75, 49.5, 74.25, 99.0]);
        assert_eq!(h.counts, vec![25, 25, 25, 25]);
        // Repeated values: edges [0, 0, 1, 1] on [0 x 3, 1 x 3]: the first
        // bin (zero width) is empty, the last (closed) holds the 1s.
        let h = histogram(
            ctx,
            &m(vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
            &BinSpec::Adaptive { bins: 3 },
            &SEPARATE,
        )
        .unwrap();
        assert_eq!(h.edges, vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(h.counts, vec![0, 3, 3]);
    });
}

#[test]
fn density_clip_and_non_finite_options_change_the_output() {
    for_each_backend(
        "density_clip_and_non_finite_options_change_the_output",
        |ctx| {
            let x = m(vec![
                -5.0,
                0.0,
                0.5,
                1.0,
                1.5,
                2.0,
                3.0,
                9.0,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
            ]);
            let spec = BinSpec::Edges(vec![0.0, 1.0, 3.0]);
            let sep = histogram(ctx, &x, &spec, &SEPARATE).unwrap();
            assert_eq!(sep.counts, vec![2, 4]);
            assert_eq!((sep.below, sep.above, sep.non_finite), (1, 1, 3));
            assert_eq!(sep.density, None);
            let clip = histogram(ctx, &x, &spec, &CLIP).unwrap();
            assert_eq!(clip.counts, vec![3, 5]);
            assert_eq!((clip.below, clip.above, clip.non_finite), (1, 1, 3));
            let d = histogram(
                ctx,
                &x,
                &spec,
                &HistogramOptions {
                    outliers: Outliers::Separate,
                    density: true,
                },
            )
            .unwrap();
            assert_eq!(d.counts, sep.counts);
            let dens = d.density.unwrap();
            assert_eq!(dens, vec![2.0 / 6.0, 4.0 / (6.0 * 2.0)]);
            let integral: f64 = dens
                .iter()
                .zip(d.edges.windows(2))
                .map(|(p, w)| p * (w[1] - w[0]))
                .sum();
            assert!((integral - 1.0).abs() < 1e-15);
            let dc = histogram(
                ctx,
                &x,
                &spec,
                &HistogramOptions {
                    outliers: Outliers::Clip,
                    density: true,
                },
            )
            .unwrap();
            assert_eq!(dc.density.unwrap(), vec![3.0 / 8.0, 5.0 / 16.0]);
            // Nothing in any bin: density 0, never NaN.
            let none = histogram(
                ctx,
                &m(vec![7.0, f32::NAN]),
                &spec,
                &HistogramOptions {
                    outliers: Outliers::Separate,
                    density: true,
                },
            )
            .unwrap();
            assert_eq!(none.density.unwrap(), vec![0.0, 0.0]);
            // Zero-width closed last bin holding values: +inf (a point mass).
            let z = histogram(
                ctx,
                &m(vec![0.0, 1.0, 1.0]),
                &BinSpec::Adaptive { bins: 2 },
                &HistogramOptions {
                    outliers: Outliers::Separate,
                    density: true,
                },
            )
            .unwrap();
            assert_eq!(z.edges, vec![0.0, 1.0, 1.0]);
            assert_eq!(z.counts, vec![1, 2]);
            assert_eq!(z.density.unwrap(), vec![1.0 / 3.0, f64::INFINITY]);
            // Only non-finite values with a given range: all counted apart.
            let h = histogram(
                ctx,
                &m(vec![f32::NAN; 9]),
                &BinSpec::Uniform {
                    bins: 3,
                    range: Some((0.0, 1.0)),
                },
                &CLIP,
            )
            .unwrap();
            assert_eq!((h.counts, h.non_finite), (vec![0, 0, 0], 9));
        },
    );
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
            for (opt, clip) in [(SEPARATE, false), (CLIP, true)] {
                let h = histogram(ctx, &m(x.clone()), &spec, &opt).unwrap();
                check(&h, &x, clip, &format!("{} {spec:?}", ctx.device()));
            }
        }
    });
}

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
                for (opt, clip) in [(SEPARATE, false), (CLIP, true)] {
                    let h = match histogram_2d(ctx, &m(x.clone()), &m(y.clone()), sx, sy, &opt) {
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
            &sx,
            &sy,
            &HistogramOptions {
                outliers: Outliers::Separate,
                density: true,
            },
        )
        .unwrap();
        assert_eq!(h.counts, vec![1, 1, 1, 0]);
        assert_eq!(h.count(0, 1), 1);
        assert_eq!(h.outside, 1);
        assert_eq!(
            h.density.unwrap(),
            vec![1.0 / 3.0, 1.0 / 9.0, 1.0 / 3.0, 0.0]
        );
        let h = histogram_2d(ctx, &x, &y, &sx, &sy, &CLIP).unwrap();
        assert_eq!(h.counts, vec![1, 1, 2, 0]);
    });
}

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
                SEPARATE,
                CLIP,
                HistogramOptions {
                    outliers: Outliers::Separate,
                    density: true,
                },
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
            for opt in [SEPARATE, CLIP] {
                let c = histogram_2d(&cpu, &xm, &ym, &sx, &sy, &opt);
                let g = histogram_2d(&gpu, &xm, &ym, &sx, &sy, &opt);
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
                histogram(ctx, &x, &spec, &SEPARATE).unwrap(),
                histogram(ctx, &xr, &spec, &SEPARATE).unwrap()
            );
            // x is 1001 x 3 and y 3003 x 1: same element count, flattened.
            assert_eq!(
                histogram_2d(ctx, &x, &y, &spec, &spec, &SEPARATE).unwrap(),
                histogram_2d(ctx, &xr, &yr, &spec, &spec, &SEPARATE).unwrap()
            );
        }
        assert_eq!(
            kde(ctx, &x, 50, None, Bandwidth::Silverman).unwrap(),
            kde(ctx, &xr, 50, None, Bandwidth::Silverman).unwrap()
        );
    });
}

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
            histogram(ctx, &empty, &u(3, None), &SEPARATE),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            kde(ctx, &empty, 3, None, Bandwidth::Scott),
            Err(Error::EmptyInput { .. })
        ));
        invalid(histogram(ctx, &x, &u(0, None), &SEPARATE), "bins", "0");
        invalid(
            histogram(ctx, &x, &BinSpec::Adaptive { bins: 0 }, &SEPARATE),
            "bins",
            "0",
        );
        invalid(
            histogram(ctx, &x, &u(MAX_BINS + 1, None), &SEPARATE),
            "bins",
            &(MAX_BINS + 1).to_string(),
        );
        invalid(
            histogram(ctx, &x, &u(3, Some((2.0, 2.0))), &SEPARATE),
            "range",
            "(2, 2)",
        );
        invalid(
            histogram(ctx, &x, &u(3, Some((3.0, 1.0))), &SEPARATE),
            "range",
            "(3, 1)",
        );
        invalid(
            histogram(ctx, &x, &u(3, Some((f64::NAN, 1.0))), &SEPARATE),
            "range",
            "NaN",
        );
        invalid(
            histogram(ctx, &x, &u(3, Some((0.0, f64::INFINITY))), &SEPARATE),
            "range",
            "inf",
        );
        invalid(
            histogram(
                ctx,
                &x,
                &u(3, Some((1.0, 1.0 + 2.0 * f64::EPSILON))),
                &SEPARATE,
            ),
            "range",
            "(1, ",
        );
        invalid(
            histogram(ctx, &x, &log(0.0, None), &SEPARATE),
            "log base",
            "0",
        );
        invalid(
            histogram(ctx, &x, &log(-2.0, None), &SEPARATE),
            "log base",
            "-2",
        );
        invalid(
            histogram(ctx, &x, &log(1.0, None), &SEPARATE),
            "log base",
            "1",
        );
        invalid(
            histogram(ctx, &x, &log(f64::INFINITY, None), &SEPARATE),
            "log base",
            "inf",
        );
        invalid(
            histogram(ctx, &x, &log(10.0, Some((0.0, 5.0))), &SEPARATE),
            "log range",
            "(0, 5)",
        );
        invalid(
            histogram(ctx, &x, &log(10.0, Some((-1.0, 5.0))), &SEPARATE),
            "log range",
            "(-1, 5)",
        );
        invalid(
            histogram(ctx, &x, &BinSpec::Edges(vec![1.0]), &SEPARATE),
            "edges",
            "1 edge",
        );
        invalid(
            histogram(ctx, &x, &BinSpec::Edges(vec![]), &SEPARATE),
            "edges",
            "0 edge",
        );
        invalid(
            histogram(ctx, &x, &BinSpec::Edges(vec![0.0, 2.0, 2.0]), &SEPARATE),
            "edges",
            "edge 1 = 2, edge 2 = 2",
        );
        invalid(
            histogram(ctx, &x, &BinSpec::Edges(vec![0.0, 3.0, 1.0]), &SEPARATE),
            "edges",
            "edge 1 = 3",
        );
        invalid(
            histogram(ctx, &x, &BinSpec::Edges(vec![0.0, f64::NAN]), &SEPARATE),
            "edges",
            "edge 1 = NaN",
        );
        // No finite (positive) value to take a range or quantiles from.
        let bad = m(vec![f32::NAN, f32::INFINITY]);
        invalid(
            histogram(ctx, &bad, &u(3, None), &SEPARATE),
            "range",
            "None",
        );
        invalid(
            histogram(ctx, &bad, &BinSpec::Adaptive { bins: 3 }, &SEPARATE),
            "adaptive bins",
            "3",
        );
        invalid(
            histogram(ctx, &m(vec![-1.0, 0.0]), &log(10.0, None), &SEPARATE),
            "range",
            "None",
        );
        // 2-D: mismatch, too many cells.
        match histogram_2d(
            ctx,
            &x,
            &m(vec![1.0, 2.0]),
            &u(2, None),
            &u(2, None),
            &SEPARATE,
        ) {
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        invalid(
            histogram_2d(ctx, &x, &x, &u(1 << 12, None), &u(1 << 13, None), &SEPARATE),
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
            histogram(ctx, &bits, &u(2, None), &SEPARATE),
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
                &SEPARATE
            ),
            Err(Error::DeviceMismatch { .. })
        ));
    }
}

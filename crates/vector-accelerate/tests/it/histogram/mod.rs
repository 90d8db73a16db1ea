//! Histograms and kernel density estimates: every backend against
//! an independent fp64 reference written here (edges compared as `f64`,
//! bins found by a plain search), CUDA against the CPU (identical counts)
//! on fresh random inputs of many sizes, values placed exactly on and next
//! to edges, every option shown to change the output, and every error.
//! Device outputs are poisoned before kernels run (see `common::backends`).
//! One file per part of the family (bin specs, what is counted, 2-D
//! histograms, density estimates), plus the backend comparisons and the
//! errors; the reference and the data generators they share are here.

mod backends;
mod bins;
mod counts;
mod errors;
mod kde;
mod two_d;

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use vector_accelerate::histogram::{Histogram, HistogramOptions, Outliers};
use vector_accelerate::Matrix;

/// Sizes around the kernels' 4-element groups and 256-thread blocks,
/// primes, and a large one (not a multiple of 4).
const SIZES: &[usize] = &[1, 2, 3, 5, 255, 256, 257, 1021, 4099, 65_537, 1_000_003];

/// Outliers counted apart.
fn separate_outliers() -> HistogramOptions {
    HistogramOptions::default().with_outliers(Outliers::Separate)
}

/// Outliers clipped into the edge bins.
fn clip_outliers() -> HistogramOptions {
    HistogramOptions::default().with_outliers(Outliers::Clip)
}

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

//! CPU histograms and kernel density estimates (the reference): rayon over
//! fixed chunks, per-task integer counts merged (integer sums: the result
//! does not depend on the order or the thread count), `f64` partial sums
//! combined in chunk order.

use rayon::prelude::*;

use crate::ops::histogram::{AxisPlan, Counts, Counts2, Mode, Stats};

/// Elements per parallel task.
const CHUNK: usize = 1 << 16;

/// Number, extremes and sum of the finite (and, with `positive`, `> 0`)
/// values; chunk sums added in chunk order.
pub(crate) fn stats(x: &[f32], positive: bool) -> Stats {
    let parts: Vec<Stats> = x
        .par_chunks(CHUNK)
        .map(|c| {
            let mut s = Stats::EMPTY;
            for &v in c {
                if v.is_finite() && (!positive || v > 0.0) {
                    s.count += 1;
                    s.min = s.min.min(v);
                    s.max = s.max.max(v);
                    s.sum += v as f64;
                }
            }
            s
        })
        .collect();
    parts.into_iter().fold(Stats::EMPTY, Stats::merge)
}

/// `sum (v - mean)^2` over the finite values, chunk sums added in order.
pub(crate) fn sq_dev(x: &[f32], mean: f64) -> f64 {
    let parts: Vec<f64> = x
        .par_chunks(CHUNK)
        .map(|c| {
            c.iter()
                .filter(|v| v.is_finite())
                .map(|&v| {
                    let d = v as f64 - mean;
                    d * d
                })
                .sum::<f64>()
        })
        .collect();
    parts.into_iter().sum()
}

/// One task's counts: the bins, then below, above, non-finite.
struct Acc {
    counts: Vec<u64>,
    below: u64,
    above: u64,
    bad: u64,
}

impl Acc {
    fn new(bins: usize) -> Self {
        Acc {
            counts: vec![0; bins],
            below: 0,
            above: 0,
            bad: 0,
        }
    }
    fn merge(mut self, o: Acc) -> Acc {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.below += o.below;
        self.above += o.above;
        self.bad += o.bad;
        self
    }
}

/// The bin of a finite value inside the edges, for a plan of mode `M`
/// (monomorphised so the hot loop has no mode switch).
#[inline(always)]
fn locate<const M: u8>(p: &AxisPlan, v: f32) -> usize {
    match M {
        0 => p.correct(v, (v - p.off) * p.scale),
        1 => p.correct(v, (v.log2() - p.off) * p.scale),
        _ => p.search(v),
    }
}

fn count_chunk<const M: u8>(p: &AxisPlan, xs: &[f32], clip: bool, a: &mut Acc) {
    let (lo, hi, last) = (p.t[0], p.hi, p.bins() - 1);
    let counts = &mut a.counts[..last + 1];
    for &v in xs {
        if !v.is_finite() {
            a.bad += 1;
            continue;
        }
        let i = if v < lo {
            a.below += 1;
            if !clip {
                continue;
            }
            0
        } else if v > hi {
            a.above += 1;
            if !clip {
                continue;
            }
            last
        } else {
            locate::<M>(p, v)
        };
        counts[i] += 1;
    }
}

fn count_1d_mode<const M: u8>(x: &[f32], p: &AxisPlan, clip: bool) -> Acc {
    let bins = p.bins();
    x.par_chunks(CHUNK)
        .fold(
            || Acc::new(bins),
            |mut a, c| {
                count_chunk::<M>(p, c, clip, &mut a);
                a
            },
        )
        .reduce(|| Acc::new(bins), Acc::merge)
}

/// A 1-D histogram of `x` with the bins of `p`.
pub(crate) fn count_1d(x: &[f32], p: &AxisPlan, clip: bool) -> Counts {
    let a = match p.mode {
        Mode::Uniform => count_1d_mode::<0>(x, p, clip),
        Mode::Log => count_1d_mode::<1>(x, p, clip),
        Mode::Search => count_1d_mode::<2>(x, p, clip),
    };
    Counts {
        counts: a.counts,
        below: a.below,
        above: a.above,
        non_finite: a.bad,
    }
}

/// The bin of a finite value along one axis with outliers clipped
/// (`Err(i)`: clipped into bin `i`).
#[inline(always)]
fn place_clipped(p: &AxisPlan, v: f32) -> std::result::Result<usize, usize> {
    match p.place(v) {
        Ok(i) => Ok(i),
        Err(true) => Err(0),
        Err(false) => Err(p.bins() - 1),
    }
}

/// A 2-D histogram of the pairs `(x_i, y_i)`: counts row-major
/// `[bins_x x bins_y]`; `below` of the result holds the pairs outside.
pub(crate) fn count_2d(x: &[f32], y: &[f32], px: &AxisPlan, py: &AxisPlan, clip: bool) -> Counts2 {
    let (bx, by) = (px.bins(), py.bins());
    let a = x
        .par_chunks(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .fold(
            || Acc::new(bx * by),
            |mut a, (xc, yc)| {
                for (&u, &v) in xc.iter().zip(yc) {
                    if !u.is_finite() || !v.is_finite() {
                        a.bad += 1;
                        continue;
                    }
                    let (i, j) = (place_clipped(px, u), place_clipped(py, v));
                    let (i, j) = match (i, j) {
                        (Ok(i), Ok(j)) => (i, j),
                        (i, j) => {
                            a.below += 1;
                            if !clip {
                                continue;
                            }
                            (i.unwrap_or_else(|e| e), j.unwrap_or_else(|e| e))
                        }
                    };
                    a.counts[i * by + j] += 1;
                }
                a
            },
        )
        .reduce(|| Acc::new(bx * by), Acc::merge);
    Counts2 {
        counts: a.counts,
        outside: a.below,
        non_finite: a.bad,
    }
}

/// Grid values handled together (each element is loaded once for them).
const KDE_TILE: usize = 16;

/// `sum_i exp(-0.5 ((g - x_i) / h)^2)` over the finite `x_i`, for each
/// grid value `g`: within each chunk of `chunk` elements in element order,
/// then the chunks' sums in chunk order (as `va_kde_part` and
/// `va_kde_final` on CUDA).
pub(crate) fn kde_sums(x: &[f32], grid: &[f64], h: f64, chunk: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; grid.len()];
    out.par_chunks_mut(KDE_TILE)
        .zip(grid.par_chunks(KDE_TILE))
        .for_each(|(o, g)| {
            let mut part = [0.0f64; KDE_TILE];
            for c in x.chunks(chunk) {
                part.fill(0.0);
                for &v in c {
                    if !v.is_finite() {
                        continue;
                    }
                    let v = v as f64;
                    for (p, &gj) in part.iter_mut().zip(g) {
                        let u = (gj - v) / h;
                        *p += (-0.5 * (u * u)).exp();
                    }
                }
                for (t, p) in o.iter_mut().zip(&part) {
                    *t += p;
                }
            }
        });
    out
}

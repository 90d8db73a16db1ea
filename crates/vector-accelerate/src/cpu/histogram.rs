//! CPU histograms and kernel density estimates (the reference): rayon over
//! fixed chunks, per-task integer counts merged (integer sums: the result
//! does not depend on the order or the thread count), `f64` partial sums
//! combined in chunk order.

use rayon::prelude::*;

use crate::core::error::Result;
use crate::core::histogram::{AxisPlan, Counts, Counts2, Mode, Stats};
use crate::cpu::host::host_f32;
use crate::runtime::backend::{Cpu, HistogramBackend};
use crate::runtime::input::Input;

/// Elements per parallel task.
const CHUNK: usize = 1 << 16;

/// Lanes of the statistics loop (independent accumulators, combined in
/// lane order: a fixed order that the compiler can vectorise).
const LANES: usize = 16;

/// Number, extremes and (with `with_sum`, else 0) sum of the finite (and,
/// with `positive`, `> 0`) values; lane sums combined in lane order, chunk
/// sums in chunk order. Without `with_sum` or `positive`, a chunk whose
/// plain extremes (NaN ignored) are finite is not filtered value by value,
/// and then its `count` only says whether it has a finite value (0 or 1).
pub(crate) fn stats(x: &[f32], positive: bool, with_sum: bool) -> Stats {
    if with_sum {
        stats_lanes::<true>(x, positive)
    } else if positive {
        stats_lanes::<false>(x, positive)
    } else {
        let parts: Vec<Stats> = x
            .par_chunks(CHUNK)
            .map(|c| {
                let mut lo = [f32::INFINITY; LANES];
                let mut hi = [f32::NEG_INFINITY; LANES];
                let mut groups = c.chunks_exact(LANES);
                for g in &mut groups {
                    for k in 0..LANES {
                        lo[k] = lo[k].min(g[k]);
                        hi[k] = hi[k].max(g[k]);
                    }
                }
                let mut l = lo.iter().fold(f32::INFINITY, |a, &b| a.min(b));
                let mut h = hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                for &v in groups.remainder() {
                    l = l.min(v);
                    h = h.max(v);
                }
                if l.is_finite() && h.is_finite() {
                    Stats {
                        count: 1,
                        min: l,
                        max: h,
                        sum: 0.0,
                    }
                } else {
                    stats_lanes::<false>(c, false)
                }
            })
            .collect();
        parts.into_iter().fold(Stats::EMPTY, Stats::merge)
    }
}

fn stats_lanes<const SUM: bool>(x: &[f32], positive: bool) -> Stats {
    let parts: Vec<Stats> = x
        .par_chunks(CHUNK)
        .map(|c| {
            let floor = if positive { 0.0 } else { f32::NEG_INFINITY };
            let mut cnt = [0u32; LANES];
            let mut lo = [f32::INFINITY; LANES];
            let mut hi = [f32::NEG_INFINITY; LANES];
            let mut sum = [0.0f64; LANES];
            let mut groups = c.chunks_exact(LANES);
            for g in &mut groups {
                for k in 0..LANES {
                    let v = g[k];
                    // Finite and above the floor (NaN fails both tests).
                    let ok = v.abs() <= f32::MAX && v > floor;
                    cnt[k] += ok as u32;
                    let (a, b) = if ok {
                        (v, v)
                    } else {
                        (f32::INFINITY, f32::NEG_INFINITY)
                    };
                    lo[k] = lo[k].min(a);
                    hi[k] = hi[k].max(b);
                    if SUM {
                        sum[k] += if ok { v as f64 } else { 0.0 };
                    }
                }
            }
            let mut s = Stats::EMPTY;
            for k in 0..LANES {
                s = s.merge(Stats {
                    count: cnt[k] as u64,
                    min: lo[k],
                    max: hi[k],
                    sum: sum[k],
                });
            }
            for &v in groups.remainder() {
                if v.abs() <= f32::MAX && v > floor {
                    s = s.merge(Stats {
                        count: 1,
                        min: v,
                        max: v,
                        sum: if SUM { v as f64 } else { 0.0 },
                    });
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

/// A plan's binning state in locals (the hot loop reads no field through
/// a reference that the count stores could alias).
#[derive(Clone, Copy)]
struct Binner<'a> {
    t: &'a [f32],
    last: usize,
    off: f32,
    scale: f32,
}

impl<'a> Binner<'a> {
    fn new(p: &'a AxisPlan) -> Self {
        Binner {
            t: &p.t,
            last: p.bins() - 1,
            off: p.off,
            scale: p.scale,
        }
    }

    /// [`AxisPlan::correct`] with the fields in registers.
    #[inline(always)]
    fn correct(&self, v: f32, f: f32) -> usize {
        let t = self.t;
        let mut i = f.max(0.0).min(self.last as f32) as usize;
        while i > 0 && v < t[i] {
            i -= 1;
        }
        while i < self.last && v >= t[i + 1] {
            i += 1;
        }
        i
    }

    /// The bin of a finite value inside the edges, for a plan of mode `M`
    /// (monomorphised so the hot loop has no mode switch); the steps of
    /// [`AxisPlan::place`].
    #[inline(always)]
    fn locate<const M: u8>(&self, v: f32) -> usize {
        match M {
            0 => self.correct(v, (v - self.off) * self.scale),
            1 => self.correct(v, (v.log2() - self.off) * self.scale),
            _ => {
                let n = self.t.partition_point(|&t| t <= v);
                (n - 1).min(self.last)
            }
        }
    }
}

fn count_chunk<const M: u8>(p: &AxisPlan, xs: &[f32], clip: bool, a: &mut Acc) {
    let b = Binner::new(p);
    let (lo, hi, last) = (p.t[0], p.hi, b.last);
    let counts = &mut a.counts[..last + 1];
    let (mut below, mut above, mut bad) = (0u64, 0u64, 0u64);
    for &v in xs {
        if !v.is_finite() {
            bad += 1;
            continue;
        }
        let i = if v < lo {
            below += 1;
            if !clip {
                continue;
            }
            0
        } else if v > hi {
            above += 1;
            if !clip {
                continue;
            }
            last
        } else {
            b.locate::<M>(v)
        };
        counts[i] += 1;
    }
    a.below += below;
    a.above += above;
    a.bad += bad;
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

impl HistogramBackend for Cpu {
    fn finite_stats(&self, x: &Input<'_>, positive: bool, with_sum: bool) -> Result<Stats> {
        Ok(stats(host_f32(x)?.as_slice(), positive, with_sum))
    }

    fn sq_dev(&self, x: &Input<'_>, mean: f64) -> Result<f64> {
        Ok(sq_dev(host_f32(x)?.as_slice(), mean))
    }

    fn count_1d(&self, x: &Input<'_>, plan: &AxisPlan, clip: bool) -> Result<Counts> {
        Ok(count_1d(host_f32(x)?.as_slice(), plan, clip))
    }

    fn count_2d(
        &self,
        (x, y): (&Input<'_>, &Input<'_>),
        (px, py): (&AxisPlan, &AxisPlan),
        clip: bool,
    ) -> Result<Counts2> {
        let (x, y) = (host_f32(x)?, host_f32(y)?);
        Ok(count_2d(x.as_slice(), y.as_slice(), px, py, clip))
    }

    fn kde_sums(&self, x: &Input<'_>, grid: &[f64], h: f64, chunk: usize) -> Result<Vec<f64>> {
        Ok(kde_sums(host_f32(x)?.as_slice(), grid, h, chunk))
    }
}

//! Quantiles with NumPy's default (linear) interpolation, found by exact
//! selection on the backend: segments of up to [`SMALL_SEGMENT`] values are
//! sorted whole (a block each on CUDA); longer ones are resolved by radix
//! selection, three counting passes over the data (11, 11 and 10 bits of
//! an order-preserving integer key), so the data never leave the device and
//! are never sorted.

use super::{check, check_counts, check_non_finite, Axis, StatsOptions};
use crate::context::{Backend, Context};
use crate::cpu::stats as cpu;
use crate::cpu::HostRows;
use crate::cuda;
use crate::error::{Error, Result};
use crate::matrix::Input;
use crate::ops::host_rows;

/// Segments up to this length are sorted whole instead of radix-selected.
pub(crate) const SMALL_SEGMENT: usize = 4096;

/// `(shift, width)` of the key digit counted by each radix pass.
pub(crate) const DIGITS: [(u32, u32); 3] = [(21, 11), (10, 11), (0, 10)];

/// Segments resolved together by one radix selection (bounds the
/// histograms kept: 2048 counts per segment and slot).
pub(crate) const SEGMENT_BATCH: usize = 256;

/// Order-preserving key of a float (`a < b` as floats, `-0.0` before
/// `+0.0`, implies `key(a) < key(b)`).
#[inline]
pub(crate) fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The float of a key.
#[inline]
pub(crate) fn value(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & 0x7FFF_FFFF } else { !k })
}

/// Ranks around the quantile `q` of `n` sorted values (NumPy's linear
/// method): `h = (n - 1) q`, the values at `floor(h)` and `floor(h) + 1`
/// (clamped) and the weight of the second. The CUDA small-segment kernel
/// repeats these operations exactly.
#[inline]
pub(crate) fn ranks(n: u64, q: f64) -> (u64, u64, f64) {
    let h = (n - 1) as f64 * q;
    let lo = h.floor();
    let lo_i = (lo as u64).min(n - 1);
    ((lo_i), (lo_i + 1).min(n - 1), h - lo)
}

/// NumPy's `_lerp`: `a + (b - a) t`, computed from the nearer end.
#[inline]
pub(crate) fn lerp(a: f32, b: f32, t: f64) -> f32 {
    let (a, b) = (a as f64, b as f64);
    let d = b - a;
    (if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }) as f32
}

/// What a backend provides to radix-select in a batch of contiguous
/// segments. The digit histograms stay with the backend (on the device for
/// CUDA): only counts and the picked digits cross to the planner.
pub(crate) trait Counter {
    /// Pass 0 over segments `segs`: counts the top digit of the finite
    /// values' keys of each segment (kept for [`Counter::pick_first`]) and
    /// returns per segment (finite values, non-finite values).
    fn first(&mut self, segs: std::ops::Range<usize>) -> Result<Vec<(u64, u64)>>;
    /// For each target `(segment, rank)` of the last [`Counter::first`]:
    /// the top digit holding the 0-based rank and the rank within it.
    fn pick_first(&mut self, targets: &[(usize, u64)]) -> Result<Vec<(u32, u64)>>;
    /// Pass `pass` (1 or 2): counts digit `pass` of the finite keys of each
    /// slot `(segment, prefix)` (keys whose bits above that digit equal
    /// `prefix`'s); for each target `(slot index, rank)` returns the digit
    /// holding the rank and the rank within it.
    fn refine(
        &mut self,
        pass: usize,
        slots: &[(usize, u32)],
        targets: &[(usize, u64)],
    ) -> Result<Vec<(u32, u64)>>;
}

/// The digit holding 0-based `rank` of a histogram, and the rank within it.
pub(crate) fn pick(hist: &[u64], rank: u64) -> Result<(u32, u64)> {
    let mut before = 0u64;
    for (d, &c) in hist.iter().enumerate() {
        if rank < before + c {
            return Ok((d as u32, rank - before));
        }
        before += c;
    }
    Err(inconsistent(rank))
}

/// A rank the histograms do not hold (a backend defect, never the input's).
pub(crate) fn inconsistent(rank: u64) -> Error {
    Error::invalid(
        "quantile selection",
        rank,
        "rank beyond the values counted (backend inconsistency)",
    )
}

/// Radix selection of all `nseg` segments, `SEGMENT_BATCH` at a time (the
/// histograms of one batch held at once); outputs as [`radix_select`].
pub(crate) fn radix_select_all(
    c: &mut impl Counter,
    nseg: usize,
    levels: &[f64],
    out: &mut [f32],
    counts: &mut [u64],
    non_finite: &mut [u64],
) -> Result<()> {
    for start in (0..nseg).step_by(SEGMENT_BATCH) {
        let segs = start..(start + SEGMENT_BATCH).min(nseg);
        radix_select(c, segs, levels, out, counts, non_finite)?;
    }
    Ok(())
}

/// Radix selection of every segment of `segs`: writes `out[s * L + l]`
/// (L = `levels.len()`) and the finite `counts` and `non_finite` of each
/// segment (segments with no finite value get NaN).
fn radix_select(
    c: &mut impl Counter,
    segs: std::ops::Range<usize>,
    levels: &[f64],
    out: &mut [f32],
    counts: &mut [u64],
    non_finite: &mut [u64],
) -> Result<()> {
    let nl = levels.len();
    let first = c.first(segs.clone())?;
    // (segment, rank) targets, sorted, with (prefix, residual rank).
    let mut targets: Vec<(usize, u64)> = Vec::new();
    for (i, s) in segs.clone().enumerate() {
        let (n, nf) = first[i];
        counts[s] = n;
        non_finite[s] = nf;
        if n == 0 {
            continue;
        }
        let mut rs: Vec<u64> = levels
            .iter()
            .flat_map(|&q| {
                let (a, b, _) = ranks(n, q);
                [a, b]
            })
            .collect();
        rs.sort_unstable();
        rs.dedup();
        targets.extend(rs.into_iter().map(|r| (s, r)));
    }
    let local: Vec<(usize, u64)> = targets.iter().map(|&(s, r)| (s - segs.start, r)).collect();
    let mut state: Vec<(u32, u64)> = c
        .pick_first(&local)?
        .into_iter()
        .map(|(d, rest)| (d << DIGITS[0].0, rest))
        .collect();
    for (pass, &(shift, _)) in DIGITS.iter().enumerate().skip(1) {
        // Prefixes are monotone in the rank within a segment, so the
        // (segment, prefix) pairs come out sorted.
        let mut slots: Vec<(usize, u32)> = Vec::new();
        let mut asks: Vec<(usize, u64)> = Vec::with_capacity(targets.len());
        for (t, st) in targets.iter().zip(&state) {
            if slots.last() != Some(&(t.0, st.0)) {
                slots.push((t.0, st.0));
            }
            asks.push((slots.len() - 1, st.1));
        }
        let picked = c.refine(pass, &slots, &asks)?;
        for (st, (d, rest)) in state.iter_mut().zip(picked) {
            st.0 |= d << shift;
            st.1 = rest;
        }
    }
    let mut k = 0;
    for s in segs {
        let n = counts[s];
        let start = k;
        while k < targets.len() && targets[k].0 == s {
            k += 1;
        }
        let (mine, keys) = (&targets[start..k], &state[start..k]);
        let at = |r: u64| -> f32 { value(keys[mine.partition_point(|t| t.1 < r)].0) };
        for (l, &q) in levels.iter().enumerate() {
            out[s * nl + l] = if n == 0 {
                f32::NAN
            } else {
                let (a, b, t) = ranks(n, q);
                lerp(at(a), at(b), t)
            };
        }
    }
    Ok(())
}

fn check_levels(levels: &[f64]) -> Result<()> {
    if levels.is_empty() {
        return Err(Error::EmptyInput {
            what: "quantile levels",
        });
    }
    if let Some(&q) = levels.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        return Err(Error::invalid(
            "quantile level",
            q,
            "levels must lie in [0, 1]",
        ));
    }
    Ok(())
}

/// The quantiles at `levels` (each in `[0, 1]`) along `axis`: one vector of
/// `levels.len()` values per segment (one segment for [`Axis::All`], one
/// per row or per column), computed as NumPy's `np.quantile` with its
/// default `method="linear"`: with the `n` finite values sorted and
/// `h = (n - 1) q`, the value `x[floor(h)] + (h - floor(h)) (x[floor(h)+1] - x[floor(h)])`
/// (interpolated in `f64`, rounded to `f32`).
///
/// Exact order statistics on either backend, identical on CPU and CUDA; on
/// CUDA the data stay on the device (a sort in shared memory per segment
/// of up to 4096 values, radix selection for longer ones; per column
/// after one transpose on the device).
///
/// Errors: empty input or levels, a level outside `[0, 1]` or NaN,
/// non-finite values unless [`StatsOptions::skip_non_finite`], a segment
/// with no finite value.
///
/// ```
/// use vector_accelerate::stats::{quantiles, Axis, StatsOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![1.0, 5.0, 2.0, 6.0, 3.0, 7.0, 4.0, 100.0], 2).unwrap(); // 4 x 2
/// let q = quantiles(&ctx, &x, &[0.0, 0.5, 1.0], Axis::PerColumn, StatsOptions::default()).unwrap();
/// assert_eq!(q, vec![vec![1.0, 2.5, 4.0], vec![5.0, 6.5, 100.0]]);
/// ```
pub fn quantiles<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    levels: &[f64],
    axis: Axis,
    opts: StatsOptions,
) -> Result<Vec<Vec<f32>>> {
    let x = x.into();
    check(ctx, &x)?;
    check_levels(levels)?;
    let (flat, counts, non_finite) = match ctx.backend() {
        Backend::Cpu => {
            let HostRows::F32(m) = host_rows(&x)? else {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ));
            };
            cpu::quantiles(m, axis, levels)?
        }
        Backend::Cuda(dev) => cuda::stats::quantiles(dev, &x, axis, levels)?,
    };
    check_non_finite(non_finite, axis, opts)?;
    check_counts(counts, axis)?;
    Ok(flat.chunks(levels.len()).map(|c| c.to_vec()).collect())
}

/// The median along `axis` ([`quantiles`] at 0.5).
pub fn median<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    opts: StatsOptions,
) -> Result<Vec<f32>> {
    Ok(quantiles(ctx, x, &[0.5], axis, opts)?
        .into_iter()
        .map(|v| v[0])
        .collect())
}

/// First quartile, median and third quartile of one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quartiles {
    /// The 0.25 quantile.
    pub q1: f32,
    /// The 0.5 quantile.
    pub median: f32,
    /// The 0.75 quantile.
    pub q3: f32,
}

impl Quartiles {
    /// Interquartile range `q3 - q1` (in `f64`).
    pub fn iqr(&self) -> f64 {
        self.q3 as f64 - self.q1 as f64
    }

    /// Tukey's fences `(q1 - k IQR, q3 + k IQR)`.
    pub fn fences(&self, k: f64) -> (f64, f64) {
        let iqr = self.iqr();
        (self.q1 as f64 - k * iqr, self.q3 as f64 + k * iqr)
    }

    /// The usual outlier bounds, Tukey's fences with `k = 1.5`: values
    /// outside them are outliers.
    pub fn outlier_bounds(&self) -> (f64, f64) {
        self.fences(1.5)
    }
}

/// Quartiles along `axis` ([`quantiles`] at 0.25, 0.5, 0.75).
///
/// ```
/// use vector_accelerate::stats::{quartiles, Axis, StatsOptions};
/// use vector_accelerate::{Context, Matrix};
/// let x = Matrix::new((1..=9).map(|v| v as f32).collect(), 1).unwrap();
/// let q = quartiles(&Context::cpu(), &x, Axis::All, StatsOptions::default()).unwrap()[0];
/// assert_eq!((q.q1, q.median, q.q3, q.iqr()), (3.0, 5.0, 7.0, 4.0));
/// assert_eq!(q.outlier_bounds(), (-3.0, 13.0));
/// ```
pub fn quartiles<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    opts: StatsOptions,
) -> Result<Vec<Quartiles>> {
    Ok(quantiles(ctx, x, &[0.25, 0.5, 0.75], axis, opts)?
        .into_iter()
        .map(|v| Quartiles {
            q1: v[0],
            median: v[1],
            q3: v[2],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let v = [
            f32::NEG_INFINITY,
            -3.3e38,
            -1.0,
            -1e-45,
            -0.0,
            0.0,
            1e-45,
            1.0,
            3.3e38,
            f32::INFINITY,
        ];
        for w in v.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} {}", w[0], w[1]);
        }
        for x in v {
            assert_eq!(value(key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn ranks_follow_numpy() {
        assert_eq!(ranks(1, 0.7), (0, 0, 0.7 * 0.0));
        assert_eq!(ranks(5, 1.0), (4, 4, 0.0));
        let (a, b, t) = ranks(8, 0.9);
        assert_eq!((a, b), (6, 7));
        assert!((t - 0.3).abs() < 1e-12);
        assert_eq!(lerp(7.0, 9.0, t), 7.6);
        assert_eq!(lerp(-1.0, -1.0, 0.3), -1.0);
    }
}

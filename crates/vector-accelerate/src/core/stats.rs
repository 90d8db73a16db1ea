//! The stats family's shared core: the mergeable moment accumulator and
//! the radix-selection planner of quantiles, which drives either backend's
//! digit counter (the [`Counter`] trait) the same way.

use crate::core::error::{Error, Result};

/// Count, mean, central moments 2 to 4, minimum and maximum of a set of
/// finite values (plus how many non-finite values were left out), in
/// `f64`: everything the descriptive statistics are derived from.
///
/// It is a one-pass, mergeable accumulator: [`push`](Moments::push) adds a
/// value (Welford's update) and [`merge`](Moments::merge) combines the
/// accumulators of two disjoint sets (the pairwise formulas of Chan et al.
/// and Pébay), so chunks of an array, or arrays on several devices,
/// combine into the accumulator of the whole. The merge is exact in real
/// arithmetic; in `f64` the merged statistics agree with a one-pass result
/// to about `1e-12` relative (tested).
///
/// The backends accumulate chunks of up to a few hundred values as power
/// sums shifted by the running mean (so a mean large against the spread
/// does not cancel) and merge the chunks in a fixed order: results are the
/// same from run to run.
///
/// ```
/// use vector_accelerate::stats::Moments;
/// let (a, b) = ([1.0f32, 2.0, 3.0], [10.0f32, 20.0]);
/// let whole = Moments::from_values(&[1.0, 2.0, 3.0, 10.0, 20.0]);
/// let merged = Moments::from_values(&a).merge(&Moments::from_values(&b));
/// assert_eq!(merged.count(), 5);
/// assert!((merged.variance(1).unwrap() - whole.variance(1).unwrap()).abs() < 1e-12);
/// assert_eq!(merged.max(), Some(20.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    pub(crate) m2: f64,
    pub(crate) m3: f64,
    pub(crate) m4: f64,
    pub(crate) min: f32,
    pub(crate) max: f32,
    pub(crate) non_finite: u64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments::new()
    }
}

impl Moments {
    /// The accumulator of no values.
    pub const fn new() -> Self {
        Moments {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            m3: 0.0,
            m4: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            non_finite: 0,
        }
    }

    /// The accumulator of `values` (non-finite values are counted, not
    /// accumulated), one value at a time.
    pub fn from_values(values: &[f32]) -> Self {
        let mut m = Moments::new();
        for &v in values {
            m.push(v);
        }
        m
    }

    /// Adds one value (a non-finite value only increments
    /// [`non_finite`](Moments::non_finite)).
    pub fn push(&mut self, x: f32) {
        if !x.is_finite() {
            self.non_finite += 1;
            return;
        }
        let one = Moments {
            count: 1,
            mean: x as f64,
            m2: 0.0,
            m3: 0.0,
            m4: 0.0,
            min: x,
            max: x,
            non_finite: 0,
        };
        *self = self.merge(&one);
    }

    /// The accumulator of both sets of values.
    pub fn merge(&self, o: &Moments) -> Moments {
        if o.count == 0 || self.count == 0 {
            let mut r = if o.count == 0 { *self } else { *o };
            r.non_finite = self.non_finite + o.non_finite;
            return r;
        }
        let (na, nb) = (self.count as f64, o.count as f64);
        let n = na + nb;
        let delta = o.mean - self.mean;
        let dn = delta / n;
        let dn2 = dn * dn;
        let nab = na * nb;
        Moments {
            count: self.count + o.count,
            mean: self.mean + dn * nb,
            m2: self.m2 + o.m2 + delta * dn * nab,
            m3: self.m3
                + o.m3
                + delta * dn2 * nab * (na - nb)
                + 3.0 * dn * (na * o.m2 - nb * self.m2),
            m4: self.m4
                + o.m4
                + delta * dn2 * dn * nab * (na * na - nab + nb * nb)
                + 6.0 * dn2 * (na * na * o.m2 + nb * nb * self.m2)
                + 4.0 * dn * (na * o.m3 - nb * self.m3),
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            non_finite: self.non_finite + o.non_finite,
        }
    }

    /// Number of finite values accumulated.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of non-finite values left out.
    pub fn non_finite(&self) -> u64 {
        self.non_finite
    }

    /// Sum of the values (`0` for none).
    pub fn sum(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.mean * self.count as f64
        }
    }

    /// Arithmetic mean (`None` for no values).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Variance `M2 / (n - ddof)`: `ddof = 0` population, `1` sample
    /// (`None` unless `n > ddof`).
    pub fn variance(&self, ddof: u64) -> Option<f64> {
        (self.count > ddof).then(|| self.m2 / (self.count - ddof) as f64)
    }

    /// Standard deviation, the square root of [`variance`](Moments::variance).
    pub fn std(&self, ddof: u64) -> Option<f64> {
        self.variance(ddof).map(f64::sqrt)
    }

    /// Standard error of the mean: the sample standard deviation over
    /// `sqrt(n)` (SciPy's `sem`; `None` for fewer than 2 values).
    pub fn standard_error(&self) -> Option<f64> {
        self.std(1).map(|s| s / (self.count as f64).sqrt())
    }

    /// Smallest finite value.
    pub fn min(&self) -> Option<f32> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest finite value.
    pub fn max(&self) -> Option<f32> {
        (self.count > 0).then_some(self.max)
    }

    /// `max - min`, in `f64`.
    pub fn range(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max as f64 - self.min as f64)
    }

    /// Whether the values are constant to within `f64` resolution (SciPy's
    /// test: `M2 / n <= (1e-15 * mean)^2`), so that the shape statistics
    /// are undefined.
    fn flat(&self) -> bool {
        let m2 = self.m2 / self.count as f64;
        m2 <= (1e-15 * self.mean) * (1e-15 * self.mean)
    }

    /// Sample skewness `g1 = m3 / m2^1.5` (moments divided by `n`); with
    /// `bias = false` the adjusted Fisher-Pearson coefficient
    /// `G1 = g1 * sqrt(n (n - 1)) / (n - 2)`, as SciPy's `skew(bias=False)`.
    /// `None` for constant values, no values, or fewer than 3 with
    /// `bias = false`.
    pub fn skewness(&self, bias: bool) -> Option<f64> {
        let n = self.count as f64;
        if self.count == 0 || self.flat() || (!bias && self.count < 3) {
            return None;
        }
        let (m2, m3) = (self.m2 / n, self.m3 / n);
        let g1 = m3 / (m2 * m2.sqrt());
        Some(if bias {
            g1
        } else {
            g1 * (n * (n - 1.0)).sqrt() / (n - 2.0)
        })
    }

    /// Excess kurtosis `g2 = m4 / m2^2 - 3` (Fisher's definition; moments
    /// divided by `n`); with `bias = false` the unbiased estimator
    /// `G2 = ((n + 1) g2 + 6) (n - 1) / ((n - 2) (n - 3))`, as SciPy's
    /// `kurtosis(bias=False)`. `None` for constant values, no values, or
    /// fewer than 4 with `bias = false`.
    pub fn kurtosis(&self, bias: bool) -> Option<f64> {
        let n = self.count as f64;
        if self.count == 0 || self.flat() || (!bias && self.count < 4) {
            return None;
        }
        let (m2, m4) = (self.m2 / n, self.m4 / n);
        let g2 = m4 / (m2 * m2) - 3.0;
        Some(if bias {
            g2
        } else {
            ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
        })
    }

    /// The central moment sums `(M2, M3, M4)`, `Mk = sum (x - mean)^k`.
    pub fn central_sums(&self) -> (f64, f64, f64) {
        (self.m2, self.m3, self.m4)
    }
}

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

/// Quantiles along `axis`: values (segment-major, `levels.len()` per
/// segment), finite counts and non-finite counts per segment.
pub(crate) type QuantileResult = (Vec<f32>, Vec<u64>, Vec<u64>);

/// Options shared by the statistics functions, made with [`Default`] and
/// the `with_*` setters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StatsOptions {
    /// Leave NaN and +-infinity out (and count them) instead of returning
    /// [`Error::NonFinite`](crate::Error::NonFinite). Default: `false`.
    pub skip_non_finite: bool,
}

impl StatsOptions {
    /// Skips (and counts) non-finite values instead of refusing them.
    pub fn with_skip_non_finite(mut self, on: bool) -> Self {
        self.skip_non_finite = on;
        self
    }
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

//! Descriptive statistics: the mergeable moment accumulator and `describe`.

use super::{check, check_counts, check_non_finite, Axis, StatsOptions};
use crate::context::{Backend, Context};
use crate::cpu::stats as cpu;
use crate::cpu::HostRows;
use crate::cuda;
use crate::error::{Error, Result};
use crate::matrix::Input;
use crate::ops::host_rows;

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

/// Descriptive statistics along `axis`: one [`Moments`] for the whole
/// array, per row or per column, from which count, mean, variance and
/// standard deviation (any `ddof`), min, max, range, sum, skewness, excess
/// kurtosis and the standard error are read.
///
/// One pass over the data on either backend (on CUDA the result is a few
/// accumulators per column downloaded at the end).
///
/// Errors: empty input; non-finite values unless
/// [`StatsOptions::skip_non_finite`]; a row or column with no finite value.
///
/// ```
/// use vector_accelerate::stats::{describe, StatsOptions};
/// use vector_accelerate::vector::Axis;
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![1.0, 10.0, 2.0, 20.0, 3.0, f32::NAN], 2).unwrap(); // 3 x 2
/// assert!(describe(&ctx, &x, Axis::PerColumn, StatsOptions::default()).is_err());
/// let cols = describe(&ctx, &x, Axis::PerColumn, StatsOptions::skipping_non_finite()).unwrap();
/// assert_eq!(cols[0].mean(), Some(2.0));
/// assert_eq!((cols[1].count(), cols[1].non_finite()), (2, 1));
/// assert_eq!(cols[1].variance(1), Some(50.0));
/// ```
pub fn describe<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    opts: StatsOptions,
) -> Result<Vec<Moments>> {
    let x = x.into();
    check(ctx, &x)?;
    let out = match ctx.backend() {
        Backend::Cpu => {
            let HostRows::F32(m) = host_rows(&x)? else {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ));
            };
            cpu::describe(m, axis)
        }
        Backend::Cuda(dev) => cuda::stats::describe(dev, &x, axis)?,
    };
    check_non_finite(out.iter().map(|m| m.non_finite), axis, opts)?;
    check_counts(out.iter().map(|m| m.count), axis)?;
    Ok(out)
}

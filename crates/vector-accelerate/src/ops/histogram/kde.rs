//! Gaussian kernel density estimation on a grid.

use super::bins::{check_input, stats, uniform_edges};
use crate::core::error::{Error, Result};
use crate::core::histogram::MAX_BINS;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// The kernel bandwidth (standard deviation of the Gaussian kernel) of
/// [`kde`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bandwidth {
    /// Scott's rule (SciPy `gaussian_kde`'s default in 1-D):
    /// `n^(-1/5) * s`, with `s` the sample standard deviation (`ddof = 1`)
    /// of the `n` finite values.
    Scott,
    /// Silverman's rule as SciPy defines it in 1-D: `(n * 3 / 4)^(-1/5) *
    /// s`.
    Silverman,
    /// A given bandwidth (finite, positive).
    Fixed(f64),
}

/// A kernel density estimate on a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Kde {
    /// The grid: `grid_points` evenly spaced values from `lo` to `hi`
    /// (both included; just `lo` for one point).
    pub grid: Vec<f64>,
    /// The estimated density at each grid value.
    pub density: Vec<f64>,
    /// The bandwidth used (given, or from the rule).
    pub bandwidth: f64,
    /// Finite values the estimate is made of.
    pub samples: u64,
    /// NaN and infinite values (left out).
    pub non_finite: u64,
}

/// Elements per chunk of the sum (each grid value's sum runs over the
/// elements of each chunk in order; the chunks' sums are then added in
/// chunk order): at least 2048 elements, at most 65,535 chunks and
/// `2^25` partial sums. A function of the sizes only, so both backends
/// add the same terms in the same order.
pub(crate) fn kde_chunk(n: usize, grid: usize) -> usize {
    let max_chunks = ((1usize << 25) / grid.max(1)).clamp(1, 65_535);
    n.div_ceil(max_chunks).max(2048)
}

/// Gaussian kernel density estimate of the finite values of `x` at
/// `grid_points` evenly spaced points of `range` (default: the finite
/// values' `min - 3h` to `max + 3h`, `h` the bandwidth):
/// `f(g) = 1 / (n h sqrt(2 pi)) * sum_i exp(-((g - x_i) / h)^2 / 2)` over
/// the `n` finite values (NaN and infinities are left out and counted).
///
/// The sum is exact and direct: `O(n * grid_points)` kernel evaluations in
/// `f64` (no binning or FFT approximation), so it costs about
/// `n * grid_points` exponentials (CPU: about 10^8 per second per core).
/// Partial sums over fixed chunks of the input are combined in a fixed
/// order, so results are deterministic; CPU and CUDA add the same terms in
/// the same order and differ only by their `f64` `exp` (within about
/// `1e-15` relative).
///
/// Errors: empty input, no finite value, `grid_points == 0` or more than
/// [`MAX_BINS`], a range with `lo >= hi` or a non-finite end, a fixed
/// bandwidth `<= 0` or not finite, a rule bandwidth with fewer than two
/// finite values or a zero standard deviation.
///
/// ```
/// use vector_accelerate::histogram::{kde, Bandwidth};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![0.0, 0.0], 1).unwrap();
/// let k = kde(&ctx, &x, 3, Some((-1.0, 1.0)), Bandwidth::Fixed(1.0)).unwrap();
/// assert_eq!(k.grid, vec![-1.0, 0.0, 1.0]);
/// let phi0 = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
/// assert!((k.density[1] - phi0).abs() < 1e-15);
/// assert!((k.density[0] - phi0 * (-0.5f64).exp()).abs() < 1e-15);
/// ```
pub fn kde<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    grid_points: usize,
    range: Option<(f64, f64)>,
    bandwidth: Bandwidth,
) -> Result<Kde> {
    let x = x.into();
    check_input(ctx, &x, "values")?;
    if grid_points == 0 || grid_points > MAX_BINS {
        return Err(Error::invalid(
            "grid points",
            grid_points,
            format!("needs 1 to MAX_BINS = {MAX_BINS} points"),
        ));
    }
    if let Bandwidth::Fixed(h) = bandwidth {
        if !h.is_finite() || h <= 0.0 {
            return Err(Error::invalid(
                "bandwidth",
                h,
                "must be finite and positive",
            ));
        }
    }
    if let Some((lo, hi)) = range {
        if !lo.is_finite() || !hi.is_finite() || lo >= hi {
            return Err(Error::invalid(
                "range",
                format!("({lo}, {hi})"),
                "needs finite lo < hi",
            ));
        }
    }
    let n = x.rows() * x.dim();
    let s = stats(ctx, &x, false, true)?;
    if s.count == 0 {
        return Err(Error::invalid(
            "values",
            format!("{n} values, none finite"),
            "a density estimate needs finite values",
        ));
    }
    let h = match bandwidth {
        Bandwidth::Fixed(h) => h,
        rule => {
            let m = s.count as f64;
            let name = if rule == Bandwidth::Scott {
                "Scott"
            } else {
                "Silverman"
            };
            if s.count < 2 {
                return Err(Error::invalid(
                    "bandwidth",
                    name,
                    "a bandwidth rule needs at least 2 finite values; give Bandwidth::Fixed",
                ));
            }
            let mean = s.sum / m;
            let ss = ctx.backend().sq_dev(&x, mean)?;
            let sd = (ss / (m - 1.0)).sqrt();
            let factor = if rule == Bandwidth::Scott {
                m.powf(-0.2)
            } else {
                (m * 0.75).powf(-0.2)
            };
            let h = factor * sd;
            if !(h.is_finite() && h > 0.0) {
                return Err(Error::invalid(
                    "bandwidth",
                    name,
                    format!(
                        "the finite values' standard deviation is {sd}, so the rule gives {h}; \
                         give Bandwidth::Fixed"
                    ),
                ));
            }
            h
        }
    };
    let (lo, hi) = match range {
        Some(r) => r,
        None => (s.min as f64 - 3.0 * h, s.max as f64 + 3.0 * h),
    };
    let grid = if grid_points == 1 {
        vec![lo]
    } else {
        uniform_edges(lo, hi, grid_points - 1)
    };
    let chunk = kde_chunk(n, grid_points);
    let sums = ctx.backend().kde_sums(&x, &grid, h, chunk)?;
    let scale = 1.0 / (s.count as f64 * h * (2.0 * std::f64::consts::PI).sqrt());
    Ok(Kde {
        density: sums.iter().map(|v| v * scale).collect(),
        grid,
        bandwidth: h,
        samples: s.count,
        non_finite: n as u64 - s.count,
    })
}

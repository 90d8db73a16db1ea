//! Quantiles with NumPy's default (linear) interpolation, found by exact
//! selection on the backend: segments of up to [`SMALL_SEGMENT`] values are
//! sorted whole (a block each on CUDA); longer ones are resolved by radix
//! selection, three counting passes over the data (11, 11 and 10 bits of
//! an order-preserving integer key), so the data never leave the device and
//! are never sorted.

use super::checks::{check, check_counts, check_non_finite};
use crate::core::error::{Error, Result};
use crate::core::stats::StatsOptions;
use crate::core::vector::Axis;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

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
/// let q = quantiles(&ctx, &x, &[0.0, 0.5, 1.0], Axis::PerColumn, &StatsOptions::default()).unwrap();
/// assert_eq!(q, vec![vec![1.0, 2.5, 4.0], vec![5.0, 6.5, 100.0]]);
/// ```
pub fn quantiles<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    levels: &[f64],
    axis: Axis,
    opts: &StatsOptions,
) -> Result<Vec<Vec<f32>>> {
    let x = x.into();
    check(ctx, &x)?;
    check_levels(levels)?;
    let (flat, counts, non_finite) = ctx.backend().quantiles(&x, axis, levels)?;
    check_non_finite(non_finite, axis, opts)?;
    check_counts(counts, axis)?;
    Ok(flat.chunks(levels.len()).map(|c| c.to_vec()).collect())
}

/// The median along `axis` ([`quantiles`] at 0.5).
pub fn median<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    opts: &StatsOptions,
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
/// let q = quartiles(&Context::cpu(), &x, Axis::All, &StatsOptions::default()).unwrap()[0];
/// assert_eq!((q.q1, q.median, q.q3, q.iqr()), (3.0, 5.0, 7.0, 4.0));
/// assert_eq!(q.outlier_bounds(), (-3.0, 13.0));
/// ```
pub fn quartiles<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    opts: &StatsOptions,
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

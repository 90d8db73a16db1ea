//! Descriptive statistics: the mergeable moment accumulator and `describe`.

use super::checks::{check, check_counts, check_non_finite};
use crate::core::error::Result;
use crate::core::stats::{Moments, StatsOptions};
use crate::core::vector::Axis;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

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
/// assert!(describe(&ctx, &x, Axis::PerColumn, &StatsOptions::default()).is_err());
/// let cols = describe(&ctx, &x, Axis::PerColumn, &StatsOptions::default().with_skip_non_finite(true)).unwrap();
/// assert_eq!(cols[0].mean(), Some(2.0));
/// assert_eq!((cols[1].count(), cols[1].non_finite()), (2, 1));
/// assert_eq!(cols[1].variance(1), Some(50.0));
/// ```
pub fn describe<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    opts: &StatsOptions,
) -> Result<Vec<Moments>> {
    let x = x.into();
    check(ctx, &x)?;
    let out = ctx.backend().describe(&x, axis)?;
    check_non_finite(out.iter().map(|m| m.non_finite), axis, opts)?;
    check_counts(out.iter().map(|m| m.count), axis)?;
    Ok(out)
}

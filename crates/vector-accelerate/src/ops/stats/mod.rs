//! Statistics (SPEC 6): descriptive statistics from mergeable one-pass
//! moment accumulators, quantiles found on the device by radix selection,
//! and covariance / correlation matrices.
//!
//! Every function takes a [`Context`](crate::Context) and any `f32`
//! [`Input`](crate::Input) (host rows or rows resident on the context's
//! device), runs on the context's backend (the CPU implementation is the
//! reference) and reduces along an [`Axis`]: every element, each row or
//! each column.
//!
//! # Non-finite values
//!
//! NaN and +-infinity are rejected with [`Error::NonFinite`](crate::Error::NonFinite)
//! (which says how many there are and where the first one is) unless
//! [`StatsOptions::skip_non_finite`] is set; then they are left out of every
//! statistic and counted ([`Moments::non_finite`]). A row or column left with
//! no finite value is an [`Error::InvalidParameter`](crate::Error::InvalidParameter)
//! naming it.
//!
//! ```
//! use vector_accelerate::stats::{describe, quantiles, StatsOptions};
//! use vector_accelerate::vector::Axis;
//! use vector_accelerate::{Context, Matrix};
//! let ctx = Context::cpu();
//! let x = Matrix::new(vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 1).unwrap(); // 8 x 1
//! let m = &describe(&ctx, &x, Axis::All, StatsOptions::default()).unwrap()[0];
//! assert_eq!(m.mean(), Some(5.0));
//! assert_eq!(m.std(0), Some(2.0));
//! let q = quantiles(&ctx, &x, &[0.5, 0.9], Axis::All, StatsOptions::default()).unwrap();
//! assert_eq!(q[0], vec![4.5, 7.6]); // NumPy's linear interpolation
//! ```

mod correlation;
mod moments;
pub(crate) mod quantile;

pub use correlation::{correlation, covariance};
pub use moments::{describe, Moments};
pub use quantile::{median, quantiles, quartiles, Quartiles};

pub use crate::ops::vector::Axis;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::matrix::Input;

/// Options shared by the statistics functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StatsOptions {
    /// Leave NaN and +-infinity out (and count them) instead of returning
    /// [`Error::NonFinite`](crate::Error::NonFinite). Default: `false`.
    pub skip_non_finite: bool,
}

impl StatsOptions {
    /// Options that skip (and count) non-finite values.
    pub fn skipping_non_finite() -> Self {
        StatsOptions {
            skip_non_finite: true,
        }
    }
}

/// Name of segment `i` along `axis`, for messages.
pub(crate) fn segment_name(axis: Axis, i: usize) -> String {
    match axis {
        Axis::All => "the array".to_string(),
        Axis::PerRow => format!("row {i}"),
        Axis::PerColumn => format!("column {i}"),
    }
}

/// Validation shared by the family: a non-empty f32 input on the context's device.
pub(crate) fn check(ctx: &Context, x: &Input<'_>) -> Result<()> {
    crate::ops::vector::check_input(ctx, x, "input")
}

/// The error for non-finite values (`per_segment[i]` counted in segment
/// `i`), or `Ok` when there are none or they are skipped.
pub(crate) fn check_non_finite(
    per_segment: impl IntoIterator<Item = u64>,
    axis: Axis,
    opts: StatsOptions,
) -> Result<()> {
    if opts.skip_non_finite {
        return Ok(());
    }
    let mut first = None;
    let mut total = 0u64;
    for (i, c) in per_segment.into_iter().enumerate() {
        if c > 0 && first.is_none() {
            first = Some(i);
        }
        total += c;
    }
    match first {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite {
            what: "input",
            count: total,
            segment: segment_name(axis, i),
        }),
    }
}

/// The error for a segment with no finite value left (all skipped).
pub(crate) fn check_counts(counts: impl IntoIterator<Item = u64>, axis: Axis) -> Result<()> {
    for (i, c) in counts.into_iter().enumerate() {
        if c == 0 {
            return Err(Error::invalid(
                "input",
                format!("{} has no finite value", segment_name(axis, i)),
                "every statistic needs at least one finite value",
            ));
        }
    }
    Ok(())
}

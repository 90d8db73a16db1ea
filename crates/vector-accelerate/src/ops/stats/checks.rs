//! Validation shared by the statistics functions.

use crate::core::error::{Error, Result};
use crate::core::stats::StatsOptions;
use crate::core::vector::Axis;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

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
    crate::ops::vector::checks::check_input(ctx, x, "input")
}

/// The error for non-finite values (`per_segment[i]` counted in segment
/// `i`), or `Ok` when there are none or they are skipped.
pub(crate) fn check_non_finite(
    per_segment: impl IntoIterator<Item = u64>,
    axis: Axis,
    opts: &StatsOptions,
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

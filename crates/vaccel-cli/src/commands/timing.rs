//! Timing of benchmark cases: medians of repeated runs after a warm-up.

use std::time::Instant;

use anyhow::Result;
use vector_accelerate::Context;

/// The median of some timings.
pub(crate) fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Median milliseconds of `f` over `repeats` runs after one warm-up run.
pub(crate) fn time_ms(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut t = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&t))
}

/// [`time_ms`] with each run ended by a device synchronisation, so work
/// left queued on the device is counted.
pub(crate) fn time_synced_ms(
    ctx: &Context,
    repeats: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    time_ms(repeats, || {
        f()?;
        Ok(ctx.synchronize()?)
    })
}

//! The statistics cases of `vaccel bench ops`: descriptive statistics over
//! the whole matrix, per row and per column (one pass: bandwidth of the
//! bytes read), quantiles of a long vector and per column, and the
//! covariance matrix.

use anyhow::Result;
use vector_accelerate::stats::{covariance, describe, quantiles, StatsOptions};
use vector_accelerate::vector::Axis;
use vector_accelerate::{Context, DeviceMatrix};

use crate::synth::{Generator, BASE_STREAM};

/// Times a case: the median milliseconds of the given closure.
pub type Timer<'a> = dyn Fn(&mut dyn FnMut() -> Result<()>) -> Result<f64> + 'a;

/// The nine levels of the quantile case (deciles).
const LEVELS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Runs the cases on the resident `x` (`rows x dim`), then quantiles of
/// `quantile_n` values; `report(name, shape, ms, bytes)` prints a row.
pub fn stats_cases(
    ctx: &Context,
    x: &DeviceMatrix,
    quantile_n: usize,
    seed: u64,
    time_ms: &Timer<'_>,
    report: &mut dyn FnMut(&str, &str, f64, f64) -> Result<()>,
) -> Result<()> {
    let (rows, dim) = (x.rows(), x.dim());
    let shape = format!("{rows} x {dim}");
    let size = (rows * dim * 4) as f64;
    let o = StatsOptions::default();
    for (name, axis) in [
        ("describe (all): moments 1-4, min, max", Axis::All),
        ("describe per row", Axis::PerRow),
        ("describe per column", Axis::PerColumn),
    ] {
        let ms = time_ms(&mut || Ok(describe(ctx, x, axis, &o).map(drop)?))?;
        report(name, &shape, ms, size)?;
    }
    let ms = time_ms(&mut || Ok(quantiles(ctx, x, &[0.5], Axis::PerColumn, &o).map(drop)?))?;
    report(
        "median per column (transpose + selection)",
        &shape,
        ms,
        size,
    )?;
    let ms = time_ms(&mut || Ok(covariance(ctx, x, 1).map(drop)?))?;
    report("covariance matrix (exact f32 GEMM)", &shape, ms, size)?;
    let v = ctx.upload(&Generator::gaussian(1, seed)?.rows(quantile_n, BASE_STREAM)?)?;
    let ms = time_ms(&mut || Ok(quantiles(ctx, &v, &LEVELS, Axis::All, &o).map(drop)?))?;
    report(
        "quantiles, 9 levels (radix selection)",
        &format!("{quantile_n}"),
        ms,
        (quantile_n * 4) as f64,
    )?;
    Ok(())
}

//! `vaccel stats`: a per-column summary of a float32 `.npy` table (rows
//! are observations, columns variables): count, non-finite values, mean,
//! standard deviation, min, quartiles, max, skewness and excess kurtosis,
//! computed on the chosen device.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use vector_accelerate::stats::{describe, quantiles, Axis, StatsOptions};

use super::args::make_context;
use crate::io::npy;

/// Arguments of `vaccel stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Values: a float32 ('<f4') .npy array; a 2-D array is rows x columns
    /// (one summary per column), a 1-D array one column.
    #[arg(value_name = "FILE.npy")]
    file: PathBuf,
    /// Leave NaN and +-inf out (and count them) instead of refusing them.
    #[arg(long)]
    skip_non_finite: bool,
    /// Device: cpu, cuda, cuda:N or auto (default: the
    /// VECTOR_ACCELERATE_DEVICE variable, else auto).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

/// A number in at most 11 characters.
fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(v) if (1e-3..1e6).contains(&v.abs()) => format!("{v:.6}"),
        Some(v) => format!("{v:.4e}"),
    }
}

/// Runs the command.
pub fn run(a: StatsArgs) -> Result<()> {
    let (ctx, _) = make_context(a.device.as_deref())?;
    let x =
        npy::read_table(&a.file).with_context(|| format!("cannot read '{}'", a.file.display()))?;
    let o = StatsOptions::default().with_skip_non_finite(a.skip_non_finite);
    // One upload serves both passes.
    let d = ctx.upload(&x)?;
    let m = describe(&ctx, &d, Axis::PerColumn, &o)?;
    let q = quantiles(&ctx, &d, &[0.25, 0.5, 0.75], Axis::PerColumn, &o)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} rows x {} columns of {}, device {}",
        x.rows(),
        x.dim(),
        a.file.display(),
        ctx.device()
    )?;
    writeln!(
        out,
        "{:>6} {:>10} {:>6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "column",
        "count",
        "nonfin",
        "mean",
        "std",
        "min",
        "25%",
        "50%",
        "75%",
        "max",
        "skew",
        "kurt"
    )?;
    for (j, (c, q)) in m.iter().zip(&q).enumerate() {
        writeln!(
            out,
            "{j:>6} {:>10} {:>6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            c.count(),
            c.non_finite(),
            num(c.mean()),
            num(c.std(1)),
            num(c.min().map(f64::from)),
            num(Some(q[0] as f64)),
            num(Some(q[1] as f64)),
            num(Some(q[2] as f64)),
            num(c.max().map(f64::from)),
            num(c.skewness(false)),
            num(c.kurtosis(false)),
        )?;
    }
    writeln!(
        out,
        "std: sample (ddof 1); skew, kurt: bias-corrected (excess kurtosis); quartiles: linear interpolation"
    )?;
    Ok(())
}

//! `vaccel info`: the device a context uses and its properties.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use vector_accelerate::kernels::nvrtc_available;

use super::args::make_context;

/// Arguments of `vaccel info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Device to open: cpu, cuda, cuda:N or auto (default: the
    /// VECTOR_ACCELERATE_DEVICE variable, else auto).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

/// Bytes per GiB.
const GIB: f64 = (1u64 << 30) as f64;

/// Prints the backend, the device's properties and, after an automatic
/// choice that ended on the CPU, why CUDA was not used.
pub fn run(args: InfoArgs) -> Result<()> {
    let (ctx, how) = make_context(args.device.as_deref())?;
    let info = ctx.info();
    let mut out = std::io::stdout().lock();
    let backend = if ctx.is_cuda() { "CUDA" } else { "CPU" };
    writeln!(
        out,
        "backend:            {backend} ({}, {how})",
        info.device
    )?;
    writeln!(out, "device:             {}", info.name)?;
    if let Some((major, minor)) = info.compute_capability {
        writeln!(out, "compute capability: {major}.{minor}")?;
    }
    if let Some(total) = info.total_memory {
        let free = info
            .free_memory
            .map(|f| format!(", {:.2} GiB free", f as f64 / GIB))
            .unwrap_or_default();
        writeln!(
            out,
            "memory:             {:.2} GiB total{free}",
            total as f64 / GIB
        )?;
    }
    if let Some(sm) = info.multiprocessors {
        writeln!(out, "multiprocessors:    {sm}")?;
    }
    if let Some(v) = &info.driver_version {
        writeln!(out, "CUDA driver:        {v}")?;
    }
    let nvrtc = match (&info.nvrtc_version, nvrtc_available()) {
        (Some(v), true) => format!("{v} (available)"),
        (None, true) => "available".to_string(),
        (_, false) => "not available".to_string(),
    };
    writeln!(out, "NVRTC:              {nvrtc}")?;
    if let Some(v) = &info.cublas_version {
        writeln!(out, "cuBLAS:             {v}")?;
    }
    writeln!(out, "CPU threads:        {}", info.cpu_threads)?;
    if let Some(reason) = ctx.fallback_reason() {
        writeln!(out, "CUDA not used: {reason}")?;
    }
    Ok(())
}

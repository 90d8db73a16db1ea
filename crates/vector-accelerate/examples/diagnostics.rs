//! The device: what a context runs on, the hardware ceilings benchmarks
//! compare against, and device memory in use.
//!
//! `cargo run --release --example diagnostics`

use vector_accelerate::diagnostics::measure_ceilings;
use vector_accelerate::{knn, Context, Matrix, Metric};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let info = ctx.info();
    println!(
        "{} ({}), CPU threads {}",
        ctx.device(),
        info.name,
        info.cpu_threads
    );
    if let Some(why) = ctx.fallback_reason() {
        println!("CUDA not used: {why}");
    }
    let c = measure_ceilings(&ctx)?;
    println!(
        "copy {:.1} GB/s, fp32 GEMM {:.1} TFLOP/s",
        c.copy_bytes_per_s / 1e9,
        c.sgemm_flops / 1e12
    );
    let base = ctx.upload(&Matrix::new(vec![0.5; 100_000 * 64], 64)?)?;
    ctx.reset_peak_memory()?;
    knn(
        &ctx,
        &Matrix::new(vec![0.25; 64 * 10], 64)?,
        &base,
        5,
        Metric::L2,
    )?;
    let m = ctx.memory_stats()?;
    println!(
        "device memory: {} bytes in use, {} cached, peak {}, {} buffers allocated",
        m.in_use, m.cached, m.peak, m.allocations
    );
    ctx.release_cached_device_memory()?;
    Ok(())
}

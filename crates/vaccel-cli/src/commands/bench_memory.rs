//! `vaccel bench memory`: device memory of the main operations at two input
//! sizes, from `Context::memory_stats`: the result an operation leaves, its
//! peak above what was in use before the call, the buffers it takes from
//! the pool per call, and the device memory the pool had to grow by on a
//! repeated (steady-state) call.

use std::any::Any;
use std::io::Write;

use anyhow::{ensure, Result};
use clap::Args;
use vector_accelerate::cluster::assign;
use vector_accelerate::histogram::{histogram, BinSpec, HistogramOptions};
use vector_accelerate::linalg::{gemm, GemmOptions};
use vector_accelerate::quantize::{
    Codec, PqOptions, ProductQuantizer, ScalarOptions, ScalarQuantizer, SearchOptions,
};
use vector_accelerate::select::topk;
use vector_accelerate::vector::{normalize, reduce, softmax, Axis, Reduction};
use vector_accelerate::{
    knn, knn_with, Context, KnnOptions, Matrix, MemoryStats, Metric, Order, Precision,
};

use super::args::make_context;
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Arguments of `vaccel bench memory`.
#[derive(Debug, Args)]
pub struct BenchMemoryArgs {
    /// Device: cuda, cuda:N or auto (the figures are device memory).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Rows of the larger input (the smaller has a quarter).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Seed of the data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// What one call did to device memory.
struct Usage {
    /// Bytes in use after the call beyond before it (the result).
    result: u64,
    /// Peak bytes in use during the call beyond before it.
    peak: u64,
    /// Buffers taken from the pool.
    buffers: u64,
    /// Bytes the pool grew by.
    growth: u64,
}

/// One call of `op` after a warm-up call, with its result held while the
/// figures are read.
fn measure(ctx: &Context, op: &mut dyn FnMut() -> Result<Box<dyn Any>>) -> Result<Usage> {
    drop(op()?);
    ctx.synchronize()?;
    let before = ctx.memory_stats()?;
    ctx.reset_peak_memory()?;
    let held = op()?;
    ctx.synchronize()?;
    let after = ctx.memory_stats()?;
    drop(held);
    let reserved = |s: &MemoryStats| s.in_use + s.cached;
    Ok(Usage {
        result: after.in_use.saturating_sub(before.in_use),
        peak: after.peak.max(after.in_use).saturating_sub(before.in_use),
        buffers: after.allocations - before.allocations,
        growth: reserved(&after).saturating_sub(reserved(&before)),
    })
}

/// Mebibytes.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// Boxes a result for [`measure`].
fn held<T: Any>(r: vector_accelerate::Result<T>) -> Result<Box<dyn Any>> {
    Ok(Box::new(r?))
}

/// Measures `op` and prints its row.
fn report(
    ctx: &Context,
    out: &mut dyn Write,
    (name, input, input_bytes): (&str, &str, usize),
    op: &mut dyn FnMut() -> Result<Box<dyn Any>>,
) -> Result<()> {
    let u = measure(ctx, op)?;
    let work = u.peak.saturating_sub(u.result);
    writeln!(
        out,
        "| {name} | {input} | {:.1} | {:.1} | {:.1} | {:.2} | {} | {} |",
        mib(input_bytes as u64),
        mib(u.result),
        mib(u.peak),
        work as f64 / input_bytes as f64,
        u.buffers,
        u.growth
    )?;
    Ok(())
}

/// Runs the benchmark.
pub fn run(a: BenchMemoryArgs) -> Result<()> {
    ensure!(a.rows >= 4, "--rows must be at least 4");
    let (ctx, how) = make_context(a.device.as_deref())?;
    ensure!(
        ctx.is_cuda(),
        "bench memory reports device memory; this context is {} ({how})",
        ctx.device()
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({}, {how})", ctx.device(), ctx.info().name)?;
    writeln!(out)?;
    writeln!(
        out,
        "| operation | input | input MiB | result MiB | peak above before MiB | workspace / input | buffers per call | pool growth per repeated call (bytes) |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|")?;
    for rows in [a.rows / 4, a.rows] {
        search_cases(&ctx, &mut out, rows, a.seed)?;
        vector_cases(&ctx, &mut out, rows / 4, a.seed)?;
        ctx.release_cached_device_memory()?;
    }
    Ok(())
}

/// k-NN, selection, k-means assignment and the quantizers over `rows`
/// rows of 128 values.
fn search_cases(ctx: &Context, out: &mut dyn Write, rows: usize, seed: u64) -> Result<()> {
    let d = 128;
    let g = Generator::clustered(d, 1000, seed)?;
    let host = g.rows(rows, BASE_STREAM)?;
    let base = ctx.upload(&host)?;
    let queries = ctx.upload(&g.rows(10_000, QUERY_STREAM)?)?;
    let input = format!("{rows} x {d}");
    let bytes = rows * d * 4;
    let row = |name| (name, input.as_str(), bytes);
    report(
        ctx,
        out,
        row("knn exact, 10,000 queries, k = 10, resident base"),
        &mut || held(knn(ctx, &queries, &base, 10, Metric::L2)),
    )?;
    report(
        ctx,
        out,
        row("knn exact, 10,000 queries, k = 10, host base (streamed)"),
        &mut || held(knn(ctx, &queries, &host, 10, Metric::L2)),
    )?;
    let bf16 = KnnOptions::default().with_precision(Precision::Bf16);
    report(
        ctx,
        out,
        row("knn bf16, 10,000 queries, k = 100, resident base"),
        &mut || held(knn_with(ctx, &queries, &base, 100, &bf16)),
    )?;
    let centroids = g.rows(1024, QUERY_STREAM + 1)?;
    report(
        ctx,
        out,
        row("k-means assignment, 1,024 centroids"),
        &mut || held(assign(ctx, &base, &centroids, false)),
    )?;
    let sq = ScalarQuantizer::train(ctx, &base, &ScalarOptions::int8())?;
    report(ctx, out, row("sq8 encode"), &mut || {
        held(sq.encode(ctx, &base))
    })?;
    let pq = ProductQuantizer::train(
        ctx,
        &base,
        &PqOptions::new(16, 8)
            .with_iterations(4)
            .with_max_training_points(65_536),
    )?;
    report(ctx, out, row("pq encode, M = 16"), &mut || {
        held(pq.encode(ctx, &base))
    })?;
    let codes = pq.encode(ctx, &base)?;
    let plain = SearchOptions::default();
    report(
        ctx,
        out,
        row("pq search, 10,000 queries, k = 10"),
        &mut || held(pq.search(ctx, &queries, &codes, 10, &plain)),
    )?;
    Ok(())
}

/// The vector utilities, selection, histogram and GEMM over `rows` rows
/// of 1,024 values.
fn vector_cases(ctx: &Context, out: &mut dyn Write, rows: usize, seed: u64) -> Result<()> {
    let d = 1024;
    let x = ctx.upload(&Generator::gaussian(d, seed)?.rows(rows, BASE_STREAM)?)?;
    let input = format!("{rows} x {d}");
    let bytes = rows * d * 4;
    let row = |name| (name, input.as_str(), bytes);
    report(ctx, out, row("normalize"), &mut || held(normalize(ctx, &x)))?;
    report(ctx, out, row("sum per row"), &mut || {
        held(reduce(ctx, &x, Reduction::Sum, Axis::PerRow))
    })?;
    report(ctx, out, row("softmax"), &mut || held(softmax(ctx, &x)))?;
    report(ctx, out, row("top-k per row, k = 100"), &mut || {
        held(topk(ctx, &x, 100, Order::Smallest))
    })?;
    let range = Some((-4.0, 4.0));
    let spec = BinSpec::Uniform { bins: 1024, range };
    let hopts = HistogramOptions::default();
    report(ctx, out, row("histogram, 1,024 bins"), &mut || {
        held(histogram(ctx, &x, &spec, &hopts))
    })?;
    let m = (rows.min(8192) / 8).max(1) * 8;
    let a = ctx.upload(&Matrix::new(vec![0.5; m * d], d)?)?;
    let opts = GemmOptions::default().with_trans_b(true);
    let gin = format!("{m} x {d} by {d} x {m}");
    report(
        ctx,
        out,
        ("gemm, fp32, A B^T", gin.as_str(), 2 * m * d * 4),
        &mut || held(gemm(ctx, &a, &a, None, &opts)),
    )?;
    Ok(())
}

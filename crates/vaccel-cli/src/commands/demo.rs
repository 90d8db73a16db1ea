//! `vaccel demo`: exact squared-L2 k-NN on seeded clustered data, timed
//! after a warm-up run and checked against an fp64 brute force.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use clap::Args;
use vector_accelerate::{knn, Metric};

use super::args::{check_k, make_context};
use crate::reference::verify_l2;
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Arguments of `vaccel demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Base vectors.
    #[arg(long, default_value_t = 200_000)]
    n: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Query vectors.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    k: usize,
    /// Gaussian clusters the data is drawn from.
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Device: cpu, cuda, cuda:N or auto (default: the
    /// VECTOR_ACCELERATE_DEVICE variable, else auto).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Queries checked against the fp64 reference (0 skips the check).
    #[arg(long, default_value_t = 50)]
    verify: usize,
}

/// Generates the data, searches twice (warm-up, then timed), prints the
/// timing and verifies a sample of queries; fails on any mismatch.
pub fn run(args: DemoArgs) -> Result<()> {
    check_k(args.k)?;
    ensure!(args.n >= 1, "--n must be at least 1");
    ensure!(args.queries >= 1, "--queries must be at least 1");
    let (ctx, how) = make_context(args.device.as_deref())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({}, {how})", ctx.device(), ctx.info().name)?;
    if let Some(reason) = ctx.fallback_reason() {
        writeln!(out, "CUDA not used: {reason}")?;
    }

    let t = Instant::now();
    let gen = Generator::clustered(args.dim, args.clusters, args.seed)?;
    let base = gen.rows(args.n, BASE_STREAM)?;
    let queries = gen.rows(args.queries, QUERY_STREAM)?;
    writeln!(
        out,
        "data: {} base and {} query vectors of dimension {}, {} clusters, seed {} \
         (generated in {:.2} s)",
        args.n,
        args.queries,
        args.dim,
        args.clusters,
        args.seed,
        t.elapsed().as_secs_f64()
    )?;

    let t = Instant::now();
    let resident = ctx.upload(&base)?;
    let upload = t.elapsed();
    let t = Instant::now();
    knn(&ctx, &queries, &resident, args.k, Metric::L2)?;
    let warm = t.elapsed();
    let note = if ctx.is_cuda() {
        " (includes kernel compilation)"
    } else {
        ""
    };
    writeln!(
        out,
        "upload: {:.1} ms; warm-up search: {:.1} ms{note}",
        upload.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    )?;

    let t = Instant::now();
    let result = knn(&ctx, &queries, &resident, args.k, Metric::L2)?;
    let secs = t.elapsed().as_secs_f64();
    writeln!(
        out,
        "knn (k={}, l2): {:.2} ms, {:.0} queries/s",
        args.k,
        secs * 1e3,
        args.queries as f64 / secs.max(1e-9)
    )?;

    let checked = args.verify.min(args.queries);
    if checked == 0 {
        writeln!(out, "verification skipped")?;
        return Ok(());
    }
    // Evenly spread over the queries.
    let sample: Vec<usize> = (0..checked).map(|i| i * args.queries / checked).collect();
    let failures = verify_l2(&base, &queries, &result, &sample);
    writeln!(
        out,
        "verified {}/{checked} queries against an fp64 reference",
        checked - failures.len()
    )?;
    if let Some(first) = failures.first() {
        bail!(
            "{} of {checked} queries differ from the fp64 reference; first: {first}",
            failures.len()
        );
    }
    Ok(())
}

//! `vaccel knn`: exact k-NN of query vectors in base vectors read from
//! files, written as `.npy` ids (and optionally distances).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use vector_accelerate::{
    knn, knn_with, Context, DeviceMatrix, Distance, Input, KnnOptions, Metric, Precision,
};

use super::args::{check_k, write_neighbors, DeviceArg, NeighborOutputs};
use crate::batching::search_in_batches;
use crate::io::{read_matrix, Data};

/// Arguments of `vaccel knn`.
#[derive(Debug, Args)]
pub struct KnnArgs {
    /// Base vectors: .npy ('<f4', or '|u1' bit-packed binary rows), .fvecs,
    /// .bvecs, .fbin, .u8bin, .i8bin, or a dataset of an HDF5 file
    /// (FILE.hdf5#train).
    #[arg(long, value_name = "FILE")]
    base: PathBuf,
    /// Query vectors, in the same formats; same kind and dimension as the base.
    #[arg(long, value_name = "FILE")]
    queries: PathBuf,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", value_name = "K")]
    k: usize,
    /// l2 (squared), euclidean, cosine, cosine-similarity, ip, abs-ip, l1,
    /// linf, minkowski:P, hamming, hamming-normalized or jaccard.
    #[arg(long, value_name = "METRIC")]
    metric: String,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    out: NeighborOutputs,
    /// Print neither the progress bar nor the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Hamming on float32 input: a value x is the bit x > T (default 0).
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    threshold: Option<f32>,
    /// Precision mode on CUDA for l2, euclidean, cosine and inner product:
    /// exact (default), or tf32, bf16, f16 (faster ranking, fp32 distances).
    #[arg(long, value_name = "MODE", default_value = "exact")]
    precision: Precision,
}

/// Loads the inputs, searches in batches and writes the outputs; no output
/// file appears unless every step succeeded.
pub fn run(args: KnnArgs) -> Result<()> {
    check_k(args.k)?;
    let metric: Metric = args.metric.parse()?;
    let mut dist = Distance::new(metric);
    if let Some(t) = args.threshold {
        dist = dist.with_threshold(t);
    }
    args.out.check()?;
    let (ctx, _) = args.device.context()?;
    let base = read_matrix(&args.base)
        .with_context(|| format!("cannot read base file '{}'", args.base.display()))?;
    let queries = read_matrix(&args.queries)
        .with_context(|| format!("cannot read queries file '{}'", args.queries.display()))?;
    // One query against one base row checks kinds, dimensions and options
    // before any long work starts.
    knn(&ctx, queries.slice(0, 1), base.slice(0, 1), 1, &dist)?;
    if metric.canonical() == Metric::Jaccard {
        check_non_negative("queries", &queries)?;
        check_non_negative("base", &base)?;
    }

    let outputs = args.out.create()?;
    let started = Instant::now();
    let resident = upload_base(&ctx, &base)?;
    let upload_seconds = started.elapsed().as_secs_f64();
    let base_input = resident.as_ref().map_or_else(|| base.input(), Input::from);
    let started = Instant::now();
    let opts = KnnOptions::default()
        .with_metric(dist.clone())
        .with_precision(args.precision);
    let (ids, dists) = search_in_batches(queries.rows(), args.k, !args.quiet, |start, end| {
        Ok(knn_with(
            &ctx,
            queries.slice(start, end),
            base_input,
            args.k,
            &opts,
        )?)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let resident_used = resident.is_some();
    drop(resident);

    let (nq, k) = (queries.rows(), args.k);
    write_neighbors(outputs, (nq, k), &ids, &dists)?;

    if !args.quiet {
        let upload = if resident_used {
            format!(" (+ {upload_seconds:.3} s to copy the base to the device)")
        } else {
            String::new()
        };
        let _ = writeln!(
            std::io::stderr(),
            "knn: {nq} queries x {} base ({}), k={k}, metric {metric}, device {}: \
             {seconds:.3} s{upload}, {:.0} queries/s",
            base.rows(),
            base.describe(),
            ctx.device(),
            nq as f64 / seconds.max(1e-9),
        );
    }
    Ok(())
}

/// Copies the base to a CUDA device once when it fits half the device
/// budget; a larger base (or any base on the CPU) stays on the host, and the
/// library streams it on every batch.
fn upload_base(ctx: &Context, base: &Data) -> Result<Option<DeviceMatrix>> {
    if !ctx.is_cuda() || base.bytes() > ctx.memory_budget() / 2 {
        return Ok(None);
    }
    let resident = ctx
        .upload(base.input())
        .context("cannot copy the base to the device")?;
    Ok(Some(resident))
}

/// Weighted Jaccard needs values >= 0; checked over the whole file here,
/// since a batch would report row numbers relative to itself.
fn check_non_negative(what: &str, data: &Data) -> Result<()> {
    if let Data::F32(m) = data {
        if let Some(pos) = m.as_slice().iter().position(|v| *v < 0.0) {
            bail!(
                "{what} row {} column {} is {}; weighted jaccard needs values >= 0",
                pos / m.dim(),
                pos % m.dim(),
                m.as_slice()[pos]
            );
        }
    }
    Ok(())
}

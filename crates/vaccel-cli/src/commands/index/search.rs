//! `vaccel index search` and `info`: the commands that read an index.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Result};
use clap::Args;
use vector_accelerate::index::{IdSelector, SearchParams};
use vector_accelerate::Context;

use super::files::{check_dim, load, read_ids, read_vectors, summary};
use crate::batching::search_in_batches;
use crate::commands::args::{check_k, write_neighbors, DeviceArg, NeighborOutputs};

/// Arguments of `vaccel index search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The index folder (made by vaccel index build).
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    /// Query vectors: float32 .npy (or float64/float16), .fvecs or .bvecs,
    /// of the index's dimension.
    #[arg(long, value_name = "FILE")]
    queries: PathBuf,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", value_name = "K")]
    k: usize,
    /// Lists scanned per query by an IVF index (default: the index's own,
    /// set at build).
    #[arg(long, value_name = "N")]
    nprobe: Option<usize>,
    /// Candidates re-ranked exactly per result by an index that refines
    /// (factory ending in `,Refine`; default: the index's own).
    #[arg(long, value_name = "N")]
    refine_factor: Option<usize>,
    /// Return only these ids: an integer .npy vector (k results whenever k
    /// of them are in the index).
    #[arg(long, value_name = "FILE")]
    filter: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    out: NeighborOutputs,
    /// Print neither the progress bar nor the summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `vaccel index info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The index folder (made by vaccel index build).
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
}

/// Searches the index in batches of queries and writes the outputs; no
/// output file appears unless every step succeeded.
pub fn run_search(a: SearchArgs) -> Result<()> {
    check_k(a.k)?;
    ensure!(a.nprobe != Some(0), "--nprobe must be at least 1");
    ensure!(
        a.refine_factor != Some(0),
        "--refine-factor must be at least 1"
    );
    a.out.check()?;
    let (ctx, _) = a.device.context()?;
    let (index, _) = load(&ctx, &a.index)?;
    let queries = read_vectors(&a.queries, "queries file")?;
    check_dim(&queries, &a.queries, "queries file", Some(index.dim()))?;
    let filter = match &a.filter {
        Some(p) => Some(IdSelector::allow(read_ids(p, "filter file")?)),
        None => None,
    };
    let mut params = SearchParams::default();
    if let Some(n) = a.nprobe {
        params = params.with_nprobe(n);
    }
    if let Some(f) = a.refine_factor {
        params = params.with_refine_factor(f);
    }
    if let Some(f) = &filter {
        params = params.with_filter(f);
    }

    let outputs = a.out.create()?;
    let started = Instant::now();
    let (nq, k) = (queries.rows(), a.k);
    let (ids, dists) = search_in_batches(nq, k, !a.quiet, |start, end| {
        Ok(index.search(queries.view().slice_rows(start, end), k, &params)?)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    write_neighbors(outputs, (nq, k), &ids, &dists)?;

    let probes = match index.nlist() {
        Some(lists) => format!(", nprobe {} of {lists}", a.nprobe.unwrap_or(index.nprobe())),
        None => String::new(),
    };
    summary(
        a.quiet,
        format_args!(
            "search: {nq} queries x {} vectors ({}, {}{probes}), k={k}, device {}: \
             {seconds:.3} s, {:.0} queries/s",
            index.len(),
            index.factory(),
            index.metric(),
            ctx.device(),
            nq as f64 / seconds.max(1e-9),
        ),
    );
    Ok(())
}

/// Prints what the index holds (read on the CPU).
pub fn run_info(a: InfoArgs) -> Result<()> {
    let (index, file) = load(&Context::cpu(), &a.index)?;
    let file_size = std::fs::metadata(&file)?.len();
    let lists = index
        .nlist()
        .map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut out = std::io::stdout().lock();
    writeln!(out, "index:     {}", file.display())?;
    writeln!(out, "factory:   {}", index.factory())?;
    writeln!(out, "metric:    {}", index.metric())?;
    writeln!(out, "dimension: {}", index.dim())?;
    writeln!(out, "vectors:   {}", index.len())?;
    writeln!(out, "nlist:     {lists}")?;
    writeln!(out, "nprobe:    {}", index.nprobe())?;
    writeln!(out, "deleted:   {}", index.deleted())?;
    writeln!(out, "memory:    {}", bytes(index.memory_usage() as u64))?;
    writeln!(out, "file size: {}", bytes(file_size))?;
    Ok(())
}

/// A byte count with its size in MiB.
fn bytes(n: u64) -> String {
    format!("{n} bytes ({:.2} MiB)", n as f64 / (1u64 << 20) as f64)
}

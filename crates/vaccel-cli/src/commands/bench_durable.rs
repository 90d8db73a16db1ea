//! `vaccel bench durable`: the cost of durability. Durable adds in batches
//! against in-memory adds; acknowledged single-vector adds per second with
//! concurrent writers (group commit); search throughput while a writer
//! adds, against idle; and the time to reopen an index with a long log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Args;
use vector_accelerate::index::{DurableIndex, DurableOptions, Index, SearchParams, SyncPolicy};
use vector_accelerate::{Context, Matrix, Metric};

use super::args::make_context;
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Arguments of `vaccel bench durable`.
#[derive(Debug, Args)]
pub struct BenchDurableArgs {
    /// Device of the index: cpu, cuda, cuda:N or auto (the log is on disk).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Directory for the durable indexes (default: a new folder in the
    /// system's temporary directory; removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Rows per batch of the batch-add case.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Batches of the batch-add case.
    #[arg(long, default_value_t = 100)]
    batches: usize,
    /// Concurrent writers of single vectors.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Single-vector adds of each writer.
    #[arg(long, default_value_t = 2000)]
    adds_per_writer: usize,
    /// Rows of the index searched while a writer adds, and of the snapshot
    /// reopened with a long log.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Single-vector records in the log of the reopened index.
    #[arg(long, default_value_t = 100_000)]
    log_records: usize,
    /// Index searched while a writer adds: a factory string, or "ivf" for
    /// IVF-Flat with the recommended number of lists.
    #[arg(long, default_value = "ivf")]
    search_factory: String,
    /// Rows of the index searched while a writer adds (default: --rows).
    #[arg(long)]
    search_rows: Option<usize>,
    /// Seconds of each search-throughput measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Also run the batch and concurrent cases with the weaker interval
    /// sync policy (the log synced in the background every this many ms).
    #[arg(long, value_name = "MS")]
    sync_interval_ms: Option<f64>,
}

/// The sync policies the write cases run with: every operation, and the
/// interval policy when asked for (its label says what it risks).
fn policies(a: &BenchDurableArgs) -> Vec<(String, DurableOptions)> {
    let mut v = vec![(String::new(), DurableOptions::default())];
    if let Some(ms) = a.sync_interval_ms {
        v.push((
            format!(" [synced every {ms} ms: a power loss can lose that much]"),
            DurableOptions::default()
                .with_sync(SyncPolicy::Interval(Duration::from_secs_f64(ms / 1e3))),
        ));
    }
    v
}

/// Runs the benchmark.
pub fn run(a: BenchDurableArgs) -> Result<()> {
    ensure!(
        a.dim >= 1 && a.batch >= 1 && a.batches >= 1 && a.writers >= 1,
        "sizes must be at least 1"
    );
    let (ctx, how) = make_context(a.device.as_deref())?;
    let root = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("vaccel-bench-durable-{}", std::process::id()))
    });
    println!(
        "device: {} ({how}); directory: {}",
        ctx.device(),
        root.display()
    );
    let result = cases(&ctx, &a, &root);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn fresh(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn cases(ctx: &Context, a: &BenchDurableArgs, root: &Path) -> Result<()> {
    let gen = Generator::clustered(a.dim, 100, 11)?;
    let data = gen.rows(a.batch * a.batches, BASE_STREAM)?;
    batch_adds(ctx, a, root, &data)?;
    concurrent_single_adds(ctx, a, root, &data)?;
    let queries = gen.rows(1000, QUERY_STREAM)?;
    let searched = gen.rows(a.search_rows.unwrap_or(a.rows), BASE_STREAM + 1)?;
    search_while_adding(ctx, a, root, &searched, &queries, &data)?;
    drop(searched);
    let base = gen.rows(a.rows, BASE_STREAM + 1)?;
    reopen_with_long_log(ctx, a, root, base, &data)
}

fn batch_adds(ctx: &Context, a: &BenchDurableArgs, root: &Path, data: &Matrix) -> Result<()> {
    let rows = |i: usize| data.view().slice_rows(i * a.batch, (i + 1) * a.batch);
    let mut mem = Index::new(ctx, a.dim, "Flat", Metric::L2)?;
    let t = Instant::now();
    for i in 0..a.batches {
        mem.add(rows(i))?;
    }
    let in_memory = (a.batch * a.batches) as f64 / t.elapsed().as_secs_f64();
    for (label, opts) in policies(a) {
        let d = DurableIndex::create(
            fresh(root, "batches"),
            Index::new(ctx, a.dim, "Flat", Metric::L2)?,
            opts,
        )?;
        let t = Instant::now();
        for i in 0..a.batches {
            d.add(rows(i))?;
        }
        let durable = (a.batch * a.batches) as f64 / t.elapsed().as_secs_f64();
        println!(
            "batch adds ({} x {} x {}): in memory {:.0} rows/s, durable {:.0} rows/s: {:.1}% (target >= 50%){label}",
            a.batches, a.batch, a.dim, in_memory, durable, 100.0 * durable / in_memory
        );
    }
    Ok(())
}

/// `total` single-vector adds of row `i % rows` under id `first + i`,
/// split over `writers` threads.
fn single_adds(
    d: &DurableIndex,
    data: &Matrix,
    (writers, total): (usize, usize),
    first: u64,
) -> Result<()> {
    let per = total.div_ceil(writers);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                s.spawn(move || -> Result<()> {
                    for i in w * per..((w + 1) * per).min(total) {
                        let r = i % data.rows();
                        d.add_with_ids(data.view().slice_rows(r, r + 1), &[first + i as u64])?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("writer panicked"))
    })
}

fn concurrent_single_adds(
    ctx: &Context,
    a: &BenchDurableArgs,
    root: &Path,
    data: &Matrix,
) -> Result<()> {
    for (label, opts) in policies(a) {
        let d = DurableIndex::create(
            fresh(root, "writers"),
            Index::new(ctx, a.dim, "Flat", Metric::L2)?,
            opts,
        )?;
        let t = Instant::now();
        single_adds(&d, data, (a.writers, a.writers * a.adds_per_writer), 0)?;
        let total = a.writers * a.adds_per_writer;
        println!(
            "{} concurrent writers of single vectors: {:.0} acknowledged adds/s ({} adds; target >= 20,000/s){label}",
            a.writers,
            total as f64 / t.elapsed().as_secs_f64(),
            total
        );
    }
    Ok(())
}

/// Queries per second of repeated searches for `seconds`.
fn search_rate(d: &DurableIndex, queries: &Matrix, seconds: f64) -> Result<f64> {
    let params = SearchParams::default();
    let (t, mut done) = (Instant::now(), 0usize);
    while t.elapsed().as_secs_f64() < seconds {
        d.search(queries, 10, &params)?;
        done += queries.rows();
    }
    Ok(done as f64 / t.elapsed().as_secs_f64())
}

fn search_while_adding(
    ctx: &Context,
    a: &BenchDurableArgs,
    root: &Path,
    base: &Matrix,
    queries: &Matrix,
    data: &Matrix,
) -> Result<()> {
    let factory = match a.search_factory.as_str() {
        "ivf" => format!(
            "IVF{},Flat",
            vector_accelerate::index::recommended_nlist(base.rows())
        ),
        f => f.to_string(),
    };
    let mut index = Index::new(ctx, a.dim, &factory, Metric::L2)?;
    index.train(base)?;
    index.add(base)?;
    let d = DurableIndex::create(
        fresh(root, "search"),
        index,
        DurableOptions::default().with_checkpoint_bytes(0),
    )?;
    let idle = search_rate(&d, queries, a.seconds)?;
    let t = Instant::now();
    for r in 0..20 {
        d.add(data.view().slice_rows(r, r + 1))?;
    }
    let alone = t.elapsed().as_secs_f64() / 20.0;
    let stop = AtomicBool::new(false);
    let (busy, added) = std::thread::scope(|s| -> Result<(f64, usize)> {
        let writer = s.spawn(|| -> Result<usize> {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = n % data.rows();
                d.add(data.view().slice_rows(r, r + 1))?;
                n += 1;
            }
            Ok(n)
        });
        let busy = search_rate(&d, queries, a.seconds);
        stop.store(true, Ordering::Relaxed);
        let added = writer.join().expect("writer panicked")?;
        Ok((busy?, added))
    })?;
    println!(
        "search ({} x {} {factory}, 1,000 queries, k 10): idle {:.0} q/s, while one writer adds {:.0} q/s: {:.1}% (target >= 80%; {} single-vector adds meanwhile, {:.2} ms each without searches)",
        base.rows(), a.dim, idle, busy, 100.0 * busy / idle, added, alone * 1e3
    );
    Ok(())
}

fn reopen_with_long_log(
    ctx: &Context,
    a: &BenchDurableArgs,
    root: &Path,
    base: Matrix,
    data: &Matrix,
) -> Result<()> {
    let dir = fresh(root, "reopen");
    let mut index = Index::new(ctx, a.dim, "Flat", Metric::L2)?;
    index.add(&base)?;
    drop(base);
    let d = DurableIndex::create(
        &dir,
        index,
        DurableOptions::default().with_checkpoint_bytes(0),
    )?;
    let first = d.read().len() as u64;
    single_adds(&d, data, (a.writers, a.log_records), first)?;
    drop(d);
    let t = Instant::now();
    let (d, rec) = DurableIndex::open(ctx, &dir, DurableOptions::default())?;
    let took = t.elapsed();
    ensure!(
        rec.replayed == a.log_records,
        "replayed {} of {} records",
        rec.replayed,
        a.log_records
    );
    println!(
        "reopen ({} x {} snapshot + {} log records): {:.2} s (target <= 5 s); {} vectors",
        a.rows,
        a.dim,
        rec.replayed,
        took.as_secs_f64(),
        d.read().len()
    );
    Ok(())
}

//! `vaccel bench index`: an index built on synthetic clustered data, then
//! recall@k against queries per second for a sweep of `nprobe`, beside the
//! exact k-NN over the same data in the same run (the ground truth);
//! with `--plot`, a picture of the sweep beside peers' curves
//! (module `bench_plot`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context as _, Result};
use clap::Args;
use vector_accelerate::index::{IdSelector, Index, Layout, SearchParams};
use vector_accelerate::{knn, Context, Matrix, Metric, Neighbors, WalkPrecision, MISSING_ID};

use super::args::make_context;
use super::bench_plot::{self, Curve, Series};
use super::bench_scale::{self, ScaleRun};
use super::timing::{median, time_ms};
use crate::io::npy;
use crate::io::output::{commit, PendingFile};
use crate::reference::{recall, recall_of_singles};
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Arguments of `vaccel bench index`.
#[derive(Debug, Args)]
pub struct BenchIndexArgs {
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Index factory string.
    #[arg(long, default_value = "IVF4096,Flat")]
    factory: String,
    /// Base vectors (default 1,000,000 on CUDA, 100,000 on the CPU).
    #[arg(long)]
    n: Option<usize>,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Queries per search call (default 10,000 on CUDA, 1,000 on the CPU).
    #[arg(long)]
    queries: Option<usize>,
    /// Results per query.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Lists scanned per query (comma list); for a graph index (`Graph32`),
    /// the candidates kept while walking the graph (`ef`).
    #[arg(long, default_value = "1,2,4,8,16,32,64,128")]
    nprobe: String,
    /// Vectors per add call when building the index (adds of a bounded
    /// size at any scale).
    #[arg(long, default_value_t = 2_000_000)]
    add_batch: usize,
    /// Candidates re-ranked per result by indexes that refine (`,Refine`).
    #[arg(long, default_value_t = 1)]
    refine_factor: usize,
    /// How a graph search reads the vectors on CUDA: exact (fp32), f16 or
    /// int8 (copies walked, the candidates re-scored in fp32).
    #[arg(long, default_value = "exact")]
    precision: WalkPrecision,
    /// Metric.
    #[arg(long, default_value = "l2")]
    metric: String,
    /// Clusters of the synthetic mixture (N(0, 1) centres).
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Standard deviation of the points around their centre (1.0: clusters
    /// overlap, so the nearest neighbours of a query spread over several
    /// lists).
    #[arg(long, default_value_t = 1.0)]
    spread: f32,
    /// Timed runs per search (median reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Search the queries one per call (batch 1): ms is the median call
    /// over every query and every repeat, queries/s its inverse.
    #[arg(long)]
    single: bool,
    /// Also spread the index over 1, 2, 4, ... of these devices (a comma
    /// list such as cuda:0,cuda:1, or all for every CUDA device; a device
    /// may repeat) and report queries per second at the first --nprobe
    /// value with the scaling efficiency against one part.
    #[arg(long, value_name = "DEVICES")]
    devices: Option<String>,
    /// How --devices spreads the index: shards (each device a part of the
    /// vectors) or replicas (each every vector, the queries split).
    #[arg(long, default_value = "shards")]
    layout: String,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Filtered searches: fractions of the ids allowed (comma list, e.g.
    /// 0.01,0.1,0.5), each at the first --nprobe value, beside an exact
    /// search over the allowed vectors alone.
    #[arg(long)]
    filters: Option<String>,
    /// Also write the data to this folder (`base.npy`, `queries.npy`, and
    /// the exact ids `truth.npy`, int64), for peers to run on the same data.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Draw recall@k against queries per second (log scale) into this PNG
    /// picture: the nprobe sweep, the exact k-NN and the --peers curves,
    /// with a numbered legend (printed below the table).
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// Peer results for --plot: CSV files with the header
    /// name,param,recall,qps, one curve per name (repeatable or a comma
    /// list).
    #[arg(
        long,
        value_name = "FILE.csv",
        value_delimiter = ',',
        requires = "plot"
    )]
    peers: Vec<PathBuf>,
}

/// Runs the benchmark.
pub fn run(a: BenchIndexArgs) -> Result<()> {
    ensure!(a.repeats >= 1, "--repeats must be at least 1");
    ensure!(a.add_batch >= 1, "--add-batch must be at least 1");
    ensure!(a.k >= 1, "-k must be at least 1");
    let probes = parse_list(&a.nprobe)?;
    let layout: Layout = a.layout.parse()?;
    let spread = a.devices.as_deref().map(bench_scale::devices).transpose()?;
    let fractions = a.filters.as_deref().map(parse_fractions).transpose()?;
    let mut peers = Vec::new();
    for p in &a.peers {
        peers.extend(bench_plot::read_peers(p)?);
    }
    // Check the picture's folder before the long run.
    let mut picture = a.plot.as_deref().map(PendingFile::create).transpose()?;
    let (ctx, how) = make_context(a.device.as_deref())?;
    let n =
        a.n.unwrap_or(if ctx.is_cuda() { 1_000_000 } else { 100_000 });
    let nq = a
        .queries
        .unwrap_or(if ctx.is_cuda() { 10_000 } else { 1_000 });
    let metric: Metric = a.metric.parse()?;
    let g = Generator::clustered(a.dim, a.clusters, a.seed)?.with_spread(a.spread)?;
    let (base, queries) = (g.rows(n, BASE_STREAM)?, g.rows(nq, QUERY_STREAM)?);
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {how}")?;
    writeln!(
        out,
        "data: {n} x {} clustered ({} clusters, spread {}), {nq} queries, k {}, {metric}",
        a.dim, a.clusters, a.spread, a.k
    )?;
    let (truth, exact_ms) = exact(&ctx, &base, &queries, &a, metric)?;
    if let Some(dir) = &a.export {
        export(dir, &base, &queries, &truth)?;
    }
    let (index, build) = build(&ctx, &a, &base, metric)?;
    writeln!(
        out,
        "build {}: train {:.2} s, add {:.2} s, {:.1} MB",
        index.factory(),
        build.0,
        build.1,
        index.memory_usage() as f64 / 1e6
    )?;
    let swept = sweep(&mut out, &index, (&queries, &truth), &a, &probes, exact_ms)?;
    let chart = a
        .plot
        .is_some()
        .then(|| chart(&index, swept, exact_ms, nq, peers));
    if let Some(series) = &chart {
        bench_plot::print_legend(&mut out, series, a.k)?;
    }
    if let Some(fractions) = &fractions {
        let data = (&base, &queries);
        let probe = (probes[0], fractions.as_slice());
        filtered(&mut out, &ctx, &index, data, &a, probe, metric)?;
    }
    if let Some(contexts) = &spread {
        let run = scale_run(&a, metric, probes[0]);
        bench_scale::scaling(&mut out, (&base, &queries, &truth), contexts, layout, &run)?;
    }
    if let (Some(file), Some(series), Some(path)) = (picture.take(), chart, &a.plot) {
        write_picture(file, &series)?;
        writeln!(out, "picture: {}", path.display())?;
    }
    Ok(())
}

/// The scaling run's settings: the factory, metric and timing of the
/// benchmark, searching at `probe`.
fn scale_run(a: &BenchIndexArgs, metric: Metric, probe: usize) -> ScaleRun<'_> {
    ScaleRun {
        factory: &a.factory,
        metric,
        k: a.k,
        repeats: a.repeats,
        add_batch: a.add_batch,
        params: SearchParams::default()
            .with_nprobe(probe)
            .with_ef(probe)
            .with_refine_factor(a.refine_factor)
            .with_precision(a.precision),
    }
}

/// The exact k-NN of the queries (the ground truth) and its median
/// milliseconds.
fn exact(
    ctx: &Context,
    base: &Matrix,
    queries: &Matrix,
    a: &BenchIndexArgs,
    metric: Metric,
) -> Result<(Neighbors, f64)> {
    let resident = ctx.upload(base)?;
    // The warm-up run gives the ground truth (at 10^8 rows a run is tens
    // of seconds).
    let truth = knn(ctx, queries, &resident, a.k, metric)?;
    let mut times = Vec::with_capacity(a.repeats);
    for _ in 0..a.repeats {
        let t = Instant::now();
        knn(ctx, queries, &resident, a.k, metric)?;
        ctx.synchronize()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((truth, median(&times)))
}

/// Searches at each of `probes`, printing a table row each beside the
/// exact k-NN; returns the (recall, queries/s) of each.
fn sweep(
    out: &mut impl Write,
    index: &Index,
    (queries, truth): (&Matrix, &Neighbors),
    a: &BenchIndexArgs,
    probes: &[usize],
    exact_ms: f64,
) -> Result<Vec<(f64, f64)>> {
    writeln!(
        out,
        "\n| search | nprobe or ef | recall@{} | ms | queries/s | vs exact |",
        a.k
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    let nq = queries.rows() as f64;
    let exact_qps = nq / (exact_ms / 1e3);
    writeln!(
        out,
        "| exact k-NN | - | 1.0000 | {exact_ms:.3} | {exact_qps:.0} | 1.00x |"
    )?;
    let mut points = Vec::with_capacity(probes.len());
    for &p in probes {
        let params = SearchParams::default()
            .with_nprobe(p)
            .with_ef(p)
            .with_refine_factor(a.refine_factor)
            .with_precision(a.precision);
        let (r, ms) = if a.single {
            singles(index, (queries, truth), a, &params)?
        } else {
            let got = index.search(queries, a.k, &params)?;
            let ms = time_ms(a.repeats, || {
                index.search(queries, a.k, &params)?;
                Ok(())
            })?;
            (recall(truth, &got), ms)
        };
        // One query per call is not compared with the batched exact k-NN.
        let (qps, vs) = if a.single {
            (1e3 / ms, "-".to_string())
        } else {
            let qps = nq / (ms / 1e3);
            (qps, format!("{:.2}x", qps / exact_qps))
        };
        writeln!(
            out,
            "| {} | {p} | {r:.4} | {ms:.3} | {qps:.0} | {vs} |",
            index.factory()
        )?;
        points.push((r, qps));
    }
    Ok(points)
}

/// Recall of the queries searched one per call, and the median call's
/// milliseconds over every query and `a.repeats` passes (after one).
fn singles(
    index: &Index,
    (queries, truth): (&Matrix, &Neighbors),
    a: &BenchIndexArgs,
    params: &SearchParams<'_>,
) -> Result<(f64, f64)> {
    let one = |i: usize| index.search(queries.view().slice_rows(i, i + 1), a.k, params);
    let got = (0..queries.rows())
        .map(one)
        .collect::<Result<Vec<_>, _>>()?;
    let mut times = Vec::with_capacity(a.repeats * queries.rows());
    for _ in 0..a.repeats {
        for i in 0..queries.rows() {
            let t = Instant::now();
            one(i)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok((recall_of_singles(truth, &got), median(&times)))
}

/// The series of the picture: the sweep, the exact k-NN, the peers.
fn chart(
    index: &Index,
    swept: Vec<(f64, f64)>,
    exact_ms: f64,
    nq: usize,
    peers: Vec<Curve>,
) -> Vec<Series> {
    let ours = |name: String, points| Curve {
        name,
        source: "this run".into(),
        points,
    };
    let exact = vec![(1.0, nq as f64 / (exact_ms / 1e3))];
    bench_plot::series(
        ours(index.factory(), swept),
        ours("exact k-NN".into(), exact),
        peers,
    )
}

/// Draws `series` into `file` and moves it into place.
fn write_picture(mut file: PendingFile, series: &[Series]) -> Result<()> {
    let canvas = bench_plot::draw(series);
    file.write(|w| canvas.write_png(w))?;
    commit(vec![file])
}

/// Filtered searches passing `fractions` of the ids (a seeded draw), each
/// beside an exact k-NN over the allowed vectors gathered beforehand.
fn filtered(
    out: &mut impl Write,
    ctx: &Context,
    index: &Index,
    (base, queries): (&Matrix, &Matrix),
    a: &BenchIndexArgs,
    (nprobe, fractions): (usize, &[f64]),
    metric: Metric,
) -> Result<()> {
    writeln!(
        out,
        "\n| filter passes | allowed | recall@{} | ms | exact over allowed ms | ratio |",
        a.k
    )?;
    writeln!(out, "|---:|---:|---:|---:|---:|---:|")?;
    for &frac in fractions {
        let allowed: Vec<u64> = (0..base.rows() as u64)
            .filter(|&i| {
                (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64 <= frac
            })
            .collect();
        if allowed.is_empty() {
            continue;
        }
        let rows: Vec<f32> = allowed
            .iter()
            .flat_map(|&i| base.row(i as usize).iter().copied())
            .collect();
        let sub = ctx.upload(&Matrix::new(rows, base.dim())?)?;
        let exact_ms = time_ms(a.repeats, || {
            knn(ctx, queries, &sub, a.k, metric)?;
            Ok(ctx.synchronize()?)
        })?;
        let want = renamed(knn(ctx, queries, &sub, a.k, metric)?, &allowed)?;
        let sel = IdSelector::allow(allowed.iter().copied());
        let params = SearchParams::default()
            .with_nprobe(nprobe)
            .with_ef(nprobe)
            .with_precision(a.precision)
            .with_filter(&sel);
        let got = index.search(queries, a.k, &params)?;
        let ms = time_ms(a.repeats, || {
            index.search(queries, a.k, &params)?;
            Ok(())
        })?;
        writeln!(
            out,
            "| {frac} | {} | {:.4} | {ms:.3} | {exact_ms:.3} | {:.2}x |",
            allowed.len(),
            recall(&want, &got),
            exact_ms / ms
        )?;
    }
    Ok(())
}

/// The index trained and filled with `base`; seconds of training and adding.
fn build(
    ctx: &Context,
    a: &BenchIndexArgs,
    base: &Matrix,
    metric: Metric,
) -> Result<(Index, (f64, f64))> {
    let mut index = Index::new(ctx, a.dim, &a.factory, metric)?;
    let t = Instant::now();
    index.train(base)?;
    ctx.synchronize()?;
    let train = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // In batches, so that an add's working copies (assignment, residuals,
    // codes) stay a batch in size at any scale.
    for first in (0..base.rows()).step_by(a.add_batch) {
        let last = (first + a.add_batch).min(base.rows());
        index.add(base.view().slice_rows(first, last))?;
    }
    ctx.synchronize()?;
    Ok((index, (train, t.elapsed().as_secs_f64())))
}

/// Writes the data and the exact ids as `.npy` files into `dir`.
fn export(dir: &Path, base: &Matrix, queries: &Matrix, truth: &Neighbors) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let ids: Vec<i64> = truth.ids().iter().map(|&i| i as i64).collect();
    let mut files = Vec::new();
    for (name, m) in [("base.npy", base), ("queries.npy", queries)] {
        let mut f = PendingFile::create(&dir.join(name))?;
        f.write(|w| npy::write_f32(w, m.rows(), m.dim(), m.as_slice()))?;
        files.push(f);
    }
    let mut f = PendingFile::create(&dir.join("truth.npy"))?;
    f.write(|w| npy::write_i64(w, truth.rows(), truth.k(), &ids))?;
    files.push(f);
    commit(files)
}

/// `nn` with each present id `i` replaced by `names[i]`.
fn renamed(nn: Neighbors, names: &[u64]) -> Result<Neighbors> {
    let (rows, k, order) = (nn.rows(), nn.k(), nn.order());
    let (mut ids, dist) = nn.into_parts();
    for i in ids.iter_mut().filter(|i| **i != MISSING_ID) {
        *i = names[*i as usize];
    }
    Ok(Neighbors::from_parts(rows, k, order, ids, dist)?)
}

/// The fractions of `--filters`, each in [0, 1].
fn parse_fractions(s: &str) -> Result<Vec<f64>> {
    s.split(',')
        .map(|v| {
            let f: f64 = v
                .trim()
                .parse()
                .with_context(|| format!("--filters: '{}' is not a number", v.trim()))?;
            ensure!(
                (0.0..=1.0).contains(&f),
                "--filters fractions must be in [0, 1], got {f}"
            );
            Ok(f)
        })
        .collect()
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|p| {
            let v: usize = p.trim().parse()?;
            ensure!(v >= 1, "--nprobe values must be at least 1, got {v}");
            Ok(v)
        })
        .collect()
}

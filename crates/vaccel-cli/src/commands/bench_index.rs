//! `vaccel bench index`: an index built on synthetic clustered data, then
//! recall@k against queries per second for a sweep of `nprobe`, beside the
//! exact k-NN over the same data in the same run (the ground truth).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Result};
use clap::Args;
use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{knn, Context, Matrix, Metric, Neighbors, MISSING_ID};

use super::args::make_context;
use super::timing::time_ms;
use crate::io::npy;
use crate::io::output::{commit, PendingFile};
use crate::reference::recall;
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
    /// Lists scanned per query (comma list).
    #[arg(long, default_value = "1,2,4,8,16,32,64,128")]
    nprobe: String,
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
}

/// Runs the benchmark.
pub fn run(a: BenchIndexArgs) -> Result<()> {
    ensure!(a.repeats >= 1, "--repeats must be at least 1");
    ensure!(a.k >= 1, "-k must be at least 1");
    let (ctx, how) = make_context(a.device.as_deref())?;
    let n =
        a.n.unwrap_or(if ctx.is_cuda() { 1_000_000 } else { 100_000 });
    let nq = a
        .queries
        .unwrap_or(if ctx.is_cuda() { 10_000 } else { 1_000 });
    let metric: Metric = a.metric.parse()?;
    let probes = parse_list(&a.nprobe)?;
    let g = Generator::clustered(a.dim, a.clusters, a.seed)?.with_spread(a.spread)?;
    let (base, queries) = (g.rows(n, BASE_STREAM)?, g.rows(nq, QUERY_STREAM)?);
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {how}")?;
    writeln!(
        out,
        "data: {n} x {} clustered ({} clusters, spread {}), {nq} queries, k {}, {metric}",
        a.dim, a.clusters, a.spread, a.k
    )?;
    let resident = ctx.upload(&base)?;
    let exact_ms = time_ms(a.repeats, || {
        knn(&ctx, &queries, &resident, a.k, metric)?;
        Ok(ctx.synchronize()?)
    })?;
    let truth = knn(&ctx, &queries, &resident, a.k, metric)?;
    drop(resident);
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
    writeln!(
        out,
        "\n| search | nprobe | recall@{} | ms | queries/s | vs exact |",
        a.k
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    let exact_qps = nq as f64 / (exact_ms / 1e3);
    writeln!(
        out,
        "| exact k-NN | - | 1.0000 | {exact_ms:.3} | {exact_qps:.0} | 1.00x |"
    )?;
    for &p in &probes {
        let params = SearchParams::default().with_nprobe(p);
        let got = index.search(&queries, a.k, &params)?;
        let ms = time_ms(a.repeats, || {
            index.search(&queries, a.k, &params)?;
            Ok(())
        })?;
        let qps = nq as f64 / (ms / 1e3);
        let r = recall(&truth, &got);
        writeln!(
            out,
            "| {} | {p} | {r:.4} | {ms:.3} | {qps:.0} | {:.2}x |",
            index.factory(),
            qps / exact_qps
        )?;
    }
    if let Some(f) = &a.filters {
        let fractions: Vec<f64> = f
            .split(',')
            .map(|v| v.trim().parse())
            .collect::<Result<_, _>>()?;
        filtered(
            &mut out,
            &ctx,
            &index,
            (&base, &queries),
            &a,
            (probes[0], &fractions),
            metric,
        )?;
    }
    Ok(())
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
        ensure!(
            (0.0..=1.0).contains(&frac),
            "--filters fractions must be in [0, 1], got {frac}"
        );
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
    index.add(base)?;
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

fn parse_list(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|p| {
            let v: usize = p.trim().parse()?;
            ensure!(v >= 1, "--nprobe values must be at least 1, got {v}");
            Ok(v)
        })
        .collect()
}

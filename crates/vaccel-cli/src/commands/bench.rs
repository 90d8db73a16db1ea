//! `vaccel bench knn`: exact k-NN throughput on synthetic data, one
//! Markdown table row per (data, dimension, precision) case, optionally as
//! JSON; `vaccel bench select`: row-wise top-k over a device-resident
//! matrix, in effective bytes per second; `quant` and `ops` live in their
//! own modules.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use clap::{Args, Subcommand, ValueEnum};
use rayon::prelude::*;
use vector_accelerate::diagnostics::{measure_ceilings, Ceilings};
use vector_accelerate::half;
use vector_accelerate::select::topk;
use vector_accelerate::{
    knn_with, Context, DeviceMatrix, Input, KnnOptions, Matrix, Metric, Neighbors, Order, Precision,
};

use super::args::{check_k, make_context};
use super::timing::median;
use crate::io::output::{commit, PendingFile};
use crate::reference::{recall, verify, METRICS};
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Exact k-NN on synthetic data (squared L2 unless --metrics says
    /// otherwise).
    Knn(BenchKnnArgs),
    /// Row-wise top-k over a matrix resident on the device.
    Select(BenchSelectArgs),
    /// Compression: SQ8 encode, Hamming k-NN, PQ ADC scan, k-means, recall.
    Quant(super::bench_quant::BenchQuantArgs),
    /// Vector utilities (normalise, element-wise, reductions, softmax) on a
    /// resident matrix, in bandwidth.
    Ops(super::bench_ops::BenchOpsArgs),
    /// ML kernels: neural quantization, attention similarity and
    /// learned-distance k-NN, in throughput.
    Ml(super::bench_ml::BenchMlArgs),
    /// Device memory of the main operations: result, peak, buffers per
    /// call and pool growth on a repeated call.
    Memory(super::bench_memory::BenchMemoryArgs),
    /// A vector index on clustered data: build time and memory, then
    /// recall@k against queries per second for a sweep of nprobe.
    Index(super::bench_index::BenchIndexArgs),
    /// The cost of durability: durable against in-memory adds, concurrent
    /// writers (group commit), search while adding, reopening a long log.
    Durable(super::bench_durable::BenchDurableArgs),
}

/// Arguments of `vaccel bench select`.
#[derive(Debug, Args)]
pub struct BenchSelectArgs {
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Rows of the matrix.
    #[arg(long, default_value_t = 4096)]
    rows: usize,
    /// Values per row.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Values selected per row (smallest first).
    #[arg(short = 'k', long = "k", default_value_t = 100)]
    k: usize,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Seed of the Gaussian values.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Rows checked against a sort on the host (0: none).
    #[arg(long, default_value_t = 4)]
    verify: usize,
}

/// Which synthetic distributions to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DataChoice {
    /// Independent N(0, 1) elements.
    Gaussian,
    /// A mixture of Gaussian clusters.
    Clustered,
    /// Both, one after the other.
    Both,
}

/// Where the base lives during the timed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BaseChoice {
    /// Resident on the device.
    Device,
    /// On the host, streamed through the device.
    Host,
    /// On the host in page-locked memory, streamed without a staging copy.
    Pinned,
    /// Resident on the device in f16 (the rows rounded to f16; checked
    /// against those rounded rows).
    F16,
}

/// Arguments of `vaccel bench knn`.
#[derive(Debug, Args)]
pub struct BenchKnnArgs {
    /// Device: cpu, cuda, cuda:N or auto (default: the
    /// VECTOR_ACCELERATE_DEVICE variable, else auto).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Base vectors.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Dimensions to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,768")]
    dims: Vec<usize>,
    /// Query vectors.
    #[arg(long, default_value_t = 10_000)]
    queries: usize,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    k: usize,
    /// Metrics to run on the same data, comma-separated (l2, euclidean,
    /// cosine, cosine-similarity, ip: those the fp64 check covers).
    #[arg(long, value_delimiter = ',', default_value = "l2")]
    metrics: Vec<Metric>,
    /// Timed runs per case (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Synthetic data.
    #[arg(long, value_enum, default_value_t = DataChoice::Both)]
    data: DataChoice,
    /// Clusters of the clustered data.
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Queries per case whose result is checked against an fp64 brute force
    /// (0: none).
    #[arg(long, default_value_t = 8)]
    verify: usize,
    /// Where the timed runs read the base: device (uploaded once, reused
    /// across calls) or host (streamed through the device in tiles on every
    /// call, transfers overlapped with compute).
    #[arg(long, value_enum, default_value_t = BaseChoice::Device)]
    base: BaseChoice,
    /// Device memory budget in GiB for the k-NN calls (default: the
    /// context's).
    #[arg(long, value_name = "GIB")]
    budget_gib: Option<f64>,
    /// Precision modes to run, comma-separated (exact, tf32, bf16, f16);
    /// fast modes report their recall@k against the exact result.
    #[arg(long, value_delimiter = ',', default_value = "exact")]
    precision: Vec<Precision>,
    /// Also write the rows as JSON to this file.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
}

/// One measured case.
#[derive(Debug, Clone)]
struct Row {
    data: &'static str,
    n: usize,
    dim: usize,
    nq: usize,
    k: usize,
    metric: Metric,
    precision: Precision,
    /// Whether the base stayed on the host.
    host_base: bool,
    /// Bytes per stored base value (4, or 2 for f16 storage).
    value_bytes: usize,
    /// Recall@k of the ids against the exact mode's on every query (None
    /// when the exact mode did not run).
    recall: Option<f64>,
    device: String,
    times_ms: Vec<f64>,
    median_ms: f64,
    /// (queries that matched the fp64 reference, queries checked).
    verified: (usize, usize),
}

impl Row {
    fn queries_per_s(&self) -> f64 {
        self.nq as f64 / (self.median_ms / 1e3)
    }
    /// One read of the base per call, in bytes per second.
    fn base_bytes_per_s(&self) -> f64 {
        (self.n * self.dim * self.value_bytes) as f64 / (self.median_ms / 1e3)
    }
    /// Effective rate, counting `2 * nq * n * dim` operations.
    fn gflops(&self) -> f64 {
        2.0 * self.nq as f64 * self.n as f64 * self.dim as f64 / (self.median_ms / 1e3) / 1e9
    }
}

/// Runs the benchmark selected by the sub-command.
pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Knn(args) => run_knn(args),
        BenchCommand::Select(args) => run_select(args),
        BenchCommand::Quant(args) => super::bench_quant::run(args),
        BenchCommand::Ops(args) => super::bench_ops::run(args),
        BenchCommand::Ml(args) => super::bench_ml::run(args),
        BenchCommand::Memory(args) => super::bench_memory::run(args),
        BenchCommand::Index(args) => super::bench_index::run(args),
        BenchCommand::Durable(args) => super::bench_durable::run(args),
    }
}

fn run_select(args: BenchSelectArgs) -> Result<()> {
    check_k(args.k)?;
    ensure!(
        args.rows >= 1 && args.n >= 1,
        "--rows and --n must be at least 1"
    );
    ensure!(args.repeats >= 1, "--repeats must be at least 1");
    let (ctx, how) = make_context(args.device.as_deref())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({}, {how})", ctx.device(), ctx.info().name)?;
    let ceil = measure_ceilings(&ctx)?;
    writeln!(
        out,
        "ceilings measured now: copy {:.0} GB/s (read + write)",
        ceil.copy_bytes_per_s / 1e9
    )?;
    let values = Generator::gaussian(args.n, args.seed)?.rows(args.rows, BASE_STREAM)?;
    let resident = ctx.upload(&values)?;
    let first = topk(&ctx, &resident, args.k, Order::Smallest)?;
    // Spot check: the selected values of a few rows equal a host sort's.
    let checked = args.verify.min(args.rows);
    let mut ok = 0;
    for i in 0..checked {
        let r = i * args.rows / checked;
        let mut row = values.row(r).to_vec();
        row.sort_by(f32::total_cmp);
        let want = &row[..args.k.min(args.n)];
        ok += (first.row_distances(r)[..want.len()] == *want) as usize;
    }
    let mut times_ms = Vec::with_capacity(args.repeats);
    for _ in 0..args.repeats {
        let t = Instant::now();
        topk(&ctx, &resident, args.k, Order::Smallest)?;
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ms = median(&times_ms);
    let bytes = (args.rows * args.n * 4) as f64;
    writeln!(
        out,
        "(effective GB/s: the matrix's bytes, read once, per second)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| rows | n | k | device | median ms | effective GB/s | of copy | checked rows |"
    )?;
    writeln!(out, "|---:|---:|---:|---|---:|---:|---:|---:|")?;
    writeln!(
        out,
        "| {} | {} | {} | {} | {:.2} | {:.0} | {:.0}% | {ok}/{checked} |",
        args.rows,
        args.n,
        args.k,
        ctx.device(),
        ms,
        bytes / (ms / 1e3) / 1e9,
        100.0 * bytes / (ms / 1e3) / ceil.copy_bytes_per_s
    )?;
    ensure!(
        ok == checked,
        "{} of {checked} checked rows differ from a sort",
        checked - ok
    );
    Ok(())
}

fn run_knn(args: BenchKnnArgs) -> Result<()> {
    check_k(args.k)?;
    ensure!(args.n >= 1, "--n must be at least 1");
    ensure!(args.queries >= 1, "--queries must be at least 1");
    ensure!(args.repeats >= 1, "--repeats must be at least 1");
    ensure!(
        !args.dims.is_empty() && !args.dims.contains(&0),
        "--dims must list dimensions of at least 1"
    );
    if let Some(m) = args.metrics.iter().find(|m| !METRICS.contains(m)) {
        bail!("--metrics: {m} has no fp64 check here (measured: l2, euclidean, cosine, cosine-similarity, ip)");
    }
    let json_out = args.json.as_deref().map(PendingFile::create).transpose()?;
    let (ctx, how) = make_context(args.device.as_deref())?;
    let ctx = match args.budget_gib {
        Some(g) => {
            ensure!(
                g > 0.0 && g.is_finite(),
                "--budget-gib must be positive (got {g})"
            );
            ctx.with_memory_budget((g * (1u64 << 30) as f64) as usize)
        }
        None => ctx,
    };
    let device_name = ctx.info().name;
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({device_name}, {how})", ctx.device())?;
    let ceil = measure_ceilings(&ctx)?;
    let tensor = ceil
        .tensor_flops
        .map(|f| format!(", TF32 tensor-core GEMM {:.1} TFLOP/s", f / 1e12))
        .unwrap_or_default()
        + &ceil
            .bf16_flops
            .map(|f| format!(", bf16 GEMM {:.1} TFLOP/s", f / 1e12))
            .unwrap_or_default();
    writeln!(
        out,
        "ceilings measured now: copy {:.0} GB/s (read + write), exact fp32 GEMM {:.1} TFLOP/s{tensor}{}",
        ceil.copy_bytes_per_s / 1e9,
        ceil.sgemm_flops / 1e12,
        ceil.h2d_bytes_per_s
            .map(|b| format!(", pinned host-to-device {:.1} GB/s", b / 1e9))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "base: {}, memory budget {:.2} GiB",
        match args.base {
            BaseChoice::Device => "resident on the device",
            BaseChoice::Host => "on the host, streamed on every call",
            BaseChoice::Pinned => {
                "on the host in page-locked memory, streamed on every call"
            }
            BaseChoice::F16 => "resident on the device in f16",
        },
        ctx.memory_budget() as f64 / (1u64 << 30) as f64
    )?;
    writeln!(
        out,
        "(GFLOP/s counts 2 n d per query; \"of tensor GEMM\" compares it with the TF32 GEMM, or the bf16 GEMM for bf16/f16 rows; base GB/s is one read of the base per call, \"of copy\" compares it with the device copy rate, or with the host-to-device rate for a host base)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| data | n | dim | nq | k | metric | precision | device | median ms | queries/s | GFLOP/s | of fp32 GEMM | of tensor GEMM | base GB/s | of copy | fp64 check | recall vs exact |"
    )?;
    writeln!(
        out,
        "|---|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    out.flush()?;
    let kinds: &[&'static str] = match args.data {
        DataChoice::Gaussian => &["gaussian"],
        DataChoice::Clustered => &["clustered"],
        DataChoice::Both => &["gaussian", "clustered"],
    };
    let mut rows = Vec::new();
    for &dim in &args.dims {
        for &kind in kinds {
            for row in run_case(&ctx, &args, kind, dim, &mut out, &ceil)? {
                rows.push(row);
            }
        }
    }
    if let Some(mut file) = json_out {
        let text = to_json(&ctx, &device_name, &ceil, &rows);
        file.write(|w| Ok(w.write_all(text.as_bytes())?))?;
        commit(vec![file])?;
    }
    Ok(())
}

/// Prints one table row.
fn print_row(out: &mut impl Write, ceil: &Ceilings, row: &Row) -> Result<()> {
    {
        {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.1} | {:.0}% | {} | {:.0} | {:.0}% | {}/{} | {} |",
                row.data,
                row.n,
                row.dim,
                row.nq,
                row.k,
                row.metric,
                row.precision,
                row.device,
                row.median_ms,
                row.queries_per_s(),
                row.gflops(),
                100.0 * row.gflops() * 1e9 / ceil.sgemm_flops,
                match row.precision {
                    Precision::Bf16 | Precision::F16 => ceil.bf16_flops,
                    Precision::Exact | Precision::Tf32 => ceil.tensor_flops,
                }
                .map(|f| format!("{:.0}%", 100.0 * row.gflops() * 1e9 / f))
                .unwrap_or_else(|| "-".into()),
                row.base_bytes_per_s() / 1e9,
                100.0 * row.base_bytes_per_s()
                    / match (row.host_base, ceil.h2d_bytes_per_s) {
                        (true, Some(h)) => h,
                        _ => ceil.copy_bytes_per_s,
                    },
                row.verified.0,
                row.verified.1,
                row.recall
                    .map(|r| format!("{r:.4}"))
                    .unwrap_or_else(|| "-".into())
            )?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Generates one case's data and, per precision mode (exact first), warms
/// up once and times `repeats` runs, printing each row as it is measured.
fn run_case(
    ctx: &Context,
    args: &BenchKnnArgs,
    kind: &'static str,
    dim: usize,
    out: &mut impl Write,
    ceil: &Ceilings,
) -> Result<Vec<Row>> {
    let gen = match kind {
        "gaussian" => Generator::gaussian(dim, args.seed)?,
        _ => Generator::clustered(dim, args.clusters, args.seed)?,
    };
    let queries = gen.rows(args.queries, QUERY_STREAM)?;
    let mut host = gen.rows(args.n, BASE_STREAM)?;
    // f16 storage: the base is the rows rounded to f16 (and so is the
    // fp64 check's).
    let f16_rows: Option<Vec<half::f16>> = (args.base == BaseChoice::F16).then(|| {
        host.as_slice()
            .par_iter()
            .map(|&v| half::f16::from_f32(v))
            .collect()
    });
    if let Some(h) = &f16_rows {
        host = Matrix::new(h.par_iter().map(|v| v.to_f32()).collect(), dim)?;
    }
    // The timed runs read the base where it lives: on the device for CUDA,
    // on the host for the CPU (the host rows also feed the fp64 check).
    let device: Option<DeviceMatrix> = match (&f16_rows, ctx.is_cuda(), args.base) {
        (Some(h), _, _) => Some(ctx.upload_f16(h, dim)?),
        (None, true, BaseChoice::Device) => Some(ctx.upload(&host)?),
        _ => None,
    };
    let pinned = match (&device, args.base) {
        (None, BaseChoice::Pinned) => {
            let mut p = ctx.alloc_pinned(host.rows(), host.dim())?;
            p.as_mut_slice().copy_from_slice(host.as_slice());
            Some(p)
        }
        _ => None,
    };
    let input: Input<'_> = match (&device, &pinned) {
        (Some(d), _) => d.into(),
        (None, Some(p)) => p.into(),
        (None, None) => (&host).into(),
    };
    let mut modes = args.precision.clone();
    modes.sort_by_key(|p| *p != Precision::Exact);
    modes.dedup();
    let mut rows = Vec::new();
    for &metric in &args.metrics {
        let mut exact: Option<Neighbors> = None;
        for &precision in &modes {
            let case = Case {
                kind,
                metric,
                precision,
                f16_base: f16_rows.is_some(),
                host_base: device.is_none(),
            };
            let row = time_case(ctx, args, &case, &queries, &host, input, &mut exact)?;
            print_row(out, ceil, &row)?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// What one timed case runs.
struct Case {
    kind: &'static str,
    metric: Metric,
    precision: Precision,
    /// Whether the base is stored in f16.
    f16_base: bool,
    /// Whether the timed runs read the base from the host.
    host_base: bool,
}

/// Warms up once (checking sampled queries against the fp64 reference on
/// `host`) and times `repeats` runs of one case; `exact` keeps the exact
/// mode's result of the metric for the recall of the fast modes.
fn time_case(
    ctx: &Context,
    args: &BenchKnnArgs,
    case: &Case,
    queries: &Matrix,
    host: &Matrix,
    input: Input<'_>,
    exact: &mut Option<Neighbors>,
) -> Result<Row> {
    let opts = KnnOptions::default()
        .with_metric(case.metric)
        .with_precision(case.precision);
    let run = || knn_with(ctx, queries, input, args.k, &opts);
    let first = run()?;
    let checked = args.verify.min(args.queries);
    let sample: Vec<usize> = (0..checked)
        .map(|i| i * args.queries / checked.max(1))
        .collect();
    let failures = verify(host, queries, &first, &sample, case.metric);
    for f in &failures {
        eprintln!("fp64 check failed ({}): {f}", case.metric);
    }
    let mut times_ms = Vec::with_capacity(args.repeats);
    for _ in 0..args.repeats {
        let t = Instant::now();
        run()?;
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median_ms = median(&times_ms);
    let recall = exact.as_ref().map(|e| recall(e, &first));
    if case.precision == Precision::Exact {
        *exact = Some(first);
    }
    Ok(Row {
        data: case.kind,
        n: args.n,
        dim: host.dim(),
        nq: args.queries,
        k: args.k,
        metric: case.metric,
        precision: case.precision,
        host_base: case.host_base,
        value_bytes: if case.f16_base { 2 } else { 4 },
        recall,
        device: ctx.device().to_string(),
        times_ms,
        median_ms,
        verified: (checked - failures.len(), checked),
    })
}

/// The rows as a JSON document (numbers that are not finite become null).
fn to_json(ctx: &Context, device_name: &str, ceil: &Ceilings, rows: &[Row]) -> String {
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            "null".to_string()
        }
    };
    let mut s = String::new();
    let _ = writeln!(s, "{{");
    let _ = writeln!(
        s,
        "  \"device\": {},",
        json_string(&ctx.device().to_string())
    );
    let _ = writeln!(s, "  \"device_name\": {},", json_string(device_name));
    let _ = writeln!(
        s,
        "  \"copy_bytes_per_s\": {},\n  \"sgemm_flops\": {},\n  \"tensor_flops\": {},\n  \
         \"bf16_flops\": {},\n  \"h2d_bytes_per_s\": {},",
        num(ceil.copy_bytes_per_s),
        num(ceil.sgemm_flops),
        ceil.tensor_flops.map_or_else(|| "null".into(), num),
        ceil.bf16_flops.map_or_else(|| "null".into(), num),
        ceil.h2d_bytes_per_s.map_or_else(|| "null".into(), num)
    );
    let _ = writeln!(s, "  \"rows\": [");
    for (i, r) in rows.iter().enumerate() {
        let times: Vec<String> = r.times_ms.iter().map(|&t| num(t)).collect();
        let _ = write!(
            s,
            "    {{\"data\": {}, \"n\": {}, \"dim\": {}, \"nq\": {}, \"k\": {}, \
             \"metric\": {}, \"precision\": {}, \"recall\": {}, \
             \"device\": {}, \"median_ms\": {}, \"queries_per_s\": {}, \"gflops\": {}, \
             \"verified\": [{}, {}], \"times_ms\": [{}]}}",
            json_string(r.data),
            r.n,
            r.dim,
            r.nq,
            r.k,
            json_string(&r.metric.to_string()),
            json_string(r.precision.name()),
            r.recall.map_or_else(|| "null".into(), num),
            json_string(&r.device),
            num(r.median_ms),
            num(r.queries_per_s()),
            num(r.gflops()),
            r.verified.0,
            r.verified.1,
            times.join(", ")
        );
        let _ = writeln!(s, "{}", if i + 1 < rows.len() { "," } else { "" });
    }
    let _ = writeln!(s, "  ]");
    let _ = writeln!(s, "}}");
    s
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn json_document_lists_rows() {
        let row = Row {
            data: "gaussian",
            n: 10,
            dim: 4,
            nq: 2,
            k: 1,
            metric: Metric::Cosine,
            precision: Precision::Bf16,
            host_base: false,
            value_bytes: 4,
            recall: Some(0.5),
            device: "cpu".into(),
            times_ms: vec![1.0, 2.0],
            median_ms: 1.5,
            verified: (1, 1),
        };
        let ceil = Ceilings {
            copy_bytes_per_s: 1e10,
            sgemm_flops: 2e11,
            tensor_flops: None,
            bf16_flops: None,
            h2d_bytes_per_s: None,
        };
        let text = to_json(&Context::cpu(), "CPU", &ceil, &[row.clone(), row]);
        assert_eq!(text.matches("\"median_ms\": 1.5000").count(), 2);
        assert!(text.contains("\"sgemm_flops\": 200000000000.0000,"));
        assert!(text.contains("\"times_ms\": [1.0000, 2.0000]},\n"));
        assert!(
            text.contains("\"metric\": \"cosine\", \"precision\": \"bf16\", \"recall\": 0.5000,")
        );
    }
}

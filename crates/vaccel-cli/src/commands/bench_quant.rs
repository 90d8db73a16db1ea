//! `vaccel bench quant`: compression on synthetic data: scalar encode
//! bandwidth, Hamming k-NN, the PQ ADC scan, k-means iterations, PQ
//! training and encoding, and the recall of PQ (re-ranked) and SQ8 searches
//! against exact k-NN.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{ensure, Result};
use clap::Args;
use vector_accelerate::cluster::{assign, kmeans, KMeansInit, KMeansOptions};
use vector_accelerate::diagnostics::measure_ceilings;
use vector_accelerate::quantize::{
    Codec, PqCodes, PqOptions, ProductQuantizer, Quality, ScalarOptions, ScalarQuantizer,
    ScalarRange, SearchOptions,
};
use vector_accelerate::{knn, BinaryMatrix, Context, Matrix, Metric};

use super::args::make_context;
use super::timing::{median, time_ms};
use crate::reference::recall;
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Arguments of `vaccel bench quant`.
#[derive(Debug, Args)]
pub struct BenchQuantArgs {
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Cases to run (comma list of sq8, hamming, adc, kmeans, pq, recall).
    #[arg(long, default_value = "sq8,hamming,adc,kmeans,pq,recall")]
    only: String,
    /// Rows encoded by the SQ8 case (default 10,000,000 on CUDA, 1,000,000 on the CPU).
    #[arg(long)]
    sq_rows: Option<usize>,
    /// Dimension of the SQ8 case.
    #[arg(long, default_value_t = 768)]
    sq_dim: usize,
    /// Codes scanned by the Hamming and ADC cases (default 10,000,000 on CUDA, 1,000,000 on the CPU).
    #[arg(long)]
    codes: Option<usize>,
    /// Bits per Hamming code.
    #[arg(long, default_value_t = 1024)]
    bits: usize,
    /// Queries of the search cases (default 1,000 on CUDA, 100 on the CPU).
    #[arg(long)]
    queries: Option<usize>,
    /// Rows of the k-means and recall cases (default 1,000,000 on CUDA, 100,000 on the CPU).
    #[arg(long)]
    rows: Option<usize>,
    /// Centroids of the k-means case (default 4,096 on CUDA, 256 on the CPU).
    #[arg(long)]
    centroids: Option<usize>,
    /// Lloyd iterations timed in the k-means case.
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// k-means iterations per sub-space of the PQ training case (M = 16,
    /// nbits = 8, trained on --rows clustered rows, no subsampling; then
    /// --codes rows encoded).
    #[arg(long, default_value_t = 25)]
    pq_iterations: usize,
    /// Clusters of the synthetic data of the recall case (rows / clusters
    /// points each around N(0, 1) centres).
    #[arg(long, default_value_t = 20_000)]
    clusters: usize,
    /// Standard deviation of the recall case's points around their centre.
    #[arg(long, default_value_t = 0.1)]
    spread: f32,
    /// Timed runs per case (median reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Runs the benchmark.
pub fn run(a: BenchQuantArgs) -> Result<()> {
    ensure!(a.repeats >= 1, "--repeats must be at least 1");
    ensure!(
        a.spread.is_finite() && a.spread >= 0.0,
        "--spread must be a finite value >= 0, got {}",
        a.spread
    );
    let (ctx, how) = make_context(a.device.as_deref())?;
    let gpu = ctx.is_cuda();
    let big = |v: Option<usize>, g: usize, c: usize| v.unwrap_or(if gpu { g } else { c });
    let cases: Vec<&str> = a.only.split(',').map(str::trim).collect();
    for c in &cases {
        ensure!(
            ["sq8", "hamming", "adc", "kmeans", "pq", "recall"].contains(c),
            "unknown case '{c}' (expected sq8, hamming, adc, kmeans, pq, recall)"
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({}, {how})", ctx.device(), ctx.info().name)?;
    let ceil = measure_ceilings(&ctx)?;
    let copy = ceil.copy_bytes_per_s;
    writeln!(
        out,
        "ceilings measured now: copy {:.0} GB/s (read + write)",
        copy / 1e9
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| case | shape | median ms | rate | of copy ceiling | quality |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---|")?;
    let r = Run {
        ctx,
        a: &a,
        copy,
        nq: big(a.queries, 1000, 100),
    };
    let all: [(&str, CaseFn); 6] = [
        ("sq8", sq8),
        ("hamming", hamming),
        ("adc", adc),
        ("kmeans", kmeans_cases),
        ("pq", pq),
        ("recall", recall_cases),
    ];
    for (name, case) in all {
        if cases.contains(&name) {
            case(&r, &mut out)?;
        }
    }
    Ok(())
}

/// What every case of a run shares.
struct Run<'a> {
    ctx: Context,
    a: &'a BenchQuantArgs,
    /// The copy ceiling measured at the start, bytes per second.
    copy: f64,
    /// Queries of the search cases.
    nq: usize,
}

impl Run<'_> {
    /// `v`, else the default for the device (`g` on CUDA, `c` on the CPU).
    fn big(&self, v: Option<usize>, g: usize, c: usize) -> usize {
        v.unwrap_or(if self.ctx.is_cuda() { g } else { c })
    }
}

/// One case of the benchmark.
type CaseFn = fn(&Run<'_>, &mut dyn Write) -> Result<()>;

/// SQ8 encode bandwidth and reconstruction quality.
fn sq8(r: &Run<'_>, out: &mut dyn Write) -> Result<()> {
    let (ctx, a, copy) = (&r.ctx, r.a, r.copy);
    let big = |v, g, c| r.big(v, g, c);
    let (n, d) = (big(a.sq_rows, 10_000_000, 1_000_000), a.sq_dim);
    let x = Generator::gaussian(d, a.seed)?.rows(n, BASE_STREAM)?;
    let res = ctx.upload(&x)?;
    let sq = ScalarQuantizer::train(ctx, &res, &ScalarOptions::int8())?;
    let ms = time_ms(a.repeats, || {
        sq.encode(ctx, &res)?;
        Ok(())
    })?;
    let sample = Matrix::new(x.as_slice()[..d * n.min(100_000)].to_vec(), d)?;
    let c = sq.encode(ctx, &sample)?;
    let back = sq.decode(ctx, &c)?.into_host()?;
    let q = Quality::measure(sample.view(), back.view(), c.code_bytes())?;
    let bytes = (n * d * 5) as f64;
    let bw = bytes / (ms / 1e3);
    writeln!(
        out,
        "| sq8 encode (per-channel, symmetric; resident rows and codes) | {n} x {d} | {ms:.2} | {:.0} GB/s | {:.0}% | MSE {:.3e}, max err {:.4}, SNR {:.1} dB |",
        bw / 1e9,
        100.0 * bw / copy,
        q.mse,
        q.max_error,
        q.snr_db
    )?;
    drop(res);
    Ok(())
}

/// Hamming k-NN over binary codes.
fn hamming(r: &Run<'_>, out: &mut dyn Write) -> Result<()> {
    let (ctx, a, copy, nq) = (&r.ctx, r.a, r.copy, r.nq);
    let big = |v, g, c| r.big(v, g, c);
    let n = big(a.codes, 10_000_000, 1_000_000);
    let words = a.bits.div_ceil(64);
    let gen = |rows: usize, stream: u64| -> Result<BinaryMatrix> {
        let f = Generator::gaussian(words * 2, a.seed)?.rows(rows, stream)?;
        let w: Vec<u64> = f
            .as_slice()
            .chunks_exact(2)
            .map(|p| {
                ((p[0].to_bits() as u64) << 32)
                    ^ (p[1].to_bits() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            })
            .collect();
        let mut w = w;
        if !a.bits.is_multiple_of(64) {
            let mask = (1u64 << (a.bits % 64)) - 1;
            for r in w.chunks_exact_mut(words) {
                r[words - 1] &= mask;
            }
        }
        Ok(BinaryMatrix::new(w, a.bits)?)
    };
    let base = gen(n, BASE_STREAM)?;
    let qs = gen(nq, QUERY_STREAM)?;
    let res = ctx.upload(&base)?;
    let ms = time_ms(a.repeats, || {
        knn(ctx, &qs, &res, 10, Metric::Hamming)?;
        Ok(())
    })?;
    let code_bytes = (n * words * 8) as f64;
    let scanned = code_bytes * nq as f64 / (ms / 1e3);
    writeln!(
        out,
        "| hamming k-NN k=10 ({nq} queries; resident codes) | {n} x {} bits | {ms:.2} | {:.0} GB/s of codes x queries ({:.3e} pairs/s) | {:.0}% | exact |",
        a.bits,
        scanned / 1e9,
        (n * nq) as f64 / (ms / 1e3),
        100.0 * scanned / copy
    )?;
    Ok(())
}

/// The PQ ADC scan over random codes.
fn adc(r: &Run<'_>, out: &mut dyn Write) -> Result<()> {
    let (ctx, a, copy, nq) = (&r.ctx, r.a, r.copy, r.nq);
    let big = |v, g, c| r.big(v, g, c);
    let n = big(a.codes, 10_000_000, 1_000_000);
    let d = 128;
    let g = Generator::clustered(d, 1000, a.seed)?;
    let train = g.rows(65_536, BASE_STREAM)?;
    let pq = ProductQuantizer::train(ctx, &train, &PqOptions::new(16, 8).with_iterations(10))?;
    // Random codes: the scan's speed does not depend on their values.
    let bytes: Vec<u8> = (0..n * 16)
        .map(|i| (vector_accelerate_mix(i as u64 ^ a.seed) >> 56) as u8)
        .collect();
    let codes = PqCodes::from_bytes(bytes, 16, 8)?.copy_to(ctx)?;
    let q = g.rows(nq, QUERY_STREAM)?;
    for metric in [Metric::L2, Metric::InnerProduct] {
        let ms = time_ms(a.repeats, || {
            pq.search(
                ctx,
                &q,
                &codes,
                10,
                &SearchOptions::default().with_metric(metric),
            )?;
            Ok(())
        })?;
        let rate = (n * nq) as f64 / (ms / 1e3);
        writeln!(
            out,
            "| pq adc scan M=16 nbits=8 k=10 {metric} ({nq} queries; resident codes) | {n} codes | {ms:.2} | {rate:.3e} code distances/s | {:.0}% | exact ADC |",
            100.0 * (n * 16) as f64 * nq as f64 / (ms / 1e3) / copy
        )?;
    }
    Ok(())
}

/// k-means Lloyd iterations, the assignment alone, and exact 1-NN for comparison.
fn kmeans_cases(r: &Run<'_>, out: &mut dyn Write) -> Result<()> {
    let (ctx, a) = (&r.ctx, r.a);
    let big = |v, g, c| r.big(v, g, c);
    let n = big(a.rows, 1_000_000, 100_000);
    let k = big(a.centroids, 4096, 256);
    let d = 128;
    let x = Generator::clustered(d, 1000, a.seed)?.rows(n, BASE_STREAM)?;
    let times = Arc::new(Mutex::new(Vec::new()));
    let t2 = times.clone();
    let o = KMeansOptions::new(k)
        .with_init(KMeansInit::Random)
        .with_max_iterations(a.iterations.max(1))
        .with_tolerance(0.0)
        .with_seed(a.seed)
        .with_progress(move |p| t2.lock().expect("lock").push(p.elapsed.as_secs_f64() * 1e3));
    let t = Instant::now();
    let r = kmeans(ctx, &x, &o)?;
    let total = t.elapsed().as_secs_f64() * 1e3;
    let it = times.lock().expect("lock").clone();
    let ms = median(&it);
    let flops = 2.0 * (n * k * d) as f64;
    writeln!(
        out,
        "| k-means Lloyd iteration (random init, {} iterations, total {:.0} ms incl. upload and final assignment) | {n} x {d}, k = {k} | {ms:.2} | {:.1} TFLOP/s (2nkd) | | inertia/n {:.4} |",
        r.iterations,
        total,
        flops / (ms / 1e3) / 1e12,
        r.inertia / n as f64
    )?;
    // The assignment step alone (resident rows): the k-means assignment,
    // and exact 1-NN through the general k-NN for comparison.
    let xr = ctx.upload(&x)?;
    let before = assign_counts();
    let ams = time_ms(a.repeats, || {
        assign(ctx, &xr, &r.centroids, false)?;
        Ok(())
    })?;
    let after = assign_counts();
    let scanned = match after.0 - before.0 {
        0 => String::new(),
        p => format!(
            "{:.3}% of points needed the full exact scan",
            100.0 * (after.1 - before.1) as f64 / p as f64
        ),
    };
    writeln!(
        out,
        "| k-means assignment alone (exact, resident rows) | {n} x {d}, k = {k} | {ams:.2} | {:.1} TFLOP/s (2nkd) | | {scanned} |",
        flops / (ams / 1e3) / 1e12
    )?;
    let cr = ctx.upload(&r.centroids)?;
    let kms = time_ms(a.repeats, || {
        knn(ctx, &xr, &cr, 1, Metric::L2)?;
        Ok(())
    })?;
    writeln!(
        out,
        "| exact 1-NN through knn (resident rows and centroids) | {n} x {d}, k = {k} | {kms:.2} | {:.1} TFLOP/s (2nkd) | | |",
        flops / (kms / 1e3) / 1e12
    )?;
    Ok(())
}

/// PQ training and encoding.
fn pq(r: &Run<'_>, out: &mut dyn Write) -> Result<()> {
    let (ctx, a) = (&r.ctx, r.a);
    let big = |v, g, c| r.big(v, g, c);
    let n = big(a.rows, 1_000_000, 100_000);
    let ne = big(a.codes, 10_000_000, 1_000_000);
    let d = 128;
    let g = Generator::clustered(d, 1000, a.seed)?;
    let train = ctx.upload(&g.rows(n, BASE_STREAM)?)?;
    let opts = PqOptions::new(16, 8)
        .with_iterations(a.pq_iterations.max(1))
        .with_seed(a.seed);
    let mut pq = None;
    let ms = time_ms(a.repeats, || {
        pq = Some(ProductQuantizer::train(ctx, &train, &opts)?);
        Ok(())
    })?;
    let pq = pq.expect("trained");
    let back = pq.decode(ctx, &pq.encode(ctx, &train)?)?.into_host()?;
    let host = train.to_host()?.into_vec();
    let mse = host
        .iter()
        .zip(back.as_slice())
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum::<f64>()
        / host.len() as f64;
    writeln!(
        out,
        "| pq training M=16 nbits=8 ({} iterations per sub-space, no subsampling) | clustered {n} x {d} | {ms:.2} | {:.1} ms per iteration | | recon MSE (train) {mse:.6} |",
        a.pq_iterations,
        ms / a.pq_iterations.max(1) as f64
    )?;
    drop(train);
    let base = ctx.upload(&g.rows(ne, QUERY_STREAM + 1)?)?;
    let ms = time_ms(a.repeats, || {
        pq.encode(ctx, &base)?;
        Ok(())
    })?;
    writeln!(
        out,
        "| pq encode M=16 nbits=8 (resident rows) | clustered {ne} x {d} | {ms:.2} | {:.0} rows/s | | |",
        ne as f64 / (ms / 1e3)
    )?;
    Ok(())
}

/// Recall of PQ (with re-rank) and SQ8 searches on clustered data.
fn recall_cases(r: &Run<'_>, out: &mut dyn Write) -> Result<()> {
    let (ctx, a, nq) = (&r.ctx, r.a, r.nq);
    let big = |v, g, c| r.big(v, g, c);
    let n = big(a.rows, 1_000_000, 100_000);
    let d = 128;
    let g = Generator::clustered(d, a.clusters, a.seed)?.with_spread(a.spread)?;
    let x = g.rows(n, BASE_STREAM)?;
    let q = g.rows(nq, QUERY_STREAM)?;
    let res = ctx.upload(&x)?;
    let exact = knn(ctx, &q, &res, 10, Metric::L2)?;
    let t = Instant::now();
    let pq = ProductQuantizer::train(
        ctx,
        &res,
        &PqOptions::new(16, 8)
            .with_max_training_points(65_536)
            .with_seed(a.seed),
    )?;
    let train_ms = t.elapsed().as_secs_f64() * 1e3;
    let codes = pq.encode(ctx, &res)?;
    let plain = pq.search(ctx, &q, &codes, 10, &SearchOptions::default())?;
    let reranked = SearchOptions::default().with_rerank(&res, 100);
    let mut rr = None;
    let ms = time_ms(a.repeats, || {
        rr = Some(pq.search(ctx, &q, &codes, 10, &reranked)?);
        Ok(())
    })?;
    writeln!(
        out,
        "| pq M=16 nbits=8 search + re-rank 100 (train {train_ms:.0} ms on 65,536 rows) | clustered {n} x {d}, {} clusters, spread {} | {ms:.2} | {:.0} queries/s | | recall@10 {:.4} (without re-rank {:.4}) |",
        a.clusters,
        a.spread,
        nq as f64 / (ms / 1e3),
        recall(&exact, rr.as_ref().expect("ran")),
        recall(&exact, &plain)
    )?;
    for (name, o) in [
        ("symmetric", ScalarOptions::int8()),
        (
            "asymmetric",
            ScalarOptions::int8().with_range(ScalarRange::Asymmetric),
        ),
    ] {
        let sq = ScalarQuantizer::train(ctx, &res, &o)?;
        let sc = sq.encode(ctx, &res)?;
        let mut got = None;
        let ms = time_ms(a.repeats, || {
            got = Some(sq.search(ctx, &q, &sc, 10, &SearchOptions::default())?);
            Ok(())
        })?;
        writeln!(
            out,
            "| sq8 {name} per-channel search without re-rank | clustered {n} x {d}, {} clusters, spread {} | {ms:.2} | {:.0} queries/s | | recall@10 {:.4} |",
            a.clusters,
            a.spread,
            nq as f64 / (ms / 1e3),
            recall(&exact, got.as_ref().expect("ran"))
        )?;
    }
    Ok(())
}

/// SplitMix64 finaliser (random code bytes).
fn vector_accelerate_mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// (points assigned, points scanned in full) by the CUDA k-means assignment
/// so far; counted only with the `debug-hooks` feature.
#[cfg(feature = "debug-hooks")]
fn assign_counts() -> (u64, u64) {
    vector_accelerate::debug::assign_stats()
}

/// Without the `debug-hooks` feature nothing is counted.
#[cfg(not(feature = "debug-hooks"))]
fn assign_counts() -> (u64, u64) {
    (0, 0)
}

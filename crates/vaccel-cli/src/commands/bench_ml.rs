//! `vaccel bench ml`: neural quantization encode and decode, attention
//! similarity (single and multi-head) and learned-distance k-NN on
//! synthetic data resident on the device, with throughput.

use anyhow::{ensure, Result};
use clap::Args;
use std::io::Write;
use vector_accelerate::ml::{
    AttentionSimilarity, LearnedDistance, Linear, NeuralQuantizer, NqOptions, NqPreset, Pca,
};
use vector_accelerate::{knn_with, KnnOptions, Metric, Precision};

use super::bench_ops::time_ms;
use super::make_context;
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Arguments of `vaccel bench ml`.
#[derive(Debug, Args)]
pub struct BenchMlArgs {
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Vectors encoded and decoded by the neural quantizer (768 -> 128)
    /// (default 2,000,000 on CUDA, 20,000 on the CPU).
    #[arg(long)]
    n: Option<usize>,
    /// Attention queries (default 10,000 on CUDA, 200 on the CPU).
    #[arg(long)]
    queries: Option<usize>,
    /// Attention keys (default 250,000 on CUDA, 5,000 on the CPU).
    #[arg(long)]
    keys: Option<usize>,
    /// Base rows of the learned-distance k-NN (default 1,000,000 on CUDA,
    /// 20,000 on the CPU).
    #[arg(long)]
    base: Option<usize>,
    /// Neighbours per query of the learned-distance k-NN.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Precisions to run (comma list of exact, tf32, bf16, f16).
    #[arg(long, default_value = "exact,tf32,bf16")]
    precisions: String,
    /// Timed runs per case (median reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Seed of the data and the (Xavier) weights.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Runs the benchmark.
pub fn run(a: BenchMlArgs) -> Result<()> {
    ensure!(a.repeats >= 1, "--repeats must be at least 1");
    let (ctx, how) = make_context(a.device.as_deref())?;
    let cuda = ctx.is_cuda();
    let pick = |v: Option<usize>, gpu: usize, cpu: usize| v.unwrap_or(if cuda { gpu } else { cpu });
    let n = pick(a.n, 2_000_000, 20_000);
    let (nq, nk) = (pick(a.queries, 10_000, 200), pick(a.keys, 250_000, 5_000));
    let nb = pick(a.base, 1_000_000, 20_000);
    for (what, v) in [
        ("--n", n),
        ("--queries", nq),
        ("--keys", nk),
        ("--base", nb),
        ("--k", a.k),
    ] {
        ensure!(v >= 1, "{what} must be at least 1");
    }
    let precisions: Vec<Precision> = a
        .precisions
        .split(',')
        .map(|p| p.trim().parse::<Precision>())
        .collect::<std::result::Result<_, _>>()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({how})", ctx.device())?;
    writeln!(out)?;
    writeln!(out, "| case | precision | shape | median ms | throughput |")?;
    writeln!(out, "|---|---|---|---:|---:|")?;
    let gen = Generator::gaussian(768, a.seed)?;
    let time = |f: &mut dyn FnMut() -> Result<()>| time_ms(&ctx, a.repeats, f);

    // Neural quantization 768 -> 128: encode (f32 in, int8 + scale out,
    // resident) and decode (codes in, f32 out, resident).
    let x = ctx.upload(&gen.rows(n, BASE_STREAM)?)?;
    for &p in &precisions {
        let opts = NqOptions::default().with_precision(p);
        let nqz = NeuralQuantizer::xavier(&ctx, NqPreset::D768To128, a.seed, opts)?;
        let ms = time(&mut || Ok(nqz.encode(&ctx, &x).map(drop)?))?;
        let rate = n as f64 / (ms / 1e3);
        writeln!(out, "| nq encode 768 -> 128 (int8 + scale) | {p} | {n} x 768 | {ms:.3} | {:.1} M vectors/s |", rate / 1e6)?;
        let codes = nqz.encode(&ctx, &x)?;
        let ms = time(&mut || Ok(nqz.decode_resident(&ctx, &codes).map(drop)?))?;
        let rate = n as f64 / (ms / 1e3);
        writeln!(
            out,
            "| nq decode 128 -> 768 | {p} | {n} x 128 | {ms:.3} | {:.1} M vectors/s |",
            rate / 1e6
        )?;
    }
    drop(x);

    // Reconstruction of a PCA-fitted 768 -> 128 quantizer on clustered
    // data (fitted on one sample, measured on another).
    let clustered = Generator::clustered(768, 100, a.seed)?;
    let (train, eval) = (nb.min(100_000), nb.min(100_000));
    let fit_rows = clustered.rows(train, BASE_STREAM)?;
    let t0 = std::time::Instant::now();
    let pca = Pca::fit(&ctx, &fit_rows, 128)?;
    let fit_ms = t0.elapsed().as_secs_f64() * 1e3;
    let nqz = NeuralQuantizer::from_pca(&ctx, &pca, NqOptions::default())?;
    let r = nqz.reconstruction(&ctx, &clustered.rows(eval, QUERY_STREAM)?)?;
    writeln!(
        out,
        "| nq reconstruction, PCA 768 -> 128 fitted on {train} clustered rows ({fit_ms:.0} ms) | exact | {eval} x 768 | | mean cosine {:.6} (f32 latent {:.6}); MSE {:.4e} (f32 latent {:.4e}, int8 adds {:.2}%) |",
        r.int8.mean_cosine,
        r.f32_latent.mean_cosine,
        r.int8.mse,
        r.f32_latent.mse,
        100.0 * (r.int8.mse / r.f32_latent.mse - 1.0)
    )?;
    drop(fit_rows);

    // Attention similarity: queries and keys projected, then every score
    // written (resident).
    let q = ctx.upload(&gen.rows(nq, QUERY_STREAM)?)?;
    let keys = ctx.upload(&gen.rows(nk, BASE_STREAM)?)?;
    for (heads, head_dim) in [(1usize, 64usize), (12, 64)] {
        for &p in &precisions {
            let w = heads * head_dim;
            let att = AttentionSimilarity::new(
                Linear::xavier(&ctx, 768, w, a.seed)?,
                Linear::xavier(&ctx, 768, w, a.seed + 1)?,
                heads,
            )?
            .with_precision(p);
            let ms = time(&mut || Ok(att.scores_resident(&ctx, &q, &keys).map(drop)?))?;
            let rate = (nq * nk) as f64 / (ms / 1e3);
            writeln!(
                out,
                "| attention {heads} x {head_dim} (projections + scores) | {p} | {nq} x {nk} | {ms:.3} | {rate:.3e} pairs/s |"
            )?;
        }
    }
    drop((q, keys));

    // Learned distance 768 -> 128: k-NN of projected queries over a base
    // projected once, against plain 128-d k-NN of pre-projected queries.
    let base = gen.rows(nb, BASE_STREAM)?;
    let queries = gen.rows(nq, QUERY_STREAM)?;
    for &p in &precisions {
        let ld = LearnedDistance::new(Linear::xavier(&ctx, 768, 128, a.seed)?, Metric::L2)?
            .with_precision(p);
        let t0 = std::time::Instant::now();
        let pb = ld.project(&ctx, &base)?;
        ctx.synchronize()?;
        let project_ms = t0.elapsed().as_secs_f64() * 1e3;
        let qd = ctx.upload(&queries)?;
        let ms = time(&mut || Ok(ld.knn(&ctx, &qd, &pb, a.k).map(drop)?))?;
        let pq = ld.project(&ctx, &qd)?;
        let opts = KnnOptions::default().with_precision(p);
        let plain = time(&mut || Ok(knn_with(&ctx, &pq, &pb, a.k, Metric::L2, opts).map(drop)?))?;
        writeln!(
            out,
            "| learned distance 768 -> 128 k-NN (k {}) | {p} | {nq} x {nb} | {ms:.3} | {:.1}% of plain 128-d k-NN ({plain:.3} ms); base projected once in {project_ms:.1} ms (upload included) |",
            a.k,
            100.0 * plain / ms
        )?;
    }
    Ok(())
}

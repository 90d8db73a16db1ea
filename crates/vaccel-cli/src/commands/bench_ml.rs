//! `vaccel bench ml`: neural quantization encode and decode, attention
//! similarity (single and multi-head) and learned-distance k-NN on
//! synthetic data resident on the device, with throughput.
//!
//! The data (N(0, 1) rows of 768 values) and the Xavier weights are drawn
//! once from `--seed`, and every precision runs on the same ones. The last
//! column of each row, `check`, is a mean computed outside the timed region
//! on the first rows of the inputs, printed with 6 significant digits:
//!
//! - nq encode: the per-vector scales of the first min(n, 1000) rows;
//! - nq decode: the decoded values of those rows;
//! - attention: the scores of the first min(queries, 100) queries against
//!   the first min(keys, 1000) keys;
//! - learned distance: the k-NN distances (squared L2 between projections)
//!   of the first min(queries, 10) queries.
//!
//! `--export DIR` writes the inputs (`x.npy`, `queries.npy`, `keys.npy`,
//! `base.npy`, float32), the weights (`weights.safetensors`: `nq.encoder.weight`,
//! `nq.decoder.weight`, `attention{1,12}.{q,k}.weight`, `learned.weight`)
//! and `manifest.json`, so that the PyTorch peer runs on identical data and
//! weights and prints the same `check` column:
//!
//! ```text
//! vaccel bench ml --export /tmp/mldata
//! python3 bench/peers/torch_ml.py --data /tmp/mldata
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context as _, Result};
use clap::Args;
use vector_accelerate::ml::{
    AttentionSimilarity, LearnedDistance, Linear, NeuralQuantizer, NqOptions, NqPreset, Pca,
    WeightStore,
};
use vector_accelerate::{knn_with, Context, KnnOptions, Matrix, Metric, Precision};

use super::args::make_context;
use super::timing::time_synced_ms;
use crate::io::npy;
use crate::io::output::{commit, PendingFile};
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Width of every input row.
const DIM: usize = 768;
/// Latent width of the quantizer and output width of the learned projection.
const LATENT: usize = 128;
/// Width of one attention head.
const HEAD_DIM: usize = 64;
/// Head counts of the attention cases.
const HEADS: [usize; 2] = [1, 12];
/// Rows of the quantizer input whose codes and reconstructions give the
/// nq checks.
const CHECK_NQ_ROWS: usize = 1000;
/// Queries and keys whose scores give the attention check.
const CHECK_ATTENTION: (usize, usize) = (100, 1000);
/// Queries whose k-NN distances give the learned-distance check.
const CHECK_LEARNED_QUERIES: usize = 10;
/// Prefix of the quantizer's tensors in the weight store.
const NQ_PREFIX: &str = "nq.";
/// Name of the learned projection's weight in the weight store.
const LEARNED_WEIGHT: &str = "learned.weight";
/// Name of the weight file under `--export`.
const WEIGHTS_FILE: &str = "weights.safetensors";

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
    /// Attention queries, also the queries of the learned-distance k-NN
    /// (default 10,000 on CUDA, 200 on the CPU).
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
    /// Also write the inputs (x.npy, queries.npy, keys.npy, base.npy), the
    /// weights (weights.safetensors) and manifest.json into this folder
    /// (created if missing), for `bench/peers/torch_ml.py --data DIR`.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
}

/// Runs the benchmark.
// Long by design: a flat list of cases, each a few lines, printed in order.
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
    ensure!(
        a.k <= nb,
        "--k {} is more than the {nb} base rows of the learned-distance k-NN",
        a.k
    );
    let precisions: Vec<Precision> = a
        .precisions
        .split(',')
        .map(|p| p.trim().parse::<Precision>())
        .collect::<std::result::Result<_, _>>()?;
    let mut export = a.export.as_deref().map(Export::create).transpose()?;
    // Every weight map is drawn once; each precision builds its maps from
    // the store, sharing the store's device copy of each weight.
    let store = xavier_weights(a.seed)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({how})", ctx.device())?;
    writeln!(out)?;
    writeln!(
        out,
        "| case | precision | shape | median ms | throughput | check |"
    )?;
    writeln!(out, "|---|---|---|---:|---:|---:|")?;
    let gen = Generator::gaussian(DIM, a.seed)?;
    let time = |f: &mut dyn FnMut() -> Result<()>| time_synced_ms(&ctx, a.repeats, f);

    // Neural quantization 768 -> 128: encode (f32 in, int8 + scale out,
    // resident) and decode (codes in, f32 out, resident).
    let x_host = gen.rows(n, BASE_STREAM)?;
    if let Some(e) = &mut export {
        e.array("x", &x_host)?;
    }
    let x_check = first_rows(&x_host, CHECK_NQ_ROWS)?;
    let x = ctx.upload(&x_host)?;
    drop(x_host);
    for &p in &precisions {
        let opts = NqOptions::default().with_precision(p);
        let nqz = NeuralQuantizer::from_store(&ctx, &store, NQ_PREFIX, &opts)?;
        let ms = time(&mut || Ok(nqz.encode(&ctx, &x).map(drop)?))?;
        let rate = n as f64 / (ms / 1e3);
        let check_codes = nqz.encode(&ctx, &x_check)?;
        let scales = check_codes.to_host()?;
        let (scales, _) = scales
            .vector_params()
            .context("the quantizer's codes carry no per-vector scales")?;
        let check = sig6(mean(scales));
        writeln!(out, "| nq encode 768 -> 128 (int8 + scale) | {p} | {n} x 768 | {ms:.3} | {:.1} M vectors/s | {check} |", rate / 1e6)?;
        let codes = nqz.encode(&ctx, &x)?;
        let ms = time(&mut || Ok(nqz.decode(&ctx, &codes).map(drop)?))?;
        let rate = n as f64 / (ms / 1e3);
        let check = sig6(mean(nqz.decode(&ctx, &check_codes)?.to_host()?.as_slice()));
        writeln!(
            out,
            "| nq decode 128 -> 768 | {p} | {n} x 128 | {ms:.3} | {:.1} M vectors/s | {check} |",
            rate / 1e6
        )?;
    }
    drop(x);

    // Reconstruction of a PCA-fitted 768 -> 128 quantizer on clustered
    // data (fitted on one sample, measured on another).
    let clustered = Generator::clustered(DIM, 100, a.seed)?;
    let (train, eval) = (nb.min(100_000), nb.min(100_000));
    let fit_rows = clustered.rows(train, BASE_STREAM)?;
    let t0 = std::time::Instant::now();
    let pca = Pca::train(&ctx, &fit_rows, LATENT)?;
    let fit_ms = t0.elapsed().as_secs_f64() * 1e3;
    let nqz = NeuralQuantizer::from_pca(&ctx, &pca, &NqOptions::default())?;
    let r = nqz.reconstruction(&ctx, &clustered.rows(eval, QUERY_STREAM)?)?;
    writeln!(
        out,
        "| nq reconstruction, PCA 768 -> 128 fitted on {train} clustered rows ({fit_ms:.0} ms) | exact | {eval} x 768 | | mean cosine {:.6} (f32 latent {:.6}); MSE {:.4e} (f32 latent {:.4e}, int8 adds {:.2}%) | |",
        r.int8.mean_cosine,
        r.f32_latent.mean_cosine,
        r.int8.mse,
        r.f32_latent.mse,
        100.0 * (r.int8.mse / r.f32_latent.mse - 1.0)
    )?;
    drop(fit_rows);

    // Attention similarity: queries and keys projected, then every score
    // written (resident).
    let queries = gen.rows(nq, QUERY_STREAM)?;
    let keys_host = gen.rows(nk, BASE_STREAM)?;
    if let Some(e) = &mut export {
        e.array("queries", &queries)?;
        e.array("keys", &keys_host)?;
    }
    let q_check = first_rows(&queries, CHECK_ATTENTION.0)?;
    let k_check = first_rows(&keys_host, CHECK_ATTENTION.1)?;
    let q = ctx.upload(&queries)?;
    let keys = ctx.upload(&keys_host)?;
    drop(keys_host);
    for heads in HEADS {
        let w = heads * HEAD_DIM;
        for &p in &precisions {
            let att = AttentionSimilarity::new(
                store.linear(&ctx, &attention_weight(heads, "q"), None, (DIM, w))?,
                store.linear(&ctx, &attention_weight(heads, "k"), None, (DIM, w))?,
                heads,
            )?
            .with_precision(p);
            let ms = time(&mut || Ok(att.scores(&ctx, &q, &keys).map(drop)?))?;
            let rate = (nq * nk) as f64 / (ms / 1e3);
            let check = sig6(mean(
                att.scores(&ctx, &q_check, &k_check)?.to_host()?.as_slice(),
            ));
            writeln!(
                out,
                "| attention {heads} x {HEAD_DIM} (projections + scores) | {p} | {nq} x {nk} | {ms:.3} | {rate:.3e} pairs/s | {check} |"
            )?;
        }
    }
    drop((q, keys, q_check, k_check));

    // Learned distance 768 -> 128: k-NN of projected queries over a base
    // projected once, against plain 128-d k-NN of pre-projected queries.
    let base = gen.rows(nb, BASE_STREAM)?;
    if let Some(e) = &mut export {
        e.array("base", &base)?;
    }
    let q_check = first_rows(&queries, CHECK_LEARNED_QUERIES)?;
    for &p in &precisions {
        let ld = LearnedDistance::new(
            store.linear(&ctx, LEARNED_WEIGHT, None, (DIM, LATENT))?,
            Metric::L2,
        )?
        .with_precision(p);
        let t0 = std::time::Instant::now();
        let pb = ld.project(&ctx, &base)?;
        ctx.synchronize()?;
        let project_ms = t0.elapsed().as_secs_f64() * 1e3;
        let qd = ctx.upload(&queries)?;
        let ms = time(&mut || Ok(ld.knn(&ctx, &qd, &pb, a.k).map(drop)?))?;
        let pq = ld.project(&ctx, &qd)?;
        let opts = KnnOptions::default().with_precision(p);
        let plain = time(&mut || Ok(knn_with(&ctx, &pq, &pb, a.k, &opts).map(drop)?))?;
        let check = sig6(mean(ld.knn(&ctx, &q_check, &pb, a.k)?.distances()));
        writeln!(
            out,
            "| learned distance 768 -> 128 k-NN (k {}) | {p} | {nq} x {nb} | {ms:.3} | {:.1}% of plain 128-d k-NN ({plain:.3} ms); base projected once in {project_ms:.1} ms (upload included) | {check} |",
            a.k,
            100.0 * plain / ms
        )?;
    }
    if let Some(e) = export {
        let dir = e.dir.clone();
        e.finish(&store, a.seed, a.k)?;
        eprintln!(
            "inputs, weights and manifest.json written to {}",
            dir.display()
        );
    }
    Ok(())
}

/// Name of the query (`side` "q") or key ("k") projection's weight of the
/// attention case with `heads` heads.
fn attention_weight(heads: usize, side: &str) -> String {
    format!("attention{heads}.{side}.weight")
}

/// The weights of every case, Xavier-uniform from `seed` as the benchmark
/// has always drawn them (quantizer encoder from `seed`, decoder from
/// `seed + 1`; attention queries from `seed`, keys from `seed + 1`; the
/// learned projection from `seed`), held as f32 tensors in PyTorch's
/// `nn.Linear.weight` layout (`[d_out, d_in]`). Drawn on the host: the
/// same values on every backend.
fn xavier_weights(seed: u64) -> Result<WeightStore> {
    let host = Context::cpu();
    let mut store = WeightStore::new();
    NeuralQuantizer::xavier(&host, NqPreset::D768To128, seed, &NqOptions::default())?
        .save(&mut store, NQ_PREFIX)?;
    for heads in HEADS {
        let w = heads * HEAD_DIM;
        let wq = Linear::xavier(&host, DIM, w, seed)?;
        let wk = Linear::xavier(&host, DIM, w, seed.wrapping_add(1))?;
        put_weight(&mut store, &attention_weight(heads, "q"), &wq)?;
        put_weight(&mut store, &attention_weight(heads, "k"), &wk)?;
    }
    let learned = Linear::xavier(&host, DIM, LATENT, seed)?;
    put_weight(&mut store, LEARNED_WEIGHT, &learned)?;
    Ok(store)
}

/// Puts the weight of `lin` into `store` as the f32 tensor `name`.
fn put_weight(store: &mut WeightStore, name: &str, lin: &Linear) -> Result<()> {
    let w = lin.weight().to_host()?.into_vec();
    store.insert_f32(name, &[lin.d_out(), lin.d_in()], w)?;
    Ok(())
}

/// A copy of the first `rows` rows of `m` (all of them when it has fewer).
fn first_rows(m: &Matrix, rows: usize) -> Result<Matrix> {
    let rows = rows.min(m.rows());
    Ok(Matrix::new(
        m.as_slice()[..rows * m.dim()].to_vec(),
        m.dim(),
    )?)
}

/// The mean of `v`, summed in f64.
fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64
}

/// `v` with 6 significant digits, as C's and Python's `%.6g` write it, so
/// that the check column of the PyTorch peer compares as text.
fn sig6(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The decimal exponent after rounding to 6 digits decides the form.
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if (-4..6).contains(&exp) {
        let decimals = (5 - exp) as usize;
        trim(&format!("{v:.decimals$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    }
}

/// The inputs and weights of a run, written under `--export` for the
/// PyTorch peer. Each file is written under a temporary name and they all
/// appear together once the run is complete.
#[derive(Debug)]
struct Export {
    dir: PathBuf,
    files: Vec<PendingFile>,
    /// Name and rows of each array written.
    arrays: Vec<(&'static str, usize)>,
}

impl Export {
    /// Checks `dir` and creates it (with its parents) when missing.
    fn create(dir: &Path) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            bail!("--export '{}' is not a folder", dir.display());
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the --export folder '{}'", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            arrays: Vec::new(),
        })
    }

    /// Writes `m` as the float32 array `{name}.npy`.
    fn array(&mut self, name: &'static str, m: &Matrix) -> Result<()> {
        let mut f = PendingFile::create(&self.dir.join(format!("{name}.npy")))?;
        f.write(|w| npy::write_f32(w, m.rows(), m.dim(), m.as_slice()))?;
        self.files.push(f);
        self.arrays.push((name, m.rows()));
        Ok(())
    }

    /// Writes the weights and the manifest, then moves every file into
    /// place.
    fn finish(mut self, store: &WeightStore, seed: u64, k: usize) -> Result<()> {
        let bytes = store.to_safetensors_bytes(None)?;
        let mut f = PendingFile::create(&self.dir.join(WEIGHTS_FILE))?;
        f.write(|w| Ok(w.write_all(&bytes)?))?;
        self.files.push(f);
        let manifest = self.manifest(store, seed, k)?;
        let mut f = PendingFile::create(&self.dir.join("manifest.json"))?;
        f.write(|w| Ok(w.write_all(manifest.as_bytes())?))?;
        self.files.push(f);
        commit(self.files)
    }

    /// `manifest.json`: the sizes, the seed, the files and the tensors.
    fn manifest(&self, store: &WeightStore, seed: u64, k: usize) -> Result<String> {
        let rows = |name: &str| {
            self.arrays
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |&(_, r)| r)
        };
        let mut s = String::from("{\n  \"generator\": \"vaccel bench ml\",\n");
        s += &format!(
            "  \"n\": {},\n  \"queries\": {},\n  \"keys\": {},\n  \"base\": {},\n  \"k\": {k},\n  \"seed\": {seed},\n  \"dim\": {DIM},\n",
            rows("x"),
            rows("queries"),
            rows("keys"),
            rows("base")
        );
        s += "  \"arrays\": {\n";
        let arrays: Vec<String> = self
            .arrays
            .iter()
            .map(|(name, r)| {
                format!(
                    "    \"{name}\": {{\"file\": \"{name}.npy\", \"dtype\": \"float32\", \"shape\": [{r}, {DIM}]}}"
                )
            })
            .collect();
        s += &arrays.join(",\n");
        s += &format!(
            "\n  }},\n  \"weights\": {{\n    \"file\": \"{WEIGHTS_FILE}\",\n    \"tensors\": {{\n"
        );
        let mut tensors = Vec::new();
        for name in store.names() {
            let t = store.get(name)?;
            let shape: Vec<String> = t.shape().iter().map(usize::to_string).collect();
            tensors.push(format!(
                "      \"{name}\": {{\"dtype\": \"{}\", \"shape\": [{}]}}",
                t.dtype(),
                shape.join(", ")
            ));
        }
        s += &tensors.join(",\n");
        s += "\n    }\n  },\n";
        let heads: Vec<String> = HEADS.iter().map(usize::to_string).collect();
        s += &format!(
            "  \"attention\": {{\"heads\": [{}], \"head_dim\": {HEAD_DIM}, \"temperature\": \"sqrt(head_dim)\"}},\n",
            heads.join(", ")
        );
        s += "  \"learned_metric\": \"squared l2\"\n}\n";
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig6_writes_like_percent_g() {
        for (v, s) in [
            (0.0, "0"),
            (0.5, "0.5"),
            (-2.0, "-2"),
            (0.000123456789, "0.000123457"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456.4, "123456"),
            (999999.5, "1e+06"),
            (1234567.0, "1.23457e+06"),
            (-2.71234567, "-2.71235"),
            (0.0123450049, "0.012345"),
            (1.5e-300, "1.5e-300"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(sig6(v), s, "{v}");
        }
        assert_eq!(sig6(f64::NAN), "nan");
    }

    #[test]
    fn mean_of_values() {
        assert_eq!(mean(&[1.0, 2.0, 4.5]), 2.5);
    }
}

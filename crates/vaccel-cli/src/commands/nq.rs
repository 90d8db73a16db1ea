//! `vaccel nq train|encode|decode`: neural quantization on `.npy` data with
//! the model (encoder and decoder weights) in a `.safetensors` file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context as _, Result};
use clap::{Args, Subcommand};
use vector_accelerate::linalg::Activation;
use vector_accelerate::ml::{NeuralQuantizer, NqOptions, Pca, Reconstruction, WeightStore};
use vector_accelerate::quantize::{ScalarBits, ScalarCodes, ScalarRange};
use vector_accelerate::{Context, Precision};

use super::args::make_context;
use super::quantize::read_f32;
use crate::io::npy;
use crate::io::output::{commit, PendingFile};

/// Neural quantization: train a linear (PCA) encoder/decoder, encode vectors
/// to int8 latent codes with a scale each, decode them back.
#[derive(Debug, Subcommand)]
pub enum NqCommand {
    /// Train a PCA encoder/decoder on training vectors and save it as
    /// safetensors (`encoder.weight`, `encoder.bias`, `decoder.weight`,
    /// `decoder.bias`, and the fit under `pca.*`).
    #[command(alias = "fit")]
    Train(TrainArgs),
    /// Encode vectors with a model: int8 latent codes and each vector's scale.
    Encode(EncodeArgs),
    /// Decode codes written by `vaccel nq encode` back to float32 vectors.
    Decode(DecodeArgs),
}

/// Arguments of `vaccel nq train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training vectors: float32 .npy, .fvecs, .bvecs, .fbin, .u8bin, .i8bin
    /// or FILE.hdf5#DATASET.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Latent width (the number of principal components).
    #[arg(long, default_value_t = 128)]
    latent: usize,
    /// Output model: a .safetensors file.
    #[arg(long, value_name = "OUT.safetensors")]
    out: PathBuf,
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Print no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// The encoder's options on the command line.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The model: a .safetensors file with `encoder.weight` [latent, d],
    /// `decoder.weight` [d, latent] and optional `encoder.bias`,
    /// `decoder.bias` (as `vaccel nq train` writes, or PyTorch `nn.Linear`
    /// parameters saved under those names).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Activation of the encoder: none, relu, tanh, sigmoid or gelu.
    #[arg(long, default_value = "none")]
    activation: String,
    /// Scale each latent to unit length before quantising.
    #[arg(long)]
    normalize_latent: bool,
    /// GEMM precision: exact, tf32, bf16 or f16.
    #[arg(long, default_value = "exact")]
    precision: String,
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

/// Arguments of `vaccel nq encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Vectors to encode: float32 .npy, .fvecs, .bvecs, .fbin, .u8bin, .i8bin
    /// or FILE.hdf5#DATASET.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Output: a uint8 .npy [rows x (latent + 8)]: each row's int8 codes,
    /// then its scale and offset (0) as little-endian float32.
    #[arg(long, value_name = "OUT.npy")]
    out: PathBuf,
    /// Also print the reconstruction quality (through the codes and through
    /// the float32 latent).
    #[arg(long)]
    report: bool,
    /// Print no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `vaccel nq decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Codes written by `vaccel nq encode` with the same model.
    #[arg(long, value_name = "FILE")]
    codes: PathBuf,
    /// Output: float32 .npy [rows x d].
    #[arg(long, value_name = "OUT.npy")]
    out: PathBuf,
    /// Print no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Runs a `vaccel nq` command.
pub fn run(cmd: NqCommand) -> Result<()> {
    match cmd {
        NqCommand::Train(a) => train(a),
        NqCommand::Encode(a) => encode(a),
        NqCommand::Decode(a) => decode(a),
    }
}

fn parse_activation(s: &str) -> Result<Activation> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "none" => Activation::None,
        "relu" => Activation::Relu,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "gelu" => Activation::Gelu,
        other => bail!("--activation: '{other}' is not one of none, relu, tanh, sigmoid, gelu"),
    })
}

fn report(what: &str, r: &Reconstruction) {
    let mut e = std::io::stderr();
    for (via, f) in [("int8 codes", r.int8), ("f32 latent", r.f32_latent)] {
        let _ = writeln!(
            e,
            "{what} through the {via}: MSE {:.6e}, SNR {:.2} dB, mean cosine {:.6}",
            f.mse, f.snr_db, f.mean_cosine
        );
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let (ctx, _) = make_context(a.device.as_deref())?;
    let data = read_f32(&a.data, "training data")?;
    ensure!(
        a.latent >= 1 && a.latent <= data.dim(),
        "--latent {} must be between 1 and the dimension {}",
        a.latent,
        data.dim()
    );
    let mut out = PendingFile::create(&a.out)?;
    let started = Instant::now();
    let pca = Pca::train(&ctx, &data, a.latent)?;
    let nq = NeuralQuantizer::from_pca(&ctx, &pca, &NqOptions::default())?;
    let mut store = WeightStore::new();
    nq.save(&mut store, "")?;
    pca.save(&mut store, "pca")?;
    let bytes = store.to_safetensors_bytes(None)?;
    let seconds = started.elapsed().as_secs_f64();
    out.write(|w| Ok(w.write_all(&bytes)?))?;
    commit(vec![out])?;
    if !a.quiet {
        let kept: f32 = pca.explained_variance_ratio().iter().sum();
        let _ = writeln!(
            std::io::stderr(),
            "train: PCA {} -> {} on {} rows, {:.2}% of the variance kept, device {}: {seconds:.3} s",
            data.dim(),
            a.latent,
            data.rows(),
            100.0 * kept,
            ctx.device()
        );
        report("training data", &nq.reconstruction(&ctx, &data)?);
    }
    Ok(())
}

fn load_model(ctx: &Context, m: &ModelArgs) -> Result<NeuralQuantizer> {
    let opts = NqOptions::default()
        .with_activation(parse_activation(&m.activation)?)
        .with_normalized_latent(m.normalize_latent)
        .with_precision(m.precision.parse::<Precision>()?);
    let mut store = WeightStore::new();
    store
        .load_safetensors(&m.model)
        .with_context(|| format!("cannot read model '{}'", m.model.display()))?;
    NeuralQuantizer::from_store(ctx, &store, "", &opts)
        .with_context(|| format!("model '{}'", m.model.display()))
}

fn encode(a: EncodeArgs) -> Result<()> {
    let (ctx, _) = make_context(a.model.device.as_deref())?;
    let nq = load_model(&ctx, &a.model)?;
    let data = read_f32(&a.data, "data")?;
    ensure!(
        data.dim() == nq.d_in(),
        "data '{}' has {} columns; the model encodes vectors of {}",
        a.data.display(),
        data.dim(),
        nq.d_in()
    );
    let mut out = PendingFile::create(&a.out)?;
    let started = Instant::now();
    let bytes = nq.encode(&ctx, &data)?.to_row_bytes()?;
    let seconds = started.elapsed().as_secs_f64();
    let row = nq.latent() + 8;
    out.write(|w| npy::write_u8(w, data.rows(), row, &bytes))?;
    commit(vec![out])?;
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "encode: {} x {} float32 -> {} x {row} bytes ({:.1}x smaller), device {}: {seconds:.3} s",
            data.rows(),
            data.dim(),
            data.rows(),
            (data.dim() * 4) as f64 / row as f64,
            ctx.device()
        );
    }
    if a.report {
        report("data", &nq.reconstruction(&ctx, &data)?);
    }
    Ok(())
}

fn read_codes(ctx: &Context, nq: &NeuralQuantizer, path: &Path) -> Result<ScalarCodes> {
    let (_, cols, bytes) = npy::read_u8(path)
        .with_context(|| format!("cannot read codes file '{}'", path.display()))?;
    let want = nq.latent() + 8;
    ensure!(
        cols == want,
        "codes file '{}' has rows of {cols} bytes; this model's latent of {} writes rows of {want}",
        path.display(),
        nq.latent()
    );
    let c = ScalarCodes::from_row_bytes(
        &bytes,
        nq.latent(),
        ScalarBits::Int8,
        ScalarRange::Symmetric,
        true,
    )?;
    Ok(if ctx.is_cuda() { c.copy_to(ctx)? } else { c })
}

fn decode(a: DecodeArgs) -> Result<()> {
    let (ctx, _) = make_context(a.model.device.as_deref())?;
    let nq = load_model(&ctx, &a.model)?;
    let codes = read_codes(&ctx, &nq, &a.codes)?;
    let mut out = PendingFile::create(&a.out)?;
    let started = Instant::now();
    let back = nq.decode(&ctx, &codes)?.into_host()?;
    let seconds = started.elapsed().as_secs_f64();
    out.write(|w| npy::write_f32(w, back.rows(), back.dim(), back.as_slice()))?;
    commit(vec![out])?;
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "decode: {} codes -> {} x {} float32, device {}: {seconds:.3} s",
            back.rows(),
            back.rows(),
            back.dim(),
            ctx.device()
        );
    }
    Ok(())
}

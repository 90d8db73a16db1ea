//! `vaccel quantize fit|encode|decode|search`: fits a scalar, binary or
//! product quantizer to vectors in a file and saves it, encodes vectors to
//! a `uint8` code file, decodes codes back to `float32`, and searches codes.
//!
//! Code files are 2-D `uint8` `.npy` arrays, one row per vector: scalar
//! codes (int4 two per byte, low nibble first) followed, for per-vector
//! scopes, by the row's scale and offset as little-endian `float32`; binary
//! codes bit-packed as `numpy.packbits(bitorder="little")` writes them;
//! product codes bit-packed least significant bit first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use vector_accelerate::cluster::KMeansProgress;
use vector_accelerate::quantize::{
    BinaryQuantizer, BinaryThreshold, PqCodes, PqOptions, ProductQuantizer, Quality, Quantizer,
    Rerank, ScalarCodes, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope,
};
use vector_accelerate::{
    BinaryMatrix, Context, DeviceMatrix, Input, Matrix, Metric, Neighbors, MISSING_ID,
};

use super::args::{check_k, make_context};
use crate::io::output::{commit, resolve, PendingFile};
use crate::io::{npy, read_matrix, Data};
use crate::progress::Progress;

/// The `vaccel quantize` sub-commands.
#[derive(Debug, Subcommand)]
pub enum QuantizeCommand {
    /// Fit a quantizer to training vectors and save it.
    Fit(FitArgs),
    /// Encode vectors into a uint8 code file.
    Encode(EncodeArgs),
    /// Decode a code file back to float32 vectors.
    Decode(DecodeArgs),
    /// k nearest codes of each query, optionally re-ranked with the
    /// original vectors.
    Search(SearchArgs),
}

/// Quantizer kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Scalar, 8 bits per value.
    Sq8,
    /// Scalar, 4 bits per value.
    Sq4,
    /// One bit per dimension.
    Binary,
    /// Product quantization (--m sub-spaces of --nbits-bit codes).
    Pq,
}

/// Scalar code ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RangeArg {
    /// Signed codes around zero (-127..127 or -7..7).
    Symmetric,
    /// The full unsigned range from the minimum (0..255 or 0..15).
    Asymmetric,
}

/// Arguments of `vaccel quantize fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Quantizer kind.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Training vectors: float32 .npy, .fvecs or .bvecs.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Output: the fitted quantizer.
    #[arg(long, value_name = "OUT")]
    out: PathBuf,
    /// Scalar: code range (default symmetric).
    #[arg(long, value_enum)]
    range: Option<RangeArg>,
    /// Scalar: one scale (and offset) per vector, computed at encode time,
    /// instead of one per dimension fitted here.
    #[arg(long)]
    per_vector: bool,
    /// Scalar, per dimension: clip each dimension to its [1-P, P]
    /// quantiles (0.5 < P < 1) instead of its minimum and maximum.
    #[arg(long, value_name = "P")]
    clip: Option<f32>,
    /// Binary: bit j is x[j] > threshold: zero (default), mean (of each
    /// dimension over the training data) or a number.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    threshold: Option<String>,
    /// Product: sub-spaces (codes per vector).
    #[arg(long, value_name = "M")]
    m: Option<usize>,
    /// Product: bits per code, 4..=16 (default 8).
    #[arg(long, value_name = "B")]
    nbits: Option<u32>,
    /// Product: k-means iterations (default 25).
    #[arg(long, value_name = "N")]
    iterations: Option<usize>,
    /// Product: seed of the initial centroids (default 0).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Product: train on at most N vectors drawn with the seed.
    #[arg(long, value_name = "N")]
    max_training_points: Option<usize>,
    /// Product: pad a dimension that M does not divide with zeros.
    #[arg(long)]
    pad: bool,
    /// Device: cpu, cuda, cuda:N or auto (default: the
    /// VECTOR_ACCELERATE_DEVICE variable, else auto).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Print neither the progress bar nor the summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `vaccel quantize encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// A quantizer saved by `vaccel quantize fit`.
    #[arg(long, value_name = "FILE")]
    quantizer: PathBuf,
    /// Vectors to encode: float32 .npy, .fvecs or .bvecs.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Output: codes as a uint8 .npy [rows x bytes per row].
    #[arg(long, value_name = "OUT.npy")]
    out: PathBuf,
    /// Also decode the codes and print the reconstruction quality (MSE,
    /// max error, SNR, PSNR, compression ratio; scalar and product).
    #[arg(long)]
    quality: bool,
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Print no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `vaccel quantize decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// A quantizer saved by `vaccel quantize fit` (scalar or product).
    #[arg(long, value_name = "FILE")]
    quantizer: PathBuf,
    /// Codes written by `vaccel quantize encode` with that quantizer.
    #[arg(long, value_name = "FILE")]
    codes: PathBuf,
    /// Output: float32 .npy [rows x dim].
    #[arg(long, value_name = "OUT.npy")]
    out: PathBuf,
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Print no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `vaccel quantize search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// A quantizer saved by `vaccel quantize fit`.
    #[arg(long, value_name = "FILE")]
    quantizer: PathBuf,
    /// Codes written by `vaccel quantize encode` with that quantizer.
    #[arg(long, value_name = "FILE")]
    codes: PathBuf,
    /// Query vectors: float32 (.npy, .fvecs, .bvecs); for a binary
    /// quantizer also uint8 .npy codes.
    #[arg(long, value_name = "FILE")]
    queries: PathBuf,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", value_name = "K")]
    k: usize,
    /// l2 (squared; the default for scalar and product codes) or ip; binary
    /// codes rank by hamming, and this metric re-ranks (default l2).
    #[arg(long, value_name = "METRIC")]
    metric: Option<String>,
    /// Re-rank a shortlist with these original vectors (float32, the rows
    /// the codes were encoded from).
    #[arg(long, value_name = "FILE")]
    rerank: Option<PathBuf>,
    /// Candidates per query to re-rank (default 10 x k).
    #[arg(long, value_name = "N")]
    shortlist: Option<usize>,
    /// Output: neighbour ids as int64 .npy [queries x k], -1 where missing.
    #[arg(long, value_name = "OUT.npy")]
    ids: PathBuf,
    /// Output: distances as float32 .npy [queries x k] (hamming distances
    /// for binary codes without re-ranking).
    #[arg(long, value_name = "OUT.npy")]
    distances: Option<PathBuf>,
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Print no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Runs a `vaccel quantize` sub-command.
pub fn run(cmd: QuantizeCommand) -> Result<()> {
    match cmd {
        QuantizeCommand::Fit(a) => fit(a),
        QuantizeCommand::Encode(a) => encode(a),
        QuantizeCommand::Decode(a) => decode(a),
        QuantizeCommand::Search(a) => search(a),
    }
}

/// Fails when an option of another quantizer kind was given.
fn refuse_foreign(kind: Kind, given: &[(&str, bool)]) -> Result<()> {
    for (flag, on) in given {
        if *on {
            bail!(
                "{flag} does not apply to --kind {}",
                kind.to_possible_value()
                    .map_or("?".into(), |v| v.get_name().to_string())
            );
        }
    }
    Ok(())
}

fn fit(a: FitArgs) -> Result<()> {
    let scalar = [
        ("--range", a.range.is_some()),
        ("--per-vector", a.per_vector),
        ("--clip", a.clip.is_some()),
    ];
    let binary = [("--threshold", a.threshold.is_some())];
    let product = [
        ("--m", a.m.is_some()),
        ("--nbits", a.nbits.is_some()),
        ("--iterations", a.iterations.is_some()),
        ("--seed", a.seed.is_some()),
        ("--max-training-points", a.max_training_points.is_some()),
        ("--pad", a.pad),
    ];
    match a.kind {
        Kind::Sq8 | Kind::Sq4 => refuse_foreign(a.kind, &[&binary[..], &product[..]].concat())?,
        Kind::Binary => refuse_foreign(a.kind, &[&scalar[..], &product[..]].concat())?,
        Kind::Pq => refuse_foreign(a.kind, &[&scalar[..], &binary[..]].concat())?,
    }
    if let Some(t) = &a.threshold {
        parse_threshold(t, 1)?;
    }
    let (ctx, _) = make_context(a.device.as_deref())?;
    let data = read_f32(&a.data, "training")?;
    let mut out = PendingFile::create(&a.out)?;

    let started = Instant::now();
    let (q, what) = match a.kind {
        Kind::Sq8 | Kind::Sq4 => {
            let mut o = if a.kind == Kind::Sq8 {
                ScalarOptions::int8()
            } else {
                ScalarOptions::int4()
            };
            if a.range == Some(RangeArg::Asymmetric) {
                o = o.with_range(ScalarRange::Asymmetric);
            }
            if a.per_vector {
                o = o.with_scope(ScalarScope::PerVector);
            }
            if let Some(p) = a.clip {
                o = o.with_clip(p);
            }
            let sq = ScalarQuantizer::fit(&ctx, &data, o)?;
            let what = format!(
                "{} range, {}, error bound {}",
                if o.range == ScalarRange::Symmetric {
                    "symmetric"
                } else {
                    "asymmetric"
                },
                if a.per_vector {
                    "per vector"
                } else {
                    "per dimension"
                },
                bound_text(&sq)
            );
            (Quantizer::Scalar(sq), what)
        }
        Kind::Binary => {
            let t = match &a.threshold {
                Some(t) => parse_threshold(t, data.dim())?,
                None => BinaryThreshold::Zero,
            };
            let what = match &t {
                BinaryThreshold::Given(v) => format!("threshold {}", v[0]),
                other => format!("threshold {other:?}").to_lowercase(),
            };
            (
                Quantizer::Binary(BinaryQuantizer::fit(&ctx, &data, t)?),
                what,
            )
        }
        Kind::Pq => {
            let m = a.m.context("--kind pq needs --m (sub-spaces)")?;
            let mut o = PqOptions::new(m, a.nbits.unwrap_or(8)).with_padding(a.pad);
            if let Some(n) = a.iterations {
                o = o.with_iterations(n);
            }
            if let Some(s) = a.seed {
                o = o.with_seed(s);
            }
            if let Some(n) = a.max_training_points {
                o = o.with_max_training_points(n);
            }
            let (pq, last) = train_pq(&ctx, &data, o, !a.quiet)?;
            let mut what = format!(
                "M {} x {} bits, {} centroids per sub-space",
                pq.m(),
                pq.nbits(),
                pq.centroids_per_subspace(),
            );
            if let Some(p) = last {
                what += &format!(
                    "; iteration {}: inertia {:.6e}, {} codes changed, {} centroids re-seeded",
                    p.iteration, p.inertia, p.changed, p.reseeded
                );
            }
            (Quantizer::Product(pq), what)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let bytes = q.to_bytes();
    out.write(|w| Ok(w.write_all(&bytes)?))?;
    commit(vec![out])?;
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "fit: {} on {} x {} float32, device {}: {seconds:.3} s; {what}; saved {} bytes",
            kind_name(&q),
            data.rows(),
            data.dim(),
            ctx.device(),
            bytes.len(),
        );
    }
    Ok(())
}

/// Trains a product quantizer with a bar counting k-means iterations;
/// returns it with the last iteration's report.
fn train_pq(
    ctx: &Context,
    data: &Matrix,
    o: PqOptions,
    show: bool,
) -> Result<(ProductQuantizer, Option<KMeansProgress>)> {
    let bar = Progress::new(o.iterations as u64, "iterations", show);
    let mut last = None;
    let pq = ProductQuantizer::train_with_progress(ctx, data, o, &mut |p| {
        bar.inc(1);
        last = Some(*p);
    })?;
    Ok((pq, last))
}

/// The scalar error bound, or what it depends on.
fn bound_text(sq: &ScalarQuantizer) -> String {
    if sq.options().scope == ScalarScope::PerVector {
        "set per vector".into()
    } else {
        format!("{:.6e}", sq.error_bound())
    }
}

/// `--threshold`: zero, mean, or one value for every dimension.
fn parse_threshold(t: &str, dim: usize) -> Result<BinaryThreshold> {
    match t.trim().to_ascii_lowercase().as_str() {
        "zero" => Ok(BinaryThreshold::Zero),
        "mean" => Ok(BinaryThreshold::Mean),
        v => {
            let x: f32 = v
                .parse()
                .map_err(|_| anyhow::anyhow!("--threshold '{t}' is not zero, mean or a number"))?;
            ensure!(x.is_finite(), "--threshold {t} is not a finite number");
            Ok(BinaryThreshold::Given(vec![x; dim]))
        }
    }
}

fn kind_name(q: &Quantizer) -> &'static str {
    match q {
        Quantizer::Scalar(sq) if sq.options().bits.bits() == 8 => "scalar int8",
        Quantizer::Scalar(_) => "scalar int4",
        Quantizer::Binary(_) => "binary",
        Quantizer::Product(_) => "product",
    }
}

/// Reads a float32 matrix (`.npy`, `.fvecs`, `.bvecs`).
pub(super) fn read_f32(path: &Path, what: &str) -> Result<Matrix> {
    let data = read_matrix(path)
        .with_context(|| format!("cannot read {what} file '{}'", path.display()))?;
    match data {
        Data::F32(m) => Ok(m),
        Data::Binary(b) => bail!(
            "{what} file '{}' holds uint8 rows ({} x {} bytes); float32 vectors are needed",
            path.display(),
            b.rows(),
            b.bits() / 8
        ),
    }
}

fn load_quantizer(path: &Path) -> Result<Quantizer> {
    Quantizer::load(path).with_context(|| format!("cannot read quantizer '{}'", path.display()))
}

/// The quantizer's dimension.
fn quantizer_dim(q: &Quantizer) -> usize {
    match q {
        Quantizer::Scalar(sq) => sq.dim(),
        Quantizer::Binary(bq) => bq.dim(),
        Quantizer::Product(pq) => pq.dim(),
    }
}

/// Bytes of one row of a code file for this quantizer.
fn row_bytes(q: &Quantizer) -> usize {
    match q {
        Quantizer::Scalar(sq) => {
            let o = sq.options();
            o.bits.bytes_per_row(sq.dim())
                + if o.scope == ScalarScope::PerVector {
                    8
                } else {
                    0
                }
        }
        Quantizer::Binary(bq) => bq.dim().div_ceil(8),
        Quantizer::Product(pq) => (pq.m() * pq.nbits() as usize).div_ceil(8),
    }
}

/// Codes of any kind, where the context computes.
enum Codes {
    Scalar(ScalarCodes),
    Binary(DeviceMatrix),
    Product(PqCodes),
}

impl Codes {
    fn rows(&self) -> usize {
        match self {
            Codes::Scalar(c) => c.rows(),
            Codes::Binary(c) => c.rows(),
            Codes::Product(c) => c.rows(),
        }
    }
}

/// Reads a code file written for `q` and places it on `ctx`'s device.
fn read_codes(ctx: &Context, q: &Quantizer, path: &Path) -> Result<Codes> {
    let (rows, cols, bytes) = npy::read_u8(path)
        .with_context(|| format!("cannot read codes file '{}'", path.display()))?;
    let want = row_bytes(q);
    ensure!(
        cols == want,
        "codes file '{}' has rows of {cols} bytes; this {} quantizer of dimension {} writes \
         rows of {want} bytes",
        path.display(),
        kind_name(q),
        quantizer_dim(q)
    );
    let codes = match q {
        Quantizer::Scalar(sq) => {
            let o = sq.options();
            let c = ScalarCodes::from_row_bytes(
                &bytes,
                sq.dim(),
                o.bits,
                o.range,
                o.scope == ScalarScope::PerVector,
            )?;
            Codes::Scalar(if ctx.is_cuda() { c.copy_to(ctx)? } else { c })
        }
        Quantizer::Binary(bq) => {
            let b = BinaryMatrix::from_packed_bytes(&bytes, rows, bq.dim())?;
            Codes::Binary(ctx.upload(&b)?)
        }
        Quantizer::Product(pq) => {
            let c = PqCodes::from_bytes(bytes, pq.m(), pq.nbits())?;
            Codes::Product(if ctx.is_cuda() { c.copy_to(ctx)? } else { c })
        }
    };
    Ok(codes)
}

/// The rows of `codes` as the bytes of a code file.
fn code_file_bytes(codes: &Codes) -> Result<Vec<u8>> {
    Ok(match codes {
        Codes::Scalar(c) => c.to_row_bytes()?,
        Codes::Product(c) => c
            .to_host()?
            .as_bytes()
            .context("product codes are not on the host")?
            .to_vec(),
        Codes::Binary(m) => {
            let words = m.to_host_binary()?.view().as_words().to_vec();
            let bpr = m.dim().div_ceil(8);
            let wpr = words.len() / m.rows().max(1);
            let mut out = Vec::with_capacity(m.rows() * bpr);
            for row in words.chunks_exact(wpr) {
                let le: Vec<u8> = row.iter().flat_map(|w| w.to_le_bytes()).collect();
                out.extend_from_slice(&le[..bpr]);
            }
            out
        }
    })
}

fn encode(a: EncodeArgs) -> Result<()> {
    let q = load_quantizer(&a.quantizer)?;
    if a.quality && matches!(q, Quantizer::Binary(_)) {
        bail!("--quality needs a quantizer that decodes (scalar or product); binary codes do not");
    }
    let (ctx, _) = make_context(a.device.as_deref())?;
    let data = read_f32(&a.data, "data")?;
    let mut out = PendingFile::create(&a.out)?;
    let started = Instant::now();
    let codes = match &q {
        Quantizer::Scalar(sq) => Codes::Scalar(sq.encode(&ctx, &data)?),
        Quantizer::Binary(bq) => Codes::Binary(bq.encode(&ctx, &data)?),
        Quantizer::Product(pq) => Codes::Product(pq.encode(&ctx, &data)?),
    };
    let bytes = code_file_bytes(&codes)?;
    let seconds = started.elapsed().as_secs_f64();
    let quality = if a.quality {
        let back = decode_codes(&ctx, &q, &codes)?;
        Some(Quality::measure(data.view(), back.view(), bytes.len())?)
    } else {
        None
    };
    let (rows, bpr) = (data.rows(), row_bytes(&q));
    out.write(|w| npy::write_u8(w, rows, bpr, &bytes))?;
    commit(vec![out])?;
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "encode: {rows} x {} float32 -> {rows} x {bpr} bytes ({}, {:.1}x smaller), device {}: \
             {seconds:.3} s",
            data.dim(),
            kind_name(&q),
            (data.dim() * 4) as f64 / bpr as f64,
            ctx.device(),
        );
        if let Some(qm) = quality {
            let _ = writeln!(
                std::io::stderr(),
                "quality: MSE {:.6e}, max error {:.6e}, SNR {:.2} dB, PSNR {:.2} dB, \
                 compression {:.2}x, mean cosine {:.6}",
                qm.mse,
                qm.max_error,
                qm.snr_db,
                qm.psnr_db,
                qm.compression_ratio,
                qm.mean_cosine
            );
        }
    }
    Ok(())
}

/// Decodes scalar or product codes on `ctx`.
fn decode_codes(ctx: &Context, q: &Quantizer, codes: &Codes) -> Result<Matrix> {
    Ok(match (q, codes) {
        (Quantizer::Scalar(sq), Codes::Scalar(c)) => sq.decode(ctx, c)?,
        (Quantizer::Product(pq), Codes::Product(c)) => pq.decode(ctx, c)?,
        _ => bail!("binary codes have no decode (a bit keeps only the side of the threshold)"),
    })
}

fn decode(a: DecodeArgs) -> Result<()> {
    let q = load_quantizer(&a.quantizer)?;
    if matches!(q, Quantizer::Binary(_)) {
        bail!("binary codes have no decode (a bit keeps only the side of the threshold)");
    }
    let (ctx, _) = make_context(a.device.as_deref())?;
    let codes = read_codes(&ctx, &q, &a.codes)?;
    let mut out = PendingFile::create(&a.out)?;
    let started = Instant::now();
    let back = decode_codes(&ctx, &q, &codes)?;
    let seconds = started.elapsed().as_secs_f64();
    out.write(|w| npy::write_f32(w, back.rows(), back.dim(), back.as_slice()))?;
    commit(vec![out])?;
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "decode: {} codes ({}) -> {} x {} float32, device {}: {seconds:.3} s",
            codes.rows(),
            kind_name(&q),
            back.rows(),
            back.dim(),
            ctx.device(),
        );
    }
    Ok(())
}

/// Query rows: float32 vectors, or (binary quantizer) uint8 packed codes.
enum Queries {
    F32(Matrix),
    Binary(BinaryMatrix),
}

fn read_queries(q: &Quantizer, path: &Path) -> Result<Queries> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if let (Quantizer::Binary(bq), true) = (q, is_npy) {
        let (rows, cols, elements) = npy::read_elements(path)
            .with_context(|| format!("cannot read queries file '{}'", path.display()))?;
        return match elements {
            npy::Elements::U8(bytes) => {
                let want = bq.dim().div_ceil(8);
                ensure!(
                    cols == want,
                    "queries file '{}' holds uint8 codes of {cols} bytes per row; this binary \
                     quantizer of {} bits needs {want}",
                    path.display(),
                    bq.dim()
                );
                Ok(Queries::Binary(BinaryMatrix::from_packed_bytes(
                    &bytes,
                    rows,
                    bq.dim(),
                )?))
            }
            npy::Elements::F32(data) => Ok(Queries::F32(Matrix::new(data, cols)?)),
        };
    }
    Ok(Queries::F32(read_f32(path, "queries")?))
}

/// The search metric (codes) and the re-rank metric (binary only).
fn search_metrics(q: &Quantizer, metric: Option<&str>, rerank: bool) -> Result<Metric> {
    let m: Metric = match metric {
        Some(s) => s.parse()?,
        None => Metric::L2,
    };
    let m = m.canonical();
    let binary = matches!(q, Quantizer::Binary(_));
    if binary && !rerank {
        ensure!(
            metric.is_none() || m == Metric::Hamming,
            "binary codes rank by hamming; --metric {m} applies only with --rerank (l2 or ip)"
        );
        return Ok(Metric::Hamming);
    }
    ensure!(
        m == Metric::L2 || m == Metric::InnerProduct,
        "--metric {m} is not supported over {} codes (use l2 or ip)",
        kind_name(q)
    );
    Ok(m)
}

fn search(a: SearchArgs) -> Result<()> {
    check_k(a.k)?;
    let q = load_quantizer(&a.quantizer)?;
    ensure!(
        a.shortlist.is_none() || a.rerank.is_some(),
        "--shortlist applies only with --rerank"
    );
    let metric = search_metrics(&q, a.metric.as_deref(), a.rerank.is_some())?;
    if let Some(d) = &a.distances {
        ensure!(
            resolve(&a.ids)? != resolve(d)?,
            "--ids and --distances name the same file '{}'",
            a.ids.display()
        );
    }
    let shortlist = match a.shortlist {
        Some(s) => s,
        None => a.k.checked_mul(10).context("k is too large")?,
    };
    let (ctx, _) = make_context(a.device.as_deref())?;
    let codes = read_codes(&ctx, &q, &a.codes)?;
    let queries = read_queries(&q, &a.queries)?;
    let base = a
        .rerank
        .as_deref()
        .map(|p| read_f32(p, "re-rank"))
        .transpose()?;
    if let Some(b) = &base {
        ensure!(
            b.rows() == codes.rows(),
            "re-rank file has {} rows but the codes have {}; give the vectors the codes were \
             encoded from",
            b.rows(),
            codes.rows()
        );
    }
    let mut outputs = vec![PendingFile::create(&a.ids)?];
    if let Some(d) = &a.distances {
        outputs.push(PendingFile::create(d)?);
    }
    let rerank = base.as_ref().map(|b| Rerank::new(b, shortlist));
    let started = Instant::now();
    let nn: Neighbors = match (&q, &codes, &queries) {
        (Quantizer::Scalar(sq), Codes::Scalar(c), Queries::F32(x)) => {
            sq.search(&ctx, x, c, a.k, metric, rerank)?
        }
        (Quantizer::Product(pq), Codes::Product(c), Queries::F32(x)) => {
            pq.search(&ctx, x, c, a.k, metric, rerank)?
        }
        (Quantizer::Binary(bq), Codes::Binary(c), x) => {
            let input: Input<'_> = match x {
                Queries::F32(m) => m.into(),
                Queries::Binary(b) => b.into(),
            };
            bq.search(&ctx, input, c, a.k, rerank.map(|r| (r, metric)))?
        }
        _ => bail!("queries must be float32 vectors for scalar and product codes"),
    };
    let seconds = started.elapsed().as_secs_f64();
    let nq = nn.ids().len() / a.k;
    let (ids, dists) = nn.into_parts();
    let ids: Vec<i64> = ids
        .iter()
        .map(|&id| if id == MISSING_ID { -1 } else { id as i64 })
        .collect();
    outputs[0].write(|w| npy::write_i64(w, nq, a.k, &ids))?;
    if let Some(out) = outputs.get_mut(1) {
        out.write(|w| npy::write_f32(w, nq, a.k, &dists))?;
    }
    commit(outputs)?;
    if !a.quiet {
        let reranked = match &base {
            Some(_) => format!(", re-ranked {shortlist} per query by {metric}"),
            None => String::new(),
        };
        let rank_metric = if matches!(q, Quantizer::Binary(_)) {
            Metric::Hamming
        } else {
            metric
        };
        let _ = writeln!(
            std::io::stderr(),
            "search: {nq} queries x {} codes ({}), k={}, {rank_metric}{reranked}, device {}: \
             {seconds:.3} s, {:.0} queries/s",
            codes.rows(),
            kind_name(&q),
            a.k,
            ctx.device(),
            nq as f64 / seconds.max(1e-9),
        );
    }
    Ok(())
}

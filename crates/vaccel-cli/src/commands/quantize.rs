//! `vaccel quantize train|encode|decode|search`: trains a scalar, binary or
//! product quantizer on vectors in a file and saves it, encodes vectors to
//! a `uint8` code file, decodes codes back to `float32` (binary codes to
//! 0 and 1), and searches codes.
//!
//! Code files are 2-D `uint8` `.npy` arrays, one row per vector: scalar
//! codes (int4 two per byte, low nibble first) followed, for per-vector
//! scopes, by the row's scale and offset as little-endian `float32`; binary
//! codes bit-packed as `numpy.packbits(bitorder="little")` writes them;
//! product codes bit-packed least significant bit first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, ensure, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use vector_accelerate::cluster::KMeansProgress;
use vector_accelerate::quantize::{
    BinaryOptions, BinaryQuantizer, BinaryThreshold, Codec, Codes, PqOptions, ProductQuantizer,
    Quality, Quantizer, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope, SearchOptions,
};
use vector_accelerate::{BinaryMatrix, Context, Input, Matrix, Metric, Neighbors, MISSING_ID};

use super::args::{check_k, make_context};
use crate::io::output::{commit, resolve, PendingFile};
use crate::io::{npy, read_matrix, Data};
use crate::progress::Progress;

/// The `vaccel quantize` sub-commands.
#[derive(Debug, Subcommand)]
pub enum QuantizeCommand {
    /// Train a quantizer on vectors and save it (alias: fit).
    #[command(alias = "fit")]
    Train(TrainArgs),
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

/// Arguments of `vaccel quantize train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Quantizer kind.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Training vectors: float32 .npy, .fvecs, .bvecs, .fbin, .u8bin, .i8bin
    /// or FILE.hdf5#DATASET.
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
    /// A quantizer saved by `vaccel quantize train`.
    #[arg(long, value_name = "FILE")]
    quantizer: PathBuf,
    /// Vectors to encode: float32 .npy, .fvecs, .bvecs, .fbin, .u8bin, .i8bin
    /// or FILE.hdf5#DATASET.
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
    /// A quantizer saved by `vaccel quantize train`.
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
    /// A quantizer saved by `vaccel quantize train`.
    #[arg(long, value_name = "FILE")]
    quantizer: PathBuf,
    /// Codes written by `vaccel quantize encode` with that quantizer.
    #[arg(long, value_name = "FILE")]
    codes: PathBuf,
    /// Query vectors: float32 (.npy, .fvecs, .bvecs, .fbin, .u8bin, .i8bin,
    /// FILE.hdf5#DATASET); for a binary quantizer also uint8 .npy codes.
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
        QuantizeCommand::Train(a) => train(a),
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

// Long by design: each kind's options are assembled from its flags in one place.
fn train(a: TrainArgs) -> Result<()> {
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
            let sq = ScalarQuantizer::train(&ctx, &data, &o)?;
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
            let o = BinaryOptions::default().with_threshold(t);
            (
                Quantizer::Binary(BinaryQuantizer::train(&ctx, &data, &o)?),
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
            "train: {} on {} x {} float32, device {}: {seconds:.3} s; {what}; saved {} bytes",
            q.kind_name(),
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
    let bar = Arc::new(Progress::new(o.iterations as u64, "iterations", show));
    let last = Arc::new(Mutex::new(None));
    let (seen, ticks) = (last.clone(), bar.clone());
    let o = o.with_progress(move |p| {
        ticks.inc(1);
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(*p);
    });
    let pq = ProductQuantizer::train(ctx, data, &o)?;
    let last = *last.lock().unwrap_or_else(|e| e.into_inner());
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

/// Reads a float32 matrix (any format of [`read_matrix`]).
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

/// Reads a code file written for `q` and places it on `ctx`'s device.
fn read_codes(ctx: &Context, q: &Quantizer, path: &Path) -> Result<Codes> {
    let (_, cols, bytes) = npy::read_u8(path)
        .with_context(|| format!("cannot read codes file '{}'", path.display()))?;
    let want = q.code_size();
    ensure!(
        cols == want,
        "codes file '{}' has rows of {cols} bytes; this {} quantizer of dimension {} writes \
         rows of {want} bytes",
        path.display(),
        q.kind_name(),
        q.dim()
    );
    Ok(q.codes_from_bytes(ctx, &bytes)?)
}

fn encode(a: EncodeArgs) -> Result<()> {
    let q = load_quantizer(&a.quantizer)?;
    if a.quality && matches!(q, Quantizer::Binary(_)) {
        bail!("--quality needs scalar or product codes; binary codes decode to 0 and 1, not to the vectors");
    }
    let (ctx, _) = make_context(a.device.as_deref())?;
    let data = read_f32(&a.data, "data")?;
    let mut out = PendingFile::create(&a.out)?;
    let started = Instant::now();
    let codes = q.encode(&ctx, &data)?;
    let bytes = codes.to_bytes()?;
    let seconds = started.elapsed().as_secs_f64();
    let quality = if a.quality {
        let back = q.decode(&ctx, &codes)?.into_host()?;
        Some(Quality::measure(data.view(), back.view(), bytes.len())?)
    } else {
        None
    };
    let (rows, bpr) = (data.rows(), q.code_size());
    out.write(|w| npy::write_u8(w, rows, bpr, &bytes))?;
    commit(vec![out])?;
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "encode: {rows} x {} float32 -> {rows} x {bpr} bytes ({}, {:.1}x smaller), device {}: \
             {seconds:.3} s",
            data.dim(),
            q.kind_name(),
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

fn decode(a: DecodeArgs) -> Result<()> {
    let q = load_quantizer(&a.quantizer)?;
    let (ctx, _) = make_context(a.device.as_deref())?;
    let codes = read_codes(&ctx, &q, &a.codes)?;
    let mut out = PendingFile::create(&a.out)?;
    let started = Instant::now();
    let back = q.decode(&ctx, &codes)?.into_host()?;
    let seconds = started.elapsed().as_secs_f64();
    out.write(|w| npy::write_f32(w, back.rows(), back.dim(), back.as_slice()))?;
    commit(vec![out])?;
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "decode: {} codes ({}) -> {} x {} float32, device {}: {seconds:.3} s",
            codes.rows(),
            q.kind_name(),
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
        q.kind_name()
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
    let mut opts = SearchOptions::default();
    if metric != Metric::Hamming {
        opts = opts.with_metric(metric);
    }
    if let Some(b) = &base {
        opts = opts.with_rerank(b, shortlist);
    }
    let input: Input<'_> = match &queries {
        Queries::F32(m) => m.into(),
        Queries::Binary(b) => b.into(),
    };
    let started = Instant::now();
    let nn: Neighbors = q.search(&ctx, input, &codes, a.k, &opts)?;
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
            q.kind_name(),
            a.k,
            ctx.device(),
            nq as f64 / seconds.max(1e-9),
        );
    }
    Ok(())
}

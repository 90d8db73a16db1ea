//! [`Codec`]: what every quantizer offers (train, encode, decode, search
//! over the codes, code size, save and load), and [`Quantizer`] as one codec
//! whose kind is chosen at run time.

use std::path::Path;

use super::file::{read_quantizer_file, write_quantizer_file};
use crate::core::device::Device;
use crate::core::error::{Error, Result};
use crate::core::matrix::BinaryMatrix;
use crate::core::metric::Metric;
use crate::core::neighbors::Neighbors;
use crate::core::quantize::{
    BinaryOptions, BinaryQuantizer, PqOptions, ProductQuantizer, Quantizer, ScalarOptions,
    ScalarQuantizer, ScalarScope,
};
use crate::runtime::codes::{PqCodes, ScalarCodes};
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// Re-ranking of a search over codes: the best `shortlist` candidates by
/// code distance are re-scored exactly against `base` (the original `f32`
/// rows, in the same order as the codes; host or resident), and the best
/// `k` of them returned with their exact distances.
#[derive(Debug, Clone, Copy)]
pub struct Rerank<'a> {
    /// The original vectors.
    pub base: Input<'a>,
    /// Candidates re-scored per query (at least `k`).
    pub shortlist: usize,
}

impl<'a> Rerank<'a> {
    /// Re-ranks `shortlist` candidates per query against `base`.
    pub fn new(base: impl Into<Input<'a>>, shortlist: usize) -> Self {
        Self {
            base: base.into(),
            shortlist,
        }
    }
}

/// Options of a search over codes, made with [`Default`] and the `with_*`
/// setters.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SearchOptions<'a> {
    /// The distance codes are ranked by: `l2` (smallest first, the
    /// default) or `ip` (largest first). Binary codes are ranked by Hamming
    /// distance; the metric then orders the re-rank.
    pub metric: Metric,
    /// Exact re-ranking of a shortlist against the original vectors.
    pub rerank: Option<Rerank<'a>>,
}

impl Default for SearchOptions<'_> {
    fn default() -> Self {
        Self {
            metric: Metric::L2,
            rerank: None,
        }
    }
}

impl<'a> SearchOptions<'a> {
    /// Sets the metric.
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }
    /// Re-scores the best `shortlist` candidates of each query exactly
    /// against `base` (the original rows, in the codes' order).
    pub fn with_rerank(mut self, base: impl Into<Input<'a>>, shortlist: usize) -> Self {
        self.rerank = Some(Rerank::new(base, shortlist));
        self
    }
}

/// A vector codec: a quantizer trained on data that turns rows into compact
/// codes on the context's device, reconstructs them, and searches them.
/// Implemented by [`ScalarQuantizer`], [`BinaryQuantizer`],
/// [`ProductQuantizer`] and by [`Quantizer`], any of the three.
///
/// ```
/// use vector_accelerate::quantize::{Codec, ScalarOptions, ScalarQuantizer, SearchOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new((0..512).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
/// let sq = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int8())?;
/// let codes = sq.encode(&ctx, &x)?;
/// assert_eq!(sq.code_size(), 8);
/// let hits = sq.search(&ctx, &x, &codes, 3, &SearchOptions::default().with_rerank(&x, 10))?;
/// assert_eq!(hits.row_ids(5)[0], 5);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub trait Codec: Sized {
    /// Training options.
    type Options;
    /// The codes of a set of rows.
    type Codes;

    /// Trains a codec on the rows of `data`.
    fn train<'a>(ctx: &Context, data: impl Into<Input<'a>>, opts: &Self::Options) -> Result<Self>;
    /// Dimension of the vectors.
    fn dim(&self) -> usize;
    /// Bytes of one vector's code (per-vector parameters included).
    fn code_size(&self) -> usize;
    /// Codes of the rows of `data`, on the context's device.
    fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<Self::Codes>;
    /// The rows the codes stand for, on the context's device.
    fn decode(&self, ctx: &Context, codes: &Self::Codes) -> Result<DeviceMatrix>;
    /// The `k` nearest codes of each query (ties by the smaller index).
    fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &Self::Codes,
        k: usize,
        opts: &SearchOptions<'_>,
    ) -> Result<Neighbors>;
    /// The codec as a [`Quantizer`] (the form files hold).
    fn to_quantizer(&self) -> Quantizer;
    /// The codec of a [`Quantizer`]; an error for another kind.
    fn from_quantizer(q: Quantizer) -> Result<Self>;

    /// Writes the codec to a file (versioned, checksummed; written to a
    /// temporary name, then renamed).
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_quantizer_file(path.as_ref(), &self.to_quantizer().to_bytes())
    }
    /// Reads a codec written by [`save`](Codec::save); a truncated,
    /// damaged or other-kind file is an error.
    fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_quantizer(read_quantizer_file(path.as_ref())?)
    }
}

/// Training options of a [`Quantizer`]: the kind and its options.
#[derive(Debug, Clone)]
pub enum QuantizerOptions {
    /// Scalar quantization.
    Scalar(ScalarOptions),
    /// Binary quantization.
    Binary(BinaryOptions),
    /// Product quantization.
    Product(PqOptions),
}

/// Codes of any kind, on the context's device.
#[derive(Debug)]
pub enum Codes {
    /// Scalar codes.
    Scalar(ScalarCodes),
    /// Bit-packed binary codes.
    Binary(DeviceMatrix),
    /// Product codes.
    Product(PqCodes),
}

impl Codes {
    /// Number of coded rows.
    pub fn rows(&self) -> usize {
        match self {
            Codes::Scalar(c) => c.rows(),
            Codes::Binary(c) => c.rows(),
            Codes::Product(c) => c.rows(),
        }
    }

    /// Where the codes live.
    pub fn device(&self) -> Device {
        match self {
            Codes::Scalar(c) => c.device(),
            Codes::Binary(c) => c.device(),
            Codes::Product(c) => c.device(),
        }
    }

    /// The codes as bytes, row after row (the code size each): a code file's
    /// layout ([`Quantizer::codes_from_bytes`] reads it back).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        match self {
            Codes::Scalar(c) => c.to_row_bytes(),
            Codes::Product(c) => Ok(c.to_host()?.as_bytes().unwrap_or_default().to_vec()),
            Codes::Binary(c) => Ok(c.to_host_binary()?.to_packed_bytes()),
        }
    }
}

impl Quantizer {
    /// Codes read from bytes in [`Codes::to_bytes`]' layout, placed on the
    /// context's device; a length that is not a whole number of codes is an
    /// error.
    pub fn codes_from_bytes(&self, ctx: &Context, bytes: &[u8]) -> Result<Codes> {
        let size = self.code_size();
        if !bytes.len().is_multiple_of(size) {
            return Err(Error::RaggedData {
                what: "code bytes",
                len: bytes.len(),
                dim: size,
            });
        }
        let rows = bytes.len() / size;
        Ok(match self {
            Quantizer::Scalar(sq) => {
                let o = sq.options();
                let per_vector = o.scope == ScalarScope::PerVector;
                let c = ScalarCodes::from_row_bytes(bytes, sq.dim(), o.bits, o.range, per_vector)?;
                Codes::Scalar(if ctx.is_cuda() { c.copy_to(ctx)? } else { c })
            }
            Quantizer::Binary(bq) => {
                let b = BinaryMatrix::from_packed_bytes(bytes, rows, bq.dim())?;
                Codes::Binary(ctx.upload(&b)?)
            }
            Quantizer::Product(pq) => {
                let c = PqCodes::from_bytes(bytes.to_vec(), pq.m(), pq.nbits())?;
                Codes::Product(if ctx.is_cuda() { c.copy_to(ctx)? } else { c })
            }
        })
    }
}

/// The error for codes of another kind than the quantizer's.
fn other_kind(q: &Quantizer, codes: &Codes) -> Error {
    let kind = match codes {
        Codes::Scalar(_) => "scalar codes",
        Codes::Binary(_) => "binary codes",
        Codes::Product(_) => "product codes",
    };
    Error::invalid(
        "codes",
        kind,
        format!("codes made by a {} quantizer", q.kind_name()),
    )
}

impl Codec for Quantizer {
    type Options = QuantizerOptions;
    type Codes = Codes;

    fn train<'a>(ctx: &Context, data: impl Into<Input<'a>>, opts: &Self::Options) -> Result<Self> {
        let data = data.into();
        Ok(match opts {
            QuantizerOptions::Scalar(o) => Quantizer::Scalar(ScalarQuantizer::train(ctx, data, o)?),
            QuantizerOptions::Binary(o) => Quantizer::Binary(BinaryQuantizer::train(ctx, data, o)?),
            QuantizerOptions::Product(o) => {
                Quantizer::Product(ProductQuantizer::train(ctx, data, o)?)
            }
        })
    }

    fn dim(&self) -> usize {
        match self {
            Quantizer::Scalar(q) => q.dim(),
            Quantizer::Binary(q) => q.dim(),
            Quantizer::Product(q) => q.dim(),
        }
    }

    fn code_size(&self) -> usize {
        match self {
            Quantizer::Scalar(q) => q.code_size(),
            Quantizer::Binary(q) => q.code_size(),
            Quantizer::Product(q) => q.code_size(),
        }
    }

    fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<Codes> {
        Ok(match self {
            Quantizer::Scalar(q) => Codes::Scalar(q.encode(ctx, data)?),
            Quantizer::Binary(q) => Codes::Binary(q.encode(ctx, data)?),
            Quantizer::Product(q) => Codes::Product(q.encode(ctx, data)?),
        })
    }

    fn decode(&self, ctx: &Context, codes: &Codes) -> Result<DeviceMatrix> {
        match (self, codes) {
            (Quantizer::Scalar(q), Codes::Scalar(c)) => q.decode(ctx, c),
            (Quantizer::Binary(q), Codes::Binary(c)) => q.decode(ctx, c),
            (Quantizer::Product(q), Codes::Product(c)) => q.decode(ctx, c),
            _ => Err(other_kind(self, codes)),
        }
    }

    fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &Codes,
        k: usize,
        opts: &SearchOptions<'_>,
    ) -> Result<Neighbors> {
        match (self, codes) {
            (Quantizer::Scalar(q), Codes::Scalar(c)) => q.search(ctx, queries, c, k, opts),
            (Quantizer::Binary(q), Codes::Binary(c)) => q.search(ctx, queries, c, k, opts),
            (Quantizer::Product(q), Codes::Product(c)) => q.search(ctx, queries, c, k, opts),
            _ => Err(other_kind(self, codes)),
        }
    }

    fn to_quantizer(&self) -> Quantizer {
        self.clone()
    }

    fn from_quantizer(q: Quantizer) -> Result<Self> {
        Ok(q)
    }
}

/// The error for a file of another quantizer kind.
pub(crate) fn wrong_kind(q: &Quantizer, want: &str) -> Error {
    Error::invalid(
        "quantizer file",
        q.kind_name(),
        format!("expected a {want} quantizer"),
    )
}

//! Coded inverted lists (`IVF<n>,SQ8`, `SQ4`, `PQ<m>x<b>`): each vector is
//! stored as the code of its residual from its list's centroid (as FAISS
//! does), by the crate's scalar or product quantizer. Cosine indexes code
//! (and keep, for refining) unit vectors, so every coded comparison is a
//! squared L2 distance or an inner product.

use super::factory::Encoding;
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::{Distance, Metric};
use crate::core::quantize::{
    layout, PqOptions, ProductQuantizer, Quantizer, ScalarBits, ScalarOptions, ScalarQuantizer,
    ScalarRange,
};
use crate::ops::quantize::Codec;
use crate::runtime::codes::{PqCodes, ScalarCodes};
use crate::runtime::context::Context;

/// Training rows of a product quantizer at most (256 per centroid).
const PQ_TRAIN_POINTS: usize = 65_536;
/// k-means iterations of a product quantizer.
const PQ_ITERATIONS: usize = 20;
/// Seed of a product quantizer's k-means.
const PQ_SEED: u64 = 0x9e37_79b9;

/// The quantizer of coded lists.
#[derive(Debug, Clone)]
pub(crate) enum ListCodec {
    /// Per-dimension int8 or int4 codes over each dimension's range.
    Sq(ScalarQuantizer),
    /// Product codes.
    Pq(ProductQuantizer),
}

/// How a coded index compares vectors: `base` (squared L2 or inner
/// product) on the stored vectors, unit vectors for the cosine metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeSpace {
    /// [`Metric::L2`] or [`Metric::InnerProduct`].
    pub base: Metric,
    /// Vectors (and queries, where it matters) scaled to unit length.
    pub normalize: bool,
}

impl CodeSpace {
    /// The space of `dist`, or an error for metrics coded lists do not
    /// serve.
    pub fn of(dist: &Distance) -> Result<Self> {
        let unsupported = |why: &str| Error::UnsupportedMetric {
            metric: dist.metric.to_string(),
            context: format!("for an index with SQ or PQ lists ({why})"),
        };
        if dist.weights.is_some() {
            return Err(unsupported("weights are not supported"));
        }
        let (base, normalize) = match dist.metric {
            Metric::L2 | Metric::Euclidean => (Metric::L2, false),
            Metric::InnerProduct => (Metric::InnerProduct, false),
            Metric::Cosine | Metric::CosineSimilarity => (Metric::InnerProduct, true),
            _ => {
                return Err(unsupported(
                    "use l2, euclidean, ip, cosine or cosine_similarity",
                ))
            }
        };
        Ok(Self { base, normalize })
    }

    /// `rows`, scaled to unit length when the space asks for it (zero rows
    /// stay zero).
    pub fn prepare(&self, rows: MatrixView<'_>) -> Matrix {
        let dim = rows.dim();
        let mut v = rows.as_slice().to_vec();
        if self.normalize {
            v.chunks_exact_mut(dim).for_each(unit);
        }
        Matrix::new(v, dim).expect("rows of dim values")
    }

    /// The residual of each prepared row from the centroid of its list.
    pub fn residuals(&self, rows: MatrixView<'_>, lists: &[usize], centroids: &Matrix) -> Matrix {
        let mut m = self.prepare(rows);
        let dim = m.dim();
        for (r, &l) in m.as_mut_slice().chunks_exact_mut(dim).zip(lists) {
            r.iter_mut()
                .zip(centroids.row(l))
                .for_each(|(v, c)| *v -= c);
        }
        m
    }
}

/// Scales a vector to unit length (a zero vector stays zero).
fn unit(r: &mut [f32]) {
    let n = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    if n > 0.0 {
        r.iter_mut().for_each(|v| *v = (*v as f64 / n) as f32);
    }
}

/// Checks at creation that an encoding fits the dimension.
pub(crate) fn check_encoding(encoding: Encoding, dim: usize) -> Result<()> {
    match encoding {
        Encoding::Pq { m, .. } if m > 0 && !dim.is_multiple_of(m) => Err(Error::invalid(
            "PQ sub-quantizers",
            m,
            format!("must divide the dimension {dim}"),
        )),
        Encoding::Pq { m, nbits } => layout(dim, m, nbits, false).map(|_| ()),
        _ => Ok(()),
    }
}

impl ListCodec {
    /// Trains the codec of `encoding` on residuals.
    pub fn train(ctx: &Context, encoding: Encoding, residuals: MatrixView<'_>) -> Result<Self> {
        match encoding {
            Encoding::Sq(bits) => {
                let opts = match bits {
                    4 => ScalarOptions::int4(),
                    _ => ScalarOptions::int8(),
                }
                .with_range(ScalarRange::Asymmetric);
                Ok(Self::Sq(ScalarQuantizer::train(ctx, residuals, &opts)?))
            }
            Encoding::Pq { m, nbits } => {
                let opts = PqOptions::new(m, nbits)
                    .with_iterations(PQ_ITERATIONS)
                    .with_seed(PQ_SEED)
                    .with_max_training_points(PQ_TRAIN_POINTS);
                Ok(Self::Pq(ProductQuantizer::train(ctx, residuals, &opts)?))
            }
            Encoding::Flat => Err(Error::invalid(
                "list encoding",
                "Flat",
                "exact lists have no codec",
            )),
        }
    }

    /// Code bytes of one row.
    pub fn row_bytes(&self) -> usize {
        match self {
            Self::Sq(s) => s.code_size(),
            Self::Pq(p) => p.code_size(),
        }
    }

    /// The codes of `residuals`, row after row.
    pub fn encode(&self, ctx: &Context, residuals: MatrixView<'_>) -> Result<Vec<u8>> {
        match self {
            Self::Sq(s) => s.encode(ctx, residuals)?.to_row_bytes(),
            Self::Pq(p) => p.encode(ctx, residuals)?.bytes.to_vec(),
        }
    }

    /// The residuals coded by `codes` (whole rows), on the host.
    pub fn decode(&self, codes: &[u8]) -> Result<Matrix> {
        let cpu = Context::cpu();
        let m = match self {
            Self::Sq(s) => {
                let c = ScalarCodes::from_row_bytes(
                    codes,
                    s.dim(),
                    s.options().bits,
                    ScalarRange::Asymmetric,
                    false,
                )?;
                s.decode(&cpu, &c)?
            }
            Self::Pq(p) => {
                let c = PqCodes::from_bytes(codes.to_vec(), p.m(), p.nbits())?;
                p.decode(&cpu, &c)?
            }
        };
        m.into_host()
    }

    /// The codec as a [`Quantizer`] (saved with the index).
    pub fn to_quantizer(&self) -> Quantizer {
        match self {
            Self::Sq(s) => s.to_quantizer(),
            Self::Pq(p) => p.to_quantizer(),
        }
    }

    /// The codec of `encoding` from a saved quantizer.
    pub fn from_quantizer(q: Quantizer, encoding: Encoding, dim: usize) -> Result<Self> {
        let codec = match (encoding, q) {
            (Encoding::Sq(b), Quantizer::Scalar(s))
                if s.options().bits == bits_of(b)
                    && s.options().range == ScalarRange::Asymmetric =>
            {
                Self::Sq(s)
            }
            (Encoding::Pq { m, nbits }, Quantizer::Product(p))
                if p.m() == m && p.nbits() == nbits =>
            {
                Self::Pq(p)
            }
            (e, q) => {
                return Err(Error::invalid(
                    "list codec",
                    q.kind_name(),
                    format!("does not match the list encoding {e:?}"),
                ))
            }
        };
        let d = match &codec {
            Self::Sq(s) => s.dim(),
            Self::Pq(p) => p.dim(),
        };
        if d != dim {
            return Err(Error::DimensionMismatch {
                what: "list codec dimension vs index dimension",
                expected: dim,
                got: d,
            });
        }
        Ok(codec)
    }
}

fn bits_of(b: u8) -> ScalarBits {
    if b == 4 {
        ScalarBits::Int4
    } else {
        ScalarBits::Int8
    }
}

//! Binary quantization: one bit per dimension, `x > threshold`, packed into
//! 64-bit words; search by Hamming distance with an optional re-rank.

use super::inputs::{check_f32, view_or_download};
use super::rerank::{rerank_exact, shortlist_len, Rerank};
use crate::core::error::{Error, Result};
use crate::core::metric::Metric;
use crate::core::neighbors::Neighbors;
use crate::core::quantize::code_metric;
use crate::ops::knn::knn;
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;
use crate::{cpu, cuda};

/// Where each dimension's bit flips.
#[derive(Debug, Clone, PartialEq)]
pub enum BinaryThreshold {
    /// `x > 0`.
    Zero,
    /// `x > mean` of the dimension over the training data.
    Mean,
    /// `x > t[j]` for these thresholds (one per dimension).
    Given(Vec<f32>),
}

/// A fitted binary quantizer.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryQuantizer {
    pub(crate) dim: usize,
    pub(crate) thresholds: Vec<f32>,
}

impl BinaryQuantizer {
    /// Fits thresholds: zeros, the per-dimension means of `data` (finite
    /// values only; a dimension with none gets 0), or the given ones.
    pub fn fit<'a>(
        ctx: &Context,
        data: impl Into<Input<'a>>,
        threshold: BinaryThreshold,
    ) -> Result<Self> {
        let data = data.into();
        check_f32(&data, "binary quantizer training data")?;
        let dim = data.dim();
        let thresholds = match threshold {
            BinaryThreshold::Zero => vec![0.0; dim],
            BinaryThreshold::Given(t) => {
                if t.len() != dim {
                    return Err(Error::DimensionMismatch {
                        what: "thresholds vs dimension",
                        expected: dim,
                        got: t.len(),
                    });
                }
                if let Some(v) = t.iter().find(|v| v.is_nan()) {
                    return Err(Error::invalid("threshold", v, "thresholds must not be NaN"));
                }
                t
            }
            BinaryThreshold::Mean => match ctx.engine() {
                Engine::Cuda(dev) => cuda::quantize::column_means(dev, &data)?,
                Engine::Cpu => {
                    let mut hold = None;
                    cpu::quantize::column_means(view_or_download(&data, &mut hold)?)
                }
            },
        };
        Ok(Self { dim, thresholds })
    }

    /// A quantizer with these thresholds.
    pub fn with_thresholds(thresholds: Vec<f32>) -> Result<Self> {
        if thresholds.is_empty() {
            return Err(Error::ZeroDimension {
                what: "binary thresholds",
            });
        }
        if let Some(v) = thresholds.iter().find(|v| v.is_nan()) {
            return Err(Error::invalid("threshold", v, "thresholds must not be NaN"));
        }
        Ok(Self {
            dim: thresholds.len(),
            thresholds,
        })
    }

    /// Dimension (bits per code).
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The thresholds.
    pub fn thresholds(&self) -> &[f32] {
        &self.thresholds
    }

    /// Encodes rows into bit-packed codes on `ctx`'s device (bit `j` set
    /// when `x[j] > t[j]`; NaN gives 0). The codes are a binary matrix every
    /// operation accepts (Hamming k-NN, distances).
    pub fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
        let data = data.into();
        check_f32(&data, "rows to encode")?;
        if data.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                what: "rows to encode dimension",
                expected: self.dim,
                got: data.dim(),
            });
        }
        match ctx.engine() {
            Engine::Cuda(dev) => cuda::quantize::bq_encode(dev, &self.thresholds, &data),
            Engine::Cpu => {
                let mut hold = None;
                let v = view_or_download(&data, &mut hold)?;
                let b = cpu::quantize::bq_encode(&self.thresholds, v);
                DeviceMatrix::upload(ctx, Input::Binary(b.view()))
            }
        }
    }

    /// The `k` codes nearest to each query by Hamming distance (queries as
    /// `f32` rows, encoded with this quantizer, or as binary codes), ties
    /// by the smaller index; with `rerank`, the shortlist is re-scored with
    /// the original vectors by `l2` or `ip` (queries must then be `f32`).
    pub fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &DeviceMatrix,
        k: usize,
        rerank: Option<(Rerank<'_>, Metric)>,
    ) -> Result<Neighbors> {
        let q = queries.into();
        if !codes.is_binary() || codes.dim() != self.dim {
            return Err(Error::invalid(
                "codes",
                format!("{} rows of dimension {}", codes.rows(), codes.dim()),
                format!("expected binary codes of {} bits", self.dim),
            ));
        }
        let own;
        let qc: Input<'_> = if q.is_binary() {
            if rerank.is_some() {
                return Err(Error::invalid(
                    "queries",
                    "binary codes",
                    "re-ranking needs f32 queries",
                ));
            }
            q
        } else {
            own = self.encode(ctx, q)?;
            Input::Resident(&own)
        };
        let kk = shortlist_len(k, rerank.as_ref().map(|r| &r.0))?;
        let nn = knn(ctx, qc, codes, kk, Metric::Hamming)?;
        match rerank {
            Some((r, metric)) => {
                let metric = code_metric(metric)?;
                rerank_exact(ctx, &q, &r.base, &nn, k, metric, codes.rows())
            }
            None => Ok(nn),
        }
    }
}

//! Binary quantization: one bit per dimension, `x > threshold`, packed into
//! 64-bit words; search by Hamming distance with an optional re-rank.

use super::codec::{wrong_kind, Codec, SearchOptions};
use super::inputs::check_f32;
use super::rerank::{finish, shortlist_len};
use crate::core::error::{Error, Result};
use crate::core::matrix::Matrix;
use crate::core::metric::Metric;
use crate::core::neighbors::Neighbors;
use crate::core::quantize::{BinaryOptions, BinaryQuantizer, BinaryThreshold, Quantizer};
use crate::ops::knn::knn;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

impl Codec for BinaryQuantizer {
    type Options = BinaryOptions;
    type Codes = DeviceMatrix;

    /// Thresholds: zeros, the per-dimension means of `data` (finite values
    /// only; a dimension with none gets 0), or the given ones.
    fn train<'a>(ctx: &Context, data: impl Into<Input<'a>>, opts: &BinaryOptions) -> Result<Self> {
        let data = data.into();
        check_f32(&data, "binary quantizer training data")?;
        let dim = data.dim();
        let thresholds = match &opts.threshold {
            BinaryThreshold::Zero => vec![0.0; dim],
            BinaryThreshold::Mean => ctx.backend().column_means(&data)?,
            BinaryThreshold::Given(t) => {
                if t.len() != dim {
                    return Err(Error::DimensionMismatch {
                        what: "thresholds vs dimension",
                        expected: dim,
                        got: t.len(),
                    });
                }
                t.clone()
            }
        };
        Self::with_thresholds(thresholds)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// One bit per dimension, in whole bytes.
    fn code_size(&self) -> usize {
        self.dim.div_ceil(8)
    }

    /// Bit-packed codes (bit `j` set when `x[j] > t[j]`; NaN gives 0): a
    /// binary matrix every operation accepts (Hamming k-NN, distances).
    fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
        let data = data.into();
        check_f32(&data, "rows to encode")?;
        if data.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                what: "rows to encode dimension",
                expected: self.dim,
                got: data.dim(),
            });
        }
        ctx.backend().bq_encode(&self.thresholds, &data)
    }

    /// Rows of 1.0 where a bit is set and 0.0 where it is not (the side of
    /// the threshold each value fell on).
    fn decode(&self, ctx: &Context, codes: &DeviceMatrix) -> Result<DeviceMatrix> {
        self.check_codes(ctx, codes)?;
        let bits = codes.to_host_binary()?;
        let mut out = Vec::with_capacity(bits.rows() * self.dim);
        for r in 0..bits.rows() {
            let row = bits.row(r);
            out.extend((0..self.dim).map(|j| ((row[j / 64] >> (j % 64)) & 1) as f32));
        }
        if ctx.is_cuda() {
            ctx.upload(&Matrix::new(out, self.dim)?)
        } else {
            Ok(DeviceMatrix::from_host_f32(out, self.dim))
        }
    }

    /// By Hamming distance (queries as `f32` rows, encoded with this
    /// quantizer, or as binary codes), ties by the smaller index; a re-rank
    /// re-scores the shortlist with the original vectors by the options'
    /// metric (`l2` or `ip`; queries must then be `f32`).
    fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &DeviceMatrix,
        k: usize,
        opts: &SearchOptions<'_>,
    ) -> Result<Neighbors> {
        self.check_codes(ctx, codes)?;
        let q = queries.into();
        let own;
        let query_codes: Input<'_> = if q.is_binary() {
            if opts.rerank.is_some() {
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
        let kk = shortlist_len(k, opts.rerank.as_ref())?;
        let nn = knn(ctx, query_codes, codes, kk, Metric::Hamming)?;
        finish(ctx, &q, nn, (k, codes.rows()), opts)
    }

    fn to_quantizer(&self) -> Quantizer {
        Quantizer::Binary(self.clone())
    }

    fn from_quantizer(q: Quantizer) -> Result<Self> {
        match q {
            Quantizer::Binary(b) => Ok(b),
            other => Err(wrong_kind(&other, "binary")),
        }
    }
}

impl BinaryQuantizer {
    /// A quantizer with these thresholds (one per dimension, none NaN).
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

    /// The thresholds.
    pub fn thresholds(&self) -> &[f32] {
        &self.thresholds
    }

    /// Errors unless `codes` are binary codes of this dimension on the
    /// context's device.
    fn check_codes(&self, ctx: &Context, codes: &DeviceMatrix) -> Result<()> {
        codes.check_device(ctx)?;
        if !codes.is_binary() || codes.dim() != self.dim {
            return Err(Error::invalid(
                "codes",
                format!("{} rows of dimension {}", codes.rows(), codes.dim()),
                format!("expected binary codes of {} bits", self.dim),
            ));
        }
        Ok(())
    }
}

//! Scalar quantization: each value becomes an int8 or int4 code with a
//! scale (and, for the asymmetric range, an offset) per channel or per
//! vector.

use super::inputs::{check_f32, view_or_download};
use super::rerank::{search_decoded, Rerank};
use crate::core::error::{Error, Result};
use crate::core::matrix::Matrix;
use crate::core::metric::Metric;
use crate::core::neighbors::Neighbors;
use crate::core::quantize::{params, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope};
use crate::runtime::codes::{check_device, ScalarCodes};
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::Input;
use crate::{cpu, cuda};

impl ScalarQuantizer {
    /// Fits the quantizer to `data`: per channel, each dimension's minimum
    /// and maximum over its finite values (non-finite values are ignored;
    /// a dimension with none gets scale 0), or the clip quantiles; per
    /// vector, only the dimension is fixed here.
    pub fn fit<'a>(ctx: &Context, data: impl Into<Input<'a>>, opts: ScalarOptions) -> Result<Self> {
        let data = data.into();
        check_f32(&data, "scalar quantizer training data")?;
        let dim = data.dim();
        if let Some(p) = opts.clip {
            if opts.scope == ScalarScope::PerVector {
                return Err(Error::invalid(
                    "clip",
                    p,
                    "clipping applies to per-channel fitting; per-vector ranges come from each vector",
                ));
            }
            if !(p > 0.5 && p < 1.0) {
                return Err(Error::invalid("clip", p, "must be a quantile in (0.5, 1)"));
            }
        }
        if opts.scope == ScalarScope::PerVector {
            return Ok(Self {
                opts,
                dim,
                scale: vec![],
                inv: vec![],
                offset: vec![],
            });
        }
        let (lo, hi) = match (opts.clip, ctx.engine(), &data) {
            (None, Engine::Cuda(dev), _) => cuda::quantize::column_ranges(dev, &data)?,
            (clip, _, _) => {
                let mut hold = None;
                let host = view_or_download(&data, &mut hold)?;
                match clip {
                    None => cpu::quantize::column_ranges(host),
                    Some(p) => cpu::quantize::column_quantiles(
                        host,
                        p,
                        opts.range == ScalarRange::Symmetric,
                    ),
                }
            }
        };
        let mut s = Self {
            opts,
            dim,
            scale: Vec::with_capacity(dim),
            inv: Vec::with_capacity(dim),
            offset: Vec::with_capacity(dim),
        };
        for (l, h) in lo.into_iter().zip(hi) {
            let (a, b, c) = params(l, h, opts.bits, opts.range);
            s.scale.push(a);
            s.inv.push(b);
            s.offset.push(c);
        }
        Ok(s)
    }

    /// The options it was fitted with.
    pub fn options(&self) -> ScalarOptions {
        self.opts
    }
    /// Dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Per-channel scales (empty for per-vector quantizers).
    pub fn scales(&self) -> &[f32] {
        &self.scale
    }
    /// Per-channel offsets (zero for the symmetric range; empty per vector).
    pub fn offsets(&self) -> &[f32] {
        &self.offset
    }
    /// Largest round-trip error of a value inside the fitted range (per
    /// channel: half the largest scale, plus rounding of the reciprocal);
    /// per-vector codes: see [`ScalarQuantizer::vector_error_bound`].
    pub fn error_bound(&self) -> f32 {
        let s = self.scale.iter().fold(0f32, |a, &b| a.max(b));
        0.5 * s * (1.0 + 1e-5) + error_floor(&self.offset, s)
    }
    /// Largest round-trip error of row `r` of per-vector codes.
    pub fn vector_error_bound(codes: &ScalarCodes, r: usize) -> Option<f32> {
        let (s, o) = codes.vector_params()?;
        Some(0.5 * s[r] * (1.0 + 1e-5) + error_floor(&o[r..r + 1], s[r]))
    }

    fn check_dim(&self, what: &'static str, dim: usize) -> Result<()> {
        if dim != self.dim {
            return Err(Error::DimensionMismatch {
                what,
                expected: self.dim,
                got: dim,
            });
        }
        Ok(())
    }

    /// Encodes rows: `round((x - offset) / scale)` saturated to the code
    /// range (`+-inf` saturate; NaN encodes as 0.0 would). Codes live on
    /// `ctx`'s device.
    pub fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<ScalarCodes> {
        let data = data.into();
        check_f32(&data, "rows to encode")?;
        self.check_dim("rows to encode dimension", data.dim())?;
        match ctx.engine() {
            Engine::Cuda(dev) => cuda::quantize::sq_encode(dev, self, &data),
            Engine::Cpu => {
                let mut hold = None;
                Ok(cpu::quantize::sq_encode(
                    self,
                    view_or_download(&data, &mut hold)?,
                ))
            }
        }
    }

    /// Decodes codes (made by this quantizer) back to `f32` rows on the host.
    pub fn decode(&self, ctx: &Context, codes: &ScalarCodes) -> Result<Matrix> {
        self.check_codes(ctx, codes)?;
        match ctx.engine() {
            Engine::Cuda(dev) => {
                cuda::quantize::sq_decode(dev, self, codes, 0, codes.rows)?.into_host()
            }
            Engine::Cpu => Ok(cpu::quantize::sq_decode(self, codes, 0, codes.rows)),
        }
    }

    /// [`decode`](Self::decode) with the rows left on the context's device.
    pub(crate) fn decode_resident(
        &self,
        ctx: &Context,
        codes: &ScalarCodes,
    ) -> Result<crate::runtime::tensor::DeviceMatrix> {
        self.check_codes(ctx, codes)?;
        match ctx.engine() {
            Engine::Cuda(dev) => cuda::quantize::sq_decode(dev, self, codes, 0, codes.rows),
            Engine::Cpu => Ok(crate::runtime::tensor::DeviceMatrix::from_host_f32(
                cpu::quantize::sq_decode(self, codes, 0, codes.rows).into_vec(),
                self.dim,
            )),
        }
    }

    pub(crate) fn check_codes(&self, ctx: &Context, codes: &ScalarCodes) -> Result<()> {
        check_device(codes.device(), ctx)?;
        self.check_dim("codes dimension", codes.dim)?;
        let per_vector = self.opts.scope == ScalarScope::PerVector;
        if codes.bits != self.opts.bits
            || codes.range != self.opts.range
            || codes.params.is_some() != per_vector
        {
            return Err(Error::invalid(
                "codes",
                format!(
                    "{:?} {:?} per-vector {}",
                    codes.bits,
                    codes.range,
                    codes.params.is_some()
                ),
                format!(
                    "the quantizer is {:?} {:?} per-vector {per_vector}",
                    self.opts.bits, self.opts.range
                ),
            ));
        }
        Ok(())
    }

    /// The `k` nearest codes of each `f32` query by the asymmetric distance
    /// (the query against each code's decoded vector; `l2` or `ip`),
    /// optionally re-ranked with the original vectors.
    pub fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &ScalarCodes,
        k: usize,
        metric: Metric,
        rerank: Option<Rerank<'_>>,
    ) -> Result<Neighbors> {
        self.check_codes(ctx, codes)?;
        let q = queries.into();
        check_f32(&q, "queries")?;
        self.check_dim("query dimension", q.dim())?;
        search_decoded(ctx, &q, codes.rows, k, metric, rerank, &|a, b| {
            self.decoded_rows(ctx, codes, a, b)
        })
    }

    /// Rows `a..b` decoded where the context computes.
    pub(crate) fn decoded_rows(
        &self,
        ctx: &Context,
        codes: &ScalarCodes,
        a: usize,
        b: usize,
    ) -> Result<crate::runtime::tensor::DeviceMatrix> {
        match ctx.engine() {
            Engine::Cuda(dev) => cuda::quantize::sq_decode(dev, self, codes, a, b),
            Engine::Cpu => {
                let m = cpu::quantize::sq_decode(self, codes, a, b);
                crate::runtime::tensor::DeviceMatrix::upload(ctx, Input::F32(m.view()))
            }
        }
    }
}

/// The absolute rounding of `offset + code * scale` in f32.
fn error_floor(offsets: &[f32], scale: f32) -> f32 {
    let o = offsets.iter().fold(0f32, |a, &b| a.max(b.abs()));
    (o + 255.0 * scale) * f32::EPSILON
}

//! Scalar quantization: each value becomes an int8 or int4 code with a
//! scale (and, for the asymmetric range, an offset) per channel or per
//! vector.

use super::codec::{wrong_kind, Codec, SearchOptions};
use super::inputs::check_f32;
use super::rerank::search_decoded;
use crate::core::error::{Error, Result};
use crate::core::neighbors::Neighbors;
use crate::core::quantize::{
    params, Quantizer, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope,
};
use crate::runtime::codes::{check_device, ScalarCodes};
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

impl Codec for ScalarQuantizer {
    type Options = ScalarOptions;
    type Codes = ScalarCodes;

    /// Per channel, each dimension's minimum and maximum over its finite
    /// values (non-finite values are ignored; a dimension with none gets
    /// scale 0), or the clip quantiles; per vector, only the dimension is
    /// fixed here.
    fn train<'a>(ctx: &Context, data: impl Into<Input<'a>>, opts: &ScalarOptions) -> Result<Self> {
        let data = data.into();
        check_f32(&data, "scalar quantizer training data")?;
        check_clip(opts)?;
        let dim = data.dim();
        let opts = *opts;
        if opts.scope == ScalarScope::PerVector {
            return Ok(Self {
                opts,
                dim,
                scale: vec![],
                inv: vec![],
                offset: vec![],
            });
        }
        let symmetric = opts.range == ScalarRange::Symmetric;
        let (lo, hi) = ctx.backend().column_ranges(&data, opts.clip, symmetric)?;
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

    fn dim(&self) -> usize {
        self.dim
    }

    /// The packed codes of a row, plus its scale and offset (8 bytes) per
    /// vector.
    fn code_size(&self) -> usize {
        let per_vector = if self.opts.scope == ScalarScope::PerVector {
            8
        } else {
            0
        };
        self.opts.bits.bytes_per_row(self.dim) + per_vector
    }

    /// `round((x - offset) / scale)` saturated to the code range (`+-inf`
    /// saturate; NaN encodes as 0.0 would).
    fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<ScalarCodes> {
        let data = data.into();
        check_f32(&data, "rows to encode")?;
        self.check_dim("rows to encode dimension", data.dim())?;
        ctx.backend().sq_encode(self, &data)
    }

    fn decode(&self, ctx: &Context, codes: &ScalarCodes) -> Result<DeviceMatrix> {
        self.check_codes(ctx, codes)?;
        ctx.backend().sq_decode(self, codes, 0..codes.rows)
    }

    /// By the asymmetric distance (the query against each code's decoded
    /// vector; `l2` or `ip`), decoding a chunk of codes at a time.
    fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &ScalarCodes,
        k: usize,
        opts: &SearchOptions<'_>,
    ) -> Result<Neighbors> {
        self.check_codes(ctx, codes)?;
        let q = queries.into();
        check_f32(&q, "queries")?;
        self.check_dim("query dimension", q.dim())?;
        search_decoded(ctx, &q, (codes.rows, k), opts, &|rows| {
            ctx.backend().sq_decode(self, codes, rows)
        })
    }

    fn to_quantizer(&self) -> Quantizer {
        Quantizer::Scalar(self.clone())
    }

    fn from_quantizer(q: Quantizer) -> Result<Self> {
        match q {
            Quantizer::Scalar(s) => Ok(s),
            other => Err(wrong_kind(&other, "scalar")),
        }
    }
}

/// Errors unless the clip quantile fits the options.
fn check_clip(opts: &ScalarOptions) -> Result<()> {
    let Some(p) = opts.clip else {
        return Ok(());
    };
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
    Ok(())
}

impl ScalarQuantizer {
    /// The options it was trained with.
    pub fn options(&self) -> ScalarOptions {
        self.opts
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
}

/// The absolute rounding of `offset + code * scale` in f32.
fn error_floor(offsets: &[f32], scale: f32) -> f32 {
    let o = offsets.iter().fold(0f32, |a, &b| a.max(b.abs()));
    (o + 255.0 * scale) * f32::EPSILON
}

//! Scalar quantization: each value becomes an int8 or int4 code with a
//! scale (and, for the asymmetric range, an offset) per channel or per
//! vector.

use super::codes::{check_device, ScalarCodes};
use super::rerank::{search_decoded, Rerank};
use crate::context::{Backend, Context};
use crate::error::{Error, Result};
use crate::matrix::{Input, Matrix, MatrixView};
use crate::metric::Metric;
use crate::ops::select::Neighbors;
use crate::{cpu, cuda};

/// Code width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarBits {
    /// One byte per value.
    Int8,
    /// Half a byte per value (two per byte, low nibble first).
    Int4,
}

impl ScalarBits {
    /// Bits per value.
    pub fn bits(self) -> u32 {
        match self {
            ScalarBits::Int8 => 8,
            ScalarBits::Int4 => 4,
        }
    }
    /// Code bytes of a row of `dim` values.
    pub fn bytes_per_row(self, dim: usize) -> usize {
        match self {
            ScalarBits::Int8 => dim,
            ScalarBits::Int4 => dim.div_ceil(2),
        }
    }
    /// Largest code of the symmetric range (127 or 7; the range is
    /// `-max..=max`, so zero is exact).
    pub(crate) fn sym_max(self) -> f32 {
        match self {
            ScalarBits::Int8 => 127.0,
            ScalarBits::Int4 => 7.0,
        }
    }
    /// Largest code of the asymmetric range (255 or 15, from 0).
    pub(crate) fn asym_max(self) -> f32 {
        match self {
            ScalarBits::Int8 => 255.0,
            ScalarBits::Int4 => 15.0,
        }
    }
}

/// The code range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarRange {
    /// Signed codes `-127..=127` (int4: `-7..=7`), zero point 0:
    /// `x ~ code * scale` with `scale = max|x| / 127`.
    Symmetric,
    /// Unsigned codes using the full `0..=255` (int4: `0..=15`) from the
    /// minimum: `x ~ offset + code * scale` with `offset = min`,
    /// `scale = (max - min) / 255`.
    Asymmetric,
}

/// What one scale (and offset) covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarScope {
    /// One per dimension, fitted from the training data.
    PerChannel,
    /// One per vector, computed from each vector when it is encoded (kept
    /// with its codes).
    PerVector,
}

/// Options of [`ScalarQuantizer::fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ScalarOptions {
    /// Code width.
    pub bits: ScalarBits,
    /// Code range.
    pub range: ScalarRange,
    /// Per channel or per vector.
    pub scope: ScalarScope,
    /// Per-channel fitting only: clip each channel to the `[1 - p, p]`
    /// quantiles of its training values (NumPy's linear interpolation;
    /// symmetric range: the `p` quantile of `|x|`) instead of its minimum
    /// and maximum, for `0.5 < p < 1`. Values beyond saturate.
    pub clip: Option<f32>,
}

impl ScalarOptions {
    /// Symmetric per-channel int8.
    pub fn int8() -> Self {
        Self {
            bits: ScalarBits::Int8,
            range: ScalarRange::Symmetric,
            scope: ScalarScope::PerChannel,
            clip: None,
        }
    }
    /// Symmetric per-channel int4.
    pub fn int4() -> Self {
        Self {
            bits: ScalarBits::Int4,
            ..Self::int8()
        }
    }
    /// Sets the range.
    pub fn with_range(mut self, r: ScalarRange) -> Self {
        self.range = r;
        self
    }
    /// Sets the scope.
    pub fn with_scope(mut self, s: ScalarScope) -> Self {
        self.scope = s;
        self
    }
    /// Clips per-channel ranges to the `[1 - p, p]` quantiles.
    pub fn with_clip(mut self, p: f32) -> Self {
        self.clip = Some(p);
        self
    }
}

/// Per-value parameters: `scale`, its reciprocal (0 when the scale is 0) and
/// the offset, computed identically on every backend.
pub(crate) fn params(lo: f32, hi: f32, bits: ScalarBits, range: ScalarRange) -> (f32, f32, f32) {
    let (scale, offset) = match range {
        ScalarRange::Symmetric => (lo.abs().max(hi.abs()) / bits.sym_max(), 0.0),
        ScalarRange::Asymmetric => ((hi - lo) / bits.asym_max(), lo),
    };
    let scale = if scale.is_finite() { scale } else { f32::MAX };
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    (scale, inv, offset)
}

/// A fitted scalar quantizer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarQuantizer {
    pub(crate) opts: ScalarOptions,
    pub(crate) dim: usize,
    /// Per channel: scale, reciprocal, offset (empty when per vector).
    pub(crate) scale: Vec<f32>,
    pub(crate) inv: Vec<f32>,
    pub(crate) offset: Vec<f32>,
}

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
        let (lo, hi) = match (opts.clip, ctx.backend(), &data) {
            (None, Backend::Cuda(dev), _) => cuda::quantize::column_ranges(dev, &data)?,
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
        match ctx.backend() {
            Backend::Cuda(dev) => cuda::quantize::sq_encode(dev, self, &data),
            Backend::Cpu => {
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
        match ctx.backend() {
            Backend::Cuda(dev) => {
                let d = cuda::quantize::sq_decode(dev, self, codes, 0, codes.rows)?;
                let v = d.to_host_f32()?.expect("f32 rows");
                Matrix::new(v, self.dim)
            }
            Backend::Cpu => Ok(cpu::quantize::sq_decode(self, codes, 0, codes.rows)),
        }
    }

    /// [`decode`](Self::decode) with the rows left on the context's device.
    pub(crate) fn decode_resident(
        &self,
        ctx: &Context,
        codes: &ScalarCodes,
    ) -> Result<crate::tensor::DeviceMatrix> {
        self.check_codes(ctx, codes)?;
        match ctx.backend() {
            Backend::Cuda(dev) => cuda::quantize::sq_decode(dev, self, codes, 0, codes.rows),
            Backend::Cpu => Ok(crate::tensor::DeviceMatrix::from_host_f32(
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
    ) -> Result<crate::tensor::DeviceMatrix> {
        match ctx.backend() {
            Backend::Cuda(dev) => cuda::quantize::sq_decode(dev, self, codes, a, b),
            Backend::Cpu => {
                let m = cpu::quantize::sq_decode(self, codes, a, b);
                crate::tensor::DeviceMatrix::upload(ctx, Input::F32(m.view()))
            }
        }
    }
}

/// The absolute rounding of `offset + code * scale` in f32.
fn error_floor(offsets: &[f32], scale: f32) -> f32 {
    let o = offsets.iter().fold(0f32, |a, &b| a.max(b.abs()));
    (o + 255.0 * scale) * f32::EPSILON
}

/// Errors unless `i` is non-empty `f32` rows.
pub(crate) fn check_f32(i: &Input<'_>, what: &'static str) -> Result<()> {
    if i.is_binary() {
        return Err(Error::invalid(
            what,
            "bit-packed binary rows",
            "expected f32 rows",
        ));
    }
    if i.rows() == 0 {
        return Err(Error::EmptyInput { what });
    }
    crate::ops::refuse_half(i, what)
}

/// A borrowed view where possible (host rows), else a downloaded copy.
pub(crate) fn view_or_download<'a>(
    i: &'a Input<'a>,
    hold: &'a mut Option<Matrix>,
) -> Result<MatrixView<'a>> {
    match i {
        Input::F32(m) => Ok(*m),
        Input::Resident(d) => {
            // Rows already on the host are borrowed, not copied.
            if let Some(Input::F32(m)) = d.host_input() {
                return Ok(m);
            }
            let v = d.to_host_f32()?.ok_or_else(|| {
                Error::invalid("input", "bit-packed binary rows", "expected f32 rows")
            })?;
            *hold = Some(Matrix::new(v, d.dim())?);
            Ok(hold.as_ref().expect("just set").view())
        }
        Input::Binary(_) => Err(Error::invalid(
            "input",
            "bit-packed binary rows",
            "expected f32 rows",
        )),
    }
}

//! Code containers ([`ScalarCodes`], [`PqCodes`]) and the host-or-device
//! buffer they keep their bytes in.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, DeviceRepr};

use crate::core::device::Device;
use crate::core::error::{cu, Error, Result};
use crate::core::quantize::{pq_row_bytes, read_code, ScalarBits, ScalarRange};
use crate::runtime::context::{Context, Engine};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::upload_slice;

/// A buffer on the host or on a CUDA device.
#[derive(Debug)]
pub(crate) enum Store<T: DeviceRepr> {
    Host(Vec<T>),
    Cuda(Arc<CudaDevice>, CudaSlice<T>),
}

impl<T: DeviceRepr + Clone + Default> Store<T> {
    /// `data` on `ctx`'s device.
    pub(crate) fn put(ctx: &Context, data: Vec<T>) -> Result<Self> {
        match ctx.engine() {
            Engine::Cpu => Ok(Store::Host(data)),
            Engine::Cuda(dev) => {
                let _g = dev.lock();
                let s = upload_slice(dev, &data)?;
                dev.sync()?;
                Ok(Store::Cuda(dev.clone(), s))
            }
        }
    }

    pub(crate) fn device(&self) -> Device {
        match self {
            Store::Host(_) => Device::Cpu,
            Store::Cuda(d, _) => Device::Cuda(d.ordinal()),
        }
    }

    pub(crate) fn host(&self) -> Option<&[T]> {
        match self {
            Store::Host(v) => Some(v),
            Store::Cuda(..) => None,
        }
    }

    pub(crate) fn cuda(&self) -> Option<&CudaSlice<T>> {
        match self {
            Store::Host(_) => None,
            Store::Cuda(_, s) => Some(s),
        }
    }

    /// A host copy of the elements.
    pub(crate) fn to_vec(&self) -> Result<Vec<T>> {
        match self {
            Store::Host(v) => Ok(v.clone()),
            Store::Cuda(dev, s) => {
                let _g = dev.lock();
                let v = dev
                    .stream
                    .clone_dtoh(s)
                    .map_err(cu("download (cuMemcpyDtoH)"))?;
                dev.sync()?;
                Ok(v)
            }
        }
    }

    /// A copy on `ctx`'s device.
    pub(crate) fn copy_to(&self, ctx: &Context) -> Result<Self> {
        Store::put(ctx, self.to_vec()?)
    }
}

/// Errors unless a store lives on `ctx`'s device.
pub(crate) fn check_device(dev: Device, ctx: &Context) -> Result<()> {
    if dev != ctx.device() {
        return Err(Error::DeviceMismatch {
            data: dev.to_string(),
            context: ctx.device().to_string(),
        });
    }
    Ok(())
}

/// Scalar-quantized rows (made by
/// [`ScalarQuantizer::encode`](crate::quantize::Codec::encode)): int8 codes
/// one byte per value, int4 codes two per byte (low nibble first, rows
/// padded to a whole byte); signed (two's complement) for the symmetric
/// range, unsigned for the asymmetric one. Per-vector quantization keeps
/// each row's scale and offset beside the codes.
#[derive(Debug)]
pub struct ScalarCodes {
    pub(crate) rows: usize,
    pub(crate) dim: usize,
    pub(crate) bits: ScalarBits,
    pub(crate) range: ScalarRange,
    pub(crate) bytes: Store<u8>,
    /// Per-vector (scale, offset), when the quantizer is per-vector.
    pub(crate) params: Option<(Store<f32>, Store<f32>)>,
}

impl ScalarCodes {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Code width.
    pub fn bits(&self) -> ScalarBits {
        self.bits
    }
    /// Code range (signed symmetric or unsigned asymmetric codes).
    pub fn range(&self) -> ScalarRange {
        self.range
    }
    /// Code bytes of one row.
    pub fn bytes_per_row(&self) -> usize {
        self.bits.bytes_per_row(self.dim)
    }
    /// Bytes the codes take, per-vector parameters included.
    pub fn code_bytes(&self) -> usize {
        self.rows * (self.bytes_per_row() + if self.params.is_some() { 8 } else { 0 })
    }
    /// Where the codes live.
    pub fn device(&self) -> Device {
        self.bytes.device()
    }
    /// The code bytes (`rows x bytes_per_row`), when on the host.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        self.bytes.host()
    }
    /// Per-vector scales and offsets (host codes of a per-vector quantizer):
    /// row `r` decodes as `offset[r] + code * scale[r]`.
    pub fn vector_params(&self) -> Option<(&[f32], &[f32])> {
        match &self.params {
            Some((s, o)) => Some((s.host()?, o.host()?)),
            None => None,
        }
    }
    /// A copy on the host.
    pub fn to_host(&self) -> Result<Self> {
        self.copy_to(&Context::cpu())
    }
    /// A copy on `ctx`'s device.
    pub fn copy_to(&self, ctx: &Context) -> Result<Self> {
        Ok(Self {
            rows: self.rows,
            dim: self.dim,
            bits: self.bits,
            range: self.range,
            bytes: self.bytes.copy_to(ctx)?,
            params: match &self.params {
                Some((s, o)) => Some((s.copy_to(ctx)?, o.copy_to(ctx)?)),
                None => None,
            },
        })
    }
    /// Each row as its code bytes followed, for per-vector codes, by its
    /// scale and offset as little-endian f32 (the layout of `.npy` code
    /// files).
    pub fn to_row_bytes(&self) -> Result<Vec<u8>> {
        let b = self.bytes.to_vec()?;
        let Some((s, o)) = &self.params else {
            return Ok(b);
        };
        let (s, o) = (s.to_vec()?, o.to_vec()?);
        let bpr = self.bytes_per_row();
        let mut out = Vec::with_capacity(self.rows * (bpr + 8));
        for r in 0..self.rows {
            out.extend_from_slice(&b[r * bpr..(r + 1) * bpr]);
            out.extend_from_slice(&s[r].to_le_bytes());
            out.extend_from_slice(&o[r].to_le_bytes());
        }
        Ok(out)
    }
    /// Host codes from rows laid out as [`to_row_bytes`](Self::to_row_bytes)
    /// writes them.
    pub fn from_row_bytes(
        bytes: &[u8],
        dim: usize,
        bits: ScalarBits,
        range: ScalarRange,
        per_vector: bool,
    ) -> Result<Self> {
        let bpr = bits.bytes_per_row(dim);
        let row = bpr + if per_vector { 8 } else { 0 };
        if dim == 0 || bytes.is_empty() || !bytes.len().is_multiple_of(row) {
            return Err(Error::invalid(
                "scalar codes",
                format!("{} bytes", bytes.len()),
                format!("expected a non-empty whole number of rows of {row} bytes (dim {dim})"),
            ));
        }
        let rows = bytes.len() / row;
        let mut codes = Vec::with_capacity(rows * bpr);
        let (mut s, mut o) = (Vec::new(), Vec::new());
        for r in bytes.chunks_exact(row) {
            codes.extend_from_slice(&r[..bpr]);
            if per_vector {
                let f = |i: usize| f32::from_le_bytes(r[i..i + 4].try_into().expect("4 bytes"));
                s.push(f(bpr));
                o.push(f(bpr + 4));
            }
        }
        Ok(Self {
            rows,
            dim,
            bits,
            range,
            bytes: Store::Host(codes),
            params: per_vector.then_some((Store::Host(s), Store::Host(o))),
        })
    }
}

/// Product-quantized rows (made by
/// [`ProductQuantizer::encode`](crate::quantize::Codec::encode)): `M` codes
/// of `nbits` bits per row, bit-packed least significant bit first (code
/// `j` at bit `j * nbits` of the row; with `nbits = 8` code `j` is byte
/// `j`), rows padded to a whole byte.
#[derive(Debug)]
pub struct PqCodes {
    pub(crate) rows: usize,
    pub(crate) m: usize,
    pub(crate) nbits: u32,
    pub(crate) bytes: Store<u8>,
}

impl PqCodes {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Codes per row (sub-spaces).
    pub fn m(&self) -> usize {
        self.m
    }
    /// Bits per code.
    pub fn nbits(&self) -> u32 {
        self.nbits
    }
    /// Bytes of one row.
    pub fn bytes_per_row(&self) -> usize {
        pq_row_bytes(self.m, self.nbits)
    }
    /// Bytes the codes take.
    pub fn code_bytes(&self) -> usize {
        self.rows * self.bytes_per_row()
    }
    /// Where the codes live.
    pub fn device(&self) -> Device {
        self.bytes.device()
    }
    /// The packed rows, when on the host.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        self.bytes.host()
    }
    /// Code `j` of row `r` (host codes).
    pub fn code(&self, r: usize, j: usize) -> Option<u32> {
        let b = self.bytes.host()?;
        (r < self.rows && j < self.m)
            .then(|| read_code(&b[r * self.bytes_per_row()..], j, self.nbits))
    }
    /// A copy on the host.
    pub fn to_host(&self) -> Result<Self> {
        self.copy_to(&Context::cpu())
    }
    /// A copy on `ctx`'s device.
    pub fn copy_to(&self, ctx: &Context) -> Result<Self> {
        Ok(Self {
            rows: self.rows,
            m: self.m,
            nbits: self.nbits,
            bytes: self.bytes.copy_to(ctx)?,
        })
    }
    /// Host codes from packed rows (`M` codes of `nbits` bits per row).
    pub fn from_bytes(bytes: Vec<u8>, m: usize, nbits: u32) -> Result<Self> {
        let row = pq_row_bytes(m, nbits);
        if m == 0 || bytes.is_empty() || !bytes.len().is_multiple_of(row) {
            return Err(Error::invalid(
                "product codes",
                format!("{} bytes", bytes.len()),
                format!("expected a non-empty whole number of rows of {row} bytes (M {m}, nbits {nbits})"),
            ));
        }
        Ok(Self {
            rows: bytes.len() / row,
            m,
            nbits,
            bytes: Store::Host(bytes),
        })
    }
}

//! CUDA host side of the ML family: the fused neural-quantization encode
//! (`va_nq_encode_*` of the quantize module, next to the SQ code kernels
//! whose arithmetic it shares).

use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Result};
use crate::core::half::HalfKind;
use crate::core::linalg::Activation;
use crate::core::precision::Precision;
use crate::core::quantize::{ScalarBits, ScalarRange};
use crate::cuda::distance::{resident, whole};
use crate::cuda::gemm_nt::{scores_3xtf32, split_half, sq8_decode_gemm, HalfPieces, NtAct, Scores};
use crate::runtime::backend::{MlBackend, NqDecodeJob, NqEncodeJob, ScoresJob};
use crate::runtime::codes::{ScalarCodes, Store};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{f32_rows, upload_slice, CudaRows};
use crate::runtime::input::Input;
use crate::runtime::tensor::{DeviceMatrix, Storage};

/// Rows per block (one block holds the whole latent of 128 rows).
const TILE: usize = 128;
/// Largest latent the fused kernel holds on chip.
pub(crate) const MAX_LATENT: usize = 128;
/// The cp.async pipeline's shared memory (the latent tile reuses it).
const SMEM_BYTES: usize = 3 * 2 * TILE * 36 * 4;

/// The encoder of a fused neural-quantization encode.
pub(crate) struct NqEncoder<'a> {
    /// The f32 `latent x d` weight, resident on the device.
    pub weight: &'a DeviceMatrix,
    /// The latent's bias.
    pub bias: Option<&'a [f32]>,
    /// ReLU activation (else none).
    pub relu: bool,
    /// Latents scaled to unit length before the codes.
    pub normalize: bool,
    /// 3xTF32 products (near-fp32) rather than TF32.
    pub three_tf32: bool,
}

/// Codes of `act(x W^T + b)` of `enc` in one pass. `None` when the weight
/// is not f32 rows on the device or the latent exceeds [`MAX_LATENT`] (the
/// caller takes the unfused path).
pub(crate) fn nq_encode(
    dev: &Arc<CudaDevice>,
    x: &Input<'_>,
    enc: &NqEncoder<'_>,
) -> Result<Option<ScalarCodes>> {
    let NqEncoder {
        weight: w,
        bias,
        relu,
        normalize,
        three_tf32: three,
    } = *enc;
    let Storage::Cuda(_, CudaRows::F32(wrows)) = &w.storage else {
        return Ok(None);
    };
    let (n, d, latent) = (x.rows(), x.dim(), w.rows());
    if latent > MAX_LATENT || w.dim() != d || n > i32::MAX as usize || d > i32::MAX as usize {
        return Ok(None);
    }
    let _g = dev.lock();
    let rows = whole(dev, x)?;
    let xs = f32_rows(rows.rows())?;
    let b = match bias {
        Some(b) => Some(upload_slice(dev, b)?),
        None => None,
    };
    let mut codes = dev.alloc::<u8>(n * latent)?;
    let mut scales = dev.alloc::<f32>(n)?;
    let mut offsets = dev.alloc::<f32>(n)?;
    // Rows of x and W are read four floats at a time when d allows (device
    // buffers start 256-byte aligned; row starts then stay 16-byte aligned).
    let v = if d % 4 == 0 { "v4" } else { "v1" };
    let kind = if three { "3xtf32" } else { "tf32" };
    let f = dev.func("quantize", &format!("va_nq_encode_{kind}_{v}"))?;
    f.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        SMEM_BYTES as i32,
    )
    .map_err(cu("cuFuncSetAttribute"))?;
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(TILE) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: SMEM_BYTES as u32,
    };
    let (ld, n_i, l_i, d_i) = (d as i64, n as i32, latent as i32, d as i32);
    let (act, norm) = (relu as i32, normalize as i32);
    let null = 0u64;
    let mut l = dev.stream.launch_builder(&f);
    l.arg(xs).arg(&ld).arg(&n_i).arg(wrows).arg(&l_i).arg(&d_i);
    match &b {
        Some(b) => l.arg(b),
        None => l.arg(&null),
    };
    l.arg(&act).arg(&norm);
    l.arg(&mut codes).arg(&mut scales).arg(&mut offsets);
    // SAFETY: x holds n*d floats, W latent*d, bias latent (or null);
    // codes n*latent bytes, scales and offsets n floats each.
    unsafe { l.launch(cfg) }.map_err(cu("va_nq_encode launch"))?;
    drop(b);
    Ok(Some(ScalarCodes {
        rows: n,
        dim: latent,
        bits: ScalarBits::Int8,
        range: ScalarRange::Symmetric,
        bytes: Store::Cuda(dev.clone(), codes),
        params: Some((
            Store::Cuda(dev.clone(), scales),
            Store::Cuda(dev.clone(), offsets),
        )),
    }))
}

impl MlBackend for Arc<CudaDevice> {
    /// `Exact` scores from f32 rows: one 3xTF32 tensor-core product (near
    /// fp32) with the scaling and the logistic function in its epilogue,
    /// where cuBLAS's fp32 SGEMM runs at a fraction of the tensor cores'
    /// rate.
    fn attention_scores(&self, job: ScoresJob<'_>) -> Result<Option<DeviceMatrix>> {
        let usable = |i: &Input<'_>| match i {
            Input::F32(m) => m.rows() > 0,
            Input::Resident(d) => d.rows() > 0 && !d.is_binary() && resident(i).is_some(),
            Input::Binary(_) => false,
        };
        let (q, k) = (job.queries, job.keys);
        if job.precision != Precision::Exact || !usable(q) || !usable(k) {
            return Ok(None);
        }
        let (qd, kd) = (whole(self, q)?, whole(self, k)?);
        let act = if job.sigmoid {
            NtAct::Sigmoid
        } else {
            NtAct::None
        };
        let scores = Scores {
            q: f32_rows(qd.rows())?,
            queries: q.rows(),
            k: f32_rows(kd.rows())?,
            keys: k.rows(),
            dim: q.dim(),
            alpha: job.alpha,
            act,
        };
        scores_3xtf32(self, &scores)
    }

    /// The fused encode for no activation or ReLU under `Exact` or `Tf32`
    /// (see [`nq_encode`]).
    fn nq_encode(&self, job: NqEncodeJob<'_>) -> Result<Option<ScalarCodes>> {
        let fused = matches!(job.activation, Activation::None | Activation::Relu)
            && matches!(job.precision, Precision::Exact | Precision::Tf32)
            && !job.x.is_binary();
        if !fused {
            return Ok(None);
        }
        let enc = NqEncoder {
            weight: job.weight,
            bias: job.bias,
            relu: job.activation == Activation::Relu,
            normalize: job.normalize,
            three_tf32: job.precision == Precision::Exact,
        };
        nq_encode(self, job.x, &enc)
    }

    /// The codes enter the decoder's product as exact 16-bit integers
    /// against 16-bit pieces of the decoder weight (made once and kept in
    /// the job's cache), each row's scale applied to its sums: three bf16
    /// pieces carry the f32 weight whole (`Exact`); `Bf16` rounds it to
    /// bf16; `Tf32` and `F16` to f16 after scaling each output's weights by
    /// a power of two (11-bit significands as TF32's, nothing out of range).
    fn nq_decode(&self, job: NqDecodeJob<'_>) -> Result<Option<DeviceMatrix>> {
        let (kind, use_pieces) = match job.precision {
            Precision::Exact => (HalfKind::Bf16, 3),
            Precision::Bf16 => (HalfKind::Bf16, 1),
            Precision::Tf32 | Precision::F16 => (HalfKind::F16, 1),
        };
        let pieces = job.cache.find_or_make(
            |p: &HalfPieces| p.kind == kind,
            || split_half(self, job.weight, kind, 3),
        )?;
        match pieces {
            Some(w) => sq8_decode_gemm(self, job.codes, &w, use_pieces, job.bias),
            None => Ok(None),
        }
    }
}

//! CUDA host side of the tensor-core NT products of the `gemm` kernel
//! module (`va_gemm_nt_*`): `C = act(alpha * rowscale[m] * A B^T + bias)`
//! with `B` given as one or more pieces whose products are summed. The ML
//! family uses them where cuBLAS has no equivalent: the neural-quantization
//! decoder straight from int8 codes against bf16 pieces of the f32 decoder
//! (fp32-accurate at 1.5 TF32 products), and attention scores in 3xTF32.

use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Result};
use crate::core::half::{half_dim, HalfKind};
use crate::core::quantize::{ScalarBits, ScalarRange};
use crate::runtime::codes::{ScalarCodes, Store};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{upload_slice, CudaRows};
use crate::runtime::tensor::{DeviceMatrix, Storage};

const MODULE: &str = "gemm";
/// Rows (and columns) of a block tile.
const TILE: usize = 128;
/// Floats of one 128-row stage tile (rows of 36 floats).
const STAGE: usize = TILE * 36;
/// Pipeline depth.
const STAGES: usize = 3;
/// Shared memory of a launch: the pipeline's A and B stages (the epilogue
/// tile, 128 rows of 136 floats, reuses them), then the epilogue's row
/// scales, column scales and biases.
const SMEM_BYTES: usize = (2 * STAGES * STAGE + 3 * TILE) * 4;

/// Operand kinds of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NtKind {
    /// f32 operands, three TF32 products of high and low parts (near-fp32).
    ThreeTf32,
    /// 16-bit operands (rows of [`half_dim`] elements), bf16 or f16.
    Half(HalfKind),
}

/// Epilogue activation of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NtAct {
    None,
    Sigmoid,
}

/// One operand: `rows` rows of `ld` elements (the first `k` used).
pub(crate) struct NtOperand<'a, T> {
    pub data: &'a CudaSlice<T>,
    pub ld: usize,
    pub rows: usize,
}

/// Everything besides the operands.
pub(crate) struct NtPlan<'a> {
    pub kind: NtKind,
    /// Shared length of the rows (elements of `A` and of each piece).
    pub k: usize,
    /// Pieces of `B` (products summed), `piece` elements apart.
    pub pieces: usize,
    pub piece: usize,
    pub alpha: f32,
    pub rowscale: Option<&'a CudaSlice<f32>>,
    pub colscale: Option<&'a CudaSlice<f32>>,
    pub bias: Option<&'a CudaSlice<f32>>,
    pub act: NtAct,
}

/// `C` (`a.rows x b.rows`, f32, row-major) of `plan`; `None` when the
/// sizes exceed what one launch indexes (the caller takes another path).
pub(crate) fn gemm_nt<T: DeviceRepr>(
    dev: &Arc<CudaDevice>,
    a: NtOperand<'_, T>,
    b: NtOperand<'_, T>,
    plan: &NtPlan<'_>,
) -> Result<Option<CudaSlice<f32>>> {
    let (m, n, k) = (a.rows, b.rows, plan.k);
    let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
    let fits = |v: usize| v <= i32::MAX as usize;
    if !(fits(m) && fits(n) && fits(k) && fits(tiles) && fits(plan.pieces)) || tiles == 0 {
        return Ok(None);
    }
    let vec = a.ld.is_multiple_of(4) && b.ld.is_multiple_of(4) && plan.piece.is_multiple_of(4);
    // 16-byte rows for the 16-bit tile loads.
    let half_rows = |ld: usize| ld.is_multiple_of(8) && plan.piece.is_multiple_of(8);
    let name = match plan.kind {
        NtKind::ThreeTf32 if vec => "va_gemm_nt_3xtf32_v4",
        NtKind::ThreeTf32 => "va_gemm_nt_3xtf32_v1",
        NtKind::Half(_) if !(half_rows(a.ld) && half_rows(b.ld)) => return Ok(None),
        NtKind::Half(HalfKind::Bf16) => "va_gemm_nt_bf16",
        NtKind::Half(HalfKind::F16) => "va_gemm_nt_f16",
    };
    let smem = SMEM_BYTES;
    let f = dev.func(MODULE, name)?;
    f.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        smem as i32,
    )
    .map_err(cu("cuFuncSetAttribute"))?;
    let mut out = dev.alloc::<f32>(m * n)?;
    let cfg = LaunchConfig {
        grid_dim: (tiles as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: smem as u32,
    };
    // Consecutive blocks walk the longer side's tiles within one tile of
    // the other: the shorter operand stays in L2, the longer streams once.
    let m_fast = (m < n) as i32;
    let (lda, ldb, piece, ldc) = (a.ld as i64, b.ld as i64, plan.piece as i64, n as i64);
    let (m_i, n_i, k_i, p_i) = (m as i32, n as i32, k as i32, plan.pieces as i32);
    let act = match plan.act {
        NtAct::None => 0i32,
        NtAct::Sigmoid => 2,
    };
    let null = 0u64;
    let mut l = dev.stream.launch_builder(&f);
    l.arg(a.data).arg(&lda).arg(&m_i);
    l.arg(b.data)
        .arg(&ldb)
        .arg(&piece)
        .arg(&p_i)
        .arg(&n_i)
        .arg(&k_i);
    l.arg(&plan.alpha);
    for v in [plan.rowscale, plan.colscale, plan.bias] {
        match v {
            Some(s) => l.arg(s),
            None => l.arg(&null),
        };
    }
    l.arg(&act).arg(&mut out).arg(&ldc).arg(&m_fast);
    // SAFETY: A holds m rows of lda elements, B pieces * piece elements
    // (each piece n rows of ldb), rowscale m, colscale and bias n floats
    // (or null), out m * n floats; k <= lda, ldb.
    unsafe { l.launch(cfg) }.map_err(cu("va_gemm_nt launch"))?;
    Ok(Some(out))
}

/// A matrix (`rows x dim`, f32 on the device) as 16-bit pieces of
/// [`half_dim`] elements per row: bf16, up to three pieces summing to it
/// (all 24 bits of every normal value); f16, one piece of each row scaled
/// by a power of two that puts its largest magnitude in `[2^14, 2^15)`
/// (f16's range and 11-bit significand used fully), `colscale` undoing it.
#[derive(Debug)]
pub(crate) struct HalfPieces {
    pub kind: HalfKind,
    pub data: CudaSlice<u16>,
    pub colscale: Option<CudaSlice<f32>>,
    pub rows: usize,
    pub dim: usize,
    pub pieces: usize,
}

/// The pieces of `w` (f32 rows on `dev`); `None` when it is not.
pub(crate) fn split_half(
    dev: &Arc<CudaDevice>,
    w: &DeviceMatrix,
    kind: HalfKind,
    pieces: usize,
) -> Result<Option<HalfPieces>> {
    let Storage::Cuda(_, CudaRows::F32(rows)) = &w.storage else {
        return Ok(None);
    };
    let f16 = kind == HalfKind::F16;
    let pieces = if f16 { 1 } else { pieces };
    let (r, d) = (w.rows(), w.dim());
    let hd = half_dim(d);
    let _g = dev.lock();
    let mut out = dev.alloc::<u16>(pieces * r * hd)?;
    let mut colscale = if f16 {
        Some(dev.alloc::<f32>(r)?)
    } else {
        None
    };
    let f = dev.func(MODULE, "va_split_half")?;
    // A warp per row.
    let cfg = dev.grid_stride(r * 32);
    let (r_i, d_i, hd_i, p_i, bf) = (r as i64, d as i32, hd as i32, pieces as i32, !f16 as i32);
    let null = 0u64;
    let mut l = dev.stream.launch_builder(&f);
    l.arg(rows)
        .arg(&r_i)
        .arg(&d_i)
        .arg(&hd_i)
        .arg(&p_i)
        .arg(&bf);
    match colscale.as_mut() {
        Some(c) => l.arg(c),
        None => l.arg(&null),
    };
    l.arg(&mut out);
    // SAFETY: w holds r * d floats, colscale r floats (or null), out
    // pieces * r * hd values.
    unsafe { l.launch(cfg) }.map_err(cu("va_split_half launch"))?;
    Ok(Some(HalfPieces {
        kind,
        data: out,
        colscale,
        rows: r,
        dim: d,
        pieces,
    }))
}

/// `(codes * scale) W^T + bias` of per-vector symmetric int8 codes on
/// `dev`, `W` given by the first `use_pieces` of `w` (`d_out x latent`):
/// the codes enter the product as exact 16-bit integers and each row's
/// scale multiplies its sums. `None` for codes not on the device, not
/// per-vector symmetric int8, or of another width than `w`.
pub(crate) fn sq8_decode_gemm(
    dev: &Arc<CudaDevice>,
    codes: &ScalarCodes,
    w: &HalfPieces,
    use_pieces: usize,
    bias: Option<&[f32]>,
) -> Result<Option<DeviceMatrix>> {
    let (Some(bytes), Some((Store::Cuda(_, scale), _))) = (codes.bytes.cuda(), &codes.params)
    else {
        return Ok(None);
    };
    if codes.bits != ScalarBits::Int8
        || codes.range != ScalarRange::Symmetric
        || codes.dim != w.dim
        || use_pieces == 0
        || use_pieces > w.pieces
    {
        return Ok(None);
    }
    let (rows, d) = (codes.rows, codes.dim);
    let hd = half_dim(d);
    let _g = dev.lock();
    let b = match bias {
        Some(b) => Some(upload_slice(dev, b)?),
        None => None,
    };
    let wb = NtOperand {
        data: &w.data,
        ld: hd,
        rows: w.rows,
    };
    // The codes as 16-bit integers (exact in bf16 and f16).
    let mut ints = dev.alloc::<u16>(rows * hd)?;
    let f = dev.func("quantize", "va_sq8_codes_half")?;
    let cfg = dev.grid_stride(rows * hd / 8);
    let (rows_i, d_i, hd_i, bf) = (
        rows as i64,
        d as i32,
        hd as i32,
        (w.kind == HalfKind::Bf16) as i32,
    );
    let mut l = dev.stream.launch_builder(&f);
    l.arg(bytes)
        .arg(&rows_i)
        .arg(&d_i)
        .arg(&hd_i)
        .arg(&bf)
        .arg(&mut ints);
    // SAFETY: codes hold rows*d bytes, ints rows*hd values (hd a multiple
    // of 8, written 8 at a time).
    unsafe { l.launch(cfg) }.map_err(cu("va_sq8_codes_half launch"))?;
    let a = NtOperand {
        data: &ints,
        ld: hd,
        rows,
    };
    let plan = NtPlan {
        kind: NtKind::Half(w.kind),
        k: hd,
        pieces: use_pieces,
        piece: w.rows * hd,
        alpha: 1.0,
        rowscale: Some(scale),
        colscale: w.colscale.as_ref(),
        bias: b.as_ref(),
        act: NtAct::None,
    };
    let out = gemm_nt(dev, a, wb, &plan)?;
    let Some(out) = out else {
        return Ok(None);
    };
    Ok(Some(DeviceMatrix::from_cuda(
        dev,
        CudaRows::F32(out),
        rows,
        w.rows,
        true,
    )))
}

/// Scores of f32 query rows against f32 key rows on the device.
pub(crate) struct Scores<'a> {
    /// Query rows (`queries x dim`).
    pub q: &'a CudaSlice<f32>,
    /// Number of query rows.
    pub queries: usize,
    /// Key rows (`keys x dim`).
    pub k: &'a CudaSlice<f32>,
    /// Number of key rows.
    pub keys: usize,
    /// Values per row.
    pub dim: usize,
    /// Factor of every product.
    pub alpha: f32,
    /// Activation of the scaled products.
    pub act: NtAct,
}

/// Every `act(alpha * q . k)` of `s` (`queries x keys`) with 3xTF32
/// products (near-fp32). `None` when the sizes exceed one launch.
pub(crate) fn scores_3xtf32(dev: &Arc<CudaDevice>, s: &Scores<'_>) -> Result<Option<DeviceMatrix>> {
    let Scores {
        q,
        queries: nq,
        k,
        keys: nk,
        dim,
        alpha,
        act,
    } = *s;
    let _g = dev.lock();
    let plan = NtPlan {
        kind: NtKind::ThreeTf32,
        k: dim,
        pieces: 1,
        piece: 0,
        alpha,
        rowscale: None,
        colscale: None,
        bias: None,
        act,
    };
    let a = NtOperand {
        data: q,
        ld: dim,
        rows: nq,
    };
    let b = NtOperand {
        data: k,
        ld: dim,
        rows: nk,
    };
    let Some(out) = gemm_nt(dev, a, b, &plan)? else {
        return Ok(None);
    };
    Ok(Some(DeviceMatrix::from_cuda(
        dev,
        CudaRows::F32(out),
        nq,
        nk,
        act != NtAct::Sigmoid,
    )))
}

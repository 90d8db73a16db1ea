//! CUDA host side of the matrix operations: cuBLAS for every product
//! (SGEMM for `Exact`, `GemmEx` on tensor cores for TF32 / bf16 / f16, the
//! strided batched forms for batches), `geam` for transposes, and the
//! vector family's broadcast kernel as the in-place epilogue of the fused
//! GEMM. No kernel module of its own.
//!
//! Row-major to column-major: a row-major `m x n` matrix is, read
//! column-major, its `n x m` transpose. So the row-major
//! `C = op(A) op(B)` is computed as the column-major
//! `C^T = op(B)^T op(A)^T`: cuBLAS gets `B` as its first operand with
//! `B`'s transpose flag, `A` second with `A`'s flag, sizes `(n, m, k)` and
//! leading dimensions the row lengths of the stored matrices.

use cudarc::cublas::sys as cb;
use cudarc::cublas::sys::cublasOperation_t;
use std::sync::Arc;

use cudarc::driver::{
    CudaSlice, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg, SyncOnDrop,
};

use crate::core::error::{cu, Error, Result};
use crate::core::half::{half_dim, HalfKind};
use crate::core::linalg::{Epilogue, Plan};
use crate::core::precision::Precision;
use crate::cuda::distance::{resident_half, whole, DevInput};
use crate::cuda::knn_filter::to_f32;
use crate::runtime::backend::{GemmJob, LinalgBackend};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{f32_rows, CudaRows};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

fn int(v: usize, what: &'static str) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        Error::invalid(
            what,
            v,
            "cuBLAS takes sizes and leading dimensions up to 2^31 - 1",
        )
    })
}

fn op(t: bool) -> cublasOperation_t {
    if t {
        cublasOperation_t::CUBLAS_OP_T
    } else {
        cublasOperation_t::CUBLAS_OP_N
    }
}

/// The column-major cuBLAS GEMM that computes a row-major plan: the
/// row-major `C = op(A) op(B)` (`m x n`) is the column-major
/// `C^T = op(B)^T op(A)^T` (`n x m`, `ldc = n`). cuBLAS's first operand is
/// our `B` (the row-major stored `B` read column-major is `B^T`, so it takes
/// `B`'s own transpose flag and leading dimension `B.dim()`), its second
/// our `A` likewise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ColumnMajor {
    pub transa: cublasOperation_t,
    pub transb: cublasOperation_t,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    pub lda: i32,
    pub ldb: i32,
    pub ldc: i32,
    pub stride_a: i64,
    pub stride_b: i64,
    pub stride_c: i64,
    pub batch: i32,
}

impl ColumnMajor {
    pub(crate) fn of(p: &Plan) -> Result<Self> {
        Ok(Self {
            transa: op(p.trans_b),
            transb: op(p.trans_a),
            m: int(p.n, "n")?,
            n: int(p.m, "m")?,
            k: int(p.k, "k")?,
            lda: int(p.ldb, "leading dimension of B")?,
            ldb: int(p.lda, "leading dimension of A")?,
            ldc: int(p.n, "n")?,
            stride_a: p.stride_b as i64,
            stride_b: p.stride_a as i64,
            stride_c: (p.m * p.n) as i64,
            batch: int(p.batch, "batch")?,
        })
    }
}

/// `rows x dim` f32 values rounded to nearest in 16 bits of `kind` (no
/// padding: `dim` per row).
fn to_half(
    dev: &CudaDevice,
    src: &CudaSlice<f32>,
    rows: usize,
    dim: usize,
    kind: HalfKind,
) -> Result<CudaSlice<u16>> {
    let mut out = dev.alloc::<u16>(rows * dim)?;
    let mut too_big = dev.alloc::<u32>(1)?;
    dev.stream
        .memset_zeros(&mut too_big)
        .map_err(cu("cuMemsetD8"))?;
    let total = rows * dim;
    let cfg = dev.grid_stride(total);
    let f = dev.func("knn", "to_half_rows")?;
    let (ld, r, d, bf) = (
        dim as i64,
        int(rows, "rows")?,
        int(dim, "dim")?,
        (kind == HalfKind::Bf16) as i32,
    );
    let mut b = dev.stream.launch_builder(&f);
    // hd = d: no padding columns.
    b.arg(src).arg(&ld).arg(&r).arg(&d);
    b.arg(&mut out).arg(&d).arg(&bf).arg(&mut too_big);
    // SAFETY: src and out hold rows * dim elements, too_big one word.
    unsafe { b.launch(cfg) }.map_err(cu("to_half_rows launch"))?;
    Ok(out)
}

/// One operand of a cuBLAS call, in the element type the precision needs.
enum Operand<'a> {
    /// f32 rows as given (uploaded or resident), `dim` per row.
    F32(DevInput<'a>),
    /// f32 rows widened (exactly) from rows kept in 16 bits, `dim` per row.
    Wide(CudaSlice<f32>),
    /// 16-bit rows kept on the device (uploaded in 16 bits, or the cached
    /// copy of resident f32 rows) whose width is a multiple of 8, so they
    /// carry no padding: `dim` per row.
    Kept(&'a CudaSlice<u16>),
    /// 16-bit rows made for this call (rounded from f32, or kept rows with
    /// their padding removed), `dim` per row.
    Made(CudaSlice<u16>),
}

impl Operand<'_> {
    /// The f32 rows of an `Exact` / `Tf32` operand.
    fn f32(&self) -> Result<&CudaSlice<f32>> {
        match self {
            Operand::F32(d) => f32_rows(d.rows()),
            Operand::Wide(w) => Ok(w),
            Operand::Kept(_) | Operand::Made(_) => Err(Error::Cuda {
                op: "GEMM operand",
                message: "16-bit rows where f32 rows are needed".into(),
            }),
        }
    }

    /// The rows' device pointer (the guard is dropped after the call).
    fn ptr<'s>(&'s self, s: &'s Arc<CudaStream>) -> Result<(u64, SyncOnDrop<'s>)> {
        Ok(match self {
            Operand::F32(_) | Operand::Wide(_) => self.f32()?.device_ptr(s),
            Operand::Kept(h) => h.device_ptr(s),
            Operand::Made(h) => h.device_ptr(s),
        })
    }
}

/// Kept 16-bit rows as a cuBLAS operand of `dim` per row: in place when
/// they have no padding, else a compact copy. (Padded rows could be read in
/// place with a leading dimension of `half_dim(dim)`, but cuBLAS's kernels
/// for such shapes are slower than on the compact rows.)
fn kept<'a>(
    dev: &CudaDevice,
    rows_16: &'a CudaSlice<u16>,
    rows: usize,
    dim: usize,
) -> Result<Operand<'a>> {
    let hd = half_dim(dim);
    if hd == dim {
        return Ok(Operand::Kept(rows_16));
    }
    let mut out = dev.alloc::<u16>(rows * dim)?;
    {
        let (src, _gs) = rows_16.device_ptr(&dev.stream);
        let (dst, _gd) = out.device_ptr_mut(&dev.stream);
        let device = cudarc::driver::sys::CUmemorytype::CU_MEMORYTYPE_DEVICE;
        let copy = cudarc::driver::sys::CUDA_MEMCPY2D {
            srcXInBytes: 0,
            srcY: 0,
            srcMemoryType: device,
            srcHost: std::ptr::null(),
            srcDevice: src,
            srcArray: std::ptr::null_mut(),
            srcPitch: hd * 2,
            dstXInBytes: 0,
            dstY: 0,
            dstMemoryType: device,
            dstHost: std::ptr::null_mut(),
            dstDevice: dst,
            dstArray: std::ptr::null_mut(),
            dstPitch: dim * 2,
            WidthInBytes: dim * 2,
            Height: rows,
        };
        // SAFETY: `rows` rows of `hd` and of `dim` u16 values in the two
        // buffers; the copy is enqueued on the device's stream.
        unsafe { cudarc::driver::sys::cuMemcpy2DAsync_v2(&copy, dev.stream.cu_stream()) }
            .result()
            .map_err(cu("cuMemcpy2DAsync"))?;
    }
    Ok(Operand::Made(out))
}

/// `x` as cuBLAS reads it under `precision` (its rows always `dim` apart):
/// f32 for `Exact` and `Tf32` (16-bit rows widened), 16 bits of the
/// precision's kind for `Bf16` and `F16`. Rows already kept in that kind
/// are used (16-bit uploads, or the cached copy of resident f32 rows, made
/// on first use); other rows are rounded for the call, to the values a CPU
/// context computes with (it widens 16-bit uploads to f32).
fn operand<'a>(dev: &CudaDevice, x: &Input<'a>, precision: Precision) -> Result<Operand<'a>> {
    let want = match precision {
        Precision::Bf16 => Some(HalfKind::Bf16),
        Precision::F16 => Some(HalfKind::F16),
        Precision::Exact | Precision::Tf32 => None,
    };
    let (rows, dim) = (x.rows(), x.dim());
    if let Input::Resident(d) = x {
        if let Some((kind, rows_16)) = d.half_store() {
            if want == Some(kind) {
                return kept(dev, rows_16, rows, dim);
            }
            let mut w = dev.alloc::<f32>(rows * dim)?;
            to_f32(
                dev,
                &rows_16.as_view(),
                rows,
                dim,
                kind,
                &mut w.as_view_mut(),
            )?;
            return Ok(match want {
                Some(k) => Operand::Made(to_half(dev, &w, rows, dim, k)?),
                None => Operand::Wide(w),
            });
        }
        if let Some(k) = want {
            if let Some(h) = resident_half(dev, x, k)? {
                return kept(dev, h, rows, dim);
            }
        }
    }
    let d = whole(dev, x)?;
    Ok(match want {
        Some(k) => Operand::Made(to_half(dev, f32_rows(d.rows())?, rows, dim, k)?),
        None => Operand::F32(d),
    })
}

/// The plan's products into a new device buffer (the caller holds the lock).
fn gemm_into(
    dev: &CudaDevice,
    a: &Input<'_>,
    b: &Input<'_>,
    c: Option<&Input<'_>>,
    p: &Plan,
    epi: Option<Epilogue<'_>>,
) -> Result<CudaSlice<f32>> {
    let ao = operand(dev, a, p.precision)?;
    let bo = operand(dev, b, p.precision)?;
    let args = ColumnMajor::of(p)?;
    let mut out = dev.alloc::<f32>(p.out_len())?;
    if p.beta != 0.0 {
        if let Some(c) = c {
            let co = operand(dev, c, Precision::Exact)?;
            dev.stream
                .memcpy_dtod(&co.f32()?.slice(..p.out_len()), &mut out)
                .map_err(cu("cuMemcpyDtoD"))?;
        }
    }
    {
        let (pc, _gc) = out.device_ptr_mut(&dev.stream);
        // cuBLAS's first operand (`pa`) is our B, its second (`pb`) our A.
        let (pa, _ga) = bo.ptr(&dev.stream)?;
        let (pb, _gb) = ao.ptr(&dev.stream)?;
        let call = BlasCall {
            args,
            a: pa,
            b: pb,
            c: pc,
            alpha: p.alpha,
            beta: if c.is_some() { p.beta } else { 0.0 },
            dtype: match p.precision {
                Precision::Bf16 => cb::cudaDataType_t::CUDA_R_16BF,
                Precision::F16 => cb::cudaDataType_t::CUDA_R_16F,
                Precision::Exact | Precision::Tf32 => cb::cudaDataType_t::CUDA_R_32F,
            },
            compute: if p.precision == Precision::Tf32 {
                cb::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
            } else {
                cb::cublasComputeType_t::CUBLAS_COMPUTE_32F
            },
        };
        blas_gemm(dev, p, &call)?;
        drop((_ga, _gb, _gc));
    }
    if let Some(e) = epi {
        let bias = match e.bias {
            Some(b) => Some(crate::runtime::cuda_rows::upload_slice(dev, b)?),
            None => None,
        };
        super::vector::bias_then_in_place(
            dev,
            &mut out,
            p.batch * p.m,
            p.n,
            bias.as_ref(),
            e.act.chain(),
        )?;
    }
    // Converted and uploaded operands are freed in stream order after the calls.
    drop((ao, bo));
    Ok(out)
}

/// One cuBLAS call of a plan.
struct BlasCall {
    /// The column-major shapes.
    args: ColumnMajor,
    /// cuBLAS's first operand (our B).
    a: u64,
    /// cuBLAS's second operand (our A).
    b: u64,
    /// The output.
    c: u64,
    /// Factor of the product.
    alpha: f32,
    /// Factor of the output's prior values.
    beta: f32,
    /// Element type of the operands.
    dtype: cb::cudaDataType_t,
    /// Compute type of the tensor-core calls.
    compute: cb::cublasComputeType_t,
}

/// `call` through the cuBLAS entry point of the plan's precision and
/// batching (one match over the four calls, whose long argument lists
/// differ).
// Long by design: the four cuBLAS entry points (plain or strided batched, SGEMM or GemmEx)
// with their argument lists written out.
fn blas_gemm(dev: &CudaDevice, p: &Plan, call: &BlasCall) -> Result<()> {
    let ColumnMajor {
        transa: ta,
        transb: tb,
        m,
        n,
        k,
        lda,
        ldb,
        ldc,
        stride_a: sa,
        stride_b: sb,
        stride_c: sc,
        batch,
    } = call.args;
    let BlasCall {
        a: pa,
        b: pb,
        c: pc,
        dtype,
        compute,
        ..
    } = *call;
    let h = *dev.blas.handle();
    let (al, be) = (&call.alpha as *const f32, &call.beta as *const f32);
    let f32_t = cb::cudaDataType_t::CUDA_R_32F;
    let algo = cb::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT;
    // SAFETY: cuBLAS's first operand is our B, the second our A (their
    // stored blocks, `stride_*` apart), the output batch * m * n floats (see
    // `ColumnMajor`); the scalars are host pointers (the handle's default
    // pointer mode) that live through the calls, which are enqueued on the
    // handle's stream.
    let st = unsafe {
        match (p.precision, p.batch) {
            (Precision::Exact, 1) => cb::cublasSgemm_v2(
                h,
                ta,
                tb,
                m,
                n,
                k,
                al,
                pa as *const f32,
                lda,
                pb as *const f32,
                ldb,
                be,
                pc as *mut f32,
                ldc,
            ),
            (Precision::Exact, _) => cb::cublasSgemmStridedBatched(
                h,
                ta,
                tb,
                m,
                n,
                k,
                al,
                pa as *const f32,
                lda,
                sa,
                pb as *const f32,
                ldb,
                sb,
                be,
                pc as *mut f32,
                ldc,
                sc,
                batch,
            ),
            (_, 1) => cb::cublasGemmEx(
                h,
                ta,
                tb,
                m,
                n,
                k,
                al.cast(),
                pa as *const _,
                dtype,
                lda,
                pb as *const _,
                dtype,
                ldb,
                be.cast(),
                pc as *mut _,
                f32_t,
                ldc,
                compute,
                algo,
            ),
            _ => cb::cublasGemmStridedBatchedEx(
                h,
                ta,
                tb,
                m,
                n,
                k,
                al.cast(),
                pa as *const _,
                dtype,
                lda,
                sa,
                pb as *const _,
                dtype,
                ldb,
                sb,
                be.cast(),
                pc as *mut _,
                f32_t,
                ldc,
                sc,
                batch,
                compute,
                algo,
            ),
        }
    };
    st.result().map_err(cu("cuBLAS GEMM"))
}

/// The transpose (`dim x rows`) into a new device buffer (lock held).
fn transpose_into(dev: &CudaDevice, a: &Input<'_>) -> Result<CudaSlice<f32>> {
    let (r, c) = (int(a.rows(), "rows")?, int(a.dim(), "dim")?);
    let ao = operand(dev, a, Precision::Exact)?;
    let av = ao.f32()?;
    let mut out = dev.alloc::<f32>(a.rows() * a.dim())?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let (pa, _ga) = av.device_ptr(&dev.stream);
    let (pc, _gc) = out.device_ptr_mut(&dev.stream);
    // Row-major a (r x c) is column-major a^T (c x r, ld c); the row-major
    // result (c x r) is column-major r x c (ld r) = op_T(a^T).
    // SAFETY: both buffers hold r * c floats; beta = 0 (B is A, unread).
    unsafe {
        cb::cublasSgeam(
            *dev.blas.handle(),
            cublasOperation_t::CUBLAS_OP_T,
            cublasOperation_t::CUBLAS_OP_T,
            r,
            c,
            &alpha,
            pa as *const f32,
            c,
            &beta,
            pa as *const f32,
            c,
            pc as *mut f32,
            r,
        )
    }
    .result()
    .map_err(cu("cublasSgeam"))?;
    drop((_ga, _gc));
    Ok(out)
}

/// The transpose into a new device buffer (takes the device lock).
pub(crate) fn transposed(dev: &CudaDevice, a: &Input<'_>) -> Result<CudaSlice<f32>> {
    let _g = dev.lock();
    transpose_into(dev, a)
}

impl LinalgBackend for Arc<CudaDevice> {
    fn gemm(&self, job: GemmJob<'_>) -> Result<DeviceMatrix> {
        let _g = self.lock();
        let p = job.plan;
        let y = gemm_into(self, job.a, job.b, job.c, p, job.epilogue)?;
        let rows = CudaRows::F32(y);
        Ok(DeviceMatrix::from_cuda(
            self,
            rows,
            p.batch * p.m,
            p.n,
            true,
        ))
    }

    fn transpose(&self, a: &Input<'_>) -> Result<DeviceMatrix> {
        let y = CudaRows::F32(transposed(self, a)?);
        Ok(DeviceMatrix::from_cuda(self, y, a.dim(), a.rows(), true))
    }

    fn transpose_in_place(&self, a: &mut DeviceMatrix) -> Result<()> {
        let n = a.dim();
        let _g = self.lock();
        let rows = a.cuda_f32_mut().ok_or_else(|| {
            Error::invalid(
                "A",
                "16-bit or binary rows",
                "expected f32 rows on the device",
            )
        })?;
        let f = self.func("vector", "va_transpose_square_f32")?;
        let n_i = n as i64;
        let mut b = self.stream.launch_builder(&f);
        b.arg(rows).arg(&n_i);
        let cfg = LaunchConfig {
            grid_dim: (n.div_ceil(32) as u32, n.div_ceil(8) as u32, 1),
            block_dim: (32, 8, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the rows hold n * n floats.
        unsafe { b.launch(cfg) }.map_err(cu("va_transpose_square_f32 launch"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The row-major to column-major mapping, checked without a GPU: a
    //! plain column-major GEMM (the reference BLAS semantics) run with the
    //! arguments cuBLAS gets must give the CPU's row-major result.

    use super::*;

    /// Column-major `C = alpha op(A) op(B) + beta C` over `batch` strided products.
    fn blas(cm: &ColumnMajor, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
        let t = |o: cublasOperation_t| o == cublasOperation_t::CUBLAS_OP_T;
        let (m, n, k) = (cm.m as usize, cm.n as usize, cm.k as usize);
        let (lda, ldb, ldc) = (cm.lda as usize, cm.ldb as usize, cm.ldc as usize);
        // cuBLAS's validity rules on the leading dimensions.
        assert!(lda >= if t(cm.transa) { k } else { m }.max(1), "lda");
        assert!(ldb >= if t(cm.transb) { n } else { k }.max(1), "ldb");
        assert!(ldc >= m.max(1), "ldc");
        for s in 0..cm.batch as usize {
            let (a, b) = (
                &a[s * cm.stride_a as usize..],
                &b[s * cm.stride_b as usize..],
            );
            let c = &mut c[s * cm.stride_c as usize..];
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0f64;
                    for p in 0..k {
                        let x = if t(cm.transa) {
                            a[i * lda + p]
                        } else {
                            a[p * lda + i]
                        };
                        let y = if t(cm.transb) {
                            b[p * ldb + j]
                        } else {
                            b[j * ldb + p]
                        };
                        acc += x as f64 * y as f64;
                    }
                    let v = &mut c[j * ldc + i];
                    *v = (alpha as f64 * acc + beta as f64 * *v as f64) as f32;
                }
            }
        }
    }

    #[test]
    fn column_major_arguments_compute_the_row_major_product() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) % 17) as f32 - 8.0 // small integers: exact sums
        };
        for batch in [1usize, 3] {
            for (m, n, k) in [(1, 1, 1), (2, 3, 4), (5, 1, 7), (1, 6, 2), (4, 4, 4)] {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let (ar, ac) = if ta { (k, m) } else { (m, k) };
                    let (br, bc) = if tb { (n, k) } else { (k, n) };
                    let a: Vec<f32> = (0..batch * ar * ac).map(|_| next()).collect();
                    let b: Vec<f32> = (0..batch * br * bc).map(|_| next()).collect();
                    let c: Vec<f32> = (0..batch * m * n).map(|_| next()).collect();
                    let p = Plan {
                        batch,
                        m,
                        n,
                        k,
                        trans_a: ta,
                        trans_b: tb,
                        lda: ac,
                        ldb: bc,
                        stride_a: ar * ac,
                        stride_b: br * bc,
                        alpha: 2.0,
                        beta: -1.0,
                        precision: Precision::Exact,
                    };
                    let want = crate::cpu::linalg::gemm(&a, &b, Some(&c), &p);
                    let cm = ColumnMajor::of(&p).unwrap();
                    let mut got = c.clone();
                    // cuBLAS's first operand is B, its second A.
                    blas(&cm, p.alpha, &b, &a, p.beta, &mut got);
                    assert_eq!(got, want, "batch {batch} {m}x{n}x{k} ta {ta} tb {tb}");
                }
            }
        }
    }
}

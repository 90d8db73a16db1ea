//! CUDA ceilings: a 1 GiB device-to-device copy, a pinned host-to-device
//! copy, an 8192^3 SGEMM (exact fp32) and the same product on TF32 tensor
//! cores, timed with device events.

use cudarc::cublas::sys as cublas_sys;
use cudarc::cublas::{sys::cublasOperation_t, Gemm, GemmConfig};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};

use std::sync::Arc;

use crate::core::diagnostics::Ceilings;
use crate::core::error::{cu, Result};
use crate::runtime::backend::DiagnosticsBackend;
use crate::runtime::cuda_device::CudaDevice;

/// The device's ceilings: copy and upload rates, SGEMM and tensor-core
/// product rates.
pub(crate) fn measure(dev: &CudaDevice) -> Result<Ceilings> {
    let _g = dev.lock();
    let (copy, mut dst) = copy_rate(dev)?;
    let h2d = upload_rate(dev, &mut dst)?;
    drop(dst);
    let n = 8192usize;
    // Non-zero data: a product of zeros can run faster than real data.
    let host: Vec<f32> = (0..n * n)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let a = crate::runtime::cuda_rows::upload_slice(dev, &host)?;
    let mut c = dev.alloc::<f32>(n * n)?;
    let flops = sgemm_rate(dev, &a, &mut c, n)?;
    let (tf32_flops, bf16_flops) = tensor_rates(dev, &host, &a, &mut c, n)?;
    Ok(Ceilings {
        copy_bytes_per_s: copy,
        sgemm_flops: flops,
        tensor_flops: Some(tf32_flops),
        bf16_flops: Some(bf16_flops),
        h2d_bytes_per_s: Some(h2d),
    })
}

/// Products timed per rate.
const GEMM_REPS: usize = 3;

/// Device-to-device copy rate (bytes read and written per second) of
/// 1 GiB; returns the destination for the upload test.
fn copy_rate(dev: &CudaDevice) -> Result<(f64, CudaSlice<f32>)> {
    let len = 256 << 20; // 1 GiB of f32
    let mut src = dev.alloc::<f32>(len)?;
    dev.stream
        .memset_zeros(&mut src)
        .map_err(cu("cuMemsetD8"))?;
    let mut dst = dev.alloc::<f32>(len)?;
    dev.stream
        .memcpy_dtod(&src, &mut dst)
        .map_err(cu("cuMemcpyDtoD"))?;
    let reps = 10;
    let ms = dev.time_ms(|| {
        for _ in 0..reps {
            dev.stream
                .memcpy_dtod(&src, &mut dst)
                .map_err(cu("cuMemcpyDtoD"))?;
        }
        Ok(())
    })?;
    Ok((2.0 * (len * 4 * reps) as f64 / (ms as f64 / 1e3), dst))
}

/// Host-to-device rate from pinned memory (as the k-NN feed transfers),
/// 256 MiB at a time into `dst`.
fn upload_rate(dev: &CudaDevice, dst: &mut CudaSlice<f32>) -> Result<f64> {
    let h2d_len = 64 << 20; // 256 MiB of f32
                            // SAFETY: the bytes are written before the copy reads them.
    let mut pinned =
        unsafe { dev.context().alloc_pinned::<f32>(h2d_len) }.map_err(cu("cuMemHostAlloc"))?;
    pinned
        .as_mut_slice()
        .map_err(cu("pinned staging"))?
        .fill(1.0);
    let mut part = dst.slice_mut(..h2d_len);
    dev.stream
        .memcpy_htod(&pinned, &mut part)
        .map_err(cu("cuMemcpyHtoD"))?;
    let reps = 8;
    let ms = dev.time_ms(|| {
        for _ in 0..reps {
            dev.stream
                .memcpy_htod(&pinned, &mut part)
                .map_err(cu("cuMemcpyHtoD"))?;
        }
        Ok(())
    })?;
    let h2d = (h2d_len * 4 * reps) as f64 / (ms as f64 / 1e3);
    dev.sync()?;
    Ok(h2d)
}

/// SGEMM rate (exact fp32) of `a a` (`n x n`) into `c`.
fn sgemm_rate(
    dev: &CudaDevice,
    a: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
    n: usize,
) -> Result<f64> {
    let cfg = GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_N,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m: n as i32,
        n: n as i32,
        k: n as i32,
        alpha: 1.0f32,
        lda: n as i32,
        ldb: n as i32,
        beta: 0.0f32,
        ldc: n as i32,
    };
    // SAFETY: three n x n buffers.
    unsafe { dev.blas.gemm(cfg, a, a, c) }.map_err(cu("cublasSgemm"))?;
    let ms = dev.time_ms(|| {
        for _ in 0..GEMM_REPS {
            // SAFETY: as above.
            unsafe { dev.blas.gemm(cfg, a, a, c) }.map_err(cu("cublasSgemm"))?;
        }
        Ok(())
    })?;
    Ok(2.0 * (n as f64).powi(3) * GEMM_REPS as f64 / (ms as f64 / 1e3))
}

/// The same product on tensor cores (cublasGemmEx): TF32 from the f32
/// matrix `a` (fast-TF32 compute), the ceiling of the exact fused filter;
/// bf16 inputs (`host` truncated) with fp32 accumulation, that of the bf16
/// / f16 filters.
fn tensor_rates(
    dev: &CudaDevice,
    host: &[f32],
    a: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
    n: usize,
) -> Result<(f64, f64)> {
    let a16 = crate::runtime::cuda_rows::upload_slice(
        dev,
        &host
            .iter()
            .map(|v| (v.to_bits() >> 16) as u16)
            .collect::<Vec<u16>>(),
    )?;
    let (pa32, _g32) = a.device_ptr(&dev.stream);
    let (pa16, _g16) = a16.device_ptr(&dev.stream);
    let (pc, _gc) = c.device_ptr_mut(&dev.stream);
    let tensor = |pa: u64, input, compute, what| -> Result<f64> {
        let gemm = || -> Result<()> {
            let (alpha, beta) = (1.0f32, 0.0f32);
            let ni = n as i32;
            // SAFETY: n x n inputs of type `input` and an n x n f32 output
            // on the handle's stream; host scalars.
            unsafe {
                cublas_sys::cublasGemmEx(
                    *dev.blas.handle(),
                    cublasOperation_t::CUBLAS_OP_N,
                    cublasOperation_t::CUBLAS_OP_N,
                    ni,
                    ni,
                    ni,
                    (&alpha as *const f32).cast(),
                    pa as *const _,
                    input,
                    ni,
                    pa as *const _,
                    input,
                    ni,
                    (&beta as *const f32).cast(),
                    pc as *mut _,
                    cublas_sys::cudaDataType_t::CUDA_R_32F,
                    ni,
                    compute,
                    cublas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
                )
            }
            .result()
            .map_err(cu(what))
        };
        gemm()?;
        let ms = dev.time_ms(|| {
            for _ in 0..GEMM_REPS {
                gemm()?;
            }
            Ok(())
        })?;
        Ok(2.0 * (n as f64).powi(3) * GEMM_REPS as f64 / (ms as f64 / 1e3))
    };
    let tf32 = tensor(
        pa32,
        cublas_sys::cudaDataType_t::CUDA_R_32F,
        cublas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
        "cublasGemmEx (TF32)",
    )?;
    let bf16 = tensor(
        pa16,
        cublas_sys::cudaDataType_t::CUDA_R_16BF,
        cublas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
        "cublasGemmEx (bf16)",
    )?;
    Ok((tf32, bf16))
}

impl DiagnosticsBackend for Arc<CudaDevice> {
    fn measure_ceilings(&self) -> Result<Ceilings> {
        measure(self)
    }
}

//! Hardware ceilings: the rates a device delivers, measured by the
//! diagnostics family and used by benchmarks as the denominator.

/// Rates measured on one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceilings {
    /// Large device-to-device copy (host memcpy on the CPU), counting bytes
    /// read plus bytes written, per second.
    pub copy_bytes_per_s: f64,
    /// Large exact-fp32 matrix product (cuBLAS SGEMM without TF32 on CUDA,
    /// the `gemm` crate on all CPU threads), floating-point operations per second.
    pub sgemm_flops: f64,
    /// The same product on TF32 tensor cores (cuBLAS, fast-TF32 compute):
    /// the ceiling of the fused k-NN filter. None on the CPU.
    pub tensor_flops: Option<f64>,
    /// The same product with bf16 inputs and fp32 accumulation (cuBLAS):
    /// the ceiling of the bf16 / f16 k-NN filters. None on the CPU.
    pub bf16_flops: Option<f64>,
    /// Host-to-device copy from page-locked host memory (256 MiB
    /// transfers), bytes per second: the ceiling of a host base streamed
    /// through the device. None on the CPU.
    pub h2d_bytes_per_s: Option<f64>,
}

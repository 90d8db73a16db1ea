//! Which vectorised kernels this processor runs.

/// Whether the vectorised kernels of `quant_simd` run on this machine.
pub(crate) fn quant_simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::cpu::quant_simd::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

//! Hardware ceilings measured on a context's device, so that benchmarks can
//! report achieved rates as a fraction of what the machine delivers.

pub use crate::core::diagnostics::Ceilings;
use crate::core::error::Result;
use crate::runtime::context::Context;

/// Measures the copy bandwidth and the fp32 GEMM rate of the context's
/// device (about a second of work; a warm-up run is excluded).
///
/// ```no_run
/// let c = vector_accelerate::diagnostics::measure_ceilings(&vector_accelerate::Context::cpu()).unwrap();
/// println!("{:.1} GB/s, {:.0} GFLOP/s", c.copy_bytes_per_s / 1e9, c.sgemm_flops / 1e9);
/// ```
pub fn measure_ceilings(ctx: &Context) -> Result<Ceilings> {
    ctx.backend().measure_ceilings()
}

//! The CPU backend: the reference implementation of every operation and a
//! real fast path (GEMM from the `gemm` crate, threads from `rayon`).

#[cfg(target_arch = "x86_64")]
pub(crate) mod assign;
pub(crate) mod cluster;
pub(crate) mod diagnostics;
pub(crate) mod distance;
pub(crate) mod features;
#[cfg(target_arch = "x86_64")]
pub(crate) mod fused;
pub(crate) mod graph;
pub(crate) mod histogram;
pub(crate) mod host;
pub(crate) mod ivf;
pub(crate) mod knn;
pub(crate) mod linalg;
pub(crate) mod ml;
#[cfg(target_arch = "x86_64")]
pub(crate) mod quant_simd;
pub(crate) mod quantize;
pub(crate) mod select;
pub(crate) mod stats;
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) mod test_data;
pub(crate) mod vector;
pub(crate) mod vmath;

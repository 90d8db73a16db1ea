//! The CUDA backend: device probing, run-time compiled kernels, cuBLAS
//! GEMMs, and the host side of each operation family.

pub(crate) mod cluster;
pub(crate) mod diagnostics;
pub(crate) mod distance;
pub(crate) mod feed;
pub(crate) mod gemm_nt;
pub(crate) mod graph;
pub(crate) mod histogram;
pub(crate) mod ivf;
pub(crate) mod knn;
pub(crate) mod knn_direct;
pub(crate) mod knn_filter;
pub(crate) mod linalg;
pub(crate) mod ml;
pub(crate) mod quantize;
pub(crate) mod select;
pub(crate) mod stats;
pub(crate) mod vector;

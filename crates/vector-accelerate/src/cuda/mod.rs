//! The CUDA backend: device probing, run-time compiled kernels, cuBLAS
//! GEMMs, and the host side of each operation family.

pub(crate) mod cluster;
pub(crate) mod device;
pub(crate) mod diagnostics;
pub(crate) mod distance;
pub(crate) mod feed;
pub(crate) mod gemm_nt;
pub(crate) mod histogram;
pub(crate) mod knn;
pub(crate) mod knn_filter;
pub(crate) mod linalg;
pub(crate) mod ml;
pub(crate) mod module_cache;
pub(crate) mod quantize;
pub(crate) mod select;
pub(crate) mod stats;
pub(crate) mod tensor;
pub(crate) mod vector;

use std::fmt::Display;

use crate::error::Error;

/// Maps a backend error into the crate's error, naming the operation.
pub(crate) fn cu<E: Display>(op: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Cuda {
        op,
        message: e.to_string(),
    }
}

//! # VectorAccelerate
//!
//! GPU-accelerated (CUDA) and CPU vector distances, top-k selection and
//! exact nearest-neighbour search, with identical results on both backends.
//!
//! ```
//! use vector_accelerate::{knn, Context, Matrix, Metric};
//!
//! // CUDA device 0 when usable, else the CPU (VECTOR_ACCELERATE_DEVICE overrides).
//! let ctx = Context::new()?;
//! let base = Matrix::new((0..1000).map(|i| (i as f32).sin()).collect(), 10)?; // 100 x 10
//! let queries = Matrix::new(base.row(42).to_vec(), 10)?;
//! let hits = knn(&ctx, &queries, &base, 5, Metric::L2)?;
//! assert_eq!(hits.row_ids(0)[0], 42);
//! # Ok::<(), vector_accelerate::Error>(())
//! ```
//!
//! Families: [`distance`] (every metric; pair, 1-vs-N, N-vs-M), [`select`]
//! (top-k, streaming, merge), [`knn`], [`cluster`] (k-means) and
//! [`quantize`] (scalar, binary and product quantization) and [`vector`]
//! (normalisation, element-wise maps, reductions, softmax), [`stats`]
//! (descriptive statistics, quantiles, covariance and correlation),
//! [`histogram`] (uniform, logarithmic, custom and adaptive bins, 2-D
//! histograms, kernel density estimation) and [`linalg`] (GEMM, GEMV,
//! transpose, batched and fused GEMM). Inputs are host matrices
//! ([`Matrix`], [`MatrixView`], [`BinaryMatrix`]) or rows kept on the device
//! with [`Context::upload`].
#![deny(missing_docs)]

mod core;
mod cpu;
mod cuda;
pub mod index;
mod ops;
mod runtime;

pub use crate::core::device::{Device, DeviceInfo, MemoryStats};
pub use crate::core::error::{Error, Result};
pub use crate::core::interrupt::interrupt_flag;
pub use crate::core::matrix::{words_for_bits, BinaryMatrix, BinaryView, Matrix, MatrixView};
pub use crate::core::metric::{Distance, Metric};
pub use crate::core::neighbors::{missing_value, Neighbors, Order, MISSING_ID};
pub use crate::core::precision::{Precision, WalkPrecision};
pub use half;
pub use ops::knn::{knn, knn_resident, knn_with, KnnOptions};
pub use ops::{
    cluster, diagnostics, distance, histogram, linalg, ml, quantize, select, stats, vector,
};
pub use runtime::context::{Context, BUDGET_ENV, DEVICE_ENV};
pub use runtime::input::Input;
pub use runtime::pinned::PinnedMatrix;
pub use runtime::resident::ResidentNeighbors;
/// DLPack interchange: [`DeviceMatrix::from_dlpack`], [`DeviceMatrix::into_dlpack`],
/// [`DeviceIds::into_dlpack`] and the C structs they read and write.
pub mod dlpack {
    pub use crate::runtime::dlpack::{
        DLDataType, DLDevice, DLManagedTensor, DLTensor, ForeignRows, DEVICE_CPU, DEVICE_CUDA,
    };
}
pub use runtime::tensor::{DeviceIds, DeviceMatrix};

/// Test hooks (cargo feature `debug-hooks`, off by default): output
/// poisoning and counters of which CUDA paths ran.
#[cfg(feature = "debug-hooks")]
#[doc(hidden)]
pub mod debug;

/// CUDA kernel sources and their run-time compilation (usable without a GPU
/// when NVRTC is installed).
pub mod kernels {
    pub use crate::runtime::kernel_cache::{
        compile_all, nvrtc_available, nvrtc_version, KernelModule, MODULES,
    };
}

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The migration guide's Rust snippets, compiled and run as doctests.
#[doc = include_str!("../../../docs/MIGRATING_FROM_SWIFT.md")]
#[cfg(doctest)]
pub struct MigrationGuideDoctests;

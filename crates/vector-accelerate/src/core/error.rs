//! The crate's one error type.

use std::fmt;

/// Result alias used by every fallible function of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with the values a user needs to fix it.
///
/// Backend (CUDA driver, NVRTC, cuBLAS) failures are wrapped as text so the
/// public API never exposes `cudarc` types.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input has no rows (or no elements) where at least one is required.
    #[error("{what} is empty")]
    EmptyInput {
        /// Which input.
        what: &'static str,
    },
    /// A matrix was given with dimension 0.
    #[error("{what} has dimension 0")]
    ZeroDimension {
        /// Which input.
        what: &'static str,
    },
    /// The length of a flat buffer is not `rows * dim`.
    #[error("{what}: buffer of {len} elements is not a whole number of rows of dimension {dim}")]
    RaggedData {
        /// Which input.
        what: &'static str,
        /// Buffer length in elements.
        len: usize,
        /// Row dimension.
        dim: usize,
    },
    /// Two inputs that must agree in size do not.
    #[error("dimension mismatch: {what} expected {expected}, got {got}")]
    DimensionMismatch {
        /// What was compared.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size given.
        got: usize,
    },
    /// `k` must be at least 1.
    #[error("k must be at least 1 (got {k})")]
    InvalidK {
        /// The value given.
        k: usize,
    },
    /// A parameter is out of its valid range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A metric cannot be used with this kind of input or option.
    #[error("metric {metric} is not supported {context}")]
    UnsupportedMetric {
        /// The metric's name.
        metric: String,
        /// What it was combined with.
        context: String,
    },
    /// An unknown metric name was parsed.
    #[error("unknown metric '{name}' (expected one of: l2, euclidean, cosine, cosine-similarity, ip, abs-ip, l1, linf, minkowski:P, hamming, hamming-normalized, jaccard)")]
    UnknownMetric {
        /// The name given.
        name: String,
    },
    /// A device-resident matrix was used with a context of another device.
    #[error("data lives on {data}, but the context runs on {context}")]
    DeviceMismatch {
        /// Where the data lives.
        data: String,
        /// The context's device.
        context: String,
    },
    /// CUDA was requested explicitly but cannot be used.
    #[error("CUDA is not available: {reason}")]
    CudaUnavailable {
        /// Why (missing driver, library or device).
        reason: String,
    },
    /// A CUDA driver, NVRTC or cuBLAS call failed.
    #[error("CUDA error in {op}: {message}")]
    Cuda {
        /// The operation that failed.
        op: &'static str,
        /// The backend's message.
        message: String,
    },
    /// A CUDA kernel module did not compile.
    #[error("kernel module '{module}' failed to compile for {arch}:\n{log}")]
    KernelCompile {
        /// Module name.
        module: &'static str,
        /// Target architecture, e.g. `sm_90`.
        arch: String,
        /// The compiler's log.
        log: String,
    },
    /// Statistics found NaN or infinite values and were not asked to skip
    /// them (see `stats::StatsOptions::skip_non_finite`).
    #[error("{what}: {count} non-finite value(s) (NaN or +-inf), the first in {segment}; statistics reject them unless skip_non_finite is set")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// How many non-finite values were found (in total).
        count: u64,
        /// Where the first was found (`"the array"`, `"row 3"`, `"column 7"`).
        segment: String,
    },
    /// Even the smallest tile of an operation does not fit in the device memory budget.
    #[error("out of device memory: {what} needs {requested} bytes but the budget leaves {available} bytes")]
    OutOfDeviceMemory {
        /// What was being allocated.
        what: &'static str,
        /// Bytes needed.
        requested: usize,
        /// Bytes available under the budget.
        available: usize,
    },
    /// A named tensor is not in the weight store.
    #[error("tensor '{name}' is not in the weight store (available: {available})")]
    MissingTensor {
        /// The name asked for.
        name: String,
        /// The names the store holds, sorted, comma-separated (the first
        /// 20, then how many more).
        available: String,
    },
    /// A tensor does not have the shape an operation needs.
    #[error("tensor '{name}' has the wrong shape: expected {expected:?}, found {found:?}")]
    WrongShape {
        /// The tensor's name.
        name: String,
        /// The shape required.
        expected: Vec<usize>,
        /// The tensor's shape.
        found: Vec<usize>,
    },
    /// A tensor does not have the element type a typed read requires.
    #[error("tensor '{name}' has dtype {found}, expected {expected}")]
    WrongDtype {
        /// The tensor's name.
        name: String,
        /// The dtype required.
        expected: crate::core::dtype::DType,
        /// The tensor's dtype.
        found: crate::core::dtype::DType,
    },
    /// The values given for a tensor are not as many as its shape holds.
    #[error("tensor '{name}' of shape {shape:?} and dtype {dtype} needs {expected_bytes} bytes, got {got_bytes}")]
    TensorSize {
        /// The tensor's name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Its dtype.
        dtype: crate::core::dtype::DType,
        /// Bytes the shape and dtype need.
        expected_bytes: usize,
        /// Bytes given.
        got_bytes: usize,
    },
    /// An id given to an index is already in it (or repeated in the batch).
    #[error("id {id} is already in the index (ids must be unique)")]
    DuplicateId {
        /// The id.
        id: u64,
    },
    /// An id asked for is not in the index (never added, or removed).
    #[error("id {id} is not in the index")]
    UnknownId {
        /// The id.
        id: u64,
    },
    /// An index that needs training was used before [`train`](crate::index::Index::train).
    #[error("{what} must be trained before {operation} (call train with representative vectors)")]
    NotTrained {
        /// The index.
        what: String,
        /// What was attempted.
        operation: &'static str,
    },
    /// An index factory string that cannot be built.
    #[error("index factory string '{spec}': {reason}")]
    BadFactory {
        /// The string given.
        spec: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// An index file cannot be read or written, or is truncated or damaged.
    #[error("index file {path}, byte {offset}: {reason}")]
    BadIndexFile {
        /// The file's path.
        path: String,
        /// Where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A weight file cannot be read or written, or its contents are not a
    /// valid safetensors file the library supports (truncated, invalid
    /// header, unsupported dtype such as `F64` or `I64`).
    #[error("weight file {path}: {reason}")]
    BadWeightFile {
        /// The file's path (`<bytes>` for an in-memory buffer).
        path: String,
        /// What is wrong, with the offending values.
        reason: String,
    },
    /// A long operation stopped because [`interrupt_flag`](crate::interrupt_flag)
    /// was set (Ctrl-C in the Python package).
    #[error("interrupted: the operation stopped at its next step after an interrupt request")]
    Interrupted,
    /// One part of an index spread over several contexts failed (the
    /// others' work stands; see [`MultiIndex`](crate::index::MultiIndex)).
    #[error("part {part} of the index failed: {source}")]
    Part {
        /// The part's number (its context's place in the list).
        part: usize,
        /// What went wrong there.
        source: Box<Error>,
    },
}

impl Error {
    pub(crate) fn invalid(
        name: &'static str,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Maps a backend error into the crate's error, naming the operation.
pub(crate) fn cu<E: std::fmt::Display>(op: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Cuda {
        op,
        message: e.to_string(),
    }
}

//! The library's errors as Python exceptions: bad input is `ValueError`
//! (an unknown id `KeyError`), running out of device memory `MemoryError`,
//! the rest the package's `VectorAccelerateError`; each carries the
//! library's message.

use ::vector_accelerate::Error;
use pyo3::exceptions::{PyException, PyKeyError, PyMemoryError, PyValueError};
use pyo3::PyErr;

pyo3::create_exception!(
    vector_accelerate,
    VectorAccelerateError,
    PyException,
    "An error of the library that is not about the input (device, kernels, files)."
);

/// The Python exception for a library error.
pub(crate) fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::OutOfDeviceMemory { .. } => PyMemoryError::new_err(msg),
        Error::UnknownId { .. } => PyKeyError::new_err(msg),
        Error::EmptyInput { .. }
        | Error::ZeroDimension { .. }
        | Error::RaggedData { .. }
        | Error::DimensionMismatch { .. }
        | Error::InvalidK { .. }
        | Error::InvalidParameter { .. }
        | Error::UnsupportedMetric { .. }
        | Error::UnknownMetric { .. }
        | Error::NonFinite { .. }
        | Error::DuplicateId { .. }
        | Error::NotTrained { .. }
        | Error::BadFactory { .. } => PyValueError::new_err(msg),
        _ => VectorAccelerateError::new_err(msg),
    }
}

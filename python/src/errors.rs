//! The library's errors as Python exceptions: bad input is `ValueError`
//! (an unknown id `KeyError`), running out of device memory `MemoryError`,
//! a call stopped by Ctrl-C `KeyboardInterrupt`, the rest the package's
//! `VectorAccelerateError`; each carries the library's message.
//!
//! Ctrl-C: SIGINT also sets the library's interrupt flag (beside Python's
//! own handler), so a running computation stops at its next step; each
//! call clears the flag as it starts ([`start_call`]).

use std::sync::atomic::Ordering;
use std::sync::Once;

use ::vector_accelerate::Error;
use pyo3::exceptions::{PyException, PyKeyError, PyKeyboardInterrupt, PyMemoryError, PyValueError};
use pyo3::prelude::*;

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
        Error::Interrupted => interrupted(msg),
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
        | Error::BadFactory { .. }
        | Error::DeviceMismatch { .. } => PyValueError::new_err(msg),
        _ => VectorAccelerateError::new_err(msg),
    }
}

/// The exception of a call the interrupt flag stopped: the one Python's
/// pending SIGINT handler raises (KeyboardInterrupt, with a note saying the
/// library stopped), or a KeyboardInterrupt of our own when none is pending.
fn interrupted(msg: String) -> PyErr {
    Python::attach(|py| {
        let e = match py.check_signals() {
            Err(e) => e,
            Ok(()) => return PyKeyboardInterrupt::new_err(msg),
        };
        let note = format!("vector_accelerate: {msg}");
        // Notes exist from Python 3.11; older versions keep the bare error.
        let _ = e.value(py).call_method1("add_note", (note,));
        e
    })
}

/// Called as each computation starts: hooks SIGINT once (chained after
/// Python's handler) and clears the interrupt flag.
pub(crate) fn start_call() {
    static HOOK: Once = Once::new();
    let flag = vector_accelerate::interrupt_flag();
    HOOK.call_once(|| {
        #[cfg(unix)]
        {
            let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone());
        }
    });
    flag.store(false, Ordering::SeqCst);
}

//! NumPy arrays in and out: inputs are made C-contiguous `float32` (no copy
//! when they already are; `float64`, `float16`, Fortran order and strided
//! views are converted), results come back as new arrays.

use ::vector_accelerate as va;
use ::vector_accelerate::{Neighbors, MISSING_ID};

use crate::errors::to_py;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `x` as a C-contiguous, aligned `dtype` array (NumPy's `require`).
fn contiguous<'py>(x: &Bound<'py, PyAny>, dtype: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let kw = PyDict::new(py);
    kw.set_item("dtype", dtype)?;
    // C order and aligned: arrays rebuilt from byte buffers (pickles,
    // Dask transfers) may start at any byte.
    kw.set_item("requirements", "CA")?;
    py.import("numpy")?.call_method("require", (x,), Some(&kw))
}

/// `x` (named `what` in errors) as C-contiguous `float32` rows `[n, d]`.
pub(crate) fn f32_rows<'py>(
    x: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    if let Ok(a) = x.cast::<PyArray2<f32>>() {
        if a.is_c_contiguous() && a.data().is_aligned() {
            return Ok(a.clone());
        }
    }
    let a = contiguous(x, "float32")?;
    let ndim: usize = a.getattr("ndim")?.extract()?;
    if ndim != 2 {
        return Err(PyValueError::new_err(format!(
            "{what}: expected a 2-D array of vectors (rows), got {ndim} dimensions"
        )));
    }
    Ok(a.extract::<Bound<'py, PyArray2<f32>>>()?)
}

/// `ids` (named `what` in errors) as `u64` ids from any integer array
/// (negative ids refused).
pub(crate) fn ids_of(ids: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u64>> {
    let a = contiguous(ids, "int64")?;
    let a = a.extract::<Bound<'_, PyArray1<i64>>>().map_err(|_| {
        PyValueError::new_err(format!("{what}: expected a 1-D array of integer ids"))
    })?;
    let view = a.readonly();
    view.as_slice()?
        .iter()
        .map(|&i| {
            u64::try_from(i)
                .map_err(|_| PyValueError::new_err(format!("{what}: id {i} is negative")))
        })
        .collect()
}

/// FAISS's `(D, I)`: distances `float32 [n, k]` and ids `int64 [n, k]`.
pub(crate) type DistancesIds<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<i64>>);

/// Neighbours as FAISS returns them: distances `float32 [n, k]` and ids
/// `int64 [n, k]`, -1 (and the metric's worst value) where missing.
pub(crate) fn neighbors_to_numpy(py: Python<'_>, nn: Neighbors) -> PyResult<DistancesIds<'_>> {
    let (rows, k) = (nn.rows(), nn.k());
    let (ids, dist) = nn.into_parts();
    let ids: Vec<i64> = ids
        .into_iter()
        .map(|i| if i == MISSING_ID { -1 } else { i as i64 })
        .collect();
    let d = PyArray1::from_vec(py, dist).reshape([rows, k])?;
    let i = PyArray1::from_vec(py, ids).reshape([rows, k])?;
    Ok((d, i))
}

/// A host matrix as a new `float32 [rows, dim]` array.
pub(crate) fn matrix_to_numpy(py: Python<'_>, m: va::Matrix) -> PyResult<Bound<'_, PyArray2<f32>>> {
    let (rows, dim) = (m.rows(), m.dim());
    PyArray1::from_vec(py, m.into_vec()).reshape([rows, dim])
}

/// Python's spelling of a boolean (for `__repr__`).
pub(crate) fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A vector as a new 1-D array.
pub(crate) fn vector_to_numpy(py: Python<'_>, v: Vec<f32>) -> Bound<'_, PyArray1<f32>> {
    PyArray1::from_vec(py, v)
}

/// Rows and columns of a 2-D array.
pub(crate) fn shape(a: &Bound<'_, PyArray2<f32>>) -> (usize, usize) {
    let d = a.dims();
    (d[0], d[1])
}

/// Rows of `x` as the library's view, run through `f` without the GIL.
pub(crate) fn with_rows<T: Send>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    f: impl FnOnce(va::MatrixView<'_>) -> va::Result<T> + Send,
) -> PyResult<T> {
    crate::errors::start_call();
    let x = f32_rows(x, "x")?;
    let (_, d) = shape(&x);
    let v = x.readonly();
    let s = v.as_slice()?;
    py.detach(|| f(va::MatrixView::new(s, d)?)).map_err(to_py)
}

/// A NumPy `uint8` array `[n, bytes]` (named `what` in errors) as
/// bit-packed binary rows of `8 * bytes` bits (byte `j` holds bits `8j` to
/// `8j + 7`, least significant first, as FAISS packs them); `None` for
/// other dtypes.
pub(crate) fn binary_rows(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<va::BinaryMatrix>> {
    let Ok(a) = x.cast::<numpy::PyArray2<u8>>() else {
        let is_u8 = x
            .getattr("dtype")
            .and_then(|d| d.str())
            .is_ok_and(|d| d == "uint8");
        if is_u8 {
            return Err(PyValueError::new_err(format!(
                "{what}: uint8 bit-packed vectors must be a 2-D array [n, bytes]"
            )));
        }
        return Ok(None);
    };
    let a = contiguous(a.as_any(), "uint8")?.extract::<Bound<'_, PyArray2<u8>>>()?;
    let [rows, bytes] = [a.dims()[0], a.dims()[1]];
    let view = a.readonly();
    let data = view.as_slice()?;
    let wpr = va::words_for_bits(bytes * 8);
    let mut words = vec![0u64; rows * wpr];
    for (r, row) in data.chunks_exact(bytes.max(1)).enumerate().take(rows) {
        for (j, &b) in row.iter().enumerate() {
            words[r * wpr + j / 8] |= (b as u64) << (8 * (j % 8));
        }
    }
    va::BinaryMatrix::new(words, bytes * 8)
        .map(Some)
        .map_err(to_py)
}

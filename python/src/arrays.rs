//! NumPy arrays in and out: inputs are made C-contiguous `float32` (no copy
//! when they already are; `float64`, `float16`, Fortran order and strided
//! views are converted), results come back as new arrays.

use ::vector_accelerate as va;
use ::vector_accelerate::{Neighbors, MISSING_ID};

use crate::errors::to_py;
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `x` as a C-contiguous `dtype` array (NumPy's `ascontiguousarray`).
fn contiguous<'py>(x: &Bound<'py, PyAny>, dtype: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let kw = PyDict::new(py);
    kw.set_item("dtype", dtype)?;
    py.import("numpy")?
        .call_method("ascontiguousarray", (x,), Some(&kw))
}

/// `x` (named `what` in errors) as C-contiguous `float32` rows `[n, d]`.
pub(crate) fn f32_rows<'py>(
    x: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
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

//! FAISS-shaped quantizers: `ProductQuantizer(d, M, nbits)` and
//! `ScalarQuantizer(d, "QT_8bit" | "QT_4bit")`, each with `train`,
//! `compute_codes -> uint8 [n, code_size]` and `decode -> float32 [n, d]`.

use ::vector_accelerate as va;
use ::vector_accelerate::quantize::{
    Codec, PqCodes, PqOptions, ProductQuantizer, ScalarCodes, ScalarOptions, ScalarQuantizer,
    ScalarRange,
};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{py_bool, with_rows};
use crate::context;
use crate::errors::to_py;

/// `codes` as C-contiguous `uint8 [n, width]`.
fn code_rows(codes: &Bound<'_, PyAny>, width: usize) -> PyResult<Vec<u8>> {
    let py = codes.py();
    let kw = PyDict::new(py);
    kw.set_item("dtype", "uint8")?;
    let a = py
        .import("numpy")?
        .call_method("ascontiguousarray", (codes,), Some(&kw))?;
    let a = a
        .extract::<Bound<'_, PyArray2<u8>>>()
        .map_err(|_| PyValueError::new_err("codes: expected a 2-D uint8 array"))?;
    if a.dims()[1] != width {
        return Err(PyValueError::new_err(format!(
            "codes: {} bytes per row, expected code_size {width}",
            a.dims()[1]
        )));
    }
    Ok(a.readonly().as_slice()?.to_vec())
}

/// Bytes as a new `uint8 [n, width]` array.
fn bytes_to_numpy(py: Python<'_>, b: Vec<u8>, width: usize) -> PyResult<Bound<'_, PyArray2<u8>>> {
    let n = b.len() / width.max(1);
    PyArray1::from_vec(py, b).reshape([n, width])
}

/// Decoded rows as a new `float32 [n, d]` array.
fn decoded(py: Python<'_>, m: va::Matrix) -> PyResult<Bound<'_, PyArray2<f32>>> {
    let (rows, dim) = (m.rows(), m.dim());
    PyArray1::from_vec(py, m.into_vec()).reshape([rows, dim])
}

/// FAISS's `ProductQuantizer`: `M` sub-spaces of `2^nbits` centroids.
#[pyclass(name = "ProductQuantizer", module = "vector_accelerate")]
struct PyPq {
    #[pyo3(get)]
    d: usize,
    #[pyo3(get, name = "M")]
    m: usize,
    #[pyo3(get)]
    nbits: u32,
    inner: Option<ProductQuantizer>,
}

#[pymethods]
impl PyPq {
    fn __repr__(&self) -> String {
        let trained = py_bool(self.inner.is_some());
        format!(
            "ProductQuantizer(d={}, M={}, nbits={}, trained={trained})",
            self.d, self.m, self.nbits
        )
    }
    #[new]
    #[pyo3(signature = (d, m, nbits = 8))]
    fn new(d: usize, m: usize, nbits: u32) -> Self {
        Self {
            d,
            m,
            nbits,
            inner: None,
        }
    }
    /// Bytes of one row's code.
    #[getter]
    fn code_size(&self) -> usize {
        (self.m * self.nbits as usize).div_ceil(8)
    }
    /// Trains the codebooks on `x [n, d]` (k-means per sub-space).
    fn train(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let (ctx, opts) = (&context()?, PqOptions::new(self.m, self.nbits));
        self.inner = Some(with_rows(py, x, |v| {
            ProductQuantizer::train(ctx, v, &opts)
        })?);
        Ok(())
    }
    /// The codes of `x [n, d]`: `uint8 [n, code_size]`.
    fn compute_codes<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<u8>>> {
        let (pq, ctx) = (self.trained()?, &context()?);
        let b = with_rows(py, x, |v| {
            let codes = pq.encode(ctx, v)?.to_host()?;
            Ok(codes.as_bytes().unwrap_or_default().to_vec())
        })?;
        bytes_to_numpy(py, b, self.code_size())
    }
    /// The vectors of `codes [n, code_size]`: `float32 [n, d]`.
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (pq, ctx) = (self.trained()?, &context()?);
        let b = code_rows(codes, self.code_size())?;
        let (m, nbits) = (self.m, self.nbits);
        let out = py.detach(|| {
            let c = PqCodes::from_bytes(b, m, nbits)?.copy_to(ctx)?;
            pq.decode(ctx, &c)?.into_host()
        });
        decoded(py, out.map_err(to_py)?)
    }
}

impl PyPq {
    fn trained(&self) -> PyResult<&ProductQuantizer> {
        self.inner.as_ref().ok_or_else(|| {
            PyValueError::new_err("the ProductQuantizer is not trained (call train first)")
        })
    }
}

/// FAISS's `ScalarQuantizer` with `"QT_8bit"` or `"QT_4bit"`: each
/// dimension's training range in 256 or 16 steps.
#[pyclass(name = "ScalarQuantizer", module = "vector_accelerate")]
struct PySq {
    #[pyo3(get)]
    d: usize,
    opts: ScalarOptions,
    inner: Option<ScalarQuantizer>,
}

#[pymethods]
impl PySq {
    fn __repr__(&self) -> String {
        let trained = py_bool(self.inner.is_some());
        format!(
            "ScalarQuantizer(d={}, {:?}, trained={trained})",
            self.d, self.opts
        )
    }
    #[new]
    #[pyo3(signature = (d, qtype = "QT_8bit"))]
    fn new(d: usize, qtype: &str) -> PyResult<Self> {
        let opts = match qtype {
            "QT_8bit" => ScalarOptions::int8(),
            "QT_4bit" => ScalarOptions::int4(),
            other => {
                return Err(PyValueError::new_err(format!(
                    "qtype '{other}': expected QT_8bit or QT_4bit"
                )))
            }
        }
        .with_range(ScalarRange::Asymmetric);
        Ok(Self {
            d,
            opts,
            inner: None,
        })
    }
    /// Bytes of one row's code.
    #[getter]
    fn code_size(&self) -> usize {
        self.opts.bits.bytes_per_row(self.d)
    }
    /// Fits each dimension's range on `x [n, d]`.
    fn train(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let (ctx, opts) = (&context()?, self.opts);
        self.inner = Some(with_rows(py, x, |v| ScalarQuantizer::train(ctx, v, &opts))?);
        Ok(())
    }
    /// The codes of `x [n, d]`: `uint8 [n, code_size]`.
    fn compute_codes<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<u8>>> {
        let (sq, ctx) = (self.trained()?, &context()?);
        let b = with_rows(py, x, |v| sq.encode(ctx, v)?.to_row_bytes())?;
        bytes_to_numpy(py, b, self.code_size())
    }
    /// The vectors of `codes [n, code_size]`: `float32 [n, d]`.
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (sq, ctx) = (self.trained()?, &context()?);
        let b = code_rows(codes, self.code_size())?;
        let (d, bits) = (self.d, self.opts.bits);
        let out = py.detach(|| {
            let c = ScalarCodes::from_row_bytes(&b, d, bits, ScalarRange::Asymmetric, false)?
                .copy_to(ctx)?;
            sq.decode(ctx, &c)?.into_host()
        });
        decoded(py, out.map_err(to_py)?)
    }
}

impl PySq {
    fn trained(&self) -> PyResult<&ScalarQuantizer> {
        self.inner.as_ref().ok_or_else(|| {
            PyValueError::new_err("the ScalarQuantizer is not trained (call train first)")
        })
    }
}

/// Adds the quantizer classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPq>()?;
    m.add_class::<PySq>()
}

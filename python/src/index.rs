//! `vector_accelerate.Index`: the library's index with FAISS's method names
//! and shapes (`index_factory`, `.train`, `.add`, `.add_with_ids`,
//! `.search -> (D, I)`, `.range_search`, `.remove_ids`, `.reconstruct`,
//! `.ntotal`, `write_index`, `read_index`).

use std::path::PathBuf;

use ::vector_accelerate as va;
use ::vector_accelerate::index::{IdSelector, Index, SearchParams};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{f32_rows, ids_of, neighbors_to_numpy, shape, vector_to_numpy, DistancesIds};
use crate::errors::to_py;
use crate::{context, metric_of};

/// A vector index built from a factory string (`"Flat"`, `"IVF4096,Flat"`,
/// `"IVF4096,SQ8"`, `"IVF4096,PQ32x8,Refine"`), holding vectors under
/// `int64` ids on the module's device.
#[pyclass(name = "Index", module = "vector_accelerate")]
pub(crate) struct PyIndex {
    inner: Index,
}

/// Rows of a NumPy array as the library's view, for use without the GIL.
macro_rules! rows {
    ($arr:expr) => {{
        let (_, d) = shape(&$arr);
        ($arr.readonly(), d)
    }};
}

#[pymethods]
impl PyIndex {
    /// Dimension of the vectors.
    #[getter]
    fn d(&self) -> usize {
        self.inner.dim()
    }
    /// Vectors held (FAISS's `ntotal`).
    #[getter]
    fn ntotal(&self) -> usize {
        self.inner.len()
    }
    /// Whether the index can take vectors.
    #[getter]
    fn is_trained(&self) -> bool {
        self.inner.is_trained()
    }
    /// Lists scanned per query by default (IVF indexes).
    #[getter]
    fn nprobe(&self) -> usize {
        self.inner.nprobe()
    }
    #[setter]
    fn set_nprobe(&mut self, n: usize) -> PyResult<()> {
        self.inner.set_nprobe(n).map_err(to_py)
    }
    /// The factory string (lists filled in once trained).
    #[getter]
    fn factory(&self) -> String {
        self.inner.factory()
    }

    /// Trains the coarse quantizer (and list codec) on `x` `[n, d]`.
    fn train(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let x = f32_rows(x, "x")?;
        let (v, d) = rows!(x);
        let s = v.as_slice()?;
        let inner = &mut self.inner;
        py.detach(|| inner.train(va::MatrixView::new(s, d)?))
            .map_err(to_py)
    }

    /// Adds `x` `[n, d]` with sequential ids.
    fn add(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let x = f32_rows(x, "x")?;
        let (v, d) = rows!(x);
        let s = v.as_slice()?;
        let inner = &mut self.inner;
        py.detach(|| inner.add(va::MatrixView::new(s, d)?).map(drop))
            .map_err(to_py)
    }

    /// Adds `x` `[n, d]` under `ids` `[n]` (non-negative integers).
    fn add_with_ids(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let x = f32_rows(x, "x")?;
        let ids = ids_of(ids, "ids")?;
        let (v, d) = rows!(x);
        let s = v.as_slice()?;
        let inner = &mut self.inner;
        py.detach(|| inner.add_with_ids(va::MatrixView::new(s, d)?, &ids))
            .map_err(to_py)
    }

    /// The `k` nearest vectors of each row of `x`: `(D, I)` as FAISS
    /// returns them. `nprobe` and `refine_factor` override the index's
    /// defaults; `allowed` (an id array) restricts the results to those ids.
    #[pyo3(signature = (x, k, *, nprobe = None, refine_factor = None, allowed = None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        k: usize,
        nprobe: Option<usize>,
        refine_factor: Option<usize>,
        allowed: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<DistancesIds<'py>> {
        let x = f32_rows(x, "x")?;
        let filter = match allowed {
            Some(a) => Some(IdSelector::allow(ids_of(a, "allowed")?)),
            None => None,
        };
        let (v, d) = rows!(x);
        let s = v.as_slice()?;
        let inner = &self.inner;
        let nn = py.detach(|| {
            let mut p = SearchParams::default();
            if let Some(n) = nprobe {
                p = p.with_nprobe(n);
            }
            if let Some(f) = refine_factor {
                p = p.with_refine_factor(f);
            }
            if let Some(f) = &filter {
                p = p.with_filter(f);
            }
            inner.search(va::MatrixView::new(s, d)?, k, &p)
        });
        neighbors_to_numpy(py, nn.map_err(to_py)?)
    }

    /// Removes the vectors of `ids`; returns how many were removed.
    fn remove_ids(&mut self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let sel = IdSelector::allow(ids_of(ids, "ids")?);
        let inner = &mut self.inner;
        py.detach(|| inner.remove_ids(&sel)).map_err(to_py)
    }

    /// The stored vector of `id` (decoded for coded lists without Refine).
    fn reconstruct<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let v = self.inner.reconstruct(id).map_err(to_py)?;
        Ok(vector_to_numpy(py, v))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Index('{}', d={}, metric={}, ntotal={}, device={})",
            self.inner.factory(),
            self.inner.dim(),
            self.inner.metric(),
            self.inner.len(),
            self.inner.context().device()
        )
    }
}

/// An empty index of `d`-dimensional vectors from a factory string
/// (FAISS's `index_factory`); `metric` a name or `METRIC_L2` /
/// `METRIC_INNER_PRODUCT` (default L2).
#[pyfunction]
#[pyo3(signature = (d, description, metric = None))]
fn index_factory(
    d: usize,
    description: &str,
    metric: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyIndex> {
    let metric = metric.map_or(Ok(va::Metric::L2), metric_of)?;
    let inner = Index::new(context()?, d, description, metric).map_err(to_py)?;
    Ok(PyIndex { inner })
}

/// Writes `index` to `path` (checksummed; a temporary file renamed over it).
#[pyfunction]
fn write_index(py: Python<'_>, index: &PyIndex, path: PathBuf) -> PyResult<()> {
    let inner = &index.inner;
    py.detach(|| inner.save(&path)).map_err(to_py)
}

/// Reads an index written by `write_index` onto the module's device.
#[pyfunction]
fn read_index(py: Python<'_>, path: PathBuf) -> PyResult<PyIndex> {
    let ctx = context()?;
    let inner = py.detach(|| Index::load(ctx, &path)).map_err(to_py)?;
    Ok(PyIndex { inner })
}

/// Adds the index class and functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIndex>()?;
    m.add_function(wrap_pyfunction!(index_factory, m)?)?;
    m.add_function(wrap_pyfunction!(write_index, m)?)?;
    m.add_function(wrap_pyfunction!(read_index, m)?)
}

//! `vector_accelerate.Index`: the library's index with FAISS's method names
//! and shapes (`index_factory`, `.train`, `.add`, `.add_with_ids`,
//! `.search -> (D, I)`, `.range_search`, `.remove_ids`, `.reconstruct`,
//! `.ntotal`, `write_index`, `read_index`).

use std::path::PathBuf;

use ::vector_accelerate as va;
use ::vector_accelerate::index::{IdSelector, Index, SearchParams};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::arrays::{ids_of, vector_to_numpy};
use crate::dlpack::with_input;
use crate::errors::to_py;
use crate::{context, metric_of};

/// A vector index built from a factory string (`"Flat"`, `"IVF4096,Flat"`,
/// `"IVF4096,SQ8"`, `"IVF4096,PQ32x8,Refine"`), holding vectors under
/// `int64` ids on the module's device.
#[pyclass(name = "Index", module = "vector_accelerate")]
pub(crate) struct PyIndex {
    pub(crate) inner: Index,
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
    /// The metric's name (`"l2"`, `"ip"`, `"cosine"`, ...).
    #[getter]
    fn metric(&self) -> String {
        self.inner.metric().to_string()
    }
    /// Whether results rank largest first (inner products, similarities).
    #[getter]
    fn _largest_first(&self) -> bool {
        self.inner.metric().canonical().order() == va::Order::Largest
    }
    /// The factory string (lists filled in once trained).
    #[getter]
    fn factory(&self) -> String {
        self.inner.factory()
    }

    /// Trains the coarse quantizer (and list codec) on `x` `[n, d]`.
    fn train(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let inner = &mut self.inner;
        let ctx = inner.context().clone();
        with_input(py, x, "x", &ctx, |v| inner.train(v)).map(drop)
    }

    /// Adds `x` `[n, d]` with sequential ids.
    fn add(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let inner = &mut self.inner;
        let ctx = inner.context().clone();
        with_input(py, x, "x", &ctx, |v| inner.add(v)).map(drop)
    }

    /// Adds `x` `[n, d]` under `ids` `[n]` (non-negative integers).
    fn add_with_ids(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let ids = ids_of(ids, "ids")?;
        let inner = &mut self.inner;
        let ctx = inner.context().clone();
        with_input(py, x, "x", &ctx, |v| inner.add_with_ids(v, &ids)).map(drop)
    }

    /// The `k` nearest vectors of each row of `x`: `(D, I)` as FAISS
    /// returns them. `nprobe` and `refine_factor` override the index's
    /// defaults, `ef` sets a graph index's candidate list (FAISS's
    /// `efSearch`); `allowed` (an id array) restricts the results to those
    /// ids; `precision="f16"` or `"int8"` walks a graph index over f16
    /// copies or 8-bit codes of the vectors on CUDA (re-scored in fp32;
    /// `"exact"`, the default, walks fp32).
    /// CUDA tensors are read in place and the results come back as tensors
    /// of the same kind on the same device.
    #[pyo3(signature = (x, k, *, nprobe = None, refine_factor = None, ef = None, allowed = None, precision = None))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        k: usize,
        nprobe: Option<usize>,
        refine_factor: Option<usize>,
        ef: Option<usize>,
        allowed: Option<&Bound<'py, PyAny>>,
        precision: Option<&str>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let filter = match allowed {
            Some(a) => Some(IdSelector::allow(ids_of(a, "allowed")?)),
            None => None,
        };
        let precision = precision
            .map(str::parse::<va::WalkPrecision>)
            .transpose()
            .map_err(to_py)?;
        let inner = &self.inner;
        let ctx = inner.context();
        let (nn, caller) = with_input(py, x, "x", ctx, |v| {
            let mut p = search_params((nprobe, refine_factor, ef), filter.as_ref());
            if let Some(pr) = precision {
                p = p.with_precision(pr);
            }
            inner.search(v, k, &p)
        })?;
        caller.neighbors(py, ctx, nn)
    }

    /// Every vector within `radius` of each row of `x` (distance below it;
    /// similarity above it for inner product): `(lims, D, I)` as FAISS
    /// returns them, the results of row `i` at `lims[i]:lims[i + 1]`, best
    /// first.
    #[pyo3(signature = (x, radius, *, nprobe = None))]
    fn range_search<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        radius: f32,
        nprobe: Option<usize>,
    ) -> PyResult<RangeArrays<'py>> {
        let inner = &self.inner;
        let (found, _) = with_input(py, x, "x", inner.context(), |v| {
            inner.range_search(v, radius, &search_params((nprobe, None, None), None))
        })?;
        let lims: Vec<i64> = found.lims().iter().map(|&l| l as i64).collect();
        let ids: Vec<i64> = found.ids().iter().map(|&i| i as i64).collect();
        Ok((
            PyArray1::from_vec(py, lims),
            PyArray1::from_slice(py, found.distances()),
            PyArray1::from_vec(py, ids),
        ))
    }

    /// Pickling: the index as the bytes of its file.
    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &self.inner;
        let bytes = py.detach(|| inner.to_bytes()).map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Unpickling: the index from the bytes of its file, on the module's
    /// device.
    fn __setstate__(&mut self, py: Python<'_>, state: &[u8]) -> PyResult<()> {
        let ctx = &context()?;
        self.inner = py.detach(|| Index::from_bytes(ctx, state)).map_err(to_py)?;
        Ok(())
    }

    /// An empty Flat index for unpickling to fill (`__setstate__`).
    #[new]
    #[pyo3(signature = (d = 1, description = "Flat"))]
    fn py_new(d: usize, description: &str) -> PyResult<Self> {
        let inner = Index::new(&context()?, d, description, va::Metric::L2).map_err(to_py)?;
        Ok(PyIndex { inner })
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

/// Search parameters: the index's defaults where an option is `None`.
pub(crate) fn search_params(
    (nprobe, refine_factor, ef): (Option<usize>, Option<usize>, Option<usize>),
    filter: Option<&IdSelector>,
) -> SearchParams<'_> {
    let mut p = SearchParams::default();
    if let Some(ef) = ef {
        p = p.with_ef(ef);
    }
    if let Some(n) = nprobe {
        p = p.with_nprobe(n);
    }
    if let Some(f) = refine_factor {
        p = p.with_refine_factor(f);
    }
    if let Some(f) = filter {
        p = p.with_filter(f);
    }
    p
}

/// FAISS's `(lims, D, I)` of a range search.
type RangeArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<i64>>,
);

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
    let inner = Index::new(&context()?, d, description, metric).map_err(to_py)?;
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
    let ctx = &context()?;
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

//! `vector_accelerate.DurableMultiIndex`: a `MultiIndex` kept in a folder
//! with write-ahead logs; every acknowledged `add`, `add_with_ids` and
//! `remove_ids` survives a crash.

use ::vector_accelerate::index::DurableMultiIndex;
use pyo3::prelude::*;

use crate::arrays::ids_of;
use crate::dlpack::with_input;
use crate::durable::options;
use crate::errors::to_py;
use crate::index::search_params;
use crate::multi::{contexts_of, PyMultiIndex};

/// A durable index over several devices: shards each with their own log
/// (an add goes whole to the emptiest shard), or replicas with one durable
/// copy from which the others are remade when the folder is opened.
#[pyclass(name = "DurableMultiIndex", module = "vector_accelerate", frozen)]
pub(crate) struct PyDurableMulti {
    inner: DurableMultiIndex,
    path: String,
}

#[pymethods]
impl PyDurableMulti {
    /// Makes a copy of `index` (a `MultiIndex`) durable in the new folder
    /// `path`.
    #[staticmethod]
    #[pyo3(signature = (path, index, *, checkpoint_bytes = None, sync_interval = None))]
    fn create(
        py: Python<'_>,
        path: String,
        index: PyRef<'_, PyMultiIndex>,
        checkpoint_bytes: Option<u64>,
        sync_interval: Option<f64>,
    ) -> PyResult<Self> {
        let opts = options(checkpoint_bytes, sync_interval)?;
        let multi = &index.inner;
        let inner = py
            .detach(|| DurableMultiIndex::create(&path, multi.try_clone()?, opts))
            .map_err(to_py)?;
        Ok(Self { inner, path })
    }

    /// Opens the folder `path` on `devices` (as `MultiIndex`'s), replaying
    /// each part's log.
    #[staticmethod]
    #[pyo3(signature = (path, *, devices = None, checkpoint_bytes = None, sync_interval = None))]
    fn open(
        py: Python<'_>,
        path: String,
        devices: Option<&Bound<'_, PyAny>>,
        checkpoint_bytes: Option<u64>,
        sync_interval: Option<f64>,
    ) -> PyResult<Self> {
        let opts = options(checkpoint_bytes, sync_interval)?;
        let contexts = contexts_of(devices)?;
        let (inner, _) = py
            .detach(|| DurableMultiIndex::open(&contexts, &path, opts))
            .map_err(to_py)?;
        Ok(Self { inner, path })
    }

    /// Vectors held, each counted once.
    #[getter]
    fn ntotal(&self) -> usize {
        self.inner.len()
    }
    /// Vectors held by each part.
    #[getter]
    fn part_sizes(&self) -> Vec<usize> {
        self.inner.part_lens()
    }

    /// Adds `x` `[n, d]` with sequential ids, durably.
    fn add(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let ctx = self.inner.context();
        with_input(py, x, "x", &ctx, |v| self.inner.add(v)).map(drop)
    }

    /// Adds `x` `[n, d]` under `ids` `[n]`, durably.
    fn add_with_ids(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let ids = ids_of(ids, "ids")?;
        let ctx = self.inner.context();
        with_input(py, x, "x", &ctx, |v| self.inner.add_with_ids(v, &ids)).map(drop)
    }

    /// Removes the vectors of `ids`, durably; returns how many were held.
    fn remove_ids(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ids = ids_of(ids, "ids")?;
        crate::errors::start_call();
        py.detach(|| self.inner.remove_ids(&ids)).map_err(to_py)
    }

    /// The `k` nearest vectors of each row of `x`: `(D, I)`, as
    /// `MultiIndex.search`.
    #[pyo3(signature = (x, k, *, nprobe = None, ef = None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        k: usize,
        nprobe: Option<usize>,
        ef: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let ctx = self.inner.context();
        let (nn, caller) = with_input(py, x, "x", &ctx, |v| {
            self.inner
                .search(v, k, &search_params((nprobe, None, ef), None))
        })?;
        caller.neighbors(py, &ctx, nn)
    }

    /// Checkpoints every durable part.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.checkpoint()).map_err(to_py)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        let layout = self.inner.layout().name();
        format!(
            "DurableMultiIndex('{}', d={}, layout={layout}, ntotal={})",
            self.path,
            self.inner.dim(),
            self.inner.len()
        )
    }
}

/// Adds the class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDurableMulti>()
}

//! `vector_accelerate.DurableIndex`: an index kept in a directory with a
//! write-ahead log; every acknowledged `add`, `add_with_ids` and
//! `remove_ids` survives a crash. Calls release the GIL, so Python threads
//! can search while others write.

use ::vector_accelerate as va;
use ::vector_accelerate::index::{DurableIndex, DurableOptions, SyncPolicy};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::ids_of;
use crate::context;
use crate::dlpack::with_input;
use crate::errors::to_py;
use crate::index::{search_params, PyIndex};

/// A durable index (see the module docs).
#[pyclass(name = "DurableIndex", module = "vector_accelerate", frozen)]
pub(crate) struct PyDurable {
    inner: DurableIndex,
    path: String,
    /// What opening found: snapshot sequence, records replayed, torn record.
    recovery: Option<va::index::Recovery>,
}

/// The options of `checkpoint_bytes` and `sync_interval` (seconds: the
/// weaker interval policy; None: every operation is synced).
pub(crate) fn options(
    checkpoint_bytes: Option<u64>,
    sync_interval: Option<f64>,
) -> PyResult<DurableOptions> {
    let mut o = DurableOptions::default();
    if let Some(b) = checkpoint_bytes {
        o = o.with_checkpoint_bytes(b);
    }
    if let Some(s) = sync_interval {
        let every = std::time::Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "sync_interval must be a positive number of seconds, got {s}"
                ))
            })?;
        o = o.with_sync(SyncPolicy::Interval(every));
    }
    Ok(o)
}

#[pymethods]
impl PyDurable {
    /// Makes a copy of `index` durable in the new directory `path`.
    #[staticmethod]
    #[pyo3(signature = (path, index, *, checkpoint_bytes = None, sync_interval = None))]
    fn create(
        py: Python<'_>,
        path: String,
        index: PyRef<'_, PyIndex>,
        checkpoint_bytes: Option<u64>,
        sync_interval: Option<f64>,
    ) -> PyResult<Self> {
        let opts = options(checkpoint_bytes, sync_interval)?;
        let inner_index = &index.inner;
        let ctx = inner_index.context().clone();
        let bytes = py.detach(|| inner_index.to_bytes()).map_err(to_py)?;
        let inner = py
            .detach(|| {
                let copy = va::index::Index::from_bytes(&ctx, &bytes)?;
                DurableIndex::create(&path, copy, opts)
            })
            .map_err(to_py)?;
        Ok(Self {
            inner,
            path,
            recovery: None,
        })
    }

    /// Opens the durable index in `path` on the module's device, replaying
    /// its log (a torn final record is cut and reported in `recovery`).
    #[staticmethod]
    #[pyo3(signature = (path, *, checkpoint_bytes = None, sync_interval = None))]
    fn open(
        py: Python<'_>,
        path: String,
        checkpoint_bytes: Option<u64>,
        sync_interval: Option<f64>,
    ) -> PyResult<Self> {
        let opts = options(checkpoint_bytes, sync_interval)?;
        let ctx = context()?;
        let (inner, rec) = py
            .detach(|| DurableIndex::open(&ctx, &path, opts))
            .map_err(to_py)?;
        Ok(Self {
            inner,
            path,
            recovery: Some(rec),
        })
    }

    /// What `open` found: `{"snapshot_seq", "replayed", "torn"}` (`torn`:
    /// `(file, offset, reason)` of a cut final record, or None); None for
    /// an index made by `create`.
    #[getter]
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(r) = &self.recovery else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("snapshot_seq", r.snapshot_seq)?;
        d.set_item("replayed", r.replayed)?;
        let torn = r
            .torn
            .as_ref()
            .map(|(p, o, why)| (p.display().to_string(), *o, why.clone()));
        d.set_item("torn", torn)?;
        Ok(Some(d))
    }

    /// Vectors held.
    #[getter]
    fn ntotal(&self) -> usize {
        self.inner.read().len()
    }
    /// Dimension of the vectors.
    #[getter]
    fn d(&self) -> usize {
        self.inner.read().dim()
    }

    /// Adds `x` `[n, d]` with sequential ids, durably.
    fn add(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let ctx = self.inner.read().context().clone();
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
        let ctx = self.inner.read().context().clone();
        with_input(py, x, "x", &ctx, |v| self.inner.add_with_ids(v, &ids)).map(drop)
    }

    /// Removes the vectors of `ids`, durably; returns how many were held.
    fn remove_ids(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ids = ids_of(ids, "ids")?;
        crate::errors::start_call();
        py.detach(|| self.inner.remove_ids(&ids)).map_err(to_py)
    }

    /// The `k` nearest vectors of each row of `x`: `(D, I)`, as
    /// `Index.search`.
    #[pyo3(signature = (x, k, *, nprobe = None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        k: usize,
        nprobe: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let ctx = self.inner.read().context().clone();
        let (nn, caller) = with_input(py, x, "x", &ctx, |v| {
            self.inner
                .search(v, k, &search_params((nprobe, None, None), None))
        })?;
        caller.neighbors(py, &ctx, nn)
    }

    /// Writes a snapshot and drops the log before it.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.checkpoint()).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        let index = self.inner.read();
        format!(
            "DurableIndex('{}', factory='{}', d={}, ntotal={})",
            self.path,
            index.factory(),
            index.dim(),
            index.len()
        )
    }
}

/// Adds the class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDurable>()
}

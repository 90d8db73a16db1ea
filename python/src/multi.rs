//! `vector_accelerate.MultiIndex`: one index over several devices, as
//! shards (each device a part of the vectors, every search merged) or
//! replicas (each device every vector, the queries split).

use std::path::PathBuf;

use ::vector_accelerate as va;
use ::vector_accelerate::index::{IdSelector, MultiIndex};
use pyo3::prelude::*;

use crate::arrays::ids_of;
use crate::dlpack::with_input;
use crate::errors::to_py;
use crate::index::search_params;
use crate::{context, metric_of};

/// An index spread over several devices: `layout="shards"` (each device
/// holds a part of the vectors; a search asks all and merges their best) or
/// `"replicas"` (each holds every vector; a search splits its queries).
/// `devices`: a list of device names (`"cuda:0"`, `"cpu"`), a count of
/// contexts on the module's device, or `None` for every CUDA device (the
/// module's device when there is none).
#[pyclass(name = "MultiIndex", module = "vector_accelerate")]
pub(crate) struct PyMultiIndex {
    pub(crate) inner: MultiIndex,
}

pub(crate) fn contexts_of(devices: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<va::Context>> {
    let Some(d) = devices else {
        return va::Context::all_cuda().or_else(|_| Ok(vec![context()?]));
    };
    if let Ok(n) = d.extract::<usize>() {
        return Ok(vec![context()?; n]);
    }
    let names: Vec<String> = d.extract()?;
    names
        .iter()
        .map(|n| va::Context::from_spec(n).map_err(to_py))
        .collect()
}

#[pymethods]
impl PyMultiIndex {
    #[new]
    #[pyo3(signature = (d, description, metric = None, *, layout = "shards", devices = None))]
    fn py_new(
        d: usize,
        description: &str,
        metric: Option<&Bound<'_, PyAny>>,
        layout: &str,
        devices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let metric = metric.map_or(Ok(va::Metric::L2), metric_of)?;
        let contexts = contexts_of(devices)?;
        let inner = MultiIndex::new(
            &contexts,
            d,
            description,
            metric,
            layout.parse().map_err(to_py)?,
        )
        .map_err(to_py)?;
        Ok(Self { inner })
    }

    /// Dimension of the vectors.
    #[getter]
    fn d(&self) -> usize {
        self.inner.dim()
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
    /// `"shards"` or `"replicas"`.
    #[getter]
    fn layout(&self) -> &'static str {
        self.inner.layout().name()
    }
    /// Whether the parts can take vectors.
    #[getter]
    fn is_trained(&self) -> bool {
        self.inner.is_trained()
    }
    /// Lists scanned per query by default (IVF parts).
    #[getter]
    fn nprobe(&self) -> usize {
        self.inner.parts()[0].nprobe()
    }
    #[setter]
    fn set_nprobe(&mut self, n: usize) -> PyResult<()> {
        self.inner.set_nprobe(n).map_err(to_py)
    }

    /// Trains the first part on `x` and copies its training to the others.
    fn train(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let ctx = self.inner.parts()[0].context().clone();
        let inner = &mut self.inner;
        with_input(py, x, "x", &ctx, |v| inner.train(v)).map(drop)
    }

    /// Adds `x` `[n, d]` with sequential ids (shards: the emptiest parts
    /// take the most).
    fn add(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let ctx = self.inner.parts()[0].context().clone();
        let inner = &mut self.inner;
        with_input(py, x, "x", &ctx, |v| inner.add(v)).map(drop)
    }

    /// Adds `x` `[n, d]` under `ids` `[n]`.
    fn add_with_ids(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let ids = ids_of(ids, "ids")?;
        let ctx = self.inner.parts()[0].context().clone();
        let inner = &mut self.inner;
        with_input(py, x, "x", &ctx, |v| inner.add_with_ids(v, &ids)).map(drop)
    }

    /// The `k` nearest vectors of each row of `x`: `(D, I)`, with the
    /// options of `Index.search` (`nprobe`, `refine_factor`, `ef`,
    /// `allowed`).
    #[pyo3(signature = (x, k, *, nprobe = None, refine_factor = None, ef = None, allowed = None))]
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
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let filter = match allowed {
            Some(a) => Some(IdSelector::allow(ids_of(a, "allowed")?)),
            None => None,
        };
        let inner = &self.inner;
        let ctx = inner.parts()[0].context();
        let (nn, caller) = with_input(py, x, "x", ctx, |v| {
            let p = search_params((nprobe, refine_factor, ef), filter.as_ref());
            inner.search(v, k, &p)
        })?;
        caller.neighbors(py, ctx, nn)
    }

    /// Removes the vectors of `ids`; returns how many were removed.
    fn remove_ids(&mut self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let sel = IdSelector::allow(ids_of(ids, "ids")?);
        let inner = &mut self.inner;
        py.detach(|| inner.remove_ids(&sel)).map_err(to_py)
    }

    /// Writes the index to the folder `path` (one file per part and a
    /// manifest written last).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| inner.save(&path)).map_err(to_py)
    }

    /// Reads an index written by `save` onto `devices` (as the
    /// constructor's).
    #[staticmethod]
    #[pyo3(signature = (path, *, devices = None))]
    fn load(py: Python<'_>, path: PathBuf, devices: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let contexts = contexts_of(devices)?;
        let inner = py
            .detach(|| MultiIndex::load(&contexts, &path))
            .map_err(to_py)?;
        Ok(Self { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        let devices: Vec<String> = self
            .inner
            .contexts()
            .iter()
            .map(|c| c.device().to_string())
            .collect();
        format!(
            "MultiIndex('{}', d={}, layout={}, ntotal={}, devices=[{}])",
            self.inner.factory(),
            self.inner.dim(),
            self.layout(),
            self.inner.len(),
            devices.join(", ")
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMultiIndex>()
}

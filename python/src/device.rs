//! `vector_accelerate.Device`: where computations run, and the module's
//! default device (`set_device`, `get_device`, or `with va.Device(...)`).

use std::sync::{Mutex, RwLock};

use ::vector_accelerate as va;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;

/// The module's default context; chosen on first use (the GPU when one is
/// usable, as `VECTOR_ACCELERATE_DEVICE` says when set).
static DEFAULT: RwLock<Option<va::Context>> = RwLock::new(None);

/// The module's default context.
pub(crate) fn context() -> PyResult<va::Context> {
    crate::errors::start_call();
    if let Some(c) = DEFAULT.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(c.clone());
    }
    let c = va::Context::new().map_err(to_py)?;
    let mut slot = DEFAULT.write().unwrap_or_else(|e| e.into_inner());
    Ok(slot.get_or_insert(c).clone())
}

/// Makes `ctx` the default, returning the one before.
fn replace_default(ctx: va::Context) -> Option<va::Context> {
    DEFAULT
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .replace(ctx)
}

/// A device computations run on: `Device("cpu")`, `Device("cuda")`,
/// `Device("cuda:1")` or `Device("auto")` (the GPU when usable). Used as a
/// context manager it is the default inside the `with` block.
#[pyclass(name = "Device", module = "vector_accelerate", frozen)]
pub(crate) struct PyDevice {
    ctx: va::Context,
    /// Defaults replaced by `__enter__`, restored by `__exit__`.
    outer: Mutex<Vec<Option<va::Context>>>,
}

impl PyDevice {
    fn of(ctx: va::Context) -> Self {
        PyDevice {
            ctx,
            outer: Mutex::new(Vec::new()),
        }
    }
}

#[pymethods]
impl PyDevice {
    #[new]
    #[pyo3(signature = (spec = "auto", *, memory_budget = None))]
    fn py_new(spec: &str, memory_budget: Option<usize>) -> PyResult<Self> {
        let mut ctx = va::Context::from_spec(spec).map_err(to_py)?;
        if let Some(b) = memory_budget {
            ctx = ctx.with_memory_budget(b);
        }
        Ok(Self::of(ctx))
    }
    /// `"cpu"` or `"cuda"`.
    #[getter]
    fn r#type(&self) -> &'static str {
        match self.ctx.device() {
            va::Device::Cpu => "cpu",
            va::Device::Cuda(_) => "cuda",
        }
    }
    /// The CUDA ordinal (`None` for the CPU).
    #[getter]
    fn index(&self) -> Option<usize> {
        match self.ctx.device() {
            va::Device::Cpu => None,
            va::Device::Cuda(n) => Some(n),
        }
    }
    /// The device's name.
    #[getter]
    fn name(&self) -> String {
        self.ctx.info().name
    }
    /// Bytes one operation may use (larger jobs are tiled to fit).
    #[getter]
    fn memory_budget(&self) -> usize {
        self.ctx.memory_budget()
    }
    /// Why `"auto"` did not choose a GPU (`None` when it did or was not asked).
    #[getter]
    fn fallback_reason(&self) -> Option<String> {
        self.ctx.fallback_reason().map(str::to_string)
    }
    /// Facts about the device as a dict (name, memory, versions, ...).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let i = self.ctx.info();
        let d = PyDict::new(py);
        d.set_item("device", i.device.to_string())?;
        d.set_item("name", i.name)?;
        d.set_item("compute_capability", i.compute_capability)?;
        d.set_item("total_memory", i.total_memory)?;
        d.set_item("free_memory", i.free_memory)?;
        d.set_item("multiprocessors", i.multiprocessors)?;
        d.set_item("driver_version", i.driver_version)?;
        d.set_item("nvrtc_version", i.nvrtc_version)?;
        d.set_item("cublas_version", i.cublas_version)?;
        d.set_item("cpu_threads", i.cpu_threads)?;
        Ok(d)
    }
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        let before = replace_default(slf.ctx.clone());
        slf.outer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(before);
        slf
    }
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        let before = self.outer.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut slot = DEFAULT.write().unwrap_or_else(|e| e.into_inner());
        *slot = before.flatten();
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyDevice>()
            .is_ok_and(|o| o.get().ctx.device() == self.ctx.device())
    }
    fn __hash__(&self) -> u64 {
        match self.ctx.device() {
            va::Device::Cpu => u64::MAX,
            va::Device::Cuda(n) => n as u64,
        }
    }
    fn __str__(&self) -> String {
        self.ctx.device().to_string()
    }
    fn __repr__(&self) -> String {
        format!("Device('{}', name='{}')", self.ctx.device(), self.name())
    }
}

/// The module's default device as a string: `"cpu"` or `"cuda:N"`.
#[pyfunction]
fn device() -> PyResult<String> {
    Ok(context()?.device().to_string())
}

/// The module's default device.
#[pyfunction]
fn get_device() -> PyResult<PyDevice> {
    Ok(PyDevice::of(context()?))
}

/// Makes `device` (a `Device` or a spec such as `"cpu"`, `"cuda:0"`,
/// `"auto"`) the module's default for later calls and new indexes.
#[pyfunction]
fn set_device(device: &Bound<'_, PyAny>) -> PyResult<()> {
    let ctx = match device.cast::<PyDevice>() {
        Ok(d) => d.get().ctx.clone(),
        Err(_) => va::Context::from_spec(&device.extract::<String>()?).map_err(to_py)?,
    };
    replace_default(ctx);
    Ok(())
}

/// Adds the device class and functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDevice>()?;
    m.add_function(wrap_pyfunction!(device, m)?)?;
    m.add_function(wrap_pyfunction!(get_device, m)?)?;
    m.add_function(wrap_pyfunction!(set_device, m)?)
}

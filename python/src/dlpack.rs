//! Tensors of other frameworks (PyTorch, CuPy, JAX: anything with
//! `__dlpack__`) in and out. Device tensors are read in place on the
//! module's stream and results go back as the caller's type on the same
//! device through DLPack; host tensors go through NumPy without a copy.

use std::ffi::{c_void, CStr};

use ::vector_accelerate as va;
use ::vector_accelerate::dlpack::{DLManagedTensor, ForeignRows, DEVICE_CUDA};
use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArray};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{ffi, IntoPyObjectExt};

use crate::arrays::{f32_rows, neighbors_to_numpy};
use crate::errors::to_py;

const CAPSULE: &CStr = c"dltensor";
const USED_CAPSULE: &CStr = c"used_dltensor";

/// An owned DLPack tensor: released through its deleter when dropped.
struct Tensor(*mut DLManagedTensor);

impl Tensor {
    /// The tensor, no longer released here.
    fn into_raw(self) -> *mut DLManagedTensor {
        std::mem::ManuallyDrop::new(self).0
    }
}

// SAFETY: the tensor is only read, and released once.
unsafe impl Send for Tensor {}

impl Drop for Tensor {
    fn drop(&mut self) {
        // SAFETY: the producer's tensor, released once.
        unsafe {
            if let Some(delete) = (*self.0).deleter {
                delete(self.0)
            }
        }
    }
}

/// Takes the tensor out of a `"dltensor"` capsule (renamed, as DLPack asks,
/// so its own destructor leaves it to us).
fn consume(cap: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let py = cap.py();
    // SAFETY: capsule calls on a live object; a wrong name sets an error.
    unsafe {
        let p = ffi::PyCapsule_GetPointer(cap.as_ptr(), CAPSULE.as_ptr());
        if p.is_null() {
            return Err(PyErr::fetch(py));
        }
        if ffi::PyCapsule_SetName(cap.as_ptr(), USED_CAPSULE.as_ptr()) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(Tensor(p.cast()))
    }
}

/// Rows of a device tensor read in place (the rows dropped before the
/// tensor is released).
pub(crate) struct DeviceRows {
    rows: ForeignRows,
    /// The DLPack tensor the rows came from (none for a PyTorch tensor read
    /// by address, which the caller holds for the call).
    _tensor: Option<Tensor>,
}

/// An array argument: NumPy rows, or a device tensor's rows in place.
pub(crate) enum Rows<'py> {
    Host(PyReadonlyArray2<'py, f32>),
    Device(Box<DeviceRows>),
}

impl Rows<'_> {
    /// The rows as the library's input.
    pub(crate) fn input(&self) -> PyResult<va::Input<'_>> {
        match self {
            Rows::Host(a) => {
                let d = a.dims()[1];
                Ok(va::MatrixView::new(a.as_slice()?, d).map_err(to_py)?.into())
            }
            Rows::Device(d) => Ok(va::Input::Resident(&d.rows)),
        }
    }
}

/// Who passed an array, so results go back as their type: NumPy, or a
/// framework (its module, with `from_dlpack`) on the host or a device.
pub(crate) struct Caller<'py> {
    framework: Option<Bound<'py, PyModule>>,
    on_device: bool,
}

impl<'py> Caller<'py> {
    fn numpy() -> Self {
        Caller {
            framework: None,
            on_device: false,
        }
    }

    /// Whether the caller's array is on a device.
    pub(crate) fn on_device(&self) -> bool {
        self.on_device
    }

    /// Host neighbours as the caller's `(D, I)`: NumPy arrays, the
    /// framework's host tensors, or (for device callers) tensors on the
    /// context's device.
    pub(crate) fn neighbors(
        &self,
        py: Python<'py>,
        ctx: &va::Context,
        nn: va::Neighbors,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        if self.on_device {
            let r = py
                .detach(|| va::ResidentNeighbors::upload(ctx, &nn))
                .map_err(to_py)?;
            return self.resident(py, ctx, r);
        }
        let (d, i) = neighbors_to_numpy(py, nn)?;
        match &self.framework {
            None => Ok((d.into_any(), i.into_any())),
            Some(m) => Ok((
                m.call_method1("from_dlpack", (d,))?,
                m.call_method1("from_dlpack", (i,))?,
            )),
        }
    }

    /// Resident neighbours as the caller's `(D, I)` without a host copy:
    /// handed to the framework's `from_dlpack` (NumPy for host results).
    pub(crate) fn resident(
        &self,
        py: Python<'py>,
        ctx: &va::Context,
        r: va::ResidentNeighbors,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let shape = [r.rows(), r.k()];
        let device = match ctx.device() {
            va::Device::Cuda(n) => (DEVICE_CUDA, n as i32),
            va::Device::Cpu => (va::dlpack::DEVICE_CPU, 0),
        };
        let (ids, dist) = r.into_parts();
        let (dist, ids) = (Export::Rows(Box::new(dist)), Export::Ids(ids, shape));
        if let Some(torch) = self
            .framework
            .as_ref()
            .filter(|m| m.name().is_ok_and(|n| n == "torch"))
        {
            // PyTorch takes capsules directly; the device is synchronised
            // first, so any of its streams may read them.
            let (d, i) = (capsule(py, dist, None)?, capsule(py, ids, None)?);
            return Ok((
                torch.call_method1("from_dlpack", (d,))?,
                torch.call_method1("from_dlpack", (i,))?,
            ));
        }
        let d = DLPackTensor::new(dist, device).into_bound_py_any(py)?;
        let i = DLPackTensor::new(ids, device).into_bound_py_any(py)?;
        let from = match &self.framework {
            Some(m) => m.getattr("from_dlpack")?,
            None => py.import("numpy")?.getattr("from_dlpack")?,
        };
        Ok((from.call1((d,))?, from.call1((i,))?))
    }
}

/// The framework module of `x`'s type, when it is not NumPy and offers
/// `from_dlpack`.
fn framework_of<'py>(x: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyModule>>> {
    let module: String = x.get_type().getattr("__module__")?.extract()?;
    let top = module.split('.').next().unwrap_or_default();
    if top == "numpy" {
        return Ok(None);
    }
    let Ok(m) = x.py().import(top) else {
        return Ok(None);
    };
    Ok(m.hasattr("from_dlpack")?.then_some(m))
}

/// Rows of `x` (named `what` in errors) as the library's input, run
/// through `f` without the GIL; with who passed them.
pub(crate) fn with_input<'py, T: Send>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    what: &str,
    ctx: &va::Context,
    f: impl FnOnce(va::Input<'_>) -> va::Result<T> + Send,
) -> PyResult<(T, Caller<'py>)> {
    crate::errors::start_call();
    let (rows, caller) = rows_arg(x, what, ctx)?;
    let input = rows.input()?;
    let out = py.detach(|| f(input)).map_err(to_py)?;
    Ok((out, caller))
}

/// `x` (named `what` in errors) as rows the context reads: NumPy and
/// host tensors as C-contiguous `float32` NumPy rows, CUDA tensors in
/// place; with who passed it.
pub(crate) fn rows_arg<'py>(
    x: &Bound<'py, PyAny>,
    what: &str,
    ctx: &va::Context,
) -> PyResult<(Rows<'py>, Caller<'py>)> {
    let host = |a: &Bound<'py, PyAny>| -> PyResult<Rows<'py>> {
        let rows: Bound<'py, PyArray2<f32>> = f32_rows(a, what)?;
        Ok(Rows::Host(rows.readonly()))
    };
    if x.cast::<PyUntypedArray>().is_ok() || !x.hasattr("__dlpack_device__")? {
        return Ok((host(x)?, Caller::numpy()));
    }
    if let Some((rows, torch)) = torch_rows(x, ctx)? {
        let caller = Caller {
            framework: Some(torch),
            on_device: true,
        };
        return Ok((Rows::Device(Box::new(rows)), caller));
    }
    let (kind, _): (i32, i32) = x.call_method0("__dlpack_device__")?.extract()?;
    let framework = framework_of(x)?;
    if kind != DEVICE_CUDA {
        let a = x.py().import("numpy")?.call_method1("from_dlpack", (x,))?;
        let caller = Caller {
            framework,
            on_device: false,
        };
        return Ok((host(&a)?, caller));
    }
    let rows = match device_rows(x, what, ctx)? {
        Ok(r) => r,
        // Another dtype or layout: the framework converts it on the device.
        Err(e @ va::Error::InvalidParameter { .. }) => {
            match float32_contiguous(x, framework.as_ref())? {
                Some(c) => device_rows(&c, what, ctx)?.map_err(to_py)?,
                None => return Err(to_py(e)),
            }
        }
        Err(e) => return Err(to_py(e)),
    };
    let caller = Caller {
        framework,
        on_device: true,
    };
    Ok((Rows::Device(Box::new(rows)), caller))
}

/// A float32 C-contiguous 2-D PyTorch CUDA tensor read by address (as
/// FAISS's PyTorch bridge reads it), this context's stream ordered after
/// PyTorch's current one: PyTorch's Python-level DLPack steps cost more
/// than the rest of a small call. `None` for anything else (which takes the
/// DLPack path).
fn torch_rows<'py>(
    x: &Bound<'py, PyAny>,
    ctx: &va::Context,
) -> PyResult<Option<(DeviceRows, Bound<'py, PyModule>)>> {
    if ctx.cuda_stream().is_none()
        || !x.get_type().getattr("__module__")?.eq("torch")?
        || !x.getattr("is_cuda")?.is_truthy()?
    {
        return Ok(None);
    }
    let torch = x.py().import("torch")?;
    let fits = x.getattr("dtype")?.is(&torch.getattr("float32")?)
        && x.call_method0("dim")?.extract::<usize>()? == 2
        && x.call_method0("is_contiguous")?.is_truthy()?;
    if !fits {
        return Ok(None);
    }
    let (rows, dim): (i64, i64) = x.getattr("shape")?.extract()?;
    let data: usize = x.call_method0("data_ptr")?.extract()?;
    let device: i32 = x.call_method0("get_device")?.extract()?;
    let torch_c = torch.getattr("_C")?;
    let stream: usize = match torch_c.getattr("_cuda_getCurrentRawStream") {
        Ok(raw) => raw.call1((device,))?.extract()?,
        Err(_) => torch
            .getattr("cuda")?
            .call_method1("current_stream", (device,))?
            .getattr("cuda_stream")?
            .extract()?,
    };
    let mut shape = [rows, dim];
    let t = va::dlpack::DLTensor {
        data: data as *mut c_void,
        device: va::dlpack::DLDevice {
            device_type: DEVICE_CUDA,
            device_id: device,
        },
        ndim: 2,
        dtype: va::dlpack::DLDataType {
            code: 2,
            bits: 32,
            lanes: 1,
        },
        shape: shape.as_mut_ptr(),
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    };
    // SAFETY: PyTorch's live float32 C-contiguous storage of this shape,
    // held by the caller for the call; the context waits for its stream.
    let rows = unsafe { va::DeviceMatrix::from_dlpack(ctx, &t) }.map_err(to_py)?;
    ctx.wait_for_stream(stream).map_err(to_py)?;
    let rows = DeviceRows {
        rows,
        _tensor: None,
    };
    Ok(Some((rows, torch)))
}

/// The rows of CUDA tensor `x` in place, a library error when its dtype or
/// layout cannot be read so (a Python error for the rest).
fn device_rows(
    x: &Bound<'_, PyAny>,
    what: &str,
    ctx: &va::Context,
) -> PyResult<Result<DeviceRows, va::Error>> {
    let Some(stream) = ctx.cuda_stream() else {
        return Err(PyValueError::new_err(format!(
            "{what} is a CUDA tensor but vector_accelerate runs on {}",
            ctx.device()
        )));
    };
    let kw = PyDict::new(x.py());
    kw.set_item("stream", stream)?;
    let x = match x.getattr("requires_grad").and_then(|g| g.extract::<bool>()) {
        Ok(true) => x.call_method0("detach")?,
        _ => x.clone(),
    };
    let tensor = consume(&x.call_method("__dlpack__", (), Some(&kw))?)?;
    // SAFETY: a live tensor, released after the rows.
    let ndim = unsafe { (*tensor.0).dl_tensor.ndim };
    if ndim != 2 {
        return Err(PyValueError::new_err(format!(
            "{what}: expected a 2-D array of vectors (rows), got {ndim} dimensions"
        )));
    }
    // SAFETY: the tensor stays alive (held beside the rows) and is ordered
    // before the context's stream by `__dlpack__(stream=...)`.
    let rows = unsafe { va::DeviceMatrix::from_dlpack(ctx, &(*tensor.0).dl_tensor) };
    Ok(rows.map(|rows| DeviceRows {
        rows,
        _tensor: Some(tensor),
    }))
}

/// `x` as a C-contiguous float32 tensor of its framework (PyTorch's
/// `.float().contiguous()`, CuPy's `ascontiguousarray`), on its device.
fn float32_contiguous<'py>(
    x: &Bound<'py, PyAny>,
    framework: Option<&Bound<'py, PyModule>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if x.hasattr("contiguous")? && x.hasattr("float")? {
        return Ok(Some(x.call_method0("float")?.call_method0("contiguous")?));
    }
    match framework {
        Some(m) if m.hasattr("ascontiguousarray")? => {
            let kw = PyDict::new(x.py());
            kw.set_item("dtype", "float32")?;
            Ok(Some(m.call_method("ascontiguousarray", (x,), Some(&kw))?))
        }
        _ => Ok(None),
    }
}

/// What a [`DLPackTensor`] hands over.
enum Export {
    Rows(Box<va::DeviceMatrix>),
    Ids(va::DeviceIds, [usize; 2]),
}

/// A result on the module's device, handed to a framework's `from_dlpack`
/// once (DLPack's producer side).
#[pyclass(name = "DLPackTensor", module = "vector_accelerate")]
pub(crate) struct DLPackTensor {
    item: Option<Export>,
    device: (i32, i32),
}

impl DLPackTensor {
    fn new(item: Export, device: (i32, i32)) -> Self {
        DLPackTensor {
            item: Some(item),
            device,
        }
    }
}

#[pymethods]
impl DLPackTensor {
    /// DLPack's export: a `"dltensor"` capsule whose data the consumer's
    /// `stream` may read (ordered after the work that made it).
    #[pyo3(signature = (*, stream = None, max_version = None, dl_device = None, copy = None))]
    fn __dlpack__<'py>(
        &mut self,
        py: Python<'py>,
        stream: Option<isize>,
        max_version: Option<Bound<'py, PyAny>>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = max_version; // answered with an unversioned capsule, as allowed
        if dl_device.is_some_and(|d| d != self.device) || copy == Some(true) {
            return Err(PyBufferError::new_err(
                "a vector_accelerate result is exported in place, on its own device",
            ));
        }
        let stream = match stream {
            Some(0) => return Err(PyValueError::new_err("DLPack stream 0 is ambiguous")),
            Some(s) if s > 0 => Some(s as usize),
            _ => None,
        };
        let item = self
            .item
            .take()
            .ok_or_else(|| PyBufferError::new_err("this result was already exported"))?;
        capsule(py, item, stream)
    }

    fn __repr__(&self) -> String {
        let state = if self.item.is_some() {
            "ready"
        } else {
            "exported"
        };
        format!("DLPackTensor(device={:?}, {state})", self.device)
    }

    /// DLPack's device of the data: `(2, ordinal)` for CUDA, `(1, 0)` for
    /// the host.
    fn __dlpack_device__(&self) -> (i32, i32) {
        self.device
    }
}

/// `item` as a `"dltensor"` capsule readable on `stream` (after a
/// synchronisation without one).
fn capsule(py: Python<'_>, item: Export, stream: Option<usize>) -> PyResult<Bound<'_, PyAny>> {
    let t = py
        .detach(|| {
            match item {
                Export::Rows(m) => m.into_dlpack(stream),
                Export::Ids(i, shape) => i.into_dlpack(shape, stream),
            }
            .map(Tensor)
        })
        .map_err(to_py)?
        .into_raw();
    // SAFETY: a fresh tensor owned by the capsule from here on.
    unsafe {
        let cap = ffi::PyCapsule_New(t.cast::<c_void>(), CAPSULE.as_ptr(), Some(free_capsule));
        if cap.is_null() {
            free_capsule_tensor(t);
        }
        Bound::from_owned_ptr_or_err(py, cap)
    }
}

/// Releases a tensor no consumer took.
unsafe fn free_capsule_tensor(t: *mut DLManagedTensor) {
    // SAFETY: an unconsumed export, released once.
    unsafe {
        if let Some(delete) = (*t).deleter {
            delete(t)
        }
    }
}

/// The capsule destructor: releases the tensor unless a consumer renamed
/// the capsule (took the tensor).
unsafe extern "C" fn free_capsule(cap: *mut ffi::PyObject) {
    // SAFETY: called by Python on a dying capsule.
    unsafe {
        if ffi::PyCapsule_IsValid(cap, CAPSULE.as_ptr()) == 1 {
            let t = ffi::PyCapsule_GetPointer(cap, CAPSULE.as_ptr());
            free_capsule_tensor(t.cast());
        }
    }
}

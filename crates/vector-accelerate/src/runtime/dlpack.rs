//! DLPack: rows and results shared with other frameworks (PyTorch, CuPy,
//! JAX, NumPy) in place. Imports borrow a framework's device memory for a
//! call; exports hand a result's memory over, freed by the framework
//! through the tensor's deleter.

use std::ffi::c_void;
use std::ops::Deref;
use std::sync::Arc;

use cudarc::driver::{sys as driver_sys, CudaSlice, DevicePtr};

use crate::core::error::{cu, Error, Result};
use crate::runtime::context::{Context, Engine};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::CudaRows;
use crate::runtime::tensor::{DeviceIds, DeviceMatrix, HostData, IdStorage, Storage};

/// DLPack's `kDLCPU` device type.
pub const DEVICE_CPU: i32 = 1;
/// DLPack's `kDLCUDA` device type.
pub const DEVICE_CUDA: i32 = 2;

/// DLPack's `DLDevice`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DLDevice {
    /// `kDLCPU` (1), `kDLCUDA` (2), ...
    pub device_type: i32,
    /// The device ordinal.
    pub device_id: i32,
}

/// DLPack's `DLDataType`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DLDataType {
    /// 0 signed integer, 1 unsigned integer, 2 float, 4 bfloat.
    pub code: u8,
    /// Bits per lane.
    pub bits: u8,
    /// Lanes (1 for scalars).
    pub lanes: u16,
}

/// DLPack's `DLTensor`.
#[repr(C)]
#[derive(Debug)]
pub struct DLTensor {
    /// The data (device address for device tensors).
    pub data: *mut c_void,
    /// Where the data lives.
    pub device: DLDevice,
    /// Number of dimensions.
    pub ndim: i32,
    /// Element type.
    pub dtype: DLDataType,
    /// `ndim` sizes.
    pub shape: *mut i64,
    /// `ndim` strides in elements, or null for compact row-major.
    pub strides: *mut i64,
    /// Bytes from `data` to the first element.
    pub byte_offset: u64,
}

/// DLPack's `DLManagedTensor`: a tensor with its owner's deleter.
#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensor {
    /// The tensor.
    pub dl_tensor: DLTensor,
    /// The owner's state.
    pub manager_ctx: *mut c_void,
    /// Frees the tensor (called once by its last user).
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

const F32: DLDataType = DLDataType {
    code: 2,
    bits: 32,
    lanes: 1,
};
const I64: DLDataType = DLDataType {
    code: 0,
    bits: 64,
    lanes: 1,
};

/// Rows borrowed from another framework's device memory (see
/// [`DeviceMatrix::from_dlpack`]): a [`DeviceMatrix`] whose memory is never
/// freed by this library.
#[derive(Debug)]
pub struct ForeignRows(DeviceMatrix);

impl Deref for ForeignRows {
    type Target = DeviceMatrix;
    fn deref(&self) -> &DeviceMatrix {
        &self.0
    }
}

impl Drop for ForeignRows {
    fn drop(&mut self) {
        let empty = Storage::Host(HostData::F32(Vec::new()));
        if let Storage::Cuda(_, CudaRows::F32(s)) = std::mem::replace(&mut self.0.storage, empty) {
            // The framework owns the memory.
            s.leak();
        }
    }
}

/// Shape `[rows, dim]` of a float32 C-contiguous DLPack tensor (1-D: one
/// row), or why it cannot be read in place.
fn row_shape(t: &DLTensor) -> Result<(usize, usize)> {
    if t.dtype != F32 {
        let d = t.dtype;
        let got = format!("code {} bits {} lanes {}", d.code, d.bits, d.lanes);
        return Err(Error::invalid("DLPack dtype", got, "rows must be float32"));
    }
    if !(1..=2).contains(&t.ndim) || t.shape.is_null() {
        return Err(Error::invalid(
            "DLPack ndim",
            t.ndim,
            "rows must be 1-D or 2-D",
        ));
    }
    // SAFETY: the producer gives `ndim` sizes (and strides, when not null).
    let shape = unsafe { std::slice::from_raw_parts(t.shape, t.ndim as usize) };
    let (rows, dim) = match *shape {
        [d] => (1, d),
        [r, d] => (r, d),
        _ => unreachable!("ndim checked"),
    };
    if rows < 0 || dim < 0 {
        return Err(Error::invalid(
            "DLPack shape",
            format!("{shape:?}"),
            "negative size",
        ));
    }
    let (rows, dim) = (rows as usize, dim as usize);
    if !t.strides.is_null() {
        // SAFETY: as above.
        let strides = unsafe { std::slice::from_raw_parts(t.strides, t.ndim as usize) };
        let inner_ok = dim <= 1 || strides[strides.len() - 1] == 1;
        let outer_ok = strides.len() == 1 || rows <= 1 || strides[0] == dim as i64;
        if !(inner_ok && outer_ok) {
            return Err(Error::invalid(
                "DLPack strides",
                format!("{strides:?} for shape {shape:?}"),
                "rows must be C-contiguous to be read in place",
            ));
        }
    }
    Ok((rows, dim))
}

impl DeviceMatrix {
    /// Borrows a float32 C-contiguous CUDA tensor (1-D: one row) on the
    /// context's device as rows every operation accepts in place.
    ///
    /// # Safety
    /// `tensor` must describe valid device memory that stays allocated and
    /// unwritten while the returned rows (and any call using them) live,
    /// and the work that wrote it must be ordered before this context's
    /// stream (DLPack's `stream` argument, [`Context::cuda_stream`]).
    pub unsafe fn from_dlpack(ctx: &Context, tensor: &DLTensor) -> Result<ForeignRows> {
        let (rows, dim) = row_shape(tensor)?;
        let data = format!(
            "DLPack device {}:{}",
            tensor.device.device_type, tensor.device.device_id
        );
        let dev = match ctx.engine() {
            Engine::Cuda(d)
                if tensor.device.device_type == DEVICE_CUDA
                    && tensor.device.device_id as usize == d.ordinal() =>
            {
                d
            }
            _ => {
                let context = ctx.device().to_string();
                return Err(Error::DeviceMismatch { data, context });
            }
        };
        if rows == 0 || dim == 0 {
            return Err(Error::EmptyInput {
                what: "DLPack rows",
            });
        }
        let addr = tensor.data as u64 + tensor.byte_offset;
        if !addr.is_multiple_of(4) {
            return Err(Error::invalid(
                "DLPack data",
                format!("{addr:#x}"),
                "not 4-byte aligned",
            ));
        }
        // SAFETY: the caller vouches for the memory; `ForeignRows` never frees it.
        let slice = unsafe { dev.stream.upgrade_device_ptr::<f32>(addr, rows * dim) };
        let storage = Storage::Cuda(dev.clone(), CudaRows::F32(slice));
        Ok(ForeignRows(DeviceMatrix::from_storage(
            storage, rows, dim, None,
        )))
    }

    /// Hands float32 rows over as a DLPack tensor of shape `[rows, dim]`
    /// (CUDA memory, or host memory for a CPU context), freed by its
    /// deleter. `consumer_stream` (DLPack's `stream`: a `CUstream`, 1 for
    /// the legacy default, 2 for per-thread) is made to wait for the work
    /// that computes the rows; without it the context is synchronised.
    pub fn into_dlpack(mut self, consumer_stream: Option<usize>) -> Result<*mut DLManagedTensor> {
        let shape = [self.rows(), self.dim()];
        let empty = Storage::Host(HostData::F32(Vec::new()));
        let owner = match std::mem::replace(&mut self.storage, empty) {
            Storage::Cuda(dev, CudaRows::F32(s)) => Owner::CudaF32(dev, s),
            Storage::Host(HostData::F32(v)) => Owner::HostF32(v),
            Storage::Host(HostData::Mapped(m)) => Owner::HostF32(m.as_slice().to_vec()),
            _ => {
                return Err(Error::invalid(
                    "rows",
                    "binary or 16-bit rows",
                    "DLPack export needs f32 rows",
                ))
            }
        };
        export(owner, shape, consumer_stream)
    }
}

impl DeviceIds {
    /// Hands the ids over as a DLPack `int64` tensor of shape `shape`
    /// (whose product must be [`len`](Self::len)); a missing id
    /// ([`MISSING_ID`](crate::MISSING_ID)) reads as `-1`. Stream as for
    /// [`DeviceMatrix::into_dlpack`].
    pub fn into_dlpack(
        self,
        shape: [usize; 2],
        consumer_stream: Option<usize>,
    ) -> Result<*mut DLManagedTensor> {
        if shape[0] * shape[1] != self.len() {
            return Err(Error::DimensionMismatch {
                what: "DLPack ids shape",
                expected: self.len(),
                got: shape[0] * shape[1],
            });
        }
        let owner = match self.storage {
            IdStorage::Cuda(dev, s) => Owner::CudaU64(dev, s),
            IdStorage::Host(v) => Owner::HostU64(v),
        };
        export(owner, shape, consumer_stream)
    }
}

impl Context {
    /// The `CUstream` this context's work runs on (an address), for
    /// DLPack's `stream` argument; `None` on the CPU.
    pub fn cuda_stream(&self) -> Option<usize> {
        match self.engine() {
            Engine::Cpu => None,
            Engine::Cuda(d) => Some(d.stream.cu_stream() as usize),
        }
    }
}

impl Context {
    /// Makes this context's stream wait for the work queued so far on
    /// another CUDA stream of its device (a framework's current stream, as
    /// a `CUstream` address; 0 the default stream): for rows a framework
    /// wrote and hands over by address rather than through `__dlpack__`.
    /// A no-op on the CPU.
    pub fn wait_for_stream(&self, stream: usize) -> Result<()> {
        match self.engine() {
            Engine::Cpu => Ok(()),
            Engine::Cuda(d) => {
                let _g = d.lock();
                stream_waits(stream as driver_sys::CUstream, d.stream.cu_stream())
            }
        }
    }
}

/// Memory handed over through DLPack.
enum Owner {
    CudaF32(Arc<CudaDevice>, CudaSlice<f32>),
    CudaU64(Arc<CudaDevice>, CudaSlice<u64>),
    HostF32(Vec<f32>),
    HostU64(Vec<u64>),
}

/// A tensor handed over: the `DLManagedTensor` first, so its address is
/// this struct's.
#[repr(C)]
struct Exported {
    managed: DLManagedTensor,
    shape: [i64; 2],
    strides: [i64; 2],
    owner: Owner,
    /// The stream the consumer reads on (freeing waits for it).
    consumer: Option<usize>,
}

fn export(
    owner: Owner,
    [rows, cols]: [usize; 2],
    consumer: Option<usize>,
) -> Result<*mut DLManagedTensor> {
    let (data, device, dtype) = match &owner {
        Owner::CudaF32(dev, s) => (cuda_addr(dev, s), cuda_device(dev), F32),
        Owner::CudaU64(dev, s) => (cuda_addr(dev, s), cuda_device(dev), I64),
        Owner::HostF32(v) => (v.as_ptr() as u64, CPU, F32),
        Owner::HostU64(v) => (v.as_ptr() as u64, CPU, I64),
    };
    if let Owner::CudaF32(dev, _) | Owner::CudaU64(dev, _) = &owner {
        order_consumer(dev, consumer)?;
    }
    let mut out = Box::new(Exported {
        managed: DLManagedTensor {
            dl_tensor: DLTensor {
                data: data as *mut c_void,
                device,
                ndim: 2,
                dtype,
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(delete_exported),
        },
        shape: [rows as i64, cols as i64],
        strides: [cols as i64, 1],
        owner,
        consumer,
    });
    out.managed.dl_tensor.shape = out.shape.as_mut_ptr();
    out.managed.dl_tensor.strides = out.strides.as_mut_ptr();
    let raw = Box::into_raw(out);
    // SAFETY: `raw` is live; the context points back at the allocation.
    unsafe { (*raw).managed.manager_ctx = raw.cast() };
    Ok(raw.cast())
}

const CPU: DLDevice = DLDevice {
    device_type: DEVICE_CPU,
    device_id: 0,
};

fn cuda_device(dev: &CudaDevice) -> DLDevice {
    DLDevice {
        device_type: DEVICE_CUDA,
        device_id: dev.ordinal() as i32,
    }
}

fn cuda_addr<T>(dev: &CudaDevice, s: &CudaSlice<T>) -> u64 {
    let (ptr, _sync) = s.device_ptr(&dev.stream);
    ptr
}

/// Makes `consumer` (or, without one, the host) wait for the work queued
/// on the device's stream.
fn order_consumer(dev: &CudaDevice, consumer: Option<usize>) -> Result<()> {
    let _g = dev.lock();
    match consumer {
        None => dev.sync(),
        Some(s) => stream_waits(dev.stream.cu_stream(), s as driver_sys::CUstream),
    }
}

/// Queues on `waiter` a wait for the work queued so far on `first`.
fn stream_waits(first: driver_sys::CUstream, waiter: driver_sys::CUstream) -> Result<()> {
    let mut ev = std::ptr::null_mut();
    let flags = driver_sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32;
    // SAFETY: one out-pointer; live streams of the current context; the
    // event is destroyed after the wait is queued (the driver keeps it).
    unsafe {
        driver_sys::cuEventCreate(&mut ev, flags)
            .result()
            .map_err(cu("cuEventCreate"))?;
        let r = driver_sys::cuEventRecord(ev, first)
            .result()
            .and_then(|_| driver_sys::cuStreamWaitEvent(waiter, ev, 0).result());
        driver_sys::cuEventDestroy_v2(ev);
        r.map_err(cu("cuStreamWaitEvent (DLPack stream order)"))
    }
}

/// The deleter of exported tensors: frees device memory after the work the
/// consumer queued on its stream.
unsafe extern "C" fn delete_exported(t: *mut DLManagedTensor) {
    if t.is_null() {
        return;
    }
    // SAFETY: `t` came from `export`, whose box starts with it.
    let out = unsafe { Box::from_raw(t.cast::<Exported>()) };
    if let Owner::CudaF32(dev, _) | Owner::CudaU64(dev, _) = &out.owner {
        if dev.context().bind_to_thread().is_ok() {
            if let Some(s) = out.consumer {
                let _ = stream_waits(s as driver_sys::CUstream, dev.stream.cu_stream());
            }
        }
    }
    drop(out);
}

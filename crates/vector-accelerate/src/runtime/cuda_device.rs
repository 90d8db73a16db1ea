//! Probing and opening a CUDA device without ever panicking: each library is
//! checked for presence before cudarc touches it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cudarc::cublas::{sys as cublas_sys, CudaBlas};
use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{
    sys as driver_sys, CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream,
    DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PinnedHostSlice,
};
use cudarc::nvrtc::Ptx;
use rayon::prelude::*;

use crate::core::device::{Device, DeviceInfo, MemoryStats};
use crate::core::error::{cu, Error, Result};
use crate::runtime::kernel_cache::{nvrtc_available, nvrtc_version, ModuleCache, MODULES};

/// Bytes past which uploads go through page-locked staging (and the size
/// of its chunks).
const STAGED_FROM: usize = 1 << 20;
/// Largest upload staged (the staging buffer's size): query batches, not
/// whole indexes, whose one-off uploads need no page-locked copy kept.
const STAGED_UP_TO: usize = 16 << 20;
/// Bytes per core of a staged chunk's copy: 16 cores share a chunk. (Copied
/// in quarters, the 5 MB query upload of a 10,000-query graph search
/// traced at 0.52 ms on an H100.)
const STAGE_PIECE: usize = 1 << 16;

/// An open CUDA device: context, one stream, a cuBLAS handle and the loaded
/// kernel modules. Shared by every [`Context`](crate::Context) on the device.
pub(crate) struct CudaDevice {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    /// Host-to-device transfers that overlap the compute `stream`
    /// (`cuda::feed`); ordered against it with events.
    pub(crate) copy_stream: Arc<CudaStream>,
    pub(crate) blas: CudaBlas,
    arch: String,
    name: String,
    cc: (i32, i32),
    total_mem: usize,
    sm_count: i32,
    driver_version: String,
    cublas_version: String,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    cache: ModuleCache,
    /// Serialises operations: one stream and one cuBLAS handle per device.
    op_lock: Mutex<()>,
    /// Page-locked staging of large downloads (grown on demand, kept).
    staging: Mutex<Option<PinnedHostSlice<u8>>>,
    /// Page-locked staging of large uploads, and an event after the
    /// transfers that last read it.
    upload_staging: Mutex<(Option<PinnedHostSlice<u8>>, Option<CudaEvent>)>,
    /// Device buffers allocated so far.
    allocations: AtomicU64,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaDevice({}: {} {})",
            self.ordinal, self.name, self.arch
        )
    }
}

fn present(f: unsafe fn() -> bool) -> bool {
    // SAFETY: only opens a shared library by name.
    std::panic::catch_unwind(|| unsafe { f() }).unwrap_or(false)
}

/// Why CUDA cannot be used on this machine, or `None` when the driver,
/// NVRTC and cuBLAS load and at least one device exists.
fn probe(ordinal: usize) -> std::result::Result<(), String> {
    if !present(driver_sys::is_culib_present) {
        return Err("the CUDA driver library (libcuda.so) was not found".into());
    }
    let count = std::panic::catch_unwind(CudaContext::device_count)
        .map_err(|_| "the CUDA driver could not be loaded".to_string())?
        .map_err(|e| format!("the CUDA driver did not initialise ({e})"))?;
    if count <= 0 {
        return Err("the CUDA driver reports no device".into());
    }
    if ordinal >= count as usize {
        return Err(format!(
            "CUDA device {ordinal} was requested but only {count} exist"
        ));
    }
    if !nvrtc_available() {
        return Err("NVRTC (libnvrtc.so.13) was not found; kernels cannot be compiled".into());
    }
    if !present(cublas_sys::is_culib_present) {
        return Err("cuBLAS (libcublas.so.13) was not found".into());
    }
    Ok(())
}

/// How many CUDA devices are visible and usable (every one passes the same
/// checks as device 0), or why none is.
pub(crate) fn count() -> std::result::Result<usize, String> {
    probe(0)?;
    let count = std::panic::catch_unwind(CudaContext::device_count)
        .map_err(|_| "the CUDA driver could not be loaded".to_string())?
        .map_err(|e| format!("the CUDA driver did not initialise ({e})"))?;
    Ok(count.max(0) as usize)
}

/// Opens (once per process) CUDA device `ordinal`, or says why it cannot.
pub(crate) fn open(ordinal: usize) -> std::result::Result<Arc<CudaDevice>, String> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
    let map = DEVICES.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = map.get(&ordinal) {
        return Ok(d.clone());
    }
    probe(ordinal)?;
    let dev = std::panic::catch_unwind(|| CudaDevice::new(ordinal))
        .map_err(|_| "opening the CUDA device panicked".to_string())?
        .map_err(|e| e.to_string())?;
    let dev = Arc::new(dev);
    map.insert(ordinal, dev.clone());
    Ok(dev)
}

/// The device's default stream-ordered memory pool, when it has one.
fn default_pool(ctx: &CudaContext) -> Option<driver_sys::CUmemoryPool> {
    if !ctx.has_async_alloc() {
        return None;
    }
    let mut pool = std::ptr::null_mut();
    // SAFETY: one valid out-pointer and a device of this context.
    unsafe { driver_sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) }
        .result()
        .ok()?;
    Some(pool)
}

impl CudaDevice {
    /// Returns the memory the pool keeps for reuse to the device.
    pub(crate) fn release_cached(&self) -> Result<()> {
        let _g = self.lock();
        self.sync()?;
        if let Some(pool) = default_pool(&self.ctx) {
            // SAFETY: a live pool; nothing is in flight after the sync.
            unsafe { driver_sys::cuMemPoolTrimTo(pool, 0) }
                .result()
                .map_err(cu("cuMemPoolTrimTo"))?;
        }
        Ok(())
    }

    /// The pool's figures and the allocation count.
    pub(crate) fn memory_stats(&self) -> Result<MemoryStats> {
        use driver_sys::CUmemPool_attribute as A;
        let allocations = self.allocations.load(Ordering::Relaxed);
        let Some(pool) = default_pool(&self.ctx) else {
            return Ok(MemoryStats {
                allocations,
                ..MemoryStats::default()
            });
        };
        let get = |attr: A| -> Result<u64> {
            let mut v = 0u64;
            // SAFETY: a live pool and a u64 out-value, as these attributes use.
            unsafe { driver_sys::cuMemPoolGetAttribute(pool, attr, (&mut v as *mut u64).cast()) }
                .result()
                .map_err(cu("cuMemPoolGetAttribute"))?;
            Ok(v)
        };
        let in_use = get(A::CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?;
        let reserved = get(A::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)?;
        Ok(MemoryStats {
            in_use,
            cached: reserved.saturating_sub(in_use),
            peak: get(A::CU_MEMPOOL_ATTR_USED_MEM_HIGH)?,
            allocations,
        })
    }

    /// Starts the peak of [`memory_stats`](Self::memory_stats) again from
    /// the memory in use now.
    pub(crate) fn reset_peak(&self) -> Result<()> {
        let Some(pool) = default_pool(&self.ctx) else {
            return Ok(());
        };
        let mut zero = 0u64;
        // SAFETY: a live pool; setting the high-water mark to 0 resets it.
        unsafe {
            driver_sys::cuMemPoolSetAttribute(
                pool,
                driver_sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                (&mut zero as *mut u64).cast(),
            )
        }
        .result()
        .map_err(cu("cuMemPoolSetAttribute"))
    }

    fn new(ordinal: usize) -> Result<Self> {
        let ctx = CudaContext::new(ordinal).map_err(cu("cuCtx (open device)"))?;
        // SAFETY: each device has one stream and every buffer is used in its
        // order, so cudarc's per-buffer events are not needed.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(cu("cuStreamCreate"))?;
        let copy_stream = ctx.new_stream().map_err(cu("cuStreamCreate"))?;
        // Buffers come from the stream-ordered pool; keep what a call frees
        // for the next one instead of returning it at every synchronisation
        // (`Context::release_cached_device_memory` gives it back).
        if let Some(pool) = default_pool(&ctx) {
            let mut keep = u64::MAX;
            // SAFETY: a live pool and a u64 value, as the attribute expects.
            unsafe {
                driver_sys::cuMemPoolSetAttribute(
                    pool,
                    driver_sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                    (&mut keep as *mut u64).cast(),
                )
            }
            .result()
            .map_err(cu("cuMemPoolSetAttribute"))?;
        }
        let blas = CudaBlas::new(stream.clone()).map_err(cu("cublasCreate"))?;
        // Exact fp32: never let cuBLAS use TF32 tensor cores on this handle.
        // SAFETY: a live handle.
        unsafe {
            cublas_sys::cublasSetMathMode(
                *blas.handle(),
                cublas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH,
            )
            .result()
            .map_err(cu("cublasSetMathMode"))?;
        }
        let cc = ctx
            .compute_capability()
            .map_err(cu("cuDeviceGetAttribute"))?;
        let name = ctx.name().map_err(cu("cuDeviceGetName"))?;
        let total_mem = ctx.total_mem().map_err(cu("cuDeviceTotalMem"))?;
        let sm_count = ctx
            .attribute(driver_sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(cu("cuDeviceGetAttribute"))?;
        let mut dv = 0;
        // SAFETY: one valid out-pointer.
        let driver_version = match unsafe { driver_sys::cuDriverGetVersion(&mut dv) }.result() {
            Ok(()) => format!("{}.{}", dv / 1000, (dv % 1000) / 10),
            Err(e) => format!("unknown ({e})"),
        };
        let mut bv = 0;
        // SAFETY: a live handle and one valid out-pointer.
        let cublas_version =
            match unsafe { cublas_sys::cublasGetVersion_v2(*blas.handle(), &mut bv) }.result() {
                Ok(()) => format!("{}.{}.{}", bv / 10000, (bv % 10000) / 100, bv % 100),
                Err(e) => format!("unknown ({e})"),
            };
        Ok(Self {
            ordinal,
            ctx,
            stream,
            copy_stream,
            blas,
            arch: format!("sm_{}{}", cc.0, cc.1),
            name,
            cc,
            total_mem,
            sm_count,
            driver_version,
            cublas_version,
            modules: Mutex::new(HashMap::new()),
            cache: ModuleCache::from_env(),
            op_lock: Mutex::new(()),
            staging: Mutex::new(None),
            upload_staging: Mutex::new((None, None)),
            allocations: AtomicU64::new(0),
        })
    }

    /// The device's context (for work on threads other than the caller's).
    pub(crate) fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Streaming multiprocessors of the device.
    pub(crate) fn sm_count(&self) -> usize {
        self.sm_count.max(1) as usize
    }

    /// A launch of 256-thread blocks for a grid-stride loop over `total`
    /// elements: one thread per element, at most 16 blocks per SM.
    pub(crate) fn grid_stride(&self, total: usize) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (
                total.div_ceil(256).min(self.sm_count() * 16).max(1) as u32,
                1,
                1,
            ),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    pub(crate) fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// Exclusive use of the device's stream and cuBLAS handle for one operation.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.op_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn free_memory(&self) -> Option<usize> {
        self.ctx.bind_to_thread().ok()?;
        self.ctx.mem_get_info().ok().map(|(free, _)| free)
    }

    pub(crate) fn device_info(&self, cpu_threads: usize) -> DeviceInfo {
        DeviceInfo {
            device: Device::Cuda(self.ordinal),
            name: self.name.clone(),
            compute_capability: Some(self.cc),
            total_memory: Some(self.total_mem),
            free_memory: self.free_memory(),
            multiprocessors: Some(self.sm_count),
            driver_version: Some(self.driver_version.clone()),
            nvrtc_version: nvrtc_version().ok(),
            cublas_version: Some(self.cublas_version.clone()),
            cpu_threads,
        }
    }

    /// A kernel of a module, compiling (or loading from the disk cache) the
    /// module on first use.
    pub(crate) fn func(&self, module: &'static str, name: &str) -> Result<CudaFunction> {
        let m = {
            let mut mods = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            match mods.get(module) {
                Some(m) => m.clone(),
                None => {
                    let km = MODULES
                        .iter()
                        .find(|m| m.name == module)
                        .ok_or(Error::Cuda {
                            op: "kernel lookup",
                            message: format!("no module named {module}"),
                        })?;
                    let (cubin, _) = self.cache.get_or_compile(km, &self.arch)?;
                    let m = self
                        .ctx
                        .load_module(Ptx::from_binary(cubin))
                        .map_err(cu("cuModuleLoadData"))?;
                    mods.insert(module, m.clone());
                    m
                }
            }
        };
        m.load_function(name).map_err(cu("cuModuleGetFunction"))
    }

    /// Allocates `len` elements; with the `debug-hooks` feature and output
    /// poisoning on (tests), fills them with 0xFF bytes (NaN / u64::MAX) so
    /// an unwritten element shows.
    pub(crate) fn alloc<T: DeviceRepr>(&self, len: usize) -> Result<CudaSlice<T>> {
        // SAFETY: the memory is written before it is read (and poisoned when checking that).
        let s = unsafe { self.stream.alloc::<T>(len.max(1)) }.map_err(|_| {
            Error::OutOfDeviceMemory {
                what: "device buffer",
                requested: len * std::mem::size_of::<T>(),
                available: self.free_memory().unwrap_or(0),
            }
        })?;
        self.allocations.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "debug-hooks")]
        let s = self.poisoned(s)?;
        Ok(s)
    }

    /// A copy of `s` in a new buffer (queued on the stream).
    pub(crate) fn copy_of<T: DeviceRepr>(&self, s: &CudaSlice<T>) -> Result<CudaSlice<T>> {
        let mut out = self.alloc::<T>(s.len())?;
        self.stream
            .memcpy_dtod(s, &mut out)
            .map_err(cu("cuMemcpyDtoD"))?;
        Ok(out)
    }

    /// `s` filled with 0xFF bytes when output poisoning is on.
    #[cfg(feature = "debug-hooks")]
    fn poisoned<T: DeviceRepr>(&self, mut s: CudaSlice<T>) -> Result<CudaSlice<T>> {
        if POISON.load(std::sync::atomic::Ordering::Relaxed) {
            use cudarc::driver::DevicePtrMut;
            let bytes = s.num_bytes();
            let (ptr, _g) = s.device_ptr_mut(&self.stream);
            // SAFETY: `ptr` covers `bytes` bytes of this allocation.
            unsafe {
                cudarc::driver::result::memset_d8_async(ptr, 0xff, bytes, self.stream.cu_stream())
            }
            .map_err(cu("cuMemsetD8Async"))?;
        }
        Ok(s)
    }

    /// The first `n` elements of `s`, downloaded. Results over 1 MiB go
    /// through a page-locked staging buffer kept by the device (pageable
    /// copies of large results run at a fraction of the bus rate); the
    /// stream is synchronised.
    pub(crate) fn download<T: DeviceRepr + Copy>(
        &self,
        s: &CudaSlice<T>,
        n: usize,
    ) -> Result<Vec<T>> {
        self.download_with(s, n, |v| *v)
    }

    /// [`download`](Self::download) with each element converted by `f`
    /// straight out of the staging buffer (one host allocation, not two:
    /// fresh pages cost more than the copy).
    pub(crate) fn download_with<T: DeviceRepr + Copy, U>(
        &self,
        s: &CudaSlice<T>,
        n: usize,
        f: impl Fn(&T) -> U,
    ) -> Result<Vec<U>> {
        let bytes = n * std::mem::size_of::<T>();
        assert!(
            n <= s.len(),
            "download of {n} elements from a buffer of {}",
            s.len()
        );
        if bytes <= 1 << 20 {
            let mut v = self
                .stream
                .clone_dtoh(s)
                .map_err(cu("download (cuMemcpyDtoH)"))?;
            v.truncate(n);
            self.sync()?;
            return Ok(v.iter().map(f).collect());
        }
        let mut st = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        if st.as_ref().is_none_or(|p| p.len() < bytes) {
            *st = None;
            // Flags 0: ordinary page-locked memory (cudarc's default is
            // write-combined, which the host reads back at a crawl).
            // SAFETY: the bytes are written by the copy before being read.
            let p = unsafe {
                self.ctx
                    .alloc_pinned_with_flags::<u8>(bytes.next_power_of_two(), 0)
            }
            .map_err(cu("cuMemHostAlloc"))?;
            *st = Some(p);
        }
        let pinned = st.as_mut().expect("allocated above");
        let host = pinned.as_mut_slice().map_err(cu("pinned staging"))?;
        let (ptr, _g) = s.device_ptr(&self.stream);
        // SAFETY: `host` holds at least `bytes` bytes; `ptr` covers n
        // elements of T; the stream is synchronised before reading.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(
                &mut host[..bytes],
                ptr,
                self.stream.cu_stream(),
            )
        }
        .map_err(cu("download (cuMemcpyDtoHAsync)"))?;
        drop(_g);
        self.sync()?;
        // SAFETY: the staging buffer is page-aligned (so aligned for T) and
        // its first `bytes` bytes hold n values of the plain-old-data T
        // copied from the device.
        let vals = unsafe { std::slice::from_raw_parts(host.as_ptr() as *const T, n) };
        Ok(vals.iter().map(f).collect())
    }

    /// Copies `data` into `dst` (at least as long) on the stream. Data over
    /// [`STAGED_FROM`] bytes (up to [`STAGED_UP_TO`]) goes through a
    /// page-locked buffer the device keeps, a chunk at a time, each chunk copied in by all cores while
    /// the one before is on the bus (pageable copies run at a fraction of
    /// the bus rate). The call returns once the bytes are staged.
    pub(crate) fn upload_into<T: DeviceRepr>(
        &self,
        data: &[T],
        dst: &mut CudaSlice<T>,
    ) -> Result<()> {
        let bytes = std::mem::size_of_val(data);
        assert!(
            data.len() <= dst.len(),
            "upload of {} into {}",
            data.len(),
            dst.len()
        );
        if bytes <= STAGED_FROM || bytes > STAGED_UP_TO {
            return self
                .stream
                .memcpy_htod(data, dst)
                .map_err(cu("upload (cuMemcpyHtoD)"));
        }
        // SAFETY: T is plain data (a device type); its bytes are read only.
        let src = unsafe { std::slice::from_raw_parts(data.as_ptr() as *const u8, bytes) };
        let mut st = self
            .upload_staging
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(e) = st.1.take() {
            e.synchronize().map_err(cu("cuEventSynchronize"))?;
        }
        if st.0.is_none() {
            // SAFETY: the bytes are written below before a transfer reads
            // them (write-combined: the host only writes them).
            let p = unsafe { self.ctx.alloc_pinned::<u8>(STAGED_UP_TO) }
                .map_err(cu("cuMemHostAlloc"))?;
            st.0 = Some(p);
        }
        let pinned = st.0.as_mut().expect("allocated above");
        let host = pinned.as_mut_slice().map_err(cu("pinned staging"))?;
        let (ptr, guard) = dst.device_ptr_mut(&self.stream);
        // SAFETY: `dst` holds `bytes` bytes; the pinned buffer is not
        // written again before the event recorded below completes.
        unsafe {
            send_staged(
                src,
                host,
                (ptr, &self.stream),
                (STAGED_FROM, STAGE_PIECE),
                "upload (cuMemcpyHtoDAsync)",
            )
        }?;
        drop(guard);
        st.1 = Some(
            self.stream
                .record_event(None)
                .map_err(cu("cuEventRecord"))?,
        );
        Ok(())
    }

    /// Milliseconds the work `f` enqueues takes on the device (event-timed).
    pub(crate) fn time_ms(&self, f: impl FnOnce() -> Result<()>) -> Result<f32> {
        let flags = Some(driver_sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self
            .stream
            .record_event(flags)
            .map_err(cu("cuEventRecord"))?;
        f()?;
        let end = self
            .stream
            .record_event(flags)
            .map_err(cu("cuEventRecord"))?;
        start.elapsed_ms(&end).map_err(cu("cuEventElapsedTime"))
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(cu("cuStreamSynchronize"))
    }
}

/// Copies `src` into the page-locked `pinned` (at least as long) and starts
/// its transfer to device address `ptr` on `stream`, `chunk` bytes at a
/// time: each chunk copied by all cores, `piece` bytes a core, while the
/// chunk before is on the bus. `what` names a failed transfer.
///
/// # Safety
/// `ptr` must address at least `src.len()` device bytes, and `pinned` must
/// stay allocated and unwritten until the transfers are done.
pub(crate) unsafe fn send_staged(
    src: &[u8],
    pinned: &mut [u8],
    (ptr, stream): (CUdeviceptr, &CudaStream),
    (chunk, piece): (usize, usize),
    what: &'static str,
) -> Result<()> {
    let dst = &mut pinned[..src.len()];
    for (c, (d, s)) in dst.chunks_mut(chunk).zip(src.chunks(chunk)).enumerate() {
        d.par_chunks_mut(piece)
            .zip(s.par_chunks(piece))
            .for_each(|(d, s)| d.copy_from_slice(s));
        // SAFETY: as the caller promises.
        unsafe {
            cudarc::driver::result::memcpy_htod_async(
                ptr + (c * chunk) as CUdeviceptr,
                &*d,
                stream.cu_stream(),
            )
        }
        .map_err(cu(what))?;
    }
    Ok(())
}

/// When set, every device output buffer is filled with 0xFF bytes (NaN /
/// `u64::MAX`) before kernels write it, so a test sees any unwritten element.
#[cfg(feature = "debug-hooks")]
pub(crate) static POISON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

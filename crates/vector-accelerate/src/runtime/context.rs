//! [`Context`]: which device runs the operations, chosen at run time, plus
//! the per-context device memory budget.

use std::sync::Arc;

use crate::core::device::{Device, DeviceInfo, MemoryStats};
use crate::core::error::{Error, Result};
use crate::runtime::cuda_device::CudaDevice;

/// Environment variable that overrides the device choice of [`Context::new`]:
/// `cpu`, `cuda` (device 0), `cuda:N` or `auto`.
pub const DEVICE_ENV: &str = "VECTOR_ACCELERATE_DEVICE";

/// Environment variable read by [`Context::new`]: the memory budget of one
/// operation in bytes (suffixes `K`, `M`, `G` are powers of 1024).
pub const BUDGET_ENV: &str = "VECTOR_ACCELERATE_MEMORY_BUDGET";

/// Parses a byte count such as `1048576`, `512M` or `4G`.
pub(crate) fn parse_bytes(s: &str) -> Result<usize> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 1usize << 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 1 << 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            Error::invalid(
                "memory budget",
                s,
                "expected a positive byte count such as 1048576, 512M or 4G",
            )
        })
}

/// The backend a context runs on (internal dispatch).
#[derive(Clone)]
pub(crate) enum Engine {
    Cpu,
    Cuda(Arc<CudaDevice>),
}

/// The handle every operation takes: one device, a memory budget and, for an
/// automatic choice that ended on the CPU, the reason CUDA was not used.
///
/// ```
/// use vector_accelerate::{Context, Device};
/// let ctx = Context::cpu();
/// assert_eq!(ctx.device(), Device::Cpu);
/// // Context::new() picks CUDA device 0 when usable, else the CPU, and
/// // honours VECTOR_ACCELERATE_DEVICE=cpu|cuda|cuda:N.
/// let auto = Context::new().unwrap();
/// println!("running on {}", auto.device());
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) engine: Engine,
    budget: Option<usize>,
    fallback_reason: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("device", &self.device())
            .field("budget", &self.budget)
            .field("fallback_reason", &self.fallback_reason)
            .finish()
    }
}

impl Context {
    /// The CPU backend.
    pub fn cpu() -> Self {
        Self {
            engine: Engine::Cpu,
            budget: None,
            fallback_reason: None,
        }
    }

    /// CUDA device `ordinal`, or an error saying why it cannot be used.
    pub fn cuda(ordinal: usize) -> Result<Self> {
        let dev = crate::runtime::cuda_device::open(ordinal)
            .map_err(|reason| Error::CudaUnavailable { reason })?;
        Ok(Self {
            engine: Engine::Cuda(dev),
            budget: None,
            fallback_reason: None,
        })
    }

    /// A context for every visible CUDA device, in ordinal order (for
    /// indexes spread over several GPUs), or an error saying why CUDA
    /// cannot be used.
    pub fn all_cuda() -> Result<Vec<Self>> {
        let count = crate::runtime::cuda_device::count()
            .map_err(|reason| Error::CudaUnavailable { reason })?;
        (0..count).map(Self::cuda).collect()
    }

    /// The best device: CUDA device 0 when the driver, NVRTC, cuBLAS and a
    /// device are all present, else the CPU (with [`Context::fallback_reason`]
    /// saying why). Never fails.
    pub fn best() -> Self {
        match crate::runtime::cuda_device::open(0) {
            Ok(dev) => Self {
                engine: Engine::Cuda(dev),
                budget: None,
                fallback_reason: None,
            },
            Err(reason) => Self {
                engine: Engine::Cpu,
                budget: None,
                fallback_reason: Some(reason),
            },
        }
    }

    /// [`Context::best`], unless `VECTOR_ACCELERATE_DEVICE` names a device,
    /// in which case that device (an explicit `cuda` request that cannot be
    /// met is an error, not a silent fallback).
    /// `VECTOR_ACCELERATE_MEMORY_BUDGET`, when set, becomes the memory budget.
    pub fn new() -> Result<Self> {
        match std::env::var(DEVICE_ENV) {
            Ok(s) if !s.trim().is_empty() => Self::from_spec(&s),
            _ => Self::from_spec("auto"),
        }
    }

    /// A context for `cpu`, `cuda`, `cuda:N` or `auto` (with the memory
    /// budget of `VECTOR_ACCELERATE_MEMORY_BUDGET` when set).
    pub fn from_spec(spec: &str) -> Result<Self> {
        let ctx = if spec.trim().eq_ignore_ascii_case("auto") {
            Self::best()
        } else {
            match spec.parse::<Device>()? {
                Device::Cpu => Self::cpu(),
                Device::Cuda(i) => Self::cuda(i)?,
            }
        };
        match std::env::var(BUDGET_ENV) {
            Ok(b) if !b.trim().is_empty() => Ok(ctx.with_memory_budget(parse_bytes(&b)?)),
            _ => Ok(ctx),
        }
    }

    /// Limits the device (or CPU workspace) memory one operation may use;
    /// larger jobs are tiled to fit.
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.budget = Some(bytes);
        self
    }

    /// Bytes one operation may use for its workspace: the explicit budget,
    /// else 80% of free device memory (CUDA) or 1 GiB (CPU).
    pub fn memory_budget(&self) -> usize {
        if let Some(b) = self.budget {
            return b;
        }
        match &self.engine {
            Engine::Cpu => 1 << 30,
            Engine::Cuda(d) => d.free_memory().map(|f| f / 10 * 8).unwrap_or(1 << 30),
        }
    }

    /// The device this context runs on.
    pub fn device(&self) -> Device {
        match &self.engine {
            Engine::Cpu => Device::Cpu,
            Engine::Cuda(d) => Device::Cuda(d.ordinal()),
        }
    }

    /// Whether operations run on a CUDA device.
    pub fn is_cuda(&self) -> bool {
        matches!(self.engine, Engine::Cuda(_))
    }

    /// Why an automatic choice did not take CUDA (None when it did, or when
    /// the device was chosen explicitly).
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// Facts about the device.
    pub fn info(&self) -> DeviceInfo {
        let cpu_threads = rayon::current_num_threads();
        match &self.engine {
            Engine::Cpu => DeviceInfo {
                device: Device::Cpu,
                name: format!("CPU ({cpu_threads} threads)"),
                compute_capability: None,
                total_memory: None,
                free_memory: None,
                multiprocessors: None,
                driver_version: None,
                nvrtc_version: crate::runtime::kernel_cache::nvrtc_version().ok(),
                cublas_version: None,
                cpu_threads,
            },
            Engine::Cuda(d) => d.device_info(cpu_threads),
        }
    }

    /// Waits until every operation queued on the context's device has
    /// finished (results on the device, e.g. of
    /// [`vector::map`](crate::vector::map), are computed asynchronously;
    /// reading one back with [`DeviceMatrix::to_host`](crate::DeviceMatrix::to_host)
    /// waits for it). A no-op on the CPU, whose operations return done.
    pub fn synchronize(&self) -> Result<()> {
        match &self.engine {
            Engine::Cpu => Ok(()),
            Engine::Cuda(d) => {
                let _g = d.lock();
                d.sync()
            }
        }
    }

    /// Gives device memory that finished operations keep cached for reuse
    /// (CUDA's stream-ordered pool keeps freed workspace so that the next
    /// call allocates nothing new) back to the device. A no-op on the CPU.
    pub fn release_cached_device_memory(&self) -> Result<()> {
        match &self.engine {
            Engine::Cpu => Ok(()),
            Engine::Cuda(d) => d.release_cached(),
        }
    }

    /// Device memory now: bytes in use, bytes the pool keeps cached, the
    /// peak in use, and the buffers allocated so far (all zero on the
    /// CPU). Queued work counts once it has been enqueued.
    ///
    /// ```
    /// let ctx = vector_accelerate::Context::cpu();
    /// assert_eq!(ctx.memory_stats()?.peak, 0);
    /// # Ok::<(), vector_accelerate::Error>(())
    /// ```
    pub fn memory_stats(&self) -> Result<MemoryStats> {
        match &self.engine {
            Engine::Cpu => Ok(MemoryStats::default()),
            Engine::Cuda(d) => d.memory_stats(),
        }
    }

    /// Restarts the peak of [`memory_stats`](Self::memory_stats) from the
    /// memory in use now (to measure one operation's peak). A no-op on the
    /// CPU.
    pub fn reset_peak_memory(&self) -> Result<()> {
        match &self.engine {
            Engine::Cpu => Ok(()),
            Engine::Cuda(d) => d.reset_peak(),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_parse() {
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("4g").unwrap(), 4 << 30);
        assert_eq!(parse_bytes(" 8 K ").unwrap(), 8 << 10);
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-5M").is_err());
    }
}

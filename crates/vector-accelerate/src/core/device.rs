//! [`Device`] and [`DeviceInfo`]: where a context runs, as users see it.

use crate::core::error::{Error, Result};

/// Where a context runs, as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The CPU backend (all cores, SIMD).
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => t
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| Error::invalid("device", s, "expected cpu, cuda or cuda:N")),
        }
    }
}

/// Device memory of a context's device, from CUDA's stream-ordered pool
/// that every device buffer of the library comes from. All zero on a CPU
/// context (host memory is not tracked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Bytes of device buffers alive now (results the caller holds, and
    /// workspace of operations in flight).
    pub in_use: u64,
    /// Bytes the pool keeps, freed by finished operations, for the next
    /// ones (given back by `Context::release_cached_device_memory`).
    pub cached: u64,
    /// The most bytes in use at once since the device was opened or
    /// `Context::reset_peak_memory` was called.
    pub peak: u64,
    /// Device buffers the library has allocated since the device was
    /// opened (from the pool: reusing cached memory, or growing it).
    pub allocations: u64,
}

/// A description of the context's device, for `vaccel info` and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// The device.
    pub device: Device,
    /// Human-readable name (GPU model, or the CPU with its thread count).
    pub name: String,
    /// CUDA compute capability `(major, minor)`.
    pub compute_capability: Option<(i32, i32)>,
    /// Device memory in bytes (CUDA).
    pub total_memory: Option<usize>,
    /// Free device memory in bytes at the time of the call (CUDA).
    pub free_memory: Option<usize>,
    /// Streaming multiprocessors (CUDA).
    pub multiprocessors: Option<i32>,
    /// CUDA driver version, e.g. `13.0`.
    pub driver_version: Option<String>,
    /// NVRTC version used to compile kernels.
    pub nvrtc_version: Option<String>,
    /// cuBLAS version.
    pub cublas_version: Option<String>,
    /// Worker threads of the CPU backend.
    pub cpu_threads: usize,
}

//! Run-time kernel compilation with NVRTC for the device's exact
//! architecture, and an on-disk cache of the resulting cubins keyed by
//! source hash, architecture and compiler version.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use cudarc::nvrtc::{result as nvrtc, sys as nvrtc_sys};
use sha2::{Digest, Sha256};

use crate::core::error::{Error, Result};

/// The headers every module is compiled with: common definitions and the
/// tensor-core building blocks.
const COMMON: &str = concat!(
    include_str!("../cuda/kernels/common.cuh"),
    "\n",
    include_str!("../cuda/kernels/mma.cuh")
);

/// A CUDA C kernel module: a name and its source (without the common header).
#[derive(Debug, Clone, Copy)]
pub struct KernelModule {
    /// Module name (also the file name under `cuda/kernels/`).
    pub name: &'static str,
    /// CUDA C source.
    pub source: &'static str,
}

/// Every kernel module of the crate.
pub const MODULES: &[KernelModule] = &[
    KernelModule {
        name: "distance",
        source: include_str!("../cuda/kernels/distance.cu"),
    },
    KernelModule {
        name: "select",
        source: include_str!("../cuda/kernels/select.cu"),
    },
    KernelModule {
        name: "knn",
        source: include_str!("../cuda/kernels/knn.cu"),
    },
    KernelModule {
        name: "quantize",
        source: include_str!("../cuda/kernels/quantize.cu"),
    },
    KernelModule {
        name: "cluster",
        source: include_str!("../cuda/kernels/cluster.cu"),
    },
    KernelModule {
        name: "vector",
        source: include_str!("../cuda/kernels/vector.cu"),
    },
    KernelModule {
        name: "stats",
        source: include_str!("../cuda/kernels/stats.cu"),
    },
    KernelModule {
        name: "gemm",
        source: include_str!("../cuda/kernels/gemm.cu"),
    },
    KernelModule {
        name: "histogram",
        source: include_str!("../cuda/kernels/histogram.cu"),
    },
    KernelModule {
        name: "ivf",
        source: include_str!("../cuda/kernels/ivf.cu"),
    },
    KernelModule {
        name: "graph",
        source: include_str!("../cuda/kernels/graph.cu"),
    },
];

/// Environment variable naming the kernel cache folder (default:
/// `$XDG_CACHE_HOME/vector-accelerate/kernels` or `~/.cache/vector-accelerate/kernels`).
/// Set it to `off` to disable the disk cache.
pub const CACHE_ENV: &str = "VECTOR_ACCELERATE_KERNEL_CACHE";

/// Whether the NVRTC library can be loaded (no panic when it cannot).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to open the shared library.
    std::panic::catch_unwind(|| unsafe { nvrtc_sys::is_culib_present() }).unwrap_or(false)
}

/// NVRTC's version as `major.minor`.
pub fn nvrtc_version() -> Result<String> {
    if !nvrtc_available() {
        return Err(Error::CudaUnavailable {
            reason: "NVRTC (libnvrtc.so.13) was not found".into(),
        });
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two valid out-pointers.
    let r = unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) };
    if r != nvrtc_sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::Cuda {
            op: "nvrtcVersion",
            message: format!("{r:?}"),
        });
    }
    Ok(format!("{major}.{minor}"))
}

/// The full source NVRTC compiles for `module`.
pub(crate) fn full_source(module: &KernelModule) -> String {
    format!("{COMMON}\n{}", module.source)
}

fn options(arch: &str) -> Vec<String> {
    vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".into(),
        "-default-device".into(),
    ]
}

/// Compiles one module to a cubin for `arch` (e.g. `sm_90`). Needs NVRTC only (no GPU).
pub(crate) fn compile_cubin(module: &KernelModule, arch: &str) -> Result<Vec<u8>> {
    if !nvrtc_available() {
        return Err(Error::CudaUnavailable {
            reason: "NVRTC (libnvrtc.so.13) was not found".into(),
        });
    }
    let src = CString::new(full_source(module)).map_err(|e| Error::Cuda {
        op: "kernel source",
        message: e.to_string(),
    })?;
    let name = CString::new(format!("{}.cu", module.name)).expect("module names have no NUL");
    let prog = nvrtc::create_program(&src, Some(&name)).map_err(|e| Error::Cuda {
        op: "nvrtcCreateProgram",
        message: e.to_string(),
    })?;
    // SAFETY: `prog` is a live program until destroyed below.
    let out = unsafe {
        let compiled = nvrtc::compile_program(prog, &options(arch));
        let log = nvrtc::get_program_log(prog)
            .map(|l| {
                let bytes: Vec<u8> = l.iter().map(|c| *c as u8).take_while(|c| *c != 0).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .unwrap_or_default();
        match compiled {
            Err(_) => Err(Error::KernelCompile {
                module: module.name,
                arch: arch.to_string(),
                log,
            }),
            Ok(()) => {
                let mut size = 0usize;
                let r = nvrtc_sys::nvrtcGetCUBINSize(prog, &mut size);
                if r != nvrtc_sys::nvrtcResult::NVRTC_SUCCESS || size == 0 {
                    Err(Error::KernelCompile {
                        module: module.name,
                        arch: arch.to_string(),
                        log: format!("no cubin produced ({r:?}); use a real architecture such as sm_90\n{log}"),
                    })
                } else {
                    let mut buf = vec![0u8; size];
                    let r = nvrtc_sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut _);
                    if r != nvrtc_sys::nvrtcResult::NVRTC_SUCCESS {
                        Err(Error::Cuda {
                            op: "nvrtcGetCUBIN",
                            message: format!("{r:?}"),
                        })
                    } else {
                        Ok(buf)
                    }
                }
            }
        }
    };
    // SAFETY: destroyed once.
    let _ = unsafe { nvrtc::destroy_program(prog) };
    out
}

/// Compiles every kernel module for `arch`, returning `(module, cubin bytes)`.
/// This is what CI runs without a GPU to prove every kernel compiles.
///
/// ```no_run
/// for (name, bytes) in vector_accelerate::kernels::compile_all("sm_90").unwrap() {
///     println!("{name}: {bytes} bytes");
/// }
/// ```
pub fn compile_all(arch: &str) -> Result<Vec<(&'static str, usize)>> {
    MODULES
        .iter()
        .map(|m| compile_cubin(m, arch).map(|c| (m.name, c.len())))
        .collect()
}

/// The on-disk cubin cache.
#[derive(Debug, Clone)]
pub(crate) struct ModuleCache {
    dir: Option<PathBuf>,
}

impl ModuleCache {
    /// The cache in the default (or configured) folder.
    pub(crate) fn from_env() -> Self {
        let dir = match std::env::var(CACHE_ENV) {
            Ok(v) if v == "off" => None,
            Ok(v) if !v.is_empty() => Some(PathBuf::from(v)),
            _ => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
                .map(|c| c.join("vector-accelerate").join("kernels")),
        };
        Self { dir }
    }

    /// A cache in `dir`.
    #[cfg(test)]
    pub(crate) fn in_dir(dir: PathBuf) -> Self {
        Self { dir: Some(dir) }
    }

    /// The cache file of `module` for `arch` under this compiler.
    pub(crate) fn path_for(
        &self,
        module: &KernelModule,
        arch: &str,
        nvrtc: &str,
    ) -> Option<PathBuf> {
        let mut h = Sha256::new();
        h.update(full_source(module).as_bytes());
        h.update(options(arch).join(" ").as_bytes());
        let hex: String = h.finalize()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}-{arch}-nvrtc{nvrtc}-{hex}.cubin", module.name)))
    }

    /// The module's cubin: from disk when present and valid, else compiled
    /// (and stored). Returns `(cubin, was_cached)`.
    pub(crate) fn get_or_compile(
        &self,
        module: &KernelModule,
        arch: &str,
    ) -> Result<(Vec<u8>, bool)> {
        let nv = nvrtc_version()?;
        let path = self.path_for(module, arch, &nv);
        if let Some(p) = &path {
            if let Ok(bytes) = std::fs::read(p) {
                if bytes.len() > 4 && &bytes[..4] == b"\x7fELF" {
                    return Ok((bytes, true));
                }
            }
        }
        let cubin = compile_cubin(module, arch)?;
        if let Some(p) = &path {
            // Best effort: a read-only or missing cache folder only costs a recompile.
            if let Some(d) = p.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, &cubin).is_ok() {
                let _ = std::fs::rename(&tmp, p);
            }
        }
        Ok((cubin, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_changes_with_source_and_arch() {
        let c = ModuleCache::in_dir(PathBuf::from("/tmp/x"));
        let a = KernelModule {
            name: "m",
            source: "// a",
        };
        let b = KernelModule {
            name: "m",
            source: "// b",
        };
        let pa = c.path_for(&a, "sm_90", "13.0").unwrap();
        assert_ne!(pa, c.path_for(&b, "sm_90", "13.0").unwrap());
        assert_ne!(pa, c.path_for(&a, "sm_80", "13.0").unwrap());
        assert_ne!(pa, c.path_for(&a, "sm_90", "13.1").unwrap());
        assert_eq!(pa, c.path_for(&a, "sm_90", "13.0").unwrap());
    }

    #[test]
    fn cache_round_trip_when_nvrtc_present() {
        if !nvrtc_available() {
            eprintln!("skip: NVRTC not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("va-cache-test-{}", std::process::id()));
        let c = ModuleCache::in_dir(dir.clone());
        let (first, cached) = c.get_or_compile(&MODULES[0], "sm_80").unwrap();
        assert!(!cached);
        let (second, cached) = c.get_or_compile(&MODULES[0], "sm_80").unwrap();
        assert!(cached);
        assert_eq!(first, second);
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! [`DeviceMatrix`]: rows resident on a context's device across calls.

use std::sync::{Arc, OnceLock};

use cudarc::driver::CudaSlice;

use crate::core::device::Device;
use crate::core::error::{Error, Result};
use crate::core::half::{half_dim, HalfKind};
use crate::core::matrix::{BinaryMatrix, Matrix};

use crate::runtime::context::{Context, Engine};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{upload_slice, CudaRows};

/// Rows in host memory: the storage of a CPU context (owned, or `f32`
/// values read in place from a memory-mapped file).
#[derive(Debug, Clone)]
pub(crate) enum HostData {
    F32(Vec<f32>),
    Bits(Vec<u64>),
    Mapped(MappedF32),
}

/// `f32` values inside a read-only memory map of a file (the file is never
/// written in place: files are replaced by rename).
#[derive(Clone)]
pub(crate) struct MappedF32 {
    map: Arc<memmap2::Mmap>,
    start: usize,
    len: usize,
}

impl std::fmt::Debug for MappedF32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedF32({} values at byte {})", self.len, self.start)
    }
}

impl MappedF32 {
    /// `len` values from byte `start` of `map`, if they lie inside it and
    /// `start` is 4-byte aligned.
    pub(crate) fn new(map: Arc<memmap2::Mmap>, start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len.checked_mul(4)?)?;
        (end <= map.len() && start.is_multiple_of(4)).then_some(Self { map, start, len })
    }
    /// The values.
    pub(crate) fn as_slice(&self) -> &[f32] {
        bytemuck::cast_slice(&self.map[self.start..self.start + self.len * 4])
    }
    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    /// Values `a..b` of these.
    pub(crate) fn slice(&self, a: usize, b: usize) -> Self {
        assert!(
            a <= b && b <= self.len,
            "mapped range {a}..{b} of {}",
            self.len
        );
        Self {
            map: self.map.clone(),
            start: self.start + a * 4,
            len: b - a,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Storage {
    Host(HostData),
    Cuda(Arc<CudaDevice>, CudaRows),
    /// 16-bit rows on a CUDA device, `half_dim(dim)` elements per row
    /// (padding zero): a k-NN base for the GEMM metrics.
    CudaHalf(Arc<CudaDevice>, HalfKind, CudaSlice<u16>),
}

/// Rows (dense `f32`, bit-packed binary, or 16-bit floats) kept on a
/// context's device: host memory for a CPU context, device memory for a
/// CUDA one. Made by [`Context::upload`] and returned by every operation
/// whose result is a matrix (maps, products, projections), so a chain of
/// operations never leaves the device; accepted by every operation of a
/// context on the same device without another copy. [`to_host`](Self::to_host)
/// is the explicit read-back.
#[derive(Debug)]
pub struct DeviceMatrix {
    rows: usize,
    dim: usize,
    binary: bool,
    /// Whether any value is negative (weighted Jaccard refuses such rows);
    /// found on first use for host rows taken over from a CPU result.
    has_negative: OnceLock<bool>,
    pub(crate) storage: Storage,
    /// Squared row norms on the device, computed on first use by a GEMM metric.
    norms: OnceLock<CudaSlice<f32>>,
    /// bf16 and f16 copies of the rows on the device, made on first use by
    /// a fast-precision k-NN.
    halves: [OnceLock<CudaSlice<u16>>; 2],
}

impl DeviceMatrix {
    /// Rows of `dim` values read in place from a memory-mapped file (a CPU
    /// context's storage; no copy).
    pub(crate) fn from_mapped(m: MappedF32, dim: usize) -> Self {
        let rows = m.len / dim.max(1);
        Self::from_storage(Storage::Host(HostData::Mapped(m)), rows, dim, None)
    }

    /// Rows kept in `storage` (`has_negative`: whether any value is
    /// negative, when known; found on first use otherwise).
    pub(crate) fn from_storage(
        storage: Storage,
        rows: usize,
        dim: usize,
        has_negative: Option<bool>,
    ) -> Self {
        let binary = matches!(
            storage,
            Storage::Host(HostData::Bits(_)) | Storage::Cuda(_, CudaRows::Bits(_))
        );
        Self {
            rows,
            dim,
            binary,
            has_negative: has_negative.map(OnceLock::from).unwrap_or_default(),
            storage,
            norms: OnceLock::new(),
            halves: Default::default(),
        }
    }

    /// Uploads 16-bit rows (`bits` as `f16` or `bf16` bit patterns): on
    /// CUDA kept in 16 bits, on the CPU widened to f32 (exactly).
    pub(crate) fn upload_half(
        ctx: &Context,
        bits: &[u16],
        dim: usize,
        kind: HalfKind,
    ) -> Result<Self> {
        if dim == 0 {
            return Err(Error::ZeroDimension {
                what: "matrix to upload",
            });
        }
        if !bits.len().is_multiple_of(dim) {
            return Err(Error::RaggedData {
                what: "matrix to upload",
                len: bits.len(),
                dim,
            });
        }
        let rows = bits.len() / dim;
        if rows == 0 {
            return Err(Error::EmptyInput {
                what: "matrix to upload",
            });
        }
        let widen = |b: u16| kind.widen(b);
        let has_negative = bits.iter().any(|&b| widen(b) < 0.0);
        let storage = match ctx.engine() {
            Engine::Cpu => Storage::Host(HostData::F32(bits.iter().map(|&b| widen(b)).collect())),
            Engine::Cuda(dev) => {
                let hd = half_dim(dim);
                let mut padded = vec![0u16; rows * hd];
                for (dst, src) in padded.chunks_exact_mut(hd).zip(bits.chunks_exact(dim)) {
                    dst[..dim].copy_from_slice(src);
                }
                let _g = dev.lock();
                let s = upload_slice(dev, &padded)?;
                dev.sync()?;
                Storage::CudaHalf(dev.clone(), kind, s)
            }
        };
        Ok(Self::from_storage(storage, rows, dim, Some(has_negative)))
    }

    /// Host rows of a CPU context taken over without a copy (results that
    /// the CPU backend leaves "resident").
    pub(crate) fn from_host_f32(data: Vec<f32>, dim: usize) -> Self {
        let rows = data.len() / dim.max(1);
        Self::from_storage(Storage::Host(HostData::F32(data)), rows, dim, None)
    }

    /// Bit-packed host rows of a CPU context taken over without a copy.
    pub(crate) fn from_host_binary(m: BinaryMatrix) -> Self {
        let (rows, bits) = (m.rows(), m.bits());
        Self::from_storage(
            Storage::Host(HostData::Bits(m.into_words())),
            rows,
            bits,
            Some(false),
        )
    }

    /// Rows made on a CUDA device by a kernel (`has_negative`: whether any
    /// value may be negative; weighted Jaccard refuses such rows).
    pub(crate) fn from_cuda(
        dev: &Arc<CudaDevice>,
        rows_data: CudaRows,
        rows: usize,
        dim: usize,
        has_negative: bool,
    ) -> Self {
        let storage = Storage::Cuda(dev.clone(), rows_data);
        Self::from_storage(storage, rows, dim, Some(has_negative))
    }

    /// The `f32` rows of a CUDA matrix.
    pub(crate) fn cuda_f32(&self) -> Option<&CudaSlice<f32>> {
        match &self.storage {
            Storage::Cuda(_, CudaRows::F32(s)) => Some(s),
            _ => None,
        }
    }

    /// A copy of the rows on the same device.
    pub(crate) fn duplicate(&self) -> Result<Self> {
        let storage = match &self.storage {
            Storage::Host(h) => Storage::Host(h.clone()),
            Storage::Cuda(dev, r) => Storage::Cuda(dev.clone(), r.try_clone(dev)?),
            Storage::CudaHalf(dev, kind, s) => {
                let _g = dev.lock();
                Storage::CudaHalf(dev.clone(), *kind, dev.copy_of(s)?)
            }
        };
        Ok(Self::from_storage(
            storage,
            self.rows,
            self.dim,
            Some(self.has_negative()),
        ))
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Dimension (elements, or bits for binary rows).
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Whether rows are bit-packed binary.
    pub fn is_binary(&self) -> bool {
        self.binary
    }
    /// Bytes of the stored rows (device memory on CUDA, host memory on a
    /// CPU context; caches derived from the rows, such as norms or 16-bit
    /// copies, not included).
    pub(crate) fn stored_bytes(&self) -> usize {
        match &self.storage {
            Storage::Host(HostData::F32(v)) => v.len() * 4,
            Storage::Host(HostData::Mapped(m)) => m.len * 4,
            Storage::Host(HostData::Bits(w)) => w.len() * 8,
            Storage::Cuda(_, CudaRows::F32(s)) => s.len() * 4,
            Storage::Cuda(_, CudaRows::Bits(s)) => s.len() * 8,
            Storage::CudaHalf(_, _, s) => s.len() * 2,
        }
    }
    /// The `f32` rows of a CUDA matrix for writing in place; caches derived
    /// from the rows are dropped.
    pub(crate) fn cuda_f32_mut(&mut self) -> Option<&mut CudaSlice<f32>> {
        self.norms = OnceLock::new();
        self.halves = Default::default();
        match &mut self.storage {
            Storage::Cuda(_, CudaRows::F32(s)) => Some(s),
            _ => None,
        }
    }

    /// The `f32` rows of a CPU-resident matrix for writing in place.
    pub(crate) fn host_f32_mut(&mut self) -> Option<&mut [f32]> {
        match &mut self.storage {
            Storage::Host(HostData::F32(v)) => Some(v),
            _ => None,
        }
    }

    /// The cache of squared row norms (CUDA `f32` rows).
    pub(crate) fn norm_cache(&self) -> &OnceLock<CudaSlice<f32>> {
        &self.norms
    }

    /// The cache of 16-bit copies of CUDA `f32` rows (0: bf16, 1: f16).
    pub(crate) fn half_cache(&self, f16: bool) -> &OnceLock<CudaSlice<u16>> {
        &self.halves[f16 as usize]
    }

    /// The 16-bit rows of a CUDA matrix uploaded in 16 bits.
    pub(crate) fn half_store(&self) -> Option<(HalfKind, &CudaSlice<u16>)> {
        match &self.storage {
            Storage::CudaHalf(_, kind, s) => Some((*kind, s)),
            _ => None,
        }
    }

    /// Whether any value is negative.
    pub(crate) fn has_negative(&self) -> bool {
        *self.has_negative.get_or_init(|| match &self.storage {
            Storage::Host(HostData::F32(v)) => v.iter().any(|x| *x < 0.0),
            Storage::Host(HostData::Mapped(m)) => m.as_slice().iter().any(|x| *x < 0.0),
            _ => true,
        })
    }

    /// The device holding the rows.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Host(_) => Device::Cpu,
            Storage::Cuda(d, _) | Storage::CudaHalf(d, ..) => Device::Cuda(d.ordinal()),
        }
    }

    /// Errors unless the rows live on `ctx`'s device.
    pub(crate) fn check_device(&self, ctx: &Context) -> Result<()> {
        if self.device() != ctx.device() {
            return Err(Error::DeviceMismatch {
                data: self.device().to_string(),
                context: ctx.device().to_string(),
            });
        }
        Ok(())
    }

    /// The rows as a host matrix: a copy, waiting for the work that makes
    /// them (16-bit rows are widened exactly). An error for bit-packed rows
    /// ([`to_host_binary`](Self::to_host_binary)).
    pub fn to_host(&self) -> Result<Matrix> {
        let data = match &self.storage {
            Storage::Host(HostData::F32(v)) => v.clone(),
            Storage::Host(HostData::Mapped(m)) => m.as_slice().to_vec(),
            Storage::Host(HostData::Bits(_)) | Storage::Cuda(_, CudaRows::Bits(_)) => {
                return Err(binary_rows());
            }
            Storage::Cuda(dev, r) => r.download_f32(dev)?.ok_or_else(binary_rows)?,
            Storage::CudaHalf(dev, kind, s) => {
                let bits = download(dev, s)?;
                let hd = half_dim(self.dim);
                bits.chunks_exact(hd)
                    .flat_map(|r| r[..self.dim].iter())
                    .map(|&b| kind.widen(b))
                    .collect()
            }
        };
        Matrix::new(data, self.dim)
    }

    /// [`to_host`](Self::to_host), consuming the rows: on a CPU context the
    /// host memory is taken over without a copy.
    pub fn into_host(self) -> Result<Matrix> {
        match self.storage {
            Storage::Host(HostData::F32(v)) => Matrix::new(v, self.dim),
            _ => self.to_host(),
        }
    }

    /// Rows `start..end` (`end <= rows`) of `f32` or 16-bit rows, copied to
    /// the host as `f32`.
    pub(crate) fn rows_to_host(&self, start: usize, end: usize) -> Result<Matrix> {
        let d = self.dim;
        let data = match &self.storage {
            Storage::Host(HostData::F32(v)) => v[start * d..end * d].to_vec(),
            Storage::Host(HostData::Mapped(m)) => m.as_slice()[start * d..end * d].to_vec(),
            Storage::Host(HostData::Bits(_)) | Storage::Cuda(_, CudaRows::Bits(_)) => {
                return Err(binary_rows());
            }
            Storage::Cuda(dev, CudaRows::F32(s)) => download_range(dev, s, start * d, end * d)?,
            Storage::CudaHalf(dev, kind, s) => {
                let hd = half_dim(d);
                let bits = download_range(dev, s, start * hd, end * hd)?;
                bits.chunks_exact(hd)
                    .flat_map(|r| r[..d].iter())
                    .map(|&b| kind.widen(b))
                    .collect()
            }
        };
        Matrix::new(data, d)
    }

    /// Bit-packed rows as a host matrix (a copy); an error for `f32` rows.
    pub fn to_host_binary(&self) -> Result<BinaryMatrix> {
        let words = match &self.storage {
            Storage::Host(HostData::Bits(w)) => w.clone(),
            Storage::Cuda(dev, CudaRows::Bits(s)) => download(dev, s)?,
            _ => {
                return Err(Error::invalid(
                    "rows",
                    "f32 rows",
                    "expected bit-packed binary rows",
                ))
            }
        };
        BinaryMatrix::new(words, self.dim)
    }
}

fn binary_rows() -> Error {
    Error::invalid("rows", "bit-packed binary rows", "expected f32 rows")
}

/// A device buffer copied to the host (waits for the work before it).
fn download<T: cudarc::driver::DeviceRepr + Clone + Default>(
    dev: &CudaDevice,
    s: &CudaSlice<T>,
) -> Result<Vec<T>> {
    let _g = dev.lock();
    let v = dev
        .stream
        .clone_dtoh(s)
        .map_err(crate::core::error::cu("download (cuMemcpyDtoH)"))?;
    dev.sync()?;
    Ok(v)
}

/// Elements `start..end` of a device buffer copied to the host.
fn download_range<T: cudarc::driver::DeviceRepr + Clone + Default>(
    dev: &CudaDevice,
    s: &CudaSlice<T>,
    start: usize,
    end: usize,
) -> Result<Vec<T>> {
    let mut v = vec![T::default(); end - start];
    if v.is_empty() {
        return Ok(v);
    }
    let _g = dev.lock();
    dev.stream
        .memcpy_dtoh(&s.slice(start..end), &mut v)
        .map_err(crate::core::error::cu("download (cuMemcpyDtoH)"))?;
    dev.sync()?;
    Ok(v)
}

#[derive(Debug)]
pub(crate) enum IdStorage {
    Host(Vec<u64>),
    Cuda(Arc<CudaDevice>, CudaSlice<u64>),
}

/// Indices (`u64`) resident on a context's device: the result of
/// [`arg_reduce`](crate::vector::arg_reduce). A
/// [`DeviceMatrix`] holds `f32` values, which represent integers exactly
/// only up to `2^24`, so indices (flat indices of arrays larger than that
/// included) get their own type; on a CPU context they are host memory.
#[derive(Debug)]
pub struct DeviceIds {
    pub(crate) storage: IdStorage,
    len: usize,
}

impl DeviceIds {
    pub(crate) fn from_host(ids: Vec<u64>) -> Self {
        let len = ids.len();
        Self {
            storage: IdStorage::Host(ids),
            len,
        }
    }

    pub(crate) fn from_cuda(dev: &Arc<CudaDevice>, ids: CudaSlice<u64>, len: usize) -> Self {
        Self {
            storage: IdStorage::Cuda(dev.clone(), ids),
            len,
        }
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no indices (never true for a reduction's result).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device holding the indices.
    pub fn device(&self) -> Device {
        match &self.storage {
            IdStorage::Host(_) => Device::Cpu,
            IdStorage::Cuda(d, _) => Device::Cuda(d.ordinal()),
        }
    }

    /// Copies the indices to the host (waits for the work that makes them).
    pub fn to_host(&self) -> Result<Vec<u64>> {
        match &self.storage {
            IdStorage::Host(v) => Ok(v.clone()),
            IdStorage::Cuda(dev, s) => {
                let mut v = download(dev, s)?;
                v.truncate(self.len);
                Ok(v)
            }
        }
    }
}

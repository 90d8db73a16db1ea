//! Device storage of rows (`f32` or bit-packed `u64` words).

use cudarc::driver::{CudaSlice, CudaView, DeviceRepr};

use crate::core::error::{cu, Error, Result};
use crate::runtime::cuda_device::CudaDevice;

/// Rows on a CUDA device.
#[derive(Debug)]
pub(crate) enum CudaRows {
    F32(CudaSlice<f32>),
    Bits(CudaSlice<u64>),
}

impl CudaRows {
    pub(crate) fn upload_f32(dev: &CudaDevice, data: &[f32]) -> Result<Self> {
        let _g = dev.lock();
        let r = CudaRows::F32(upload_slice(dev, data)?);
        dev.sync()?;
        Ok(r)
    }

    pub(crate) fn upload_bits(dev: &CudaDevice, words: &[u64]) -> Result<Self> {
        let _g = dev.lock();
        let r = CudaRows::Bits(upload_slice(dev, words)?);
        dev.sync()?;
        Ok(r)
    }

    pub(crate) fn try_clone(&self, dev: &CudaDevice) -> Result<Self> {
        let _g = dev.lock();
        Ok(match self {
            CudaRows::F32(s) => CudaRows::F32(dev.copy_of(s)?),
            CudaRows::Bits(s) => CudaRows::Bits(dev.copy_of(s)?),
        })
    }

    pub(crate) fn download_f32(&self, dev: &CudaDevice) -> Result<Option<Vec<f32>>> {
        let _g = dev.lock();
        match self {
            CudaRows::F32(s) => Ok(Some(
                dev.stream
                    .clone_dtoh(s)
                    .map_err(cu("download (cuMemcpyDtoH)"))?,
            )),
            CudaRows::Bits(_) => Ok(None),
        }
    }

    /// Rows `start..end` given `per_row` elements per row.
    pub(crate) fn rows(&self, start: usize, end: usize, per_row: usize) -> RowsRef<'_> {
        match self {
            CudaRows::F32(s) => RowsRef::F32(s.slice(start * per_row..end * per_row)),
            CudaRows::Bits(s) => RowsRef::Bits(s.slice(start * per_row..end * per_row)),
        }
    }
}

/// Copies a host slice into a new device buffer (the caller holds the device lock).
pub(crate) fn upload_slice<T: DeviceRepr>(dev: &CudaDevice, data: &[T]) -> Result<CudaSlice<T>> {
    let mut s = dev.alloc::<T>(data.len())?;
    if !data.is_empty() {
        dev.upload_into(data, &mut s)?;
    }
    Ok(s)
}

/// A range of device rows.
#[derive(Debug)]
pub(crate) enum RowsRef<'a> {
    F32(CudaView<'a, f32>),
    Bits(CudaView<'a, u64>),
}

/// The `f32` rows of a device input (binary rows are refused).
pub(crate) fn f32_rows(rows: &CudaRows) -> Result<&CudaSlice<f32>> {
    match rows {
        CudaRows::F32(s) => Ok(s),
        CudaRows::Bits(_) => Err(Error::invalid(
            "input",
            "bit-packed binary rows",
            "expected f32 rows",
        )),
    }
}

/// `n` zeroed elements on the device.
pub(crate) fn zeros<T: DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    dev: &CudaDevice,
    n: usize,
) -> Result<CudaSlice<T>> {
    let mut s = dev.alloc::<T>(n)?;
    dev.stream
        .memset_zeros(&mut s)
        .map_err(cu("cuMemsetD8Async"))?;
    Ok(s)
}

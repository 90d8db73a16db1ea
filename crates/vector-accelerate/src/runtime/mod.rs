//! Devices and the data kept on them: the CUDA device handle and its
//! kernel cache, [`Context`](crate::Context), device-resident rows
//! ([`DeviceMatrix`](crate::DeviceMatrix)), page-locked host rows and the
//! [`Input`](crate::Input) every operation accepts.

pub(crate) mod backend;
pub(crate) mod codes;
pub(crate) mod context;
pub(crate) mod cuda_device;
pub(crate) mod cuda_rows;
pub(crate) mod dlpack;
pub(crate) mod input;
pub(crate) mod kernel_cache;
pub(crate) mod pinned;
pub(crate) mod resident;
pub(crate) mod tensor;

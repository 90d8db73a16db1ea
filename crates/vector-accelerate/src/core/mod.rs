//! The floor every other layer stands on: errors, host matrices, metrics,
//! ranking and results, precision modes, 16-bit formats, seeded draws and
//! each family's shared vocabulary. Nothing here knows a device.

pub(crate) mod cluster;
pub(crate) mod device;
pub(crate) mod diagnostics;
pub(crate) mod dtype;
pub(crate) mod error;
pub(crate) mod half;
pub(crate) mod histogram;
pub(crate) mod interrupt;
pub(crate) mod linalg;
pub(crate) mod matrix;
pub(crate) mod metric;
pub(crate) mod neighbors;
pub(crate) mod precision;
pub(crate) mod quantize;
pub(crate) mod rng;
pub(crate) mod stats;
pub(crate) mod trace;
pub(crate) mod vector;

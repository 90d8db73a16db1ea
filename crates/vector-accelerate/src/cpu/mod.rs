//! The CPU backend: the reference implementation of every operation and a
//! real fast path (GEMM from the `gemm` crate, threads from `rayon`).

#[cfg(target_arch = "x86_64")]
pub(crate) mod assign;
pub(crate) mod cluster;
pub(crate) mod diagnostics;
pub(crate) mod distance;
#[cfg(target_arch = "x86_64")]
pub(crate) mod fused;
pub(crate) mod histogram;
pub(crate) mod knn;
pub(crate) mod linalg;
#[cfg(target_arch = "x86_64")]
pub(crate) mod quant_simd;
pub(crate) mod quantize;
pub(crate) mod select;
pub(crate) mod stats;
pub(crate) mod vector;
pub(crate) mod vmath;

use crate::core::matrix::{BinaryView, MatrixView};

/// Host rows as the CPU kernels take them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostRows<'a> {
    F32(MatrixView<'a>),
    Bits(BinaryView<'a>),
}

impl<'a> HostRows<'a> {
    pub(crate) fn rows(&self) -> usize {
        match self {
            HostRows::F32(m) => m.rows(),
            HostRows::Bits(b) => b.rows(),
        }
    }
    pub(crate) fn slice_rows(&self, s: usize, e: usize) -> HostRows<'a> {
        match self {
            HostRows::F32(m) => HostRows::F32(m.slice_rows(s, e)),
            HostRows::Bits(b) => HostRows::Bits(b.slice_rows(s, e)),
        }
    }
}

//! Host views of inputs: what the CPU kernels read (rows of a CPU context
//! included) and write in place.

use crate::core::error::{Error, Result};
use crate::core::matrix::{BinaryView, MatrixView};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

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

/// Host rows of an input for the CPU backend (resident CPU data included).
pub(crate) fn host_rows<'a>(i: &'a Input<'a>) -> Result<HostRows<'a>> {
    match i {
        Input::F32(m) => Ok(HostRows::F32(*m)),
        Input::Binary(b) => Ok(HostRows::Bits(*b)),
        Input::Resident(d) => match d.host_input() {
            Some(Input::F32(m)) => Ok(HostRows::F32(m)),
            Some(Input::Binary(b)) => Ok(HostRows::Bits(b)),
            _ => Err(Error::DeviceMismatch {
                data: d.device().to_string(),
                context: "cpu".into(),
            }),
        },
    }
}

/// The `f32` host rows of an input (an error for bit-packed rows).
pub(crate) fn host_f32<'a>(i: &'a Input<'a>) -> Result<MatrixView<'a>> {
    match host_rows(i)? {
        HostRows::F32(m) => Ok(m),
        HostRows::Bits(_) => Err(Error::invalid(
            "input",
            "bit-packed rows",
            "expected f32 rows",
        )),
    }
}

/// The `f32` host rows of rows a CPU context holds, for writing in place.
pub(crate) fn host_f32_mut(x: &mut DeviceMatrix) -> Result<&mut [f32]> {
    let device = x.device();
    x.host_f32_mut().ok_or_else(|| Error::DeviceMismatch {
        data: device.to_string(),
        context: "cpu".into(),
    })
}

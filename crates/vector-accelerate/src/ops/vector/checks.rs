//! Validation shared by the vector utilities.

use crate::core::error::{Error, Result};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Validates an `f32` input of this family: not empty, not binary, not
/// 16-bit device rows, on the context's device.
pub(crate) fn check_input(ctx: &Context, x: &Input<'_>, what: &'static str) -> Result<()> {
    if x.rows() == 0 {
        return Err(Error::EmptyInput { what });
    }
    if x.is_binary() {
        return Err(Error::invalid(
            "input",
            format!("{what}: bit-packed binary rows"),
            "vector utilities take f32 rows",
        ));
    }
    if let Input::Resident(d) = x {
        d.check_device(ctx)?;
    }
    crate::ops::refuse_half(x, what)
}

//! Validation shared by the vector utilities.

use crate::core::error::Result;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Validates an `f32` input of this family: not empty, not binary, not
/// 16-bit device rows, on the context's device.
pub(crate) fn check_input(ctx: &Context, x: &Input<'_>, what: &'static str) -> Result<()> {
    crate::ops::check_f32_rows(ctx, x, what, "vector utilities")?;
    crate::ops::refuse_half(x, what)
}

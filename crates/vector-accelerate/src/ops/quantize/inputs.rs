//! What the quantizers accept as data: f32 rows, on the host or resident.

use crate::core::error::{Error, Result};
use crate::runtime::input::Input;
/// Errors unless `i` is non-empty `f32` rows.
pub(crate) fn check_f32(i: &Input<'_>, what: &'static str) -> Result<()> {
    if i.is_binary() {
        return Err(Error::invalid(
            what,
            "bit-packed binary rows",
            "expected f32 rows",
        ));
    }
    if i.rows() == 0 {
        return Err(Error::EmptyInput { what });
    }
    crate::ops::refuse_half(i, what)
}

//! What the quantizers accept as data: f32 rows, on the host or resident.

use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
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

/// A borrowed view where possible (host rows), else a downloaded copy.
pub(crate) fn view_or_download<'a>(
    i: &'a Input<'a>,
    hold: &'a mut Option<Matrix>,
) -> Result<MatrixView<'a>> {
    match i {
        Input::F32(m) => Ok(*m),
        Input::Resident(d) => {
            // Rows already on the host are borrowed, not copied.
            if let Some(Input::F32(m)) = d.host_input() {
                return Ok(m);
            }
            *hold = Some(d.to_host()?);
            Ok(hold.as_ref().expect("just set").view())
        }
        Input::Binary(_) => Err(Error::invalid(
            "input",
            "bit-packed binary rows",
            "expected f32 rows",
        )),
    }
}

//! L2 normalisation of rows.

use super::checks::check_input;
use crate::core::error::Result;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// Each row divided by its Euclidean norm. A zero row stays zero (never
/// NaN); a row holding NaN becomes NaN; a row with an infinite element has
/// an infinite norm, so its finite elements become 0 and its infinite ones
/// NaN (`inf / inf`). The norm is accumulated in `f64` (no overflow for any
/// `f32` row) and each element is `x * (1 / |x|)` rounded once to `f32`:
/// within 1 ulp of the exact quotient, and the backends agree within 1 ulp.
///
/// ```
/// use vector_accelerate::{vector::normalize, Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![3.0, 4.0, 0.0, 0.0], 2).unwrap();
/// assert_eq!(normalize(&ctx, &x).unwrap().to_host().unwrap().as_slice(), &[0.6, 0.8, 0.0, 0.0]);
/// ```
pub fn normalize<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
    Ok(normalize_with_norms(ctx, x)?.0)
}

/// [`normalize`], also returning each row's norm (before normalisation, as
/// `f32`: `inf` when the norm exceeds `f32::MAX`) as a `[rows x 1]` matrix.
///
/// ```
/// use vector_accelerate::{vector::normalize_with_norms, Context, Matrix};
/// let (y, norms) = normalize_with_norms(&Context::cpu(), &Matrix::new(vec![0.0, -2.0], 2).unwrap()).unwrap();
/// assert_eq!(y.to_host().unwrap().as_slice(), &[0.0, -1.0]);
/// assert_eq!(norms.to_host().unwrap().as_slice(), &[2.0]);
/// ```
pub fn normalize_with_norms<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
) -> Result<(DeviceMatrix, DeviceMatrix)> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    ctx.backend().normalize(&x)
}

/// Normalises rows kept on the context's device in place (no copy of the
/// rows) and returns their norms (`[rows x 1]`). Caches derived from the
/// rows (their norms, 16-bit copies) are dropped.
///
/// ```
/// use vector_accelerate::{vector::normalize_in_place, Context, Matrix};
/// let ctx = Context::new().unwrap();
/// let mut rows = ctx.upload(&Matrix::new(vec![0.0, 5.0], 2).unwrap()).unwrap();
/// let norms = normalize_in_place(&ctx, &mut rows).unwrap();
/// assert_eq!(norms.to_host().unwrap().as_slice(), &[5.0]);
/// assert_eq!(rows.to_host().unwrap().as_slice(), &[0.0, 1.0]);
/// ```
pub fn normalize_in_place(ctx: &Context, x: &mut DeviceMatrix) -> Result<DeviceMatrix> {
    check_input(ctx, &Input::Resident(x), "input")?;
    ctx.backend().normalize_in_place(x)
}

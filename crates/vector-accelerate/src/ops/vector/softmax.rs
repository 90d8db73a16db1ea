//! Row-wise log-sum-exp and softmax, stable for any input.

use super::checks::check_input;
use crate::core::error::Result;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// `log(sum_j exp(x_ij))` of every row (`[rows x 1]`), computed as `m + log(sum
/// exp(x - m))` with `m` the row's maximum (no overflow or underflow of the
/// sum) and the sum in `f64`. Infinities follow PyTorch and SciPy: a row whose
/// largest element is `+inf` gives `+inf`; a row of only `-inf` gives `-inf`;
/// `-inf` elements of other rows contribute nothing. A NaN anywhere in a row
/// gives NaN.
///
/// ```
/// use vector_accelerate::{vector::logsumexp, Context, Matrix};
/// let x = Matrix::new(vec![1000.0, 1000.0, f32::NEG_INFINITY, f32::NEG_INFINITY], 2).unwrap();
/// let l = logsumexp(&Context::cpu(), &x).unwrap().to_host().unwrap();
/// assert!((l.get(0, 0) - (1000.0 + 2f32.ln())).abs() < 1e-3);
/// assert_eq!(l.get(1, 0), f32::NEG_INFINITY);
/// ```
pub fn logsumexp<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    ctx.backend().softmax(&x, false)
}

/// Softmax of every row: `exp(x_ij - m) / sum_j exp(x_ij - m)` with `m` the
/// row's maximum (the sum in `f64`; each output rounded once from `f64`).
/// Semantics for non-finite rows:
/// - `-inf` elements get probability 0;
/// - a row of only `-inf` has no defined distribution: every element is NaN
///   (as in PyTorch and SciPy);
/// - a row with `+inf` elements is the limit of the distribution: the
///   `+inf` elements share the mass equally and the others get 0 (PyTorch
///   gives NaN here; the limit keeps `softmax` consistent with
///   [`logsumexp`] = `+inf`);
/// - a NaN anywhere makes the whole row NaN.
///
/// ```
/// use vector_accelerate::{vector::softmax, Context, Matrix};
/// let inf = f32::INFINITY;
/// let x = Matrix::new(vec![0.0, 0.0, -inf, 5.0, inf, inf], 3).unwrap();
/// let p = softmax(&Context::cpu(), &x).unwrap().to_host().unwrap();
/// assert_eq!(p.row(0), &[0.5, 0.5, 0.0]);
/// assert_eq!(p.row(1), &[0.0, 0.5, 0.5]);
/// ```
pub fn softmax<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    ctx.backend().softmax(&x, true)
}

/// [`softmax`] in place on rows kept on the context's device.
pub fn softmax_in_place(ctx: &Context, x: &mut DeviceMatrix) -> Result<()> {
    check_input(ctx, &Input::Resident(x), "input")?;
    ctx.backend().softmax_in_place(x)
}

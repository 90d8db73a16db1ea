//! Element-wise maps: chains of unary steps and broadcast binary operations,
//! each fused into one pass over the data.

use super::checks::check_input;
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::vector::{check_chain, Binary, Unary};
use crate::runtime::context::Context;
use crate::runtime::input::{Broadcast, Input};
use crate::runtime::tensor::DeviceMatrix;

/// The right operand of a [`binary`] operation. An array broadcasts the
/// NumPy way against the left `[rows x dim]` matrix: each of its two sizes
/// must equal the left one's or be 1, so `[1 x dim]` is a row vector
/// applied to every row, `[rows x 1]` a column vector (one value per row),
/// `[1 x 1]` a scalar and `[rows x dim]` an element-by-element operand.
#[derive(Debug, Clone, Copy)]
pub enum Operand<'a> {
    /// One value for every element.
    Scalar(f32),
    /// An array that broadcasts (host rows or rows on the context's device).
    Array(Input<'a>),
}

impl<'a> Operand<'a> {
    /// A row vector `[1 x v.len()]`, applied to every row.
    pub fn row(v: &'a [f32]) -> Self {
        match MatrixView::new(v, v.len().max(1)) {
            Ok(m) => Operand::Array(Input::F32(m)),
            Err(_) => unreachable!("a slice is always one row of its own length"),
        }
    }
    /// A column vector `[v.len() x 1]`: value `i` applies to row `i`.
    pub fn column(v: &'a [f32]) -> Self {
        match MatrixView::new(v, 1) {
            Ok(m) => Operand::Array(Input::F32(m)),
            Err(_) => unreachable!("any slice is a whole number of rows of 1"),
        }
    }
}

impl From<f32> for Operand<'_> {
    fn from(v: f32) -> Self {
        Operand::Scalar(v)
    }
}
impl<'a> From<&'a Matrix> for Operand<'a> {
    fn from(m: &'a Matrix) -> Self {
        Operand::Array(m.into())
    }
}
impl<'a> From<MatrixView<'a>> for Operand<'a> {
    fn from(m: MatrixView<'a>) -> Self {
        Operand::Array(m.into())
    }
}
impl<'a> From<&'a DeviceMatrix> for Operand<'a> {
    fn from(m: &'a DeviceMatrix) -> Self {
        Operand::Array(m.into())
    }
}
impl<'a> From<Input<'a>> for Operand<'a> {
    fn from(m: Input<'a>) -> Self {
        Operand::Array(m)
    }
}

fn resolve<'a>(ctx: &Context, rows: usize, dim: usize, b: Operand<'a>) -> Result<Broadcast<'a>> {
    let b = match b {
        Operand::Scalar(s) => return Ok(Broadcast::Scalar(s)),
        Operand::Array(b) => b,
    };
    check_input(ctx, &b, "right operand")?;
    let (br, bd) = (b.rows(), b.dim());
    if (br != rows && br != 1) || (bd != dim && bd != 1) {
        return Err(Error::invalid(
            "right operand shape",
            format!("{br} x {bd}"),
            format!(
                "does not broadcast against the left operand's {rows} x {dim} \
                 (each size must equal the left one's or be 1)"
            ),
        ));
    }
    Ok(Broadcast::Array {
        b,
        row_stride: if br == 1 { 0 } else { bd },
        col_stride: if bd == 1 { 0 } else { 1 },
    })
}

/// Applies a chain of unary steps to every element in one pass:
/// `y = chain[k-1](...chain[0](x))`, at most [`MAX_CHAIN`](super::MAX_CHAIN)
/// steps (an empty chain copies). `[Mul(a), Add(b), Clamp(lo, hi)]` is a
/// fused `clamp(a * x + b, lo, hi)`; each step is rounded on its own (no
/// FMA), so the result is the same as separate calls. The result stays on
/// the context's device, so a chain of operations never crosses the bus.
///
/// ```
/// use vector_accelerate::vector::{map, Unary};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![-2.0, 0.5, 3.0, 9.0], 2).unwrap();
/// let y = map(&ctx, &x, &[Unary::Mul(2.0), Unary::Add(1.0), Unary::Clamp(0.0, 5.0)]).unwrap();
/// assert_eq!(y.to_host().unwrap().as_slice(), &[0.0, 2.0, 5.0, 5.0]);
/// ```
pub fn map<'a>(ctx: &Context, x: impl Into<Input<'a>>, chain: &[Unary]) -> Result<DeviceMatrix> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    check_chain(chain)?;
    ctx.backend().map(&x, chain)
}

/// [`map`] in place on rows kept on the context's device.
///
/// ```
/// use vector_accelerate::vector::{map_in_place, Unary};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let mut x = ctx.upload(&Matrix::new(vec![1.0, 4.0], 1).unwrap()).unwrap();
/// map_in_place(&ctx, &mut x, &[Unary::Sqrt]).unwrap();
/// assert_eq!(x.to_host().unwrap().as_slice(), &[1.0, 2.0]);
/// ```
pub fn map_in_place(ctx: &Context, x: &mut DeviceMatrix, chain: &[Unary]) -> Result<()> {
    check_input(ctx, &Input::Resident(x), "input")?;
    check_chain(chain)?;
    ctx.backend().map_in_place(x, chain)
}

/// `op(a, b)` element by element, `b` broadcast as described at
/// [`Operand`].
///
/// ```
/// use vector_accelerate::vector::{binary, Binary, Operand};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3).unwrap(); // 2 x 3
/// let rowwise = binary(&ctx, &a, Binary::Sub, Operand::row(&[1.0, 2.0, 3.0])).unwrap();
/// assert_eq!(rowwise.to_host().unwrap().as_slice(), &[0.0, 0.0, 0.0, 3.0, 3.0, 3.0]);
/// let per_row = binary(&ctx, &a, Binary::Mul, Operand::column(&[10.0, -1.0])).unwrap();
/// assert_eq!(per_row.to_host().unwrap().as_slice(), &[10.0, 20.0, 30.0, -4.0, -5.0, -6.0]);
/// let scaled = binary(&ctx, &a, Binary::Max, 2.5).unwrap();
/// assert_eq!(scaled.to_host().unwrap().as_slice(), &[2.5, 2.5, 3.0, 4.0, 5.0, 6.0]);
/// ```
pub fn binary<'a, 'b>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    op: Binary,
    b: impl Into<Operand<'b>>,
) -> Result<DeviceMatrix> {
    binary_then(ctx, a, op, b, &[])
}

/// [`binary`] followed by a chain of unary steps, in one pass:
/// `then(op(a, b))` (e.g. `relu(a * w + c)` as `Mul` by a row vector `w`
/// then `[Add(c), Relu]`).
pub fn binary_then<'a, 'b>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    op: Binary,
    b: impl Into<Operand<'b>>,
    then: &[Unary],
) -> Result<DeviceMatrix> {
    let a = a.into();
    check_input(ctx, &a, "left operand")?;
    check_chain(then)?;
    let bc = resolve(ctx, a.rows(), a.dim(), b.into())?;
    ctx.backend().binary(&a, &bc, op, then)
}

/// [`binary_then`] written over the left operand, rows kept on the
/// context's device. Pass an empty `then` for a plain binary operation.
pub fn binary_in_place<'b>(
    ctx: &Context,
    a: &mut DeviceMatrix,
    op: Binary,
    b: impl Into<Operand<'b>>,
    then: &[Unary],
) -> Result<()> {
    check_input(ctx, &Input::Resident(a), "left operand")?;
    check_chain(then)?;
    let bc = resolve(ctx, a.rows(), a.dim(), b.into())?;
    ctx.backend().binary_in_place(a, &bc, op, then)
}

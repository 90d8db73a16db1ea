//! Reductions over every element, each row or each column.

use super::checks::check_input;
use crate::core::error::{Error, Result};
use crate::core::vector::{ArgReduction, Axis, Kind, Reduction};
use crate::runtime::backend::ReducePlan;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

/// The plan of a value reduction (finishing codes as `va_finish` in the kernels).
fn plan(op: Reduction, axis: Axis) -> ReducePlan {
    let (kind, finish, ddof) = match op {
        Reduction::Sum => (Kind::Sum, 0, 0),
        Reduction::Mean => (Kind::Sum, 1, 0),
        Reduction::Variance { ddof } => (Kind::Moments, 2, ddof),
        Reduction::Min => (Kind::Min, 3, 0),
        Reduction::Max => (Kind::Max, 4, 0),
    };
    ReducePlan {
        kind,
        axis,
        finish,
        ddof,
    }
}

/// The plan of an index reduction.
fn arg_plan(op: ArgReduction, axis: Axis) -> ReducePlan {
    let (kind, finish) = match op {
        ArgReduction::ArgMin => (Kind::Min, 5),
        ArgReduction::ArgMax => (Kind::Max, 6),
    };
    ReducePlan {
        kind,
        axis,
        finish,
        ddof: 0,
    }
}

/// Number of elements behind each result.
fn count(x: &Input<'_>, axis: Axis) -> usize {
    match axis {
        Axis::All => x.rows() * x.dim(),
        Axis::PerRow => x.dim(),
        Axis::PerColumn => x.rows(),
    }
}

/// Reduces `x` along `axis` (one result for [`Axis::All`], one per row or
/// per column). Sums, means and variances accumulate in `f64` in a fixed
/// order: the error of a sum of `n` values is about `n * 2^-53 * sum |x|`
/// before the final rounding to `f32`, far below what an `f32`
/// accumulation gives (tested against fp64 on 10^7 elements). Variance
/// accumulates shifted data (`x - x0`, with `x0` the first element reduced)
/// in one pass, so a mean large against the spread does not cancel; a
/// variance is never negative. NaN propagates; `inf - inf` in a mean or
/// variance is NaN, as in NumPy. Results stay on the context's device,
/// shaped as NumPy's `keepdims=True`: `[1 x 1]` for [`Axis::All`], `[rows x
/// 1]` for [`Axis::PerRow`], `[1 x dim]` for [`Axis::PerColumn`].
///
/// Errors: empty input, `ddof` not smaller than the number of elements
/// reduced.
///
/// ```
/// use vector_accelerate::vector::{reduce, Axis, Reduction};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3).unwrap(); // 2 x 3
/// let host = |r: vector_accelerate::DeviceMatrix| r.to_host().unwrap().into_vec();
/// assert_eq!(host(reduce(&ctx, &x, Reduction::Sum, Axis::All).unwrap()), vec![21.0]);
/// let means = reduce(&ctx, &x, Reduction::Mean, Axis::PerRow).unwrap();
/// assert_eq!((means.rows(), means.dim()), (2, 1));
/// assert_eq!(host(means), vec![2.0, 5.0]);
/// assert_eq!(host(reduce(&ctx, &x, Reduction::Max, Axis::PerColumn).unwrap()), vec![4.0, 5.0, 6.0]);
/// let var = reduce(&ctx, &x, Reduction::Variance { ddof: 1 }, Axis::PerColumn).unwrap();
/// assert_eq!(host(var), vec![4.5, 4.5, 4.5]);
/// ```
pub fn reduce<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    op: Reduction,
    axis: Axis,
) -> Result<DeviceMatrix> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    let plan = plan(op, axis);
    let n = count(&x, axis);
    if plan.ddof >= n {
        return Err(Error::invalid(
            "ddof",
            plan.ddof,
            format!("must be smaller than the {n} elements of each reduction"),
        ));
    }
    ctx.backend().reduce(&x, plan)
}

/// Index of the smallest or largest element along `axis`: a flat
/// row-major index for [`Axis::All`], a column index per row for
/// [`Axis::PerRow`], a row index per column for [`Axis::PerColumn`]. Ties go
/// to the first index; a NaN counts as the extremum (the first NaN's index
/// is returned), as in NumPy. The indices stay on the context's device as
/// [`DeviceIds`] (`u64`: flat indices of arrays beyond `2^24` elements are
/// not exact in `f32`).
///
/// ```
/// use vector_accelerate::vector::{arg_reduce, ArgReduction, Axis};
/// use vector_accelerate::{Context, Matrix};
/// let x = Matrix::new(vec![3.0, 1.0, 1.0, 7.0, f32::NAN, 0.0], 3).unwrap();
/// let ctx = Context::cpu();
/// let ids = |op, axis| arg_reduce(&ctx, &x, op, axis).unwrap().to_host().unwrap();
/// assert_eq!(ids(ArgReduction::ArgMin, Axis::PerRow), vec![1, 1]);
/// assert_eq!(ids(ArgReduction::ArgMax, Axis::PerRow), vec![0, 1]);
/// assert_eq!(ids(ArgReduction::ArgMax, Axis::All), vec![4]);
/// ```
pub fn arg_reduce<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    op: ArgReduction,
    axis: Axis,
) -> Result<DeviceIds> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    ctx.backend().arg_reduce(&x, arg_plan(op, axis))
}

/// Sum along `axis` ([`reduce`] with [`Reduction::Sum`]).
pub fn sum<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<DeviceMatrix> {
    reduce(ctx, x, Reduction::Sum, axis)
}
/// Mean along `axis` ([`reduce`] with [`Reduction::Mean`]).
pub fn mean<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<DeviceMatrix> {
    reduce(ctx, x, Reduction::Mean, axis)
}
/// Minimum along `axis` ([`reduce`] with [`Reduction::Min`]).
pub fn min<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<DeviceMatrix> {
    reduce(ctx, x, Reduction::Min, axis)
}
/// Maximum along `axis` ([`reduce`] with [`Reduction::Max`]).
pub fn max<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<DeviceMatrix> {
    reduce(ctx, x, Reduction::Max, axis)
}
/// Variance along `axis` with `ddof` delta degrees of freedom (0:
/// population, 1: sample) ([`reduce`] with [`Reduction::Variance`]).
pub fn variance<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    ddof: usize,
) -> Result<DeviceMatrix> {
    reduce(ctx, x, Reduction::Variance { ddof }, axis)
}
/// Index of the minimum along `axis` ([`arg_reduce`] with [`ArgReduction::ArgMin`]).
pub fn argmin<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<DeviceIds> {
    arg_reduce(ctx, x, ArgReduction::ArgMin, axis)
}
/// Index of the maximum along `axis` ([`arg_reduce`] with [`ArgReduction::ArgMax`]).
pub fn argmax<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<DeviceIds> {
    arg_reduce(ctx, x, ArgReduction::ArgMax, axis)
}

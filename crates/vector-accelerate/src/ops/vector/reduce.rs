//! Reductions over every element, each row or each column.

use super::{check_input, ArgReduction, Axis, Reduction};
use crate::context::{Backend, Context};
use crate::cpu::vector::{self as cpu, Kind};
use crate::cpu::HostRows;
use crate::cuda;
use crate::error::{Error, Result};
use crate::matrix::Input;
use crate::ops::host_rows;

/// The accumulated kind and the finishing code (`va_finish` in the kernels).
fn plan(op: Reduction) -> (Kind, u32, usize) {
    match op {
        Reduction::Sum => (Kind::Sum, 0, 0),
        Reduction::Mean => (Kind::Sum, 1, 0),
        Reduction::Variance { ddof } => (Kind::Moments, 2, ddof),
        Reduction::Min => (Kind::Min, 3, 0),
        Reduction::Max => (Kind::Max, 4, 0),
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
/// variance is NaN, as in NumPy.
///
/// Errors: empty input, `ddof` not smaller than the number of elements
/// reduced.
///
/// ```
/// use vector_accelerate::vector::{reduce, Axis, Reduction};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3).unwrap(); // 2 x 3
/// assert_eq!(reduce(&ctx, &x, Reduction::Sum, Axis::All).unwrap(), vec![21.0]);
/// assert_eq!(reduce(&ctx, &x, Reduction::Mean, Axis::PerRow).unwrap(), vec![2.0, 5.0]);
/// assert_eq!(reduce(&ctx, &x, Reduction::Max, Axis::PerColumn).unwrap(), vec![4.0, 5.0, 6.0]);
/// let var = reduce(&ctx, &x, Reduction::Variance { ddof: 1 }, Axis::PerColumn).unwrap();
/// assert_eq!(var, vec![4.5, 4.5, 4.5]);
/// ```
pub fn reduce<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    op: Reduction,
    axis: Axis,
) -> Result<Vec<f32>> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    let (kind, code, ddof) = plan(op);
    let n = count(&x, axis);
    if ddof >= n {
        return Err(Error::invalid(
            "ddof",
            ddof,
            format!("must be smaller than the {n} elements of each reduction"),
        ));
    }
    match ctx.backend() {
        Backend::Cpu => {
            let HostRows::F32(m) = host_rows(&x)? else {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ));
            };
            let (accs, n) = cpu::reduce(m, kind, axis);
            Ok(accs.iter().map(|a| cpu::finish(a, n, code, ddof)).collect())
        }
        Backend::Cuda(dev) => Ok(cuda::vector::reduce(dev, &x, kind, axis, code, ddof)?.0),
    }
}

/// Index of the smallest or largest element along `axis`: a flat
/// row-major index for [`Axis::All`], a column index per row for
/// [`Axis::PerRow`], a row index per column for [`Axis::PerColumn`]. Ties go
/// to the first index; a NaN counts as the extremum (the first NaN's index
/// is returned), as in NumPy.
///
/// ```
/// use vector_accelerate::vector::{arg_reduce, ArgReduction, Axis};
/// use vector_accelerate::{Context, Matrix};
/// let x = Matrix::new(vec![3.0, 1.0, 1.0, 7.0, f32::NAN, 0.0], 3).unwrap();
/// let ctx = Context::cpu();
/// assert_eq!(arg_reduce(&ctx, &x, ArgReduction::ArgMin, Axis::PerRow).unwrap(), vec![1, 1]);
/// assert_eq!(arg_reduce(&ctx, &x, ArgReduction::ArgMax, Axis::All).unwrap(), vec![4]);
/// ```
pub fn arg_reduce<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    op: ArgReduction,
    axis: Axis,
) -> Result<Vec<u64>> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    let (kind, code) = match op {
        ArgReduction::ArgMin => (Kind::Min, 5),
        ArgReduction::ArgMax => (Kind::Max, 6),
    };
    match ctx.backend() {
        Backend::Cpu => {
            let HostRows::F32(m) = host_rows(&x)? else {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ));
            };
            Ok(cpu::reduce(m, kind, axis).0.iter().map(|a| a.idx).collect())
        }
        Backend::Cuda(dev) => Ok(cuda::vector::reduce(dev, &x, kind, axis, code, 0)?.1),
    }
}

/// Sum along `axis` ([`reduce`] with [`Reduction::Sum`]).
pub fn sum<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<Vec<f32>> {
    reduce(ctx, x, Reduction::Sum, axis)
}
/// Mean along `axis` ([`reduce`] with [`Reduction::Mean`]).
pub fn mean<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<Vec<f32>> {
    reduce(ctx, x, Reduction::Mean, axis)
}
/// Minimum along `axis` ([`reduce`] with [`Reduction::Min`]).
pub fn min<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<Vec<f32>> {
    reduce(ctx, x, Reduction::Min, axis)
}
/// Maximum along `axis` ([`reduce`] with [`Reduction::Max`]).
pub fn max<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<Vec<f32>> {
    reduce(ctx, x, Reduction::Max, axis)
}
/// Variance along `axis` with `ddof` delta degrees of freedom (0:
/// population, 1: sample) ([`reduce`] with [`Reduction::Variance`]).
pub fn variance<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    axis: Axis,
    ddof: usize,
) -> Result<Vec<f32>> {
    reduce(ctx, x, Reduction::Variance { ddof }, axis)
}
/// Index of the minimum along `axis` ([`arg_reduce`] with [`ArgReduction::ArgMin`]).
pub fn argmin<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<Vec<u64>> {
    arg_reduce(ctx, x, ArgReduction::ArgMin, axis)
}
/// Index of the maximum along `axis` ([`arg_reduce`] with [`ArgReduction::ArgMax`]).
pub fn argmax<'a>(ctx: &Context, x: impl Into<Input<'a>>, axis: Axis) -> Result<Vec<u64>> {
    arg_reduce(ctx, x, ArgReduction::ArgMax, axis)
}

//! Reductions over every element, each row or each column.

use super::checks::check_input;
use crate::core::error::{Error, Result};
use crate::core::vector::{ArgReduction, Axis, Kind, Reduction};
use crate::cpu::{vector as cpu, HostRows};
use crate::cuda;
use crate::ops::host_rows;
use crate::runtime::context::{Backend, Context};
use crate::runtime::cuda_rows::CudaRows;
use crate::runtime::input::Input;
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

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
    let (kind, code, ddof) = check_reduce(ctx, &x, op, axis)?;
    match ctx.backend() {
        Backend::Cpu => cpu_reduce(&x, kind, axis, code, ddof),
        Backend::Cuda(dev) => Ok(cuda::vector::reduce(dev, &x, kind, axis, code, ddof)?.0),
    }
}

/// Validates a value reduction; returns its plan.
fn check_reduce(
    ctx: &Context,
    x: &Input<'_>,
    op: Reduction,
    axis: Axis,
) -> Result<(Kind, u32, usize)> {
    check_input(ctx, x, "input")?;
    let (kind, code, ddof) = plan(op);
    let n = count(x, axis);
    if ddof >= n {
        return Err(Error::invalid(
            "ddof",
            ddof,
            format!("must be smaller than the {n} elements of each reduction"),
        ));
    }
    Ok((kind, code, ddof))
}

/// The CPU reference of [`reduce`].
fn cpu_reduce(x: &Input<'_>, kind: Kind, axis: Axis, code: u32, ddof: usize) -> Result<Vec<f32>> {
    let HostRows::F32(m) = host_rows(x)? else {
        return Err(Error::invalid(
            "input",
            "bit-packed rows",
            "expected f32 rows",
        ));
    };
    let (accs, n) = cpu::reduce(m, kind, axis);
    Ok(accs.iter().map(|a| cpu::finish(a, n, code, ddof)).collect())
}

/// Shape of a reduction's resident result: `[1 x 1]` for [`Axis::All`],
/// `[rows x 1]` per row, `[1 x dim]` per column (NumPy's `keepdims=True`).
fn result_shape(x: &Input<'_>, axis: Axis) -> (usize, usize) {
    match axis {
        Axis::All => (1, 1),
        Axis::PerRow => (x.rows(), 1),
        Axis::PerColumn => (1, x.dim()),
    }
}

/// [`reduce`] with the results left where the context computes: on its
/// CUDA device (the download and the wait for it are left to the caller,
/// e.g. [`DeviceMatrix::to_host_f32`], or the results feed the next
/// operation as they are); on a CPU context, host rows taken over without
/// a copy. The same values as [`reduce`], bit for bit, shaped as NumPy's
/// `keepdims=True`: `[1 x 1]` for [`Axis::All`], `[rows x 1]` for
/// [`Axis::PerRow`], `[1 x dim]` for [`Axis::PerColumn`].
///
/// Errors: those of [`reduce`].
///
/// ```
/// use vector_accelerate::vector::{reduce_resident, Axis, Reduction};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3).unwrap(); // 2 x 3
/// let s = reduce_resident(&ctx, &x, Reduction::Sum, Axis::PerRow).unwrap();
/// assert_eq!((s.rows(), s.dim()), (2, 1));
/// assert_eq!(s.to_host_f32().unwrap().unwrap(), vec![6.0, 15.0]);
/// ```
pub fn reduce_resident<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    op: Reduction,
    axis: Axis,
) -> Result<DeviceMatrix> {
    let x = x.into();
    let (kind, code, ddof) = check_reduce(ctx, &x, op, axis)?;
    let (rows, dim) = result_shape(&x, axis);
    match ctx.backend() {
        Backend::Cpu => Ok(DeviceMatrix::from_host_f32(
            cpu_reduce(&x, kind, axis, code, ddof)?,
            dim,
        )),
        Backend::Cuda(dev) => {
            match cuda::vector::reduce_resident(dev, &x, kind, axis, code, ddof)? {
                Ok(v) => Ok(DeviceMatrix::from_cuda(
                    dev,
                    CudaRows::F32(v),
                    rows,
                    dim,
                    true,
                )),
                Err(_) => Err(Error::invalid(
                    "reduction",
                    format!("{op:?}"),
                    "expected a value reduction",
                )),
            }
        }
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
    let (kind, code) = arg_plan(op);
    match ctx.backend() {
        Backend::Cpu => cpu_arg_reduce(&x, kind, axis),
        Backend::Cuda(dev) => Ok(cuda::vector::reduce(dev, &x, kind, axis, code, 0)?.1),
    }
}

/// The accumulated kind and the finishing code of an index reduction.
fn arg_plan(op: ArgReduction) -> (Kind, u32) {
    match op {
        ArgReduction::ArgMin => (Kind::Min, 5),
        ArgReduction::ArgMax => (Kind::Max, 6),
    }
}

/// The CPU reference of [`arg_reduce`].
fn cpu_arg_reduce(x: &Input<'_>, kind: Kind, axis: Axis) -> Result<Vec<u64>> {
    let HostRows::F32(m) = host_rows(x)? else {
        return Err(Error::invalid(
            "input",
            "bit-packed rows",
            "expected f32 rows",
        ));
    };
    Ok(cpu::reduce(m, kind, axis).0.iter().map(|a| a.idx).collect())
}

/// [`arg_reduce`] with the indices left where the context computes, as a
/// [`DeviceIds`] (`u64` indices: a [`DeviceMatrix`] holds `f32`, exact for
/// integers only up to `2^24`, too few for flat indices of large arrays).
/// One index for [`Axis::All`], one per row or per column, equal to those of
/// [`arg_reduce`]; [`DeviceIds::to_host`] brings them back.
///
/// Errors: those of [`arg_reduce`].
///
/// ```
/// use vector_accelerate::vector::{arg_reduce_resident, ArgReduction, Axis};
/// use vector_accelerate::{Context, Matrix};
/// let x = Matrix::new(vec![3.0, 1.0, 1.0, 7.0, f32::NAN, 0.0], 3).unwrap();
/// let ctx = Context::cpu();
/// let ids = arg_reduce_resident(&ctx, &x, ArgReduction::ArgMax, Axis::PerRow).unwrap();
/// assert_eq!(ids.to_host().unwrap(), vec![0, 1]);
/// ```
pub fn arg_reduce_resident<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    op: ArgReduction,
    axis: Axis,
) -> Result<DeviceIds> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    let (kind, code) = arg_plan(op);
    let len = count_results(&x, axis);
    match ctx.backend() {
        Backend::Cpu => Ok(DeviceIds::from_host(cpu_arg_reduce(&x, kind, axis)?)),
        Backend::Cuda(dev) => match cuda::vector::reduce_resident(dev, &x, kind, axis, code, 0)? {
            Err(ids) => Ok(DeviceIds::from_cuda(dev, ids, len)),
            Ok(_) => Err(Error::invalid(
                "reduction",
                format!("{op:?}"),
                "expected an index reduction",
            )),
        },
    }
}

/// Number of results of a reduction along `axis`.
fn count_results(x: &Input<'_>, axis: Axis) -> usize {
    let (r, d) = result_shape(x, axis);
    r * d
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

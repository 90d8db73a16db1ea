//! Row-wise log-sum-exp and softmax, stable for any input.

use super::checks::check_input;
use crate::core::error::{Error, Result};
use crate::core::matrix::Matrix;
use crate::cpu::{vector as cpu, HostRows};
use crate::cuda;
use crate::ops::host_rows;
use crate::runtime::context::{Backend, Context};
use crate::runtime::cuda_rows::CudaRows;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// `log(sum_j exp(x_ij))` of every row, computed as `m + log(sum exp(x - m))`
/// with `m` the row's maximum (no overflow or underflow of the sum) and the
/// sum in `f64`. Infinities follow PyTorch and SciPy: a row whose largest
/// element is `+inf` gives `+inf`; a row of only `-inf` gives `-inf`;
/// `-inf` elements of other rows contribute nothing. A NaN anywhere in a row
/// gives NaN.
///
/// ```
/// use vector_accelerate::{vector::logsumexp, Context, Matrix};
/// let x = Matrix::new(vec![1000.0, 1000.0, f32::NEG_INFINITY, f32::NEG_INFINITY], 2).unwrap();
/// let l = logsumexp(&Context::cpu(), &x).unwrap();
/// assert!((l[0] - (1000.0 + 2f32.ln())).abs() < 1e-3);
/// assert_eq!(l[1], f32::NEG_INFINITY);
/// ```
pub fn logsumexp<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<Vec<f32>> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    match ctx.backend() {
        Backend::Cpu => {
            let HostRows::F32(m) = host_rows(&x)? else {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ));
            };
            Ok(cpu::logsumexp(m))
        }
        Backend::Cuda(dev) => cuda::vector::softmax_rows(dev, &x, false),
    }
}

/// [`logsumexp`] with the results left where the context computes: a
/// `[rows x 1]` matrix on its CUDA device (on a CPU context: host rows
/// taken over without a copy), equal to [`logsumexp`]'s bit for bit.
///
/// ```
/// use vector_accelerate::{vector::logsumexp_resident, Context, Matrix};
/// let x = Matrix::new(vec![0.0, 0.0, 1.0, 1.0], 2).unwrap();
/// let l = logsumexp_resident(&Context::cpu(), &x).unwrap();
/// assert_eq!((l.rows(), l.dim()), (2, 1));
/// assert_eq!(l.to_host_f32().unwrap().unwrap()[0], 2f32.ln());
/// ```
pub fn logsumexp_resident<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
    let x = x.into();
    match ctx.backend() {
        Backend::Cpu => Ok(DeviceMatrix::from_host_f32(logsumexp(ctx, x)?, 1)),
        Backend::Cuda(dev) => {
            check_input(ctx, &x, "input")?;
            let y = cuda::vector::softmax_resident(dev, &x, false)?;
            Ok(DeviceMatrix::from_cuda(
                dev,
                CudaRows::F32(y),
                x.rows(),
                1,
                true,
            ))
        }
    }
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
/// let p = softmax(&Context::cpu(), &x).unwrap();
/// assert_eq!(p.row(0), &[0.5, 0.5, 0.0]);
/// assert_eq!(p.row(1), &[0.0, 0.5, 0.5]);
/// ```
pub fn softmax<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<Matrix> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    let data = match ctx.backend() {
        Backend::Cpu => {
            let HostRows::F32(m) = host_rows(&x)? else {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ));
            };
            let mut data = m.as_slice().to_vec();
            cpu::softmax_in_place(&mut data, m.dim());
            data
        }
        Backend::Cuda(dev) => cuda::vector::softmax_rows(dev, &x, true)?,
    };
    Matrix::new(data, x.dim())
}

/// [`softmax`] with the result left where the context computes: resident
/// on its CUDA device (on a CPU context: host rows).
pub fn softmax_resident<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
    let x = x.into();
    match ctx.backend() {
        Backend::Cpu => {
            let m = softmax(ctx, x)?;
            let dim = m.dim();
            Ok(DeviceMatrix::from_host_f32(m.into_vec(), dim))
        }
        Backend::Cuda(dev) => {
            check_input(ctx, &x, "input")?;
            let y = cuda::vector::softmax_resident(dev, &x, true)?;
            Ok(DeviceMatrix::from_cuda(
                dev,
                CudaRows::F32(y),
                x.rows(),
                x.dim(),
                true,
            ))
        }
    }
}

/// [`softmax`] in place on a host matrix (on CUDA: copied to the device and back).
pub fn softmax_in_place(ctx: &Context, x: &mut Matrix) -> Result<()> {
    check_input(ctx, &Input::F32(x.view()), "input")?;
    match ctx.backend() {
        Backend::Cpu => {
            let dim = x.dim();
            cpu::softmax_in_place(x.as_mut_slice(), dim)
        }
        Backend::Cuda(dev) => {
            let y = cuda::vector::softmax_rows(dev, &Input::F32(x.view()), true)?;
            x.as_mut_slice().copy_from_slice(&y);
        }
    }
    Ok(())
}

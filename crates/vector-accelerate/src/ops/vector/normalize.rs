//! L2 normalisation of rows.

use super::checks::check_input;
use crate::core::error::{Error, Result};
use crate::core::matrix::Matrix;
use crate::cpu::{vector as cpu, HostRows};
use crate::cuda;
use crate::ops::host_rows;
use crate::runtime::context::{Backend, Context};
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
/// assert_eq!(normalize(&ctx, &x).unwrap().as_slice(), &[0.6, 0.8, 0.0, 0.0]);
/// ```
pub fn normalize<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<Matrix> {
    Ok(normalize_with_norms(ctx, x)?.0)
}

/// [`normalize`], also returning each row's norm (before normalisation, as
/// `f32`: `inf` when the norm exceeds `f32::MAX`).
///
/// ```
/// use vector_accelerate::{vector::normalize_with_norms, Context, Matrix};
/// let (y, norms) = normalize_with_norms(&Context::cpu(), &Matrix::new(vec![0.0, -2.0], 2).unwrap()).unwrap();
/// assert_eq!((y.as_slice(), norms.as_slice()), (&[0.0, -1.0][..], &[2.0][..]));
/// ```
pub fn normalize_with_norms<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
) -> Result<(Matrix, Vec<f32>)> {
    let x = x.into();
    check_input(ctx, &x, "input")?;
    let (data, norms) = match ctx.backend() {
        Backend::Cpu => {
            let HostRows::F32(m) = host_rows(&x)? else {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ));
            };
            let mut data = m.as_slice().to_vec();
            let norms = cpu::normalize_in_place(&mut data, m.dim());
            (data, norms)
        }
        Backend::Cuda(dev) => cuda::vector::normalize(dev, &x)?,
    };
    Ok((Matrix::new(data, x.dim())?, norms))
}

/// Normalises the rows of a host matrix in place and returns their norms
/// (on CUDA the rows are copied to the device and back).
pub fn normalize_in_place(ctx: &Context, x: &mut Matrix) -> Result<Vec<f32>> {
    check_input(ctx, &Input::F32(x.view()), "input")?;
    match ctx.backend() {
        Backend::Cpu => {
            let dim = x.dim();
            Ok(cpu::normalize_in_place(x.as_mut_slice(), dim))
        }
        Backend::Cuda(dev) => {
            let (y, norms) = cuda::vector::normalize(dev, &Input::F32(x.view()))?;
            x.as_mut_slice().copy_from_slice(&y);
            Ok(norms)
        }
    }
}

/// Normalises rows kept on the context's device in place (no transfer of
/// the rows) and returns their norms. Caches derived from the rows (their
/// norms, 16-bit copies) are dropped.
///
/// ```
/// use vector_accelerate::{vector::normalize_resident, Context, Matrix};
/// let ctx = Context::new().unwrap();
/// let mut rows = ctx.upload(&Matrix::new(vec![0.0, 5.0], 2).unwrap()).unwrap();
/// assert_eq!(normalize_resident(&ctx, &mut rows).unwrap(), vec![5.0]);
/// assert_eq!(rows.to_host_f32().unwrap().unwrap(), vec![0.0, 1.0]);
/// ```
pub fn normalize_resident(ctx: &Context, x: &mut DeviceMatrix) -> Result<Vec<f32>> {
    check_input(ctx, &Input::Resident(x), "input")?;
    let (rows, dim) = (x.rows(), x.dim());
    match ctx.backend() {
        Backend::Cpu => {
            let data = x.host_f32_mut().ok_or_else(|| {
                Error::invalid("input", "resident rows", "expected f32 rows on the CPU")
            })?;
            Ok(cpu::normalize_in_place(data, dim))
        }
        Backend::Cuda(dev) => {
            let data = x.cuda_f32_mut().ok_or_else(|| {
                Error::invalid("input", "resident rows", "expected f32 rows on the device")
            })?;
            cuda::vector::normalize_resident(dev, data, rows, dim)
        }
    }
}

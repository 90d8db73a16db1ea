//! Covariance and Pearson correlation matrices across columns.

use super::moments::describe;
use crate::core::error::{Error, Result};
use crate::core::linalg::GemmOptions;
use crate::core::matrix::Matrix;
use crate::core::stats::StatsOptions;
use crate::core::vector::{Axis, Binary};
use crate::ops::linalg::gemm;
use crate::ops::vector::{binary, Operand};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Column means (f32) and the moments, after the shared checks.
fn centered(
    ctx: &Context,
    x: &Input<'_>,
    ddof: usize,
) -> Result<(
    crate::runtime::tensor::DeviceMatrix,
    Vec<crate::core::stats::Moments>,
)> {
    super::checks::check(ctx, x)?;
    if x.rows() <= ddof {
        return Err(Error::invalid(
            "ddof",
            ddof,
            format!("must be smaller than the {} rows (observations)", x.rows()),
        ));
    }
    let m = describe(ctx, *x, Axis::PerColumn, &StatsOptions::default())?;
    let means: Vec<f32> = m.iter().map(|c| c.mean as f32).collect();
    let c = binary(ctx, *x, Binary::Sub, Operand::row(&means))?;
    Ok((c, m))
}

/// The covariance matrix (`dim x dim`) of the columns of `x` (rows are
/// observations, columns variables, as NumPy's `np.cov(x, rowvar=False,
/// ddof=ddof)`): `C = Xc^T Xc / (rows - ddof)` with `Xc` the column-centred
/// data, one GEMM on the backend (exact `f32`; means in `f64` from
/// [`describe`]). Symmetric by construction up to the GEMM's rounding.
///
/// Errors: empty input; non-finite values; `ddof >= rows`.
///
/// ```
/// use vector_accelerate::stats::covariance;
/// use vector_accelerate::{Context, Matrix};
/// let x = Matrix::new(vec![1.0, 2.0, 2.0, 4.0, 3.0, 6.0], 2).unwrap(); // y = 2x
/// let c = covariance(&Context::cpu(), &x, 1).unwrap();
/// assert_eq!(c.as_slice(), &[1.0, 2.0, 2.0, 4.0]);
/// ```
pub fn covariance<'a>(ctx: &Context, x: impl Into<Input<'a>>, ddof: usize) -> Result<Matrix> {
    let x = x.into();
    let (c, _) = centered(ctx, &x, ddof)?;
    let opts = GemmOptions::default()
        .with_trans_a(true)
        .with_alpha(1.0 / (x.rows() - ddof) as f32);
    gemm(ctx, &c, &c, None, &opts)?.into_host()
}

/// The Pearson correlation matrix (`dim x dim`) of the columns of `x`
/// (NumPy's `np.corrcoef(x, rowvar=False)`): the covariance divided by the
/// product of the two columns' standard deviations, clipped to `[-1, 1]`,
/// with an exact 1 on the diagonal.
///
/// Errors: empty input; non-finite values; fewer than 2 rows; a constant
/// column (its correlation is undefined; the error names it).
///
/// ```
/// use vector_accelerate::stats::correlation;
/// use vector_accelerate::{Context, Matrix};
/// let x = Matrix::new(vec![1.0, 5.0, 2.0, 3.0, 3.0, 1.0], 2).unwrap(); // y = 7 - 2x
/// let r = correlation(&Context::cpu(), &x).unwrap();
/// assert_eq!(r.as_slice(), &[1.0, -1.0, -1.0, 1.0]);
/// ```
pub fn correlation<'a>(ctx: &Context, x: impl Into<Input<'a>>) -> Result<Matrix> {
    let x = x.into();
    let (c, m) = centered(ctx, &x, 1)?;
    if let Some(j) = m.iter().position(|c| c.m2 <= 0.0) {
        return Err(Error::invalid(
            "input",
            format!("column {j} is constant"),
            "the correlation of a constant column is undefined",
        ));
    }
    let opts = GemmOptions::default().with_trans_a(true);
    let mut r = gemm(ctx, &c, &c, None, &opts)?.into_host()?;
    // Scaled by the diagonal of the same product (the centred sums of
    // squares), so rounding of the means and of the GEMM cancels out.
    let d = x.dim();
    let mut scale = Vec::with_capacity(d);
    for i in 0..d {
        let ss = r.as_slice()[i * d + i] as f64;
        if ss <= 0.0 {
            return Err(Error::invalid(
                "input",
                format!("column {i} is constant in f32"),
                "the correlation of a constant column is undefined",
            ));
        }
        scale.push(1.0 / ss.sqrt());
    }
    let out = r.as_mut_slice();
    for i in 0..d {
        for j in 0..d {
            let v = &mut out[i * d + j];
            *v = if i == j {
                1.0
            } else {
                ((*v as f64) * scale[i] * scale[j]).clamp(-1.0, 1.0) as f32
            };
        }
    }
    Ok(r)
}

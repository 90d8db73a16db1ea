//! [`Pca`]: principal component analysis fitted from data (training
//! helpers), giving encoder and decoder [`Linear`] maps.

use faer::{Mat, Side};

use super::linear::Linear;
use super::weights::WeightStore;
use crate::core::error::{Error, Result};
use crate::core::linalg::GemmOptions;
use crate::core::matrix::Matrix;
use crate::core::vector::{Axis, Binary};
use crate::ops::linalg::{gemm, gemm_fused};
use crate::ops::stats::{describe, StatsOptions};
use crate::ops::vector::{binary, Operand};
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// A principal component analysis: the column means of the data and the
/// `n_components` leading eigenvectors of its covariance matrix.
///
/// [`train`](Self::train) computes the column means and the covariance on the
/// context's backend (centring, then one exact fp32 GEMM `Xc^T Xc / (n -
/// 1)`, cuBLAS on CUDA); the `d x d` symmetric eigen-decomposition runs on
/// the host in `f64`. Components are sorted by decreasing eigenvalue, and
/// each is oriented so that its entry of largest magnitude (the first such
/// entry on a tie) is positive, so a fit is deterministic.
///
/// ```
/// use vector_accelerate::ml::Pca;
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// // Points on the line y = 2x (plus an offset): one direction explains everything.
/// let x = Matrix::new(vec![0.0, 1.0, 1.0, 3.0, 2.0, 5.0, 3.0, 7.0], 2)?;
/// let pca = Pca::train(&ctx, &x, 1)?;
/// assert_eq!(pca.mean(), &[1.5, 4.0]);
/// let c = pca.components().row(0);
/// assert!((c[0] - 1.0 / 5f32.sqrt()).abs() < 1e-6 && (c[1] - 2.0 / 5f32.sqrt()).abs() < 1e-6);
/// assert!((pca.explained_variance_ratio()[0] - 1.0).abs() < 1e-6);
/// let z = pca.transform(&ctx, &x)?; // 4 x 1: signed distances along the line
/// let back = pca.inverse_transform(&ctx, &z)?;
/// assert!(back.to_host()?.as_slice().iter().zip(x.as_slice()).all(|(a, b)| (a - b).abs() < 1e-5));
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// `n_components x d`, one unit-length component per row.
    components: Matrix,
    mean: Vec<f32>,
    explained_variance: Vec<f32>,
    explained_variance_ratio: Vec<f32>,
}

/// Eigenvalues (decreasing) and the matching unit eigenvectors of a
/// symmetric `d x d` matrix (symmetrised first), in `f64`.
fn symmetric_eigen(c: &Matrix) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let d = c.dim();
    let at = |i: usize, j: usize| c.as_slice()[i * d + j] as f64;
    let a = Mat::<f64>::from_fn(d, d, |i, j| 0.5 * (at(i, j) + at(j, i)));
    let evd = a.self_adjoint_eigen(Side::Lower).map_err(|e| {
        Error::invalid(
            "covariance",
            format!("{d} x {d}"),
            format!("the symmetric eigen-decomposition failed: {e:?}"),
        )
    })?;
    let (u, s) = (evd.U(), evd.S().column_vector());
    // faer sorts the eigenvalues in nondecreasing order.
    let values = (0..d).rev().map(|i| s[i]).collect();
    let vectors = (0..d)
        .rev()
        .map(|j| (0..d).map(|i| u[(i, j)]).collect())
        .collect();
    Ok((values, vectors))
}

/// Negates `v` unless its entry of largest magnitude (the first such) is
/// positive.
fn fix_sign(v: &mut [f64]) {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if x.abs() > v[best].abs() {
            best = i;
        }
    }
    if v[best] < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
}

impl Pca {
    /// Fits `n_components` principal components to the rows of `data`
    /// (`n x d`, rows are observations) on `ctx`'s backend.
    ///
    /// The explained variance of a component is its covariance eigenvalue
    /// (`ddof = 1`, as scikit-learn; tiny negative eigenvalues from
    /// rounding are reported as 0), the ratio that eigenvalue over the sum
    /// of all `d` of them (the total variance; every ratio is 0 for data
    /// without variance), so the ratios sum to 1 when `n_components = d`.
    ///
    /// Errors: `n_components` of 0 or more than `d`; fewer than 2 rows;
    /// bit-packed rows; NaN or infinite values ([`Error::NonFinite`]).
    pub fn train<'a>(
        ctx: &Context,
        data: impl Into<Input<'a>>,
        n_components: usize,
    ) -> Result<Self> {
        let x = data.into();
        if x.is_binary() {
            return Err(Error::invalid(
                "data",
                "bit-packed rows",
                "PCA takes f32 rows",
            ));
        }
        let (n, d) = (x.rows(), x.dim());
        if n_components == 0 || n_components > d {
            return Err(Error::invalid(
                "n_components",
                n_components,
                format!("must be between 1 and the data's dimension {d}"),
            ));
        }
        if n < 2 {
            return Err(Error::invalid(
                "rows",
                n,
                "PCA needs at least 2 rows (observations) to estimate a covariance",
            ));
        }
        let cols = describe(ctx, x, Axis::PerColumn, &StatsOptions::default())?;
        let mean: Vec<f32> = cols
            .iter()
            .map(|m| m.mean().unwrap_or(0.0) as f32)
            .collect();
        let centred = binary(ctx, x, Binary::Sub, Operand::row(&mean))?;
        let opts = GemmOptions::default()
            .with_trans_a(true)
            .with_alpha(1.0 / (n - 1) as f32);
        let cov = gemm(ctx, &centred, &centred, None, &opts)?.into_host()?;
        let (values, mut vectors) = symmetric_eigen(&cov)?;
        let values: Vec<f64> = values.into_iter().map(|v| v.max(0.0)).collect();
        let total: f64 = values.iter().sum();
        let mut components = Vec::with_capacity(n_components * d);
        for v in vectors.iter_mut().take(n_components) {
            fix_sign(v);
            components.extend(v.iter().map(|&x| x as f32));
        }
        let explained_variance = values[..n_components].iter().map(|&v| v as f32).collect();
        let explained_variance_ratio = values[..n_components]
            .iter()
            .map(|&v| if total > 0.0 { (v / total) as f32 } else { 0.0 })
            .collect();
        Ok(Self {
            components: Matrix::new(components, d)?,
            mean,
            explained_variance,
            explained_variance_ratio,
        })
    }

    /// Number of components.
    pub fn n_components(&self) -> usize {
        self.components.rows()
    }

    /// Dimension of the data.
    pub fn dim(&self) -> usize {
        self.components.dim()
    }

    /// The components, `n_components x d`, one unit vector per row, by
    /// decreasing explained variance.
    pub fn components(&self) -> &Matrix {
        &self.components
    }

    /// The column means of the fitted data (`d` values).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The variance along each component (the covariance's eigenvalues).
    pub fn explained_variance(&self) -> &[f32] {
        &self.explained_variance
    }

    /// Each component's share of the total variance.
    pub fn explained_variance_ratio(&self) -> &[f32] {
        &self.explained_variance_ratio
    }

    /// The encoder `d -> n_components`: weight `C` (the components), bias
    /// `-C mean` (computed in `f64`), so `apply(x) = (x - mean) C^T` up to
    /// rounding. [`transform`](Self::transform) centres first, which is more
    /// accurate when the mean is large against the spread.
    pub fn encoder(&self, ctx: &Context) -> Result<Linear> {
        let d = self.dim();
        let bias: Vec<f32> = (0..self.n_components())
            .map(|k| {
                let c = self.components.row(k);
                -(0..d)
                    .map(|j| c[j] as f64 * self.mean[j] as f64)
                    .sum::<f64>() as f32
            })
            .collect();
        Linear::new(ctx, &self.components, Some(&bias))
    }

    /// The decoder `n_components -> d`: weight `C^T` (`d x n_components`),
    /// bias `mean`, so `apply(z) = z C + mean`.
    pub fn decoder(&self, ctx: &Context) -> Result<Linear> {
        let (k, d) = (self.n_components(), self.dim());
        let c = self.components.as_slice();
        let ct: Vec<f32> = (0..d * k).map(|i| c[(i % k) * d + i / k]).collect();
        Linear::new(ctx, &Matrix::new(ct, k)?, Some(&self.mean))
    }

    /// The coordinates of the rows of `x` (`rows x d`) along the
    /// components: `(x - mean) C^T` (`rows x n_components`), centring then
    /// one GEMM on `ctx`'s backend, the result on its device.
    pub fn transform<'a>(&self, ctx: &Context, x: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
        let x = x.into();
        if x.dim() != self.dim() {
            return Err(Error::DimensionMismatch {
                what: "columns of the input vs the PCA's dimension",
                expected: self.dim(),
                got: x.dim(),
            });
        }
        let centred = binary(ctx, x, Binary::Sub, Operand::row(&self.mean))?;
        let opts = GemmOptions::default().with_trans_b(true);
        gemm(ctx, &centred, &self.components, None, &opts)
    }

    /// Rows back from their coordinates `z` (`rows x n_components`):
    /// `z C + mean` (`rows x d`). Exact up to rounding when
    /// `n_components = d`; otherwise the projection onto the components. On
    /// the context's device.
    pub fn inverse_transform<'a>(
        &self,
        ctx: &Context,
        z: impl Into<Input<'a>>,
    ) -> Result<DeviceMatrix> {
        let z = z.into();
        if z.dim() != self.n_components() {
            return Err(Error::DimensionMismatch {
                what: "columns of the coordinates vs n_components",
                expected: self.n_components(),
                got: z.dim(),
            });
        }
        let opts = GemmOptions::default();
        gemm_fused(ctx, z, &self.components, Some(&self.mean), &opts)
    }

    fn names(prefix: &str) -> [String; 4] {
        [
            "components",
            "mean",
            "explained_variance",
            "explained_variance_ratio",
        ]
        .map(|s| format!("{prefix}.{s}"))
    }

    /// Puts the fit into `store` as `f32` tensors `{prefix}.components`
    /// (`[n_components, d]`), `{prefix}.mean` (`[d]`),
    /// `{prefix}.explained_variance` and `{prefix}.explained_variance_ratio`
    /// (`[n_components]`), replacing tensors of those names; the store can
    /// then be saved as a safetensors file.
    pub fn save(&self, store: &mut WeightStore, prefix: &str) -> Result<()> {
        let [c, m, v, r] = Self::names(prefix);
        let (k, d) = (self.n_components(), self.dim());
        store.insert_f32(&c, &[k, d], self.components.as_slice().to_vec())?;
        store.insert_f32(&m, &[d], self.mean.clone())?;
        store.insert_f32(&v, &[k], self.explained_variance.clone())?;
        store.insert_f32(&r, &[k], self.explained_variance_ratio.clone())
    }

    /// A fit read back from the four tensors [`save`](Self::save) writes
    /// (any dtype, widened to `f32`). Errors: a missing tensor, shapes that
    /// do not agree with the components' `[n_components, d]`, non-finite
    /// values.
    pub fn from_store(store: &WeightStore, prefix: &str) -> Result<Self> {
        let [c, m, v, r] = Self::names(prefix);
        let &[k, d] = store.get(&c)?.shape() else {
            return Err(Error::invalid(
                "tensor shape",
                format!("'{c}' {:?}", store.get(&c)?.shape()),
                "PCA components are a 2-D tensor [n_components, d]",
            ));
        };
        if k == 0 || d == 0 {
            return Err(Error::invalid(
                "tensor shape",
                format!("'{c}' [{k}, {d}]"),
                "a PCA needs at least one component of dimension 1 or more",
            ));
        }
        let pca = Self {
            components: store.matrix(&c, k, d)?,
            mean: store.vector(&m, d)?,
            explained_variance: store.vector(&v, k)?,
            explained_variance_ratio: store.vector(&r, k)?,
        };
        for (name, vals) in [
            (&c, pca.components.as_slice()),
            (&m, &pca.mean[..]),
            (&v, &pca.explained_variance[..]),
            (&r, &pca.explained_variance_ratio[..]),
        ] {
            if let Some(i) = vals.iter().position(|x| !x.is_finite()) {
                return Err(Error::invalid(
                    "tensor",
                    vals[i],
                    format!("element {i} of '{name}' is not finite"),
                ));
            }
        }
        Ok(pca)
    }
}

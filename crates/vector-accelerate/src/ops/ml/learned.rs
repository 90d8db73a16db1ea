//! Learned distance: a projection, then L2 or cosine between projected
//! vectors.

use super::linear::Linear;
use crate::core::error::{Error, Result};
use crate::core::linalg::Activation;
use crate::core::matrix::Matrix;
use crate::core::metric::Metric;
use crate::core::neighbors::Neighbors;
use crate::core::precision::Precision;
use crate::ops::distance::pairwise;
use crate::ops::knn::{knn_with, KnnOptions};
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// A distance learned elsewhere (or fitted here, e.g. from a PCA): each
/// vector is projected by a [`Linear`] map `p(x) = x W^T (+ b)` and vectors
/// are compared by `metric` (L2, Euclidean or cosine) between projections.
///
/// A vector is projected once: [`project`](Self::project) a base once and
/// keep the result on the device, then [`knn`](Self::knn) projects only the
/// queries. [`distances`](Self::distances) projects both sides once each
/// (one GEMM per side), never once per pair.
///
/// ```
/// use vector_accelerate::ml::{LearnedDistance, Linear};
/// use vector_accelerate::{Context, Matrix, Metric};
/// let ctx = Context::cpu();
/// // Keep the first coordinate only (2 -> 1).
/// let w = Matrix::new(vec![1.0, 0.0], 2)?;
/// let ld = LearnedDistance::new(Linear::new(&ctx, &w, None)?, Metric::L2)?;
/// let base = ld.project(&ctx, &Matrix::new(vec![0.0, 9.0, 3.0, 0.0], 2)?)?;
/// let q = Matrix::new(vec![2.5, -7.0], 2)?;
/// let r = ld.knn(&ctx, &q, &base, 1)?;
/// assert_eq!(r.row_ids(0), &[1]); // |2.5 - 3| < |2.5 - 0|
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug)]
pub struct LearnedDistance {
    projection: Linear,
    metric: Metric,
    precision: Precision,
}

impl LearnedDistance {
    /// A learned distance with `metric` ([`Metric::L2`] (squared),
    /// [`Metric::Euclidean`] or [`Metric::Cosine`]) between projections;
    /// projections and ranking in [`Precision::Exact`].
    pub fn new(projection: Linear, metric: Metric) -> Result<Self> {
        match metric {
            Metric::L2 | Metric::Euclidean | Metric::Cosine => Ok(Self {
                projection,
                metric,
                precision: Precision::Exact,
            }),
            m => Err(Error::invalid(
                "metric",
                m,
                "a learned distance compares projections by l2, euclidean or cosine",
            )),
        }
    }

    /// Sets the precision of the projection GEMMs and of the k-NN ranking
    /// (see [`Precision`]; `Exact` by default).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The projection.
    pub fn projection(&self) -> &Linear {
        &self.projection
    }

    /// The metric between projections.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The precision mode.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The projections of the rows of `x` (`rows x d_out`), left on the
    /// context's device: a base projected once for many searches.
    pub fn project<'a>(&self, ctx: &Context, x: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
        self.projection
            .apply(ctx, x, Activation::None, self.precision)
    }

    /// The distance between the projections of every query and every row
    /// of `base` (`queries x base`; each side projected once).
    pub fn distances<'a, 'b>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        base: impl Into<Input<'b>>,
    ) -> Result<Matrix> {
        let q = self.project(ctx, queries)?;
        let x = self.project(ctx, base)?;
        pairwise(ctx, &q, &x, self.metric)
    }

    /// The `k` nearest rows of an already projected base (from
    /// [`project`](Self::project), or any `rows x d_out` matrix) for each
    /// query (`rows x d_in`, projected here), nearest first.
    pub fn knn<'a, 'b>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        projected_base: impl Into<Input<'b>>,
        k: usize,
    ) -> Result<Neighbors> {
        let base = projected_base.into();
        if base.dim() != self.projection.d_out() {
            return Err(Error::DimensionMismatch {
                what: "columns of the projected base vs d_out of the projection",
                expected: self.projection.d_out(),
                got: base.dim(),
            });
        }
        let q = self.project(ctx, queries)?;
        let opts = KnnOptions::default()
            .with_metric(self.metric)
            .with_precision(self.precision);
        knn_with(ctx, &q, base, k, &opts)
    }
}

//! Attention similarity: scores between projected queries and keys.

use super::linear::Linear;
use crate::core::error::{Error, Result};
use crate::core::linalg::{Activation, GemmOptions};
use crate::core::metric::Metric;
use crate::core::neighbors::{Neighbors, Order};
use crate::core::precision::Precision;
use crate::ops::knn::{knn_with, KnnOptions};
use crate::ops::linalg::gemm_fused;
use crate::runtime::backend::ScoresJob;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// Attention similarity: for `H` heads of `head_dim` values,
/// `s(q, k) = (1 / H) sum_h (W_q^h q . W_k^h k) / T`, the temperature `T`
/// defaulting to `sqrt(head_dim)`, optionally passed through the logistic
/// function (computed without overflow for any score).
///
/// `W_q` and `W_k` are [`Linear`] maps to `H * head_dim` values (head `h`
/// is outputs `h * head_dim .. (h + 1) * head_dim`, as in PyTorch's
/// multi-head attention); the mean over heads of the per-head products is
/// the product of the whole projections divided by `H`, so every score is
/// one dot product of projected rows: queries and keys are projected once
/// each (one GEMM per side), then one GEMM gives every score, scaled by
/// `1 / (H T)` in the GEMM itself.
///
/// ```
/// use vector_accelerate::ml::{AttentionSimilarity, Linear};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let id = Matrix::new(vec![1.0, 0.0, 0.0, 1.0], 2)?;
/// // Two heads of one value each: s = (q0 k0 + q1 k1) / 2 (T = 1).
/// let att = AttentionSimilarity::new(
///     Linear::new(&ctx, &id, None)?,
///     Linear::new(&ctx, &id, None)?,
///     2,
/// )?;
/// let q = Matrix::new(vec![1.0, 2.0], 2)?;
/// let k = Matrix::new(vec![3.0, 4.0, -1.0, 0.0], 2)?;
/// assert_eq!(att.scores(&ctx, &q, &k)?.to_host()?.as_slice(), &[5.5, -0.5]);
/// let top = att.top_k(&ctx, &q, &att.project_keys(&ctx, &k)?, 1)?;
/// assert_eq!((top.row_ids(0), top.row_distances(0)), (&[0u64][..], &[5.5f32][..]));
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug)]
pub struct AttentionSimilarity {
    wq: Linear,
    wk: Linear,
    heads: usize,
    temperature: f32,
    sigmoid: bool,
    precision: Precision,
}

impl AttentionSimilarity {
    /// Attention with `heads` heads: `wq` and `wk` map queries and keys to
    /// the same width, a multiple of `heads` (`head_dim = width / heads`).
    /// Temperature `sqrt(head_dim)`, no sigmoid, [`Precision::Exact`].
    pub fn new(wq: Linear, wk: Linear, heads: usize) -> Result<Self> {
        if wq.d_out() != wk.d_out() {
            return Err(Error::DimensionMismatch {
                what: "d_out of the key projection vs d_out of the query projection",
                expected: wq.d_out(),
                got: wk.d_out(),
            });
        }
        if heads == 0 || !wq.d_out().is_multiple_of(heads) {
            return Err(Error::invalid(
                "heads",
                heads,
                format!(
                    "the projections' {} outputs must split into heads of equal width",
                    wq.d_out()
                ),
            ));
        }
        let head_dim = wq.d_out() / heads;
        Ok(Self {
            wq,
            wk,
            heads,
            temperature: (head_dim as f32).sqrt(),
            sigmoid: false,
            precision: Precision::Exact,
        })
    }

    /// Sets the temperature `T` (finite and positive).
    pub fn with_temperature(mut self, t: f32) -> Result<Self> {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::invalid(
                "temperature",
                t,
                "must be finite and positive",
            ));
        }
        self.temperature = t;
        Ok(self)
    }

    /// Passes every score through the logistic function `1 / (1 + e^-s)`.
    pub fn with_sigmoid(mut self, on: bool) -> Self {
        self.sigmoid = on;
        self
    }

    /// Sets the precision of the projections, the score GEMM and the top-k
    /// ranking (see [`Precision`]; `Exact` by default).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Number of heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.wq.d_out() / self.heads
    }

    /// The temperature.
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// The factor `1 / (H T)` applied to each dot product of projections.
    fn alpha(&self) -> f32 {
        (1.0 / (self.heads as f64 * self.temperature as f64)) as f32
    }

    /// The projected queries (`rows x H head_dim`), on the context's device.
    pub fn project_queries<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
    ) -> Result<DeviceMatrix> {
        self.wq
            .apply(ctx, queries, Activation::None, self.precision)
    }

    /// The projected keys (`rows x H head_dim`), on the context's device: a
    /// key set projected once for many queries.
    pub fn project_keys<'a>(
        &self,
        ctx: &Context,
        keys: impl Into<Input<'a>>,
    ) -> Result<DeviceMatrix> {
        self.wk.apply(ctx, keys, Activation::None, self.precision)
    }

    fn check_projected(&self, x: &Input<'_>, what: &'static str) -> Result<()> {
        if x.dim() != self.wq.d_out() {
            return Err(Error::DimensionMismatch {
                what,
                expected: self.wq.d_out(),
                got: x.dim(),
            });
        }
        Ok(())
    }

    /// Projected queries and keys, their widths checked.
    fn projected<'a, 'b>(&self, q: Input<'a>, k: Input<'b>) -> Result<(Input<'a>, Input<'b>)> {
        self.check_projected(&q, "columns of the projected queries vs H * head_dim")?;
        self.check_projected(&k, "columns of the projected keys vs H * head_dim")?;
        Ok((q, k))
    }

    fn score_opts(&self) -> GemmOptions {
        let act = if self.sigmoid {
            Activation::Sigmoid
        } else {
            Activation::None
        };
        GemmOptions::default()
            .with_trans_b(true)
            .with_alpha(self.alpha())
            .with_precision(self.precision)
            .with_activation(act)
    }

    /// Every score (`queries x keys`, on the context's device), queries and
    /// keys given unprojected.
    pub fn scores<'a, 'b>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        keys: impl Into<Input<'b>>,
    ) -> Result<DeviceMatrix> {
        let q = self.project_queries(ctx, queries)?;
        let k = self.project_keys(ctx, keys)?;
        self.scores_projected(ctx, &q, &k)
    }

    /// Every score between projected queries and projected keys (from
    /// [`project_queries`](Self::project_queries) and
    /// [`project_keys`](Self::project_keys)), on the context's device.
    pub fn scores_projected<'a, 'b>(
        &self,
        ctx: &Context,
        projected_queries: impl Into<Input<'a>>,
        projected_keys: impl Into<Input<'b>>,
    ) -> Result<DeviceMatrix> {
        let (q, k) = self.projected(projected_queries.into(), projected_keys.into())?;
        for i in [&q, &k] {
            if let Input::Resident(d) = i {
                d.check_device(ctx)?;
            }
        }
        let job = ScoresJob {
            queries: &q,
            keys: &k,
            alpha: self.alpha(),
            sigmoid: self.sigmoid,
            precision: self.precision,
        };
        if let Some(s) = ctx.backend().attention_scores(job)? {
            return Ok(s);
        }
        gemm_fused(ctx, q, k, None, &self.score_opts())
    }

    /// The `k` keys of highest score for each query (queries unprojected,
    /// keys projected by [`project_keys`](Self::project_keys)), best first,
    /// with their scores ([`Order::Largest`]). Ranked by the dot product of
    /// projections (as the k-NN ranks inner products; the scaling and the
    /// logistic function keep the order), without writing the score matrix.
    pub fn top_k<'a, 'b>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        projected_keys: impl Into<Input<'b>>,
        k: usize,
    ) -> Result<Neighbors> {
        let keys = projected_keys.into();
        self.check_projected(&keys, "columns of the projected keys vs H * head_dim")?;
        let q = self.project_queries(ctx, queries)?;
        let opts = KnnOptions::default()
            .with_metric(Metric::InnerProduct)
            .with_precision(self.precision);
        let r = knn_with(ctx, &q, keys, k, &opts)?;
        let (rows, k) = (r.rows(), r.k());
        let (ids, mut values) = r.into_parts();
        let alpha = self.alpha();
        for (v, id) in values.iter_mut().zip(&ids) {
            if *id != crate::core::neighbors::MISSING_ID {
                let s = *v * alpha;
                *v = if self.sigmoid {
                    crate::cpu::vector::sigmoid(s)
                } else {
                    s
                };
            }
        }
        Neighbors::from_parts(rows, k, Order::Largest, ids, values)
    }
}

//! Exact k-nearest-neighbour search for every metric, tiled so the full
//! distance matrix never has to exist.

use crate::core::error::{Error, Result};
use crate::core::metric::{Distance, Metric};
use crate::core::neighbors::Neighbors;
use crate::core::precision::Precision;
use crate::ops::prepare;
use crate::runtime::backend::KnnJob;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::resident::ResidentNeighbors;

/// The `k` nearest base rows of every query, best first (smallest distance,
/// or largest similarity for inner product and cosine similarity), ties
/// broken by the smaller base index. `k` larger than the base leaves the
/// tail of each row missing (id [`MISSING_ID`](crate::MISSING_ID)).
///
/// On CUDA the base is processed in tiles that fit the context's memory
/// budget; a host base is streamed tile by tile, so it may be larger than
/// the device memory.
///
/// ```
/// use vector_accelerate::{knn, Context, Matrix, Metric};
/// let ctx = Context::new().unwrap();
/// let base = Matrix::new(vec![0.0, 0.0, 1.0, 0.0, 0.0, 3.0], 2).unwrap();
/// let queries = Matrix::new(vec![0.9, 0.1], 2).unwrap();
/// let r = knn(&ctx, &queries, &base, 2, Metric::L2).unwrap();
/// assert_eq!(r.row_ids(0), &[1, 0]);
/// ```
pub fn knn<'a, 'b>(
    ctx: &Context,
    queries: impl Into<Input<'a>>,
    base: impl Into<Input<'b>>,
    k: usize,
    dist: impl Into<Distance>,
) -> Result<Neighbors> {
    knn_with(
        ctx,
        queries,
        base,
        k,
        &KnnOptions::default().with_metric(dist),
    )
}

/// Options of [`knn_with`], made with [`Default`] (squared L2, exact) and
/// the `with_*` setters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KnnOptions {
    /// The distance (a [`Metric`](crate::Metric) or a configured
    /// [`Distance`]); default squared L2.
    pub distance: Distance,
    /// How pairs are ranked on CUDA (see [`Precision`]); distances returned
    /// are fp32 in every mode.
    pub precision: Precision,
}

impl Default for KnnOptions {
    fn default() -> Self {
        Self {
            distance: Metric::L2.into(),
            precision: Precision::default(),
        }
    }
}

impl KnnOptions {
    /// Sets the distance.
    pub fn with_metric(mut self, distance: impl Into<Distance>) -> Self {
        self.distance = distance.into();
        self
    }
    /// Sets the precision mode.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }
}

/// [`knn`] with options: the distance and a fast [`Precision`] mode.
///
/// ```
/// use vector_accelerate::{knn_with, Context, KnnOptions, Matrix, Metric, Precision};
/// let ctx = Context::new().unwrap();
/// let base = Matrix::new(vec![0.0, 0.0, 1.0, 0.0, 0.0, 3.0], 2).unwrap();
/// let queries = Matrix::new(vec![0.9, 0.1], 2).unwrap();
/// let opts = KnnOptions::default()
///     .with_metric(Metric::L2)
///     .with_precision(Precision::Bf16);
/// let r = knn_with(&ctx, &queries, &base, 2, &opts).unwrap();
/// assert_eq!(r.row_ids(0), &[1, 0]);
/// ```
pub fn knn_with<'a, 'b>(
    ctx: &Context,
    queries: impl Into<Input<'a>>,
    base: impl Into<Input<'b>>,
    k: usize,
    opts: &KnnOptions,
) -> Result<Neighbors> {
    let (q, x) = (queries.into(), base.into());
    let _trace = crate::core::trace::begin("knn");
    knn_job(ctx, &q, &x, k, opts, |job| ctx.backend().knn(job))
}

/// [`knn_with`] with the results left on the context's device
/// ([`ResidentNeighbors`]): on CUDA the ids and distances stay in device
/// memory (nothing is copied to the host), ready to chain or to hand to
/// another framework through DLPack.
///
/// ```
/// use vector_accelerate::{knn_resident, Context, KnnOptions, Matrix};
/// let ctx = Context::new().unwrap();
/// let base = Matrix::new(vec![0.0, 0.0, 1.0, 0.0, 0.0, 3.0], 2).unwrap();
/// let queries = Matrix::new(vec![0.9, 0.1], 2).unwrap();
/// let r = knn_resident(&ctx, &queries, &base, 2, &KnnOptions::default()).unwrap();
/// assert_eq!(r.to_host().unwrap().row_ids(0), &[1, 0]);
/// ```
pub fn knn_resident<'a, 'b>(
    ctx: &Context,
    queries: impl Into<Input<'a>>,
    base: impl Into<Input<'b>>,
    k: usize,
    opts: &KnnOptions,
) -> Result<ResidentNeighbors> {
    let (q, x) = (queries.into(), base.into());
    knn_job(ctx, &q, &x, k, opts, |job| ctx.backend().knn_resident(job))
}

/// Validates a k-NN call and runs `search` on its job.
fn knn_job<R>(
    ctx: &Context,
    q: &Input<'_>,
    x: &Input<'_>,
    k: usize,
    opts: &KnnOptions,
    search: impl FnOnce(KnnJob<'_>) -> Result<R>,
) -> Result<R> {
    if k == 0 {
        return Err(Error::InvalidK { k });
    }
    let p = prepare(ctx, q, x, &opts.distance)?;
    if !p.metric.is_gemm_based() {
        super::refuse_half(x, "base")?;
    }
    search(KnnJob {
        queries: q,
        base: x,
        k,
        metric: &p,
        precision: opts.precision,
        budget: ctx.memory_budget(),
    })
}

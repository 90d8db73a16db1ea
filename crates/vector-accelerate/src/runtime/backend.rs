//! The contract both backends keep: one trait per family, implemented by the
//! CPU backend ([`Cpu`]) and by an open CUDA device, with the same
//! arguments and result types on both sides. The operations layer validates
//! its inputs and makes one call through [`Context::backend`]; which kernel
//! or tiling runs is the backend's choice.
//!
//! [`Context::backend`]: crate::Context

use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::core::cluster::LloydStep;
use crate::core::diagnostics::Ceilings;
use crate::core::error::Result;
use crate::core::histogram::{AxisPlan, Counts, Counts2, Stats};
use crate::core::linalg::{Activation, Epilogue, Plan};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::{Metric, Prepared};
use crate::core::neighbors::{Neighbors, Order};
use crate::core::precision::{Precision, WalkPrecision};
use crate::core::quantize::{ProductQuantizer, ScalarQuantizer};
use crate::core::stats::{Moments, QuantileResult};
use crate::core::vector::{Axis, Binary, Kind, Unary};
use crate::runtime::codes::{PqCodes, ScalarCodes, Store};
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::{Broadcast, Input};
use crate::runtime::resident::ResidentNeighbors;
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

/// The CPU backend (all cores, SIMD); its implementations are the reference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu;

// The accessor lives here, beside the traits, so that the context does not
// depend on what the backends compute.
impl Context {
    /// The backend operations run on (the one dispatch of every operation).
    pub(crate) fn backend(&self) -> &dyn Backend {
        match self.engine() {
            Engine::Cpu => &Cpu,
            Engine::Cuda(dev) => dev,
        }
    }
}

/// Every family's backend contract.
pub(crate) trait Backend:
    ClusterBackend
    + GraphBackend
    + IvfBackend
    + MlBackend
    + QuantizeBackend
    + VectorBackend
    + LinalgBackend
    + SelectBackend
    + SearchBackend
    + StatsBackend
    + HistogramBackend
    + DiagnosticsBackend
{
}

impl<T> Backend for T where
    T: ClusterBackend
        + GraphBackend
        + IvfBackend
        + MlBackend
        + QuantizeBackend
        + VectorBackend
        + LinalgBackend
        + SelectBackend
        + SearchBackend
        + StatsBackend
        + HistogramBackend
        + DiagnosticsBackend
{
}

/// A validated reduction: what is accumulated, along which axis, and how
/// each result is finished (`finish` codes shared with the kernels:
/// 0 sum, 1 mean, 2 variance, 3 min, 4 max, 5 argmin, 6 argmax).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReducePlan {
    /// The accumulator kind.
    pub kind: Kind,
    /// Along which axis.
    pub axis: Axis,
    /// The finishing code.
    pub finish: u32,
    /// Delta degrees of freedom of a variance.
    pub ddof: usize,
}

/// The vector utilities. Element-wise work may run in place on rows the
/// context holds; results are rows on the context's device.
pub(crate) trait VectorBackend {
    /// `chain` applied to every element of `x`.
    fn map(&self, x: &Input<'_>, chain: &[Unary]) -> Result<DeviceMatrix>;
    /// `chain` applied to every element of `x`, in place.
    fn map_in_place(&self, x: &mut DeviceMatrix, chain: &[Unary]) -> Result<()>;
    /// `then(op(a, b))` with `b` broadcast.
    fn binary(
        &self,
        a: &Input<'_>,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<DeviceMatrix>;
    /// `then(op(a, b))` written over `a`.
    fn binary_in_place(
        &self,
        a: &mut DeviceMatrix,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<()>;
    /// Rows divided by their norms, and the norms (`[rows x 1]`).
    fn normalize(&self, x: &Input<'_>) -> Result<(DeviceMatrix, DeviceMatrix)>;
    /// Rows divided by their norms in place; returns the norms.
    fn normalize_in_place(&self, x: &mut DeviceMatrix) -> Result<DeviceMatrix>;
    /// A value reduction (`plan.finish` 0..=4), shaped as NumPy's
    /// `keepdims=True`.
    fn reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceMatrix>;
    /// The `f32` rows `rows` of `x` (each below `x.rows()`), in that order.
    fn gather_rows(&self, x: &Input<'_>, rows: &[u64]) -> Result<DeviceMatrix>;
    /// An index reduction (`plan.finish` 5 or 6).
    fn arg_reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceIds>;
    /// Row softmax (`[rows x dim]`) or, with `softmax` false, row
    /// log-sum-exp (`[rows x 1]`).
    fn softmax(&self, x: &Input<'_>, softmax: bool) -> Result<DeviceMatrix>;
    /// Row softmax in place.
    fn softmax_in_place(&self, x: &mut DeviceMatrix) -> Result<()>;
}

/// One validated product: the operands, `C` (read only when `plan.beta` is
/// not 0), the plan, and the bias and activation applied to the result.
#[derive(Clone, Copy)]
pub(crate) struct GemmJob<'a> {
    /// `A` (`batch` matrices stacked by rows).
    pub a: &'a Input<'a>,
    /// `B` (`batch` matrices stacked by rows).
    pub b: &'a Input<'a>,
    /// `C`, stacked like the result.
    pub c: Option<&'a Input<'a>>,
    /// Shapes, transposes, scales and precision.
    pub plan: &'a Plan,
    /// Bias and activation of the result.
    pub epilogue: Option<Epilogue<'a>>,
}

/// The matrix operations.
pub(crate) trait LinalgBackend {
    /// The job's `batch` products, `(batch * m) x n`.
    fn gemm(&self, job: GemmJob<'_>) -> Result<DeviceMatrix>;
    /// The transpose (`dim x rows`).
    fn transpose(&self, a: &Input<'_>) -> Result<DeviceMatrix>;
    /// Transposes a square matrix in place.
    fn transpose_in_place(&self, a: &mut DeviceMatrix) -> Result<()>;
}

/// Row-wise selection of the best values.
pub(crate) trait SelectBackend {
    /// The `k` best values of every row of `values`, ids being column indices.
    fn topk(&self, values: &Input<'_>, k: usize, order: Order) -> Result<Neighbors>;
    /// The `k` best of several lists of the same rows (validated).
    fn merge(&self, lists: &[Neighbors], k: usize, order: Order) -> Result<Neighbors>;
    /// A running top-`k` state of `rows` rows.
    fn streaming_topk(&self, rows: usize, k: usize, order: Order) -> Result<Box<dyn TopKState>>;
}

/// The running state of a streaming top-k.
pub(crate) trait TopKState: Send {
    /// Offers `[rows x c]` candidates whose column `j` has id `ids[j]`.
    fn push(&mut self, values: MatrixView<'_>, ids: &[u64]) -> Result<()>;
    /// The best `k` per row, best first.
    fn finish(self: Box<Self>) -> Result<Neighbors>;
}

/// One validated k-NN search.
#[derive(Clone, Copy)]
pub(crate) struct KnnJob<'a> {
    /// The queries.
    pub queries: &'a Input<'a>,
    /// The rows searched.
    pub base: &'a Input<'a>,
    /// Results per query.
    pub k: usize,
    /// The validated metric.
    pub metric: &'a Prepared,
    /// How pairs are ranked on tensor cores (CUDA).
    pub precision: Precision,
    /// Bytes of workspace the search may use.
    pub budget: usize,
}

/// Distances and exact nearest-neighbour search.
pub(crate) trait SearchBackend {
    /// Every distance between `queries` and `base` (`[nq x nb]`, assembled
    /// on the host: it may exceed the device), in tiles within `budget`.
    fn pairwise(
        &self,
        queries: &Input<'_>,
        base: &Input<'_>,
        metric: &Prepared,
        budget: usize,
    ) -> Result<Matrix>;
    /// The job's `k` nearest base rows of every query.
    fn knn(&self, job: KnnJob<'_>) -> Result<Neighbors>;
    /// [`knn`](Self::knn) with the results left on the device (on the host
    /// for a backend whose device is the host).
    fn knn_resident(&self, job: KnnJob<'_>) -> Result<ResidentNeighbors> {
        ResidentNeighbors::from_host(self.knn(job)?)
    }
}

/// One scan of packed inverted lists: list `l` holds rows
/// `offsets[l]..offsets[l + 1]` of `rows`, whose slots are `slots`.
#[derive(Clone, Copy)]
pub(crate) struct IvfScanJob<'a> {
    /// The queries.
    pub queries: &'a Input<'a>,
    /// Every list's rows (or codes), list after list.
    pub rows: ListData<'a>,
    /// `nlist + 1` row offsets.
    pub offsets: &'a [u64],
    /// The slot of every row.
    pub slots: &'a [u64],
    /// `[queries x nprobe]` list numbers (`u32::MAX`: no list).
    pub probes: &'a [u32],
    /// Lists per query.
    pub nprobe: usize,
    /// Results per query.
    pub k: usize,
    /// The validated metric.
    pub metric: &'a Prepared,
    /// Bits of the slots that may be returned (every slot when `None`).
    pub allowed: Option<&'a [u64]>,
    /// Bytes of workspace the scan may use.
    pub budget: usize,
    /// What the backend keeps of these lists between scans.
    pub cache: &'a BackendCache,
}

/// How the rows of packed inverted lists are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListLayout {
    /// `f32` rows of `dim` values.
    F32 {
        /// Values per row.
        dim: usize,
    },
    /// Per-dimension scalar codes of residuals (asymmetric range).
    Sq {
        /// Values per row.
        dim: usize,
    },
    /// Product codes of residuals.
    Pq {
        /// Values per row.
        dim: usize,
        /// Sub-spaces.
        m: usize,
        /// Bits per code.
        nbits: u32,
    },
}

/// The rows of packed inverted lists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListData<'a> {
    /// Exact rows.
    F32(&'a DeviceMatrix),
    /// Scalar codes of residuals from each list's centroid.
    Sq {
        /// Row after row, `dim` bytes each (int8) or `ceil(dim / 2)` (int4).
        codes: &'a Store<u8>,
        /// The quantizer (per-channel, asymmetric).
        sq: &'a ScalarQuantizer,
        /// `nlist x dim` centroids.
        centroids: &'a DeviceMatrix,
    },
    /// Product codes of residuals from each list's centroid.
    Pq {
        /// Row after row, `m * nbits / 8` bytes each.
        codes: &'a Store<u8>,
        /// The quantizer.
        pq: &'a ProductQuantizer,
        /// `nlist x dim` centroids.
        centroids: &'a DeviceMatrix,
    },
}

impl ListLayout {
    /// Values per row.
    pub fn dim(&self) -> usize {
        match *self {
            ListLayout::F32 { dim } | ListLayout::Sq { dim, .. } | ListLayout::Pq { dim, .. } => {
                dim
            }
        }
    }
}

impl ListData<'_> {
    /// The layout of these rows.
    pub fn layout(&self) -> ListLayout {
        match self {
            ListData::F32(m) => ListLayout::F32 { dim: m.dim() },
            ListData::Sq { sq, .. } => ListLayout::Sq { dim: sq.dim },
            ListData::Pq { pq, .. } => ListLayout::Pq {
                dim: pq.dim,
                m: pq.m,
                nbits: pq.nbits,
            },
        }
    }
}

/// Inverted-list scans of IVF indexes. A backend without a scan of its own
/// declines, and the index searches each probed list with the k-NN.
pub(crate) trait IvfBackend {
    /// How much more a row read in a filtered IVF list scan costs than a row
    /// of an exact search over the gathered allowed rows (the index picks
    /// the cheaper of the two with it; measured per backend).
    fn filtered_scan_cost(&self) -> f64;
    /// Whether [`ivf_scan`](Self::ivf_scan) serves `metric` on lists of
    /// `layout` (the index then keeps its lists packed for it).
    fn scans_packed_lists(&self, metric: &Prepared, layout: &ListLayout) -> bool;
    /// The `k` best allowed rows of every query over its probed lists, by
    /// slot, missing results where fewer exist; `None` where the backend
    /// has no scan of its own for the job.
    fn ivf_scan(&self, job: IvfScanJob<'_>) -> Result<Option<Neighbors>>;
}

/// One level of a proximity graph as a walk reads it.
#[derive(Clone, Copy)]
pub(crate) struct GraphLevel<'a> {
    /// The rows as the walk compares them (`nodes x dim`).
    pub rows: MatrixView<'a>,
    /// `nodes x degree` neighbour slots, `u32::MAX` for none.
    pub links: &'a [u32],
    /// Neighbour slots per node.
    pub degree: usize,
    /// Nodes every walk of this level also starts from (parts of the graph
    /// the links do not join).
    pub parts: &'a [u32],
    /// The node of the level below of each node (`None` at the bottom).
    pub below: Option<&'a [u32]>,
}

/// Best-first walks of every query down a graph's levels: the top level
/// from nodes spread over it, each level below from the best nodes of the
/// one above ([`GraphWalkJob::upper_ef`] of them), the bottom one keeping
/// `ef` candidates.
#[derive(Clone, Copy)]
pub(crate) struct GraphWalkJob<'a> {
    /// The queries.
    pub queries: MatrixView<'a>,
    /// The levels, bottom first.
    pub levels: &'a [GraphLevel<'a>],
    /// Results per query.
    pub k: usize,
    /// Candidates kept while walking (at least `k`).
    pub ef: usize,
    /// Rank by inner product (largest first) rather than squared L2.
    pub inner_product: bool,
    /// Bits of the bottom nodes a result may be (every node when `None`).
    pub allowed: Option<&'a [u64]>,
    /// What the walk reads: the fp32 rows, or f16 or 8-bit copies where
    /// the backend has them (the results re-scored in fp32).
    pub rows: WalkPrecision,
    /// What the backend keeps of this graph between walks.
    pub cache: &'a BackendCache,
}

impl GraphWalkJob<'_> {
    /// Candidates kept by the walks of the upper levels (and the starts
    /// each hands down): `ef` up to 16, then a quarter of `ef`. They only
    /// find where the bottom walk starts (HNSW walks them greedily). On an
    /// H100 (1M x 128, 10,000 queries, f16 walk) upper walks of 16 against
    /// `ef` took ef 64 from recall 0.9960 in 6.30 ms to 0.9915 in 4.53 ms
    /// and ef 32 from 0.9555 in 4.06 ms to 0.9516 in 3.56 ms; 8 lost
    /// recall past what a larger `ef` below wins back (0.9602 at ef 64).
    pub fn upper_ef(&self) -> usize {
        self.ef.min((self.ef / 4).max(UPPER_EF_MIN)).max(1)
    }
}

/// Fewest candidates an upper level's walk keeps (unless `ef` is fewer).
const UPPER_EF_MIN: usize = 16;

/// The best nodes of each query's walk: `width` per query, best first,
/// with their raw values (squared L2, or the inner product), `u32::MAX`
/// and NaN past the nodes found.
#[derive(Debug, Clone)]
pub(crate) struct Walked {
    /// Entries per query.
    pub width: usize,
    /// `queries x width` nodes.
    pub nodes: Vec<u32>,
    /// Their raw values.
    pub values: Vec<f32>,
}

/// Graph walks. A backend without a walk of its own for a job declines,
/// and the index walks on the host.
pub(crate) trait GraphBackend {
    /// The job's walks, or `None` where the backend has none for it.
    fn graph_walk(&self, job: GraphWalkJob<'_>) -> Result<Option<Walked>>;
    /// Each of the `n` nodes' `degree` neighbours of fewest detours among
    /// its `wide` k-NN (`knn`, `n x wide`, best first, `u32::MAX` padded),
    /// as the index's host pruning picks them, or `None` where the backend
    /// has no pruning of its own.
    fn graph_prune(
        &self,
        knn: &[u32],
        n: usize,
        wide: usize,
        degree: usize,
    ) -> Result<Option<Vec<u32>>> {
        let _ = (knn, n, wide, degree);
        Ok(None)
    }
}

/// Descriptive statistics and quantiles.
pub(crate) trait StatsBackend {
    /// The moments of every segment along `axis`.
    fn describe(&self, x: &Input<'_>, axis: Axis) -> Result<Vec<Moments>>;
    /// The quantiles at `levels` of every segment along `axis`.
    fn quantiles(&self, x: &Input<'_>, axis: Axis, levels: &[f64]) -> Result<QuantileResult>;
}

/// Histograms and kernel density sums.
pub(crate) trait HistogramBackend {
    /// Count, extremes and (when `with_sum`) the sum of the finite values
    /// (the positive ones only when `positive`).
    fn finite_stats(&self, x: &Input<'_>, positive: bool, with_sum: bool) -> Result<Stats>;
    /// `sum (x - mean)^2` over the finite values, in `f64`.
    fn sq_dev(&self, x: &Input<'_>, mean: f64) -> Result<f64>;
    /// Counts of every element of `x` in the bins of `plan`.
    fn count_1d(&self, x: &Input<'_>, plan: &AxisPlan, clip: bool) -> Result<Counts>;
    /// Counts of the pairs `(x_i, y_i)` in the bins of `plans`.
    fn count_2d(
        &self,
        xy: (&Input<'_>, &Input<'_>),
        plans: (&AxisPlan, &AxisPlan),
        clip: bool,
    ) -> Result<Counts2>;
    /// The Gaussian kernel sums of every grid point, in chunks of `chunk`
    /// elements added in a fixed order.
    fn kde_sums(&self, x: &Input<'_>, grid: &[f64], h: f64, chunk: usize) -> Result<Vec<f64>>;
}

/// Hardware ceilings of the device.
pub(crate) trait DiagnosticsBackend {
    /// The copy bandwidth and matrix-product rates measured on the device.
    fn measure_ceilings(&self) -> Result<Ceilings>;
}

/// Where a Lloyd step keeps its assignment: the centroid id and the
/// distance of every element (point `p` in group `j` at `p * groups + j`).
pub(crate) struct Assigned {
    /// Centroid ids (within the element's group).
    pub ids: Store<u32>,
    /// Distances to them.
    pub dist: Store<f32>,
}

impl Assigned {
    /// The ids and distances on the host.
    pub(crate) fn to_host(&self) -> Result<(Vec<u32>, Vec<f32>)> {
        Ok((self.ids.to_vec()?, self.dist.to_vec()?))
    }
}

/// One Lloyd step over `groups` independent k-means problems of `k`
/// clusters each: group `j` clusters columns `j * group_dim .. (j + 1) *
/// group_dim` of the points (k-means: one group of every column; product
/// quantization: one per sub-space).
#[derive(Clone, Copy)]
pub(crate) struct LloydJob<'a> {
    /// Training rows (finite; on the context's device for speed).
    pub points: &'a Input<'a>,
    /// Problems solved together.
    pub groups: usize,
    /// Columns of each problem.
    pub group_dim: usize,
    /// Clusters per problem.
    pub k: usize,
    /// `groups x k x group_dim` centroids.
    pub centroids: &'a [f32],
    /// Rank by cosine distance (unit centroids) instead of squared L2.
    pub cosine: bool,
    /// The largest magnitude of a point value (sizes fixed-point sums).
    pub max_abs: f32,
    /// The previous step's assignment (counts changes; a start for the search).
    pub prev: Option<&'a Assigned>,
}

/// The Lloyd iteration's backend steps and nearest-centroid assignment.
pub(crate) trait ClusterBackend {
    /// Assigned of every element, then member sums (`groups x k x
    /// group_dim`, f64), counts, inertia and changes, in a fixed order.
    fn lloyd_step(&self, job: LloydJob<'_>) -> Result<LloydStep<Assigned>>;
    /// The nearest centroid of every point over all columns (ties to the
    /// smaller index) and its exact distance (squared L2, or cosine
    /// distance); a point with a non-finite value gets a NaN distance.
    fn nearest(
        &self,
        points: &Input<'_>,
        centroids: MatrixView<'_>,
        cosine: bool,
    ) -> Result<(Vec<u32>, Vec<f32>)>;
}

/// State a backend derives from a user's object and keeps with it (such as
/// 16-bit pieces of a weight on a device), of any type the backend chooses.
#[derive(Default)]
pub(crate) struct BackendCache(Mutex<Vec<Arc<dyn Any + Send + Sync>>>);

impl std::fmt::Debug for BackendCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |v| v.len());
        write!(f, "BackendCache({n} entries)")
    }
}

impl BackendCache {
    /// The first kept `T` that `matches`, else the one `make` builds (kept
    /// for later calls); `None` when `make` has none.
    pub(crate) fn find_or_make<T: Any + Send + Sync>(
        &self,
        matches: impl Fn(&T) -> bool,
        make: impl FnOnce() -> Result<Option<T>>,
    ) -> Result<Option<Arc<T>>> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for entry in kept.iter() {
            if let Ok(t) = entry.clone().downcast::<T>() {
                if matches(&t) {
                    return Ok(Some(t));
                }
            }
        }
        let Some(t) = make()? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        kept.push(t.clone());
        Ok(Some(t))
    }
}

/// Attention scores `act(alpha * Q K^T)` of projected rows.
#[derive(Clone, Copy)]
pub(crate) struct ScoresJob<'a> {
    /// Projected queries.
    pub queries: &'a Input<'a>,
    /// Projected keys.
    pub keys: &'a Input<'a>,
    /// Factor of every product.
    pub alpha: f32,
    /// The logistic function applied to each score.
    pub sigmoid: bool,
    /// Arithmetic of the product.
    pub precision: Precision,
}

/// A neural-quantization encode: `act(x W^T + b)`, optionally unit length,
/// then per-vector int8 codes.
#[derive(Clone, Copy)]
pub(crate) struct NqEncodeJob<'a> {
    /// The rows to encode.
    pub x: &'a Input<'a>,
    /// The encoder weight (`latent x d_in`).
    pub weight: &'a DeviceMatrix,
    /// The encoder bias.
    pub bias: Option<&'a [f32]>,
    /// The encoder activation.
    pub activation: Activation,
    /// Latents scaled to unit length before the codes.
    pub normalize: bool,
    /// Arithmetic of the product.
    pub precision: Precision,
}

/// A neural-quantization decode: `W_d (codes * scale) + b_d`.
#[derive(Clone, Copy)]
pub(crate) struct NqDecodeJob<'a> {
    /// Per-vector symmetric int8 codes (checked against the quantizer).
    pub codes: &'a ScalarCodes,
    /// The decoder weight (`d_out x latent`).
    pub weight: &'a DeviceMatrix,
    /// The decoder bias.
    pub bias: Option<&'a [f32]>,
    /// Arithmetic of the product.
    pub precision: Precision,
    /// What the backend keeps of the decoder between calls.
    pub cache: &'a BackendCache,
}

/// The ML kernels' own paths. Each returns `None` where the backend has no
/// path of its own for the job, and the operation composes the generic
/// steps (GEMMs, scalar-quantization codes) instead.
pub(crate) trait MlBackend {
    /// Attention scores in one fused product.
    fn attention_scores(&self, job: ScoresJob<'_>) -> Result<Option<DeviceMatrix>>;
    /// Codes of the rows in one pass.
    fn nq_encode(&self, job: NqEncodeJob<'_>) -> Result<Option<ScalarCodes>>;
    /// Reconstructions from the codes in one product.
    fn nq_decode(&self, job: NqDecodeJob<'_>) -> Result<Option<DeviceMatrix>>;
}

/// The quantizers' kernels: column statistics, encoding and decoding, the
/// product quantizer's scan, exact re-scoring of candidates.
pub(crate) trait QuantizeBackend {
    /// Each column's range over its finite values ((0, 0) for a column
    /// with none), or with `clip = Some(p)` its `[1 - p, p]` quantiles
    /// (`symmetric`: `(-q, q)` with `q` the `p` quantile of `|x|`).
    fn column_ranges(
        &self,
        data: &Input<'_>,
        clip: Option<f32>,
        symmetric: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)>;
    /// Each column's mean over its finite values (0 for none).
    fn column_means(&self, data: &Input<'_>) -> Result<Vec<f32>>;
    /// Scalar codes of the rows.
    fn sq_encode(&self, sq: &ScalarQuantizer, data: &Input<'_>) -> Result<ScalarCodes>;
    /// Rows `rows` of scalar codes decoded.
    fn sq_decode(
        &self,
        sq: &ScalarQuantizer,
        codes: &ScalarCodes,
        rows: std::ops::Range<usize>,
    ) -> Result<DeviceMatrix>;
    /// Bit-packed codes `x > thresholds`.
    fn bq_encode(&self, thresholds: &[f32], data: &Input<'_>) -> Result<DeviceMatrix>;
    /// Packed product codes of the rows.
    fn pq_encode(&self, pq: &ProductQuantizer, data: &Input<'_>) -> Result<PqCodes>;
    /// Product codes decoded (each sub-space's centroid).
    fn pq_decode(&self, pq: &ProductQuantizer, codes: &PqCodes) -> Result<DeviceMatrix>;
    /// The `k` codes of least (`l2`) or greatest (`ip`) asymmetric
    /// distance to each query.
    fn pq_search(
        &self,
        pq: &ProductQuantizer,
        queries: MatrixView<'_>,
        codes: &PqCodes,
        k: usize,
        metric: Metric,
    ) -> Result<Neighbors>;
    /// Exact distances of each query to its `per_query` candidate ids
    /// (missing ids give NaN).
    fn pair_distances(
        &self,
        pair: (&Input<'_>, &Input<'_>),
        ids: &[u64],
        per_query: usize,
        metric: Metric,
    ) -> Result<Vec<f32>>;
}

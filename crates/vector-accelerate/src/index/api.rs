//! [`Index`]: the one public index type; its kind comes from a factory
//! string.

use std::ops::Range;
use std::sync::Arc;

use super::coded::check_encoding;
use super::exact;
use super::factory::Spec;
use super::graph::{GraphIndex, DEFAULT_EF};
use super::ids::{IdMap, SlotSet};
use super::ivf::Ivf;
use super::params::SearchParams;
use super::progress::{BuildProgress, ProgressHook};
use super::range::{self, RangeResult};
use super::rows::RowBlocks;
use super::selector::IdSelector;
use crate::core::cluster::{KMeansProgress, ProgressFn};
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::{Distance, Metric};
use crate::core::neighbors::{Neighbors, MISSING_ID};
use crate::core::trace;
use crate::ops::check_f32_rows;
use crate::ops::cluster::check_finite;
use crate::ops::cluster::init::gather_rows;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Where an index keeps its vectors.
#[derive(Debug)]
pub(crate) enum Body {
    /// Every vector, searched exactly.
    Flat(RowBlocks),
    /// Inverted lists.
    Ivf(Box<Ivf>),
    /// A proximity graph over the vectors.
    Graph(Box<GraphIndex>),
}

/// A vector index (FAISS-shaped): vectors added with user `u64` ids,
/// searched exactly (`"Flat"`) or approximately through inverted lists
/// (`"IVF4096,Flat"`), with filters, deletions, range search and
/// save/load. Its data lives on the context's device.
///
/// ```
/// use vector_accelerate::index::{IdSelector, Index, SearchParams};
/// use vector_accelerate::{Context, Matrix, Metric};
/// let ctx = Context::cpu();
/// let data = Matrix::new((0..4000).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
/// let mut index = Index::new(&ctx, 8, "IVF16,Flat", Metric::L2)?;
/// index.train(&data)?;
/// let ids: Vec<u64> = (0..500).map(|i| 1000 + i).collect();
/// index.add_with_ids(&data, &ids)?;
/// let hits = index.search(data.view().slice_rows(7, 8), 3, &SearchParams::default().with_nprobe(4))?;
/// assert_eq!(hits.row_ids(0)[0], 1007);
/// index.remove_ids(&IdSelector::allow([1007]))?;
/// let hits = index.search(data.view().slice_rows(7, 8), 3, &SearchParams::default().with_nprobe(4))?;
/// assert_ne!(hits.row_ids(0)[0], 1007);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug)]
pub struct Index {
    pub(crate) ctx: Context,
    pub(crate) dim: usize,
    pub(crate) distance: Distance,
    pub(crate) spec: Spec,
    pub(crate) ids: IdMap,
    pub(crate) body: Body,
    pub(crate) nprobe: usize,
    pub(crate) refine_factor: usize,
    pub(crate) compact_at: f64,
    pub(crate) build_progress: ProgressHook,
}

impl Index {
    /// An empty index of `dim`-dimensional vectors built from a factory
    /// string: `"Flat"` (exact, every metric); `"IVF<nlist>,Flat"`
    /// (inverted lists of exact vectors; `"IVF,Flat"` picks
    /// [`recommended_nlist`](super::recommended_nlist) of the training set);
    /// `"IVF<nlist>,SQ8"` or `SQ4` (lists of int8 or int4 codes of each
    /// vector's residual from its list's centroid), `"IVF<nlist>,PQ<m>x<bits>"`
    /// (product codes of the residuals, `m` dividing `dim`), each optionally
    /// followed by `",Refine"` (exact vectors kept beside the codes and
    /// `k * refine_factor` candidates re-ranked with them). Coded lists
    /// compare by l2, euclidean, ip, cosine or cosine similarity; cosine
    /// indexes code and keep unit vectors.
    pub fn new(
        ctx: &Context,
        dim: usize,
        factory: &str,
        dist: impl Into<Distance>,
    ) -> Result<Self> {
        let spec = Spec::parse(factory)?;
        let distance = dist.into();
        distance.validate(dim, false)?;
        if dim == 0 {
            return Err(Error::ZeroDimension { what: "index" });
        }
        let body = match spec {
            Spec::Flat => Body::Flat(RowBlocks::new(dim)),
            Spec::Graph { degree } => {
                Body::Graph(Box::new(GraphIndex::new(dim, degree, &distance)?))
            }
            Spec::Ivf {
                nlist,
                encoding,
                refine,
            } => {
                check_encoding(encoding, dim).map_err(|e| Error::BadFactory {
                    spec: factory.into(),
                    reason: e.to_string(),
                })?;
                Body::Ivf(Box::new(Ivf::new(
                    dim,
                    nlist,
                    (encoding, refine),
                    &distance,
                )?))
            }
        };
        Ok(Self {
            ctx: ctx.clone(),
            dim,
            distance,
            spec,
            ids: IdMap::default(),
            body,
            nprobe: 1,
            refine_factor: 1,
            compact_at: 0.25,
            build_progress: ProgressHook::default(),
        })
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The metric vectors are compared by.
    pub fn metric(&self) -> Metric {
        self.distance.metric
    }
    /// The metric with its options.
    pub fn distance(&self) -> &Distance {
        &self.distance
    }
    /// The factory string of this index (`nlist` filled in once trained).
    pub fn factory(&self) -> String {
        match (&self.spec, &self.body) {
            (
                Spec::Ivf {
                    encoding, refine, ..
                },
                Body::Ivf(ivf),
            ) => Spec::Ivf {
                nlist: ivf.nlist,
                encoding: *encoding,
                refine: *refine,
            }
            .to_string(),
            (spec, _) => spec.to_string(),
        }
    }
    /// The context the index computes on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }
    /// Vectors held (removed ones excluded).
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether `id` is in the index.
    pub fn contains(&self, id: u64) -> bool {
        self.ids.slot(id).is_some()
    }
    /// Whether the index can take vectors (a Flat index always can; an IVF
    /// index after [`train`](Self::train)).
    pub fn is_trained(&self) -> bool {
        match &self.body {
            Body::Flat(_) | Body::Graph(_) => true,
            Body::Ivf(ivf) => ivf.is_trained(),
        }
    }
    /// Number of inverted lists (`None` for Flat, or IVF before training
    /// when the factory left it out).
    pub fn nlist(&self) -> Option<usize> {
        match &self.body {
            Body::Flat(_) | Body::Graph(_) => None,
            Body::Ivf(ivf) => ivf.nlist,
        }
    }
    /// Lists scanned per query when the search parameters do not say (1
    /// unless set, as in FAISS).
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }
    /// Sets the default `nprobe` (at least 1).
    pub fn set_nprobe(&mut self, nprobe: usize) -> Result<()> {
        check_positive("nprobe", nprobe)?;
        self.nprobe = nprobe;
        Ok(())
    }
    /// Default re-ranking factor of indexes that refine.
    pub fn refine_factor(&self) -> usize {
        self.refine_factor
    }
    /// Removed vectors whose space is not reclaimed yet.
    pub fn deleted(&self) -> usize {
        self.ids.deleted_count()
    }
    /// Sets the fraction of removed rows (default 0.25) above which a
    /// removal compacts the index.
    pub fn set_compaction_threshold(&mut self, fraction: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::invalid(
                "compaction threshold",
                fraction,
                "must be a fraction in [0, 1]",
            ));
        }
        self.compact_at = fraction;
        Ok(())
    }
    /// Calls `progress` as a graph index builds its graph (in an add that
    /// rebuilds it, or a compaction): each stage's start and end, and the
    /// neighbour search's advance. Other indexes never call it.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use vector_accelerate::index::{BuildStage, Index};
    /// use vector_accelerate::{Context, Matrix, Metric};
    /// let ctx = Context::cpu();
    /// let mut index = Index::new(&ctx, 2, "Graph4", Metric::L2)?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// index.set_build_progress(move |p| log.lock().unwrap().push(p.stage));
    /// index.add(&Matrix::new((0..40).map(|i| i as f32).collect(), 2)?)?;
    /// assert!(seen.lock().unwrap().contains(&BuildStage::Pruning));
    /// # Ok::<(), vector_accelerate::Error>(())
    /// ```
    pub fn set_build_progress(
        &mut self,
        progress: impl Fn(&BuildProgress) + Send + Sync + 'static,
    ) {
        self.build_progress = ProgressHook(Some(Arc::new(progress)));
    }
    /// Bytes the index holds: vectors, centroids and ids.
    pub fn memory_usage(&self) -> usize {
        let body = match &self.body {
            Body::Flat(rows) => rows.bytes(),
            Body::Ivf(ivf) => ivf.bytes(),
            Body::Graph(g) => g.bytes(),
        };
        body + self.ids.slot_count() * 16
    }

    /// Trains the coarse quantizer of an IVF index on representative
    /// vectors (k-means); nothing to do for Flat. Training again is an
    /// error once vectors were added.
    pub fn train<'a>(&mut self, data: impl Into<Input<'a>>) -> Result<()> {
        self.train_inner(data.into(), None)
    }

    /// [`train`](Self::train), calling `progress` after each k-means
    /// iteration (its iteration and iteration limit, inertia, moves).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use vector_accelerate::index::Index;
    /// use vector_accelerate::{Context, Matrix, Metric};
    /// let data = Matrix::new((0..8000).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
    /// let mut index = Index::new(&Context::cpu(), 8, "IVF16,Flat", Metric::L2)?;
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let s = seen.clone();
    /// index.train_with_progress(&data, move |p| s.store(p.iteration, Ordering::Relaxed))?;
    /// assert!(seen.load(Ordering::Relaxed) >= 1);
    /// # Ok::<(), vector_accelerate::Error>(())
    /// ```
    pub fn train_with_progress<'a>(
        &mut self,
        data: impl Into<Input<'a>>,
        progress: impl Fn(&KMeansProgress) + Send + Sync + 'static,
    ) -> Result<()> {
        self.train_inner(data.into(), Some(Arc::new(progress)))
    }

    fn train_inner(&mut self, data: Input<'_>, progress: Option<ProgressFn>) -> Result<()> {
        self.check_stored(&data, "training vectors", &mut None)?;
        match &mut self.body {
            Body::Flat(_) | Body::Graph(_) => Ok(()),
            Body::Ivf(ivf) => {
                if self.ids.slot_count() > 0 {
                    return Err(Error::invalid(
                        "train",
                        format!("{} vectors held", self.ids.slot_count()),
                        "an IVF index is trained before vectors are added",
                    ));
                }
                ivf.train(&self.ctx, &data, &self.distance, progress)
            }
        }
    }

    /// Adds vectors with sequential ids (one past the largest id the index
    /// has seen, then up); returns the ids given.
    pub fn add<'a>(&mut self, data: impl Into<Input<'a>>) -> Result<Range<u64>> {
        let data = data.into();
        let ids = self.ids.sequential(data.rows());
        self.add_with_ids(data, &ids)?;
        Ok(ids.first().copied().unwrap_or(0)..ids.last().map_or(0, |l| l + 1))
    }

    /// Adds vectors with the caller's ids (one per row; an id already in
    /// the index, repeated in `ids`, or `u64::MAX` is an error, and then
    /// nothing is added).
    pub fn add_with_ids<'a>(&mut self, data: impl Into<Input<'a>>, ids: &[u64]) -> Result<()> {
        let data = data.into();
        let mut hold = None;
        let host = self.check_rows_and_ids(&data, ids.len(), &mut hold)?;
        self.ids.check_new(ids)?;
        self.check_trained()?;
        self.push_checked(&data, host, ids)
    }

    /// Adds rows whose checks ([`check_add`](Self::check_add) and the ids
    /// against the index) the caller has made: `host` is `data` on the host.
    pub(crate) fn push_checked(
        &mut self,
        data: &Input<'_>,
        host: MatrixView<'_>,
        ids: &[u64],
    ) -> Result<()> {
        let first = self.ids.slot_count();
        match &mut self.body {
            Body::Flat(rows) => rows.push(&self.ctx, data)?,
            Body::Ivf(ivf) => ivf.add(&self.ctx, (data, host), first, &self.distance)?,
            Body::Graph(g) => g.add(
                &self.ctx,
                data,
                &self.distance,
                self.build_progress.reporter(),
            )?,
        }
        self.ids.push(ids);
        Ok(())
    }

    /// The `k` nearest vectors of every query, best first, named by their
    /// ids (ties by the earlier-added vector). A row has fewer than `k`
    /// results only when fewer than `k` vectors pass the filter.
    pub fn search<'a>(
        &self,
        queries: impl Into<Input<'a>>,
        k: usize,
        params: &SearchParams<'_>,
    ) -> Result<Neighbors> {
        let q = queries.into();
        self.check_rows(&q, "queries")?;
        if k == 0 {
            return Err(Error::InvalidK { k });
        }
        let _trace = trace::begin("index.search");
        let allowed = self.ids.allowed(params.filter);
        trace::mark("allowed", || {});
        let avail = allowed.as_ref().map_or(self.ids.len(), SlotSet::count);
        if avail == 0 {
            return Ok(Neighbors::missing(q.rows(), k, self.order()));
        }
        let nn = match &self.body {
            Body::Flat(rows) => {
                exact::search(&self.ctx, rows, &q, k, &self.distance, allowed.as_ref())?
            }
            Body::Ivf(ivf) => {
                // The probe and the list scan read the queries: on CUDA
                // they are uploaded once for both.
                let staged = match q {
                    Input::F32(_) if self.ctx.is_cuda() => Some(self.ctx.upload(q)?),
                    _ => None,
                };
                let q = staged.as_ref().map_or(q, Input::Resident);
                trace::mark("upload", || drop(self.ctx.synchronize()));
                self.search_ivf(ivf, &q, k, params, allowed.as_ref())?
            }
            Body::Graph(g) => {
                let ef = params.ef.unwrap_or(DEFAULT_EF);
                check_positive("ef", ef)?;
                let filtered = params.filter.is_some_and(|f| !matches!(f, IdSelector::All));
                let how = (allowed.as_ref(), filtered);
                let rows = params.precision.unwrap_or_default();
                g.search(&self.ctx, &q, (k, ef, rows), &self.distance, how)?
            }
        };
        let nn = exact::user_ids(nn, &self.ids);
        trace::mark("ids", || {});
        Ok(nn)
    }

    /// An IVF search: with a filter passing a fraction `f` of the vectors,
    /// the lists probed `nprobe / f` deep, or an exact search over the
    /// allowed vectors where that is cheaper (`f^2 <= c nprobe / nlist`, `c`
    /// the backend's measured cost of a filtered list row: 8 on the CPU, 256
    /// on CUDA).
    /// Queries left short of `min(k, allowed)` results
    /// (their lists hold too few allowed vectors) probe twice as many lists,
    /// then four times, up to every list.
    fn search_ivf(
        &self,
        ivf: &Ivf,
        q: &Input<'_>,
        k: usize,
        params: &SearchParams<'_>,
        allowed: Option<&SlotSet>,
    ) -> Result<Neighbors> {
        let mut nprobe = params.nprobe.unwrap_or(self.nprobe);
        check_positive("nprobe", nprobe)?;
        let lists = ivf.lists.len().max(1);
        // Deletions alone change neither the depth nor the path.
        let filtered = params.filter.is_some_and(|f| !matches!(f, IdSelector::All));
        if let Some(a) = allowed.filter(|_| filtered) {
            // A filter passing a fraction f of the rows: the lists are probed
            // nprobe / f deep (as many allowed rows as an unfiltered search
            // sees), reading (nprobe / nlist) / f of the rows per query,
            // against f for an exact search over the allowed rows. A row
            // costs more in the lists, by the backend's measured factor.
            // Deleted rows do not count: f is the share of the live rows.
            let f = a.count() as f64 / self.ids.len().max(1) as f64;
            let bias = self.ctx.backend().filtered_scan_cost();
            if f * f <= bias * nprobe as f64 / lists as f64 {
                return self.exact_over(ivf, q, k, a);
            }
            nprobe = ((nprobe as f64 / f).ceil() as usize).min(lists);
        }
        let kk = self.candidates(ivf, k, params)?;
        let mut nn = ivf.search(&self.ctx, q, (kk, nprobe), &self.distance, allowed)?;
        let want = k.min(allowed.map_or(self.ids.len(), SlotSet::count));
        let mut wider = nprobe;
        while wider < lists {
            let short = short_rows(&nn, want);
            if short.is_empty() {
                break;
            }
            wider = (wider * 2).min(lists);
            let mut hold = None;
            let sub = gather_rows(q.host_view(&mut hold)?, &short);
            let again = Input::F32(sub.view());
            let more = ivf.search(&self.ctx, &again, (kk, wider), &self.distance, allowed)?;
            let (ids, dist) = nn.parts_mut();
            for (i, &r) in short.iter().enumerate() {
                ids[r * kk..(r + 1) * kk].copy_from_slice(more.row_ids(i));
                dist[r * kk..(r + 1) * kk].copy_from_slice(more.row_distances(i));
            }
        }
        match ivf
            .coding
            .as_ref()
            .and_then(|c| Some((c.exact.as_ref()?, c.space)))
        {
            Some(store) => {
                let nn = exact::refine(&self.ctx, store, q, &nn, (k, &self.distance));
                trace::mark("refine", || {});
                nn
            }
            None => Ok(nn),
        }
    }

    /// Candidates a list scan keeps per query: `k`, or `k * refine_factor`
    /// where the index re-ranks.
    fn candidates(&self, ivf: &Ivf, k: usize, params: &SearchParams<'_>) -> Result<usize> {
        let factor = params.refine_factor.unwrap_or(self.refine_factor);
        check_positive("refine_factor", factor)?;
        Ok(if ivf.refines() {
            k.saturating_mul(factor)
        } else {
            k
        })
    }

    /// Exact search of every query over the allowed vectors of an IVF index.
    fn exact_over(
        &self,
        ivf: &Ivf,
        q: &Input<'_>,
        k: usize,
        allowed: &SlotSet,
    ) -> Result<Neighbors> {
        let slots = allowed.slots();
        trace::mark("slots", || {});
        let rows =
            RowBlocks::from_device(ivf.gather_device(&self.ctx, q, &slots, &self.distance)?);
        trace::mark("gather", || drop(self.ctx.synchronize()));
        let mut nn = rows.knn(&self.ctx, q, k, &self.distance)?;
        nn.map_ids(|i| slots[i as usize] as u64);
        trace::mark("map", || {});
        Ok(nn)
    }

    /// Every vector within `radius` of each query (distance below it, or
    /// similarity above it for inner product and cosine similarity), best
    /// first. IVF indexes scan the `nprobe` nearest lists.
    pub fn range_search<'a>(
        &self,
        queries: impl Into<Input<'a>>,
        radius: f32,
        params: &SearchParams<'_>,
    ) -> Result<RangeResult> {
        let q = queries.into();
        self.check_rows(&q, "queries")?;
        range::check_radius(radius)?;
        let allowed = self.ids.allowed(params.filter);
        let hits = match &self.body {
            Body::Flat(_) | Body::Graph(_) => range::scan(
                &self.ctx,
                self.exact_rows().expect("flat or graph"),
                &q,
                (radius, &self.distance),
                allowed.as_ref(),
            )?,
            Body::Ivf(ivf) => {
                let nprobe = params.nprobe.unwrap_or(self.nprobe);
                check_positive("nprobe", nprobe)?;
                ivf.range(
                    &self.ctx,
                    &q,
                    (radius, nprobe),
                    &self.distance,
                    allowed.as_ref(),
                )?
            }
        };
        Ok(RangeResult::from_hits(hits, self.order(), &self.ids))
    }

    /// Removes the vectors whose ids `selector` passes; returns how many.
    /// Removed ids are never returned again; their space is reclaimed when
    /// removed vectors pass the compaction threshold, or by
    /// [`compact`](Self::compact).
    pub fn remove_ids(&mut self, selector: &IdSelector) -> Result<usize> {
        let n = self.ids.remove(selector);
        let slots = self.ids.slot_count().max(1);
        if self.ids.deleted_count() as f64 > self.compact_at * slots as f64 {
            self.compact()?;
        }
        Ok(n)
    }

    /// Reclaims the space of removed vectors (ids stay as they are).
    pub fn compact(&mut self) -> Result<()> {
        if self.ids.deleted_count() == 0 {
            return Ok(());
        }
        let total = self.ids.slot_count();
        let kept = self.ids.compact();
        match &mut self.body {
            Body::Flat(rows) => rows.compact(&self.ctx, &kept)?,
            Body::Graph(g) => g.compact(
                &self.ctx,
                &kept,
                &self.distance,
                self.build_progress.reporter(),
            )?,
            Body::Ivf(ivf) => {
                let mut new_slot = vec![usize::MAX; total];
                for (new, &old) in kept.iter().enumerate() {
                    new_slot[old] = new;
                }
                ivf.compact(&self.ctx, &new_slot)?
            }
        }
        Ok(())
    }

    /// A copy of the stored vector of `id`.
    pub fn reconstruct(&self, id: u64) -> Result<Vec<f32>> {
        let slot = self.ids.slot(id).ok_or(Error::UnknownId { id })?;
        let m = match &self.body {
            Body::Flat(rows) => rows.gather(&[slot])?,
            Body::Graph(g) => g.rows.gather(&[slot])?,
            Body::Ivf(ivf) => ivf.gather(&[slot])?,
        };
        Ok(m.into_vec())
    }

    /// The exact rows of a Flat or graph index.
    pub(crate) fn exact_rows(&self) -> Option<&RowBlocks> {
        match &self.body {
            Body::Flat(rows) => Some(rows),
            Body::Graph(g) => Some(&g.rows),
            Body::Ivf(_) => None,
        }
    }

    /// The ranking order of the index's metric.
    fn order(&self) -> crate::core::neighbors::Order {
        self.distance.metric.canonical().order()
    }

    /// Checks rows given to the index: f32, its dimension, not empty, on
    /// its device.
    fn check_rows(&self, x: &Input<'_>, what: &'static str) -> Result<()> {
        check_f32_rows(&self.ctx, x, what, "indexes")?;
        if x.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                what: "vector dimension vs index dimension",
                expected: self.dim,
                got: x.dim(),
            });
        }
        Ok(())
    }

    /// The checks of [`add_with_ids`](Self::add_with_ids) but those of the
    /// ids against the index (rows, dimension, finite values, one id per
    /// row, training); returns the rows on the host.
    pub(crate) fn check_add<'h>(
        &self,
        data: &Input<'h>,
        ids: usize,
        hold: &'h mut Option<Matrix>,
    ) -> Result<MatrixView<'h>> {
        let host = self.check_rows_and_ids(data, ids, hold)?;
        self.check_trained()?;
        Ok(host)
    }

    /// Rows the index will hold, one id for each; returns them on the host.
    fn check_rows_and_ids<'h>(
        &self,
        data: &Input<'h>,
        ids: usize,
        hold: &'h mut Option<Matrix>,
    ) -> Result<MatrixView<'h>> {
        let host = self.check_stored(data, "vectors to add", hold)?;
        if ids != data.rows() {
            return Err(Error::DimensionMismatch {
                what: "ids vs vectors to add",
                expected: data.rows(),
                got: ids,
            });
        }
        Ok(host)
    }

    /// [`Error::NotTrained`] for an IVF index before training.
    fn check_trained(&self) -> Result<()> {
        if self.is_trained() {
            return Ok(());
        }
        Err(Error::NotTrained {
            what: format!("index {}", self.spec),
            operation: "add",
        })
    }

    /// One past the largest id the index has seen (where `add` numbers from).
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.next_id()
    }

    /// [`check_rows`](Self::check_rows) for vectors the index will hold,
    /// which must also be finite; returns them on the host (read once).
    fn check_stored<'h>(
        &self,
        x: &Input<'h>,
        what: &'static str,
        hold: &'h mut Option<Matrix>,
    ) -> Result<MatrixView<'h>> {
        self.check_rows(x, what)?;
        let rows = x.host_view(hold)?;
        check_finite(rows, what)?;
        Ok(rows)
    }
}

fn check_positive(name: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid(name, v, "must be at least 1"));
    }
    Ok(())
}

/// The rows of `nn` with fewer than `want` results.
fn short_rows(nn: &Neighbors, want: usize) -> Vec<usize> {
    (0..nn.rows())
        .filter(|&r| nn.row_ids(r).iter().filter(|&&i| i != MISSING_ID).count() < want)
        .collect()
}

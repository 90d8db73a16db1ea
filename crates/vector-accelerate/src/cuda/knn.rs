//! CUDA exact k-NN: distance tiles (GEMM or direct kernels) feed a row-wise
//! top-k; each tile's lists are merged into a running state kept on the
//! device, so the full distance matrix never exists. A host base is streamed
//! tile by tile; a resident base is used in place.
//!
//! A call is planned ([`plan`]: tile sizes, filter, base tiles), staged
//! ([`stage`]: the base's copies and norms, buffers), then runs per
//! super-block of queries over every base tile: the first tile's distances
//! are materialised and fully selected; later tiles go through the fused
//! filter, or a GEMM tile and the one-pass filter.

use std::ops::Range;
use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaView, DevicePtr};

use crate::core::error::{cu, Error, Result};
use crate::core::half::{half_dim, HalfKind};
use crate::core::matrix::Matrix;
use crate::core::metric::Prepared;
use crate::core::neighbors::{Neighbors, Order};
use crate::core::precision::Precision;
use crate::core::trace;
use crate::cuda::distance::{
    metric_code, per_row, query_norms, resident, resident_half, resident_norms, sq_norms, staging,
    tile, upload_rows, whole, DevInput, DistPlan, Tile,
};
use crate::cuda::feed::{Feed, DEPTH};
use crate::cuda::knn_direct;
use crate::cuda::knn_filter;
use crate::cuda::knn_filter::{
    filter_for, launch_rescore, launch_rescore_lists, launch_simt_filter, to_f32, to_half,
    BaseRows, Candidates, Filter, FilterRows, HalfRows, MetricArgs, Pass, ScaledPass,
};
use crate::cuda::select::{
    candidate_cap, launch_filter, launch_merge, launch_topk, row_split, scratch_words, Epi,
    Fallback, Ids, ListsMut, ListsRef, Merge, TileFilter, TopK,
};
use crate::runtime::backend::{KnnJob, SearchBackend};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{CudaRows, RowsRef};
use crate::runtime::input::Input;
use crate::runtime::resident::ResidentNeighbors;
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

/// Tile sizes chosen for a memory budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tiling {
    /// Queries per distance tile.
    pub query_block: usize,
    /// Base rows per distance tile.
    pub base_tile: usize,
    /// Queries whose running lists stay on the device during one pass over the base.
    pub super_block: usize,
    /// (row, part) lists that fit when few query rows are split across blocks.
    pub part_rows: usize,
}

/// What the tile sizes of one call depend on.
pub(crate) struct Workload {
    /// Query rows.
    pub nq: usize,
    /// Base rows.
    pub nx: usize,
    /// Neighbours per query.
    pub k: usize,
    /// Bytes of one stored row.
    pub row_bytes: usize,
    /// Whether the base is used in place (no staging buffers).
    pub base_resident: bool,
    /// Whether the queries are used in place.
    pub queries_resident: bool,
    /// Bytes per row of the 16-bit copies (or widened tiles) kept beside the rows.
    pub half_row_bytes: usize,
    /// Device memory the call may use.
    pub budget: usize,
    /// Multiprocessors of the device.
    pub sms: usize,
}

/// Picks tile sizes so that the workspace fits in `budget` bytes, or says
/// how much even the smallest tile needs.
pub(crate) fn plan_tiles(w: &Workload) -> Result<Tiling> {
    let Workload {
        nq,
        nx,
        k,
        row_bytes,
        base_resident,
        queries_resident,
        half_row_bytes,
        budget,
        sms,
    } = *w;
    let need = |qb: usize, bt: usize| -> usize {
        qb * bt * 4                                   // distance tile
            + qb * k * 12 * 2                         // tile lists + merge output
            + scratch_words(qb, k, bt.max(candidate_cap(k))) * 8 // select scratch for large k
            + qb * (candidate_cap(k) * 16 + 4)        // filtered candidates
            // Staging buffers for a streamed base (all but one filling).
            + if base_resident { 0 } else { bt * (DEPTH * row_bytes + half_row_bytes) }
            + (qb + bt) * 4 // norms
            + 4096
    };
    // Each query in a super-block keeps k (value, id) pairs and, when the
    // queries are on the host, its row.
    // (and its 16-bit copy for the fast filters).
    let per_query = k * 12 + if queries_resident { 0 } else { row_bytes } + half_row_bytes + 4;
    let mut bt = nx.min(1 << 16);
    let mut qb = nq.min(4096);
    while need(qb, bt) + qb * per_query > budget {
        if qb > 256 {
            qb /= 2;
        } else if bt > 1024 {
            bt /= 2;
        } else if qb > 1 {
            qb /= 2;
        } else if bt > 1 {
            bt /= 2;
        } else {
            return Err(Error::OutOfDeviceMemory {
                what: "one k-NN tile (1 query x 1 base row)",
                requested: need(1, 1) + per_query,
                available: budget,
            });
        }
    }
    let spare = budget - need(qb, bt);
    // With few query rows, a row's first tile is selected in parts by
    // separate blocks, each keeping a list: reserve room for those lists.
    let per_part = k * 12 + scratch_words(1, k, bt) * 8;
    let want = if qb < 2 * sms { 2 * sms + qb } else { 0 };
    let reserve = (want * per_part).min(spare / 2);
    let part_rows = reserve / per_part;
    let spare = spare - reserve;
    let sb = (spare / per_query).min(nq).max(qb);
    let sb = if sb >= nq { nq } else { sb / qb * qb };
    Ok(Tiling {
        query_block: qb,
        base_tile: bt,
        super_block: sb,
        part_rows,
    })
}

/// Device buffers every path through a (query block, base tile) uses,
/// sized for one query block.
struct Buffers {
    /// The tile's distances (or raw dot products).
    dist: CudaSlice<f32>,
    /// Squared norms of the tile's base rows, when the GEMM path computes them.
    base_norms: CudaSlice<f32>,
    /// The tile's list values, before their merge into the running lists.
    new_d: CudaSlice<f32>,
    /// The tile's list ids.
    new_i: CudaSlice<u64>,
    /// The merged values.
    merged_d: CudaSlice<f32>,
    /// The merged ids.
    merged_i: CudaSlice<u64>,
    /// Candidates kept per query by the filters.
    cap: usize,
    /// Candidate values (`cap` per query).
    cand_d: CudaSlice<f32>,
    /// Candidate ids.
    cand_i: CudaSlice<u64>,
    /// The fused filter's candidate base rows (`cap` per query).
    cand_rows: Option<CudaSlice<u32>>,
    /// Candidates found per query.
    counts: CudaSlice<i32>,
    /// The fused filter chain's device state (`knn_filter::STATE_LEN`).
    state: CudaSlice<i32>,
    /// Select scratch for large k.
    scratch: Option<CudaSlice<u64>>,
}

/// The first tile's lists re-scored in fp32 for the fused filter:
/// re-scored values in list order, then sorted values and ids.
struct FirstLists {
    /// The running lists' values re-scored, in list order.
    rescored: CudaSlice<f32>,
    /// The re-scored values sorted.
    dist: CudaSlice<f32>,
    /// Their ids.
    ids: CudaSlice<u64>,
}

/// Device buffers of one k-NN call.
struct Work {
    /// What every path through a tile uses.
    buffers: Buffers,
    /// 16-bit storage: f32 rows of a GEMM part of a later tile.
    wide_part: Option<CudaSlice<f32>>,
    /// Lists of the parts of a first tile selected by several blocks per
    /// row (grown on demand).
    parts: Option<(CudaSlice<f32>, CudaSlice<u64>)>,
    /// The first tile's re-scored lists (fused filter only).
    first: Option<FirstLists>,
}

impl Work {
    /// The buffers of `plan` for lists of `k`; `wide_part` as staged.
    fn new(
        dev: &CudaDevice,
        plan: &Plan<'_>,
        k: usize,
        wide_part: Option<CudaSlice<f32>>,
    ) -> Result<Self> {
        let (query_block, base_tile, cap) =
            (plan.tiling.query_block, plan.tiling.base_tile, plan.cap);
        let fused = plan.filter.is_some();
        let buffers = Buffers {
            dist: dev.alloc::<f32>(query_block * base_tile)?,
            base_norms: dev.alloc::<f32>(base_tile)?,
            new_d: dev.alloc::<f32>(query_block * k)?,
            new_i: dev.alloc::<u64>(query_block * k)?,
            merged_d: dev.alloc::<f32>(query_block * k)?,
            merged_i: dev.alloc::<u64>(query_block * k)?,
            cap,
            cand_d: dev.alloc::<f32>(query_block * cap)?,
            cand_i: dev.alloc::<u64>(query_block * cap)?,
            cand_rows: if fused {
                Some(dev.alloc::<u32>(query_block * cap)?)
            } else {
                None
            },
            counts: dev.alloc::<i32>(query_block)?,
            state: {
                let mut st = dev.alloc::<i32>(knn_filter::STATE_LEN)?;
                dev.stream.memset_zeros(&mut st).map_err(cu("cuMemsetD8"))?;
                st
            },
            scratch: None,
        };
        let first = if fused {
            let n = query_block * k;
            Some(FirstLists {
                rescored: dev.alloc::<f32>(n)?,
                dist: dev.alloc::<f32>(n)?,
                ids: dev.alloc::<u64>(n)?,
            })
        } else {
            None
        };
        Ok(Work {
            buffers,
            wide_part,
            parts: None,
            first,
        })
    }
}

/// One k-NN call's inputs.
#[derive(Clone, Copy)]
struct Search<'a> {
    /// The queries.
    q: &'a Input<'a>,
    /// The base.
    x: &'a Input<'a>,
    /// Neighbours per query.
    k: usize,
    /// The metric, prepared.
    p: &'a Prepared,
    /// How the fused filter may round.
    precision: Precision,
    /// Device memory the call may use.
    budget: usize,
}

/// How one call runs, chosen from the shapes, the precision and the budget.
struct Plan<'a> {
    /// The distance kernels' view of the metric.
    dist: DistPlan<'a>,
    /// Tile sizes.
    tiling: Tiling,
    /// Values per row.
    dim: usize,
    /// Elements (f32 or u64 words) per stored row.
    per_row: usize,
    /// Elements per row of 16-bit copies.
    half_dim: usize,
    /// The tensor-core filter's passes, each with the factor its bound is
    /// scaled by, tried in turn while a query overflows its candidates.
    chain: Vec<ScaledPass>,
    /// The filter later tiles go through, if any.
    filter: Option<Filter>,
    /// Kind of the 16-bit copies a fast tensor-core pass reads.
    half: Option<HalfKind>,
    /// Candidates kept per query by the filters.
    cap: usize,
    /// Whether the kernels need row norms.
    norms: bool,
    /// Whether a streamed tile's norms are computed once per tile for every
    /// query block (a resident base keeps its own).
    stream_norms: bool,
    /// Base tiles `(start, end)`.
    tiles: Vec<(usize, usize)>,
}

/// The rows of a base stored in 16 bits on the device.
fn half_store<'a>(x: &Input<'a>) -> Option<(HalfKind, &'a CudaSlice<u16>)> {
    match *x {
        Input::Resident(d) => d.half_store(),
        _ => None,
    }
}

/// The tensor-core filter's passes: the fast modes' first, with the margin
/// [`fast_scale`]; the exact passes behind them for queries whose
/// candidates overflow. A base stored in 16 bits takes its own format's
/// pass alone.
fn filter_chain(precision: Precision, dim: usize, store: Option<HalfKind>) -> Vec<ScaledPass> {
    let fast = fast_scale(dim);
    let scaled = |pass, scale| ScaledPass { pass, scale };
    if let Some(kind) = store {
        let scale = match precision {
            Precision::Exact | Precision::Tf32 => 1.0,
            Precision::Bf16 | Precision::F16 => fast,
        };
        let pass = match kind {
            HalfKind::Bf16 => Pass::Bf16,
            HalfKind::F16 => Pass::F16,
        };
        return vec![scaled(pass, scale)];
    }
    // Tf32 takes the exact passes: the tensor cores truncate fp32 operands
    // to TF32, which biases every product towards zero; a margin narrower
    // than the proven bound cannot absorb that bias on clustered data, and
    // the filter is compute-bound, so a narrower margin would gain nothing.
    let mut chain = match precision {
        Precision::Exact | Precision::Tf32 => vec![],
        Precision::Bf16 => vec![scaled(Pass::Bf16, fast)],
        Precision::F16 => vec![scaled(Pass::F16, fast)],
    };
    chain.extend([scaled(Pass::Tf32, 1.0), scaled(Pass::Tf32x3, 1.0)]);
    chain
}

/// The plan of a call: tile sizes within the budget, the filter of later
/// tiles and its passes, and the base tiles.
fn plan<'a>(dev: &CudaDevice, s: &Search<'a>) -> Result<Plan<'a>> {
    let Search {
        q,
        x,
        k,
        p,
        precision,
        budget,
    } = *s;
    let (nq, nx, dim) = (q.rows(), x.rows(), x.dim());
    let per_row = per_row(x);
    let row_bytes = per_row * if x.is_binary() { 8 } else { 4 };
    let base_resident = resident(x).is_some();
    let gemm_f32 = p.metric.is_gemm_based() && !x.is_binary();
    // A base stored in 16 bits (checked by the caller: GEMM metrics only)
    // is ranked with its own format's tensor-core pass, widened to f32
    // where a GEMM needs it, and re-scored from the stored values.
    let store = half_store(x).map(|(kind, _)| kind);
    let chain = filter_chain(precision, dim, store);
    let half = chain[0].pass.half().filter(|_| gemm_f32);
    let half_dim = half_dim(dim);
    let tiling = plan_tiles(&Workload {
        nq,
        nx,
        k,
        row_bytes,
        base_resident: base_resident || store.is_some(),
        queries_resident: resident(q).is_some(),
        // (16-bit storage: two f32 tiles widened for the GEMMs.)
        half_row_bytes: if store.is_some() {
            2 * row_bytes
        } else if half.is_some() {
            half_dim * 2
        } else {
            0
        },
        budget,
        sms: dev.sm_count(),
    })?;
    let dist = DistPlan::new(dev, p, dim)?;
    // Later tiles of the GEMM metrics go through the fused tensor-core
    // filter when query blocks are large enough to fill its tiles.
    let filter = match (gemm_f32, store) {
        // A 16-bit base has no f32 rows for the GEMM path: the tensor-core
        // filter takes every block of more than one query (a mostly idle
        // 128-query tile still beats widening every tile for a GEMM).
        (true, Some(_)) if tiling.query_block > 1 => Some(Filter::TensorCore),
        (true, _) => filter_for(tiling.query_block, dim),
        (false, _) => None,
    };
    let fused = filter.is_some();
    let norms = dist.needs_norms() || fused;
    // Doubling tiles for the tensor-core filter; for few queries (where
    // each tile costs a launch and a round trip) tiles 16 times as large as
    // everything before them, about 15 k candidates each.
    let growth = match filter {
        Some(Filter::Simt) if k <= 64 => 16,
        _ => 2,
    };
    let geometric = fused && (base_resident || store.is_some());
    Ok(Plan {
        tiles: base_tiles(nq, nx, tiling.base_tile, geometric, k, growth),
        dist,
        tiling,
        dim,
        per_row,
        half_dim,
        chain,
        filter,
        // 16-bit copies of the rows only for a fast tensor-core filter.
        half: half.filter(|_| filter == Some(Filter::TensorCore)),
        cap: if growth == 16 {
            (32 * k).max(512)
        } else {
            candidate_cap(k)
        },
        norms,
        stream_norms: norms && !base_resident && store.is_none() && !x.is_binary(),
    })
}

/// The base rows as a call reads them.
struct Base<'a> {
    /// The base as given.
    input: &'a Input<'a>,
    /// f32 or bit rows resident on the device, used in place.
    resident: Option<&'a CudaRows>,
    /// Rows stored in 16 bits on the device.
    store: Option<(HalfKind, &'a CudaSlice<u16>)>,
    /// A 16-bit copy of the whole base (the stored rows, or the copy a
    /// resident base keeps between calls).
    half: Option<&'a CudaSlice<u16>>,
    /// The squared norms a resident base keeps between calls.
    norms: Option<&'a CudaSlice<f32>>,
}

/// Buffers a base tile is staged in.
struct TileScratch {
    /// 16-bit storage: the first tile's rows widened to f32 for its GEMM.
    wide: Option<CudaSlice<f32>>,
    /// A streamed tile's 16-bit copy.
    half: Option<CudaSlice<u16>>,
    /// A streamed tile's squared norms.
    norms: CudaSlice<f32>,
}

/// The device side of a call before its first query: the base's 16-bit
/// copy and norms, and the buffers of the tiles and query blocks.
fn stage<'a>(
    dev: &'a CudaDevice,
    s: &Search<'a>,
    mut plan: Plan<'a>,
) -> Result<(Call<'a>, Work, TileScratch)> {
    let Search { q, x, k, p, .. } = *s;
    let (dim, base_tile) = (plan.dim, plan.tiling.base_tile);
    let resident = resident(x);
    let store = half_store(x);
    // 16-bit copies of the rows for a fast tensor-core filter: a resident
    // base keeps its copy between calls; a streamed tile is converted once.
    let half = match (plan.half, store) {
        (_, Some((_, s))) => Some(s),
        (Some(kind), None) => resident_half(dev, x, kind)?,
        (None, None) => None,
    };
    // (A resident base that f16 cannot represent ranks with TF32.)
    plan.half = plan.half.filter(|_| resident.is_none() || half.is_some());
    // 16-bit storage: f32 rows of the first tile and of GEMM parts.
    let (wide_first, wide_part) = match store {
        Some(_) => (
            Some(dev.alloc::<f32>(base_tile * dim)?),
            Some(dev.alloc::<f32>(base_tile * dim)?),
        ),
        None => (None, None),
    };
    let half_tile = match plan.half {
        Some(_) if half.is_none() => Some(dev.alloc::<u16>(base_tile * plan.half_dim)?),
        _ => None,
    };
    // A resident base keeps its squared norms between calls.
    let norms = if plan.norms {
        resident_norms(dev, x)?
    } else {
        None
    };
    let work = Work::new(dev, &plan, k, wide_part)?;
    let scratch = TileScratch {
        wide: wide_first,
        half: half_tile,
        norms: dev.alloc::<f32>(if plan.stream_norms { base_tile } else { 1 })?,
    };
    let call = Call {
        dev,
        q,
        p,
        k,
        order: p.metric.order(),
        plan,
        base: Base {
            input: x,
            resident,
            store,
            half,
            norms,
        },
    };
    Ok((call, work, scratch))
}

/// What every phase of one call shares.
struct Call<'a> {
    /// The device (its lock held for the call).
    dev: &'a CudaDevice,
    /// The queries.
    q: &'a Input<'a>,
    /// The metric, prepared.
    p: &'a Prepared,
    /// Neighbours per query.
    k: usize,
    /// Which values are best.
    order: Order,
    /// How the call runs.
    plan: Plan<'a>,
    /// The base rows and what the call keeps of them.
    base: Base<'a>,
}

/// A super-block's queries on the device.
struct Queries<'q> {
    /// The rows: resident, or this super-block's upload.
    rows: DevInput<'q>,
    /// Row of `rows` that is the super-block's first query.
    first: usize,
    /// Queries in the super-block.
    count: usize,
    /// Squared norms, once for the whole pass over the base.
    norms: Option<CudaSlice<f32>>,
    /// 16-bit copy for a fast tensor-core pass.
    half: Option<CudaSlice<u16>>,
}

/// One base tile as every query block reads it.
struct BaseTile<'t> {
    /// Whether it is the call's first tile.
    first: bool,
    /// Id of its first row.
    start: usize,
    /// Id after its last row.
    end: usize,
    /// Its rows (none for later tiles of 16-bit storage, read as stored).
    rows: RowsRef<'t>,
    /// Its part of 16-bit storage.
    store: Option<(HalfKind, CudaView<'t, u16>)>,
    /// Its 16-bit copy.
    half: Option<CudaView<'t, u16>>,
    /// Its squared norms.
    norms: Option<CudaView<'t, f32>>,
}

impl<'a> Call<'a> {
    /// The best `k` of the queries `range` over the whole base, written to
    /// `best` (`range.len() * k` entries).
    fn super_block(
        &self,
        w: &mut Work,
        scratch: &mut TileScratch,
        range: Range<usize>,
        best: &mut ListsMut<'_>,
    ) -> Result<()> {
        let k = self.k;
        let queries = self.stage_queries(range)?;
        let count = queries.count;
        let (best_d, best_i) = (&mut best.dist, &mut best.ids);
        // A host base streams through pinned staging on a second thread,
        // its transfers overlapped with the compute on the tile before.
        std::thread::scope(|sc| -> Result<()> {
            let mut feed = match (self.base.resident, self.base.store) {
                (None, None) => Some(Feed::start(
                    sc,
                    self.dev,
                    self.base.input,
                    &self.plan.tiles,
                    self.plan.tiling.base_tile,
                )?),
                _ => None,
            };
            for index in 0..self.plan.tiles.len() {
                let tile = self.stage_tile(scratch, feed.as_mut(), index)?;
                for from in (0..count).step_by(self.plan.tiling.query_block) {
                    let to = (from + self.plan.tiling.query_block).min(count);
                    let mut lists = ListsMut {
                        dist: best_d.slice_mut(from * k..to * k),
                        ids: best_i.slice_mut(from * k..to * k),
                    };
                    self.query_block(w, &mut lists, &queries, &tile, from..to)?;
                }
                if let Some(f) = feed.as_mut() {
                    f.release(self.dev)?;
                }
            }
            Ok(())
        })
    }

    /// The queries `range` on the device (resident, or uploaded), with
    /// their norms and 16-bit copy.
    fn stage_queries(&self, range: Range<usize>) -> Result<Queries<'a>> {
        let (dev, q, plan) = (self.dev, self.q, &self.plan);
        let count = range.end - range.start;
        let (rows, first) = if resident(q).is_some() {
            (whole(dev, q)?, range.start)
        } else {
            let mut staged = staging(dev, q, count)?;
            upload_rows(dev, q, range.start, range.end, &mut staged)?;
            (DevInput::Owned(staged), 0)
        };
        let block = rows.rows().rows(first, first + count, plan.per_row);
        let norms = query_norms(dev, &plan.dist, &block, count, plan.norms)?;
        let half = match (plan.half, &block) {
            (Some(kind), RowsRef::F32(v)) => {
                let mut h = dev.alloc::<u16>(count * plan.half_dim)?;
                to_half(dev, v, count, plan.dim, kind, &mut h.as_view_mut())?.then_some(h)
            }
            _ => None,
        };
        Ok(Queries {
            rows,
            first,
            count,
            norms,
            half,
        })
    }

    /// Base tile `index` staged: its rows (resident, streamed through
    /// `feed`, or the first tile of 16-bit storage widened), their norms and
    /// 16-bit copy.
    fn stage_tile<'t>(
        &'t self,
        scratch: &'t mut TileScratch,
        feed: Option<&'t mut Feed>,
        index: usize,
    ) -> Result<BaseTile<'t>> {
        let (dev, plan, base) = (self.dev, &self.plan, &self.base);
        let (dim, hd) = (plan.dim, plan.half_dim);
        let (start, end) = plan.tiles[index];
        let n = end - start;
        let TileScratch {
            wide,
            half: half_buf,
            norms: tile_norms,
        } = scratch;
        let rows = match (base.resident, feed, wide.as_mut()) {
            (Some(r), _, _) => r.rows(start, end, plan.per_row),
            (None, Some(f), _) => f.next(dev)?,
            (None, None, Some(wide)) => {
                // 16-bit storage: the first tile widened for its GEMM
                // (later tiles read the stored rows).
                let rows = if index == 0 { n } else { 0 };
                if let (Some((kind, stored)), true) = (base.store, rows > 0) {
                    let src = stored.slice(start * hd..end * hd);
                    to_f32(
                        dev,
                        &src,
                        rows,
                        dim,
                        kind,
                        &mut wide.slice_mut(..rows * dim),
                    )?;
                }
                RowsRef::F32(wide.slice(..rows * dim))
            }
            _ => unreachable!("base is resident, stored in 16 bits or streamed"),
        };
        if plan.stream_norms {
            if let RowsRef::F32(v) = &rows {
                sq_norms(dev, v, n, dim, tile_norms)?;
            }
        }
        let mut converted = true;
        if let (Some(kind), Some(buf), RowsRef::F32(v)) = (plan.half, half_buf.as_mut(), &rows) {
            converted = to_half(dev, v, n, dim, kind, &mut buf.slice_mut(..n * hd))?;
        }
        let half = match (base.half, &*half_buf) {
            (Some(h), _) => Some(h.slice(start * hd..end * hd)),
            (None, Some(b)) if converted => Some(b.slice(..n * hd)),
            _ => None,
        };
        let norms = match base.norms {
            Some(c) => Some(c.slice(start..end)),
            None if plan.stream_norms => Some(tile_norms.slice(..n)),
            None => None,
        };
        Ok(BaseTile {
            first: index == 0,
            start,
            end,
            rows,
            store: base
                .store
                .map(|(kind, stored)| (kind, stored.slice(start * hd..end * hd))),
            half,
            norms,
        })
    }

    /// The queries `block` of a super-block against one base tile, into
    /// their running lists.
    fn query_block(
        &self,
        w: &mut Work,
        lists: &mut ListsMut<'_>,
        queries: &Queries<'_>,
        tile: &BaseTile<'_>,
        block: Range<usize>,
    ) -> Result<()> {
        let (plan, hd) = (&self.plan, self.plan.half_dim);
        let (from, to) = (block.start, block.end);
        let (m, n) = (to - from, tile.end - tile.start);
        let first = queries.first;
        let query_rows = queries
            .rows
            .rows()
            .rows(first + from, first + to, plan.per_row);
        let query_norms = queries.norms.as_ref().map(|s| s.slice(from..to));
        // The fused filter's view of this (query block, base tile).
        let half_rows = match (&queries.half, &tile.half) {
            (Some(q_half), Some(x_half)) => Some(HalfRows {
                q: q_half.slice(from * hd..to * hd),
                x: x_half.slice(..),
            }),
            _ => None,
        };
        let fused = plan.filter.is_some();
        let filter_rows = match (fused, &query_rows, &tile.rows, &query_norms, &tile.norms) {
            (true, RowsRef::F32(q), RowsRef::F32(x), Some(qn), Some(xn)) => Some(FilterRows {
                q,
                m,
                qn,
                x: match &tile.store {
                    Some((kind, v)) => BaseRows::Half(*kind, v),
                    None => BaseRows::F32(x),
                },
                n,
                xn,
                dim: plan.dim,
                half: half_rows.as_ref(),
                metric: self.metric_args(),
                first_id: tile.start as u64,
            }),
            _ => None,
        };
        // (Later tiles: raw products for the filter, which applies the epilogue.)
        let dist = Tile {
            queries: &query_rows,
            query_rows: m,
            query_norms: query_norms.as_ref(),
            base: &tile.rows,
            base_rows: n,
            base_norms: tile.norms.as_ref(),
            epilogue: tile.first,
        };
        if tile.first {
            self.first_tile(w, lists, &dist, filter_rows.as_ref(), tile.start)
        } else {
            self.later_tile(w, lists, &dist, filter_rows.as_ref(), tile)
        }
    }

    /// The first base tile (rows from id `start`): its distances
    /// materialised and fully selected, which fills the running lists; with
    /// the fused filter, those lists are then re-scored (see
    /// [`rescore_first`](Self::rescore_first)).
    fn first_tile(
        &self,
        w: &mut Work,
        lists: &mut ListsMut<'_>,
        t: &Tile<'_>,
        rows: Option<&FilterRows<'_>>,
        start: usize,
    ) -> Result<()> {
        let (dev, k) = (self.dev, self.k);
        let Work {
            buffers: b,
            parts,
            first,
            ..
        } = w;
        tile(dev, &self.plan.dist, t, &mut b.base_norms, &mut b.dist)?;
        let (m, n) = (t.query_rows, t.base_rows);
        let dist = b.dist.slice(..m * n);
        let split = row_split(m, n, dev.sm_count());
        // The first tile's parts need lists of their own.
        let split = split.min((self.plan.tiling.part_rows / m).max(1));
        let select = TopK {
            vals: &dist,
            ld: n,
            rows: m,
            n,
            k,
            order: self.order,
            ids: Ids::Offset(start as u64),
            fallback: None,
            epi: Epi::default(),
            split: 1,
        };
        if split == 1 {
            launch_topk(dev, &select, lists, &mut b.scratch)?;
        } else {
            // Few rows: `split` blocks per row each select from one part,
            // then one block per row selects among their lists.
            let len = m * split * k;
            if parts.as_ref().is_none_or(|(d, _)| d.len() < len) {
                *parts = Some((dev.alloc::<f32>(len)?, dev.alloc::<u64>(len)?));
            }
            let (part_d, part_i) = parts.as_mut().expect("allocated above");
            let mut part_out = ListsMut {
                dist: part_d.slice_mut(..len),
                ids: part_i.slice_mut(..len),
            };
            launch_topk(
                dev,
                &TopK { split, ..select },
                &mut part_out,
                &mut b.scratch,
            )?;
            let merge_parts = TopK {
                vals: &part_d.slice(..len),
                ld: split * k,
                n: split * k,
                ids: Ids::Explicit(&part_i.slice(..len), (split * k) as i64),
                ..select
            };
            launch_topk(dev, &merge_parts, lists, &mut b.scratch)?;
        }
        match (rows, first.as_mut()) {
            (Some(rows), Some(first)) => self.rescore_first(b, lists, rows, first),
            _ => Ok(()),
        }
    }

    /// With the fused filter, the first tile's lists are re-scored in fp32
    /// like every later candidate and become the thresholds of a fused pass
    /// over the same tile, so that all kept values come from one
    /// computation. (When no pass can run, the GEMM lists stay.)
    fn rescore_first(
        &self,
        b: &mut Buffers,
        lists: &mut ListsMut<'_>,
        rows: &FilterRows<'_>,
        first: &mut FirstLists,
    ) -> Result<()> {
        let (dev, k, m) = (self.dev, self.k, rows.m);
        let mut rescored = first.rescored.slice_mut(..m * k);
        launch_rescore_lists(dev, rows, &lists.ids.as_view(), k, &mut rescored)?;
        let select = TopK {
            vals: &first.rescored.slice(..m * k),
            ld: k,
            rows: m,
            n: k,
            k,
            order: self.order,
            ids: Ids::Explicit(&lists.ids.as_view(), k as i64),
            fallback: None,
            epi: Epi::default(),
            split: 1,
        };
        let mut sorted = ListsMut {
            dist: first.dist.slice_mut(..m * k),
            ids: first.ids.slice_mut(..m * k),
        };
        launch_topk(dev, &select, &mut sorted, &mut b.scratch)?;
        let thresholds = ListsRef {
            dist: &first.dist.slice(..m * k),
            ids: &first.ids.slice(..m * k),
            k,
        };
        self.fused(b, lists, Some(thresholds), rows)?;
        Ok(())
    }

    /// A later base tile: through the fused filter when it takes it, else
    /// the GEMM path in parts that fit its distance buffer.
    fn later_tile(
        &self,
        w: &mut Work,
        lists: &mut ListsMut<'_>,
        t: &Tile<'_>,
        rows: Option<&FilterRows<'_>>,
        tile: &BaseTile<'_>,
    ) -> Result<()> {
        let Work {
            buffers: b,
            wide_part,
            ..
        } = w;
        if let Some(rows) = rows {
            if self.fused(b, lists, None, rows)? {
                return Ok(());
            }
        }
        let (dev, dim, pr, hd) = (
            self.dev,
            self.plan.dim,
            self.plan.per_row,
            self.plan.half_dim,
        );
        let (start, end) = (tile.start, tile.end);
        for from in (start..end).step_by(self.plan.tiling.base_tile) {
            let to = (from + self.plan.tiling.base_tile).min(end);
            let base = match (&tile.rows, self.base.store, wide_part.as_mut()) {
                (_, Some((kind, stored)), Some(wide)) => {
                    // 16-bit storage: this part widened.
                    let rows = to - from;
                    let src = stored.slice(from * hd..to * hd);
                    to_f32(
                        dev,
                        &src,
                        rows,
                        dim,
                        kind,
                        &mut wide.slice_mut(..rows * dim),
                    )?;
                    RowsRef::F32(wide.slice(..rows * dim))
                }
                (RowsRef::F32(v), _, _) => {
                    RowsRef::F32(v.slice((from - start) * pr..(to - start) * pr))
                }
                (RowsRef::Bits(v), _, _) => {
                    RowsRef::Bits(v.slice((from - start) * pr..(to - start) * pr))
                }
            };
            let base_norms = t.base_norms.map(|c| c.slice(from - start..to - start));
            let part = Tile {
                base: &base,
                base_rows: to - from,
                base_norms: base_norms.as_ref(),
                ..*t
            };
            self.gemm_filter(b, lists, &part, from)?;
        }
        Ok(())
    }

    /// Merges the block's new lists (`b.new_*`) into its running lists.
    fn merge_into(&self, b: &mut Buffers, lists: &mut ListsMut<'_>, m: usize) -> Result<()> {
        let k = self.k;
        let merge = Merge {
            rows: m,
            a: ListsRef {
                dist: &lists.dist.as_view(),
                ids: &lists.ids.as_view(),
                k,
            },
            b: ListsRef {
                dist: &b.new_d.slice(..m * k),
                ids: &b.new_i.slice(..m * k),
                k,
            },
            k,
            order: self.order,
        };
        let mut merged = ListsMut {
            dist: b.merged_d.slice_mut(..m * k),
            ids: b.merged_i.slice_mut(..m * k),
        };
        launch_merge(self.dev, &merge, &mut merged)?;
        let s = &self.dev.stream;
        s.memcpy_dtod(&b.merged_d.slice(..m * k), &mut lists.dist)
            .map_err(cu("cuMemcpyDtoD"))?;
        s.memcpy_dtod(&b.merged_i.slice(..m * k), &mut lists.ids)
            .map_err(cu("cuMemcpyDtoD"))?;
        Ok(())
    }

    /// A later base tile (base rows from id `x0`) through a GEMM tile
    /// (`t`, without its epilogue: the filter applies it) and the one-pass
    /// filter against the running lists.
    fn gemm_filter(
        &self,
        b: &mut Buffers,
        lists: &mut ListsMut<'_>,
        t: &Tile<'_>,
        x0: usize,
    ) -> Result<()> {
        let (dev, k, cap) = (self.dev, self.k, b.cap);
        let (m, n) = (t.query_rows, t.base_rows);
        let raw = self.p.metric.is_gemm_based();
        tile(dev, &self.plan.dist, t, &mut b.base_norms, &mut b.dist)?;
        {
            let dist = b.dist.slice(..m * n);
            let own_norms = b.base_norms.as_view();
            let base_norms = t.base_norms.unwrap_or(&own_norms);
            let (qn_ptr, _qg) = match t.query_norms {
                Some(v) => {
                    let (p, g) = v.device_ptr(&dev.stream);
                    (p, Some(g))
                }
                None => (0, None),
            };
            let (xn_ptr, _xg) = base_norms.device_ptr(&dev.stream);
            let epi = Epi {
                on: raw as i32,
                metric: metric_code(self.p.metric),
                normalized: !self.plan.dist.needs_norms() as i32,
                qn: qn_ptr,
                xn: xn_ptr,
            };
            let filter = TileFilter {
                vals: &dist,
                rows: m,
                n,
                ld: n,
                order: self.order,
                offset: x0 as u64,
                lists: ListsRef {
                    dist: &lists.dist.as_view(),
                    ids: &lists.ids.as_view(),
                    k,
                },
                cap,
                epi,
                split: row_split(m, n, dev.sm_count()),
            };
            let mut cand = ListsMut {
                dist: b.cand_d.slice_mut(..m * cap),
                ids: b.cand_i.slice_mut(..m * cap),
            };
            launch_filter(dev, &filter, &mut cand, &mut b.counts)?;
            let select = TopK {
                vals: &b.cand_d.slice(..m * cap),
                ld: cap,
                rows: m,
                n: cap,
                k,
                order: self.order,
                ids: Ids::Explicit(&b.cand_i.slice(..m * cap), cap as i64),
                fallback: Some(Fallback {
                    counts: &b.counts,
                    cap,
                    full: Some(&dist),
                    full_n: n,
                    full_ld: 0,
                    full_offset: x0 as u64,
                }),
                epi,
                split: 1,
            };
            let mut out = ListsMut {
                dist: b.new_d.slice_mut(..m * k),
                ids: b.new_i.slice_mut(..m * k),
            };
            launch_topk(dev, &select, &mut out, &mut b.scratch)?;
        }
        self.merge_into(b, lists, m)
    }

    /// A base tile through the fused filter and an fp32 re-score of its
    /// candidates. Returns false, leaving the lists as they were, when no
    /// filter pass can take the tile (the caller then takes the GEMM path).
    ///
    /// With `first`, the tile is the first one: its thresholds are the
    /// lists `first` (already re-scored) and the result replaces `lists`
    /// instead of being merged into them.
    fn fused(
        &self,
        b: &mut Buffers,
        lists: &mut ListsMut<'_>,
        first: Option<ListsRef<'_>>,
        rows: &FilterRows<'_>,
    ) -> Result<bool> {
        let (dev, k, cap, m) = (self.dev, self.k, b.cap, rows.m);
        let cand_rows = b.cand_rows.as_mut().expect("fused buffers are allocated");
        let (best_d, best_i) = (lists.dist.as_view(), lists.ids.as_view());
        let thresholds = first.unwrap_or(ListsRef {
            dist: &best_d,
            ids: &best_i,
            k,
        });
        let mut found = Candidates {
            rows: cand_rows.slice_mut(..m * cap),
            cap,
            counts: &mut b.counts,
            state: &mut b.state,
        };
        if !self.filter(rows, thresholds, &mut found)? {
            return Ok(false);
        }
        let mut rescored = ListsMut {
            dist: b.cand_d.slice_mut(..m * cap),
            ids: b.cand_i.slice_mut(..m * cap),
        };
        launch_rescore(dev, rows, &found, &mut rescored)?;
        // The first tile's result replaces the lists; a later one is merged.
        let mut out = if first.is_some() {
            ListsMut {
                dist: lists.dist.slice_mut(..),
                ids: lists.ids.slice_mut(..),
            }
        } else {
            ListsMut {
                dist: b.new_d.slice_mut(..m * k),
                ids: b.new_i.slice_mut(..m * k),
            }
        };
        let select = TopK {
            vals: &b.cand_d.slice(..m * cap),
            ld: cap,
            rows: m,
            n: cap,
            k,
            order: self.order,
            ids: Ids::Explicit(&b.cand_i.slice(..m * cap), cap as i64),
            fallback: Some(Fallback {
                counts: &b.counts,
                cap,
                full: None,
                full_n: 0,
                full_ld: 0,
                full_offset: 0,
            }),
            epi: Epi::default(),
            split: 1,
        };
        launch_topk(dev, &select, &mut out, &mut b.scratch)?;
        if first.is_none() {
            self.merge_into(b, lists, m)?;
        }
        Ok(true)
    }

    /// The fused filter's candidates of `rows` against `thresholds`: the
    /// exact filter for a single query, else the chain's passes, each
    /// running on the device only while some query overflowed the passes
    /// before (a pass that overflowed once is skipped in later tiles); the
    /// queries that overflow the last pass get their exact best rows of the
    /// tile. Nothing waits on the host. Returns false when no pass can run
    /// (16-bit storage whose queries f16 cannot hold): the GEMM path then
    /// takes the tile.
    fn filter(
        &self,
        rows: &FilterRows<'_>,
        thresholds: ListsRef<'_>,
        found: &mut Candidates<'_>,
    ) -> Result<bool> {
        let dev = self.dev;
        let mut last = None;
        if filter_for(rows.m, rows.dim) == Some(Filter::Simt) {
            launch_simt_filter(dev, rows, thresholds, found)?;
        } else {
            let runnable = self
                .plan
                .chain
                .iter()
                .filter(|p| p.pass.half().is_none() || rows.half.is_some());
            for &pass in runnable {
                knn_filter::launch_filter(dev, rows, pass, last, thresholds, found)?;
                last = Some(pass.pass);
            }
            if last.is_none() {
                return Ok(false);
            }
        }
        knn_filter::launch_rescue(dev, rows, self.k, last, found)?;
        Ok(true)
    }

    fn metric_args(&self) -> MetricArgs {
        MetricArgs {
            code: metric_code(self.p.metric),
            normalized: self.p.normalized,
            order: self.order,
        }
    }
}

/// The fast modes' margin as a fraction of their worst-case bound. The
/// bound adds every product's rounding error at its largest; independent
/// errors of round-to-nearest conversions (unbiased) add up like a random walk, to about u |q| |x| / sqrt(d) for rows
/// without a few dominant coordinates, so 4 / sqrt(d) of the bound (about
/// ten such standard deviations) rarely drops a true neighbour.
pub(crate) fn fast_scale(dim: usize) -> f32 {
    (4.0 / (dim as f32).sqrt()).min(1.0)
}

/// Rows of the first base tile when the fused filter handles the rest: the
/// k-th best of these rows is the first threshold. Very many queries (a
/// k-means assignment) amortise each later tile's launch over many query
/// blocks, so a small first tile sends most of a small base through the
/// tensor-core filter instead of the exact GEMM.
fn first_tile_rows(k: usize, nq: usize) -> usize {
    (8 * k).max(if nq >= 65_536 { 256 } else { 4096 })
}

/// Base tiles `(start, end)`: fixed size, or for the fused filter over a
/// resident base, a small first tile and then tiles that grow everything
/// seen so far `growth` times (each adds about (growth - 1) k candidates
/// per query).
fn base_tiles(
    nq: usize,
    nx: usize,
    fixed: usize,
    geometric: bool,
    k: usize,
    growth: usize,
) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    if !geometric {
        for x0 in (0..nx).step_by(fixed.max(1)) {
            v.push((x0, (x0 + fixed).min(nx)));
        }
        return v;
    }
    let mut x0 = 0;
    let mut size = fixed.min(first_tile_rows(k, nq)).max(1);
    while x0 < nx {
        let x1 = (x0 + size).min(nx);
        v.push((x0, x1));
        x0 = x1;
        size = x0 * (growth - 1);
    }
    v
}

/// The search of one k-NN call: plan, stage, then each query super-block,
/// whose lists `finish` takes (`rows` queries, the first `start`).
fn run<R>(
    dev: &CudaDevice,
    job: &KnnJob<'_>,
    mut finish: impl FnMut(usize, usize, CudaSlice<f32>, CudaSlice<u64>) -> Result<R>,
) -> Result<Vec<R>> {
    let _g = dev.lock();
    let q = job.queries;
    let direct = knn_direct::DirectJob {
        q,
        x: job.base,
        k: job.k,
        p: job.metric,
        budget: job.budget,
    };
    if knn_direct::takes(&direct) {
        crate::core::interrupt::check()?;
        let (dist, ids) = knn_direct::search(dev, &direct)?;
        trace::mark("knn.direct", || drop(dev.sync()));
        return Ok(vec![finish(0, q.rows(), dist, ids)?]);
    }
    let search = Search {
        q,
        x: job.base,
        k: job.k,
        p: job.metric,
        precision: job.precision,
        budget: job.budget,
    };
    let plan = plan(dev, &search)?;
    let (call, mut work, mut scratch) = stage(dev, &search, plan)?;
    trace::mark("knn.stage", || drop(dev.sync()));
    let (nq, super_block) = (q.rows(), call.plan.tiling.super_block);
    let mut parts = Vec::new();
    for start in (0..nq).step_by(super_block) {
        crate::core::interrupt::check()?;
        let end = (start + super_block).min(nq);
        let mut dist = dev.alloc::<f32>((end - start) * job.k)?;
        let mut ids = dev.alloc::<u64>((end - start) * job.k)?;
        let mut best = ListsMut {
            dist: dist.slice_mut(..),
            ids: ids.slice_mut(..),
        };
        call.super_block(&mut work, &mut scratch, start..end, &mut best)?;
        trace::mark("knn.search", || drop(dev.sync()));
        parts.push(finish(start, end - start, dist, ids)?);
        trace::mark("knn.results", || drop(dev.sync()));
    }
    #[cfg(feature = "debug-hooks")]
    knn_filter::record_stats(dev, &work.buffers.state)?;
    Ok(parts)
}

/// The lists of `rows` queries copied to the host.
fn download_lists(
    dev: &CudaDevice,
    (rows, k, order): (usize, usize, Order),
    dist: &CudaSlice<f32>,
    ids: &CudaSlice<u64>,
) -> Result<Neighbors> {
    let download = cu("download (cuMemcpyDtoH)");
    let dist = dev.stream.clone_dtoh(dist).map_err(&download)?;
    let ids = dev.stream.clone_dtoh(ids).map_err(&download)?;
    dev.sync()?;
    Neighbors::from_parts(rows, k, order, ids, dist)
}

/// The lists of every query, each super-block's copied into one buffer
/// (on the device).
fn resident_lists(
    dev: &Arc<CudaDevice>,
    job: &KnnJob<'_>,
    order: Order,
) -> Result<ResidentNeighbors> {
    let (nq, k) = (job.queries.rows(), job.k);
    let mut parts = run(dev, job, |start, rows, d, i| Ok((start, rows, d, i)))?;
    let (dist, ids) = if parts.len() == 1 {
        let (_, _, d, i) = parts.pop().expect("one part");
        (d, i)
    } else {
        let _g = dev.lock();
        let mut dist = dev.alloc::<f32>(nq * k)?;
        let mut ids = dev.alloc::<u64>(nq * k)?;
        let copy = cu("cuMemcpyDtoD");
        for (start, rows, d, i) in &parts {
            let span = start * k..(start + rows) * k;
            dev.stream
                .memcpy_dtod(d, &mut dist.slice_mut(span.clone()))
                .map_err(&copy)?;
            dev.stream
                .memcpy_dtod(i, &mut ids.slice_mut(span))
                .map_err(&copy)?;
        }
        (dist, ids)
    };
    dev.sync()?;
    let distances = DeviceMatrix::from_cuda(dev, CudaRows::F32(dist), nq, k, true);
    let ids = DeviceIds::from_cuda(dev, ids, nq * k);
    Ok(ResidentNeighbors::new(nq, k, order, ids, distances))
}

impl SearchBackend for Arc<CudaDevice> {
    fn pairwise(
        &self,
        queries: &Input<'_>,
        base: &Input<'_>,
        metric: &Prepared,
        budget: usize,
    ) -> Result<Matrix> {
        let d = crate::cuda::distance::matrix(self, queries, base, metric, budget)?;
        Matrix::new(d, base.rows())
    }

    fn knn(&self, job: KnnJob<'_>) -> Result<Neighbors> {
        let order = job.metric.metric.order();
        let parts = run(self, &job, |_, rows, d, i| {
            download_lists(self, (rows, job.k, order), &d, &i)
        })?;
        let mut parts = parts.into_iter();
        let mut all = parts.next().ok_or(Error::EmptyInput { what: "queries" })?;
        parts.for_each(|p| all.append_rows(p));
        Ok(all)
    }

    fn knn_resident(&self, job: KnnJob<'_>) -> Result<ResidentNeighbors> {
        resident_lists(self, &job, job.metric.metric.order())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_fit_the_budget_or_fail_with_numbers() {
        let big = Workload {
            nq: 10_000,
            nx: 1_000_000,
            k: 10,
            row_bytes: 512,
            base_resident: true,
            queries_resident: false,
            half_row_bytes: 0,
            budget: 8 << 30,
            sms: 132,
        };
        let t = plan_tiles(&big).unwrap();
        assert!(t.query_block >= 256 && t.base_tile >= 1024);
        let small = plan_tiles(&Workload {
            base_resident: false,
            half_row_bytes: 256,
            budget: 1 << 20,
            ..big
        })
        .unwrap();
        assert!(small.query_block * small.base_tile * 4 < 1 << 20);
        let tiny = Workload {
            nq: 10,
            nx: 10,
            k: 1_000_000,
            base_resident: false,
            budget: 1000,
            ..big
        };
        match plan_tiles(&tiny) {
            Err(Error::OutOfDeviceMemory { available, .. }) => assert_eq!(available, 1000),
            other => panic!("expected OutOfDeviceMemory, got {other:?}"),
        }
    }
}

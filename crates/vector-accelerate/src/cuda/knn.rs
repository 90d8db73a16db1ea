//! CUDA exact k-NN: distance tiles (GEMM or direct kernels) feed a row-wise
//! top-k; each tile's lists are merged into a running state kept on the
//! device, so the full distance matrix never exists. A host base is streamed
//! tile by tile; a resident base is used in place.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, DevicePtr};

use crate::core::error::{cu, Error, Result};
use crate::core::half::{half_dim, HalfKind};
use crate::core::metric::Prepared;
use crate::core::neighbors::{Neighbors, Order};
use crate::core::precision::Precision;
use crate::cuda::distance::{
    metric_code, per_row, query_norms, resident, resident_half, resident_norms, sq_norms, staging,
    tile, upload_rows, whole, DistPlan, Tile,
};
use crate::cuda::feed::{Feed, DEPTH};
use crate::cuda::knn_filter;
use crate::cuda::knn_filter::{
    filter_for, launch_rescore, launch_rescore_lists, launch_simt_filter, to_f32, to_half,
    BaseRows, Candidates, Filter, FilterRows, HalfRows, MetricArgs, Pass, ScaledPass,
};
use crate::cuda::select::{
    candidate_cap, launch_filter, launch_merge, launch_topk, row_split, scratch_words, Epi,
    Fallback, Ids, ListsMut, ListsRef, Merge, TileFilter, TopK,
};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::RowsRef;
use crate::runtime::input::Input;

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

/// Device buffers of one k-NN call, sized for one query block.
struct Work {
    dbuf: CudaSlice<f32>,
    xn: CudaSlice<f32>,
    tmp_d: CudaSlice<f32>,
    tmp_i: CudaSlice<u64>,
    mrg_d: CudaSlice<f32>,
    mrg_i: CudaSlice<u64>,
    cap: usize,
    cand_d: CudaSlice<f32>,
    cand_i: CudaSlice<u64>,
    cand_j: Option<CudaSlice<u32>>,
    counts: CudaSlice<i32>,
    overflow: CudaSlice<i32>,
    scratch: Option<CudaSlice<u64>>,
}

/// What every step of one call shares.
struct Step<'a> {
    dev: &'a CudaDevice,
    plan: &'a DistPlan<'a>,
    p: &'a Prepared,
    k: usize,
    order: Order,
    /// The tensor-core filter's passes, each with the factor its bound is
    /// scaled by, tried in turn while a query overflows its candidates.
    chain: Vec<ScaledPass>,
    /// The first pass of `chain` to try: once a pass overflows in a call
    /// (neighbours closer together than its bound), later tiles start with
    /// the next one.
    first_pass: std::cell::Cell<usize>,
}

impl Step<'_> {
    /// Merges the block's new lists (`w.tmp_*`) into its running lists.
    fn merge_into(&self, w: &mut Work, st: &mut ListsMut<'_>, m: usize) -> Result<()> {
        let k = self.k;
        let merge = Merge {
            rows: m,
            a: ListsRef {
                dist: &st.dist.as_view(),
                ids: &st.ids.as_view(),
                k,
            },
            b: ListsRef {
                dist: &w.tmp_d.slice(..m * k),
                ids: &w.tmp_i.slice(..m * k),
                k,
            },
            k,
            order: self.order,
        };
        let mut merged = ListsMut {
            dist: w.mrg_d.slice_mut(..m * k),
            ids: w.mrg_i.slice_mut(..m * k),
        };
        launch_merge(self.dev, &merge, &mut merged)?;
        let s = &self.dev.stream;
        s.memcpy_dtod(&w.mrg_d.slice(..m * k), &mut st.dist)
            .map_err(cu("cuMemcpyDtoD"))?;
        s.memcpy_dtod(&w.mrg_i.slice(..m * k), &mut st.ids)
            .map_err(cu("cuMemcpyDtoD"))?;
        Ok(())
    }

    /// A later base tile (base rows from id `x0`) through a GEMM tile
    /// (`t`, without its epilogue: the filter applies it) and the one-pass
    /// filter against the running lists.
    fn gemm_filter(
        &self,
        w: &mut Work,
        st: &mut ListsMut<'_>,
        t: &Tile<'_>,
        x0: usize,
    ) -> Result<()> {
        let (dev, k, cap) = (self.dev, self.k, w.cap);
        let (m, n, qn, cached) = (t.query_rows, t.base_rows, t.query_norms, t.base_norms);
        let raw = self.p.metric.is_gemm_based();
        tile(dev, self.plan, t, &mut w.xn, &mut w.dbuf)?;
        {
            let dview = w.dbuf.slice(..m * n);
            let own_xn = w.xn.as_view();
            let xn_view = cached.unwrap_or(&own_xn);
            let (qn_ptr, _qg) = match qn {
                Some(v) => {
                    let (p, g) = v.device_ptr(&dev.stream);
                    (p, Some(g))
                }
                None => (0, None),
            };
            let (xn_ptr, _xg) = xn_view.device_ptr(&dev.stream);
            let epi = Epi {
                on: raw as i32,
                metric: metric_code(self.p.metric),
                normalized: !self.plan.needs_norms() as i32,
                qn: qn_ptr,
                xn: xn_ptr,
            };
            let split = row_split(m, n, dev.sm_count());
            let filter = TileFilter {
                vals: &dview,
                rows: m,
                n,
                ld: n,
                order: self.order,
                offset: x0 as u64,
                lists: ListsRef {
                    dist: &st.dist.as_view(),
                    ids: &st.ids.as_view(),
                    k,
                },
                cap,
                epi,
                split,
            };
            let mut cand = ListsMut {
                dist: w.cand_d.slice_mut(..m * cap),
                ids: w.cand_i.slice_mut(..m * cap),
            };
            launch_filter(dev, &filter, &mut cand, &mut w.counts)?;
            let select = TopK {
                vals: &w.cand_d.slice(..m * cap),
                ld: cap,
                rows: m,
                n: cap,
                k,
                order: self.order,
                ids: Ids::Explicit(&w.cand_i.slice(..m * cap), cap as i64),
                fallback: Some(Fallback {
                    counts: &w.counts,
                    cap,
                    full: Some(&dview),
                    full_n: n,
                    full_ld: 0,
                    full_offset: x0 as u64,
                }),
                epi,
                split: 1,
            };
            let mut out = ListsMut {
                dist: w.tmp_d.slice_mut(..m * k),
                ids: w.tmp_i.slice_mut(..m * k),
            };
            launch_topk(dev, &select, &mut out, &mut w.scratch)?;
        }
        self.merge_into(w, st, m)
    }

    /// A later base tile through the fused tensor-core filter and an fp32
    /// re-score of its candidates. Returns false, leaving the lists as they
    /// were, when some query had more candidates than fit even with the
    /// three-pass filter (the caller then takes the GEMM path).
    ///
    /// With `first`, the tile is the first one: its thresholds are the
    /// lists `first` (already re-scored) and the result replaces `st`
    /// instead of being merged into it.
    fn fused(
        &self,
        w: &mut Work,
        st: &mut ListsMut<'_>,
        first: Option<ListsRef<'_>>,
        r: &FilterRows<'_>,
    ) -> Result<bool> {
        let (dev, k, cap, m) = (self.dev, self.k, w.cap, r.m);
        let cand_j = w.cand_j.as_mut().expect("fused buffers are allocated");
        let (sd, si) = (st.dist.as_view(), st.ids.as_view());
        let lists = match first {
            Some(lists) => lists,
            None => ListsRef {
                dist: &sd,
                ids: &si,
                k,
            },
        };
        let mut found = Candidates {
            rows: cand_j.slice_mut(..m * cap),
            cap,
            counts: &mut w.counts,
            overflow: &mut w.overflow,
        };
        // (Stays true when no pass can run, e.g. 16-bit storage whose
        // queries f16 cannot hold: the GEMM path then takes the tile.)
        let mut overflow = true;
        if filter_for(m, r.dim) == Some(Filter::Simt) {
            overflow = launch_simt_filter(dev, r, lists, &mut found)?;
        } else {
            for i in self.first_pass.get()..self.chain.len() {
                let pass = self.chain[i];
                if pass.pass.half().is_some() && r.half.is_none() {
                    continue;
                }
                overflow = knn_filter::launch_filter(dev, r, pass, lists, &mut found)?;
                if !overflow {
                    break;
                }
                // Later tiles start with the next pass (the last one stays).
                self.first_pass.set((i + 1).min(self.chain.len() - 1));
            }
        }
        if overflow {
            return Ok(false);
        }
        let mut rescored = ListsMut {
            dist: w.cand_d.slice_mut(..m * cap),
            ids: w.cand_i.slice_mut(..m * cap),
        };
        launch_rescore(dev, r, &found, &mut rescored)?;
        // The first tile's result replaces the lists; a later one is merged.
        let mut out = if first.is_some() {
            ListsMut {
                dist: st.dist.slice_mut(..),
                ids: st.ids.slice_mut(..),
            }
        } else {
            ListsMut {
                dist: w.tmp_d.slice_mut(..m * k),
                ids: w.tmp_i.slice_mut(..m * k),
            }
        };
        let select = TopK {
            vals: &w.cand_d.slice(..m * cap),
            ld: cap,
            rows: m,
            n: cap,
            k,
            order: self.order,
            ids: Ids::Explicit(&w.cand_i.slice(..m * cap), cap as i64),
            fallback: Some(Fallback {
                counts: &w.counts,
                cap,
                full: None,
                full_n: 0,
                full_ld: 0,
                full_offset: 0,
            }),
            epi: Epi::default(),
            split: 1,
        };
        launch_topk(dev, &select, &mut out, &mut w.scratch)?;
        if first.is_none() {
            self.merge_into(w, st, m)?;
        }
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

pub(crate) fn run(
    dev: &Arc<CudaDevice>,
    q: &Input<'_>,
    x: &Input<'_>,
    k: usize,
    p: &Prepared,
    budget: usize,
    precision: Precision,
) -> Result<Neighbors> {
    let dev = &**dev;
    let _g = dev.lock();
    let order = p.metric.order();
    let (nq, nx, dim) = (q.rows(), x.rows(), x.dim());
    let pr = per_row(x);
    let row_bytes = pr * if x.is_binary() { 8 } else { 4 };
    let x_res = resident(x);
    let q_res = resident(q).is_some();
    let gemm_f32 = p.metric.is_gemm_based() && !x.is_binary();
    // A base stored in 16 bits (checked by the caller: GEMM metrics only)
    // is ranked with its own format's tensor-core pass, widened to f32
    // where a GEMM needs it, and re-scored from the stored values.
    let store = match x {
        Input::Resident(d) => d.half_store(),
        _ => None,
    };
    // The tensor-core filter's passes: the fast modes' first, with the
    // margin fast_scale; the exact passes behind them for queries whose
    // candidates overflow.
    let fast = fast_scale(dim);
    // Tf32 takes the exact passes: the tensor cores truncate fp32 operands
    // to TF32, which biases every product towards zero; a margin narrower
    // than the proven bound cannot absorb that bias on clustered data
    // (measured recall 0.006), and the filter is compute-bound, so a
    // narrower margin would gain nothing.
    let scaled = |pass, scale| ScaledPass { pass, scale };
    let mut chain = match precision {
        Precision::Exact | Precision::Tf32 => vec![],
        Precision::Bf16 => vec![scaled(Pass::Bf16, fast)],
        Precision::F16 => vec![scaled(Pass::F16, fast)],
    };
    chain.extend([scaled(Pass::Tf32, 1.0), scaled(Pass::Tf32x3, 1.0)]);
    if let Some((kind, _)) = store {
        let scale = match precision {
            Precision::Exact | Precision::Tf32 => 1.0,
            Precision::Bf16 | Precision::F16 => fast,
        };
        let pass = match kind {
            HalfKind::Bf16 => Pass::Bf16,
            HalfKind::F16 => Pass::F16,
        };
        chain = vec![scaled(pass, scale)];
    }
    let half = chain[0].pass.half().filter(|_| gemm_f32);
    let hd = half_dim(dim);
    let t = plan_tiles(&Workload {
        nq,
        nx,
        k,
        row_bytes,
        base_resident: x_res.is_some() || store.is_some(),
        queries_resident: q_res,
        // (16-bit storage: two f32 tiles widened for the GEMMs.)
        half_row_bytes: if store.is_some() {
            2 * row_bytes
        } else if half.is_some() {
            hd * 2
        } else {
            0
        },
        budget,
        sms: dev.sm_count(),
    })?;
    let plan = DistPlan::new(dev, p, dim)?;
    // Later tiles of the GEMM metrics go through the fused tensor-core
    // filter when query blocks are large enough to fill its tiles.
    let filter = match (gemm_f32, store) {
        // A 16-bit base has no f32 rows for the GEMM path: the tensor-core
        // filter takes every block of more than one query (a mostly idle
        // 128-query tile still beats widening every tile for a GEMM).
        (true, Some(_)) if t.query_block > 1 => Some(Filter::TensorCore),
        (true, _) => filter_for(t.query_block, dim),
        (false, _) => None,
    };
    // 16-bit copies of the rows for a fast tensor-core filter: a resident
    // base keeps its copy between calls; a streamed tile is converted once.
    let half = half.filter(|_| filter == Some(Filter::TensorCore));
    let x_half = match (half, store) {
        (_, Some((_, s))) => Some(s),
        (Some(kind), None) => resident_half(dev, x, kind)?,
        (None, None) => None,
    };
    // (A resident base that f16 cannot represent ranks with TF32.)
    let half = half.filter(|_| x_res.is_none() || x_half.is_some());
    // 16-bit storage: f32 rows of the first tile and of GEMM parts.
    let (mut wide_first, mut wide_part) = match store {
        Some(_) => (
            Some(dev.alloc::<f32>(t.base_tile * dim)?),
            Some(dev.alloc::<f32>(t.base_tile * dim)?),
        ),
        None => (None, None),
    };
    let mut xh_tile = match half {
        Some(_) if x_half.is_none() => Some(dev.alloc::<u16>(t.base_tile * hd)?),
        _ => None,
    };
    let fused = filter.is_some();
    let norms = plan.needs_norms() || fused;
    // A resident base keeps its squared norms between calls.
    let x_norms = if norms { resident_norms(dev, x)? } else { None };

    // Doubling tiles for the tensor-core filter; for few queries (where
    // each tile costs a launch and a round trip) tiles 16 times as large as
    // everything before them, about 15 k candidates each.
    let growth = match filter {
        Some(Filter::Simt) if k <= 64 => 16,
        _ => 2,
    };
    let cap = if growth == 16 {
        (32 * k).max(512)
    } else {
        candidate_cap(k)
    };
    let mut w = Work {
        dbuf: dev.alloc::<f32>(t.query_block * t.base_tile)?,
        xn: dev.alloc::<f32>(t.base_tile)?,
        tmp_d: dev.alloc::<f32>(t.query_block * k)?,
        tmp_i: dev.alloc::<u64>(t.query_block * k)?,
        mrg_d: dev.alloc::<f32>(t.query_block * k)?,
        mrg_i: dev.alloc::<u64>(t.query_block * k)?,
        cap,
        cand_d: dev.alloc::<f32>(t.query_block * cap)?,
        cand_i: dev.alloc::<u64>(t.query_block * cap)?,
        cand_j: if fused {
            Some(dev.alloc::<u32>(t.query_block * cap)?)
        } else {
            None
        },
        counts: dev.alloc::<i32>(t.query_block)?,
        overflow: dev.alloc::<i32>(1)?,
        scratch: None,
    };
    let (mut part_d, mut part_i): (Option<CudaSlice<f32>>, Option<CudaSlice<u64>>) = (None, None);
    // The first tile's re-scored lists (values, sorted values, ids).
    let mut first = if fused {
        let n = t.query_block * k;
        Some((
            dev.alloc::<f32>(n)?,
            dev.alloc::<f32>(n)?,
            dev.alloc::<u64>(n)?,
        ))
    } else {
        None
    };
    // Norms of a streamed base tile, computed once per tile for every
    // query block (a resident base keeps its own).
    let stream_norms = norms && x_res.is_none() && store.is_none() && !x.is_binary();
    let mut xt = dev.alloc::<f32>(if stream_norms { t.base_tile } else { 1 })?;
    let step = Step {
        dev,
        plan: &plan,
        p,
        k,
        order,
        chain,
        first_pass: std::cell::Cell::new(0),
    };
    let tiles = base_tiles(
        nq,
        nx,
        t.base_tile,
        fused && (x_res.is_some() || store.is_some()),
        k,
        growth,
    );

    let mut result: Option<Neighbors> = None;
    for s0 in (0..nq).step_by(t.super_block) {
        let s1 = (s0 + t.super_block).min(nq);
        let sn = s1 - s0;
        // The super-block's queries on the device.
        let q_all = if q_res { Some(whole(dev, q)?) } else { None };
        let q_own = if q_res {
            None
        } else {
            let mut st = staging(dev, q, sn)?;
            upload_rows(dev, q, s0, s1, &mut st)?;
            Some(st)
        };
        let (q_rows, q_first) = match (&q_all, &q_own) {
            (Some(a), _) => (a.rows(), s0),
            (None, Some(o)) => (o, 0),
            _ => unreachable!("queries are either resident or staged"),
        };
        // The super-block's query norms, once for the whole pass over the base.
        let qn_all = query_norms(
            dev,
            &plan,
            &q_rows.rows(q_first, q_first + sn, pr),
            sn,
            norms,
        )?;
        let qh = match (half, &q_rows.rows(q_first, q_first + sn, pr)) {
            (Some(kind), RowsRef::F32(v)) => {
                let mut h = dev.alloc::<u16>(sn * hd)?;
                to_half(dev, v, sn, dim, kind, &mut h.as_view_mut())?.then_some(h)
            }
            _ => None,
        };
        let mut st_d = dev.alloc::<f32>(sn * k)?;
        let mut st_i = dev.alloc::<u64>(sn * k)?;
        // A host base streams through pinned staging on a second thread,
        // its transfers overlapped with the compute on the tile before.
        std::thread::scope(|sc| -> Result<()> {
            let mut feed = match (x_res, store) {
                (None, None) => Some(Feed::start(sc, dev, x, &tiles, t.base_tile)?),
                _ => None,
            };
            for (ti, &(x0, x1)) in tiles.iter().enumerate() {
                let n = x1 - x0;
                let xr = match (x_res, feed.as_mut(), wide_first.as_mut()) {
                    (Some(r), _, _) => r.rows(x0, x1, pr),
                    (None, Some(f), _) => f.next(dev)?,
                    (None, None, Some(wf)) => {
                        // 16-bit storage: the first tile widened for its
                        // GEMM (later tiles read the stored rows).
                        let rows = if ti == 0 { n } else { 0 };
                        if let (Some((kind, st)), true) = (store, rows > 0) {
                            to_f32(
                                dev,
                                &st.slice(x0 * hd..x1 * hd),
                                rows,
                                dim,
                                kind,
                                &mut wf.slice_mut(..rows * dim),
                            )?;
                        }
                        RowsRef::F32(wf.slice(..rows * dim))
                    }
                    _ => unreachable!("base is resident, stored in 16 bits or streamed"),
                };
                let store_tile = store.map(|(kind, st)| (kind, st.slice(x0 * hd..x1 * hd)));
                // The tile's squared norms: the resident base's, or computed here.
                if stream_norms {
                    if let RowsRef::F32(v) = &xr {
                        sq_norms(dev, v, n, dim, &mut xt)?;
                    }
                }
                // The tile's 16-bit copy.
                let mut tile_half = true;
                if let (Some(kind), Some(buf), RowsRef::F32(v)) = (half, &mut xh_tile, &xr) {
                    tile_half = to_half(dev, v, n, dim, kind, &mut buf.slice_mut(..n * hd))?;
                }
                let xh = match (x_half, &xh_tile) {
                    (Some(h), _) => Some(h.slice(x0 * hd..x1 * hd)),
                    (None, Some(b)) if tile_half => Some(b.slice(..n * hd)),
                    _ => None,
                };
                let cached = match x_norms {
                    Some(c) => Some(c.slice(x0..x1)),
                    None if stream_norms => Some(xt.slice(..n)),
                    None => None,
                };
                for b0 in (0..sn).step_by(t.query_block) {
                    let b1 = (b0 + t.query_block).min(sn);
                    let m = b1 - b0;
                    let qr = q_rows.rows(q_first + b0, q_first + b1, pr);
                    let qn = qn_all.as_ref().map(|s| s.slice(b0..b1));
                    let mut st = ListsMut {
                        dist: st_d.slice_mut(b0 * k..b1 * k),
                        ids: st_i.slice_mut(b0 * k..b1 * k),
                    };
                    // The fused filter's view of this (query block, base tile).
                    let half_rows = match (&qh, &xh) {
                        (Some(q16), Some(x16)) => Some(HalfRows {
                            q: q16.slice(b0 * hd..b1 * hd),
                            x: x16.slice(..),
                        }),
                        _ => None,
                    };
                    let rows = match (fused, &qr, &xr, &qn, &cached) {
                        (true, RowsRef::F32(qv), RowsRef::F32(xv), Some(qnv), Some(xnv)) => {
                            Some(FilterRows {
                                q: qv,
                                m,
                                qn: qnv,
                                x: match &store_tile {
                                    Some((kind, v)) => BaseRows::Half(*kind, v),
                                    None => BaseRows::F32(xv),
                                },
                                n,
                                xn: xnv,
                                dim,
                                half: half_rows.as_ref(),
                                metric: step.metric_args(),
                                first_id: x0 as u64,
                            })
                        }
                        _ => None,
                    };
                    if ti > 0 {
                        if let Some(rows) = &rows {
                            if step.fused(&mut w, &mut st, None, rows)? {
                                continue;
                            }
                        }
                        // The GEMM path, in tiles that fit its distance buffer.
                        for a0 in (x0..x1).step_by(t.base_tile) {
                            let a1 = (a0 + t.base_tile).min(x1);
                            let sub = match (&xr, store, wide_part.as_mut()) {
                                (_, Some((kind, st)), Some(wp)) => {
                                    // 16-bit storage: this part widened.
                                    let rows = a1 - a0;
                                    to_f32(
                                        dev,
                                        &st.slice(a0 * hd..a1 * hd),
                                        rows,
                                        dim,
                                        kind,
                                        &mut wp.slice_mut(..rows * dim),
                                    )?;
                                    RowsRef::F32(wp.slice(..rows * dim))
                                }
                                (RowsRef::F32(v), _, _) => {
                                    RowsRef::F32(v.slice((a0 - x0) * pr..(a1 - x0) * pr))
                                }
                                (RowsRef::Bits(v), _, _) => {
                                    RowsRef::Bits(v.slice((a0 - x0) * pr..(a1 - x0) * pr))
                                }
                            };
                            let sub_norms = cached.as_ref().map(|c| c.slice(a0 - x0..a1 - x0));
                            // (Raw products: the filter applies the epilogue.)
                            let part = Tile {
                                queries: &qr,
                                query_rows: m,
                                query_norms: qn.as_ref(),
                                base: &sub,
                                base_rows: a1 - a0,
                                base_norms: sub_norms.as_ref(),
                                epilogue: false,
                            };
                            step.gemm_filter(&mut w, &mut st, &part, a0)?;
                        }
                        continue;
                    }
                    let first_tile = Tile {
                        queries: &qr,
                        query_rows: m,
                        query_norms: qn.as_ref(),
                        base: &xr,
                        base_rows: n,
                        base_norms: cached.as_ref(),
                        epilogue: true,
                    };
                    tile(dev, &plan, &first_tile, &mut w.xn, &mut w.dbuf)?;
                    let dview = w.dbuf.slice(..m * n);
                    let split = row_split(m, n, dev.sm_count());
                    // The first tile's parts need lists of their own.
                    let first_split = split.min((t.part_rows / m).max(1));
                    let select = TopK {
                        vals: &dview,
                        ld: n,
                        rows: m,
                        n,
                        k,
                        order,
                        ids: Ids::Offset(x0 as u64),
                        fallback: None,
                        epi: Epi::default(),
                        split: 1,
                    };
                    if first_split == 1 {
                        launch_topk(dev, &select, &mut st, &mut w.scratch)?;
                    } else {
                        // Few rows: `split` blocks per row each select from one
                        // part, then one block per row selects among their lists.
                        let split = first_split;
                        let parts = m * split * k;
                        if part_d.as_ref().is_none_or(|p| p.len() < parts) {
                            part_d = Some(dev.alloc::<f32>(parts)?);
                            part_i = Some(dev.alloc::<u64>(parts)?);
                        }
                        let (pd, pi) = (part_d.as_mut().unwrap(), part_i.as_mut().unwrap());
                        let mut part_out = ListsMut {
                            dist: pd.slice_mut(..parts),
                            ids: pi.slice_mut(..parts),
                        };
                        launch_topk(
                            dev,
                            &TopK { split, ..select },
                            &mut part_out,
                            &mut w.scratch,
                        )?;
                        let merge_parts = TopK {
                            vals: &pd.slice(..parts),
                            ld: split * k,
                            n: split * k,
                            ids: Ids::Explicit(&pi.slice(..parts), (split * k) as i64),
                            ..select
                        };
                        launch_topk(dev, &merge_parts, &mut st, &mut w.scratch)?;
                    }
                    // With the fused filter, the first tile's lists are
                    // re-scored in fp32 like every later candidate and become
                    // the thresholds of a fused pass over the same tile, so that
                    // all kept values come from one computation. (On overflow
                    // the GEMM lists stay.)
                    if let (Some(rows), Some((fv, fd, fi))) = (&rows, first.as_mut()) {
                        let mut fvv = fv.slice_mut(..m * k);
                        launch_rescore_lists(dev, rows, &st.ids.as_view(), k, &mut fvv)?;
                        let rescored = TopK {
                            vals: &fv.slice(..m * k),
                            ld: k,
                            rows: m,
                            n: k,
                            k,
                            order,
                            ids: Ids::Explicit(&st.ids.as_view(), k as i64),
                            fallback: None,
                            epi: Epi::default(),
                            split: 1,
                        };
                        let mut sorted = ListsMut {
                            dist: fd.slice_mut(..m * k),
                            ids: fi.slice_mut(..m * k),
                        };
                        launch_topk(dev, &rescored, &mut sorted, &mut w.scratch)?;
                        let lists = ListsRef {
                            dist: &fd.slice(..m * k),
                            ids: &fi.slice(..m * k),
                            k,
                        };
                        step.fused(&mut w, &mut st, Some(lists), rows)?;
                    }
                }
                if let Some(f) = feed.as_mut() {
                    f.release(dev)?;
                }
            }
            Ok(())
        })?;
        let ds = dev
            .stream
            .clone_dtoh(&st_d)
            .map_err(cu("download (cuMemcpyDtoH)"))?;
        let is = dev
            .stream
            .clone_dtoh(&st_i)
            .map_err(cu("download (cuMemcpyDtoH)"))?;
        dev.sync()?;
        let part = Neighbors::from_parts(sn, k, order, is, ds)?;
        match &mut result {
            None => result = Some(part),
            Some(r) => r.append_rows(part),
        }
    }
    result.ok_or(Error::EmptyInput { what: "queries" })
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

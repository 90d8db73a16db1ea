//! CPU exact k-NN: (query block x base chunk) work items in parallel, each
//! computing distance tiles that stay in cache and feeding per-query top-k
//! buffers; partial lists of one query block are merged at the end. L2,
//! Euclidean, inner product and cosine (distance and similarity) on AVX-512
//! machines take the fused kernel (`fused`), which never writes a distance
//! tile; cosine runs there as the inner product of unit rows.

use rayon::prelude::*;

use crate::core::error::Result;
use crate::core::interrupt::interrupted;
use crate::core::matrix::Matrix;
use crate::core::metric::Prepared;
use crate::core::neighbors::{Neighbors, Order};
use crate::cpu::distance::{matrix as distance_matrix, row_sq_norms, tile};
use crate::cpu::host::{host_rows, HostRows};
use crate::cpu::select::{merge, TopKBuffer};
use crate::runtime::backend::{Cpu, KnnJob, SearchBackend};
use crate::runtime::input::Input;

const QUERY_BLOCK: usize = 256;
const BASE_TILE: usize = 2048;
/// Top-k buffer slack for k-NN (see [`TopKBuffer::with_slack`]).
const SLACK: usize = 16;

/// Exact k-NN of `q` against `x` (same kind of rows, validated by the caller).
pub(crate) fn run(q: HostRows<'_>, x: HostRows<'_>, k: usize, p: &Prepared) -> Neighbors {
    run_until(q, x, k, p, &|| false)
}

/// [`run`] that stops early (its lists unfinished) once `stop` says so,
/// checked between base tiles.
fn run_until(
    q: HostRows<'_>,
    x: HostRows<'_>,
    k: usize,
    p: &Prepared,
    stop: &(dyn Fn() -> bool + Sync),
) -> Neighbors {
    #[cfg(target_arch = "x86_64")]
    if let (HostRows::F32(qm), HostRows::F32(xm), Some(kind)) = (q, x, fused_kind(p)) {
        if super::fused::available() {
            return fused_run::run(qm, xm, k, (kind, p.normalized), stop);
        }
    }
    let order = p.metric.order();
    let (nq, nb) = (q.rows(), x.rows());
    let needs_norms = p.metric.is_gemm_based() && !p.normalized;
    let (qn, xn) = match (q, x) {
        (HostRows::F32(qm), HostRows::F32(xm)) if needs_norms => {
            (row_sq_norms(qm), row_sq_norms(xm))
        }
        _ => (Vec::new(), Vec::new()),
    };
    let (items, chunks, chunk_len) = plan(nq, nb, QUERY_BLOCK, BASE_TILE, 2);
    let partial: Vec<Neighbors> = items
        .par_iter()
        .map(|&(b, c)| {
            let (qs, qe) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(nq));
            let (bs, be) = (c * chunk_len, ((c + 1) * chunk_len).min(nb));
            let qrows = q.slice_rows(qs, qe);
            let qn_blk = if qn.is_empty() { &qn[..] } else { &qn[qs..qe] };
            let mut bufs: Vec<TopKBuffer> = (qs..qe)
                .map(|_| TopKBuffer::with_slack(k, order, SLACK))
                .collect();
            let mut dist = vec![0f32; (qe - qs) * BASE_TILE];
            let mut t = bs;
            while t < be && !stop() {
                let te = (t + BASE_TILE).min(be);
                let w = te - t;
                let xn_blk = if xn.is_empty() { &xn[..] } else { &xn[t..te] };
                let out = &mut dist[..(qe - qs) * w];
                tile(qrows, x.slice_rows(t, te), p, qn_blk, xn_blk, out);
                for (r, buf) in bufs.iter_mut().enumerate() {
                    buf.push_row(&out[r * w..(r + 1) * w], t as u64);
                }
                t = te;
            }
            finish(bufs, k, order)
        })
        .collect();
    combine(partial, chunks, k, order)
}

/// The fused kernel's kind for this metric, if it has one.
#[cfg(target_arch = "x86_64")]
fn fused_kind(p: &Prepared) -> Option<super::fused::Kind> {
    use super::fused::Kind;
    use crate::core::metric::Metric;
    match p.metric {
        Metric::L2 => Some(Kind::L2),
        Metric::Euclidean => Some(Kind::Euclidean),
        Metric::InnerProduct => Some(Kind::Inner),
        Metric::Cosine => Some(Kind::Cosine),
        Metric::CosineSimilarity => Some(Kind::CosineSimilarity),
        _ => None,
    }
}

/// Work items `(query block, base chunk)`, the number of chunks per block
/// and the chunk length: when there are fewer query blocks than threads the
/// base is split too, into about `per_thread` items per thread.
pub(super) fn plan(
    nq: usize,
    nb: usize,
    query_block: usize,
    tile: usize,
    per_thread: usize,
) -> (Vec<(usize, usize)>, usize, usize) {
    let qblocks = nq.div_ceil(query_block);
    let threads = rayon::current_num_threads();
    let chunks = if qblocks >= threads {
        1
    } else {
        (per_thread * threads)
            .div_ceil(qblocks)
            .min(nb.div_ceil(tile))
            .max(1)
    };
    let chunk_len = nb.div_ceil(chunks);
    let items = (0..qblocks)
        .flat_map(|b| (0..chunks).map(move |c| (b, c)))
        .collect();
    (items, chunks, chunk_len)
}

/// Sorted results of one work item's buffers.
pub(super) fn finish(bufs: Vec<TopKBuffer>, k: usize, order: Order) -> Neighbors {
    let mut res = Neighbors::missing(bufs.len(), k, order);
    let (ids, ds) = res.parts_mut();
    for (r, buf) in bufs.into_iter().enumerate() {
        buf.finish_into(&mut ids[r * k..(r + 1) * k], &mut ds[r * k..(r + 1) * k]);
    }
    res
}

/// Merges the `chunks` partial lists of every query block and stacks the
/// blocks.
pub(super) fn combine(partial: Vec<Neighbors>, chunks: usize, k: usize, order: Order) -> Neighbors {
    let mut out: Option<Neighbors> = None;
    for block in partial.chunks(chunks) {
        let merged = if block.len() == 1 {
            block[0].clone()
        } else {
            merge(&block.iter().collect::<Vec<_>>(), k, order)
        };
        match &mut out {
            None => out = Some(merged),
            Some(o) => o.append_rows(merged),
        }
    }
    out.unwrap_or_else(|| Neighbors::missing(0, k, order))
}

#[cfg(target_arch = "x86_64")]
mod fused_run {
    //! The driver of the fused kernel: packed queries shared by all work
    //! items, each item packing its base tiles once. For cosine the queries
    //! are scaled to unit length once and the base rows as they are packed
    //! (unless the inputs are declared normalised), so the kernel's dot
    //! products are the cosines.

    use rayon::prelude::*;

    use super::{combine, finish, plan, SLACK};
    use crate::core::matrix::Matrix;
    use crate::core::matrix::MatrixView;
    use crate::core::neighbors::{Neighbors, Order};
    use crate::cpu::distance::row_sq_norms;
    use crate::cpu::fused::{pack_base, pack_queries, run_tile, Kind, Prep, TileJob, GROUP, PANEL};
    use crate::cpu::select::TopKBuffer;
    use crate::cpu::vector::normalize_in_place;

    /// Queries per work item (a multiple of the kernel's group).
    const QUERY_BLOCK: usize = 96 * GROUP;
    /// Bytes of one packed base tile (kept in L2 while every query group of
    /// the block passes over it).
    const TILE_BYTES: usize = 1 << 20;

    /// Fused exact k-NN of `q` against `x`; `normalized`: the rows are
    /// declared unit length (cosine only).
    pub(super) fn run(
        q: MatrixView<'_>,
        x: MatrixView<'_>,
        k: usize,
        (kind, normalized): (Kind, bool),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Neighbors {
        let order = if kind.largest_first() {
            Order::Largest
        } else {
            Order::Smallest
        };
        let (nq, nb, d) = (q.rows(), x.rows(), q.dim());
        let cosine = matches!(kind, Kind::Cosine | Kind::CosineSimilarity);
        let scale_rows = cosine && !normalized;
        // Base norms are taken tile by tile while packing.
        let qn = if kind.needs_norms() {
            row_sq_norms(q)
        } else {
            Vec::new()
        };
        let unit_q = scale_rows.then(|| {
            let mut v = q.as_slice().to_vec();
            normalize_in_place(&mut v, d);
            Matrix::new(v, d).expect("the shape of q")
        });
        let packed_q = pack_queries(unit_q.as_ref().map_or(q, Matrix::view));
        let tile = (TILE_BYTES / (4 * d.max(1)) / PANEL * PANEL).clamp(PANEL, 4096);
        let (items, chunks, chunk_len) = plan(nq, nb, QUERY_BLOCK, tile, 2);
        let partial: Vec<Neighbors> = items
            .par_iter()
            .map(|&(b, c)| {
                let (qs, qe) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(nq));
                let (bs, be) = (c * chunk_len, ((c + 1) * chunk_len).min(nb));
                let mut bufs: Vec<TopKBuffer> = (qs..qe)
                    .map(|_| TopKBuffer::with_slack(k, order, SLACK))
                    .collect();
                let qn_blk = if qn.is_empty() { &qn[..] } else { &qn[qs..qe] };
                let (mut packed, mut xn) = (Vec::new(), Vec::new());
                let mut t = bs;
                while t < be && !stop() {
                    let te = (t + tile).min(be);
                    let prep = if kind.needs_norms() {
                        Prep::SqNorms(&mut xn)
                    } else if scale_rows {
                        Prep::Normalize
                    } else {
                        Prep::Copy
                    };
                    pack_base(x, t, te, &mut packed, prep);
                    let job = TileJob {
                        base: &packed,
                        rows: te - t,
                        first_id: t,
                        xn: &xn,
                        queries: &packed_q[qs * d..],
                        qn: qn_blk,
                        dim: d,
                    };
                    run_tile(&job, kind, &mut bufs);
                    t = te;
                }
                finish(bufs, k, order)
            })
            .collect();
        combine(partial, chunks, k, order)
    }
}

impl SearchBackend for Cpu {
    fn pairwise(
        &self,
        queries: &Input<'_>,
        base: &Input<'_>,
        metric: &Prepared,
        _budget: usize,
    ) -> Result<Matrix> {
        let (q, x) = (host_rows(queries)?, host_rows(base)?);
        let (qn, xn) = match (q, x) {
            (HostRows::F32(a), HostRows::F32(b))
                if metric.metric.is_gemm_based() && !metric.normalized =>
            {
                (row_sq_norms(a), row_sq_norms(b))
            }
            _ => (Vec::new(), Vec::new()),
        };
        Matrix::new(distance_matrix(q, x, metric, &qn, &xn), x.rows())
    }

    fn knn(&self, job: KnnJob<'_>) -> Result<Neighbors> {
        let (q, x) = (host_rows(job.queries)?, host_rows(job.base)?);
        let found = run_until(q, x, job.k, job.metric, &interrupted);
        // An interrupted search left its lists unfinished.
        crate::core::interrupt::check()?;
        Ok(found)
    }
}

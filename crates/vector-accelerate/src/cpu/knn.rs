//! CPU exact k-NN: (query block x base chunk) work items in parallel, each
//! computing distance tiles that stay in cache and feeding per-query top-k
//! buffers; partial lists of one query block are merged at the end.

use rayon::prelude::*;

use super::distance::{row_sq_norms, tile, Prepared};
use super::select::{merge, TopKBuffer};
use super::HostRows;
use crate::ops::select::Neighbors;

const QUERY_BLOCK: usize = 256;
const BASE_TILE: usize = 2048;

/// Exact k-NN of `q` against `x` (same kind of rows, validated by the caller).
pub(crate) fn run(q: HostRows<'_>, x: HostRows<'_>, k: usize, p: &Prepared) -> Neighbors {
    let order = p.metric.order();
    let (nq, nb) = (q.rows(), x.rows());
    let needs_norms = p.metric.is_gemm_based() && !p.normalized;
    let (qn, xn) = match (q, x) {
        (HostRows::F32(qm), HostRows::F32(xm)) if needs_norms => {
            (row_sq_norms(qm), row_sq_norms(xm))
        }
        _ => (Vec::new(), Vec::new()),
    };
    let qblocks = nq.div_ceil(QUERY_BLOCK);
    let threads = rayon::current_num_threads();
    // Split the base too when there are fewer query blocks than threads.
    let chunks = if qblocks >= threads {
        1
    } else {
        (2 * threads)
            .div_ceil(qblocks)
            .min(nb.div_ceil(BASE_TILE))
            .max(1)
    };
    let chunk_len = nb.div_ceil(chunks);
    let items: Vec<(usize, usize)> = (0..qblocks)
        .flat_map(|b| (0..chunks).map(move |c| (b, c)))
        .collect();
    let partial: Vec<Neighbors> = items
        .par_iter()
        .map(|&(b, c)| {
            let (qs, qe) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(nq));
            let (bs, be) = (c * chunk_len, ((c + 1) * chunk_len).min(nb));
            let qrows = q.slice_rows(qs, qe);
            let qn_blk = if qn.is_empty() { &qn[..] } else { &qn[qs..qe] };
            let mut bufs: Vec<TopKBuffer> = (qs..qe).map(|_| TopKBuffer::new(k, order)).collect();
            let mut dist = vec![0f32; (qe - qs) * BASE_TILE];
            let mut t = bs;
            while t < be {
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
            let mut res = Neighbors::missing(qe - qs, k, order);
            let (ids, ds) = res.parts_mut();
            for (r, buf) in bufs.into_iter().enumerate() {
                buf.finish_into(&mut ids[r * k..(r + 1) * k], &mut ds[r * k..(r + 1) * k]);
            }
            res
        })
        .collect();
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

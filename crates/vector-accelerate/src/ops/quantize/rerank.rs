//! Searching codes by decoding them in chunks, and re-ranking a shortlist
//! with the original vectors.

use std::ops::Range;

use super::codec::{Rerank, SearchOptions};
use crate::core::error::{Error, Result};
use crate::core::metric::Metric;
use crate::core::neighbors::{Neighbors, MISSING_ID};
use crate::core::quantize::code_metric;
use crate::cpu;
use crate::ops::knn::knn;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// Decoded values kept at once by a chunked search (bytes).
const CHUNK_BYTES: usize = 256 << 20;

/// Exact k-NN of `q` over `n` decoded rows, decoding `CHUNK_BYTES` at a
/// time with `decode(rows)`, then the optional re-rank.
pub(crate) fn search_decoded(
    ctx: &Context,
    q: &Input<'_>,
    (n, k): (usize, usize),
    opts: &SearchOptions<'_>,
    decode: &dyn Fn(Range<usize>) -> Result<DeviceMatrix>,
) -> Result<Neighbors> {
    let metric = code_metric(opts.metric)?;
    if k == 0 {
        return Err(Error::InvalidK { k });
    }
    let kk = shortlist_len(k, opts.rerank.as_ref())?;
    let chunk = (CHUNK_BYTES / (4 * q.dim().max(1))).clamp(1, n);
    let mut lists = Vec::new();
    for a in (0..n).step_by(chunk) {
        let b = (a + chunk).min(n);
        let rows = decode(a..b)?;
        let mut nn = knn(ctx, *q, &rows, kk, metric)?;
        offset_ids(&mut nn, a as u64);
        lists.push(nn);
    }
    let nn = if lists.len() == 1 {
        lists.pop().expect("one list")
    } else {
        crate::ops::select::merge(ctx, &lists, kk)?
    };
    finish(ctx, q, nn, (k, n), opts)
}

/// The best `k` of the candidates `nn` over `n` codes: re-ranked exactly
/// when the options ask for it, else as they are.
pub(crate) fn finish(
    ctx: &Context,
    q: &Input<'_>,
    nn: Neighbors,
    (k, n): (usize, usize),
    opts: &SearchOptions<'_>,
) -> Result<Neighbors> {
    match &opts.rerank {
        Some(r) => rerank_exact(ctx, (q, &r.base), &nn, (k, n), code_metric(opts.metric)?),
        None => Ok(nn),
    }
}

/// Candidates a search keeps per query before an optional re-rank.
pub(crate) fn shortlist_len(k: usize, rerank: Option<&Rerank<'_>>) -> Result<usize> {
    match rerank {
        None => Ok(k),
        Some(r) if r.shortlist < k => Err(Error::invalid(
            "rerank shortlist",
            r.shortlist,
            format!("must be at least k = {k}"),
        )),
        Some(r) => Ok(r.shortlist),
    }
}

/// Adds `off` to every present id.
pub(crate) fn offset_ids(nn: &mut Neighbors, off: u64) {
    if off == 0 {
        return;
    }
    let (ids, _) = nn.parts_mut();
    for i in ids.iter_mut().filter(|i| **i != MISSING_ID) {
        *i += off;
    }
}

/// Re-scores each query's candidates exactly against `base` and keeps the
/// best `k`.
fn rerank_exact(
    ctx: &Context,
    (q, base): (&Input<'_>, &Input<'_>),
    cand: &Neighbors,
    (k, n_codes): (usize, usize),
    metric: Metric,
) -> Result<Neighbors> {
    if base.is_binary() {
        return Err(Error::invalid(
            "rerank base",
            "bit-packed binary rows",
            "re-ranking needs the original f32 vectors",
        ));
    }
    if base.rows() != n_codes {
        return Err(Error::DimensionMismatch {
            what: "rerank base rows vs code rows",
            expected: n_codes,
            got: base.rows(),
        });
    }
    if base.dim() != q.dim() {
        return Err(Error::DimensionMismatch {
            what: "rerank base dimension vs query dimension",
            expected: q.dim(),
            got: base.dim(),
        });
    }
    if let Input::Resident(d) = base {
        d.check_device(ctx)?;
    }
    crate::ops::refuse_half(base, "rerank base")?;
    let (nq, r) = (cand.rows(), cand.k());
    let dist = ctx
        .backend()
        .pair_distances((q, base), cand.ids(), r, metric)?;
    let order = metric.order();
    let mut out = Neighbors::missing(nq, k, order);
    {
        let (oi, od) = out.parts_mut();
        for row in 0..nq {
            let ids = &cand.ids()[row * r..(row + 1) * r];
            let mut buf = cpu::select::TopKBuffer::new(k, order);
            for (j, &id) in ids.iter().enumerate() {
                if id != MISSING_ID {
                    buf.push(dist[row * r + j], id);
                }
            }
            buf.finish_into(
                &mut oi[row * k..(row + 1) * k],
                &mut od[row * k..(row + 1) * k],
            );
        }
    }
    Ok(out)
}

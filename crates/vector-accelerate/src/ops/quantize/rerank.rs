//! Searching codes by decoding them in chunks, and re-ranking a shortlist
//! with the original vectors.

use crate::core::error::{Error, Result};
use crate::core::metric::Metric;
use crate::core::neighbors::{Neighbors, MISSING_ID};
use crate::core::quantize::code_metric;
use crate::ops::knn::knn;
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;
use crate::{cpu, cuda};

/// Re-ranking of a search over codes: the best `shortlist` candidates by
/// code distance are re-scored exactly against `base` (the original `f32`
/// rows, in the same order as the codes; host or resident), and the best
/// `k` of them returned with their exact distances.
#[derive(Debug, Clone, Copy)]
pub struct Rerank<'a> {
    /// The original vectors.
    pub base: Input<'a>,
    /// Candidates re-scored per query (at least `k`).
    pub shortlist: usize,
}

impl<'a> Rerank<'a> {
    /// Re-ranks `shortlist` candidates per query against `base`.
    pub fn new(base: impl Into<Input<'a>>, shortlist: usize) -> Self {
        Self {
            base: base.into(),
            shortlist,
        }
    }
}

/// Decoded values kept at once by a chunked search (bytes).
const CHUNK_BYTES: usize = 256 << 20;

/// Exact k-NN of `q` over `n` decoded rows, decoding `CHUNK_BYTES` at a
/// time with `decode(a, b)`, then the optional re-rank.
pub(crate) fn search_decoded(
    ctx: &Context,
    q: &Input<'_>,
    n: usize,
    k: usize,
    metric: Metric,
    rerank: Option<Rerank<'_>>,
    decode: &dyn Fn(usize, usize) -> Result<DeviceMatrix>,
) -> Result<Neighbors> {
    let metric = code_metric(metric)?;
    if k == 0 {
        return Err(Error::InvalidK { k });
    }
    let kk = shortlist_len(k, rerank.as_ref())?;
    let chunk = (CHUNK_BYTES / (4 * q.dim().max(1))).clamp(1, n);
    let mut lists = Vec::new();
    for a in (0..n).step_by(chunk) {
        let b = (a + chunk).min(n);
        let rows = decode(a, b)?;
        let mut nn = knn(ctx, *q, &rows, kk, metric)?;
        offset_ids(&mut nn, a as u64);
        lists.push(nn);
    }
    let nn = if lists.len() == 1 {
        lists.pop().expect("one list")
    } else {
        crate::ops::select::merge(ctx, &lists, kk)?
    };
    match rerank {
        Some(r) => rerank_exact(ctx, q, &r.base, &nn, k, metric, n),
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
pub(crate) fn rerank_exact(
    ctx: &Context,
    q: &Input<'_>,
    base: &Input<'_>,
    cand: &Neighbors,
    k: usize,
    metric: Metric,
    n_codes: usize,
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
    let dist = match (ctx.engine(), base) {
        (Engine::Cuda(dev), Input::Resident(_)) => {
            cuda::quantize::pair_distances(dev, q, base, cand.ids(), r, metric)?
        }
        _ => {
            let mut hold_q = None;
            let mut hold_x = None;
            let qv = super::inputs::view_or_download(q, &mut hold_q)?;
            let xv = super::inputs::view_or_download(base, &mut hold_x)?;
            cpu::quantize::pair_distances(qv, xv, cand.ids(), r, metric)
        }
    };
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

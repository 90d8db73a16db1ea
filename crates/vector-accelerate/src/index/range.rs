//! Range search: every stored vector within a radius of each query.

use super::ids::{IdMap, SlotSet};
use super::rows::RowBlocks;
use crate::core::error::{Error, Result};
use crate::core::metric::Distance;
use crate::core::neighbors::{sort_key, Order};
use crate::ops::distance::pairwise;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// The results of a range search (FAISS's `RangeSearchResult`): the hits
/// of query `r` are entries `lims[r]..lims[r + 1]` of `ids` and
/// `distances`, best first (ties by the smaller id).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeResult {
    lims: Vec<usize>,
    ids: Vec<u64>,
    distances: Vec<f32>,
}

impl RangeResult {
    /// Number of queries.
    pub fn rows(&self) -> usize {
        self.lims.len() - 1
    }
    /// Offsets of each query's hits (`rows + 1` entries).
    pub fn lims(&self) -> &[usize] {
        &self.lims
    }
    /// Every hit's id, query after query.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }
    /// Every hit's distance, query after query.
    pub fn distances(&self) -> &[f32] {
        &self.distances
    }
    /// The ids of query `r`'s hits.
    pub fn row_ids(&self, r: usize) -> &[u64] {
        &self.ids[self.lims[r]..self.lims[r + 1]]
    }
    /// The distances of query `r`'s hits.
    pub fn row_distances(&self, r: usize) -> &[f32] {
        &self.distances[self.lims[r]..self.lims[r + 1]]
    }

    /// Sorts each query's `(distance, slot)` hits and names them by user id.
    pub(crate) fn from_hits(mut hits: Vec<Vec<(f32, usize)>>, order: Order, map: &IdMap) -> Self {
        let mut out = Self {
            lims: vec![0],
            ids: Vec::new(),
            distances: Vec::new(),
        };
        for h in &mut hits {
            let key = |&(d, s): &(f32, usize)| (sort_key(d, order), map.id(s));
            h.sort_unstable_by_key(key);
            out.ids.extend(h.iter().map(|&(_, s)| map.id(s)));
            out.distances.extend(h.iter().map(|&(d, _)| d));
            out.lims.push(out.ids.len());
        }
        out
    }
}

/// Whether a value is inside the radius: below it for distances, above it
/// for similarities (NaN never).
pub(crate) fn within(d: f32, radius: f32, order: Order) -> bool {
    match order {
        Order::Smallest => d < radius,
        Order::Largest => d > radius,
    }
}

/// Checks a search radius.
pub(crate) fn check_radius(radius: f32) -> Result<()> {
    if radius.is_nan() {
        return Err(Error::invalid("radius", radius, "must be a number"));
    }
    Ok(())
}

/// Distance values computed at once per chunk of queries (bounds the host
/// memory of one pairwise block).
const CHUNK_VALUES: usize = 1 << 24;

/// The `(distance, slot)` pairs within `radius` of each query, over the
/// allowed rows of `rows` (unsorted).
pub(crate) fn scan(
    ctx: &Context,
    rows: &RowBlocks,
    q: &Input<'_>,
    (radius, dist): (f32, &Distance),
    allowed: Option<&SlotSet>,
) -> Result<Vec<Vec<(f32, usize)>>> {
    let order = dist.metric.canonical().order();
    let mut hold = None;
    let qv = q.host_view(&mut hold)?;
    let mut hits = vec![Vec::new(); qv.rows()];
    let mut start = 0;
    for b in rows.blocks() {
        let step = (CHUNK_VALUES / b.rows().max(1)).max(1);
        for q0 in (0..qv.rows()).step_by(step) {
            let q1 = (q0 + step).min(qv.rows());
            let d = pairwise(ctx, qv.slice_rows(q0, q1), b, dist)?;
            for (r, row) in d.as_slice().chunks_exact(b.rows()).enumerate() {
                let pass = row.iter().enumerate().filter(|(i, &v)| {
                    within(v, radius, order) && allowed.is_none_or(|a| a.contains(start + i))
                });
                hits[q0 + r].extend(pass.map(|(i, &v)| (v, start + i)));
            }
        }
        start += b.rows();
    }
    Ok(hits)
}

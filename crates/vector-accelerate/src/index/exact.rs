//! Exact search over an index's stored rows with deletions and filters:
//! over-fetching when few rows are excluded, a search over the gathered
//! allowed rows otherwise, so a filtered search returns `k` results
//! whenever `k` allowed rows exist.

use super::ids::{IdMap, SlotSet};
use super::rows::RowBlocks;
use crate::core::error::Result;
use crate::core::metric::Distance;
use crate::core::neighbors::{missing_value, Neighbors, MISSING_ID};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Excluded rows up to which a search fetches `k + excluded` candidates and
/// drops the excluded ones (when they are also at most half the rows);
/// beyond it the allowed rows are gathered and searched alone.
const OVERFETCH_MAX: usize = 1024;

/// The `k` nearest allowed rows of every query, by slot (`allowed: None`
/// allows every row).
pub(crate) fn search(
    ctx: &Context,
    rows: &RowBlocks,
    q: &Input<'_>,
    k: usize,
    dist: &Distance,
    allowed: Option<&SlotSet>,
) -> Result<Neighbors> {
    let order = dist.metric.canonical().order();
    let Some(allowed) = allowed else {
        return rows.knn(ctx, q, k, dist);
    };
    if allowed.count() == 0 {
        return Ok(Neighbors::missing(q.rows(), k, order));
    }
    let excluded = rows.rows() - allowed.count();
    if excluded <= OVERFETCH_MAX && excluded <= allowed.count() {
        let fetched = rows.knn(ctx, q, (k + excluded).min(rows.rows()), dist)?;
        return Ok(keep(&fetched, k, |slot| allowed.contains(slot)));
    }
    let slots = allowed.slots();
    let sub = RowBlocks::from_device(rows.gather_device(ctx, &slots)?);
    let mut nn = sub.knn(ctx, q, k, dist)?;
    nn.map_ids(|i| slots[i as usize] as u64);
    Ok(nn)
}

/// The first `k` results of each row of `nn` whose id passes `pass`.
pub(crate) fn keep(nn: &Neighbors, k: usize, pass: impl Fn(usize) -> bool) -> Neighbors {
    let order = nn.order();
    let mut ids = vec![MISSING_ID; nn.rows() * k];
    let mut dist = vec![missing_value(order); nn.rows() * k];
    for r in 0..nn.rows() {
        let hits = nn
            .row_ids(r)
            .iter()
            .zip(nn.row_distances(r))
            .filter(|(&id, _)| id != MISSING_ID && pass(id as usize))
            .take(k);
        for (j, (&id, &d)) in hits.enumerate() {
            ids[r * k + j] = id;
            dist[r * k + j] = d;
        }
    }
    Neighbors::from_parts(nn.rows(), k, order, ids, dist).expect("rows * k results")
}

/// `nn` with slots replaced by the user ids of `map`.
pub(crate) fn user_ids(mut nn: Neighbors, map: &IdMap) -> Neighbors {
    nn.map_ids(|slot| map.id(slot as usize));
    nn
}

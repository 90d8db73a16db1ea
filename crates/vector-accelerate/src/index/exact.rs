//! Exact search over an index's stored rows with deletions and filters:
//! over-fetching when few rows are excluded, a search over the gathered
//! allowed rows otherwise, so a filtered search returns `k` results
//! whenever `k` allowed rows exist.

use rayon::prelude::*;

use super::coded::CodeSpace;
use super::ids::{IdMap, SlotSet};
use super::rows::RowBlocks;
use crate::core::error::Result;
use crate::core::metric::{Distance, Metric};
use crate::core::neighbors::{missing_value, sort_key, Neighbors, Order, MISSING_ID};
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
    if !map.is_numbered() {
        nn.map_ids(|slot| map.id(slot as usize));
    }
    nn
}

/// Re-scores each query's candidates (slots of `rows`, which hold the
/// vectors of `space`) exactly and keeps the best `k` (ties by the smaller
/// slot).
pub(crate) fn refine(
    ctx: &Context,
    (rows, space): (&RowBlocks, CodeSpace),
    q: &Input<'_>,
    cand: &Neighbors,
    (k, dist): (usize, &Distance),
) -> Result<Neighbors> {
    let raw = match rows.blocks() {
        // One block (an index filled by one add, or compacted): the
        // candidates' slots are its rows.
        [block] => ctx.backend().pair_distances(
            (q, &Input::Resident(block)),
            cand.ids(),
            cand.k(),
            space.base,
        )?,
        _ => gathered_distances(ctx, rows, q, cand, space.base)?,
    };
    let norms = q.cosine_lengths(dist.metric)?;
    Ok(best_of_raw(&raw, cand, norms.as_deref(), (k, dist)))
}

/// The best `k` of each query's candidates (`cand`'s ids) by their raw
/// values `raw` (squared L2 or inner product, one per candidate; `norms`:
/// the queries' lengths, for the cosine metrics), ties by the smaller id.
pub(crate) fn best_of_raw(
    raw: &[f32],
    cand: &Neighbors,
    norms: Option<&[f32]>,
    (k, dist): (usize, &Distance),
) -> Neighbors {
    let kc = cand.k();
    let row = |r: usize| {
        cand.row_ids(r)
            .iter()
            .zip(&raw[r * kc..(r + 1) * kc])
            .filter(|(&id, _)| id != MISSING_ID)
            .map(|(&id, &v)| (id, v))
    };
    best_of_rows(cand.rows(), row, norms, (k, dist))
}

/// The best `k` of each of `rows` queries' candidates, `row(r)` listing
/// query `r`'s as `(id, raw value)` ([`best_of_raw`]'s values and order),
/// in one pass over all cores.
fn best_of_rows<I: Iterator<Item = (u64, f32)>>(
    rows: usize,
    row: impl Fn(usize) -> I + Sync,
    norms: Option<&[f32]>,
    (k, dist): (usize, &Distance),
) -> Neighbors {
    let order = dist.metric.canonical().order();
    each_row((rows, k, order), Vec::new, |held, r, ids, dists| {
        let qn = norms.map_or(1.0, |n| n[r]);
        held.clear();
        held.extend(row(r).map(|(id, v)| {
            let d = finish(dist.metric, v, qn);
            (sort_key(d, order), id, d)
        }));
        write_best(held, ids, dists);
    })
}

/// [`best_of_rows`] of candidates each query lists ranked already (best
/// first, ties by the smaller id, as a graph walk returns them): the first
/// `k` finished in place, without sorting.
pub(crate) fn ranked_rows<I: Iterator<Item = (u64, f32)>>(
    rows: usize,
    row: impl Fn(usize) -> I + Sync,
    norms: Option<&[f32]>,
    (k, dist): (usize, &Distance),
) -> Neighbors {
    let order = dist.metric.canonical().order();
    each_row(
        (rows, k, order),
        || (),
        |_, r, ids, dists| {
            let qn = norms.map_or(1.0, |n| n[r]);
            for ((i, v), (id, raw)) in ids.iter_mut().zip(dists.iter_mut()).zip(row(r)) {
                *i = id;
                *v = finish(dist.metric, raw, qn);
            }
        },
    )
}

/// `rows x k` results (missing where `fill` leaves them) that `fill`
/// writes a query at a time, over all cores (with a state from `init` per
/// piece of work) unless there are only a few queries.
fn each_row<S>(
    (rows, k, order): (usize, usize, Order),
    init: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, usize, &mut [u64], &mut [f32]) + Sync + Send,
) -> Neighbors {
    let mut out = Neighbors::missing(rows, k, order);
    if k == 0 {
        return out;
    }
    let (ids, dists) = out.parts_mut();
    let pairs = ids.chunks_mut(k).zip(dists.chunks_mut(k));
    if rows < PARALLEL_ROWS_FROM {
        // A few queries (one, at batch 1) take less than waking the pool.
        let mut state = init();
        pairs
            .enumerate()
            .for_each(|(r, (i, d))| fill(&mut state, r, i, d));
    } else {
        ids.par_chunks_mut(k)
            .zip(dists.par_chunks_mut(k))
            .enumerate()
            .with_min_len(PARALLEL_ROWS_FROM)
            .for_each_init(init, |state, (r, (i, d))| fill(state, r, i, d));
    }
    out
}

/// Queries from which [`each_row`] spreads over the cores, and its least
/// piece of work.
const PARALLEL_ROWS_FROM: usize = 64;

/// The best of `row` (`(sort key, id, value)`), ties by the smaller id,
/// written into `ids` and `dists` (as many as they hold).
pub(crate) fn write_best(row: &mut [(u32, u64, f32)], ids: &mut [u64], dists: &mut [f32]) {
    row.sort_unstable_by_key(|&(key, id, _)| (key, id));
    for ((&(_, id, d), i), v) in row.iter().zip(ids).zip(dists) {
        *i = id;
        *v = d;
    }
}

/// [`refine`]'s raw distances over rows held in several blocks: the
/// candidates' rows gathered into one first.
fn gathered_distances(
    ctx: &Context,
    rows: &RowBlocks,
    q: &Input<'_>,
    cand: &Neighbors,
    base: Metric,
) -> Result<Vec<f32>> {
    let mut slots: Vec<usize> = cand
        .ids()
        .iter()
        .filter(|&&i| i != MISSING_ID)
        .map(|&i| i as usize)
        .collect();
    slots.par_sort_unstable();
    slots.dedup();
    if slots.is_empty() {
        return Ok(vec![f32::NAN; cand.ids().len()]);
    }
    let sub = rows.gather_device(ctx, &slots)?;
    let local: Vec<u64> = cand
        .ids()
        .par_iter()
        .map(|&i| match i {
            MISSING_ID => MISSING_ID,
            i => slots.binary_search(&(i as usize)).expect("gathered") as u64,
        })
        .collect();
    ctx.backend()
        .pair_distances((q, &Input::Resident(&sub)), &local, cand.k(), base)
}

/// The metric's value from a squared L2 distance or an inner product with
/// a unit vector (`qn`: the query's length, for the cosine metrics).
fn finish(metric: Metric, raw: f32, qn: f32) -> f32 {
    match metric {
        Metric::Euclidean => raw.max(0.0).sqrt(),
        Metric::Cosine | Metric::CosineSimilarity => {
            let c = if qn > 0.0 {
                (raw / qn).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            if metric == Metric::Cosine {
                1.0 - c
            } else {
                c
            }
        }
        _ => raw,
    }
}

//! Batch sizes for a search cut into batches of queries: small enough that
//! a progress bar advances, large enough that the fixed cost of each call
//! (a pass over the whole base) stays a small share of the run.
//!
//! The first batch holds `nq / 100` queries (at least 64, or all when
//! fewer), the second twice as many; their times separate the fixed cost
//! of a call from the cost per query, and later batches are sized so that
//! the fixed cost is at most 5% of a batch, which also lasts at least
//! 0.1 s. No batch holds more than 4096 queries.

use std::time::Instant;

use anyhow::{Context as _, Result};
use vector_accelerate::{Neighbors, MISSING_ID};

use crate::io::source::try_alloc;
use crate::progress::Progress;

/// A run is cut into at most about this many batches.
const TARGET_BATCHES: usize = 100;
/// The smallest batch (unless there are fewer queries).
const MIN_BATCH: usize = 64;
/// The largest batch.
const MAX_BATCH: usize = 4096;
/// The largest share of a batch's time the fixed cost of a call may take.
const MAX_FIXED_SHARE: f64 = 0.05;
/// The shortest time a batch should take.
const MIN_BATCH_SECONDS: f64 = 0.1;

/// Chooses the size of each batch from the times of the previous ones.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    smallest: usize,
    next: usize,
    /// Size and seconds of the previous batch.
    last: Option<(usize, f64)>,
}

impl BatchSizer {
    /// Sizes for a run of `queries` queries.
    pub fn new(queries: usize) -> Self {
        let smallest = queries
            .div_ceil(TARGET_BATCHES)
            .clamp(MIN_BATCH.min(queries).max(1), MAX_BATCH);
        Self {
            smallest,
            next: smallest,
            last: None,
        }
    }

    /// The size of the next batch.
    pub fn next(&self) -> usize {
        self.next
    }

    /// Records that a batch of `size` queries took `seconds`.
    pub fn record(&mut self, size: usize, seconds: f64) {
        let seconds = seconds.max(1e-9);
        let wanted = match self.last {
            // A second size separates the fixed cost from the per-query cost.
            None => size.saturating_mul(2),
            Some((prev, prev_seconds)) if prev != size => {
                let slope = (seconds - prev_seconds) / (size as f64 - prev as f64);
                // A slope at or below zero means the fixed cost dominates.
                let per_query = slope.max(seconds / size as f64 * 1e-3);
                let fixed = (seconds - per_query * size as f64).max(0.0);
                let for_fixed = fixed * (1.0 - MAX_FIXED_SHARE) / MAX_FIXED_SHARE / per_query;
                let for_time = MIN_BATCH_SECONDS / per_query;
                for_fixed.max(for_time).min(MAX_BATCH as f64) as usize
            }
            Some(_) => self.next,
        };
        self.next = wanted.clamp(self.smallest, MAX_BATCH);
        self.last = Some((size, seconds));
    }
}

/// Runs a k-NN search of `nq` queries in batches (sized by
/// [`BatchSizer`]), advancing a progress bar: `search(start, end)` returns
/// the results of queries `start..end`. Returns ids as the int64 outputs
/// store them (`-1` where missing) and distances, row-major `[nq x k]`.
pub fn search_in_batches(
    nq: usize,
    k: usize,
    show_progress: bool,
    mut search: impl FnMut(usize, usize) -> Result<Neighbors>,
) -> Result<(Vec<i64>, Vec<f32>)> {
    let total = nq
        .checked_mul(k)
        .with_context(|| format!("{nq} queries x k={k} results is too large"))?;
    let mut ids = try_alloc::<i64>(total)?;
    let mut dists = try_alloc::<f32>(total)?;

    let mut sizer = BatchSizer::new(nq);
    let progress = Progress::new(nq as u64, "queries", show_progress);
    let mut start = 0;
    while start < nq {
        let end = (start + sizer.next()).min(nq);
        let t = Instant::now();
        let hits = search(start, end)?;
        sizer.record(end - start, t.elapsed().as_secs_f64());
        let (batch_ids, batch_dists) = hits.into_parts();
        for id in batch_ids {
            ids.push(output_id(id)?);
        }
        dists.extend_from_slice(&batch_dists);
        progress.inc((end - start) as u64);
        start = end;
    }
    Ok((ids, dists))
}

/// A result id as the int64 outputs store it: -1 for a missing result.
fn output_id(id: u64) -> Result<i64> {
    if id == MISSING_ID {
        return Ok(-1);
    }
    i64::try_from(id).map_err(|_| anyhow::anyhow!("id {id} does not fit the int64 ids output"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch sizes chosen for a device whose call takes `fixed + per * size`.
    fn sizes(queries: usize, fixed: f64, per: f64) -> Vec<usize> {
        let mut s = BatchSizer::new(queries);
        let mut out = Vec::new();
        let mut done = 0;
        while done < queries {
            let n = s.next().min(queries - done);
            out.push(n);
            s.record(n, fixed + per * n as f64);
            done += n;
        }
        out
    }

    #[test]
    fn small_runs_take_one_batch() {
        assert_eq!(sizes(20, 0.08, 0.003), vec![20]);
        assert_eq!(sizes(1, 0.0, 0.0), vec![1]);
    }

    #[test]
    fn a_large_fixed_cost_gives_large_batches() {
        // A CPU pass over a large base: 84 ms per call, 3.3 ms per query.
        let s = sizes(10_000, 0.084, 0.0033);
        assert_eq!(&s[..2], &[100, 200]);
        assert!(s[2] >= 450 && s[2] <= 500, "{s:?}");
        // A streamed base: one second per call.
        assert_eq!(sizes(100_000, 1.0, 1e-4)[2], 4096);
    }

    #[test]
    fn batches_are_capped_and_grow_to_a_tenth_of_a_second() {
        let s = sizes(1_000_000, 0.0, 1e-3);
        assert_eq!(s[0], 4096);
        assert!(s.iter().all(|&n| n == 4096 || n == 1_000_000 % 4096));
        let s = sizes(10_000, 0.0, 1e-5);
        assert_eq!(&s[..3], &[100, 200, 4096]);
    }
}

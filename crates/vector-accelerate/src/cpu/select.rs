//! CPU top-k selection: a threshold-filtered buffer per row, compacted with
//! `select_nth_unstable` when full, sorted once at the end.

use rayon::prelude::*;

use crate::core::error::Result;
use crate::core::matrix::MatrixView;
use crate::core::neighbors::{missing_value, sort_key, Neighbors, Order, MISSING_ID};
use crate::cpu::host::host_f32;
use crate::runtime::backend::{Cpu, SelectBackend, TopKState};
use crate::runtime::input::Input;

/// Running best-`k` of one row under the total order `(key, id)`.
#[derive(Debug, Clone)]
pub(crate) struct TopKBuffer {
    k: usize,
    cap: usize,
    order: Order,
    buf: Vec<(u32, u64, f32)>,
    /// The k-th best `(key, id)` seen so far once `k` candidates were kept.
    worst: Option<(u32, u64)>,
    /// The value of `worst` (a value strictly worse than it is rejected at once).
    worst_value: f32,
}

impl TopKBuffer {
    pub(crate) fn new(k: usize, order: Order) -> Self {
        Self::with_slack(k, order, 256)
    }

    /// A buffer that compacts once `max(k, slack)` candidates beyond `k`
    /// are waiting: a small slack tightens the rejection threshold sooner
    /// (k-NN tiles, where most candidates are rejected), a large one makes
    /// compactions rarer (long rows offered element by element).
    pub(crate) fn with_slack(k: usize, order: Order, slack: usize) -> Self {
        let cap = (2 * k).max(k + slack);
        Self {
            k,
            cap,
            order,
            buf: Vec::with_capacity(cap.min(1 << 16)),
            worst: None,
            worst_value: f32::NAN,
        }
    }

    /// The value of the k-th best candidate at the last compaction (NaN
    /// before the first one): a value strictly worse cannot enter.
    #[inline]
    pub(crate) fn worst_value(&self) -> f32 {
        self.worst_value
    }

    /// Offers one candidate.
    #[inline]
    pub(crate) fn push(&mut self, value: f32, id: u64) {
        // Fast rejection on the value alone (NaN falls through to the keys).
        let worse = match self.order {
            Order::Smallest => value > self.worst_value,
            Order::Largest => value < self.worst_value,
        };
        if worse || id == MISSING_ID {
            return;
        }
        let key = sort_key(value, self.order);
        if let Some(w) = self.worst {
            if (key, id) >= w {
                return;
            }
        }
        self.buf.push((key, id, value));
        if self.buf.len() >= self.cap {
            self.compact();
        }
    }

    /// Offers `values[j]` with id `first_id + j` for every `j`. Blocks of
    /// 16 whose best value is already worse than the k-th kept one are
    /// skipped after one vectorised min / max (NaN never enters a full buffer
    /// unless the k-th kept value is NaN, when nothing is skipped).
    #[inline]
    pub(crate) fn push_row(&mut self, values: &[f32], first_id: u64) {
        const B: usize = 16;
        let mut id = first_id;
        for block in values.chunks(B) {
            let skip = match self.order {
                Order::Smallest => {
                    block
                        .iter()
                        .fold(f32::INFINITY, |m, &v| if v < m { v } else { m })
                        > self.worst_value
                }
                Order::Largest => {
                    block
                        .iter()
                        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
                        < self.worst_value
                }
            };
            if !skip {
                for (j, &v) in block.iter().enumerate() {
                    self.push(v, id + j as u64);
                }
            }
            id += block.len() as u64;
        }
    }

    fn compact(&mut self) {
        if self.buf.len() > self.k {
            self.buf
                .select_nth_unstable_by(self.k - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            self.buf.truncate(self.k);
            let w = self
                .buf
                .iter()
                .map(|e| (e.0, e.1, e.2))
                .max_by_key(|e| (e.0, e.1))
                .unwrap();
            self.worst = Some((w.0, w.1));
            self.worst_value = w.2;
        }
    }

    /// Sorted best-first results, padded to `k` with missing markers.
    pub(crate) fn finish_into(mut self, ids: &mut [u64], dists: &mut [f32]) {
        self.compact();
        self.buf.sort_unstable_by_key(|a| (a.0, a.1));
        let miss = missing_value(self.order);
        for i in 0..self.k {
            match self.buf.get(i) {
                Some(&(_, id, v)) => {
                    ids[i] = id;
                    dists[i] = v;
                }
                None => {
                    ids[i] = MISSING_ID;
                    dists[i] = miss;
                }
            }
        }
    }
}

/// Row-wise top-k of a row-major `[rows x n]` matrix; ids are column indices.
pub(crate) fn topk_rows(values: &[f32], n: usize, k: usize, order: Order) -> Neighbors {
    let rows = values.len() / n;
    let mut out = Neighbors::missing(rows, k, order);
    let (ids, dists) = out.parts_mut();
    ids.par_chunks_mut(k)
        .zip(dists.par_chunks_mut(k))
        .enumerate()
        .for_each(|(r, (ids, dists))| {
            let mut t = TopKBuffer::new(k, order);
            for (c, &v) in values[r * n..(r + 1) * n].iter().enumerate() {
                t.push(v, c as u64);
            }
            t.finish_into(ids, dists);
        });
    out
}

/// Merges partial lists row by row (the caller validated shapes and orders).
pub(crate) fn merge(lists: &[&Neighbors], k: usize, order: Order) -> Neighbors {
    let rows = lists[0].rows();
    let mut out = Neighbors::missing(rows, k, order);
    let (ids, dists) = out.parts_mut();
    ids.par_chunks_mut(k)
        .zip(dists.par_chunks_mut(k))
        .enumerate()
        .for_each(|(r, (ids, dists))| {
            let mut t = TopKBuffer::new(k, order);
            for l in lists {
                for (&id, &d) in l.row_ids(r).iter().zip(l.row_distances(r)) {
                    t.push(d, id);
                }
            }
            t.finish_into(ids, dists);
        });
    out
}

/// Streaming top-k on the host: one running buffer per row.
struct RowBuffers {
    bufs: Vec<TopKBuffer>,
    k: usize,
    order: Order,
}

impl TopKState for RowBuffers {
    fn push(&mut self, values: MatrixView<'_>, ids: &[u64]) -> Result<()> {
        let n = values.dim();
        self.bufs.par_iter_mut().enumerate().for_each(|(r, b)| {
            for (&v, &id) in values.as_slice()[r * n..(r + 1) * n].iter().zip(ids) {
                b.push(v, id);
            }
        });
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Neighbors> {
        let (rows, k) = (self.bufs.len(), self.k);
        let mut out = Neighbors::missing(rows, k, self.order);
        let (ids, dists) = out.parts_mut();
        for (r, b) in self.bufs.into_iter().enumerate() {
            b.finish_into(&mut ids[r * k..(r + 1) * k], &mut dists[r * k..(r + 1) * k]);
        }
        Ok(out)
    }
}

impl SelectBackend for Cpu {
    fn topk(&self, values: &Input<'_>, k: usize, order: Order) -> Result<Neighbors> {
        let m = host_f32(values)?;
        Ok(topk_rows(m.as_slice(), m.dim(), k, order))
    }

    fn merge(&self, lists: &[Neighbors], k: usize, order: Order) -> Result<Neighbors> {
        Ok(merge(&lists.iter().collect::<Vec<_>>(), k, order))
    }

    fn streaming_topk(&self, rows: usize, k: usize, order: Order) -> Result<Box<dyn TopKState>> {
        let bufs = (0..rows).map(|_| TopKBuffer::new(k, order)).collect();
        Ok(Box::new(RowBuffers { bufs, k, order }))
    }
}

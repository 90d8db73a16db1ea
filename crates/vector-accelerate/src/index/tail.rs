//! Rows added to an IVF index since its lists were packed. Packing copies
//! every list, so instead of repacking for each small add, the new rows
//! wait in a tail beside the packed lists: a search scans the packed lists,
//! then the tail rows of each query's probed lists, and keeps the best of
//! both. The tail is packed with the lists once it passes a share of them.

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use super::coded::CodeSpace;
use super::exact::{best_of_raw, write_best};
use super::ids::SlotSet;
use crate::core::error::Result;
use crate::core::matrix::MatrixView;
use crate::core::metric::Distance;
use crate::core::neighbors::{sort_key, Neighbors, MISSING_ID};
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// Tail rows at most before a repack, below [`TAIL_SHARE`].
const TAIL_MIN_ROWS: usize = 1024;
/// The tail is packed once it holds more than `1 / TAIL_SHARE` of the
/// packed rows (so repacks cost at most that share of the adds' copies).
const TAIL_SHARE: usize = 64;
/// (query, candidate) pairs scored in one backend call at most.
const PAIRS_PER_CALL: usize = 1 << 24;
/// Marks a probe that names no list.
const NO_LIST: u32 = u32::MAX;

/// Rows that arrived after the lists were packed, in slot order.
#[derive(Debug)]
pub(crate) struct Tail {
    /// Slot of the first row (the rows hold consecutive slots).
    first: usize,
    /// The rows as the scan compares them: prepared for `space` (unit
    /// length for the cosine metrics), or reconstructed from their codes.
    rows: Vec<f32>,
    /// The list of each row.
    lists: Vec<u32>,
    dim: usize,
    space: CodeSpace,
    /// The rows on a CUDA device, made by the first search that needs them.
    placed: Mutex<Option<Arc<DeviceMatrix>>>,
    /// Row positions ordered by list, made by the first search after a push.
    by_list: OnceLock<Vec<u32>>,
}

impl Clone for Tail {
    fn clone(&self) -> Self {
        Self {
            first: self.first,
            rows: self.rows.clone(),
            lists: self.lists.clone(),
            dim: self.dim,
            space: self.space,
            placed: Mutex::new(None),
            by_list: self.by_list.clone(),
        }
    }
}

impl Tail {
    /// An empty tail whose first row will hold slot `first`.
    pub fn new(first: usize, dim: usize, space: CodeSpace) -> Self {
        Self {
            first,
            rows: Vec::new(),
            lists: Vec::new(),
            dim,
            space,
            placed: Mutex::new(None),
            by_list: OnceLock::new(),
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Slot of the first row.
    pub fn first(&self) -> usize {
        self.first
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.rows.len() * 4 + self.lists.len() * 4
    }

    /// Whether `more` rows starting at slot `first` can join a tail beside
    /// `packed` packed rows (else the lists are repacked).
    pub fn takes(&self, first: usize, more: usize, packed: usize) -> bool {
        first == self.first + self.len()
            && self.len() + more <= TAIL_MIN_ROWS.max(packed / TAIL_SHARE)
    }

    /// Appends `rows` (as the scan compares them, before [`CodeSpace::prepare`])
    /// of lists `lists`.
    pub fn push(&mut self, rows: MatrixView<'_>, lists: &[usize]) {
        self.rows
            .extend_from_slice(self.space.prepare(rows).as_slice());
        self.lists.extend(lists.iter().map(|&l| l as u32));
        *self.placed.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        self.by_list = OnceLock::new();
    }

    /// The rows as a backend input: the host rows on the CPU, a device copy
    /// on CUDA.
    fn input<'a>(
        &'a self,
        ctx: &Context,
        hold: &'a mut Option<Arc<DeviceMatrix>>,
    ) -> Result<Input<'a>> {
        let view = MatrixView::new(&self.rows, self.dim)?;
        if !ctx.is_cuda() {
            return Ok(Input::F32(view));
        }
        let mut placed = self.placed.lock().unwrap_or_else(|e| e.into_inner());
        if placed.is_none() {
            *placed = Some(Arc::new(DeviceMatrix::upload(ctx, Input::F32(view))?));
        }
        *hold = placed.clone();
        Ok(Input::Resident(hold.as_deref().expect("placed above")))
    }

    /// The rows at tail positions `at`, on the context's device.
    pub fn gather_device(&self, ctx: &Context, at: &[u64]) -> Result<DeviceMatrix> {
        let mut hold = None;
        let rows = self.input(ctx, &mut hold)?;
        ctx.backend().gather_rows(&rows, at)
    }

    /// The `k` best allowed tail rows of each query among its probed lists
    /// (`probes`: `nprobe` lists per query, [`NO_LIST`] for none), by slot.
    pub fn search(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        (probes, nprobe): (&[u32], usize),
        k: usize,
        dist: &Distance,
        allowed: Option<&SlotSet>,
    ) -> Result<Neighbors> {
        let nq = q.rows();
        let cand = self.candidates(probes, nprobe, allowed);
        let widest = cand.iter().map(Vec::len).max().unwrap_or(0);
        let order = dist.metric.canonical().order();
        if widest == 0 {
            return Ok(Neighbors::missing(nq, k, order));
        }
        let mut hold = None;
        let rows = self.input(ctx, &mut hold)?;
        let chunk = (PAIRS_PER_CALL / widest).clamp(1, nq);
        let mut out: Option<Neighbors> = None;
        let mut host = None;
        for q0 in (0..nq).step_by(chunk) {
            let q1 = (q0 + chunk).min(nq);
            let part = if chunk >= nq {
                *q
            } else {
                Input::F32(q.host_view(&mut host)?.slice_rows(q0, q1))
            };
            let nn = self.score(ctx, (&part, &rows), &cand[q0..q1], widest, (k, dist))?;
            match out.as_mut() {
                Some(o) => o.append_rows(nn),
                None => out = Some(nn),
            }
        }
        let mut nn = out.expect("at least one query");
        let first = self.first as u64;
        nn.map_ids(|j| first + j);
        Ok(nn)
    }

    /// Each query's tail rows (positions) in its probed lists that
    /// `allowed` passes.
    fn candidates(
        &self,
        probes: &[u32],
        nprobe: usize,
        allowed: Option<&SlotSet>,
    ) -> Vec<Vec<u64>> {
        // Positions grouped by list, to find a list's rows by bisection.
        let lists = &self.lists;
        let by_list = self.by_list.get_or_init(|| {
            let mut order: Vec<u32> = (0..self.len() as u32).collect();
            order.sort_unstable_by_key(|&j| (lists[j as usize], j));
            order
        });
        probes
            .par_chunks(nprobe.max(1))
            .map(|ls| {
                let mut c = Vec::new();
                for &l in ls.iter().filter(|&&l| l != NO_LIST) {
                    let lo = by_list.partition_point(|&j| lists[j as usize] < l);
                    let hi = by_list.partition_point(|&j| lists[j as usize] <= l);
                    let pass =
                        |j: &u64| allowed.is_none_or(|a| a.contains(self.first + *j as usize));
                    c.extend(by_list[lo..hi].iter().map(|&j| j as u64).filter(pass));
                }
                c
            })
            .collect()
    }

    /// The best `k` of each query's candidates, by tail position.
    fn score(
        &self,
        ctx: &Context,
        (q, rows): (&Input<'_>, &Input<'_>),
        cand: &[Vec<u64>],
        widest: usize,
        (k, dist): (usize, &Distance),
    ) -> Result<Neighbors> {
        let mut ids = vec![MISSING_ID; cand.len() * widest];
        for (r, c) in cand.iter().enumerate() {
            ids[r * widest..r * widest + c.len()].copy_from_slice(c);
        }
        let raw = ctx
            .backend()
            .pair_distances((q, rows), &ids, widest, self.space.base)?;
        let order = dist.metric.canonical().order();
        let zeros = vec![0.0; ids.len()];
        let cand = Neighbors::from_parts(cand.len(), widest, order, ids, zeros)?;
        let norms = q.cosine_lengths(dist.metric)?;
        Ok(best_of_raw(&raw, &cand, norms.as_deref(), (k, dist)))
    }
}

/// The best `k` of each row of `a` and `b` (the same queries), ties by the
/// smaller id.
pub(crate) fn merge_best(a: &Neighbors, b: &Neighbors, k: usize) -> Neighbors {
    let order = a.order();
    let mut out = Neighbors::missing(a.rows(), k, order);
    let (ids, dists) = out.parts_mut();
    ids.par_chunks_mut(k)
        .zip(dists.par_chunks_mut(k))
        .enumerate()
        .for_each(|(r, (ids, dists))| {
            let mut row: Vec<_> = [a, b]
                .iter()
                .flat_map(|n| n.row_ids(r).iter().zip(n.row_distances(r)))
                .filter(|(&id, _)| id != MISSING_ID)
                .map(|(&id, &d)| (sort_key(d, order), id, d))
                .collect();
            write_best(&mut row, ids, dists);
        });
    out
}

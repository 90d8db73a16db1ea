//! The host's graph walk: every query on its own core, down the graph's
//! levels, best-first with a sorted list of `ef` candidates (FAISS's
//! `efSearch`) and a second list of the `k` best allowed nodes.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::core::error::Result;
use crate::runtime::backend::{Cpu, GraphBackend, GraphLevel, GraphWalkJob, Walked};

/// Marks an empty neighbour slot and a missing result.
const NO_NODE: u32 = u32::MAX;
/// Entry points of a top level without per-query starts: about the square
/// root of its nodes (spread over them, fixed per query), within these
/// bounds, so that clusters the graph does not link still get an entry.
/// The CUDA walk (`kernels/graph.cu`) picks the same nodes.
const ENTRIES: (usize, usize) = (16, 256);

impl GraphBackend for Cpu {
    fn graph_walk(&self, job: GraphWalkJob<'_>) -> Result<Option<Walked>> {
        let nq = job.queries.rows();
        let width = job.k.min(job.levels[0].rows.rows());
        let found: Vec<Vec<(f32, u32)>> = (0..nq).into_par_iter().map(|r| walk(&job, r)).collect();
        let mut nodes = vec![NO_NODE; nq * width];
        let mut values = vec![f32::NAN; nq * width];
        for (r, f) in found.iter().enumerate() {
            for (j, &(v, node)) in f.iter().enumerate() {
                nodes[r * width + j] = node;
                values[r * width + j] = v;
            }
        }
        Ok(Some(Walked {
            width,
            nodes,
            values,
        }))
    }
}

/// Query `qi`'s best `k` allowed bottom nodes, `(raw value, node)`: each
/// level walked from the best nodes of the level above (the top one
/// from spread nodes), and from the level's part starts.
fn walk(job: &GraphWalkJob<'_>, qi: usize) -> Vec<(f32, u32)> {
    let q = job.queries.row(qi);
    let top = job.levels.len() - 1;
    let mut starts: Vec<u32> = entries(job.levels[top].rows.rows(), qi).collect();
    let ip = job.inner_product;
    let up = job.upper_ef();
    for level in job.levels[1..].iter().rev() {
        let found = walk_level(level, q, &starts, (up, up), None, ip);
        let below = level.below.expect("an upper level maps its nodes");
        starts = found.iter().map(|&(_, x)| below[x as usize]).collect();
    }
    walk_level(&job.levels[0], q, &starts, (job.k, job.ef), job.allowed, ip)
}

/// One level's best `k` allowed nodes of `q`: `(raw value, node)`.
fn walk_level(
    level: &GraphLevel<'_>,
    q: &[f32],
    starts: &[u32],
    (k, ef): (usize, usize),
    allowed: Option<&[u64]>,
    ip: bool,
) -> Vec<(f32, u32)> {
    let n = level.rows.rows();
    if n == 0 || k == 0 {
        return Vec::new();
    }
    // Smaller keys are better: L2, or the negated inner product.
    let key = |node: u32| {
        let x = level.rows.row(node as usize);
        if ip {
            -dot(q, x)
        } else {
            l2(q, x)
        }
    };
    let ok = |node: u32| allowed.is_none_or(|a| a[node as usize / 64] >> (node % 64) & 1 == 1);
    VISITED.with(|v| {
        let mut seen = v.borrow_mut();
        seen.begin(n);
        // Candidates, best first: (key, node, expanded).
        let mut list: Vec<(f32, u32, bool)> = Vec::with_capacity(ef + 1);
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        let mut visit =
            |node: u32, list: &mut Vec<(f32, u32, bool)>, best: &mut Vec<(f32, u32)>| {
                if !seen.insert(node) {
                    return;
                }
                let d = key(node);
                if ok(node) {
                    insert_bounded(best, (d, node), k, |e| (e.0, e.1));
                }
                insert_bounded(list, (d, node, false), ef, |e| (e.0, e.1));
            };
        for &e in starts.iter().chain(level.parts) {
            visit(e, &mut list, &mut best);
        }
        let d = level.degree;
        while let Some(at) = list.iter().position(|e| !e.2) {
            list[at].2 = true;
            let node = list[at].1 as usize;
            for &nb in &level.links[node * d..(node + 1) * d] {
                if nb != NO_NODE {
                    visit(nb, &mut list, &mut best);
                }
            }
        }
        best.into_iter()
            .map(|(d, node)| (if ip { -d } else { d }, node))
            .collect()
    })
}

/// Distinct nodes spread over `0..n` ([`ENTRIES`]), fixed per query.
fn entries(n: usize, qi: usize) -> impl Iterator<Item = u32> {
    let root = (n as f64).sqrt() as usize / 2;
    let count = n.min(root.clamp(ENTRIES.0, ENTRIES.1));
    let step = n / count.max(1);
    let shift = ((qi as u64).wrapping_mul(0x9E37_79B9) >> 7) % step.max(1) as u64;
    (0..count).map(move |i| (i * step) as u32 + shift as u32)
}

/// Inserts `e` into `v` (sorted by `key`, at most `cap` entries).
fn insert_bounded<T, K: PartialOrd>(v: &mut Vec<T>, e: T, cap: usize, key: impl Fn(&T) -> K) {
    let ke = key(&e);
    if v.len() == cap && v.last().is_some_and(|w| key(w) <= ke) {
        return;
    }
    let at = v.partition_point(|w| key(w) <= ke);
    v.insert(at, e);
    v.truncate(cap);
}

/// Visited marks reused across the walks of one thread.
#[derive(Default)]
struct Visited {
    stamp: Vec<u32>,
    now: u32,
}

impl Visited {
    /// Starts a walk over `n` nodes with nothing visited.
    fn begin(&mut self, n: usize) {
        if self.stamp.len() < n || self.now == u32::MAX {
            self.stamp = vec![0; n.max(self.stamp.len())];
            self.now = 0;
        }
        self.now += 1;
    }
    /// Marks `node`; whether it was new.
    fn insert(&mut self, node: u32) -> bool {
        let s = &mut self.stamp[node as usize];
        let new = *s != self.now;
        *s = self.now;
        new
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

/// Inner product, eight lanes at a time. (The walk's own: `cpu::distance`'s
/// lane sum took the walk from 23k to 15k q/s on 100k x 128.)
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Squared L2 distance, eight lanes at a time.
fn l2(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let e = x[l] - y[l];
            acc[l] += e * e;
        }
    }
    acc.iter().sum::<f32>() + tail
}

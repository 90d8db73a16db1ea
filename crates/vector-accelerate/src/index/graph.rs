//! Graph indexes (`"Graph32"`): a fixed-degree proximity graph over the
//! vectors, built as the CAGRA paper describes (a k-nearest-neighbour graph
//! of twice the degree from the exact k-NN, pruned by detour counts, then
//! merged with its reverse edges), and searched best-first with a
//! candidate list of `ef` entries (FAISS's `efSearch`) from the entry
//! points an upper level (the same kind of graph over every 16th node, as
//! HNSW's layers) finds.
//!
//! The graph is built with the context's k-NN (CUDA when the context is)
//! and walked by the context's backend (`GraphBackend`: a block per query
//! on CUDA, a core per query on the host) over the same levels.

use std::sync::Arc;

use rayon::prelude::*;

use super::coded::CodeSpace;
use super::exact::ranked_rows;
use super::ids::SlotSet;
use super::progress::{BuildStage, Reporter};
use super::rows::RowBlocks;
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::{Distance, Metric};
use crate::core::neighbors::{Neighbors, MISSING_ID};
use crate::core::precision::{Precision, WalkPrecision};
use crate::core::trace;
use crate::ops::knn::{knn_with, KnnOptions};
use crate::runtime::backend::{BackendCache, Cpu, GraphBackend, GraphLevel, GraphWalkJob, Walked};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Marks an empty place in a node's neighbour list.
pub(crate) const NO_NODE: u32 = u32::MAX;
/// Candidate list size of a search when none is asked for (at least `k`).
pub(crate) const DEFAULT_EF: usize = 64;
/// Starts of parts of the graph the links do not join, at most: a k-NN
/// graph of well separated clusters falls apart into one part per
/// cluster, and a part without an entry cannot be found.
const PARTS_MAX: usize = 4096;

/// A proximity graph: `degree` neighbours per node, [`NO_NODE`] padded,
/// over rows prepared for the graph's [`CodeSpace`].
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    degree: usize,
    /// `nodes x degree` neighbour slots.
    links: Vec<u32>,
    /// The rows as the search compares them (unit length for the cosine
    /// metrics).
    rows: Matrix,
    space: CodeSpace,
    /// Nodes from which the links reach every node (see [`part_starts`]):
    /// every search starts from these too, so a part of the graph no link
    /// reaches (a cluster far from the rest) is still searched. A graph
    /// with an upper level keeps them there instead (and here only the
    /// added nodes no link reaches).
    parts: Vec<u32>,
    /// A graph over a sample of the nodes, searched first for entry points.
    upper: Option<Box<Upper>>,
    /// What the context's backend keeps of the graph (its device copy).
    cache: Arc<BackendCache>,
}

/// An upper level: a graph over some nodes of the level below.
#[derive(Debug, Clone)]
struct Upper {
    graph: Graph,
    /// The node below of each node of `graph`.
    nodes: Vec<u32>,
}

/// Nodes above which a graph gets an upper level.
const UPPER_FROM: usize = 4096;
/// Every this many nodes of a level make the level above.
const UPPER_STEP: usize = 16;

impl Graph {
    /// The graph over `rows` (`space` prepares them) with `degree`
    /// neighbours per node; the neighbour lists come from `ctx`'s k-NN.
    /// `report` hears of the stages.
    pub fn build(
        ctx: &Context,
        rows: MatrixView<'_>,
        degree: usize,
        dist: &Distance,
        report: Reporter<'_>,
    ) -> Result<Self> {
        let space = graph_space(dist)?;
        Self::over(ctx, space.prepare(rows), (degree, space), report)
    }

    /// The graph over prepared `rows`, with its upper levels.
    fn over(
        ctx: &Context,
        rows: Matrix,
        (degree, space): (usize, CodeSpace),
        report: Reporter<'_>,
    ) -> Result<Self> {
        let n = rows.rows();
        check_nodes(n)?;
        let _trace = trace::begin("graph.build");
        let wide = (2 * degree).min(n.saturating_sub(1));
        let knn = if wide == 0 {
            Vec::new()
        } else {
            neighbour_lists(ctx, &rows, wide, space, report)?
        };
        trace::mark("knn", || ());
        report.at(BuildStage::Pruning, 0, n);
        let pruned = match ctx.backend().graph_prune(&knn, n, wide, degree)? {
            Some(pruned) => pruned,
            None => prune(&knn, n, (wide, degree)),
        };
        trace::mark("prune", || ());
        report.at(BuildStage::ReverseEdges, 0, n);
        let links = with_reverse(&pruned, n, degree);
        trace::mark("reverse", || ());
        report.at(BuildStage::ReverseEdges, n, n);
        Self::with_links(ctx, rows, links, (degree, space), report)
    }

    /// A graph from stored parts (checked: every link names a node); its
    /// upper levels are built again.
    pub fn from_parts(
        ctx: &Context,
        rows: Matrix,
        links: Vec<u32>,
        (degree, dist): (usize, &Distance),
    ) -> Result<Self> {
        let space = graph_space(dist)?;
        let rows = space.prepare(rows.view());
        let n = rows.rows();
        let bad = links.iter().find(|&&l| l != NO_NODE && l as usize >= n);
        if links.len() != n * degree || bad.is_some() {
            return Err(Error::invalid(
                "graph links",
                format!("{} links, first bad {:?}", links.len(), bad),
                format!("expected {n} x {degree} links naming nodes below {n}"),
            ));
        }
        Self::with_links(ctx, rows, links, (degree, space), Reporter::NONE)
    }

    /// The graph of `links` over prepared `rows`: its part starts and, over
    /// [`UPPER_FROM`] nodes, a graph over every [`UPPER_STEP`]th node to
    /// find a search's entry points (as HNSW's upper layers do).
    fn with_links(
        ctx: &Context,
        rows: Matrix,
        links: Vec<u32>,
        (degree, space): (usize, CodeSpace),
        report: Reporter<'_>,
    ) -> Result<Self> {
        let n = rows.rows();
        let mut parts = part_starts(&links, n, degree);
        trace::mark("parts", || ());
        let upper = if n > UPPER_FROM {
            // The part starts join the upper level instead of starting
            // every walk: the walk above reaches the parts near a query.
            let mut nodes: Vec<u32> = (0..n as u32).step_by(UPPER_STEP).collect();
            nodes.append(&mut parts);
            nodes.sort_unstable();
            nodes.dedup();
            let mut v = Vec::with_capacity(nodes.len() * rows.dim());
            for &x in &nodes {
                v.extend_from_slice(rows.row(x as usize));
            }
            let sample = Matrix::new(v, rows.dim())?;
            report.at(BuildStage::UpperLevels, 0, 1);
            let graph = Self::over(ctx, sample, (degree, space), Reporter::NONE)?;
            report.at(BuildStage::UpperLevels, 1, 1);
            Some(Box::new(Upper { graph, nodes }))
        } else {
            None
        };
        Ok(Self {
            degree,
            links,
            rows,
            space,
            parts,
            upper,
            cache: Arc::default(),
        })
    }

    /// Neighbours per node.
    pub fn degree(&self) -> usize {
        self.degree
    }
    /// The neighbour slots, `nodes x degree`.
    pub fn links(&self) -> &[u32] {
        &self.links
    }
    /// Nodes (rows) in the graph.
    pub fn nodes(&self) -> usize {
        self.rows.rows()
    }
    /// Bytes held (links and the prepared rows, and the upper levels').
    pub fn bytes(&self) -> usize {
        let upper = self
            .upper
            .as_ref()
            .map_or(0, |u| u.graph.bytes() + u.nodes.len() * 4);
        self.links.len() * 4 + self.rows.as_slice().len() * 4 + upper
    }

    /// The `k` nearest allowed nodes of every query (`ef` candidates kept
    /// while searching), by slot; queries left with fewer than
    /// `min(k, allowed)` results are listed in `short`.
    pub fn search(
        &self,
        ctx: &Context,
        q: MatrixView<'_>,
        (k, ef, rows): (usize, usize, WalkPrecision),
        dist: &Distance,
        allowed: Option<&SlotSet>,
    ) -> Result<(Neighbors, Vec<usize>)> {
        let nq = q.rows();
        let allowed_words = allowed.map(SlotSet::words);
        let walked = self.walk(ctx, q, (k, ef.max(k), rows), allowed_words)?;
        let w = walked.width;
        // A query's walk lists its nodes best first, then NO_NODE.
        let found = |r: usize| {
            let nodes = &walked.nodes[r * w..(r + 1) * w];
            nodes.iter().take_while(|&&x| x != NO_NODE).count()
        };
        let want = allowed.map_or(self.nodes(), SlotSet::count).min(k);
        let short = (0..nq).filter(|&r| found(r) < want).collect();
        let row = |r: usize| {
            let at = r * w;
            let nodes = walked.nodes[at..at + found(r)].iter();
            nodes
                .zip(&walked.values[at..])
                .map(|(&x, &v)| (x as u64, v))
        };
        let norms = Input::F32(q).cosine_lengths(dist.metric)?;
        let best = ranked_rows(nq, row, norms.as_deref(), (k, dist));
        trace::mark("walk.rank", || ());
        Ok((best, short))
    }

    /// Links `rows` in as new nodes (numbered from [`nodes`](Self::nodes)),
    /// without rebuilding: each takes its `2 x degree` best candidates
    /// among the old nodes (a walk of the graph as it is) and the other new
    /// rows (their exact k-NN), keeps the `degree` with the fewest detours
    /// (a candidate `y` has one through a closer candidate `z` when `z` is
    /// also closer to `y`), and is offered to those neighbours' lists (see
    /// [`offer_reverse`]). New nodes no link reaches become part starts.
    /// The upper levels stay as they are (their entries lead down to the
    /// new nodes through the links).
    pub fn insert(&mut self, ctx: &Context, rows: MatrixView<'_>) -> Result<()> {
        let fresh = self.space.prepare(rows);
        let (n0, a, d) = (self.nodes(), fresh.rows(), self.degree);
        check_nodes(n0 + a)?;
        let wide = (2 * d).min(n0 + a - 1);
        let old = self.walk(
            ctx,
            fresh.view(),
            (wide, wide.max(DEFAULT_EF), WalkPrecision::Exact),
            None,
        )?;
        let among = if a > 1 {
            neighbour_lists(ctx, &fresh, wide.min(a - 1), self.space, Reporter::NONE)?
        } else {
            Vec::new()
        };
        self.append_rows(fresh)?;
        let ip = self.space.base == Metric::InnerProduct;
        let rows = self.rows.view();
        let picks: Vec<Vec<(f32, u32)>> = (0..a)
            .into_par_iter()
            .map(|i| {
                let x = (n0 + i) as u32;
                let mut c: Vec<u32> = old.nodes[i * old.width..(i + 1) * old.width].to_vec();
                if a > 1 {
                    let w = wide.min(a - 1);
                    c.extend(
                        among[i * w..(i + 1) * w]
                            .iter()
                            .filter(|&&j| j != NO_NODE)
                            .map(|&j| j + n0 as u32),
                    );
                }
                detour_pick(rows, x, &c, (wide, d), ip)
            })
            .collect();
        for (i, p) in picks.iter().enumerate() {
            let at = (n0 + i) * d;
            self.links.extend(std::iter::repeat_n(NO_NODE, d));
            for (slot, &(_, y)) in self.links[at..at + d].iter_mut().zip(p) {
                *slot = y;
            }
        }
        offer_reverse(&mut self.links, rows, (n0, d, ip), &picks);
        self.parts.extend(unreached(&self.links, n0, a));
        self.parts.truncate(PARTS_MAX);
        self.cache = Arc::default();
        Ok(())
    }

    /// The best `k` nodes of each of `q` (keeping `ef` candidates; only
    /// nodes in `allowed` when given) by the context's walk, or the host's
    /// where it has none.
    fn walk(
        &self,
        ctx: &Context,
        q: MatrixView<'_>,
        (k, ef, walk_rows): (usize, usize, WalkPrecision),
        allowed: Option<&[u64]>,
    ) -> Result<Walked> {
        let levels = self.levels();
        let job = GraphWalkJob {
            queries: q,
            levels: &levels,
            k: k.min(self.nodes()),
            ef,
            inner_product: self.space.base == Metric::InnerProduct,
            allowed,
            rows: walk_rows,
            cache: &self.cache,
        };
        Ok(match ctx.backend().graph_walk(job)? {
            Some(w) => w,
            None => Cpu.graph_walk(job)?.expect("the host walks every graph"),
        })
    }

    /// Appends prepared rows to the graph's rows.
    fn append_rows(&mut self, fresh: Matrix) -> Result<()> {
        let dim = self.rows.dim();
        let mut v = std::mem::replace(&mut self.rows, Matrix::new(Vec::new(), dim)?).into_vec();
        v.extend_from_slice(fresh.as_slice());
        self.rows = Matrix::new(v, dim)?;
        Ok(())
    }

    /// The graph's levels as a walk reads them, bottom first.
    fn levels(&self) -> Vec<GraphLevel<'_>> {
        let mut out = Vec::new();
        let (mut g, mut below) = (self, None);
        loop {
            out.push(GraphLevel {
                rows: g.rows.view(),
                links: &g.links,
                degree: g.degree,
                parts: &g.parts,
                below,
            });
            match &g.upper {
                Some(u) => {
                    below = Some(&u.nodes[..]);
                    g = &u.graph;
                }
                None => return out,
            }
        }
    }
}

/// The metric space of a graph: L2 or inner product, unit rows for cosine.
fn graph_space(dist: &Distance) -> Result<CodeSpace> {
    CodeSpace::of(dist).map_err(|_| Error::UnsupportedMetric {
        metric: dist.metric.to_string(),
        context: "for a graph index (use l2, euclidean, ip, cosine or cosine_similarity, without weights)".into(),
    })
}

/// Graph nodes are numbered in 32 bits.
fn check_nodes(n: usize) -> Result<()> {
    if n >= NO_NODE as usize {
        return Err(Error::invalid(
            "graph nodes",
            n,
            format!("a graph holds fewer than {NO_NODE} vectors"),
        ));
    }
    Ok(())
}

/// Each row's `wide` nearest other rows, best first (`NO_NODE` padded).
fn neighbour_lists(
    ctx: &Context,
    rows: &Matrix,
    wide: usize,
    space: CodeSpace,
    report: Reporter<'_>,
) -> Result<Vec<u32>> {
    let n = rows.rows();
    let metric = Distance::new(space.base);
    let base = Input::F32(rows.view());
    // f16 ranking (twice the tensor-core rate on CUDA; the host ranks in
    // fp32): a swap of two near-equal neighbours does not change a graph.
    let opts = KnnOptions::default()
        .with_metric(&metric)
        .with_precision(Precision::F16);
    let mut out = vec![NO_NODE; n * wide];
    // Query blocks bound the result's size; the k-NN tiles the rest.
    let block = (1usize << 22) / (wide + 1);
    for q0 in (0..n).step_by(block.max(1)) {
        report.at(BuildStage::Neighbours, q0, n);
        let q1 = (q0 + block.max(1)).min(n);
        let q = Input::F32(rows.view().slice_rows(q0, q1));
        let nn = knn_with(ctx, q, base, wide + 1, &opts)?;
        out[q0 * wide..q1 * wide]
            .par_chunks_mut(wide)
            .enumerate()
            .for_each(|(i, o)| {
                let me = (q0 + i) as u64;
                let ids = nn
                    .row_ids(i)
                    .iter()
                    .filter(|&&id| id != me && id != MISSING_ID);
                for (slot, &id) in o.iter_mut().zip(ids) {
                    *slot = id as u32;
                }
            });
    }
    report.at(BuildStage::Neighbours, n, n);
    Ok(out)
}

/// Each node's `degree` neighbours of fewest detours (ties by rank): a
/// neighbour `y` at rank `j` has a detour through `z` at rank `i` when `y`
/// is among `z`'s first `j` neighbours and `i < j`.
pub(crate) fn prune(knn: &[u32], n: usize, (wide, degree): (usize, usize)) -> Vec<u32> {
    let mut out = vec![NO_NODE; n * degree];
    if wide == 0 {
        return out;
    }
    out.par_chunks_mut(degree).enumerate().for_each_init(
        || RankTable::new(wide),
        |table, (x, o)| {
            let mine = &knn[x * wide..(x + 1) * wide];
            table.fill(mine);
            let mut detours = vec![0u32; wide];
            for (i, &z) in mine.iter().enumerate().filter(|(_, &z)| z != NO_NODE) {
                let theirs = &knn[z as usize * wide..(z as usize + 1) * wide];
                for (r, &y) in theirs.iter().enumerate().filter(|(_, &y)| y != NO_NODE) {
                    if let Some(j) = table.rank(y) {
                        if i.max(r) < j {
                            detours[j] += 1;
                        }
                    }
                }
            }
            let mut order: Vec<usize> = (0..wide).filter(|&j| mine[j] != NO_NODE).collect();
            // A node listed twice keeps its first rank only.
            order.retain(|&j| table.rank(mine[j]) == Some(j));
            order.sort_unstable_by_key(|&j| (detours[j], j));
            for (slot, &j) in o.iter_mut().zip(&order) {
                *slot = mine[j];
            }
        },
    );
    out
}

/// One node's neighbours and their ranks: an open-addressing table of at
/// least twice as many slots, so a look-up costs a probe or two.
struct RankTable {
    slots: Vec<(u32, u32)>,
    shift: u32,
}

impl RankTable {
    fn new(wide: usize) -> Self {
        let size = (2 * wide).next_power_of_two().max(2);
        Self {
            slots: vec![(NO_NODE, 0); size],
            shift: 32 - size.trailing_zeros(),
        }
    }
    fn home(&self, y: u32) -> usize {
        (y.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }
    /// Holds `list`'s nodes (the first rank of a repeated one).
    fn fill(&mut self, list: &[u32]) {
        self.slots.fill((NO_NODE, 0));
        let mask = self.slots.len() - 1;
        for (j, &y) in list.iter().enumerate().filter(|(_, &y)| y != NO_NODE) {
            let mut h = self.home(y);
            while self.slots[h].0 != NO_NODE && self.slots[h].0 != y {
                h = (h + 1) & mask;
            }
            if self.slots[h].0 == NO_NODE {
                self.slots[h] = (y, j as u32);
            }
        }
    }
    fn rank(&self, y: u32) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut h = self.home(y);
        loop {
            match self.slots[h] {
                (NO_NODE, _) => return None,
                (v, j) if v == y => return Some(j as usize),
                _ => h = (h + 1) & mask,
            }
        }
    }
}

/// Each node's first half of `pruned` neighbours, then the nodes that list
/// it (by their rank there, then node), then the rest of its own, `degree`
/// in all.
fn with_reverse(pruned: &[u32], n: usize, degree: usize) -> Vec<u32> {
    // The listings of each node, grouped by node (a counting sort):
    // `rank << 32 | lister` in `by_node[start[y]..start[y + 1]]`.
    let mut start = vec![0usize; n + 1];
    for &y in pruned.iter().filter(|&&y| y != NO_NODE) {
        start[y as usize + 1] += 1;
    }
    for y in 0..n {
        start[y + 1] += start[y];
    }
    let mut by_node = vec![0u64; start[n]];
    let mut fill = start.clone();
    for (x, own) in pruned.chunks(degree).enumerate() {
        for (rank, &y) in own.iter().enumerate().filter(|(_, &y)| y != NO_NODE) {
            by_node[fill[y as usize]] = (rank as u64) << 32 | x as u64;
            fill[y as usize] += 1;
        }
    }
    let mut out = vec![NO_NODE; n * degree];
    out.par_chunks_mut(degree).enumerate().for_each(|(x, o)| {
        let mut rev = by_node[start[x]..start[x + 1]].to_vec();
        rev.sort_unstable();
        let own = &pruned[x * degree..(x + 1) * degree];
        let half = degree.div_ceil(2);
        let picks = own[..half]
            .iter()
            .copied()
            .chain(rev.iter().map(|&e| e as u32))
            .chain(own[half..].iter().copied())
            .filter(|&y| y != NO_NODE && y as usize != x);
        let mut len = 0;
        for y in picks {
            if len == degree {
                break;
            }
            if !o[..len].contains(&y) {
                o[len] = y;
                len += 1;
            }
        }
    });
    out
}

/// Smaller is better: squared L2, or the negated inner product.
fn key(ip: bool, a: &[f32], b: &[f32]) -> f32 {
    if ip {
        -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
    } else {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }
}

/// Node `x`'s `degree` neighbours among `cand` (`NO_NODE` and `x` itself
/// skipped, repeats once): the best `wide` by key, ordered by their
/// detours (through a candidate closer to `x` that is also closer to
/// them), then by key. Returns `(key to x, node)`.
fn detour_pick(
    rows: MatrixView<'_>,
    x: u32,
    cand: &[u32],
    (wide, degree): (usize, usize),
    ip: bool,
) -> Vec<(f32, u32)> {
    let xr = rows.row(x as usize);
    let mut c: Vec<(f32, u32)> = cand
        .iter()
        .filter(|&&y| y != NO_NODE && y != x)
        .map(|&y| (key(ip, xr, rows.row(y as usize)), y))
        .collect();
    // A repeated node has one key: its copies sit side by side.
    c.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    c.dedup_by_key(|e| e.1);
    c.truncate(wide);
    let detours: Vec<usize> = (0..c.len())
        .map(|j| {
            let yr = rows.row(c[j].1 as usize);
            (0..j)
                .filter(|&i| key(ip, rows.row(c[i].1 as usize), yr) < c[j].0)
                .count()
        })
        .collect();
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by_key(|&j| (detours[j], j));
    order.into_iter().take(degree).map(|j| c[j]).collect()
}

/// Offers each new node (from `n0`, their picks in `picks`) to the lists
/// of its neighbours: an empty slot takes it, else it replaces the
/// farthest node of the list's second half (the reverse edges and the
/// node's weaker own links; the first half, its best own links, stays)
/// when it is closer than that node.
fn offer_reverse(
    links: &mut [u32],
    rows: MatrixView<'_>,
    (n0, degree, ip): (usize, usize, bool),
    picks: &[Vec<(f32, u32)>],
) {
    let mut offers: Vec<(u32, f32, u32)> = picks
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.iter().map(move |&(k, y)| (y, k, (n0 + i) as u32)))
        .collect();
    offers.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let half = degree.div_ceil(2);
    let groups: Vec<&[(u32, f32, u32)]> = offers.chunk_by(|a, b| a.0 == b.0).collect();
    let lists: Vec<(usize, Vec<u32>)> = groups
        .par_iter()
        .map(|g| {
            let y = g[0].0 as usize;
            let mut list = links[y * degree..(y + 1) * degree].to_vec();
            let yr = rows.row(y);
            for &(_, k, x) in g.iter() {
                if list.contains(&x) {
                    continue;
                }
                if let Some(slot) = list.iter().position(|&z| z == NO_NODE) {
                    list[slot] = x;
                    continue;
                }
                let far = (half..degree)
                    .map(|s| (key(ip, yr, rows.row(list[s] as usize)), s))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((fk, s)) = far {
                    if k < fk {
                        list[s] = x;
                    }
                }
            }
            (y, list)
        })
        .collect();
    for (y, list) in lists {
        links[y * degree..(y + 1) * degree].copy_from_slice(&list);
    }
}

/// The new nodes (`n0..n0 + a`) no link names.
fn unreached(links: &[u32], n0: usize, a: usize) -> Vec<u32> {
    let mut named = vec![false; a];
    for &y in links {
        if y != NO_NODE && y as usize >= n0 {
            named[y as usize - n0] = true;
        }
    }
    (0..a)
        .filter(|&i| !named[i])
        .map(|i| (n0 + i) as u32)
        .collect()
}

/// Nodes from which a walk along the links reaches every node: node 0,
/// then each node the walks so far miss (in order), at most
/// [`PARTS_MAX`] of them; none when node 0 reaches every node.
fn part_starts(links: &[u32], n: usize, degree: usize) -> Vec<u32> {
    let mut reached = vec![false; n];
    let mut starts = Vec::new();
    let mut stack = Vec::new();
    for s in 0..n {
        if reached[s] {
            continue;
        }
        starts.push(s as u32);
        reached[s] = true;
        stack.push(s);
        while let Some(x) = stack.pop() {
            for &y in links[x * degree..(x + 1) * degree]
                .iter()
                .filter(|&&y| y != NO_NODE)
            {
                if !std::mem::replace(&mut reached[y as usize], true) {
                    stack.push(y as usize);
                }
            }
        }
    }
    if starts.len() <= 1 {
        return Vec::new();
    }
    starts.truncate(PARTS_MAX);
    starts
}

/// The vectors of a graph index and the graph over them (added vectors
/// linked in, rebuilt past [`REBUILD_GROWTH`] and on compaction).
#[derive(Debug)]
pub(crate) struct GraphIndex {
    /// Every stored vector, by slot (for exact fallbacks, range search,
    /// reconstruction and saving).
    pub rows: RowBlocks,
    /// `None` while no vector is held.
    pub graph: Option<Graph>,
    /// Neighbours per node.
    pub degree: usize,
    /// Vectors the graph held when last built in full.
    pub built: usize,
}

/// Adds link their vectors into the graph until it holds this many times
/// the vectors of its last full build; the add past it rebuilds.
const REBUILD_GROWTH: f64 = 1.25;
/// Graphs smaller than this are rebuilt on every add (cheap, and a build
/// links small sets best).
const INSERT_FROM: usize = 1024;

/// Filters passing at most this share of the live vectors search the
/// allowed vectors exactly instead of the graph, on the host and on CUDA
/// (measured at 1M x 128, k 10: on an H100 the exact search over 10% of
/// the vectors took 5.5 ms for 10,000 queries against 6.8 ms for a walk
/// at ef 32 that found 88% of them; over 30%, 10.7 ms against 6.8 ms).
const EXACT_BELOW: (f64, f64) = (0.05, 0.3);
/// A filtered walk keeps `ef / share` candidates (as many allowed ones as
/// an unfiltered walk keeps), at most this many times `ef`.
const FILTER_WIDEN_MAX: f64 = 8.0;

impl GraphIndex {
    /// An empty graph index of `dim`-dimensional vectors (`dist` must be
    /// one a graph serves).
    pub fn new(dim: usize, degree: usize, dist: &Distance) -> Result<Self> {
        graph_space(dist)?;
        Ok(Self {
            rows: RowBlocks::new(dim),
            graph: None,
            degree,
            built: 0,
        })
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.rows.bytes() + self.graph.as_ref().map_or(0, Graph::bytes)
    }

    /// Appends `data`: linked into the graph (see [`Graph::insert`]) while
    /// the graph stays within [`REBUILD_GROWTH`] of its last full build,
    /// else the graph is rebuilt over every vector.
    /// `report` hears of a rebuild's stages.
    pub fn add(
        &mut self,
        ctx: &Context,
        data: &Input<'_>,
        dist: &Distance,
        report: Reporter<'_>,
    ) -> Result<()> {
        let before = self.rows.rows();
        self.rows.push(ctx, data)?;
        let n = self.rows.rows();
        match &mut self.graph {
            Some(g)
                if self.built >= INSERT_FROM && n as f64 <= self.built as f64 * REBUILD_GROWTH =>
            {
                let fresh: Vec<usize> = (before..n).collect();
                g.insert(ctx, self.rows.gather(&fresh)?.view())
            }
            _ => self.rebuild(ctx, dist, report),
        }
    }

    /// Keeps the rows `kept` (old slots, ascending) and rebuilds the graph.
    pub fn compact(
        &mut self,
        ctx: &Context,
        kept: &[usize],
        dist: &Distance,
        report: Reporter<'_>,
    ) -> Result<()> {
        self.rows.compact(ctx, kept)?;
        self.rebuild(ctx, dist, report)
    }

    /// The graph over every held vector.
    pub fn rebuild(&mut self, ctx: &Context, dist: &Distance, report: Reporter<'_>) -> Result<()> {
        let n = self.rows.rows();
        self.graph = None;
        if n > 0 {
            let all: Vec<usize> = (0..n).collect();
            let host = self.rows.gather(&all)?;
            self.graph = Some(Graph::build(ctx, host.view(), self.degree, dist, report)?);
        }
        self.built = n;
        Ok(())
    }

    /// The `k` nearest allowed vectors of every query, by slot: the graph
    /// searched with `ef` candidates, or the allowed vectors searched
    /// exactly when a filter passes few of them or a query found fewer
    /// than `min(k, allowed)`.
    pub fn search(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        (k, ef, rows): (usize, usize, WalkPrecision),
        dist: &Distance,
        (allowed, filtered): (Option<&SlotSet>, bool),
    ) -> Result<Neighbors> {
        let Some(graph) = &self.graph else {
            return super::exact::search(ctx, &self.rows, q, k, dist, allowed);
        };
        let share = allowed.map_or(1.0, |a| a.count() as f64 / graph.nodes().max(1) as f64);
        let below = if ctx.is_cuda() {
            EXACT_BELOW.1
        } else {
            EXACT_BELOW.0
        };
        if filtered && share <= below {
            return super::exact::search(ctx, &self.rows, q, k, dist, allowed);
        }
        let ef = if filtered {
            (ef as f64 / share.max(1.0 / FILTER_WIDEN_MAX)).ceil() as usize
        } else {
            ef
        };
        let mut hold = None;
        let qv = q.host_view(&mut hold)?;
        let (mut nn, short) = graph.search(ctx, qv, (k, ef, rows), dist, allowed)?;
        if short.is_empty() {
            return Ok(nn);
        }
        let sub: Vec<f32> = short
            .iter()
            .flat_map(|&r| qv.row(r).iter().copied())
            .collect();
        let sub = Matrix::new(sub, qv.dim())?;
        let exact =
            super::exact::search(ctx, &self.rows, &Input::F32(sub.view()), k, dist, allowed)?;
        let (ids, dists) = nn.parts_mut();
        for (i, &r) in short.iter().enumerate() {
            ids[r * k..(r + 1) * k].copy_from_slice(exact.row_ids(i));
            dists[r * k..(r + 1) * k].copy_from_slice(exact.row_distances(i));
        }
        Ok(nn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clustered rows from a small deterministic generator.
    fn rows(n: usize, dim: usize, seed: u64) -> Matrix {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let centres: Vec<f32> = (0..20 * dim).map(|_| 8.0 * next()).collect();
        let mut v = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = (i * 7) % 20;
            for j in 0..dim {
                v.push(centres[c * dim + j] + next());
            }
        }
        Matrix::new(v, dim).unwrap()
    }

    #[test]
    fn inserted_nodes_are_linked_both_ways() {
        let ctx = Context::cpu();
        let (n0, a, dim, degree) = (3_000, 400, 12, 16);
        let all = rows(n0 + a, dim, 3);
        let head = Matrix::new(all.as_slice()[..n0 * dim].to_vec(), dim).unwrap();
        let l2 = Distance::new(Metric::L2);
        let mut g = Graph::build(&ctx, head.view(), degree, &l2, Reporter::NONE).unwrap();
        let parts = g.parts.len();
        let tail = MatrixView::new(&all.as_slice()[n0 * dim..], dim).unwrap();
        g.insert(&ctx, tail).unwrap();
        assert_eq!(g.nodes(), n0 + a);
        assert_eq!(g.links.len(), (n0 + a) * degree);
        // Every new node has a full list of distinct other nodes, and some
        // old node links to almost every new one (none become part starts
        // beyond a few).
        for x in n0..n0 + a {
            let l = &g.links[x * degree..(x + 1) * degree];
            assert!(
                l.iter().all(|&y| y != NO_NODE && y as usize != x),
                "{x}: {l:?}"
            );
            let mut s = l.to_vec();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), degree, "{x}: {l:?}");
        }
        let named = (n0..n0 + a)
            .filter(|&x| g.links[..n0 * degree].contains(&(x as u32)))
            .count();
        assert!(named >= a * 9 / 10, "{named} of {a} named by old nodes");
        assert!(g.parts.len() <= parts + a / 50, "{} parts", g.parts.len());
        // A new node's first neighbour is its nearest old-or-new node.
        for x in (n0..n0 + a).step_by(37) {
            let xr = g.rows.row(x);
            let best = (0..n0 + a)
                .filter(|&y| y != x)
                .min_by(|&p, &q| {
                    key(false, xr, g.rows.row(p)).total_cmp(&key(false, xr, g.rows.row(q)))
                })
                .unwrap();
            let first = g.links[x * degree] as usize;
            let (kb, kf) = (
                key(false, xr, g.rows.row(best)),
                key(false, xr, g.rows.row(first)),
            );
            assert!(
                kf <= kb * 1.5 + 1e-6,
                "{x}: first {first} ({kf}) best {best} ({kb})"
            );
        }
    }
}

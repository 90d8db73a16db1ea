//! [`MultiIndex`]: one index spread over several contexts (the GPUs of a
//! host, or several contexts of one device): shards that each hold a part
//! of the vectors, or replicas that each hold all of them. Every part is an
//! [`Index`] of the same factory string; the parts work at once, one host
//! thread each.

use std::ops::Range;

use rayon::prelude::*;

use super::api::Index;
use super::params::SearchParams;
use super::selector::IdSelector;
use crate::core::error::{Error, Result};
use crate::core::matrix::MatrixView;
use crate::core::metric::Distance;
use crate::core::neighbors::{missing_value, sort_key, Neighbors, MISSING_ID};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// How a [`MultiIndex`] spreads its vectors and its queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Each part holds some of the vectors (an add goes to the emptiest
    /// parts, so they stay level); a search asks every part for its `k`
    /// best and merges them.
    Shards,
    /// Each part holds every vector; a search splits its queries evenly
    /// across the parts.
    Replicas,
}

impl Layout {
    /// `"shards"` or `"replicas"` (as files, the command line and Python
    /// name it).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Shards => "shards",
            Layout::Replicas => "replicas",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = Error;

    /// The layout named `"shards"` or `"replicas"`.
    fn from_str(name: &str) -> Result<Self> {
        [Layout::Shards, Layout::Replicas]
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| Error::invalid("layout", name, "expected shards or replicas"))
    }
}

/// An index over several contexts, FAISS's `IndexShards` and
/// `IndexReplicas` in one type: the same calls as [`Index`] (train, add,
/// search with filters, remove, save and load), each part on its own
/// context. A part's failure is returned as [`Error::Part`] naming it.
///
/// ```
/// use vector_accelerate::index::{Index, Layout, MultiIndex, SearchParams};
/// use vector_accelerate::{Context, Matrix, Metric};
/// let contexts = [Context::cpu(), Context::cpu()];
/// let data = Matrix::new((0..800).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
/// let mut shards = MultiIndex::new(&contexts, 8, "Flat", Metric::L2, Layout::Shards)?;
/// shards.add(&data)?;
/// assert_eq!(shards.part_lens(), vec![50, 50]);
/// let hits = shards.search(data.view().slice_rows(70, 71), 1, &SearchParams::default())?;
/// assert_eq!(hits.row_ids(0)[0], 70);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug)]
pub struct MultiIndex {
    parts: Vec<Index>,
    layout: Layout,
    /// Where [`add`](Self::add) numbers from (shards: over every part).
    next_id: u64,
}

impl MultiIndex {
    /// An empty index of `dim`-dimensional vectors over `contexts` (one part
    /// each; the same context may appear more than once), built from a
    /// factory string as [`Index::new`].
    pub fn new(
        contexts: &[Context],
        dim: usize,
        factory: &str,
        dist: impl Into<Distance>,
        layout: Layout,
    ) -> Result<Self> {
        check_contexts(contexts)?;
        let distance = dist.into();
        let parts = contexts
            .iter()
            .map(|ctx| Index::new(ctx, dim, factory, distance.clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            parts,
            layout,
            next_id: 0,
        })
    }

    /// Copies of `index` (trained, with its vectors and settings) on every
    /// context, as replicas.
    pub fn replicate(index: &Index, contexts: &[Context]) -> Result<Self> {
        check_contexts(contexts)?;
        let bytes = index.to_bytes()?;
        let parts = on_each(contexts, |_, ctx| Index::from_bytes(ctx, &bytes))?;
        Ok(Self {
            parts,
            layout: Layout::Replicas,
            next_id: index.next_id(),
        })
    }

    /// A copy of the index: each part copied on its own context.
    pub fn try_clone(&self) -> Result<Self> {
        let parts = on_each(&self.parts, |_, p| p.copy_to(p.context()))?;
        Ok(Self {
            parts,
            layout: self.layout,
            next_id: self.next_id,
        })
    }

    /// How the index spreads vectors and queries.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The parts, in context order.
    pub fn parts(&self) -> &[Index] {
        &self.parts
    }

    /// Live vectors per part.
    pub fn part_lens(&self) -> Vec<usize> {
        self.parts.iter().map(Index::len).collect()
    }

    /// Live vectors (each counted once).
    pub fn len(&self) -> usize {
        match self.layout {
            Layout::Shards => self.parts.iter().map(Index::len).sum(),
            Layout::Replicas => self.parts[0].len(),
        }
    }

    /// Whether no vector is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.parts[0].dim()
    }

    /// The factory string of every part.
    pub fn factory(&self) -> String {
        self.parts[0].factory()
    }

    /// Whether some part holds `id`.
    pub fn contains(&self, id: u64) -> bool {
        self.parts.iter().any(|p| p.contains(id))
    }

    /// Whether the parts are trained (see [`Index::is_trained`]).
    pub fn is_trained(&self) -> bool {
        self.parts[0].is_trained()
    }

    /// Sets every part's default `nprobe` (see [`Index::set_nprobe`]).
    pub fn set_nprobe(&mut self, nprobe: usize) -> Result<()> {
        self.parts.iter_mut().try_for_each(|p| p.set_nprobe(nprobe))
    }

    /// Trains the first part on `data` and gives the others copies of its
    /// training (one coarse quantizer for all, as a single index would
    /// have). Parts that hold vectors are not retrained (an IVF index
    /// refuses, as [`Index::train`] does).
    pub fn train<'a>(&mut self, data: impl Into<Input<'a>>) -> Result<()> {
        let data = data.into();
        if let Some(held) = self.parts.iter_mut().find(|p| p.len() + p.deleted() > 0) {
            return held.train(data);
        }
        self.parts[0].train(data)?;
        if self.parts.len() == 1 || self.parts[0].nlist().is_none() {
            return Ok(());
        }
        let bytes = self.parts[0].to_bytes()?;
        let others = self.contexts().split_off(1);
        let copies =
            on_each(&others, |_, ctx| Index::from_bytes(ctx, &bytes)).map_err(|e| e.shifted(1))?;
        self.parts.truncate(1);
        self.parts.extend(copies);
        Ok(())
    }

    /// Adds vectors with sequential ids (one past the largest id any part
    /// has seen); returns the ids given.
    pub fn add<'a>(&mut self, data: impl Into<Input<'a>>) -> Result<Range<u64>> {
        let data = data.into();
        let n = data.rows() as u64;
        let ids: Vec<u64> = (self.next_id..self.next_id + n).collect();
        self.add_with_ids(data, &ids)?;
        Ok(self.next_id - n..self.next_id)
    }

    /// Adds vectors with the caller's ids (checked against every part
    /// first: an id already held or repeated is an error, and then nothing
    /// is added). Shards take consecutive runs of the rows, the emptiest
    /// parts the most; replicas take every row.
    pub fn add_with_ids<'a>(&mut self, data: impl Into<Input<'a>>, ids: &[u64]) -> Result<()> {
        let data = data.into();
        let mut hold = None;
        let host = self.parts[0].check_add(&data, ids.len(), &mut hold)?;
        self.check_new_ids(ids)?;
        let runs = match self.layout {
            Layout::Shards => level_runs(&self.part_lens(), host.rows()),
            Layout::Replicas => vec![0..host.rows(); self.parts.len()],
        };
        each_part(&mut self.parts, |i, part| {
            let r = runs[i].clone();
            if r.is_empty() {
                return Ok(());
            }
            part.add_with_ids(host.slice_rows(r.start, r.end), &ids[r])
        })?;
        let top = ids.iter().map(|&i| i.saturating_add(1)).max().unwrap_or(0);
        self.next_id = self.next_id.max(top);
        Ok(())
    }

    /// The `k` nearest vectors of every query, best first, as
    /// [`Index::search`] gives them. Shards: every part searches every
    /// query and the `k` best of their results are kept (equal values go to
    /// the lower-numbered part); replicas: each part searches its share.
    pub fn search<'a>(
        &self,
        queries: impl Into<Input<'a>>,
        k: usize,
        params: &SearchParams<'_>,
    ) -> Result<Neighbors> {
        let q = queries.into();
        let mut hold = None;
        let host = q.host_view(&mut hold)?;
        match self.layout {
            Layout::Shards => {
                let found = on_each(&self.parts, |_, p| p.search(host, k, params))?;
                merge_best(&found, k)
            }
            Layout::Replicas => split_queries(host, self.parts.len(), |i, share| {
                self.parts[i].search(share, k, params)
            }),
        }
    }

    /// Removes the vectors `sel` selects from every part; returns how many
    /// vectors were removed (replicas: each counted once).
    pub fn remove_ids(&mut self, sel: &IdSelector) -> Result<usize> {
        let removed = each_part(&mut self.parts, |_, part| part.remove_ids(sel))?;
        Ok(match self.layout {
            Layout::Shards => removed.iter().sum(),
            Layout::Replicas => removed[0],
        })
    }

    /// The stored vector of `id` (see [`Index::reconstruct`]).
    pub fn reconstruct(&self, id: u64) -> Result<Vec<f32>> {
        let holder = self.parts.iter().find(|p| p.contains(id));
        holder.unwrap_or(&self.parts[0]).reconstruct(id)
    }

    /// The contexts of the parts, in order.
    pub fn contexts(&self) -> Vec<Context> {
        self.parts.iter().map(|p| p.context().clone()).collect()
    }

    /// [`Error::DuplicateId`] for an id some part holds (the parts check
    /// repeats within `ids` and reserved ids themselves).
    fn check_new_ids(&self, ids: &[u64]) -> Result<()> {
        let held = |id: &u64| self.parts.iter().any(|p| p.contains(*id));
        match ids.par_iter().find_first(|id| held(id)) {
            Some(&id) => Err(Error::DuplicateId { id }),
            None => Ok(()),
        }
    }
}

pub(super) fn check_contexts(contexts: &[Context]) -> Result<()> {
    if contexts.is_empty() {
        return Err(Error::invalid("contexts", 0, "an index needs at least one"));
    }
    Ok(())
}

impl Error {
    /// `self`, as the failure of part `part`.
    pub(super) fn part(part: usize, e: Error) -> Error {
        match e {
            Error::Part { .. } => e,
            e => Error::Part {
                part,
                source: Box::new(e),
            },
        }
    }

    /// A part's failure renumbered `by` parts on.
    pub(super) fn shifted(self, by: usize) -> Error {
        match self {
            Error::Part { part, source } => Error::Part {
                part: part + by,
                source,
            },
            e => e,
        }
    }
}

/// `f` for every item, one thread each; the first failure (by item) as
/// [`Error::Part`] (see [`first_failure`]).
pub(super) fn on_each<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(usize, &T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    first_failure(each_result(items, f))
}

/// `f` for every item, one thread each: every item's result.
pub(super) fn each_result<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(usize, &T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    let f = &f;
    std::thread::scope(|s| {
        let running: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, t)| s.spawn(move || f(i, t)))
            .collect();
        running.into_iter().map(join).collect()
    })
}

/// The parts' results, or their failure: an error every part gave alike
/// (the caller's, such as a bad `k`) as it is, else the first part's
/// failure as [`Error::Part`].
pub(super) fn first_failure<R>(done: Vec<Result<R>>) -> Result<Vec<R>> {
    let errors: Vec<&Error> = done.iter().filter_map(|r| r.as_ref().err()).collect();
    if errors.len() == done.len() && errors.windows(2).all(|w| w[0] == w[1]) {
        if let Some(e) = errors.first() {
            return Err((*e).clone());
        }
    }
    done.into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| Error::part(i, e)))
        .collect()
}

/// [`on_each`] over mutable parts.
pub(super) fn each_part<R: Send>(
    parts: &mut [Index],
    f: impl Fn(usize, &mut Index) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let f = &f;
    std::thread::scope(|s| {
        let running: Vec<_> = parts
            .iter_mut()
            .enumerate()
            .map(|(i, p)| s.spawn(move || f(i, p)))
            .collect();
        first_failure(running.into_iter().map(join).collect())
    })
}

/// A part thread's result; a panic in it goes on in the caller.
fn join<R>(h: std::thread::ScopedJoinHandle<'_, Result<R>>) -> Result<R> {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Consecutive runs of `n` new rows for parts holding `lens` vectors,
/// filling the emptiest parts first (water-filling): afterwards the parts
/// that received rows differ by at most one.
pub(super) fn level_runs(lens: &[usize], n: usize) -> Vec<Range<usize>> {
    let fill = |level: usize| lens.iter().map(|&l| level.saturating_sub(l)).sum::<usize>();
    // The highest level the new rows fill every part up to.
    let (mut lo, mut hi) = (0, lens.iter().max().copied().unwrap_or(0) + n);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fill(mid) <= n {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut take: Vec<usize> = lens.iter().map(|&l| lo.saturating_sub(l)).collect();
    let mut left = n - fill(lo);
    for (t, _) in take.iter_mut().zip(lens).filter(|(_, &l)| l <= lo) {
        if left == 0 {
            break;
        }
        *t += 1;
        left -= 1;
    }
    let mut start = 0;
    take.iter()
        .map(|&t| {
            start += t;
            start - t..start
        })
        .collect()
}

/// `n` rows in `parts` consecutive runs of sizes differing by at most one.
pub(super) fn even_runs(n: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|i| (i * n / parts)..((i + 1) * n / parts))
        .collect()
}

/// Each row's `k` best of the parts' results (all of one order), equal
/// values to the lower-numbered part, missing results last.
pub(super) fn merge_best(found: &[Neighbors], k: usize) -> Result<Neighbors> {
    if let [one] = found {
        return Ok(one.clone());
    }
    let (rows, order) = (found[0].rows(), found[0].order());
    let mut ids = vec![MISSING_ID; rows * k];
    let mut values = vec![missing_value(order); rows * k];
    ids.par_chunks_mut(k)
        .zip(values.par_chunks_mut(k))
        .enumerate()
        .for_each(|(r, (ids, values))| {
            let mut all: Vec<(u32, usize, u64, f32)> = found
                .iter()
                .enumerate()
                .flat_map(|(p, n)| {
                    let row = n.row_ids(r).iter().zip(n.row_distances(r));
                    row.filter(|(&id, _)| id != MISSING_ID)
                        .map(move |(&id, &v)| (sort_key(v, order), p, id, v))
                })
                .collect();
            all.sort_by_key(|&(key, p, ..)| (key, p));
            for (j, &(_, _, id, v)) in all.iter().take(k).enumerate() {
                ids[j] = id;
                values[j] = v;
            }
        });
    Neighbors::from_parts(rows, k, order, ids, values)
}

impl MultiIndex {
    pub(crate) fn from_loaded(parts: Vec<Index>, layout: Layout, next_id: u64) -> Self {
        let next_id = parts.iter().map(Index::next_id).fold(next_id, u64::max);
        Self {
            parts,
            layout,
            next_id,
        }
    }

    pub(crate) fn into_parts(self) -> Vec<Index> {
        self.parts
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
    }
}

/// A replicas' search: `host`'s queries in `parts` even runs, run `i`
/// searched by `search(i, run)` at once, the results in query order; no
/// queries, part 0's own answer (or error).
pub(super) fn split_queries(
    host: MatrixView<'_>,
    parts: usize,
    search: impl Fn(usize, MatrixView<'_>) -> Result<Neighbors> + Sync,
) -> Result<Neighbors> {
    let runs = even_runs(host.rows(), parts);
    let found = on_each(&runs, |i, r| {
        let share = host.slice_rows(r.start, r.end);
        (!r.is_empty()).then(|| search(i, share)).transpose()
    })?;
    let mut all = found.into_iter().flatten();
    let Some(mut out) = all.next() else {
        return search(0, host);
    };
    all.for_each(|n| out.append_rows(n));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{even_runs, first_failure, level_runs};
    use crate::core::error::Error;

    #[test]
    fn new_rows_level_the_parts() {
        assert_eq!(level_runs(&[0, 0, 0], 10), vec![0..4, 4..7, 7..10]);
        assert_eq!(level_runs(&[5, 0], 5), vec![0..0, 0..5]);
        assert_eq!(level_runs(&[5, 0], 7), vec![0..1, 1..7]);
        assert_eq!(level_runs(&[9, 1, 4], 2), vec![0..0, 0..2, 2..2]);
        assert_eq!(level_runs(&[3], 0), vec![0..0]);
        for (lens, n) in [(&[1usize, 7, 2][..], 13), (&[0, 0], 1), (&[4, 4, 4, 4], 3)] {
            let runs = level_runs(lens, n);
            assert_eq!(runs[0].start, 0);
            assert!(runs.windows(2).all(|w| w[0].end == w[1].start));
            assert_eq!(runs.last().unwrap().end, n);
            let after: Vec<usize> = lens.iter().zip(&runs).map(|(l, r)| l + r.len()).collect();
            let (lo, hi) = (after.iter().min().unwrap(), after.iter().max().unwrap());
            assert!(hi - lo <= 1, "{lens:?} + {n}: {after:?}");
        }
        assert_eq!(even_runs(7, 3), vec![0..2, 2..4, 4..7]);
        assert_eq!(even_runs(1, 2), vec![0..0, 0..1]);
    }

    #[test]
    fn a_part_failure_names_the_part_and_a_shared_one_stays_the_callers() {
        let bad_k = || Error::InvalidK { k: 0 };
        let shared = first_failure::<()>(vec![Err(bad_k()), Err(bad_k())]);
        assert_eq!(shared, Err(bad_k()));
        let one = first_failure(vec![Ok(1), Err(bad_k()), Ok(3)]);
        let part = Error::Part {
            part: 1,
            source: Box::new(bad_k()),
        };
        assert_eq!(one, Err(part));
        assert_eq!(first_failure(vec![Ok(1), Ok(2)]), Ok(vec![1, 2]));
    }
}

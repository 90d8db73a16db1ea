//! [`DurableMultiIndex`]: a [`MultiIndex`]'s layout whose acknowledged
//! writes survive a crash. Shards are each a [`DurableIndex`] (`part-<i>/`
//! of the folder, with its own log); an add goes whole to the emptiest
//! shard, so each add is one logged operation. Replicas keep one durable
//! copy (`part-0/`) and in-memory copies on the other contexts, written
//! after it and remade from it when the folder is opened, so they never
//! disagree after a crash. Writes across the parts take turns (one writer
//! at a time); searches run beside them.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use super::api::Index;
use super::durable::{DurableIndex, DurableOptions, Recovery};
use super::multi::{check_contexts, merge_best, on_each, split_queries, Layout, MultiIndex};
use super::multi_file::{read_manifest, write_manifest, Manifest, MANIFEST};
use super::params::SearchParams;
use crate::core::error::{Error, Result};
use crate::core::matrix::MatrixView;
use crate::core::neighbors::Neighbors;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// A [`MultiIndex`] kept in a folder with write-ahead logs: see the module
/// documentation. `Send + Sync`.
pub struct DurableMultiIndex {
    layout: Layout,
    /// Shards: every part; replicas: the first.
    durable: Vec<DurableIndex>,
    /// Replicas after the first.
    mirrors: Vec<RwLock<Index>>,
    /// Held by a write; the next sequential id.
    writes: Mutex<u64>,
}

fn part_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("part-{i}"))
}

impl DurableMultiIndex {
    /// Makes `index` durable in the folder `dir` (created if missing; it
    /// must hold no index yet).
    pub fn create(dir: impl AsRef<Path>, index: MultiIndex, opts: DurableOptions) -> Result<Self> {
        let dir = dir.as_ref();
        if dir.join(MANIFEST).exists() {
            return Err(Error::invalid(
                "durable index directory",
                dir.display(),
                "already holds an index (open it instead)",
            ));
        }
        let (layout, next_id) = (index.layout(), index.next_id());
        let mut parts = index.into_parts();
        let mirrors = match layout {
            Layout::Shards => Vec::new(),
            Layout::Replicas => parts.split_off(1),
        };
        let durable = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| DurableIndex::create(part_dir(dir, i), p, opts.clone()))
            .collect::<Result<Vec<_>>>()?;
        let said = Manifest {
            layout,
            parts: durable.len(),
            next_id,
            generation: 0,
        };
        write_manifest(&dir.join(MANIFEST), &said)?;
        let mirrors = mirrors.into_iter().map(RwLock::new).collect();
        Ok(Self::assemble(layout, durable, mirrors, next_id))
    }

    /// Opens the folder on `contexts` (shards: part `i` on context
    /// `i % n`; replicas: the durable copy on the first context, copies of
    /// it on the others), recovering each log as [`DurableIndex::open`]
    /// does; returns what each durable part's recovery found.
    pub fn open(
        contexts: &[Context],
        dir: impl AsRef<Path>,
        opts: DurableOptions,
    ) -> Result<(Self, Vec<Recovery>)> {
        check_contexts(contexts)?;
        let dir = dir.as_ref();
        let m = read_manifest(&dir.join(MANIFEST))?;
        let count = if m.layout == Layout::Shards {
            m.parts
        } else {
            1
        };
        let open_part = |i: usize| {
            let ctx = &contexts[i % contexts.len()];
            DurableIndex::open(ctx, part_dir(dir, i), opts.clone())
        };
        let opened = (0..count).map(open_part).collect::<Result<Vec<_>>>()?;
        let (durable, recoveries): (Vec<_>, Vec<_>) = opened.into_iter().unzip();
        let mirrors = match m.layout {
            Layout::Shards => Vec::new(),
            Layout::Replicas => {
                let bytes = durable[0].read().to_bytes()?;
                let copy = |_, ctx: &Context| Index::from_bytes(ctx, &bytes).map(RwLock::new);
                on_each(&contexts[1..], copy)?
            }
        };
        let held = durable.iter().map(|d| d.read().next_id());
        let next_id = held.fold(m.next_id, u64::max);
        Ok((
            Self::assemble(m.layout, durable, mirrors, next_id),
            recoveries,
        ))
    }

    fn assemble(
        layout: Layout,
        durable: Vec<DurableIndex>,
        mirrors: Vec<RwLock<Index>>,
        next_id: u64,
    ) -> Self {
        Self {
            layout,
            durable,
            mirrors,
            writes: Mutex::new(next_id),
        }
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.durable[0].read().dim()
    }

    /// The first part's context (where the durable copy of replicas is).
    pub fn context(&self) -> Context {
        self.durable[0].read().context().clone()
    }

    /// How the index spreads vectors and queries.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Live vectors per part (replicas: the durable copy, then the others).
    pub fn part_lens(&self) -> Vec<usize> {
        let durable = self.durable.iter().map(|d| d.read().len());
        let mirrors = self.mirrors.iter().map(|m| read(m).len());
        durable.chain(mirrors).collect()
    }

    /// Live vectors (each counted once).
    pub fn len(&self) -> usize {
        match self.layout {
            Layout::Shards => self.part_lens().iter().sum(),
            Layout::Replicas => self.durable[0].read().len(),
        }
    }

    /// Whether no vector is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some part holds `id`.
    pub fn contains(&self, id: u64) -> bool {
        self.durable.iter().any(|d| d.read().contains(id))
    }

    /// [`MultiIndex::search`] on the current state (a search running beside
    /// a write to replicas may see the write in some queries' results and
    /// not in others').
    pub fn search<'a>(
        &self,
        queries: impl Into<Input<'a>>,
        k: usize,
        params: &SearchParams<'_>,
    ) -> Result<Neighbors> {
        let q = queries.into();
        let mut hold = None;
        let host = q.host_view(&mut hold)?;
        if self.layout == Layout::Shards {
            let found = on_each(&self.durable, |_, p| p.search(host, k, params))?;
            return merge_best(&found, k);
        }
        split_queries(host, 1 + self.mirrors.len(), |i, share| match i {
            0 => self.durable[0].search(share, k, params),
            _ => read(&self.mirrors[i - 1]).search(share, k, params),
        })
    }

    /// Adds vectors under `ids`, durably (an id any part holds is an error
    /// and nothing is added): shards, to the emptiest part; replicas, to
    /// the durable copy and then to the others.
    pub fn add_with_ids<'a>(&self, data: impl Into<Input<'a>>, ids: &[u64]) -> Result<()> {
        let data = data.into();
        let mut hold = None;
        let rows = data.host_view(&mut hold)?;
        let mut next = self.writes();
        // The parts' read locks once for every id, not once per id.
        let held: Vec<_> = self.durable.iter().map(|d| d.read()).collect();
        let taken = ids.iter().find(|&&id| held.iter().any(|p| p.contains(id)));
        if let Some(&id) = taken {
            return Err(Error::DuplicateId { id });
        }
        drop(held);
        self.add_checked(rows, ids)?;
        let top = ids.iter().map(|&i| i.saturating_add(1)).max().unwrap_or(0);
        *next = (*next).max(top);
        Ok(())
    }

    /// Adds vectors with sequential ids, durably; returns the ids given.
    pub fn add<'a>(&self, data: impl Into<Input<'a>>) -> Result<Range<u64>> {
        let data = data.into();
        let mut hold = None;
        let rows = data.host_view(&mut hold)?;
        let mut next = self.writes();
        let ids: Vec<u64> = (*next..*next + rows.rows() as u64).collect();
        self.add_checked(rows, &ids)?;
        let given = *next..*next + ids.len() as u64;
        *next = given.end;
        Ok(given)
    }

    /// The add, under the write turn, its ids checked against every part.
    fn add_checked(&self, rows: MatrixView<'_>, ids: &[u64]) -> Result<()> {
        let lens = self.part_lens();
        let target = match self.layout {
            Layout::Shards => (0..lens.len()).min_by_key(|&i| (lens[i], i)).unwrap_or(0),
            Layout::Replicas => 0,
        };
        self.durable[target].add_with_ids(rows, ids)?;
        on_each(&self.mirrors, |_, m| write(m).add_with_ids(rows, ids))
            .map_err(|e| e.shifted(1))?;
        Ok(())
    }

    /// Removes the vectors of `ids`, durably in every part that holds
    /// some; returns how many were held (replicas: each counted once).
    pub fn remove_ids(&self, ids: &[u64]) -> Result<usize> {
        let _turn = self.writes();
        let removed = on_each(&self.durable, |_, d| d.remove_ids(ids))?;
        let sel = super::selector::IdSelector::allow(ids.iter().copied());
        on_each(&self.mirrors, |_, m| write(m).remove_ids(&sel)).map_err(|e| e.shifted(1))?;
        Ok(removed.iter().sum())
    }

    /// Checkpoints every durable part (see [`DurableIndex::checkpoint`]).
    pub fn checkpoint(&self) -> Result<()> {
        let _turn = self.writes();
        on_each(&self.durable, |_, d| d.checkpoint()).map(drop)
    }

    fn writes(&self) -> MutexGuard<'_, u64> {
        self.writes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn read(m: &RwLock<Index>) -> std::sync::RwLockReadGuard<'_, Index> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write(m: &RwLock<Index>) -> std::sync::RwLockWriteGuard<'_, Index> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

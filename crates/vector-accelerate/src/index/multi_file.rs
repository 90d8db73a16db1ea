//! [`MultiIndex::save`] and [`MultiIndex::load`]: a folder of [`Index`]
//! files (`part-<generation>-<i>.vai`) and a manifest naming the layout,
//! the parts' count and generation. Parts are written under a fresh
//! generation and the manifest last (both by the index file's
//! write-and-rename), so a crash leaves the previous save whole; files of
//! older generations are removed after.

use std::path::{Path, PathBuf};

use super::api::Index;
use super::file::{io_error, sync_dir, FieldReader, Fields, Reader, Writer};
use super::multi::{check_contexts, each_result, Layout, MultiIndex};
use crate::core::error::{Error, Result};
use crate::runtime::context::Context;

pub(super) const MANIFEST: &str = "manifest.vai";
const KIND: &str = "vector-accelerate multi-index";

/// What a manifest says.
pub(super) struct Manifest {
    pub layout: Layout,
    pub parts: usize,
    pub next_id: u64,
    pub generation: u64,
}

fn part_path(dir: &Path, generation: u64, i: usize) -> PathBuf {
    dir.join(format!("part-{generation}-{i}.vai"))
}

impl MultiIndex {
    /// Writes the index to the folder `dir` (made if missing): each part as
    /// an [`Index`] file (replicas: one), then a manifest naming them, so a
    /// crash leaves the last complete save readable.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        save(self, dir.as_ref())
    }

    /// Reads an index written by [`save`](Self::save) onto `contexts`:
    /// shards go to the contexts in turn (part `i` on context `i % n`),
    /// replicas are copied to every context. A missing, truncated or
    /// damaged file is [`Error::BadIndexFile`].
    pub fn load(contexts: &[Context], dir: impl AsRef<Path>) -> Result<Self> {
        check_contexts(contexts)?;
        load(contexts, dir.as_ref())
    }
}

fn save(m: &MultiIndex, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, 0, &e))?;
    let manifest = dir.join(MANIFEST);
    let generation = read_manifest(&manifest).map_or(1, |old| old.generation + 1);
    let stored = match m.layout() {
        Layout::Shards => m.parts(),
        Layout::Replicas => &m.parts()[..1],
    };
    each_result(stored, |i, p| p.save(part_path(dir, generation, i)))
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    let said = Manifest {
        layout: m.layout(),
        parts: stored.len(),
        next_id: m.next_id(),
        generation,
    };
    write_manifest(&manifest, &said)?;
    remove_older(dir, generation);
    Ok(())
}

/// Writes `m` to `path` (write-and-rename).
pub(super) fn write_manifest(path: &Path, m: &Manifest) -> Result<()> {
    let mut f = Fields::default();
    f.str(KIND)
        .str(m.layout.name())
        .u64(m.parts as u64)
        .u64(m.next_id)
        .u64(m.generation);
    Writer::create(path, &f.0)?.finish()
}

/// Removes part files of generations other than `keep` (best effort: a
/// file left behind is only space).
fn remove_older(dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let current = format!("part-{keep}-");
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("part-") && name.ends_with(".vai") && !name.starts_with(&current) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    sync_dir(&dir.join(MANIFEST));
}

pub(super) fn read_manifest(path: &Path) -> Result<Manifest> {
    let (r, header) = Reader::open(path)?;
    let mut f = FieldReader::new(&header);
    let parse = |f: &mut FieldReader<'_>| -> std::result::Result<Manifest, String> {
        if f.str()? != KIND {
            return Err(format!("not a multi-index manifest (expected '{KIND}')"));
        }
        let name = f.str()?;
        let layout: Layout = name
            .parse()
            .map_err(|_| format!("unknown layout '{name}'"))?;
        let parts = usize::try_from(f.u64()?).map_err(|_| "part count".to_string())?;
        if parts == 0 {
            return Err("the manifest names no part".into());
        }
        let (next_id, generation) = (f.u64()?, f.u64()?);
        if !f.done() {
            return Err("the header has bytes after its fields".into());
        }
        Ok(Manifest {
            layout,
            parts,
            next_id,
            generation,
        })
    };
    let m = parse(&mut f).map_err(|e| r.bad(24, e))?;
    r.finish()?;
    Ok(m)
}

fn load(contexts: &[Context], dir: &Path) -> Result<MultiIndex> {
    let m = read_manifest(&dir.join(MANIFEST))?;
    // Shards: part i on context i mod n; replicas: the one file on each.
    let jobs: Vec<(usize, &Context)> = match m.layout {
        Layout::Shards => (0..m.parts)
            .map(|i| (i, &contexts[i % contexts.len()]))
            .collect(),
        Layout::Replicas => contexts.iter().map(|c| (0, c)).collect(),
    };
    let parts = each_result(&jobs, |_, &(i, ctx)| {
        Index::load(ctx, part_path(dir, m.generation, i))
    })
    .into_iter()
    .collect::<Result<Vec<Index>>>()?;
    check_alike(&parts, dir)?;
    Ok(MultiIndex::from_loaded(parts, m.layout, m.next_id))
}

/// [`Error::BadIndexFile`] when the parts do
/// not share one factory string, dimension and metric.
fn check_alike(parts: &[Index], dir: &Path) -> Result<()> {
    let first = &parts[0];
    let same = |p: &Index| {
        p.factory() == first.factory() && p.dim() == first.dim() && p.metric() == first.metric()
    };
    match parts.iter().position(|p| !same(p)) {
        None => Ok(()),
        Some(i) => Err(Error::BadIndexFile {
            path: dir.display().to_string(),
            offset: 0,
            reason: format!(
                "part {i} ({}, d={}) differs from part 0 ({}, d={})",
                parts[i].factory(),
                parts[i].dim(),
                first.factory(),
                first.dim()
            ),
        }),
    }
}

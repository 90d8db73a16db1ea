//! What the `vaccel index` commands share: the index folder and its file,
//! reading vectors and ids, adding in chunks with progress, summaries.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context as _, Result};
use vector_accelerate::index::{BuildProgress, BuildStage, Index};
use vector_accelerate::{Context, Matrix};

use crate::io::{self, read_matrix, Data};
use crate::progress::Progress;

/// The index file of an index folder.
pub(super) const INDEX_FILE: &str = "index.vai";

/// A vector is added in about this many calls, so the progress bar moves.
pub(super) const ADD_STEPS: usize = 100;
/// Fewest vectors per add call.
pub(super) const MIN_ADD_CHUNK: usize = 4096;

/// The index file of the existing index folder `dir`, or why there is none.
pub(super) fn index_file(dir: &Path) -> Result<PathBuf> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("index folder '{}' not found", dir.display())
        }
        Err(e) => bail!("index folder '{}': {e}", dir.display()),
        Ok(m) if !m.is_dir() => bail!(
            "'{}' is not a folder (an index is a folder made by vaccel index build)",
            dir.display()
        ),
        Ok(_) => {}
    }
    let file = dir.join(INDEX_FILE);
    ensure!(
        file.is_file(),
        "'{}' is not an index folder (it has no {INDEX_FILE})",
        dir.display()
    );
    Ok(file)
}

/// Loads the index of folder `dir` onto `ctx`'s device; returns it with the
/// path of its file.
pub(super) fn load(ctx: &Context, dir: &Path) -> Result<(Index, PathBuf)> {
    let file = index_file(dir)?;
    let index = Index::load(ctx, &file)?;
    Ok((index, file))
}

/// Writes `index` to `file` (a temporary, then renamed over it); returns
/// the file's size.
pub(super) fn save(index: &Index, file: &Path) -> Result<u64> {
    index.save(file)?;
    Ok(std::fs::metadata(file)
        .with_context(|| format!("cannot read the size of '{}'", file.display()))?
        .len())
}

/// Float32 vectors read from `path` (`what` names the file in messages).
pub(super) fn read_vectors(path: &Path, what: &str) -> Result<Matrix> {
    let data =
        read_matrix(path).with_context(|| format!("cannot read {what} '{}'", path.display()))?;
    match data {
        Data::F32(m) => Ok(m),
        Data::Binary(_) => bail!(
            "{what} '{}' holds uint8 (bit-packed binary) rows; an index stores float32 vectors",
            path.display()
        ),
    }
}

/// Vectors to store in an index: float32, finite (checked over the whole
/// file, so a message names the file's row) and of the index's dimension
/// when one is given.
pub(super) fn read_stored(path: &Path, what: &str, dim: Option<usize>) -> Result<Matrix> {
    let m = read_vectors(path, what)?;
    check_dim(&m, path, what, dim)?;
    if let Some(pos) = m.as_slice().iter().position(|v| !v.is_finite()) {
        bail!(
            "{what} '{}': row {} column {} is {}; indexed vectors must be finite",
            path.display(),
            pos / m.dim(),
            pos % m.dim(),
            m.as_slice()[pos]
        );
    }
    Ok(m)
}

/// Fails unless `m` has dimension `dim` (when given).
pub(super) fn check_dim(m: &Matrix, path: &Path, what: &str, dim: Option<usize>) -> Result<()> {
    match dim {
        Some(d) if m.dim() != d => bail!(
            "{what} '{}' has dimension {}; the index holds vectors of dimension {d}",
            path.display(),
            m.dim()
        ),
        _ => Ok(()),
    }
}

/// Ids read from a file of integers (`.npy` of shape `(n,)`, `(n, 1)` or
/// `(1, n)`, `.ibin`, an HDF5 dataset); a negative id is an error.
pub(super) fn read_ids(path: &Path, what: &str) -> Result<Vec<u64>> {
    let read = || -> Result<Vec<u64>> {
        let m = io::read_ids(path)?;
        ensure!(
            m.rows <= 1 || m.dim <= 1,
            "{} x {} ids: expected one id per vector (a vector of ids)",
            m.rows,
            m.dim
        );
        m.ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                u64::try_from(id).map_err(|_| anyhow::anyhow!("id {id} (element {i}) is negative"))
            })
            .collect()
    };
    read().with_context(|| format!("cannot read {what} '{}'", path.display()))
}

/// Checks ids for `rows` new vectors before any work: one per vector, each
/// at most `i64::MAX`, none repeated and none already in `index`.
pub(super) fn check_new_ids(ids: &[u64], rows: usize, index: &Index) -> Result<()> {
    ensure!(
        ids.len() == rows,
        "the ids file has {} ids for {rows} vectors (one id per vector)",
        ids.len()
    );
    let mut seen = HashMap::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        ensure!(
            i64::try_from(id).is_ok(),
            "id {id} (element {i}) is too large: ids are at most {} (results are int64)",
            i64::MAX
        );
        if let Some(first) = seen.insert(id, i) {
            bail!("id {id} appears twice in the ids file (elements {first} and {i})");
        }
        ensure!(
            !index.contains(id),
            "id {id} (element {i}) is already in the index"
        );
    }
    Ok(())
}

/// Adds `data` with `ids` (or the next sequential ids) in about
/// [`ADD_STEPS`] calls, advancing a progress bar; a graph index (which
/// rebuilds its graph when it grows) takes them in one call, its bar
/// following the build's stages.
pub(super) fn add_in_chunks(
    index: &mut Index,
    data: &Matrix,
    ids: Option<&[u64]>,
    show: bool,
) -> Result<()> {
    let n = data.rows();
    let graph = index.factory().starts_with("Graph");
    let (chunk, progress) = if graph {
        let bar = Progress::new(100, "% of the graph built", show);
        let update = bar.updater();
        index.set_build_progress(move |p| update(build_percent(p), 100));
        (n.max(1), bar)
    } else {
        let chunk = n.div_ceil(ADD_STEPS).max(MIN_ADD_CHUNK);
        (chunk, Progress::new(n as u64, "vectors added", show))
    };
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let rows = data.view().slice_rows(start, end);
        match ids {
            Some(ids) => index.add_with_ids(rows, &ids[start..end])?,
            None => {
                let given = index.add(rows)?;
                ensure!(
                    i64::try_from(given.end - 1).is_ok(),
                    "sequential ids would pass {} (results are int64); give ids with --ids",
                    i64::MAX
                );
            }
        }
        if !graph {
            progress.inc((end - start) as u64);
        }
    }
    Ok(())
}

/// A graph build's progress in percent: the stages weighted by their
/// usual share of the time.
fn build_percent(p: &BuildProgress) -> u64 {
    let (from, width) = match p.stage {
        BuildStage::Neighbours => (0, 70),
        BuildStage::Pruning => (70, 15),
        BuildStage::ReverseEdges => (85, 5),
        BuildStage::UpperLevels => (90, 10),
    };
    from + width * p.done / p.total.max(1)
}

/// Prints a summary line on stderr unless `quiet`.
pub(super) fn summary(quiet: bool, line: std::fmt::Arguments<'_>) {
    if !quiet {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

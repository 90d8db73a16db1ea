//! Output files that appear only when complete: each is written under a
//! temporary name in its destination folder and renamed into place by
//! [`commit`]; a file dropped before that removes its temporary.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Context as _, Result};

/// Distinguishes the temporaries of one process.
static NEXT_TEMP: AtomicUsize = AtomicUsize::new(0);

/// The absolute path an output will have (its folder resolved through
/// links), so that two spellings of one path compare equal.
pub fn resolve(dest: &Path) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| anyhow!("'{}' is not a file name", dest.display()))?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder = parent
        .canonicalize()
        .map_err(|e| anyhow!("output folder '{}' is not usable: {e}", parent.display()))?;
    let path = folder.join(name);
    if path.is_dir() {
        bail!("output '{}' is a folder", dest.display());
    }
    Ok(path)
}

/// An output being written under a temporary name next to its destination.
#[derive(Debug)]
pub struct PendingFile {
    dest: PathBuf,
    temp: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// Creates the temporary for `dest` (whose folder must exist).
    pub fn create(dest: &Path) -> Result<Self> {
        let dest = resolve(dest)?;
        let folder = dest.parent().unwrap_or(Path::new("."));
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        for _ in 0..100 {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let temp = folder.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(_) => {
                    return Ok(Self {
                        dest,
                        temp,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => bail!("cannot create output '{}': {e}", dest.display()),
            }
        }
        bail!(
            "cannot create output '{}': no free temporary name",
            dest.display()
        )
    }

    /// Fills the temporary with `body` and flushes it to disk.
    pub fn write(&mut self, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
        let fail = || format!("cannot write output '{}'", self.dest.display());
        let file = File::create(&self.temp).with_context(fail)?;
        let mut w = BufWriter::with_capacity(1 << 20, &file);
        body(&mut w).with_context(fail)?;
        w.flush().with_context(fail)?;
        drop(w);
        file.sync_all().with_context(fail)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Renames every temporary to its destination. When one rename fails, the
/// outputs already renamed are removed, so no partial set is left behind.
pub fn commit(mut files: Vec<PendingFile>) -> Result<()> {
    let mut placed: Vec<PathBuf> = Vec::new();
    for f in &mut files {
        if let Err(e) = fs::rename(&f.temp, &f.dest) {
            for p in &placed {
                let _ = fs::remove_file(p);
            }
            bail!(
                "cannot move output into place as '{}': {e}",
                f.dest.display()
            );
        }
        f.committed = true;
        placed.push(f.dest.clone());
    }
    Ok(())
}

//! Arguments every command shares: the device choice, `k` and the outputs
//! of a k-NN search.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use vector_accelerate::{Context, DEVICE_ENV};

use crate::io::npy;
use crate::io::output::{commit, resolve, PendingFile};

/// `--device`: where a command computes.
#[derive(Debug, Args)]
pub(crate) struct DeviceArg {
    /// Device: cpu, cuda, cuda:N or auto (default: the
    /// VECTOR_ACCELERATE_DEVICE variable, else auto).
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
}

impl DeviceArg {
    /// The context of this choice (see [`make_context`]).
    pub fn context(&self) -> Result<(Context, String)> {
        make_context(self.device.as_deref())
    }
}

/// `--ids` and `--distances`: the files a k-NN search writes.
#[derive(Debug, Args)]
pub(crate) struct NeighborOutputs {
    /// Output: neighbour ids as int64 .npy [queries x k], -1 where missing.
    #[arg(long, value_name = "OUT.npy")]
    pub ids: PathBuf,
    /// Output: distances as float32 .npy [queries x k].
    #[arg(long, value_name = "OUT.npy")]
    pub distances: Option<PathBuf>,
}

impl NeighborOutputs {
    /// Fails when both options name the same file (checked before any
    /// work).
    pub fn check(&self) -> Result<()> {
        if let Some(d) = &self.distances {
            if resolve(&self.ids)? == resolve(d)? {
                bail!(
                    "--ids and --distances name the same file '{}'",
                    self.ids.display()
                );
            }
        }
        Ok(())
    }

    /// Creates the temporaries of the outputs (ids first); nothing appears
    /// under the final names until [`write_neighbors`].
    pub fn create(&self) -> Result<Vec<PendingFile>> {
        let mut files = vec![PendingFile::create(&self.ids)?];
        if let Some(d) = &self.distances {
            files.push(PendingFile::create(d)?);
        }
        Ok(files)
    }
}

/// Writes `[nq x k]` ids and distances into the files made by
/// [`NeighborOutputs::create`] and moves them into place together.
pub(crate) fn write_neighbors(
    mut files: Vec<PendingFile>,
    (nq, k): (usize, usize),
    ids: &[i64],
    dists: &[f32],
) -> Result<()> {
    files[0].write(|w| npy::write_i64(w, nq, k, ids))?;
    if let Some(out) = files.get_mut(1) {
        out.write(|w| npy::write_f32(w, nq, k, dists))?;
    }
    commit(files)
}

/// A context for `--device` when given, else the automatic choice (which
/// honours the `VECTOR_ACCELERATE_DEVICE` variable); also says how the
/// device was chosen.
pub(crate) fn make_context(device: Option<&str>) -> Result<(Context, String)> {
    match device {
        Some(spec) => {
            let ctx = Context::from_spec(spec).with_context(|| format!("device '{spec}'"))?;
            let how = if spec.trim().eq_ignore_ascii_case("auto") {
                "chosen automatically"
            } else {
                "from --device"
            };
            Ok((ctx, how.to_string()))
        }
        None => {
            let env = std::env::var(DEVICE_ENV).unwrap_or_default();
            let ctx = Context::new().with_context(|| format!("{DEVICE_ENV}={env}"))?;
            let how = match env.trim() {
                "" | "auto" => "chosen automatically".to_string(),
                _ => format!("from {DEVICE_ENV}={env}"),
            };
            Ok((ctx, how))
        }
    }
}

/// Fails unless `k >= 1`.
pub(crate) fn check_k(k: usize) -> Result<()> {
    anyhow::ensure!(k >= 1, "k must be at least 1 (got {k})");
    Ok(())
}

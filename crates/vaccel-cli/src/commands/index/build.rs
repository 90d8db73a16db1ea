//! `vaccel index build`, `add` and `remove`: the commands that write an
//! index.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use vector_accelerate::index::{recommended_nlist, IdSelector, Index};
use vector_accelerate::{Matrix, Metric};

use super::files::{
    add_in_chunks, check_new_ids, load, read_ids, read_stored, save, summary, INDEX_FILE,
};
use crate::commands::args::DeviceArg;
use crate::progress::Progress;

/// Arguments of `vaccel index build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Index factory string: Flat (exact), or IVF<nlist>,Flat (inverted
    /// lists; IVF,Flat picks nlist from the number of training vectors).
    #[arg(long, value_name = "FACTORY")]
    factory: String,
    /// l2 (squared), euclidean, cosine, cosine-similarity, ip, abs-ip, l1,
    /// linf, minkowski:P, hamming, hamming-normalized or jaccard.
    #[arg(long, value_name = "METRIC")]
    metric: String,
    /// Vectors to index: float32 .npy (or float64/float16, converted),
    /// .fvecs or .bvecs.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Output: a folder for the index (created; an existing one must be
    /// empty).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Ids of the vectors: an integer .npy vector, one per row (default:
    /// 0, 1, 2, ...).
    #[arg(long, value_name = "FILE")]
    ids: Option<PathBuf>,
    /// Training vectors for an IVF index (default: the data).
    #[arg(long, value_name = "FILE")]
    train: Option<PathBuf>,
    /// Lists an IVF search scans per query unless told otherwise (default 1).
    #[arg(long, value_name = "N")]
    nprobe: Option<usize>,
    #[command(flatten)]
    device: DeviceArg,
    /// Print neither the progress bars nor the summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `vaccel index add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The index folder (made by vaccel index build).
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    /// Vectors to add, in the formats of build --data.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Their ids: an integer .npy vector, one per row, none already in the
    /// index (default: after the largest id the index has seen).
    #[arg(long, value_name = "FILE")]
    ids: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    /// Print neither the progress bar nor the summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Arguments of `vaccel index remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The index folder (made by vaccel index build).
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    /// Ids to remove: an integer .npy vector (ids not in the index are
    /// counted and skipped).
    #[arg(long, value_name = "FILE")]
    ids: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
    /// Print no summary.
    #[arg(short, long)]
    quiet: bool,
}

/// Builds an index from the data and saves it in a new folder; nothing is
/// created unless every step succeeded.
pub fn run_build(a: BuildArgs) -> Result<()> {
    let metric: Metric = a.metric.parse()?;
    check_out_folder(&a.out)?;
    let (ctx, _) = a.device.context()?;
    let data = read_stored(&a.data, "data file", None)?;
    let train = match &a.train {
        Some(p) => Some(read_stored(p, "training file", Some(data.dim()))?),
        None => None,
    };
    let mut index = Index::new(&ctx, data.dim(), &a.factory, metric)?;
    if let Some(n) = a.nprobe {
        index.set_nprobe(n).context("--nprobe")?;
    }
    let ids = a
        .ids
        .as_deref()
        .map(|p| read_ids(p, "ids file"))
        .transpose()?;
    if let Some(ids) = &ids {
        check_new_ids(ids, data.rows(), &index)?;
    }

    let started = Instant::now();
    train_index(&mut index, train.as_ref().unwrap_or(&data), !a.quiet)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    add_in_chunks(&mut index, &data, ids.as_deref(), !a.quiet)?;
    let add_seconds = started.elapsed().as_secs_f64();
    let folder = NewFolder::create(&a.out)?;
    let bytes = save(&index, &a.out.join(INDEX_FILE))?;
    folder.keep();

    summary(
        a.quiet,
        format_args!(
            "build: {} {metric} index of {} x {} vectors, device {}: trained in {train_seconds:.3} s, \
             added in {add_seconds:.3} s; saved {} ({bytes} bytes)",
            index.factory(),
            index.len(),
            index.dim(),
            ctx.device(),
            a.out.join(INDEX_FILE).display()
        ),
    );
    Ok(())
}

/// Trains an index that needs it (IVF) on `train`, showing a spinner.
fn train_index(index: &mut Index, train: &Matrix, show: bool) -> Result<()> {
    if index.is_trained() {
        return Ok(());
    }
    let lists = index
        .nlist()
        .unwrap_or_else(|| recommended_nlist(train.rows()));
    let unit = format!(
        "k-means iterations ({lists} lists, {} vectors)",
        train.rows()
    );
    let bar = Progress::new(1, &unit, show);
    let update = bar.updater();
    index
        .train_with_progress(train, move |p| {
            update(p.iteration as u64, p.max_iterations as u64)
        })
        .context("training")?;
    Ok(())
}

/// Adds vectors to an index and saves it over its file.
pub fn run_add(a: AddArgs) -> Result<()> {
    let (ctx, _) = a.device.context()?;
    let (mut index, file) = load(&ctx, &a.index)?;
    let data = read_stored(&a.data, "data file", Some(index.dim()))?;
    let ids = a
        .ids
        .as_deref()
        .map(|p| read_ids(p, "ids file"))
        .transpose()?;
    if let Some(ids) = &ids {
        check_new_ids(ids, data.rows(), &index)?;
    }
    let started = Instant::now();
    add_in_chunks(&mut index, &data, ids.as_deref(), !a.quiet)?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = save(&index, &file)?;
    summary(
        a.quiet,
        format_args!(
            "add: {} vectors added in {seconds:.3} s, device {}; the index holds {}; \
             saved {} ({bytes} bytes)",
            data.rows(),
            ctx.device(),
            index.len(),
            file.display()
        ),
    );
    Ok(())
}

/// Removes the listed ids from an index and saves it (unless none was in it).
pub fn run_remove(a: RemoveArgs) -> Result<()> {
    let (ctx, _) = a.device.context()?;
    let (mut index, file) = load(&ctx, &a.index)?;
    let sel = IdSelector::allow(read_ids(&a.ids, "ids file")?);
    // (The list without its repeats.)
    let asked = match &sel {
        IdSelector::Allow(list) => list.len(),
        _ => unreachable!("an allow-list"),
    };
    let removed = index.remove_ids(&sel)?;
    if removed > 0 {
        save(&index, &file)?;
    }
    summary(
        a.quiet,
        format_args!(
            "remove: {removed} of {asked} ids removed ({} not in the index); {} vectors left",
            asked - removed,
            index.len()
        ),
    );
    Ok(())
}

/// Fails unless `dir` can become a new index folder: absent (with an
/// existing parent) or an empty folder.
fn check_out_folder(dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("output '{}' exists and is not a folder", dir.display());
        }
        let mut entries = fs::read_dir(dir)
            .with_context(|| format!("cannot read output folder '{}'", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "output folder '{}' exists and is not empty (give a new or empty folder)",
                dir.display()
            );
        }
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "cannot create output folder '{}': its parent '{}' is not a folder",
            dir.display(),
            parent.display()
        );
    }
    Ok(())
}

/// The output folder of a build, made (when absent) only once the index is
/// ready; removed again on drop unless [`NewFolder::keep`] was called.
struct NewFolder {
    /// The folder this run made (`None` when it existed, empty, before).
    made: Option<PathBuf>,
}

impl NewFolder {
    /// Makes `dir`, or accepts it when it is (still) an empty folder.
    fn create(dir: &Path) -> Result<Self> {
        match fs::create_dir(dir) {
            Ok(()) => Ok(Self {
                made: Some(dir.to_path_buf()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                check_out_folder(dir)?;
                Ok(Self { made: None })
            }
            Err(e) => bail!("cannot create output folder '{}': {e}", dir.display()),
        }
    }

    /// Keeps the folder.
    fn keep(mut self) {
        self.made = None;
    }
}

impl Drop for NewFolder {
    fn drop(&mut self) {
        // The index writer removes its own temporary on failure, so the
        // folder is empty again.
        if let Some(dir) = &self.made {
            let _ = fs::remove_dir(dir);
        }
    }
}

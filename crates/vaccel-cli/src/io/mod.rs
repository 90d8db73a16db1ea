//! Vector files: `.npy` (read and write), `.fvecs` and `.bvecs`, the
//! big-ann-benchmarks `.fbin`, `.u8bin`, `.i8bin` and `.ibin`, and
//! ann-benchmarks HDF5 files (read); and outputs that appear only once
//! they are complete.

mod bin;
mod hdf5;
mod literal;
pub mod npy;
pub mod output;
pub mod source;
mod vecs;

pub use source::{Data, IdMatrix};

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use source::open_input;

/// The input formats, for messages.
const FORMATS: &str =
    ".npy, .fvecs, .bvecs, .fbin, .u8bin, .i8bin or .hdf5/.h5 (FILE.hdf5#DATASET)";

/// A file's format, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// NumPy `.npy`.
    Npy,
    /// TEXMEX `.fvecs`.
    Fvecs,
    /// TEXMEX `.bvecs`.
    Bvecs,
    /// big-ann-benchmarks `.fbin`, `.u8bin`, `.i8bin` or `.ibin`.
    Bin(bin::Element),
    /// HDF5 `.hdf5` or `.h5`.
    Hdf5,
}

/// Splits `path` into the file, its format and, for HDF5, the dataset
/// named after `#` (`glove-100-angular.hdf5#train`).
fn parse_path(path: &Path) -> Result<(PathBuf, Format, Option<String>)> {
    if let Some(text) = path.to_str() {
        for (i, _) in text.match_indices('#') {
            let file = &text[..i];
            let lower = file.to_ascii_lowercase();
            if lower.ends_with(".hdf5") || lower.ends_with(".h5") {
                return Ok((file.into(), Format::Hdf5, Some(text[i + 1..].to_string())));
            }
        }
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let format = match ext.as_str() {
        "npy" => Format::Npy,
        "fvecs" => Format::Fvecs,
        "bvecs" => Format::Bvecs,
        "fbin" => Format::Bin(bin::Element::F32),
        "u8bin" => Format::Bin(bin::Element::U8),
        "i8bin" => Format::Bin(bin::Element::I8),
        "ibin" => Format::Bin(bin::Element::I32),
        "hdf5" | "h5" => Format::Hdf5,
        _ => {
            // A missing file is the more useful message.
            open_input(path)?;
            bail!("unknown file type '.{ext}' (expected {FORMATS})")
        }
    };
    Ok((path.to_path_buf(), format, None))
}

/// Reads a matrix of vectors, the format chosen by extension: `.npy`,
/// `.fvecs`, `.bvecs`, `.fbin`, `.u8bin`, `.i8bin` (bytes become `f32`
/// values), or a dataset of an HDF5 file (`FILE.hdf5#DATASET`).
pub fn read_matrix(path: &Path) -> Result<Data> {
    let (file, format, dataset) = parse_path(path)?;
    match format {
        Format::Npy => npy::read(&file),
        Format::Fvecs => vecs::read(&file, vecs::Element::F32).map(Data::F32),
        Format::Bvecs => vecs::read(&file, vecs::Element::U8).map(Data::F32),
        Format::Bin(element) => bin::read_vectors(&file, element).map(Data::F32),
        Format::Hdf5 => hdf5::read_vectors(&file, dataset.as_deref()).map(Data::F32),
    }
}

/// Reads a matrix of integer ids (ground-truth neighbours): `.ibin`, an
/// integer `.npy` array, or an integer dataset of an HDF5 file
/// (`FILE.hdf5#neighbors`). Errors name the problem and its byte offset;
/// callers add the path, as for [`read_matrix`].
pub fn read_ids(path: &Path) -> Result<IdMatrix> {
    let (file, format, dataset) = parse_path(path)?;
    match format {
        Format::Npy => npy::read_ids(&file),
        Format::Bin(bin::Element::I32) => bin::read_ids(&file),
        Format::Hdf5 => hdf5::read_ids(&file, dataset.as_deref()),
        _ => bail!(
            "'{}' holds vectors, not ids (ids are read from .ibin, integer .npy arrays and \
             integer HDF5 datasets)",
            file.display()
        ),
    }
}

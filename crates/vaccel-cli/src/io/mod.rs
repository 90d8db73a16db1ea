//! Vector files: `.npy` (read and write), `.fvecs` and `.bvecs`, and the
//! big-ann-benchmarks `.fbin`, `.u8bin`, `.i8bin` and `.ibin` (read); and
//! outputs that appear only once they are complete.

mod bin;
mod literal;
pub mod npy;
pub mod output;
pub(crate) mod source;
mod vecs;

pub use source::{Data, IdMatrix};

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use source::open_input;

/// The input formats, for messages.
const FORMATS: &str = ".npy, .fvecs, .bvecs, .fbin, .u8bin or .i8bin";

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
}

/// The format of `path`, from its extension.
fn parse_path(path: &Path) -> Result<(PathBuf, Format)> {
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
        _ => {
            // A missing file is the more useful message.
            open_input(path)?;
            bail!("unknown file type '.{ext}' (expected {FORMATS})")
        }
    };
    Ok((path.to_path_buf(), format))
}

/// Reads a matrix of vectors, the format chosen by extension: `.npy`,
/// `.fvecs`, `.bvecs`, `.fbin`, `.u8bin` or `.i8bin` (bytes become `f32`
/// values).
pub fn read_matrix(path: &Path) -> Result<Data> {
    let (file, format) = parse_path(path)?;
    match format {
        Format::Npy => npy::read(&file),
        Format::Fvecs => vecs::read(&file, vecs::Element::F32).map(Data::F32),
        Format::Bvecs => vecs::read(&file, vecs::Element::U8).map(Data::F32),
        Format::Bin(element) => bin::read_vectors(&file, element).map(Data::F32),
    }
}

/// Reads a matrix of integer ids (ground-truth neighbours): `.ibin` or an
/// integer `.npy` array. Errors name the problem and its byte offset;
/// callers add the path, as for [`read_matrix`].
// No command reads ids yet; the readers are tested in their modules.
#[allow(dead_code)]
pub fn read_ids(path: &Path) -> Result<IdMatrix> {
    let (file, format) = parse_path(path)?;
    match format {
        Format::Npy => npy::read_ids(&file),
        Format::Bin(bin::Element::I32) => bin::read_ids(&file),
        _ => bail!(
            "'{}' holds vectors, not ids (ids are read from .ibin and integer .npy arrays)",
            file.display()
        ),
    }
}

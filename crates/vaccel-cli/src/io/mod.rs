//! Vector files: `.npy` (read and write), `.fvecs` and `.bvecs` (read), and
//! outputs that appear only once they are complete.

mod literal;
pub mod npy;
pub mod output;
pub(crate) mod source;
mod vecs;

pub use source::Data;

use std::path::Path;

use anyhow::{bail, Result};

use source::open_input;

/// Reads a matrix from `.npy`, `.fvecs` or `.bvecs`, chosen by extension.
pub fn read_matrix(path: &Path) -> Result<Data> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "npy" => npy::read(path),
        "fvecs" => vecs::read(path, vecs::Element::F32).map(Data::F32),
        "bvecs" => vecs::read(path, vecs::Element::U8).map(Data::F32),
        _ => {
            // A missing file is the more useful message.
            open_input(path)?;
            bail!("unknown file type '.{ext}' (expected .npy, .fvecs or .bvecs)")
        }
    }
}

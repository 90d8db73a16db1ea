//! Reading input files: the rows a reader returns, opening with a size,
//! and checked allocation.

use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use vector_accelerate::{BinaryMatrix, Input, Matrix};

/// Bytes moved per read or write call when converting to or from bytes.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Vectors read from a file: dense `f32` rows or bit-packed binary rows.
#[derive(Debug)]
pub enum Data {
    /// Dense `f32` rows.
    F32(Matrix),
    /// Bit-packed binary rows.
    Binary(BinaryMatrix),
}

impl Data {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Data::F32(m) => m.rows(),
            Data::Binary(b) => b.rows(),
        }
    }

    /// Bytes the rows take in memory (and on a device).
    pub fn bytes(&self) -> usize {
        match self {
            Data::F32(m) => m.as_slice().len() * 4,
            Data::Binary(b) => b.view().as_words().len() * 8,
        }
    }

    /// A short description such as `float32 [1000 x 128]`.
    pub fn describe(&self) -> String {
        match self {
            Data::F32(m) => format!("float32 [{} x {}]", m.rows(), m.dim()),
            Data::Binary(b) => format!("binary [{} x {} bits]", b.rows(), b.bits()),
        }
    }

    /// All rows as a library input.
    pub fn input(&self) -> Input<'_> {
        match self {
            Data::F32(m) => m.into(),
            Data::Binary(b) => b.into(),
        }
    }

    /// Rows `start..end` as a library input.
    pub fn slice(&self, start: usize, end: usize) -> Input<'_> {
        match self {
            Data::F32(m) => m.view().slice_rows(start, end).into(),
            Data::Binary(b) => b.view().slice_rows(start, end).into(),
        }
    }
}

/// Opens an input file, returning it with its length.
pub(crate) fn open_input(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!("file not found"),
        _ => anyhow!("cannot open: {e}"),
    })?;
    let meta = file.metadata().context("cannot read the file's size")?;
    if meta.is_dir() {
        bail!("is a folder, not a file");
    }
    Ok((file, meta.len()))
}

/// An empty vector with room for `count` elements, or an error instead of
/// an abort when the memory cannot be had.
pub(crate) fn try_alloc<T>(count: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(count).map_err(|_| {
        anyhow!(
            "cannot allocate {} bytes of memory",
            count.saturating_mul(std::mem::size_of::<T>())
        )
    })?;
    Ok(v)
}

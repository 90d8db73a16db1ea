//! The `.fvecs` / `.bvecs` formats of the TEXMEX corpora: each vector is a
//! little-endian `i32` dimension followed by that many `f32` (fvecs) or
//! `u8` (bvecs) values. Byte values become `f32`, as FAISS reads them.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use vector_accelerate::Matrix;

use super::source::{open_input, try_alloc, CHUNK_BYTES};

/// The element type of a vecs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// `.fvecs`: little-endian `f32`.
    F32,
    /// `.bvecs`: `u8`.
    U8,
}

impl Element {
    fn size(self) -> u64 {
        match self {
            Element::F32 => 4,
            Element::U8 => 1,
        }
    }
}

/// Reads every vector of a vecs file; all must share the first one's dimension.
pub fn read(path: &Path, element: Element) -> Result<Matrix> {
    let (mut file, len) = open_input(path)?;
    if len == 0 {
        bail!("the file is empty (zero vectors)");
    }
    let mut word = [0u8; 4];
    if len < 4 {
        bail!("truncated file: {len} bytes, too short for the first vector's dimension");
    }
    file.read_exact(&mut word).context("read failed")?;
    let dim = i32::from_le_bytes(word);
    if dim <= 0 {
        bail!("invalid dimension {dim} in the first vector (must be at least 1)");
    }
    let dim = dim as usize;
    let record = 4 + dim as u64 * element.size();
    let (rows, rest) = (len / record, len % record);
    if rows == 0 {
        bail!("truncated file: the first vector needs {record} bytes, found {len}");
    }
    let rows = rows as usize;
    let mut data = try_alloc::<f32>(rows * dim)?;
    file.seek(SeekFrom::Start(0)).context("seek failed")?;
    let record = record as usize;
    let per_chunk = (CHUNK_BYTES / record).max(1);
    let mut buf = vec![0u8; per_chunk.min(rows) * record];
    let mut done = 0;
    while done < rows {
        let n = per_chunk.min(rows - done);
        let bytes = &mut buf[..n * record];
        file.read_exact(bytes).context("read failed")?;
        for (j, rec) in bytes.chunks_exact(record).enumerate() {
            check_dim(rec, dim, done + j)?;
            let values = &rec[4..];
            match element {
                Element::F32 => data.extend(
                    values
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
                Element::U8 => data.extend(values.iter().map(|&b| f32::from(b))),
            }
        }
        done += n;
    }
    if rest > 0 {
        if rest >= 4 {
            file.read_exact(&mut word).context("read failed")?;
            check_dim(&word, dim, rows)?;
        }
        bail!("truncated file: vector {rows} needs {record} bytes, found {rest}");
    }
    Ok(Matrix::new(data, dim)?)
}

/// Checks the dimension word at the start of record `index`.
fn check_dim(record: &[u8], dim: usize, index: usize) -> Result<()> {
    let d = i32::from_le_bytes([record[0], record[1], record[2], record[3]]);
    if d as i64 != dim as i64 {
        bail!(
            "inconsistent vector dimensions: vector {index} has dimension {d}, \
             but vector 0 has {dim}"
        );
    }
    Ok(())
}

//! Reading input files: the rows and ids a reader returns, opening with a
//! size, checked allocation and chunked decoding.

use std::fs::File;
use std::io::Read;
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

/// A matrix of integer ids (ground-truth neighbours), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMatrix {
    /// Number of rows (queries).
    pub rows: usize,
    /// Ids per row.
    pub dim: usize,
    /// The `rows * dim` ids, row after row.
    pub ids: Vec<i64>,
}

// Commands read ids whole; the readers' tests look at rows.
#[allow(dead_code)]
impl IdMatrix {
    /// The ids of row `i`.
    pub fn row(&self, i: usize) -> &[i64] {
        &self.ids[i * self.dim..(i + 1) * self.dim]
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
pub fn try_alloc<T>(count: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(count).map_err(|_| {
        anyhow!(
            "cannot allocate {} bytes of memory",
            count.saturating_mul(std::mem::size_of::<T>())
        )
    })?;
    Ok(v)
}

/// Appends `count` elements decoded from `r` to `out`, one chunk of bytes
/// at a time.
pub(crate) fn read_decoded<T, const N: usize>(
    r: &mut impl Read,
    count: usize,
    decode: &impl Fn([u8; N]) -> T,
    out: &mut Vec<T>,
) -> Result<()> {
    let per_chunk = CHUNK_BYTES / N;
    let mut buf = vec![0u8; N * per_chunk.min(count)];
    let mut left = count;
    while left > 0 {
        let n = left.min(per_chunk);
        let bytes = &mut buf[..n * N];
        r.read_exact(bytes)
            .context("read failed (the file shrank while it was read?)")?;
        out.extend(
            bytes
                .chunks_exact(N)
                .map(|b| decode(b.try_into().expect("N bytes"))),
        );
        left -= n;
    }
    Ok(())
}

/// An integer of `N` bytes (little- or big-endian, signed or not) widened
/// to `i64`; unsigned 64-bit values above `i64::MAX` wrap to negative
/// numbers, which [`check_unsigned_ids`] then refuses.
pub(crate) fn widen_int<const N: usize>(bytes: [u8; N], big_endian: bool, signed: bool) -> i64 {
    let mut wide = [0u8; 8];
    if big_endian {
        wide[8 - N..].copy_from_slice(&bytes);
        let v = u64::from_be_bytes(wide);
        sign_extend(v, N, signed)
    } else {
        wide[..N].copy_from_slice(&bytes);
        sign_extend(u64::from_le_bytes(wide), N, signed)
    }
}

/// `v`, the zero-extended value of an `n`-byte integer, as an `i64`.
fn sign_extend(v: u64, n: usize, signed: bool) -> i64 {
    let shift = 64 - 8 * n as u32;
    if signed {
        ((v << shift) as i64) >> shift
    } else {
        v as i64
    }
}

/// Refuses ids read from unsigned 64-bit integers that do not fit `i64`
/// (they were wrapped to negative values by [`widen_int`]).
pub(crate) fn check_unsigned_ids(ids: &[i64]) -> Result<()> {
    match ids.iter().position(|&v| v < 0) {
        Some(i) => bail!(
            "id {} (element {i}) is larger than the largest int64",
            ids[i] as u64
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_widen_with_their_sign_and_order() {
        assert_eq!(widen_int([0xFF], false, true), -1);
        assert_eq!(widen_int([0xFF], false, false), 255);
        assert_eq!(widen_int([0xFE, 0xFF], false, true), -2);
        assert_eq!(widen_int([0xFF, 0xFE], true, true), -2);
        assert_eq!(widen_int([0, 0, 0, 0x80], false, false), 1 << 31);
        assert_eq!(widen_int([0, 0, 0, 0x80], false, true), -(1 << 31));
        assert_eq!(widen_int(7i64.to_be_bytes(), true, true), 7);
        assert_eq!(widen_int(u64::MAX.to_le_bytes(), false, false), -1);
        assert!(check_unsigned_ids(&[1, -1])
            .unwrap_err()
            .to_string()
            .contains("18446744073709551615"));
    }
}

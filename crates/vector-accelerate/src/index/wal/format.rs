//! The log's byte format: segment header, record header, the operations.

use std::borrow::Cow;

pub(crate) const MAGIC: &[u8; 8] = b"VAWAL\0\0\0";
pub(crate) const VERSION: u32 = 1;
/// Bytes of a segment header.
pub(crate) const SEGMENT_HEADER: u64 = 20;
/// Bytes of a record header (length, CRC, sequence, kind).
pub(crate) const RECORD_HEADER: usize = 17;
pub(crate) const KIND_ADD: u8 = 1;
pub(crate) const KIND_REMOVE: u8 = 2;

/// One logged operation (borrowing the caller's data while it is written;
/// owned when read back).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op<'a> {
    /// Rows added under ids (`ids.len()` rows of `dim` values).
    Add {
        ids: Cow<'a, [u64]>,
        dim: usize,
        rows: Cow<'a, [f32]>,
    },
    /// Ids removed.
    Remove { ids: Cow<'a, [u64]> },
}

/// A record read back: its sequence and operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub seq: u64,
    pub op: Op<'static>,
}

/// The bytes of one record, built in one buffer.
pub(crate) fn encode(seq: u64, op: &Op<'_>) -> Vec<u8> {
    let (kind, count, dim, ids, rows): (u8, usize, Option<usize>, &[u64], &[f32]) = match op {
        Op::Add { ids, dim, rows } => (KIND_ADD, ids.len(), Some(*dim), ids, rows),
        Op::Remove { ids } => (KIND_REMOVE, ids.len(), None, ids, &[]),
    };
    let payload = 8 + dim.map_or(0, |_| 8) + ids.len() * 8 + rows.len() * 4;
    let mut out = Vec::with_capacity(RECORD_HEADER + payload);
    out.extend_from_slice(&(payload as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the CRC, below
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&(count as u64).to_le_bytes());
    if let Some(d) = dim {
        out.extend_from_slice(&(d as u64).to_le_bytes());
    }
    out.extend_from_slice(bytemuck::cast_slice(ids));
    out.extend_from_slice(bytemuck::cast_slice(rows));
    let crc = crc32fast::hash(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

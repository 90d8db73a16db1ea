//! The log's byte format: segment header, record header, the operations.

pub(crate) const MAGIC: &[u8; 8] = b"VAWAL\0\0\0";
pub(crate) const VERSION: u32 = 1;
/// Bytes of a segment header.
pub(crate) const SEGMENT_HEADER: u64 = 20;
/// Bytes of a record header (length, CRC, sequence, kind).
pub(crate) const RECORD_HEADER: usize = 17;
pub(crate) const KIND_ADD: u8 = 1;
pub(crate) const KIND_REMOVE: u8 = 2;

/// One logged operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// Rows added under ids (`ids.len()` rows of `dim` values).
    Add {
        ids: Vec<u64>,
        dim: usize,
        rows: Vec<f32>,
    },
    /// Ids removed.
    Remove { ids: Vec<u64> },
}

/// A record read back: its sequence and operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub seq: u64,
    pub op: Op,
}

/// The bytes of one record.
pub(crate) fn encode(seq: u64, op: &Op) -> Vec<u8> {
    let mut payload = Vec::new();
    let kind = match op {
        Op::Add { ids, dim, rows } => {
            payload.extend_from_slice(&(ids.len() as u64).to_le_bytes());
            payload.extend_from_slice(&(*dim as u64).to_le_bytes());
            payload.extend_from_slice(bytemuck::cast_slice(ids));
            payload.extend_from_slice(bytemuck::cast_slice(rows));
            KIND_ADD
        }
        Op::Remove { ids } => {
            payload.extend_from_slice(&(ids.len() as u64).to_le_bytes());
            payload.extend_from_slice(bytemuck::cast_slice(ids));
            KIND_REMOVE
        }
    };
    let mut body = Vec::with_capacity(9 + payload.len());
    body.extend_from_slice(&seq.to_le_bytes());
    body.push(kind);
    body.extend_from_slice(&payload);
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

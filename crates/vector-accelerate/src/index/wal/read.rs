//! Reading a log back: every segment in sequence order, each record checked.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::format::{
    Op, Record, KIND_ADD, KIND_REMOVE, MAGIC, RECORD_HEADER, SEGMENT_HEADER, VERSION,
};
use crate::core::error::{Error, Result};
use crate::index::file::io_error;

/// A torn final record dropped by [`read_log`]: a crash mid-append.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Torn {
    /// The segment.
    pub path: PathBuf,
    /// Where the torn record starts (the file's valid length).
    pub offset: u64,
    /// What was found there.
    pub reason: String,
}

/// What a log holds: its records in order, the sequence the next one gets,
/// and the torn record dropped at its end, if any.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub records: Vec<Record>,
    pub next_seq: u64,
    pub torn: Option<Torn>,
}

/// The files of `dir` named `<prefix><20-digit number><suffix>` (log
/// segments, snapshots), with their numbers, in number order.
pub(crate) fn numbered_files(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> Result<Vec<(u64, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, 0, &e))?;
    let mut found = Vec::new();
    for e in entries {
        let e = e.map_err(|e| io_error(dir, 0, &e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let number = name
            .strip_prefix(prefix)
            .and_then(|s| s.strip_suffix(suffix))
            .filter(|s| s.len() == 20)
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(n) = number {
            found.push((n, e.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Reads every record of the log in `dir` (whose first record, when it
/// has none, would be `first`).
pub(crate) fn read_log(dir: &Path, first: u64) -> Result<Replay> {
    let segs = numbered_files(dir, "wal-", ".log")?;
    let mut out = Replay {
        next_seq: segs.first().map_or(first, |s| s.0),
        ..Replay::default()
    };
    for (i, (seq, path)) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if *seq != out.next_seq {
            let reason = format!(
                "segment starts at sequence {seq}, expected {}",
                out.next_seq
            );
            return Err(bad(path, 0, reason));
        }
        let bytes = std::fs::read(path).map_err(|e| io_error(path, 0, &e))?;
        read_segment(path, &bytes, *seq, last, &mut out)?;
    }
    Ok(out)
}

fn bad(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::BadIndexFile {
        path: path.display().to_string(),
        offset,
        reason: reason.into(),
    }
}

/// The records of one segment appended to `out`.
fn read_segment(path: &Path, b: &[u8], seq: u64, last: bool, out: &mut Replay) -> Result<()> {
    let torn = |out: &mut Replay, offset: usize, reason: String| -> Result<()> {
        if !last {
            return Err(bad(
                path,
                offset as u64,
                format!("{reason} inside an older segment"),
            ));
        }
        out.torn = Some(Torn {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        });
        Ok(())
    };
    if b.len() < SEGMENT_HEADER as usize {
        return torn(out, 0, format!("segment header cut at {} bytes", b.len()));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    let first = u64::from_le_bytes(b[12..20].try_into().expect("8 bytes"));
    if &b[..8] != MAGIC || version != VERSION || first != seq {
        let reason = format!("not a version {VERSION} log segment of sequence {seq}");
        return Err(bad(path, 0, reason));
    }
    let mut at = SEGMENT_HEADER as usize;
    while at < b.len() {
        if b[at..].iter().all(|&x| x == 0) {
            // A file extended past its last write (a crash before the data
            // reached the disk) reads as zeros.
            return torn(
                out,
                at,
                format!("{} zero bytes after the last record", b.len() - at),
            );
        }
        if b.len() - at < RECORD_HEADER {
            return torn(
                out,
                at,
                format!("record header cut at {} bytes", b.len() - at),
            );
        }
        let len = u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(b[at + 4..at + 8].try_into().expect("4 bytes"));
        let end = at + RECORD_HEADER + len;
        if end > b.len() {
            let reason = format!(
                "record of {len} bytes cut at {} bytes",
                b.len() - at - RECORD_HEADER
            );
            return torn(out, at, reason);
        }
        let body = &b[at + 8..end];
        if crc32fast::hash(body) != crc {
            if end == b.len() {
                return torn(out, at, "final record fails its checksum".into());
            }
            return Err(bad(path, at as u64, "record fails its checksum"));
        }
        let rec_seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        if rec_seq != out.next_seq {
            let reason = format!("record has sequence {rec_seq}, expected {}", out.next_seq);
            return Err(bad(path, at as u64, reason));
        }
        let op = decode(body[8], &body[9..]).map_err(|r| bad(path, at as u64, r))?;
        out.records.push(Record { seq: rec_seq, op });
        out.next_seq += 1;
        at = end;
    }
    Ok(())
}

/// The operation of a record whose checksum held.
fn decode(kind: u8, p: &[u8]) -> std::result::Result<Op<'static>, String> {
    let word = |i: usize| -> std::result::Result<u64, String> {
        p.get(i * 8..i * 8 + 8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .ok_or_else(|| format!("payload of {} bytes too short", p.len()))
    };
    let ids_at = |from: usize, n: usize| -> Vec<u64> {
        p[from..from + n * 8]
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect()
    };
    match kind {
        KIND_ADD => {
            let (n, dim) = (word(0)? as usize, word(1)? as usize);
            let need = n
                .checked_mul(8)
                .and_then(|a| n.checked_mul(dim)?.checked_mul(4)?.checked_add(a))
                .and_then(|a| a.checked_add(16));
            if need != Some(p.len()) {
                return Err(format!("add of {n} rows x {dim} in {} bytes", p.len()));
            }
            let rows = p[16 + n * 8..]
                .chunks_exact(4)
                .map(|w| f32::from_le_bytes(w.try_into().expect("4 bytes")))
                .collect();
            Ok(Op::Add {
                ids: ids_at(16, n).into(),
                dim,
                rows: Cow::Owned(rows),
            })
        }
        KIND_REMOVE => {
            let n = word(0)? as usize;
            if n.checked_mul(8).and_then(|a| a.checked_add(8)) != Some(p.len()) {
                return Err(format!("remove of {n} ids in {} bytes", p.len()));
            }
            Ok(Op::Remove {
                ids: ids_at(8, n).into(),
            })
        }
        k => Err(format!("unknown record kind {k}")),
    }
}

//! The write-ahead log of a durable index: every acknowledged `add` and
//! `remove` is a record appended to a segment file and synced before the
//! operation returns; concurrent writers share one sync (group commit).
//!
//! Layout, little-endian. A segment `wal-<first sequence, 20 digits>.log`
//! starts with `b"VAWAL\0\0\0"`, `u32` version, `u64` first sequence. Each
//! record is `u32` payload length, `u32` CRC-32 of everything after it
//! (sequence, kind, payload), `u64` sequence, `u8` kind, the payload:
//! - add (kind 1): `u64` rows, `u64` dim, `rows` ids (`u64`), `rows * dim`
//!   values (`f32`);
//! - remove (kind 2): `u64` count, the ids (`u64`).
//!
//! Sequences are contiguous across segments, which sort by name. Reading
//! drops a torn final record (a crash mid-append: it ends past the end of
//! the file, or fails its CRC with nothing after it) and reports it; any
//! other damage is a [`Error::BadIndexFile`] naming the file and offset.
//! A failed write or sync poisons the writer: the operation and every later
//! one return the error until the log is reopened (what a failed sync left
//! in the file cannot be trusted).

mod format;
mod read;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::core::error::{Error, Result};
use crate::index::file::{io_error, sync_dir};

use format::{encode, MAGIC, SEGMENT_HEADER, VERSION};
#[allow(unused_imports)] // `Record` is read by the tests
pub(crate) use format::{Op, Record};
#[allow(unused_imports)] // `Replay` is read by the tests
pub(crate) use read::{numbered_files, read_log, Replay, Torn};

/// Where a segment's bytes go: a file, or (in tests) one that fails on
/// demand.
pub(crate) trait Sink: Send + Sync {
    /// Appends all of `bytes` (or fails, having written a prefix).
    fn append(&self, bytes: &[u8]) -> std::io::Result<()>;
    /// Makes what was appended durable.
    fn sync(&self) -> std::io::Result<()>;
    /// Cuts the file back to `len` bytes (after a failed append).
    fn truncate(&self, len: u64) -> std::io::Result<()>;
}

impl Sink for File {
    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut f: &File = self;
        f.write_all(bytes)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.sync_data()
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }
}

/// Opens sinks for new segments (a directory of files, or a test double).
pub(crate) type OpenSink = dyn Fn(&Path) -> std::io::Result<Arc<dyn Sink>> + Send + Sync;

/// Opens a segment file for appending (it must not exist yet).
pub(crate) fn open_file(path: &Path) -> std::io::Result<Arc<dyn Sink>> {
    let f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    Ok(Arc::new(f))
}

/// The path of the segment whose first record has sequence `seq`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:020}.log"))
}

/// The writer's state, under one lock.
struct State {
    sink: Arc<dyn Sink>,
    segment: PathBuf,
    /// Bytes in the current segment.
    len: u64,
    /// The sequence the next record gets.
    next: u64,
    /// The last sequence known durable.
    synced: u64,
    /// Whether a writer is syncing now (the others wait for it).
    syncing: bool,
    /// The error that poisoned the log.
    failed: Option<String>,
}

/// An open log, appended to by any number of threads.
pub(crate) struct Log {
    dir: PathBuf,
    state: Mutex<State>,
    /// Signalled when a sync ends.
    synced: Condvar,
    /// A segment this long is followed by a new one.
    segment_bytes: u64,
    open_sink: Box<OpenSink>,
}

impl Log {
    /// Starts a log in `dir` whose next record has sequence `next` (a new
    /// segment; older ones are left for the reader).
    pub fn create(dir: &Path, next: u64, segment_bytes: u64) -> Result<Self> {
        Self::create_with(dir, next, segment_bytes, Box::new(open_file))
    }

    /// [`create`](Self::create) with segments opened by `open_sink`.
    pub(crate) fn create_with(
        dir: &Path,
        next: u64,
        segment_bytes: u64,
        open_sink: Box<OpenSink>,
    ) -> Result<Self> {
        let (sink, segment) = new_segment(dir, next, &*open_sink)?;
        let state = State {
            sink,
            segment,
            len: SEGMENT_HEADER,
            next,
            synced: next.saturating_sub(1),
            syncing: false,
            failed: None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            synced: Condvar::new(),
            segment_bytes: segment_bytes.max(SEGMENT_HEADER + 1),
            open_sink,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `op` and returns its sequence once it is durable (synced,
    /// possibly by another writer's sync that covered it).
    #[cfg(test)]
    pub fn log(&self, op: &Op<'_>) -> Result<u64> {
        let (seq, _) = self.append(op)?;
        self.commit(seq)?;
        Ok(seq)
    }

    /// Appends `op` (not yet durable): its sequence and its record's length
    /// in bytes.
    pub fn append(&self, op: &Op<'_>) -> Result<(u64, u64)> {
        let mut st = self.lock();
        if let Some(e) = &st.failed {
            return Err(poisoned(&st.segment, st.len, e));
        }
        if st.len >= self.segment_bytes && !st.syncing {
            // A segment is left only when all of it is durable: records
            // not synced yet (an interval policy) are synced here.
            if st.synced + 1 != st.next {
                if let Err(e) = st.sink.sync() {
                    st.failed = Some(format!("sync failed: {e}"));
                    return Err(poisoned(&st.segment, st.len, &e.to_string()));
                }
                st.synced = st.next - 1;
            }
            self.rotate(&mut st)?;
        }
        let seq = st.next;
        let bytes = encode(seq, op);
        if let Err(e) = st.sink.append(&bytes) {
            // Take back the prefix written, or give up on the log.
            let (segment, len) = (st.segment.clone(), st.len);
            if st.sink.truncate(len).is_err() {
                st.failed = Some(e.to_string());
            }
            return Err(io_error(&segment, len, &e));
        }
        st.len += bytes.len() as u64;
        st.next += 1;
        Ok((seq, bytes.len() as u64))
    }

    /// Waits until record `seq` is durable: the first waiter syncs for
    /// everyone appended so far, the others wait for it.
    pub fn commit(&self, seq: u64) -> Result<()> {
        let mut st = self.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(poisoned(&st.segment, st.len, e));
            }
            if st.synced >= seq {
                return Ok(());
            }
            if st.syncing {
                st = self.synced.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.syncing = true;
            let (sink, upto) = (st.sink.clone(), st.next - 1);
            drop(st);
            let r = sink.sync();
            st = self.lock();
            st.syncing = false;
            match r {
                Ok(()) => st.synced = st.synced.max(upto),
                Err(e) => st.failed = Some(format!("sync failed: {e}")),
            }
            self.synced.notify_all();
        }
    }

    /// Syncs every record appended so far.
    pub fn sync_all(&self) -> Result<()> {
        self.commit(self.next_seq().saturating_sub(1))
    }

    /// Starts the next segment (the current one is synced: no sync is
    /// running and every record is durable).
    fn rotate(&self, st: &mut State) -> Result<()> {
        let (sink, segment) = new_segment(&self.dir, st.next, &*self.open_sink)?;
        st.sink = sink;
        st.segment = segment;
        st.len = SEGMENT_HEADER;
        Ok(())
    }

    /// Starts a new segment now (for a checkpoint: the records before it
    /// can then be dropped with their segments). Every record appended must
    /// be durable.
    pub fn rotate_now(&self) -> Result<()> {
        let mut st = self.lock();
        if let Some(e) = &st.failed {
            return Err(poisoned(&st.segment, st.len, e));
        }
        debug_assert!(
            !st.syncing && st.synced + 1 == st.next,
            "rotation with unsynced records"
        );
        if st.len == SEGMENT_HEADER {
            return Ok(()); // the current segment holds no record yet
        }
        self.rotate(&mut st)
    }

    /// The sequence the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.lock().next
    }
}

/// A new segment file starting at `seq`, its header synced and the
/// directory entry made durable.
fn new_segment(dir: &Path, seq: u64, open: &OpenSink) -> Result<(Arc<dyn Sink>, PathBuf)> {
    let path = segment_path(dir, seq);
    let sink = open(&path).map_err(|e| io_error(&path, 0, &e))?;
    let mut header = Vec::with_capacity(SEGMENT_HEADER as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&seq.to_le_bytes());
    sink.append(&header)
        .and_then(|_| sink.sync())
        .map_err(|e| io_error(&path, 0, &e))?;
    sync_dir(&path);
    Ok((sink, path))
}

fn poisoned(segment: &Path, len: u64, reason: &str) -> Error {
    Error::BadIndexFile {
        path: segment.display().to_string(),
        offset: len,
        reason: format!("the log stopped after an earlier failure ({reason}); reopen the index"),
    }
}

//! [`DurableIndex`]: an index whose every acknowledged `add` and `remove`
//! survives a crash, searched while writers add.
//!
//! A directory holds `snapshot-<sequence>.vai` (the index as of that log
//! sequence, written through a temporary name and a rename) and the log
//! segments after it (`wal-<sequence>.log`, see the `wal` module). A write
//! is checked, numbered and appended under the writer lock, synced with
//! the other writers waiting (group commit), then applied to the index in
//! log order; searches take a read lock and never wait for a sync, and see
//! every operation acknowledged before they started, none half-applied.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::core::error::{Error, Result};
use crate::core::neighbors::Neighbors;
use crate::index::api::Index;
use crate::index::params::SearchParams;
use crate::index::selector::IdSelector;
use crate::index::wal::{
    numbered_files, open_file, read_log, segment_path, Log, Op, OpenSink, Torn,
};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Options of a [`DurableIndex`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DurableOptions {
    /// A log segment this long is followed by a new one (default 64 MiB).
    pub segment_bytes: u64,
    /// A checkpoint is written once the log since the last one holds this
    /// many bytes (default 256 MiB; 0: only on demand).
    pub checkpoint_bytes: u64,
    /// When the log is synced (default: before every operation returns).
    pub sync: SyncPolicy,
}

/// When a [`DurableIndex`] syncs its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// Every operation's record is synced before the operation returns
    /// (concurrent writers share one sync): an acknowledged operation
    /// survives a crash of the process and of the machine.
    EveryOperation,
    /// **Weaker.** An operation returns once its record is written to the
    /// operating system; a background thread syncs the log at this
    /// interval (and when the index is dropped). A crash of the process
    /// loses nothing acknowledged; a power loss or a crash of the machine
    /// can lose the operations of the last interval.
    Interval(Duration),
}

impl Default for DurableOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            checkpoint_bytes: 256 << 20,
            sync: SyncPolicy::EveryOperation,
        }
    }
}

impl DurableOptions {
    /// Sets the segment length.
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }
    /// Sets the log length that triggers a checkpoint (0: on demand only).
    pub fn with_checkpoint_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_bytes = bytes;
        self
    }
    /// Sets when the log is synced.
    pub fn with_sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }
}

/// The background sync of [`SyncPolicy::Interval`]: the log synced every
/// interval, and once more when this is dropped.
struct Syncer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn start(log: Arc<Log>, every: Duration) -> Self {
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::spawn(move || loop {
            let last = !matches!(stopped.recv_timeout(every), Err(RecvTimeoutError::Timeout));
            // A failed sync poisons the log: the next write reports it.
            let _ = log.sync_all();
            if last {
                break;
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What [`DurableIndex::open`] found and did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Recovery {
    /// The log sequence of the snapshot loaded.
    pub snapshot_seq: u64,
    /// Log records replayed after it.
    pub replayed: usize,
    /// A torn final record (a crash mid-append) dropped and cut off: its
    /// file and offset, and what was found there.
    pub torn: Option<(PathBuf, u64, String)>,
}

/// The writers' view: what logged-but-unapplied operations will change.
struct Writer {
    /// Ids a pending operation adds (`true`) or removes (`false`), with the
    /// sequence of the last one touching each.
    pending: HashMap<u64, (bool, u64)>,
    /// Where `add` numbers from, pending adds included.
    next_id: u64,
    /// Log bytes appended since the last checkpoint.
    since_checkpoint: u64,
}

/// An [`Index`] kept in a directory with a write-ahead log: see the module
/// documentation. `Send + Sync`: share it between threads by reference or
/// `Arc`.
pub struct DurableIndex {
    dir: PathBuf,
    opts: DurableOptions,
    index: RwLock<Index>,
    /// Taken by a writer while it waits for `index` and passed through by
    /// readers before they lock it, so a writer waits for the searches
    /// running, not for every search started after it (the standard
    /// `RwLock` let back-to-back readers hold a writer off for seconds).
    gate: Mutex<()>,
    /// The log (its own locks; appended to under `writer`, so log order is
    /// the order writes were checked in).
    log: Arc<Log>,
    /// The background sync, under [`SyncPolicy::Interval`].
    _syncer: Option<Syncer>,
    writer: Mutex<Writer>,
    /// The last sequence applied to `index` (or the error that stopped
    /// applying), and its signal.
    applied: Mutex<std::result::Result<u64, String>>,
    applied_cv: Condvar,
}

fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("snapshot-{seq:020}.vai"))
}

/// The newest snapshot of `dir` and its sequence.
fn newest_snapshot(dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(numbered_files(dir, "snapshot-", ".vai")?.pop())
}

impl DurableIndex {
    /// Makes `index` durable in `dir` (created if missing; it must hold no
    /// index yet): writes its first snapshot and starts the log.
    pub fn create(dir: impl AsRef<Path>, index: Index, opts: DurableOptions) -> Result<Self> {
        Self::create_with(dir.as_ref(), index, opts, Box::new(open_file))
    }

    /// [`create`](Self::create) with log segments opened by `open_sink`
    /// (tests inject failing writes and syncs through it).
    pub(crate) fn create_with(
        dir: &Path,
        index: Index,
        opts: DurableOptions,
        open_sink: Box<OpenSink>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| crate::index::file::io_error(dir, 0, &e))?;
        if newest_snapshot(dir)?.is_some() {
            return Err(Error::invalid(
                "durable index directory",
                dir.display(),
                "already holds an index (open it instead)",
            ));
        }
        index.save(snapshot_path(dir, 0))?;
        let log = Log::create_with(dir, 1, opts.segment_bytes, open_sink)?;
        Ok(Self::assemble(dir, opts, index, log, 0))
    }

    /// Opens the durable index in `dir` on `ctx`: loads the newest snapshot,
    /// replays the log after it, cuts off a torn final record (reported in
    /// the [`Recovery`]) and continues the log. Any other damage is an
    /// [`Error::BadIndexFile`] naming the file and offset.
    pub fn open(
        ctx: &Context,
        dir: impl AsRef<Path>,
        opts: DurableOptions,
    ) -> Result<(Self, Recovery)> {
        let dir = dir.as_ref();
        let (index, mut recovery, torn, next) = recover(ctx, dir)?;
        if let Some(t) = &torn {
            cut_torn(t)?;
        }
        recovery.torn = torn.map(|t| (t.path, t.offset, t.reason));
        // A last segment without records (cut, or made just before a
        // crash) is started again.
        let empty = segment_path(dir, next);
        if empty.exists() {
            std::fs::remove_file(&empty)
                .map_err(|e| crate::index::file::io_error(&empty, 0, &e))?;
        }
        let log = Log::create(dir, next, opts.segment_bytes)?;
        Ok((Self::assemble(dir, opts, index, log, next - 1), recovery))
    }

    /// What [`open`](Self::open) would do with `dir`, without writing to
    /// it: the snapshot and every log record are read and checked, and the
    /// records replayed on a copy in memory. Damage is the same error
    /// `open` gives.
    pub fn check(ctx: &Context, dir: impl AsRef<Path>) -> Result<Recovery> {
        let (_, mut recovery, torn, _) = recover(ctx, dir.as_ref())?;
        recovery.torn = torn.map(|t| (t.path, t.offset, t.reason));
        Ok(recovery)
    }

    fn assemble(dir: &Path, opts: DurableOptions, index: Index, log: Log, applied: u64) -> Self {
        let writer = Writer {
            pending: HashMap::new(),
            next_id: index.next_id(),
            since_checkpoint: 0,
        };
        let log = Arc::new(log);
        let syncer = match opts.sync {
            SyncPolicy::Interval(every) => Some(Syncer::start(log.clone(), every)),
            SyncPolicy::EveryOperation => None,
        };
        Self {
            dir: dir.to_path_buf(),
            opts,
            index: RwLock::new(index),
            gate: Mutex::new(()),
            log,
            _syncer: syncer,
            writer: Mutex::new(writer),
            applied: Mutex::new(Ok(applied)),
            applied_cv: Condvar::new(),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index as of now, for reading (searches, `len`, `reconstruct`);
    /// writers wait while it is held, so hold it briefly.
    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        drop(self.gate.lock().unwrap_or_else(|e| e.into_inner()));
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Index::search`] on the current state.
    pub fn search<'a>(
        &self,
        queries: impl Into<Input<'a>>,
        k: usize,
        params: &SearchParams<'_>,
    ) -> Result<Neighbors> {
        self.read().search(queries, k, params)
    }

    /// Adds vectors under `ids`, durably: returns once the operation is
    /// in the synced log and applied.
    pub fn add_with_ids<'a>(&self, data: impl Into<Input<'a>>, ids: &[u64]) -> Result<()> {
        let data = data.into();
        let mut hold = None;
        let rows = data.host_view(&mut hold)?;
        self.write(|w, index| {
            index.check_add(&Input::F32(rows), ids.len(), &mut None)?;
            check_new_ids(w, index, ids)?;
            Ok(Op::Add {
                ids: Cow::Borrowed(ids),
                dim: index.dim(),
                rows: Cow::Borrowed(rows.as_slice()),
            })
        })
        .map(drop)
    }

    /// Adds vectors with sequential ids, durably; returns the ids given.
    pub fn add<'a>(&self, data: impl Into<Input<'a>>) -> Result<Range<u64>> {
        let data = data.into();
        let mut hold = None;
        let rows = data.host_view(&mut hold)?;
        let n = rows.rows() as u64;
        let mut first = 0;
        self.write(|w, index| {
            first = w.next_id;
            let ids: Vec<u64> = (first..first + n).collect();
            index.check_add(&Input::F32(rows), ids.len(), &mut None)?;
            check_new_ids(w, index, &ids)?;
            Ok(Op::Add {
                ids: Cow::Owned(ids),
                dim: index.dim(),
                rows: Cow::Borrowed(rows.as_slice()),
            })
        })?;
        Ok(first..first + n)
    }

    /// Removes the vectors of `ids`, durably; returns how many were held.
    pub fn remove_ids(&self, ids: &[u64]) -> Result<usize> {
        let mut held = 0;
        self.write(|w, index| {
            let mut seen = std::collections::HashSet::new();
            held = ids
                .iter()
                .filter(|&&id| seen.insert(id) && present(w, index, id))
                .count();
            Ok(Op::Remove {
                ids: Cow::Borrowed(ids),
            })
        })?;
        Ok(held)
    }

    /// Writes a snapshot of the current state and drops the log before it
    /// (also done automatically by log length, see [`DurableOptions`]).
    pub fn checkpoint(&self) -> Result<()> {
        // Writers wait: the snapshot and the log's new segment must agree.
        let mut w = self.writer();
        let seq = self.log.next_seq() - 1;
        self.wait_applied(seq)?;
        self.read().save(snapshot_path(&self.dir, seq))?;
        // (Under an interval policy the last records may not be synced yet.)
        self.log.commit(seq)?;
        self.log.rotate_now()?;
        w.since_checkpoint = 0;
        drop(w);
        prune(&self.dir, seq)
    }

    /// One write: under the writer lock `make` checks the operation against
    /// the index and the pending operations and the record is appended;
    /// then it is synced (with other writers') and applied in log order.
    fn write<'o>(&self, make: impl FnOnce(&mut Writer, &Index) -> Result<Op<'o>>) -> Result<u64> {
        let (seq, op, checkpoint) = {
            let mut w = self.writer();
            let op = {
                let index = self.read();
                make(&mut w, &index)?
            };
            let (seq, bytes) = self.log.append(&op)?;
            w.since_checkpoint += bytes;
            note_pending(&mut w, &op, seq);
            let due =
                self.opts.checkpoint_bytes > 0 && w.since_checkpoint >= self.opts.checkpoint_bytes;
            (seq, op, due)
        };
        let synced = match self.opts.sync {
            SyncPolicy::EveryOperation => self.log.commit(seq),
            SyncPolicy::Interval(_) => Ok(()),
        };
        self.apply_in_order(seq, &op, synced)?;
        if checkpoint {
            self.checkpoint()?;
        }
        Ok(seq)
    }

    /// Applies `op` (sequence `seq`) once every earlier one is applied; a
    /// failed sync or apply stops every later write.
    fn apply_in_order(&self, seq: u64, op: &Op<'_>, synced: Result<()>) -> Result<()> {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*applied {
                Err(e) => return Err(stopped(&self.dir, e)),
                Ok(a) if *a + 1 == seq => break,
                Ok(_) => {
                    applied = self
                        .applied_cv
                        .wait(applied)
                        .unwrap_or_else(|e| e.into_inner())
                }
            }
        }
        let result = synced.and_then(|()| {
            let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
            apply(&mut index, op, true)
        });
        *applied = match &result {
            Ok(()) => Ok(seq),
            Err(e) => Err(e.to_string()),
        };
        self.applied_cv.notify_all();
        drop(applied);
        if result.is_ok() {
            let mut w = self.writer();
            w.pending.retain(|_, (_, s)| *s > seq);
        }
        result
    }

    fn wait_applied(&self, seq: u64) -> Result<()> {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*applied {
                Err(e) => return Err(stopped(&self.dir, e)),
                Ok(a) if *a >= seq => return Ok(()),
                Ok(_) => {
                    applied = self
                        .applied_cv
                        .wait(applied)
                        .unwrap_or_else(|e| e.into_inner())
                }
            }
        }
    }
}

fn stopped(dir: &Path, reason: &str) -> Error {
    Error::BadIndexFile {
        path: dir.display().to_string(),
        offset: 0,
        reason: format!("writes stopped after an earlier failure ({reason}); reopen the index"),
    }
}

/// Whether `id` is held once the pending operations are applied.
fn present(w: &Writer, index: &Index, id: u64) -> bool {
    w.pending
        .get(&id)
        .map_or_else(|| index.contains(id), |&(p, _)| p)
}

/// Refuses ids that are reserved, repeated, or held after the pending
/// operations.
fn check_new_ids(w: &Writer, index: &Index, ids: &[u64]) -> Result<()> {
    crate::index::ids::check_new_ids(ids, |id| present(w, index, id))
}

fn note_pending(w: &mut Writer, op: &Op<'_>, seq: u64) {
    match op {
        Op::Add { ids, .. } => {
            for &id in ids.iter() {
                w.pending.insert(id, (true, seq));
                w.next_id = w.next_id.max(id.saturating_add(1));
            }
        }
        Op::Remove { ids } => {
            for &id in ids.iter() {
                w.pending.insert(id, (false, seq));
            }
        }
    }
}

/// Applies a logged operation to the index; `checked`: a write checked
/// against this very state when it was logged (not checked again), else a
/// replayed record (checked as any add).
fn apply(index: &mut Index, op: &Op<'_>, checked: bool) -> Result<()> {
    match op {
        Op::Add { ids, dim, rows } => {
            let m = crate::core::matrix::MatrixView::new(rows, *dim)?;
            if checked {
                index.push_checked(&Input::F32(m), m, ids)
            } else {
                index.add_with_ids(m, ids)
            }
        }
        Op::Remove { ids } => index.remove_ids(&IdSelector::allow(ids.to_vec())).map(drop),
    }
}

/// The index of `dir` as of its log's end, what was replayed, the torn
/// final record (not cut yet) and the next sequence.
fn recover(ctx: &Context, dir: &Path) -> Result<(Index, Recovery, Option<Torn>, u64)> {
    let (snap_seq, snap) = newest_snapshot(dir)?.ok_or_else(|| Error::BadIndexFile {
        path: dir.display().to_string(),
        offset: 0,
        reason: "no snapshot-*.vai in the directory: not a durable index".into(),
    })?;
    let mut index = Index::load(ctx, &snap)?;
    let replay = read_log(dir, snap_seq + 1)?;
    let mut replayed = 0;
    for r in replay.records.iter().filter(|r| r.seq > snap_seq) {
        apply(&mut index, &r.op, false)?;
        replayed += 1;
    }
    let next = replay.next_seq.max(snap_seq + 1);
    let recovery = Recovery {
        snapshot_seq: snap_seq,
        replayed,
        torn: None,
    };
    Ok((index, recovery, replay.torn, next))
}

/// Cuts a torn final record off its segment (so the log continues after
/// the last whole record) and says what was cut.
fn cut_torn(t: &Torn) -> Result<()> {
    let io = |e: std::io::Error| crate::index::file::io_error(&t.path, t.offset, &e);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&t.path)
        .map_err(io)?;
    f.set_len(t.offset).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Deletes the snapshots before `seq` and the log segments whose records
/// all precede it.
fn prune(dir: &Path, seq: u64) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| crate::index::file::io_error(p, 0, &e);
    for (_, path) in numbered_files(dir, "snapshot-", ".vai")?
        .iter()
        .filter(|(s, _)| *s < seq)
    {
        std::fs::remove_file(path).map_err(|e| io(path, e))?;
    }
    let segments = numbered_files(dir, "wal-", ".log")?;
    // A segment is covered when the next one starts at or before seq + 1.
    for pair in segments.windows(2) {
        if pair[1].0 <= seq + 1 {
            std::fs::remove_file(&pair[0].1).map_err(|e| io(&pair[0].1, e))?;
        }
    }
    crate::index::file::sync_dir(&snapshot_path(dir, seq));
    Ok(())
}

#[cfg(test)]
mod tests;

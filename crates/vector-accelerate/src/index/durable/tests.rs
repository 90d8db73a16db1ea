//! Failures while writing: a write that runs out of space is refused and
//! leaves nothing behind; a failed sync refuses the operation and every
//! later write until the index is reopened, while searches go on.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;
use crate::core::matrix::Matrix;
use crate::core::metric::Metric;
use crate::index::wal::Sink;

/// A segment file whose appends (after writing half) or syncs fail on demand.
struct Faulty {
    file: File,
    full: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
}

impl Sink for Faulty {
    fn append(&self, b: &[u8]) -> std::io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            self.file.append(&b[..b.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.file.append(b)
    }
    fn sync(&self) -> std::io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(5)); // EIO
        }
        self.file.sync()
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.file.truncate(len)
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("va-durable-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn rows(n: usize, from: f32) -> Matrix {
    Matrix::new((0..n * 4).map(|i| from + i as f32).collect(), 4).unwrap()
}

#[test]
fn full_disks_and_failed_syncs_leave_the_index_consistent() {
    let ctx = Context::cpu();
    let (full, broken) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (f, b) = (full.clone(), broken.clone());
    let open: Box<OpenSink> = Box::new(move |p: &Path| {
        let file = File::options().create_new(true).append(true).open(p)?;
        Ok(Arc::new(Faulty {
            file,
            full: f.clone(),
            broken: b.clone(),
        }) as Arc<dyn Sink>)
    });
    let path = dir("faults");
    let index = Index::new(&ctx, 4, "Flat", Metric::L2).unwrap();
    let d = DurableIndex::create_with(&path, index, DurableOptions::default(), open).unwrap();
    d.add(&rows(3, 0.0)).unwrap();

    full.store(true, Ordering::SeqCst);
    let e = d.add(&rows(2, 100.0)).unwrap_err();
    assert!(e.to_string().contains("No space left"), "{e}");
    full.store(false, Ordering::SeqCst);
    assert_eq!(d.read().len(), 3, "a refused add is not applied");
    assert_eq!(
        d.add(&rows(1, 200.0)).unwrap(),
        3..4,
        "ids continue after the refused add"
    );

    broken.store(true, Ordering::SeqCst);
    assert!(d.add(&rows(1, 300.0)).is_err());
    broken.store(false, Ordering::SeqCst);
    let e = d.add(&rows(1, 400.0)).unwrap_err();
    assert!(e.to_string().contains("reopen"), "{e}");
    assert!(d.remove_ids(&[0]).is_err());
    assert_eq!(
        d.read().len(),
        4,
        "searches go on over the acknowledged state"
    );
    assert!(d.search(&rows(1, 0.0), 1, &SearchParams::default()).is_ok());
    drop(d);

    // Reopened: the acknowledged adds, and perhaps the one whose sync failed
    // (its bytes were written; whether they are durable is unknown).
    let (d, rec) = DurableIndex::open(&ctx, &path, DurableOptions::default()).unwrap();
    assert_eq!(rec.torn, None);
    let n = d.read().len();
    assert!(n == 4 || n == 5, "{n} vectors after reopening");
    assert!(d.read().contains(3) && !d.read().contains(5));
}

/// A segment file that counts its syncs.
struct Counted {
    file: File,
    syncs: Arc<std::sync::atomic::AtomicUsize>,
}

impl Sink for Counted {
    fn append(&self, b: &[u8]) -> std::io::Result<()> {
        self.file.append(b)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.file.sync()
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.file.truncate(len)
    }
}

#[test]
fn an_interval_policy_syncs_in_the_background_and_keeps_every_write() {
    let ctx = Context::cpu();
    let syncs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = syncs.clone();
    let open: Box<OpenSink> = Box::new(move |p: &Path| {
        let file = File::options().create_new(true).append(true).open(p)?;
        Ok(Arc::new(Counted {
            file,
            syncs: s.clone(),
        }) as Arc<dyn Sink>)
    });
    let path = dir("interval");
    let opts = DurableOptions::default()
        .with_sync(SyncPolicy::Interval(std::time::Duration::from_millis(20)))
        // Small segments: rotations sync what the interval has not yet.
        .with_segment_bytes(600);
    let index = Index::new(&ctx, 4, "Flat", Metric::L2).unwrap();
    let d = DurableIndex::create_with(&path, index, opts.clone(), open).unwrap();
    let before = syncs.load(Ordering::SeqCst);
    for i in 0..200 {
        d.add(&rows(1, i as f32)).unwrap();
    }
    let during = syncs.load(Ordering::SeqCst) - before;
    assert!(during < 200, "{during} syncs for 200 adds");
    assert_eq!(d.read().len(), 200, "every add is applied when it returns");
    // The background sync covers the last records within its interval.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(syncs.load(Ordering::SeqCst) > before);
    d.checkpoint().unwrap();
    d.add(&rows(2, 1000.0)).unwrap();
    drop(d);
    let (d, rec) = DurableIndex::open(&ctx, &path, opts).unwrap();
    assert_eq!((rec.torn, d.read().len()), (None, 202));
}

//! The log against itself: round trips, segment rotation, a torn final
//! record at every cut, damage reported with its offset, group commit under
//! concurrent writers, and failing writes and syncs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::format::{encode, MAGIC, RECORD_HEADER, SEGMENT_HEADER, VERSION};
use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("va-wal-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ops(n: usize) -> Vec<Op<'static>> {
    (0..n)
        .map(|i| match i % 3 {
            2 => Op::Remove {
                ids: (0..i as u64).collect(),
            },
            _ => Op::Add {
                ids: (0..i as u64 + 1).map(|j| j * 7 + i as u64).collect(),
                dim: 3,
                rows: (0..(i + 1) * 3)
                    .map(|j| j as f32 * 0.5 - i as f32)
                    .collect(),
            },
        })
        .collect()
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v.pop().unwrap()
}

#[test]
fn records_round_trip_across_rotated_segments() {
    for segment_bytes in [1 << 20, 64] {
        let dir = temp_dir(&format!("round-{segment_bytes}"));
        let log = Log::create(&dir, 5, segment_bytes).unwrap();
        let want = ops(20);
        for (i, op) in want.iter().enumerate() {
            assert_eq!(log.log(op).unwrap(), 5 + i as u64);
        }
        drop(log);
        let r = read_log(&dir, 5).unwrap();
        assert_eq!(r.torn, None);
        assert_eq!(r.next_seq, 25);
        let got: Vec<Op<'_>> = r.records.iter().map(|r| r.op.clone()).collect();
        assert_eq!(got, want);
        let segments = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(segments > 1, segment_bytes == 64, "{segments} segments");
        // A log continued after reopening follows on.
        let log = Log::create(&dir, r.next_seq, segment_bytes).unwrap();
        log.log(&want[0]).unwrap();
        assert_eq!(read_log(&dir, 5).unwrap().records.len(), 21);
    }
}

#[test]
fn a_torn_final_record_is_dropped_and_reported_at_every_cut() {
    let dir = temp_dir("torn");
    let log = Log::create(&dir, 1, 1 << 20).unwrap();
    let want = ops(4);
    for op in &want {
        log.log(op).unwrap();
    }
    drop(log);
    let path = only_segment(&dir);
    let full = std::fs::read(&path).unwrap();
    let last = SEGMENT_HEADER as usize
        + want[..3]
            .iter()
            .map(|op| encode(0, op).len())
            .sum::<usize>();
    for cut in last..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let r = read_log(&dir, 1).unwrap();
        assert_eq!(r.records.len(), 3, "cut {cut}");
        assert_eq!(r.next_seq, 4);
        let torn = r.torn.map(|t| t.offset);
        assert_eq!(torn, (cut > last).then_some(last as u64), "cut {cut}");
    }
    // A tail the file system extended with zeros reads as torn too.
    let mut zeros = full.clone();
    zeros.extend(std::iter::repeat_n(0u8, 100));
    std::fs::write(&path, &zeros).unwrap();
    let r = read_log(&dir, 1).unwrap();
    assert_eq!(
        (r.records.len(), r.torn.map(|t| t.offset)),
        (4, Some(full.len() as u64))
    );
}

#[test]
fn damage_before_the_end_is_an_error_naming_file_and_offset() {
    let dir = temp_dir("damage");
    let log = Log::create(&dir, 1, 1 << 20).unwrap();
    let want = ops(5);
    for op in &want {
        log.log(op).unwrap();
    }
    drop(log);
    let path = only_segment(&dir);
    let full = std::fs::read(&path).unwrap();
    let second = SEGMENT_HEADER as usize + encode(0, &want[0]).len();
    let mut bad = full.clone();
    bad[second + RECORD_HEADER] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    match read_log(&dir, 1) {
        Err(Error::BadIndexFile {
            path: p,
            offset,
            reason,
        }) => {
            assert_eq!(
                (p, offset),
                (path.display().to_string(), second as u64),
                "{reason}"
            );
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected a damaged-file error, got {other:?}"),
    }
    let mut bad = full.clone();
    bad[0] = b'X';
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(
        read_log(&dir, 1),
        Err(Error::BadIndexFile { offset: 0, .. })
    ));
    // A missing segment (a gap in the sequences) is an error too.
    std::fs::write(&path, &full).unwrap();
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&7u64.to_le_bytes());
    std::fs::write(segment_path(&dir, 7), &header).unwrap();
    let e = read_log(&dir, 1).unwrap_err();
    assert!(
        e.to_string().contains("starts at sequence 7, expected 6"),
        "{e}"
    );
}

/// A file whose syncs are counted and slow, so writers pile up behind one.
struct SlowSync(File, Arc<AtomicUsize>);

impl Sink for SlowSync {
    fn append(&self, b: &[u8]) -> std::io::Result<()> {
        self.0.append(b)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.1.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(2));
        self.0.sync()
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.0.truncate(len)
    }
}

#[test]
fn concurrent_writers_share_syncs_and_lose_nothing() {
    let dir = temp_dir("group");
    let syncs = Arc::new(AtomicUsize::new(0));
    let counter = syncs.clone();
    let open: Box<OpenSink> = Box::new(move |p: &Path| {
        let f = File::options().create_new(true).append(true).open(p)?;
        Ok(Arc::new(SlowSync(f, counter.clone())) as Arc<dyn Sink>)
    });
    let log = Log::create_with(&dir, 1, 1 << 30, open).unwrap();
    let before = syncs.load(Ordering::SeqCst);
    let (threads, each) = (8, 50);
    std::thread::scope(|s| {
        for t in 0..threads {
            let log = &log;
            s.spawn(move || {
                for i in 0..each {
                    let op = Op::Remove {
                        ids: vec![t * 1000 + i].into(),
                    };
                    log.log(&op).unwrap();
                }
            });
        }
    });
    let used = syncs.load(Ordering::SeqCst) - before;
    assert!(
        used < (threads * each) as usize / 2,
        "{used} syncs for {} records",
        threads * each
    );
    let r = read_log(&dir, 1).unwrap();
    let mut ids: Vec<u64> = r
        .records
        .iter()
        .flat_map(|r| match &r.op {
            Op::Remove { ids } => ids.to_vec(),
            _ => vec![],
        })
        .collect();
    ids.sort();
    let want: Vec<u64> = (0..threads)
        .flat_map(|t| (0..each).map(move |i| t * 1000 + i))
        .collect();
    assert_eq!(ids, want);
}

/// A file that fails its next append (after writing half) or its syncs.
struct Faulty {
    file: File,
    fail_append: AtomicUsize,
    fail_sync: AtomicUsize,
}

impl Sink for Faulty {
    fn append(&self, b: &[u8]) -> std::io::Result<()> {
        if self.fail_append.swap(0, Ordering::SeqCst) == 1 {
            self.file.append(&b[..b.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.file.append(b)
    }
    fn sync(&self) -> std::io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) == 1 {
            return Err(std::io::Error::from_raw_os_error(5)); // EIO
        }
        self.file.sync()
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.file.truncate(len)
    }
}

#[test]
fn failed_writes_are_taken_back_and_failed_syncs_stop_the_log() {
    let dir = temp_dir("faults");
    let sink: Arc<std::sync::Mutex<Option<Arc<Faulty>>>> = Default::default();
    let slot = sink.clone();
    let open: Box<OpenSink> = Box::new(move |p: &Path| {
        let f = Arc::new(Faulty {
            file: File::options().create_new(true).append(true).open(p)?,
            fail_append: AtomicUsize::new(0),
            fail_sync: AtomicUsize::new(0),
        });
        *slot.lock().unwrap() = Some(f.clone());
        Ok(f as Arc<dyn Sink>)
    });
    let log = Log::create_with(&dir, 1, 1 << 30, open).unwrap();
    let faulty = sink.lock().unwrap().clone().unwrap();
    let want = ops(4);
    log.log(&want[0]).unwrap();
    faulty.fail_append.store(1, Ordering::SeqCst);
    let e = log.log(&want[1]).unwrap_err();
    assert!(e.to_string().contains("No space left"), "{e}");
    log.log(&want[2]).unwrap();
    let r = read_log(&dir, 1).unwrap();
    assert_eq!(r.torn, None);
    let got: Vec<&Op<'_>> = r.records.iter().map(|r| &r.op).collect();
    assert_eq!(got, vec![&want[0], &want[2]]);

    faulty.fail_sync.store(1, Ordering::SeqCst);
    assert!(log.log(&want[3]).is_err());
    faulty.fail_sync.store(0, Ordering::SeqCst);
    let e = log.log(&want[3]).unwrap_err();
    assert!(e.to_string().contains("reopen"), "{e}");
}

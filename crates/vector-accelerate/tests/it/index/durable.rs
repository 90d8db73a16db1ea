//! The durable index: writes survive reopening, a torn final record is cut
//! and reported, checkpoints drop the log before them, concurrent writers
//! and readers, and bad writes leave nothing behind.

use std::path::PathBuf;

use crate::common::*;
use vector_accelerate::index::{DurableIndex, DurableOptions, Index, SearchParams};
use vector_accelerate::{Context, Error, Matrix, Metric};

fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("va-durable-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn files(dir: &PathBuf, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// Searches every row of `x` for itself: the ids found.
fn all_ids(index: &DurableIndex, x: &Matrix) -> Vec<u64> {
    let nn = index.search(x, 1, &SearchParams::default()).unwrap();
    nn.ids().to_vec()
}

fn _send_sync<T: Send + Sync>() {}
#[allow(dead_code)]
fn durable_index_is_send_and_sync() {
    _send_sync::<DurableIndex>();
    _send_sync::<Index>();
}

/// Flat and graph indexes (a graph is rebuilt by the replayed adds).
#[test]
fn writes_survive_reopening_on_every_backend() {
    for_each_backend(
        "durable::writes_survive_reopening_on_every_backend",
        |ctx| {
            for factory in ["Flat", "Graph8"] {
                let s = seed();
                let mut r = rng(s);
                let x = gaussian(&mut r, 300, 12);
                let dir = fresh_dir(&format!("reopen-{}-{factory}", ctx.is_cuda()));
                let opts = DurableOptions::default().with_segment_bytes(4096);
                let d = DurableIndex::create(
                    &dir,
                    Index::new(ctx, 12, factory, Metric::L2).unwrap(),
                    opts.clone(),
                )
                .unwrap();
                let first = x.view().slice_rows(0, 100);
                assert_eq!(d.add(first).unwrap(), 0..100);
                let ids: Vec<u64> = (1000..1200).collect();
                d.add_with_ids(x.view().slice_rows(100, 300), &ids).unwrap();
                assert_eq!(d.remove_ids(&[5, 6, 1005, 5]).unwrap(), 3);
                let before = all_ids(&d, &x);
                drop(d);
                assert!(files(&dir, "wal-").len() > 1, "segments rotate at 4 kB");
                let (d, rec) = DurableIndex::open(ctx, &dir, opts).unwrap();
                assert_eq!(
                    (rec.snapshot_seq, rec.replayed, rec.torn.clone()),
                    (0, 3, None),
                    "seed {s} {factory}"
                );
                assert_eq!(d.read().len(), 297);
                assert_eq!(all_ids(&d, &x), before, "seed {s} {factory}");
                assert!(!d.read().contains(5) && d.read().contains(1199));
                // The next add continues the numbering after every id seen.
                assert_eq!(d.add(x.view().slice_rows(0, 1)).unwrap(), 1200..1201);
            }
        },
    );
}

#[test]
fn a_torn_final_record_is_cut_and_reported_then_the_log_continues() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 50, 8);
    let dir = fresh_dir("torn");
    let opts = DurableOptions::default();
    let d = DurableIndex::create(
        &dir,
        Index::new(&ctx, 8, "Flat", Metric::L2).unwrap(),
        opts.clone(),
    )
    .unwrap();
    d.add(x.view().slice_rows(0, 20)).unwrap();
    d.add(x.view().slice_rows(20, 30)).unwrap();
    drop(d);
    // A crash mid-append: half a record after the last whole one.
    let seg = dir.join(files(&dir, "wal-").pop().unwrap());
    let mut bytes = std::fs::read(&seg).unwrap();
    let whole = bytes.len() as u64;
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 3, 0, 0]);
    std::fs::write(&seg, &bytes).unwrap();
    // `check` reports what `open` will do, and changes nothing.
    let checked = DurableIndex::check(&ctx, &dir).unwrap();
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
    let (d, rec) = DurableIndex::open(&ctx, &dir, opts.clone()).unwrap();
    assert_eq!(checked, rec);
    let torn = rec.torn.expect("the torn record is reported");
    assert_eq!((torn.0, torn.1), (seg.clone(), whole), "{}", torn.2);
    assert_eq!(d.read().len(), 30);
    d.add(x.view().slice_rows(30, 50)).unwrap();
    drop(d);
    let (d, rec) = DurableIndex::open(&ctx, &dir, opts).unwrap();
    assert_eq!((rec.torn, d.read().len()), (None, 50));
}

#[test]
fn checkpoints_drop_the_log_before_them() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 400, 8);
    let dir = fresh_dir("checkpoint");
    let opts = DurableOptions::default()
        .with_segment_bytes(2048)
        .with_checkpoint_bytes(0);
    let d = DurableIndex::create(
        &dir,
        Index::new(&ctx, 8, "Flat", Metric::L2).unwrap(),
        opts.clone(),
    )
    .unwrap();
    for i in 0..10 {
        d.add(x.view().slice_rows(i * 20, i * 20 + 20)).unwrap();
    }
    d.checkpoint().unwrap();
    d.checkpoint().unwrap(); // again with nothing new: the same files
    assert_eq!(
        files(&dir, "snapshot-"),
        vec![format!("snapshot-{:020}.vai", 10)]
    );
    assert_eq!(files(&dir, "wal-"), vec![format!("wal-{:020}.log", 11)]);
    d.remove_ids(&[0, 1, 2]).unwrap();
    drop(d);
    let (d, rec) = DurableIndex::open(&ctx, &dir, opts.clone()).unwrap();
    assert_eq!((rec.snapshot_seq, rec.replayed), (10, 1));
    assert_eq!(d.read().len(), 197);
    // A checkpoint straight after opening (an empty segment is current).
    d.checkpoint().unwrap();
    drop(d);
    let (d, rec) = DurableIndex::open(&ctx, &dir, opts).unwrap();
    assert_eq!(
        (rec.snapshot_seq, rec.replayed, d.read().len()),
        (11, 0, 197)
    );
    // Automatic checkpoints by log length.
    let auto = DurableOptions::default().with_checkpoint_bytes(10_000);
    let dir2 = fresh_dir("auto-checkpoint");
    let d = DurableIndex::create(
        &dir2,
        Index::new(&ctx, 8, "Flat", Metric::L2).unwrap(),
        auto.clone(),
    )
    .unwrap();
    for i in 0..20 {
        d.add(x.view().slice_rows(i * 20, i * 20 + 20)).unwrap();
    }
    assert!(files(&dir2, "snapshot-") != vec![format!("snapshot-{:020}.vai", 0)]);
    drop(d);
    let (d, rec) = DurableIndex::open(&ctx, &dir2, auto).unwrap();
    assert!(rec.replayed < 20, "{rec:?}");
    assert_eq!(d.read().len(), 400);
}

#[test]
fn concurrent_writers_and_readers_see_whole_operations() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 800, 16);
    let dir = fresh_dir("concurrent");
    let mut ivf = Index::new(&ctx, 16, "IVF8,Flat", Metric::L2).unwrap();
    ivf.train(&x).unwrap();
    let d = DurableIndex::create(&dir, ivf, DurableOptions::default()).unwrap();
    let params = SearchParams::default().with_nprobe(8);
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (d, x) = (&d, &x);
            s.spawn(move || {
                for b in 0..20usize {
                    let from = t * 200 + b * 10;
                    let ids: Vec<u64> = (from as u64..from as u64 + 10).collect();
                    d.add_with_ids(x.view().slice_rows(from, from + 10), &ids)
                        .unwrap();
                }
            });
        }
        for _ in 0..2 {
            let (d, x, params) = (&d, &x, &params);
            s.spawn(move || {
                for _ in 0..30 {
                    let nn = d.search(x.view().slice_rows(0, 40), 3, params).unwrap();
                    // Batches of 10 land whole: a vector found is its own batch's.
                    let held = d.read().len();
                    assert_eq!(held % 10, 0, "a batch was half applied");
                    assert!(nn.ids().iter().all(|&i| i == u64::MAX || i < 800));
                }
            });
        }
    });
    assert_eq!(d.read().len(), 800);
    let found = d.search(&x, 1, &params).unwrap();
    assert_eq!(found.ids(), (0..800u64).collect::<Vec<_>>().as_slice());
    drop(d);
    let (d, rec) = DurableIndex::open(&ctx, &dir, DurableOptions::default()).unwrap();
    assert_eq!((rec.replayed, d.read().len()), (80, 800));
}

#[test]
fn refused_writes_leave_nothing_behind() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 20, 4);
    let dir = fresh_dir("refused");
    let opts = DurableOptions::default();
    let d = DurableIndex::create(
        &dir,
        Index::new(&ctx, 4, "Flat", Metric::L2).unwrap(),
        opts.clone(),
    )
    .unwrap();
    d.add_with_ids(x.view().slice_rows(0, 2), &[7, 8]).unwrap();
    let dup = d
        .add_with_ids(x.view().slice_rows(2, 4), &[9, 7])
        .unwrap_err();
    assert!(matches!(dup, Error::DuplicateId { id: 7 }), "{dup}");
    let wrong = gaussian(&mut r, 2, 5);
    assert!(matches!(
        d.add(&wrong).unwrap_err(),
        Error::DimensionMismatch { .. }
    ));
    let mut nan = x.view().slice_rows(0, 1).as_slice().to_vec();
    nan[0] = f32::NAN;
    assert!(d.add(Matrix::new(nan, 4).unwrap().view()).is_err());
    let e = DurableIndex::create(
        &dir,
        Index::new(&ctx, 4, "Flat", Metric::L2).unwrap(),
        opts.clone(),
    );
    assert!(e.is_err());
    drop(d);
    let (d, rec) = DurableIndex::open(&ctx, &dir, opts.clone()).unwrap();
    assert_eq!((rec.replayed, d.read().len()), (1, 2));
    let empty = fresh_dir("not-an-index");
    std::fs::create_dir_all(&empty).unwrap();
    let e = DurableIndex::open(&ctx, &empty, opts).err().unwrap();
    assert!(matches!(e, Error::BadIndexFile { .. }), "{e}");
}

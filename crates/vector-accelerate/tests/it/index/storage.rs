//! save/load: round trips on both backends, and truncated or damaged
//! files refused with the file and offset.

use super::build;
use crate::common::{backends, for_each_backend, gaussian, rng, seed};
use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{Context, Distance, Error, Metric};

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("va-index-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("index.vai")
}

#[test]
fn saved_indexes_load_on_every_backend_with_the_same_results() {
    let s = seed();
    for_each_backend("index save load", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 700, 10);
        let q = gaussian(&mut r, 9, 10);
        let ids: Vec<u64> = (0..700).map(|i| 1_000_000 + i * 3).collect();
        let dist =
            Distance::new(Metric::L1).with_weights((0..10).map(|i| 0.5 + i as f32).collect());
        for factory in ["Flat", "IVF8,Flat", "IVF,Flat"] {
            let mut index = build(ctx, factory, &base, &ids, dist.clone());
            index.set_nprobe(3).unwrap();
            index
                .remove_ids(&IdSelector::range(1_000_000..1_000_100))
                .unwrap();
            let path = temp(&format!("rt-{}", factory.replace(',', "-")));
            index.save(&path).unwrap();
            let want = index.search(&q, 15, &SearchParams::default()).unwrap();
            for other in backends() {
                let back = Index::load(&other, &path).unwrap();
                assert_eq!(
                    (back.len(), back.dim(), back.nprobe()),
                    (index.len(), 10, 3)
                );
                assert_eq!(back.distance(), &dist);
                assert_eq!(back.factory(), index.factory());
                assert!(!back.contains(1_000_000) && back.contains(1_000_102));
                let got = back.search(&q, 15, &SearchParams::default()).unwrap();
                crate::common::assert_close_neighbors(
                    &format!("seed {s} {factory}"),
                    &got,
                    &want,
                    |_| 1e-3,
                );
                assert_eq!(back.reconstruct(ids[200]).unwrap(), base.row(200));
            }
            // Sequential ids continue after the largest one ever given.
            let mut back = Index::load(ctx, &path).unwrap();
            let next = back.add(base.view().slice_rows(0, 1)).unwrap();
            assert_eq!(next.start, ids[699] + 1);
        }
    });
}

#[test]
fn an_untrained_ivf_index_round_trips() {
    let ctx = Context::cpu();
    let index = Index::new(&ctx, 6, "IVF16,Flat", Metric::InnerProduct).unwrap();
    let path = temp("untrained");
    index.save(&path).unwrap();
    let back = Index::load(&ctx, &path).unwrap();
    assert!(!back.is_trained());
    assert_eq!(back.factory(), "IVF16,Flat");
    assert_eq!(back.metric(), Metric::InnerProduct);
}

#[test]
fn truncated_or_damaged_files_are_refused_with_the_offset() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let base = gaussian(&mut r, 200, 8);
    let ids: Vec<u64> = (0..200).collect();
    let index = build(&ctx, "IVF4,Flat", &base, &ids, Metric::L2);
    let path = temp("damaged");
    index.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let bad = temp("damaged-copy");
    let check = |bytes: &[u8], want: &str| {
        std::fs::write(&bad, bytes).unwrap();
        match Index::load(&ctx, &bad) {
            Err(Error::BadIndexFile { path, reason, .. }) => {
                assert!(path.ends_with("index.vai"), "{path}");
                assert!(reason.contains(want), "{want}: {reason}");
            }
            other => panic!("{want}: expected a bad-file error, got {other:?}"),
        }
    };
    for cut in [0, 5, 40, good.len() / 2, good.len() - 1] {
        check(&good[..cut], "truncated");
    }
    let mut flipped = good.clone();
    flipped[good.len() - 200] ^= 0x10;
    check(&flipped, "checksum");
    let mut magic = good.clone();
    magic[0] = b'X';
    check(&magic, "magic");
    let mut header = good.clone();
    header[30] ^= 1;
    check(&header, "header");
    match Index::load(&ctx, temp("missing").with_file_name("none.vai")) {
        Err(Error::BadIndexFile { offset: 0, .. }) => {}
        other => panic!("missing file: {other:?}"),
    }
}

#[test]
fn a_failed_save_leaves_the_previous_file_and_no_temporary() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let base = gaussian(&mut r, 50, 4);
    let index = build(
        &ctx,
        "Flat",
        &base,
        &(0..50).collect::<Vec<_>>(),
        Metric::L2,
    );
    let path = temp("atomic");
    index.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A directory where the temporary file would go makes the save fail.
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    assert!(index.save(&path).is_err());
    std::fs::remove_dir(&tmp).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(Index::load(&ctx, &path).is_ok());
}

#[test]
fn a_loaded_index_reads_its_mapped_file_and_changes_like_any_other() {
    let s = seed();
    let ctx = Context::cpu();
    let mut r = rng(s);
    let base = gaussian(&mut r, 900, 12);
    let more = gaussian(&mut r, 50, 12);
    let q = gaussian(&mut r, 7, 12);
    let ids: Vec<u64> = (0..900).collect();
    for factory in ["Flat", "IVF8,Flat", "IVF8,SQ8,Refine"] {
        let path = temp(&format!("mapped-{}", factory.replace(',', "-")));
        let mut index = build(&ctx, factory, &base, &ids, Metric::L2);
        index.save(&path).unwrap();
        let mut back = Index::load(&ctx, &path).unwrap();
        // The vectors are read in place from the file's map: removing the
        // file leaves them readable, and changes copy what they change.
        std::fs::remove_file(&path).unwrap();
        let p = SearchParams::default().with_nprobe(8);
        assert_eq!(
            back.search(&q, 5, &p).unwrap().ids(),
            index.search(&q, 5, &p).unwrap().ids(),
            "seed {s} {factory}"
        );
        for ix in [&mut index, &mut back] {
            ix.add(&more).unwrap();
            ix.remove_ids(&IdSelector::range(0..300)).unwrap();
            ix.compact().unwrap();
        }
        assert_eq!(
            back.reconstruct(950 - 1).unwrap(),
            index.reconstruct(949).unwrap()
        );
        let (a, b) = (
            index.search(&q, 5, &p).unwrap(),
            back.search(&q, 5, &p).unwrap(),
        );
        assert_eq!(a.ids(), b.ids(), "seed {s} {factory}");
        assert_eq!(a.distances(), b.distances(), "seed {s} {factory}");
    }
}

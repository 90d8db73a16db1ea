//! Indexes over several contexts (shards and replicas): the single index's
//! results for the exact parts, balanced adds, ids and removals across
//! parts, save/load onto other context counts, and bad input.

use super::{exact_over, recall};
use crate::common::{backends, clustered, for_each_backend, gaussian, rng, seed};
use vector_accelerate::index::{
    DurableMultiIndex, DurableOptions, IdSelector, Index, Layout, MultiIndex, SearchParams,
};
use vector_accelerate::{Context, Error, Metric, Neighbors};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("va-multi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Values equal up to the rounding of another grouping of rows or queries;
/// the same ids, in order except within runs of values equal to that
/// rounding (whose order the rounding decides).
fn assert_same(got: &Neighbors, want: &Neighbors, what: &str) {
    assert_eq!((got.rows(), got.k()), (want.rows(), want.k()), "{what}");
    let close = |g: f32, w: f32| g == w || (g - w).abs() <= 1e-5 * (1.0 + w.abs());
    for r in 0..want.rows() {
        let (gd, wd) = (got.row_distances(r), want.row_distances(r));
        for (&g, &w) in gd.iter().zip(wd) {
            assert!(close(g, w), "{what} row {r}: {g} vs {w}");
        }
        let (gi, wi) = (got.row_ids(r), want.row_ids(r));
        let mut start = 0;
        while start < wd.len() {
            let mut end = start + 1;
            while end < wd.len() && close(wd[end], wd[end - 1]) {
                end += 1;
            }
            let (mut a, mut b) = (gi[start..end].to_vec(), wi[start..end].to_vec());
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "{what} row {r} results {start}..{end}");
            start = end;
        }
    }
}

#[test]
fn shards_and_replicas_answer_as_the_single_index() {
    let s = seed();
    for_each_backend("multi-index vs single", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 1_003, 13);
        let q = gaussian(&mut r, 37, 13);
        let ids: Vec<u64> = (0..1_003).map(|i| 7 + 5 * i).collect();
        for (factory, metric) in [
            ("Flat", Metric::L2),
            ("Flat", Metric::InnerProduct),
            ("IVF16,Flat", Metric::L2),
            ("IVF16,SQ8", Metric::Cosine),
        ] {
            let mut single = Index::new(ctx, 13, factory, metric).unwrap();
            single.train(&base).unwrap();
            single.add_with_ids(&base, &ids).unwrap();
            let params = SearchParams::default().with_nprobe(4);
            for parts in [1, 2, 3] {
                let contexts = vec![ctx.clone(); parts];
                for layout in [Layout::Shards, Layout::Replicas] {
                    let what = format!("{factory} {metric} {parts} {layout:?}");
                    let mut multi =
                        MultiIndex::new(&contexts, 13, factory, metric, layout).unwrap();
                    multi.train(&base).unwrap();
                    // Two adds: the parts stay level across calls.
                    multi
                        .add_with_ids(base.view().slice_rows(0, 500), &ids[..500])
                        .unwrap();
                    multi
                        .add_with_ids(base.view().slice_rows(500, 1_003), &ids[500..])
                        .unwrap();
                    assert_eq!(multi.len(), 1_003, "{what}");
                    let lens = multi.part_lens();
                    let (lo, hi) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
                    match layout {
                        Layout::Shards => assert!(hi - lo <= 1, "{what}: {lens:?}"),
                        Layout::Replicas => assert_eq!((*lo, *hi), (1_003, 1_003), "{what}"),
                    }
                    for (rows, k) in [(37, 10), (1, 3), (2, 1_100)] {
                        let qs = q.view().slice_rows(0, rows);
                        let want = single.search(qs, k, &params).unwrap();
                        let got = multi.search(qs, k, &params).unwrap();
                        assert_same(&got, &want, &format!("{what} rows {rows} k {k}"));
                    }
                    let keep = IdSelector::range(1_000..3_000);
                    let filtered = params.with_filter(&keep);
                    let want = single.search(&q, 10, &filtered).unwrap();
                    let got = multi.search(&q, 10, &filtered).unwrap();
                    assert_same(&got, &want, &format!("{what} filtered"));
                }
            }
        }
    });
}

#[test]
fn sharded_graphs_find_the_neighbours() {
    let s = seed();
    for_each_backend("multi-index graph", |ctx| {
        let mut r = rng(s);
        let base = clustered(&mut r, 3_000, 24, 30, 1.0);
        let q = clustered(&mut r, 50, 24, 30, 1.0);
        let contexts = vec![ctx.clone(); 3];
        let mut multi =
            MultiIndex::new(&contexts, 24, "Graph16", Metric::L2, Layout::Shards).unwrap();
        let added = multi.add(&base).unwrap();
        assert_eq!(added, 0..3_000);
        let all: Vec<usize> = (0..3_000).collect();
        let ids: Vec<u64> = (0..3_000).collect();
        let want = exact_over(ctx, &q, &base, &all, &ids, 10, Metric::L2);
        let params = SearchParams::default().with_ef(64);
        let got = multi.search(&q, 10, &params).unwrap();
        let rec = recall(&got, &want);
        assert!(rec >= 0.95, "recall {rec}");
    });
}

#[test]
fn ids_and_removals_span_the_parts() {
    let s = seed();
    for_each_backend("multi-index ids", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 300, 6);
        let contexts = vec![ctx.clone(); 2];
        let mut multi = MultiIndex::new(&contexts, 6, "Flat", Metric::L2, Layout::Shards).unwrap();
        assert_eq!(multi.add(base.view().slice_rows(0, 100)).unwrap(), 0..100);
        let ids: Vec<u64> = (1_000..1_100).collect();
        multi
            .add_with_ids(base.view().slice_rows(100, 200), &ids)
            .unwrap();
        assert_eq!(
            multi.add(base.view().slice_rows(200, 300)).unwrap(),
            1_100..1_200
        );
        assert_eq!(multi.part_lens(), vec![150, 150]);
        // An id held by either part is refused and nothing is added.
        for taken in [3u64, 99, 1_050, 1_199] {
            let e = multi
                .add_with_ids(base.view().slice_rows(0, 2), &[5_000, taken])
                .unwrap_err();
            assert_eq!(e, Error::DuplicateId { id: taken });
        }
        assert_eq!(multi.len(), 300);
        assert_eq!(multi.reconstruct(1_050).unwrap(), base.row(150));
        assert_eq!(multi.reconstruct(7).unwrap(), base.row(7));
        let mut copy = multi.try_clone().unwrap();
        assert_eq!(
            (copy.part_lens(), copy.layout()),
            (vec![150, 150], Layout::Shards)
        );
        assert_eq!(
            copy.add(base.view().slice_rows(0, 1)).unwrap(),
            1_200..1_201
        );
        assert_eq!(multi.len(), 300);
        let gone = multi.remove_ids(&IdSelector::range(90..1_010)).unwrap();
        assert_eq!(gone, 20);
        assert!(!multi.contains(95) && multi.contains(1_010));
        let hits = multi
            .search(base.view().slice_rows(95, 96), 1, &SearchParams::default())
            .unwrap();
        assert_ne!(hits.row_ids(0)[0], 95);
    });
}

#[test]
fn bad_input_is_the_callers_error_not_a_parts() {
    let ctx = Context::cpu();
    let e = MultiIndex::new(&[], 4, "Flat", Metric::L2, Layout::Shards).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                name: "contexts",
                ..
            }
        ),
        "{e}"
    );
    let mut r = rng(seed());
    let base = gaussian(&mut r, 20, 4);
    let contexts = vec![ctx.clone(); 3];
    for layout in [Layout::Shards, Layout::Replicas] {
        let mut multi = MultiIndex::new(&contexts, 4, "IVF2,Flat", Metric::L2, layout).unwrap();
        let e = multi.add(&base).unwrap_err();
        assert!(matches!(e, Error::NotTrained { .. }), "{e}");
        multi.train(&base).unwrap();
        multi.add(&base).unwrap();
        let e = multi.train(&base).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { name: "train", .. }),
            "{e}"
        );
        let e = multi
            .search(&base, 0, &SearchParams::default())
            .unwrap_err();
        assert_eq!(e, Error::InvalidK { k: 0 });
        let wrong = gaussian(&mut r, 3, 5);
        let e = multi
            .search(&wrong, 1, &SearchParams::default())
            .unwrap_err();
        assert!(matches!(e, Error::DimensionMismatch { .. }), "{e}");
        let e = multi.add(&wrong).unwrap_err();
        assert!(matches!(e, Error::DimensionMismatch { .. }), "{e}");
        assert_eq!(multi.len(), 20);
    }
}

#[test]
fn saved_multi_indexes_load_onto_other_context_counts() {
    let s = seed();
    let mut r = rng(s);
    let base = gaussian(&mut r, 500, 9);
    let q = gaussian(&mut r, 11, 9);
    for ctx in backends() {
        for layout in [Layout::Shards, Layout::Replicas] {
            let dir = temp_dir(&format!("{layout:?}-{}", ctx.device()));
            let mut multi =
                MultiIndex::new(&vec![ctx.clone(); 3], 9, "IVF8,Flat", Metric::L2, layout).unwrap();
            multi.train(&base).unwrap();
            multi.add(&base).unwrap();
            multi.set_nprobe(3).unwrap();
            multi.remove_ids(&IdSelector::range(0..50)).unwrap();
            let want = multi.search(&q, 7, &SearchParams::default()).unwrap();
            multi.save(&dir).unwrap();
            multi.save(&dir).unwrap(); // a second save replaces the first
            let files = std::fs::read_dir(&dir).unwrap().count();
            let parts = if layout == Layout::Shards { 3 } else { 1 };
            assert_eq!(files, parts + 1, "{layout:?}");
            for n in [1, 2, 4] {
                let back = MultiIndex::load(&vec![ctx.clone(); n], &dir).unwrap();
                assert_eq!(back.len(), 450);
                let got = back.search(&q, 7, &SearchParams::default()).unwrap();
                assert_same(&got, &want, &format!("{layout:?} onto {n}"));
                let mut back = back;
                assert_eq!(back.add(base.view().slice_rows(0, 1)).unwrap(), 500..501);
            }
            // A damaged manifest is refused, never half-loaded.
            let manifest = dir.join("manifest.vai");
            let bytes = std::fs::read(&manifest).unwrap();
            std::fs::write(&manifest, &bytes[..bytes.len() - 3]).unwrap();
            let e = MultiIndex::load(std::slice::from_ref(&ctx), &dir).unwrap_err();
            assert!(matches!(e, Error::BadIndexFile { .. }), "{e}");
            let e = MultiIndex::load(std::slice::from_ref(&ctx), dir.join("missing")).unwrap_err();
            assert!(matches!(e, Error::BadIndexFile { .. }), "{e}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[test]
fn replicas_copy_a_built_index() {
    let s = seed();
    for_each_backend("replicate", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 400, 8);
        let q = gaussian(&mut r, 5, 8);
        let mut index = Index::new(ctx, 8, "IVF4,Flat", Metric::L2).unwrap();
        index.train(&base).unwrap();
        index.add(&base).unwrap();
        let want = index
            .search(&q, 4, &SearchParams::default().with_nprobe(2))
            .unwrap();
        let mut contexts = backends();
        contexts.push(ctx.clone());
        let multi = MultiIndex::replicate(&index, &contexts).unwrap();
        assert_eq!(multi.layout(), Layout::Replicas);
        assert_eq!(multi.parts().len(), contexts.len());
        let got = multi
            .search(&q, 4, &SearchParams::default().with_nprobe(2))
            .unwrap();
        assert_eq!(got.ids(), want.ids());
    });
}

#[test]
fn durable_multi_indexes_reopen_with_every_acknowledged_write() {
    let s = seed();
    let mut r = rng(s);
    let base = gaussian(&mut r, 160, 6);
    let q = gaussian(&mut r, 9, 6);
    for ctx in backends() {
        for layout in [Layout::Shards, Layout::Replicas] {
            let dir = temp_dir(&format!("durable-{layout:?}-{}", ctx.device()));
            let contexts = vec![ctx.clone(); 3];
            let mut multi = MultiIndex::new(&contexts, 6, "IVF4,Flat", Metric::L2, layout).unwrap();
            multi.train(&base).unwrap();
            let opts = DurableOptions::default();
            let d = DurableMultiIndex::create(&dir, multi, opts.clone()).unwrap();
            assert_eq!(d.add(base.view().slice_rows(0, 100)).unwrap(), 0..100);
            assert_eq!(d.add(base.view().slice_rows(100, 150)).unwrap(), 100..150);
            let ids: Vec<u64> = (1_000..1_010).collect();
            d.add_with_ids(base.view().slice_rows(150, 160), &ids)
                .unwrap();
            match layout {
                // Each add whole, to the emptiest shard.
                Layout::Shards => assert_eq!(d.part_lens(), vec![100, 50, 10]),
                Layout::Replicas => assert_eq!(d.part_lens(), vec![160; 3]),
            }
            let e = d
                .add_with_ids(base.view().slice_rows(0, 1), &[120])
                .unwrap_err();
            assert_eq!(e, Error::DuplicateId { id: 120 });
            assert_eq!(d.remove_ids(&[3, 120, 1_005, 9_999]).unwrap(), 3);
            let params = SearchParams::default().with_nprobe(2);
            let want = d.search(&q, 5, &params).unwrap();
            drop(d); // as a crash would, after every acknowledgement
            let (back, recovered) =
                DurableMultiIndex::open(&contexts[..2], &dir, opts.clone()).unwrap();
            assert_eq!(
                recovered.len(),
                if layout == Layout::Shards { 3 } else { 1 }
            );
            assert_eq!(back.len(), 157);
            let got = back.search(&q, 5, &params).unwrap();
            assert_same(&got, &want, &format!("durable {layout:?}"));
            assert_eq!(
                back.add(base.view().slice_rows(0, 2)).unwrap(),
                1_010..1_012
            );
            let again = MultiIndex::new(&contexts, 6, "Flat", Metric::L2, layout).unwrap();
            let e = DurableMultiIndex::create(&dir, again, opts).err().unwrap();
            assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

//! The Flat index against exact k-NN: every metric, blocks from several
//! adds, ids, reconstruction, removal and range search.

use super::{build, exact_over};
use crate::common::{assert_close_neighbors, for_each_backend, gaussian, nonneg, rng, seed};
use vector_accelerate::distance::pairwise;
use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{Error, Matrix, Metric, MISSING_ID};

const METRICS: &[Metric] = &[
    Metric::L2,
    Metric::Euclidean,
    Metric::Cosine,
    Metric::CosineSimilarity,
    Metric::InnerProduct,
    Metric::AbsInnerProduct,
    Metric::L1,
    Metric::Linf,
    Metric::Minkowski(3.0),
    Metric::Hamming,
    Metric::Jaccard,
];

fn ids_for(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| 7 * i + 3).collect()
}

#[test]
fn flat_equals_exact_knn_for_every_metric_and_shape() {
    let s = seed();
    for_each_backend("index flat every metric", |ctx| {
        let mut r = rng(s);
        for &(n, dim) in &[(1, 3), (2, 17), (33, 5), (1031, 128)] {
            for &m in METRICS {
                let data = |r: &mut _, rows| {
                    if m == Metric::Jaccard {
                        nonneg(r, rows, dim)
                    } else {
                        gaussian(r, rows, dim)
                    }
                };
                let base = data(&mut r, n);
                let q = data(&mut r, 7);
                let ids = ids_for(n);
                let index = build(ctx, "Flat", &base, &ids, m);
                let all: Vec<usize> = (0..n).collect();
                for k in [1, 10, n + 2] {
                    let got = index.search(&q, k, &SearchParams::default()).unwrap();
                    let want = exact_over(ctx, &q, &base, &all, &ids, k, m);
                    assert_eq!(got, want, "seed {s} n {n} dim {dim} {m} k {k}");
                }
            }
        }
    });
}

#[test]
fn rows_added_in_batches_are_searched_together_with_sequential_ids() {
    let s = seed();
    for_each_backend("index flat batches", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 300, 24);
        let q = gaussian(&mut r, 9, 24);
        let mut index = Index::new(ctx, 24, "flat", Metric::L2).unwrap();
        let mut given = Vec::new();
        for (a, b) in [(0, 1), (1, 120), (120, 300)] {
            let part = super::rows_of(&base, &(a..b).collect::<Vec<_>>());
            given.push(index.add(&part).unwrap());
        }
        assert_eq!(given, vec![0..1, 1..120, 120..300]);
        assert_eq!(index.len(), 300);
        let all: Vec<usize> = (0..300).collect();
        let ids: Vec<u64> = (0..300).collect();
        let got = index.search(&q, 12, &SearchParams::default()).unwrap();
        let want = exact_over(ctx, &q, &base, &all, &ids, 12, Metric::L2);
        assert_close_neighbors(&format!("seed {s}"), &got, &want, |_| 1e-3);
    });
}

#[test]
fn sequential_ids_continue_after_the_largest_id_seen() {
    let ctx = vector_accelerate::Context::cpu();
    let x = Matrix::new(vec![0.0, 1.0, 2.0, 3.0], 1).unwrap();
    let mut index = Index::new(&ctx, 1, "Flat", Metric::L2).unwrap();
    index
        .add_with_ids(x.view().slice_rows(0, 2), &[5, 100])
        .unwrap();
    assert_eq!(index.add(x.view().slice_rows(2, 4)).unwrap(), 101..103);
    index.remove_ids(&IdSelector::allow([102])).unwrap();
    assert_eq!(index.add(x.view().slice_rows(0, 1)).unwrap(), 103..104);
    let hits = index
        .search(x.view().slice_rows(3, 4), 4, &SearchParams::default())
        .unwrap();
    assert_eq!(hits.row_ids(0), &[101, 100, 5, 103]);
    let hits = index
        .search(x.view().slice_rows(3, 4), 5, &SearchParams::default())
        .unwrap();
    assert_eq!(hits.row_ids(0)[4], MISSING_ID);
}

#[test]
fn reconstruct_returns_the_stored_vector_until_it_is_removed() {
    let s = seed();
    for_each_backend("index reconstruct", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 50, 13);
        let ids = ids_for(50);
        for factory in ["Flat", "IVF4,Flat"] {
            let mut index = build(ctx, factory, &base, &ids, Metric::L2);
            assert_eq!(
                index.reconstruct(ids[17]).unwrap(),
                base.row(17),
                "{factory}"
            );
            assert!(matches!(
                index.reconstruct(4),
                Err(Error::UnknownId { id: 4 })
            ));
            index.remove_ids(&IdSelector::allow([ids[17]])).unwrap();
            assert!(matches!(
                index.reconstruct(ids[17]),
                Err(Error::UnknownId { .. })
            ));
            assert_eq!(
                index.reconstruct(ids[18]).unwrap(),
                base.row(18),
                "{factory}"
            );
        }
    });
}

#[test]
fn removed_ids_are_never_returned_and_compaction_keeps_ids() {
    let s = seed();
    for_each_backend("index flat removal", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 400, 16);
        let q = gaussian(&mut r, 11, 16);
        let ids = ids_for(400);
        let mut index = build(ctx, "Flat", &base, &ids, Metric::L2);
        index.set_compaction_threshold(1.0).unwrap();
        let gone: Vec<u64> = ids.iter().copied().step_by(3).collect();
        assert_eq!(
            index.remove_ids(&IdSelector::allow(gone.clone())).unwrap(),
            gone.len()
        );
        assert_eq!(
            index.remove_ids(&IdSelector::allow(gone.clone())).unwrap(),
            0
        );
        assert_eq!(index.deleted(), gone.len());
        let kept: Vec<usize> = (0..400).filter(|i| i % 3 != 0).collect();
        let want = exact_over(ctx, &q, &base, &kept, &ids, 20, Metric::L2);
        let before = index.search(&q, 20, &SearchParams::default()).unwrap();
        assert_close_neighbors(
            &format!("seed {s} before compaction"),
            &before,
            &want,
            |_| 1e-3,
        );
        let bytes = index.memory_usage();
        index.compact().unwrap();
        assert_eq!((index.deleted(), index.len()), (0, kept.len()));
        assert!(index.memory_usage() < bytes);
        let after = index.search(&q, 20, &SearchParams::default()).unwrap();
        assert_close_neighbors(&format!("seed {s} after compaction"), &after, &want, |_| {
            1e-3
        });
        assert_eq!(index.reconstruct(ids[4]).unwrap(), base.row(4));
    });
}

#[test]
fn removal_past_the_threshold_compacts_by_itself() {
    let ctx = vector_accelerate::Context::cpu();
    let mut r = rng(seed());
    let base = gaussian(&mut r, 100, 4);
    let mut index = build(&ctx, "Flat", &base, &ids_for(100), Metric::L2);
    index.set_compaction_threshold(0.1).unwrap();
    index.remove_ids(&IdSelector::range(0..30)).unwrap();
    assert_eq!(index.deleted(), 4);
    index
        .remove_ids(&IdSelector::from_fn(|id| id % 2 == 0))
        .unwrap();
    assert_eq!(index.deleted(), 0, "compacted once past 10%");
}

#[test]
fn range_search_returns_every_vector_inside_the_radius() {
    let s = seed();
    for_each_backend("index range search", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 500, 8);
        let q = gaussian(&mut r, 6, 8);
        let ids = ids_for(500);
        for (m, radius) in [(Metric::L2, 6.0f32), (Metric::InnerProduct, 2.0)] {
            let d = pairwise(ctx, &q, &base, m).unwrap();
            for factory in ["Flat", "IVF8,Flat"] {
                let index = build(ctx, factory, &base, &ids, m);
                let p = SearchParams::default().with_nprobe(8);
                let got = index.range_search(&q, radius, &p).unwrap();
                assert_eq!(got.rows(), 6);
                for qi in 0..6 {
                    let row = &d.as_slice()[qi * 500..(qi + 1) * 500];
                    let inside = |v: f32| {
                        if m == Metric::L2 {
                            v < radius
                        } else {
                            v > radius
                        }
                    };
                    let mut want: Vec<u64> = (0..500)
                        .filter(|&i| inside(row[i]))
                        .map(|i| ids[i])
                        .collect();
                    let mut have = got.row_ids(qi).to_vec();
                    let dist = got.row_distances(qi);
                    assert!(dist.windows(2).all(|w| if m == Metric::L2 {
                        w[0] <= w[1]
                    } else {
                        w[0] >= w[1]
                    }));
                    // Values within rounding of the radius may fall either way.
                    let edge = |id: &u64| (row[(*id as usize - 3) / 7] - radius).abs() < 1e-3;
                    want.retain(|id| !edge(id));
                    have.retain(|id| !edge(id));
                    want.sort_unstable();
                    have.sort_unstable();
                    assert_eq!(have, want, "seed {s} {factory} {m} query {qi}");
                }
            }
        }
    });
}

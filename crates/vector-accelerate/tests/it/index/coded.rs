//! Coded lists (IVF-SQ8, IVF-SQ4, IVF-PQ, with and without Refine): recall
//! on clustered data, exact results from Refine, CUDA against the CPU,
//! removals, filters, save/load and the metrics they refuse.

use super::{build, recall};
use crate::common::{assert_close_neighbors, clustered, for_each_backend, gaussian, rng, seed};
use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{Context, Error, Matrix, Metric, MISSING_ID};

/// Every coded factory with the recall@10 it must reach at nprobe 16 of
/// 64 lists on the test data (PQ without refine loses most to its codes).
const KINDS: [(&str, f64); 5] = [
    ("IVF64,SQ8", 0.85),
    ("IVF64,SQ4", 0.6),
    ("IVF64,PQ8x8", 0.3),
    ("IVF64,PQ8x8,Refine", 0.85),
    ("IVF64,SQ4,Refine", 0.85),
];

fn data(s: u64) -> (Matrix, Matrix, Vec<u64>) {
    let mut r = rng(s);
    let base = clustered(&mut r, 12_000, 32, 100, 0.35);
    let q = clustered(&mut r, 150, 32, 100, 0.35);
    let ids = (0..12_000u64).map(|i| i * 3 + 5).collect();
    (base, q, ids)
}

#[test]
fn coded_lists_reach_their_recall_for_each_metric() {
    let s = seed();
    let (base, q, ids) = data(s);
    for_each_backend("index coded recall", |ctx| {
        for m in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let flat = build(ctx, "Flat", &base, &ids, m);
            let want = flat.search(&q, 10, &SearchParams::default()).unwrap();
            for (factory, floor) in KINDS {
                let index = build(ctx, factory, &base, &ids, m);
                let p = SearchParams::default()
                    .with_nprobe(16)
                    .with_refine_factor(4);
                let got = index.search(&q, 10, &p).unwrap();
                let rc = recall(&got, &want);
                // Inner product on unnormalized clusters ranks by length;
                // its codes keep less of it.
                let floor = if m == Metric::InnerProduct {
                    floor * 0.8
                } else {
                    floor
                };
                assert!(rc >= floor, "seed {s} {factory} {m}: recall {rc} < {floor}");
                assert!(got.ids().iter().all(|&i| i != MISSING_ID));
            }
        }
    });
}

#[test]
fn refine_over_every_list_equals_flat() {
    let s = seed();
    for_each_backend("index coded refine exact", |ctx| {
        let mut r = rng(s);
        for &(n, dim, nlist) in &[(300, 8, 4), (1500, 24, 16)] {
            let base = gaussian(&mut r, n, dim);
            let q = gaussian(&mut r, 9, dim);
            let ids: Vec<u64> = (0..n as u64).map(|i| i + 100).collect();
            for m in [Metric::L2, Metric::Euclidean, Metric::InnerProduct] {
                let flat = build(ctx, "Flat", &base, &ids, m);
                for codes in ["SQ8", "PQ4x8"] {
                    let index = build(ctx, &format!("IVF{nlist},{codes},Refine"), &base, &ids, m);
                    // Every row is a candidate: the refine alone ranks.
                    let p = SearchParams::default()
                        .with_nprobe(nlist)
                        .with_refine_factor(n);
                    let want = flat.search(&q, 5, &p).unwrap();
                    let got = index.search(&q, 5, &p).unwrap();
                    assert_close_neighbors(
                        &format!("seed {s} {codes} {m} n {n}"),
                        &got,
                        &want,
                        super::tol_of(&want),
                    );
                }
            }
        }
    });
}

#[test]
fn cuda_coded_scans_agree_with_the_cpu() {
    let s = seed();
    let (base, q, ids) = data(s ^ 7);
    for_each_backend("index coded cuda vs cpu", |ctx| {
        if !ctx.is_cuda() {
            return;
        }
        let cpu = Context::cpu();
        for m in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
            for factory in [
                "IVF32,SQ8",
                "IVF32,SQ4",
                "IVF32,PQ8x8",
                "IVF32,PQ16x8,Refine",
            ] {
                // Train on the CPU and load on both, so both hold the same
                // centroids and codes.
                let dir = tempdir();
                let path = dir.join("i.vaindex");
                build(&cpu, factory, &base, &ids, m).save(&path).unwrap();
                let a = Index::load(&cpu, &path).unwrap();
                let b = Index::load(ctx, &path).unwrap();
                let p = SearchParams::default().with_nprobe(8);
                let (x, y) = (a.search(&q, 10, &p).unwrap(), b.search(&q, 10, &p).unwrap());
                let same = recall(&y, &x);
                assert!(
                    same >= 0.97,
                    "seed {s} {factory} {m}: cuda/cpu overlap {same}"
                );
                for r in 0..x.rows() {
                    let (dx, dy) = (x.row_distances(r)[0], y.row_distances(r)[0]);
                    let tol = 1e-3 * (1.0 + dx.abs());
                    assert!(
                        (dx - dy).abs() <= tol,
                        "seed {s} {factory} {m} row {r}: {dx} vs {dy}"
                    );
                }
            }
        }
    });
}

#[test]
fn removed_ids_are_gone_and_reconstruct_decodes() {
    let s = seed();
    let (base, q, ids) = data(s ^ 3);
    for_each_backend("index coded removals", |ctx| {
        for factory in ["IVF16,SQ8", "IVF16,PQ8x8,Refine"] {
            let mut index = build(ctx, factory, &base, &ids, Metric::L2);
            let p = SearchParams::default().with_nprobe(16);
            let before = index.search(&q, 5, &p).unwrap();
            let gone: Vec<u64> = before.ids().to_vec();
            index.remove_ids(&IdSelector::allow(gone.clone())).unwrap();
            index.compact().unwrap();
            let after = index.search(&q, 5, &p).unwrap();
            assert!(after
                .ids()
                .iter()
                .all(|i| !gone.contains(i) && *i != MISSING_ID));
            // Exact rows where the index refines; decoded codes within the
            // quantizer's error otherwise.
            let row = (0..ids.len()).find(|&r| !gone.contains(&ids[r])).unwrap();
            let v = index.reconstruct(ids[row]).unwrap();
            let err = v
                .iter()
                .zip(base.row(row))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let bound = if factory.ends_with("Refine") {
                0.0
            } else {
                0.1
            };
            assert!(err <= bound, "seed {s} {factory}: reconstruct error {err}");
        }
    });
}

#[test]
fn filtered_coded_searches_return_k_allowed() {
    let s = seed();
    let (base, q, ids) = data(s ^ 5);
    for_each_backend("index coded filters", |ctx| {
        for factory in ["IVF32,SQ8", "IVF32,PQ8x8,Refine"] {
            let index = build(ctx, factory, &base, &ids, Metric::L2);
            for every in [3u64, 50, 400] {
                let f = IdSelector::from_fn(move |id| (id / 3) % every == 0);
                let p = SearchParams::default().with_nprobe(4).with_filter(&f);
                let got = index.search(&q, 10, &p).unwrap();
                for &id in got.ids() {
                    assert!(
                        id != MISSING_ID && (id / 3) % every == 0,
                        "seed {s} {factory}: {id}"
                    );
                }
            }
        }
    });
}

#[test]
fn coded_indexes_round_trip_through_files() {
    let s = seed();
    let (base, q, ids) = data(s ^ 9);
    for_each_backend("index coded save/load", |ctx| {
        for factory in ["IVF16,SQ4", "IVF16,PQ4x8", "IVF16,SQ8,Refine"] {
            let mut index = build(ctx, factory, &base, &ids, Metric::Cosine);
            index.remove_ids(&IdSelector::range(5..200)).unwrap();
            let dir = tempdir();
            let path = dir.join("i.vaindex");
            index.save(&path).unwrap();
            let back = Index::load(ctx, &path).unwrap();
            assert_eq!(back.factory(), index.factory());
            assert_eq!(back.len(), index.len());
            let p = SearchParams::default().with_nprobe(6);
            let (a, b) = (
                index.search(&q, 7, &p).unwrap(),
                back.search(&q, 7, &p).unwrap(),
            );
            assert_eq!(a.ids(), b.ids(), "seed {s} {factory}");
            assert_eq!(a.distances(), b.distances(), "seed {s} {factory}");
        }
    });
}

#[test]
fn coded_lists_refuse_what_they_cannot_serve() {
    let ctx = Context::cpu();
    let bad = |factory: &str, m: Metric| Index::new(&ctx, 30, factory, m).unwrap_err();
    assert!(matches!(
        bad("IVF8,PQ7", Metric::L2),
        Error::BadFactory { .. }
    ));
    assert!(matches!(
        bad("IVF8,PQ10x2", Metric::L2),
        Error::BadFactory { .. }
    ));
    assert!(matches!(
        bad("IVF8,SQ8", Metric::L1),
        Error::UnsupportedMetric { .. }
    ));
    assert!(matches!(
        bad("IVF8,PQ10,Refine", Metric::Hamming),
        Error::UnsupportedMetric { .. }
    ));
    let mut index = Index::new(&ctx, 30, "IVF8,SQ8", Metric::L2).unwrap();
    let x = Matrix::new(vec![0.5; 300], 30).unwrap();
    assert!(matches!(
        index.add(&x).unwrap_err(),
        Error::NotTrained { .. }
    ));
    index.train(&x).unwrap();
    let p = SearchParams::default().with_refine_factor(0);
    index.add(&x).unwrap();
    assert!(index.search(&x, 1, &p).is_err());
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "va-coded-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn refine_over_several_added_batches_equals_one_batch() {
    let s = seed();
    let (base, q, ids) = data(s ^ 11);
    for_each_backend("index coded refine batches", |ctx| {
        let one = build(ctx, "IVF16,PQ8x8,Refine", &base, &ids, Metric::L2);
        let mut parts = Index::new(ctx, base.dim(), "IVF16,PQ8x8,Refine", Metric::L2).unwrap();
        parts.train(&base).unwrap();
        for (a, b) in [(0, 5_000), (5_000, 5_001), (5_001, 12_000)] {
            let rows = base.view().slice_rows(a, b);
            parts.add_with_ids(rows, &ids[a..b]).unwrap();
        }
        let p = SearchParams::default().with_nprobe(5).with_refine_factor(3);
        let (x, y) = (
            one.search(&q, 10, &p).unwrap(),
            parts.search(&q, 10, &p).unwrap(),
        );
        assert_eq!(x.ids(), y.ids(), "seed {s}");
        assert_eq!(x.distances(), y.distances(), "seed {s}");
    });
}

//! Graph indexes: recall against exact search, exact distances of what is
//! found, tiny graphs, filters, removals, save/load, the CUDA walk beside
//! the host's, and bad factories.

use super::{build, exact_over, recall, tol_of};
use crate::common::{
    assert_close_neighbors, clustered, cuda, for_each_backend, gaussian, rng, seed,
};
use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{Context, Error, Matrix, Metric, Neighbors, WalkPrecision, MISSING_ID};

#[test]
fn graph_recall_grows_with_ef_and_distances_are_exact() {
    let s = seed();
    for_each_backend("index graph recall", |ctx| {
        let mut r = rng(s);
        // Well separated clusters: the k-NN graph barely links them, so a
        // search must find the query's cluster through the upper level.
        let base = clustered(&mut r, 6_000, 24, 60, 0.5);
        let q = clustered(&mut r, 150, 24, 60, 0.5);
        let ids: Vec<u64> = (0..6_000).map(|i| 7 + 3 * i).collect();
        for (m, floor) in [
            (Metric::L2, 0.95),
            (Metric::Cosine, 0.95),
            (Metric::InnerProduct, 0.8),
        ] {
            let flat = build(ctx, "Flat", &base, &ids, m);
            let graph = build(ctx, "Graph16", &base, &ids, m);
            let want = flat.search(&q, 10, &SearchParams::default()).unwrap();
            let mut last = 0.0;
            for ef in [10, 32, 128, 512] {
                let got = graph
                    .search(&q, 10, &SearchParams::default().with_ef(ef))
                    .unwrap();
                let rc = recall(&got, &want);
                assert!(
                    rc >= last - 0.02,
                    "seed {s} {m}: recall {rc} at ef {ef} after {last}"
                );
                last = rc;
                // Every result carries its exact distance (fp64 here).
                for row in 0..q.rows() {
                    for (j, &id) in got.row_ids(row).iter().enumerate() {
                        assert_ne!(id, MISSING_ID, "seed {s} {m}: 10 of 6,000 found");
                        let x = base.row(((id - 7) / 3) as usize);
                        let a = got.row_distances(row)[j] as f64;
                        let b = fp64(m, q.row(row), x);
                        assert!(
                            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                            "seed {s} {m}: {a} vs {b}"
                        );
                    }
                }
            }
            assert!(last >= floor, "seed {s} {m}: recall {last} at ef 512");
        }
    });
}

/// The compressed walks and the recall each may lose against the fp32
/// walk (8-bit codes rank less finely than f16).
const COMPRESSED: [(WalkPrecision, f64); 2] =
    [(WalkPrecision::F16, 0.03), (WalkPrecision::Int8, 0.05)];

#[test]
fn cuda_walk_agrees_with_the_host_walk() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: cuda_walk_agrees_with_the_host_walk needs a GPU");
        return;
    };
    eprintln!("[cuda] cuda_walk_agrees_with_the_host_walk");
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let dir = std::env::temp_dir().join(format!("va-graph-walk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("g.vai");
    // Rows not a multiple of 4, 8 or 16 long and one that is, degrees
    // below, at and above the kernel's 32 lanes, graphs with and without
    // an upper level.
    for (n, dim, factory) in [
        (500, 13, "Graph4"),
        (5_003, 48, "Graph16"),
        (6_007, 130, "Graph40"),
        (4_500, 7, "Graph2"),
    ] {
        let base = clustered(&mut r, n, dim, 40, 0.5);
        // 13 queries are a batch for several walkers per query (with
        // `MULTI_UP_TO` at 16 or more; now a block each), 97 and 301 walk
        // a block each, 4,201 a warp each.
        let tiny = clustered(&mut r, 13, dim, 40, 0.5);
        let small = clustered(&mut r, 97, dim, 40, 0.5);
        let middle = clustered(&mut r, 301, dim, 40, 0.5);
        let large = clustered(&mut r, 4_201, dim, 40, 0.5);
        let ids: Vec<u64> = (0..n as u64).map(|i| 5 * i + 1).collect();
        for m in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let label = format!("seed {s} {n} x {dim} {factory} {m}");
            let host = build(&cpu, factory, &base, &ids, m);
            host.save(&path).unwrap();
            let dev = Index::load(&gpu, &path).unwrap();
            let flat = build(&cpu, "Flat", &base, &ids, m);
            // ef 600 is past the kernels' lists: the host walks it; ef 512
            // is past the warp walk's.
            let cases = [(1, 16), (10, 64), (10, 512), (50, 50), (10, 600)];
            let batches = cases.iter().map(|&c| (&small, c));
            let batches = batches.chain(cases.iter().map(|&c| (&tiny, c)));
            let batches = batches.chain([(1, 16), (10, 64), (50, 50)].map(|c| (&middle, c)));
            let batches = batches.chain([(1, 16), (10, 64), (50, 50)].map(|c| (&large, c)));
            for (q, (k, ef)) in batches {
                let label = format!("{label} {} queries", q.rows());
                let p = SearchParams::default().with_ef(ef);
                let a = host.search(q, k, &p).unwrap();
                let b = dev.search(q, k, &p).unwrap();
                let want = flat.search(q, k, &p).unwrap();
                let (ra, rb) = (recall(&a, &want), recall(&b, &want));
                assert!(
                    rb >= ra - 0.03,
                    "{label} k {k} ef {ef}: cuda {rb} host {ra}"
                );
                assert!(
                    recall(&b, &a) >= 0.9,
                    "{label} k {k} ef {ef}: {}",
                    recall(&b, &a)
                );
                check_exact(&label, m, q, &base, &b);
                // The f16 and int8 walks (warp walks) re-score in fp32:
                // exact distances, recall about the fp32 walk's.
                for (rows, slack) in COMPRESSED {
                    let h = dev.search(q, k, &p.with_precision(rows)).unwrap();
                    let rh = recall(&h, &want);
                    assert!(
                        rh >= rb - slack,
                        "{label} k {k} ef {ef}: {rows} {rh} fp32 {rb}"
                    );
                    check_exact(&label, m, q, &base, &h);
                }
            }
            // Filtered walks of every kernel.
            for q in [&small, &middle, &large] {
                // A filter passing two thirds: only allowed ids, as many found.
                let sel = IdSelector::from_fn(|id| id % 3 != 0);
                let p = SearchParams::default().with_filter(&sel).with_ef(128);
                let a = host.search(q, 10, &p).unwrap();
                let b = dev.search(q, 10, &p).unwrap();
                assert!(b.ids().iter().all(|&i| i % 3 != 0), "{label} filtered");
                let kept: Vec<usize> = (0..n).filter(|&i| !ids[i].is_multiple_of(3)).collect();
                let want = exact_over(&cpu, q, &base, &kept, &ids, 10, m);
                let (ra, rb) = (recall(&a, &want), recall(&b, &want));
                assert!(rb >= ra - 0.03, "{label} filtered: cuda {rb} host {ra}");
                check_exact(&label, m, q, &base, &b);
                for (rows, slack) in COMPRESSED {
                    let h = dev.search(q, 10, &p.with_precision(rows)).unwrap();
                    let kept = h.ids().iter().all(|&i| i % 3 != 0);
                    assert!(kept, "{label} filtered {rows}");
                    let rh = recall(&h, &want);
                    assert!(rh >= rb - slack, "{label} filtered: {rows} {rh} fp32 {rb}");
                    check_exact(&label, m, q, &base, &h);
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn added_vectors_are_linked_in_with_recall_near_a_fresh_build() {
    let s = seed();
    for_each_backend("index graph inserts", |ctx| {
        let mut r = rng(s);
        let (n0, dim) = (5_000, 20);
        let all = clustered(&mut r, 6_300, dim, 50, 0.5);
        let q = clustered(&mut r, 120, dim, 50, 0.5);
        let ids: Vec<u64> = (0..6_300).collect();
        for m in [Metric::L2, Metric::InnerProduct] {
            let head = rows_of(&all, 0, n0);
            let mut grown = build(ctx, "Graph16", &head, &ids[..n0], m);
            // Batches of 600, 1 and 399: 20% more, linked in; then 300
            // more pass the rebuild threshold (25%).
            for (a, b) in [(n0, 5_600), (5_600, 5_601), (5_601, 6_000), (6_000, 6_300)] {
                let part = rows_of(&all, a, b);
                grown.add_with_ids(&part, &ids[a..b]).unwrap();
                let seen = rows_of(&all, 0, b);
                let fresh = build(ctx, "Graph16", &seen, &ids[..b], m);
                let flat = build(ctx, "Flat", &seen, &ids[..b], m);
                let p = SearchParams::default().with_ef(64);
                let want = flat.search(&q, 10, &p).unwrap();
                let rg = recall(&grown.search(&q, 10, &p).unwrap(), &want);
                let rf = recall(&fresh.search(&q, 10, &p).unwrap(), &want);
                assert!(rg >= rf - 0.05, "seed {s} {m} {b}: grown {rg} fresh {rf}");
                // Each added vector finds itself (under L2: an inner
                // product can rank a longer vector first).
                if m != Metric::L2 {
                    continue;
                }
                let added = rows_of(&all, a, b);
                let me = grown.search(&added, 1, &p).unwrap();
                let found = (0..b - a)
                    .filter(|&i| me.row_ids(i)[0] == (a + i) as u64)
                    .count();
                assert!(
                    found as f64 >= 0.98 * (b - a) as f64,
                    "seed {s} {m} {b}: {found} of {} found themselves",
                    b - a
                );
            }
        }
    });
}

/// Rows `a..b` of `m` as a matrix of their own.
fn rows_of(m: &Matrix, a: usize, b: usize) -> Matrix {
    Matrix::new(m.as_slice()[a * m.dim()..b * m.dim()].to_vec(), m.dim()).unwrap()
}

/// Every result of `got` (ids `5 i + 1` of `base`) is found and carries its
/// exact distance (fp64 here).
fn check_exact(label: &str, m: Metric, q: &Matrix, base: &Matrix, got: &Neighbors) {
    for row in 0..q.rows() {
        for (j, &id) in got.row_ids(row).iter().enumerate() {
            assert_ne!(id, MISSING_ID, "{label}: q{row} short");
            let x = base.row(((id - 1) / 5) as usize);
            let a = got.row_distances(row)[j] as f64;
            let b = fp64(m, q.row(row), x);
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{label}: q{row} {a} vs {b}"
            );
        }
    }
}

/// The metric's value of `q` and `x` in fp64 (l2, cosine or ip).
fn fp64(m: Metric, q: &[f32], x: &[f32]) -> f64 {
    let dot: f64 = q.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum();
    let len = |v: &[f32]| v.iter().map(|a| *a as f64 * *a as f64).sum::<f64>().sqrt();
    match m {
        Metric::L2 => q
            .iter()
            .zip(x)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum(),
        Metric::Cosine => 1.0 - dot / (len(q) * len(x)),
        _ => dot,
    }
}

#[test]
fn tiny_graphs_equal_exact_search() {
    let s = seed();
    for_each_backend("index graph tiny", |ctx| {
        let mut r = rng(s);
        for n in [1, 2, 3, 17, 33] {
            let base = gaussian(&mut r, n, 7);
            let q = gaussian(&mut r, 5, 7);
            let ids: Vec<u64> = (0..n as u64).map(|i| 100 - i).collect();
            let flat = build(ctx, "Flat", &base, &ids, Metric::L2);
            let graph = build(ctx, "Graph4", &base, &ids, Metric::L2);
            for k in [1, 3, 40] {
                let p = SearchParams::default().with_ef(64);
                let want = flat.search(&q, k, &p).unwrap();
                let got = graph.search(&q, k, &p).unwrap();
                assert_close_neighbors(
                    &format!("seed {s} n {n} k {k}"),
                    &got,
                    &want,
                    tol_of(&want),
                );
            }
        }
    });
}

#[test]
fn graph_filters_removals_and_files() {
    let s = seed();
    for_each_backend("index graph filters", |ctx| {
        let mut r = rng(s);
        let n = 3_000;
        let base = clustered(&mut r, n, 16, 30, 0.5);
        let q = clustered(&mut r, 40, 16, 30, 0.5);
        let ids: Vec<u64> = (0..n as u64).collect();
        let mut graph = build(ctx, "Graph12", &base, &ids, Metric::L2);
        // Few allowed: searched exactly, equal to the exact search over them.
        let few: Vec<usize> = (0..n).step_by(101).collect();
        let sel = IdSelector::allow(few.iter().map(|&i| i as u64));
        let p = SearchParams::default().with_filter(&sel);
        let got = graph.search(&q, 10, &p).unwrap();
        let want = exact_over(ctx, &q, &base, &few, &ids, 10, Metric::L2);
        assert_close_neighbors(&format!("seed {s} few"), &got, &want, tol_of(&want));
        // Many allowed: found in the graph, only allowed ids, k of them.
        let half: Vec<usize> = (0..n).filter(|i| i % 3 != 0).collect();
        let sel = IdSelector::from_fn(|id| id % 3 != 0);
        let p = SearchParams::default().with_filter(&sel).with_ef(128);
        let got = graph.search(&q, 10, &p).unwrap();
        let want = exact_over(ctx, &q, &base, &half, &ids, 10, Metric::L2);
        assert!(
            got.ids().iter().all(|&i| i != MISSING_ID && i % 3 != 0),
            "seed {s}"
        );
        assert!(
            recall(&got, &want) >= 0.9,
            "seed {s}: {}",
            recall(&got, &want)
        );
        // Removed ids never come back; compaction keeps ids.
        graph.remove_ids(&IdSelector::range(0..1_000)).unwrap();
        let got = graph
            .search(&q, 10, &SearchParams::default().with_ef(128))
            .unwrap();
        assert!(
            got.ids().iter().all(|&i| (1_000..3_000).contains(&i)),
            "seed {s}"
        );
        graph.compact().unwrap();
        let again = graph
            .search(&q, 10, &SearchParams::default().with_ef(128))
            .unwrap();
        let kept: Vec<usize> = (1_000..n).collect();
        let want = exact_over(ctx, &q, &base, &kept, &ids, 10, Metric::L2);
        assert!(
            recall(&again, &want) >= 0.9,
            "seed {s}: {}",
            recall(&again, &want)
        );
        // Saved and loaded on every backend: the same results.
        let dir = std::env::temp_dir().join(format!("va-graph-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.vai");
        graph.save(&path).unwrap();
        for other in crate::common::backends() {
            let back = Index::load(&other, &path).unwrap();
            assert_eq!((back.len(), back.factory()), (2_000, "Graph12".to_string()));
            let got = back
                .search(&q, 10, &SearchParams::default().with_ef(128))
                .unwrap();
            assert_close_neighbors(&format!("seed {s} load"), &got, &again, tol_of(&again));
        }
    });
}

#[test]
fn bad_graph_factories_and_metrics_are_typed_errors() {
    let ctx = Context::cpu();
    for spec in ["Graph1", "Graph0", "GraphX", "Graph2000", "Graph16,Flat"] {
        let e = Index::new(&ctx, 8, spec, Metric::L2).unwrap_err();
        assert!(matches!(e, Error::BadFactory { .. }), "{spec}: {e}");
    }
    let e = Index::new(&ctx, 8, "Graph16", Metric::L1).unwrap_err();
    assert!(matches!(e, Error::UnsupportedMetric { .. }), "{e}");
    assert_eq!(
        Index::new(&ctx, 8, "graph", Metric::L2).unwrap().factory(),
        "Graph32"
    );
}

#[test]
fn a_graph_build_reports_its_stages_in_order() {
    use std::sync::{Arc, Mutex};
    use vector_accelerate::index::{BuildProgress, BuildStage};
    let s = seed();
    for_each_backend("index graph build progress", |ctx| {
        let mut r = rng(s);
        // Over 4,096 nodes: an upper level is built too.
        let base = clustered(&mut r, 5_000, 12, 20, 0.5);
        let mut index = Index::new(ctx, 12, "Graph8", Metric::L2).unwrap();
        let seen: Arc<Mutex<Vec<BuildProgress>>> = Arc::default();
        let log = seen.clone();
        index.set_build_progress(move |p| log.lock().unwrap().push(*p));
        index.add(&base).unwrap();
        let seen = seen.lock().unwrap().clone();
        let order = |st: BuildStage| match st {
            BuildStage::Neighbours => 0,
            BuildStage::Pruning => 1,
            BuildStage::ReverseEdges => 2,
            BuildStage::UpperLevels => 3,
        };
        assert!(seen.iter().all(|p| p.done <= p.total), "seed {s}: {seen:?}");
        assert!(
            seen.windows(2)
                .all(|w| order(w[0].stage) <= order(w[1].stage)),
            "seed {s}: {seen:?}"
        );
        for (st, total) in [
            (BuildStage::Neighbours, 5_000),
            (BuildStage::ReverseEdges, 5_000),
            (BuildStage::UpperLevels, 1),
        ] {
            let last = seen.iter().rfind(|p| p.stage == st);
            assert_eq!(
                last.map(|p| (p.done, p.total)),
                Some((total, total)),
                "seed {s} {}: {seen:?}",
                st.name()
            );
        }
        // A flat index never reports.
        let mut flat = Index::new(ctx, 12, "Flat", Metric::L2).unwrap();
        flat.set_build_progress(|p| panic!("a flat index reported {p:?}"));
        flat.add(&base).unwrap();
    });
}

#[test]
fn an_f16_walk_of_rows_past_the_f16_range_walks_in_fp32() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: an_f16_walk_of_rows_past_the_f16_range_walks_in_fp32 needs a GPU");
        return;
    };
    eprintln!("[cuda] an_f16_walk_of_rows_past_the_f16_range_walks_in_fp32");
    let s = seed();
    let mut r = rng(s);
    let mut base = clustered(&mut r, 3_001, 16, 20, 0.5);
    // Enough queries for the warp walk, which walks f16 rows.
    let q = clustered(&mut r, 4_200, 16, 20, 0.5);
    // One value past 65504: f16 copies would turn it into infinity.
    let mut v = base.as_slice().to_vec();
    v[5] = 1.0e5;
    base = Matrix::new(v, 16).unwrap();
    let ids: Vec<u64> = (0..3_001).collect();
    let index = build(&gpu, "Graph8", &base, &ids, Metric::L2);
    let p = SearchParams::default().with_ef(48);
    let a = index.search(&q, 10, &p).unwrap();
    let b = index
        .search(&q, 10, &p.with_precision(WalkPrecision::F16))
        .unwrap();
    assert_eq!(a.ids(), b.ids(), "seed {s}");
    assert_eq!(a.distances(), b.distances(), "seed {s}");
}

#[test]
fn an_int8_walk_codes_constant_and_wide_dimensions() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: an_int8_walk_codes_constant_and_wide_dimensions needs a GPU");
        return;
    };
    eprintln!("[cuda] an_int8_walk_codes_constant_and_wide_dimensions");
    let s = seed();
    let mut r = rng(s);
    // 32 values (16-byte code loads): one dimension constant (scale 0),
    // one spanning 100 times the others' range.
    let (n, dim) = (3_001, 32);
    let widen = |m: Matrix| {
        let mut v = m.as_slice().to_vec();
        for row in v.chunks_mut(dim) {
            row[3] = 2.5;
            row[7] *= 100.0;
        }
        Matrix::new(v, dim).unwrap()
    };
    let base = widen(clustered(&mut r, n, dim, 20, 0.5));
    let q = widen(clustered(&mut r, 4_200, dim, 20, 0.5));
    let ids: Vec<u64> = (0..n as u64).map(|i| 5 * i + 1).collect();
    for m in [Metric::L2, Metric::InnerProduct] {
        let index = build(&gpu, "Graph16", &base, &ids, m);
        let flat = build(&gpu, "Flat", &base, &ids, m);
        let p = SearchParams::default().with_ef(64);
        let want = flat.search(&q, 10, &p).unwrap();
        let a = index.search(&q, 10, &p).unwrap();
        let b = index
            .search(&q, 10, &p.with_precision(WalkPrecision::Int8))
            .unwrap();
        let (ra, rb) = (recall(&a, &want), recall(&b, &want));
        assert!(rb >= ra - 0.05, "seed {s} {m}: int8 {rb} fp32 {ra}");
        check_exact(&format!("seed {s} {m}"), m, &q, &base, &b);
    }
}

#[test]
fn the_backends_prune_k_nn_lists_alike() {
    use rand::Rng;
    let s = seed();
    for_each_backend("index graph prune", |ctx| {
        let mut r = rng(s);
        // Lists of 1 to 256 (the kernel's largest), not multiples of 32,
        // with gaps, fewer nodes than slots, and degrees past the width.
        for (n, wide, degree) in [
            (1, 1, 1),
            (7, 3, 5),
            (97, 31, 16),
            (1_009, 33, 16),
            (2_003, 64, 32),
            (301, 100, 50),
            (509, 256, 128),
        ] {
            let mut knn = vec![u32::MAX; n * wide];
            for x in 0..n {
                let mut seen = std::collections::HashSet::new();
                for j in 0..wide {
                    let y = r.random_range(0..n as u32);
                    if r.random_range(0..10) != 0 && y as usize != x && seen.insert(y) {
                        knn[x * wide + j] = y;
                    }
                }
            }
            let (host, dev) =
                vector_accelerate::debug::graph_prune(ctx, &knn, n, (wide, degree)).unwrap();
            if let Some(dev) = dev {
                eprintln!("[cuda] the_backends_prune_k_nn_lists_alike {n} x {wide}");
                assert_eq!(host, dev, "seed {s} {n} x {wide} to {degree}");
            }
        }
    });
}

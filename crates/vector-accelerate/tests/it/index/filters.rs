//! Filtered searches: every selector kind, at selectivities from 1% to
//! 95%, on Flat and IVF; `k` results whenever `k` allowed vectors exist.

use super::{build, exact_over, recall};
use crate::common::{assert_close_neighbors, clustered, for_each_backend, gaussian, rng, seed};
use vector_accelerate::index::{IdSelector, SearchParams};
use vector_accelerate::{Metric, MISSING_ID};

/// Selectors passing about `frac` of ids `0..n`, one of each kind.
fn selectors(n: u64, frac: f64, salt: u64) -> Vec<(&'static str, IdSelector)> {
    let cut = (n as f64 * frac) as u64;
    let pass = move |id: u64| (id.wrapping_mul(2654435761) ^ salt) % 1000 < (frac * 1000.0) as u64;
    let listed: Vec<u64> = (0..n).filter(|&i| pass(i)).collect();
    let mut words = vec![0u64; (n as usize).div_ceil(64)];
    for &i in &listed {
        words[i as usize / 64] |= 1 << (i % 64);
    }
    vec![
        ("allow", IdSelector::allow(listed.clone())),
        ("deny", IdSelector::deny((0..n).filter(|&i| !pass(i)))),
        ("range", IdSelector::range(0..cut)),
        ("bitset", IdSelector::bitset(words)),
        ("predicate", IdSelector::from_fn(pass)),
    ]
}

#[test]
fn flat_filtered_search_equals_exact_search_over_the_allowed_ids() {
    let s = seed();
    for_each_backend("index flat filters", |ctx| {
        let mut r = rng(s);
        let n = 3000;
        let base = gaussian(&mut r, n, 12);
        let q = gaussian(&mut r, 8, 12);
        let ids: Vec<u64> = (0..n as u64).collect();
        let index = build(ctx, "Flat", &base, &ids, Metric::L2);
        for frac in [0.001, 0.01, 0.1, 0.5, 0.95, 0.9995] {
            for (kind, sel) in selectors(n as u64, frac, s) {
                let allowed: Vec<usize> = (0..n).filter(|&i| sel.contains(i as u64)).collect();
                let p = SearchParams::default().with_filter(&sel);
                let got = index.search(&q, 10, &p).unwrap();
                let label = format!("seed {s} {kind} {frac}");
                if allowed.is_empty() {
                    assert!(got.ids().iter().all(|&i| i == MISSING_ID), "{label}");
                    continue;
                }
                let want = exact_over(ctx, &q, &base, &allowed, &ids, 10, Metric::L2);
                assert_close_neighbors(&label, &got, &want, |_| 1e-3);
            }
        }
    });
}

#[test]
fn ivf_filtered_search_returns_k_results_whenever_k_are_allowed() {
    let s = seed();
    for_each_backend("index ivf filters", |ctx| {
        let mut r = rng(s);
        let n = 6000;
        let base = clustered(&mut r, n, 16, 40, 0.4);
        let q = clustered(&mut r, 30, 16, 40, 0.4);
        let ids: Vec<u64> = (0..n as u64).collect();
        let index = build(ctx, "IVF32,Flat", &base, &ids, Metric::L2);
        for frac in [0.002, 0.01, 0.1, 0.5, 0.95] {
            for (kind, sel) in selectors(n as u64, frac, s ^ 1) {
                let allowed: Vec<usize> = (0..n).filter(|&i| sel.contains(i as u64)).collect();
                let p = SearchParams::default().with_filter(&sel).with_nprobe(4);
                let got = index.search(&q, 10, &p).unwrap();
                let label = format!("seed {s} {kind} {frac}");
                let want = exact_over(ctx, &q, &base, &allowed, &ids, 10, Metric::L2);
                for row in 0..q.rows() {
                    let present = got
                        .row_ids(row)
                        .iter()
                        .filter(|&&i| i != MISSING_ID)
                        .count();
                    assert_eq!(present, 10.min(allowed.len()), "{label} row {row}");
                    assert!(
                        got.row_ids(row)
                            .iter()
                            .all(|&i| i == MISSING_ID || sel.contains(i)),
                        "{label}"
                    );
                }
                let rc = recall(&got, &want);
                assert!(rc >= 0.8, "{label}: recall {rc}");
            }
        }
    });
}

#[test]
fn a_filter_that_passes_fewer_than_k_returns_them_all() {
    let s = seed();
    for_each_backend("index few allowed", |ctx| {
        let mut r = rng(s);
        let base = gaussian(&mut r, 500, 6);
        let q = gaussian(&mut r, 3, 6);
        let ids: Vec<u64> = (0..500).map(|i| i * 2).collect();
        for factory in ["Flat", "IVF8,Flat"] {
            let index = build(ctx, factory, &base, &ids, Metric::Cosine);
            let sel = IdSelector::allow([4, 10, 998, 999]);
            let got = index
                .search(&q, 6, &SearchParams::default().with_filter(&sel))
                .unwrap();
            for row in 0..3 {
                let mut present: Vec<u64> = got.row_ids(row)[..3].to_vec();
                present.sort_unstable();
                assert_eq!(present, vec![4, 10, 998], "{factory}");
                assert_eq!(&got.row_ids(row)[3..], &[MISSING_ID; 3], "{factory}");
            }
            let all = IdSelector::All;
            let p = SearchParams::default().with_filter(&all).with_nprobe(8);
            let unfiltered = index
                .search(&q, 6, &SearchParams::default().with_nprobe(8))
                .unwrap();
            assert_eq!(index.search(&q, 6, &p).unwrap(), unfiltered, "{factory}");
        }
    });
}

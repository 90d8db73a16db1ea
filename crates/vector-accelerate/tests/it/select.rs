//! Top-k, streaming top-k and merge: any k, both orders, ties and NaN.

use crate::common::*;
use rand::seq::SliceRandom;
use rand::Rng;
use vector_accelerate::select::{merge, topk, StreamingTopK};
use vector_accelerate::{MatrixView, Neighbors, Order, MISSING_ID};

/// Reference top-k of one row: sort (value, index) by the documented order.
fn oracle(row: &[f32], ids: &[u64], k: usize, order: Order) -> Vec<(u64, f32)> {
    let key = |v: f32| -> (u8, f64) {
        if v.is_nan() {
            (1, 0.0)
        } else {
            (
                0,
                if order == Order::Smallest {
                    v as f64
                } else {
                    -(v as f64)
                },
            )
        }
    };
    let mut all: Vec<(u64, f32)> = ids.iter().copied().zip(row.iter().copied()).collect();
    all.sort_by(|a, b| key(a.1).partial_cmp(&key(b.1)).unwrap().then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn check_exact(label: &str, got: &Neighbors, r: usize, want: &[(u64, f32)], order: Order) {
    for (j, (&id, &d)) in got.row_ids(r).iter().zip(got.row_distances(r)).enumerate() {
        match want.get(j) {
            Some(&(wid, wd)) => {
                assert_eq!(id, wid, "{label}: row {r} pos {j}");
                assert!(
                    d == wd || (d.is_nan() && wd.is_nan()),
                    "{label}: row {r} pos {j}: {d} vs {wd}"
                );
            }
            None => {
                assert_eq!(id, MISSING_ID, "{label}: row {r} pos {j} should be missing");
                assert_eq!(d, vector_accelerate::missing_value(order));
            }
        }
    }
}

#[test]
fn topk_any_k_both_orders_matches_a_sort() {
    let s = seed();
    for_each_backend("topk_any_k_both_orders_matches_a_sort", |ctx| {
        let mut r = rng(s);
        for &n in &[1usize, 2, 3, 33, 1031, 5000] {
            let rows = 3;
            let m = gaussian(&mut r, rows, n);
            // The same rows resident on the context's device (selected in place).
            let dm = ctx.upload(&m).unwrap();
            let ids: Vec<u64> = (0..n as u64).collect();
            for &k in &[
                1usize,
                2,
                3,
                10,
                n.saturating_sub(1).max(1),
                n,
                n + 5,
                2049,
                3000,
            ] {
                for order in [Order::Smallest, Order::Largest] {
                    let got = topk(ctx, m.view(), k, order).unwrap();
                    assert_eq!((got.rows(), got.k()), (rows, k));
                    let resident = topk(ctx, &dm, k, order).unwrap();
                    assert_eq!(resident.ids(), got.ids(), "resident n {n} k {k}");
                    assert_eq!(
                        resident.distances(),
                        got.distances(),
                        "resident n {n} k {k}"
                    );
                    for row in 0..rows {
                        let want = oracle(m.row(row), &ids, k, order);
                        check_exact(
                            &format!("seed {s} {} n {n} k {k} {order:?}", ctx.device()),
                            &got,
                            row,
                            &want,
                            order,
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn long_rows_select_exactly_in_two_passes() {
    // Rows long enough for the sample + filter select on CUDA (n >= 4 x the
    // sample of max(4096, 128 k) columns), in every shape that makes it
    // work hard: random, ascending (the sample holds the answer), descending
    // (every value beats the sample: the full-row fallback), constant (ties
    // broken by index), NaN-laden, and a length that is not a multiple of 4.
    let s = seed();
    for_each_backend("long_rows_select_exactly_in_two_passes", |ctx| {
        let mut r = rng(s);
        for &n in &[40_960usize, 50_003] {
            let mut rows: Vec<Vec<f32>> = Vec::new();
            rows.push((0..n).map(|_| r.random_range(-1.0f32..1.0)).collect());
            rows.push((0..n).map(|i| i as f32).collect());
            rows.push((0..n).map(|i| -(i as f32)).collect());
            rows.push(vec![0.25; n]);
            rows.push(
                (0..n)
                    .map(|i| {
                        if i % 7 == 0 {
                            f32::NAN
                        } else {
                            r.random_range(-3.0f32..3.0)
                        }
                    })
                    .collect(),
            );
            let flat: Vec<f32> = rows.concat();
            let m = vector_accelerate::Matrix::new(flat, n).unwrap();
            let dm = ctx.upload(&m).unwrap();
            let ids: Vec<u64> = (0..n as u64).collect();
            for &k in &[1usize, 7, 10, 64] {
                for order in [Order::Smallest, Order::Largest] {
                    let got = topk(ctx, &dm, k, order).unwrap();
                    for (row, vals) in rows.iter().enumerate() {
                        let want = oracle(vals, &ids, k, order);
                        check_exact(
                            &format!("seed {s} {} long n {n} k {k} {order:?}", ctx.device()),
                            &got,
                            row,
                            &want,
                            order,
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn ties_break_by_smaller_index_and_nan_ranks_last() {
    let s = seed();
    for_each_backend("ties_break_by_smaller_index_and_nan_ranks_last", |ctx| {
        let mut r = rng(s);
        let (n, rows) = (777, 19);
        // Few distinct values: many ties; some NaN, +-0 and infinities.
        // (19 rows: the one-warp-per-row select of k <= 32 runs 8 rows a
        // block, so the last block is partly empty.)
        let vals: Vec<f32> = (0..n * rows)
            .map(|_| match r.random_range(0..10) {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                3 => f32::INFINITY,
                4 => f32::NEG_INFINITY,
                v => v as f32,
            })
            .collect();
        let m = MatrixView::new(&vals, n).unwrap();
        let ids: Vec<u64> = (0..n as u64).collect();
        for order in [Order::Smallest, Order::Largest] {
            for k in [1, 10, 31, 32, 33, 50, 700, 777, 800] {
                let got = topk(ctx, m, k, order).unwrap();
                for row in 0..rows {
                    let want = oracle(m.row(row), &ids, k, order);
                    check_exact(
                        &format!("seed {s} ties {order:?} k {k}"),
                        &got,
                        row,
                        &want,
                        order,
                    );
                }
            }
        }
        // NaN never ahead of a number, in either order.
        let v = [f32::NAN, 1.0, f32::NAN, -1.0];
        for order in [Order::Smallest, Order::Largest] {
            let got = topk(ctx, MatrixView::new(&v, 4).unwrap(), 4, order).unwrap();
            assert_eq!(&got.row_ids(0)[2..], &[0, 2]);
        }
    });
}

#[test]
fn streaming_topk_equals_one_shot_with_arbitrary_ids() {
    let s = seed();
    for_each_backend("streaming_topk_equals_one_shot_with_arbitrary_ids", |ctx| {
        let mut r = rng(s);
        let (rows, n) = (5, 3000);
        let m = gaussian(&mut r, rows, n);
        let mut ids: Vec<u64> = (0..n as u64).map(|i| i * 7 + 1_000_000_000_000).collect();
        ids.shuffle(&mut r);
        for &k in &[1usize, 16, 100, 2500, 3100] {
            for order in [Order::Smallest, Order::Largest] {
                let mut st = StreamingTopK::new(ctx, rows, k, order).unwrap();
                let mut c0 = 0;
                while c0 < n {
                    let c1 = (c0 + r.random_range(1..700)).min(n);
                    let chunk: Vec<f32> = (0..rows)
                        .flat_map(|row| m.row(row)[c0..c1].to_vec())
                        .collect();
                    st.push(MatrixView::new(&chunk, c1 - c0).unwrap(), &ids[c0..c1])
                        .unwrap();
                    c0 = c1;
                }
                let got = st.finish().unwrap();
                for row in 0..rows {
                    let want = oracle(m.row(row), &ids, k, order);
                    check_exact(
                        &format!("seed {s} stream k {k} {order:?}"),
                        &got,
                        row,
                        &want,
                        order,
                    );
                }
            }
        }
        // Nothing pushed: all missing.
        let st = StreamingTopK::new(ctx, 2, 3, Order::Smallest).unwrap();
        assert!(st.finish().unwrap().ids().iter().all(|i| *i == MISSING_ID));
    });
}

#[test]
fn merge_of_partial_lists_equals_the_full_topk() {
    let s = seed();
    for_each_backend("merge_of_partial_lists_equals_the_full_topk", |ctx| {
        let mut r = rng(s);
        let (rows, n) = (4, 1500);
        let m = gaussian(&mut r, rows, n);
        let ids: Vec<u64> = (0..n as u64).collect();
        for &k in &[1usize, 7, 300, 2100] {
            let order = if k % 2 == 0 {
                Order::Smallest
            } else {
                Order::Largest
            };
            // Three shards with their own k (one smaller than k leaves missing tails).
            let bounds = [0, 400, 1100, n];
            let mut parts = Vec::new();
            for w in bounds.windows(2) {
                let (a, b) = (w[0], w[1]);
                let chunk: Vec<f32> = (0..rows)
                    .flat_map(|row| m.row(row)[a..b].to_vec())
                    .collect();
                let mut part =
                    topk(ctx, MatrixView::new(&chunk, b - a).unwrap(), k, order).unwrap();
                let (mut pi, pd) = part.clone().into_parts();
                for id in pi.iter_mut().filter(|i| **i != MISSING_ID) {
                    *id += a as u64;
                }
                part = Neighbors::from_parts(rows, k, order, pi, pd).unwrap();
                parts.push(part);
            }
            let got = merge(ctx, &parts, k).unwrap();
            for row in 0..rows {
                let want = oracle(m.row(row), &ids, k, order);
                check_exact(&format!("seed {s} merge k {k}"), &got, row, &want, order);
            }
        }
    });
}

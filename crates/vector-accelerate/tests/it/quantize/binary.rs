//! `BinaryQuantizer`: codes follow each `BinaryThreshold` (zero, mean,
//! given) identically on every backend, Hamming search over the codes
//! equals an exact popcount search, and codes decode to the side of the
//! threshold (0 or 1).

use crate::common::*;
use vector_accelerate::quantize::{
    BinaryOptions, BinaryQuantizer, BinaryThreshold, Codec, SearchOptions,
};
use vector_accelerate::{Matrix, Metric, MISSING_ID};

fn popcount_distance(a: &[f32], b: &[f32], t: &[f32]) -> u32 {
    a.iter()
        .zip(b)
        .zip(t)
        .filter(|((x, y), t)| (**x > **t) != (**y > **t))
        .count() as u32
}

#[test]
fn binary_codes_follow_their_thresholds_and_hamming_search_is_exact() {
    let s = seed();
    for_each_backend("binary_codes_and_search", |ctx| {
        let mut r = rng(s);
        for &dim in &[1usize, 3, 63, 64, 65, 200] {
            let mut x = gaussian(&mut r, 500, dim);
            let shift: Vec<f32> = x
                .as_slice()
                .iter()
                .enumerate()
                .map(|(i, v)| v + (i % dim) as f32 * 0.01 + 0.3)
                .collect();
            x = Matrix::new(shift, dim).unwrap();
            let q = gaussian(&mut r, 7, dim);
            let given: Vec<f32> = (0..dim).map(|j| (j as f32 * 0.37).sin()).collect();
            let mut prev: Option<Vec<u64>> = None;
            for th in [
                BinaryThreshold::Zero,
                BinaryThreshold::Mean,
                BinaryThreshold::Given(given.clone()),
            ] {
                let bq = BinaryQuantizer::train(
                    ctx,
                    &x,
                    &BinaryOptions::default().with_threshold(th.clone()),
                )
                .unwrap();
                if th == BinaryThreshold::Mean {
                    for j in 0..dim {
                        let m: f64 = (0..500).map(|i| x.row(i)[j] as f64).sum::<f64>() / 500.0;
                        assert!((bq.thresholds()[j] as f64 - m).abs() <= 1e-6 * (1.0 + m.abs()));
                    }
                }
                let codes = bq.encode(ctx, &x).unwrap();
                assert_eq!(codes.rows(), 500);
                let t = bq.thresholds();
                // Bits, via the Hamming distance of each row to itself shifted:
                // compare the search with a brute-force reference.
                let nn = bq
                    .search(ctx, &q, &codes, 5, &SearchOptions::default())
                    .unwrap();
                for i in 0..q.rows() {
                    let mut all: Vec<(u32, usize)> = (0..500)
                        .map(|j| (popcount_distance(q.row(i), x.row(j), t), j))
                        .collect();
                    all.sort();
                    let want: Vec<u64> = all[..5].iter().map(|p| p.1 as u64).collect();
                    assert_eq!(
                        nn.row_ids(i),
                        &want[..],
                        "seed {s} dim {dim} {th:?} query {i}"
                    );
                    for (j, p) in all[..5].iter().enumerate() {
                        assert_eq!(nn.row_distances(i)[j], p.0 as f32);
                    }
                }
                let words = codes.to_host_binary().unwrap().view().as_words().to_vec();
                if let Some(p) = &prev {
                    assert_ne!(
                        p, &words,
                        "{th:?} gives the same codes as the previous threshold"
                    );
                }
                prev = Some(words);
                // Re-rank with the original rows.
                let rr = bq
                    .search(
                        ctx,
                        &q,
                        &codes,
                        3,
                        &SearchOptions::default()
                            .with_metric(Metric::L2)
                            .with_rerank(&x, 40),
                    )
                    .unwrap();
                for i in 0..q.rows() {
                    let ids = rr.row_ids(i);
                    assert!(ids.iter().all(|&id| id != MISSING_ID));
                    let d: Vec<f32> = rr.row_distances(i).to_vec();
                    assert!(d.windows(2).all(|w| w[0] <= w[1]));
                    for (j, &id) in ids.iter().enumerate() {
                        let e = ref_f32(q.row(i), x.row(id as usize), Metric::L2, None, 0.0);
                        assert!((d[j] as f64 - e).abs() <= 1e-4 * (1.0 + e));
                    }
                }
            }
        }
    });
}

#[test]
fn binary_codes_decode_to_the_side_of_the_threshold() {
    for_each_backend("binary_decode", |ctx| {
        let x = Matrix::new(vec![0.5, -1.0, 2.0, 0.0, 0.1, -0.2, 3.0, 0.0], 4).unwrap();
        let bq = BinaryQuantizer::with_thresholds(vec![0.0, 0.0, 1.0, -0.5]).unwrap();
        let back = bq
            .decode(ctx, &bq.encode(ctx, &x).unwrap())
            .unwrap()
            .into_host()
            .unwrap();
        assert_eq!(back.as_slice(), &[1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    });
}

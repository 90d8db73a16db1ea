//! An fp64 brute-force reference for k-NN with the GEMM metrics (squared
//! L2, Euclidean, cosine distance and similarity, inner product), used to
//! verify results. The check tolerates genuine ties and rounding: it
//! compares the fp64 values of the returned ids with the `k` best fp64
//! values, rank by rank, within a tolerance scaled to the metric: `1e-4 *
//! (|q|^2 + max |x|^2)` for squared L2, its square root for Euclidean,
//! `1e-4` for cosine and `1e-4 * |q| max |x|` for inner product.

use std::cmp::Ordering;

use rayon::prelude::*;
use vector_accelerate::{Matrix, Metric, Neighbors, Order, MISSING_ID};

/// Relative tolerance of the check, scaled by the squared norms.
const REL_TOL: f64 = 1e-4;

/// The metrics the reference computes.
pub const METRICS: [Metric; 5] = [
    Metric::L2,
    Metric::Euclidean,
    Metric::Cosine,
    Metric::CosineSimilarity,
    Metric::InnerProduct,
];

/// Squared norm in fp64.
fn sq_norm(a: &[f32]) -> f64 {
    a.iter().map(|&x| x as f64 * x as f64).sum()
}

/// The value of `metric` between `a` and `b` in fp64 (cosine of a zero
/// vector: 0).
fn value(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let pairs = || a.iter().zip(b).map(|(&x, &y)| (x as f64, y as f64));
    let dot = || pairs().map(|(x, y)| x * y).sum::<f64>();
    let cos = || {
        let den = (sq_norm(a) * sq_norm(b)).sqrt();
        if den == 0.0 {
            0.0
        } else {
            dot() / den
        }
    };
    match metric {
        Metric::L2 => pairs().map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::Euclidean => value(Metric::L2, a, b).sqrt(),
        Metric::Cosine => 1.0 - cos(),
        Metric::CosineSimilarity => cos(),
        Metric::InnerProduct => dot(),
        other => unreachable!("no fp64 reference for {other}"),
    }
}

/// The check's tolerance for a query of squared norm `qn` against a base
/// whose largest squared norm is `max_norm`.
fn tolerance(metric: Metric, qn: f64, max_norm: f64) -> f64 {
    match metric {
        Metric::Euclidean => (REL_TOL * (qn + max_norm)).sqrt(),
        Metric::Cosine | Metric::CosineSimilarity => REL_TOL,
        Metric::InnerProduct => REL_TOL * (qn * max_norm).sqrt(),
        _ => REL_TOL * (qn + max_norm),
    }
}

/// Checks the result rows `sample` of a squared-L2 k-NN of `queries`
/// against `base`; returns one message per query that does not match.
pub fn verify_l2(
    base: &Matrix,
    queries: &Matrix,
    result: &Neighbors,
    sample: &[usize],
) -> Vec<String> {
    verify(base, queries, result, sample, Metric::L2)
}

/// Checks the result rows `sample` of a k-NN of `queries` against `base`
/// under `metric` (one of [`METRICS`]); returns one message per query that
/// does not match.
pub fn verify(
    base: &Matrix,
    queries: &Matrix,
    result: &Neighbors,
    sample: &[usize],
    metric: Metric,
) -> Vec<String> {
    assert!(METRICS.contains(&metric), "no fp64 reference for {metric}");
    let max_norm = base
        .as_slice()
        .par_chunks(base.dim())
        .map(sq_norm)
        .reduce(|| 0.0, f64::max);
    sample
        .iter()
        .filter_map(|&qi| {
            check_query(base, queries.row(qi), result.row_ids(qi), max_norm, metric)
                .err()
                .map(|e| format!("query {qi}: {e}"))
        })
        .collect()
}

/// Checks one query's returned ids.
fn check_query(
    base: &Matrix,
    q: &[f32],
    ids: &[u64],
    max_norm: f64,
    metric: Metric,
) -> Result<(), String> {
    let n = base.rows();
    let vals: Vec<f64> = base
        .as_slice()
        .par_chunks(base.dim())
        .map(|x| value(metric, q, x))
        .collect();
    let m = ids.len().min(n);
    if m == 0 {
        return Ok(());
    }
    for (rank, &id) in ids.iter().enumerate() {
        if rank < m && (id == MISSING_ID || id >= n as u64) {
            return Err(format!("rank {rank} has invalid id {id}"));
        }
        if rank >= m && id != MISSING_ID {
            return Err(format!("rank {rank} should be missing, has id {id}"));
        }
    }
    let mut sorted_ids = ids[..m].to_vec();
    sorted_ids.sort_unstable();
    if let Some(w) = sorted_ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("id {} is returned twice", w[0]));
    }
    let best_first = |a: &f64, b: &f64| -> Ordering {
        match metric.order() {
            Order::Smallest => a.total_cmp(b),
            Order::Largest => b.total_cmp(a),
        }
    };
    let mut got: Vec<f64> = ids[..m].iter().map(|&id| vals[id as usize]).collect();
    got.sort_by(best_first);
    let mut want = vals;
    want.select_nth_unstable_by(m - 1, best_first);
    want.truncate(m);
    want.sort_by(best_first);
    let tol = tolerance(metric, sq_norm(q), max_norm);
    for (rank, (g, w)) in got.iter().zip(&want).enumerate() {
        if (g - w).abs() > tol {
            return Err(format!(
                "rank {rank}: returned {metric} {g:.6} but the reference has {w:.6} \
                 (tolerance {tol:.2e})"
            ));
        }
    }
    Ok(())
}

/// Recall@k of `got` against `exact`: the fraction of the exact ids
/// (missing results left out) that `got` found in the same row.
pub fn recall(exact: &Neighbors, got: &Neighbors) -> f64 {
    let (mut hit, mut all) = (0usize, 0usize);
    for r in 0..exact.rows() {
        let (h, a) = row_hits(exact.row_ids(r), got.row_ids(r));
        hit += h;
        all += a;
    }
    hit as f64 / all.max(1) as f64
}

/// [`recall`] of results found one query at a time: `got[r]` holds the
/// one row of query `r`.
pub fn recall_of_singles(exact: &Neighbors, got: &[Neighbors]) -> f64 {
    let (mut hit, mut all) = (0usize, 0usize);
    for (r, g) in got.iter().enumerate() {
        let (h, a) = row_hits(exact.row_ids(r), g.row_ids(0));
        hit += h;
        all += a;
    }
    hit as f64 / all.max(1) as f64
}

/// True ids of one query found, and true ids.
fn row_hits(exact: &[u64], got: &[u64]) -> (usize, usize) {
    let ids: std::collections::HashSet<u64> = got.iter().copied().collect();
    let want = exact.iter().filter(|&&i| i != MISSING_ID);
    want.fold((0, 0), |(h, a), id| {
        (h + usize::from(ids.contains(id)), a + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ties_and_rejects_wrong_ids() {
        // Rows 1 and 2 tie for the nearest to the query.
        let base = Matrix::new(vec![5.0, 0.0, 1.0, 0.0, -1.0, 0.0], 2).unwrap();
        let q = Matrix::new(vec![0.0, 0.0], 2).unwrap();
        let res = |ids: Vec<u64>| {
            Neighbors::from_parts(1, 2, Order::Smallest, ids, vec![1.0, 1.0]).unwrap()
        };
        assert!(verify_l2(&base, &q, &res(vec![2, 1]), &[0]).is_empty());
        assert!(verify_l2(&base, &q, &res(vec![1, 2]), &[0]).is_empty());
        assert_eq!(verify_l2(&base, &q, &res(vec![1, 0]), &[0]).len(), 1);
        assert_eq!(verify_l2(&base, &q, &res(vec![1, 1]), &[0]).len(), 1);
    }

    #[test]
    fn ranks_largest_first_for_similarities() {
        // Inner products with the query: 5, 1, -1; cosines: 1, 1, -1.
        let base = Matrix::new(vec![5.0, 0.0, 1.0, 0.0, -1.0, 0.0], 2).unwrap();
        let q = Matrix::new(vec![1.0, 0.0], 2).unwrap();
        let res =
            |ids: Vec<u64>, order| Neighbors::from_parts(1, 2, order, ids, vec![0.0, 0.0]).unwrap();
        let ip = Metric::InnerProduct;
        assert!(verify(&base, &q, &res(vec![0, 1], Order::Largest), &[0], ip).is_empty());
        assert_eq!(
            verify(&base, &q, &res(vec![0, 2], Order::Largest), &[0], ip).len(),
            1
        );
        let cos = Metric::Cosine;
        assert!(verify(&base, &q, &res(vec![1, 0], Order::Smallest), &[0], cos).is_empty());
        assert_eq!(
            verify(&base, &q, &res(vec![2, 0], Order::Smallest), &[0], cos).len(),
            1
        );
    }
}

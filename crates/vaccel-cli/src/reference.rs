//! An fp64 brute-force reference for squared-L2 k-NN, used to verify
//! results. The check tolerates genuine ties and rounding: it compares the
//! fp64 distances of the returned ids with the `k` smallest fp64 distances,
//! rank by rank, within `1e-4 * (|q|^2 + max |x|^2)`.

use rayon::prelude::*;
use vector_accelerate::{Matrix, Neighbors, MISSING_ID};

/// Relative tolerance of the check, scaled by the squared norms.
const REL_TOL: f64 = 1e-4;

/// Squared L2 distance in fp64.
fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum()
}

/// Squared norm in fp64.
fn sq_norm(a: &[f32]) -> f64 {
    a.iter().map(|&x| x as f64 * x as f64).sum()
}

/// Checks the result rows `sample` of a squared-L2 k-NN of `queries`
/// against `base`; returns one message per query that does not match.
pub fn verify_l2(
    base: &Matrix,
    queries: &Matrix,
    result: &Neighbors,
    sample: &[usize],
) -> Vec<String> {
    let max_norm = base
        .as_slice()
        .par_chunks(base.dim())
        .map(sq_norm)
        .reduce(|| 0.0, f64::max);
    sample
        .iter()
        .filter_map(|&qi| {
            check_query(base, queries.row(qi), result.row_ids(qi), max_norm)
                .err()
                .map(|e| format!("query {qi}: {e}"))
        })
        .collect()
}

/// Checks one query's returned ids.
fn check_query(base: &Matrix, q: &[f32], ids: &[u64], max_norm: f64) -> Result<(), String> {
    let n = base.rows();
    let dists: Vec<f64> = base
        .as_slice()
        .par_chunks(base.dim())
        .map(|x| sq_dist(q, x))
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
    let mut got: Vec<f64> = ids[..m].iter().map(|&id| dists[id as usize]).collect();
    got.sort_by(f64::total_cmp);
    let mut want = dists;
    want.select_nth_unstable_by(m - 1, f64::total_cmp);
    want.truncate(m);
    want.sort_by(f64::total_cmp);
    let tol = REL_TOL * (sq_norm(q) + max_norm);
    for (rank, (g, w)) in got.iter().zip(&want).enumerate() {
        if (g - w).abs() > tol {
            return Err(format!(
                "rank {rank}: returned distance {g:.6} but the reference has {w:.6} \
                 (tolerance {tol:.2e})"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vector_accelerate::Order;

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
}

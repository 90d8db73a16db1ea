//! First centroids: k-means|| (scalable k-means++) seeding, random rows or
//! given centroids.

use crate::core::error::Result;
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::core::rng::{uniform_at, Rng};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// The nearest centroid of every point and its distance, on the backend.
fn nearest(
    ctx: &Context,
    points: &Input<'_>,
    centroids: MatrixView<'_>,
    metric: Metric,
) -> Result<(Vec<u32>, Vec<f32>)> {
    ctx.backend()
        .nearest(points, centroids, metric == Metric::Cosine)
}

/// k-means|| seeding: rounds of independent D^2 sampling (distances from
/// the backend), then weighted k-means++ on the candidates on the host.
pub(super) fn kmeans_parallel_init(
    ctx: &Context,
    points: &Input<'_>,
    host: MatrixView<'_>,
    k: usize,
    seed: u64,
    metric: Metric,
) -> Result<Matrix> {
    const ROUNDS: usize = 5;
    let n = host.rows();
    let oversample = 2 * k;
    let mut rng = Rng::new(seed);
    if n <= ROUNDS * oversample {
        let w = vec![1.0; n];
        let idx = weighted_kmeanspp(host, &w, k, &mut rng, metric);
        return Ok(gather_rows(host, &idx));
    }
    let mut cand = vec![rng.below(n)];
    let mut d2 = nearest(ctx, points, gather_rows(host, &cand).view(), metric)?.1;
    for round in 0..ROUNDS {
        let phi: f64 = d2.iter().map(|&d| d.max(0.0) as f64).sum();
        if phi.is_nan() || phi <= 0.0 {
            break;
        }
        let picked: Vec<usize> = (0..n)
            .filter(|&i| {
                let p = oversample as f64 * d2[i].max(0.0) as f64 / phi;
                uniform_at(seed, round as u64 + 1, i as u64) < p
            })
            .collect();
        if picked.is_empty() {
            continue;
        }
        let (_, nd) = nearest(ctx, points, gather_rows(host, &picked).view(), metric)?;
        for (a, b) in d2.iter_mut().zip(nd) {
            *a = a.min(b);
        }
        cand.extend(picked);
    }
    cand.sort_unstable();
    cand.dedup();
    // Weights: points nearest to each candidate.
    let cm = gather_rows(host, &cand);
    let (near, _) = nearest(ctx, points, cm.view(), metric)?;
    let mut w = vec![0.0f64; cand.len()];
    for c in near {
        w[c as usize] += 1.0;
    }
    let mut idx: Vec<usize> = weighted_kmeanspp(cm.view(), &w, k.min(cand.len()), &mut rng, metric)
        .into_iter()
        .map(|j| cand[j])
        .collect();
    // Fewer distinct candidates than k: fill with points not yet chosen.
    if idx.len() < k {
        let taken: std::collections::HashSet<usize> = idx.iter().copied().collect();
        idx.extend((0..n).filter(|i| !taken.contains(i)).take(k - idx.len()));
    }
    Ok(gather_rows(host, &idx))
}

/// Weighted k-means++ over the rows of `m` (weights `w`): indices of `k`
/// rows. Distances in f64 on the host, parallel over rows.
fn weighted_kmeanspp(
    m: MatrixView<'_>,
    w: &[f64],
    k: usize,
    rng: &mut Rng,
    metric: Metric,
) -> Vec<usize> {
    use rayon::prelude::*;
    let n = m.rows();
    let pick = |rng: &mut Rng, mass: &[f64]| -> Option<usize> {
        let total: f64 = mass.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let mut r = rng.next_f64() * total;
        for (i, &v) in mass.iter().enumerate() {
            if v > 0.0 {
                if r < v {
                    return Some(i);
                }
                r -= v;
            }
        }
        mass.iter().rposition(|&v| v > 0.0)
    };
    let dist = |a: &[f32], b: &[f32]| -> f64 {
        match metric {
            Metric::Cosine => {
                let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
                for (x, y) in a.iter().zip(b) {
                    ab += *x as f64 * *y as f64;
                    aa += *x as f64 * *x as f64;
                    bb += *y as f64 * *y as f64;
                }
                if aa > 0.0 && bb > 0.0 {
                    (1.0 - ab / (aa.sqrt() * bb.sqrt())).max(0.0)
                } else {
                    1.0
                }
            }
            _ => a
                .iter()
                .zip(b)
                .map(|(x, y)| {
                    let t = *x as f64 - *y as f64;
                    t * t
                })
                .sum(),
        }
    };
    let first = pick(rng, w).unwrap_or(0);
    let mut chosen = vec![first];
    let mut d2: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| dist(m.row(i), m.row(first)))
        .collect();
    while chosen.len() < k {
        let mass: Vec<f64> = d2.iter().zip(w).map(|(d, w)| d * w).collect();
        let Some(next) = pick(rng, &mass) else {
            // Every remaining point coincides with a chosen one.
            let taken: std::collections::HashSet<usize> = chosen.iter().copied().collect();
            chosen.extend((0..n).filter(|i| !taken.contains(i)).take(k - chosen.len()));
            break;
        };
        chosen.push(next);
        let c = m.row(next);
        d2.par_iter_mut().enumerate().for_each(|(i, v)| {
            let t = dist(m.row(i), c);
            if t < *v {
                *v = t;
            }
        });
    }
    chosen
}

/// Rows `idx` of `m`.
pub(crate) fn gather_rows(m: MatrixView<'_>, idx: &[usize]) -> Matrix {
    let d = m.dim();
    let mut v = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        v.extend_from_slice(m.row(i));
    }
    Matrix::new(v, d).expect("non-empty rows")
}

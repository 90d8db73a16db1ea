//! The CPU k-means steps: nearest-centroid assignment (all columns, or per
//! sub-space) and member sums per cluster in f64, each cluster summed in
//! ascending point order (deterministic for any thread count).

use rayon::prelude::*;

use crate::core::cluster::LloydStep;
use crate::core::error::Result;
use crate::core::matrix::MatrixView;
use crate::core::metric::{Metric, Prepared};
use crate::cpu::features::quant_simd_available;
use crate::cpu::host::{host_f32, HostRows};
use crate::cpu::knn;
use crate::runtime::backend::{Assigned, ClusterBackend, Cpu, LloydJob};
use crate::runtime::codes::Store;
use crate::runtime::input::Input;

/// `(sums [k x dim], counts [k])` of the rows of `m` grouped by `clusters`.
pub(crate) fn sums(m: MatrixView<'_>, clusters: &[u32], k: usize) -> (Vec<f64>, Vec<u64>) {
    let d = m.dim();
    let mut counts = vec![0u64; k];
    for &c in clusters {
        counts[c as usize] += 1;
    }
    // Stable counting sort: members of each cluster in ascending order.
    let mut start = vec![0usize; k + 1];
    for j in 0..k {
        start[j + 1] = start[j] + counts[j] as usize;
    }
    let mut next = start.clone();
    let mut members = vec![0u32; clusters.len()];
    for (i, &c) in clusters.iter().enumerate() {
        members[next[c as usize]] = i as u32;
        next[c as usize] += 1;
    }
    let mut out = vec![0f64; k * d];
    out.par_chunks_mut(d).enumerate().for_each(|(j, acc)| {
        for &i in &members[start[j]..start[j + 1]] {
            for (a, x) in acc.iter_mut().zip(m.row(i as usize)) {
                *a += *x as f64;
            }
        }
    });
    (out, counts)
}

/// Squared L2 of a sub-vector (columns `c0..c0 + ds` of `x`, zero beyond
/// its end) to a centroid, summed in order without fused multiply-add.
#[inline]
pub(crate) fn sub_l2(x: &[f32], c0: usize, c: &[f32]) -> f32 {
    let mut acc = 0f32;
    for (t, &cv) in c.iter().enumerate() {
        let xv = x.get(c0 + t).copied().unwrap_or(0.0);
        let e = xv - cv;
        acc += e * e;
    }
    acc
}

/// Nearest centroid of each row in each of `m` sub-spaces (`kc` centroids
/// of `ds` values each, sub-space after sub-space): codes and distances,
/// `rows x m`. Ties go to the smaller index.
pub(crate) fn nearest_centroids(
    x: MatrixView<'_>,
    centroids: &[f32],
    m: usize,
    ds: usize,
    kc: usize,
) -> (Vec<u32>, Vec<f32>) {
    nearest_centroids_with(x, centroids, m, ds, kc, quant_simd_available())
}

/// [`nearest_centroids`] with the vectorised kernel (`simd`, AVX-512
/// present) or the scalar loop.
fn nearest_centroids_with(
    x: MatrixView<'_>,
    centroids: &[f32],
    m: usize,
    ds: usize,
    kc: usize,
    simd: bool,
) -> (Vec<u32>, Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if simd && kc.is_multiple_of(crate::cpu::quant_simd::LANES) {
        return nearest_centroids_simd(x, centroids, m, ds, kc);
    }
    let _ = simd;
    let n = x.rows();
    let mut codes = vec![0u32; n * m];
    let mut dist = vec![0f32; n * m];
    codes
        .par_chunks_mut(m)
        .zip(dist.par_chunks_mut(m))
        .enumerate()
        .for_each(|(i, (cr, dr))| {
            let row = x.row(i);
            for j in 0..m {
                let book = &centroids[j * kc * ds..(j + 1) * kc * ds];
                let (mut best, mut bd) = (0u32, f32::INFINITY);
                for (c, cv) in book.chunks_exact(ds).enumerate() {
                    let e = sub_l2(row, j * ds, cv);
                    if e < bd {
                        bd = e;
                        best = c as u32;
                    }
                }
                cr[j] = best;
                dr[j] = bd;
            }
        });
    (codes, dist)
}

/// [`nearest_centroids`] on AVX-512: codebooks transposed once, rows in
/// blocks so each sub-space's book stays in L1 while the block passes it.
#[cfg(target_arch = "x86_64")]
fn nearest_centroids_simd(
    x: MatrixView<'_>,
    centroids: &[f32],
    m: usize,
    ds: usize,
    kc: usize,
) -> (Vec<u32>, Vec<f32>) {
    use crate::cpu::quant_simd::{nearest_in_book, transpose_books};
    const BLOCK: usize = 64;
    let n = x.rows();
    let books = transpose_books(centroids, m, ds, kc);
    let mut codes = vec![0u32; n * m];
    let mut dist = vec![0f32; n * m];
    codes
        .par_chunks_mut(BLOCK * m)
        .zip(dist.par_chunks_mut(BLOCK * m))
        .enumerate()
        .for_each(|(b, (cb, db))| {
            let mut xs = vec![0f32; ds];
            for j in 0..m {
                let book = &books[j * kc * ds..(j + 1) * kc * ds];
                for (r, (cr, dr)) in cb.chunks_mut(m).zip(db.chunks_mut(m)).enumerate() {
                    let row = x.row(b * BLOCK + r);
                    for (t, v) in xs.iter_mut().enumerate() {
                        *v = row.get(j * ds + t).copied().unwrap_or(0.0);
                    }
                    (cr[j], dr[j]) = nearest_in_book(book, &xs, kc);
                }
            }
        });
    (codes, dist)
}

/// Member sums (f64, `m x kc x ds`) and counts (`m x kc`) per sub-space
/// centroid, each summed in ascending row order. The sub-spaces are split
/// between the threads; each thread passes over the rows once, in blocks
/// that stay in cache while it adds them to each of its sub-spaces.
pub(crate) fn batched_sums(
    x: MatrixView<'_>,
    codes: &[u32],
    m: usize,
    ds: usize,
    kc: usize,
) -> (Vec<f64>, Vec<u64>) {
    const BLOCK: usize = 256;
    let mut sums = vec![0f64; m * kc * ds];
    let mut counts = vec![0u64; m * kc];
    let per = m.div_ceil(rayon::current_num_threads()).max(1);
    let d = x.dim();
    sums.par_chunks_mut(per * kc * ds)
        .zip(counts.par_chunks_mut(per * kc))
        .enumerate()
        .for_each(|(p, (s, c))| {
            let j0 = p * per;
            for b0 in (0..x.rows()).step_by(BLOCK) {
                let b1 = (b0 + BLOCK).min(x.rows());
                for (jj, (sj, cj)) in s.chunks_mut(kc * ds).zip(c.chunks_mut(kc)).enumerate() {
                    let j = j0 + jj;
                    let (lo, hi) = ((j * ds).min(d), ((j + 1) * ds).min(d));
                    for i in b0..b1 {
                        let code = codes[i * m + j] as usize;
                        cj[code] += 1;
                        let acc = &mut sj[code * ds..(code + 1) * ds];
                        // Columns past the row's end would add 0.0 to a
                        // sum that is never -0.0: no change, skipped.
                        for (a, &v) in acc.iter_mut().zip(&x.row(i)[lo..hi]) {
                            *a += v as f64;
                        }
                    }
                }
            }
        });
    (sums, counts)
}

/// The nearest of the centroids `c` (all columns) to each row of `x`:
/// squared L2 through the AVX-512 assignment kernel where it runs (rows
/// without a centroid at a finite distance through exact 1-NN), else exact
/// 1-NN; a row with a non-finite value gets centroid 0 at distance NaN.
fn nearest_rows(x: MatrixView<'_>, c: MatrixView<'_>, cosine: bool) -> (Vec<u32>, Vec<f32>) {
    let metric = if cosine { Metric::Cosine } else { Metric::L2 };
    let one_nn = |rows: MatrixView<'_>| {
        let p = Prepared {
            metric,
            weights: None,
            threshold: 0.0,
            normalized: false,
        };
        let (ids, dist) = knn::run(HostRows::F32(rows), HostRows::F32(c), 1, &p).into_parts();
        (ids.into_iter().map(|i| i as u32).collect::<Vec<_>>(), dist)
    };
    #[cfg(target_arch = "x86_64")]
    let (mut ids, mut dist) = if !cosine && crate::cpu::assign::available() {
        let (mut ids, mut dist) = crate::cpu::assign::nearest_l2(x, c);
        let rest: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == u32::MAX).collect();
        if !rest.is_empty() {
            let rows: Vec<f32> = rest
                .iter()
                .flat_map(|&i| x.row(i).iter().copied())
                .collect();
            let (ri, rd) = one_nn(MatrixView::new(&rows, x.dim()).expect("whole rows"));
            for ((&i, id), d) in rest.iter().zip(ri).zip(rd) {
                (ids[i], dist[i]) = (id, d);
            }
        }
        (ids, dist)
    } else {
        one_nn(x)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (mut ids, mut dist) = one_nn(x);
    for (i, row) in x.as_slice().chunks_exact(x.dim()).enumerate() {
        if row.iter().any(|v| !v.is_finite()) {
            (ids[i], dist[i]) = (0, f32::NAN);
        }
    }
    (ids, dist)
}

impl ClusterBackend for Cpu {
    fn lloyd_step(&self, job: LloydJob<'_>) -> Result<LloydStep<Assigned>> {
        let x = host_f32(job.points)?;
        let (groups, d, k) = (job.groups, job.group_dim, job.k);
        let ((ids, dist), (sums, counts)) = if groups == 1 {
            let c = MatrixView::new(job.centroids, d)?;
            let (ids, dist) = nearest_rows(x, c, job.cosine);
            let totals = sums(x, &ids, k);
            ((ids, dist), totals)
        } else {
            let (ids, dist) = nearest_centroids(x, job.centroids, groups, d, k);
            let totals = batched_sums(x, &ids, groups, d, k);
            ((ids, dist), totals)
        };
        let changed = job
            .prev
            .and_then(|p| p.ids.host())
            .filter(|p| p.len() == ids.len())
            .map(|p| p.iter().zip(&ids).filter(|(a, b)| a != b).count());
        let nonfinite = dist
            .iter()
            .position(|d| !d.is_finite())
            .map(|r| (r, dist[r]));
        Ok(LloydStep {
            inertia: dist.iter().map(|&d| d as f64).sum(),
            assigned: Assigned {
                ids: Store::Host(ids),
                dist: Store::Host(dist),
            },
            sums,
            counts,
            changed,
            nonfinite,
        })
    }

    fn nearest(
        &self,
        points: &Input<'_>,
        centroids: MatrixView<'_>,
        cosine: bool,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        Ok(nearest_rows(host_f32(points)?, centroids, cosine))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_counts_by_cluster() {
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = MatrixView::new(&v, 2).unwrap();
        let (s, c) = sums(m, &[1, 0, 1], 3);
        assert_eq!(c, vec![1, 2, 0]);
        assert_eq!(s, vec![3.0, 4.0, 6.0, 8.0, 0.0, 0.0]);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod simd_tests {
    //! The vectorised sub-space assignment against the scalar loop, and the
    //! batched member sums against a plain loop, bit for bit.

    use super::*;
    use crate::cpu::test_data::{awkward, bits_of, skip, values};

    #[test]
    fn nearest_centroids_matches_scalar() {
        if skip() {
            return;
        }
        for &(dim, m) in &[
            (1usize, 1usize),
            (2, 1),
            (3, 2),
            (8, 2),
            (15, 4),
            (17, 3),
            (16, 16),
            (37, 5),
        ] {
            let ds = dim.div_ceil(m);
            for nbits in [4u32, 5, 6, 8] {
                let kc = 1usize << nbits;
                for rows in [1, 2, 3, 17, 65, 130] {
                    let x = awkward(rows * dim, (dim * 31 + rows) as u64);
                    let mut c = values(m * kc * ds, nbits as u64 + 100);
                    // Duplicated centroids: ties go to the smaller index.
                    for j in 0..m {
                        let (a, b) = ((j * kc + 1) * ds, (j * kc + kc - 2) * ds);
                        for t in 0..ds {
                            c[b + t] = c[a + t];
                        }
                    }
                    // Rows on a centroid and near-ties.
                    let mut x = x;
                    if rows > 2 {
                        x[dim..2 * dim].copy_from_slice(&values(dim, 5));
                        for t in 0..ds.min(dim) {
                            x[2 * dim + t] = c[ds + t];
                        }
                    }
                    let v = MatrixView::new(&x, dim).unwrap();
                    let (ca, da) = nearest_centroids_with(v, &c, m, ds, kc, true);
                    let (cb, db) = nearest_centroids_with(v, &c, m, ds, kc, false);
                    let what = format!("dim {dim} m {m} nbits {nbits} rows {rows}");
                    assert_eq!(ca, cb, "{what}");
                    assert_eq!(bits_of(&da), bits_of(&db), "{what}");
                }
            }
        }
    }

    #[test]
    fn nearest_centroids_large_books_match_scalar() {
        if skip() {
            return;
        }
        for nbits in [10u32, 16] {
            let (dim, m, rows) = (6, 3, 5);
            let (ds, kc) = (2, 1usize << nbits);
            let x = awkward(rows * dim, 9);
            let c = values(m * kc * ds, 11);
            let v = MatrixView::new(&x, dim).unwrap();
            let a = nearest_centroids_with(v, &c, m, ds, kc, true);
            let b = nearest_centroids_with(v, &c, m, ds, kc, false);
            assert_eq!(a.0, b.0);
            assert_eq!(bits_of(&a.1), bits_of(&b.1));
        }
    }

    /// The member sums as first written: sub-space by sub-space, every row.
    fn batched_sums_reference(
        x: MatrixView<'_>,
        codes: &[u32],
        m: usize,
        ds: usize,
        kc: usize,
    ) -> (Vec<f64>, Vec<u64>) {
        let mut sums = vec![0f64; m * kc * ds];
        let mut counts = vec![0u64; m * kc];
        for j in 0..m {
            for i in 0..x.rows() {
                let code = codes[i * m + j] as usize;
                counts[j * kc + code] += 1;
                for t in 0..ds {
                    let v = x.row(i).get(j * ds + t).copied().unwrap_or(0.0);
                    sums[(j * kc + code) * ds + t] += v as f64;
                }
            }
        }
        (sums, counts)
    }

    #[test]
    fn batched_sums_match_reference() {
        for &(dim, m, nbits, rows) in &[
            (1usize, 1usize, 4u32, 1usize),
            (8, 2, 4, 3),
            (17, 3, 5, 300),
            (37, 5, 4, 1000),
            (128, 16, 8, 700),
            (10, 7, 6, 513),
        ] {
            let ds = dim.div_ceil(m);
            let kc = 1usize << nbits;
            let x = values(rows * dim, dim as u64 + 3);
            let v = MatrixView::new(&x, dim).unwrap();
            let codes: Vec<u32> = values(rows * m, 77)
                .iter()
                .map(|f| ((f + 4.0) * 1e5) as u32 % kc as u32)
                .collect();
            let (a, ac) = batched_sums(v, &codes, m, ds, kc);
            let (b, bc) = batched_sums_reference(v, &codes, m, ds, kc);
            assert_eq!(ac, bc);
            let bits = |s: &[f64]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&a),
                bits(&b),
                "dim {dim} m {m} nbits {nbits} rows {rows}"
            );
        }
    }
}

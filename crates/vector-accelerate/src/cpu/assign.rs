//! Nearest centroid by squared L2 on AVX-512 (the k-means assignment step):
//! the dot products of the fused k-NN kernel with the roles turned round
//! (points packed in panels of 32, centroids broadcast in groups of 12) and
//! a running minimum per point lane in place of top-k buffers. Each value is
//! the fused k-NN's `max(|x|^2 + |c|^2 - 2 x.c, 0)` bit for bit, and the
//! winner is its exact argmin with ties to the smaller centroid index, so
//! the result is the one `knn(points, centroids, 1, L2)` returns.

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::core::matrix::MatrixView;
use crate::cpu::distance::row_sq_norms;
use crate::cpu::fused::{dots, pack_base, pack_queries, Acc, Prep, GROUP, P, PANEL};

/// Points per work item (a multiple of the panel).
const CHUNK: usize = 32 * PANEL;

/// Marks a point with no centroid at a finite distance.
const NONE: u32 = u32::MAX;

/// Whether this machine runs the kernel.
pub(crate) fn available() -> bool {
    super::fused::available()
}

/// The nearest centroid of every point and its squared L2 distance (the
/// fused k-NN's value); a point with no centroid at a finite distance gets
/// [`u32::MAX`] (the caller resolves it another way).
pub(crate) fn nearest_l2(
    points: MatrixView<'_>,
    centroids: MatrixView<'_>,
) -> (Vec<u32>, Vec<f32>) {
    assert!(available());
    assert_eq!(points.dim(), centroids.dim());
    let (n, k, d) = (points.rows(), centroids.rows(), points.dim());
    assert!(k < NONE as usize);
    let groups = pack_queries(centroids);
    let mut cn = row_sq_norms(centroids);
    cn.resize(k.div_ceil(GROUP) * GROUP, 0.0);
    let mut ids = vec![NONE; n];
    let mut dist = vec![f32::INFINITY; n];
    ids.par_chunks_mut(CHUNK)
        .zip(dist.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(c, (ic, dc))| {
            let (s, e) = (c * CHUNK, (c * CHUNK + CHUNK).min(n));
            let (mut packed, mut xn) = (Vec::new(), Vec::new());
            pack_base(points, s, e, &mut packed, Prep::SqNorms(&mut xn));
            xn.resize((e - s).div_ceil(PANEL) * PANEL, 0.0);
            for (p, (ip, dp)) in ic.chunks_mut(PANEL).zip(dc.chunks_mut(PANEL)).enumerate() {
                let panel = Panel {
                    base: &packed[p * PANEL * d..(p + 1) * PANEL * d],
                    xn: &xn[p * PANEL..(p + 1) * PANEL],
                    groups: &groups,
                    cn: &cn,
                    k,
                    dim: d,
                };
                // SAFETY: AVX-512F was detected; the panel holds PANEL x d
                // packed values, the groups cover every centroid group, and
                // the norms are padded to whole panels and groups.
                let (bi, bd) = unsafe { panel_argmin(&panel) };
                ip.copy_from_slice(&bi[..ip.len()]);
                dp.copy_from_slice(&bd[..dp.len()]);
            }
        });
    (ids, dist)
}

/// One packed panel of points against every centroid group.
struct Panel<'a> {
    /// `[d][PANEL]` point values.
    base: &'a [f32],
    /// The points' squared norms (PANEL).
    xn: &'a [f32],
    /// Packed centroid groups (`[d][GROUP]` each).
    groups: &'a [f32],
    /// Centroid squared norms, padded to whole groups.
    cn: &'a [f32],
    /// Centroids.
    k: usize,
    /// Dimension.
    dim: usize,
}

/// The best centroid (and value) of each point lane of one panel.
#[target_feature(enable = "avx512f")]
unsafe fn panel_argmin(p: &Panel<'_>) -> ([u32; PANEL], [f32; PANEL]) {
    let d = p.dim;
    let mut best = [_mm512_set1_ps(f32::INFINITY); P];
    let mut bidx = [_mm512_set1_epi32(NONE as i32); P];
    let mut xn = [_mm512_setzero_ps(); P];
    for (v, x) in xn.iter_mut().enumerate() {
        *x = _mm512_loadu_ps(p.xn.as_ptr().add(16 * v));
    }
    let two = _mm512_set1_ps(2.0);
    for g in 0..p.k.div_ceil(GROUP) {
        let mut acc: Acc = [[_mm512_setzero_ps(); P]; GROUP];
        dots(
            p.base.as_ptr(),
            p.groups.as_ptr().add(g * GROUP * d),
            d,
            &mut acc,
        );
        let valid = GROUP.min(p.k - g * GROUP);
        for (r, row) in acc.iter().enumerate().take(valid) {
            let c = g * GROUP + r;
            let cn = _mm512_set1_ps(*p.cn.get_unchecked(c));
            let ci = _mm512_set1_epi32(c as i32);
            for v in 0..P {
                // The fused k-NN epilogue: (|x|^2 + |c|^2) - 2 dot, then
                // (0 > t) ? 0 : t (NaN kept, never smaller).
                let s = _mm512_add_ps(xn[v], cn);
                let t = _mm512_sub_ps(s, _mm512_mul_ps(two, row[v]));
                let t = _mm512_max_ps(_mm512_setzero_ps(), t);
                let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(t, best[v]);
                best[v] = _mm512_mask_mov_ps(best[v], lt, t);
                bidx[v] = _mm512_mask_mov_epi32(bidx[v], lt, ci);
            }
        }
    }
    let (mut ids, mut vals) = ([0u32; PANEL], [0f32; PANEL]);
    for v in 0..P {
        _mm512_storeu_si512(ids.as_mut_ptr().add(16 * v) as *mut _, bidx[v]);
        _mm512_storeu_ps(vals.as_mut_ptr().add(16 * v), best[v]);
    }
    (ids, vals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{knn, Context, Matrix, Metric};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn matches_knn_bit_for_bit() {
        if !available() {
            return;
        }
        let ctx = Context::cpu();
        for &d in &[1usize, 2, 3, 7, 16, 17, 33, 128, 300] {
            for &k in &[1usize, 2, 11, 12, 13, 25, 64] {
                for &n in &[1usize, 5, 31, 32, 33, 1025, 1100] {
                    let mut c = values(k * d, (d * 7 + k) as u64);
                    // Duplicated centroids (ties to the smaller index) and
                    // points on centroids (distance 0).
                    if k > 3 {
                        let row = c[..d].to_vec();
                        c[(k - 2) * d..(k - 1) * d].copy_from_slice(&row);
                    }
                    let mut x = values(n * d, (n + d) as u64);
                    for i in (0..n).step_by(3) {
                        let src = (i % k) * d;
                        let row = c[src..src + d].to_vec();
                        x[i * d..(i + 1) * d].copy_from_slice(&row);
                    }
                    let (xm, cm) = (Matrix::new(x, d).unwrap(), Matrix::new(c, d).unwrap());
                    let (ids, dist) = nearest_l2(xm.view(), cm.view());
                    let want = knn(&ctx, &xm, &cm, 1, Metric::L2).unwrap();
                    let got: Vec<u64> = ids.iter().map(|&i| i as u64).collect();
                    assert_eq!(got, want.ids(), "d {d} k {k} n {n}");
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&dist), bits(want.distances()), "d {d} k {k} n {n}");
                }
            }
        }
    }

    #[test]
    fn overflowing_distances_are_marked() {
        if !available() {
            return;
        }
        let c = Matrix::new(vec![3e38, 3e38, -3e38, -3e38], 2).unwrap();
        let x = Matrix::new(vec![-3e38, 3e38, 1.0, 1.0], 2).unwrap();
        let (ids, _) = nearest_l2(x.view(), c.view());
        assert_eq!(ids[0], NONE);
    }
}

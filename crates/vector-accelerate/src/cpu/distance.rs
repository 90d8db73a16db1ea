//! CPU distances: per-pair formulas (the reference), and tiles of a
//! distance matrix (GEMM for L2 / cosine / inner product).

use rayon::prelude::*;

use crate::core::matrix::{BinaryView, MatrixView};
use crate::core::metric::{Metric, Prepared};
use crate::cpu::host::HostRows;

const LANES: usize = 8;

/// `sum f(a_i, b_i, i)` in 8 independent lanes (vectorisable, and more
/// accurate than one serial sum).
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32, usize) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let n = a.len() / LANES * LANES;
    let mut i = 0;
    while i < n {
        for l in 0..LANES {
            acc[l] += f(a[i + l], b[i + l], i + l);
        }
        i += LANES;
    }
    for j in n..a.len() {
        acc[j % LANES] += f(a[j], b[j], j);
    }
    acc.iter().sum()
}

/// Maximum that propagates NaN (`f32::max` drops it).
#[inline(always)]
pub(crate) fn nan_max(acc: f32, v: f32) -> f32 {
    if v > acc || v.is_nan() {
        v
    } else {
        acc
    }
}

#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    lane_sum(a, b, |x, y, _| x * y)
}

#[inline]
pub(crate) fn sq_norm(a: &[f32]) -> f32 {
    lane_sum(a, a, |x, _, _| x * x)
}

/// Turns a dot product and squared norms into the GEMM metrics' values.
/// The CUDA epilogue kernel implements the same formulas.
#[inline]
pub(crate) fn gemm_epilogue(dot: f32, qn: f32, xn: f32, metric: Metric, normalized: bool) -> f32 {
    match metric {
        Metric::L2 | Metric::Euclidean => {
            let d = qn + xn - 2.0 * dot;
            let d = if d < 0.0 { 0.0 } else { d };
            if metric == Metric::Euclidean {
                d.sqrt()
            } else {
                d
            }
        }
        Metric::Cosine | Metric::CosineSimilarity => {
            let c = if normalized {
                dot
            } else {
                let den = qn.sqrt() * xn.sqrt();
                if den == 0.0 {
                    0.0
                } else {
                    dot / den
                }
            };
            let c = if c.is_nan() { c } else { c.clamp(-1.0, 1.0) };
            if metric == Metric::Cosine {
                1.0 - c
            } else {
                c
            }
        }
        Metric::InnerProduct => dot,
        Metric::AbsInnerProduct => dot.abs(),
        _ => f32::NAN,
    }
}

/// One pair of `f32` vectors (the direct formulas; GEMM metrics through
/// [`gemm_epilogue`]).
pub(crate) fn pair_f32(a: &[f32], b: &[f32], p: &Prepared) -> f32 {
    let w = p.weights.as_deref();
    match p.metric {
        m if m.is_gemm_based() => {
            let (qn, xn) = if p.normalized {
                (1.0, 1.0)
            } else {
                (sq_norm(a), sq_norm(b))
            };
            gemm_epilogue(dot(a, b), qn, xn, m, p.normalized)
        }
        Metric::L1 => match w {
            Some(w) => lane_sum(a, b, |x, y, i| w[i] * (x - y).abs()),
            None => lane_sum(a, b, |x, y, _| (x - y).abs()),
        },
        Metric::Linf => {
            let mut m = 0f32;
            for i in 0..a.len() {
                let d = (a[i] - b[i]).abs();
                m = nan_max(m, w.map_or(d, |w| w[i] * d));
            }
            m
        }
        Metric::Minkowski(pw) => minkowski(a, b, pw),
        Metric::Hamming | Metric::HammingNormalized => {
            let t = p.threshold;
            let c = a
                .iter()
                .zip(b)
                .filter(|(x, y)| (**x > t) != (**y > t))
                .count() as f32;
            if p.metric == Metric::HammingNormalized {
                c / a.len() as f32
            } else {
                c
            }
        }
        Metric::Jaccard => {
            let mut smin = 0f32;
            let mut smax = 0f32;
            for (&x, &y) in a.iter().zip(b) {
                if x.is_nan() || y.is_nan() {
                    return f32::NAN;
                }
                smin += x.min(y);
                smax += x.max(y);
            }
            if smax == 0.0 {
                0.0
            } else {
                1.0 - smin / smax
            }
        }
        _ => f32::NAN,
    }
}

/// Minkowski distance scaled by the largest coordinate difference so that
/// neither large nor small `p` overflows or underflows.
pub(crate) fn minkowski(a: &[f32], b: &[f32], p: f32) -> f32 {
    let mut m = 0f32;
    for (x, y) in a.iter().zip(b) {
        m = nan_max(m, (x - y).abs());
    }
    if m.is_nan() || m == 0.0 || m.is_infinite() {
        return m;
    }
    let inv = 1.0 / m;
    let s: f32 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y).abs() * inv).powf(p))
        .sum();
    m * s.powf(1.0 / p)
}

/// `out[i * n + j]` = [`pair_bits`] of query row `i` and base row `j`.
#[inline(always)]
fn bits_tile(q: BinaryView<'_>, x: BinaryView<'_>, metric: Metric, out: &mut [f32]) {
    let n = x.rows();
    for i in 0..q.rows() {
        let a = q.row(i);
        for (j, o) in out[i * n..(i + 1) * n].iter_mut().enumerate() {
            *o = pair_bits(a, x.row(j), q.bits(), metric);
        }
    }
}

/// [`bits_tile`] compiled for AVX-512 with vector population counts (the
/// counts are integers: the same values as the portable build).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
unsafe fn bits_tile_avx512(q: BinaryView<'_>, x: BinaryView<'_>, metric: Metric, out: &mut [f32]) {
    bits_tile(q, x, metric, out)
}

/// One pair of bit-packed vectors of `bits` bits.
#[inline(always)]
pub(crate) fn pair_bits(a: &[u64], b: &[u64], bits: usize, metric: Metric) -> f32 {
    match metric {
        Metric::Hamming | Metric::HammingNormalized => {
            let c: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
            if metric == Metric::HammingNormalized {
                c as f32 / bits as f32
            } else {
                c as f32
            }
        }
        Metric::Jaccard => {
            let (mut i, mut u) = (0u32, 0u32);
            for (x, y) in a.iter().zip(b) {
                i += (x & y).count_ones();
                u += (x | y).count_ones();
            }
            if u == 0 {
                0.0
            } else {
                1.0 - i as f32 / u as f32
            }
        }
        _ => f32::NAN,
    }
}

/// Squared norms of every row (the GEMM metrics' side input).
pub(crate) fn row_sq_norms(m: MatrixView<'_>) -> Vec<f32> {
    (0..m.rows())
        .into_par_iter()
        .map(|r| sq_norm(m.row(r)))
        .collect()
}

/// `out[i * n + j] = q_i . x_j` for `n = x.rows()` (single-threaded GEMM).
pub(crate) fn gemm_dots(q: MatrixView<'_>, x: MatrixView<'_>, out: &mut [f32]) {
    let (m, n, d) = (q.rows(), x.rows(), q.dim());
    debug_assert_eq!(out.len(), m * n);
    // SAFETY: `out` is m x n row-major, `q` is m x d row-major and `x` is
    // n x d row-major (read as its transpose); all in bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            d,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            q.as_slice().as_ptr(),
            1,
            d as isize,
            x.as_slice().as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Fills `out` (`q.rows() x x.rows()`, row-major) with distances. `qn`/`xn`
/// are the rows' squared norms for the GEMM metrics. Single-threaded: the
/// caller parallelises over tiles.
pub(crate) fn tile(
    q: HostRows<'_>,
    x: HostRows<'_>,
    p: &Prepared,
    qn: &[f32],
    xn: &[f32],
    out: &mut [f32],
) {
    let (m, n) = (q.rows(), x.rows());
    debug_assert_eq!(out.len(), m * n);
    match (q, x) {
        (HostRows::F32(q), HostRows::F32(x)) if p.metric.is_gemm_based() => {
            gemm_dots(q, x, out);
            for i in 0..m {
                let (a, row) = (
                    if p.normalized { 1.0 } else { qn[i] },
                    &mut out[i * n..(i + 1) * n],
                );
                for (j, v) in row.iter_mut().enumerate() {
                    let b = if p.normalized { 1.0 } else { xn[j] };
                    *v = gemm_epilogue(*v, a, b, p.metric, p.normalized);
                }
            }
        }
        (HostRows::F32(q), HostRows::F32(x)) => {
            for i in 0..m {
                let a = q.row(i);
                for j in 0..n {
                    out[i * n + j] = pair_f32(a, x.row(j), p);
                }
            }
        }
        (HostRows::Bits(q), HostRows::Bits(x)) => {
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq") {
                // SAFETY: the features were detected.
                unsafe { bits_tile_avx512(q, x, p.metric, out) };
                return;
            }
            bits_tile(q, x, p.metric, out);
        }
        _ => out.fill(f32::NAN),
    }
}

/// The full `[nq x nb]` distance matrix, in parallel over blocks of query rows.
pub(crate) fn matrix(
    q: HostRows<'_>,
    x: HostRows<'_>,
    p: &Prepared,
    qn: &[f32],
    xn: &[f32],
) -> Vec<f32> {
    let (nq, nb) = (q.rows(), x.rows());
    let mut out = vec![0f32; nq * nb];
    const QB: usize = 32;
    out.par_chunks_mut(QB * nb)
        .enumerate()
        .for_each(|(bi, chunk)| {
            let s = bi * QB;
            let e = (s + QB).min(nq);
            let qn_blk = if qn.is_empty() { qn } else { &qn[s..e] };
            tile(q.slice_rows(s, e), x, p, qn_blk, xn, chunk);
        });
    out
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::core::matrix::words_for_bits;

    #[test]
    fn bits_tile_avx512_matches_portable() {
        if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq")) {
            return;
        }
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        for bits in [1usize, 7, 63, 64, 65, 100, 128, 513, 1024] {
            let w = words_for_bits(bits);
            let mask = if bits % 64 == 0 {
                u64::MAX
            } else {
                (1u64 << (bits % 64)) - 1
            };
            let mut gen = |rows: usize| -> Vec<u64> {
                let mut v: Vec<u64> = (0..rows * w)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        s
                    })
                    .collect();
                for r in v.chunks_exact_mut(w) {
                    r[w - 1] &= mask;
                }
                v
            };
            let (qw, xw) = (gen(5), gen(37));
            let q = BinaryView::new(&qw, bits).unwrap();
            let x = BinaryView::new(&xw, bits).unwrap();
            for metric in [Metric::Hamming, Metric::HammingNormalized, Metric::Jaccard] {
                let mut a = vec![0f32; 5 * 37];
                let mut b = vec![0f32; 5 * 37];
                // SAFETY: the features were detected above.
                unsafe { bits_tile_avx512(q, x, metric, &mut a) };
                bits_tile(q, x, metric, &mut b);
                let bits_of = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits_of(&a), bits_of(&b), "bits {bits} {metric:?}");
            }
        }
    }
}

//! CPU quantization kernels: the reference for every mode. The arithmetic of
//! each value (operation order, no fused multiply-add) is the one the CUDA
//! kernels use, so codes and distances agree bit for bit.

use rayon::prelude::*;

use super::select::TopKBuffer;
use crate::matrix::{words_for_bits, BinaryMatrix, Matrix, MatrixView};
use crate::metric::Metric;
use crate::ops::quantize::codes::read_code;
use crate::ops::quantize::scalar::params;
use crate::ops::quantize::{ProductQuantizer, ScalarCodes, ScalarQuantizer, ScalarRange, Store};
use crate::ops::quantize::{ScalarBits, ScalarScope};
use crate::ops::select::{Neighbors, MISSING_ID};

/// Rows per parallel task of the row-wise kernels.
const ROWS: usize = 256;

/// Per-column (min, max) over finite values; a column with none gets (0, 0).
pub(crate) fn column_ranges(m: MatrixView<'_>) -> (Vec<f32>, Vec<f32>) {
    let d = m.dim();
    let init = || (vec![f32::INFINITY; d], vec![f32::NEG_INFINITY; d]);
    let (lo, hi) = m
        .as_slice()
        .par_chunks(ROWS * d)
        .fold(init, |(mut lo, mut hi), rows| {
            for r in rows.chunks_exact(d) {
                for (j, &v) in r.iter().enumerate() {
                    if v.is_finite() {
                        lo[j] = lo[j].min(v);
                        hi[j] = hi[j].max(v);
                    }
                }
            }
            (lo, hi)
        })
        .reduce(init, |(mut a, mut b), (c, e)| {
            for j in 0..d {
                a[j] = a[j].min(c[j]);
                b[j] = b[j].max(e[j]);
            }
            (a, b)
        });
    finish_ranges(lo, hi)
}

/// Columns with no finite value get the range (0, 0).
pub(crate) fn finish_ranges(mut lo: Vec<f32>, mut hi: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
    for (l, h) in lo.iter_mut().zip(hi.iter_mut()) {
        if *l > *h {
            (*l, *h) = (0.0, 0.0);
        }
    }
    (lo, hi)
}

/// NumPy's default (linear) quantile of sorted values.
fn quantile(sorted: &[f32], p: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    let a = sorted[i] as f64;
    let b = sorted[(i + 1).min(sorted.len() - 1)] as f64;
    (a + (b - a) * f) as f32
}

/// Per-column clip range: the `1 - p` and `p` quantiles of the finite
/// values, or for the symmetric range `(-q, q)` with `q` the `p` quantile
/// of `|x|`.
pub(crate) fn column_quantiles(m: MatrixView<'_>, p: f32, symmetric: bool) -> (Vec<f32>, Vec<f32>) {
    let d = m.dim();
    let cols: Vec<(f32, f32)> = (0..d)
        .into_par_iter()
        .map(|j| {
            let mut v: Vec<f32> = (0..m.rows())
                .map(|r| m.row(r)[j])
                .filter(|x| x.is_finite())
                .map(|x| if symmetric { x.abs() } else { x })
                .collect();
            v.sort_unstable_by(f32::total_cmp);
            if symmetric {
                let q = quantile(&v, p as f64);
                (-q, q)
            } else {
                (quantile(&v, 1.0 - p as f64), quantile(&v, p as f64))
            }
        })
        .collect();
    cols.into_iter().unzip()
}

/// Per-column means of the finite values in f64 (0 for a column with none).
pub(crate) fn column_means(m: MatrixView<'_>) -> Vec<f32> {
    let d = m.dim();
    let init = || (vec![0f64; d], vec![0u64; d]);
    let (s, c) = m
        .as_slice()
        .par_chunks(ROWS * d)
        .fold(init, |(mut s, mut c), rows| {
            for r in rows.chunks_exact(d) {
                for (j, &v) in r.iter().enumerate() {
                    if v.is_finite() {
                        s[j] += v as f64;
                        c[j] += 1;
                    }
                }
            }
            (s, c)
        })
        .reduce(init, |(mut a, mut b), (s, c)| {
            for j in 0..d {
                a[j] += s[j];
                b[j] += c[j];
            }
            (a, b)
        });
    s.iter()
        .zip(&c)
        .map(|(s, &c)| if c > 0 { (s / c as f64) as f32 } else { 0.0 })
        .collect()
}

/// One value's code: `rint((x - offset) * inv)` saturated to `[qmin, qmax]`
/// (NaN encodes as 0.0 would; the CUDA kernel computes the same).
#[inline]
pub(crate) fn encode_value(x: f32, inv: f32, offset: f32, qmin: f32, qmax: f32) -> i32 {
    let x = if x.is_nan() { 0.0 } else { x };
    let t = ((x - offset) * inv).round_ties_even();
    // max/min drop a NaN (inf * 0 when the scale is 0), like fmaxf/fminf.
    t.max(qmin).min(qmax) as i32
}

/// One value back: `offset + code * scale`.
#[inline]
pub(crate) fn decode_value(code: i32, scale: f32, offset: f32) -> f32 {
    offset + code as f32 * scale
}

/// The code range of a quantizer.
pub(crate) fn code_range(bits: ScalarBits, range: ScalarRange) -> (f32, f32) {
    match range {
        ScalarRange::Symmetric => (-bits.sym_max(), bits.sym_max()),
        ScalarRange::Asymmetric => (0.0, bits.asym_max()),
    }
}

/// Finite (min, max) of a row ((0, 0) when none).
pub(crate) fn row_range(r: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in r {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo > hi {
        (0.0, 0.0)
    } else {
        (lo, hi)
    }
}

/// Scalar-quantizes rows on the host.
pub(crate) fn sq_encode(sq: &ScalarQuantizer, m: MatrixView<'_>) -> ScalarCodes {
    let (d, n) = (m.dim(), m.rows());
    let bits = sq.opts.bits;
    let bpr = bits.bytes_per_row(d);
    let (qmin, qmax) = code_range(bits, sq.opts.range);
    let per_vector = sq.opts.scope == ScalarScope::PerVector;
    let mut bytes = vec![0u8; n * bpr];
    let mut scale = vec![0f32; if per_vector { n } else { 0 }];
    let mut offset = vec![0f32; if per_vector { n } else { 0 }];
    let enc_row = |r: &[f32], out: &mut [u8], p: Option<(f32, f32)>| {
        let code = |j: usize| -> u8 {
            let (inv, off) = match p {
                Some(p) => p,
                None => (sq.inv[j], sq.offset[j]),
            };
            encode_value(r[j], inv, off, qmin, qmax) as u8
        };
        match bits {
            ScalarBits::Int8 => out.iter_mut().enumerate().for_each(|(j, o)| *o = code(j)),
            ScalarBits::Int4 => out.iter_mut().enumerate().for_each(|(b, o)| {
                let lo = code(2 * b) & 15;
                let hi = if 2 * b + 1 < r.len() {
                    code(2 * b + 1) & 15
                } else {
                    0
                };
                *o = lo | (hi << 4);
            }),
        }
    };
    if per_vector {
        bytes
            .par_chunks_mut(bpr)
            .zip(scale.par_iter_mut().zip(offset.par_iter_mut()))
            .enumerate()
            .for_each(|(i, (out, (s, o)))| {
                let r = m.row(i);
                let (lo, hi) = row_range(r);
                let (sc, inv, off) = params(lo, hi, bits, sq.opts.range);
                *s = sc;
                *o = off;
                enc_row(r, out, Some((inv, off)));
            });
    } else {
        bytes
            .par_chunks_mut(bpr)
            .enumerate()
            .for_each(|(i, out)| enc_row(m.row(i), out, None));
    }
    ScalarCodes {
        rows: n,
        dim: d,
        bits,
        range: sq.opts.range,
        bytes: Store::Host(bytes),
        params: per_vector.then_some((Store::Host(scale), Store::Host(offset))),
    }
}

/// Decodes rows `a..b` of host codes.
pub(crate) fn sq_decode(sq: &ScalarQuantizer, codes: &ScalarCodes, a: usize, b: usize) -> Matrix {
    let d = codes.dim;
    let bpr = codes.bytes_per_row();
    let bytes = codes.bytes.host().expect("host codes on a CPU context");
    let vp = codes.vector_params();
    let signed = codes.range == ScalarRange::Symmetric;
    let mut out = vec![0f32; (b - a) * d];
    out.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
        let r = a + i;
        let src = &bytes[r * bpr..(r + 1) * bpr];
        let code = |j: usize| -> i32 {
            match codes.bits {
                ScalarBits::Int8 => {
                    if signed {
                        src[j] as i8 as i32
                    } else {
                        src[j] as i32
                    }
                }
                ScalarBits::Int4 => {
                    let nib = (src[j / 2] >> (4 * (j % 2))) & 15;
                    if signed {
                        ((nib << 4) as i8 >> 4) as i32
                    } else {
                        nib as i32
                    }
                }
            }
        };
        for (j, o) in row.iter_mut().enumerate() {
            let (s, off) = match vp {
                Some((s, o)) => (s[r], o[r]),
                None => (sq.scale[j], sq.offset[j]),
            };
            *o = decode_value(code(j), s, off);
        }
    });
    Matrix::new(out, d).expect("non-empty")
}

/// Bit `j` of a row set when `x[j] > t[j]` (NaN: 0).
pub(crate) fn bq_encode(t: &[f32], m: MatrixView<'_>) -> BinaryMatrix {
    let d = m.dim();
    let w = words_for_bits(d);
    let mut words = vec![0u64; m.rows() * w];
    words.par_chunks_mut(w).enumerate().for_each(|(i, out)| {
        for (j, (&x, &th)) in m.row(i).iter().zip(t).enumerate() {
            if x > th {
                out[j / 64] |= 1u64 << (j % 64);
            }
        }
    });
    BinaryMatrix::new(words, d).expect("well-formed words")
}

/// Squared L2 of a sub-vector (columns `c0..c0 + ds` of `x`, zero beyond
/// its end) to a centroid, summed in order without fused multiply-add.
#[inline]
fn sub_l2(x: &[f32], c0: usize, c: &[f32]) -> f32 {
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

/// Member sums (f64, `m x kc x ds`) and counts (`m x kc`) per sub-space
/// centroid, each summed in ascending row order.
pub(crate) fn batched_sums(
    x: MatrixView<'_>,
    codes: &[u32],
    m: usize,
    ds: usize,
    kc: usize,
) -> (Vec<f64>, Vec<u64>) {
    let mut sums = vec![0f64; m * kc * ds];
    let mut counts = vec![0u64; m * kc];
    sums.par_chunks_mut(kc * ds)
        .zip(counts.par_chunks_mut(kc))
        .enumerate()
        .for_each(|(j, (s, c))| {
            for i in 0..x.rows() {
                let code = codes[i * m + j] as usize;
                c[code] += 1;
                let row = x.row(i);
                for t in 0..ds {
                    s[code * ds + t] += row.get(j * ds + t).copied().unwrap_or(0.0) as f64;
                }
            }
        });
    (sums, counts)
}

/// Decodes packed product codes.
pub(crate) fn pq_decode(pq: &ProductQuantizer, bytes: &[u8], rows: usize) -> Matrix {
    let (d, m, ds, kc) = (pq.dim, pq.m, pq.dsub, 1usize << pq.nbits);
    let rb = crate::ops::quantize::codes::pq_row_bytes(m, pq.nbits);
    let mut out = vec![0f32; rows * d];
    out.par_chunks_mut(d).enumerate().for_each(|(r, row)| {
        let src = &bytes[r * rb..];
        for j in 0..m {
            let c = read_code(src, j, pq.nbits) as usize;
            let cv = &pq.centroids[(j * kc + c) * ds..(j * kc + c + 1) * ds];
            for t in 0..ds {
                if j * ds + t < d {
                    row[j * ds + t] = cv[t];
                }
            }
        }
    });
    Matrix::new(out, d).expect("non-empty")
}

/// Lookup table of one query (`m x kc`).
pub(crate) fn pq_table(pq: &ProductQuantizer, q: &[f32], metric: Metric, out: &mut [f32]) {
    let (m, ds, kc) = (pq.m, pq.dsub, 1usize << pq.nbits);
    for j in 0..m {
        for c in 0..kc {
            let cv = &pq.centroids[(j * kc + c) * ds..(j * kc + c + 1) * ds];
            out[j * kc + c] = match metric {
                Metric::InnerProduct => {
                    let mut acc = 0f32;
                    for (t, &v) in cv.iter().enumerate() {
                        acc += q.get(j * ds + t).copied().unwrap_or(0.0) * v;
                    }
                    acc
                }
                _ => sub_l2(q, j * ds, cv),
            };
        }
    }
}

/// Lookup tables of every query (`nq x m x kc`).
pub(crate) fn pq_tables(pq: &ProductQuantizer, q: MatrixView<'_>, metric: Metric) -> Vec<f32> {
    let w = pq.m << pq.nbits;
    let mut out = vec![0f32; q.rows() * w];
    out.par_chunks_mut(w)
        .enumerate()
        .for_each(|(i, t)| pq_table(pq, q.row(i), metric, t));
    out
}

/// ADC k-NN over packed codes on the host.
pub(crate) fn pq_search(
    pq: &ProductQuantizer,
    q: MatrixView<'_>,
    bytes: &[u8],
    rows: usize,
    k: usize,
    metric: Metric,
) -> Neighbors {
    let (m, kc) = (pq.m, 1usize << pq.nbits);
    let rb = crate::ops::quantize::codes::pq_row_bytes(m, pq.nbits);
    let order = metric.order();
    let mut out = Neighbors::missing(q.rows(), k, order);
    let lists: Vec<(Vec<u64>, Vec<f32>)> = (0..q.rows())
        .into_par_iter()
        .map(|i| {
            let mut lut = vec![0f32; m * kc];
            pq_table(pq, q.row(i), metric, &mut lut);
            let mut buf = TopKBuffer::with_slack(k, order, 64);
            let mut dist = vec![0f32; 256];
            for r0 in (0..rows).step_by(256) {
                let r1 = (r0 + 256).min(rows);
                for (r, dv) in (r0..r1).zip(dist.iter_mut()) {
                    let row = &bytes[r * rb..];
                    let mut s = 0f32;
                    if pq.nbits == 8 {
                        for (j, &c) in row[..m].iter().enumerate() {
                            s += lut[j * kc + c as usize];
                        }
                    } else {
                        for j in 0..m {
                            s += lut[j * kc + read_code(row, j, pq.nbits) as usize];
                        }
                    }
                    *dv = s;
                }
                buf.push_row(&dist[..r1 - r0], r0 as u64);
            }
            let mut ids = vec![MISSING_ID; k];
            let mut d = vec![0f32; k];
            buf.finish_into(&mut ids, &mut d);
            (ids, d)
        })
        .collect();
    let (oi, od) = out.parts_mut();
    for (i, (ids, d)) in lists.into_iter().enumerate() {
        oi[i * k..(i + 1) * k].copy_from_slice(&ids);
        od[i * k..(i + 1) * k].copy_from_slice(&d);
    }
    out
}

/// Exact distances of each query to its candidates (`nq x r` ids;
/// missing ids give NaN, never read).
pub(crate) fn pair_distances(
    q: MatrixView<'_>,
    x: MatrixView<'_>,
    ids: &[u64],
    r: usize,
    metric: Metric,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; ids.len()];
    out.par_chunks_mut(r).enumerate().for_each(|(i, o)| {
        let qr = q.row(i);
        for (j, v) in o.iter_mut().enumerate() {
            let id = ids[i * r + j];
            if id == MISSING_ID {
                continue;
            }
            let xr = x.row(id as usize);
            *v = match metric {
                Metric::InnerProduct => qr.iter().zip(xr).map(|(a, b)| a * b).sum(),
                _ => qr
                    .iter()
                    .zip(xr)
                    .map(|(a, b)| {
                        let e = a - b;
                        e * e
                    })
                    .sum(),
            };
        }
    });
    out
}

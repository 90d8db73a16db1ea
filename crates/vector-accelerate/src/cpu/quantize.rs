//! CPU quantization kernels: the reference for every mode. The arithmetic of
//! each value (operation order, no fused multiply-add) is the one the CUDA
//! kernels use, so codes and distances agree bit for bit.

use rayon::prelude::*;

use crate::core::error::{Error, Result};
use crate::core::matrix::{words_for_bits, BinaryMatrix, Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::core::neighbors::{Neighbors, MISSING_ID};
use crate::core::quantize::column_quantiles;
use crate::core::quantize::pack_codes;
use crate::core::quantize::pair_distances;
use crate::core::quantize::pq_decode;
use crate::core::quantize::{
    code_range, finish_ranges, params, read_code, ProductQuantizer, ScalarBits, ScalarQuantizer,
    ScalarRange, ScalarScope,
};
use crate::cpu::cluster::nearest_centroids;
use crate::cpu::cluster::sub_l2;
use crate::cpu::features::quant_simd_available;
use crate::cpu::host::host_f32;
#[cfg(target_arch = "x86_64")]
use crate::cpu::quant_simd::SqParams;
use crate::cpu::select::TopKBuffer;
use crate::runtime::backend::{Cpu, QuantizeBackend};
use crate::runtime::codes::PqCodes;
use crate::runtime::codes::{ScalarCodes, Store};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;
use std::ops::Range;

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

/// Two codes per byte, the first in the low nibble (a missing last code
/// is 0): `codes` holds one code per value, `out` `ceil(len / 2)` bytes.
fn pack_nibbles(codes: &[u8], out: &mut [u8]) {
    for (o, pair) in out.iter_mut().zip(codes.chunks(2)) {
        let hi = pair.get(1).map_or(0, |c| c & 15);
        *o = (pair[0] & 15) | (hi << 4);
    }
}

/// One value back: `offset + code * scale`.
#[inline]
pub(crate) fn decode_value(code: i32, scale: f32, offset: f32) -> f32 {
    offset + code as f32 * scale
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
    sq_encode_with(sq, m, quant_simd_available())
}

/// [`sq_encode`] with the vectorised kernel (`simd`, AVX-512 present) or
/// the scalar loop.
fn sq_encode_with(sq: &ScalarQuantizer, m: MatrixView<'_>, simd: bool) -> ScalarCodes {
    let (d, n) = (m.dim(), m.rows());
    let bits = sq.opts.bits;
    let bpr = bits.bytes_per_row(d);
    let (qmin, qmax) = code_range(bits, sq.opts.range);
    let per_vector = sq.opts.scope == ScalarScope::PerVector;
    let mut bytes = vec![0u8; n * bpr];
    let mut scale = vec![0f32; if per_vector { n } else { 0 }];
    let mut offset = vec![0f32; if per_vector { n } else { 0 }];
    let enc_row = |r: &[f32], out: &mut [u8], p: Option<(f32, f32)>, tmp: &mut Vec<u8>| {
        #[cfg(target_arch = "x86_64")]
        if simd {
            let sp = match p {
                Some((inv, offset)) => SqParams::Row { inv, offset },
                None => SqParams::Channel {
                    inv: &sq.inv,
                    offset: &sq.offset,
                },
            };
            match bits {
                ScalarBits::Int8 => super::quant_simd::sq_codes(r, sp, qmin, qmax, out),
                ScalarBits::Int4 => {
                    tmp.resize(r.len(), 0);
                    super::quant_simd::sq_codes(r, sp, qmin, qmax, tmp);
                    pack_nibbles(tmp, out);
                }
            }
            return;
        }
        let _ = (simd, &tmp);
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
            .for_each_init(Vec::new, |tmp, (i, (out, (s, o)))| {
                let r = m.row(i);
                let (lo, hi) = row_range(r);
                let (sc, inv, off) = params(lo, hi, bits, sq.opts.range);
                *s = sc;
                *o = off;
                enc_row(r, out, Some((inv, off)), tmp);
            });
    } else {
        bytes
            .par_chunks_mut(bpr)
            .enumerate()
            .for_each_init(Vec::new, |tmp, (i, out)| enc_row(m.row(i), out, None, tmp));
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
    pq_search_with(pq, q, (bytes, rows), (k, metric), quant_simd_available())
}

/// Top-k buffer slack of the ADC scan.
const ADC_SLACK: usize = 64;

/// [`pq_search`] with the vectorised scan (`simd`, AVX-512 present, tables
/// of 16 queries within 16 MiB) or the per-query scalar loop.
fn pq_search_with(
    pq: &ProductQuantizer,
    q: MatrixView<'_>,
    (bytes, rows): (&[u8], usize),
    (k, metric): (usize, Metric),
    simd: bool,
) -> Neighbors {
    #[cfg(target_arch = "x86_64")]
    if simd && (pq.m << pq.nbits) * 64 <= 16 << 20 && rows > 0 {
        return pq_search_simd(pq, q, bytes, rows, k, metric);
    }
    let _ = simd;
    let (m, kc) = (pq.m, 1usize << pq.nbits);
    let rb = crate::core::quantize::pq_row_bytes(m, pq.nbits);
    let order = metric.order();
    let mut out = Neighbors::missing(q.rows(), k, order);
    let lists: Vec<(Vec<u64>, Vec<f32>)> = (0..q.rows())
        .into_par_iter()
        .map(|i| {
            let mut lut = vec![0f32; m * kc];
            pq_table(pq, q.row(i), metric, &mut lut);
            let mut buf = TopKBuffer::with_slack(k, order, ADC_SLACK);
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

/// [`pq_search`] on AVX-512: the tables of 16 queries interleaved so one
/// aligned load fetches a code's entry for all of them; work items are
/// (query group, row chunk) pairs, the chunks of a group merged at the end.
#[cfg(target_arch = "x86_64")]
fn pq_search_simd(
    pq: &ProductQuantizer,
    q: MatrixView<'_>,
    bytes: &[u8],
    rows: usize,
    k: usize,
    metric: Metric,
) -> Neighbors {
    use super::knn::{combine, finish};
    use super::quant_simd::{adc_scan, interleave_tables, AdcJob, LANES};
    let (m, kc, nq) = (pq.m, 1usize << pq.nbits, q.rows());
    let rb = crate::core::quantize::pq_row_bytes(m, pq.nbits);
    let order = metric.order();
    let w = m * kc;
    let tables = pq_tables(pq, q, metric);
    let groups: Vec<_> = tables
        .chunks(w * LANES)
        .map(|g| interleave_tables(&g.chunks(w).collect::<Vec<_>>(), w))
        .collect();
    // Enough items for every thread, chunks of at least 4,096 rows.
    let want = 4 * rayon::current_num_threads();
    let chunks = want.div_ceil(groups.len()).min(rows.div_ceil(4096)).max(1);
    let chunk_len = rows.div_ceil(chunks);
    let items: Vec<(usize, usize)> = (0..groups.len())
        .flat_map(|g| (0..chunks).map(move |c| (g, c)))
        .collect();
    let partial: Vec<Neighbors> = items
        .par_iter()
        .map(|&(g, c)| {
            let (qs, qe) = (g * LANES, ((g + 1) * LANES).min(nq));
            let (s, e) = ((c * chunk_len).min(rows), ((c + 1) * chunk_len).min(rows));
            let mut bufs: Vec<TopKBuffer> = (qs..qe)
                .map(|_| TopKBuffer::with_slack(k, order, ADC_SLACK))
                .collect();
            let job = AdcJob {
                lut: &groups[g],
                codes: &bytes[s * rb..e * rb],
                row_bytes: rb,
                m,
                nbits: pq.nbits,
                first: s,
                rows: e - s,
                largest: order == crate::core::neighbors::Order::Largest,
            };
            adc_scan(&job, &mut bufs);
            finish(bufs, k, order)
        })
        .collect();
    combine(partial, chunks, k, order)
}

impl QuantizeBackend for Cpu {
    fn column_ranges(
        &self,
        data: &Input<'_>,
        clip: Option<f32>,
        symmetric: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let m = host_f32(data)?;
        Ok(match clip {
            None => column_ranges(m),
            Some(p) => column_quantiles(m, p, symmetric),
        })
    }

    fn column_means(&self, data: &Input<'_>) -> Result<Vec<f32>> {
        Ok(column_means(host_f32(data)?))
    }

    fn sq_encode(&self, sq: &ScalarQuantizer, data: &Input<'_>) -> Result<ScalarCodes> {
        Ok(sq_encode(sq, host_f32(data)?))
    }

    fn sq_decode(
        &self,
        sq: &ScalarQuantizer,
        codes: &ScalarCodes,
        rows: Range<usize>,
    ) -> Result<DeviceMatrix> {
        let m = sq_decode(sq, codes, rows.start, rows.end);
        Ok(DeviceMatrix::from_host_f32(m.into_vec(), sq.dim))
    }

    fn bq_encode(&self, thresholds: &[f32], data: &Input<'_>) -> Result<DeviceMatrix> {
        let b = bq_encode(thresholds, host_f32(data)?);
        Ok(DeviceMatrix::from_host_binary(b))
    }

    fn pq_encode(&self, pq: &ProductQuantizer, data: &Input<'_>) -> Result<PqCodes> {
        let x = host_f32(data)?;
        let (codes, _) = nearest_centroids(x, &pq.centroids, pq.m, pq.dsub, 1 << pq.nbits);
        Ok(PqCodes {
            rows: x.rows(),
            m: pq.m,
            nbits: pq.nbits,
            bytes: Store::Host(pack_codes(&codes, pq.m, pq.nbits)),
        })
    }

    fn pq_decode(&self, pq: &ProductQuantizer, codes: &PqCodes) -> Result<DeviceMatrix> {
        let m = pq_decode(pq, &codes.bytes.to_vec()?, codes.rows);
        Ok(DeviceMatrix::from_host_f32(m.into_vec(), pq.dim))
    }

    fn pq_search(
        &self,
        pq: &ProductQuantizer,
        queries: MatrixView<'_>,
        codes: &PqCodes,
        k: usize,
        metric: Metric,
    ) -> Result<Neighbors> {
        let bytes = codes.bytes.host().ok_or_else(|| Error::DeviceMismatch {
            data: codes.device().to_string(),
            context: "cpu".into(),
        })?;
        Ok(pq_search(pq, queries, bytes, codes.rows, k, metric))
    }

    fn pair_distances(
        &self,
        (queries, base): (&Input<'_>, &Input<'_>),
        ids: &[u64],
        per_query: usize,
        metric: Metric,
    ) -> Result<Vec<f32>> {
        let (q, x) = (host_f32(queries)?, host_f32(base)?);
        Ok(pair_distances(q, x, ids, per_query, metric))
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    //! The vectorised kernels against the scalar loops, bit for bit.

    use super::*;
    use crate::core::quantize::ScalarOptions;
    use crate::cpu::test_data::{awkward, bits_of, skip, values};

    const DIMS: [usize; 12] = [1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 100, 129];

    #[test]
    fn sq_encode_matches_scalar() {
        if skip() {
            return;
        }
        for &d in &DIMS {
            let rows = 37;
            let x = awkward(rows * d, d as u64);
            let m = MatrixView::new(&x, d).unwrap();
            for bits in [ScalarBits::Int8, ScalarBits::Int4] {
                for range in [ScalarRange::Symmetric, ScalarRange::Asymmetric] {
                    for scope in [ScalarScope::PerChannel, ScalarScope::PerVector] {
                        let mut opts = ScalarOptions::int8().with_range(range).with_scope(scope);
                        opts.bits = bits;
                        let (lo, hi) = column_ranges(m);
                        let mut sq = ScalarQuantizer {
                            opts,
                            dim: d,
                            scale: vec![],
                            inv: vec![],
                            offset: vec![],
                        };
                        for j in 0..d {
                            // A zero-scale column (inv 0) and huge ones too.
                            let (l, h) = match j % 5 {
                                4 => (0.0, 0.0),
                                3 => (-3e38, 3e38),
                                _ => (lo[j], hi[j]),
                            };
                            let (s, i, o) = params(l, h, bits, range);
                            sq.scale.push(s);
                            sq.inv.push(i);
                            sq.offset.push(o);
                        }
                        let a = sq_encode_with(&sq, m, true);
                        let b = sq_encode_with(&sq, m, false);
                        let what = format!("d {d} {bits:?} {range:?} {scope:?}");
                        assert_eq!(a.bytes.host(), b.bytes.host(), "{what}");
                        let p = |c: &ScalarCodes| {
                            c.params.as_ref().map(|(s, o)| {
                                let bits =
                                    |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                                (bits(s.host().unwrap()), bits(o.host().unwrap()))
                            })
                        };
                        assert_eq!(p(&a), p(&b), "{what}");
                    }
                }
            }
        }
    }

    fn quantizer(dim: usize, m: usize, nbits: u32, seed: u64) -> ProductQuantizer {
        let ds = dim.div_ceil(m);
        let mut c = values(m * (1 << nbits) * ds, seed);
        // Coarse values make equal sums (ties) common.
        for v in c.iter_mut().step_by(3) {
            *v = v.round();
        }
        ProductQuantizer::from_centroids(dim, m, nbits, c).unwrap()
    }

    fn random_codes(rows: usize, m: usize, nbits: u32, seed: u64) -> Vec<u8> {
        let codes: Vec<u32> = values(rows * m, seed)
            .iter()
            .map(|v| ((v + 4.0) * 1e6) as u32 % (1 << nbits))
            .collect();
        crate::core::quantize::pack_codes(&codes, m, nbits)
    }

    #[test]
    fn pq_search_matches_scalar() {
        if skip() {
            return;
        }
        for &(dim, m, nbits) in &[
            (8, 4, 8),
            (16, 16, 8),
            (12, 3, 4),
            (10, 5, 5),
            (9, 3, 7),
            (6, 2, 10),
            (4, 1, 12),
        ] {
            let pq = quantizer(dim, m, nbits, dim as u64);
            for nq in [1, 2, 3, 15, 16, 17, 33] {
                for rows in [1, 5, 16, 17, 1000, 9001] {
                    let bytes = random_codes(rows, m, nbits, (rows + nq) as u64);
                    let mut qv = values(nq * dim, nq as u64 + 1);
                    if nq > 2 {
                        qv[dim] = f32::NAN;
                        qv[2 * dim] = f32::INFINITY;
                    }
                    let q = MatrixView::new(&qv, dim).unwrap();
                    for k in [1, 10, 20] {
                        for metric in [Metric::L2, Metric::InnerProduct] {
                            let a = pq_search_with(&pq, q, (&bytes, rows), (k, metric), true);
                            let b = pq_search_with(&pq, q, (&bytes, rows), (k, metric), false);
                            let what = format!("dim {dim} m {m} nbits {nbits} nq {nq} rows {rows} k {k} {metric:?}");
                            let (ai, ad) = (a.ids().to_vec(), bits_of(a.distances()));
                            assert_eq!(ai, b.ids().to_vec(), "{what}");
                            assert_eq!(ad, bits_of(b.distances()), "{what}");
                        }
                    }
                }
            }
        }
    }
}

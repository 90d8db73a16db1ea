//! AVX-512 forms of the quantization kernels of [`super::quantize`]. Each
//! vectorises across independent items (values of a row, centroids of a
//! codebook, queries of a group) and keeps every item's own arithmetic:
//! the same operations in the same order, no fused multiply-add, so the
//! results are bit for bit those of the scalar loops.

use std::arch::x86_64::*;

/// Whether this machine runs these kernels.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// Lanes of one vector.
pub(crate) const LANES: usize = 16;

/// Where the scalar-quantizer parameters of a row come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SqParams<'a> {
    /// Per channel: `inv[j]` and `offset[j]`.
    Channel { inv: &'a [f32], offset: &'a [f32] },
    /// Per vector: one `(inv, offset)` for the whole row.
    Row { inv: f32, offset: f32 },
}

/// The low byte of every value's code (`encode_value(..) as u8`) of one row
/// into `out` (`out.len() == r.len()`).
pub(crate) fn sq_codes(r: &[f32], p: SqParams<'_>, qmin: f32, qmax: f32, out: &mut [u8]) {
    assert!(available());
    assert_eq!(out.len(), r.len());
    if let SqParams::Channel { inv, offset } = p {
        assert!(inv.len() >= r.len() && offset.len() >= r.len());
    }
    // SAFETY: AVX-512F was detected; every access is within `r`, `out` and
    // the parameter slices (lengths checked above; the tail is masked).
    unsafe { sq_codes_avx512(r, p, qmin, qmax, out) }
}

#[target_feature(enable = "avx512f")]
unsafe fn sq_codes_avx512(r: &[f32], p: SqParams<'_>, qmin: f32, qmax: f32, out: &mut [u8]) {
    let (lo, hi) = (_mm512_set1_ps(qmin), _mm512_set1_ps(qmax));
    let n = r.len();
    let mut j = 0;
    while j < n {
        let mask: u16 = if n - j >= LANES {
            0xFFFF
        } else {
            (1u16 << (n - j)) - 1
        };
        let x = _mm512_maskz_loadu_ps(mask, r.as_ptr().add(j));
        let (inv, off) = match p {
            SqParams::Channel { inv, offset } => (
                _mm512_maskz_loadu_ps(mask, inv.as_ptr().add(j)),
                _mm512_maskz_loadu_ps(mask, offset.as_ptr().add(j)),
            ),
            SqParams::Row { inv, offset } => (_mm512_set1_ps(inv), _mm512_set1_ps(offset)),
        };
        let c = encode16(x, inv, off, lo, hi);
        _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(j) as *mut _, mask, c);
        j += LANES;
    }
}

/// 16 values of [`encode_value`](super::quantize::encode_value): NaN reads
/// as 0; `rint((x - offset) * inv)`; `max` then `min` with the code range,
/// where `max` drops a NaN product (inf * 0) as `f32::max` does.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn encode16(x: __m512, inv: __m512, off: __m512, lo: __m512, hi: __m512) -> __m512i {
    let x = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(x, x), x);
    let t = _mm512_mul_ps(_mm512_sub_ps(x, off), inv);
    let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
    // vmaxps returns its second operand when either is NaN.
    let t = _mm512_max_ps(t, lo);
    let t = _mm512_min_ps(t, hi);
    _mm512_cvttps_epi32(t)
}

/// Sub-space codebooks transposed for [`nearest_in_book`]: book `j` is laid
/// out `[ds][kc]` (centroid index fastest).
pub(crate) fn transpose_books(centroids: &[f32], m: usize, ds: usize, kc: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * kc * ds];
    for j in 0..m {
        let (src, dst) = (
            &centroids[j * kc * ds..(j + 1) * kc * ds],
            &mut out[j * kc * ds..(j + 1) * kc * ds],
        );
        for (c, cv) in src.chunks_exact(ds).enumerate() {
            for (t, &v) in cv.iter().enumerate() {
                dst[t * kc + c] = v;
            }
        }
    }
    out
}

/// The nearest of the `kc` centroids of one transposed book (`[ds][kc]`,
/// `kc` a multiple of 16) to the sub-vector `xs` (`ds` values): index and
/// squared L2, each centroid's `sum (x_t - c_t)^2` taken in order `t = 0..ds`
/// from 0 without fused multiply-add; ties (and all-infinite) go to the
/// smaller index as in the scalar loop.
pub(crate) fn nearest_in_book(book: &[f32], xs: &[f32], kc: usize) -> (u32, f32) {
    assert!(available());
    assert!(kc.is_multiple_of(LANES) && kc > 0);
    assert!(book.len() >= kc * xs.len());
    // SAFETY: AVX-512F was detected; the book holds `ds` rows of `kc`
    // values (checked above) and every load is 16 values inside a row.
    unsafe { nearest_in_book_avx512(book, xs, kc) }
}

#[target_feature(enable = "avx512f")]
unsafe fn nearest_in_book_avx512(book: &[f32], xs: &[f32], kc: usize) -> (u32, f32) {
    let b = book.as_ptr();
    let mut best = _mm512_set1_ps(f32::INFINITY);
    let mut bidx = _mm512_setzero_si512();
    let mut c0 = 0;
    // Four groups of 16 centroids at a time (independent sums), then one.
    while c0 + 4 * LANES <= kc {
        let acc = book_sums::<4>(b.add(c0), xs, kc);
        keep_smaller(&acc, c0, &mut best, &mut bidx);
        c0 += 4 * LANES;
    }
    while c0 < kc {
        let acc = book_sums::<1>(b.add(c0), xs, kc);
        keep_smaller(&acc, c0, &mut best, &mut bidx);
        c0 += LANES;
    }
    argmin_lanes(best, bidx)
}

/// `sum_t (x_t - c_t)^2` of `G` groups of 16 consecutive centroids starting
/// at `b` (row stride `kc`), in order `t = 0..` from 0, no fused multiply-add.
#[inline(always)]
unsafe fn book_sums<const G: usize>(b: *const f32, xs: &[f32], kc: usize) -> [__m512; G] {
    let mut acc = [_mm512_setzero_ps(); G];
    for (t, &xv) in xs.iter().enumerate() {
        let x = _mm512_set1_ps(xv);
        let row = b.add(t * kc);
        for (g, a) in acc.iter_mut().enumerate() {
            let e = _mm512_sub_ps(x, _mm512_loadu_ps(row.add(g * LANES)));
            *a = _mm512_add_ps(*a, _mm512_mul_ps(e, e));
        }
    }
    acc
}

/// Per lane, keeps the smaller of the running best and each group's sum
/// (groups in index order, strictly smaller wins: ties keep the smaller
/// index; NaN never wins).
#[inline(always)]
unsafe fn keep_smaller(acc: &[__m512], c0: usize, best: &mut __m512, bidx: &mut __m512i) {
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (g, a) in acc.iter().enumerate() {
        let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(*a, *best);
        *best = _mm512_mask_mov_ps(*best, lt, *a);
        let idx = _mm512_add_epi32(lane, _mm512_set1_epi32((c0 + g * LANES) as i32));
        *bidx = _mm512_mask_mov_epi32(*bidx, lt, idx);
    }
}

/// The smallest lane value and, among the lanes holding it, the smallest
/// index.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn argmin_lanes(best: __m512, bidx: __m512i) -> (u32, f32) {
    let m = _mm512_reduce_min_ps(best);
    let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best, _mm512_set1_ps(m));
    let idx = _mm512_mask_mov_epi32(_mm512_set1_epi32(-1), eq, bidx);
    (_mm512_reduce_min_epu32(idx), m)
}

/// Lookup tables of up to 16 queries interleaved: entry `(j, c)` holds the
/// 16 queries' values side by side (one aligned vector).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Lanes(pub [f32; LANES]);

/// Interleaves the lookup tables (`m x kc` each) of up to 16 queries; lanes
/// of missing queries hold 0.
pub(crate) fn interleave_tables(tables: &[&[f32]], entries: usize) -> Vec<Lanes> {
    let mut out = vec![Lanes([0.0; LANES]); entries];
    for (q, t) in tables.iter().enumerate() {
        for (o, &v) in out.iter_mut().zip(t.iter()) {
            o.0[q] = v;
        }
    }
    out
}

/// One ADC scan: rows `first..first + rows` of packed codes against an
/// interleaved group of queries.
pub(crate) struct AdcJob<'a> {
    /// Interleaved tables ([`interleave_tables`]), `m x kc` entries.
    pub lut: &'a [Lanes],
    /// Packed code rows, `row_bytes` each, starting at row `first`.
    pub codes: &'a [u8],
    /// Bytes per code row.
    pub row_bytes: usize,
    /// Sub-spaces.
    pub m: usize,
    /// Bits per code.
    pub nbits: u32,
    /// Id of the first row.
    pub first: usize,
    /// Rows to scan.
    pub rows: usize,
    /// Whether larger values are better (inner product).
    pub largest: bool,
}

/// Offers every row's sum of table entries to the buffer of each query of
/// the group (`bufs.len() <= 16`): per query `0 + t[0][c_0] + t[1][c_1] + ...`
/// in sub-space order, as the scalar scan sums.
pub(crate) fn adc_scan(job: &AdcJob<'_>, bufs: &mut [super::select::TopKBuffer]) {
    assert!(available());
    assert!(!bufs.is_empty() && bufs.len() <= LANES);
    assert!(job.codes.len() >= job.rows * job.row_bytes);
    assert!(job.lut.len() >= job.m << job.nbits);
    assert!(job.row_bytes >= crate::core::quantize::pq_row_bytes(job.m, job.nbits));
    // SAFETY: AVX-512F was detected; every code read is inside its row and
    // every code indexes one of the `kc` entries of its sub-space.
    unsafe { adc_scan_avx512(job, bufs) }
}

#[target_feature(enable = "avx512f")]
unsafe fn adc_scan_avx512(job: &AdcJob<'_>, bufs: &mut [super::select::TopKBuffer]) {
    use crate::core::quantize::read_code;
    let (m, kc, rb) = (job.m, 1usize << job.nbits, job.row_bytes);
    let lut = job.lut.as_ptr() as *const f32;
    let valid: u16 = if bufs.len() == LANES {
        0xFFFF
    } else {
        (1u16 << bufs.len()) - 1
    };
    let mut worst = [f32::NAN; LANES];
    let mut wv = _mm512_loadu_ps(worst.as_ptr());
    for r in 0..job.rows {
        let row = &job.codes[r * rb..(r + 1) * rb];
        let mut acc = _mm512_setzero_ps();
        if job.nbits == 8 {
            for (j, &c) in row[..m].iter().enumerate() {
                let e = lut.add((j * kc + c as usize) * LANES);
                acc = _mm512_add_ps(acc, _mm512_load_ps(e));
            }
        } else {
            for j in 0..m {
                let c = read_code(row, j, job.nbits) as usize;
                acc = _mm512_add_ps(acc, _mm512_load_ps(lut.add((j * kc + c) * LANES)));
            }
        }
        // Lanes whose value is not rejected outright by the buffer's own
        // first test (NaN passes, as there).
        let pass = if job.largest {
            _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(valid, acc, wv)
        } else {
            _mm512_mask_cmp_ps_mask::<_CMP_NGT_UQ>(valid, acc, wv)
        };
        if pass != 0 {
            let mut vals = [0f32; LANES];
            _mm512_storeu_ps(vals.as_mut_ptr(), acc);
            let mut bits = pass;
            while bits != 0 {
                let q = bits.trailing_zeros() as usize;
                bufs[q].push(vals[q], (job.first + r) as u64);
                worst[q] = bufs[q].worst_value();
                bits &= bits - 1;
            }
            wv = _mm512_loadu_ps(worst.as_ptr());
        }
    }
}

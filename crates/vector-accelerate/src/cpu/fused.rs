//! Fused exact k-NN for L2, Euclidean and inner product on AVX-512: a
//! register-blocked dot-product kernel over packed operands whose results
//! go straight through a vectorised threshold test into the per-query top-k
//! buffers, so no distance tile is ever written.

use std::arch::x86_64::*;

use crate::core::matrix::MatrixView;
use crate::cpu::distance::sq_norm;
use crate::cpu::select::TopKBuffer;

/// 16-lane vectors of base rows per panel.
pub(crate) const P: usize = 2;
/// Base rows per panel.
pub(crate) const PANEL: usize = 16 * P;
/// Queries per register block.
pub(crate) const GROUP: usize = 12;
/// Coordinates per k-block.
const KC: usize = 256;

/// How a dot product becomes the returned value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `max(qn + xn - 2 dot, 0)`, smallest first.
    L2,
    /// The square root of [`Kind::L2`], smallest first.
    Euclidean,
    /// The dot product itself, largest first.
    Inner,
}

/// Whether this machine runs the fused kernel.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// Packs rows `[s, e)` of `x` into panels of [`PANEL`] rows, each laid out
/// `[k][PANEL]`; the last panel's missing rows are zero. With `norms`, also
/// fills it with the rows' squared norms (the same sums as
/// [`row_sq_norms`](super::distance::row_sq_norms)).
pub(crate) fn pack_base(
    x: MatrixView<'_>,
    s: usize,
    e: usize,
    out: &mut Vec<f32>,
    norms: Option<&mut Vec<f32>>,
) {
    const KB: usize = 16;
    let d = x.dim();
    let rows = e - s;
    let len = rows.div_ceil(PANEL) * PANEL * d;
    if out.len() < len {
        out.resize(len, 0.0);
    }
    if let Some(n) = norms {
        n.clear();
        n.extend((s..e).map(|r| sq_norm(x.row(r))));
    }
    for (p, dst) in out[..len].chunks_exact_mut(PANEL * d).enumerate() {
        let have = PANEL.min(rows - p * PANEL);
        // Coordinates in blocks so the written lines stay in L1.
        for k0 in (0..d).step_by(KB) {
            let k1 = (k0 + KB).min(d);
            for i in 0..have {
                let row = &x.row(s + p * PANEL + i)[k0..k1];
                for (k, &v) in (k0..k1).zip(row) {
                    dst[k * PANEL + i] = v;
                }
            }
            for i in have..PANEL {
                for k in k0..k1 {
                    dst[k * PANEL + i] = 0.0;
                }
            }
        }
    }
}

/// Packs all query rows into groups of [`GROUP`], each laid out
/// `[k][GROUP]`; missing rows of the last group are zero.
pub(crate) fn pack_queries(q: MatrixView<'_>) -> Vec<f32> {
    let d = q.dim();
    let groups = q.rows().div_ceil(GROUP);
    let mut out = vec![0f32; groups * GROUP * d];
    for (g, dst) in out.chunks_exact_mut(GROUP * d).enumerate() {
        for r in 0..GROUP.min(q.rows() - g * GROUP) {
            for (k, &v) in q.row(g * GROUP + r).iter().enumerate() {
                dst[k * GROUP + r] = v;
            }
        }
    }
    out
}

/// One packed base tile against packed query groups.
pub(crate) struct TileJob<'a> {
    /// The packed tile ([`pack_base`]).
    pub base: &'a [f32],
    /// Valid rows in the tile.
    pub rows: usize,
    /// Id of the tile's first row.
    pub first_id: usize,
    /// Squared norms of the tile's rows (L2 and Euclidean).
    pub xn: &'a [f32],
    /// Packed query groups of this block ([`pack_queries`]).
    pub queries: &'a [f32],
    /// Squared norms of this block's queries (L2 and Euclidean).
    pub qn: &'a [f32],
    /// Dimension.
    pub dim: usize,
}

/// Offers every (query, tile row) value of `job` to `bufs` (one per query
/// of the block).
pub(crate) fn run_tile(job: &TileJob<'_>, kind: Kind, bufs: &mut [TopKBuffer]) {
    assert!(available());
    assert!(job.base.len() >= job.rows.div_ceil(PANEL) * PANEL * job.dim);
    assert!(job.queries.len() >= bufs.len().div_ceil(GROUP) * GROUP * job.dim);
    assert!(job.xn.len() >= job.rows || kind == Kind::Inner);
    assert!(job.qn.len() >= bufs.len() || kind == Kind::Inner);
    // SAFETY: AVX-512F was detected; the packed operands cover every panel
    // and group read (checked above).
    unsafe { run_tile_avx512(job, kind, bufs) }
}

/// Dot products of one panel with one query group, `[query][vector]`.
pub(crate) type Acc = [[__m512; P]; GROUP];

/// [`run_tile`] once AVX-512F is known to be present: per query group, the
/// dot products of every panel (k-block by k-block), then the epilogue.
#[target_feature(enable = "avx512f")]
unsafe fn run_tile_avx512(job: &TileJob<'_>, kind: Kind, bufs: &mut [TopKBuffer]) {
    let d = job.dim;
    let panels = job.rows.div_ceil(PANEL);
    let mut acc: Vec<Acc> = vec![[[_mm512_setzero_ps(); P]; GROUP]; panels];
    for (g, gbufs) in bufs.chunks_mut(GROUP).enumerate() {
        let qg = job.queries.as_ptr().add(g * GROUP * d);
        // k-blocks: the group's slice stays in L1 while the panels stream.
        let mut k0 = 0;
        while k0 < d {
            let len = KC.min(d - k0);
            for (p, a) in acc.iter_mut().enumerate() {
                let base = job.base.as_ptr().add(p * PANEL * d + k0 * PANEL);
                if k0 == 0 {
                    *a = [[_mm512_setzero_ps(); P]; GROUP];
                }
                dots(base, qg.add(k0 * GROUP), len, a);
            }
            k0 += len;
        }
        for (p, a) in acc.iter().enumerate() {
            let j0 = p * PANEL;
            for (r, buf) in gbufs.iter_mut().enumerate() {
                let qn = if kind == Kind::Inner {
                    0.0
                } else {
                    job.qn[g * GROUP + r]
                };
                for (v, &dot) in a[r].iter().enumerate() {
                    let j = j0 + 16 * v;
                    if j >= job.rows {
                        break;
                    }
                    offer(dot, kind, qn, job, j, buf);
                }
            }
        }
    }
}

/// Adds the dot products over `len` coordinates of one packed panel slice
/// (`a`, `[k][PANEL]`) and one packed group slice (`b`, `[k][GROUP]`).
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn dots(a: *const f32, b: *const f32, len: usize, out: &mut Acc) {
    let mut acc = *out;
    for k in 0..len {
        let mut av = [_mm512_setzero_ps(); P];
        for (v, x) in av.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(a.add(k * PANEL + 16 * v));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let bv = _mm512_set1_ps(*b.add(k * GROUP + r));
            for (v, c) in row.iter_mut().enumerate() {
                *c = _mm512_fmadd_ps(av[v], bv, *c);
            }
        }
    }
    *out = acc;
}

/// Turns 16 dot products of one query into values (the same fp32 formulas
/// as the scalar epilogue) and pushes those that may enter `buf`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn offer(
    dot: __m512,
    kind: Kind,
    qn: f32,
    job: &TileJob<'_>,
    j: usize,
    buf: &mut TopKBuffer,
) {
    let left = job.rows - j;
    let valid: u16 = if left >= 16 {
        0xFFFF
    } else {
        (1u16 << left) - 1
    };
    let worst = _mm512_set1_ps(buf.worst_value());
    let (vals, mask) = match kind {
        Kind::Inner => (
            dot,
            _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(valid, dot, worst),
        ),
        _ => {
            let xn = _mm512_maskz_loadu_ps(valid, job.xn.as_ptr().add(j));
            let s = _mm512_add_ps(_mm512_set1_ps(qn), xn);
            let t = _mm512_sub_ps(s, _mm512_mul_ps(_mm512_set1_ps(2.0), dot));
            // (0 > t) ? 0 : t keeps NaN and -0.0 like the scalar clamp.
            let t = _mm512_max_ps(_mm512_setzero_ps(), t);
            let t = if kind == Kind::Euclidean {
                _mm512_sqrt_ps(t)
            } else {
                t
            };
            (t, _mm512_mask_cmp_ps_mask::<_CMP_NGT_UQ>(valid, t, worst))
        }
    };
    if mask == 0 {
        return;
    }
    let mut tmp = [0f32; 16];
    _mm512_storeu_ps(tmp.as_mut_ptr(), vals);
    let mut m = mask;
    while m != 0 {
        let l = m.trailing_zeros() as usize;
        buf.push(tmp[l], (job.first_id + j + l) as u64);
        m &= m - 1;
    }
}

//! Fused exact k-NN for L2, Euclidean, inner product and cosine on
//! AVX-512: a register-blocked dot-product kernel over packed operands whose
//! results go straight through a vectorised threshold test into the
//! per-query top-k buffers, so no distance tile is ever written. Cosine
//! runs on rows scaled to unit length (the base while it is packed), so its
//! values are clamped dot products.

use std::arch::x86_64::*;

use crate::core::matrix::MatrixView;
use crate::cpu::distance::sq_norm;
use crate::cpu::select::TopKBuffer;
use crate::cpu::vector::unit_scale;

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
    /// `1 - clamp(dot, -1, 1)` of unit rows, smallest first.
    Cosine,
    /// `clamp(dot, -1, 1)` of unit rows, largest first.
    CosineSimilarity,
}

impl Kind {
    /// Whether the values need the rows' squared norms.
    pub(crate) fn needs_norms(self) -> bool {
        matches!(self, Kind::L2 | Kind::Euclidean)
    }

    /// Whether larger values rank first.
    pub(crate) fn largest_first(self) -> bool {
        matches!(self, Kind::Inner | Kind::CosineSimilarity)
    }
}

/// What [`pack_base`] does besides copying the rows.
pub(crate) enum Prep<'a> {
    /// Nothing.
    Copy,
    /// Fills the vector with the rows' squared norms (the same sums as
    /// [`row_sq_norms`](super::distance::row_sq_norms)).
    SqNorms(&'a mut Vec<f32>),
    /// Scales each row to unit length as the `normalize` operation does
    /// (`x * (1 / |x|)` in f64; a zero row stays zero, NaN spreads).
    Normalize,
}

/// Whether this machine runs the fused kernel.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// Packs rows `[s, e)` of `x` into panels of [`PANEL`] rows, each laid out
/// `[k][PANEL]`; the last panel's missing rows are zero. `prep` says what
/// else is done on the way.
pub(crate) fn pack_base(x: MatrixView<'_>, s: usize, e: usize, out: &mut Vec<f32>, prep: Prep<'_>) {
    let d = x.dim();
    let len = (e - s).div_ceil(PANEL) * PANEL * d;
    if out.len() < len {
        out.resize(len, 0.0);
    }
    let normalize = matches!(prep, Prep::Normalize);
    if let Prep::SqNorms(n) = prep {
        n.clear();
        n.extend((s..e).map(|r| sq_norm(x.row(r))));
    }
    assert!(!normalize || available());
    let mut unit = Vec::new();
    for (p, dst) in out[..len].chunks_exact_mut(PANEL * d).enumerate() {
        let first = s + p * PANEL;
        let panel = x.slice_rows(first, (first + PANEL).min(e));
        let src = if normalize {
            // SAFETY: AVX-512F was detected (asserted above).
            unsafe { scale_to_unit(panel, &mut unit) };
            &unit[..]
        } else {
            panel.as_slice()
        };
        pack_panel(src, d, dst);
    }
}

/// Packs the rows of `src` (row-major, rows of `d`, at most [`PANEL`]) into
/// one panel `[k][PANEL]`, zero beyond the last row.
fn pack_panel(src: &[f32], d: usize, dst: &mut [f32]) {
    const KB: usize = 16;
    let have = src.len() / d;
    // Coordinates in blocks so the written lines stay in L1.
    for k0 in (0..d).step_by(KB) {
        let k1 = (k0 + KB).min(d);
        for i in 0..have {
            let row = &src[i * d + k0..i * d + k1];
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

/// Writes the rows of `panel` scaled to unit length to `out` (row-major),
/// as the `normalize` operation does: `x * (1 / |x|)` in f64, a zero row
/// stays zero. A separate contiguous pass, so the scaling runs in vectors
/// before the strided packing.
#[target_feature(enable = "avx512f")]
unsafe fn scale_to_unit(panel: MatrixView<'_>, out: &mut Vec<f32>) {
    out.clear();
    out.resize(panel.as_slice().len(), 0.0);
    for (dst, row) in out
        .chunks_exact_mut(panel.dim())
        .zip(panel.as_slice().chunks_exact(panel.dim()))
    {
        let f = unit_scale(row).unwrap_or(1.0);
        for (o, &v) in dst.iter_mut().zip(row) {
            *o = (v as f64 * f) as f32;
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
    /// Squared norms of the tile's rows (L2 and Euclidean; else unused).
    pub xn: &'a [f32],
    /// Packed query groups of this block ([`pack_queries`]).
    pub queries: &'a [f32],
    /// Squared norms of this block's queries (L2 and Euclidean; else unused).
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
    assert!(job.xn.len() >= job.rows || !kind.needs_norms());
    assert!(job.qn.len() >= bufs.len() || !kind.needs_norms());
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
                let qn = if kind.needs_norms() {
                    job.qn[g * GROUP + r]
                } else {
                    0.0
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

/// What cosine's threshold test compares with the k-th best: the returned
/// value for dot products up to 1 (`1 - max(-1, dot)`, or `max(-1, dot)`
/// for similarity), and one at least as good above 1, so nothing that may
/// enter is dropped and `push` decides exactly.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn cosine_tested(dot: __m512, kind: Kind) -> __m512 {
    // max returns its second operand for NaN, so NaN passes.
    let low = _mm512_max_ps(_mm512_set1_ps(-1.0), dot);
    if kind == Kind::Cosine {
        _mm512_sub_ps(_mm512_set1_ps(1.0), low)
    } else {
        low
    }
}

/// The returned cosine value from [`cosine_tested`]: `1 - clamp(dot, -1,
/// 1)` or `clamp(dot, -1, 1)` bit for bit, NaN and -0.0 included.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn cosine_value(tested: __m512, kind: Kind) -> __m512 {
    if kind == Kind::Cosine {
        _mm512_max_ps(_mm512_setzero_ps(), tested)
    } else {
        _mm512_min_ps(_mm512_set1_ps(1.0), tested)
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
/// as the scalar epilogue) and pushes those that may enter `buf`. Cosine
/// tests [`cosine_tested`] and maps only blocks with a survivor, so it
/// costs about what inner product does.
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
    let worst = buf.worst_value();
    let (vals, mask) = match kind {
        Kind::Inner => (
            dot,
            _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(valid, dot, _mm512_set1_ps(worst)),
        ),
        Kind::Cosine | Kind::CosineSimilarity => {
            let t = cosine_tested(dot, kind);
            let worst = _mm512_set1_ps(worst);
            let mask = if kind == Kind::Cosine {
                _mm512_mask_cmp_ps_mask::<_CMP_NGT_UQ>(valid, t, worst)
            } else {
                _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(valid, t, worst)
            };
            if mask == 0 {
                return;
            }
            (cosine_value(t, kind), mask)
        }
        Kind::L2 | Kind::Euclidean => {
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
            let worst = _mm512_set1_ps(worst);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar epilogue's cosine values.
    fn scalar_value(kind: Kind, dot: f32) -> f32 {
        let c = if dot.is_nan() {
            dot
        } else {
            dot.clamp(-1.0, 1.0)
        };
        if kind == Kind::Cosine {
            1.0 - c
        } else {
            c
        }
    }

    #[test]
    fn cosine_test_drops_nothing_that_may_enter_and_values_match() {
        if !available() {
            return;
        }
        let one_up = f32::from_bits(1f32.to_bits() + 1);
        let mut dots = vec![
            f32::NAN,
            0.0,
            -0.0,
            1.0,
            -1.0,
            one_up,
            -one_up,
            1.5,
            -2.0,
            0.3,
            -0.7,
            1e-8,
        ];
        dots.extend((0..36).map(|i| -1.2 + i as f32 * 0.07));
        dots.resize(dots.len().div_ceil(16) * 16, 0.5);
        let worsts = [0.0f32, 1e-7, 0.5, 1.0, 1.9, 2.0, -1.0, -0.5, 0.99, f32::NAN];
        for kind in [Kind::Cosine, Kind::CosineSimilarity] {
            for block in dots.chunks_exact(16) {
                let (mut tested, mut value) = ([0f32; 16], [0f32; 16]);
                // SAFETY: AVX-512F was detected above.
                unsafe {
                    let t = cosine_tested(_mm512_loadu_ps(block.as_ptr()), kind);
                    _mm512_storeu_ps(tested.as_mut_ptr(), t);
                    _mm512_storeu_ps(value.as_mut_ptr(), cosine_value(t, kind));
                }
                for l in 0..16 {
                    let want = scalar_value(kind, block[l]);
                    assert_eq!(value[l].to_bits(), want.to_bits(), "{kind:?} {}", block[l]);
                    for w in worsts {
                        // Push drops only values strictly worse than `w`;
                        // the test may drop no more.
                        let worse = |v: f32| if kind == Kind::Cosine { v > w } else { v < w };
                        assert!(
                            !worse(tested[l]) || worse(want),
                            "{kind:?} dot {} worst {w}",
                            block[l]
                        );
                    }
                }
            }
        }
    }
}

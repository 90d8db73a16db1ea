//! CPU vector utilities (the reference): element-wise chains, broadcast
//! binary operations, row normalisation, reductions (f64 accumulation in a
//! fixed order, so results do not depend on the thread count) and row-wise
//! log-sum-exp / softmax. Hot loops are compiled twice: portable, and with
//! AVX-512 enabled when the processor has it.

use std::ops::Range;

use rayon::prelude::*;

use crate::core::error::Result;
use crate::core::matrix::MatrixView;
use crate::core::vector::{Axis, Binary, Kind, Unary};
use crate::cpu::host::{host_f32, host_f32_mut};
use crate::cpu::vmath;
use crate::runtime::backend::{Cpu, ReducePlan, VectorBackend};
use crate::runtime::input::{Broadcast, Input};
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

/// Elements per parallel task of the flat loops (a fixed split: results do
/// not depend on the number of threads).
const CHUNK: usize = 1 << 14;

/// Compiles `$generic` (an `#[inline(always)]` function) again with
/// AVX-512 enabled, and with AVX2 + FMA enabled, and picks the widest copy
/// the processor supports at run time.
macro_rules! simd_dispatch {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? => $generic:ident) => {
        $(#[$m])*
        fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    #[target_feature(enable = "avx512f")]
                    unsafe fn wide($($a: $t),*) $(-> $r)? {
                        $generic($($a),*)
                    }
                    // SAFETY: the processor supports AVX-512F (checked above).
                    return unsafe { wide($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2($($a: $t),*) $(-> $r)? {
                        $generic($($a),*)
                    }
                    // SAFETY: the processor supports AVX2 and FMA (checked above).
                    return unsafe { avx2($($a),*) };
                }
            }
            $generic($($a),*)
        }
    };
}

// ---------------------------------------------------------------- element-wise

/// Logistic function without overflow for large `|x|` (see [`vmath::sigmoid`]).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    vmath::sigmoid(x)
}

/// `sin(x)` or `cos(x)`: the vectorisable reduction up to `TRIG_MAX`, the
/// system `libm` beyond (and for infinities).
#[inline(always)]
fn sin_cos(x: f32, cos: bool) -> f32 {
    if x.abs() <= vmath::TRIG_MAX {
        vmath::sin_cos_reduced(x, cos)
    } else if cos {
        x.cos()
    } else {
        x.sin()
    }
}

/// One unary step (the kernel's `va_unary` computes the same formulas).
#[inline(always)]
pub(crate) fn unary(op: Unary, x: f32) -> f32 {
    match op {
        Unary::Add(c) => x + c,
        Unary::Mul(c) => x * c,
        Unary::Pow(p) => x.powf(p),
        Unary::Clamp(lo, hi) => {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        }
        Unary::Abs => x.abs(),
        Unary::Square => x * x,
        Unary::Sqrt => x.sqrt(),
        Unary::Reciprocal => 1.0 / x,
        Unary::Neg => -x,
        Unary::Exp => vmath::exp(x),
        Unary::Log => vmath::ln(x),
        Unary::Sin => sin_cos(x, false),
        Unary::Cos => sin_cos(x, true),
        Unary::Tan => x.tan(),
        Unary::Tanh => vmath::tanh(x),
        Unary::Sigmoid => sigmoid(x),
        Unary::Relu => {
            if x > 0.0 || x.is_nan() {
                x
            } else {
                0.0
            }
        }
        Unary::Gelu => (0.5 * x) * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2),
    }
}

/// One binary operation (the kernel's `va_binary`).
#[inline(always)]
pub(crate) fn binary_op(op: Binary, a: f32, b: f32) -> f32 {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Pow => a.powf(b),
        Binary::Max => {
            if a.is_nan() {
                a
            } else if b.is_nan() || b > a {
                b
            } else {
                a
            }
        }
        Binary::Min => {
            if a.is_nan() {
                a
            } else if b.is_nan() || b < a {
                b
            } else {
                a
            }
        }
    }
}

/// Applies each step of `chain` to the whole (cache-resident) buffer in turn,
/// so that each step is a simple loop the compiler vectorises.
#[inline(always)]
fn chain_generic(chain: &[Unary], buf: &mut [f32]) {
    for &op in chain {
        match op {
            Unary::Add(c) => buf.iter_mut().for_each(|x| *x += c),
            Unary::Mul(c) => buf.iter_mut().for_each(|x| *x *= c),
            Unary::Abs => buf.iter_mut().for_each(|x| *x = x.abs()),
            Unary::Square => buf.iter_mut().for_each(|x| *x *= *x),
            Unary::Sqrt => buf.iter_mut().for_each(|x| *x = x.sqrt()),
            Unary::Reciprocal => buf.iter_mut().for_each(|x| *x = 1.0 / *x),
            Unary::Neg => buf.iter_mut().for_each(|x| *x = -*x),
            Unary::Exp => buf.iter_mut().for_each(|x| *x = vmath::exp(*x)),
            Unary::Log => buf.iter_mut().for_each(|x| *x = vmath::ln(*x)),
            Unary::Tanh => buf.iter_mut().for_each(|x| *x = vmath::tanh(*x)),
            Unary::Sigmoid => buf.iter_mut().for_each(|x| *x = vmath::sigmoid(*x)),
            Unary::Sin | Unary::Cos => {
                let cos = op == Unary::Cos;
                // Largest |x| as bits (NaN and inf above TRIG_MAX's).
                let top = buf
                    .iter()
                    .fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
                if top <= vmath::TRIG_MAX.to_bits() {
                    buf.iter_mut()
                        .for_each(|x| *x = vmath::sin_cos_reduced(*x, cos));
                } else {
                    buf.iter_mut().for_each(|x| *x = sin_cos(*x, cos));
                }
            }
            _ => buf.iter_mut().for_each(|x| *x = unary(op, *x)),
        }
    }
}

simd_dispatch!(fn chain_chunk(chain: &[Unary], buf: &mut [f32]) => chain_generic);

/// `buf = chain(buf)`, in parallel.
pub(crate) fn map_in_place(buf: &mut [f32], chain: &[Unary]) {
    if chain.is_empty() {
        return;
    }
    buf.par_chunks_mut(CHUNK)
        .for_each(|c| chain_chunk(chain, c));
}

/// `chain(x)` into a new buffer: each block is copied and mapped by the
/// same task while it is in cache (see [`output_buffer`] for the pages).
pub(crate) fn map(x: &[f32], chain: &[Unary]) -> Vec<f32> {
    let mut out = output_buffer(x.len());
    // Tasks of one huge page (2 MiB) each, so two threads never fault the
    // same page; blocks of CHUNK inside for the cache.
    out.par_chunks_mut(PAGE_CHUNK)
        .zip(x.par_chunks(PAGE_CHUNK))
        .for_each(|(o, c)| {
            for (o, c) in o.chunks_mut(CHUNK).zip(c.chunks(CHUNK)) {
                o.copy_from_slice(c);
                if !chain.is_empty() {
                    chain_chunk(chain, o);
                }
            }
        });
    out
}

/// Elements of one 2 MiB (huge) page: the task size of loops that fill a
/// fresh [`output_buffer`].
const PAGE_CHUNK: usize = 1 << 19;

/// A zeroed buffer of `n` floats for the parallel loops to fill. `vec![0.0;
/// n]` takes zeroed pages from the system lazily, so the tasks that write
/// the blocks share the page faults; on Linux a large buffer is advised to
/// use transparent huge pages (as NumPy does), 512 times fewer faults.
pub(crate) fn output_buffer(n: usize) -> Vec<f32> {
    let mut v = vec![0f32; n];
    #[cfg(target_os = "linux")]
    if n * 4 >= 4 << 20 {
        const PAGE: usize = 4096;
        let start = v.as_mut_ptr() as usize;
        let first = start.next_multiple_of(PAGE);
        let end = (start + n * 4) / PAGE * PAGE;
        if end > first {
            // SAFETY: [first, end) lies inside the buffer's allocation; the
            // advice changes only how its (untouched) pages are backed.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    v
}

/// How the right operand of a binary operation broadcasts over `[rows x dim]`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rhs<'a> {
    Scalar(f32),
    /// `b[i * row_stride + j * col_stride]` (strides 0 where `b` has size 1).
    Array {
        b: &'a [f32],
        row_stride: usize,
        col_stride: usize,
    },
}

/// What [`binary`] computes, the same for every block of rows.
#[derive(Debug, Clone, Copy)]
struct BinaryJob<'a> {
    /// Row length.
    dim: usize,
    /// The operation.
    op: Binary,
    /// Its right operand.
    rhs: Rhs<'a>,
    /// Unary steps applied to the result.
    chain: &'a [Unary],
}

/// `job` on the rows of `a` (the first of them row `first_row`) into `out`.
#[inline(always)]
fn binary_rows_generic(job: BinaryJob<'_>, a: &[f32], out: &mut [f32], first_row: usize) {
    let BinaryJob {
        dim,
        op,
        rhs,
        chain,
    } = job;
    for (r, (ar, or)) in a
        .chunks_exact(dim)
        .zip(out.chunks_exact_mut(dim))
        .enumerate()
    {
        let i = first_row + r;
        match rhs {
            Rhs::Scalar(s) => ar
                .iter()
                .zip(or.iter_mut())
                .for_each(|(x, o)| *o = binary_op(op, *x, s)),
            Rhs::Array {
                b,
                row_stride,
                col_stride: 0,
            } => {
                let s = b[i * row_stride];
                ar.iter()
                    .zip(or.iter_mut())
                    .for_each(|(x, o)| *o = binary_op(op, *x, s))
            }
            Rhs::Array { b, row_stride, .. } => {
                let br = &b[i * row_stride..i * row_stride + dim];
                ar.iter()
                    .zip(br)
                    .zip(or.iter_mut())
                    .for_each(|((x, y), o)| *o = binary_op(op, *x, *y))
            }
        }
    }
    chain_generic(chain, out);
}

simd_dispatch!(
    fn binary_rows(job: BinaryJob<'_>, a: &[f32], out: &mut [f32], first_row: usize)
        => binary_rows_generic
);

/// `out = chain(op(a, rhs))` for row-major `a` of rows of `dim` (`out` may
/// start as a copy of `a`: pass `None` for `a` to operate in place).
pub(crate) fn binary(
    a: Option<&[f32]>,
    out: &mut [f32],
    dim: usize,
    op: Binary,
    rhs: Rhs<'_>,
    chain: &[Unary],
) {
    let rows_per_task = (CHUNK / dim).max(1);
    let step = rows_per_task * dim;
    let job = BinaryJob {
        dim,
        op,
        rhs,
        chain,
    };
    match a {
        Some(a) => {
            // Tasks of about a huge page (see `map`), blocks of `step` inside.
            let per_task = (PAGE_CHUNK / step).max(1);
            out.par_chunks_mut(step * per_task)
                .zip(a.par_chunks(step * per_task))
                .enumerate()
                .for_each(|(t, (o, x))| {
                    for (b, (o, x)) in o.chunks_mut(step).zip(x.chunks(step)).enumerate() {
                        let first = (t * per_task + b) * rows_per_task;
                        binary_rows(job, x, o, first)
                    }
                })
        }
        None => out.par_chunks_mut(step).enumerate().for_each(|(t, o)| {
            let x = o.to_vec();
            binary_rows(job, &x, o, t * rows_per_task)
        }),
    }
}

// ---------------------------------------------------------------- normalisation

/// `sum x^2` in f64 (8 independent lanes, then a fixed tree).
#[inline(always)]
fn sq_sum_generic(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for l in 0..8 {
            let v = c[l] as f64;
            acc[l] += v * v;
        }
    }
    for (l, &v) in it.remainder().iter().enumerate() {
        acc[l] += v as f64 * v as f64;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

simd_dispatch!(fn sq_sum(x: &[f32]) -> f64 => sq_sum_generic);

/// Normalises one row in place and returns its norm: `x * (1 / |x|)` with
/// the norm and its inverse in f64; a zero row stays as it is.
#[inline(always)]
fn normalize_row(row: &mut [f32]) -> f32 {
    let norm = sq_sum(row).sqrt();
    if norm != 0.0 {
        let inv = 1.0 / norm;
        row.iter_mut().for_each(|v| *v = (*v as f64 * inv) as f32);
    }
    norm as f32
}

/// The factor [`normalize_row`] multiplies `row` by, `1 / |x|` in f64, or
/// `None` for a zero row (which stays as it is).
#[inline]
pub(crate) fn unit_scale(row: &[f32]) -> Option<f64> {
    let norm = sq_sum(row).sqrt();
    (norm != 0.0).then(|| 1.0 / norm)
}

/// Normalises every row of `data` (rows of `dim`) in place; returns the norms.
pub(crate) fn normalize_in_place(data: &mut [f32], dim: usize) -> Vec<f32> {
    let mut norms = vec![0f32; data.len() / dim];
    let rows_per_task = (CHUNK / dim).max(1);
    data.par_chunks_mut(rows_per_task * dim)
        .zip(norms.par_chunks_mut(rows_per_task))
        .for_each(|(d, n)| {
            for (row, nv) in d.chunks_exact_mut(dim).zip(n.iter_mut()) {
                *nv = normalize_row(row);
            }
        });
    norms
}

// ---------------------------------------------------------------- reductions

/// Index of "no element yet" in an extremum state.
const NONE: u64 = u64::MAX;

/// A partial reduction (`VaAcc` in the kernels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Acc {
    pub s1: f64,
    pub s2: f64,
    pub v: f32,
    pub idx: u64,
}

impl Acc {
    pub(crate) const EMPTY: Acc = Acc {
        s1: 0.0,
        s2: 0.0,
        v: 0.0,
        idx: NONE,
    };
}

/// Whether extremum state `a` wins over `b`: a NaN wins (the first NaN
/// among NaNs), then the better value, then the smaller index.
#[inline(always)]
fn better(a: &Acc, b: &Acc, max: bool) -> bool {
    if a.idx == NONE {
        return false;
    }
    if b.idx == NONE {
        return true;
    }
    let (an, bn) = (a.v.is_nan(), b.v.is_nan());
    if an || bn {
        return if an && bn { a.idx < b.idx } else { an };
    }
    if a.v != b.v {
        return if max { a.v > b.v } else { a.v < b.v };
    }
    a.idx < b.idx
}

/// Combines two partial reductions.
#[inline(always)]
pub(crate) fn merge(kind: Kind, a: Acc, b: Acc) -> Acc {
    match kind {
        Kind::Sum | Kind::Moments => Acc {
            s1: a.s1 + b.s1,
            s2: a.s2 + b.s2,
            ..Acc::EMPTY
        },
        Kind::Min | Kind::Max => {
            if better(&b, &a, kind == Kind::Max) {
                b
            } else {
                a
            }
        }
    }
}

/// Reduces contiguous elements whose first index is `base`.
#[inline(always)]
fn reduce_slice_generic(kind: Kind, x: &[f32], base: u64, shift: f64) -> Acc {
    match kind {
        Kind::Sum => {
            let mut acc = [0f64; 8];
            let mut it = x.chunks_exact(8);
            for c in &mut it {
                for l in 0..8 {
                    acc[l] += c[l] as f64;
                }
            }
            for (l, &v) in it.remainder().iter().enumerate() {
                acc[l] += v as f64;
            }
            Acc {
                s1: ((acc[0] + acc[4]) + (acc[1] + acc[5]))
                    + ((acc[2] + acc[6]) + (acc[3] + acc[7])),
                ..Acc::EMPTY
            }
        }
        Kind::Moments => {
            let (mut a1, mut a2) = ([0f64; 8], [0f64; 8]);
            let mut it = x.chunks_exact(8);
            for c in &mut it {
                for l in 0..8 {
                    let d = c[l] as f64 - shift;
                    a1[l] += d;
                    a2[l] += d * d;
                }
            }
            for (l, &v) in it.remainder().iter().enumerate() {
                let d = v as f64 - shift;
                a1[l] += d;
                a2[l] += d * d;
            }
            let t = |a: [f64; 8]| ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
            Acc {
                s1: t(a1),
                s2: t(a2),
                ..Acc::EMPTY
            }
        }
        Kind::Min | Kind::Max => {
            let max = kind == Kind::Max;
            // Lane-wise extremum and NaN flag, then the first position of
            // the winner (or of the first NaN).
            let mut m = [if max {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            }; 16];
            let mut nan = false;
            let mut it = x.chunks_exact(16);
            for c in &mut it {
                for l in 0..16 {
                    let v = c[l];
                    nan |= v.is_nan();
                    m[l] = if max {
                        if v > m[l] {
                            v
                        } else {
                            m[l]
                        }
                    } else if v < m[l] {
                        v
                    } else {
                        m[l]
                    };
                }
            }
            for &v in it.remainder() {
                nan |= v.is_nan();
                m[0] = if max { m[0].max(v) } else { m[0].min(v) };
            }
            let pos = if nan {
                x.iter().position(|v| v.is_nan())
            } else {
                let best = m
                    .iter()
                    .copied()
                    .reduce(|a, b| if max { a.max(b) } else { a.min(b) })
                    .unwrap_or(0.0);
                x.iter().position(|&v| v == best)
            }
            .unwrap_or(0);
            Acc {
                v: x[pos],
                idx: base + pos as u64,
                ..Acc::EMPTY
            }
        }
    }
}

simd_dispatch!(fn reduce_slice(kind: Kind, x: &[f32], base: u64, shift: f64) -> Acc => reduce_slice_generic);

/// Per-column partial of the columns `cols` of `x` over its rows `rows`
/// (visited in order).
#[inline(always)]
fn reduce_cols_generic(
    kind: Kind,
    x: MatrixView<'_>,
    rows: Range<usize>,
    cols: Range<usize>,
    shift: &[f32],
) -> Vec<Acc> {
    let (data, dim) = (x.as_slice(), x.dim());
    let (r0, r1, c0, c1) = (rows.start, rows.end, cols.start, cols.end);
    let rows = (r0..r1).map(|r| &data[r * dim + c0..r * dim + c1]);
    match kind {
        Kind::Sum | Kind::Moments => {
            let w = c1 - c0;
            let (mut s1, mut s2) = (vec![0f64; w], vec![0f64; w]);
            let shift = &shift[c0..c1];
            for row in rows {
                if kind == Kind::Sum {
                    for (a, &v) in s1.iter_mut().zip(row) {
                        *a += v as f64;
                    }
                } else {
                    for (((a, b), &v), &k) in s1.iter_mut().zip(s2.iter_mut()).zip(row).zip(shift) {
                        let d = v as f64 - k as f64;
                        *a += d;
                        *b += d * d;
                    }
                }
            }
            s1.iter()
                .zip(&s2)
                .map(|(&s1, &s2)| Acc {
                    s1,
                    s2,
                    ..Acc::EMPTY
                })
                .collect()
        }
        Kind::Min | Kind::Max => {
            let mut acc = vec![Acc::EMPTY; c1 - c0];
            for (r, row) in rows.enumerate() {
                let idx = (r0 + r) as u64;
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = merge(
                        kind,
                        *a,
                        Acc {
                            v,
                            idx,
                            ..Acc::EMPTY
                        },
                    );
                }
            }
            acc
        }
    }
}

simd_dispatch!(
    fn reduce_cols(kind: Kind, x: MatrixView<'_>, rows: Range<usize>, cols: Range<usize>, shift: &[f32]) -> Vec<Acc>
        => reduce_cols_generic
);

/// Partial states of a reduction: one per output element, each the
/// combination (in a fixed order) of fixed-size parts reduced in parallel.
/// `count` is the number of elements behind each state.
pub(crate) fn reduce(x: MatrixView<'_>, kind: Kind, axis: Axis) -> (Vec<Acc>, usize) {
    let (rows, dim, data) = (x.rows(), x.dim(), x.as_slice());
    match axis {
        Axis::All => {
            let shift = data[0] as f64;
            let parts: Vec<Acc> = data
                .par_chunks(CHUNK)
                .enumerate()
                .map(|(i, c)| reduce_slice(kind, c, (i * CHUNK) as u64, shift))
                .collect();
            let total = parts
                .into_iter()
                .reduce(|a, b| merge(kind, a, b))
                .unwrap_or(Acc::EMPTY);
            (vec![total], data.len())
        }
        Axis::PerRow => {
            let rows_per_task = (CHUNK / dim).max(1);
            let mut out = vec![Acc::EMPTY; rows];
            out.par_chunks_mut(rows_per_task)
                .zip(data.par_chunks(rows_per_task * dim))
                .for_each(|(o, d)| {
                    for (a, row) in o.iter_mut().zip(d.chunks_exact(dim)) {
                        *a = reduce_slice(kind, row, 0, row[0] as f64);
                    }
                });
            (out, dim)
        }
        Axis::PerColumn => {
            // Tasks of (row chunk, column block): at most 64 row chunks of
            // narrow matrices (partials stay small), whole columns of wide
            // ones; each column's chunks are combined in order.
            let shift = &data[..dim];
            let rc = if dim <= 4096 {
                rows.div_ceil(64).max(64)
            } else {
                rows
            };
            let cw = dim.min(1024);
            let (row_chunks, col_blocks) = (rows.div_ceil(rc), dim.div_ceil(cw));
            let parts: Vec<Vec<Acc>> = (0..row_chunks * col_blocks)
                .into_par_iter()
                .map(|t| {
                    let (rci, cb) = (t / col_blocks, t % col_blocks);
                    let (r0, c0) = (rci * rc, cb * cw);
                    let (r1, c1) = ((r0 + rc).min(rows), (c0 + cw).min(dim));
                    reduce_cols(kind, x, r0..r1, c0..c1, shift)
                })
                .collect();
            let mut out = Vec::with_capacity(dim);
            for cb in 0..col_blocks {
                let mut acc = parts[cb].clone();
                for rci in 1..row_chunks {
                    for (a, b) in acc.iter_mut().zip(&parts[rci * col_blocks + cb]) {
                        *a = merge(kind, *a, *b);
                    }
                }
                out.extend(acc);
            }
            (out, rows)
        }
    }
}

/// The value of a finished reduction (the kernels' `va_finish`): `op` 0 sum,
/// 1 mean, 2 variance, 3/4 min/max.
pub(crate) fn finish(a: &Acc, count: usize, op: u32, ddof: usize) -> f32 {
    let n = count as f64;
    match op {
        0 => a.s1 as f32,
        1 => (a.s1 / n) as f32,
        2 => {
            let v = (a.s2 - a.s1 * a.s1 / n) / (n - ddof as f64);
            (if v < 0.0 { 0.0 } else { v }) as f32
        }
        _ => a.v,
    }
}

// ---------------------------------------------------------------- softmax

/// The log-sum-exp of a row, with the semantics documented in
/// `ops::vector::softmax`. The row is overwritten: with its softmax when
/// `write`, else with scratch values (`e^(x - max)`).
#[inline(always)]
fn softmax_row_generic(row: &mut [f32], write: bool) -> f32 {
    // Maximum and NaN test in 16 independent lanes (vectorised).
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut nan = false;
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
            nan |= v.is_nan();
        }
    }
    for &v in chunks.remainder() {
        lanes[0] = if v > lanes[0] { v } else { lanes[0] };
        nan |= v.is_nan();
    }
    let m = lanes
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    if nan {
        row.fill(f32::NAN);
        return f32::NAN;
    }
    if m == f32::NEG_INFINITY {
        row.fill(f32::NAN);
        return f32::NEG_INFINITY;
    }
    if m == f32::INFINITY {
        if write {
            let c = row.iter().filter(|v| **v == f32::INFINITY).count();
            let p = (1.0 / c as f64) as f32;
            row.iter_mut()
                .for_each(|v| *v = if *v == f32::INFINITY { p } else { 0.0 });
        }
        return f32::INFINITY;
    }
    // e^(x - max) in place (each at most 1), summed in fp64 over 8 lanes.
    row.iter_mut().for_each(|v| *v = vmath::exp(*v - m));
    let mut acc = [0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &e) in acc.iter_mut().zip(c) {
            *a += e as f64;
        }
    }
    for (a, &e) in acc.iter_mut().zip(chunks.remainder()) {
        *a += e as f64;
    }
    let s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    if write {
        let inv = (1.0 / s) as f32;
        row.iter_mut().for_each(|v| *v *= inv);
    }
    (m as f64 + s.ln()) as f32
}

simd_dispatch!(fn softmax_row(row: &mut [f32], write: bool) -> f32 => softmax_row_generic);

/// Softmax of every row in place (rows of `dim`).
pub(crate) fn softmax_in_place(data: &mut [f32], dim: usize) {
    let rows_per_task = (CHUNK / dim).max(1);
    data.par_chunks_mut(rows_per_task * dim).for_each(|d| {
        for row in d.chunks_exact_mut(dim) {
            softmax_row(row, true);
        }
    });
}

/// Log-sum-exp of every row.
pub(crate) fn logsumexp(x: MatrixView<'_>) -> Vec<f32> {
    let dim = x.dim();
    let rows_per_task = (CHUNK / dim).max(1);
    let mut out = vec![0f32; x.rows()];
    out.par_chunks_mut(rows_per_task)
        .zip(x.as_slice().par_chunks(rows_per_task * dim))
        .for_each(|(o, d)| {
            let mut buf = vec![0f32; dim];
            for (v, row) in o.iter_mut().zip(d.chunks_exact(dim)) {
                buf.copy_from_slice(row);
                *v = softmax_row(&mut buf, false);
            }
        });
    out
}

/// Runs `f` with the host form of a broadcast operand.
fn with_rhs(bc: &Broadcast<'_>, f: impl FnOnce(Rhs<'_>)) -> Result<()> {
    match bc {
        Broadcast::Scalar(s) => f(Rhs::Scalar(*s)),
        Broadcast::Array {
            b,
            row_stride,
            col_stride,
        } => f(Rhs::Array {
            b: host_f32(b)?.as_slice(),
            row_stride: *row_stride,
            col_stride: *col_stride,
        }),
    }
    Ok(())
}

/// Columns of a reduction's result (NumPy's `keepdims=True` shape: `[1 x 1]`,
/// `[rows x 1]` or `[1 x dim]`).
fn result_dim(x: &MatrixView<'_>, axis: Axis) -> usize {
    match axis {
        Axis::PerColumn => x.dim(),
        Axis::All | Axis::PerRow => 1,
    }
}

impl VectorBackend for Cpu {
    fn gather_rows(&self, x: &Input<'_>, rows: &[u64]) -> Result<DeviceMatrix> {
        let m = host_f32(x)?;
        let d = m.dim();
        let mut out = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            out.extend_from_slice(m.row(r as usize));
        }
        Ok(DeviceMatrix::from_host_f32(out, d))
    }

    fn map(&self, x: &Input<'_>, chain: &[Unary]) -> Result<DeviceMatrix> {
        let m = host_f32(x)?;
        Ok(DeviceMatrix::from_host_f32(
            map(m.as_slice(), chain),
            m.dim(),
        ))
    }

    fn map_in_place(&self, x: &mut DeviceMatrix, chain: &[Unary]) -> Result<()> {
        map_in_place(host_f32_mut(x)?, chain);
        Ok(())
    }

    fn binary(
        &self,
        a: &Input<'_>,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<DeviceMatrix> {
        let av = host_f32(a)?;
        let mut out = output_buffer(av.as_slice().len());
        with_rhs(b, |rhs| {
            binary(Some(av.as_slice()), &mut out, av.dim(), op, rhs, then)
        })?;
        Ok(DeviceMatrix::from_host_f32(out, av.dim()))
    }

    fn binary_in_place(
        &self,
        a: &mut DeviceMatrix,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<()> {
        let dim = a.dim();
        let data = host_f32_mut(a)?;
        with_rhs(b, |rhs| binary(None, data, dim, op, rhs, then))
    }

    fn normalize(&self, x: &Input<'_>) -> Result<(DeviceMatrix, DeviceMatrix)> {
        let m = host_f32(x)?;
        let mut data = m.as_slice().to_vec();
        let norms = normalize_in_place(&mut data, m.dim());
        Ok((
            DeviceMatrix::from_host_f32(data, m.dim()),
            DeviceMatrix::from_host_f32(norms, 1),
        ))
    }

    fn normalize_in_place(&self, x: &mut DeviceMatrix) -> Result<DeviceMatrix> {
        let dim = x.dim();
        let norms = normalize_in_place(host_f32_mut(x)?, dim);
        Ok(DeviceMatrix::from_host_f32(norms, 1))
    }

    fn reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceMatrix> {
        let m = host_f32(x)?;
        let (accs, n) = reduce(m, plan.kind, plan.axis);
        let values = accs
            .iter()
            .map(|a| finish(a, n, plan.finish, plan.ddof))
            .collect();
        Ok(DeviceMatrix::from_host_f32(
            values,
            result_dim(&m, plan.axis),
        ))
    }

    fn arg_reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceIds> {
        let accs = reduce(host_f32(x)?, plan.kind, plan.axis).0;
        Ok(DeviceIds::from_host(accs.iter().map(|a| a.idx).collect()))
    }

    fn softmax(&self, x: &Input<'_>, softmax: bool) -> Result<DeviceMatrix> {
        let m = host_f32(x)?;
        if !softmax {
            return Ok(DeviceMatrix::from_host_f32(logsumexp(m), 1));
        }
        let mut data = m.as_slice().to_vec();
        softmax_in_place(&mut data, m.dim());
        Ok(DeviceMatrix::from_host_f32(data, m.dim()))
    }

    fn softmax_in_place(&self, x: &mut DeviceMatrix) -> Result<()> {
        let dim = x.dim();
        softmax_in_place(host_f32_mut(x)?, dim);
        Ok(())
    }
}

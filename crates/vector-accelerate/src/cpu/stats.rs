//! CPU reference of the statistics: moment accumulation in blocks of
//! shifted power sums merged in a fixed order, and quantiles by sorting
//! short segments and radix-selecting long ones (the same selection the
//! CUDA backend drives, over the same keys).

use std::borrow::Cow;

use rayon::prelude::*;

use crate::core::error::Result;
use crate::core::matrix::MatrixView;
use crate::core::stats::{
    key, lerp, pick, radix_select_all, ranks, value, Counter, DIGITS, SMALL_SEGMENT,
};
use crate::core::stats::{Moments, QuantileResult};
use crate::core::vector::Axis;
use crate::cpu::host::host_f32;
use crate::runtime::backend::{Cpu, StatsBackend};
use crate::runtime::input::Input;

/// Values per block of shifted power sums (whole-array and row moments).
const BLOCK: usize = 256;
/// Rows per block of shifted power sums (column moments).
const BLOCK_ROWS: usize = 64;
/// Elements per parallel task of a whole-array reduction (fixed, so the
/// merge order and the result do not depend on the thread count).
const TASK: usize = 1 << 16;
/// Rows per parallel task of the column moments.
const TASK_ROWS: usize = 4096;

/// Power sums of values shifted by `shift`, with count, min and max.
#[derive(Clone, Copy)]
struct Sums {
    k: f64,
    s: [f64; 4],
    min: f32,
    max: f32,
    non_finite: u64,
}

impl Sums {
    const EMPTY: Sums = Sums {
        k: 0.0,
        s: [0.0; 4],
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        non_finite: 0,
    };

    #[inline(always)]
    fn push(&mut self, x: f32, shift: f64) {
        if x.is_finite() {
            let y = x as f64 - shift;
            let y2 = y * y;
            self.k += 1.0;
            self.s[0] += y;
            self.s[1] += y2;
            self.s[2] += y2 * y;
            self.s[3] += y2 * y2;
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        } else {
            self.non_finite += 1;
        }
    }

    /// The central moments of the block (the CUDA kernels use the same
    /// formulas): with `a = s1 / k`, mean `shift + a`,
    /// `M2 = s2 - s1 a`, `M3 = s3 - 3 a s2 + 2 k a^3`,
    /// `M4 = s4 - 4 a s3 + 6 a^2 s2 - 3 k a^4`.
    fn moments(&self, shift: f64) -> Moments {
        let mut m = Moments::new();
        m.non_finite = self.non_finite;
        if self.k == 0.0 {
            return m;
        }
        let (k, [s1, s2, s3, s4]) = (self.k, self.s);
        let a = s1 / k;
        let a2 = a * a;
        m.count = k as u64;
        m.mean = shift + a;
        m.m2 = (s2 - s1 * a).max(0.0);
        m.m3 = s3 - 3.0 * a * s2 + 2.0 * k * a2 * a;
        m.m4 = (s4 - 4.0 * a * s3 + 6.0 * a2 * s2 - 3.0 * k * a2 * a2).max(0.0);
        m.min = self.min;
        m.max = self.max;
        m
    }
}

/// The shift of the next block: the running mean, or the block's first
/// finite value when nothing has been accumulated yet.
#[inline(always)]
fn shift_for(acc: &Moments, block: impl IntoIterator<Item = f32>) -> f64 {
    if acc.count > 0 {
        acc.mean
    } else {
        block
            .into_iter()
            .find(|v| v.is_finite())
            .map_or(0.0, |v| v as f64)
    }
}

#[inline(always)]
fn accumulate_generic(acc: &mut Moments, vals: &[f32]) {
    for blk in vals.chunks(BLOCK) {
        let shift = shift_for(acc, blk.iter().copied());
        // Eight independent lanes (vectorised by the compiler), combined in
        // a fixed order.
        let mut lanes = [Sums::EMPTY; 8];
        let mut it = blk.chunks_exact(8);
        for c in &mut it {
            for (l, &x) in lanes.iter_mut().zip(c) {
                l.push(x, shift);
            }
        }
        for (l, &x) in lanes.iter_mut().zip(it.remainder()) {
            l.push(x, shift);
        }
        let mut t = Sums::EMPTY;
        for l in &lanes {
            t.k += l.k;
            for i in 0..4 {
                t.s[i] += l.s[i];
            }
            t.min = t.min.min(l.min);
            t.max = t.max.max(l.max);
            t.non_finite += l.non_finite;
        }
        *acc = acc.merge(&t.moments(shift));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn accumulate_avx512(acc: &mut Moments, vals: &[f32]) {
    accumulate_generic(acc, vals)
}

/// Adds `vals` to `acc` (blocks of [`BLOCK`] shifted sums, merged in order).
pub(crate) fn accumulate(acc: &mut Moments, vals: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") {
        // SAFETY: the features were just detected.
        return unsafe { accumulate_avx512(acc, vals) };
    }
    accumulate_generic(acc, vals)
}

/// Column moments of `rows` consecutive rows of width `dim`.
#[inline(always)]
fn columns_generic(data: &[f32], dim: usize) -> Vec<Moments> {
    let mut acc = vec![Moments::new(); dim];
    let mut shift = vec![0f64; dim];
    let mut sums = vec![Sums::EMPTY; dim];
    for blk in data.chunks(BLOCK_ROWS * dim) {
        for (j, s) in shift.iter_mut().enumerate() {
            *s = shift_for(&acc[j], blk.iter().skip(j).step_by(dim).copied());
        }
        sums.fill(Sums::EMPTY);
        for row in blk.chunks_exact(dim) {
            for ((s, &x), &sh) in sums.iter_mut().zip(row).zip(&shift) {
                s.push(x, sh);
            }
        }
        for j in 0..dim {
            acc[j] = acc[j].merge(&sums[j].moments(shift[j]));
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn columns_avx512(data: &[f32], dim: usize) -> Vec<Moments> {
    columns_generic(data, dim)
}

fn columns(data: &[f32], dim: usize) -> Vec<Moments> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") {
        // SAFETY: the features were just detected.
        return unsafe { columns_avx512(data, dim) };
    }
    columns_generic(data, dim)
}

/// Moments along `axis`.
pub(crate) fn describe(x: MatrixView<'_>, axis: Axis) -> Vec<Moments> {
    let (dim, data) = (x.dim(), x.as_slice());
    match axis {
        Axis::All => {
            let parts: Vec<Moments> = data
                .par_chunks(TASK)
                .map(|c| {
                    let mut m = Moments::new();
                    accumulate(&mut m, c);
                    m
                })
                .collect();
            vec![parts.iter().fold(Moments::new(), |a, b| a.merge(b))]
        }
        Axis::PerRow => data
            .par_chunks(dim)
            .map(|row| {
                let mut m = Moments::new();
                accumulate(&mut m, row);
                m
            })
            .collect(),
        Axis::PerColumn => {
            let parts: Vec<Vec<Moments>> = data
                .par_chunks(TASK_ROWS * dim)
                .map(|c| columns(c, dim))
                .collect();
            let mut out = vec![Moments::new(); dim];
            for p in &parts {
                for (o, m) in out.iter_mut().zip(p) {
                    *o = o.merge(m);
                }
            }
            out
        }
    }
}

/// Elements per parallel task of a radix counting pass.
const COUNT_TASK: usize = 1 << 18;

/// Radix counting over contiguous segments of `len` values.
struct CpuCounter<'a> {
    data: &'a [f32],
    len: usize,
    /// Pass-0 histograms of the current batch (2048 per segment).
    first: Vec<u64>,
}

impl CpuCounter<'_> {
    fn segment(&self, s: usize) -> &[f32] {
        &self.data[s * self.len..(s + 1) * self.len]
    }
}

/// Element-wise sum of two histograms.
fn add(mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
    a
}

impl Counter for CpuCounter<'_> {
    fn first(&mut self, segs: std::ops::Range<usize>) -> Result<Vec<(u64, u64)>> {
        let (shift, width) = DIGITS[0];
        let bins = 1usize << width;
        self.first = Vec::with_capacity(segs.len() * bins);
        let mut out = Vec::with_capacity(segs.len());
        for s in segs {
            // The last bin counts the non-finite values.
            let h = self
                .segment(s)
                .par_chunks(COUNT_TASK)
                .map(|c| {
                    let mut h = vec![0u64; bins + 1];
                    for &x in c {
                        let b = if x.is_finite() {
                            (key(x) >> shift) as usize
                        } else {
                            bins
                        };
                        h[b] += 1;
                    }
                    h
                })
                .reduce(|| vec![0u64; bins + 1], add);
            out.push((self.len as u64 - h[bins], h[bins]));
            self.first.extend_from_slice(&h[..bins]);
        }
        Ok(out)
    }

    fn pick_first(&mut self, targets: &[(usize, u64)]) -> Result<Vec<(u32, u64)>> {
        let bins = 1usize << DIGITS[0].1;
        targets
            .iter()
            .map(|&(s, r)| pick(&self.first[s * bins..(s + 1) * bins], r))
            .collect()
    }

    fn refine(
        &mut self,
        pass: usize,
        slots: &[(usize, u32)],
        targets: &[(usize, u64)],
    ) -> Result<Vec<(u32, u64)>> {
        let (shift, width) = DIGITS[pass];
        let (bins, hi) = (1usize << width, shift + width);
        let mask = (bins - 1) as u32;
        let mut hist = vec![0u64; slots.len() * bins];
        let mut i = 0;
        while i < slots.len() {
            let s = slots[i].0;
            let mut j = i;
            while j < slots.len() && slots[j].0 == s {
                j += 1;
            }
            let prefixes: Vec<u32> = slots[i..j].iter().map(|t| t.1 >> hi).collect();
            let np = prefixes.len();
            let h = self
                .segment(s)
                .par_chunks(COUNT_TASK)
                .map(|c| {
                    let mut h = vec![0u64; np * bins];
                    for &x in c {
                        if x.is_finite() {
                            let k = key(x);
                            if let Some(p) = prefixes.iter().position(|&p| p == k >> hi) {
                                h[p * bins + ((k >> shift) & mask) as usize] += 1;
                            }
                        }
                    }
                    h
                })
                .reduce(|| vec![0u64; np * bins], add);
            hist[i * bins..j * bins].copy_from_slice(&h);
            i = j;
        }
        targets
            .iter()
            .map(|&(slot, r)| pick(&hist[slot * bins..(slot + 1) * bins], r))
            .collect()
    }
}

/// Quantiles of one short segment by sorting its finite keys: writes
/// `out` (one per level), returns (finite count, non-finite count).
fn sorted_segment(seg: &[f32], levels: &[f64], out: &mut [f32]) -> (u64, u64) {
    let mut keys: Vec<u32> = seg
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| key(x))
        .collect();
    keys.sort_unstable();
    let n = keys.len() as u64;
    for (o, &q) in out.iter_mut().zip(levels) {
        *o = if n == 0 {
            f32::NAN
        } else {
            let (a, b, t) = ranks(n, q);
            lerp(value(keys[a as usize]), value(keys[b as usize]), t)
        };
    }
    (n, seg.len() as u64 - n)
}

/// Quantiles of every segment along `axis`.
pub(crate) fn quantiles(x: MatrixView<'_>, axis: Axis, levels: &[f64]) -> Result<QuantileResult> {
    let (data, len): (Cow<'_, [f32]>, usize) = match axis {
        Axis::All => (Cow::Borrowed(x.as_slice()), x.as_slice().len()),
        Axis::PerRow => (Cow::Borrowed(x.as_slice()), x.dim()),
        Axis::PerColumn => (Cow::Owned(super::linalg::transpose(x)), x.rows()),
    };
    let nseg = data.len() / len;
    let nl = levels.len();
    let mut out = vec![0f32; nseg * nl];
    let mut counts = vec![0u64; nseg];
    let mut non_finite = vec![0u64; nseg];
    if len <= SMALL_SEGMENT {
        out.par_chunks_mut(nl)
            .zip(counts.par_iter_mut().zip(non_finite.par_iter_mut()))
            .enumerate()
            .for_each(|(s, (o, (c, n)))| {
                (*c, *n) = sorted_segment(&data[s * len..(s + 1) * len], levels, o);
            });
    } else {
        let mut counter = CpuCounter {
            data: &data,
            len,
            first: Vec::new(),
        };
        radix_select_all(
            &mut counter,
            nseg,
            levels,
            &mut out,
            &mut counts,
            &mut non_finite,
        )?;
    }
    Ok((out, counts, non_finite))
}

impl StatsBackend for Cpu {
    fn describe(&self, x: &Input<'_>, axis: Axis) -> Result<Vec<Moments>> {
        Ok(describe(host_f32(x)?, axis))
    }

    fn quantiles(&self, x: &Input<'_>, axis: Axis, levels: &[f64]) -> Result<QuantileResult> {
        quantiles(host_f32(x)?, axis, levels)
    }
}

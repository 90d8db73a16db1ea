//! CPU reference of the matrix operations: the `gemm` crate with strides
//! (transposes are swapped strides, never copies), batches in parallel.

use rayon::prelude::*;

use crate::core::error::Result;
use crate::core::linalg::Plan;
use crate::core::matrix::MatrixView;
use crate::core::precision::Precision;
use crate::core::vector::Unary;
use crate::cpu::host::{host_f32, host_f32_mut};
use crate::runtime::backend::{Cpu, GemmJob, LinalgBackend};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// Rounds to nearest (even) in the 16-bit format of `p` and widens back.
fn round16(v: &[f32], p: Precision) -> Vec<f32> {
    match p {
        Precision::Bf16 => v
            .par_iter()
            .map(|&x| half::bf16::from_f32(x).to_f32())
            .collect(),
        _ => v
            .par_iter()
            .map(|&x| half::f16::from_f32(x).to_f32())
            .collect(),
    }
}

/// One product `out = alpha * op(A) op(B) + beta * out` (`out` holds C when
/// `read` is set) with the plan's strides.
///
/// # Safety
/// `a`, `b` and `out` must cover the plan's block of one batch.
unsafe fn one(p: &Plan, a: *const f32, b: *const f32, out: *mut f32, read: bool, par: bool) {
    let (lhs_cs, lhs_rs) = if p.trans_a {
        (p.lda as isize, 1)
    } else {
        (1, p.lda as isize)
    };
    let (rhs_cs, rhs_rs) = if p.trans_b {
        (p.ldb as isize, 1)
    } else {
        (1, p.ldb as isize)
    };
    let par = if par {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // The crate computes dst = alpha * dst + beta * lhs * rhs (dst read
    // only when `read`), so its alpha is our beta and its beta our alpha.
    gemm::gemm(
        p.m,
        p.n,
        p.k,
        out,
        1,
        p.n as isize,
        read,
        a,
        lhs_cs,
        lhs_rs,
        b,
        rhs_cs,
        rhs_rs,
        if read { p.beta } else { 0.0 },
        p.alpha,
        false,
        false,
        false,
        par,
    );
}

/// `batch` products of the plan; `c` (the stacked C) is read when given
/// (the caller passes it only for `beta != 0`).
pub(crate) fn gemm(a: &[f32], b: &[f32], c: Option<&[f32]>, p: &Plan) -> Vec<f32> {
    let (ra, rb);
    let (a, b) = match p.precision {
        Precision::Bf16 | Precision::F16 => {
            ra = round16(a, p.precision);
            rb = round16(b, p.precision);
            (&ra[..], &rb[..])
        }
        Precision::Exact | Precision::Tf32 => (a, b),
    };
    let read = c.is_some();
    let mut out = match c {
        Some(c) => c.to_vec(),
        None => vec![0.0; p.out_len()],
    };
    let block = p.m * p.n;
    let run = |i: usize, o: &mut [f32], par: bool| {
        let ab = &a[i * p.stride_a..(i + 1) * p.stride_a];
        let bb = &b[i * p.stride_b..(i + 1) * p.stride_b];
        // SAFETY: each block holds one stored operand of the plan's shape
        // and `o` one m x n result.
        unsafe { one(p, ab.as_ptr(), bb.as_ptr(), o.as_mut_ptr(), read, par) }
    };
    if p.batch == 1 {
        run(0, &mut out, true);
    } else {
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(i, o)| run(i, o, false));
    }
    out
}

/// Adds `bias` (length `n`) to every row of `out`, then applies `chain`.
pub(crate) fn epilogue(out: &mut [f32], n: usize, bias: Option<&[f32]>, chain: &[Unary]) {
    if let Some(bias) = bias {
        out.par_chunks_mut(n).for_each(|row| {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += *b;
            }
        });
    }
    super::vector::map_in_place(out, chain);
}

/// The transpose of a row-major matrix, in cache blocks.
pub(crate) fn transpose(a: MatrixView<'_>) -> Vec<f32> {
    const T: usize = 32;
    let (r, c) = (a.rows(), a.dim());
    let src = a.as_slice();
    let mut out = vec![0.0f32; r * c];
    // Output row j (a column of `a`) gets `r` values; bands of T output rows.
    out.par_chunks_mut(T * r).enumerate().for_each(|(band, o)| {
        let j0 = band * T;
        let j1 = (j0 + T).min(c);
        for i0 in (0..r).step_by(T) {
            for i in i0..(i0 + T).min(r) {
                for j in j0..j1 {
                    o[(j - j0) * r + i] = src[i * c + j];
                }
            }
        }
    });
    out
}

/// Transposes an `n x n` row-major matrix in place.
pub(crate) fn transpose_square_in_place(a: &mut [f32], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            a.swap(i * n + j, j * n + i);
        }
    }
}

impl LinalgBackend for Cpu {
    fn gemm(&self, job: GemmJob<'_>) -> Result<DeviceMatrix> {
        let p = job.plan;
        let c = match job.c {
            Some(c) if p.beta != 0.0 => Some(host_f32(c)?.as_slice()),
            _ => None,
        };
        let mut out = gemm(
            host_f32(job.a)?.as_slice(),
            host_f32(job.b)?.as_slice(),
            c,
            p,
        );
        if let Some(e) = job.epilogue {
            epilogue(&mut out, p.n, e.bias, e.act.chain());
        }
        Ok(DeviceMatrix::from_host_f32(out, p.n))
    }

    fn transpose(&self, a: &Input<'_>) -> Result<DeviceMatrix> {
        let m = host_f32(a)?;
        Ok(DeviceMatrix::from_host_f32(transpose(m), m.rows()))
    }

    fn transpose_in_place(&self, a: &mut DeviceMatrix) -> Result<()> {
        let n = a.dim();
        transpose_square_in_place(host_f32_mut(a)?, n);
        Ok(())
    }
}

//! Matrix operations (SPEC 7): GEMM `C = alpha * op(A) * op(B) + beta * C`
//! with real transposes, GEMV, transpose, strided batched GEMM and the fused
//! `act(alpha * op(A_b) * op(B_b) + bias)`.
//!
//! Every matrix is row-major, as everywhere in the crate. `op(X)` is `X`
//! or its transpose ([`GemmOptions::trans_a`] / [`GemmOptions::trans_b`]);
//! a transpose is never materialised: the CPU hands the `gemm` crate
//! swapped strides and CUDA passes `CUBLAS_OP_T`.
//!
//! # Semantics
//!
//! - Any `f32` `alpha` and `beta` are accepted (as BLAS). `beta = 0` does
//!   not read `C`'s values, so NaN or infinities in `C` do not propagate;
//!   `C` is only required when `beta != 0` (when given with `beta = 0` its
//!   shape is still checked).
//! - [`Precision::Exact`](crate::Precision::Exact) (the default) is plain fp32 (SGEMM on CUDA, in
//!   cuBLAS's default math mode). [`Precision::Tf32`](crate::Precision::Tf32) runs on tensor cores
//!   with TF32 operands (10-bit significands: under `2^-10` relative error
//!   per operand, as the tensor cores may truncate) on CUDA and is fp32 on
//!   the CPU. [`Precision::Bf16`](crate::Precision::Bf16) and [`Precision::F16`](crate::Precision::F16) round `A` and `B` to nearest in 16 bits (on the
//!   device on CUDA, and the same rounding on the CPU, so both backends
//!   compute the product of the same rounded values), then multiply with
//!   fp32 accumulation and fp32 output; `alpha`, `beta` and `C` stay fp32.
//!   f16 values beyond its range (`|x| > 65504`) become infinities and tiny
//!   ones lose precision (subnormals below `2^-14`).
//! - 16-bit rows ([`Context::upload_bf16`] / [`Context::upload_f16`]) are
//!   accepted anywhere a matrix is: their values are the exact widened
//!   ones. Under the precision of their own kind they are used without
//!   conversion (read in place when the row width is a multiple of 8, else
//!   through one compact device copy); otherwise they are widened (and
//!   rounded to the precision's kind) for the call, giving what a CPU
//!   context computes. Resident f32 rows multiplied under `Bf16` / `F16`
//!   keep their rounded copy on the device after the first product (as a
//!   fast-precision k-NN base does), so repeated products skip the
//!   conversion.
//! - Sizes: any `m, n, k >= 1`; each must fit in an `i32` on CUDA (a typed
//!   error otherwise).
//! - Agreement: `Exact` results of the two backends differ only by the order
//!   of the fp32 sums, within `~k * 2^-24 * sum |a_ip| |b_pj|` per element.
//!
//! ```
//! use vector_accelerate::linalg::{gemm, GemmOptions};
//! use vector_accelerate::{Context, Matrix};
//! let ctx = Context::new()?;
//! let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)?; // 2 x 3
//! let b = Matrix::new(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 2)?; // 3 x 2
//! let c = gemm(&ctx, &a, &b, None, &GemmOptions::default())?;
//! assert_eq!(c.as_slice(), &[4.0, 5.0, 10.0, 11.0]);
//! // A^T B^T: (3 x 2) (2 x 3).
//! let t = GemmOptions { trans_a: true, trans_b: true, ..Default::default() };
//! assert_eq!(gemm(&ctx, &a, &b, None, &t)?.rows(), 3);
//! # Ok::<(), vector_accelerate::Error>(())
//! ```

use crate::core::error::{Error, Result};
pub use crate::core::linalg::{Activation, GemmOptions};
use crate::core::linalg::{Epilogue, Plan};
use crate::core::matrix::{Matrix, MatrixView};
use crate::cpu::linalg as cpu;
use crate::cuda;
use crate::ops::host_rows;
use crate::runtime::context::{Backend, Context};
use crate::runtime::cuda_rows::CudaRows;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

fn check_operand(ctx: &Context, x: &Input<'_>, what: &'static str) -> Result<()> {
    if x.rows() == 0 {
        return Err(Error::EmptyInput { what });
    }
    if x.is_binary() {
        return Err(Error::invalid(
            "input",
            format!("{what}: bit-packed binary rows"),
            "matrix operations take f32 rows",
        ));
    }
    if let Input::Resident(d) = x {
        d.check_device(ctx)?;
    }
    Ok(())
}

fn shape(rows: usize, cols: usize, t: bool) -> (usize, usize) {
    if t {
        (cols, rows)
    } else {
        (rows, cols)
    }
}

/// Validates `batch` products of `a` by `b` (plus `c` for `beta`).
fn plan(
    ctx: &Context,
    a: &Input<'_>,
    b: &Input<'_>,
    c: Option<&Input<'_>>,
    batch: usize,
    o: &GemmOptions,
) -> Result<Plan> {
    check_operand(ctx, a, "A")?;
    check_operand(ctx, b, "B")?;
    if batch == 0 {
        return Err(Error::invalid("batch", 0, "at least one product is needed"));
    }
    for (what, rows) in [("A", a.rows()), ("B", b.rows())] {
        if !rows.is_multiple_of(batch) {
            return Err(Error::invalid(
                "batch",
                batch,
                format!("{what} has {rows} rows, not a whole number of {batch} stacked matrices"),
            ));
        }
    }
    let (ar, br) = (a.rows() / batch, b.rows() / batch);
    let (m, ka) = shape(ar, a.dim(), o.trans_a);
    let (kb, n) = shape(br, b.dim(), o.trans_b);
    if ka != kb {
        return Err(Error::invalid(
            "shapes",
            format!(
                "op(A) {m} x {ka} (A {ar} x {}{}), op(B) {kb} x {n} (B {br} x {}{})",
                a.dim(),
                if o.trans_a { ", transposed" } else { "" },
                b.dim(),
                if o.trans_b { ", transposed" } else { "" },
            ),
            "the columns of op(A) must equal the rows of op(B)",
        ));
    }
    match c {
        Some(c) => {
            check_operand(ctx, c, "C")?;
            if c.rows() != batch * m || c.dim() != n {
                return Err(Error::invalid(
                    "C shape",
                    format!("{} x {}", c.rows(), c.dim()),
                    format!("the product is {} x {n}", batch * m),
                ));
            }
        }
        None if o.beta != 0.0 => {
            return Err(Error::invalid(
                "beta",
                o.beta,
                "a non-zero beta needs a C matrix",
            ))
        }
        None => {}
    }
    Ok(Plan {
        batch,
        m,
        n,
        k: ka,
        trans_a: o.trans_a,
        trans_b: o.trans_b,
        lda: a.dim(),
        ldb: b.dim(),
        stride_a: ar * a.dim(),
        stride_b: br * b.dim(),
        alpha: o.alpha,
        beta: o.beta,
        precision: o.precision,
    })
}

fn host_f32<'a>(i: &'a Input<'a>) -> Result<MatrixView<'a>> {
    match host_rows(i)? {
        crate::cpu::HostRows::F32(m) => Ok(m),
        crate::cpu::HostRows::Bits(_) => Err(Error::invalid(
            "input",
            "bit-packed rows",
            "expected f32 rows",
        )),
    }
}

/// Runs a plan on the CPU.
fn run_cpu(
    a: &Input<'_>,
    b: &Input<'_>,
    c: Option<&Input<'_>>,
    p: &Plan,
    epi: Option<Epilogue<'_>>,
) -> Result<Vec<f32>> {
    let c = match c {
        Some(c) if p.beta != 0.0 => Some(host_f32(c)?.as_slice()),
        _ => None,
    };
    let mut out = cpu::gemm(host_f32(a)?.as_slice(), host_f32(b)?.as_slice(), c, p);
    if let Some(e) = epi {
        cpu::epilogue(&mut out, p.n, e.bias, e.act.chain());
    }
    Ok(out)
}

/// Runs a plan on the context's backend, the result left there.
fn run_resident(
    ctx: &Context,
    a: &Input<'_>,
    b: &Input<'_>,
    c: Option<&Input<'_>>,
    p: &Plan,
    epi: Option<Epilogue<'_>>,
) -> Result<DeviceMatrix> {
    match ctx.backend() {
        Backend::Cpu => Ok(DeviceMatrix::from_host_f32(run_cpu(a, b, c, p, epi)?, p.n)),
        Backend::Cuda(dev) => {
            let y = cuda::linalg::gemm_resident(dev, a, b, c, p, epi)?;
            Ok(DeviceMatrix::from_cuda(
                dev,
                CudaRows::F32(y),
                p.batch * p.m,
                p.n,
                true,
            ))
        }
    }
}

/// Runs a plan on the context's backend, the result on the host.
fn run(
    ctx: &Context,
    a: &Input<'_>,
    b: &Input<'_>,
    c: Option<&Input<'_>>,
    p: &Plan,
    epi: Option<Epilogue<'_>>,
) -> Result<Vec<f32>> {
    match ctx.backend() {
        Backend::Cpu => run_cpu(a, b, c, p, epi),
        Backend::Cuda(dev) => cuda::linalg::gemm(dev, a, b, c, p, epi),
    }
}

/// `alpha * op(A) * op(B) + beta * C` (an `m x n` matrix), with `op`,
/// `alpha`, `beta` and the precision from `opts`. `C` (`m x n`) is needed
/// when `beta != 0`; it is never modified (the result is a new matrix).
///
/// ```
/// use vector_accelerate::linalg::{gemm, GemmOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0], 2)?; // 1 x 2
/// let b = Matrix::new(vec![3.0, 4.0], 1)?; // 2 x 1
/// let c = Matrix::new(vec![1.0], 1)?;
/// let o = GemmOptions { alpha: 2.0, beta: -1.0, ..Default::default() };
/// assert_eq!(gemm(&ctx, &a, &b, Some((&c).into()), &o)?.as_slice(), &[21.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn gemm<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    c: Option<Input<'a>>,
    opts: &GemmOptions,
) -> Result<Matrix> {
    gemm_batched(ctx, a, b, c, 1, opts)
}

/// [`gemm()`] with the result left on the context's device (host rows on a
/// CPU context), so a chain of operations never crosses the bus.
pub fn gemm_resident<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    c: Option<Input<'a>>,
    opts: &GemmOptions,
) -> Result<DeviceMatrix> {
    gemm_batched_resident(ctx, a, b, c, 1, opts)
}

/// Strided batched GEMM: `a` holds `batch` matrices `A_0 .. A_{batch-1}`
/// stacked by rows (`a.rows() / batch` rows each, stored contiguously), `b`
/// likewise, and the result stacks the `batch` products
/// `alpha * op(A_b) * op(B_b) + beta * C_b` (`(batch * m) x n`; `C` stacked
/// the same way). One cuBLAS strided batched call on CUDA, batches in
/// parallel on the CPU.
///
/// ```
/// use vector_accelerate::linalg::{gemm_batched, GemmOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2)?; // two 1 x 2
/// let b = Matrix::new(vec![1.0, 1.0, 1.0, 0.0], 1)?; // two 2 x 1
/// let c = gemm_batched(&ctx, &a, &b, None, 2, &GemmOptions::default())?;
/// assert_eq!(c.as_slice(), &[3.0, 3.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn gemm_batched<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    c: Option<Input<'a>>,
    batch: usize,
    opts: &GemmOptions,
) -> Result<Matrix> {
    let (a, b) = (a.into(), b.into());
    let p = plan(ctx, &a, &b, c.as_ref(), batch, opts)?;
    Matrix::new(run(ctx, &a, &b, c.as_ref(), &p, None)?, p.n)
}

/// [`gemm_batched`] with the result left on the context's device.
pub fn gemm_batched_resident<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    c: Option<Input<'a>>,
    batch: usize,
    opts: &GemmOptions,
) -> Result<DeviceMatrix> {
    let (a, b) = (a.into(), b.into());
    let p = plan(ctx, &a, &b, c.as_ref(), batch, opts)?;
    run_resident(ctx, &a, &b, c.as_ref(), &p, None)
}

fn fused_plan<'a>(
    ctx: &Context,
    a: &Input<'a>,
    b: &Input<'a>,
    bias: Option<&[f32]>,
    batch: usize,
    opts: &GemmOptions,
) -> Result<Plan> {
    if opts.beta != 0.0 {
        return Err(Error::invalid(
            "beta",
            opts.beta,
            "the fused GEMM has no C term; use beta = 0",
        ));
    }
    let p = plan(ctx, a, b, None, batch, opts)?;
    if let Some(bias) = bias {
        if bias.len() != p.n {
            return Err(Error::DimensionMismatch {
                what: "bias length vs columns of the product",
                expected: p.n,
                got: bias.len(),
            });
        }
    }
    Ok(p)
}

/// The fused `act(alpha * op(A_b) * op(B_b) + bias)` over `batch` stacked
/// products (as [`gemm_batched`]; `batch = 1` is a single GEMM), `bias`
/// (length `n`) added to every row of each product, then the activation.
///
/// On CUDA this is the cuBLAS (batched) GEMM followed by one in-place
/// epilogue pass that adds the bias and applies the activation (the vector
/// family's broadcast kernel with a one-step chain), so the product is
/// written once and read once more; on the CPU the same two steps. Bias
/// addition is rounded on its own (no FMA), then the activation.
///
/// ```
/// use vector_accelerate::linalg::{gemm_fused, Activation, GemmOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![1.0, -2.0], 2)?; // 1 x 2
/// let w = Matrix::new(vec![1.0, 0.0, 0.0, 1.0], 2)?; // identity
/// let y = gemm_fused(&ctx, &x, &w, Some(&[0.5, 0.5]), Activation::Relu, 1, &GemmOptions::default())?;
/// assert_eq!(y.as_slice(), &[1.5, 0.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn gemm_fused<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    bias: Option<&[f32]>,
    act: Activation,
    batch: usize,
    opts: &GemmOptions,
) -> Result<Matrix> {
    let (a, b) = (a.into(), b.into());
    let p = fused_plan(ctx, &a, &b, bias, batch, opts)?;
    let epi = Epilogue { bias, act };
    Matrix::new(run(ctx, &a, &b, None, &p, Some(epi))?, p.n)
}

/// [`gemm_fused`] with the result left on the context's device.
pub fn gemm_fused_resident<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    bias: Option<&[f32]>,
    act: Activation,
    batch: usize,
    opts: &GemmOptions,
) -> Result<DeviceMatrix> {
    let (a, b) = (a.into(), b.into());
    let p = fused_plan(ctx, &a, &b, bias, batch, opts)?;
    run_resident(ctx, &a, &b, None, &p, Some(Epilogue { bias, act }))
}

/// `alpha * op(A) * x + beta * y` for a vector `x` (length: the columns of
/// `op(A)`) and, when `beta != 0`, a vector `y` (length: the rows of
/// `op(A)`). Computed as a GEMM with a one-column `B` (same precision modes).
///
/// ```
/// use vector_accelerate::linalg::{gemv, GemmOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2)?;
/// let t = GemmOptions { trans_a: true, ..Default::default() };
/// assert_eq!(gemv(&ctx, &a, &[1.0, 1.0], None, &t)?, vec![4.0, 6.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn gemv<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    x: &[f32],
    y: Option<&[f32]>,
    opts: &GemmOptions,
) -> Result<Vec<f32>> {
    let a = a.into();
    if x.is_empty() {
        return Err(Error::EmptyInput { what: "x" });
    }
    if opts.trans_b {
        return Err(Error::invalid(
            "trans_b",
            true,
            "gemv has no B operand (x is a vector)",
        ));
    }
    check_operand(ctx, &a, "A")?;
    let cols = if opts.trans_a { a.rows() } else { a.dim() };
    if x.len() != cols {
        return Err(Error::DimensionMismatch {
            what: "length of x vs columns of op(A)",
            expected: cols,
            got: x.len(),
        });
    }
    let xm = Input::F32(MatrixView::new(x, 1)?);
    let ym = match y {
        Some(y) if !y.is_empty() => Some(Input::F32(MatrixView::new(y, 1)?)),
        Some(_) => return Err(Error::EmptyInput { what: "y" }),
        None => None,
    };
    let p = plan(ctx, &a, &xm, ym.as_ref(), 1, opts)?;
    run(ctx, &a, &xm, ym.as_ref(), &p, None)
}

/// The transpose of `a` (`a.dim() x a.rows()`), out of place (cuBLAS `geam`
/// on CUDA).
///
/// ```
/// use vector_accelerate::linalg::transpose;
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)?;
/// assert_eq!(transpose(&ctx, &a)?.as_slice(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn transpose<'a>(ctx: &Context, a: impl Into<Input<'a>>) -> Result<Matrix> {
    let a = a.into();
    check_operand(ctx, &a, "A")?;
    let data = match ctx.backend() {
        Backend::Cpu => cpu::transpose(host_f32(&a)?),
        Backend::Cuda(dev) => cuda::linalg::transpose(dev, &a)?,
    };
    Matrix::new(data, a.rows())
}

/// [`transpose`] with the result left on the context's device.
pub fn transpose_resident<'a>(ctx: &Context, a: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
    let a = a.into();
    check_operand(ctx, &a, "A")?;
    match ctx.backend() {
        Backend::Cpu => Ok(DeviceMatrix::from_host_f32(
            cpu::transpose(host_f32(&a)?),
            a.rows(),
        )),
        Backend::Cuda(dev) => {
            let y = cuda::linalg::transpose_resident(dev, &a)?;
            Ok(DeviceMatrix::from_cuda(
                dev,
                CudaRows::F32(y),
                a.dim(),
                a.rows(),
                true,
            ))
        }
    }
}

/// Transposes a square host matrix in place (on a CUDA context too: the
/// swap is done where the data is, on the host). Non-square matrices are an
/// error (use [`transpose`]).
pub fn transpose_in_place(ctx: &Context, a: &mut Matrix) -> Result<()> {
    check_operand(ctx, &Input::F32(a.view()), "A")?;
    if a.rows() != a.dim() {
        return Err(Error::invalid(
            "shape",
            format!("{} x {}", a.rows(), a.dim()),
            "in-place transpose needs a square matrix; use transpose",
        ));
    }
    let n = a.dim();
    cpu::transpose_square_in_place(a.as_mut_slice(), n);
    Ok(())
}

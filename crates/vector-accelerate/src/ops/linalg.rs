//! Matrix operations: GEMM `C = alpha * op(A) * op(B) + beta * C`
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
//! let c = gemm(&ctx, &a, &b, None, &GemmOptions::default())?; // on the context's device
//! assert_eq!(c.to_host()?.as_slice(), &[4.0, 5.0, 10.0, 11.0]);
//! // A^T B^T: (3 x 2) (2 x 3).
//! let t = GemmOptions::default().with_trans_a(true).with_trans_b(true);
//! assert_eq!(gemm(&ctx, &a, &b, None, &t)?.rows(), 3);
//! # Ok::<(), vector_accelerate::Error>(())
//! ```

use crate::core::error::{Error, Result};
pub use crate::core::linalg::{Activation, GemmOptions};
use crate::core::linalg::{Epilogue, Plan};
use crate::core::matrix::MatrixView;
use crate::runtime::backend::GemmJob;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

fn check_operand(ctx: &Context, x: &Input<'_>, what: &'static str) -> Result<()> {
    crate::ops::check_f32_rows(ctx, x, what, "matrix operations")
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
    o: &GemmOptions,
) -> Result<Plan> {
    let batch = o.batch;
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

/// Runs a validated product on the context's backend.
fn run(
    ctx: &Context,
    (a, b, c): (&Input<'_>, &Input<'_>, Option<&Input<'_>>),
    plan: &Plan,
    bias: Option<&[f32]>,
    act: Activation,
) -> Result<DeviceMatrix> {
    let epilogue = (bias.is_some() || act != Activation::None).then_some(Epilogue { bias, act });
    ctx.backend().gemm(GemmJob {
        a,
        b,
        c,
        plan,
        epilogue,
    })
}

/// `act(alpha * op(A) * op(B) + beta * C)` (an `m x n` matrix, or `batch`
/// stacked products), with `op`, `alpha`, `beta`, the batch, the activation
/// (default none) and the precision from `opts`. `C` (`m x n`, stacked
/// like the result) is needed when `beta != 0`; it is never modified. The
/// result stays on the context's device.
///
/// With `batch > 1` (strided batched GEMM), `a` holds `batch` matrices
/// `A_0 .. A_{batch-1}` stacked by rows (`a.rows() / batch` rows each), `b`
/// likewise, and the result stacks the `batch` products (`(batch * m) x
/// n`): one cuBLAS strided batched call on CUDA, batches in parallel on the
/// CPU.
///
/// ```
/// use vector_accelerate::linalg::{gemm, GemmOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0], 2)?; // 1 x 2
/// let b = Matrix::new(vec![3.0, 4.0], 1)?; // 2 x 1
/// let c = Matrix::new(vec![1.0], 1)?;
/// let o = GemmOptions::default().with_alpha(2.0).with_beta(-1.0);
/// assert_eq!(gemm(&ctx, &a, &b, Some((&c).into()), &o)?.to_host()?.as_slice(), &[21.0]);
/// let a2 = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2)?; // two 1 x 2
/// let b2 = Matrix::new(vec![1.0, 1.0, 1.0, 0.0], 1)?; // two 2 x 1
/// let batched = gemm(&ctx, &a2, &b2, None, &GemmOptions::default().with_batch(2))?;
/// assert_eq!(batched.to_host()?.as_slice(), &[3.0, 3.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn gemm<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    c: Option<Input<'a>>,
    opts: &GemmOptions,
) -> Result<DeviceMatrix> {
    let (a, b) = (a.into(), b.into());
    let p = plan(ctx, &a, &b, c.as_ref(), opts)?;
    run(ctx, (&a, &b, c.as_ref()), &p, None, opts.activation)
}

/// Validates the bias of a fused product.
fn check_bias(opts: &GemmOptions, bias: Option<&[f32]>, n: usize) -> Result<()> {
    if opts.beta != 0.0 {
        return Err(Error::invalid(
            "beta",
            opts.beta,
            "the fused GEMM has no C term; use beta = 0",
        ));
    }
    match bias {
        Some(bias) if bias.len() != n => Err(Error::DimensionMismatch {
            what: "bias length vs columns of the product",
            expected: n,
            got: bias.len(),
        }),
        _ => Ok(()),
    }
}

/// The fused `act(alpha * op(A_b) * op(B_b) + bias)` over `opts.batch`
/// stacked products (as [`gemm()`]), `bias` (length `n`) added to every row
/// of each product, then the activation of `opts`.
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
/// let relu = GemmOptions::default().with_activation(Activation::Relu);
/// let y = gemm_fused(&ctx, &x, &w, Some(&[0.5, 0.5]), &relu)?;
/// assert_eq!(y.to_host()?.as_slice(), &[1.5, 0.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn gemm_fused<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    b: impl Into<Input<'a>>,
    bias: Option<&[f32]>,
    opts: &GemmOptions,
) -> Result<DeviceMatrix> {
    let (a, b) = (a.into(), b.into());
    let p = plan(ctx, &a, &b, None, opts)?;
    check_bias(opts, bias, p.n)?;
    run(ctx, (&a, &b, None), &p, bias, opts.activation)
}

/// `alpha * op(A) * x + beta * y` for a vector `x` (length: the columns of
/// `op(A)`) and, when `beta != 0`, a vector `y` (length: the rows of
/// `op(A)`): a column (`[rows x 1]`) on the context's device. Computed as a
/// GEMM with a one-column `B` (same precision modes).
///
/// ```
/// use vector_accelerate::linalg::{gemv, GemmOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2)?;
/// let t = GemmOptions::default().with_trans_a(true);
/// assert_eq!(gemv(&ctx, &a, &[1.0, 1.0], None, &t)?.to_host()?.as_slice(), &[4.0, 6.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn gemv<'a>(
    ctx: &Context,
    a: impl Into<Input<'a>>,
    x: &[f32],
    y: Option<&[f32]>,
    opts: &GemmOptions,
) -> Result<DeviceMatrix> {
    let a = a.into();
    if x.is_empty() {
        return Err(Error::EmptyInput { what: "x" });
    }
    if opts.trans_b || opts.batch != 1 {
        return Err(Error::invalid(
            "options",
            format!("trans_b {}, batch {}", opts.trans_b, opts.batch),
            "gemv has one A and no B operand (x is a vector): use trans_b false, batch 1",
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
    let p = plan(ctx, &a, &xm, ym.as_ref(), opts)?;
    run(ctx, (&a, &xm, ym.as_ref()), &p, None, opts.activation)
}

/// The transpose of `a` (`a.dim() x a.rows()`), out of place (cuBLAS `geam`
/// on CUDA), on the context's device.
///
/// ```
/// use vector_accelerate::linalg::transpose;
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let a = Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)?;
/// assert_eq!(transpose(&ctx, &a)?.to_host()?.as_slice(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn transpose<'a>(ctx: &Context, a: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
    let a = a.into();
    check_operand(ctx, &a, "A")?;
    ctx.backend().transpose(&a)
}

/// Transposes a square matrix kept on the context's device in place (each
/// pair of elements swapped where the rows are). Non-square matrices are
/// an error (use [`transpose`]).
pub fn transpose_in_place(ctx: &Context, a: &mut DeviceMatrix) -> Result<()> {
    check_operand(ctx, &Input::Resident(a), "A")?;
    if a.rows() != a.dim() {
        return Err(Error::invalid(
            "shape",
            format!("{} x {}", a.rows(), a.dim()),
            "in-place transpose needs a square matrix; use transpose",
        ));
    }
    ctx.backend().transpose_in_place(a)
}

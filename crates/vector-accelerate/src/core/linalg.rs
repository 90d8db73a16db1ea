//! The linalg family's vocabulary: GEMM options and activations, and the
//! validated product (`Plan`) both backends run.

use crate::core::precision::Precision;
use crate::core::vector::Unary;

/// Options of [`gemm()`](crate::linalg::gemm), [`gemm_fused`](crate::linalg::gemm_fused)
/// and [`gemv`](crate::linalg::gemv), made with [`Default`] and the `with_*`
/// setters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GemmOptions {
    /// Use `A^T` in place of `A` (default `false`).
    pub trans_a: bool,
    /// Use `B^T` in place of `B` (default `false`).
    pub trans_b: bool,
    /// Scale of the product (default 1).
    pub alpha: f32,
    /// Scale of the given `C` (default 0: `C` is not read). Must be 0 for
    /// [`gemm_fused`](crate::linalg::gemm_fused), which has no `C` term.
    pub beta: f32,
    /// Arithmetic of the product (default [`Precision::Exact`]; see the
    /// [`linalg`](crate::linalg) documentation).
    pub precision: Precision,
    /// Products stacked by rows in `A`, `B` (and `C`), computed in one call
    /// (default 1; see [`gemm()`](crate::linalg::gemm)).
    pub batch: usize,
    /// Applied to every element of the result, after any bias (default
    /// [`Activation::None`]).
    pub activation: Activation,
}

impl Default for GemmOptions {
    fn default() -> Self {
        Self {
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            beta: 0.0,
            precision: Precision::Exact,
            batch: 1,
            activation: Activation::None,
        }
    }
}

impl GemmOptions {
    /// Uses `A^T` in place of `A`.
    pub fn with_trans_a(mut self, on: bool) -> Self {
        self.trans_a = on;
        self
    }
    /// Uses `B^T` in place of `B`.
    pub fn with_trans_b(mut self, on: bool) -> Self {
        self.trans_b = on;
        self
    }
    /// Sets the scale of the product.
    pub fn with_alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }
    /// Sets the scale of `C`.
    pub fn with_beta(mut self, beta: f32) -> Self {
        self.beta = beta;
        self
    }
    /// Sets the arithmetic of the product.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }
    /// Sets the number of stacked products.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
    /// Sets the activation applied to the result.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
}

/// The activation of a GEMM's result ([`GemmOptions::activation`]),
/// applied after the bias of [`gemm_fused`](crate::linalg::gemm_fused).
///
/// `Tanh`, `Sigmoid` and `Gelu` are the element-wise functions of the vector
/// family ([`Unary::Tanh`], [`Unary::Sigmoid`], [`Unary::Gelu`], the exact
/// erf form of GELU), with the same accuracy on each backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// The identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic function.
    Sigmoid,
    /// Exact GELU `x * Phi(x)` (see [`Unary::Gelu`]).
    Gelu,
}

impl Activation {
    /// The activation as a chain of unary steps of the vector family.
    pub(crate) fn chain(self) -> &'static [Unary] {
        match self {
            Activation::None => &[],
            Activation::Relu => &[Unary::Relu],
            Activation::Tanh => &[Unary::Tanh],
            Activation::Sigmoid => &[Unary::Sigmoid],
            Activation::Gelu => &[Unary::Gelu],
        }
    }
}

/// A validated product: `batch` products of `op(A_b)` (`m x k`) by
/// `op(B_b)` (`k x n`), `A_b` stored as `a_rows x lda` blocks of rows (and
/// `B_b` as `b_rows x ldb`), batch `b` starting `b * stride_*` elements in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub lda: usize,
    pub ldb: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub alpha: f32,
    pub beta: f32,
    pub precision: Precision,
}

impl Plan {
    /// Elements of the whole result (`batch * m * n`).
    pub(crate) fn out_len(&self) -> usize {
        self.batch * self.m * self.n
    }
}

/// A bias and activation applied to every product.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub act: Activation,
}

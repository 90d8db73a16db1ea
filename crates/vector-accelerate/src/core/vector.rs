//! The vector family's vocabulary: axes, reductions, unary and binary
//! element-wise functions, shared by both backends.

use crate::core::error::{Error, Result};

/// The most unary steps one [`map`](crate::vector::map) (or one [`binary_then`](crate::vector::binary_then) epilogue) fuses
/// into a single pass.
pub const MAX_CHAIN: usize = 8;

/// Which elements a reduction combines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// Every element: one result (NumPy `axis=None`; `arg*` give flat
    /// row-major indices).
    All,
    /// Each row: one result per row (NumPy `axis=1`; `arg*` give column
    /// indices).
    PerRow,
    /// Each column: one result per column (NumPy `axis=0`; `arg*` give row
    /// indices).
    PerColumn,
}

/// A reduction to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Sum, accumulated in `f64`.
    Sum,
    /// Arithmetic mean (sum in `f64` divided by the count).
    Mean,
    /// Smallest value (NaN if any element is NaN).
    Min,
    /// Largest value (NaN if any element is NaN).
    Max,
    /// Variance `sum (x - mean)^2 / (n - ddof)`: `ddof = 0` is the
    /// population variance, `ddof = 1` the sample variance. `ddof` must be
    /// smaller than the number of elements reduced.
    Variance {
        /// Delta degrees of freedom (NumPy's `ddof`).
        ddof: usize,
    },
}

/// A reduction to an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgReduction {
    /// Index of the smallest value (first on ties, first NaN if any).
    ArgMin,
    /// Index of the largest value (first on ties, first NaN if any).
    ArgMax,
}

/// One element-wise function of a single value (a step of a [`map`](crate::vector::map) chain).
///
/// Exact steps (bit-identical on every backend): `Add`, `Mul`, `Clamp`,
/// `Abs`, `Square`, `Sqrt`, `Reciprocal`, `Neg`, `Relu`. The others are
/// approximations within a few ulps of the exact value:
///
/// - CPU: `Exp`, `Log`, `Sigmoid`, `Tanh`, `Sin`, `Cos` use the library's
///   own vectorised (AVX-512 or AVX2 + FMA, chosen at run time; the same
///   bits without them) implementations: at most 1 ulp for `Exp` and
///   `Log`, 2 for `Sin`, `Cos`, `Tanh` and `Sigmoid` against the exact value
///   rounded to `f32` (checked on every 997th `f32` bit pattern, subnormals,
///   infinities and NaN included; `Sin`/`Cos` of `|x| > 65536` take the
///   system `libm`). `Tan`, `Pow` and `Gelu`'s `erfc` call the system
///   `libm` (within 1-2 ulps).
/// - CUDA: the CUDA math library, documented at most 2 ulps for `exp`,
///   `log`, `sin`, `cos`, `tanh`, and 4 for `tan`, `pow` and `erfc`.
///
/// The two backends agree within the sum of their bounds; the tests allow
/// 4 ulps between CUDA and the exact value for `Exp`, `Log`, `Sin`, `Cos`,
/// `Tanh`, `Sigmoid` and 8 for `Tan`, `Pow`, `Gelu`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// `x + c`.
    Add(f32),
    /// `x * c`.
    Mul(f32),
    /// `x ^ p` (C `powf`: a negative base with a non-integer exponent is NaN).
    Pow(f32),
    /// `lo` below `lo`, `hi` above `hi`, else `x` (NaN stays NaN). Needs `lo <= hi`.
    Clamp(f32, f32),
    /// `|x|`.
    Abs,
    /// `x * x`.
    Square,
    /// `sqrt(x)` (NaN for `x < 0`, as NumPy).
    Sqrt,
    /// `1 / x` (`inf` for `0`).
    Reciprocal,
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// Natural logarithm (`-inf` for `0`, NaN for `x < 0`, as NumPy).
    Log,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic function `1 / (1 + e^-x)`, computed as `e^x / (1 + e^x)` for
    /// `x < 0` so that no intermediate overflows: exact limits 0 and 1, no NaN
    /// for large `|x|`.
    Sigmoid,
    /// `max(x, 0)` (NaN stays NaN).
    Relu,
    /// Exact GELU `x * Phi(x)` (PyTorch's default, `approximate="none"`),
    /// computed as `0.5 x erfc(-x / sqrt 2)`, which equals
    /// `0.5 x (1 + erf(x / sqrt 2))` without its cancellation for negative
    /// `x`. The argument `-x / sqrt 2` is rounded to `f32` first (as in
    /// PyTorch), which costs up to about `x^2` ulps far in the left tail.
    Gelu,
}

/// An element-wise function of two values (the left operand is the matrix,
/// the right one broadcasts, see [`Operand`](crate::vector::Operand)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (IEEE: `x / 0` is `±inf`, `0 / 0` NaN).
    Div,
    /// `a ^ b` (C `powf`).
    Pow,
    /// Larger of the two; NaN if either is NaN (NumPy `maximum`); `a` on equality.
    Max,
    /// Smaller of the two; NaN if either is NaN (NumPy `minimum`); `a` on equality.
    Min,
}

/// Validates a chain of unary steps.
pub(crate) fn check_chain(chain: &[Unary]) -> Result<()> {
    if chain.len() > MAX_CHAIN {
        return Err(Error::invalid(
            "chain length",
            chain.len(),
            format!("at most {MAX_CHAIN} unary steps are fused into one pass"),
        ));
    }
    for op in chain {
        if let Unary::Clamp(lo, hi) = *op {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(Error::invalid(
                    "clamp bounds",
                    format!("lo = {lo}, hi = {hi}"),
                    "lo and hi must be numbers with lo <= hi",
                ));
            }
        }
    }
    Ok(())
}

/// What a reduction accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `s1 = sum x`.
    Sum,
    /// `s1 = sum (x - k)`, `s2 = sum (x - k)^2` with `k` the first element
    /// of the reduction (shifted data: no cancellation when the mean is
    /// large against the spread).
    Moments,
    Min,
    Max,
}

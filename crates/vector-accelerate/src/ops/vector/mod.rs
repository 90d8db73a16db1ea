//! Vector utilities: L2 normalisation of rows, element-wise maps
//! with NumPy-style broadcasting, reductions over everything, each row or
//! each column, and row-wise log-sum-exp and softmax.
//!
//! Every function takes a [`Context`](crate::Context) and any `f32`
//! [`Input`](crate::Input) (host rows or rows resident on the context's
//! device) and runs on the context's backend; the CPU implementation is the
//! reference.
//!
//! # Semantics shared by the family
//!
//! - **NaN and infinities** follow NumPy: arithmetic propagates them as IEEE
//!   does; `log` and `sqrt` of a negative number, `0 * inf`, `inf - inf` give
//!   NaN (no error). `min`/`max` (element-wise and reductions) propagate NaN;
//!   `argmin`/`argmax` return the index of the first NaN when there is one.
//! - **Ties** in `argmin`/`argmax` go to the first index; `-0.0` and `+0.0`
//!   are equal.
//! - **Determinism**: same input, same backend, same results, bit for bit.
//!   Reductions combine partial results in a fixed order (no floating-point
//!   atomics).
//! - **Agreement between backends**: element-wise arithmetic (`+ - * /`,
//!   `sqrt`, `abs`, `neg`, `square`, `reciprocal`, `clamp`, `relu`, `max`,
//!   `min`, scalar add/mul) is bit-identical on CPU and CUDA: every step is
//!   rounded on its own, never fused into an FMA. Transcendental functions
//!   use each platform's `f32` implementations (see [`Unary`] for their
//!   bounds) and agree within the sum of the two documented error bounds. Reductions
//!   accumulate in `f64` on both backends and agree within a few `f32` ulps
//!   of the result (variance: relative `1e-6`).

pub(crate) mod checks;
mod elementwise;
mod normalize;
mod reduce;
mod softmax;

pub use elementwise::{binary, binary_in_place, binary_then, map, map_in_place, Operand};
pub use normalize::{normalize, normalize_in_place, normalize_with_norms};
pub use reduce::{arg_reduce, argmax, argmin, max, mean, min, reduce, sum, variance};
pub use softmax::{logsumexp, softmax, softmax_in_place};

pub use crate::core::vector::{ArgReduction, Axis, Binary, Reduction, Unary, MAX_CHAIN};

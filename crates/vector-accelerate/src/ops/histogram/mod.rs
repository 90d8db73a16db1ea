//! Histograms and kernel density estimation: uniform, logarithmic,
//! custom-edge and adaptive (equal-frequency) bins, 2-D histograms, and a
//! Gaussian kernel density estimate on a grid.
//!
//! Every function takes a [`Context`](crate::Context) and any `f32`
//! [`Input`](crate::Input) (host rows or rows resident on the context's
//! device); all elements are used, flattened in row-major order. The CPU
//! implementation is the reference; CUDA gives identical counts.
//!
//! # Semantics (those of NumPy's `np.histogram`)
//!
//! - **Bins** are half-open `[e_i, e_{i+1})` except the last, which is closed
//!   `[e_{n-1}, e_n]`, so a value equal to the last edge is counted in the
//!   last bin. Edges are `f64`; a value `v` is in bin `i` exactly when
//!   `e_i <= v as f64 < e_{i+1}`, on both backends (uniform and logarithmic
//!   bins estimate the bin arithmetically and then correct it against the
//!   edge table, so a value on an edge is never off by one).
//! - **Non-finite values** (NaN, `+-inf`) are never binned: they are counted
//!   in `non_finite`, whatever the options.
//! - **Outliers** (finite values below the first edge or above the last):
//!   counted separately in `below` / `above` ([`Outliers::Separate`], the
//!   default) or added to the first / last bin ([`Outliers::Clip`]).
//! - **Ranges from the data** (no range given) use the finite values only:
//!   `(min, max)`, or NumPy's `(min - 0.5, max + 0.5)` when all finite values
//!   are equal.
//! - **Determinism**: counts are integers (integer atomics on CUDA), so the
//!   same input gives the same counts on every run and every backend.
//!
//! ```
//! use vector_accelerate::histogram::{histogram, BinSpec, HistogramOptions};
//! use vector_accelerate::{Context, Matrix};
//! let ctx = Context::cpu();
//! let x = Matrix::new(vec![0.0, 1.0, 1.5, 2.0, 3.0, 4.0, f32::NAN], 1).unwrap();
//! let bins = BinSpec::Uniform { bins: 4, range: Some((0.0, 4.0)) };
//! let h = histogram(&ctx, &x, &bins, &HistogramOptions::default()).unwrap();
//! assert_eq!(h.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
//! assert_eq!(h.counts, vec![1, 2, 1, 2]); // 4.0 is in the closed last bin
//! assert_eq!((h.below, h.above, h.non_finite), (0, 0, 1));
//! ```

mod bins;
mod kde;

pub use crate::core::histogram::{
    BinSpec, Histogram, Histogram2d, HistogramOptions, Outliers, MAX_BINS,
};
pub use bins::{histogram, histogram_2d};
pub use kde::{kde, Bandwidth, Kde};

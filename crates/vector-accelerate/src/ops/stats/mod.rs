//! Statistics: descriptive statistics from mergeable one-pass
//! moment accumulators, quantiles found on the device by radix selection,
//! and covariance / correlation matrices.
//!
//! Every function takes a [`Context`](crate::Context) and any `f32`
//! [`Input`](crate::Input) (host rows or rows resident on the context's
//! device), runs on the context's backend (the CPU implementation is the
//! reference) and reduces along an [`Axis`]: every element, each row or
//! each column.
//!
//! # Non-finite values
//!
//! NaN and +-infinity are rejected with [`Error::NonFinite`](crate::Error::NonFinite)
//! (which says how many there are and where the first one is) unless
//! [`StatsOptions::skip_non_finite`] is set; then they are left out of every
//! statistic and counted ([`Moments::non_finite`]). A row or column left with
//! no finite value is an [`Error::InvalidParameter`](crate::Error::InvalidParameter)
//! naming it.
//!
//! ```
//! use vector_accelerate::stats::{describe, quantiles, StatsOptions};
//! use vector_accelerate::vector::Axis;
//! use vector_accelerate::{Context, Matrix};
//! let ctx = Context::cpu();
//! let x = Matrix::new(vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 1).unwrap(); // 8 x 1
//! let m = &describe(&ctx, &x, Axis::All, &StatsOptions::default()).unwrap()[0];
//! assert_eq!(m.mean(), Some(5.0));
//! assert_eq!(m.std(0), Some(2.0));
//! let q = quantiles(&ctx, &x, &[0.5, 0.9], Axis::All, &StatsOptions::default()).unwrap();
//! assert_eq!(q[0], vec![4.5, 7.6]); // NumPy's linear interpolation
//! ```

mod checks;
mod correlation;
mod moments;
pub(crate) mod quantile;

pub use crate::core::stats::Moments;
pub use correlation::{correlation, covariance};
pub use moments::describe;
pub use quantile::{median, quantiles, quartiles, Quartiles};

pub use crate::core::stats::StatsOptions;
pub use crate::core::vector::Axis;

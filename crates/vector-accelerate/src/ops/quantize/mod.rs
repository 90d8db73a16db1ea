//! Compression of `f32` vectors into codes, and search over the codes:
//! scalar ([`ScalarQuantizer`], int8 and int4), binary
//! ([`BinaryQuantizer`], one bit per dimension) and product
//! ([`ProductQuantizer`], `M` sub-space codebooks trained with k-means)
//! quantization, quality metrics ([`Quality`]) and a versioned, checksummed
//! file format for fitted quantizers ([`Quantizer`]).
//!
//! Codes live where the context computes: `encode` on a CUDA context returns
//! codes on the device (searchable there without another copy), on a CPU
//! context on the host; `to_host` brings them back for saving.
//!
//! ```
//! use vector_accelerate::quantize::{ScalarOptions, ScalarQuantizer};
//! use vector_accelerate::{Context, Matrix};
//! let ctx = Context::cpu();
//! let x = Matrix::new((0..64).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
//! let sq = ScalarQuantizer::fit(&ctx, &x, ScalarOptions::int8())?;
//! let codes = sq.encode(&ctx, &x)?;
//! let back = sq.decode(&ctx, &codes)?;
//! let q = vector_accelerate::quantize::Quality::measure(x.view(), back.view(), codes.code_bytes())?;
//! assert!(q.max_error <= sq.error_bound() as f64);
//! # Ok::<(), vector_accelerate::Error>(())
//! ```

mod binary;
mod file;
mod inputs;
mod product;
mod quality;
mod rerank;
pub(crate) mod scalar;

pub use crate::core::quantize::{
    PqOptions, ProductQuantizer, ScalarBits, ScalarOptions, ScalarQuantizer, ScalarRange,
    ScalarScope,
};
pub use crate::runtime::codes::{PqCodes, ScalarCodes};
pub use binary::{BinaryQuantizer, BinaryThreshold};
pub use file::Quantizer;
pub use quality::{Quality, VectorQuality};
pub use rerank::Rerank;

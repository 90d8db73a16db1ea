//! Compression of `f32` vectors into codes, and search over the codes:
//! scalar ([`ScalarQuantizer`], int8 and int4), binary
//! ([`BinaryQuantizer`], one bit per dimension) and product
//! ([`ProductQuantizer`], `M` sub-space codebooks trained with k-means)
//! quantization, quality metrics ([`Quality`]) and a versioned, checksummed
//! file format for fitted quantizers ([`Quantizer`]).
//!
//! Codes live where the context computes: `encode` on a CUDA context returns
//! codes on the device (searchable there without another copy), on a CPU
//! context on the host; decoded rows are a [`DeviceMatrix`](crate::DeviceMatrix)
//! (`to_host` reads them back).
//!
//! Every quantizer is a [`Codec`]: `train`, `encode`, `decode`, `search`,
//! `code_size`, `save` and `load`, with options passed by reference;
//! [`Quantizer`] is a codec whose kind is chosen at run time.
//!
//! ```
//! use vector_accelerate::quantize::{Codec, ScalarOptions, ScalarQuantizer};
//! use vector_accelerate::{Context, Matrix};
//! let ctx = Context::cpu();
//! let x = Matrix::new((0..64).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
//! let sq = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int8())?;
//! let codes = sq.encode(&ctx, &x)?;
//! let back = sq.decode(&ctx, &codes)?.into_host()?;
//! let q = vector_accelerate::quantize::Quality::measure(x.view(), back.view(), codes.code_bytes())?;
//! assert!(q.max_error <= sq.error_bound() as f64);
//! # Ok::<(), vector_accelerate::Error>(())
//! ```

mod binary;
mod codec;
mod file;
mod inputs;
mod product;
mod quality;
mod rerank;
pub(crate) mod scalar;

pub use crate::core::quantize::{
    BinaryOptions, BinaryQuantizer, BinaryThreshold, PqOptions, ProductQuantizer, Quantizer,
    ScalarBits, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope,
};
pub use crate::runtime::codes::{PqCodes, ScalarCodes};
pub use codec::{Codec, Codes, QuantizerOptions, Rerank, SearchOptions};
pub use quality::{Quality, VectorQuality};

//! Scalar, binary and product quantization: round trips within the
//! documented bounds (checked against f64 arithmetic), CUDA codes identical
//! to the CPU's, searches over codes against brute-force references, every
//! option changing the output, the file format and typed errors.
//! One file per quantizer (scalar, binary, product, as in
//! `src/ops/quantize/`) and one for what they share as codecs.

mod binary;
mod codec;
mod product;
mod scalar;

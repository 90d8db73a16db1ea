//! ML kernels (SPEC 8): learned projections applied to embeddings.
//!
//! Every piece is built on [`Linear`], a map `y = x W^T + b` whose weight
//! (`W`, `d_out x d_in`, the layout of PyTorch's `nn.Linear`) is kept on the
//! context's device, so a projection is computed once per vector by one
//! GEMM (cuBLAS on CUDA), never once per pair:
//!
//! - [`LearnedDistance`]: a projection, then L2 or cosine between projections.
//! - [`NeuralQuantizer`]: an encoder to a small latent, per-vector int8
//!   codes of the latent with each vector's scale kept, a decoder back.
//! - [`AttentionSimilarity`]: single- and multi-head attention scores
//!   between projected queries and keys.

mod attention;
mod learned;
mod linear;
mod nq;

pub use attention::AttentionSimilarity;
pub use learned::LearnedDistance;
pub use linear::Linear;
pub use nq::{Fidelity, NeuralQuantizer, NqOptions, NqPreset, Reconstruction};

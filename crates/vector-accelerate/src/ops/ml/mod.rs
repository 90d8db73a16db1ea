//! ML kernels: learned projections applied to embeddings.
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
//!
//! Weights come from arrays, from a [`WeightStore`] (named tensors loaded
//! from and saved to safetensors files, shape-checked, cached on the
//! device) or from a [`Pca`] fitted to data.

mod attention;
mod learned;
mod linear;
mod nq;
mod pca;
mod weights;

pub use attention::AttentionSimilarity;
pub use learned::LearnedDistance;
pub use linear::Linear;
pub use nq::{Fidelity, NeuralQuantizer, NqOptions, NqPreset, Reconstruction};
pub use pca::Pca;
pub use weights::{DType, Element, Tensor, WeightBytes, WeightStore};

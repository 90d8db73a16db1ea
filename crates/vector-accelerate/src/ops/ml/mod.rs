//! ML kernels (SPEC 8): learned projections applied to embeddings.
//!
//! Every piece is built on [`Linear`], a map `y = x W^T + b` whose weight
//! (`W`, `d_out x d_in`, the layout of PyTorch's `nn.Linear`) is kept on the
//! context's device, so a projection is computed once per vector by one
//! GEMM (cuBLAS on CUDA), never once per pair.

mod linear;
mod pca;
mod weights;

pub use linear::Linear;
pub use pca::Pca;
pub use weights::{DType, Element, Tensor, WeightBytes, WeightStore};

//! k-means clustering (L2 and spherical) and nearest-centroid assignment,
//! on either backend.
//!
//! Lloyd iterations alternate an assignment step, which is an exact 1-NN
//! search of the points against the centroids (on CUDA a tensor-core filter
//! with exact re-scoring), and an update step that sums the members of each
//! cluster deterministically (fixed summation order on the CPU, 64-bit
//! fixed-point accumulation on the device), so a run is reproducible bit for
//! bit. The same Lloyd driver trains the product quantizer's codebooks.

mod assign;
pub(crate) mod init;
mod kmeans;
pub(crate) mod lloyd;

pub use crate::core::cluster::{
    Assignment, KMeans, KMeansInit, KMeansOptions, KMeansProgress, ProgressFn,
};
pub use assign::assign;
pub use kmeans::kmeans;
pub(crate) use kmeans::{check_finite, max_abs};

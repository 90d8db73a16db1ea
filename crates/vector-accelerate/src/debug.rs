//! Test hooks, built only with the cargo feature `debug-hooks` (the
//! integration tests enable it): output poisoning, and counters of which
//! CUDA paths ran. Without the feature nothing is counted.

use crate::core::error::{Error, Result};
use crate::core::matrix::Matrix;
use crate::ops::cluster::Assignment;
use crate::runtime::context::{Context, Engine};
use crate::{cuda, runtime};

/// Poison device output buffers (fill them with 0xFF bytes: NaN and
/// `u64::MAX`) before kernels write them, so a test sees any element a
/// kernel left unwritten. Costs one memset per buffer.
pub fn poison_outputs(on: bool) {
    runtime::cuda_device::POISON.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// (launches, overflows) of the CUDA k-NN tensor-core filter per pass since
/// the process started, in the order TF32, three-pass TF32, bf16, f16.
pub fn filter_stats() -> [(u64, u64); 4] {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &cuda::knn_filter::PASS_STATS;
    std::array::from_fn(|i| (s[i][0].load(Relaxed), s[i][1].load(Relaxed)))
}

/// (points assigned, points that needed the full exact scan) by the CUDA
/// k-means assignment since the process started.
pub fn assign_stats() -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &cuda::cluster::ASSIGN_STATS;
    (s[0].load(Relaxed), s[1].load(Relaxed))
}

/// The CUDA k-means assignment started from a given centroid id per point
/// (as the k-means iterations start from the previous one); any valid ids
/// must give the result of the plain assignment.
pub fn assign_hinted(
    ctx: &Context,
    points: &Matrix,
    centroids: &Matrix,
    hint: &[u32],
    spherical: bool,
) -> Result<Assignment> {
    let Engine::Cuda(dev) = ctx.engine() else {
        return Err(Error::invalid("context", "cpu", "a CUDA context"));
    };
    let (ids, distances) =
        cuda::cluster::assign(dev, &points.into(), centroids.view(), spherical, Some(hint))?;
    Ok(Assignment {
        clusters: ids.into_iter().map(|i| i as usize).collect(),
        distances,
    })
}

/// A graph's pruning of the k-NN lists `knn` (`n x wide`, best first,
/// `u32::MAX` padded) to `degree` neighbours per node: (the host's, the
/// context backend's where it has its own).
pub fn graph_prune(
    ctx: &Context,
    knn: &[u32],
    n: usize,
    (wide, degree): (usize, usize),
) -> Result<(Vec<u32>, Option<Vec<u32>>)> {
    let host = crate::index::graph::prune(knn, n, (wide, degree));
    Ok((host, ctx.backend().graph_prune(knn, n, wide, degree)?))
}

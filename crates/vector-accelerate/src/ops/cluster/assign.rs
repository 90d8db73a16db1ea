//! Nearest-centroid assignment (the IVF coarse quantizer's operation).

use crate::core::cluster::Assignment;
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::ops::knn::knn;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Assigns each point to its nearest centroid: squared L2, or cosine
/// distance when `spherical`. A point with a non-finite value is assigned
/// centroid 0 at distance NaN. Finite centroids take the backend's
/// assignment (on CUDA the exact tensor-core assignment of k-means);
/// centroids with non-finite values go through exact k-NN.
///
/// ```
/// use vector_accelerate::{cluster::assign, Context, Matrix};
/// let ctx = Context::cpu();
/// let c = Matrix::new(vec![0.0, 0.0, 10.0, 10.0], 2)?;
/// let x = Matrix::new(vec![9.0, 9.5, 0.5, -1.0], 2)?;
/// let a = assign(&ctx, &x, &c, false)?;
/// assert_eq!(a.clusters, vec![1, 0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn assign<'a, 'b>(
    ctx: &Context,
    points: impl Into<Input<'a>>,
    centroids: impl Into<Input<'b>>,
    spherical: bool,
) -> Result<Assignment> {
    let (p, c) = (points.into(), centroids.into());
    let metric = if spherical {
        Metric::Cosine
    } else {
        Metric::L2
    };
    let held = host_centroids(&c)?;
    let finite = held
        .as_ref()
        .is_some_and(|m| m.as_slice().iter().all(|v| v.is_finite()));
    let (ids, distances) = match held {
        Some(cm) if finite && p.rows() > 0 && !p.is_binary() => {
            check_points(ctx, &p, cm.view())?;
            ctx.backend().nearest(&p, cm.view(), spherical)?
        }
        _ => {
            let (ids, d) = knn(ctx, p, c, 1, metric)?.into_parts();
            non_finite_points(&p, ids.into_iter().map(|i| i as u32).collect(), d)
        }
    };
    Ok(Assignment {
        clusters: ids.into_iter().map(|i| i as usize).collect(),
        distances,
    })
}

/// The centroids on the host (`None` for bit-packed rows, which the k-NN
/// path refuses with its own error).
fn host_centroids(c: &Input<'_>) -> Result<Option<Matrix>> {
    Ok(match c {
        Input::F32(m) if m.rows() > 0 => Some(Matrix::new(m.as_slice().to_vec(), m.dim())?),
        Input::Resident(d) if !d.is_binary() => Some(d.to_host()?),
        _ => None,
    })
}

/// Points of the centroids' dimension, on the context's device.
fn check_points(ctx: &Context, p: &Input<'_>, c: MatrixView<'_>) -> Result<()> {
    if p.dim() != c.dim() {
        return Err(Error::DimensionMismatch {
            what: "centroid dimension",
            expected: p.dim(),
            got: c.dim(),
        });
    }
    if let Input::Resident(d) = p {
        d.check_device(ctx)?;
    }
    crate::ops::refuse_half(p, "points")
}

/// Centroid 0 at distance NaN for every host point holding a non-finite
/// value (as the backends' assignment reports them).
fn non_finite_points(p: &Input<'_>, mut ids: Vec<u32>, mut d: Vec<f32>) -> (Vec<u32>, Vec<f32>) {
    if let Input::F32(m) = p {
        for (i, row) in m.as_slice().chunks_exact(m.dim()).enumerate() {
            if row.iter().any(|v| !v.is_finite()) {
                (ids[i], d[i]) = (0, f32::NAN);
            }
        }
    }
    (ids, d)
}

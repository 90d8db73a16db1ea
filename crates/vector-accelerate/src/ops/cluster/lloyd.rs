//! Lloyd's algorithm, once for every user: `groups` independent k-means
//! problems of `k` clusters over column groups of one set of training rows
//! (k-means: one group of every column; product-quantizer training: one
//! group per sub-space; an IVF coarse quantizer: one group). Each
//! iteration is one backend step (assignment, member sums, counts,
//! inertia, changes), then the new centroids are the member means, and an
//! empty cluster takes the point farthest from its own centroid among
//! clusters with more than one member, so no centroid is ever left empty,
//! zero or NaN.

use std::time::Instant;

use crate::core::cluster::{KMeansProgress, LloydStep};
use crate::core::error::{Error, Result};
use crate::core::matrix::MatrixView;
use crate::runtime::backend::{Assigned, LloydJob};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// One run of Lloyd's algorithm.
pub(crate) struct Lloyd<'a> {
    /// The training rows where the backend works on them (resident on a
    /// CUDA context, uploaded once for every iteration).
    pub points: Input<'a>,
    /// The same rows on the host (for re-seeding empty clusters).
    pub host: MatrixView<'a>,
    /// Problems solved together.
    pub groups: usize,
    /// Columns of each problem.
    pub group_dim: usize,
    /// Clusters per problem.
    pub k: usize,
    /// Spherical k-means: cosine distance, unit-length centroids.
    pub spherical: bool,
    /// The largest magnitude of a training value.
    pub max_abs: f32,
    /// Iterations at most.
    pub max_iterations: usize,
    /// Stop at a fixed point (no element moved, none re-seeded) or when an
    /// iteration lowers the inertia by at most this fraction of it; `None`:
    /// run every iteration.
    pub tolerance: Option<f64>,
}

/// What a run of [`Lloyd`] ends with.
pub(crate) struct LloydOutcome {
    /// `groups x k x group_dim` centroids.
    pub centroids: Vec<f32>,
    /// Iterations run.
    pub iterations: usize,
    /// Whether a fixed point or the tolerance stopped the iterations.
    pub converged: bool,
}

/// Iterates from `centroids` (`groups x k x group_dim`), calling `progress`
/// after each iteration.
pub(crate) fn run(
    ctx: &Context,
    job: &Lloyd<'_>,
    mut centroids: Vec<f32>,
    progress: &mut dyn FnMut(&KMeansProgress),
) -> Result<LloydOutcome> {
    let elements = job.host.rows() * job.groups;
    let mut prev: Option<Assigned> = None;
    let mut prev_inertia = f64::INFINITY;
    let mut iterations = 0;
    while iterations < job.max_iterations {
        crate::core::interrupt::check()?;
        let started = Instant::now();
        let step = ctx.backend().lloyd_step(LloydJob {
            points: &job.points,
            groups: job.groups,
            group_dim: job.group_dim,
            k: job.k,
            centroids: &centroids,
            cosine: job.spherical,
            max_abs: job.max_abs,
            prev: prev.as_ref(),
        })?;
        if let Some((e, d)) = step.nonfinite {
            return Err(Error::invalid(
                "k-means input",
                d,
                format!(
                    "training row {} has a non-finite distance to every centroid",
                    e / job.groups
                ),
            ));
        }
        let changed = step.changed.unwrap_or(elements);
        let reseeded = update(&mut centroids, &step, job)?;
        iterations += 1;
        progress(&KMeansProgress {
            iteration: iterations,
            max_iterations: job.max_iterations,
            inertia: step.inertia,
            changed,
            reseeded,
            elapsed: started.elapsed(),
        });
        let done = job.tolerance.is_some_and(|t| {
            let fixed_point = changed == 0 && reseeded == 0;
            let small_gain = prev_inertia.is_finite()
                && reseeded == 0
                && prev_inertia - step.inertia <= t * step.inertia;
            fixed_point || small_gain
        });
        if done {
            return Ok(LloydOutcome {
                centroids,
                iterations,
                converged: true,
            });
        }
        prev_inertia = step.inertia;
        prev = Some(step.assigned);
    }
    Ok(LloydOutcome {
        centroids,
        iterations,
        converged: false,
    })
}

/// New centroids from the step's member sums, empty clusters re-seeded
/// (unit length again for spherical k-means); returns how many were
/// re-seeded.
fn update(centroids: &mut [f32], step: &LloydStep<Assigned>, job: &Lloyd<'_>) -> Result<usize> {
    let d = job.group_dim;
    for (c, (&count, sums)) in step
        .counts
        .iter()
        .zip(step.sums.chunks_exact(d))
        .enumerate()
    {
        if count > 0 {
            let inv = 1.0 / count as f64;
            for (v, s) in centroids[c * d..(c + 1) * d].iter_mut().zip(sums) {
                *v = (s * inv) as f32;
            }
        }
    }
    let empty = step.counts.iter().filter(|&&c| c == 0).count();
    if empty > 0 {
        let (ids, dist) = step.assigned.to_host()?;
        for g in 0..job.groups {
            reseed_group(centroids, &step.counts, (&ids, &dist), g, job);
        }
    }
    if job.spherical {
        centroids.chunks_exact_mut(d).for_each(unit_length);
    }
    Ok(empty)
}

/// Each empty cluster of group `g` takes the element of the group farthest
/// from its centroid (ties: the smaller point) among clusters that keep at
/// least one member.
fn reseed_group(
    centroids: &mut [f32],
    counts: &[u64],
    (ids, dist): (&[u32], &[f32]),
    g: usize,
    job: &Lloyd<'_>,
) {
    let (k, d, groups) = (job.k, job.group_dim, job.groups);
    let mut left = counts[g * k..(g + 1) * k].to_vec();
    let empty: Vec<usize> = (0..k).filter(|&c| left[c] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let at = |p: usize| p * groups + g;
    let mut order: Vec<usize> = (0..job.host.rows()).collect();
    order.sort_by(|&a, &b| dist[at(b)].total_cmp(&dist[at(a)]).then(a.cmp(&b)));
    let mut farthest = order.into_iter();
    for c in empty {
        for p in farthest.by_ref() {
            let from = ids[at(p)] as usize;
            if left[from] > 1 {
                left[from] -= 1;
                left[c] = 1;
                let row = &job.host.row(p)[g * d..(g + 1) * d];
                centroids[(g * k + c) * d..(g * k + c + 1) * d].copy_from_slice(row);
                break;
            }
        }
    }
}

/// Scales a row to unit length in f64 (a zero row stays zero).
pub(crate) fn unit_length(r: &mut [f32]) {
    let n = r
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if n > 0.0 {
        r.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
    }
}

//! k-means: validation, the training sample, initialisation, the Lloyd
//! driver and the final assignment of every point.

use crate::core::cluster::{KMeans, KMeansInit, KMeansOptions, KMeansProgress};
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::core::rng::sample_indices;
use crate::ops::cluster::init::{gather_rows, kmeans_parallel_init};
use crate::ops::cluster::lloyd::{self, unit_length, Lloyd};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Clusters the rows of `data` into `opts.k` clusters with Lloyd's
/// algorithm (see the module documentation).
///
/// ```
/// use vector_accelerate::{cluster::{kmeans, KMeansOptions}, Context, Matrix};
/// let ctx = Context::cpu();
/// // Two tight groups around (0, 0) and (10, 10).
/// let x = Matrix::new(vec![0.0, 0.1, 0.1, 0.0, 10.0, 10.1, 10.1, 10.0], 2)?;
/// let r = kmeans(&ctx, &x, &KMeansOptions::new(2).with_seed(1))?;
/// assert_eq!(r.assignments[0], r.assignments[1]);
/// assert_ne!(r.assignments[0], r.assignments[2]);
/// assert_eq!(r.counts, vec![2, 2]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
pub fn kmeans<'a>(
    ctx: &Context,
    data: impl Into<Input<'a>>,
    opts: &KMeansOptions,
) -> Result<KMeans> {
    let data = data.into();
    let owned = training_rows(&data)?;
    let all: MatrixView<'_> = match (&owned, &data) {
        (Some(m), _) => m.view(),
        (None, Input::F32(m)) => *m,
        _ => unreachable!("training_rows returns rows for every other input"),
    };
    check_options(all, opts)?;
    let gathered = opts
        .max_training_points
        .filter(|&m| m < all.rows())
        .map(|m| gather_rows(all, &sample_indices(all.rows(), m, opts.seed ^ 0x5A5A)));
    let sample = gathered.as_ref().map_or(all, |m| m.view());
    let unit = opts.spherical.then(|| normalized(sample));
    let train = unit.as_ref().map_or(sample, |m| m.view());
    // On CUDA the training rows stay on the device for every iteration.
    let resident = ctx.is_cuda().then(|| ctx.upload(train)).transpose()?;
    let points = resident.as_ref().map_or(Input::F32(train), Input::Resident);
    let mut centroids = initial_centroids(ctx, &points, train, opts)?;
    if opts.spherical {
        centroids = normalized(centroids.view());
    }
    let lloyd = Lloyd {
        points,
        host: train,
        groups: 1,
        group_dim: all.dim(),
        k: opts.k,
        spherical: opts.spherical,
        max_abs: max_abs(train),
        max_iterations: opts.max_iterations,
        tolerance: Some(opts.tolerance),
    };
    let mut report = |p: &KMeansProgress| {
        if let Some(f) = &opts.progress {
            f(p)
        }
    };
    let outcome = lloyd::run(ctx, &lloyd, centroids.into_vec(), &mut report)?;
    drop(resident);
    let centroids = Matrix::new(outcome.centroids, all.dim())?;
    // Every input point (checked finite) assigned to the final centroids.
    let (ids, dist) = ctx
        .backend()
        .nearest(&data, centroids.view(), opts.spherical)?;
    let mut counts = vec![0usize; opts.k];
    for &i in &ids {
        counts[i as usize] += 1;
    }
    Ok(KMeans {
        centroids,
        assignments: ids.into_iter().map(|i| i as usize).collect(),
        counts,
        inertia: dist.iter().map(|&d| d as f64).sum(),
        iterations: outcome.iterations,
        converged: outcome.converged,
    })
}

/// The options against the data: clusters, tolerance, iterations, the
/// training sample's size and finite values.
fn check_options(all: MatrixView<'_>, opts: &KMeansOptions) -> Result<()> {
    let (n, k) = (all.rows(), opts.k);
    if n == 0 {
        return Err(Error::EmptyInput {
            what: "k-means input",
        });
    }
    if k == 0 {
        return Err(Error::invalid("k", k, "k-means needs at least one cluster"));
    }
    if opts.tolerance.is_nan() || opts.tolerance < 0.0 {
        return Err(Error::invalid(
            "tolerance",
            opts.tolerance,
            "must be a number >= 0",
        ));
    }
    if opts.max_iterations == 0 {
        return Err(Error::invalid(
            "max_iterations",
            0,
            "k-means needs at least one iteration",
        ));
    }
    check_finite(all, "k-means input")?;
    if opts.max_training_points == Some(0) {
        return Err(Error::invalid(
            "max_training_points",
            0,
            "must be at least k",
        ));
    }
    let n_train = opts.max_training_points.map_or(n, |m| m.min(n));
    if n_train < k {
        return Err(Error::invalid(
            "k",
            k,
            format!("there are only {n_train} training points; k-means needs at least k"),
        ));
    }
    Ok(())
}

/// The first centroids of `opts.init`, checked.
fn initial_centroids(
    ctx: &Context,
    points: &Input<'_>,
    train: MatrixView<'_>,
    opts: &KMeansOptions,
) -> Result<Matrix> {
    let (k, dim) = (opts.k, train.dim());
    let metric = if opts.spherical {
        Metric::Cosine
    } else {
        Metric::L2
    };
    match &opts.init {
        KMeansInit::Centroids(c) => {
            if c.rows() != k || c.dim() != dim {
                return Err(Error::invalid(
                    "initial centroids",
                    format!("{} x {}", c.rows(), c.dim()),
                    format!("expected k x dim = {k} x {dim}"),
                ));
            }
            check_finite(c.view(), "initial centroids")?;
            Ok(c.clone())
        }
        KMeansInit::Random => Ok(gather_rows(
            train,
            &sample_indices(train.rows(), k, opts.seed),
        )),
        KMeansInit::KMeansPlusPlus => {
            kmeans_parallel_init(ctx, points, train, k, opts.seed, metric)
        }
    }
}

/// Errors on a non-finite value, naming its row and column.
pub(crate) fn check_finite(m: MatrixView<'_>, what: &'static str) -> Result<()> {
    use rayon::prelude::*;
    let bad = m
        .as_slice()
        .par_chunks(1 << 16)
        .enumerate()
        .find_map_first(|(c, s)| {
            s.iter()
                .position(|v| !v.is_finite())
                .map(|p| c * (1 << 16) + p)
        });
    match bad {
        Some(p) => Err(Error::invalid(
            what,
            m.as_slice()[p],
            format!(
                "row {} column {} is not finite; clustering needs finite values",
                p / m.dim(),
                p % m.dim()
            ),
        )),
        None => Ok(()),
    }
}

/// Rows scaled to unit length (zero rows stay zero).
pub(crate) fn normalized(m: MatrixView<'_>) -> Matrix {
    use rayon::prelude::*;
    let mut v = m.as_slice().to_vec();
    v.par_chunks_mut(m.dim()).for_each(unit_length);
    Matrix::new(v, m.dim()).expect("same shape")
}

/// Validated k-means input: the rows to train on, on the host.
fn training_rows(data: &Input<'_>) -> Result<Option<Matrix>> {
    match data {
        Input::F32(_) => Ok(None),
        Input::Binary(_) => Err(Error::invalid(
            "k-means input",
            "bit-packed binary rows",
            "k-means clusters f32 rows",
        )),
        Input::Resident(d) => {
            if d.is_binary() {
                return Err(Error::invalid(
                    "k-means input",
                    "bit-packed binary rows",
                    "k-means clusters f32 rows",
                ));
            }
            Ok(Some(d.to_host()?))
        }
    }
}

/// Largest magnitude of the (finite) values.
pub(crate) fn max_abs(m: MatrixView<'_>) -> f32 {
    use rayon::prelude::*;
    m.as_slice()
        .par_chunks(1 << 16)
        .map(|c| c.iter().fold(0f32, |a, v| a.max(v.abs())))
        .reduce(|| 0.0, f32::max)
}

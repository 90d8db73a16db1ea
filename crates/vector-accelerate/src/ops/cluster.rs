//! k-means clustering (L2 and spherical) and nearest-centroid assignment,
//! on either backend.
//!
//! Lloyd iterations alternate an assignment step, which is an exact 1-NN
//! search of the points against the centroids (the k-NN machinery: on CUDA
//! a tensor-core filter with exact re-scoring), and an update step that sums
//! the members of each cluster deterministically (fixed summation order on
//! the CPU, 64-bit fixed-point accumulation on the device), so a run is
//! reproducible bit for bit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::cluster::LloydStep;
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::core::rng::{sample_indices, uniform_at, Rng};
use crate::cuda::cluster::DeviceAssignment;
use crate::ops::knn::knn;
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;
use crate::{cpu, cuda};

/// How the first centroids are chosen.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum KMeansInit {
    /// k-means++ seeding in its scalable form (k-means||, Bahmani et al.
    /// 2012): five rounds that each sample about `2k` points with
    /// probability proportional to their squared distance to the points
    /// chosen so far (distances computed by the context's backend), then
    /// weighted k-means++ on those candidates. With at most `10k` points
    /// every point is a candidate, which is exactly k-means++.
    #[default]
    KMeansPlusPlus,
    /// `k` distinct points drawn uniformly.
    Random,
    /// These centroids (`k` rows of the data's dimension).
    Centroids(Matrix),
}

/// What the progress callback of [`kmeans`] receives after each Lloyd
/// iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansProgress {
    /// Iterations done (1-based).
    pub iteration: usize,
    /// The iteration limit.
    pub max_iterations: usize,
    /// Sum of the distances of the training points to their centroid in
    /// this iteration's assignment.
    pub inertia: f64,
    /// Training points whose cluster changed in this iteration (all of
    /// them in the first).
    pub changed: usize,
    /// Clusters that were empty and re-seeded in this iteration.
    pub reseeded: usize,
    /// Wall time of the iteration (assignment and update).
    pub elapsed: Duration,
}

/// A progress callback (see [`KMeansOptions::with_progress`]).
pub type ProgressFn = Arc<dyn Fn(&KMeansProgress) + Send + Sync>;

/// Options of [`kmeans`].
///
/// ```
/// use vector_accelerate::cluster::{KMeansInit, KMeansOptions};
/// let o = KMeansOptions::new(256).with_max_iterations(10).with_seed(7).with_init(KMeansInit::Random);
/// assert_eq!(o.k, 256);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct KMeansOptions {
    /// Number of clusters.
    pub k: usize,
    /// Lloyd iterations at most (default 25).
    pub max_iterations: usize,
    /// Stop when an iteration lowers the inertia by at most `tolerance`
    /// times the inertia (default 1e-4), or when no point changes cluster.
    pub tolerance: f64,
    /// Initialisation (default k-means++).
    pub init: KMeansInit,
    /// Seed of every random choice (default 0).
    pub seed: u64,
    /// Spherical k-means: points are scaled to unit length, assignment
    /// ranks by cosine distance and centroids are unit-length means
    /// (default false: squared L2).
    pub spherical: bool,
    /// Train on at most this many points, drawn uniformly with the seed;
    /// every point is still assigned to the final centroids (default: all).
    pub max_training_points: Option<usize>,
    /// Called after each iteration.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for KMeansOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KMeansOptions")
            .field("k", &self.k)
            .field("max_iterations", &self.max_iterations)
            .field("tolerance", &self.tolerance)
            .field("init", &self.init)
            .field("seed", &self.seed)
            .field("spherical", &self.spherical)
            .field("max_training_points", &self.max_training_points)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl KMeansOptions {
    /// Defaults for `k` clusters.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            max_iterations: 25,
            tolerance: 1e-4,
            init: KMeansInit::KMeansPlusPlus,
            seed: 0,
            spherical: false,
            max_training_points: None,
            progress: None,
        }
    }
    /// Sets the iteration limit.
    pub fn with_max_iterations(mut self, n: usize) -> Self {
        self.max_iterations = n;
        self
    }
    /// Sets the relative inertia tolerance (0: run until no point moves).
    pub fn with_tolerance(mut self, t: f64) -> Self {
        self.tolerance = t;
        self
    }
    /// Sets the initialisation.
    pub fn with_init(mut self, init: KMeansInit) -> Self {
        self.init = init;
        self
    }
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Spherical (cosine) k-means.
    pub fn with_spherical(mut self, on: bool) -> Self {
        self.spherical = on;
        self
    }
    /// Trains on a uniform subsample of at most `n` points.
    pub fn with_max_training_points(mut self, n: usize) -> Self {
        self.max_training_points = Some(n);
        self
    }
    /// Calls `f` after every iteration.
    pub fn with_progress(mut self, f: impl Fn(&KMeansProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
}

/// The result of [`kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// `k x dim` centroids (unit length for spherical k-means).
    pub centroids: Matrix,
    /// Cluster of every input point under the final centroids.
    pub assignments: Vec<usize>,
    /// Points per cluster under the final assignment.
    pub counts: Vec<usize>,
    /// Sum over every input point of its distance to its centroid (squared
    /// L2, or cosine distance for spherical k-means), in f64.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Whether the tolerance stopped the iterations before the limit.
    pub converged: bool,
}

/// The nearest centroid of each point.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Index of the nearest centroid (ties: the smaller index).
    pub clusters: Vec<usize>,
    /// The distance to it (squared L2, or cosine distance).
    pub distances: Vec<f32>,
}

/// Assigns each point to its nearest centroid: squared L2, or cosine
/// distance when `spherical` (the IVF coarse quantiser's operation). A
/// point with a non-finite value is assigned centroid 0 at distance NaN.
/// On CUDA, `f32` points against finite host centroids take the exact
/// tensor-core assignment of k-means.
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
    // CUDA with f32 points and finite host centroids: the exact tensor-core
    // assignment; everything else through exact k-NN.
    if let (Engine::Cuda(_), Input::F32(cm), false) = (ctx.engine(), &c, p.is_binary()) {
        if cm.rows() > 0 && cm.as_slice().iter().all(|v| v.is_finite()) && p.rows() > 0 {
            check_dims(&p, cm)?;
            let (ids, distances) = nearest(ctx, &p, cm, metric)?;
            return Ok(Assignment {
                clusters: ids.into_iter().map(|i| i as usize).collect(),
                distances,
            });
        }
    }
    let (mut clusters, mut distances): (Vec<usize>, Vec<f32>) =
        match cpu_nearest_l2(ctx, &p, &c, metric)? {
            Some((ids, d)) => (ids.into_iter().map(|i| i as usize).collect(), d),
            None => {
                let (ids, d) = knn(ctx, p, c, 1, metric)?.into_parts();
                (ids.into_iter().map(|i| i as usize).collect(), d)
            }
        };
    // A point with a non-finite value: centroid 0 at distance NaN (as the
    // CUDA assignment reports it).
    if let Input::F32(m) = p {
        for (i, row) in m.as_slice().chunks_exact(m.dim()).enumerate() {
            if row.iter().any(|v| !v.is_finite()) {
                clusters[i] = 0;
                distances[i] = f32::NAN;
            }
        }
    }
    Ok(Assignment {
        clusters,
        distances,
    })
}

/// Points and centroids of one dimension.
fn check_dims(p: &Input<'_>, c: &MatrixView<'_>) -> Result<()> {
    if p.dim() != c.dim() {
        return Err(Error::DimensionMismatch {
            what: "centroid dimension",
            expected: p.dim(),
            got: c.dim(),
        });
    }
    Ok(())
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
    let d = m.dim();
    let mut v = m.as_slice().to_vec();
    v.par_chunks_mut(d).for_each(|r| {
        let n = r
            .iter()
            .map(|x| (*x as f64) * (*x as f64))
            .sum::<f64>()
            .sqrt();
        if n > 0.0 {
            r.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
        }
    });
    Matrix::new(v, d).expect("same shape")
}

/// The training points where the backend works on them: host rows, or rows
/// on the CUDA device (uploaded once for all iterations).
pub(crate) enum Points<'a> {
    Host(MatrixView<'a>),
    Device(&'a DeviceMatrix),
}

impl Points<'_> {
    fn input(&self) -> Input<'_> {
        match self {
            Points::Host(m) => Input::F32(*m),
            Points::Device(d) => Input::Resident(d),
        }
    }
}

/// The nearest centroid of every training point with its distance, where
/// the backend keeps them.
pub(crate) enum Assigned {
    Host { ids: Vec<u32>, dist: Vec<f32> },
    Device(DeviceAssignment),
}

impl Assigned {
    /// Ids and distances on the host (downloaded from the device).
    fn to_host(&self) -> Result<(Vec<u32>, Vec<f32>)> {
        match self {
            Assigned::Host { ids, dist } => Ok((ids.clone(), dist.clone())),
            Assigned::Device(d) => d.to_host(),
        }
    }
}

/// One Lloyd step: the nearest centroid of every training point with its
/// distance, then the member sums of each cluster (`k x dim`, f64) and the
/// member counts, in a fixed order (deterministic). On CUDA the assignment
/// stays on the device and the previous one (`prev`) starts the search.
fn lloyd_step(
    ctx: &Context,
    pts: &Points<'_>,
    centroids: &Matrix,
    metric: Metric,
    max_abs: f32,
    prev: Option<&Assigned>,
) -> Result<LloydStep<Assigned>> {
    if let (Engine::Cuda(dev), Points::Device(d)) = (ctx.engine(), pts) {
        let cosine = metric == Metric::Cosine;
        let hint = match prev {
            Some(Assigned::Device(a)) => Some(a),
            _ => None,
        };
        let step = cuda::cluster::lloyd_step(dev, d, centroids.view(), cosine, max_abs, hint)?;
        return Ok(step.map_assigned(Assigned::Device));
    }
    let (ids, dist) = nearest(ctx, &pts.input(), &centroids.view(), metric)?;
    let k = centroids.rows();
    let (sums, counts) = match pts {
        Points::Host(m) => cpu::cluster::sums(*m, &ids, k),
        Points::Device(d) => match d.host_input() {
            Some(Input::F32(m)) => cpu::cluster::sums(m, &ids, k),
            _ => {
                return Err(Error::invalid(
                    "points",
                    "binary or device rows",
                    "k-means needs f32 rows on the context's device",
                ))
            }
        },
    };
    let changed = match prev {
        Some(Assigned::Host { ids: p, .. }) => {
            Some(p.iter().zip(&ids).filter(|(a, b)| a != b).count())
        }
        _ => None,
    };
    let nonfinite = dist
        .iter()
        .position(|d| !d.is_finite())
        .map(|r| (r, dist[r]));
    Ok(LloydStep {
        inertia: dist.iter().map(|&d| d as f64).sum(),
        assigned: Assigned::Host { ids, dist },
        sums,
        counts,
        changed,
        nonfinite,
    })
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
    let (n, dim, k) = (all.rows(), all.dim(), opts.k);
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
    // The training sample.
    let sample = match opts.max_training_points {
        Some(0) => {
            return Err(Error::invalid(
                "max_training_points",
                0,
                "must be at least k",
            ))
        }
        Some(m) if m < n => Some(sample_indices(n, m, opts.seed ^ 0x5A5A)),
        _ => None,
    };
    let n_train = sample.as_ref().map_or(n, |s| s.len());
    if n_train < k {
        return Err(Error::invalid(
            "k",
            k,
            format!("there are only {n_train} training points; k-means needs at least k"),
        ));
    }
    let gathered = sample.as_ref().map(|s| gather_rows(all, s));
    let train_view = gathered.as_ref().map_or(all, |m| m.view());
    let unit = opts.spherical.then(|| normalized(train_view));
    let train_host = unit.as_ref().map_or(train_view, |m| m.view());
    // On CUDA the training rows stay on the device for every iteration.
    let resident = match ctx.engine() {
        Engine::Cuda(_) => Some(ctx.upload(train_host)?),
        Engine::Cpu => None,
    };
    let pts = match &resident {
        Some(d) => Points::Device(d),
        None => Points::Host(train_host),
    };
    let max_abs = max_abs(train_host);
    let metric = if opts.spherical {
        Metric::Cosine
    } else {
        Metric::L2
    };

    let mut centroids = match &opts.init {
        KMeansInit::Centroids(c) => {
            if c.rows() != k || c.dim() != dim {
                return Err(Error::invalid(
                    "initial centroids",
                    format!("{} x {}", c.rows(), c.dim()),
                    format!("expected k x dim = {k} x {dim}"),
                ));
            }
            check_finite(c.view(), "initial centroids")?;
            c.clone()
        }
        KMeansInit::Random => {
            let idx = sample_indices(n_train, k, opts.seed);
            gather_rows(train_host, &idx)
        }
        KMeansInit::KMeansPlusPlus => {
            kmeans_parallel_init(ctx, &pts, train_host, k, opts.seed, metric)?
        }
    };
    if opts.spherical {
        centroids = normalized(centroids.view());
    }

    let mut prev: Option<Assigned> = None;
    let mut prev_inertia = f64::INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < opts.max_iterations {
        let t0 = Instant::now();
        let step = lloyd_step(ctx, &pts, &centroids, metric, max_abs, prev.as_ref())?;
        if let Some((r, d)) = step.nonfinite {
            return Err(Error::invalid(
                "k-means input",
                d,
                format!("training row {r} has a non-finite distance to every centroid"),
            ));
        }
        let inertia = step.inertia;
        let changed = step.changed.unwrap_or(n_train);
        let reseeded = update_centroids(
            &mut centroids,
            &step.sums,
            &step.counts,
            &step.assigned,
            train_host,
            opts.spherical,
        )?;
        iterations += 1;
        if let Some(f) = &opts.progress {
            f(&KMeansProgress {
                iteration: iterations,
                max_iterations: opts.max_iterations,
                inertia,
                changed,
                reseeded,
                elapsed: t0.elapsed(),
            });
        }
        let stalled = changed == 0 && reseeded == 0;
        let small_gain = prev_inertia.is_finite()
            && reseeded == 0
            && prev_inertia - inertia <= opts.tolerance * inertia;
        if stalled || small_gain {
            converged = true;
            break;
        }
        prev_inertia = inertia;
        prev = Some(step.assigned);
    }
    drop(resident);
    // Final assignment of every input point to the final centroids (the
    // input checked finite above).
    let (ids, dist) = nearest(ctx, &data, &centroids.view(), metric)?;
    let mut counts = vec![0usize; k];
    for &i in &ids {
        counts[i as usize] += 1;
    }
    Ok(KMeans {
        centroids,
        assignments: ids.into_iter().map(|i| i as usize).collect(),
        counts,
        inertia: dist.iter().map(|&d| d as f64).sum(),
        iterations,
        converged,
    })
}

/// The nearest centroid of each (finite) point and its distance: on CUDA
/// the exact tensor-core assignment, on the CPU exact k-NN with k = 1.
fn nearest(
    ctx: &Context,
    points: &Input<'_>,
    centroids: &MatrixView<'_>,
    metric: Metric,
) -> Result<(Vec<u32>, Vec<f32>)> {
    match ctx.engine() {
        Engine::Cuda(dev) => {
            cuda::cluster::assign(dev, points, *centroids, metric == Metric::Cosine, None)
        }
        Engine::Cpu => {
            if let Some(r) = cpu_nearest_l2(ctx, points, &Input::F32(*centroids), metric)? {
                return Ok(r);
            }
            let (ids, dist) = knn(ctx, *points, *centroids, 1, metric)?.into_parts();
            Ok((ids.into_iter().map(|i| i as u32).collect(), dist))
        }
    }
}

/// On the CPU with AVX-512, squared L2 between f32 host rows: the
/// dedicated assignment kernel (`cpu::assign`), which gives what exact
/// 1-NN through `knn` gives; points without a centroid at a finite
/// distance go through `knn`. `None` where it does not apply.
fn cpu_nearest_l2(
    ctx: &Context,
    points: &Input<'_>,
    centroids: &Input<'_>,
    metric: Metric,
) -> Result<Option<(Vec<u32>, Vec<f32>)>> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::host_rows;
        use crate::cpu::HostRows;
        if !matches!(ctx.engine(), Engine::Cpu) || metric != Metric::L2 || !cpu::assign::available()
        {
            return Ok(None);
        }
        let (Ok(HostRows::F32(pm)), Ok(HostRows::F32(cm))) =
            (host_rows(points), host_rows(centroids))
        else {
            return Ok(None);
        };
        if pm.rows() == 0 || cm.rows() == 0 || pm.dim() != cm.dim() {
            return Ok(None);
        }
        let (mut ids, mut dist) = cpu::assign::nearest_l2(pm, cm);
        let rest: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == u32::MAX).collect();
        if !rest.is_empty() {
            let rows = gather_rows(pm, &rest);
            let (ri, rd) = knn(ctx, &rows, cm, 1, metric)?.into_parts();
            for ((&i, id), d) in rest.iter().zip(ri).zip(rd) {
                ids[i] = id as u32;
                dist[i] = d;
            }
        }
        Ok(Some((ids, dist)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (ctx, points, centroids, metric);
        Ok(None)
    }
}

/// Rows `idx` of `m`.
pub(crate) fn gather_rows(m: MatrixView<'_>, idx: &[usize]) -> Matrix {
    let d = m.dim();
    let mut v = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        v.extend_from_slice(m.row(i));
    }
    Matrix::new(v, d).expect("non-empty rows")
}

/// New centroids from member sums; each empty cluster takes the point
/// farthest from its own centroid among clusters with more than one member
/// (never left empty, zero or NaN). Returns the number re-seeded.
fn update_centroids(
    centroids: &mut Matrix,
    sums: &[f64],
    counts: &[u64],
    assigned: &Assigned,
    pts: MatrixView<'_>,
    spherical: bool,
) -> Result<usize> {
    let d = centroids.dim();
    let k = counts.len();
    let mut c = centroids.as_slice().to_vec();
    for j in 0..k {
        if counts[j] > 0 {
            let inv = 1.0 / counts[j] as f64;
            for t in 0..d {
                c[j * d + t] = (sums[j * d + t] * inv) as f32;
            }
        }
    }
    let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
    if !empty.is_empty() {
        let (ids, dist) = assigned.to_host()?;
        let mut left = counts.to_vec();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        // Farthest first; ties by the smaller index (deterministic).
        order.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]).then(a.cmp(&b)));
        let mut it = order.into_iter();
        for &j in &empty {
            for p in it.by_ref() {
                let from = ids[p] as usize;
                if left[from] > 1 {
                    left[from] -= 1;
                    left[j] = 1;
                    c[j * d..(j + 1) * d].copy_from_slice(pts.row(p));
                    break;
                }
            }
        }
    }
    let mut m = Matrix::new(c, d).expect("same shape");
    if spherical {
        m = normalized(m.view());
    }
    *centroids = m;
    Ok(empty.len())
}

/// k-means|| seeding: rounds of independent D^2 sampling (distances from
/// the backend), then weighted k-means++ on the candidates on the host.
fn kmeans_parallel_init(
    ctx: &Context,
    pts: &Points<'_>,
    host: MatrixView<'_>,
    k: usize,
    seed: u64,
    metric: Metric,
) -> Result<Matrix> {
    const ROUNDS: usize = 5;
    let n = host.rows();
    let oversample = 2 * k;
    let mut rng = Rng::new(seed);
    if n <= ROUNDS * oversample {
        let w = vec![1.0; n];
        let idx = weighted_kmeanspp(host, &w, k, &mut rng, metric);
        return Ok(gather_rows(host, &idx));
    }
    let mut cand = vec![rng.below(n)];
    let mut d2 = nearest(ctx, &pts.input(), &gather_rows(host, &cand).view(), metric)?.1;
    for round in 0..ROUNDS {
        let phi: f64 = d2.iter().map(|&d| d.max(0.0) as f64).sum();
        if phi.is_nan() || phi <= 0.0 {
            break;
        }
        let picked: Vec<usize> = (0..n)
            .filter(|&i| {
                let p = oversample as f64 * d2[i].max(0.0) as f64 / phi;
                uniform_at(seed, round as u64 + 1, i as u64) < p
            })
            .collect();
        if picked.is_empty() {
            continue;
        }
        let (_, nd) = nearest(
            ctx,
            &pts.input(),
            &gather_rows(host, &picked).view(),
            metric,
        )?;
        for (a, b) in d2.iter_mut().zip(nd) {
            *a = a.min(b);
        }
        cand.extend(picked);
    }
    cand.sort_unstable();
    cand.dedup();
    // Weights: points nearest to each candidate.
    let cm = gather_rows(host, &cand);
    let (near, _) = nearest(ctx, &pts.input(), &cm.view(), metric)?;
    let mut w = vec![0.0f64; cand.len()];
    for c in near {
        w[c as usize] += 1.0;
    }
    let mut idx: Vec<usize> = weighted_kmeanspp(cm.view(), &w, k.min(cand.len()), &mut rng, metric)
        .into_iter()
        .map(|j| cand[j])
        .collect();
    // Fewer distinct candidates than k: fill with points not yet chosen.
    if idx.len() < k {
        let taken: std::collections::HashSet<usize> = idx.iter().copied().collect();
        idx.extend((0..n).filter(|i| !taken.contains(i)).take(k - idx.len()));
    }
    Ok(gather_rows(host, &idx))
}

/// Weighted k-means++ over the rows of `m` (weights `w`): indices of `k`
/// rows. Distances in f64 on the host, parallel over rows.
fn weighted_kmeanspp(
    m: MatrixView<'_>,
    w: &[f64],
    k: usize,
    rng: &mut Rng,
    metric: Metric,
) -> Vec<usize> {
    use rayon::prelude::*;
    let n = m.rows();
    let pick = |rng: &mut Rng, mass: &[f64]| -> Option<usize> {
        let total: f64 = mass.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let mut r = rng.next_f64() * total;
        for (i, &v) in mass.iter().enumerate() {
            if v > 0.0 {
                if r < v {
                    return Some(i);
                }
                r -= v;
            }
        }
        mass.iter().rposition(|&v| v > 0.0)
    };
    let dist = |a: &[f32], b: &[f32]| -> f64 {
        match metric {
            Metric::Cosine => {
                let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
                for (x, y) in a.iter().zip(b) {
                    ab += *x as f64 * *y as f64;
                    aa += *x as f64 * *x as f64;
                    bb += *y as f64 * *y as f64;
                }
                if aa > 0.0 && bb > 0.0 {
                    (1.0 - ab / (aa.sqrt() * bb.sqrt())).max(0.0)
                } else {
                    1.0
                }
            }
            _ => a
                .iter()
                .zip(b)
                .map(|(x, y)| {
                    let t = *x as f64 - *y as f64;
                    t * t
                })
                .sum(),
        }
    };
    let first = pick(rng, w).unwrap_or(0);
    let mut chosen = vec![first];
    let mut d2: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| dist(m.row(i), m.row(first)))
        .collect();
    while chosen.len() < k {
        let mass: Vec<f64> = d2.iter().zip(w).map(|(d, w)| d * w).collect();
        let Some(next) = pick(rng, &mass) else {
            // Every remaining point coincides with a chosen one.
            let taken: std::collections::HashSet<usize> = chosen.iter().copied().collect();
            chosen.extend((0..n).filter(|i| !taken.contains(i)).take(k - chosen.len()));
            break;
        };
        chosen.push(next);
        let c = m.row(next);
        d2.par_iter_mut().enumerate().for_each(|(i, v)| {
            let t = dist(m.row(i), c);
            if t < *v {
                *v = t;
            }
        });
    }
    chosen
}

/// Largest magnitude of the (finite) values.
pub(crate) fn max_abs(m: MatrixView<'_>) -> f32 {
    use rayon::prelude::*;
    m.as_slice()
        .par_chunks(1 << 16)
        .map(|c| c.iter().fold(0f32, |a, v| a.max(v.abs())))
        .reduce(|| 0.0, f32::max)
}

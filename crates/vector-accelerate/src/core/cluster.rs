//! The clustering family's vocabulary: k-means options, progress and
//! results, the assignment result, and the result of one Lloyd step.

use std::sync::Arc;
use std::time::Duration;

use crate::core::matrix::Matrix;

/// The result of one Lloyd step; `A` holds the assignment where the backend
/// keeps it.
pub(crate) struct LloydStep<A> {
    /// Nearest centroid of each point and its exact distance.
    pub assigned: A,
    /// Member sums, `k x d`.
    pub sums: Vec<f64>,
    /// Member counts.
    pub counts: Vec<u64>,
    /// Sum of the distances.
    pub inertia: f64,
    /// Points whose centroid differs from the previous step's (when given).
    pub changed: Option<usize>,
    /// The first point with a non-finite distance, and that distance.
    pub nonfinite: Option<(usize, f32)>,
}

/// How the first centroids are chosen.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum KMeansInit {
    /// k-means++ seeding in its scalable form (k-means||, Bahmani et al.
    /// 2012): five rounds that each sample about `2k` points with
    /// probability proportional to their squared distance to the points
    /// chosen so far (distances computed by the context's backend), then
    /// weighted k-means++ on those candidates. With at most `10k` points
    /// every point is a candidate, which is exactly k-means++. The weighted
    /// step runs on the host and costs about `10 k^2 d` operations: for
    /// tens of thousands of clusters, [`KMeansInit::Random`] is the
    /// practical choice (IVF indexes of more than 8,192 lists use it).
    #[default]
    KMeansPlusPlus,
    /// `k` distinct points drawn uniformly.
    Random,
    /// These centroids (`k` rows of the data's dimension).
    Centroids(Matrix),
}

/// What the progress callback of [`kmeans`](crate::cluster::kmeans) receives after each Lloyd
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

/// Options of [`kmeans`](crate::cluster::kmeans).
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

/// The result of [`kmeans`](crate::cluster::kmeans).
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

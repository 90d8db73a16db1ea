//! The clustering family's shared vocabulary: the result of one Lloyd step.

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

impl<A> LloydStep<A> {
    /// The same step with its assignment wrapped (or moved) by `f`.
    pub(crate) fn map_assigned<B>(self, f: impl FnOnce(A) -> B) -> LloydStep<B> {
        LloydStep {
            assigned: f(self.assigned),
            sums: self.sums,
            counts: self.counts,
            inertia: self.inertia,
            changed: self.changed,
            nonfinite: self.nonfinite,
        }
    }
}

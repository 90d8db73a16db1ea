//! Progress of a graph index's build, reported to a callback the caller
//! gives [`Index::set_build_progress`](super::Index::set_build_progress).

use std::sync::Arc;

/// A stage of a graph build, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStage {
    /// Each vector's nearest neighbours (the k-NN graph; `done` counts
    /// vectors).
    Neighbours,
    /// Pruning each vector's neighbours by detour counts (`done` counts
    /// vectors).
    Pruning,
    /// Adding the reverse edges (`done` counts vectors).
    ReverseEdges,
    /// The upper levels that find a search's entry points (`done` counts
    /// levels).
    UpperLevels,
}

impl BuildStage {
    /// A short lower-case name (`"neighbours"`, `"pruning"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BuildStage::Neighbours => "neighbours",
            BuildStage::Pruning => "pruning",
            BuildStage::ReverseEdges => "reverse edges",
            BuildStage::UpperLevels => "upper levels",
        }
    }
}

/// What the build-progress callback receives: `done` of `total` units of
/// `stage` (called at the start and end of each stage, and as the
/// neighbour search advances).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildProgress {
    /// The stage running.
    pub stage: BuildStage,
    /// Units done.
    pub done: u64,
    /// Units in the stage.
    pub total: u64,
}

/// A build-progress callback.
pub(crate) type BuildProgressFn = Arc<dyn Fn(&BuildProgress) + Send + Sync>;

/// Reports to an optional callback.
#[derive(Clone, Copy)]
pub(crate) struct Reporter<'a>(pub Option<&'a BuildProgressFn>);

impl Reporter<'_> {
    /// No callback.
    pub const NONE: Reporter<'static> = Reporter(None);

    /// Reports `done` of `total` in `stage`.
    pub fn at(self, stage: BuildStage, done: usize, total: usize) {
        if let Some(f) = self.0 {
            f(&BuildProgress {
                stage,
                done: done as u64,
                total: total as u64,
            });
        }
    }
}

/// An index's build-progress callback, if any.
#[derive(Clone, Default)]
pub(crate) struct ProgressHook(pub Option<BuildProgressFn>);

impl ProgressHook {
    /// A reporter to this hook.
    pub fn reporter(&self) -> Reporter<'_> {
        Reporter(self.0.as_ref())
    }
}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(<callback>)"
        } else {
            "None"
        })
    }
}

//! [`SearchParams`]: the options of one index search.

use super::selector::IdSelector;
use crate::core::precision::WalkPrecision;

/// Options of [`Index::search`](super::Index::search) and
/// [`Index::range_search`](super::Index::range_search), made with
/// [`Default`] and the `with_*` setters.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SearchParams<'a> {
    /// Inverted lists scanned per query (IVF indexes; default: the value
    /// the index was built with, see [`Index::nprobe`](super::Index::nprobe)).
    /// Values above the number of lists scan every list.
    pub nprobe: Option<usize>,
    /// Only ids that pass are returned. A filtered search still returns `k`
    /// results whenever `k` allowed vectors exist.
    pub filter: Option<&'a IdSelector>,
    /// Candidates re-scored exactly per result (`k * refine_factor`) where
    /// the index stores exact vectors beside its codes (default: the
    /// index's own, see [`Index::refine_factor`](super::Index::refine_factor)).
    pub refine_factor: Option<usize>,
    /// Candidates a graph search keeps while it walks the graph (FAISS's
    /// `efSearch`; default 64, and at least `k`): more is slower and finds
    /// more of the true neighbours.
    pub ef: Option<usize>,
    /// How a graph search on CUDA reads the vectors as it walks (default
    /// [`WalkPrecision::Exact`], the fp32 vectors): f16 copies or 8-bit
    /// codes, the `ef` candidates kept re-scored in fp32, so results carry
    /// exact distances. The host walk always reads fp32.
    pub precision: Option<WalkPrecision>,
}

impl<'a> SearchParams<'a> {
    /// Scans `nprobe` lists per query.
    pub fn with_nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = Some(nprobe);
        self
    }
    /// Returns only ids that pass `filter`.
    pub fn with_filter(mut self, filter: &'a IdSelector) -> Self {
        self.filter = Some(filter);
        self
    }
    /// Keeps `ef` candidates while walking a graph index.
    pub fn with_ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }
    /// Sets how a graph search on CUDA reads the vectors (see
    /// [`precision`](Self::precision)).
    pub fn with_precision(mut self, precision: WalkPrecision) -> Self {
        self.precision = Some(precision);
        self
    }
    /// Re-scores `k * factor` candidates exactly.
    pub fn with_refine_factor(mut self, factor: usize) -> Self {
        self.refine_factor = Some(factor);
        self
    }
}

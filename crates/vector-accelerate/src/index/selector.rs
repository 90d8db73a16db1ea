//! [`IdSelector`]: which user ids a search may return or a removal deletes.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use rayon::slice::ParallelSliceMut;

/// A predicate on user ids (FAISS's `IDSelector`): a search filter
/// ([`SearchParams::with_filter`](super::SearchParams::with_filter)) or the
/// ids [`Index::remove_ids`](super::Index::remove_ids) deletes. Cheap to
/// clone (the lists are shared).
///
/// ```
/// use vector_accelerate::index::IdSelector;
/// assert!(IdSelector::allow([3, 5]).contains(5));
/// assert!(!IdSelector::deny([3, 5]).contains(5));
/// assert!(IdSelector::range(10..20).contains(19));
/// assert!(IdSelector::bitset(vec![0b100]).contains(2));
/// assert!(IdSelector::from_fn(|id| id % 2 == 0).contains(4));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum IdSelector {
    /// Every id.
    All,
    /// Only the listed ids (ascending, without repeats: build it with
    /// [`IdSelector::allow`]).
    Allow(Arc<[u64]>),
    /// Every id except the listed ones (ascending, without repeats: build it
    /// with [`IdSelector::deny`]).
    Deny(Arc<[u64]>),
    /// Ids in `start..end`.
    Range(Range<u64>),
    /// Id `i` passes when bit `i % 64` of word `i / 64` is set; ids past
    /// the last word do not pass.
    Bitset(Arc<Vec<u64>>),
    /// Ids for which the function returns true (evaluated on the host, on
    /// either backend).
    Predicate(Arc<dyn Fn(u64) -> bool + Send + Sync>),
}

impl IdSelector {
    /// Only the listed ids (in any order, repeats allowed).
    pub fn allow(ids: impl IntoIterator<Item = u64>) -> Self {
        IdSelector::Allow(sorted_unique(ids))
    }
    /// Every id except the listed ones (in any order, repeats allowed).
    pub fn deny(ids: impl IntoIterator<Item = u64>) -> Self {
        IdSelector::Deny(sorted_unique(ids))
    }
    /// Ids in `range`.
    pub fn range(range: Range<u64>) -> Self {
        IdSelector::Range(range)
    }
    /// Ids whose bit is set in `words` (bit `i % 64` of word `i / 64`).
    pub fn bitset(words: Vec<u64>) -> Self {
        IdSelector::Bitset(Arc::new(words))
    }
    /// Ids for which `f` returns true.
    pub fn from_fn(f: impl Fn(u64) -> bool + Send + Sync + 'static) -> Self {
        IdSelector::Predicate(Arc::new(f))
    }

    /// Whether `id` passes.
    pub fn contains(&self, id: u64) -> bool {
        match self {
            IdSelector::All => true,
            IdSelector::Allow(s) => s.binary_search(&id).is_ok(),
            IdSelector::Deny(s) => s.binary_search(&id).is_err(),
            IdSelector::Range(r) => r.contains(&id),
            IdSelector::Bitset(w) => usize::try_from(id / 64)
                .ok()
                .and_then(|i| w.get(i))
                .is_some_and(|word| word >> (id % 64) & 1 == 1),
            IdSelector::Predicate(f) => f(id),
        }
    }

    /// The ids an allow-list names, ascending (so a caller can visit them
    /// instead of testing every id).
    pub(crate) fn listed(&self) -> Option<&[u64]> {
        match self {
            IdSelector::Allow(s) => Some(s),
            _ => None,
        }
    }
}

/// `ids` sorted (on all cores) without repeats.
fn sorted_unique(ids: impl IntoIterator<Item = u64>) -> Arc<[u64]> {
    let mut v: Vec<u64> = ids.into_iter().collect();
    v.par_sort_unstable();
    v.dedup();
    v.into()
}

impl fmt::Debug for IdSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdSelector::All => write!(f, "All"),
            IdSelector::Allow(s) => write!(f, "Allow({} ids)", s.len()),
            IdSelector::Deny(s) => write!(f, "Deny({} ids)", s.len()),
            IdSelector::Range(r) => write!(f, "Range({r:?})"),
            IdSelector::Bitset(w) => write!(f, "Bitset({} words)", w.len()),
            IdSelector::Predicate(_) => write!(f, "Predicate"),
        }
    }
}

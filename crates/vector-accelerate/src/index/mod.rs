//! Vector indexes: [`Index`] holds vectors under user `u64` ids and
//! searches them exactly (`"Flat"`) or through inverted lists
//! (`"IVF4096,Flat"`), chosen by a factory string as in FAISS.
//!
//! - **Ids**: [`Index::add`] numbers vectors sequentially,
//!   [`Index::add_with_ids`] takes the caller's ids (a duplicate is
//!   [`Error::DuplicateId`](crate::Error::DuplicateId)); results carry them.
//! - **Search**: any `k`, every metric of [`knn`](crate::knn), on both
//!   backends; [`SearchParams`] sets `nprobe` and a filter ([`IdSelector`]).
//!   A filtered search returns `k` results whenever `k` allowed vectors
//!   exist. An IVF search with a filter passing a fraction `f` of the
//!   vectors probes `nprobe / f` lists (as many allowed vectors as an
//!   unfiltered search sees), or searches the allowed vectors exactly where
//!   that is cheaper (`f^2 <= c nprobe / nlist`, `c` measured per backend:
//!   8 on the CPU, 256 on CUDA); queries left short probe
//!   more lists.
//! - **Removal**: [`Index::remove_ids`] hides ids at once; space is
//!   reclaimed when removed rows pass a threshold or by [`Index::compact`];
//!   ids are never renumbered.
//! - **Ties** go to the vector added first, on both backends.
//!
//! The coarse quantizer of an IVF index is the library's k-means (spherical
//! for the cosine metrics) on at most 256 training vectors per list; a
//! search groups the batch's queries by list, so each probed list is read
//! once and searched by the exact k-NN for all its queries.

mod api;
mod coded;
mod durable;
mod durable_multi;
mod exact;
mod factory;
mod file;
pub(crate) mod graph;
mod ids;
mod ivf;
mod multi;
mod multi_file;
mod params;
mod progress;
mod range;
mod rows;
mod selector;
mod storage;
mod tail;
mod wal;

pub use api::Index;
pub use durable::{DurableIndex, DurableOptions, Recovery, SyncPolicy};
pub use durable_multi::DurableMultiIndex;
pub use factory::recommended_nlist;
pub use multi::{Layout, MultiIndex};
pub use params::SearchParams;
pub use progress::{BuildProgress, BuildStage};
pub use range::RangeResult;
pub use selector::IdSelector;

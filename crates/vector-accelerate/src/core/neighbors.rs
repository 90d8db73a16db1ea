//! The result type of every search ([`Neighbors`]) and the ranking order
//! shared by both backends.

use crate::core::error::{Error, Result};

/// Which end of the order is "best".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// Smallest values first (distances).
    Smallest,
    /// Largest values first (similarities, inner products).
    Largest,
}

/// The id that marks a missing result (fewer than `k` candidates).
pub const MISSING_ID: u64 = u64::MAX;

/// The value stored next to a missing id: `+inf` for [`Order::Smallest`], `-inf` for [`Order::Largest`].
pub fn missing_value(order: Order) -> f32 {
    match order {
        Order::Smallest => f32::INFINITY,
        Order::Largest => f32::NEG_INFINITY,
    }
}

/// Maps a value to a `u32` whose unsigned order is the ranking order
/// (best first); NaN maps to `u32::MAX`. The CUDA kernels use the same map.
#[inline]
pub(crate) fn sort_key(v: f32, order: Order) -> u32 {
    if v.is_nan() {
        return u32::MAX;
    }
    let b = if v == 0.0 { 0 } else { v.to_bits() };
    let asc = if b >> 31 == 1 { !b } else { b | 0x8000_0000 };
    match order {
        Order::Smallest => asc,
        Order::Largest => !asc,
    }
}

/// `k` results per row, best first: ids and values in row-major `[rows x k]`
/// arrays. Missing results have id [`MISSING_ID`] and value [`missing_value`].
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    rows: usize,
    k: usize,
    order: Order,
    ids: Vec<u64>,
    distances: Vec<f32>,
}

impl Neighbors {
    /// `rows x k` missing results.
    pub fn missing(rows: usize, k: usize, order: Order) -> Self {
        Self {
            rows,
            k,
            order,
            ids: vec![MISSING_ID; rows * k],
            distances: vec![missing_value(order); rows * k],
        }
    }

    /// Builds from parts (lengths must be `rows * k`).
    pub fn from_parts(
        rows: usize,
        k: usize,
        order: Order,
        ids: Vec<u64>,
        distances: Vec<f32>,
    ) -> Result<Self> {
        for (what, len) in [
            ("ids length", ids.len()),
            ("distances length", distances.len()),
        ] {
            if len != rows * k {
                return Err(Error::DimensionMismatch {
                    what,
                    expected: rows * k,
                    got: len,
                });
            }
        }
        Ok(Self {
            rows,
            k,
            order,
            ids,
            distances,
        })
    }

    /// Number of rows (queries).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Results per row.
    pub fn k(&self) -> usize {
        self.k
    }
    /// The order results are ranked in.
    pub fn order(&self) -> Order {
        self.order
    }
    /// All ids, row-major `[rows x k]`.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }
    /// All values, row-major `[rows x k]`.
    pub fn distances(&self) -> &[f32] {
        &self.distances
    }
    /// The ids of row `r`.
    pub fn row_ids(&self, r: usize) -> &[u64] {
        &self.ids[r * self.k..(r + 1) * self.k]
    }
    /// The values of row `r`.
    pub fn row_distances(&self, r: usize) -> &[f32] {
        &self.distances[r * self.k..(r + 1) * self.k]
    }
    /// Result `j` of row `r`, or `None` when missing.
    pub fn get(&self, r: usize, j: usize) -> Option<(u64, f32)> {
        let i = r * self.k + j;
        (self.ids[i] != MISSING_ID).then(|| (self.ids[i], self.distances[i]))
    }
    /// `(ids, values)`, consuming the result.
    pub fn into_parts(self) -> (Vec<u64>, Vec<f32>) {
        (self.ids, self.distances)
    }
    pub(crate) fn parts_mut(&mut self) -> (&mut [u64], &mut [f32]) {
        (&mut self.ids, &mut self.distances)
    }
    /// Replaces every present id by `f(id)` (on all cores for large
    /// results: the lookups behind `f` are scattered reads).
    pub(crate) fn map_ids(&mut self, f: impl Fn(u64) -> u64 + Sync) {
        use rayon::prelude::*;
        let map = |i: &mut u64| {
            if *i != MISSING_ID {
                *i = f(*i);
            }
        };
        if self.ids.len() >= 1 << 14 {
            self.ids
                .par_chunks_mut(4096)
                .for_each(|c| c.iter_mut().for_each(map));
        } else {
            self.ids.iter_mut().for_each(map);
        }
    }
    /// Appends the rows of `other` (same `k` and order).
    pub(crate) fn append_rows(&mut self, other: Neighbors) {
        self.rows += other.rows;
        self.ids.extend(other.ids);
        self.distances.extend(other.distances);
    }
}

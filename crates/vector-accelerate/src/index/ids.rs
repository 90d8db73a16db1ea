//! [`IdMap`]: the user ids of an index's rows, their deletion marks and
//! the masks a filtered search uses.
//!
//! Rows are numbered by *slot* (their position in the order they were
//! added, renumbered only by compaction); users see only their own ids.

use std::collections::HashMap;

use rayon::prelude::*;

use super::selector::IdSelector;
use crate::core::error::{Error, Result};
use crate::core::neighbors::MISSING_ID;

/// A set of slots as bits (bit `s % 64` of word `s / 64`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SlotSet {
    words: Vec<u64>,
    count: usize,
}

impl SlotSet {
    /// Whether `slot` is in the set.
    #[inline]
    pub fn contains(&self, slot: usize) -> bool {
        self.words
            .get(slot / 64)
            .is_some_and(|w| w >> (slot % 64) & 1 == 1)
    }
    /// The bits, word `s / 64` holding slot `s`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
    /// Number of slots in the set.
    pub fn count(&self) -> usize {
        self.count
    }
    /// The slots in the set, ascending (on all cores).
    pub fn slots(&self) -> Vec<usize> {
        const WORDS: usize = 1024;
        let mut out = vec![0usize; self.count];
        // Each run of words writes its part of `out`, found from the counts
        // of the runs before it.
        let counts: Vec<usize> = self
            .words
            .par_chunks(WORDS)
            .map(|c| c.iter().map(|w| w.count_ones() as usize).sum())
            .collect();
        let mut parts = Vec::with_capacity(counts.len());
        let mut rest = out.as_mut_slice();
        for &c in &counts {
            let (part, tail) = rest.split_at_mut(c);
            parts.push(part);
            rest = tail;
        }
        self.words
            .par_chunks(WORDS)
            .zip(parts)
            .enumerate()
            .for_each(|(run, (words, part))| {
                let mut j = 0;
                for (i, &w) in words.iter().enumerate() {
                    let mut w = w;
                    while w != 0 {
                        part[j] = (run * WORDS + i) * 64 + w.trailing_zeros() as usize;
                        j += 1;
                        w &= w - 1;
                    }
                }
            });
        out
    }
    /// The set of `slots` slots for which `keep` is true.
    pub fn build(slots: usize, keep: impl Fn(usize) -> bool + Sync) -> Self {
        let words: Vec<u64> = (0..slots.div_ceil(64))
            .into_par_iter()
            .map(|i| {
                let end = (i * 64 + 64).min(slots);
                (i * 64..end).fold(0u64, |w, s| w | (u64::from(keep(s)) << (s % 64)))
            })
            .collect();
        let count = words.iter().map(|w| w.count_ones() as usize).sum();
        Self { words, count }
    }
}

/// Slot to user id, user id to slot, and which slots are deleted.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdMap {
    /// The user id of every slot (deleted ones included until compaction).
    ids: Vec<u64>,
    /// The slot of every live id.
    slots: HashMap<u64, usize>,
    /// Deleted slots, when any (bit set = deleted).
    deleted: Option<SlotSet>,
    /// The id the next [`IdMap::sequential`] batch starts at.
    next_id: u64,
    /// Whether every slot's id is the slot number (ids 0, 1, 2, ... in
    /// order): then a live id's slot is the id itself, no lookup needed.
    numbered: bool,
}

impl IdMap {
    /// The map of `ids` (slot order), all live; `next_id` as saved.
    pub fn from_ids(ids: Vec<u64>, next_id: u64) -> Result<Self> {
        let mut m = Self {
            next_id,
            ..Self::default()
        };
        m.check_new(&ids)?;
        m.push(&ids);
        Ok(m)
    }
    /// Live rows.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    /// Slots, deleted ones included.
    pub fn slot_count(&self) -> usize {
        self.ids.len()
    }
    /// Deleted slots not yet compacted away.
    pub fn deleted_count(&self) -> usize {
        self.deleted.as_ref().map_or(0, SlotSet::count)
    }
    /// The id after the largest sequential one handed out.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
    /// Whether every slot's id is the slot number (so results by slot are
    /// already results by id).
    pub fn is_numbered(&self) -> bool {
        self.numbered
    }
    /// The user id of `slot`.
    #[inline]
    pub fn id(&self, slot: usize) -> u64 {
        self.ids[slot]
    }
    /// The slot of a live id.
    pub fn slot(&self, id: u64) -> Option<usize> {
        if self.numbered || self.ids.is_empty() {
            let s = usize::try_from(id).ok().filter(|&s| s < self.ids.len())?;
            return (!self.is_deleted(s)).then_some(s);
        }
        self.slots.get(&id).copied()
    }
    /// Whether `slot` is deleted.
    #[inline]
    pub fn is_deleted(&self, slot: usize) -> bool {
        self.deleted.as_ref().is_some_and(|d| d.contains(slot))
    }

    /// `n` fresh sequential ids (after every id this map has seen).
    pub fn sequential(&self, n: usize) -> Vec<u64> {
        (self.next_id..self.next_id + n as u64).collect()
    }

    /// Refuses ids that are reserved, repeated in `ids`, or already live.
    pub fn check_new(&self, ids: &[u64]) -> Result<()> {
        check_new_ids(ids, |id| self.slots.contains_key(&id))
    }

    /// Appends rows with `ids` (checked by [`IdMap::check_new`]).
    pub fn push(&mut self, ids: &[u64]) {
        let base = self.ids.len();
        self.numbered = (base == 0 || self.numbered)
            && ids
                .iter()
                .enumerate()
                .all(|(i, &id)| id == (base + i) as u64);
        self.slots.reserve(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            self.slots.insert(id, base + i);
            self.next_id = self.next_id.max(id.saturating_add(1));
        }
        self.ids.extend_from_slice(ids);
        if let Some(d) = &mut self.deleted {
            d.words.resize(self.ids.len().div_ceil(64), 0);
        }
    }

    /// Deletes the live ids `sel` selects; returns how many.
    pub fn remove(&mut self, sel: &IdSelector) -> usize {
        let gone: Vec<usize> = match sel.listed() {
            Some(list) => list.iter().filter_map(|id| self.slot(*id)).collect(),
            None => (0..self.ids.len())
                .into_par_iter()
                .filter(|&s| !self.is_deleted(s) && sel.contains(self.ids[s]))
                .collect(),
        };
        let n = self.ids.len();
        let d = self.deleted.get_or_insert_with(|| SlotSet {
            words: vec![0; n.div_ceil(64)],
            count: 0,
        });
        for &s in &gone {
            d.words[s / 64] |= 1 << (s % 64);
            self.slots.remove(&self.ids[s]);
        }
        d.count += gone.len();
        gone.len()
    }

    /// The live slots `filter` passes, or `None` when that is every slot
    /// (no filter and nothing deleted).
    pub fn allowed(&self, filter: Option<&IdSelector>) -> Option<SlotSet> {
        let filter = filter.filter(|f| !matches!(f, IdSelector::All));
        match filter {
            None => self.deleted.as_ref().map(|_| self.live()),
            Some(sel) => Some(match sel.listed() {
                Some(list) => self.listed_slots(list),
                None => SlotSet::build(self.ids.len(), |s| {
                    !self.is_deleted(s) && sel.contains(self.ids[s])
                }),
            }),
        }
    }

    /// The live slots of the ids of an allow-list (ascending, no repeats).
    fn listed_slots(&self, list: &[u64]) -> SlotSet {
        let mut set = SlotSet {
            words: vec![0; self.ids.len().div_ceil(64)],
            count: 0,
        };
        let put = |s: usize| {
            set.words[s / 64] |= 1 << (s % 64);
            set.count += 1;
        };
        if self.numbered {
            // The slot is the id: no lookups worth spreading over cores.
            list.iter().filter_map(|id| self.slot(*id)).for_each(put);
        } else {
            let slots: Vec<usize> = list.par_iter().filter_map(|id| self.slot(*id)).collect();
            slots.into_iter().for_each(put);
        }
        set
    }

    /// Every live slot.
    fn live(&self) -> SlotSet {
        SlotSet::build(self.ids.len(), |s| !self.is_deleted(s))
    }

    /// Drops the deleted slots: returns the old slot of every kept row, in
    /// order (the new slot of `kept[i]` is `i`).
    pub fn compact(&mut self) -> Vec<usize> {
        let kept: Vec<usize> = (0..self.ids.len())
            .filter(|&s| !self.is_deleted(s))
            .collect();
        self.ids = kept.iter().map(|&s| self.ids[s]).collect();
        self.slots = self
            .ids
            .iter()
            .enumerate()
            .map(|(s, &id)| (id, s))
            .collect();
        self.deleted = None;
        self.numbered = self.ids.iter().enumerate().all(|(s, &id)| id == s as u64);
        kept
    }
}

/// Refuses ids that are reserved (`u64::MAX`), repeated in `ids`, or
/// `held` already.
pub(crate) fn check_new_ids(ids: &[u64], held: impl Fn(u64) -> bool) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for &id in ids {
        if id == MISSING_ID {
            return Err(Error::invalid(
                "id",
                id,
                "u64::MAX marks a missing result and cannot be a vector's id",
            ));
        }
        if held(id) || !seen.insert(id) {
            return Err(Error::DuplicateId { id });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_list_every_set_bit_across_runs_of_words() {
        // 200,003 slots: several runs of 1,024 words and a partial last word.
        let n = 200_003;
        let keep = |s: usize| s.is_multiple_of(7) || s % 64 == 63 || s == n - 1;
        let set = SlotSet::build(n, keep);
        let want: Vec<usize> = (0..n).filter(|&s| keep(s)).collect();
        assert_eq!(set.count(), want.len());
        assert_eq!(set.slots(), want);
        assert!(SlotSet::build(n, |_| false).slots().is_empty());
    }

    #[test]
    fn allow_lists_give_the_same_slots_with_and_without_numbered_ids() {
        let n = 70_000u64;
        let list: Vec<u64> = (0..n)
            .filter(|i| i.is_multiple_of(5) || i.is_multiple_of(64))
            .collect();
        let sel = IdSelector::allow(list.iter().rev().copied().chain([3, 3, n + 9]));
        // Ids 0, 1, 2, ... and the same ids with the first two swapped.
        let numbered = IdMap::from_ids((0..n).collect(), n).unwrap();
        assert!(numbered.is_numbered());
        let mut swapped: Vec<u64> = (0..n).collect();
        swapped.swap(0, 1);
        let other = IdMap::from_ids(swapped.clone(), n).unwrap();
        assert!(!other.is_numbered());
        let a = numbered.allowed(Some(&sel)).unwrap();
        let b = other.allowed(Some(&sel)).unwrap();
        let want = |ids: &[u64]| -> Vec<usize> {
            (0..n as usize)
                .filter(|&s| ids[s] == 3 || list.contains(&ids[s]))
                .collect()
        };
        assert_eq!(a.slots(), want(&(0..n).collect::<Vec<_>>()));
        assert_eq!(b.slots(), want(&swapped));
        assert_eq!(a.count(), a.slots().len());
    }
}

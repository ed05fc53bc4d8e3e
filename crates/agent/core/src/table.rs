//! The sharded hash table under the live table ([`crate::live`]) and the stack index
//! ([`crate::stacks`]).
//!
//! `SHARDS` shards, each behind its own [`SpinLock`] on its own cache line, each an
//! open-addressing table with linear probing and backward-shift deletion (no tombstones), in
//! memory the agent maps itself. A shard is chosen by the top bits of the key's hash, a slot by
//! its low bits, so threads working at the same time rarely meet on a lock; there is no global
//! lock and no global counter (one counter written by every `malloc` and `free` would be a
//! cache line bouncing between all threads). A shard grows (doubles) when it is three quarters
//! full.
//!
//! The slot type says which slots are empty and what each one's hash is
//! ([`TableSlot`]); the caller says which slot it looks for (a `matches` closure), so that the
//! stack index can compare a stack's frames, which live outside the table.

use crate::sync::{SpinGuard, SpinLock};
use crate::sys;

/// What the table needs of its slots.
pub trait TableSlot: Copy {
    /// The empty slot (the mapping's zero bytes must read as it: new shards are mapped, not
    /// written).
    const EMPTY: Self;
    /// How many slots a shard maps at its first insertion (a power of two).
    const INITIAL_SLOTS: usize;
    /// Is this slot empty?
    fn is_empty(&self) -> bool;
    /// The hash that placed this slot (its shard and its home slot).
    fn hash(&self) -> u64;
}

/// One shard's slots: `capacity` (a power of two, or 0 before the first insertion) slots in an
/// agent mapping, `len` of them full.
pub struct Shard<S> {
    slots: *mut S,
    capacity: usize,
    len: usize,
}

// SAFETY: the slots pointer is the shard's own mapping, tied to no thread; the shard is only
// reached through its lock (or with every other thread stopped).
unsafe impl<S: Send> Send for Shard<S> {}

/// Where a probe ended: the slot that matched, or the empty slot that ends the probe run.
enum Probe {
    Found(usize),
    Vacant(usize),
}

impl<S: TableSlot> Shard<S> {
    const NEW: Shard<S> = Shard {
        slots: core::ptr::null_mut(),
        capacity: 0,
        len: 0,
    };

    /// How many slots are full.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is the shard empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn slot(&self, i: usize) -> &S {
        debug_assert!(i < self.capacity);
        // SAFETY: `i` is below the capacity (a mask of it), so inside the shard's mapping.
        unsafe { &*self.slots.add(i) }
    }

    #[inline(always)]
    fn slot_mut(&mut self, i: usize) -> &mut S {
        debug_assert!(i < self.capacity);
        // SAFETY: as `slot`; `&mut self` makes this the only reference.
        unsafe { &mut *self.slots.add(i) }
    }

    /// Walk `hash`'s probe run. The shard must have slots.
    #[inline(always)]
    fn probe(&self, hash: u64, mut matches: impl FnMut(&S) -> bool) -> Probe {
        let mask = self.capacity - 1;
        let mut i = (hash as usize) & mask;
        loop {
            let slot = self.slot(i);
            if slot.is_empty() {
                return Probe::Vacant(i);
            }
            if matches(slot) {
                return Probe::Found(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The slot `matches` accepts among those of `hash`'s probe run.
    #[inline(always)]
    pub fn find(&self, hash: u64, matches: impl FnMut(&S) -> bool) -> Option<&S> {
        if self.capacity == 0 {
            return None;
        }
        match self.probe(hash, matches) {
            Probe::Found(i) => Some(self.slot(i)),
            Probe::Vacant(_) => None,
        }
    }

    /// Make sure the shard has slots (its first mapping); false if it could not be mapped.
    pub fn ensure_slots(&mut self) -> bool {
        self.capacity > 0 || self.grow()
    }

    /// Make room for one more slot (grow at three quarters full); false if it could not grow.
    #[inline(always)]
    fn reserve_one(&mut self) -> bool {
        (self.len + 1) * 4 <= self.capacity * 3 || self.grow()
    }

    /// Put `new` in the slot `matches` accepts (replacing it), or in a new slot. False only if
    /// the shard could not grow.
    #[inline(always)]
    pub fn insert_or_replace(
        &mut self,
        hash: u64,
        new: S,
        matches: impl FnMut(&S) -> bool,
    ) -> bool {
        if !self.reserve_one() {
            return false;
        }
        match self.probe(hash, matches) {
            Probe::Found(i) => *self.slot_mut(i) = new,
            Probe::Vacant(i) => {
                *self.slot_mut(i) = new;
                self.len += 1;
            }
        }
        true
    }

    /// Put `new`, which the caller knows is not in the shard, in a new slot. False only if the
    /// shard could not grow.
    pub fn insert_new(&mut self, hash: u64, new: S) -> bool {
        self.insert_or_replace(hash, new, |_| false)
    }

    /// Take out the slot `matches` accepts, if any.
    #[inline(always)]
    pub fn remove(&mut self, hash: u64, matches: impl FnMut(&S) -> bool) -> Option<S> {
        if self.capacity == 0 {
            return None;
        }
        let Probe::Found(found) = self.probe(hash, matches) else {
            return None;
        };
        let removed = *self.slot(found);
        // Backward-shift deletion: move later members of the probe run into the hole.
        let mask = self.capacity - 1;
        let mut hole = found;
        let mut j = (found + 1) & mask;
        loop {
            let candidate = *self.slot(j);
            if candidate.is_empty() {
                break;
            }
            let home = (candidate.hash() as usize) & mask;
            // Can `candidate` move to `hole`? Yes if its home is not cyclically in (hole, j].
            let between = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !between {
                *self.slot_mut(hole) = candidate;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        *self.slot_mut(hole) = S::EMPTY;
        self.len -= 1;
        Some(removed)
    }

    /// Every full slot.
    pub fn iter(&self) -> impl Iterator<Item = &S> {
        (0..self.capacity)
            .map(|i| self.slot(i))
            .filter(|slot| !slot.is_empty())
    }

    /// Double the capacity (or map the first slots). False if the mapping failed (the shard is
    /// unchanged).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> bool {
        let capacity = if self.capacity == 0 {
            S::INITIAL_SLOTS
        } else {
            self.capacity * 2
        };
        let slots = sys::map_anonymous(capacity * core::mem::size_of::<S>(), false) as *mut S;
        if slots.is_null() {
            return false;
        }
        let old = core::mem::replace(
            self,
            Shard {
                slots,
                capacity,
                len: 0,
            },
        );
        let mask = capacity - 1;
        for slot in old.iter() {
            let mut i = (slot.hash() as usize) & mask;
            while !self.slot(i).is_empty() {
                i = (i + 1) & mask;
            }
            *self.slot_mut(i) = *slot;
        }
        self.len = old.len;
        if !old.slots.is_null() {
            // SAFETY: the old slots are the shard's own mapping of that size, and no reference
            // into it outlives this call (`old` is dropped here).
            unsafe {
                sys::unmap(
                    old.slots as *mut u8,
                    old.capacity * core::mem::size_of::<S>(),
                )
            };
        }
        true
    }
}

/// A shard on a cache line of its own, so that two threads working in neighbouring shards do
/// not share one.
#[repr(align(64))]
struct CacheLine<T>(T);

/// The table: `SHARDS` (a power of two) shards of slots `S`.
pub struct ShardedTable<S, const SHARDS: usize> {
    shards: [CacheLine<SpinLock<Shard<S>>>; SHARDS],
}

impl<S: TableSlot, const SHARDS: usize> ShardedTable<S, SHARDS> {
    /// How far a hash shifts right to leave the bits that choose its shard.
    const SHARD_SHIFT: u32 = {
        assert!(SHARDS.is_power_of_two() && SHARDS > 1);
        64 - SHARDS.trailing_zeros()
    };

    /// An empty table (nothing mapped yet).
    pub const fn new() -> Self {
        ShardedTable {
            shards: [const { CacheLine(SpinLock::new(Shard::NEW)) }; SHARDS],
        }
    }

    /// The shard of `hash`, locked.
    #[inline(always)]
    pub fn shard(&self, hash: u64) -> SpinGuard<'_, Shard<S>> {
        self.shards[(hash >> Self::SHARD_SHIFT) as usize].0.lock()
    }

    /// How many slots are full. Only with every other thread stopped (it reads the shards
    /// without their locks).
    ///
    /// # Safety
    /// As [`ShardedTable::for_each_unlocked`].
    pub unsafe fn len_unlocked(&self) -> usize {
        self.shards
            .iter()
            // SAFETY: the caller guarantees nobody else changes the table.
            .map(|shard| unsafe { shard.0.get_unlocked() }.len)
            .sum()
    }

    /// Call `f` for every full slot, without the locks (a thread stopped forever might hold
    /// one). Only for scans, with every other thread stopped.
    ///
    /// # Safety
    /// No other thread may be changing the table, and the caller holds no shard guard.
    pub unsafe fn for_each_unlocked(&self, mut f: impl FnMut(&S)) {
        for shard in &self.shards {
            // SAFETY: the caller guarantees nobody else changes the table.
            unsafe { shard.0.get_unlocked() }.iter().for_each(&mut f);
        }
    }

    /// Take every shard lock before `fork`.
    pub fn lock_for_fork(&self) {
        for shard in &self.shards {
            shard.0.lock_for_fork();
        }
    }

    /// Release them in the parent after `fork`.
    ///
    /// # Safety
    /// The calling thread took them with [`ShardedTable::lock_for_fork`].
    pub unsafe fn unlock_after_fork(&self) {
        for shard in &self.shards {
            // SAFETY: the caller took every shard lock with lock_for_fork.
            unsafe { shard.0.unlock_after_fork() };
        }
    }

    /// Release them in the child after `fork`.
    ///
    /// # Safety
    /// Only in the child of a `fork` whose parent called [`ShardedTable::lock_for_fork`].
    pub unsafe fn reset_in_child(&self) {
        for shard in &self.shards {
            // SAFETY: the parent took every shard lock before forking: the shards are whole.
            unsafe { shard.0.reset_in_child() };
        }
    }
}

impl<S: TableSlot, const SHARDS: usize> Default for ShardedTable<S, SHARDS> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Pair {
        key: u64,
        value: u64,
    }

    /// A hash that sends every key of one residue to the same shard and home slot, so that
    /// probe runs are long and wrap around the end of the shard.
    fn clustered_hash(key: u64) -> u64 {
        (key % 7) | ((key % 7) << 60) | 0x1ff
    }

    impl TableSlot for Pair {
        const EMPTY: Pair = Pair { key: 0, value: 0 };
        const INITIAL_SLOTS: usize = 512;
        fn is_empty(&self) -> bool {
            self.key == 0
        }
        fn hash(&self) -> u64 {
            clustered_hash(self.key)
        }
    }

    fn insert(table: &ShardedTable<Pair, 4>, key: u64, value: u64) -> bool {
        let hash = clustered_hash(key);
        table
            .shard(hash)
            .insert_or_replace(hash, Pair { key, value }, |p| p.key == key)
    }

    fn remove(table: &ShardedTable<Pair, 4>, key: u64) -> Option<u64> {
        let hash = clustered_hash(key);
        table
            .shard(hash)
            .remove(hash, |p| p.key == key)
            .map(|p| p.value)
    }

    fn find(table: &ShardedTable<Pair, 4>, key: u64) -> Option<u64> {
        let hash = clustered_hash(key);
        table
            .shard(hash)
            .find(hash, |p| p.key == key)
            .map(|p| p.value)
    }

    /// Inserts, replacements and removals in long colliding probe runs, through growth,
    /// checked against a HashMap after every step.
    #[test]
    fn colliding_keys_match_a_hash_map_through_growth_and_deletion() {
        let table = ShardedTable::<Pair, 4>::new();
        let mut model = HashMap::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for step in 1..20_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = 1 + state % 3_000;
            if state % 5 < 2 {
                assert_eq!(remove(&table, key), model.remove(&key), "step {step}");
            } else {
                assert!(insert(&table, key, step));
                model.insert(key, step);
            }
            let probe = 1 + (state >> 20) % 3_000;
            assert_eq!(
                find(&table, probe),
                model.get(&probe).copied(),
                "step {step}"
            );
        }
        // SAFETY: no other thread uses the table.
        assert_eq!(unsafe { table.len_unlocked() }, model.len());
        let mut seen = HashMap::new();
        // SAFETY: as above.
        unsafe { table.for_each_unlocked(|p| assert!(seen.insert(p.key, p.value).is_none())) };
        assert_eq!(seen, model);
    }

    #[test]
    fn a_replaced_key_keeps_one_slot() {
        let table = ShardedTable::<Pair, 4>::new();
        assert!(insert(&table, 9, 1));
        assert!(insert(&table, 9, 2));
        assert_eq!(find(&table, 9), Some(2));
        // SAFETY: no other thread uses the table.
        assert_eq!(unsafe { table.len_unlocked() }, 1);
        assert_eq!(remove(&table, 9), Some(2));
        assert_eq!(remove(&table, 9), None);
        assert_eq!(find(&table, 9), None);
    }

    /// Four threads insert disjoint keys at once (sharing shards): every key is there after.
    #[test]
    fn concurrent_inserts_lose_nothing() {
        let table = ShardedTable::<Pair, 4>::new();
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let table = &table;
                scope.spawn(move || {
                    for i in 0..5_000u64 {
                        let key = 1 + t + 4 * i;
                        assert!(insert(table, key, key * 10));
                    }
                });
            }
        });
        // SAFETY: the threads have ended.
        assert_eq!(unsafe { table.len_unlocked() }, 20_000);
        for key in 1..=20_000u64 {
            assert_eq!(find(&table, key), Some(key * 10), "key {key}");
        }
    }
}

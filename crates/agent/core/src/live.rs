//! The live table: every block the program holds, keyed by address.
//!
//! 64 shards, each an open-addressing hash table with linear probing and backward-shift
//! deletion (no tombstones), in memory the agent maps itself. A shard is chosen by the
//! address's hash, so threads allocating at the same time rarely meet on a lock; there is no
//! global lock on the path of `malloc` or `free`.

use core::cell::UnsafeCell;

use leakscope_format::StackId;

use crate::sync::SpinLock;
use crate::sys;

const SHARDS: usize = 64;
const INITIAL_SLOTS: usize = 512;

/// One live block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct LiveBlock {
    /// The address `malloc` returned (0 marks an empty slot).
    pub address: u64,
    /// The size the program asked for.
    pub size: u64,
    /// Where it was allocated.
    pub stack: StackId,
    /// When it was allocated, in ticks of `sites::NOW_TICKS`.
    pub born: u32,
}

#[repr(align(64))]
struct Shard {
    lock: SpinLock,
    slots: UnsafeCell<*mut LiveBlock>,
    capacity: UnsafeCell<usize>,
    len: UnsafeCell<usize>,
}

// SAFETY: the cells are only touched with the shard's lock held (or, in the exit scan, with
// every other thread stopped).
unsafe impl Sync for Shard {}

/// The live table. (It keeps no global count: one counter written by every `malloc` and
/// `free` would be a cache line bouncing between all threads; [`LiveTable::len_unlocked`] sums
/// the shards instead.)
pub struct LiveTable {
    shards: [Shard; SHARDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SHARD: Shard = Shard {
    lock: SpinLock::new(),
    slots: UnsafeCell::new(core::ptr::null_mut()),
    capacity: UnsafeCell::new(0),
    len: UnsafeCell::new(0),
};

/// The process's live blocks.
pub static LIVE: LiveTable = LiveTable {
    shards: [EMPTY_SHARD; SHARDS],
};

#[inline(always)]
fn hash(address: u64) -> u64 {
    (address >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl LiveTable {
    #[inline(always)]
    fn shard_of(&self, h: u64) -> &Shard {
        &self.shards[(h >> 58) as usize % SHARDS]
    }

    /// Record a new block. Returns false only if the agent ran out of memory for its table.
    pub fn insert(&self, block: LiveBlock) -> bool {
        let h = hash(block.address);
        let shard = self.shard_of(h);
        let _guard = shard.lock.lock();
        // SAFETY: the shard lock is held.
        unsafe {
            if (*shard.len.get() + 1) * 4 > *shard.capacity.get() * 3 && !grow(shard) {
                return false;
            }
            let slots = *shard.slots.get();
            let mask = *shard.capacity.get() - 1;
            let mut i = (h as usize) & mask;
            loop {
                let slot = &mut *slots.add(i);
                if slot.address == 0 {
                    *slot = block;
                    *shard.len.get() += 1;
                    return true;
                }
                if slot.address == block.address {
                    // The program freed this address behind our back (a free we did not see,
                    // say from a static copy of libc); the new block replaces the old.
                    *slot = block;
                    return true;
                }
                i = (i + 1) & mask;
            }
        }
    }

    /// Forget a block; returns it if it was in the table.
    pub fn remove(&self, address: u64) -> Option<LiveBlock> {
        let h = hash(address);
        let shard = self.shard_of(h);
        let _guard = shard.lock.lock();
        // SAFETY: the shard lock is held.
        unsafe {
            let slots = *shard.slots.get();
            if slots.is_null() {
                return None;
            }
            let mask = *shard.capacity.get() - 1;
            let mut i = (h as usize) & mask;
            loop {
                let slot = *slots.add(i);
                if slot.address == 0 {
                    return None;
                }
                if slot.address == address {
                    break;
                }
                i = (i + 1) & mask;
            }
            let removed = *slots.add(i);
            // Backward-shift deletion: move later members of the probe run into the hole.
            let mut hole = i;
            let mut j = (i + 1) & mask;
            loop {
                let candidate = *slots.add(j);
                if candidate.address == 0 {
                    break;
                }
                let home = (hash(candidate.address) as usize) & mask;
                // Can `candidate` move to `hole`? Yes if its home is not cyclically in
                // (hole, j].
                let between = if hole <= j {
                    hole < home && home <= j
                } else {
                    hole < home || home <= j
                };
                if !between {
                    *slots.add(hole) = candidate;
                    hole = j;
                }
                j = (j + 1) & mask;
            }
            *slots.add(hole) = LiveBlock::default();
            *shard.len.get() -= 1;
            Some(removed)
        }
    }

    /// How many blocks the table holds. Only for the exit scan, with every other thread
    /// stopped (it reads the shards without their locks).
    pub fn len_unlocked(&self) -> usize {
        // SAFETY: a racy read of plain counters is what the caller asked for; with the other
        // threads stopped it is exact.
        self.shards
            .iter()
            .map(|shard| unsafe { *shard.len.get() })
            .sum()
    }

    /// Call `f` for every live block. Only for the exit scan, with every other thread stopped:
    /// it takes no locks (a thread stopped forever might hold one).
    ///
    /// # Safety
    /// No other thread may be changing the table.
    pub unsafe fn for_each_unlocked(&self, mut f: impl FnMut(&LiveBlock)) {
        for shard in &self.shards {
            // SAFETY: the caller guarantees nobody else changes the table.
            unsafe {
                let slots = *shard.slots.get();
                if slots.is_null() {
                    continue;
                }
                for i in 0..*shard.capacity.get() {
                    let block = &*slots.add(i);
                    if block.address != 0 {
                        f(block);
                    }
                }
            }
        }
    }

    /// Take every shard lock before `fork`.
    pub fn lock_for_fork(&self) {
        for shard in &self.shards {
            shard.lock.lock_forever();
        }
    }

    /// Release them after `fork`.
    pub fn unlock_after_fork(&self) {
        for shard in &self.shards {
            shard.lock.force_unlock();
        }
    }
}

/// Double a shard's capacity (or create it).
///
/// # Safety
/// The shard's lock must be held.
unsafe fn grow(shard: &Shard) -> bool {
    // SAFETY: the caller holds the lock.
    unsafe {
        let old = *shard.slots.get();
        let old_capacity = *shard.capacity.get();
        let capacity = if old.is_null() {
            INITIAL_SLOTS
        } else {
            old_capacity * 2
        };
        let slots = sys::map_anonymous(capacity * core::mem::size_of::<LiveBlock>(), false)
            as *mut LiveBlock;
        if slots.is_null() {
            return false;
        }
        let mask = capacity - 1;
        for j in 0..old_capacity {
            let block = *old.add(j);
            if block.address != 0 {
                let mut i = (hash(block.address) as usize) & mask;
                while (*slots.add(i)).address != 0 {
                    i = (i + 1) & mask;
                }
                *slots.add(i) = block;
            }
        }
        *shard.slots.get() = slots;
        *shard.capacity.get() = capacity;
        if !old.is_null() {
            sys::unmap(
                old as *mut u8,
                old_capacity * core::mem::size_of::<LiveBlock>(),
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random inserts and removes, checked against a HashMap, across several growths.
    #[test]
    fn matches_a_hash_map_through_growth_and_deletion() {
        let table = LiveTable {
            shards: [EMPTY_SHARD; SHARDS],
        };
        let mut model = HashMap::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for step in 0..400_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Addresses clustered like a heap's: 16-byte aligned, in a 4 MiB window.
            let address = 0x5555_0000_0000 + (state % (1 << 18)) * 16;
            if state.is_multiple_of(3) {
                assert_eq!(
                    table.remove(address).map(|b| b.size),
                    model.remove(&address),
                    "step {step}"
                );
            } else {
                table.insert(LiveBlock {
                    address,
                    size: step,
                    stack: 1,
                    born: 0,
                });
                model.insert(address, step);
            }
        }
        assert_eq!(table.len_unlocked(), model.len());
        for (&address, &size) in &model {
            assert_eq!(table.remove(address).map(|b| b.size), Some(size));
        }
        assert_eq!(table.len_unlocked(), 0);
    }
}

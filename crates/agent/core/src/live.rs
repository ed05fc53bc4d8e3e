//! The live table: every block the program holds, keyed by address.
//!
//! A [`ShardedTable`] of 64 shards keyed by the block's address, so threads allocating at the
//! same time rarely meet on a lock; there is no global lock on the path of `malloc` or `free`.

use leakscope_format::StackId;

use crate::table::{ShardedTable, TableSlot};

const SHARDS: usize = 64;

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

/// In [`LiveBlock::stack`]: the block is an object of a language runtime's own allocator
/// (CPython's object and memory domains, see `python`). Stack ids stay below 2^24.
pub const RUNTIME_OBJECT: u32 = 1 << 31;

impl LiveBlock {
    /// Its site: the stack it was allocated at.
    #[inline(always)]
    pub fn site(&self) -> StackId {
        self.stack & !RUNTIME_OBJECT
    }

    /// Is it an object of a runtime's own allocator? Such an object's life is the runtime's
    /// business (reference counts, a garbage collector): the leak check scans it as a root
    /// and never reports it (its site's growth is still judged).
    #[inline(always)]
    pub fn is_runtime_object(&self) -> bool {
        self.stack & RUNTIME_OBJECT != 0
    }
}

impl TableSlot for LiveBlock {
    const EMPTY: LiveBlock = LiveBlock {
        address: 0,
        size: 0,
        stack: 0,
        born: 0,
    };
    const INITIAL_SLOTS: usize = 512;

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.address == 0
    }

    #[inline(always)]
    fn hash(&self) -> u64 {
        hash(self.address)
    }
}

/// The live table. (It keeps no global count; [`LiveTable::len_unlocked`] sums the shards.)
pub struct LiveTable {
    blocks: ShardedTable<LiveBlock, SHARDS>,
}

/// The process's live blocks.
pub static LIVE: LiveTable = LiveTable::new();

#[inline(always)]
fn hash(address: u64) -> u64 {
    (address >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl LiveTable {
    /// An empty table.
    pub const fn new() -> Self {
        LiveTable {
            blocks: ShardedTable::new(),
        }
    }

    /// Record a new block. Returns false only if the agent ran out of memory for its table.
    /// A block already recorded at the same address is replaced: the program freed it behind
    /// our back (a free we did not see, say from a static copy of libc).
    #[inline(always)]
    pub fn insert(&self, block: LiveBlock) -> bool {
        let h = hash(block.address);
        self.blocks
            .shard(h)
            .insert_or_replace(h, block, |slot| slot.address == block.address)
    }

    /// Forget a block; returns it if it was in the table.
    #[inline(always)]
    pub fn remove(&self, address: u64) -> Option<LiveBlock> {
        let h = hash(address);
        self.blocks
            .shard(h)
            .remove(h, |slot| slot.address == address)
    }

    /// How many blocks the table holds. Only for scans, with every other thread stopped (it
    /// reads the shards without their locks).
    ///
    /// # Safety
    /// No other thread may be changing the table.
    pub unsafe fn len_unlocked(&self) -> usize {
        // SAFETY: the caller's promise.
        unsafe { self.blocks.len_unlocked() }
    }

    /// Call `f` for every live block. Only for scans, with every other thread stopped: it
    /// takes no locks (a thread stopped forever might hold one).
    ///
    /// # Safety
    /// No other thread may be changing the table.
    pub unsafe fn for_each_unlocked(&self, f: impl FnMut(&LiveBlock)) {
        // SAFETY: the caller's promise.
        unsafe { self.blocks.for_each_unlocked(f) }
    }

    /// Take every shard lock before `fork`.
    pub fn lock_for_fork(&self) {
        self.blocks.lock_for_fork();
    }

    /// Release them in the parent after `fork`.
    ///
    /// # Safety
    /// The calling thread took them with [`LiveTable::lock_for_fork`].
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller's promise.
        unsafe { self.blocks.unlock_after_fork() }
    }

    /// Release them in the child after `fork`.
    ///
    /// # Safety
    /// Only in the child of a `fork` whose parent called [`LiveTable::lock_for_fork`].
    pub unsafe fn reset_in_child(&self) {
        // SAFETY: the caller's promise.
        unsafe { self.blocks.reset_in_child() }
    }
}

impl Default for LiveTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random inserts and removes, checked against a HashMap, across several growths.
    #[test]
    fn matches_a_hash_map_through_growth_and_deletion() {
        let table = LiveTable::new();
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
        // SAFETY: no other thread uses the table.
        assert_eq!(unsafe { table.len_unlocked() }, model.len());
        for (&address, &size) in &model {
            assert_eq!(table.remove(address).map(|b| b.size), Some(size));
        }
        // SAFETY: as above.
        assert_eq!(unsafe { table.len_unlocked() }, 0);
    }
}

//! Stack interning: identical stacks share one [`StackId`].
//!
//! Frames live in one large append-only array and each stack's place in it in another,
//! indexed by id; both are reserved up front with `MAP_NORESERVE` so that they never move and
//! only the pages used cost memory. A [`ShardedTable`] indexes the stacks by hash.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use leakscope_format::StackId;

use crate::sync::SpinLock;
use crate::sys;
use crate::table::{ShardedTable, TableSlot};

const MAX_STACKS: usize = 1 << 24;
const MAX_FRAME_WORDS: usize = 1 << 29;
const SHARDS: usize = 16;

#[repr(C)]
struct StackRecord {
    first_frame: u64,
    frame_count: u32,
    ready: AtomicU32,
}

/// One entry of the index: a stack's hash and its id (0 marks an empty slot).
#[derive(Clone, Copy)]
#[repr(C)]
struct IndexSlot {
    hash: u64,
    id: u32,
    _pad: u32,
}

impl TableSlot for IndexSlot {
    const EMPTY: IndexSlot = IndexSlot {
        hash: 0,
        id: 0,
        _pad: 0,
    };
    const INITIAL_SLOTS: usize = 1024;

    fn is_empty(&self) -> bool {
        self.id == 0
    }

    fn hash(&self) -> u64 {
        self.hash
    }
}

/// The stack table.
pub struct StackTable {
    index: ShardedTable<IndexSlot, SHARDS>,
    records: AtomicPtr<StackRecord>,
    frames: AtomicPtr<u64>,
    frames_used: AtomicU64,
    next_id: AtomicU32,
    /// Serialises the mapping of `records` and `frames` (the pointers are published with
    /// Release, so readers need no lock).
    init_lock: SpinLock<()>,
}

/// The process's stacks.
pub static STACKS: StackTable = StackTable::new();

fn hash_frames(frames: &[u64]) -> u64 {
    // Each frame's contribution depends only on the frame and its position, so the
    // multiplications of a 30-frame stack run side by side instead of as one chain of 30
    // (the serial rotate-xor-multiply this replaced took 4.5% of a run whose stacks change
    // at outer frames, where every walk rehashes the whole stack).
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ frames.len() as u64;
    for (position, &frame) in frames.iter().enumerate() {
        let x = (frame ^ (position as u64).wrapping_mul(0xa076_1d64_78bd_642f))
            .wrapping_mul(0x5175_6f2d_0b4e_9a6b);
        h = h.wrapping_add(x ^ (x >> 32));
    }
    let h = (h ^ (h >> 31)).wrapping_mul(0xe703_7ed1_a0b4_28db);
    h ^ (h >> 29)
}

impl StackTable {
    /// An empty table (its storage is mapped at the first interning).
    pub const fn new() -> Self {
        StackTable {
            index: ShardedTable::new(),
            records: AtomicPtr::new(core::ptr::null_mut()),
            frames: AtomicPtr::new(core::ptr::null_mut()),
            frames_used: AtomicU64::new(0),
            next_id: AtomicU32::new(1),
            init_lock: SpinLock::new(()),
        }
    }

    fn ensure_storage(&self) -> bool {
        if !self.records.load(Ordering::Acquire).is_null() {
            return true;
        }
        let _guard = self.init_lock.lock();
        if !self.records.load(Ordering::Acquire).is_null() {
            return true;
        }
        let frames = sys::map_anonymous(MAX_FRAME_WORDS * 8, true) as *mut u64;
        let records = sys::map_anonymous(MAX_STACKS * core::mem::size_of::<StackRecord>(), true)
            as *mut StackRecord;
        if frames.is_null() || records.is_null() {
            return false;
        }
        self.frames.store(frames, Ordering::Release);
        self.records.store(records, Ordering::Release);
        true
    }

    /// The hash [`StackTable::intern_hashed`] expects.
    pub fn hash(&self, frames: &[u64]) -> u64 {
        hash_frames(frames)
    }

    /// The id of `frames`, interning it if new. 0 if the table is full or unavailable.
    pub fn intern(&self, frames: &[u64]) -> StackId {
        self.intern_hashed(frames, hash_frames(frames))
    }

    /// [`StackTable::intern`] with the hash already computed.
    pub fn intern_hashed(&self, frames: &[u64], hash: u64) -> StackId {
        if frames.is_empty() || !self.ensure_storage() {
            return 0;
        }
        let mut shard = self.index.shard(hash);
        if !shard.ensure_slots() {
            return 0;
        }
        if let Some(slot) = shard.find(hash, |slot| {
            slot.hash == hash && self.frames_equal(slot.id, frames)
        }) {
            return slot.id;
        }
        let id = self.append(frames);
        if id != 0 {
            // If the index cannot grow, the stack keeps its id but is not found again: a
            // repeat gets another id, which costs room, not correctness.
            shard.insert_new(hash, IndexSlot { hash, id, _pad: 0 });
        }
        id
    }

    fn append(&self, frames: &[u64]) -> StackId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if id as usize >= MAX_STACKS {
            self.next_id.store(MAX_STACKS as u32, Ordering::Relaxed);
            return 0;
        }
        let first = self
            .frames_used
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        if first as usize + frames.len() > MAX_FRAME_WORDS {
            return 0;
        }
        let frame_base = self.frames.load(Ordering::Acquire);
        let records = self.records.load(Ordering::Acquire);
        // SAFETY: `first..first+len` was reserved for us alone by the fetch_add and lies
        // inside the frames mapping; record `id` is ours alone for the same reason.
        unsafe {
            core::ptr::copy_nonoverlapping(
                frames.as_ptr(),
                frame_base.add(first as usize),
                frames.len(),
            );
            let record = &mut *records.add(id as usize);
            record.first_frame = first;
            record.frame_count = frames.len() as u32;
            record.ready.store(1, Ordering::Release);
        }
        id
    }

    fn frames_equal(&self, id: StackId, frames: &[u64]) -> bool {
        self.frames_of(id) == Some(frames)
    }

    /// The frames of stack `id`, if it is complete.
    pub fn frames_of(&self, id: StackId) -> Option<&[u64]> {
        let records = self.records.load(Ordering::Acquire);
        if records.is_null() || id == 0 || id >= self.next_id.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: ids below next_id have a record slot inside the mapping; a record is only
        // read after its `ready` flag was published with Release ordering.
        unsafe {
            let record = &*records.add(id as usize);
            if record.ready.load(Ordering::Acquire) == 0 {
                return None;
            }
            Some(core::slice::from_raw_parts(
                self.frames
                    .load(Ordering::Acquire)
                    .add(record.first_frame as usize),
                record.frame_count as usize,
            ))
        }
    }

    /// One past the highest id handed out so far.
    pub fn next_id(&self) -> StackId {
        self.next_id.load(Ordering::Acquire).min(MAX_STACKS as u32)
    }

    /// Take every lock before `fork`.
    pub fn lock_for_fork(&self) {
        self.init_lock.lock_for_fork();
        self.index.lock_for_fork();
    }

    /// Release the locks in the parent after `fork`.
    ///
    /// # Safety
    /// The calling thread took them with [`StackTable::lock_for_fork`].
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller took both with lock_for_fork.
        unsafe {
            self.index.unlock_after_fork();
            self.init_lock.unlock_after_fork();
        }
    }

    /// Release the locks in the child after `fork`.
    ///
    /// # Safety
    /// Only in the child of a `fork` whose parent called [`StackTable::lock_for_fork`].
    pub unsafe fn reset_in_child(&self) {
        // SAFETY: the parent took both before forking: the table is whole.
        unsafe {
            self.index.reset_in_child();
            self.init_lock.reset_in_child();
        }
    }
}

impl Default for StackTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_duplicates_share_one() {
        let table = StackTable::new();
        let a = table.intern(&[0x1000, 0x2000, 0x3000]);
        let b = table.intern(&[0x1000, 0x2000]);
        let c = table.intern(&[0x2000, 0x1000]);
        assert_eq!((a, b, c), (1, 2, 3), "ids are handed out in order from 1");
        assert_eq!(table.intern(&[0x1000, 0x2000, 0x3000]), a);
        assert_eq!(table.intern(&[0x2000, 0x1000]), c);
        assert_eq!(table.frames_of(a), Some(&[0x1000, 0x2000, 0x3000][..]));
        assert_eq!(table.frames_of(b), Some(&[0x1000, 0x2000][..]));
        assert_eq!(table.frames_of(0), None);
        assert_eq!(table.frames_of(4), None);
        assert_eq!(table.next_id(), 4);
    }

    #[test]
    fn an_empty_stack_has_no_id() {
        let table = StackTable::new();
        assert_eq!(table.intern(&[]), 0);
        assert_eq!(table.next_id(), 1);
    }

    #[test]
    fn stacks_whose_hashes_collide_keep_their_own_ids() {
        let table = StackTable::new();
        let hash = 0x5555_0000_0000_0001;
        let a = table.intern_hashed(&[1, 2], hash);
        let b = table.intern_hashed(&[3, 4], hash);
        assert_ne!(a, b);
        assert_eq!(table.intern_hashed(&[1, 2], hash), a);
        assert_eq!(table.intern_hashed(&[3, 4], hash), b);
    }

    /// Thousands of stacks, many past the index's first growth, stay findable.
    #[test]
    fn many_stacks_survive_the_index_growing() {
        let table = StackTable::new();
        let ids: Vec<StackId> = (0..20_000u64)
            .map(|i| table.intern(&[i, i * 3, 0xdead]))
            .collect();
        for (i, &id) in ids.iter().enumerate() {
            let i = i as u64;
            assert_eq!(id, i as u32 + 1);
            assert_eq!(table.intern(&[i, i * 3, 0xdead]), id);
        }
    }

    /// Four threads intern the same 2,000 stacks at once, in different orders: every stack
    /// gets one id, all threads see the same one, and no id is handed out twice.
    #[test]
    fn concurrent_interning_gives_each_stack_one_id() {
        let table = StackTable::new();
        let per_thread: Vec<Vec<StackId>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let table = &table;
                    scope.spawn(move || {
                        let mut ids = vec![0; 2_000];
                        for k in 0..2_000u64 {
                            // Each thread walks the stacks from another starting point.
                            let i = (k + t * 500) % 2_000;
                            ids[i as usize] = table.intern(&[0x4000 + i, 0x8000 + i % 7]);
                        }
                        ids
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ids in &per_thread[1..] {
            assert_eq!(ids, &per_thread[0]);
        }
        let mut sorted = per_thread[0].clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 2_000, "no two stacks share an id");
        assert_eq!(table.next_id(), 2_001, "no id was handed out and lost");
        for (i, &id) in per_thread[0].iter().enumerate() {
            let i = i as u64;
            assert_eq!(table.frames_of(id), Some(&[0x4000 + i, 0x8000 + i % 7][..]));
        }
    }
}

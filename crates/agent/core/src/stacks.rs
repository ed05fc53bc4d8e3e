//! Stack interning: identical stacks share one [`StackId`].
//!
//! Frames live in one large append-only array and each stack's place in it in another,
//! indexed by id; both are reserved up front with `MAP_NORESERVE` so that they never move and
//! only the pages used cost memory. A sharded hash index maps a stack's hash to its id.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use leakscope_format::StackId;

use crate::sync::SpinLock;
use crate::sys;

const MAX_STACKS: usize = 1 << 24;
const MAX_FRAME_WORDS: usize = 1 << 29;
const SHARDS: usize = 16;
const INITIAL_SLOTS: usize = 1024;

#[repr(C)]
struct StackRecord {
    first_frame: u64,
    frame_count: u32,
    ready: AtomicU32,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct IndexSlot {
    hash: u64,
    id: u32,
    _pad: u32,
}

#[repr(align(64))]
struct Shard {
    lock: SpinLock,
    slots: UnsafeCell<*mut IndexSlot>,
    capacity: UnsafeCell<usize>,
    len: UnsafeCell<usize>,
}

// SAFETY: the UnsafeCells are only touched with the shard's lock held.
unsafe impl Sync for Shard {}

/// The stack table.
pub struct StackTable {
    shards: [Shard; SHARDS],
    records: AtomicPtr<StackRecord>,
    frames: AtomicPtr<u64>,
    frames_used: AtomicU64,
    next_id: AtomicU32,
    init_lock: SpinLock,
}

// SAFETY: see the fields: atomics, or cells guarded by locks.
unsafe impl Sync for StackTable {}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SHARD: Shard = Shard {
    lock: SpinLock::new(),
    slots: UnsafeCell::new(core::ptr::null_mut()),
    capacity: UnsafeCell::new(0),
    len: UnsafeCell::new(0),
};

/// The process's stacks.
pub static STACKS: StackTable = StackTable {
    shards: [EMPTY_SHARD; SHARDS],
    records: AtomicPtr::new(core::ptr::null_mut()),
    frames: AtomicPtr::new(core::ptr::null_mut()),
    frames_used: AtomicU64::new(0),
    next_id: AtomicU32::new(1),
    init_lock: SpinLock::new(),
};

fn hash_frames(frames: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ frames.len() as u64;
    for &f in frames {
        h = (h.rotate_left(5) ^ f).wrapping_mul(0x5175_6f2d_0b4e_9a6b);
    }
    h ^ (h >> 29)
}

impl StackTable {
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
        let shard = &self.shards[(hash >> 60) as usize % SHARDS];
        let _guard = shard.lock.lock();
        // SAFETY: the shard lock is held for the rest of this function.
        unsafe {
            if (*shard.slots.get()).is_null() && !grow(shard) {
                return 0;
            }
            let mut mask = *shard.capacity.get() - 1;
            let mut i = (hash as usize) & mask;
            loop {
                let slot = &*(*shard.slots.get()).add(i);
                if slot.id == 0 {
                    break;
                }
                if slot.hash == hash && self.frames_equal(slot.id, frames) {
                    return slot.id;
                }
                i = (i + 1) & mask;
            }
            let id = self.append(frames);
            if id == 0 {
                return 0;
            }
            if (*shard.len.get() + 1) * 4 > *shard.capacity.get() * 3 {
                if !grow(shard) {
                    return id;
                }
                mask = *shard.capacity.get() - 1;
                i = (hash as usize) & mask;
                while (*(*shard.slots.get()).add(i)).id != 0 {
                    i = (i + 1) & mask;
                }
            }
            *(*shard.slots.get()).add(i) = IndexSlot { hash, id, _pad: 0 };
            *shard.len.get() += 1;
            id
        }
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

    /// Take every shard lock before `fork`.
    pub fn lock_for_fork(&self) {
        self.init_lock.lock_forever();
        for shard in &self.shards {
            shard.lock.lock_forever();
        }
    }

    /// Release the locks after `fork`.
    pub fn unlock_after_fork(&self) {
        for shard in &self.shards {
            shard.lock.force_unlock();
        }
        self.init_lock.force_unlock();
    }
}

/// Double a shard's index (or create it).
///
/// # Safety
/// The shard's lock must be held.
unsafe fn grow(shard: &Shard) -> bool {
    // SAFETY: the caller holds the lock, so the cells are ours.
    unsafe {
        let old = *shard.slots.get();
        let old_capacity = *shard.capacity.get();
        let capacity = if old.is_null() {
            INITIAL_SLOTS
        } else {
            old_capacity * 2
        };
        let slots = sys::map_anonymous(capacity * core::mem::size_of::<IndexSlot>(), false)
            as *mut IndexSlot;
        if slots.is_null() {
            return false;
        }
        let mask = capacity - 1;
        for j in 0..old_capacity {
            let slot = *old.add(j);
            if slot.id != 0 {
                let mut i = (slot.hash as usize) & mask;
                while (*slots.add(i)).id != 0 {
                    i = (i + 1) & mask;
                }
                *slots.add(i) = slot;
            }
        }
        *shard.slots.get() = slots;
        *shard.capacity.get() = capacity;
        if !old.is_null() {
            sys::unmap(
                old as *mut u8,
                old_capacity * core::mem::size_of::<IndexSlot>(),
            );
        }
        true
    }
}

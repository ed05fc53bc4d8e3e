//! Live memory per allocation site, for the snapshots.
//!
//! Each site (stack id) has a counter per *stripe*; a thread always uses its own stripe, so
//! threads allocating at the same site do not fight over one cache line. A counter packs
//! bytes and blocks into one `i64` (`bytes + blocks << 40`), so that `malloc` and `free` each
//! pay one atomic add: the sum over stripes unpacks exactly while a site holds less than
//! 512 GiB and fewer than 8 million blocks (beyond that its series is wrong; its exit totals,
//! which come from the live table, are not). A bitmap marks the sites that changed since the
//! last snapshot, so a snapshot costs the sites that changed, not the sites or blocks that
//! exist.

use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use leakscope_format::StackId;

use crate::sync::SpinLock;
use crate::sys;

/// Counter stripes (threads are spread over them round-robin).
const STRIPES: usize = 16;
/// Sites that can be counted (stack ids beyond it are counted under the last one).
pub const MAX_SITES: usize = 1 << 24;
const BLOCK_SHIFT: u32 = 40;

/// The per-site counters.
pub struct Sites {
    counters: AtomicPtr<AtomicI64>,
    dirty: AtomicPtr<AtomicU64>,
    next_stripe: AtomicU32,
    init_lock: SpinLock,
}

/// The process's per-site counters.
pub static SITES: Sites = Sites {
    counters: AtomicPtr::new(core::ptr::null_mut()),
    dirty: AtomicPtr::new(core::ptr::null_mut()),
    next_stripe: AtomicU32::new(0),
    init_lock: SpinLock::new(),
};

impl Sites {
    #[cold]
    fn init(&self) -> bool {
        let _guard = self.init_lock.lock();
        if !self.counters.load(Ordering::Acquire).is_null() {
            return true;
        }
        let counters = sys::map_anonymous(STRIPES * MAX_SITES * 8, true) as *mut AtomicI64;
        let dirty = sys::map_anonymous(MAX_SITES / 8, true) as *mut AtomicU64;
        if counters.is_null() || dirty.is_null() {
            return false;
        }
        self.dirty.store(dirty, Ordering::Release);
        self.counters.store(counters, Ordering::Release);
        true
    }

    /// The calling thread's stripe.
    #[inline(always)]
    fn stripe(&self) -> usize {
        let state = crate::thread::current();
        let mut stripe = state.stripe.load(Ordering::Relaxed);
        if stripe == 0 {
            stripe = self.next_stripe.fetch_add(1, Ordering::Relaxed) % STRIPES as u32 + 1;
            state.stripe.store(stripe, Ordering::Relaxed);
        }
        (stripe - 1) as usize
    }

    /// Count `blocks` blocks of `bytes` bytes in or out (negative) at `site`.
    #[inline(always)]
    pub fn add(&self, site: StackId, bytes: i64, blocks: i64) {
        let mut counters = self.counters.load(Ordering::Acquire);
        if counters.is_null() {
            if !self.init() {
                return;
            }
            counters = self.counters.load(Ordering::Acquire);
        }
        let site = (site as usize).min(MAX_SITES - 1);
        let stripe = self.stripe();
        // SAFETY: stripe < STRIPES and site < MAX_SITES, inside the counters mapping; the
        // dirty bitmap has MAX_SITES bits.
        unsafe {
            (*counters.add(stripe * MAX_SITES + site))
                .fetch_add(bytes + (blocks << BLOCK_SHIFT), Ordering::Relaxed);
            let word = &*self.dirty.load(Ordering::Acquire).add(site / 64);
            let bit = 1u64 << (site % 64);
            if word.load(Ordering::Relaxed) & bit == 0 {
                word.fetch_or(bit, Ordering::Relaxed);
            }
        }
    }

    /// Call `f(site, live_bytes, live_blocks)` for every site that changed since the last
    /// call, and clear the marks. For the writer (one caller at a time).
    pub fn drain_changed(&self, mut f: impl FnMut(StackId, u64, u64)) {
        let counters = self.counters.load(Ordering::Acquire);
        let dirty = self.dirty.load(Ordering::Acquire);
        if counters.is_null() || dirty.is_null() {
            return;
        }
        let last_site = crate::stacks::STACKS.next_id() as usize;
        for w in 0..=(last_site.min(MAX_SITES - 1) / 64) {
            // SAFETY: w < MAX_SITES / 64, inside the bitmap.
            let word = unsafe { &*dirty.add(w) };
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let site = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let (bytes, blocks) = self.total(counters, site);
                f(site as StackId, bytes, blocks);
            }
        }
    }

    /// Call `f(site, live_bytes, live_blocks)` for every site holding memory (a forked child's
    /// first snapshot, which must stand alone).
    pub fn for_each_live(&self, mut f: impl FnMut(StackId, u64, u64)) {
        let counters = self.counters.load(Ordering::Acquire);
        if counters.is_null() {
            return;
        }
        let last_site = (crate::stacks::STACKS.next_id() as usize).min(MAX_SITES);
        for site in 0..last_site {
            let (bytes, blocks) = self.total(counters, site);
            if blocks > 0 {
                f(site as StackId, bytes, blocks);
            }
        }
    }

    fn total(&self, counters: *mut AtomicI64, site: usize) -> (u64, u64) {
        let mut packed = 0i64;
        for stripe in 0..STRIPES {
            // SAFETY: inside the counters mapping, as in `add`.
            packed = packed.wrapping_add(unsafe {
                (*counters.add(stripe * MAX_SITES + site)).load(Ordering::Relaxed)
            });
        }
        let blocks = (packed + (1 << (BLOCK_SHIFT - 1))) >> BLOCK_SHIFT;
        let bytes = packed - (blocks << BLOCK_SHIFT);
        (bytes.max(0) as u64, blocks.max(0) as u64)
    }
}

/// A coarse clock for block ages: 10 ms ticks since start, advanced by the writer thread, so
/// that `malloc` reads a shared word instead of calling `clock_gettime`.
pub static NOW_TICKS: AtomicU32 = AtomicU32::new(0);
/// Nanoseconds per tick of [`NOW_TICKS`].
pub const TICK_NS: u64 = 10_000_000;
/// The tick at which this process's clock started: 0, or in a forked child the parent's tick
/// at `fork` (the child's inherited blocks keep their parent-time ticks; counted from here,
/// they are as old as the child).
pub static TICKS_AT_START: AtomicU32 = AtomicU32::new(0);

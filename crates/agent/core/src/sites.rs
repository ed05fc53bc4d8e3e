//! Live memory per allocation site, for the snapshots.
//!
//! Each site (stack id) has a counter per *stripe*; a thread always uses its own stripe, so
//! threads allocating at the same site do not fight over one cache line. A counter packs
//! bytes and blocks into one `i64` (`bytes + blocks << 40`), so that `malloc` and `free` each
//! pay one atomic add. A stripe's word decodes exactly while its share stays within
//! ±2^39 bytes and ±2^23 blocks, and the sum over stripes is exact as long as each decodes.
//! So the add looks at the value it produced: once any stripe's share of a site passes
//! ±2^18 blocks or ±2^34 bytes (far inside what decodes, and 16 stripes at those bounds
//! still sum inside it), the site becomes *wide* for good. Its packed words then stay as they
//! are, and every later change goes to a pair of plain 64-bit counters per stripe (two
//! atomic adds). Only sites that large, or whose blocks are freed by other threads than those
//! that allocated them in great numbers, pay for the second add; every count stays exact.
//!
//! A bitmap marks the sites that changed since the last snapshot, so a snapshot costs the
//! sites that changed, not the sites or blocks that exist.

use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use leakscope_format::StackId;

use crate::sync::SpinLock;
use crate::sys;

/// Counter stripes (threads are spread over them round-robin).
const STRIPES: usize = 16;
/// Sites that can be counted (stack ids beyond it are counted under the last one).
pub const MAX_SITES: usize = 1 << 24;
const BLOCK_SHIFT: u32 = 40;
/// A stripe's share of a site beyond which the site becomes wide (see the module's docs).
const WIDE_AT_BLOCKS: u64 = 1 << 18;
const WIDE_AT_BYTES: u64 = 1 << 34;
/// Words of one site bitmap.
const BITMAP_WORDS: usize = MAX_SITES / 64;

/// The per-site counters.
pub struct Sites {
    counters: AtomicPtr<AtomicI64>,
    /// Two bitmaps in one mapping: sites changed since the last snapshot, then wide sites.
    bitmaps: AtomicPtr<AtomicU64>,
    /// Wide sites' counters: (bytes, blocks) per stripe and site, mapped when the first site
    /// becomes wide.
    wide: AtomicPtr<AtomicI64>,
    /// The wide counters could not be mapped: not tried again (from every later `malloc`).
    wide_failed: core::sync::atomic::AtomicBool,
    next_stripe: AtomicU32,
    /// Serialises the mappings (the pointers are published with Release: readers take no
    /// lock).
    init_lock: SpinLock<()>,
}

/// The process's per-site counters.
pub static SITES: Sites = Sites::new();

/// A packed counter's (bytes, blocks), for a value whose parts lie within ±2^39 and ±2^23.
#[inline(always)]
fn unpack(packed: i64) -> (i64, i64) {
    let blocks = packed.wrapping_add(1 << (BLOCK_SHIFT - 1)) >> BLOCK_SHIFT;
    (packed.wrapping_sub(blocks << BLOCK_SHIFT), blocks)
}

impl Sites {
    /// Counters with nothing mapped yet.
    pub const fn new() -> Self {
        Sites {
            counters: AtomicPtr::new(core::ptr::null_mut()),
            bitmaps: AtomicPtr::new(core::ptr::null_mut()),
            wide: AtomicPtr::new(core::ptr::null_mut()),
            wide_failed: core::sync::atomic::AtomicBool::new(false),
            next_stripe: AtomicU32::new(0),
            init_lock: SpinLock::new(()),
        }
    }

    #[cold]
    fn init(&self) -> bool {
        let _guard = self.init_lock.lock();
        if !self.counters.load(Ordering::Acquire).is_null() {
            return true;
        }
        let counters = sys::map_anonymous(STRIPES * MAX_SITES * 8, true) as *mut AtomicI64;
        let bitmaps = sys::map_anonymous(2 * BITMAP_WORDS * 8, true) as *mut AtomicU64;
        if counters.is_null() || bitmaps.is_null() {
            crate::degraded::note(crate::degraded::NO_SITE_COUNTERS);
            return false;
        }
        self.bitmaps.store(bitmaps, Ordering::Release);
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
        let bitmaps = self.bitmaps.load(Ordering::Acquire);
        let bit = 1u64 << (site % 64);
        // SAFETY: stripe < STRIPES and site < MAX_SITES, inside the counters mapping; both
        // bitmaps have MAX_SITES bits, the wide one after the changed one.
        unsafe {
            let wide_word = &*bitmaps.add(BITMAP_WORDS + site / 64);
            // One block too large for a packed word makes its site wide before it is counted.
            if bytes.unsigned_abs() > WIDE_AT_BYTES && wide_word.load(Ordering::Relaxed) & bit == 0
            {
                self.make_wide(wide_word, bit);
            }
            if wide_word.load(Ordering::Acquire) & bit != 0 {
                self.add_wide(stripe, site, bytes, blocks);
            } else {
                let delta = bytes.wrapping_add(blocks << BLOCK_SHIFT);
                let before =
                    (*counters.add(stripe * MAX_SITES + site)).fetch_add(delta, Ordering::Relaxed);
                let (share_bytes, share_blocks) = unpack(before.wrapping_add(delta));
                if share_blocks.unsigned_abs() > WIDE_AT_BLOCKS
                    || share_bytes.unsigned_abs() > WIDE_AT_BYTES
                {
                    self.make_wide(wide_word, bit);
                }
            }
            let word = &*bitmaps.add(site / 64);
            if word.load(Ordering::Relaxed) & bit == 0 {
                word.fetch_or(bit, Ordering::Relaxed);
            }
        }
    }

    /// From now on, count the site whose bit in the wide bitmap is `bit` of `wide_word` in
    /// its wide counters.
    #[cold]
    fn make_wide(&self, wide_word: &AtomicU64, bit: u64) {
        if self.wide.load(Ordering::Acquire).is_null() {
            if self.wide_failed.load(Ordering::Relaxed) {
                return;
            }
            let _guard = self.init_lock.lock();
            if self.wide.load(Ordering::Acquire).is_null() {
                let wide = sys::map_anonymous(STRIPES * MAX_SITES * 16, true) as *mut AtomicI64;
                if wide.is_null() {
                    self.wide_failed.store(true, Ordering::Relaxed);
                    // The packed words keep counting; past their range the site's series
                    // is wrong, and the report says so.
                    crate::degraded::note(crate::degraded::NO_SITE_COUNTERS);
                    return;
                }
                self.wide.store(wide, Ordering::Release);
            }
        }
        wide_word.fetch_or(bit, Ordering::Release);
    }

    #[cold]
    fn add_wide(&self, stripe: usize, site: usize, bytes: i64, blocks: i64) {
        let wide = self.wide.load(Ordering::Acquire);
        // SAFETY: the site's wide bit is set only after the wide mapping was published, and
        // (stripe, site) indexes a pair inside it.
        unsafe {
            let pair = wide.add((stripe * MAX_SITES + site) * 2);
            (*pair).fetch_add(bytes, Ordering::Relaxed);
            (*pair.add(1)).fetch_add(blocks, Ordering::Relaxed);
        }
    }

    /// Call `f(site, live_bytes, live_blocks)` for every site that changed since the last
    /// call, and clear the marks. For the writer (one caller at a time).
    pub fn drain_changed(&self, mut f: impl FnMut(StackId, u64, u64)) {
        let counters = self.counters.load(Ordering::Acquire);
        let dirty = self.bitmaps.load(Ordering::Acquire);
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
        let (mut bytes, mut blocks) = (0i64, 0i64);
        for stripe in 0..STRIPES {
            // SAFETY: inside the counters mapping, as in `add`.
            let packed =
                unsafe { (*counters.add(stripe * MAX_SITES + site)).load(Ordering::Relaxed) };
            let (b, n) = unpack(packed);
            bytes = bytes.wrapping_add(b);
            blocks = blocks.wrapping_add(n);
        }
        let bitmaps = self.bitmaps.load(Ordering::Acquire);
        let wide = self.wide.load(Ordering::Acquire);
        // SAFETY: the wide bitmap follows the changed one in the bitmaps mapping.
        let is_wide = !bitmaps.is_null()
            && unsafe { (*bitmaps.add(BITMAP_WORDS + site / 64)).load(Ordering::Acquire) }
                & (1u64 << (site % 64))
                != 0;
        if is_wide && !wide.is_null() {
            for stripe in 0..STRIPES {
                // SAFETY: inside the wide mapping, as in `add_wide`.
                unsafe {
                    let pair = wide.add((stripe * MAX_SITES + site) * 2);
                    bytes = bytes.wrapping_add((*pair).load(Ordering::Relaxed));
                    blocks = blocks.wrapping_add((*pair.add(1)).load(Ordering::Relaxed));
                }
            }
        }
        (bytes.max(0) as u64, blocks.max(0) as u64)
    }

    /// Live (bytes, blocks) at `site` now.
    pub fn live(&self, site: StackId) -> (u64, u64) {
        let counters = self.counters.load(Ordering::Acquire);
        if counters.is_null() {
            return (0, 0);
        }
        self.total(counters, (site as usize).min(MAX_SITES - 1))
    }
}

impl Default for Sites {
    fn default() -> Self {
        Self::new()
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

#[cfg(test)]
mod tests {
    use super::Sites;

    #[test]
    fn counts_stay_exact_far_past_the_packed_range() {
        let sites = Sites::new();
        // 20 million blocks at one site, from one thread: past 2^23, where a packed word
        // alone would wrap its block count.
        for _ in 0..20_000_000u64 {
            sites.add(7, 9, 1);
        }
        assert_eq!(sites.live(7), (180_000_000, 20_000_000));
        for _ in 0..19_999_999u64 {
            sites.add(7, -9, -1);
        }
        assert_eq!(sites.live(7), (9, 1));
        // Large blocks: bytes past 2^40 at one site.
        for _ in 0..3 {
            sites.add(8, 1 << 39, 1);
        }
        assert_eq!(sites.live(8), (3 << 39, 3));
        assert_eq!(sites.live(9), (0, 0));
    }

    #[test]
    fn frees_on_other_threads_stay_exact() {
        let sites = std::sync::Arc::new(Sites::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sites = sites.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000_000 {
                        // Threads 0 and 1 allocate, 2 and 3 free: each stripe drifts far.
                        if t < 2 {
                            sites.add(3, 100, 1);
                        } else {
                            sites.add(3, -100, -1);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Net zero, though the counts went negative on the way (clamped at 0 only when read
        // while negative).
        assert_eq!(sites.live(3), (0, 0));
    }
}

//! The hot path: what the allocation functions call for every block (the path of one `malloc`
//! call is in the crate's docs). Bounded work, no allocation, no panics; the only locks are a
//! live-table shard's and, for a new stack, a stack-index shard's.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::activation::{is_active, recording, MAX_FRAMES, SAMPLE_RATE};
use crate::live::{LiveBlock, LIVE};
use crate::thread::AgentSection;
use crate::{sampling, sites, thread, unwind};

/// While set, `free` only forgets blocks and does not give them back to glibc: the exit path
/// runs the runtimes' freeres functions this way, so that no glibc lock is taken while
/// another thread may be stopped holding it.
pub(crate) static FREE_FORGETS_ONLY: AtomicBool = AtomicBool::new(false);

/// Record a new block. Called after glibc returned `address` for a request of `size` bytes;
/// `caller` is the program's frame that called the allocation function (where the stack walk
/// starts).
#[inline(always)]
pub fn on_alloc(address: *mut libc::c_void, size: usize, caller: unwind::CallerFrame) {
    record(address, size, caller, 0);
}

/// [`on_alloc`] for an object of a language runtime's own allocator (see
/// [`crate::live::RUNTIME_OBJECT`]).
#[inline(always)]
pub fn on_runtime_alloc(address: *mut libc::c_void, size: usize, caller: unwind::CallerFrame) {
    record(address, size, caller, crate::live::RUNTIME_OBJECT);
}

#[inline(always)]
fn record(address: *mut libc::c_void, size: usize, caller: unwind::CallerFrame, flags: u32) {
    if address.is_null() {
        return;
    }
    let Some(_section) = AgentSection::enter_hook() else {
        return; // the agent's own allocation (or libc's, on its behalf)
    };
    if !is_active() {
        return;
    }
    let rate = SAMPLE_RATE.load(Ordering::Relaxed);
    let stack = if rate == 0 || sampling::should_sample(thread::current(), size, rate) {
        let mut max_frames = MAX_FRAMES.load(Ordering::Relaxed) as usize;
        let object = flags & crate::live::RUNTIME_OBJECT != 0;
        if object {
            // A runtime's object: its own frames say where it was made; of the native ones
            // only the innermost matter (see `python::OBJECT_NATIVE_FRAMES`).
            max_frames = crate::python::object_native_frames(max_frames);
        }
        unwind::capture_stack(max_frames, caller, object)
    } else {
        0
    };
    LIVE.insert(LiveBlock {
        address: address as u64,
        size: size as u64,
        stack: stack | flags,
        born: sites::NOW_TICKS.load(Ordering::Relaxed),
    });
    sites::SITES.add(stack, size as i64, 1);
    // The end of a `realloc` (see `on_realloc_start`); a plain store is cheaper than a test.
    thread::current().moving_block.store(0, Ordering::Relaxed);
}

/// Forget a block that is being freed. Returns false if glibc must not actually free it (see
/// [`FREE_FORGETS_ONLY`]).
#[inline(always)]
pub fn on_free(address: *mut libc::c_void) -> bool {
    if address.is_null() {
        return true;
    }
    if recording() {
        // Frees are honoured even inside agent code: forgetting a block is always right.
        let _section = AgentSection::enter_nested_hook();
        if let Some(block) = LIVE.remove(address as u64) {
            sites::SITES.add(block.site(), -(block.size as i64), -1);
        }
    }
    !FREE_FORGETS_ONLY.load(Ordering::Relaxed)
}

/// Before `realloc`: take the old block out of the table (so that a thread which gets the
/// same address from `malloc` meanwhile cannot have its entry removed by us).
#[inline(always)]
pub fn on_realloc_start(address: *mut libc::c_void) -> Option<LiveBlock> {
    if address.is_null() || !recording() {
        return None;
    }
    let _section = AgentSection::enter_nested_hook();
    let block = LIVE.remove(address as u64)?;
    sites::SITES.add(block.site(), -(block.size as i64), -1);
    // Until the new block is recorded, its contents (pointers included) are only here.
    let state = thread::current();
    state.moving_block_size.store(block.size, Ordering::Relaxed);
    state.moving_block.store(block.address, Ordering::Relaxed);
    Some(block)
}

/// After a failed `realloc`: the old block is still the program's; put it back.
pub fn on_realloc_failed(old: Option<LiveBlock>) {
    thread::current().moving_block.store(0, Ordering::Relaxed);
    if let Some(block) = old {
        let _section = AgentSection::enter_nested_hook();
        LIVE.insert(block);
        sites::SITES.add(block.site(), block.size as i64, 1);
    }
}

/// Does `free` only forget blocks right now?
pub fn free_forgets_only() -> bool {
    FREE_FORGETS_ONLY.load(Ordering::Relaxed)
}

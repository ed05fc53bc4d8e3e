//! Stack capture: DWARF CFI unwinding of the calling thread, in process, with framehop.
//!
//! Debian's glibc and libstdc++ are built without frame pointers, so a frame-pointer walk
//! would lose every caller of code that passes through them; CFI from `.eh_frame` does not.
//! framehop caches the unwind rule per return address, so a warm walk is a few table look-ups
//! and stack reads per frame.

use alloc::boxed::Box;
use core::ptr;
use core::sync::atomic::Ordering;

use framehop::{MustNotAllocateDuringUnwind, Unwinder};

use crate::modules::MODULES;
use crate::thread;

/// Per-thread unwinder cache (rule cache and DWARF evaluation space).
pub type UnwindCache = framehop::CacheNative<MustNotAllocateDuringUnwind>;

/// The most frames any stack may have (`--max-frames` is clamped to this).
pub const MAX_FRAMES_LIMIT: usize = 256;

extern "C" {
    /// Set by the dynamic linker: the stack pointer at process entry, i.e. just below argc.
    static __libc_stack_end: *const u8;
}

/// Capture the calling thread's stack into `out`, innermost first, leaving out the agent's own
/// frames. Returns the number of frames written.
///
/// Must be called inside an [`thread::AgentSection`]: it may allocate (the first time a
/// thread unwinds, for its cache) and takes the module table's read lock.
#[inline(never)]
pub fn capture(out: &mut [u64]) -> usize {
    let n = capture_once(out);
    if n != usize::MAX {
        return n;
    }
    // A frame lay outside every known module: a library was probably just loaded.
    if MODULES.refresh_after_unknown_address() {
        let n = capture_once(out);
        if n != usize::MAX {
            return n;
        }
    }
    walked_len(out)
}

/// One walk. Returns `usize::MAX` (with the frames still written) if some frame lay outside
/// every known module, so the caller can refresh the module list and try again.
#[inline(never)]
fn capture_once(out: &mut [u64]) -> usize {
    let (ip, sp, bp): (u64, u64, u64);
    // SAFETY: reads the current instruction pointer, stack pointer and frame pointer into
    // registers; no memory is touched.
    unsafe {
        core::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    let state = thread::current();
    let mut stack_high = state.stack_high.load(Ordering::Relaxed);
    if stack_high == 0 {
        stack_high = stack_high_of_this_thread(sp);
        state.stack_high.store(stack_high, Ordering::Relaxed);
    }
    let mut cache_ptr = state.unwind_cache.load(Ordering::Relaxed);
    if cache_ptr.is_null() {
        cache_ptr = Box::into_raw(Box::new(UnwindCache::new_in()));
        state.unwind_cache.store(cache_ptr, Ordering::Relaxed);
    }
    // SAFETY: the cache belongs to this thread alone (created here, never shared), and this
    // function is not re-entered on this thread (it runs inside an agent section).
    let cache = unsafe { &mut *cache_ptr };

    let Some(modules) = MODULES.read() else {
        return 0;
    };
    let mut read_stack = |address: u64| -> Result<u64, ()> {
        if address >= sp && address.saturating_add(8) <= stack_high && address.is_multiple_of(8) {
            // SAFETY: the address lies between this thread's stack pointer and the top of its
            // stack, which is mapped and readable.
            Ok(unsafe { ptr::read(address as *const u64) })
        } else {
            Err(())
        }
    };
    let regs = framehop::UnwindRegsNative::new(ip, sp, bp);
    let mut frames = modules
        .unwinder
        .iter_frames(ip, regs, cache, &mut read_stack);
    let (agent_lo, agent_hi) = modules.agent_range;
    let mut written = 0;
    let mut saw_unknown = false;
    while written < out.len() {
        let frame = match frames.next() {
            Ok(Some(frame)) => frame,
            _ => break,
        };
        let address = frame.address();
        // The agent's frames: its hooks at the top, and its `main` wrapper near the bottom.
        if (agent_lo..agent_hi).contains(&address) {
            continue;
        }
        if address == 0 {
            break;
        }
        if !modules.covers(address) {
            saw_unknown = true;
        }
        out[written] = address;
        written += 1;
    }
    if written < out.len() {
        out[written] = 0;
    }
    if saw_unknown {
        usize::MAX
    } else {
        written
    }
}

fn walked_len(out: &[u64]) -> usize {
    out.iter().position(|&a| a == 0).unwrap_or(out.len())
}

/// The highest address of this thread's stack the unwinder may read.
fn stack_high_of_this_thread(sp: u64) -> u64 {
    if crate::sys::gettid() == crate::sys::getpid() {
        // The initial thread: argc, argv, envp and auxv lie above `__libc_stack_end`, so a
        // few hundred bytes above it are mapped whatever the command line.
        // SAFETY: a plain read of a pointer the dynamic linker set before any user code ran.
        let end = unsafe { __libc_stack_end } as u64;
        if end > sp {
            return end + 256;
        }
    }
    // SAFETY: pthread_getattr_np fills the attribute object for the calling thread; it may
    // allocate, which is fine inside an agent section (the allocation passes through).
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr: *mut libc::c_void = ptr::null_mut();
            let mut size: usize = 0;
            let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
            libc::pthread_attr_destroy(&mut attr);
            if ok && (addr as u64) < sp && sp < addr as u64 + size as u64 {
                return addr as u64 + size as u64;
            }
        }
    }
    // Unknown: allow only the current page and the next, which are certainly mapped.
    (sp & !4095) + 8192
}

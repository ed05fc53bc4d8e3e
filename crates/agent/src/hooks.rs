//! Every function the agent exports. Each forwards to glibc's own implementation (by its
//! internal name, or found with `dlsym(RTLD_NEXT)`) and tells the core what happened.
//!
//! `errno`: the core's functions that make system calls put it back themselves (see
//! `sys::ErrnoGuard`), so the hooks leave it as glibc's allocator set it.

use core::ffi::{c_char, c_int, c_void};

use leakscope_agent_core as core_;
use leakscope_agent_core::sys::{errno, set_errno};

use crate::init;
use crate::{__libc_calloc, __libc_free, __libc_malloc, __libc_memalign, __libc_pvalloc};
use crate::{__libc_realloc, __libc_valloc};

/// `malloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: glibc's allocator has no preconditions for malloc.
    let block = unsafe { __libc_malloc(size) };
    core_::on_alloc(block, size);
    block
}

/// `calloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    // SAFETY: glibc's calloc checks the multiplication for overflow itself.
    let block = unsafe { __libc_calloc(count, size) };
    core_::on_alloc(block, count.wrapping_mul(size));
    block
}

/// `realloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn realloc(old: *mut c_void, size: usize) -> *mut c_void {
    if old.is_null() {
        // SAFETY: realloc(NULL, n) is malloc(n).
        return unsafe { malloc(size) };
    }
    let old_block = core_::on_realloc_start(old);
    if core_::free_forgets_only() && size == 0 {
        return core::ptr::null_mut(); // the exit path's freeres: forget only
    }
    // SAFETY: `old` is a block the program got from this allocator.
    let block = unsafe { __libc_realloc(old, size) };
    if block.is_null() {
        if size != 0 {
            core_::on_realloc_failed(old_block); // failed: the old block is still live
        }
        return block; // size 0: glibc freed the old block
    }
    core_::on_alloc(block, size);
    block
}

/// `reallocarray(3)`.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(old: *mut c_void, count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    // SAFETY: as realloc.
    unsafe { realloc(old, total) }
}

/// `free(3)`.
#[no_mangle]
pub unsafe extern "C" fn free(block: *mut c_void) {
    if block.is_null() {
        return;
    }
    if core_::on_free(block) {
        // SAFETY: the program got `block` from this allocator.
        unsafe { __libc_free(block) };
    }
}

/// `memalign(3)`.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: glibc validates the alignment.
    let block = unsafe { __libc_memalign(align, size) };
    track(block, size)
}

/// `aligned_alloc(3)` (glibc 2.36 treats it as memalign).
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // SAFETY: as memalign.
    let block = unsafe { __libc_memalign(align, size) };
    track(block, size)
}

/// `valloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: no preconditions.
    let block = unsafe { __libc_valloc(size) };
    track(block, size)
}

/// `pvalloc(3)`. Like memcheck, records the size asked for, not the rounded-up one.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    // SAFETY: no preconditions.
    let block = unsafe { __libc_pvalloc(size) };
    track(block, size)
}

/// `posix_memalign(3)`.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    let word = core::mem::size_of::<usize>();
    if align == 0 || !align.is_multiple_of(word) || !(align / word).is_power_of_two() {
        return libc::EINVAL;
    }
    let saved = errno();
    // SAFETY: the alignment was validated as POSIX requires.
    let block = unsafe { __libc_memalign(align, size) };
    if block.is_null() {
        set_errno(saved); // posix_memalign reports by its result, not errno
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid pointer to store the result.
    unsafe { *out = block };
    core_::on_alloc(block, size);
    0
}

fn track(block: *mut c_void, size: usize) -> *mut c_void {
    core_::on_alloc(block, size);
    block
}

/// `exit(3)`: wipe the dead stack (see `deadstack`), then glibc's exit, whose handlers end
/// with the agent's (registered first, so run last).
#[no_mangle]
pub unsafe extern "C" fn exit(code: c_int) -> ! {
    if core_::is_active() {
        core_::deadstack::zero_below_stack_pointer();
    }
    init::real_exit(code)
}

/// `_exit(2)`: no handlers run, so the agent scans here.
#[no_mangle]
pub unsafe extern "C" fn _exit(code: c_int) -> ! {
    init::finish_at_underscore_exit(code)
}

/// `_Exit(2)`, the same as `_exit`.
#[no_mangle]
pub unsafe extern "C" fn _Exit(code: c_int) -> ! {
    init::finish_at_underscore_exit(code)
}

/// glibc's program start: the agent wraps `main` to wipe the dead stack when it returns.
#[no_mangle]
pub unsafe extern "C" fn __libc_start_main(
    main: init::MainFn,
    argc: c_int,
    argv: *mut *mut c_char,
    init_fn: *mut c_void,
    fini: *mut c_void,
    rtld_fini: *mut c_void,
    stack_end: *mut c_void,
) -> c_int {
    // SAFETY: forwarded to glibc with the same arguments (and possibly a wrapped main).
    unsafe { init::start_main(main, argc, argv, init_fn, fini, rtld_fini, stack_end) }
}

/// `sigaction(2)`: hides the agent's fatal-signal handlers from the program.
#[no_mangle]
pub unsafe extern "C" fn sigaction(
    signal: c_int,
    action: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    // SAFETY: the caller upholds sigaction's contract.
    unsafe { init::program_sigaction(signal, action, old) }
}

/// `signal(2)` (glibc's BSD semantics), through the same hiding.
#[no_mangle]
pub unsafe extern "C" fn signal(signal: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: as sigaction.
    unsafe { init::program_signal(signal, handler) }
}

/// `bsd_signal(3)`, an alias of `signal`.
#[no_mangle]
pub unsafe extern "C" fn bsd_signal(
    signal: c_int,
    handler: libc::sighandler_t,
) -> libc::sighandler_t {
    // SAFETY: as sigaction.
    unsafe { init::program_signal(signal, handler) }
}

/// `sigprocmask(2)`: the agent's stop signal can never be blocked (a blocked thread could
/// not be stopped for the scan).
#[no_mangle]
pub unsafe extern "C" fn sigprocmask(
    how: c_int,
    set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    // SAFETY: the caller passes valid or null sets.
    unsafe { init::set_signal_mask(how, set, old) }
}

/// `pthread_sigmask(3)`, as `sigprocmask` but returning the error number.
#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(
    how: c_int,
    set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    let saved = errno();
    // SAFETY: as sigprocmask.
    let result = unsafe { init::set_signal_mask(how, set, old) };
    let error = if result == 0 { 0 } else { errno() };
    set_errno(saved);
    error
}

/// `sigwait(3)`: never waits for (and so never steals) the agent's stop signal.
#[no_mangle]
pub unsafe extern "C" fn sigwait(set: *const libc::sigset_t, signal: *mut c_int) -> c_int {
    // SAFETY: the caller passes a valid set and result pointer.
    unsafe { init::sigwait(set, signal) }
}

/// `sigwaitinfo(2)`, as `sigwait`.
#[no_mangle]
pub unsafe extern "C" fn sigwaitinfo(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
) -> c_int {
    // SAFETY: as sigwait.
    unsafe { init::sigtimedwait(set, info, core::ptr::null()) }
}

/// `sigtimedwait(2)`, as `sigwait`.
#[no_mangle]
pub unsafe extern "C" fn sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    timeout: *const libc::timespec,
) -> c_int {
    // SAFETY: as sigwait.
    unsafe { init::sigtimedwait(set, info, timeout) }
}

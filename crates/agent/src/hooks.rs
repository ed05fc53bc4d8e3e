//! Every function the agent exports. Each forwards to glibc's own implementation (by its
//! internal name, or found with `dlsym(RTLD_NEXT)`) and tells the core what happened.
//!
//! `errno`: the core's functions that make system calls put it back themselves (see
//! `sys::ErrnoGuard`), so the hooks leave it as glibc's allocator set it.

use core::ffi::{c_char, c_int, c_void};

use leakscope_agent_core as core_;
use leakscope_agent_core::sys::{errno, set_errno};
use leakscope_agent_core::unwind::CallerFrame;

use crate::init;
use crate::{__libc_calloc, __libc_free, __libc_malloc, __libc_memalign, __libc_pvalloc};
use crate::{__libc_realloc, __libc_valloc};

// The allocating entry points are naked stubs: each hands the program's frame (the return
// address at [rsp], the stack pointer the program will have after the return, rsp + 8, and
// rbp) to the Rust hook in the next free argument registers, and jumps to it. The hook then
// runs as if the program had called it directly (same stack, same alignment, and its return
// goes straight back to the program), and the stack walk starts at the program's frame
// instead of unwinding the agent's own. The stubs write nothing, not even to the stack;
// the registers they set are argument registers the exported function does not take, which
// the C ABI leaves to the callee. The exported symbols keep their C signatures.
//
// `.cfi_startproc` with no further directive describes the stubs exactly (CFA = rsp + 8, the
// return address at CFA - 8) for debuggers and profilers that stop in them.

/// A naked allocation entry point: `$name` with the C signature given, whose stub puts the
/// program's frame (return address, stack pointer after the return, rbp) into the three
/// argument registers after its own arguments (`$ra`, `$sp`, `$bp`) and jumps to `$hook`,
/// which takes the function's arguments and then those three.
macro_rules! allocation_entry {
    (
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $hook:ident,
        frame in $ra:literal, $sp:literal, $bp:literal
    ) => {
        $(#[$doc])*
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: reads the return address at [rsp] (present on entry to any called
            // function), writes only argument registers the function does not take, and jumps
            // to a hook whose C signature takes the function's arguments and then those.
            core::arch::naked_asm!(
                ".cfi_startproc",
                concat!("mov ", $ra, ", qword ptr [rsp]"),
                concat!("lea ", $sp, ", [rsp + 8]"),
                concat!("mov ", $bp, ", rbp"),
                "jmp {hook}",
                ".cfi_endproc",
                hook = sym $hook,
            )
        }
    };
}
pub(crate) use allocation_entry;

allocation_entry!(
    /// `malloc(3)`.
    fn malloc(size: usize) -> *mut c_void => malloc_hook, frame in "rsi", "rdx", "rcx"
);
allocation_entry!(
    /// `calloc(3)`.
    fn calloc(count: usize, size: usize) -> *mut c_void => calloc_hook,
    frame in "rdx", "rcx", "r8"
);
allocation_entry!(
    /// `realloc(3)`.
    fn realloc(old: *mut c_void, size: usize) -> *mut c_void => realloc_hook,
    frame in "rdx", "rcx", "r8"
);
allocation_entry!(
    /// `reallocarray(3)`.
    fn reallocarray(old: *mut c_void, count: usize, size: usize) -> *mut c_void =>
        reallocarray_hook, frame in "rcx", "r8", "r9"
);
allocation_entry!(
    /// `memalign(3)`.
    fn memalign(align: usize, size: usize) -> *mut c_void => memalign_hook,
    frame in "rdx", "rcx", "r8"
);
allocation_entry!(
    /// `aligned_alloc(3)` (glibc 2.36 treats it as memalign).
    fn aligned_alloc(align: usize, size: usize) -> *mut c_void => memalign_hook,
    frame in "rdx", "rcx", "r8"
);
allocation_entry!(
    /// `valloc(3)`.
    fn valloc(size: usize) -> *mut c_void => valloc_hook, frame in "rsi", "rdx", "rcx"
);
allocation_entry!(
    /// `pvalloc(3)`. Like memcheck, records the size asked for, not the rounded-up one.
    fn pvalloc(size: usize) -> *mut c_void => pvalloc_hook, frame in "rsi", "rdx", "rcx"
);
allocation_entry!(
    /// `posix_memalign(3)`.
    fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int =>
        posix_memalign_hook, frame in "rcx", "r8", "r9"
);

/// The program's frame, from the registers a stub passes.
#[inline(always)]
pub(crate) fn frame(return_address: u64, sp: u64, bp: u64) -> CallerFrame {
    CallerFrame {
        return_address,
        sp,
        bp,
    }
}

/// `malloc` after its stub: `ra`, `sp` and `bp` are the program's frame (see above).
pub(crate) unsafe extern "C" fn malloc_hook(size: usize, ra: u64, sp: u64, bp: u64) -> *mut c_void {
    // SAFETY: glibc's allocator has no preconditions for malloc.
    let block = unsafe { __libc_malloc(size) };
    core_::on_alloc(block, size, frame(ra, sp, bp));
    block
}

unsafe extern "C" fn calloc_hook(
    count: usize,
    size: usize,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    // SAFETY: glibc's calloc checks the multiplication for overflow itself.
    let block = unsafe { __libc_calloc(count, size) };
    core_::on_alloc(block, count.wrapping_mul(size), frame(ra, sp, bp));
    block
}

unsafe extern "C" fn realloc_hook(
    old: *mut c_void,
    size: usize,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    if old.is_null() {
        // SAFETY: realloc(NULL, n) is malloc(n), with the same (the program's) frame.
        return unsafe { malloc_hook(size, ra, sp, bp) };
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
    core_::on_alloc(block, size, frame(ra, sp, bp));
    block
}

unsafe extern "C" fn reallocarray_hook(
    old: *mut c_void,
    count: usize,
    size: usize,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    // SAFETY: as realloc, with the program's frame.
    unsafe { realloc_hook(old, total, ra, sp, bp) }
}

pub(crate) unsafe extern "C" fn memalign_hook(
    align: usize,
    size: usize,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    // SAFETY: glibc validates the alignment.
    let block = unsafe { __libc_memalign(align, size) };
    core_::on_alloc(block, size, frame(ra, sp, bp));
    block
}

unsafe extern "C" fn valloc_hook(size: usize, ra: u64, sp: u64, bp: u64) -> *mut c_void {
    // SAFETY: no preconditions.
    let block = unsafe { __libc_valloc(size) };
    core_::on_alloc(block, size, frame(ra, sp, bp));
    block
}

unsafe extern "C" fn pvalloc_hook(size: usize, ra: u64, sp: u64, bp: u64) -> *mut c_void {
    // SAFETY: no preconditions.
    let block = unsafe { __libc_pvalloc(size) };
    core_::on_alloc(block, size, frame(ra, sp, bp));
    block
}

unsafe extern "C" fn posix_memalign_hook(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
    ra: u64,
    sp: u64,
    bp: u64,
) -> c_int {
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
    core_::on_alloc(block, size, frame(ra, sp, bp));
    0
}

/// `free(3)`: takes no stack, so a plain function.
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

/// `exit(3)`: wipe the dead stack (see `deadstack`), then glibc's exit, whose handlers end
/// with the agent's (registered first, so run last). Naked, so that no frame of the hook's
/// own (an alignment slot holding the program's `rax`, say) lies above the wiped stack.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn exit(code: c_int) -> ! {
    // SAFETY: keeps the status on the stack across the wipe (which aligns the stack for its
    // call and writes only below its own return address and caller-saved registers), then
    // jumps to `real_exit` with the stack and `edi` as they were on entry.
    core::arch::naked_asm!(
        ".cfi_startproc",
        "push rdi",
        ".cfi_adjust_cfa_offset 8",
        "call {wipe}",
        "pop rdi",
        ".cfi_adjust_cfa_offset -8",
        "jmp {real_exit}",
        ".cfi_endproc",
        wipe = sym core_::deadstack::wipe_dead_stack,
        real_exit = sym init::real_exit,
    )
}

/// `_exit(2)`: no handlers run, so the agent scans here.
#[no_mangle]
pub unsafe extern "C" fn _exit(code: c_int) -> ! {
    init::finish_at_underscore_exit(code)
}

/// `quick_exit(3)`: wipe the dead stack as `exit` does; its handlers run, then the agent's
/// (registered first, so run last) scans.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn quick_exit(code: c_int) -> ! {
    // SAFETY: as `exit`.
    core::arch::naked_asm!(
        ".cfi_startproc",
        "push rdi",
        ".cfi_adjust_cfa_offset 8",
        "call {wipe}",
        "pop rdi",
        ".cfi_adjust_cfa_offset -8",
        "jmp {quick_exit}",
        ".cfi_endproc",
        wipe = sym core_::deadstack::wipe_dead_stack,
        quick_exit = sym init::quick_exit,
    )
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

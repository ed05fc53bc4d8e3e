//! leakscope's agent: the shared library `leakscope run` preloads into the target.
//!
//! This crate is only what the dynamic linker and the C ABI see: the exported functions
//! ([`hooks`]), the constructor and the exit, signal and fork handlers ([`init`]), and the
//! agent's own heap (below). The work is done in `leakscope-agent-core`.
//!
//! The path of one `malloc` call: the exported `malloc`, a naked stub, passes the program's
//! frame (return address, stack pointer, frame pointer) to the Rust hook and jumps to it; the
//! hook calls glibc's `__libc_malloc` (never `malloc`, which would be ourselves), then
//! `on_alloc`, which captures the stack from the program's frame up, interns it and records
//! the block in the live table, unless the call came from inside the agent.

//! The library is `no_std`: Rust's `std` would bring a TLS segment, and any TLS segment makes
//! every thread's DTV (a heap block glibc allocates, which memcheck counts) one slot larger than
//! under memcheck. A panic aborts the process: there is no unwinding through C callers.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod credentials;
mod cxx;
mod hooks;
mod init;
mod neighbours;
mod python_allocators;
mod spawn;
mod symbols;
mod test_hooks;
mod threads;

// The prebuilt `core` and `alloc` refer to Rust's unwinding personality and to
// `_Unwind_Resume` even when panics abort. Nothing unwinds through the agent (it calls no code
// that throws, and a panic aborts), so neither is ever called. They are defined here as
// *hidden* symbols that trap: exported, they would interpose on the program's own (a C++
// program's `_Unwind_Resume` from libgcc_s), and changing how its exceptions work.
#[cfg(not(test))]
core::arch::global_asm!(
    ".pushsection .text.leakscope_no_unwind,\"ax\",@progbits",
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality,@function",
    "rust_eh_personality:",
    "ud2",
    ".size rust_eh_personality, . - rust_eh_personality",
    ".globl _Unwind_Resume",
    ".hidden _Unwind_Resume",
    ".type _Unwind_Resume,@function",
    "_Unwind_Resume:",
    "ud2",
    ".size _Unwind_Resume, . - _Unwind_Resume",
    ".popsection",
);

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort has no preconditions; the agent must not unwind into the program.
    unsafe { libc::abort() }
}

use core::alloc::{GlobalAlloc, Layout};

extern "C" {
    fn __libc_malloc(size: usize) -> *mut libc::c_void;
    fn __libc_calloc(count: usize, size: usize) -> *mut libc::c_void;
    fn __libc_realloc(ptr: *mut libc::c_void, size: usize) -> *mut libc::c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut libc::c_void;
    fn __libc_free(ptr: *mut libc::c_void);
    fn __libc_valloc(size: usize) -> *mut libc::c_void;
    fn __libc_pvalloc(size: usize) -> *mut libc::c_void;
}

/// The agent's own heap: glibc's allocator, called by its internal names so that the agent's
/// allocations never pass through its own hooks (and so are never tracked or recursed into).
struct LibcAllocator;

// SAFETY: forwards to glibc's allocator, which honours size and (through memalign) alignment.
unsafe impl GlobalAlloc for LibcAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        leakscope_agent_core::thread::note_agent_heap_allocation();
        // SAFETY: plain calls into glibc's allocator.
        unsafe {
            if layout.align() <= 16 {
                __libc_malloc(layout.size()) as *mut u8
            } else {
                __libc_memalign(layout.align(), layout.size()) as *mut u8
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        leakscope_agent_core::thread::note_agent_heap_allocation();
        // SAFETY: as above; memalign'd memory is zeroed by hand.
        unsafe {
            if layout.align() <= 16 {
                __libc_calloc(1, layout.size()) as *mut u8
            } else {
                let p = __libc_memalign(layout.align(), layout.size()) as *mut u8;
                if !p.is_null() {
                    core::ptr::write_bytes(p, 0, layout.size());
                }
                p
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from glibc.
        unsafe { __libc_free(ptr as *mut libc::c_void) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        leakscope_agent_core::thread::note_agent_heap_allocation();
        // SAFETY: `ptr` came from glibc; alignment above 16 needs a fresh block.
        unsafe {
            if layout.align() <= 16 {
                __libc_realloc(ptr as *mut libc::c_void, new_size) as *mut u8
            } else {
                let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !new.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[global_allocator]
static AGENT_HEAP: LibcAllocator = LibcAllocator;

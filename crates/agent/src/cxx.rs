//! C++'s `operator new` and `operator delete`, every variant that libstdc++ and jemalloc
//! export.
//!
//! libstdc++'s `operator new` calls `malloc`, so the agent would see C++ allocations anyway;
//! interposing the operators themselves does two things more: the stack starts at the
//! program's own frame (the caller of `new`), and a program linked with an allocator that
//! defines the operators itself (jemalloc and tcmalloc do) has its C++ allocations tracked
//! too, served by glibc like every other block, instead of going to that allocator unseen.
//!
//! A failed allocation does what the C++ standard asks of `operator new`: it calls the new
//! handler and tries again, and throws `std::bad_alloc` when there is none (the nothrow
//! variants return null instead). Both functions are libstdc++'s, found when first needed.

use crate::symbols::{Scope, Symbol};
use core::ffi::c_void;

use leakscope_agent_core as core_;

use crate::hooks::{allocation_entry, frame};
use crate::{__libc_malloc, __libc_memalign};

static GET_NEW_HANDLER: Symbol = Symbol::new(c"_ZSt15get_new_handlerv", Scope::Default);
static THROW_BAD_ALLOC: Symbol = Symbol::new(c"_ZSt17__throw_bad_allocv", Scope::Default);

/// Allocate `size` bytes aligned to `align` (0: malloc's alignment) from glibc, as
/// `operator new` must: on failure, call the new handler and retry, and without one, throw
/// `std::bad_alloc` (or, if `nothrow`, return null).
fn allocate(size: usize, align: usize, nothrow: bool) -> *mut c_void {
    loop {
        // SAFETY: glibc's allocator; memalign validates the alignment. A zero-size request
        // must still return a unique block.
        let block = unsafe {
            if align > 16 {
                __libc_memalign(align, size.max(1))
            } else {
                __libc_malloc(size.max(1))
            }
        };
        if !block.is_null() {
            return block;
        }
        let get = GET_NEW_HANDLER.address();
        let handler = if get == 0 {
            0
        } else {
            // SAFETY: std::get_new_handler() returns the current handler (a `void()`
            // function) or null.
            unsafe {
                let get: extern "C" fn() -> usize = core::mem::transmute(get);
                get()
            }
        };
        if handler == 0 {
            if nothrow {
                return core::ptr::null_mut();
            }
            let throw = THROW_BAD_ALLOC.address();
            if throw == 0 {
                // No libstdc++ (cannot happen for a caller of operator new): fail as a C++
                // runtime without exceptions does.
                // SAFETY: abort has no preconditions.
                unsafe { libc::abort() };
            }
            // SAFETY: std::__throw_bad_alloc() throws; the frames it unwinds through (this
            // one, and the program's) all have unwind tables and no cleanups of the agent's.
            unsafe {
                let throw: extern "C" fn() -> ! = core::mem::transmute(throw);
                throw()
            }
        }
        // SAFETY: the program's new handler, a `void()` function.
        unsafe {
            let handler: extern "C" fn() = core::mem::transmute(handler);
            handler();
        }
    }
}

macro_rules! operator_new {
    (
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) => $hook:ident(align $align:expr, nothrow $nothrow:expr),
        frame in $ra:literal, $sp:literal, $bp:literal
    ) => {
        allocation_entry!(
            $(#[$doc])*
            fn $name(size: usize $(, $arg: $ty)*) -> *mut c_void => $hook,
            frame in $ra, $sp, $bp
        );

        #[allow(unused_variables)]
        unsafe extern "C" fn $hook(size: usize, $($arg: $ty,)* ra: u64, sp: u64, bp: u64) -> *mut c_void {
            let block = allocate(size, $align, $nothrow);
            core_::on_alloc(block, size, frame(ra, sp, bp));
            block
        }
    };
}

operator_new!(
    /// `operator new(size_t)`.
    fn _Znwm() => new_hook(align 0, nothrow false), frame in "rsi", "rdx", "rcx"
);
operator_new!(
    /// `operator new[](size_t)`.
    fn _Znam() => new_array_hook(align 0, nothrow false), frame in "rsi", "rdx", "rcx"
);
operator_new!(
    /// `operator new(size_t, const std::nothrow_t&)`.
    fn _ZnwmRKSt9nothrow_t(tag: *const c_void) => new_nothrow_hook(align 0, nothrow true),
    frame in "rdx", "rcx", "r8"
);
operator_new!(
    /// `operator new[](size_t, const std::nothrow_t&)`.
    fn _ZnamRKSt9nothrow_t(tag: *const c_void) => new_array_nothrow_hook(align 0, nothrow true),
    frame in "rdx", "rcx", "r8"
);
operator_new!(
    /// `operator new(size_t, std::align_val_t)`.
    fn _ZnwmSt11align_val_t(align: usize) => new_aligned_hook(align align, nothrow false),
    frame in "rdx", "rcx", "r8"
);
operator_new!(
    /// `operator new[](size_t, std::align_val_t)`.
    fn _ZnamSt11align_val_t(align: usize) => new_array_aligned_hook(align align, nothrow false),
    frame in "rdx", "rcx", "r8"
);
operator_new!(
    /// `operator new(size_t, std::align_val_t, const std::nothrow_t&)`.
    fn _ZnwmSt11align_val_tRKSt9nothrow_t(align: usize, tag: *const c_void) =>
        new_aligned_nothrow_hook(align align, nothrow true),
    frame in "rcx", "r8", "r9"
);
operator_new!(
    /// `operator new[](size_t, std::align_val_t, const std::nothrow_t&)`.
    fn _ZnamSt11align_val_tRKSt9nothrow_t(align: usize, tag: *const c_void) =>
        new_array_aligned_nothrow_hook(align align, nothrow true),
    frame in "rcx", "r8", "r9"
);

macro_rules! operator_delete {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $(#[$doc])*
            #[no_mangle]
            #[allow(unused_variables)]
            pub unsafe extern "C" fn $name(block: *mut c_void $(, $arg: $ty)*) {
                // SAFETY: the program's block, from this allocator (sizes and alignments are
                // hints glibc's free does not need).
                unsafe { crate::hooks::free(block) }
            }
        )*
    };
}

operator_delete! {
    /// `operator delete(void*)`.
    fn _ZdlPv();
    /// `operator delete[](void*)`.
    fn _ZdaPv();
    /// `operator delete(void*, size_t)`.
    fn _ZdlPvm(size: usize);
    /// `operator delete[](void*, size_t)`.
    fn _ZdaPvm(size: usize);
    /// `operator delete(void*, const std::nothrow_t&)`.
    fn _ZdlPvRKSt9nothrow_t(tag: *const c_void);
    /// `operator delete[](void*, const std::nothrow_t&)`.
    fn _ZdaPvRKSt9nothrow_t(tag: *const c_void);
    /// `operator delete(void*, std::align_val_t)`.
    fn _ZdlPvSt11align_val_t(align: usize);
    /// `operator delete[](void*, std::align_val_t)`.
    fn _ZdaPvSt11align_val_t(align: usize);
    /// `operator delete(void*, size_t, std::align_val_t)`.
    fn _ZdlPvmSt11align_val_t(size: usize, align: usize);
    /// `operator delete[](void*, size_t, std::align_val_t)`.
    fn _ZdaPvmSt11align_val_t(size: usize, align: usize);
    /// `operator delete(void*, std::align_val_t, const std::nothrow_t&)`.
    fn _ZdlPvSt11align_val_tRKSt9nothrow_t(align: usize, tag: *const c_void);
    /// `operator delete[](void*, std::align_val_t, const std::nothrow_t&)`.
    fn _ZdaPvSt11align_val_tRKSt9nothrow_t(align: usize, tag: *const c_void);
}

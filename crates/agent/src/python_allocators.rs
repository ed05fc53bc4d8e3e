//! The agent's wrappers of CPython's `PYMEM_DOMAIN_MEM` and `PYMEM_DOMAIN_OBJ` allocators
//! (PEP 445), which the core installs once the interpreter runs (`leakscope_agent_core::python`).
//!
//! Each calls the interpreter's own allocator (pymalloc, usually) inside an agent section, so
//! that what pymalloc asks `malloc` for meanwhile is not recorded a second time, and then
//! records the object as a block of its own, with the program's stack from the caller of the
//! domain's function up (the entry stubs hand over that frame, as for `malloc`). Each domain
//! has its own functions, which ignore the `ctx` argument: the installed `ctx` is the
//! original's, and is passed on.

use core::ffi::c_void;

use leakscope_agent_core as core_;
use leakscope_agent_core::python::{original_allocator, Allocator, Wrappers};
use leakscope_agent_core::thread::AgentSection;

use crate::hooks::{allocation_entry, frame};

type MallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type CallocFn = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
type ReallocFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// The interpreter's functions of one domain.
///
/// # Safety
/// Only from a wrapper, which the interpreter calls only after the originals were recorded.
unsafe fn originals(obj: bool) -> (*mut c_void, MallocFn, CallocFn, ReallocFn, FreeFn) {
    let a = original_allocator(obj);
    // SAFETY: the core recorded these from `PyMem_GetAllocator` before installing the
    // wrappers: they are the domain's functions, of these C signatures.
    unsafe {
        (
            a.ctx as *mut c_void,
            core::mem::transmute::<usize, MallocFn>(a.malloc),
            core::mem::transmute::<usize, CallocFn>(a.calloc),
            core::mem::transmute::<usize, ReallocFn>(a.realloc),
            core::mem::transmute::<usize, FreeFn>(a.free),
        )
    }
}

/// The wrappers of one domain: `$obj` says which.
macro_rules! domain_wrappers {
    ($obj:expr, $malloc:ident, $malloc_hook:ident, $calloc:ident, $calloc_hook:ident,
     $realloc:ident, $realloc_hook:ident, $free:ident) => {
        allocation_entry!(
            /// A wrapped domain's `malloc`.
            fn $malloc(ctx: *mut c_void, size: usize) -> *mut c_void => $malloc_hook,
            frame in "rdx", "rcx", "r8"
        );
        allocation_entry!(
            /// A wrapped domain's `calloc`.
            fn $calloc(ctx: *mut c_void, count: usize, size: usize) -> *mut c_void =>
                $calloc_hook, frame in "rcx", "r8", "r9"
        );
        allocation_entry!(
            /// A wrapped domain's `realloc`.
            fn $realloc(ctx: *mut c_void, old: *mut c_void, size: usize) -> *mut c_void =>
                $realloc_hook, frame in "rcx", "r8", "r9"
        );

        unsafe extern "C" fn $malloc_hook(
            _ctx: *mut c_void,
            size: usize,
            ra: u64,
            sp: u64,
            bp: u64,
        ) -> *mut c_void {
            // SAFETY: called by the interpreter through the wrapped domain.
            let (ctx, malloc, ..) = unsafe { originals($obj) };
            let block = {
                let _inside = AgentSection::enter_nested();
                // SAFETY: the domain's own malloc, with its own ctx.
                unsafe { malloc(ctx, size) }
            };
            core_::on_runtime_alloc(block, size, frame(ra, sp, bp));
            block
        }

        unsafe extern "C" fn $calloc_hook(
            _ctx: *mut c_void,
            count: usize,
            size: usize,
            ra: u64,
            sp: u64,
            bp: u64,
        ) -> *mut c_void {
            // SAFETY: as in the malloc wrapper.
            let (ctx, _, calloc, ..) = unsafe { originals($obj) };
            let block = {
                let _inside = AgentSection::enter_nested();
                // SAFETY: the domain's own calloc (which checks the product for overflow).
                unsafe { calloc(ctx, count, size) }
            };
            core_::on_runtime_alloc(block, count.wrapping_mul(size), frame(ra, sp, bp));
            block
        }

        unsafe extern "C" fn $realloc_hook(
            _ctx: *mut c_void,
            old: *mut c_void,
            size: usize,
            ra: u64,
            sp: u64,
            bp: u64,
        ) -> *mut c_void {
            // SAFETY: as in the malloc wrapper.
            let (ctx, _, _, realloc, _) = unsafe { originals($obj) };
            let old_block = core_::on_realloc_start(old);
            let block = {
                let _inside = AgentSection::enter_nested();
                // SAFETY: the domain's own realloc, of a block it gave (or null).
                unsafe { realloc(ctx, old, size) }
            };
            if block.is_null() {
                // The domains never free on realloc (size 0 still gets a block): the old
                // block, if any, is still the program's.
                core_::on_realloc_failed(old_block);
                return block;
            }
            core_::on_runtime_alloc(block, size, frame(ra, sp, bp));
            block
        }

        unsafe extern "C" fn $free(_ctx: *mut c_void, block: *mut c_void) {
            // SAFETY: as in the malloc wrapper.
            let (ctx, .., free) = unsafe { originals($obj) };
            core_::on_free(block);
            // SAFETY: the domain's own free, of a block it gave. (If the exit path has `free`
            // only forget blocks, the `malloc`-family hook below it sees to that.)
            unsafe { free(ctx, block) }
        }
    };
}

domain_wrappers!(
    false,
    leakscope_pymem_malloc,
    pymem_malloc_hook,
    leakscope_pymem_calloc,
    pymem_calloc_hook,
    leakscope_pymem_realloc,
    pymem_realloc_hook,
    pymem_free
);
domain_wrappers!(
    true,
    leakscope_pyobject_malloc,
    pyobject_malloc_hook,
    leakscope_pyobject_calloc,
    pyobject_calloc_hook,
    leakscope_pyobject_realloc,
    pyobject_realloc_hook,
    pyobject_free
);

/// Tell the core where the wrappers are (from the constructor).
pub fn register() {
    let allocator = |malloc: usize, calloc: usize, realloc: usize, free: usize| Allocator {
        ctx: 0,
        malloc,
        calloc,
        realloc,
        free,
    };
    core_::python::set_wrappers(Wrappers {
        mem: allocator(
            leakscope_pymem_malloc as *const () as usize,
            leakscope_pymem_calloc as *const () as usize,
            leakscope_pymem_realloc as *const () as usize,
            pymem_free as *const () as usize,
        ),
        obj: allocator(
            leakscope_pyobject_malloc as *const () as usize,
            leakscope_pyobject_calloc as *const () as usize,
            leakscope_pyobject_realloc as *const () as usize,
            pyobject_free as *const () as usize,
        ),
    });
}

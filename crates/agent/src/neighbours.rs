//! Other allocators' functions, made to work on the blocks the agent serves.
//!
//! The agent serves every allocation from glibc's allocator, whatever allocator the program
//! links: its `malloc` comes first in the lookup order. A program linked with jemalloc (as
//! Debian's redis-server is) still calls jemalloc's own functions, such as
//! `malloc_usable_size`, `nallocx` or `mallocx`, and those would read glibc's blocks as
//! jemalloc's and crash. So:
//! - glibc's heap functions (`malloc_usable_size`, `malloc_trim`, `mallinfo`, `mallinfo2`,
//!   `mallopt`, `malloc_info`, `malloc_stats`) are interposed and go to glibc's own, found in
//!   libc.so.6 itself rather than next in the lookup order (which would be jemalloc's);
//! - jemalloc's non-standard API (`mallocx`, `rallocx`, `xallocx`, `sallocx`, `dallocx`,
//!   `sdallocx`, `nallocx`) is served on glibc's blocks, with jemalloc's meaning of its flags
//!   (alignment, zeroing; arenas and thread caches do not exist here and are ignored);
//!   `mallctl` and the statistics functions stay jemalloc's (they describe jemalloc's now
//!   nearly empty heap; nothing crashes).
//!
//! Allocators whose own API a program calls directly (tcmalloc's `MallocExtension`, mimalloc's
//! `mi_*` functions) are not supported: see docs/decisions/0006-real-programs.md.

use core::ffi::{c_int, c_void};

use leakscope_agent_core as core_;
use leakscope_agent_core::sys::set_errno;

use crate::{__libc_malloc, __libc_memalign, __libc_realloc};

use crate::symbols::{Scope, Symbol};

static GLIBC_MALLOC_USABLE_SIZE: Symbol = Symbol::new(c"malloc_usable_size", Scope::Libc);
static GLIBC_MALLOC_TRIM: Symbol = Symbol::new(c"malloc_trim", Scope::Libc);
static GLIBC_MALLINFO: Symbol = Symbol::new(c"mallinfo", Scope::Libc);
static GLIBC_MALLINFO2: Symbol = Symbol::new(c"mallinfo2", Scope::Libc);
static GLIBC_MALLOPT: Symbol = Symbol::new(c"mallopt", Scope::Libc);
static GLIBC_MALLOC_INFO: Symbol = Symbol::new(c"malloc_info", Scope::Libc);
static GLIBC_MALLOC_STATS: Symbol = Symbol::new(c"malloc_stats", Scope::Libc);

/// Look glibc's functions up now (from the constructor), not on first use.
pub fn resolve() {
    for function in [
        &GLIBC_MALLOC_USABLE_SIZE,
        &GLIBC_MALLOC_TRIM,
        &GLIBC_MALLINFO,
        &GLIBC_MALLINFO2,
        &GLIBC_MALLOPT,
        &GLIBC_MALLOC_INFO,
        &GLIBC_MALLOC_STATS,
    ] {
        function.resolve();
    }
}

/// glibc's `malloc_usable_size` of a block it served.
fn usable_size(block: *mut c_void) -> usize {
    let f = GLIBC_MALLOC_USABLE_SIZE.address();
    if f == 0 || block.is_null() {
        return 0;
    }
    // SAFETY: glibc's malloc_usable_size; `block` is a live glibc block (the caller's).
    unsafe {
        let f: unsafe extern "C" fn(*mut c_void) -> usize = core::mem::transmute(f);
        f(block)
    }
}

/// `malloc_usable_size(3)`: glibc's, on the glibc block.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(block: *mut c_void) -> usize {
    usable_size(block)
}

/// glibc's own heap functions, called with the caller's arguments; `$missing` if libc has
/// none (cannot happen with glibc).
macro_rules! glibc_heap_function {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $symbol:ident, else $missing:expr;
    )*) => {$(
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            let f = $symbol.address();
            if f == 0 {
                return $missing;
            }
            // SAFETY: libc.so.6's function of the same name and signature.
            unsafe {
                let f: unsafe extern "C" fn($($ty),*) -> $ret = core::mem::transmute(f);
                f($($arg),*)
            }
        }
    )*};
}

glibc_heap_function! {
    /// `malloc_trim(3)`.
    fn malloc_trim(pad: usize) -> c_int = GLIBC_MALLOC_TRIM, else 0;
    /// `mallinfo(3)`.
    fn mallinfo() -> libc::mallinfo = GLIBC_MALLINFO, else no_mallinfo();
    /// `mallinfo2(3)`.
    fn mallinfo2() -> libc::mallinfo2 = GLIBC_MALLINFO2, else no_mallinfo();
    /// `mallopt(3)`.
    fn mallopt(param: c_int, value: c_int) -> c_int = GLIBC_MALLOPT, else 0;
    /// `malloc_info(3)`.
    fn malloc_info(options: c_int, stream: *mut c_void) -> c_int = GLIBC_MALLOC_INFO, else {
        set_errno(libc::ENOSYS);
        -1
    };
}

/// `malloc_stats(3)`.
#[no_mangle]
pub unsafe extern "C" fn malloc_stats() {
    let f = GLIBC_MALLOC_STATS.address();
    if f != 0 {
        // SAFETY: libc.so.6's malloc_stats.
        unsafe {
            let f: unsafe extern "C" fn() = core::mem::transmute(f);
            f()
        }
    }
}

/// An all-zero `mallinfo` or `mallinfo2`.
fn no_mallinfo<T>() -> T {
    // SAFETY: only instantiated for mallinfo and mallinfo2, plain integer structs, for which
    // all-zero is valid.
    unsafe { core::mem::zeroed() }
}

// jemalloc's flags (jemalloc/jemalloc_macros.h): the low six bits are log2 of the alignment,
// 0x40 asks for zeroed memory; the thread-cache and arena bits have no meaning here.
const MALLOCX_LG_ALIGN_MASK: c_int = 0x3f;
const MALLOCX_ZERO: c_int = 0x40;

/// The alignment jemalloc's `flags` ask for (0: none beyond malloc's).
fn alignment_of(flags: c_int) -> usize {
    match flags & MALLOCX_LG_ALIGN_MASK {
        0 => 0,
        lg => 1usize << lg.min(62),
    }
}

crate::hooks::allocation_entry!(
    /// jemalloc's `mallocx`.
    fn mallocx(size: usize, flags: c_int) -> *mut c_void => mallocx_hook,
    frame in "rdx", "rcx", "r8"
);

unsafe extern "C" fn mallocx_hook(
    size: usize,
    flags: c_int,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    let align = alignment_of(flags);
    // SAFETY: glibc's allocator; memalign validates the (power of two) alignment.
    let block = unsafe {
        if align > 16 {
            __libc_memalign(align, size)
        } else {
            __libc_malloc(size)
        }
    };
    if !block.is_null() && flags & MALLOCX_ZERO != 0 {
        // SAFETY: the block has at least `size` bytes.
        unsafe { core::ptr::write_bytes(block as *mut u8, 0, size) };
    }
    core_::on_alloc(block, size, crate::hooks::frame(ra, sp, bp));
    block
}

crate::hooks::allocation_entry!(
    /// jemalloc's `rallocx`.
    fn rallocx(block: *mut c_void, size: usize, flags: c_int) -> *mut c_void => rallocx_hook,
    frame in "rcx", "r8", "r9"
);

unsafe extern "C" fn rallocx_hook(
    old: *mut c_void,
    size: usize,
    flags: c_int,
    ra: u64,
    sp: u64,
    bp: u64,
) -> *mut c_void {
    let align = alignment_of(flags);
    let old_usable = usable_size(old);
    let block = if align > 16 && !(old as usize).is_multiple_of(align) {
        // glibc cannot keep an alignment across realloc: a new block, then a copy.
        // SAFETY: glibc's allocator; the copy stays within both blocks.
        let new = unsafe { mallocx_hook(size, flags & !MALLOCX_ZERO, ra, sp, bp) };
        if new.is_null() {
            return new;
        }
        // SAFETY: `old` is the program's live block of `old_usable` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(old as *const u8, new as *mut u8, old_usable.min(size));
            crate::hooks::free(old);
        }
        new
    } else {
        let old_block = core_::on_realloc_start(old);
        // SAFETY: `old` is a block the program got from this allocator; jemalloc's rallocx
        // never frees for size 0 (it allocates the smallest size), so neither does this.
        let new = unsafe { __libc_realloc(old, size.max(1)) };
        if new.is_null() {
            core_::on_realloc_failed(old_block);
            return new;
        }
        core_::on_alloc(new, size, crate::hooks::frame(ra, sp, bp));
        new
    };
    if flags & MALLOCX_ZERO != 0 && size > old_usable {
        // SAFETY: the new block has at least `size` bytes; zero what the old one did not have.
        unsafe { core::ptr::write_bytes((block as *mut u8).add(old_usable), 0, size - old_usable) };
    }
    block
}

/// jemalloc's `xallocx`: resize in place. glibc cannot grow a block in place, so the block
/// stays as it is; the result is its usable size, as jemalloc returns when it could not.
#[no_mangle]
pub unsafe extern "C" fn xallocx(
    block: *mut c_void,
    _size: usize,
    _extra: usize,
    _flags: c_int,
) -> usize {
    usable_size(block)
}

/// jemalloc's `sallocx`: the block's usable size.
#[no_mangle]
pub unsafe extern "C" fn sallocx(block: *const c_void, _flags: c_int) -> usize {
    usable_size(block as *mut c_void)
}

/// jemalloc's `dallocx`: `free`.
#[no_mangle]
pub unsafe extern "C" fn dallocx(block: *mut c_void, _flags: c_int) {
    // SAFETY: the program's block, from this allocator.
    unsafe { crate::hooks::free(block) }
}

/// jemalloc's `sdallocx`: `free` (the size hint is not needed).
#[no_mangle]
pub unsafe extern "C" fn sdallocx(block: *mut c_void, _size: usize, _flags: c_int) {
    // SAFETY: the program's block, from this allocator.
    unsafe { crate::hooks::free(block) }
}

/// jemalloc's `nallocx`: the usable size `mallocx(size, flags)` would give, as glibc sizes
/// its chunks (16-byte steps, 8 bytes of header, 24 usable bytes at least), so that it agrees
/// with `malloc_usable_size`. Blocks from their own mapping (128 KiB and up, by default) are
/// page-rounded and may have more; at least `size` is always right.
#[no_mangle]
pub unsafe extern "C" fn nallocx(size: usize, flags: c_int) -> usize {
    let Some(padded) = size.checked_add(8 + 15) else {
        return 0;
    };
    let usable = (padded & !15).max(32) - 8;
    match alignment_of(flags) {
        0 => usable,
        align => usable.next_multiple_of(align.max(16)),
    }
}

/// Is `address` (what `dlsym` found for a function) a position-dependent executable's
/// canonical PLT entry rather than a definition? Such an executable (`ET_EXEC`, node 20's
/// official binary is one) that takes a function's address gives the undefined symbol the
/// address of its PLT entry, so that the function has one address everywhere; the dynamic
/// linker's lookups, `dlsym` among them, accept it as the symbol's value. The entry jumps to
/// the real definition (the agent's). `dladdr1` names the symbol whose value it is: undefined
/// (`SHN_UNDEF`) for such an entry, defined for a real function.
fn is_canonical_plt_entry(address: *const c_void) -> bool {
    /// `dladdr1`'s request for the symbol's `ElfW(Sym)` (<dlfcn.h>).
    const RTLD_DL_SYMENT: libc::c_int = 1;
    /// `st_shndx` of an undefined symbol (<elf.h>).
    const SHN_UNDEF: u16 = 0;
    // SAFETY: dladdr1 fills `info` and, for RTLD_DL_SYMENT, stores a pointer to the symbol's
    // entry in the object's dynamic symbol table, mapped as long as the object is loaded.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        let mut symbol: *const libc::Elf64_Sym = core::ptr::null();
        let found = libc::dladdr1(
            address,
            &mut info,
            &mut symbol as *mut *const libc::Elf64_Sym as *mut *mut c_void,
            RTLD_DL_SYMENT,
        );
        found != 0
            && !symbol.is_null()
            && core::ptr::eq(info.dli_saddr, address)
            && (*symbol).st_shndx == SHN_UNDEF
    }
}

/// Does the program have an allocator of its own that the agent cannot interpose? The agent
/// comes after the executable in the lookup order, so a `malloc` found before the agent's is
/// the executable's own: then no allocation reaches the agent. Known entry points of
/// allocators linked in statically under their own names (jemalloc with its `je_` prefix,
/// Rust's jemallocator, mimalloc's and tcmalloc's own APIs) are looked for too: what the
/// program allocates through them is not tracked. Returns the warning for the report.
pub fn program_allocator() -> Option<&'static str> {
    /// The base address of the object that holds `address` (0 if none).
    fn object_of(address: *const c_void) -> usize {
        // SAFETY: dladdr only fills `info`; a zeroed Dl_info is a valid out-parameter.
        unsafe {
            let mut info: libc::Dl_info = core::mem::zeroed();
            if libc::dladdr(address, &mut info) == 0 {
                return 0;
            }
            info.dli_fbase as usize
        }
    }
    let _section = core_::thread::AgentSection::enter_nested(); // dlsym may allocate
                                                                // SAFETY: dlsym with NUL-terminated names; the results are only compared.
    unsafe {
        // Compared by the object that defines it: the agent's own references to `malloc` are
        // bound like everyone's, so its address as the agent sees it is the program's too.
        let found = libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr());
        if !found.is_null()
            && object_of(found) != object_of(program_allocator as *const c_void)
            && !is_canonical_plt_entry(found)
        {
            return Some("the program defines its own malloc, which comes before the agent's in the lookup order: its allocations never reach leakscope, so this report cannot show its leaks (build it with the system allocator to check it)");
        }
        for (symbol, warning) in [
            (c"je_malloc", "the program has jemalloc linked in under the je_ prefix (je_malloc): what it allocates through it is not tracked, so its leaks there are not in this report"),
            (c"_rjem_malloc", "the program uses Rust's jemallocator (_rjem_malloc): what it allocates through it is not tracked, so its leaks there are not in this report (use the system allocator to check it)"),
            (c"mi_malloc", "the program has mimalloc's own API (mi_malloc): blocks it allocates through mi_* functions are not tracked (those through malloc and new are)"),
            (c"tc_malloc", "the program has tcmalloc's own API (tc_malloc): blocks it allocates through tc_* functions or MallocExtension are not tracked (those through malloc and new are)"),
        ] {
            if !libc::dlsym(libc::RTLD_DEFAULT, symbol.as_ptr()).is_null() {
                return Some(warning);
            }
        }
    }
    None
}

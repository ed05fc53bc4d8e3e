//! What the agent must know about glibc and libstdc++ to count as memcheck does.
//!
//! memcheck runs `__libc_freeres` and `__gnu_cxx::__freeres` before its leak check, so the
//! blocks the C and C++ runtimes keep on purpose (stdio buffers, the stack cache of exited
//! threads, libstdc++'s emergency exception pool, ...) are freed and never reported. The agent
//! does the same where that is safe, and otherwise leaves out the blocks it can identify.

use core::sync::atomic::{AtomicUsize, Ordering};

extern "C" {
    /// glibc: free the memory the C runtime keeps until exit. Also flushes stdio.
    fn __libc_freeres();
    /// glibc's list of open `FILE`s.
    static _IO_list_all: *mut u8;
}

/// `__gnu_cxx::__freeres`, looked up at start (it exists only if libstdc++ is loaded, and
/// `dlsym` may allocate, which the exit path must not do).
static CXX_FREERES: AtomicUsize = AtomicUsize::new(0);

/// Where glibc's `main_arena` lies (start, end), or (0, 0) if it could not be found.
static MAIN_ARENA: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));

/// Size of glibc's `struct malloc_state` (2.26 and later, x86-64).
const MALLOC_STATE_SIZE: usize = 2200;
/// Offset of `top` in it; the unsorted bin's head, seen as a chunk, is at the same address.
const MALLOC_STATE_TOP: usize = 96;

extern "C" {
    fn __libc_malloc(size: usize) -> *mut u8;
    fn __libc_free(ptr: *mut u8);
}

/// Find glibc's `main_arena`, which lies in libc's writable data and so would be scanned as a
/// root. Its bins and `top` point at free chunks' headers, and a free chunk's header is the
/// last 8 bytes of the block before it: to the scan, that is an interior pointer into a block
/// that the program lost. memcheck never sees this arena (it replaces malloc), so the scan
/// must leave it out.
///
/// How: a freed chunk too large for the tcache and the fast bins goes to the unsorted bin,
/// and its first word (`fd`) then points at the bin's head, `&main_arena.top`. Call once, at
/// start, on the main thread (whose arena is `main_arena`).
pub fn locate_main_arena() {
    // SAFETY: allocate and free with glibc directly (untracked). The guard block keeps the
    // probe from merging into the top chunk; the probe's first word is read after free while
    // glibc owns it, which is sound for plain memory and is what we want to see.
    unsafe {
        let probe = __libc_malloc(4096);
        let guard = __libc_malloc(32);
        if probe.is_null() || guard.is_null() {
            return;
        }
        __libc_free(probe);
        let fd = (probe as *const usize).read_volatile();
        __libc_free(guard);
        let base = fd.wrapping_sub(MALLOC_STATE_TOP);
        // Check: `next` (at 2160) of the main arena points at an arena, itself when alone.
        let next = ((base + 2160) as *const usize).read_volatile();
        if in_libc_data(base) && (next == base || next != 0) {
            MAIN_ARENA.0.store(base, Ordering::Release);
            MAIN_ARENA
                .1
                .store(base + MALLOC_STATE_SIZE, Ordering::Release);
        }
    }
}

/// The range of `main_arena`, if it was found.
pub fn main_arena() -> Option<(usize, usize)> {
    let start = MAIN_ARENA.0.load(Ordering::Acquire);
    (start != 0).then(|| (start, MAIN_ARENA.1.load(Ordering::Acquire)))
}

/// Is `address` inside a writable segment of libc.so.6?
fn in_libc_data(address: usize) -> bool {
    unsafe extern "C" fn check(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `info` is valid for the callback; `data` is the (address, found) pair.
        unsafe {
            let query = &mut *(data as *mut (usize, bool));
            let info = &*info;
            if info.dlpi_name.is_null() {
                return 0;
            }
            let name = core::ffi::CStr::from_ptr(info.dlpi_name).to_bytes();
            if !name.windows(9).any(|w| w == b"libc.so.6") {
                return 0;
            }
            let phdrs = core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
            for ph in phdrs {
                let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
                if ph.p_type == libc::PT_LOAD
                    && ph.p_flags & libc::PF_W != 0
                    && (start..start + ph.p_memsz as usize).contains(&query.0)
                {
                    query.1 = true;
                }
            }
            1
        }
    }
    let mut query = (address, false);
    // SAFETY: the callback only reads the info and writes `query`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(check), &mut query as *mut _ as *mut libc::c_void) };
    query.1
}

/// Look up the runtime functions the exit path may call. Call once at start.
pub fn resolve() {
    // SAFETY: dlsym with a NUL-terminated name; the result is only stored.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_ZN9__gnu_cxx9__freeresEv".as_ptr()) };
    CXX_FREERES.store(f as usize, Ordering::Release);
}

/// Free libstdc++'s emergency exception pool, as memcheck does.
pub fn cxx_freeres() -> bool {
    let f = CXX_FREERES.load(Ordering::Acquire);
    if f == 0 {
        return false;
    }
    // SAFETY: `f` is `__gnu_cxx::__freeres`, a `void()` function found by dlsym.
    unsafe {
        let f: extern "C" fn() = core::mem::transmute(f);
        f();
    }
    true
}

/// Free glibc's runtime memory, as memcheck does. Only safe when no other thread runs and the
/// process is in `exit` (it flushes stdio, which `exit` does next anyway).
pub fn libc_freeres() {
    // SAFETY: the caller guarantees the conditions above.
    unsafe { __libc_freeres() };
}

/// The stdio buffers glibc holds (which `__libc_freeres` would free). Writes their addresses
/// into `out` and returns how many.
pub fn stdio_buffers(out: &mut [u64]) -> usize {
    // Offsets in glibc's `struct _IO_FILE` (public ABI, <bits/types/struct_FILE.h>).
    const FLAGS: usize = 0;
    const BUF_BASE: usize = 56;
    const CHAIN: usize = 104;
    const USER_BUF: i32 = 0x0001;
    let mut n = 0;
    // SAFETY: `_IO_list_all` is glibc's list head; every FILE on it is a live glibc FILE
    // whose fields we only read. The walk is bounded in case the list is corrupt.
    unsafe {
        let mut fp = _IO_list_all;
        let mut guard = 0;
        while !fp.is_null() && guard < 100_000 && n < out.len() {
            let flags = (fp.add(FLAGS) as *const i32).read();
            let buf_base = (fp.add(BUF_BASE) as *const u64).read();
            if buf_base != 0 && flags & USER_BUF == 0 {
                out[n] = buf_base;
                n += 1;
            }
            fp = (fp.add(CHAIN) as *const *mut u8).read();
            guard += 1;
        }
    }
    n
}

/// glibc's chunk header bit: the chunk was allocated with its own `mmap`.
const IS_MMAPPED: u64 = 2;

/// If the block at `address` is a glibc chunk with its own mapping, the mapping's range.
///
/// # Safety
/// `address` must be the start of a live block returned by glibc's allocator.
pub unsafe fn own_mapping_of_block(address: u64) -> Option<(u64, u64)> {
    // SAFETY: glibc keeps `prev_size` and `size` in the 16 bytes before every chunk's memory.
    let (prev_size, size) = unsafe {
        (
            ((address - 16) as *const u64).read(),
            ((address - 8) as *const u64).read(),
        )
    };
    if size & IS_MMAPPED == 0 {
        return None;
    }
    let chunk = address - 16;
    Some((chunk - prev_size, chunk + (size & !7)))
}

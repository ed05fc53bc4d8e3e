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

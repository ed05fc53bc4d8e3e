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
/// Offset of `next` (the list of arenas) in it.
const MALLOC_STATE_NEXT: usize = 2160;

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
/// glibc does not export `main_arena`. Candidates come from two places, and none is read
/// before it is proven to lie where `main_arena` must lie (wholly inside libc's writable
/// data), and none is taken before it passes [`is_main_arena`]:
/// 1. a probe: a freed chunk too large for the tcache and the fast bins goes to the head of
///    the unsorted bin, and its second word (`bk`) then points at the bin's head,
///    `&main_arena.top` (unless it merged with a free neighbour: then the check fails);
/// 2. failing that, a search of libc's writable data for the pattern of an empty bin (two
///    words that point 16 bytes below themselves), from which the arena's base follows.
///
/// The layout (`struct malloc_state`, x86-64) is the one of glibc 2.27 and later; other
/// versions are not probed. Call once, at start, on the main thread. Returns whether the
/// arena was found; if not, the scan runs without leaving it out, and the report says what
/// that may cost.
pub fn locate_main_arena() -> bool {
    if !malloc_state_layout_known() {
        return false;
    }
    let base = probe_unsorted_bin(4096)
        .filter(|&base| is_main_arena(base))
        .or_else(search_libc_data);
    if let Some(base) = base {
        MAIN_ARENA.0.store(base, Ordering::Release);
        MAIN_ARENA
            .1
            .store(base + MALLOC_STATE_SIZE, Ordering::Release);
    }
    base.is_some()
}

/// Is this glibc's `struct malloc_state` the one whose offsets this module uses (2.27 and
/// later: `have_fastchunks` as its own field)?
fn malloc_state_layout_known() -> bool {
    extern "C" {
        fn gnu_get_libc_version() -> *const core::ffi::c_char;
    }
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let version = unsafe { core::ffi::CStr::from_ptr(gnu_get_libc_version()) }.to_bytes();
    let mut parts = version.split(|&b| b == b'.');
    let number = |part: Option<&[u8]>| -> Option<u32> {
        let digits = part?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0u32, |n, &d| n * 10 + (d - b'0') as u32))
    };
    matches!((number(parts.next()), number(parts.next())), (Some(2), Some(minor)) if minor >= 27)
}

/// Offset of `bins` in `struct malloc_state`, and the number of bins (bin 0 does not exist).
const MALLOC_STATE_BINS: usize = 112;
const BINS: usize = 127;

/// Does a `struct malloc_state` as glibc keeps `main_arena` lie at `base`? It must lie wholly
/// in libc's writable data, and each of its 127 bins must be a well-formed list head: empty
/// (both links point at the bin itself) or with a first and a last chunk that link back to
/// it. Only then is its `next` read, which must not be null.
fn is_main_arena(base: usize) -> bool {
    let Some(end) = base.checked_add(MALLOC_STATE_SIZE) else {
        return false;
    };
    if !base.is_multiple_of(8) || !in_libc_data(base) || !in_libc_data(end - 1) {
        return false;
    }
    let mut words = [0u64; MALLOC_STATE_SIZE / 8];
    if crate::sys::read_words(base as u64, &mut words) != words.len() {
        return false;
    }
    let mut empty = 0;
    for bin in 0..BINS {
        let slot = MALLOC_STATE_BINS + bin * 16;
        // The bin's head, seen as a chunk, lies 16 bytes below its `fd` slot.
        let head = (base + slot - 16) as u64;
        let (fd, bk) = (words[slot / 8], words[slot / 8 + 1]);
        match (fd == head, bk == head) {
            (true, true) => empty += 1,
            (false, false) => {
                // A chunk's `fd` is at +16 and `bk` at +24.
                let first_links_back =
                    crate::sys::read_word(fd as usize + 24) == Some(head as usize);
                let last_links_back =
                    crate::sys::read_word(bk as usize + 16) == Some(head as usize);
                if !(first_links_back && last_links_back) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    // Most bins of a young process are empty; a structure with none is not an arena.
    empty >= 16 && words[MALLOC_STATE_NEXT / 8] != 0
}

/// Probe the unsorted bin with a block of `size` bytes: the candidate arena base its freed
/// chunk's `bk` points at (unchecked).
fn probe_unsorted_bin(size: usize) -> Option<usize> {
    // SAFETY: allocate and free with glibc directly (untracked); each block is freed once.
    // The guard block keeps the probe from merging into the top chunk.
    let (probe, guard) = unsafe { (__libc_malloc(size), __libc_malloc(32)) };
    let release = |block: *mut u8| {
        if !block.is_null() {
            // SAFETY: a block from __libc_malloc above, not freed yet.
            unsafe { __libc_free(block) };
        }
    };
    if probe.is_null() || guard.is_null() {
        release(probe);
        release(guard);
        return None;
    }
    let probe_address = probe as usize;
    // A probe with its own mapping (a lowered mmap threshold) is unmapped by free and never
    // enters a bin. (The header is read without faulting, whatever glibc did.)
    let mmapped = crate::sys::read_word(probe_address - 8)
        .is_none_or(|header| header & IS_MMAPPED as usize != 0);
    release(probe);
    let found = if mmapped {
        None
    } else {
        crate::sys::read_word(probe_address + 8)
            .and_then(|bin_head| bin_head.checked_sub(MALLOC_STATE_TOP))
    };
    release(guard);
    found
}

/// Search libc's writable data for `main_arena`: find an empty bin (a pair of words that
/// point 16 bytes below themselves), then try each base that would make it one of the 127
/// bins. A few such pairs are tried before giving up.
fn search_libc_data() -> Option<usize> {
    let (start, end) = libc_data_range()?;
    let mut from = start;
    for _attempt in 0..4 {
        let slot = find_empty_bin_pattern(from, end)?;
        let base = (0..BINS)
            .filter_map(|bin| slot.checked_sub(MALLOC_STATE_BINS + bin * 16))
            .find(|&base| is_main_arena(base));
        if base.is_some() {
            return base;
        }
        from = slot + 16;
    }
    None
}

/// The first address in `[from, end)` whose two words both hold the address 16 bytes below it.
fn find_empty_bin_pattern(from: usize, end: usize) -> Option<usize> {
    let mut chunk = [0u64; 512];
    let mut at = (from + 7) & !7;
    while at + 16 <= end {
        let words = ((end - at) / 8).min(chunk.len());
        let got = crate::sys::read_words(at as u64, &mut chunk[..words]);
        if got < 2 {
            at = (at & !4095) + 4096;
            continue;
        }
        for i in 0..got - 1 {
            let slot = at + i * 8;
            let head = slot as u64 - 16;
            if chunk[i] == head && chunk[i + 1] == head {
                return Some(slot);
            }
        }
        at += (got - 1) * 8;
    }
    None
}

/// The range of `main_arena`, if it was found.
pub fn main_arena() -> Option<(usize, usize)> {
    let start = MAIN_ARENA.0.load(Ordering::Acquire);
    (start != 0).then(|| (start, MAIN_ARENA.1.load(Ordering::Acquire)))
}

/// Is `address` inside libc.so.6's writable segment?
fn in_libc_data(address: usize) -> bool {
    libc_data_range().is_some_and(|(start, end)| (start..end).contains(&address))
}

/// The range of libc.so.6's writable `PT_LOAD` segment (its `.data` and `.bss`).
fn libc_data_range() -> Option<(usize, usize)> {
    let cached = LIBC_DATA.0.load(Ordering::Acquire);
    if cached != 0 {
        return Some((cached, LIBC_DATA.1.load(Ordering::Acquire)));
    }
    let mut range = (0usize, 0usize);
    crate::sys::for_each_loaded_object(|info| {
        if info.dlpi_name.is_null() || info.dlpi_phdr.is_null() {
            return false;
        }
        // SAFETY: the dynamic linker's name of the object, a NUL-terminated string.
        let path = unsafe { core::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes();
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        if name != b"libc.so.6" {
            return false;
        }
        // SAFETY: the dynamic linker gives `dlpi_phnum` program headers at `dlpi_phdr`.
        let phdrs =
            unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        for ph in phdrs {
            if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
                let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
                range = (start, start.saturating_add(ph.p_memsz as usize));
            }
        }
        true
    });
    if range.0 == 0 || range.1 <= range.0 {
        return None;
    }
    LIBC_DATA.1.store(range.1, Ordering::Release);
    LIBC_DATA.0.store(range.0, Ordering::Release);
    Some(range)
}

/// libc's writable segment, once found (start 0: not yet).
static LIBC_DATA: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));

/// Look up the runtime functions the exit path may call. Call once at start.
pub fn resolve() {
    let f = crate::sys::symbol_address(c"_ZN9__gnu_cxx9__freeresEv");
    CXX_FREERES.store(f, Ordering::Release);
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

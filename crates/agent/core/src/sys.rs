//! The agent's only door to the operating system: anonymous memory, files, threads, clocks
//! and futexes, through raw system calls or libc functions that never allocate.
//!
//! Every mapping the agent makes is recorded in [`OwnMappings`] so that the reachability scan
//! can leave the agent's own tables out of the root set (they hold the address of every live
//! block, and would otherwise make every block look reachable).

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::sync::SpinLock;

pub mod procfs;

pub use procfs::{parse_decimal, parse_hex};

/// Size of a page. x86_64 Linux only uses 4 KiB base pages for anonymous mappings.
pub const PAGE: usize = 4096;

/// Round `n` up to a whole number of pages.
pub const fn page_round(n: usize) -> usize {
    (n + PAGE - 1) & !(PAGE - 1)
}

/// Most mappings the registry records.
pub const MAX_OWN_MAPPINGS: usize = 4096;

/// The address ranges of every mapping the agent made for itself.
pub struct OwnMappings {
    ranges: SpinLock<MappingRanges>,
}

struct MappingRanges {
    count: usize,
    ranges: [(usize, usize); MAX_OWN_MAPPINGS],
}

/// The registry of the agent's own mappings.
pub static OWN_MAPPINGS: OwnMappings = OwnMappings {
    ranges: SpinLock::new(MappingRanges {
        count: 0,
        ranges: [(0, 0); MAX_OWN_MAPPINGS],
    }),
};

impl OwnMappings {
    fn add(&self, start: usize, len: usize) {
        let mut registry = self.ranges.lock();
        let count = registry.count;
        if count < MAX_OWN_MAPPINGS {
            registry.ranges[count] = (start, start + len);
            registry.count += 1;
        }
    }

    fn remove(&self, start: usize) {
        let mut registry = self.ranges.lock();
        let count = registry.count;
        if let Some(i) = registry.ranges[..count].iter().position(|r| r.0 == start) {
            registry.ranges[i] = registry.ranges[count - 1];
            registry.count -= 1;
        }
    }

    /// Copy the ranges into `out` (sorted by start) and return how many there are. Used by the
    /// scan while every other thread is stopped; `try_lock` because a thread stopped by a
    /// fatal signal inside `add` must not hang the scan.
    pub fn snapshot(&self, out: &mut [(usize, usize)]) -> usize {
        let guard = self.ranges.try_lock_for_a_while();
        let registry: &MappingRanges = match &guard {
            Some(guard) => guard,
            // SAFETY: the holder never let go: it is stopped for good (the scan runs with
            // every other thread stopped), so the registry does not change under us; we only
            // read it, and this thread holds no guard.
            None => unsafe { self.ranges.get_unlocked() },
        };
        let n = registry.count.min(out.len());
        out[..n].copy_from_slice(&registry.ranges[..n]);
        drop(guard);
        out[..n].sort_unstable();
        n
    }

    /// Reset the lock in a forked child (the parent's holder does not exist there).
    ///
    /// # Safety
    /// Only in the child of a `fork` whose parent called [`OwnMappings::lock_for_fork`].
    pub unsafe fn reset_in_child(&self) {
        // SAFETY: the caller's promise: the registry is whole.
        unsafe { self.ranges.reset_in_child() };
    }

    /// Take the lock before `fork`, so that the child gets a consistent registry.
    pub fn lock_for_fork(&self) {
        self.ranges.lock_for_fork();
    }

    /// Release the lock taken by [`OwnMappings::lock_for_fork`] in the parent.
    ///
    /// # Safety
    /// The calling thread took it with [`OwnMappings::lock_for_fork`].
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller's promise.
        unsafe { self.ranges.unlock_after_fork() };
    }
}

/// Map `len` bytes of zeroed, private, anonymous memory. Returns null on failure.
/// `reserve_only` maps with `MAP_NORESERVE` for large tables that are filled lazily.
pub fn map_anonymous(len: usize, reserve_only: bool) -> *mut u8 {
    let _errno = ErrnoGuard::new();
    let len = page_round(len);
    let flags = libc::MAP_PRIVATE
        | libc::MAP_ANONYMOUS
        | if reserve_only { libc::MAP_NORESERVE } else { 0 };
    // SAFETY: an anonymous mapping at an address the kernel chooses cannot alias anything.
    let ptr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    OWN_MAPPINGS.add(ptr as usize, len);
    ptr as *mut u8
}

/// Unmap memory returned by [`map_anonymous`].
///
/// # Safety
/// `ptr` and `len` must be exactly a mapping made by `map_anonymous`, and nothing may use it
/// afterwards.
pub unsafe fn unmap(ptr: *mut u8, len: usize) {
    let _errno = ErrnoGuard::new();
    OWN_MAPPINGS.remove(ptr as usize);
    // SAFETY: the caller guarantees the range is one of our mappings and is no longer used.
    unsafe { libc::munmap(ptr as *mut libc::c_void, page_round(len)) };
}

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The process id.
pub fn getpid() -> i32 {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// The parent's process id.
pub fn getppid() -> i32 {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { libc::getppid() }
}

/// Send `signal` to thread `tid` of this process.
pub fn tgkill(tid: i32, signal: i32) -> bool {
    let _errno = ErrnoGuard::new();
    // SAFETY: tgkill only sends a signal; a stale tid makes it fail with ESRCH.
    unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, signal) == 0 }
}

/// Monotonic time in nanoseconds (vDSO, no system call).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Wall-clock time in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleep for `ns` nanoseconds (or until a signal arrives).
pub fn sleep_ns(ns: u64) {
    let _errno = ErrnoGuard::new();
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; a null remainder pointer is allowed.
    unsafe { libc::nanosleep(&ts, ptr::null_mut()) };
}

/// Wait while `word` holds `expected`, for at most `timeout_ns` (0: forever).
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: u64) {
    let _errno = ErrnoGuard::new();
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    let ts_ptr = if timeout_ns == 0 {
        ptr::null()
    } else {
        &ts as *const libc::timespec
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; FUTEX_WAIT only
    // reads it and sleeps.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        )
    };
}

/// Wake every thread waiting on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    let _errno = ErrnoGuard::new();
    // SAFETY: FUTEX_WAKE only wakes waiters; the address is a valid u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// Read a whole small file (such as `/proc/self/maps`) into `buf`; returns the length read,
/// or `None` if it could not be opened. The path must end with a NUL byte.
pub fn read_file(path_nul: &[u8], buf: &mut [u8]) -> Option<usize> {
    let _errno = ErrnoGuard::new();
    debug_assert_eq!(path_nul.last(), Some(&0));
    // SAFETY: the path is NUL-terminated; open has no other preconditions.
    let fd = unsafe {
        libc::open(
            path_nul.as_ptr() as *const libc::c_char,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: the destination is the unused tail of `buf`.
        let n = unsafe {
            libc::read(
                fd,
                buf[len..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - len,
            )
        };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    Some(len)
}

/// Append `data` to the file at `path_nul` (created with mode 0600 if missing). Opens and
/// closes the file each time so that the agent never holds a descriptor the program could
/// close or reuse.
pub fn append_file(path_nul: &[u8], data: &[u8]) -> bool {
    let _errno = ErrnoGuard::new();
    // SAFETY: the path is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path_nul.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return false;
    }
    let ok = write_all(fd, data);
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    ok
}

/// Write all of `data` to `fd`. False on an error.
pub fn write_all(fd: i32, data: &[u8]) -> bool {
    let _errno = ErrnoGuard::new();
    let mut written = 0;
    while written < data.len() {
        // SAFETY: the source is the unwritten tail of `data`.
        let n = unsafe {
            libc::write(
                fd,
                data[written..].as_ptr() as *const libc::c_void,
                data.len() - written,
            )
        };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        written += n as usize;
    }
    true
}

/// Open an existing file to append to, keeping the descriptor out of the way of the
/// program's own low numbers (from 200 up, where the limit allows; close-on-exec).
pub fn open_for_append(path_nul: &[u8]) -> Option<i32> {
    let _errno = ErrnoGuard::new();
    // SAFETY: the path is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path_nul.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: duplicating a descriptor we own; the original is closed once if that worked.
    unsafe {
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 200);
        if high >= 0 {
            libc::close(fd);
            return Some(high);
        }
    }
    Some(fd)
}

/// The (device, inode) of the file open at `fd`.
pub fn file_identity(fd: i32) -> Option<(u64, u64)> {
    let _errno = ErrnoGuard::new();
    // SAFETY: fstat fills `st`; zeroed is a valid initial value.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some((st.st_dev, st.st_ino))
    }
}

/// Give the file at `path_nul` to `uid` and `gid` (`None`: unchanged). Best effort.
pub fn change_owner(path_nul: &[u8], uid: Option<u32>, gid: Option<u32>) {
    let _errno = ErrnoGuard::new();
    // SAFETY: the path is NUL-terminated; -1 leaves an id unchanged.
    unsafe {
        libc::chown(
            path_nul.as_ptr() as *const libc::c_char,
            uid.unwrap_or(u32::MAX),
            gid.unwrap_or(u32::MAX),
        )
    };
}

/// Is the file at `path_nul` an empty regular file owned by this process's user (not a
/// symbolic link)?
pub fn is_empty_file_of_ours(path_nul: &[u8]) -> bool {
    let _errno = ErrnoGuard::new();
    // SAFETY: the path is NUL-terminated; lstat fills `st`, zeroed is a valid initial value;
    // geteuid has no preconditions.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        libc::lstat(path_nul.as_ptr() as *const libc::c_char, &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFREG
            && st.st_size == 0
            && st.st_uid == libc::geteuid()
    }
}

/// Create the file at `path_nul` with mode 0600, failing if it exists (`O_EXCL`). True if this
/// call created it.
pub fn create_exclusive(path_nul: &[u8]) -> bool {
    let _errno = ErrnoGuard::new();
    // SAFETY: the path is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path_nul.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    true
}

/// Puts the calling thread's `errno` back when dropped. Every function here that makes a
/// system call holds one, so that the agent's work never changes what the program sees in
/// `errno` (the hooks themselves then need not save it on every call).
pub struct ErrnoGuard(i32);

impl ErrnoGuard {
    /// Remember the current `errno`.
    pub fn new() -> Self {
        ErrnoGuard(errno())
    }
}

impl Default for ErrnoGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Set the calling thread's errno.
pub fn set_errno(value: i32) {
    // SAFETY: as above; writing errno is what it is for.
    unsafe { *libc::__errno_location() = value };
}

/// A counter shared by the agent's threads; used for ids.
pub fn next_id(counter: &AtomicU32) -> u32 {
    counter.fetch_add(1, Ordering::Relaxed)
}

/// Read words of this process's memory without faulting: through `process_vm_readv`, which
/// reports an unmapped or unreadable page (or a file mapping past its file's end) as a short
/// read instead of raising a signal. Returns how many whole words were read, from the start.
pub fn read_words(address: u64, out: &mut [u64]) -> usize {
    let _errno = ErrnoGuard::new();
    let local = libc::iovec {
        iov_base: out.as_mut_ptr() as *mut libc::c_void,
        iov_len: out.len() * 8,
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: out.len() * 8,
    };
    // SAFETY: the local buffer is ours and writable for its length; the kernel checks the
    // remote range and reports a fault as an error instead of a signal.
    let n = unsafe { libc::process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
    if n > 0 {
        return n as usize / 8;
    }
    0
}

/// One word of this process's memory, or `None` where it cannot be read (see [`read_words`]).
pub fn read_word(address: usize) -> Option<usize> {
    let mut word = [0u64];
    (read_words(address as u64, &mut word) == 1).then_some(word[0] as usize)
}

/// Text built in a caller's buffer without allocating (for warnings and paths): whatever does
/// not fit is cut off, on a character boundary.
pub struct TextBuffer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> TextBuffer<'a> {
    /// An empty text in `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        TextBuffer { buf, len: 0 }
    }

    /// Append bytes (cut off at the buffer's end).
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    /// Append a string.
    pub fn push_str(&mut self, text: &str) {
        self.push_bytes(text.as_bytes());
    }

    /// Append a number in decimal.
    pub fn push_u64(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (value % 10) as u8;
            n += 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        digits[..n].reverse();
        self.push_bytes(&digits[..n]);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text (up to its last whole character, should a cut have split one).
    pub fn as_str(self) -> &'a str {
        let bytes = &self.buf[..self.len];
        match core::str::from_utf8(bytes) {
            Ok(text) => text,
            // SAFETY: `valid_up_to` bytes are valid UTF-8 by from_utf8's contract.
            Err(e) => unsafe { core::str::from_utf8_unchecked(&bytes[..e.valid_up_to()]) },
        }
    }
}

/// Ranges of anonymous private memory below this size are read whole, without asking
/// `/proc/self/pagemap` which of their pages were ever populated.
pub const POPULATED_RUNS_THRESHOLD: u64 = 64 * 1024;

/// Call `f(lo, hi)` for the runs of pages in `[from, to)` (a range of one private anonymous
/// mapping) that hold data: present in memory or swapped out, per `/proc/self/pagemap`. A
/// page that is neither was never written (or was discarded, as by `MADV_DONTNEED`): it reads
/// as zeros and holds no pointer, and reading it would only fault in the zero page.
/// Managed runtimes reserve and commit far more than they touch (the JVM commits its initial
/// heap, 1/64 of the machine's memory, at start). If pagemap cannot be read, `f` gets the
/// whole range. The runs are clipped to `[from, to)`.
pub fn for_each_populated_run(from: u64, to: u64, mut f: impl FnMut(u64, u64)) {
    /// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    if from >= to {
        return;
    }
    let _errno = ErrnoGuard::new();
    // SAFETY: the path is NUL-terminated; open has no other preconditions.
    let fd = unsafe {
        libc::open(
            c"/proc/self/pagemap".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        f(from, to);
        return;
    }
    let mut entries = [0u64; 512];
    let first_page = from / PAGE as u64;
    let end_page = to.div_ceil(PAGE as u64);
    let mut page = first_page;
    // The run being built: its first page, if any.
    let mut run: Option<u64> = None;
    let mut emit = |lo_page: u64, hi_page: u64| {
        let lo = (lo_page * PAGE as u64).max(from);
        let hi = (hi_page * PAGE as u64).min(to);
        if lo < hi {
            f(lo, hi);
        }
    };
    while page < end_page {
        let count = ((end_page - page) as usize).min(entries.len());
        // SAFETY: pread writes at most `count * 8` bytes into `entries`.
        let n = unsafe {
            libc::pread(
                fd,
                entries.as_mut_ptr() as *mut libc::c_void,
                count * 8,
                (page * 8) as libc::off_t,
            )
        };
        if n < 8 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            // Unreadable from here on: take the rest whole.
            let lo = run.take().unwrap_or(page);
            emit(lo, end_page);
            page = end_page;
            break;
        }
        for (k, &entry) in entries[..n as usize / 8].iter().enumerate() {
            let at = page + k as u64;
            let populated = entry & (PRESENT | SWAPPED) != 0;
            match (populated, run) {
                (true, None) => run = Some(at),
                (false, Some(lo)) => {
                    emit(lo, at);
                    run = None;
                }
                _ => {}
            }
        }
        page += n as u64 / 8;
    }
    if let Some(lo) = run {
        emit(lo, page);
    }
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
}

extern "C" {
    /// glibc's own `sigaction`, which the agent uses because it interposes `sigaction`.
    fn __sigaction(
        signal: libc::c_int,
        action: *const libc::sigaction,
        old: *mut libc::sigaction,
    ) -> libc::c_int;
}

/// glibc's `sigaction`, bypassing the agent's interposed one.
///
/// # Safety
/// As `sigaction(2)`.
pub unsafe fn real_sigaction(
    signal: libc::c_int,
    action: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> libc::c_int {
    // SAFETY: forwarded as is; the caller upholds sigaction's contract.
    unsafe { __sigaction(signal, action, old) }
}

/// Block every signal for the calling thread (the writer thread must not receive the
/// program's signals).
pub fn block_all_signals() {
    // SAFETY: blocks every signal for this thread only, with a valid full set.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &all, 0usize, 8);
    }
}

/// Which of the `out.len()` pages from the page-aligned `start` are resident (bit 0 of each
/// byte); false if the kernel could not tell.
///
/// # Safety
/// `[start, start + out.len() pages)` must be mapped.
pub unsafe fn resident_pages(start: u64, out: &mut [u8]) -> bool {
    // SAFETY: mincore only fills `out` (one byte per page) for a page-aligned mapped range
    // (the caller's promise).
    unsafe {
        libc::mincore(
            start as *mut libc::c_void,
            out.len() * PAGE,
            out.as_mut_ptr(),
        ) == 0
    }
}

/// Start a detached thread running `main` on `stack` (an agent mapping of `stack_len` bytes,
/// whose lowest page becomes a guard page). False if it could not be created.
///
/// # Safety
/// `stack` must be the caller's own mapping of `stack_len` bytes, used by that thread only and
/// never unmapped (the thread is detached and may live as long as the process).
pub unsafe fn spawn_detached_thread(
    main: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
    stack: *mut u8,
    stack_len: usize,
) -> bool {
    // SAFETY: the stack is the caller's mapping (its promise); the attribute object is
    // initialised before use and destroyed after.
    unsafe {
        libc::mprotect(stack as *mut libc::c_void, PAGE, libc::PROT_NONE);
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstack(&mut attr, stack as *mut libc::c_void, stack_len);
        let mut thread: libc::pthread_t = 0;
        let created = libc::pthread_create(&mut thread, &attr, main, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        created == 0
    }
}

/// Yield the CPU.
pub fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

/// Call `visit` with every loaded object (the dynamic linker's `dl_iterate_phdr`, which takes
/// the loader's lock) until it returns true.
pub fn for_each_loaded_object(mut visit: impl FnMut(&libc::dl_phdr_info) -> bool) {
    unsafe extern "C" fn trampoline(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `&mut dyn FnMut` below, alive for the whole iteration; the
        // dynamic linker passes an `info` valid for this call.
        unsafe {
            let visit = &mut *(data as *mut &mut dyn FnMut(&libc::dl_phdr_info) -> bool);
            visit(&*info) as libc::c_int
        }
    }
    let mut visit: &mut dyn FnMut(&libc::dl_phdr_info) -> bool = &mut visit;
    // SAFETY: the callback only calls `visit`, through a pointer to it that outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(trampoline),
            &mut visit as *mut &mut dyn FnMut(&libc::dl_phdr_info) -> bool as *mut libc::c_void,
        )
    };
}

/// The address of the global symbol `name` (0 if none), from `dlsym(RTLD_DEFAULT, name)`.
pub fn symbol_address(name: &core::ffi::CStr) -> usize {
    // SAFETY: dlsym with a NUL-terminated name; the result is only returned as a number.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// The size of the symbol that `address` starts (`st_size` of its ELF symbol, from
/// `dladdr1` with `RTLD_DL_SYMENT`), if the dynamic symbol tables have one that starts there.
pub fn symbol_size(address: usize) -> Option<u64> {
    /// `RTLD_DL_SYMENT` of `<dlfcn.h>`: `dladdr1` reports the `ElfW(Sym)` it found.
    const RTLD_DL_SYMENT: libc::c_int = 1;
    let mut info: libc::Dl_info = libc::Dl_info {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    let mut symbol: *mut libc::c_void = core::ptr::null_mut();
    // SAFETY: dladdr1 writes `info` and, with RTLD_DL_SYMENT, a pointer to the symbol table
    // entry into `symbol`; both are ours and of the types it expects.
    let found = unsafe {
        libc::dladdr1(
            address as *const libc::c_void,
            &mut info,
            &mut symbol,
            RTLD_DL_SYMENT,
        )
    };
    if found == 0 || symbol.is_null() || info.dli_saddr as usize != address {
        return None;
    }
    // SAFETY: `symbol` points at the loader's `Elf64_Sym` for the symbol, which lives as long
    // as its object is loaded.
    Some(unsafe { (*(symbol as *const libc::Elf64_Sym)).st_size })
}

/// The calling thread's alternate signal stack, `(base, size)`, if it is running on it now.
pub fn current_alternate_stack() -> Option<(u64, u64)> {
    // SAFETY: sigaltstack with a null new stack only reports the current one into `current`.
    let current = unsafe {
        let mut current: libc::stack_t = core::mem::zeroed();
        if libc::sigaltstack(core::ptr::null(), &mut current) != 0 {
            return None;
        }
        current
    };
    (current.ss_flags & libc::SS_ONSTACK != 0)
        .then_some((current.ss_sp as u64, current.ss_size as u64))
}

/// Install `handler` (an `SA_SIGINFO` handler, restarting interrupted calls, with every signal
/// blocked while it runs) for `signal`, through glibc's own `sigaction`.
pub fn install_signal_handler(
    signal: i32,
    handler: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void),
) {
    // SAFETY: the sigaction struct is fully initialised (zeroed, then the fields we use), and
    // the handler has the SA_SIGINFO signature.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigfillset(&mut action.sa_mask);
        real_sigaction(signal, &action, core::ptr::null_mut());
    }
}

/// The calling thread's stack, `(low, high)`, as glibc knows it (`pthread_getattr_np`, which
/// allocates and takes the thread's lock: never from inside `malloc`).
pub fn own_thread_stack() -> Option<(u64, u64)> {
    // SAFETY: pthread_getattr_np fills the attribute object for the calling thread; it is
    // destroyed after.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = core::ptr::null_mut();
        let mut size: usize = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        (ok && size > 0).then_some((addr as u64, addr as u64 + size as u64))
    }
}

/// The soft limit of the stack's size (`RLIMIT_STACK`), `None` if unlimited or unknown.
pub fn stack_size_limit() -> Option<u64> {
    // SAFETY: getrlimit fills `limit`; zeroed is a valid initial value.
    unsafe {
        let mut limit: libc::rlimit = core::mem::zeroed();
        (libc::getrlimit(libc::RLIMIT_STACK, &mut limit) == 0
            && limit.rlim_cur != libc::RLIM_INFINITY)
            .then_some(limit.rlim_cur)
    }
}

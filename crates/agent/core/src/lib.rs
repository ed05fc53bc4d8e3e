//! The hot path and the exit scan of leakscope's agent.
//!
//! Rules for everything in this crate, because it runs inside `malloc` of a program that does
//! not know it is being watched:
//! - no allocation through `malloc` (the agent's own tables are mapped with `mmap`; the few
//!   `alloc` uses, for the module table, go to glibc's allocator directly, untracked, and never
//!   run on the exit path while other threads are stopped);
//! - no panics on the hot path, bounded work per call, and no lock held by a thread that a
//!   stop-the-world may park ([`thread::AgentSection`] defers stops until agent code is done);
//! - no files opened except the profile (opened and closed per write) and `/proc` files.
//!
//! The path of one `malloc` call: the agent's exported `malloc` (a naked stub that hands the
//! program's frame to the hook) calls glibc's `__libc_malloc`, then [`on_alloc`]: enter an
//! agent section (or pass through if already inside one), unwind the stack from the
//! program's frame up ([`unwind::capture_stack`]), intern it ([`stacks::STACKS`]), and record the block in the
//! live table ([`live::LIVE`]). `free` removes the block. At exit, [`finish`] stops the other
//! threads, runs the reachability scan ([`scan`]) and writes the leak records.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod children;
pub mod deadstack;
pub mod live;
pub mod modules;
pub mod runtime;
pub mod sampling;
pub mod scan;
pub mod settings;
pub mod sigcontext;
pub mod sites;
pub mod stacks;
pub mod stop;
pub mod sync;
pub mod sys;
pub mod table;
pub mod thread;
pub mod unwind;
pub mod writer;

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use leakscope_format::{scan_flags, ExitHow, LiveScanOutcome, LiveScanTrigger};

use crate::live::{LiveBlock, LIVE};
use crate::thread::AgentSection;

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

const UNKNOWN: u32 = 0;
const INACTIVE: u32 = 1;
const ACTIVE: u32 = 2;
/// Active, in a forked child whose writer thread is not started yet: the child's first
/// allocation starts it (from `is_active`'s cold path, so the hot path pays nothing), because
/// creating a thread inside `fork`'s child handler would cost every `fork`+`exec` a thread.
const ACTIVE_WITHOUT_WRITER: u32 = 3;

/// Is the agent recording (any active state)?
#[inline(always)]
fn recording() -> bool {
    STATE.load(Ordering::Relaxed) >= ACTIVE
}

static STATE: AtomicU32 = AtomicU32::new(UNKNOWN);
/// Set once the exit path has begun; later calls of [`finish`] return at once.
static FINISHED: AtomicBool = AtomicBool::new(false);
/// While set, `free` only forgets blocks and does not give them back to glibc: the exit path
/// runs the runtimes' freeres functions this way, so that no glibc lock is taken while
/// another thread may be stopped holding it.
static FREE_FORGETS_ONLY: AtomicBool = AtomicBool::new(false);
/// `--max-frames`, copied out of the settings when the agent activates.
static MAX_FRAMES: AtomicU32 = AtomicU32::new(leakscope_format::settings::DEFAULT_MAX_FRAMES);
/// Sampling mode's rate in bytes (0: every allocation gets a stack).
static SAMPLE_RATE: AtomicU64 = AtomicU64::new(0);
/// Monotonic time at start.
static START_NS: AtomicU64 = AtomicU64::new(0);
/// The pid the agent's state belongs to. A child made by `vfork` (or a raw `clone`) runs in
/// the parent's memory with another pid: it must not finish the parent's profile.
static OWNER_PID: AtomicU32 = AtomicU32::new(0);

/// What the agent could not do or could not prove, noted as it happens and written into the
/// profile as warnings at the end, so that the report says what its figures may lack.
pub mod degraded {
    use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

    /// glibc's `main_arena` was not found (unknown glibc, or the probe's checks failed).
    pub const MAIN_ARENA_UNKNOWN: u32 = 1 << 0;
    /// The per-site counters could not be mapped: no series of live memory per site.
    pub const NO_SITE_COUNTERS: u32 = 1 << 1;
    /// More programs executed by `vfork` children waited to be recorded than the queue holds.
    pub const VFORK_EXECS_DROPPED: u32 = 1 << 2;

    static NOTED: AtomicU32 = AtomicU32::new(0);
    /// A warning about the program's own allocator (a static string), if it has one.
    static PROGRAM_ALLOCATOR: (AtomicPtr<u8>, AtomicUsize) =
        (AtomicPtr::new(core::ptr::null_mut()), AtomicUsize::new(0));

    /// Note `what` (one of the constants above).
    pub fn note(what: u32) {
        NOTED.fetch_or(what, Ordering::Relaxed);
    }

    /// Note that the program has an allocator of its own that the agent cannot interpose;
    /// `warning` says which and what that means for the report.
    pub fn note_program_allocator(warning: &'static str) {
        PROGRAM_ALLOCATOR.1.store(warning.len(), Ordering::Relaxed);
        PROGRAM_ALLOCATOR
            .0
            .store(warning.as_ptr() as *mut u8, Ordering::Release);
    }

    /// The warning for every noted degradation, written at the end of the profile.
    pub fn warnings(out: &mut [&str]) -> usize {
        const TEXTS: [(u32, &str); 3] = [
            (
                MAIN_ARENA_UNKNOWN,
                "glibc's main_arena could not be located (an unrecognised glibc, or its layout did not check out), so it was scanned as a root: a lost block that lies just before a free chunk may be reported as possibly lost instead of definitely lost",
            ),
            (
                NO_SITE_COUNTERS,
                "the agent could not map memory for its per-site counters, so the series of live memory per site (and the growth verdicts made from them) are missing or wrong",
            ),
            (
                VFORK_EXECS_DROPPED,
                "more than 32 programs started by vfork children waited at once to be recorded: the list of programs that ran untracked misses some",
            ),
        ];
        let noted = NOTED.load(Ordering::Relaxed);
        let mut n = 0;
        let allocator = PROGRAM_ALLOCATOR.0.load(Ordering::Acquire);
        if !allocator.is_null() && n < out.len() {
            let len = PROGRAM_ALLOCATOR.1.load(Ordering::Relaxed);
            // SAFETY: the pointer and length of a &'static str, stored by
            // `note_program_allocator` (the length before the pointer, with Release).
            out[n] = unsafe {
                core::str::from_utf8_unchecked(core::slice::from_raw_parts(allocator, len))
            };
            n += 1;
        }
        for (bit, text) in TEXTS {
            if noted & bit != 0 && n < out.len() {
                out[n] = text;
                n += 1;
            }
        }
        n
    }
}

/// Is the agent recording? (It is not if no profile path was given.) Reads the settings on
/// first use, which may be the process's very first allocation.
#[inline(always)]
pub fn is_active() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ACTIVE => true,
        INACTIVE => false,
        _ => activate(),
    }
}

#[cold]
fn activate() -> bool {
    let _errno = sys::ErrnoGuard::new();
    if STATE.load(Ordering::Relaxed) == ACTIVE_WITHOUT_WRITER {
        if STATE
            .compare_exchange(
                ACTIVE_WITHOUT_WRITER,
                ACTIVE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            let _section = AgentSection::enter_nested();
            start_writer_thread();
        }
        return true;
    }
    let Some(settings) = settings::get() else {
        return false;
    };
    let active = settings.profile_path_len > 0;
    MAX_FRAMES.store(settings.max_frames as u32, Ordering::Relaxed);
    SAMPLE_RATE.store(settings.sample_rate, Ordering::Relaxed);
    if active {
        START_NS
            .compare_exchange(0, sys::monotonic_ns(), Ordering::Relaxed, Ordering::Relaxed)
            .ok();
        OWNER_PID.store(sys::getpid() as u32, Ordering::Relaxed);
    }
    STATE.store(if active { ACTIVE } else { INACTIVE }, Ordering::Release);
    active
}

/// Record a new block. Called after glibc returned `address` for a request of `size` bytes;
/// `caller` is the program's frame that called the allocation function (where the stack walk
/// starts).
#[inline(always)]
pub fn on_alloc(address: *mut libc::c_void, size: usize, caller: unwind::CallerFrame) {
    if address.is_null() {
        return;
    }
    let Some(_section) = AgentSection::enter() else {
        return; // the agent's own allocation (or libc's, on its behalf)
    };
    if !is_active() {
        return;
    }
    let rate = SAMPLE_RATE.load(Ordering::Relaxed);
    let stack = if rate == 0 || sampling::should_sample(thread::current(), size, rate) {
        unwind::capture_stack(MAX_FRAMES.load(Ordering::Relaxed) as usize, caller)
    } else {
        0
    };
    LIVE.insert(LiveBlock {
        address: address as u64,
        size: size as u64,
        stack,
        born: sites::NOW_TICKS.load(Ordering::Relaxed),
    });
    sites::SITES.add(stack, size as i64, 1);
    // The end of a `realloc` (see `on_realloc_start`); a plain store is cheaper than a test.
    thread::current().moving_block.store(0, Ordering::Relaxed);
}

/// Forget a block that is being freed. Returns false if glibc must not actually free it (see
/// [`FREE_FORGETS_ONLY`]).
#[inline(always)]
pub fn on_free(address: *mut libc::c_void) -> bool {
    if address.is_null() {
        return true;
    }
    if recording() {
        // Frees are honoured even inside agent code: forgetting a block is always right.
        let _section = AgentSection::enter_nested();
        if let Some(block) = LIVE.remove(address as u64) {
            sites::SITES.add(block.stack, -(block.size as i64), -1);
        }
    }
    !FREE_FORGETS_ONLY.load(Ordering::Relaxed)
}

/// Before `realloc`: take the old block out of the table (so that a thread which gets the
/// same address from `malloc` meanwhile cannot have its entry removed by us).
#[inline(always)]
pub fn on_realloc_start(address: *mut libc::c_void) -> Option<LiveBlock> {
    if address.is_null() || !recording() {
        return None;
    }
    let _section = AgentSection::enter_nested();
    let block = LIVE.remove(address as u64)?;
    sites::SITES.add(block.stack, -(block.size as i64), -1);
    // Until the new block is recorded, its contents (pointers included) are only here.
    let state = thread::current();
    state.moving_block_size.store(block.size, Ordering::Relaxed);
    state.moving_block.store(block.address, Ordering::Relaxed);
    Some(block)
}

/// After a failed `realloc`: the old block is still the program's; put it back.
pub fn on_realloc_failed(old: Option<LiveBlock>) {
    thread::current().moving_block.store(0, Ordering::Relaxed);
    if let Some(block) = old {
        let _section = AgentSection::enter_nested();
        LIVE.insert(block);
        sites::SITES.add(block.stack, block.size as i64, 1);
    }
}

/// Is this the process the agent's state belongs to (not a `vfork` child running in its
/// memory, with another pid)?
fn is_owner_process() -> bool {
    sys::getpid() as u32 == OWNER_PID.load(Ordering::Relaxed)
}

/// Is the calling thread the process's main thread?
pub fn is_main_thread() -> bool {
    sys::gettid() == sys::getpid()
}

/// Nanoseconds since the agent started in this process.
fn now_ns() -> u64 {
    sys::monotonic_ns().saturating_sub(START_NS.load(Ordering::Relaxed))
}

/// Does `free` only forget blocks right now?
pub fn free_forgets_only() -> bool {
    FREE_FORGETS_ONLY.load(Ordering::Relaxed)
}

/// Start-up work that needs a working libc: resolve runtime functions, take the start time.
pub fn on_start() {
    let _section = AgentSection::enter_nested();
    if !is_active() {
        return;
    }
    runtime::resolve();
    if !runtime::locate_main_arena() {
        degraded::note(degraded::MAIN_ARENA_UNKNOWN);
    }
    writer::WRITER.set_start_time(sys::realtime_ns());
    modules::MODULES.refresh_if_changed();
    // The profile exists from the start, with who the process is: a program that execs or is
    // killed in its first milliseconds (before the writer's first snapshot) still leaves one.
    writer::WRITER.flush();
}

/// The writer thread's loop: advance the coarse clock every 10 ms, and take a snapshot every
/// interval (which doubles every `SNAPSHOTS_PER_INTERVAL` snapshots), until told to stop.
pub fn writer_thread_main() {
    use leakscope_format::settings::SNAPSHOTS_PER_INTERVAL;
    let _section = AgentSection::enter_nested();
    thread::current()
        .is_agent_thread
        .store(1, Ordering::Relaxed);
    stop::AGENT_THREAD_TID.store(sys::gettid(), Ordering::Release);
    sys::futex_wake_all(&WRITER_STARTED);
    let base_interval_ns = settings::get().map_or(100, |s| s.interval_ms).max(1) * 1_000_000;
    let scan_every_ns = settings::get().map_or(0, |s| s.scan_every_ms) * 1_000_000;
    let start = START_NS.load(Ordering::Relaxed);
    let mut snapshots = 0u64;
    let mut next_snapshot = sys::monotonic_ns() + base_interval_ns;
    let mut next_scan = if scan_every_ns > 0 {
        sys::monotonic_ns() + scan_every_ns
    } else {
        u64::MAX
    };
    while WRITER_STOP.load(Ordering::Acquire) == 0 {
        sys::futex_wait(&WRITER_STOP, 0, sites::TICK_NS);
        if WRITER_JOB.load(Ordering::Acquire) == JOB_FREERES {
            run_exit_freeres_job();
            continue;
        }
        let now = sys::monotonic_ns();
        let ticks_at_start = sites::TICKS_AT_START.load(Ordering::Relaxed);
        let elapsed_ticks = ((now - start) / sites::TICK_NS) as u32;
        sites::NOW_TICKS.store(
            ticks_at_start.wrapping_add(elapsed_ticks),
            Ordering::Relaxed,
        );
        if now >= next_snapshot && WRITER_STOP.load(Ordering::Acquire) == 0 {
            modules::MODULES.refresh_if_changed();
            writer::WRITER.snapshot_and_flush(now - start);
            snapshots += 1;
            let doublings = (snapshots / SNAPSHOTS_PER_INTERVAL).min(20);
            next_snapshot = now + (base_interval_ns << doublings);
        }
        let requested = stop::SCAN_REQUESTED.swap(0, Ordering::AcqRel) != 0;
        if (requested || now >= next_scan) && WRITER_STOP.load(Ordering::Acquire) == 0 {
            let trigger = if requested {
                LiveScanTrigger::OnDemand
            } else {
                LiveScanTrigger::Schedule
            };
            live_scan(trigger);
            if now >= next_scan {
                // From the end of this scan: however long a scan takes, the program runs at
                // least one full interval between two.
                next_scan = sys::monotonic_ns() + scan_every_ns;
            }
        }
    }
    // The exit path asks for a last look at the loaded modules (so that the profile names
    // every module its stacks pass through). It is made here, not by the exit path itself:
    // `dl_iterate_phdr` takes the loader lock, which another thread may hold forever (inside
    // a `dl_iterate_phdr` callback, or stopped in `dlopen`), and the exit path only waits a
    // bounded time for this thread.
    if WRITER_FINAL_REFRESH.load(Ordering::Acquire) != 0 {
        modules::MODULES.refresh_if_changed();
    }
    WRITER_DONE.store(1, Ordering::Release);
    sys::futex_wake_all(&WRITER_DONE);
}

/// The writer thread's stack size. Its stack is an agent mapping (not glibc's), so that scans
/// never take what the writer keeps on its stack for the program's roots.
/// (1 MiB reserved, touched only as used: glibc puts the thread's TLS blocks there too.)
const WRITER_STACK_LEN: usize = 1024 * 1024;

/// Start the writer thread and wait until it is registered.
pub fn start_writer_thread() {
    extern "C" fn writer_main(_arg: *mut libc::c_void) -> *mut libc::c_void {
        // The writer must not receive the program's signals.
        // SAFETY: blocks every signal for this thread only, with a valid full set.
        unsafe {
            let mut all: libc::sigset_t = core::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &all, 0usize, 8);
        }
        writer_thread_main();
        core::ptr::null_mut()
    }
    let _section = AgentSection::enter_nested();
    let stack = sys::map_anonymous(WRITER_STACK_LEN, true);
    if stack.is_null() {
        return;
    }
    // SAFETY: `stack` is our own mapping of WRITER_STACK_LEN bytes, used by this thread only
    // and never unmapped (the thread is detached and lives as long as the process). Its lowest
    // page becomes a guard page. The attribute object is initialised before use and destroyed
    // after.
    unsafe {
        libc::mprotect(stack as *mut libc::c_void, sys::PAGE, libc::PROT_NONE);
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstack(&mut attr, stack as *mut libc::c_void, WRITER_STACK_LEN);
        let mut thread: libc::pthread_t = 0;
        let created = libc::pthread_create(&mut thread, &attr, writer_main, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        if created == 0 {
            wait_for_writer_thread();
        }
    }
}

/// Wait (at most a second) until the writer thread has recorded its thread id: until then it
/// would count as one of the program's threads, and the exit path would think the program
/// still had threads running (and skip `__libc_freeres`).
pub fn wait_for_writer_thread() {
    let deadline = sys::monotonic_ns() + 1_000_000_000;
    while stop::AGENT_THREAD_TID.load(Ordering::Acquire) == 0 && sys::monotonic_ns() < deadline {
        sys::futex_wait(&WRITER_STARTED, 0, 10_000_000);
    }
}

/// How long a live scan waits for the program's threads to stop before it gives up (and lets
/// them run on). A thread inside agent code stops when it leaves it, which takes microseconds,
/// unless it is the thread running the exit path: then the scan must give way quickly.
const LIVE_SCAN_STOP_TIMEOUT_NS: u64 = 500_000_000;

/// Set while the writer thread runs a live scan; the exit path waits for it to end.
static LIVE_SCAN_RUNNING: AtomicU32 = AtomicU32::new(0);

/// A reachability scan while the program runs, on the writer thread: stop the program's
/// threads, classify every live block as the exit scan does, let the threads run again, then
/// write the lost records. Nothing in the program's memory is changed: no `freeres`, no
/// exclusions, and the writer's own stack is an agent mapping, not a root.
fn live_scan(trigger: LiveScanTrigger) {
    // Running first, then the check (and the exit path the other way round, both SeqCst):
    // either this scan sees that the exit path began, or the exit path sees this scan.
    LIVE_SCAN_RUNNING.store(1, Ordering::SeqCst);
    if FINISHED.load(Ordering::SeqCst) {
        LIVE_SCAN_RUNNING.store(0, Ordering::Release);
        return;
    }
    let began = sys::monotonic_ns();
    let stopped = stop::stop_the_world(LIVE_SCAN_STOP_TIMEOUT_NS);
    let (outcome, output) = if stopped.missed > 0 {
        // A thread that did not stop may be changing the live table: no scan this time.
        (LiveScanOutcome::ThreadsMissed, None)
    } else {
        match scan::scan(&scan::ScanInput {
            stopped: stopped.threads,
            scanner_stack_from: 0,
            extra_roots: &[],
            excluded: &[],
            not_roots: [(0, 0); 2],
            sample_rate: 0,
        }) {
            Some(output) => (LiveScanOutcome::Done, Some(output)),
            None => (LiveScanOutcome::NoMemory, None),
        }
    };
    let threads_stopped = stopped.threads.len() as u32;
    stop::resume_the_world();
    let resumed = sys::monotonic_ns();
    let start = START_NS.load(Ordering::Relaxed);
    writer::WRITER.write_live_scan(&writer::LiveScanRecords {
        time_ns: began.saturating_sub(start),
        pause_ns: resumed - began,
        began_ns: began,
        threads_stopped,
        threads_missed: stopped.missed,
        outcome,
        trigger,
        live_blocks: output.as_ref().map_or(0, |o| o.live_blocks),
        totals: output.as_ref().map_or([(0, 0); 4], |o| o.totals),
        records: output.as_ref().map_or(&[][..], |o| o.records),
    });
    drop(output);
    LIVE_SCAN_RUNNING.store(0, Ordering::Release);
}

static WRITER_STARTED: AtomicU32 = AtomicU32::new(0);
static WRITER_STOP: AtomicU32 = AtomicU32::new(0);
static WRITER_DONE: AtomicU32 = AtomicU32::new(0);
/// Set by the exit path: the writer refreshes the module list once more before it ends.
static WRITER_FINAL_REFRESH: AtomicU32 = AtomicU32::new(0);

/// A job the exit path gives the writer thread: run the runtimes' exit-time frees.
static WRITER_JOB: AtomicU32 = AtomicU32::new(0);
const JOB_FREERES: u32 = 1;
const JOB_DONE: u32 = 2;
/// Whether the job ran libstdc++'s `__freeres` too (it exists only with libstdc++).
static JOB_CXX_FREERES: AtomicBool = AtomicBool::new(false);

/// On the writer thread: `__gnu_cxx::__freeres` and `__libc_freeres`, for an exit path that
/// stopped the program's other threads first (see [`finish`]).
fn run_exit_freeres_job() {
    JOB_CXX_FREERES.store(runtime::cxx_freeres(), Ordering::Release);
    runtime::libc_freeres();
    WRITER_JOB.store(JOB_DONE, Ordering::Release);
    sys::futex_wake_all(&WRITER_JOB);
}

/// Have the writer thread run the exit-time frees, and wait at most `timeout_ns`. `Some(ran
/// libstdc++'s too)` if they finished; `None` if there is no writer thread, or the frees are
/// still running (then a stopped thread holds a lock they wait for, and they never will end:
/// the writer thread stays stuck there, and nothing else needs it).
fn freeres_on_writer_thread(timeout_ns: u64) -> Option<bool> {
    if stop::AGENT_THREAD_TID.load(Ordering::Acquire) == 0 {
        return None;
    }
    WRITER_JOB.store(JOB_FREERES, Ordering::Release);
    sys::futex_wake_all(&WRITER_STOP);
    let deadline = sys::monotonic_ns() + timeout_ns;
    loop {
        let job = WRITER_JOB.load(Ordering::Acquire);
        if job == JOB_DONE {
            return Some(JOB_CXX_FREERES.load(Ordering::Acquire));
        }
        if sys::monotonic_ns() >= deadline {
            return None;
        }
        sys::futex_wait(&WRITER_JOB, job, 10_000_000);
    }
}

/// Wait until no live scan runs (one in progress always ends: its stop gives up after a
/// timeout, and the thread calling this, inside agent code, does not stop for it).
fn wait_for_live_scan() {
    while LIVE_SCAN_RUNNING.load(Ordering::SeqCst) != 0 {
        sys::futex_wait(&WRITER_DONE, 0, 1_000_000);
    }
}

/// Stop the writer thread, waiting at most about a second (longer only while a live scan is
/// still giving up). With `final_refresh`, the writer first refreshes the module list.
fn stop_writer_thread(final_refresh: bool) {
    stop_writer_thread_within(final_refresh, 1_000_000_000);
}

/// [`stop_writer_thread`], waiting at most `timeout_ns`.
fn stop_writer_thread_within(final_refresh: bool, timeout_ns: u64) {
    if stop::AGENT_THREAD_TID.load(Ordering::Acquire) == 0 {
        return;
    }
    WRITER_FINAL_REFRESH.store(final_refresh as u32, Ordering::Release);
    WRITER_STOP.store(1, Ordering::Release);
    sys::futex_wake_all(&WRITER_STOP);
    let deadline = sys::monotonic_ns() + timeout_ns;
    // A live scan in progress always ends (its stop gives up after a timeout, and this
    // thread, inside agent code, will not stop for it), and must end before the exit path
    // stops the world itself.
    while WRITER_DONE.load(Ordering::Acquire) == 0
        && (sys::monotonic_ns() < deadline || LIVE_SCAN_RUNNING.load(Ordering::Acquire) != 0)
    {
        sys::futex_wait(&WRITER_DONE, 0, 10_000_000);
    }
}

/// How the exit path was entered.
#[derive(Clone, Copy)]
pub struct Ending<'a> {
    /// How the process is ending.
    pub how: ExitHow,
    /// Exit code.
    pub code: i32,
    /// Fatal signal number (0 if none).
    pub signal: i32,
    /// Scan the calling thread's stack from this address up.
    pub stack_from: u64,
    /// The calling thread's registers, where they hold the program's values (a signal's
    /// interrupted context).
    pub registers: &'a [u64],
    /// Memory that is no root although it may lie in one: parts of an alternate signal stack
    /// (see `sigcontext::OuterContext::not_roots`; empty ranges: none).
    pub not_roots: [(u64, u64); 2],
}

/// The exit path: stop the other threads, scan, write the leak records, finish the file.
/// Runs once; later calls return at once.
pub fn finish(ending: &Ending<'_>) {
    if !(recording() || is_active()) || !is_owner_process() {
        return;
    }
    if FINISHED.swap(true, Ordering::SeqCst) {
        return;
    }
    let _section = AgentSection::enter_nested();
    wait_for_live_scan();
    // Let the runtimes free what they keep until exit, as memcheck does before its leak check
    // (`__gnu_cxx::__freeres`, and at `exit` `__libc_freeres`). `free` only forgets from here
    // on, so no malloc lock is taken (a stopped thread may hold one), and the memory stays
    // valid for the threads that run on until the process is gone.
    FREE_FORGETS_ONLY.store(true, Ordering::Release);
    let exiting = ending.how == ExitHow::Exit;
    let alone = stop::other_thread_count() == 0;
    let mut flags = 0;
    let mut excluded = [0u64; 256];
    let mut excluded_count = 0;
    let mut freeres_stuck = false;
    if alone || !exiting {
        // Nothing on this path takes a lock the program may hold (the loader's, stdio's,
        // malloc's): the last module refresh is the writer's, and waited for a bounded time.
        // (Not after a signal or `_exit`, which may come from a signal handler that
        // interrupted the loader.)
        stop_writer_thread(exiting);
        if runtime::cxx_freeres() {
            flags |= scan_flags::CXX_FREERES;
        }
        if exiting {
            runtime::libc_freeres();
            flags |= scan_flags::LIBC_FREERES;
        } else {
            // `__libc_freeres` takes locks a signal may have interrupted: leave out the stdio
            // buffers it would have freed instead.
            excluded_count = runtime::stdio_buffers(&mut excluded);
        }
    }

    let started = sys::monotonic_ns();
    let stopped = stop::stop_the_world(2_000_000_000);
    if stopped.missed > 0 {
        flags |= scan_flags::THREADS_MISSED;
    }
    if exiting && !alone {
        // Other threads live: as memcheck, stop them first, then free. The frees run on the
        // writer thread, waited for a bounded time: a stopped thread may hold a lock they
        // need (the loader's, the thread-stack cache's), and must not hang the exit.
        match freeres_on_writer_thread(1_000_000_000) {
            Some(cxx) => {
                flags |= scan_flags::LIBC_FREERES;
                if cxx {
                    flags |= scan_flags::CXX_FREERES;
                }
                stop_writer_thread(true);
            }
            None => {
                freeres_stuck = true;
                excluded_count = runtime::stdio_buffers(&mut excluded);
                stop_writer_thread_within(false, 0);
            }
        }
    }
    let sample_rate = SAMPLE_RATE.load(Ordering::Relaxed);
    // Kept for the rest of the process: the writer reads the records after the world resumes.
    let output = scan::scan(&scan::ScanInput {
        stopped: stopped.threads,
        scanner_stack_from: ending.stack_from,
        extra_roots: ending.registers,
        excluded: &excluded[..excluded_count],
        not_roots: ending.not_roots,
        sample_rate,
    });
    let duration_ns = sys::monotonic_ns() - started;
    if output.as_ref().is_some_and(|o| o.unreadable_bytes > 0) {
        flags |= scan_flags::UNREADABLE_MEMORY;
    }
    let mut missed_text = [0u8; 1024];
    let mut warnings: [&str; 16] = [""; 16];
    let mut warning_count = degraded::warnings(&mut warnings);
    // (A scan that could not run says so by its NOT_RUN_NO_MEMORY flag, in the headline.)
    if stopped.missed > 0 {
        warnings[warning_count] = describe_missed_threads(&stopped, &mut missed_text);
        warning_count += 1;
    }
    if freeres_stuck {
        warnings[warning_count] = "glibc's exit-time frees (__libc_freeres, which memcheck runs before its leak check) did not finish within a second: a stopped thread holds a lock they need. Blocks the C runtime keeps until exit (its thread-stack cache, the loader's bookkeeping) may be reported as still reachable or possibly lost";
        warning_count += 1;
    }
    let (records, site_ages, fields) = match &output {
        Some(out) => (
            out.records,
            out.site_ages,
            leakscope_format::Scan {
                duration_ns,
                threads_stopped: stopped.threads.len() as u32,
                threads_missed: stopped.missed,
                root_bytes: out.root_bytes,
                live_blocks: out.live_blocks,
                runtime_blocks: out.runtime_blocks,
                flags,
            },
        ),
        None => (
            &[][..],
            &[][..],
            leakscope_format::Scan {
                threads_stopped: stopped.threads.len() as u32,
                threads_missed: stopped.missed,
                flags: flags | scan_flags::NOT_RUN_NO_MEMORY,
                ..leakscope_format::Scan::default()
            },
        ),
    };
    writer::WRITER.finish(&writer::FinalRecords {
        how: ending.how,
        code: ending.code,
        signal: ending.signal,
        time_ns: sys::monotonic_ns().saturating_sub(START_NS.load(Ordering::Relaxed)),
        scan: fields,
        leaks: records,
        site_ages,
        sample_rate,
        warnings: &warnings[..warning_count],
    });
    stop::resume_the_world();
    core::mem::forget(output);
}

/// The warning for threads that did not stop for the exit scan, naming them (`tid (comm)`),
/// written into `buf`.
fn describe_missed_threads<'a>(stopped: &stop::Stopped, buf: &'a mut [u8]) -> &'a str {
    let mut text = sys::TextBuffer::new(buf);
    text.push_u64(stopped.missed as u64);
    text.push_str(if stopped.missed == 1 {
        " thread did not stop for the leak scan ("
    } else {
        " threads did not stop for the leak scan ("
    });
    let mut first = true;
    for &tid in stopped.missed_tids.iter().filter(|&&tid| tid != 0) {
        if !first {
            text.push_str(", ");
        }
        first = false;
        text.push_str("thread ");
        text.push_u64(tid as u64);
        let mut name = [0u8; 64];
        let len = thread_name(tid, &mut name);
        if len > 0 {
            text.push_str(" '");
            text.push_bytes(&name[..len]);
            text.push_str("'");
        }
    }
    if stopped.missed as usize > stop::MISSED_TIDS_KEPT {
        text.push_str(", ...");
    }
    text.push_str("; it blocks the agent's stop signal or is stuck in the kernel): the scan went on without its registers, so blocks that only its registers point to may be reported as lost");
    text.as_str()
}

/// A thread's name from `/proc/self/task/TID/comm` (without the newline); its length.
fn thread_name(tid: i32, out: &mut [u8]) -> usize {
    let mut path = [0u8; 64];
    let mut text = sys::TextBuffer::new(&mut path);
    text.push_str("/proc/self/task/");
    text.push_u64(tid as u64);
    text.push_str("/comm\0");
    let len = text.len();
    let len = sys::read_file(&path[..len], out).unwrap_or(0);
    out[..len].iter().position(|&b| b == b'\n').unwrap_or(len)
}

/// `fork` is about to happen: take every agent lock so that the child gets consistent tables.
pub fn before_fork() {
    // Agent code until the parent's or the child's handler: a live scan must not stop this
    // thread while it holds the agent's locks (the scan needs some of them).
    AgentSection::enter_span();
    if !recording() {
        return;
    }
    writer::WRITER.lock_for_fork();
    modules::MODULES.lock_for_fork();
    stacks::STACKS.lock_for_fork();
    LIVE.lock_for_fork();
    // (The pool maps slabs while it holds its lock: its lock comes before the mappings'.)
    thread::STARTS.lock_for_fork();
    sys::OWN_MAPPINGS.lock_for_fork();
}

/// After `fork`, in the parent.
pub fn after_fork_in_parent() {
    if recording() {
        // SAFETY: `before_fork` took every one of these locks on this thread (recording does
        // not change between the two: activation happens before the program can fork).
        unsafe {
            sys::OWN_MAPPINGS.unlock_after_fork();
            thread::STARTS.unlock_after_fork();
            LIVE.unlock_after_fork();
            stacks::STACKS.unlock_after_fork();
            modules::MODULES.unlock_after_fork();
            writer::WRITER.unlock_after_fork();
        }
    }
    AgentSection::leave_span();
}

/// After `fork`, in the child: release the locks and start the child's own profile (claimed
/// at its first write: `<first profile>.<child pid>`, see `writer`).
pub fn after_fork_in_child() {
    stop::reset_after_fork();
    if !recording() {
        AgentSection::leave_span();
        return;
    }
    // SAFETY: this is the child of the `fork` for which the parent's `before_fork` took every
    // one of these locks: the tables are whole, and their holder is not in this process.
    unsafe {
        sys::OWN_MAPPINGS.reset_in_child();
        thread::STARTS.reset_in_child();
        LIVE.reset_in_child();
        stacks::STACKS.reset_in_child();
        modules::MODULES.reset_in_child();
    }
    stop::AGENT_THREAD_TID.store(0, Ordering::Release);
    OWNER_PID.store(sys::getpid() as u32, Ordering::Relaxed);
    writer::WRITER.restart_in_child();
    writer::WRITER.set_start_time(sys::realtime_ns());
    START_NS.store(sys::monotonic_ns(), Ordering::Relaxed);
    // Blocks inherited from the parent are at least as old as the child: the child's clock
    // starts at the parent's current tick.
    sites::TICKS_AT_START.store(sites::NOW_TICKS.load(Ordering::Relaxed), Ordering::Relaxed);
    WRITER_STOP.store(0, Ordering::Relaxed);
    WRITER_DONE.store(0, Ordering::Relaxed);
    WRITER_STARTED.store(0, Ordering::Relaxed);
    WRITER_FINAL_REFRESH.store(0, Ordering::Relaxed);
    WRITER_JOB.store(0, Ordering::Relaxed);
    LIVE_SCAN_RUNNING.store(0, Ordering::Relaxed);
    STATE.store(ACTIVE_WITHOUT_WRITER, Ordering::Release);
    AgentSection::leave_span();
}

//! The writer thread: the agent's one thread of its own. It advances the coarse clock, takes
//! the snapshots, runs the live scans, and, for an exit path that stopped the program's other
//! threads, the runtimes' exit-time frees.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use leakscope_format::LiveScanTrigger;

use crate::activation::START_NS;
use crate::live_scan::{live_scan, LIVE_SCAN_RUNNING};
use crate::thread::AgentSection;
use crate::{modules, runtime, settings, sites, stop, sys, thread, writer};

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
        sys::block_all_signals();
        writer_thread_main();
        core::ptr::null_mut()
    }
    let _section = AgentSection::enter_nested();
    let stack = sys::map_anonymous(WRITER_STACK_LEN, true);
    if stack.is_null() {
        return;
    }
    // SAFETY: `stack` is our own mapping of WRITER_STACK_LEN bytes, used by this thread only
    // and never unmapped.
    if unsafe { sys::spawn_detached_thread(writer_main, stack, WRITER_STACK_LEN) } {
        wait_for_writer_thread();
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

pub(crate) static WRITER_STARTED: AtomicU32 = AtomicU32::new(0);
pub(crate) static WRITER_STOP: AtomicU32 = AtomicU32::new(0);
pub(crate) static WRITER_DONE: AtomicU32 = AtomicU32::new(0);
/// Set by the exit path: the writer refreshes the module list once more before it ends.
pub(crate) static WRITER_FINAL_REFRESH: AtomicU32 = AtomicU32::new(0);

/// A job the exit path gives the writer thread: run the runtimes' exit-time frees.
pub(crate) static WRITER_JOB: AtomicU32 = AtomicU32::new(0);
pub(crate) const JOB_FREERES: u32 = 1;
pub(crate) const JOB_DONE: u32 = 2;
/// Whether the job ran libstdc++'s `__freeres` too (it exists only with libstdc++).
pub(crate) static JOB_CXX_FREERES: AtomicBool = AtomicBool::new(false);

/// On the writer thread: `__gnu_cxx::__freeres` and `__libc_freeres`, for an exit path that
/// stopped the program's other threads first (see [`finish`]).
pub(crate) fn run_exit_freeres_job() {
    JOB_CXX_FREERES.store(runtime::cxx_freeres(), Ordering::Release);
    runtime::libc_freeres();
    WRITER_JOB.store(JOB_DONE, Ordering::Release);
    sys::futex_wake_all(&WRITER_JOB);
}

/// Have the writer thread run the exit-time frees, and wait at most `timeout_ns`. `Some(ran
/// libstdc++'s too)` if they finished; `None` if there is no writer thread, or the frees are
/// still running (then a stopped thread holds a lock they wait for, and they never will end:
/// the writer thread stays stuck there, and nothing else needs it).
pub(crate) fn freeres_on_writer_thread(timeout_ns: u64) -> Option<bool> {
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

/// Stop the writer thread, waiting at most about a second (longer only while a live scan is
/// still giving up). With `final_refresh`, the writer first refreshes the module list.
pub(crate) fn stop_writer_thread(final_refresh: bool) {
    stop_writer_thread_within(final_refresh, 1_000_000_000);
}

/// [`stop_writer_thread`], waiting at most `timeout_ns`.
pub(crate) fn stop_writer_thread_within(final_refresh: bool, timeout_ns: u64) {
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

//! Stopping every other thread for the reachability scan, with a signal delivered inside the
//! process rather than with ptrace (which fails in containers and under a debugger).
//!
//! The scanning thread sends [`stop_signal`] to each thread listed in `/proc/self/task`. The
//! handler records the thread's registers (from the signal context) and waits on a futex
//! until the world resumes. A thread interrupted while running agent code (it may hold a lock
//! of the live table) only notes the request; it stops itself when it leaves the agent, so a
//! stopped thread never holds an agent lock.

use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use crate::sys;
use crate::thread;

/// Most threads whose registers are recorded.
pub const MAX_THREADS: usize = 8192;

/// Registers recorded for a stopped thread: the 16 general-purpose registers and `rip`.
pub const RECORDED_REGISTERS: usize = 17;

/// A thread stopped for the scan.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct StoppedThread {
    /// Kernel thread id.
    pub tid: i32,
    /// Its stack pointer when it stopped.
    pub sp: u64,
    /// Its general-purpose registers.
    pub registers: [u64; RECORDED_REGISTERS],
    /// A block it was moving with `realloc` (address, size; 0 if none): see
    /// [`thread::ThreadState::moving_block`].
    pub moving_block: (u64, u64),
}

struct World {
    /// 1 while the world is stopped.
    active: AtomicU32,
    /// Threads that have stopped so far.
    stopped: AtomicU32,
    /// Slots handed out to stopping threads.
    claimed: AtomicU32,
    slots: core::sync::atomic::AtomicPtr<StoppedThread>,
}

static WORLD: World = World {
    active: AtomicU32::new(0),
    stopped: AtomicU32::new(0),
    claimed: AtomicU32::new(0),
    slots: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
};

/// The agent's writer thread, which is never stopped (it is told to finish instead).
pub static AGENT_THREAD_TID: AtomicI32 = AtomicI32::new(0);

/// The signal used to stop threads: `SIGRTMAX - 5`, a real-time signal that glibc does not
/// reserve and that programs rarely use.
pub fn stop_signal() -> i32 {
    libc::SIGRTMAX() - 5
}

/// The outcome of [`stop_the_world`].
pub struct Stopped {
    /// The threads that stopped, with their registers.
    pub threads: &'static [StoppedThread],
    /// Threads that were signalled but did not stop in time (for example, blocked in a system
    /// call with every signal masked by a raw `rt_sigprocmask`).
    pub missed: u32,
    /// The ids of the first of them (0: none).
    pub missed_tids: [i32; MISSED_TIDS_KEPT],
}

/// How many of the threads that did not stop are named.
pub const MISSED_TIDS_KEPT: usize = 8;

/// Set when a live scan was asked for (the stop signal queued with
/// [`leakscope_format::settings::SCAN_REQUEST_VALUE`]); the writer thread takes it.
pub static SCAN_REQUESTED: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_stop_signal(_signal: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    if WORLD.active.load(Ordering::Acquire) == 0 {
        if is_scan_request(info) {
            SCAN_REQUESTED.store(1, Ordering::Release);
        }
        return; // otherwise a late signal from a stop that is over
    }
    if is_scan_request(info) {
        // Asked for while a scan runs: that scan is the answer. (Not a stop: the request is
        // process-directed and may land on a thread that was already stopped or signalled.)
        return;
    }
    if thread::current().depth.load(Ordering::Relaxed) != 0 {
        thread::current().stop_deferred.store(1, Ordering::Relaxed);
        return;
    }
    park(context as *const libc::ucontext_t);
}

fn is_scan_request(info: *const libc::siginfo_t) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; `si_value` is
    // meaningful for SI_QUEUE, which is checked first.
    unsafe {
        (*info).si_code == libc::SI_QUEUE
            && (*info).si_value().sival_ptr as usize as u32 as i32
                == leakscope_format::settings::SCAN_REQUEST_VALUE
    }
}

/// Called when a thread leaves agent code with a stop request pending: stop now.
pub fn stop_now_deferred() {
    if WORLD.active.load(Ordering::Acquire) != 0 {
        sys::tgkill(sys::gettid(), stop_signal());
    }
}

fn park(context: *const libc::ucontext_t) {
    let saved_errno = sys::errno();
    let slot = WORLD.claimed.fetch_add(1, Ordering::AcqRel) as usize;
    let slots = WORLD.slots.load(Ordering::Acquire);
    if slot < MAX_THREADS && !slots.is_null() && !context.is_null() {
        // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler; the slot is
        // ours alone (claimed above) and lies inside the slots mapping.
        unsafe {
            let gregs = &(*context).uc_mcontext.gregs;
            let out = &mut *slots.add(slot);
            out.tid = sys::gettid();
            out.sp = gregs[libc::REG_RSP as usize] as u64;
            for (i, r) in out.registers.iter_mut().enumerate() {
                *r = gregs[i] as u64;
            }
            let state = thread::current();
            out.moving_block = (
                state.moving_block.load(Ordering::Relaxed),
                state.moving_block_size.load(Ordering::Relaxed),
            );
        }
    }
    WORLD.stopped.fetch_add(1, Ordering::AcqRel);
    sys::futex_wake_all(&WORLD.stopped);
    while WORLD.active.load(Ordering::Acquire) != 0 {
        sys::futex_wait(&WORLD.active, 1, 0);
    }
    sys::set_errno(saved_errno);
}

/// Stop every thread but the caller and the agent's own thread. Waits up to `timeout_ns` for
/// them. Must be followed by [`resume_the_world`].
pub fn stop_the_world(timeout_ns: u64) -> Stopped {
    let mut slots = WORLD.slots.load(Ordering::Acquire);
    if slots.is_null() {
        slots = sys::map_anonymous(MAX_THREADS * core::mem::size_of::<StoppedThread>(), false)
            as *mut StoppedThread;
        WORLD.slots.store(slots, Ordering::Release);
    }
    WORLD.claimed.store(0, Ordering::Release);
    WORLD.stopped.store(0, Ordering::Release);
    WORLD.active.store(1, Ordering::Release);

    install_handler();
    let me = sys::gettid();
    let agent = AGENT_THREAD_TID.load(Ordering::Acquire);
    let signalled_ptr = sys::map_anonymous(MAX_THREADS * 4, false) as *mut i32;
    let mut signalled_count = 0usize;
    let deadline = sys::monotonic_ns() + timeout_ns;
    // Threads may start while we signal; list again until a round finds nobody new.
    for _round in 0..8 {
        let mut found_new = false;
        for_each_task(|tid| {
            if tid == me || tid == agent || signalled_ptr.is_null() {
                return;
            }
            // SAFETY: `signalled_count` entries of the mapping are initialised.
            let signalled = unsafe { core::slice::from_raw_parts(signalled_ptr, signalled_count) };
            if signalled.contains(&tid) || signalled_count >= MAX_THREADS {
                return;
            }
            if sys::tgkill(tid, stop_signal()) {
                // SAFETY: below MAX_THREADS, inside the mapping.
                unsafe { *signalled_ptr.add(signalled_count) = tid };
                signalled_count += 1;
                found_new = true;
            }
        });
        // Wait for everyone signalled so far. After a short while, a thread that blocks the
        // stop signal (with a raw rt_sigprocmask, which the agent cannot see) is counted out
        // at once: it would only run the wait into its timeout.
        let waiting_since = sys::monotonic_ns();
        let mut checked_masks = false;
        loop {
            let stopped = WORLD.stopped.load(Ordering::Acquire);
            if stopped as usize >= signalled_count || sys::monotonic_ns() >= deadline {
                break;
            }
            if !checked_masks && sys::monotonic_ns() - waiting_since > 20_000_000 {
                checked_masks = true;
                // SAFETY: `signalled_count` entries of the mapping are initialised.
                let signalled =
                    unsafe { core::slice::from_raw_parts(signalled_ptr, signalled_count) };
                let blocking = signalled
                    .iter()
                    .filter(|&&tid| !has_stopped(tid, slots) && blocks_stop_signal(tid))
                    .count();
                if stopped as usize + blocking >= signalled_count {
                    break;
                }
            }
            sys::futex_wait(&WORLD.stopped, stopped, 1_000_000);
        }
        if !found_new || sys::monotonic_ns() >= deadline {
            break;
        }
    }
    let stopped = (WORLD.claimed.load(Ordering::Acquire) as usize)
        .min(WORLD.stopped.load(Ordering::Acquire) as usize)
        .min(MAX_THREADS);
    let threads = if slots.is_null() {
        &[][..]
    } else {
        // SAFETY: the first `stopped` slots were written by stopped threads before they
        // incremented `stopped` (AcqRel), and they do not change while the world is stopped.
        unsafe { core::slice::from_raw_parts(slots, stopped) }
    };
    let mut missed_tids = [0i32; MISSED_TIDS_KEPT];
    if !signalled_ptr.is_null() {
        // SAFETY: `signalled_count` entries of the mapping are initialised.
        let signalled = unsafe { core::slice::from_raw_parts(signalled_ptr, signalled_count) };
        let not_stopped = signalled
            .iter()
            .filter(|&&tid| !threads.iter().any(|t| t.tid == tid));
        for (slot, &tid) in missed_tids.iter_mut().zip(not_stopped) {
            *slot = tid;
        }
        // SAFETY: mapped above with this length, not used after this.
        unsafe { sys::unmap(signalled_ptr as *mut u8, MAX_THREADS * 4) };
    }
    Stopped {
        threads,
        missed: signalled_count.saturating_sub(stopped) as u32,
        missed_tids,
    }
}

/// Has thread `tid` stopped (claimed a slot and filled it)?
fn has_stopped(tid: i32, slots: *mut StoppedThread) -> bool {
    if slots.is_null() {
        return false;
    }
    let filled = (WORLD.stopped.load(Ordering::Acquire) as usize).min(MAX_THREADS);
    // SAFETY: the first `filled` slots were written before `stopped` was incremented.
    let threads = unsafe { core::slice::from_raw_parts(slots, filled) };
    threads.iter().any(|t| t.tid == tid)
}

/// Does thread `tid` block the stop signal? From `SigBlk:` in `/proc/self/task/TID/status`
/// (hexadecimal, signal n is bit n - 1).
fn blocks_stop_signal(tid: i32) -> bool {
    sys::procfs::thread_blocked_signals(tid)
        .is_some_and(|mask| mask & (1u64 << (stop_signal() - 1)) != 0)
}

/// Let the stopped threads run again.
pub fn resume_the_world() {
    WORLD.active.store(0, Ordering::Release);
    sys::futex_wake_all(&WORLD.active);
}

/// Install the stop signal's handler now, so that a scan request sent before the first stop
/// finds it (the signal's default action would end the process).
pub fn install_stop_handler() {
    install_handler();
}

/// After `fork`, in the child: no stop of the parent's world concerns the child.
pub fn reset_after_fork() {
    WORLD.active.store(0, Ordering::Release);
    thread::current().stop_deferred.store(0, Ordering::Relaxed);
    SCAN_REQUESTED.store(0, Ordering::Relaxed);
}

fn install_handler() {
    sys::install_signal_handler(stop_signal(), on_stop_signal);
}

pub use sys::procfs::for_each_task;

/// How many threads the process has, not counting the caller and the agent's thread.
pub fn other_thread_count() -> usize {
    let me = sys::gettid();
    let agent = AGENT_THREAD_TID.load(Ordering::Acquire);
    let mut count = 0;
    for_each_task(|tid| {
        if tid != me && tid != agent {
            count += 1;
        }
    });
    count
}

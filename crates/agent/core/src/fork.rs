//! Fork handling: every agent lock is taken before `fork` (so that the child's copies of the
//! tables are whole) and released after it; the child starts a profile of its own.

use core::sync::atomic::Ordering;

use crate::activation::{recording, ACTIVE_WITHOUT_WRITER, OWNER_PID, START_NS, STATE};
use crate::live::LIVE;
use crate::live_scan::LIVE_SCAN_RUNNING;
use crate::thread::AgentSection;
use crate::writer_thread::{
    WRITER_DONE, WRITER_FINAL_REFRESH, WRITER_JOB, WRITER_STARTED, WRITER_STOP,
};
use crate::{modules, sites, stacks, stop, sys, thread, writer};

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

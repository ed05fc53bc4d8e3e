//! Activation: whether the agent records in this process, decided at the first allocation
//! (which may be the process's very first, before `main` and before the loader is done), and
//! the facts of the image that every room reads (its owner pid, its start time, its settings).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::thread::AgentSection;
use crate::writer_thread::start_writer_thread;
use crate::{degraded, modules, runtime, settings, sys, writer};

pub(crate) const UNKNOWN: u32 = 0;
pub(crate) const INACTIVE: u32 = 1;
pub(crate) const ACTIVE: u32 = 2;
/// Active, in a forked child whose writer thread is not started yet: the child's first
/// allocation starts it (from `is_active`'s cold path, so the hot path pays nothing), because
/// creating a thread inside `fork`'s child handler would cost every `fork`+`exec` a thread.
pub(crate) const ACTIVE_WITHOUT_WRITER: u32 = 3;

/// Is the agent recording (any active state)?
#[inline(always)]
pub(crate) fn recording() -> bool {
    STATE.load(Ordering::Relaxed) >= ACTIVE
}

pub(crate) static STATE: AtomicU32 = AtomicU32::new(UNKNOWN);
/// `--max-frames`, copied out of the settings when the agent activates.
pub(crate) static MAX_FRAMES: AtomicU32 =
    AtomicU32::new(leakscope_format::settings::DEFAULT_MAX_FRAMES);
/// Sampling mode's rate in bytes (0: every allocation gets a stack).
pub(crate) static SAMPLE_RATE: AtomicU64 = AtomicU64::new(0);
/// Monotonic time at start.
pub(crate) static START_NS: AtomicU64 = AtomicU64::new(0);
/// The pid the agent's state belongs to. A child made by `vfork` (or a raw `clone`) runs in
/// the parent's memory with another pid: it must not finish the parent's profile.
pub(crate) static OWNER_PID: AtomicU32 = AtomicU32::new(0);

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

/// Is this the process the agent's state belongs to (not a `vfork` child running in its
/// memory, with another pid)?
pub(crate) fn is_owner_process() -> bool {
    sys::getpid() as u32 == OWNER_PID.load(Ordering::Relaxed)
}

/// Is the calling thread the process's main thread?
pub fn is_main_thread() -> bool {
    sys::gettid() == sys::getpid()
}

/// Nanoseconds since the agent started in this process.
pub(crate) fn now_ns() -> u64 {
    sys::monotonic_ns().saturating_sub(START_NS.load(Ordering::Relaxed))
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
    if let Some(settings) = settings::get() {
        crate::python::set_keep_native(settings.native_frames);
    }
    crate::python::detect();
    // The profile exists from the start, with who the process is: a program that execs or is
    // killed in its first milliseconds (before the writer's first snapshot) still leaves one.
    writer::WRITER.flush();
}

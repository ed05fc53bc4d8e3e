//! The signals that end a program, and who should see them while `leakscope run` waits.
//!
//! From a terminal, Ctrl-C (SIGINT), Ctrl-\ (SIGQUIT) and a hang-up (SIGHUP) go to the whole
//! foreground process group, which holds both leakscope and the program: the program already
//! has its own, and leakscope only has to outlive it to report. Sent to leakscope alone (`kill
//! -INT <pid>`, a supervisor's SIGTERM), the same signals must reach the program, exactly once.
//! The kernel tells the two apart: a signal the terminal generates arrives with `si_code`
//! `SI_KERNEL`, one sent with `kill` or `sigqueue` with `SI_USER` or `SI_QUEUE`. So the handler
//! passes a signal on unless it came from the kernel.
//!
//! A signal that leakscope started with ignored (`nohup`, a background job of a
//! non-interactive shell) stays ignored, for leakscope and for the program, as without
//! leakscope. Once the program has ended, the dispositions go back to the defaults, so that a
//! second Ctrl-C stops a report that takes too long.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The signals passed on.
const PASSED_ON: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

/// The pid of the running program (0 before it starts and after it ended).
static TARGET_PID: AtomicI32 = AtomicI32::new(0);
/// A signal to pass on that arrived before the program started.
static PENDING: AtomicI32 = AtomicI32::new(0);
/// Which of [`PASSED_ON`] have leakscope's handler.
static HANDLED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];

extern "C" fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t; si_code is in every one.
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if from_kernel {
        return; // the terminal sent it to the whole process group: the program has it
    }
    match TARGET_PID.load(Ordering::SeqCst) {
        // SAFETY: kill is async-signal-safe; a stale pid is at worst ESRCH.
        pid if pid > 0 => unsafe {
            libc::kill(pid, signal);
        },
        _ => PENDING.store(signal, Ordering::SeqCst),
    }
}

/// Install the handler for each signal leakscope did not start with ignored.
pub fn pass_on_to_target() {
    for (index, &signal) in PASSED_ON.iter().enumerate() {
        // SAFETY: plain sigaction calls on valid structs, for leakscope's own process; the
        // handler only reads atomics and calls kill, both async-signal-safe.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = pass_on
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) == 0 {
                HANDLED[index].store(true, Ordering::SeqCst);
            }
        }
    }
}

/// In the child between fork and exec: the program starts with the dispositions leakscope
/// started with (exec would reset the handlers anyway; this closes the window before it).
///
/// # Safety
///
/// Only async-signal-safe calls: to be called from `pre_exec`.
pub unsafe fn reset_in_child() {
    for (index, &signal) in PASSED_ON.iter().enumerate() {
        if HANDLED[index].load(Ordering::Relaxed) {
            // SAFETY: signal is async-signal-safe.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}

/// The program runs as `pid`: pass on from now on, and what came before it started.
pub fn target_started(pid: i32) {
    TARGET_PID.store(pid, Ordering::SeqCst);
    let pending = PENDING.swap(0, Ordering::SeqCst);
    if pending != 0 {
        // SAFETY: signals the program this run just started.
        unsafe { libc::kill(pid, pending) };
    }
}

/// The pid of the running program, 0 if none.
pub fn target_pid() -> i32 {
    TARGET_PID.load(Ordering::SeqCst)
}

/// The program has ended: signals act on leakscope itself again.
pub fn target_ended() {
    TARGET_PID.store(0, Ordering::SeqCst);
    for (index, &signal) in PASSED_ON.iter().enumerate() {
        if HANDLED[index].swap(false, Ordering::SeqCst) {
            // SAFETY: restores the default disposition of a signal in leakscope's process.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}

/// Start a helper thread that never handles the passed-on signals, so that the main thread
/// handles each of them before it sees the program's end: a terminal's Ctrl-C that ended the
/// program is then never acted on after the defaults are back. (The thread inherits the mask
/// that is in force while it is created.)
pub fn spawn_helper<F, T>(
    builder: std::thread::Builder,
    body: F,
) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: valid signal sets, changed for the calling thread only and restored below.
    let old = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in PASSED_ON {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    };
    let spawned = builder.spawn(body);
    // SAFETY: puts back the mask saved above; pending signals are delivered now.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    spawned
}

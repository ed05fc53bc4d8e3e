//! Start-up and the ends of the process: the constructor, the exit handler, `_exit`, fatal
//! signals, `fork`, and the signal functions the agent must wrap to stay invisible.

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::symbols::{Scope, Symbol};

use leakscope_agent_core as core_;
use leakscope_agent_core::stop::stop_signal;
use leakscope_agent_core::sys::{errno, set_errno};
use leakscope_agent_core::thread::AgentSection;
use leakscope_format::ExitHow;

/// The type of `main`.
pub type MainFn = extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

type StartMainFn = unsafe extern "C" fn(
    MainFn,
    c_int,
    *mut *mut c_char,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
) -> c_int;

static REAL_EXIT: Symbol = Symbol::new(c"exit", Scope::Next);
static REAL_START_MAIN: Symbol = Symbol::new(c"__libc_start_main", Scope::Next);
static REAL_MAIN: AtomicUsize = AtomicUsize::new(0);
static REAL_SIGWAIT: Symbol = Symbol::new(c"sigwait", Scope::Next);
static REAL_SIGTIMEDWAIT: Symbol = Symbol::new(c"sigtimedwait", Scope::Next);

/// Signals whose default action ends the process: the agent reports on them, as memcheck
/// does, and then lets the default action happen.
const FATAL_SIGNALS: [c_int; 22] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGUSR1,
    libc::SIGSEGV,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSYS,
];

/// Signals on which the agent's handler is installed and the program has not installed its
/// own: the program is told these are at their default.
static HIJACKED: [AtomicBool; 65] = [const { AtomicBool::new(false) }; 65];

/// The program's one-shot handlers (`SA_RESETHAND`) on fatal signals, and their flags: the
/// agent installs [`on_one_shot_signal`] in their place (see [`program_sigaction`]).
static ONE_SHOT_HANDLER: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];
static ONE_SHOT_FLAGS: [core::sync::atomic::AtomicI32; 65] =
    [const { core::sync::atomic::AtomicI32::new(0) }; 65];

extern "C" {
    fn on_exit(handler: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
    fn at_quick_exit(handler: extern "C" fn()) -> c_int;
}

static REAL_QUICK_EXIT: Symbol = Symbol::new(c"quick_exit", Scope::Next);
/// The status `quick_exit` was called with (its handlers are not told it).
static QUICK_EXIT_CODE: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

/// `quick_exit(3)`: remember the status for the agent's `at_quick_exit` handler, then glibc's.
pub extern "C" fn quick_exit(code: c_int) -> ! {
    QUICK_EXIT_CODE.store(code, Ordering::Release);
    let f = REAL_QUICK_EXIT.address();
    if f != 0 {
        // SAFETY: `f` is glibc's `quick_exit`, found by dlsym.
        unsafe {
            let f: extern "C" fn(c_int) -> ! = core::mem::transmute(f);
            f(code)
        }
    }
    finish_at_underscore_exit(code)
}

extern "C" fn at_quick_exit_handler() {
    let sp = stack_pointer();
    core_::finish(&core_::ExitContext {
        how: ExitHow::QuickExit,
        code: QUICK_EXIT_CODE.load(Ordering::Acquire),
        signal: 0,
        stack_from: sp,
        registers: &[],
        not_roots: [(0, 0); 2],
    });
}

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

extern "C" fn constructor() {
    let active = core_::is_active();
    // SAFETY: constructors run before the program's threads exist.
    unsafe {
        core_::settings::capture_agent_entries();
        core_::settings::scrub_environment();
    }
    for symbol in [
        &REAL_EXIT,
        &REAL_QUICK_EXIT,
        &REAL_SIGWAIT,
        &REAL_SIGTIMEDWAIT,
    ] {
        symbol.resolve();
    }
    crate::spawn::resolve();
    crate::neighbours::resolve();
    crate::threads::resolve();
    if !active {
        return;
    }
    if let Some(allocator) = crate::neighbours::program_allocator() {
        core_::degraded::note_program_allocator(allocator);
    }
    crate::python_allocators::register();
    core_::on_start();
    let _section = AgentSection::enter_nested();
    // SAFETY: plain registrations with glibc; the handlers are `extern "C"` functions that
    // live as long as the process.
    unsafe {
        // on_exit, not atexit: it passes the exit status, and it carries no DSO handle, so
        // `__cxa_finalize` of the agent does not run it early. Registered before
        // `__libc_start_main` registers the dynamic linker's destructor pass, it runs after
        // every destructor of every library.
        on_exit(on_exit_handler, core::ptr::null_mut());
        // The same for quick_exit: registered first, run after the program's handlers.
        at_quick_exit(at_quick_exit_handler);
        libc::pthread_atfork(
            Some(prepare_fork),
            Some(parent_after_fork),
            Some(child_after_fork),
        );
    }
    install_fatal_signal_handlers();
    core_::stop::install_stop_handler();
    core_::start_writer_thread();
}

extern "C" fn on_exit_handler(status: c_int, _arg: *mut c_void) {
    let sp = stack_pointer();
    core_::finish(&core_::ExitContext {
        how: ExitHow::Exit,
        code: status,
        signal: 0,
        stack_from: sp,
        registers: &[],
        not_roots: [(0, 0); 2],
    });
}

#[inline(always)]
fn stack_pointer() -> u64 {
    let sp: u64;
    // SAFETY: reads the stack pointer; touches no memory.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
    sp
}

/// `_exit`: scan here (no handler will run), then end the process.
pub fn finish_at_underscore_exit(code: c_int) -> ! {
    let sp = stack_pointer();
    core_::finish(&core_::ExitContext {
        how: ExitHow::UnderscoreExit,
        code,
        signal: 0,
        stack_from: sp,
        registers: &[],
        not_roots: [(0, 0); 2],
    });
    // SAFETY: exit_group ends the process; it never returns.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    loop {
        core::hint::spin_loop();
    }
}

/// glibc's `exit`.
pub extern "C" fn real_exit(code: c_int) -> ! {
    let f = REAL_EXIT.address();
    if f != 0 {
        // SAFETY: `f` is glibc's `exit`, found by dlsym.
        unsafe {
            let f: extern "C" fn(c_int) -> ! = core::mem::transmute(f);
            f(code)
        }
    }
    // SAFETY: no glibc exit could be found (cannot happen with glibc); end the process.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    loop {
        core::hint::spin_loop();
    }
}

/// The program's `main`, called by glibc in its place: calls it, then wipes the dead stack
/// (see `deadstack`) and returns its result. Naked, so that its own frame holds nothing but
/// the `rbx` it saves (a Rust function's frame may keep, in a slot it never writes, what an
/// earlier call at that depth left there).
#[unsafe(naked)]
extern "C" fn main_trampoline(
    argc: c_int,
    argv: *mut *mut c_char,
    envp: *mut *mut c_char,
) -> c_int {
    // SAFETY: REAL_MAIN holds the program's main, stored by start_main before glibc calls
    // this; it is called with the arguments as they came and the stack aligned (one push on
    // an entry rsp of 8 mod 16). `rbx`, callee-saved, keeps the result across the wipe and is
    // restored before the return; the CFI describes the one push for unwinders walking from
    // the program's frames.
    core::arch::naked_asm!(
        ".cfi_startproc",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbx, -16",
        "call qword ptr [rip + {real_main}]",
        "mov ebx, eax",
        "call {wipe}",
        "mov eax, ebx",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "ret",
        ".cfi_endproc",
        real_main = sym REAL_MAIN,
        wipe = sym core_::deadstack::wipe_dead_stack,
    )
}

/// Forward `__libc_start_main`, wrapping `main`.
///
/// # Safety
/// The arguments are those `_start` passes.
#[allow(clippy::too_many_arguments)]
pub unsafe fn start_main(
    main: MainFn,
    argc: c_int,
    argv: *mut *mut c_char,
    init_fn: *mut c_void,
    fini: *mut c_void,
    rtld_fini: *mut c_void,
    stack_end: *mut c_void,
) -> c_int {
    let f = REAL_START_MAIN.address();
    // SAFETY: `f` is glibc's __libc_start_main.
    let real: StartMainFn = unsafe { core::mem::transmute(f) };
    let main = if core_::is_active() {
        REAL_MAIN.store(main as usize, Ordering::Release);
        main_trampoline as MainFn
    } else {
        main
    };
    // SAFETY: forwarded with the caller's arguments.
    unsafe { real(main, argc, argv, init_fn, fini, rtld_fini, stack_end) }
}

extern "C" fn prepare_fork() {
    core_::before_fork();
}

extern "C" fn parent_after_fork() {
    core_::after_fork_in_parent();
}

extern "C" fn child_after_fork() {
    core_::after_fork_in_child();
}

fn install_fatal_signal_handlers() {
    for &signal in &FATAL_SIGNALS {
        // SAFETY: reads the current action; ours goes in only where the default is in place
        // (an inherited SIG_IGN, as under nohup, is respected).
        unsafe {
            let mut old: libc::sigaction = core::mem::zeroed();
            if core_::real_sigaction(signal, core::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                continue;
            }
        }
        install_fatal_signal_handler(signal);
    }
}

/// Put the agent's fatal-signal handler in place for `signal`; the program is told the
/// signal is at its default. False if the kernel refused.
fn install_fatal_signal_handler(signal: c_int) -> bool {
    // SAFETY: a fully initialised sigaction for our handler, an `extern "C"` function that
    // lives as long as the process.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = on_fatal_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        if core_::real_sigaction(signal, &action, core::ptr::null_mut()) != 0 {
            return false;
        }
    }
    HIJACKED[signal as usize].store(true, Ordering::Release);
    true
}

/// The agent's stand-in for a program's one-shot handler (`SA_RESETHAND`) on a fatal signal.
/// The kernel would reset the action to the default as it runs the handler; the program's
/// re-raise (Node.js does so on SIGINT and SIGTERM, after restoring the terminal) would then
/// end the process without a report. This resets it to the agent's handler instead, which is
/// the default as the agent keeps it, then runs the program's handler.
extern "C" fn on_one_shot_signal(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let errno_on_entry = errno();
    let (handler, flags) = if (1..65).contains(&signal) {
        (
            ONE_SHOT_HANDLER[signal as usize].swap(0, Ordering::AcqRel),
            ONE_SHOT_FLAGS[signal as usize].load(Ordering::Acquire),
        )
    } else {
        (0, 0)
    };
    if handler == 0 {
        // Another thread took the one shot first: this one gets the default, as it would.
        on_fatal_signal(signal, info, context);
        return;
    }
    install_fatal_signal_handler(signal);
    set_errno(errno_on_entry);
    // SAFETY: `handler` is the program's handler for this signal (not SIG_DFL or SIG_IGN:
    // see `install_program_action`), with the signature its flags say (SA_SIGINFO: three
    // arguments), called as the kernel would have called it.
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                core::mem::transmute(handler);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(c_int) = core::mem::transmute(handler);
            f(signal);
        }
    }
}

/// Install the program's action for `signal` (the agent stepping aside): as it is, unless it
/// is a one-shot handler on a fatal signal, which runs behind [`on_one_shot_signal`].
///
/// # Safety
/// `action` must be valid.
unsafe fn install_program_action(signal: c_int, action: *const libc::sigaction) -> c_int {
    // SAFETY: valid by the caller's contract.
    let mut real = unsafe { *action };
    let one_shot = FATAL_SIGNALS.contains(&signal)
        && real.sa_flags & libc::SA_RESETHAND != 0
        && real.sa_sigaction != libc::SIG_DFL
        && real.sa_sigaction != libc::SIG_IGN
        && core_::is_active();
    if one_shot {
        ONE_SHOT_FLAGS[signal as usize].store(real.sa_flags, Ordering::Release);
        ONE_SHOT_HANDLER[signal as usize].store(real.sa_sigaction, Ordering::Release);
        real.sa_sigaction = on_one_shot_signal as *const () as usize;
        real.sa_flags = (real.sa_flags & !libc::SA_RESETHAND) | libc::SA_SIGINFO;
    } else if (1..65).contains(&signal) {
        ONE_SHOT_HANDLER[signal as usize].store(0, Ordering::Release);
    }
    if (1..65).contains(&signal) {
        HIJACKED[signal as usize].store(false, Ordering::Release);
    }
    // SAFETY: the program's action, or the agent's stand-in with the program's mask and flags.
    unsafe { core_::real_sigaction(signal, &real, core::ptr::null_mut()) }
}

/// `sigaction`'s report of the current action, as the program set it: its one-shot handler
/// and flags where the agent's stand-in runs it (the default once its shot was taken).
fn as_the_program_set_it(signal: c_int, action: &mut libc::sigaction) {
    if action.sa_sigaction != on_one_shot_signal as *const () as usize {
        return;
    }
    let handler = ONE_SHOT_HANDLER[signal as usize].load(Ordering::Acquire);
    if handler == 0 {
        // SAFETY: zeroed is a valid sigaction (SIG_DFL, no flags, an empty mask).
        *action = unsafe { core::mem::zeroed() };
    } else {
        action.sa_sigaction = handler;
        action.sa_flags = ONE_SHOT_FLAGS[signal as usize].load(Ordering::Acquire);
    }
}

extern "C" fn on_fatal_signal(signal: c_int, _info: *mut libc::siginfo_t, context: *mut c_void) {
    // The registers as the signal found them, and (when the signal came on an alternate stack,
    // inside the program's own handler, say) those of the thread's real stack at the first
    // signal: both are roots, and the scan reads the thread's stack from the latter's stack
    // pointer.
    let mut registers = [0u64; 2 * core_::stop::RECORDED_REGISTERS];
    let mut sp = stack_pointer();
    if !context.is_null() {
        // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler.
        let gregs = unsafe { &(*(context as *const libc::ucontext_t)).uc_mcontext.gregs };
        for (i, r) in registers[..core_::stop::RECORDED_REGISTERS]
            .iter_mut()
            .enumerate()
        {
            *r = gregs[i] as u64;
        }
        sp = gregs[libc::REG_RSP as usize] as u64;
    }
    let mut not_roots = [(0, 0); 2];
    if let Some(outer) = core_::sigcontext::outermost_on_own_stack(sp) {
        registers[core_::stop::RECORDED_REGISTERS..].copy_from_slice(&outer.registers);
        sp = outer.sp;
        not_roots = outer.not_roots;
    }
    core_::finish(&core_::ExitContext {
        how: ExitHow::Signal,
        code: 0,
        signal,
        stack_from: sp,
        registers: &registers,
        not_roots,
    });
    // Now let the default action happen: restore it, unblock the signal and raise it again.
    // (For a fault, returning would also fault again; raising covers every kind.)
    // SAFETY: plain signal-state changes for this process and thread.
    unsafe {
        let mut default: libc::sigaction = core::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        core_::real_sigaction(signal, &default, core::ptr::null_mut());
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_UNBLOCK, &set, 0usize, 8);
        core_::sys::tgkill(core_::sys::gettid(), signal);
    }
}

/// The program's `sigaction`: where the agent's fatal-signal handler is installed, the
/// program is told the action is the default; when it installs its own handler, the agent
/// steps aside. A request to set the default keeps the agent's handler, which reports and
/// then applies the default action. A one-shot handler (`SA_RESETHAND`) on a fatal signal
/// runs behind [`on_one_shot_signal`], which resets the action to the agent's handler rather
/// than to the kernel's default; the program is told its own handler and flags.
///
/// # Safety
/// As `sigaction(2)`.
pub unsafe fn program_sigaction(
    signal: c_int,
    action: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let hijacked = (1..65).contains(&signal) && HIJACKED[signal as usize].load(Ordering::Acquire);
    if !hijacked {
        // SAFETY: `action` is null or valid, by the caller's contract.
        let wants_default = !action.is_null() && unsafe { (*action).sa_sigaction } == libc::SIG_DFL;
        if wants_default && FATAL_SIGNALS.contains(&signal) && core_::is_active() {
            // The program put its own handler in place earlier, and now asks for the default
            // (a crash handler that resets the signal and raises it again, as most do): the
            // agent's handler goes back in, reports, then applies the default action.
            if !old.is_null() {
                // SAFETY: the caller's out-parameter gets the current (the program's) action.
                if unsafe { core_::real_sigaction(signal, core::ptr::null(), old) } != 0 {
                    return -1;
                }
                // SAFETY: just filled.
                as_the_program_set_it(signal, unsafe { &mut *old });
            }
            ONE_SHOT_HANDLER[signal as usize].store(0, Ordering::Release);
            if install_fatal_signal_handler(signal) {
                return 0;
            }
        }
        if !FATAL_SIGNALS.contains(&signal) {
            // SAFETY: forwarded.
            return unsafe { core_::real_sigaction(signal, action, old) };
        }
        if !old.is_null() {
            // SAFETY: the caller's out-parameter gets the current (the program's) action.
            if unsafe { core_::real_sigaction(signal, core::ptr::null(), old) } != 0 {
                return -1;
            }
            // SAFETY: just filled.
            as_the_program_set_it(signal, unsafe { &mut *old });
        }
        if action.is_null() {
            return 0;
        }
        // SAFETY: `action` is valid, by the caller's contract.
        return unsafe { install_program_action(signal, action) };
    }
    if !old.is_null() {
        // SAFETY: the caller's out-parameter.
        unsafe {
            *old = core::mem::zeroed();
            (*old).sa_sigaction = libc::SIG_DFL;
        }
    }
    // SAFETY: `action` is null or valid, by the caller's contract.
    if action.is_null() || unsafe { (*action).sa_sigaction } == libc::SIG_DFL {
        return 0;
    }
    // SAFETY: as above.
    unsafe { install_program_action(signal, action) }
}

/// The program's `signal`, with glibc's semantics (`SA_RESTART`, the signal masked during its
/// handler).
///
/// # Safety
/// As `signal(2)`.
pub unsafe fn program_signal(signal: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if handler == libc::SIG_ERR || !(1..65).contains(&signal) {
        set_errno(libc::EINVAL);
        return libc::SIG_ERR;
    }
    // SAFETY: building a valid sigaction and passing it on.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, signal);
        action.sa_flags = libc::SA_RESTART;
        let mut old: libc::sigaction = core::mem::zeroed();
        if program_sigaction(signal, &action, &mut old) < 0 {
            return libc::SIG_ERR;
        }
        old.sa_sigaction
    }
}

/// A copy of `set` without the signals the program may not block or wait for: the agent's
/// stop signal, and glibc's two internal ones (as glibc itself removes them).
///
/// # Safety
/// `set` must be null or valid.
unsafe fn without_reserved(
    set: *const libc::sigset_t,
    copy: &mut libc::sigset_t,
) -> *const libc::sigset_t {
    if set.is_null() {
        return set;
    }
    // SAFETY: `set` is valid by the caller's contract; `copy` is ours.
    unsafe {
        *copy = *set;
        libc::sigdelset(copy, stop_signal());
        libc::sigdelset(copy, 32);
        libc::sigdelset(copy, 33);
    }
    copy
}

/// `sigprocmask` without the reserved signals. Returns 0, or -1 with errno set.
///
/// # Safety
/// As `sigprocmask(2)`.
pub unsafe fn set_signal_mask(
    how: c_int,
    set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    // SAFETY: zeroed sigset_t is a valid empty set.
    let mut copy: libc::sigset_t = unsafe { core::mem::zeroed() };
    let set = if how == libc::SIG_UNBLOCK {
        set
    } else {
        // SAFETY: forwarded validity.
        unsafe { without_reserved(set, &mut copy) }
    };
    // SAFETY: the kernel validates `how` and the pointers; 8 is the kernel's sigset size.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, how, set, old, 8) as c_int }
}

/// `sigwait` that never takes the agent's stop signal.
///
/// # Safety
/// As `sigwait(3)`.
pub unsafe fn sigwait(set: *const libc::sigset_t, signal: *mut c_int) -> c_int {
    // SAFETY: zeroed sigset_t is a valid empty set.
    let mut copy: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: forwarded validity.
    let set = unsafe { without_reserved(set, &mut copy) };
    let f = REAL_SIGWAIT.address();
    if f != 0 {
        // SAFETY: glibc's sigwait, found by dlsym.
        unsafe {
            let f: unsafe extern "C" fn(*const libc::sigset_t, *mut c_int) -> c_int =
                core::mem::transmute(f);
            return f(set, signal);
        }
    }
    loop {
        // SAFETY: rt_sigtimedwait with a valid set and no info or timeout.
        let r = unsafe { libc::syscall(libc::SYS_rt_sigtimedwait, set, 0usize, 0usize, 8) };
        if r >= 0 {
            // SAFETY: the caller's out-parameter.
            unsafe { *signal = r as c_int };
            return 0;
        }
        if errno() != libc::EINTR {
            return errno();
        }
    }
}

/// `sigtimedwait` (and `sigwaitinfo`) that never takes the agent's stop signal.
///
/// # Safety
/// As `sigtimedwait(2)`.
pub unsafe fn sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    timeout: *const libc::timespec,
) -> c_int {
    // SAFETY: zeroed sigset_t is a valid empty set.
    let mut copy: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: forwarded validity.
    let set = unsafe { without_reserved(set, &mut copy) };
    let f = REAL_SIGTIMEDWAIT.address();
    if f != 0 {
        // SAFETY: glibc's sigtimedwait, found by dlsym.
        unsafe {
            let f: unsafe extern "C" fn(
                *const libc::sigset_t,
                *mut libc::siginfo_t,
                *const libc::timespec,
            ) -> c_int = core::mem::transmute(f);
            return f(set, info, timeout);
        }
    }
    // SAFETY: the kernel validates the pointers.
    unsafe { libc::syscall(libc::SYS_rt_sigtimedwait, set, info, timeout, 8) as c_int }
}

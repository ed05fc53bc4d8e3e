//! The functions that start processes and execute programs: each records what it does in the
//! profile (`leakscope_agent_core::children`), gives a followed child an environment with the
//! agent's variables, and forwards to glibc's own function.
//!
//! glibc's `execl`, `execlp`, `execv`, `system`, ... call its internal `__execve` or
//! `__posix_spawn` directly, not through the exported names, so each is interposed by itself.
//! The `execl` family is variadic: a naked stub lays the variadic arguments out as an `argv`
//! array (see [`execl`]) and the rest is ordinary code.

use core::ffi::{c_char, c_int, c_void};

use leakscope_agent_core::children;
use leakscope_agent_core::sys::{errno, set_errno};
use leakscope_format::{ExecCall, SpawnHow};

extern "C" {
    static mut environ: *mut *mut c_char;
}

use crate::symbols::{Scope, Symbol};

static NEXT_EXECVE: Symbol = Symbol::new(c"execve", Scope::Next);
static NEXT_EXECVP: Symbol = Symbol::new(c"execvp", Scope::Next);
static NEXT_EXECVPE: Symbol = Symbol::new(c"execvpe", Scope::Next);
static NEXT_FEXECVE: Symbol = Symbol::new(c"fexecve", Scope::Next);
static NEXT_EXECVEAT: Symbol = Symbol::new(c"execveat", Scope::Next);
static NEXT_POSIX_SPAWN: Symbol = Symbol::new(c"posix_spawn", Scope::Next);
static NEXT_POSIX_SPAWNP: Symbol = Symbol::new(c"posix_spawnp", Scope::Next);
static NEXT_SYSTEM: Symbol = Symbol::new(c"system", Scope::Next);
static NEXT_POPEN: Symbol = Symbol::new(c"popen", Scope::Next);
static NEXT_FORK: Symbol = Symbol::new(c"fork", Scope::Next);

/// Look every function up now, in the constructor: a `vfork` child that calls `exec` must not
/// run `dlsym` (which may allocate and take the loader's lock) in its parent's memory.
pub fn resolve() {
    for next in [
        &NEXT_EXECVE,
        &NEXT_EXECVP,
        &NEXT_EXECVPE,
        &NEXT_FEXECVE,
        &NEXT_EXECVEAT,
        &NEXT_POSIX_SPAWN,
        &NEXT_POSIX_SPAWNP,
        &NEXT_SYSTEM,
        &NEXT_POPEN,
        &NEXT_FORK,
    ] {
        next.resolve();
    }
}

type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type ExecvpFn = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;
type FexecveFn = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;
type ExecveatFn = unsafe extern "C" fn(
    c_int,
    *const c_char,
    *const *const c_char,
    *const *const c_char,
    c_int,
) -> c_int;
type PosixSpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const c_void,
    *const c_void,
    *const *const c_char,
    *const *const c_char,
) -> c_int;

/// A function that is missing (cannot happen with glibc): fail as the call would on a system
/// without it.
fn missing() -> c_int {
    set_errno(libc::ENOSYS);
    -1
}

/// The environment the calling process has now.
fn current_environment() -> *const *const c_char {
    // SAFETY: reading glibc's `environ` pointer.
    unsafe { environ as *const *const c_char }
}

/// Run an exec call: record it, pass a followed child the agent's variables, and, if the call
/// returns (it failed), record that and hand back its result with its errno.
///
/// # Safety
/// `path`, `argv` and `envp` as the exec functions take them.
unsafe fn exec_with(
    call: ExecCall,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    forward: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    // SAFETY: the caller's promises about the arguments.
    let child_environment = unsafe { children::environment_for_child(envp) };
    let envp = child_environment.as_ref().map_or(envp, |e| e.envp);
    // SAFETY: as above.
    let recorded = unsafe { children::exec_starting(call, path, argv) };
    let result = forward(envp);
    let error = errno();
    children::exec_failed(recorded, error);
    drop(child_environment);
    set_errno(error);
    result
}

/// `execve(2)`.
#[no_mangle]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's arguments, forwarded.
    unsafe { execve_as(ExecCall::Execve, path, argv, envp) }
}

/// `execve` recorded as `call` (for the functions that are `execve` with other arguments).
///
/// # Safety
/// As `execve`.
unsafe fn execve_as(
    call: ExecCall,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { exec_by(&NEXT_EXECVE, call, path, argv, envp) }
}

/// Call `function` (glibc's `execve` or `execvpe`, which have the same signature) as `call`,
/// through [`exec_with`].
///
/// # Safety
/// As `execve`.
unsafe fn exec_by(
    function: &Symbol,
    call: ExecCall,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let next = function.address();
    if next == 0 {
        return missing();
    }
    // SAFETY: glibc's function, found by dlsym; the arguments are the caller's.
    unsafe {
        let next: ExecveFn = core::mem::transmute(next);
        exec_with(call, path, argv, envp, |envp| next(path, argv, envp))
    }
}

/// `execv(3)`: `execve` with the current environment.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: as execve.
    unsafe { execve_as(ExecCall::Execv, path, argv, current_environment()) }
}

/// `execvpe(3)`: the path search of `execvp` with an environment.
#[no_mangle]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's arguments, forwarded.
    unsafe { exec_by(&NEXT_EXECVPE, ExecCall::Execvpe, file, argv, envp) }
}

/// `execvp(3)`.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: as execvpe; glibc's own execvp is used when the environment is unchanged.
    unsafe { execvp_as(ExecCall::Execvp, file, argv) }
}

/// # Safety
/// As `execvp`.
unsafe fn execvp_as(call: ExecCall, file: *const c_char, argv: *const *const c_char) -> c_int {
    let (next_execvp, next_execvpe) = (NEXT_EXECVP.address(), NEXT_EXECVPE.address());
    if next_execvp == 0 || next_execvpe == 0 {
        return missing();
    }
    let envp = current_environment();
    // SAFETY: glibc's functions, found by dlsym; the arguments are the caller's. An
    // environment left as it is goes to glibc's execvp itself, so that nothing changes.
    unsafe {
        let next_execvp: ExecvpFn = core::mem::transmute(next_execvp);
        let next_execvpe: ExecveFn = core::mem::transmute(next_execvpe);
        exec_with(call, file, argv, envp, |child_envp| {
            if child_envp == envp {
                next_execvp(file, argv)
            } else {
                next_execvpe(file, argv, child_envp)
            }
        })
    }
}

/// `fexecve(3)`.
#[no_mangle]
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let next = NEXT_FEXECVE.address();
    if next == 0 {
        return missing();
    }
    // The program's path, for the record: the descriptor's target.
    let mut path = [0u8; 4096];
    let mut link = [0u8; 64];
    let mut text = leakscope_agent_core::sys::TextBuffer::new(&mut link);
    text.push_str("/proc/self/fd/");
    text.push_u64(fd.max(0) as u64);
    text.push_str("\0");
    let saved = errno();
    // SAFETY: readlink writes at most `path.len() - 1` bytes; the link path is NUL-terminated.
    let n = unsafe {
        libc::readlink(
            link.as_ptr() as *const c_char,
            path.as_mut_ptr() as *mut c_char,
            path.len() - 1,
        )
    };
    set_errno(saved);
    path[n.max(0) as usize] = 0;
    // SAFETY: glibc's fexecve, found by dlsym; the arguments are the caller's.
    unsafe {
        let next: FexecveFn = core::mem::transmute(next);
        exec_with(
            ExecCall::Fexecve,
            path.as_ptr() as *const c_char,
            argv,
            envp,
            |envp| next(fd, argv, envp),
        )
    }
}

/// `execveat(2)`.
#[no_mangle]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    flags: c_int,
) -> c_int {
    let next = NEXT_EXECVEAT.address();
    if next == 0 {
        return missing();
    }
    // SAFETY: glibc's execveat, found by dlsym; the arguments are the caller's.
    unsafe {
        let next: ExecveatFn = core::mem::transmute(next);
        exec_with(ExecCall::Execveat, path, argv, envp, |envp| {
            next(dirfd, path, argv, envp, flags)
        })
    }
}

// The variadic `execl`, `execlp` and `execle`. The stub takes the return address off the
// stack and pushes the five argument registers after `path` (rsi, rdx, rcx, r8, r9) below the
// caller's stack arguments, which makes every argument after `path` one contiguous array: the
// `argv` that the list ends with NULL (and, for `execle`, the environment after that NULL).
// It then calls the Rust function with (path, argv) on an aligned stack with a frame pointer
// (so that a frame-pointer walk from it finds the caller), and on return puts the stack and the
// return address back as they were. The stub writes only below the caller's stack pointer and
// over its own return-address slot, as any callee's frame does.
macro_rules! variadic_exec {
    ($(#[$doc:meta])* $name:ident => $body:ident) => {
        $(#[$doc])*
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, arg: *const c_char) -> c_int {
            // SAFETY: see above. The stack is restored exactly (40 bytes of pushed registers
            // dropped, the return address pushed back) before `ret`.
            core::arch::naked_asm!(
                "pop r11",
                "push r9",
                "push r8",
                "push rcx",
                "push rdx",
                "push rsi",
                "mov rsi, rsp",
                "push r11",
                "push rbp",
                "mov rbp, rsp",
                "and rsp, -16",
                "call {body}",
                "mov rsp, rbp",
                "pop rbp",
                "pop r11",
                "add rsp, 40",
                "push r11",
                "ret",
                body = sym $body,
            )
        }
    };
}

variadic_exec!(
    /// `execl(3)`.
    execl => execl_with_argv
);
variadic_exec!(
    /// `execlp(3)`.
    execlp => execlp_with_argv
);
variadic_exec!(
    /// `execle(3)`.
    execle => execle_with_argv
);

unsafe extern "C" fn execl_with_argv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: `argv` is the caller's NULL-terminated argument list (see the stub).
    unsafe { execve_as(ExecCall::Execl, path, argv, current_environment()) }
}

unsafe extern "C" fn execlp_with_argv(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: as execl.
    unsafe { execvp_as(ExecCall::Execlp, file, argv) }
}

unsafe extern "C" fn execle_with_argv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: the list is NULL-terminated, and execle's environment follows the NULL.
    unsafe {
        let mut i = 0;
        while !(*argv.add(i)).is_null() {
            i += 1;
        }
        let envp = *argv.add(i + 1) as *const *const c_char;
        execve_as(ExecCall::Execle, path, argv, envp)
    }
}

/// `posix_spawn` and `posix_spawnp`, recorded; a followed child gets the agent's variables.
///
/// # Safety
/// As `posix_spawn`.
unsafe fn spawn_with(
    next: &Symbol,
    pid: *mut libc::pid_t,
    path: *const c_char,
    file_actions: *const c_void,
    attributes: *const c_void,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let next = next.address();
    if next == 0 {
        return libc::ENOSYS;
    }
    // SAFETY: the caller's arguments, forwarded.
    unsafe {
        let child_environment = children::environment_for_child(envp);
        let envp = child_environment.as_ref().map_or(envp, |e| e.envp);
        let next: PosixSpawnFn = core::mem::transmute(next);
        let saved = errno();
        let mut child: libc::pid_t = 0;
        let result = next(&mut child, path, file_actions, attributes, argv, envp);
        if !pid.is_null() {
            *pid = child;
        }
        if result == 0 {
            children::spawned(SpawnHow::PosixSpawn, child, path);
        }
        drop(child_environment);
        set_errno(saved);
        result
    }
}

/// `posix_spawn(3)`.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    file_actions: *const c_void,
    attributes: *const c_void,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded.
    unsafe {
        spawn_with(
            &NEXT_POSIX_SPAWN,
            pid,
            path,
            file_actions,
            attributes,
            argv,
            envp,
        )
    }
}

/// `posix_spawnp(3)`.
#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    file_actions: *const c_void,
    attributes: *const c_void,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded.
    unsafe {
        spawn_with(
            &NEXT_POSIX_SPAWNP,
            pid,
            file,
            file_actions,
            attributes,
            argv,
            envp,
        )
    }
}

/// `system(3)`: recorded, then glibc's. (It runs `sh -c COMMAND` with the current environment,
/// which keeps the agent's variables when children are followed.)
#[no_mangle]
pub unsafe extern "C" fn system(command: *const c_char) -> c_int {
    let next = NEXT_SYSTEM.address();
    if next == 0 {
        return -1;
    }
    if !command.is_null() {
        // SAFETY: `command` is the caller's C string.
        unsafe { children::spawned(SpawnHow::System, 0, command) };
    }
    // SAFETY: glibc's system, found by dlsym.
    unsafe {
        let next: unsafe extern "C" fn(*const c_char) -> c_int = core::mem::transmute(next);
        next(command)
    }
}

/// `popen(3)`: recorded, then glibc's.
#[no_mangle]
pub unsafe extern "C" fn popen(command: *const c_char, mode: *const c_char) -> *mut c_void {
    let next = NEXT_POPEN.address();
    if next == 0 {
        set_errno(libc::ENOSYS);
        return core::ptr::null_mut();
    }
    // SAFETY: glibc's popen, found by dlsym; `command` is the caller's C string.
    unsafe {
        let next: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut c_void =
            core::mem::transmute(next);
        let stream = next(command, mode);
        if !stream.is_null() && !command.is_null() {
            let saved = errno();
            children::spawned(SpawnHow::Popen, 0, command);
            set_errno(saved);
        }
        stream
    }
}

/// `fork(2)`: glibc's (whose fork handlers give the child its own profile), recorded in the
/// parent with the child's pid.
#[no_mangle]
pub unsafe extern "C" fn fork() -> libc::pid_t {
    let next = NEXT_FORK.address();
    if next == 0 {
        set_errno(libc::ENOSYS);
        return -1;
    }
    // SAFETY: glibc's fork, found by dlsym.
    let pid = unsafe {
        let next: unsafe extern "C" fn() -> libc::pid_t = core::mem::transmute(next);
        next()
    };
    if pid > 0 {
        let saved = errno();
        // SAFETY: no program string for fork.
        unsafe { children::spawned(SpawnHow::Fork, pid, core::ptr::null()) };
        set_errno(saved);
    }
    pid
}

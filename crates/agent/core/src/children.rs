//! The processes the program starts and the programs it executes.
//!
//! Every `exec`, `posix_spawn`, `system`, `popen` and `fork` is recorded in the profile, so
//! that the report can say what ran beside the program, and whether it was tracked. Without
//! `--follow-children` the agent removes its variables from the environment at start
//! (`settings::scrub_environment`), so what the program executes runs untracked. With it, the
//! environment keeps them: every program executed loads the agent and claims a profile of its
//! own (see `writer`). A program that hands its child an environment of its own (`execve`,
//! `posix_spawn` and their kind take one) would drop them, so there the agent gives the child
//! a copy with its variables added back ([`ChildEnvironment`]).

use core::ffi::{c_char, CStr};

use leakscope_format::settings as names;
use leakscope_format::{ExecCall, SpawnHow};

use crate::settings;
use crate::sys;
use crate::thread::AgentSection;
use crate::writer::WriterGuard;

/// Is the agent recording in this process (and is this the process it belongs to, not a
/// `vfork` child running in its memory)?
fn recording_here() -> bool {
    crate::activation::recording() && crate::activation::is_owner_process()
}

/// Is `--follow-children` on?
pub fn following() -> bool {
    settings::get().is_some_and(|s| s.follow_children)
}

/// An environment for a followed child: the program's, with the agent's variables added
/// back. Lives in an agent mapping, unmapped on drop (after an `exec` that failed; after one
/// that succeeded, the image is gone).
pub struct ChildEnvironment {
    base: *mut u8,
    len: usize,
    /// The `NULL`-terminated array to pass as `envp`.
    pub envp: *const *const c_char,
}

impl Drop for ChildEnvironment {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly the mapping made by `environment_for_child`,
        // which nothing uses once the exec or spawn call returned.
        unsafe { sys::unmap(self.base, self.len) };
    }
}

/// The agent's library path: the first entry of the `LD_PRELOAD` the process started with.
fn agent_path() -> Option<&'static [u8]> {
    let saved = settings::agent_entries();
    saved.entries[..saved.count].iter().find_map(|&entry| {
        // SAFETY: a C string of the process's initial environment, never freed.
        let entry = unsafe { CStr::from_ptr(entry) }.to_bytes();
        let value = entry.strip_prefix(b"LD_PRELOAD=")?;
        let first = value.split(|&b| b == b':' || b == b' ').next()?;
        (!first.is_empty()).then_some(first)
    })
}

/// The entries of a `NULL`-terminated environment array, as byte strings.
///
/// # Safety
/// `envp` must be null or a valid `NULL`-terminated array of C strings.
unsafe fn entries(
    envp: *const *const c_char,
) -> impl Iterator<Item = (*const c_char, &'static [u8])> {
    let mut i = 0;
    core::iter::from_fn(move || {
        if envp.is_null() {
            return None;
        }
        // SAFETY: the caller's promise; `i` stays within the array up to its NULL.
        let entry = unsafe { *envp.add(i) };
        if entry.is_null() {
            return None;
        }
        i += 1;
        // SAFETY: as above: a C string. ('static is the caller's to uphold for the borrow.)
        Some((entry, unsafe { CStr::from_ptr(entry) }.to_bytes()))
    })
}

/// With `--follow-children`, an environment for a child that `envp` would start without the
/// agent's variables (or `None`: `envp` has them all, or children are not followed).
///
/// # Safety
/// `envp` must be null or a valid `NULL`-terminated array of C strings.
pub unsafe fn environment_for_child(envp: *const *const c_char) -> Option<ChildEnvironment> {
    // (A vfork child may build one too: it only reads the settings and maps memory.)
    if !following() || !crate::activation::recording() {
        return None;
    }
    let agent = agent_path()?;
    let saved = settings::agent_entries();
    let ours: &[*const c_char] = &saved.entries[..saved.count];
    let is_ours = |entry: &[u8]| {
        entry.starts_with(names::PREFIX.as_bytes()) || entry.starts_with(b"LD_PRELOAD=")
    };
    // What `envp` has: its LD_PRELOAD's value, and whether every agent variable is there.
    let mut preload: Option<&[u8]> = None;
    let mut count = 0;
    let mut has_all = true;
    // SAFETY: the caller's promise about `envp`.
    for (_, entry) in unsafe { entries(envp) } {
        count += 1;
        if let Some(value) = entry.strip_prefix(b"LD_PRELOAD=") {
            preload = Some(value);
        }
    }
    for &saved_entry in ours {
        // SAFETY: a C string of the process's initial environment.
        let saved_entry = unsafe { CStr::from_ptr(saved_entry) }.to_bytes();
        if saved_entry.starts_with(b"LD_PRELOAD=") {
            continue;
        }
        // SAFETY: as above.
        if !unsafe { entries(envp) }.any(|(_, e)| e == saved_entry) {
            has_all = false;
        }
    }
    let preload_has_agent =
        preload.is_some_and(|v| v.split(|&b| b == b':' || b == b' ').any(|p| p == agent));
    if has_all && preload_has_agent {
        return None;
    }
    // The new array (the program's entries but its LD_PRELOAD and agent variables, then the
    // agent's, then LD_PRELOAD with the agent first), followed by the new LD_PRELOAD string.
    let slots = count + ours.len() + 2;
    let preload_len = 11 + agent.len() + preload.map_or(0, |v| v.len() + 1) + 1;
    let len = slots * 8 + preload_len;
    let base = sys::map_anonymous(len, false);
    if base.is_null() {
        return None;
    }
    let array = base as *mut *const c_char;
    // SAFETY: `base` is a fresh mapping of `len` bytes: `slots` pointers, then the string.
    unsafe {
        let text = core::slice::from_raw_parts_mut(base.add(slots * 8), preload_len);
        let mut at = 0;
        for part in [&b"LD_PRELOAD="[..], agent] {
            text[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        if let Some(value) = preload.filter(|v| !v.is_empty()) {
            text[at] = b':';
            text[at + 1..at + 1 + value.len()].copy_from_slice(value);
            at += 1 + value.len();
        }
        text[at] = 0;
        let mut n = 0;
        for (pointer, entry) in entries(envp) {
            if !is_ours(entry) {
                *array.add(n) = pointer;
                n += 1;
            }
        }
        for &saved_entry in ours {
            if !CStr::from_ptr(saved_entry)
                .to_bytes()
                .starts_with(b"LD_PRELOAD=")
            {
                *array.add(n) = saved_entry;
                n += 1;
            }
        }
        *array.add(n) = text.as_ptr() as *const c_char;
        *array.add(n + 1) = core::ptr::null();
    }
    Some(ChildEnvironment {
        base,
        len,
        envp: array as *const *const c_char,
    })
}

/// An `exec` in progress, recorded in the profile: the writer stays locked (see
/// `ProfileWriter::exec_starting`) and the thread in agent code until [`exec_failed`].
pub struct ExecInProgress {
    guard: WriterGuard<'static>,
    _section: AgentSection,
}

/// This image is about to call `exec` (`call`) of `path` with `argv`: record it.
///
/// # Safety
/// `path` must be null or a C string, and `argv` null or a `NULL`-terminated array of them.
pub unsafe fn exec_starting(
    call: ExecCall,
    path: *const c_char,
    argv: *const *const c_char,
) -> Option<ExecInProgress> {
    if !crate::activation::recording() {
        return None;
    }
    if !crate::activation::is_owner_process() {
        // A vfork child, in its parent's memory: it must not touch the parent's writer. It
        // leaves the record where the parent's writer finds it.
        if !path.is_null() {
            // SAFETY: the caller's promise.
            note_vfork_exec(unsafe { CStr::from_ptr(path) }.to_bytes());
        }
        return None;
    }
    let section = AgentSection::enter()?;
    let path = if path.is_null() {
        &b""[..]
    } else {
        // SAFETY: the caller's promise.
        unsafe { CStr::from_ptr(path) }.to_bytes()
    };
    // SAFETY: the caller's promise about `argv`.
    let mut args = unsafe { entries(argv) }.map(|(_, arg)| arg);
    let guard =
        crate::writer::WRITER.exec_starting(crate::activation::now_ns(), call, path, &mut args);
    Some(ExecInProgress {
        guard,
        _section: section,
    })
}

/// The `exec` recorded by [`exec_starting`] returned: it failed with `errno`.
pub fn exec_failed(exec: Option<ExecInProgress>, errno: i32) {
    if let Some(exec) = exec {
        crate::writer::WRITER.exec_failed(exec.guard, crate::activation::now_ns(), errno);
    }
}

/// This image started a process (`pid`, 0 if unknown) with `program` (a path or a shell
/// command; null for `fork`): record it.
///
/// # Safety
/// `program` must be null or a C string.
pub unsafe fn spawned(how: SpawnHow, pid: i32, program: *const c_char) {
    if !recording_here() {
        return;
    }
    // Not from inside agent code (a signal handler that interrupted it): the writer's lock
    // may be held by the interrupted code.
    let Some(_section) = AgentSection::enter() else {
        return;
    };
    let program = if program.is_null() {
        &b""[..]
    } else {
        // SAFETY: the caller's promise.
        unsafe { CStr::from_ptr(program) }.to_bytes()
    };
    crate::writer::WRITER.spawned(crate::activation::now_ns(), how, pid.max(0) as u32, program);
}

/// The process is about to change its effective user or group to `uid` or `gid` (`None`:
/// unchanged): keep its profile writable (see `ProfileWriter::before_credentials_change`).
pub fn before_credentials_change(uid: Option<u32>, gid: Option<u32>) {
    if !recording_here() {
        return;
    }
    let Some(_section) = AgentSection::enter() else {
        return;
    };
    crate::writer::WRITER.before_credentials_change(uid, gid);
}

/// Programs executed by `vfork` children, waiting for the parent's writer to record them: a
/// child made by `vfork` runs in its parent's memory until it executes, so it writes here,
/// with atomics only (its parent is suspended; the parent's other threads may run).
struct PendingExec {
    /// 0 free, 1 being written, 2 ready.
    state: core::sync::atomic::AtomicU32,
    pid: core::sync::atomic::AtomicU32,
    len: core::sync::atomic::AtomicU32,
    path: core::cell::UnsafeCell<[u8; PENDING_PATH_LEN]>,
}

// SAFETY: `path` is written only by the slot's claimer (state 0 -> 1) and read only once the
// state is 2 (published with Release, read with Acquire).
unsafe impl Sync for PendingExec {}

const PENDING_SLOTS: usize = 32;
const PENDING_PATH_LEN: usize = 256;

#[allow(clippy::declare_interior_mutable_const)]
const FREE_SLOT: PendingExec = PendingExec {
    state: core::sync::atomic::AtomicU32::new(0),
    pid: core::sync::atomic::AtomicU32::new(0),
    len: core::sync::atomic::AtomicU32::new(0),
    path: core::cell::UnsafeCell::new([0; PENDING_PATH_LEN]),
};

static PENDING: [PendingExec; PENDING_SLOTS] = [FREE_SLOT; PENDING_SLOTS];

fn note_vfork_exec(path: &[u8]) {
    use core::sync::atomic::Ordering;
    for slot in &PENDING {
        if slot
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let len = path.len().min(PENDING_PATH_LEN);
            // SAFETY: the slot is ours (state 1) until it is published below.
            unsafe { (&mut *slot.path.get())[..len].copy_from_slice(&path[..len]) };
            slot.len.store(len as u32, Ordering::Relaxed);
            slot.pid.store(sys::getpid() as u32, Ordering::Relaxed);
            slot.state.store(2, Ordering::Release);
            return;
        }
    }
    // Every slot is waiting for the writer: this one is not recorded, and the report says so.
    crate::degraded::note(crate::degraded::VFORK_EXECS_DROPPED);
}

/// Call `f(pid, program)` for every program a `vfork` child executed since the last call.
pub fn drain_vfork_execs(mut f: impl FnMut(u32, &[u8])) {
    use core::sync::atomic::Ordering;
    for slot in &PENDING {
        if slot.state.load(Ordering::Acquire) == 2 {
            let len = slot.len.load(Ordering::Relaxed) as usize;
            // SAFETY: state 2: the slot's writer is done, and only this function (under the
            // writer's lock) frees it.
            let path = unsafe { &(&*slot.path.get())[..len] };
            f(slot.pid.load(Ordering::Relaxed), path);
            slot.state.store(0, Ordering::Release);
        }
    }
}

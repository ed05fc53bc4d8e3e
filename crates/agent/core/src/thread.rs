//! Per-thread state, kept in glibc's thread control block.
//!
//! Why not `thread_local!`: in a shared library Rust uses the general-dynamic TLS model, whose
//! accesses call `__tls_get_addr`, which after a `dlopen` may call `malloc` (re-entering the
//! agent). Why not initial-exec ELF TLS either: any TLS segment gives the agent a slot in every
//! thread's DTV, so each thread's DTV — a heap block glibc allocates, which memcheck reports as
//! possibly lost for threads alive at exit — would be 16 bytes larger than under memcheck.
//!
//! So the state lives in `tcbhead_t.__glibc_unused2`, 512 bytes of every thread's TCB that
//! glibc (2.26 and later, on x86-64) keeps only so that the structure's size does not change.
//! It is addressed from `%fs` like initial-exec TLS: one instruction, valid from the process's
//! first instruction. It is zero for a new thread, or holds the values of the exited thread whose
//! stack glibc reuses: the same stack bounds and a reusable unwind cache, so both are right.

use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Everything the agent keeps per thread. Zero is the initial state of every field.
#[repr(C)]
pub struct ThreadState {
    /// Depth of agent code on this thread's stack. Non-zero means: allocations made now are
    /// the agent's own (or libc's on its behalf) and are not tracked, and a stop request must
    /// wait until the agent code is done (it may hold a lock the scan needs). The low 16 bits
    /// count every agent section, the bits above the allocation hooks' among them (each adds
    /// [`HOOK_SECTION`]), so that an allocation made from inside a hook can be told apart and
    /// counted ([`ALLOCATIONS_IN_HOOKS`]) at no cost to the hook itself.
    pub depth: AtomicU32,
    /// A stop request arrived while `depth` was non-zero; honour it when leaving.
    pub stop_deferred: AtomicU32,
    /// This thread's unwinder cache, previous walk and stack bounds (null until its first
    /// stack capture).
    /// (Atomics with relaxed ordering throughout: plain loads and stores on x86_64, and every
    /// field can be shared with this thread's signal handlers without aliasing rules broken.)
    pub capture: AtomicPtr<crate::unwind::ThreadCapture>,
    /// This thread is the agent's writer thread.
    pub is_agent_thread: AtomicU32,
    /// This thread's stripe of the per-site counters, plus one (0: not assigned yet).
    pub stripe: AtomicU32,
    /// Sampling: bytes this thread may still allocate before the next sampled allocation.
    pub bytes_until_sample: AtomicI64,
    /// Sampling: this thread's random number generator state (0: not seeded yet).
    pub random_state: AtomicU64,
    /// A block `realloc` is moving: out of the live table, its contents not yet in a tracked
    /// block. A live scan that stops this thread meanwhile scans it as a root (0: none).
    pub moving_block: AtomicU64,
    /// Its size.
    pub moving_block_size: AtomicU64,
    /// The thread's own stack, `[stack_low, stack_high)` (both 0 until known): recorded by the
    /// agent's start routine of threads the program creates (`threads.rs`), and for the main
    /// thread at its first stack walk. Never found from inside `malloc`: glibc's
    /// `pthread_getattr_np` allocates while it holds the thread's own lock, and asking it again
    /// from that allocation would wait on that lock forever (the JVM's threads do just that).
    pub stack_low: AtomicU64,
    /// See `stack_low`.
    pub stack_high: AtomicU64,
}

/// Offset of the state in the TCB: the last 128 bytes of `__glibc_unused2` (offsets 128..640
/// of glibc 2.36's `tcbhead_t`).
const STATE_OFFSET: usize = 512;
const _: () = assert!(core::mem::size_of::<ThreadState>() <= 128);

/// The calling thread's state.
#[inline(always)]
pub fn current() -> &'static ThreadState {
    let tcb: usize;
    // SAFETY: `%fs:0` holds the thread's TCB address (`tcbhead_t.tcb`, the x86-64 TLS ABI);
    // reading it touches nothing else.
    unsafe {
        core::arch::asm!(
            "mov {tcb}, qword ptr fs:[0]",
            tcb = out(reg) tcb,
            options(nostack, readonly, pure, preserves_flags),
        );
    }
    // SAFETY: the 64 bytes at STATE_OFFSET lie inside this thread's tcbhead_t, in a region
    // glibc never uses; every field is an atomic, valid for any bit pattern.
    unsafe { &*((tcb + STATE_OFFSET) as *const ThreadState) }
}

/// What an allocation hook's section adds to [`ThreadState::depth`] beyond its count of one.
pub const HOOK_SECTION: u32 = 1 << 16;

/// Allocations that reached the agent's `malloc` family while the thread was inside an
/// allocation hook (the hook, or something it called, allocated through the program's
/// allocator). The hooks must never allocate: this stays 0 (checked by
/// `crates/cli/tests/agent_hooks.rs`).
pub static ALLOCATIONS_IN_HOOKS: AtomicU64 = AtomicU64::new(0);

/// Allocations from the agent's own heap (glibc's allocator called directly, see the cdylib's
/// `LibcAllocator`) made while the thread was inside an allocation hook. Only a module-table
/// refresh after the stack walk met code loaded since the last refresh (a `dlopen`) does so.
pub static AGENT_HEAP_ALLOCATIONS_IN_HOOKS: AtomicU64 = AtomicU64::new(0);

/// Is the calling thread inside an allocation hook?
pub fn inside_hook() -> bool {
    current().depth.load(Ordering::Relaxed) >= HOOK_SECTION
}

/// The agent's heap is about to allocate: count it if a hook is doing so.
pub fn note_agent_heap_allocation() {
    if inside_hook() {
        AGENT_HEAP_ALLOCATIONS_IN_HOOKS.fetch_add(1, Ordering::Relaxed);
    }
}

#[cold]
#[inline(never)]
fn note_allocation_in_hook() {
    ALLOCATIONS_IN_HOOKS.fetch_add(1, Ordering::Relaxed);
}

/// Marks the calling thread as running agent code for as long as the guard lives.
pub struct AgentSection {
    outermost: bool,
    /// What the section added to the depth (1, or 1 + [`HOOK_SECTION`] for a hook's).
    weight: u32,
}

impl AgentSection {
    /// Enter agent code. Returns `None` if the thread is already inside the agent (a re-entry,
    /// such as libc's `malloc` called by something the agent called): the caller must then
    /// pass the call through untracked.
    #[inline(always)]
    pub fn enter() -> Option<AgentSection> {
        let state = current();
        if state.depth.load(Ordering::Relaxed) != 0 {
            return None;
        }
        state.depth.store(1, Ordering::Relaxed);
        // Order the store before any lock the section takes, as seen by a signal handler on
        // this same thread (a compiler fence is enough: the handler runs on this thread).
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        Some(AgentSection {
            outermost: true,
            weight: 1,
        })
    }

    /// [`AgentSection::enter`] for an allocation hook (the hot path of `malloc` and the
    /// functions that allocate). A re-entry from inside a hook is counted in
    /// [`ALLOCATIONS_IN_HOOKS`].
    #[inline(always)]
    pub fn enter_hook() -> Option<AgentSection> {
        let state = current();
        let depth = state.depth.load(Ordering::Relaxed);
        if depth != 0 {
            if depth >= HOOK_SECTION {
                note_allocation_in_hook();
            }
            return None;
        }
        state.depth.store(1 + HOOK_SECTION, Ordering::Relaxed);
        // As in `enter`.
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        Some(AgentSection {
            outermost: true,
            weight: 1 + HOOK_SECTION,
        })
    }

    /// Enter agent code even if already inside (used by exit paths, which must run).
    pub fn enter_nested() -> AgentSection {
        Self::enter_nested_weighing(1)
    }

    /// [`AgentSection::enter_nested`] for the hooks of `free` and `realloc`.
    #[inline(always)]
    pub fn enter_nested_hook() -> AgentSection {
        Self::enter_nested_weighing(1 + HOOK_SECTION)
    }

    #[inline(always)]
    fn enter_nested_weighing(weight: u32) -> AgentSection {
        let state = current();
        let outermost = state.depth.fetch_add(weight, Ordering::Relaxed) == 0;
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        AgentSection { outermost, weight }
    }
}

impl AgentSection {
    /// Enter agent code for a span that no guard can cover (from `fork`'s prepare handler to
    /// its parent or child handler): end it with [`AgentSection::leave_span`].
    pub fn enter_span() {
        core::mem::forget(AgentSection::enter_nested());
    }

    /// End a span begun by [`AgentSection::enter_span`].
    pub fn leave_span() {
        let depth = current().depth.load(Ordering::Relaxed);
        if depth > 0 {
            drop(AgentSection {
                outermost: depth == 1,
                weight: 1,
            });
        }
    }
}

impl Drop for AgentSection {
    #[inline(always)]
    fn drop(&mut self) {
        let state = current();
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        state.depth.fetch_sub(self.weight, Ordering::Relaxed);
        if self.outermost && state.stop_deferred.load(Ordering::Relaxed) != 0 {
            state.stop_deferred.store(0, Ordering::Relaxed);
            crate::stop::stop_now_deferred();
        }
    }
}

/// Record the calling thread's own stack bounds (see [`ThreadState::stack_low`]), from glibc.
/// Call only where the thread holds none of glibc's locks (a thread's start, not `malloc`).
pub fn record_own_stack() {
    let _section = AgentSection::enter_nested(); // pthread_getattr_np allocates
    let bounds = crate::sys::own_thread_stack();
    if let Some((low, high)) = bounds {
        let state = current();
        state.stack_high.store(high, Ordering::Relaxed);
        state.stack_low.store(low, Ordering::Relaxed);
    }
}

/// A thread's start routine, as `pthread_create` takes it.
pub type StartRoutine = extern "C" fn(*mut libc::c_void) -> *mut libc::c_void;

/// What the agent's start routine of a thread starts: the program's routine and argument.
///
/// These live in agent memory, never in glibc's heap: glibc keeps the argument pointer (in
/// its `struct pthread`, which lies in the thread's stack, a root), and a glibc block freed
/// by the new thread would soon be another block (the thread's first allocation of that size
/// comes from the same cache): a pointer to the start of it, from a root, forever.
#[repr(C)]
pub struct Start {
    /// The program's routine.
    pub routine: StartRoutine,
    /// Its argument.
    pub arg: *mut libc::c_void,
    /// The next free entry (while free).
    next: *mut Start,
}

/// Free [`Start`] entries, in slabs the agent maps (and never unmaps).
pub struct StartPool {
    /// The head of the free list (null: empty).
    free: crate::sync::SpinLock<FreeStarts>,
}

/// The free list of a [`StartPool`].
struct FreeStarts(*mut Start);

// SAFETY: the entries are agent mappings, tied to no thread; the list is only reached through
// the pool's lock.
unsafe impl Send for FreeStarts {}

/// The process's pool of [`Start`] entries.
pub static STARTS: StartPool = StartPool {
    free: crate::sync::SpinLock::new(FreeStarts(core::ptr::null_mut())),
};

/// Entries per slab (64 KiB).
const STARTS_PER_SLAB: usize = 65536 / core::mem::size_of::<Start>();

impl StartPool {
    /// An entry holding `routine` and `arg` (null if no memory could be mapped). Call inside an
    /// agent section.
    pub fn take(&self, routine: StartRoutine, arg: *mut libc::c_void) -> *mut Start {
        let mut free = self.free.lock();
        // SAFETY: the lock is held (the guard); entries on the free list are ours and unused; a
        // new slab is a fresh mapping of STARTS_PER_SLAB entries.
        unsafe {
            if free.0.is_null() {
                let slab = crate::sys::map_anonymous(
                    STARTS_PER_SLAB * core::mem::size_of::<Start>(),
                    false,
                ) as *mut Start;
                if slab.is_null() {
                    return slab;
                }
                for i in 0..STARTS_PER_SLAB {
                    (*slab.add(i)).next = if i + 1 < STARTS_PER_SLAB {
                        slab.add(i + 1)
                    } else {
                        core::ptr::null_mut()
                    };
                }
                free.0 = slab;
            }
            let entry = free.0;
            free.0 = (*entry).next;
            (*entry).routine = routine;
            (*entry).arg = arg;
            entry
        }
    }

    /// Give back an entry from [`StartPool::take`] once it is no longer used. Call inside an
    /// agent section.
    ///
    /// # Safety
    /// `entry` must come from [`StartPool::take`], be given back once, and not be used after.
    pub unsafe fn give_back(&self, entry: *mut Start) {
        let mut free = self.free.lock();
        // SAFETY: `entry` came from `take` and is no longer used (the caller's promise).
        unsafe { (*entry).next = free.0 };
        free.0 = entry;
    }

    /// Take the lock before `fork`, so that the child gets a consistent free list.
    pub fn lock_for_fork(&self) {
        self.free.lock_for_fork();
    }

    /// Release it in the parent after `fork`.
    ///
    /// # Safety
    /// The calling thread took it with [`StartPool::lock_for_fork`].
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller's promise.
        unsafe { self.free.unlock_after_fork() };
    }

    /// Release it in the child after `fork`.
    ///
    /// # Safety
    /// Only in the child of a `fork` whose parent called [`StartPool::lock_for_fork`].
    pub unsafe fn reset_in_child(&self) {
        // SAFETY: the caller's promise: the list is whole.
        unsafe { self.free.reset_in_child() };
    }
}

//! Per-thread state, in initial-exec thread-local storage.
//!
//! Why not `thread_local!`: in a shared library Rust uses the general-dynamic TLS model, whose
//! accesses call `__tls_get_addr`. After a `dlopen` of a library with TLS, that function may
//! call `malloc` to grow the thread's vector of TLS blocks, which re-enters our `malloc`, which
//! calls `__tls_get_addr` again. Initial-exec TLS is a fixed offset from `%fs`, needs no call,
//! and is valid from the process's first instruction, because the agent is preloaded and so
//! part of the static TLS block. The block is declared in assembly because stable Rust has no
//! `#[thread_local]` attribute with a chosen model.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Everything the agent keeps per thread. Zero is the initial state of every field.
#[repr(C)]
pub struct ThreadState {
    /// Depth of agent code on this thread's stack. Non-zero means: allocations made now are
    /// the agent's own (or libc's on its behalf) and are not tracked, and a stop request must
    /// wait until the agent code is done (it may hold a lock the scan needs).
    pub depth: AtomicU32,
    /// A stop request arrived while `depth` was non-zero; honour it when leaving.
    pub stop_deferred: AtomicU32,
    /// Highest address of this thread's stack that the unwinder may read (0 = not known yet).
    /// (Atomics with relaxed ordering throughout: plain loads and stores on x86_64, and every
    /// field can be shared with this thread's signal handlers without aliasing rules broken.)
    pub stack_high: AtomicU64,
    /// This thread's unwinder cache (null until its first stack capture).
    pub unwind_cache: AtomicPtr<crate::unwind::UnwindCache>,
    /// This thread is the agent's writer thread.
    pub is_agent_thread: AtomicU32,
    _reserved: [u32; 3],
}

const STATE_SIZE: usize = core::mem::size_of::<ThreadState>();

core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".balign 64",
    ".globl leakscope_thread_state",
    ".hidden leakscope_thread_state",
    ".type leakscope_thread_state,@object",
    ".size leakscope_thread_state, {size}",
    "leakscope_thread_state:",
    ".zero {size}",
    ".popsection",
    size = const STATE_SIZE,
);

/// The calling thread's state.
#[inline(always)]
pub fn current() -> &'static ThreadState {
    let ptr: *const ThreadState;
    // SAFETY: reads the thread pointer and adds the link-time offset of our TLS block, which
    // is how initial-exec TLS is addressed on x86_64; it touches no memory but the GOT slot.
    unsafe {
        core::arch::asm!(
            "mov {p}, qword ptr fs:[0]",
            "add {p}, qword ptr [rip + leakscope_thread_state@GOTTPOFF]",
            p = out(reg) ptr,
            options(nostack, readonly, pure),
        );
        &*ptr
    }
}

/// Marks the calling thread as running agent code for as long as the guard lives.
pub struct AgentSection {
    outermost: bool,
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
        Some(AgentSection { outermost: true })
    }

    /// Enter agent code even if already inside (used by exit paths, which must run).
    pub fn enter_nested() -> AgentSection {
        let state = current();
        let outermost = state.depth.fetch_add(1, Ordering::Relaxed) == 0;
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        AgentSection { outermost }
    }
}

impl Drop for AgentSection {
    #[inline(always)]
    fn drop(&mut self) {
        let state = current();
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        state.depth.fetch_sub(1, Ordering::Relaxed);
        if self.outermost && state.stop_deferred.load(Ordering::Relaxed) != 0 {
            state.stop_deferred.store(0, Ordering::Relaxed);
            crate::stop::stop_now_deferred();
        }
    }
}

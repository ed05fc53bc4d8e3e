//! What the test that the allocation hooks never allocate reads
//! (`crates/cli/tests/agent_hooks.rs`): two exported functions a program run under the agent
//! finds with `dlsym`. They cost nothing unless called.
//!
//! The design: every allocation hook enters its agent section with
//! `AgentSection::enter_hook` (or `enter_nested_hook`), which marks the thread's depth. An
//! allocation that reaches the agent's `malloc` family while a hook's mark is set was made by
//! the hook (or by libc on its behalf): the re-entry is counted
//! (`thread::ALLOCATIONS_IN_HOOKS`). Allocations from the agent's own heap, which bypass the
//! `malloc` symbol, are counted at the heap (`thread::AGENT_HEAP_ALLOCATIONS_IN_HOOKS`). The
//! self-check proves the counters see an allocation made from inside a hook's section, so that
//! a zero after a workload means something.

use core::sync::atomic::Ordering;

use leakscope_agent_core::thread::{
    AgentSection, AGENT_HEAP_ALLOCATIONS_IN_HOOKS, ALLOCATIONS_IN_HOOKS,
};

/// The counters: allocations through the program's allocator, and from the agent's own heap,
/// made from inside an allocation hook since the process started.
///
/// # Safety
/// Both pointers must be valid for a write of a `u64`.
#[no_mangle]
pub unsafe extern "C" fn leakscope_test_allocations_in_hooks(
    through_malloc: *mut u64,
    from_agent_heap: *mut u64,
) {
    // SAFETY: the caller's promise.
    unsafe {
        *through_malloc = ALLOCATIONS_IN_HOOKS.load(Ordering::Relaxed);
        *from_agent_heap = AGENT_HEAP_ALLOCATIONS_IN_HOOKS.load(Ordering::Relaxed);
    }
}

/// The self-check: inside a hook's section, allocate once through `malloc` (the interposed
/// symbol, as libc code called by a hook would) and once from the agent's heap, then free
/// both. Each counter must go up by exactly one.
#[no_mangle]
pub extern "C" fn leakscope_test_allocate_inside_a_hook() {
    let _section = AgentSection::enter_nested_hook();
    // SAFETY: a plain allocation and its free.
    unsafe {
        let block = libc::malloc(24);
        libc::free(block);
    }
    let boxed = alloc::boxed::Box::new([0u8; 24]);
    drop(core::hint::black_box(boxed));
}

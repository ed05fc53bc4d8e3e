//! Signal contexts on an alternate stack.
//!
//! A signal handler that runs on an alternate stack (`sigaltstack`, `SA_ONSTACK`: crash
//! handlers, Rust's stack-overflow handler) has the thread's real stack pointer only in the
//! context the kernel saved when it switched stacks. The scan must read the thread's stack
//! from there: anything else would scan the whole stack mapping, dead frames included.
//!
//! The kernel lays that context (a `ucontext_t`) out near the top of the alternate stack, and
//! saves the alternate stack's own settings in its `uc_stack`: the alternate stack's base and
//! size, with `SS_ONSTACK` clear for the first signal that switched to it (a signal delivered
//! while already on it has `SS_ONSTACK` set). So the outermost context is found by those
//! values, and checked: its `uc_link` is null and its stack pointer lies in the thread's own
//! stack.

use crate::stop::RECORDED_REGISTERS;
use crate::sys;

/// The thread's state where it left its own stack for the alternate one.
pub struct OuterContext {
    /// Its stack pointer, on the thread's own stack.
    pub sp: u64,
    /// The parts of the alternate stack that are no roots: below the interrupted stack pointer
    /// (the frames of the handler that asks, the agent's own, with the scan's locals, and space
    /// no frame uses), and the first signal frame (the saved context, whose general registers
    /// are in `registers`, the siginfo and the saved vector registers, which memcheck does not
    /// scan either) up to the top.
    pub not_roots: [(u64, u64); 2],
    /// Its general-purpose registers and `rip`, as `gregs` orders them.
    pub registers: [u64; RECORDED_REGISTERS],
}

// Offsets in the x86-64 `ucontext_t` (the kernel's and glibc's agree on its first part):
// uc_flags, uc_link, uc_stack { ss_sp, ss_flags (int, padded), ss_size }, uc_mcontext.gregs.
const UC_LINK: usize = 8;
const UC_STACK_SP: usize = 16;
const UC_STACK_FLAGS: usize = 24;
const UC_STACK_SIZE: usize = 32;
const UC_GREGS: usize = 40;
const REG_RSP: usize = 15;

/// If the calling thread runs on its alternate stack and `sp` (the stack pointer a signal
/// interrupted) lies there, the context where the thread left its own stack.
pub fn outermost_on_own_stack(sp: u64) -> Option<OuterContext> {
    let _errno = sys::ErrnoGuard::new();
    let (base, size) = sys::current_alternate_stack()?;
    let top = base.checked_add(size)?;
    if !(base <= sp && sp < top) {
        return None;
    }
    let (own_low, own_high) = crate::unwind::own_stack();
    // From the top down: the kernel puts the first context highest.
    let mut at = (top - 8) & !7;
    let lowest = sp.max(base);
    let mut words = [0u64; (UC_GREGS / 8) + RECORDED_REGISTERS];
    while at >= lowest + UC_STACK_SIZE as u64 {
        let candidate = at - UC_STACK_SIZE as u64;
        at -= 8;
        let mut probe = [0u64; 1];
        if sys::read_words(candidate + UC_STACK_SP as u64, &mut probe) != 1 || probe[0] != base {
            continue;
        }
        if sys::read_words(candidate, &mut words) != words.len() {
            continue;
        }
        let flags = words[UC_STACK_FLAGS / 8] as u32 as i32;
        if words[UC_LINK / 8] != 0
            || words[UC_STACK_SIZE / 8] != size
            || flags & libc::SS_ONSTACK != 0
        {
            continue;
        }
        let mut registers = [0u64; RECORDED_REGISTERS];
        registers.copy_from_slice(&words[UC_GREGS / 8..]);
        let outer_sp = registers[REG_RSP];
        if own_low <= outer_sp && outer_sp < own_high {
            return Some(OuterContext {
                sp: outer_sp,
                not_roots: [(base, sp), (candidate.saturating_sub(8), top)],
                registers,
            });
        }
    }
    None
}

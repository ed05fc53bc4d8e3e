//! Wiping the dead part of the stack.
//!
//! memcheck does not count a pointer left in a popped stack frame: when the stack grows over
//! that memory again, memcheck marks it undefined until it is written. A conservative scan
//! reading raw memory would see the stale pointer and call a lost block reachable. So when
//! `main` returns, and when the program calls `exit` or `quick_exit`, the agent zeroes the
//! stack below the caller's frame ([`wipe_dead_stack`]): the frames the exit path then
//! builds there hold only what that path wrote.

/// Zero the calling thread's stack from the bottom of its mapping up to the return address
/// of this call, then clear the scratch registers; does nothing when the agent is not
/// watching or the thread runs on a stack not its own ([`dead_stack_low`]). For naked callers (the `exit` and `quick_exit` hooks, the `main` trampoline)
/// whose own frames hold nothing but what they pushed.
///
/// Everything below the return address is dead, including the frames of the code that
/// found the mapping: a Rust function that zeroed below its own stack pointer left its own
/// frame as it was, and that frame's unwritten slots (padding, spill slots it did not need)
/// still held what earlier calls at that depth had left there, such as the address an
/// allocation hook had just returned; the exit path's frames, built over it, kept those
/// words, and the scan found the program's last pointer to a block it had dropped. The
/// scratch registers are cleared for the same reason: a callee may push one to align its
/// stack.
///
/// # Safety
/// Only for callers that keep nothing of their own below their stack pointer (no red zone);
/// it clobbers every caller-saved general register.
#[unsafe(naked)]
pub unsafe extern "C" fn wipe_dead_stack() {
    // SAFETY: calls `dead_stack_low` with the stack aligned as the C ABI wants (entry rsp is
    // 8 mod 16; one more word makes it 0), then zeroes `[low, rsp)`: with rsp pointing at
    // this call's return address, every byte there lies below every live frame. A signal
    // handler that interrupts the `rep stosb` runs below rsp and returns before it resumes,
    // so its frame is dead too. Only caller-saved registers are written; the direction flag
    // is clear at any call (`cld` restates it).
    core::arch::naked_asm!(
        ".cfi_startproc",
        "sub rsp, 8",
        ".cfi_adjust_cfa_offset 8",
        "call {low}",
        "add rsp, 8",
        ".cfi_adjust_cfa_offset -8",
        "mov rdi, rax",
        "mov rcx, rsp",
        "test rdi, rdi",
        "jz 2f",
        "sub rcx, rdi",
        "jbe 2f",
        "xor eax, eax",
        "cld",
        "rep stosb",
        "2:",
        "xor eax, eax",
        "xor ecx, ecx",
        "xor edx, edx",
        "xor esi, esi",
        "xor edi, edi",
        "xor r8d, r8d",
        "xor r9d, r9d",
        "xor r10d, r10d",
        "xor r11d, r11d",
        "ret",
        ".cfi_endproc",
        low = sym dead_stack_low,
    )
}

/// The lowest address of the calling thread's own stack below the stack pointer (the bottom
/// of its mapping, or of the bounds the thread was started with, whichever is higher), or 0
/// when there is nothing to wipe: the agent is not watching, the mapping was not found, or
/// the thread runs on a stack not its own. A coroutine's or fiber's stack is often a block
/// of the heap or part of a larger mapping: below its stack pointer lies the program's data.
extern "C" fn dead_stack_low() -> u64 {
    if !crate::is_active() {
        return 0;
    }
    let sp: u64;
    // SAFETY: reads the stack pointer; touches no memory.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
    let (own_low, own_high) = crate::unwind::own_stack();
    if !(own_low < sp && sp < own_high) {
        return 0;
    }
    stack_mapping_low(sp).map_or(0, |low| low.max(own_low))
}

/// The lowest address of the mapping that holds `sp`, from `/proc/self/maps`.
fn stack_mapping_low(sp: u64) -> Option<u64> {
    const LEN: usize = 8 << 20;
    let buf = crate::sys::map_anonymous(LEN, true);
    if buf.is_null() {
        return None;
    }
    // SAFETY: our own fresh mapping of LEN bytes.
    let text = unsafe { core::slice::from_raw_parts_mut(buf, LEN) };
    let len = crate::sys::procfs::read_maps(text);
    let found = crate::sys::procfs::maps_entries(&text[..len])
        .find(|entry| entry.start <= sp && sp < entry.end)
        .map(|entry| entry.start);
    // SAFETY: mapped above, not used after this.
    unsafe { crate::sys::unmap(buf, LEN) };
    found
}

/// At the end of a thread other than the main one (its start routine returned, or it called
/// `pthread_exit`): zero its stack below the stack pointer, as memcheck no longer sees a
/// thread's stack once the thread is gone. Only pages already resident are written (the
/// untouched part of the stack reads as zeros anyway, and writing it would make it resident),
/// and the 512 bytes just below the stack pointer are left alone (this function's own calls
/// run there).
#[inline(never)]
pub fn zero_dead_thread_stack() {
    let _errno = crate::sys::ErrnoGuard::new();
    let sp: u64;
    // SAFETY: reads the stack pointer; touches no memory.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
    let Some(low) = thread_stack_low(sp) else {
        return;
    };
    let end = sp.saturating_sub(512) & !(crate::sys::PAGE as u64 - 1);
    let mut page = low & !(crate::sys::PAGE as u64 - 1);
    let mut resident = [0u8; 64];
    while page < end {
        let pages = (((end - page) / crate::sys::PAGE as u64) as usize).min(resident.len());
        // SAFETY: a page-aligned range of this thread's stack mapping.
        let known = unsafe { crate::sys::resident_pages(page, &mut resident[..pages]) };
        for (i, &flags) in resident[..pages].iter().enumerate() {
            if known && flags & 1 != 0 {
                // SAFETY: a resident page of this thread's own stack, wholly below its stack
                // pointer (and 512 bytes of margin): no live frame is there.
                unsafe {
                    core::ptr::write_bytes(
                        (page + (i * crate::sys::PAGE) as u64) as *mut u8,
                        0,
                        crate::sys::PAGE,
                    )
                };
            }
        }
        page += (pages * crate::sys::PAGE) as u64;
    }
}

/// The lowest address of the calling thread's own stack (`unwind::own_stack`: as recorded at
/// its start, never asked of glibc here, where `pthread_getattr_np` could wait on a lock), if
/// it holds `sp`.
fn thread_stack_low(sp: u64) -> Option<u64> {
    let (low, high) = crate::unwind::own_stack();
    (low < sp && sp < high).then_some(low)
}

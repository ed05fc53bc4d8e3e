//! Wiping the dead part of the stack.
//!
//! memcheck does not count a pointer left in a popped stack frame: when the stack grows over
//! that memory again, memcheck marks it undefined until it is written. A conservative scan
//! reading raw memory would see the stale pointer and call a lost block reachable. So when
//! `main` returns, and when the program calls `exit`, the agent zeroes the stack below the
//! stack pointer: the frames the exit path then builds there hold only what that path wrote.

/// Zero the calling thread's stack from the bottom of its mapping up to the stack pointer.
#[inline(never)]
pub fn zero_below_stack_pointer() {
    let sp: u64;
    // SAFETY: reads the stack pointer; touches no memory.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
    let Some(low) = stack_mapping_low(sp) else {
        return;
    };
    // SAFETY: zeroes `[low, rsp)`: memory of this thread's stack mapping below the current
    // stack pointer, which holds no live frame (a signal handler that interrupts the loop
    // runs and returns before the loop resumes, so its frame is dead too). The asm is not
    // `nostack`, so the compiler keeps nothing in the red zone across it.
    unsafe {
        core::arch::asm!(
            "mov rcx, rsp",
            "sub rcx, rdi",
            "jbe 2f",
            "cld",
            "rep stosb",
            "2:",
            inout("rdi") low => _,
            out("rcx") _,
            in("al") 0u8,
        );
    }
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

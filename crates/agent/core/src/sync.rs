//! The agent's lock. It spins briefly and then yield the CPU, because their critical
//! sections are a few hundred nanoseconds long and may not call anything that allocates or
//! blocks (no futex-based `std` mutex exists in `no_std`, and pthread mutexes cannot be taken
//! safely from every place the agent runs, such as signal handlers after `fork`).

use core::sync::atomic::{AtomicU32, Ordering};

/// A spin lock with yield back-off.
pub struct SpinLock {
    state: AtomicU32,
}

/// Releases the lock on drop.
pub struct SpinGuard<'a> {
    lock: &'a SpinLock,
}

impl SpinLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        SpinLock {
            state: AtomicU32::new(0),
        }
    }

    /// Take the lock, spinning and yielding until it is free.
    pub fn lock(&self) -> SpinGuard<'_> {
        self.lock_forever();
        SpinGuard { lock: self }
    }

    /// Take the lock without a guard (for `fork` handlers, which release it explicitly).
    pub fn lock_forever(&self) {
        let mut spins = 0u32;
        while self
            .state
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            backoff(&mut spins);
        }
    }

    /// Try for a bounded time (about 50 ms); `None` if the holder never let go. Used on paths
    /// that run while the holder may be stopped forever (fatal signals, the exit scan).
    pub fn try_lock_for_a_while(&self) -> Option<SpinGuard<'_>> {
        for attempt in 0..50_000u32 {
            if self
                .state
                .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(SpinGuard { lock: self });
            }
            if attempt > 100 {
                crate::sys::sleep_ns(1_000);
            }
        }
        None
    }

    /// Release unconditionally (after `fork` in the child, or to end `lock_forever`).
    pub fn force_unlock(&self) {
        self.state.store(0, Ordering::Release);
    }
}

impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.lock.state.store(0, Ordering::Release);
    }
}

fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        core::hint::spin_loop();
    } else {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

//! The agent's lock. It spins briefly and then yields the CPU, because its critical sections
//! are a few hundred nanoseconds long and may not call anything that allocates or blocks (no
//! futex-based `std` mutex exists in `no_std`, and pthread mutexes cannot be taken safely from
//! every place the agent runs, such as signal handlers after `fork`).
//!
//! [`SpinLock<T>`] owns the data it guards: the only ways to reach the `T` are a
//! [`SpinGuard`] (which holds the lock), and three `unsafe` doors whose contracts say why the
//! lock need not be held: [`SpinLock::get_unlocked`] (every other thread stopped),
//! [`SpinLock::unlock_after_fork`] (the end of [`SpinLock::lock_for_fork`]) and
//! [`SpinLock::reset_in_child`] (a forked child, where the holder does not exist).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

/// A spin lock with yield back-off, owning the `T` it guards.
pub struct SpinLock<T> {
    state: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard (which holds the lock, so one thread at a
// time) or through the unsafe doors, whose callers promise the same exclusion. Sending the value
// between threads that way is sound when `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: owning the lock is owning the value.
unsafe impl<T: Send> Send for SpinLock<T> {}

/// Holds the lock; derefs to the guarded value; releases the lock on drop.
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    /// An unlocked lock guarding `value`.
    pub const fn new(value: T) -> Self {
        SpinLock {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    #[inline(always)]
    fn try_acquire(&self) -> bool {
        self.state
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline(always)]
    fn acquire(&self) {
        let mut spins = 0u32;
        while !self.try_acquire() {
            backoff(&mut spins);
        }
    }

    /// Take the lock, spinning and yielding until it is free.
    #[inline(always)]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        self.acquire();
        SpinGuard { lock: self }
    }

    /// Try for a bounded time (50 ms, by the clock); `None` if the holder never let go. Used on
    /// paths that run while the holder may be stopped forever (fatal signals, the exit scan).
    /// The bound is a deadline, not a count of sleeps: a 1 µs sleep lasts the kernel's timer
    /// slack (about 50 µs), so 50,000 of them took seconds.
    pub fn try_lock_for_a_while(&self) -> Option<SpinGuard<'_, T>> {
        const PATIENCE_NS: u64 = 50_000_000;
        let mut deadline = None;
        let mut spins = 0u32;
        loop {
            if self.try_acquire() {
                return Some(SpinGuard { lock: self });
            }
            if spins < 100 {
                spins += 1;
                continue;
            }
            let now = crate::sys::monotonic_ns();
            if now >= *deadline.get_or_insert(now + PATIENCE_NS) {
                return None;
            }
            crate::sys::sleep_ns(1_000);
        }
    }

    /// Take the lock without a guard, before `fork`: it stays held across the `fork` (so that
    /// the child's copy of the value is consistent) until [`SpinLock::unlock_after_fork`] in
    /// the parent or [`SpinLock::reset_in_child`] in the child.
    pub fn lock_for_fork(&self) {
        self.acquire();
    }

    /// Release the lock taken by [`SpinLock::lock_for_fork`], in the parent.
    ///
    /// # Safety
    /// The calling thread took the lock with [`SpinLock::lock_for_fork`] and holds no guard of
    /// it.
    pub unsafe fn unlock_after_fork(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// In a forked child: release the lock whoever held it in the parent. The child has one
    /// thread, its copy of the holder does not exist, so no guard of this lock is alive.
    ///
    /// # Safety
    /// Only in the child of `fork` (before it starts threads), and the value must be
    /// consistent: the parent took the lock with [`SpinLock::lock_for_fork`] before forking,
    /// or the caller rebuilds the value after the reset.
    pub unsafe fn reset_in_child(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// The value, without the lock. For the exit scan, with every other thread stopped (a
    /// thread stopped forever may hold the lock, and waiting for it would hang the exit).
    ///
    /// # Safety
    /// No other thread may use the value for as long as the reference lives (they are stopped
    /// outside agent code, so none is inside a critical section of this lock), and the calling
    /// thread holds no guard of this lock.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_unlocked(&self) -> &mut T {
        // SAFETY: the caller guarantees exclusive use.
        unsafe { &mut *self.value.get() }
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other thread reaches the value.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.state.store(0, Ordering::Release);
    }
}

#[cold]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        core::hint::spin_loop();
    } else {
        crate::sys::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four threads add to one counter under the lock: no increment is lost.
    #[test]
    fn the_guard_excludes_other_threads() {
        static COUNTER: SpinLock<u64> = SpinLock::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..100_000 {
                        let mut count = COUNTER.lock();
                        // A read and a write apart: a lost update shows if two threads overlap.
                        let seen = *count;
                        *count = seen + 1;
                    }
                });
            }
        });
        assert_eq!(*COUNTER.lock(), 400_000);
    }

    #[test]
    fn try_lock_gives_up_while_held_and_succeeds_once_released() {
        let lock = SpinLock::new(7u32);
        let guard = lock.lock();
        let began = crate::sys::monotonic_ns();
        assert!(lock.try_lock_for_a_while().is_none());
        // It gives up after its 50 ms by the clock (a count of 1 µs sleeps took seconds);
        // the upper bound leaves room for a loaded machine.
        let waited_ms = (crate::sys::monotonic_ns() - began) / 1_000_000;
        assert!(
            (50..1_000).contains(&waited_ms),
            "gave up after {waited_ms} ms"
        );
        drop(guard);
        assert_eq!(lock.try_lock_for_a_while().map(|g| *g), Some(7));
    }

    #[test]
    fn lock_for_fork_holds_until_unlocked() {
        let lock = SpinLock::new(());
        lock.lock_for_fork();
        assert_eq!(lock.state.load(Ordering::Relaxed), 1);
        // SAFETY: this thread took it with lock_for_fork and holds no guard.
        unsafe { lock.unlock_after_fork() };
        assert_eq!(lock.state.load(Ordering::Relaxed), 0);
        assert!(lock.try_lock_for_a_while().is_some());
    }
}

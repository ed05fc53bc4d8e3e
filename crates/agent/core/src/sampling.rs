//! Poisson sampling by bytes, as tcmalloc, jemalloc and Go's pprof do it.
//!
//! Each thread counts down a budget of bytes drawn from an exponential distribution whose mean
//! is the sample rate; the allocation that exhausts it is sampled (it gets a stack) and a new
//! budget is drawn. An allocation of `size` bytes is then sampled with probability
//! `1 - exp(-size / rate)`, independently of every other, so a sampled block stands for
//! `1 / p` blocks and `size / p` bytes: summing that over the sampled blocks of a site gives
//! unbiased estimates of the site's bytes and blocks. Blocks that are not sampled are still
//! recorded (with stack 0), so the totals at exit stay exact.

use core::sync::atomic::Ordering;

use crate::thread::ThreadState;

/// Is this allocation of `size` bytes sampled? `rate` is the mean distance in bytes.
#[inline(always)]
pub fn should_sample(state: &ThreadState, size: usize, rate: u64) -> bool {
    let size = size.max(1) as i64;
    let mut budget = state.bytes_until_sample.load(Ordering::Relaxed);
    if state.random_state.load(Ordering::Relaxed) == 0 {
        // A new thread starts with a drawn budget, not an empty one (which would sample every
        // thread's first allocation).
        budget = next_interval(state, rate);
    }
    let remaining = budget - size;
    if remaining > 0 {
        state.bytes_until_sample.store(remaining, Ordering::Relaxed);
        return false;
    }
    // Sampled. Draw budgets until one covers what this allocation overshot (several if a huge
    // allocation spans more than one draw: the process stays Poisson).
    let mut budget = remaining;
    while budget <= 0 {
        budget += next_interval(state, rate);
    }
    state.bytes_until_sample.store(budget, Ordering::Relaxed);
    true
}

/// An exponentially distributed interval with mean `rate` bytes.
fn next_interval(state: &ThreadState, rate: u64) -> i64 {
    // xorshift64*: seeded per thread from its stack address and the clock.
    let mut x = state.random_state.load(Ordering::Relaxed);
    if x == 0 {
        x = (state as *const ThreadState as u64)
            ^ crate::sys::monotonic_ns()
            ^ 0x9e37_79b9_7f4a_7c15;
        x |= 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.random_state.store(x, Ordering::Relaxed);
    let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11; // 53 random bits
    let uniform = (bits as f64 + 1.0) / (1u64 << 53) as f64; // in (0, 1]
    let interval = -libm::log(uniform) * rate as f64;
    (interval as i64).max(1)
}

/// How many blocks a sampled block of `size` bytes stands for: `1 / p`, `p` its chance of being
/// sampled.
pub fn weight(size: u64, rate: u64) -> f64 {
    let probability = 1.0 - libm::exp(-(size.max(1) as f64) / rate as f64);
    if probability <= 0.0 {
        1.0
    } else {
        1.0 / probability
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For allocations of several sizes at a 4 KiB rate, the estimated count must land within
    /// 5% of the truth: with about 10 000 samples each, that is five standard errors.
    #[test]
    fn estimates_are_unbiased() {
        let rate = 4096;
        for &size in &[1u64, 64, 1000, 4096, 100_000] {
            // SAFETY: all fields of ThreadState are atomics, valid when zeroed.
            let state: ThreadState = unsafe { core::mem::zeroed() };
            let n = (10_000 * rate / size).max(10_000);
            let mut estimate = 0.0;
            for _ in 0..n {
                if should_sample(&state, size as usize, rate) {
                    estimate += weight(size, rate);
                }
            }
            let error = (estimate - n as f64).abs() / n as f64;
            assert!(
                error < 0.05,
                "size {size}: estimated {estimate} for {n} blocks"
            );
        }
    }
}

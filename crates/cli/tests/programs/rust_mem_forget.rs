// std::mem::forget on a Vec with 500 bytes of capacity: the block is definitely lost.
// The 544-byte still-reachable block is Rust's standard library's own: at start-up
// (std::rt::init -> stack_overflow::init -> thread_info::set_current_info) it records the main
// thread's guard-page information in a global BTreeMap, whose first leaf node (544 bytes for
// BTreeMap<usize, ThreadInfo> with rustc 1.95) stays reachable from a static until exit.
// It depends on the Rust version: the valgrind tests (a) say so when it changes.
// expect definitely_lost 500 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 544 1
// expect leak-function definitely_lost rust_mem_forget::forget_it
use std::hint::black_box;

#[inline(never)]
fn forget_it(n: usize) {
    let mut v: Vec<u8> = Vec::with_capacity(n);
    v.extend(std::iter::repeat_n(3u8, n));
    black_box(&v);
    std::mem::forget(v);
}

fn main() {
    forget_it(black_box(500));
}

// Box::leak: the returned &'static mut is dropped, so the 1000-byte block is definitely lost.
// The 544-byte still-reachable block is Rust's standard library's own: at start-up
// (std::rt::init -> stack_overflow::init -> thread_info::set_current_info) it records the main
// thread's guard-page information in a global BTreeMap, whose first leaf node (544 bytes for
// BTreeMap<usize, ThreadInfo> with rustc 1.95) stays reachable from a static until exit.
// It depends on the Rust version: the valgrind tests (a) say so when it changes.
// expect definitely_lost 1000 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 544 1
// expect leak-function definitely_lost rust_box_leak::leak_it
use std::hint::black_box;

#[inline(never)]
fn leak_it(n: usize) {
    let slice: &'static mut [u8] = Box::leak(vec![7u8; n].into_boxed_slice());
    black_box(&*slice);
}

fn main() {
    leak_it(black_box(1000));
}

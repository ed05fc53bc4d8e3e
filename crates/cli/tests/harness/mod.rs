//! The end-to-end harness: builds the fixture corpus, runs fixtures under memcheck and under
//! leakscope, and compares what they report with the fixtures' headers and with each other.

pub mod build;
pub mod check;
pub mod expect;
pub mod leakscope;
pub mod memcheck;
pub mod names;
pub mod observed;
pub mod process;
pub mod report;
pub mod valgrind;

/// Arguments of mixed types (`&str`, paths, `OsString`s) as one array of `OsString`s, for the
/// command lines the tests write out.
macro_rules! os_args {
    ($($arg:expr),* $(,)?) => {
        [$(::std::ffi::OsString::from(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$arg))),*]
    };
}
pub(crate) use os_args;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

/// Applies `f` to every item on as many threads as there are cores, keeping the order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    parallel_map_on(workers, items, f)
}

/// As [`parallel_map`], on `workers` threads whatever the number of cores (work that mostly
/// waits, such as programs that sleep, can use more threads than cores).
pub fn parallel_map_on<T: Sync, R: Send>(
    workers: usize,
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else {
                    break;
                };
                let result = f(item);
                results.lock().unwrap()[i] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

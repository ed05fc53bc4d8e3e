//! Live scans: a reachability scan while the program runs (`--scan-every`, or on request),
//! made on the writer thread.

use core::sync::atomic::{AtomicU32, Ordering};

use leakscope_format::{LiveScan, LiveScanOutcome, LiveScanTrigger};

use crate::activation::START_NS;
use crate::exit::FINISHED;
use crate::writer_thread::WRITER_DONE;
use crate::{scan, stop, sys, writer};

/// How long a live scan waits for the program's threads to stop before it gives up (and lets
/// them run on). A thread inside agent code stops when it leaves it, which takes microseconds,
/// unless it is the thread running the exit path: then the scan must give way quickly.
const LIVE_SCAN_STOP_TIMEOUT_NS: u64 = 500_000_000;

/// Set while the writer thread runs a live scan; the exit path waits for it to end.
pub(crate) static LIVE_SCAN_RUNNING: AtomicU32 = AtomicU32::new(0);

/// A reachability scan while the program runs, on the writer thread: stop the program's
/// threads, classify every live block as the exit scan does, let the threads run again, then
/// write the lost records. Nothing in the program's memory is changed: no `freeres`, no
/// exclusions, and the writer's own stack is an agent mapping, not a root.
pub(crate) fn live_scan(trigger: LiveScanTrigger) {
    // Running first, then the check (and the exit path the other way round, both SeqCst):
    // either this scan sees that the exit path began, or the exit path sees this scan.
    LIVE_SCAN_RUNNING.store(1, Ordering::SeqCst);
    if FINISHED.load(Ordering::SeqCst) {
        LIVE_SCAN_RUNNING.store(0, Ordering::Release);
        return;
    }
    let began = sys::monotonic_ns();
    let stopped = stop::stop_the_world(LIVE_SCAN_STOP_TIMEOUT_NS);
    let (outcome, output) = if stopped.missed > 0 {
        // A thread that did not stop may be changing the live table: no scan this time.
        (LiveScanOutcome::ThreadsMissed, None)
    } else {
        match scan::scan(&scan::ScanInput {
            stopped: stopped.threads,
            scanner_stack_from: 0,
            extra_roots: &[],
            excluded: &[],
            not_roots: [(0, 0); 2],
            sample_rate: 0,
        }) {
            Some(output) => (LiveScanOutcome::Done, Some(output)),
            None => (LiveScanOutcome::NoMemory, None),
        }
    };
    let threads_stopped = stopped.threads.len() as u32;
    stop::resume_the_world();
    let resumed = sys::monotonic_ns();
    let start = START_NS.load(Ordering::Relaxed);
    let scan = LiveScan {
        time_ns: began.saturating_sub(start),
        pause_ns: resumed - began,
        duration_ns: 0, // measured by the writer, up to its write
        threads_stopped,
        threads_missed: stopped.missed,
        outcome,
        trigger,
        live_blocks: output.as_ref().map_or(0, |o| o.live_blocks),
        totals: output.as_ref().map_or([(0, 0); 4], |o| o.totals),
        records: (),
    };
    let records = output.as_ref().map_or(&[][..], |o| o.records);
    writer::WRITER.write_live_scan(&scan, began, records);
    drop(output);
    LIVE_SCAN_RUNNING.store(0, Ordering::Release);
}

/// Wait until no live scan runs (one in progress always ends: its stop gives up after a
/// timeout, and the thread calling this, inside agent code, does not stop for it).
pub(crate) fn wait_for_live_scan() {
    while LIVE_SCAN_RUNNING.load(Ordering::SeqCst) != 0 {
        sys::futex_wait(&WRITER_DONE, 0, 1_000_000);
    }
}

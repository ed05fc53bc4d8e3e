//! The exit path: stop the other threads, let the runtimes free what they keep, scan, write
//! the leak records and finish the profile. Entered from `exit`, `_exit`, a fatal signal or
//! an `exec`, once.

use core::sync::atomic::{AtomicBool, Ordering};

use leakscope_format::{scan_flags, ExitHow};

use crate::activation::{is_active, is_owner_process, recording, SAMPLE_RATE, START_NS};
use crate::hot_path::FREE_FORGETS_ONLY;
use crate::live_scan::wait_for_live_scan;
use crate::thread::AgentSection;
use crate::writer_thread::{
    freeres_on_writer_thread, stop_writer_thread, stop_writer_thread_within,
};
use crate::{degraded, runtime, scan, stop, sys, writer};

/// Set once the exit path has begun; later calls of [`finish`] return at once.
pub(crate) static FINISHED: AtomicBool = AtomicBool::new(false);

/// How the exit path was entered.
#[derive(Clone, Copy)]
pub struct ExitContext<'a> {
    /// How the process is ending.
    pub how: ExitHow,
    /// Exit code.
    pub code: i32,
    /// Fatal signal number (0 if none).
    pub signal: i32,
    /// Scan the calling thread's stack from this address up.
    pub stack_from: u64,
    /// The calling thread's registers, where they hold the program's values (a signal's
    /// interrupted context).
    pub registers: &'a [u64],
    /// Memory that is no root although it may lie in one: parts of an alternate signal stack
    /// (see `sigcontext::OuterContext::not_roots`; empty ranges: none).
    pub not_roots: [(u64, u64); 2],
}

/// The exit path: stop the other threads, scan, write the leak records, finish the file.
/// Runs once; later calls return at once.
pub fn finish(ending: &ExitContext<'_>) {
    if !(recording() || is_active()) || !is_owner_process() {
        return;
    }
    if FINISHED.swap(true, Ordering::SeqCst) {
        return;
    }
    let _section = AgentSection::enter_nested();
    wait_for_live_scan();
    // Let the runtimes free what they keep until exit, as memcheck does before its leak check
    // (`__gnu_cxx::__freeres`, and at `exit` `__libc_freeres`). `free` only forgets from here
    // on, so no malloc lock is taken (a stopped thread may hold one), and the memory stays
    // valid for the threads that run on until the process is gone.
    FREE_FORGETS_ONLY.store(true, Ordering::Release);
    let exiting = ending.how == ExitHow::Exit;
    let alone = stop::other_thread_count() == 0;
    let mut flags = 0;
    let mut excluded = [0u64; 256];
    let mut excluded_count = 0;
    let mut freeres_stuck = false;
    if alone || !exiting {
        // Nothing on this path takes a lock the program may hold (the loader's, stdio's,
        // malloc's): the last module refresh is the writer's, and waited for a bounded time.
        // (Not after a signal or `_exit`, which may come from a signal handler that
        // interrupted the loader.)
        stop_writer_thread(exiting);
        if runtime::cxx_freeres() {
            flags |= scan_flags::CXX_FREERES;
        }
        if exiting {
            runtime::libc_freeres();
            flags |= scan_flags::LIBC_FREERES;
        } else {
            // `__libc_freeres` takes locks a signal may have interrupted: leave out the stdio
            // buffers it would have freed instead.
            excluded_count = runtime::stdio_buffers(&mut excluded);
        }
    }

    let started = sys::monotonic_ns();
    let stopped = stop::stop_the_world(2_000_000_000);
    if stopped.missed > 0 {
        flags |= scan_flags::THREADS_MISSED;
    }
    if exiting && !alone {
        // Other threads live: as memcheck, stop them first, then free. The frees run on the
        // writer thread, waited for a bounded time: a stopped thread may hold a lock they
        // need (the loader's, the thread-stack cache's), and must not hang the exit.
        match freeres_on_writer_thread(1_000_000_000) {
            Some(cxx) => {
                flags |= scan_flags::LIBC_FREERES;
                if cxx {
                    flags |= scan_flags::CXX_FREERES;
                }
                stop_writer_thread(true);
            }
            None => {
                freeres_stuck = true;
                excluded_count = runtime::stdio_buffers(&mut excluded);
                stop_writer_thread_within(false, 0);
            }
        }
    }
    let sample_rate = SAMPLE_RATE.load(Ordering::Relaxed);
    // Kept for the rest of the process: the writer reads the records after the world resumes.
    let output = scan::scan(&scan::ScanInput {
        stopped: stopped.threads,
        scanner_stack_from: ending.stack_from,
        extra_roots: ending.registers,
        excluded: &excluded[..excluded_count],
        not_roots: ending.not_roots,
        sample_rate,
    });
    let duration_ns = sys::monotonic_ns() - started;
    if output.as_ref().is_some_and(|o| o.unreadable_bytes > 0) {
        flags |= scan_flags::UNREADABLE_MEMORY;
    }
    let mut missed_text = [0u8; 1024];
    let mut warnings: [&str; 16] = [""; 16];
    let mut warning_count = degraded::warnings(&mut warnings);
    // (A scan that could not run says so by its NOT_RUN_NO_MEMORY flag, in the headline.)
    if stopped.missed > 0 {
        warnings[warning_count] = describe_missed_threads(&stopped, &mut missed_text);
        warning_count += 1;
    }
    if freeres_stuck {
        warnings[warning_count] = "glibc's exit-time frees (__libc_freeres, which memcheck runs before its leak check) did not finish within a second: a stopped thread holds a lock they need. Blocks the C runtime keeps until exit (its thread-stack cache, the loader's bookkeeping) may be reported as still reachable or possibly lost";
        warning_count += 1;
    }
    let (records, site_ages, fields) = match &output {
        Some(out) => (
            out.records,
            out.site_ages,
            leakscope_format::Scan {
                duration_ns,
                threads_stopped: stopped.threads.len() as u32,
                threads_missed: stopped.missed,
                root_bytes: out.root_bytes,
                live_blocks: out.live_blocks,
                runtime_blocks: out.runtime_blocks,
                flags,
            },
        ),
        None => (
            &[][..],
            &[][..],
            leakscope_format::Scan {
                threads_stopped: stopped.threads.len() as u32,
                threads_missed: stopped.missed,
                flags: flags | scan_flags::NOT_RUN_NO_MEMORY,
                ..leakscope_format::Scan::default()
            },
        ),
    };
    writer::WRITER.finish(&writer::FinalRecords {
        how: ending.how,
        code: ending.code,
        signal: ending.signal,
        time_ns: sys::monotonic_ns().saturating_sub(START_NS.load(Ordering::Relaxed)),
        scan: fields,
        leaks: records,
        site_ages,
        sample_rate,
        warnings: &warnings[..warning_count],
    });
    stop::resume_the_world();
    core::mem::forget(output);
}

/// The warning for threads that did not stop for the exit scan, naming them (`tid (comm)`),
/// written into `buf`.
fn describe_missed_threads<'a>(stopped: &stop::Stopped, buf: &'a mut [u8]) -> &'a str {
    let mut text = sys::TextBuffer::new(buf);
    text.push_u64(stopped.missed as u64);
    text.push_str(if stopped.missed == 1 {
        " thread did not stop for the leak scan ("
    } else {
        " threads did not stop for the leak scan ("
    });
    let mut first = true;
    for &tid in stopped.missed_tids.iter().filter(|&&tid| tid != 0) {
        if !first {
            text.push_str(", ");
        }
        first = false;
        text.push_str("thread ");
        text.push_u64(tid as u64);
        let mut name = [0u8; 64];
        let len = sys::procfs::thread_name(tid, &mut name);
        if len > 0 {
            text.push_str(" '");
            text.push_bytes(&name[..len]);
            text.push_str("'");
        }
    }
    if stopped.missed as usize > stop::MISSED_TIDS_KEPT {
        text.push_str(", ...");
    }
    text.push_str("; it blocks the agent's stop signal or is stuck in the kernel): the scan went on without its registers, so blocks that only its registers point to may be reported as lost");
    text.as_str()
}

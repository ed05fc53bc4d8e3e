//! What the agent could not do or could not prove, noted as it happens and written into the
//! profile as warnings at the end, so that the report says what its figures may lack.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// glibc's `main_arena` was not found (unknown glibc, or the probe's checks failed).
pub const MAIN_ARENA_UNKNOWN: u32 = 1 << 0;
/// The per-site counters could not be mapped: no series of live memory per site.
pub const NO_SITE_COUNTERS: u32 = 1 << 1;
/// More programs executed by `vfork` children waited to be recorded than the queue holds.
pub const VFORK_EXECS_DROPPED: u32 = 1 << 2;

static NOTED: AtomicU32 = AtomicU32::new(0);
/// A warning about the program's own allocator (a static string), if it has one.
static PROGRAM_ALLOCATOR: (AtomicPtr<u8>, AtomicUsize) =
    (AtomicPtr::new(core::ptr::null_mut()), AtomicUsize::new(0));

/// Note `what` (one of the constants above).
pub fn note(what: u32) {
    NOTED.fetch_or(what, Ordering::Relaxed);
}

/// Note that the program has an allocator of its own that the agent cannot interpose;
/// `warning` says which and what that means for the report.
pub fn note_program_allocator(warning: &'static str) {
    PROGRAM_ALLOCATOR.1.store(warning.len(), Ordering::Relaxed);
    PROGRAM_ALLOCATOR
        .0
        .store(warning.as_ptr() as *mut u8, Ordering::Release);
}

/// The warning for every noted degradation, written at the end of the profile.
pub fn warnings(out: &mut [&str]) -> usize {
    const TEXTS: [(u32, &str); 3] = [
        (
            MAIN_ARENA_UNKNOWN,
            "glibc's main_arena could not be located (an unrecognised glibc, or its layout did not check out), so it was scanned as a root: a lost block that lies just before a free chunk may be reported as possibly lost instead of definitely lost",
        ),
        (
            NO_SITE_COUNTERS,
            "the agent could not map memory for its per-site counters, so the series of live memory per site (and the growth verdicts made from them) are missing or wrong",
        ),
        (
            VFORK_EXECS_DROPPED,
            "more than 32 programs started by vfork children waited at once to be recorded: the list of programs that ran untracked misses some",
        ),
    ];
    let noted = NOTED.load(Ordering::Relaxed);
    let mut n = 0;
    let allocator = PROGRAM_ALLOCATOR.0.load(Ordering::Acquire);
    if !allocator.is_null() && n < out.len() {
        let len = PROGRAM_ALLOCATOR.1.load(Ordering::Relaxed);
        // SAFETY: the pointer and length of a &'static str, stored by
        // `note_program_allocator` (the length before the pointer, with Release).
        out[n] =
            unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(allocator, len)) };
        n += 1;
    }
    for (bit, text) in TEXTS {
        if noted & bit != 0 && n < out.len() {
            out[n] = text;
            n += 1;
        }
    }
    n
}

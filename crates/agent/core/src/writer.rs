//! Writes the profile file: chunks are encoded into an agent-owned buffer and appended to the
//! file by the writer thread (every interval) and by the exit path (at the end). A process
//! killed with `SIGKILL` leaves a file that reads up to its last whole chunk.

use core::iter::Peekable;

use leakscope_format::{
    encode_file_header, EncodeError, Encoded, End, Exec, ExecCall, ExecFailed, Exit, ExitHow,
    LeakEstimates, LeakKind, LeakRecord, Leaks, LiveScan, Module, NulSeparated, OnePass, Process,
    PythonCode, PythonCodes, Runtime, RuntimeEvent, RuntimeKind, Sampling, Scan, SiteAge, SiteAges,
    SiteLive, Snapshot, Spawn, SpawnHow, Stack, Stacks, TaggedFrames, Warning,
};

use crate::modules::MODULES;
use crate::settings;
use crate::stacks::STACKS;
use crate::sync::{SpinGuard, SpinLock};
use crate::sys;

const BUFFER_LEN: usize = 1 << 20;

struct WriterState {
    buf: *mut u8,
    pos: usize,
    /// Per site, the (bytes, blocks) last written in a snapshot (indexed by stack id; mapped
    /// lazily, like the counters).
    last_written: *mut (u64, u64),
    /// Process totals as of the last snapshot.
    live_bytes: u64,
    live_blocks: u64,
    /// The next snapshot must list every live site (a forked child's first).
    full_snapshot: bool,
    /// Scratch space for one snapshot's changes (mapped with `last_written`).
    changes: *mut (u32, u64, u64),
    started: bool,
    modules_written: usize,
    next_stack: u32,
    /// The next Python code id to write.
    next_code: u32,
    /// The Python runtime events written (bit per `python::EVENTS` field).
    runtime_events_written: u32,
    failed: bool,
    start_unix_ns: u64,
    /// This image's own profile (NUL-terminated), once claimed (see [`WriterState::claim`]).
    own_path: [u8; settings::MAX_PATH],
    own_path_len: usize,
    claimed: bool,
    /// This image began as a fork of its parent's.
    forked: bool,
    /// A descriptor of the claimed file, opened before the process changed its user or group
    /// (after which the path may no longer open), with the file's (device, inode) to check
    /// that the program did not close it and reuse the number. -1: none.
    kept_fd: i32,
    kept_file: (u64, u64),
}

// SAFETY: the pointers are the writer's own mappings, tied to no thread; the state is only
// reached through the writer's lock.
unsafe impl Send for WriterState {}

/// The profile writer.
pub struct ProfileWriter {
    state: SpinLock<WriterState>,
}

/// The writer locked (see [`ProfileWriter::exec_starting`]).
pub struct WriterGuard<'a>(SpinGuard<'a, WriterState>);

/// The process's profile writer.
pub static WRITER: ProfileWriter = ProfileWriter {
    state: SpinLock::new(WriterState {
        buf: core::ptr::null_mut(),
        pos: 0,
        last_written: core::ptr::null_mut(),
        changes: core::ptr::null_mut(),
        live_bytes: 0,
        live_blocks: 0,
        full_snapshot: false,
        started: false,
        modules_written: 0,
        next_stack: 1,
        next_code: 1,
        runtime_events_written: 0,
        failed: false,
        start_unix_ns: 0,
        own_path: [0; settings::MAX_PATH],
        own_path_len: 0,
        claimed: false,
        forked: false,
        kept_fd: -1,
        kept_file: (0, 0),
    }),
};

/// What the exit path hands the writer to finish the file.
pub struct FinalRecords<'a> {
    /// How the process ended.
    pub how: ExitHow,
    /// Exit code.
    pub code: i32,
    /// Signal number.
    pub signal: i32,
    /// Nanoseconds since start.
    pub time_ns: u64,
    /// The scan chunk's fields.
    pub scan: Scan,
    /// Leak records.
    pub leaks: &'a [crate::scan::LeakRecord],
    /// Sampling mode's rate (0: not sampling; no estimates are written).
    pub sample_rate: u64,
    /// Warnings to record.
    pub warnings: &'a [&'a str],
    /// Per site with live blocks: the allocation time of its oldest, in ns since start.
    pub site_ages: &'a [(u32, u64)],
}

impl WriterState {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        if self.buf.is_null() {
            self.buf = sys::map_anonymous(BUFFER_LEN, false);
            if self.buf.is_null() {
                return None;
            }
        }
        // SAFETY: `buf` is our own mapping of BUFFER_LEN bytes.
        Some(unsafe { core::slice::from_raw_parts_mut(self.buf, BUFFER_LEN) })
    }

    /// Append the buffer to the file.
    fn drain(&mut self) {
        if self.pos == 0 {
            return;
        }
        let pos = self.pos;
        self.pos = 0;
        if self.failed {
            return;
        }
        // A file that cannot be created (a directory this image may not write, after a
        // change of user) loses this image's profile; the parent's `Spawn` record of a forked
        // child lets the report say that it is missing.
        if !self.claimed && !self.claim() {
            self.failed = true;
            return;
        }
        let own_path_len = self.own_path_len;
        let path = self.own_path;
        let kept = self.kept_descriptor();
        let Some(buf) = self.buffer() else { return };
        let written = match kept {
            Some(fd) => sys::write_all(fd, &buf[..pos]),
            None => sys::append_file(&path[..=own_path_len], &buf[..pos]),
        };
        if !written {
            self.failed = true;
        }
    }

    /// The kept descriptor, if there is one and it still refers to the claimed file.
    fn kept_descriptor(&mut self) -> Option<i32> {
        if self.kept_fd < 0 {
            return None;
        }
        if sys::file_identity(self.kept_fd) == Some(self.kept_file) {
            return Some(self.kept_fd);
        }
        // The program closed it (and may have reused the number): it is not ours any more.
        self.kept_fd = -1;
        None
    }

    /// Claim this image's own profile file: create it, failing if it exists, so that no two
    /// process images ever write into one file. The first image of a run takes the path it
    /// was given (`P`, which `leakscope run` has created empty); a forked child, or any later image (a child followed across `exec` or
    /// `posix_spawn`, which inherits `P` from the environment), takes `P.PID`; where that is
    /// taken (an image of the same process before an `exec`, or an earlier process with the
    /// same pid), `P.PID.e`, `P.PID.e.e`, ... The reader tells an image that followed an
    /// `exec` from a pid reused later by the process start time in the Process chunk.
    fn claim(&mut self) -> bool {
        let Some(settings) = settings::get() else {
            return false;
        };
        let root = &settings.profile_path[..settings.profile_path_len];
        let mut candidate = [0u8; settings::MAX_PATH];
        if !self.forked {
            candidate[..root.len()].copy_from_slice(root);
            candidate[root.len()] = 0;
            // `leakscope run` creates the first file itself (exclusively, mode 0600) to know
            // before the program starts that it can be written: the first image takes it
            // while it is still empty.
            if sys::is_empty_file_of_ours(&candidate[..=root.len()]) {
                self.own_path[..=root.len()].copy_from_slice(&candidate[..=root.len()]);
                self.own_path_len = root.len();
                self.claimed = true;
                return true;
            }
            if self.try_claim(&mut candidate, root.len()) {
                return true;
            }
        }
        let mut text = sys::TextBuffer::new(&mut candidate);
        text.push_bytes(root);
        text.push_str(".");
        text.push_u64(sys::getpid() as u64);
        let mut len = text.len();
        for _ in 0..32 {
            if len + 3 >= settings::MAX_PATH {
                return false;
            }
            if self.try_claim(&mut candidate, len) {
                return true;
            }
            candidate[len..len + 2].copy_from_slice(b".e");
            len += 2;
        }
        false
    }

    /// Create `candidate[..len]` exclusively; on success it becomes this image's own path.
    fn try_claim(&mut self, candidate: &mut [u8; settings::MAX_PATH], len: usize) -> bool {
        candidate[len] = 0;
        if !sys::create_exclusive(&candidate[..=len]) {
            return false;
        }
        self.own_path[..=len].copy_from_slice(&candidate[..=len]);
        self.own_path_len = len;
        self.claimed = true;
        true
    }

    /// Encode one chunk with `encode` (a typed chunk's `encode`, given the free part of the
    /// buffer); drains the buffer and retries once if it was full.
    fn chunk(&mut self, encode: &mut dyn FnMut(&mut [u8]) -> Result<usize, EncodeError>) {
        for _ in 0..2 {
            let pos = self.pos;
            let Some(buf) = self.buffer() else { return };
            if let Ok(len) = encode(&mut buf[pos..]) {
                self.pos += len;
                if self.pos > BUFFER_LEN / 2 {
                    self.drain();
                }
                return;
            }
            self.drain();
        }
    }

    /// Encode batch chunks with `encode` (a batch chunk's `encode`, which takes records from
    /// an iterator the closure holds) until it takes none: every record is written, or one
    /// does not fit an empty buffer. With `at_least_one`, a chunk is written even when there is
    /// no record (a snapshot's or the ages' time and totals).
    fn batch(
        &mut self,
        at_least_one: bool,
        encode: &mut dyn FnMut(&mut [u8]) -> Result<Encoded, EncodeError>,
        more: &mut dyn FnMut() -> bool,
    ) {
        let mut first = true;
        loop {
            let records_left = more();
            if !(records_left || first && at_least_one) {
                break;
            }
            first = false;
            let mut taken = 0;
            self.chunk(&mut |buf| {
                let encoded = encode(buf)?;
                if encoded.taken == 0 && records_left {
                    // Not even one record fitted what is left of the buffer: drain and retry.
                    return Err(EncodeError);
                }
                taken = encoded.taken;
                Ok(encoded.len)
            });
            if taken == 0 {
                break;
            }
        }
    }

    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let pos = self.pos;
        let Some(buf) = self.buffer() else { return };
        if let Ok(len) = encode_file_header(&mut buf[pos..]) {
            self.pos += len;
        }
        let mut cmdline = [0u8; 8192];
        let cmdline_len = sys::read_file(b"/proc/self/cmdline\0", &mut cmdline).unwrap_or(0);
        let mut exe = [0u8; 4096];
        // SAFETY: readlink writes at most `exe.len()` bytes into `exe`.
        let exe_len = unsafe {
            libc::readlink(
                c"/proc/self/exe".as_ptr(),
                exe.as_mut_ptr() as *mut libc::c_char,
                exe.len(),
            )
        }
        .max(0) as usize;
        let max_frames = settings::get().map_or(0, |s| s.max_frames) as u32;
        let start_ns = self.start_unix_ns;
        let mut flags = 0;
        if self.forked {
            flags |= leakscope_format::process_flags::FORKED;
        }
        if settings::get().is_some_and(|s| s.follow_children) {
            flags |= leakscope_format::process_flags::FOLLOWING_CHILDREN;
        }
        let kernel_start_ticks = kernel_start_ticks();
        let process = Process {
            pid: sys::getpid() as u32,
            ppid: sys::getppid() as u32,
            start_unix_ns: start_ns,
            max_frames,
            flags,
            argv: NulSeparated(&cmdline[..cmdline_len]),
            exe: &exe[..exe_len],
            agent_version: env!("CARGO_PKG_VERSION").as_bytes(),
            kernel_start_ticks: Some(kernel_start_ticks),
        };
        self.chunk(&mut |buf| process.encode(buf));
        let sample_rate = settings::get().map_or(0, |s| s.sample_rate);
        if sample_rate > 0 {
            let sampling = Sampling {
                rate_bytes: sample_rate,
            };
            self.chunk(&mut |buf| sampling.encode(buf));
        }
    }

    /// Write `records` as chunks of leak records, as many as needed, with `encode` (the
    /// `Leaks` or `LeakEstimates` chunk's encoder).
    fn leak_chunks<I: Iterator<Item = LeakRecord>>(
        &mut self,
        records: &mut Peekable<I>,
        encode: fn(&mut [u8], &mut Peekable<I>) -> Result<Encoded, EncodeError>,
    ) {
        let records = core::cell::RefCell::new(records);
        self.batch(
            false,
            &mut |buf| encode(buf, &mut records.borrow_mut()),
            &mut || records.borrow_mut().peek().is_some(),
        );
    }

    fn write_modules(&mut self, wait_for_lock: bool) {
        let modules = if wait_for_lock {
            MODULES.read()
        } else {
            MODULES.try_read()
        };
        let Some(modules) = modules else { return };
        while self.modules_written < modules.records.len() {
            let record = &modules.records[self.modules_written];
            let module = Module {
                load_bias: record.load_bias,
                start: record.start,
                end: record.end,
                path: record.path.as_bytes(),
                build_id: &record.build_id[..],
            };
            self.chunk(&mut |buf| module.encode(buf));
            self.modules_written += 1;
        }
    }

    /// Record the programs `vfork` children executed (see `children::drain_vfork_execs`).
    fn write_vfork_execs(&mut self, time_ns: u64) {
        crate::children::drain_vfork_execs(|pid, path| {
            let spawn = Spawn {
                time_ns,
                how: SpawnHow::VforkExec,
                pid: (pid != 0).then_some(pid),
                program: path,
            };
            self.chunk(&mut |buf| spawn.encode(buf));
        });
    }

    /// One snapshot: the sites that changed since the last one, with absolute values.
    fn snapshot(&mut self, time_ns: u64) {
        self.write_vfork_execs(time_ns);
        use crate::sites::{MAX_SITES, SITES};
        if self.last_written.is_null() {
            self.last_written = sys::map_anonymous(MAX_SITES * 16, true) as *mut (u64, u64);
            self.changes = sys::map_anonymous(MAX_SITES * 24, true) as *mut (u32, u64, u64);
            if self.last_written.is_null() || self.changes.is_null() {
                self.last_written = core::ptr::null_mut();
                return;
            }
        }
        let (last, changes) = (self.last_written, self.changes);
        let full = core::mem::take(&mut self.full_snapshot);
        let mut count = 0usize;
        let (mut live_bytes, mut live_blocks) = (self.live_bytes, self.live_blocks);
        let mut record = |site: u32, bytes: u64, blocks: u64| {
            let site = (site as usize).min(MAX_SITES - 1);
            // SAFETY: site < MAX_SITES, inside `last_written`; `count` < MAX_SITES (each site is
            // reported at most once per drain), inside `changes`.
            unsafe {
                let previous = &mut *last.add(site);
                if !full && *previous == (bytes, blocks) {
                    return;
                }
                live_bytes = live_bytes.wrapping_add(bytes).wrapping_sub(previous.0);
                live_blocks = live_blocks.wrapping_add(blocks).wrapping_sub(previous.1);
                *previous = (bytes, blocks);
                *changes.add(count) = (site as u32, bytes, blocks);
            }
            count += 1;
        };
        if full {
            SITES.for_each_live(&mut record);
        } else {
            SITES.drain_changed(&mut record);
        }
        self.live_bytes = live_bytes;
        self.live_blocks = live_blocks;
        // SAFETY: the first `count` entries were written above.
        let changes = unsafe { core::slice::from_raw_parts(changes, count) };
        let (rss, available) = (resident_bytes(), available_memory_bytes());
        // A snapshot too large for one chunk continues in chunks with the same time, which the
        // reader merges.
        let snapshot = Snapshot {
            time_ns,
            rss_bytes: rss,
            available_bytes: available,
            live_bytes,
            live_blocks,
            sites: (),
        };
        let sites = changes
            .iter()
            .map(|&(stack, live_bytes, live_blocks)| SiteLive {
                stack,
                live_bytes,
                live_blocks,
            });
        let sites = core::cell::RefCell::new(sites.peekable());
        self.batch(
            true,
            &mut |buf| snapshot.encode(buf, &mut sites.borrow_mut()),
            &mut || sites.borrow_mut().peek().is_some(),
        );
    }

    /// The Python code objects copied since the last write (before the stacks that use
    /// them; a code still being copied is written next time, which the reader, resolving code
    /// locations after the whole file, does not mind), and the runtime's events.
    fn write_python(&mut self) {
        use crate::python;
        let codes = python::ready_codes(self.next_code).map(|(id, record)| {
            let (name, file, line_table) = python::texts(record);
            PythonCode {
                id,
                address: record.address,
                first_line: record.first_line,
                name,
                file,
                line_table,
            }
        });
        let codes = core::cell::RefCell::new(codes.peekable());
        let mut written = 0;
        self.batch(
            false,
            &mut |buf| {
                let encoded = PythonCodes::encode(buf, &mut codes.borrow_mut())?;
                written += encoded.taken as u32;
                Ok(encoded)
            },
            &mut || codes.borrow_mut().peek().is_some(),
        );
        self.next_code = self.next_code.max(1) + written;

        let events = &python::EVENTS;
        let detected = match events.detected.load(core::sync::atomic::Ordering::Acquire) {
            1 => Some(RuntimeEvent::Detected),
            2 => Some(RuntimeEvent::Unsupported),
            _ => None,
        };
        let moments = [
            (
                detected,
                events
                    .detected_at
                    .load(core::sync::atomic::Ordering::Relaxed),
            ),
            (
                Some(RuntimeEvent::AllocatorWrapped),
                events
                    .wrapped_at
                    .load(core::sync::atomic::Ordering::Relaxed),
            ),
            (
                Some(RuntimeEvent::Finalizing),
                events
                    .finalizing_at
                    .load(core::sync::atomic::Ordering::Relaxed),
            ),
        ];
        for (bit, (event, at)) in moments.into_iter().enumerate() {
            let Some(event) = event else { continue };
            if at == 0 || self.runtime_events_written & (1 << bit) != 0 {
                continue;
            }
            self.runtime_events_written |= 1 << bit;
            let runtime = Runtime {
                time_ns: at - 1,
                runtime: RuntimeKind::CPython,
                event,
                version: python::version(),
                code_address: events
                    .eval_address
                    .load(core::sync::atomic::Ordering::Relaxed),
            };
            self.chunk(&mut |buf| runtime.encode(buf));
        }
    }

    fn write_stacks(&mut self) {
        self.write_python();
        let end = STACKS.next_id();
        let first = self.next_stack;
        let stacks = core::cell::RefCell::new(table_stacks(first, end).peekable());
        let mut written = 0;
        self.batch(
            false,
            &mut |buf| {
                let encoded = Stacks::encode(buf, &mut stacks.borrow_mut())?;
                written += encoded.taken as u32;
                Ok(encoded)
            },
            &mut || stacks.borrow_mut().peek().is_some(),
        );
        self.next_stack = first + written;
    }
}

impl ProfileWriter {
    /// Remember when the process started (for the Process chunk).
    pub fn set_start_time(&self, unix_ns: u64) {
        self.state.lock().start_unix_ns = unix_ns;
    }

    /// Take a snapshot and write it with everything new. Called by the writer thread.
    pub fn snapshot_and_flush(&self, time_ns: u64) {
        let mut state = self.state.lock();
        state.start();
        state.write_modules(true);
        state.write_stacks();
        // A snapshot taken once the interpreter began to finalize is of its teardown: the
        // moment is noted before the snapshot's time if it began before or during it.
        crate::python::check_finalizing(time_ns);
        state.snapshot(time_ns);
        crate::python::check_finalizing(time_ns);
        state.write_python();
        state.drain();
    }

    /// Write everything new (modules, stacks) to the file. Called by the writer thread.
    pub fn flush(&self) {
        let mut state = self.state.lock();
        state.start();
        state.write_modules(true);
        state.write_stacks();
        state.drain();
    }

    /// Write a live scan's results (and everything new, so that its stacks are in the file).
    /// Called by the writer thread after the world resumed.
    pub fn write_live_scan(
        &self,
        scan: &LiveScan<()>,
        began_ns: u64,
        records: &[crate::scan::LeakRecord],
    ) {
        let mut state = self.state.lock();
        state.start();
        state.write_modules(true);
        state.write_stacks();
        // The duration runs from the first stop signal up to this write.
        let header = LiveScan {
            duration_ns: sys::monotonic_ns().saturating_sub(began_ns),
            ..*scan
        };
        // Only the lost kinds' records are written; still reachable blocks are in the totals.
        let lost = leak_records(records).filter(|r| r.kind != LeakKind::StillReachable);
        let records = core::cell::RefCell::new(lost.peekable());
        state.batch(
            true,
            &mut |buf| header.encode(buf, &mut records.borrow_mut()),
            &mut || records.borrow_mut().peek().is_some(),
        );
        state.drain();
    }

    /// Finish the file: everything new, then exit, scan, leaks and the end marker. Called by
    /// the exit path, possibly from a signal handler with other threads stopped, so it only
    /// waits a bounded time for locks.
    pub fn finish(&self, records: &FinalRecords<'_>) {
        let mut guard = self.state.try_lock_for_a_while();
        let state: &mut WriterState = match &mut guard {
            Some(guard) => guard,
            // SAFETY: the holder never let go: it is stopped for good (the exit path runs with
            // every other thread stopped), so nothing else touches the state, and this thread
            // holds no guard.
            None => unsafe { self.state.get_unlocked() },
        };
        state.start();
        state.write_modules(false);
        state.write_stacks();
        state.snapshot(records.time_ns);
        for warning in records.warnings {
            let warning = Warning(warning.as_bytes());
            state.chunk(&mut |buf| warning.encode(buf));
        }
        let exit = Exit {
            how: records.how,
            code: records.code,
            signal: records.signal,
            time_ns: records.time_ns,
        };
        state.chunk(&mut |buf| exit.encode(buf));
        state.chunk(&mut |buf| records.scan.encode(buf));
        state.leak_chunks(&mut leak_records(records.leaks).peekable(), Leaks::encode);
        if records.sample_rate > 0 {
            // Sampled sites only: stack 0 holds the blocks that were not sampled.
            let sampled_from = records.leaks.partition_point(|r| r.stack == 0);
            let estimates = records.leaks[sampled_from..].iter().map(|r| LeakRecord {
                stack: r.stack,
                kind: r.kind,
                bytes: libm::round(r.estimated_bytes) as u64,
                blocks: libm::round(r.estimated_blocks) as u64,
            });
            state.leak_chunks(&mut estimates.peekable(), LeakEstimates::encode);
        }
        let ages = SiteAges {
            time_ns: records.time_ns,
            oldest: (),
        };
        let oldest = records
            .site_ages
            .iter()
            .map(|&(stack, oldest_ns)| SiteAge { stack, oldest_ns });
        let oldest = core::cell::RefCell::new(oldest.peekable());
        state.batch(
            true,
            &mut |buf| ages.encode(buf, &mut oldest.borrow_mut()),
            &mut || oldest.borrow_mut().peek().is_some(),
        );
        state.chunk(&mut |buf| End.encode(buf));
        state.drain();
        drop(guard);
    }

    /// In a forked child: start a new file of its own (claimed at its first write), rewriting
    /// the process, modules and every stack so that the child's file stands alone.
    pub fn restart_in_child(&self) {
        // SAFETY: in the forked child (single-threaded), whose parent took the lock before
        // forking (`lock_for_fork`): the state is whole.
        unsafe { self.state.reset_in_child() };
        let mut state = self.state.lock();
        state.pos = 0; // the parent's unwritten bytes belong to the parent's file
        state.started = false;
        state.modules_written = 0;
        state.next_stack = 1;
        state.next_code = 1;
        state.runtime_events_written = 0;
        state.failed = false;
        state.full_snapshot = true;
        state.claimed = false;
        state.forked = true;
        // The parent's descriptor is the child's too (fork copies it), but of the parent's
        // file: the child claims its own and writes by path.
        state.kept_fd = -1;
    }

    /// The process is about to change its user or group (`uid`, `gid`: the new effective
    /// ids, `None` where unchanged): make sure its profile can still be written afterwards. The
    /// file is claimed now (if not yet), a descriptor of it is kept for every later write
    /// (a directory the new user may not enter no longer matters), and the file is given to the
    /// new ids (so that opening it by path works too).
    pub fn before_credentials_change(&self, uid: Option<u32>, gid: Option<u32>) {
        let mut state = self.state.lock();
        state.start();
        state.drain();
        if !state.claimed || state.failed {
            return;
        }
        let path_len = state.own_path_len;
        if state.kept_descriptor().is_none() {
            if let Some(fd) = sys::open_for_append(&state.own_path[..=path_len]) {
                state.kept_file = sys::file_identity(fd).unwrap_or((0, 0));
                state.kept_fd = fd;
            }
        }
        sys::change_owner(&state.own_path[..=path_len], uid, gid);
    }

    /// Record that this image is about to `exec`: everything new, a last snapshot, and the
    /// `Exec` chunk, on disk before the call. The returned guard keeps the writer locked until
    /// the `exec` returns (it returns only if it failed: then pass the guard to
    /// [`ProfileWriter::exec_failed`]), so that the writer thread is not halfway through a
    /// write when the image is replaced.
    pub fn exec_starting(
        &self,
        time_ns: u64,
        call: ExecCall,
        path: &[u8],
        argv: &mut dyn Iterator<Item = &[u8]>,
    ) -> WriterGuard<'_> {
        let mut state = self.state.lock();
        state.start();
        state.write_modules(false);
        state.write_stacks();
        state.snapshot(time_ns);
        // The buffer is drained first, so that the chunk is encoded once: `argv` can be
        // walked only once.
        state.drain();
        let exec = Exec {
            time_ns,
            call,
            path,
            argv: OnePass(core::cell::RefCell::new(argv)),
        };
        state.chunk(&mut |buf| exec.encode(buf));
        state.drain();
        WriterGuard(state)
    }

    /// The `exec` announced by [`ProfileWriter::exec_starting`] failed with `errno`.
    pub fn exec_failed(&self, guard: WriterGuard<'_>, time_ns: u64, errno: i32) {
        let mut state = guard.0;
        let failed = ExecFailed { time_ns, errno };
        state.chunk(&mut |buf| failed.encode(buf));
        state.drain();
    }

    /// Record that this image started another process.
    pub fn spawned(&self, time_ns: u64, how: SpawnHow, pid: u32, program: &[u8]) {
        let mut state = self.state.lock();
        state.start();
        let spawn = Spawn {
            time_ns,
            how,
            pid: (pid != 0).then_some(pid),
            program,
        };
        state.chunk(&mut |buf| spawn.encode(buf));
    }

    /// Take the lock before `fork`.
    pub fn lock_for_fork(&self) {
        self.state.lock_for_fork();
    }

    /// Release it in the parent after `fork`.
    ///
    /// # Safety
    /// The calling thread took it with [`ProfileWriter::lock_for_fork`].
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller's promise.
        unsafe { self.state.unlock_after_fork() };
    }
}

/// The stack table's stacks `first..end` as the `Stacks` chunk encodes them. The table keeps
/// one `u64` per frame: a return address, or an interpreter frame tagged with its kind in the
/// top byte (`leakscope_format::tagged`; no user-space address on x86_64 has those bits), which
/// the encoder turns into the frame's kind byte and id. A stack still being written by its
/// thread ends the run: it is written next time.
fn table_stacks(first: u32, end: u32) -> impl Iterator<Item = Stack<TaggedFrames<'static>>> {
    (first..end).map_while(|id| {
        STACKS.frames_of(id).map(|frames| Stack {
            id,
            frames: TaggedFrames(frames),
        })
    })
}

/// The scan's records as the format's leak records.
fn leak_records(records: &[crate::scan::LeakRecord]) -> impl Iterator<Item = LeakRecord> + '_ {
    records.iter().map(|r| LeakRecord {
        stack: r.stack,
        kind: r.kind,
        bytes: r.bytes,
        blocks: r.blocks,
    })
}

use sys::procfs::{available_memory_bytes, kernel_start_ticks, resident_bytes};

#[cfg(test)]
mod tests {
    use super::*;
    use leakscope_format::{FrameKind, StackFrame, CHUNK_HEADER_LEN};

    /// The agent writes only native frames today; the path for interpreter frames, from the
    /// stack table's tagged words to the chunk's kind bytes, is this. (The format crate's
    /// round-trip tests decode the same layout; here the decoder is not available, as the
    /// agent's build of the format crate has no `std`.)
    #[test]
    fn tagged_interpreter_frames_in_the_stack_table_are_written_with_their_kind() {
        let python = StackFrame::Interpreter(FrameKind::Python, 7).to_tagged();
        let java = StackFrame::Interpreter(FrameKind::Java, u32::MAX).to_tagged();
        let words = [0x5555_0000_1234, python, java, 0x7fff_f7da_1305];
        let id = STACKS.intern(&words);
        assert_ne!(id, 0);
        let mut buf = [0u8; 512];
        let mut stacks = table_stacks(id, id + 1).peekable();
        let encoded = Stacks::encode(&mut buf, &mut stacks).unwrap();
        assert_eq!(encoded.taken, 1);
        let mut expected = [0u8; 4 + 4 + 2 + 4 * 9];
        expected[..4].copy_from_slice(&1u32.to_le_bytes());
        expected[4..8].copy_from_slice(&id.to_le_bytes());
        expected[8..10].copy_from_slice(&4u16.to_le_bytes());
        let frames: [(u8, u64); 4] = [
            (0, 0x5555_0000_1234),
            (1, 7),
            (3, u32::MAX as u64),
            (0, 0x7fff_f7da_1305),
        ];
        for (i, (kind, value)) in frames.into_iter().enumerate() {
            let at = 10 + 9 * i;
            expected[at] = kind;
            expected[at + 1..at + 9].copy_from_slice(&value.to_le_bytes());
        }
        assert_eq!(&buf[CHUNK_HEADER_LEN..encoded.len], &expected[..]);
    }
}

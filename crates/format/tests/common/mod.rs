//! Shared by the round-trip and the fuzz tests: a profile that uses every chunk kind, a
//! reference writer that encodes a [`Profile`] with the typed encoders (splitting batches
//! into chunks of a given size, as the agent's writer does when its buffer fills), and
//! helpers to build chunks by hand.

#![allow(dead_code)]

use leakscope_format::*;

/// The payload of the one chunk in `chunk`, checked to be of `kind`.
pub fn payload(chunk: &[u8], kind: ChunkKind) -> &[u8] {
    assert_eq!(u16::from_le_bytes([chunk[0], chunk[1]]), kind as u16);
    let len = u32::from_le_bytes(chunk[4..8].try_into().unwrap()) as usize;
    assert_eq!(chunk.len(), CHUNK_HEADER_LEN + len);
    &chunk[CHUNK_HEADER_LEN..]
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn leak_of(stack: StackId, kind: LeakKind, bytes: u64, blocks: u64) -> LeakRecord {
    LeakRecord {
        stack,
        kind,
        bytes,
        blocks,
    }
}

pub fn leak(stack: StackId, kind: LeakKind) -> LeakRecord {
    leak_of(stack, kind, 100 * stack as u64, stack as u64)
}

/// A profile with every chunk kind, several records in every batch.
pub fn sample_profile() -> Profile {
    let mut profile = Profile {
        version: FORMAT_VERSION,
        process: Some(Process {
            pid: 42,
            ppid: 1,
            start_unix_ns: 7,
            max_frames: 64,
            flags: process_flags::FOLLOWING_CHILDREN,
            argv: strings(&["./prog", "arg"]),
            exe: "/bin/prog".into(),
            agent_version: "0.1.0".into(),
            kernel_start_ticks: Some(12345),
        }),
        sample_rate: Some(4096),
        modules: vec![
            Module {
                load_bias: 0x5555_0000_0000,
                start: 0x5555_0000_0000,
                end: 0x5555_0001_0000,
                path: "/bin/prog".into(),
                build_id: vec![1, 2, 3, 4],
            },
            Module {
                load_bias: 0x7f00_0000_0000,
                start: 0x7f00_0000_1000,
                end: 0x7f00_0020_0000,
                path: "/lib/libc.so.6".into(),
                build_id: Vec::new(),
            },
        ],
        exit: Some(Exit {
            how: ExitHow::Exit,
            code: 3,
            signal: 0,
            time_ns: 9_000_000,
        }),
        scan: Some(Scan {
            duration_ns: 100,
            threads_stopped: 2,
            threads_missed: 0,
            root_bytes: 4096,
            live_blocks: 17,
            runtime_blocks: 3,
            flags: scan_flags::LIBC_FREERES,
        }),
        warnings: strings(&["first warning", "second warning"]),
        run_result: Some(RunResult {
            code: Some(3),
            signal: None,
            wall_ns: 10_000_000,
        }),
        execs: vec![
            ExecEvent {
                time_ns: 1000,
                call: ExecCall::Execvp,
                path: "missing-program".into(),
                argv: strings(&["missing-program", "-x"]),
                failed: Some(2),
            },
            ExecEvent {
                time_ns: 2000,
                call: ExecCall::Execve,
                path: "/bin/true".into(),
                argv: strings(&["true"]),
                failed: None,
            },
        ],
        spawns: vec![
            Spawn {
                time_ns: 500,
                how: SpawnHow::Fork,
                pid: Some(43),
                program: String::new(),
            },
            Spawn {
                time_ns: 600,
                how: SpawnHow::System,
                pid: None,
                program: "echo hi".into(),
            },
        ],
        complete: true,
        ..Profile::default()
    };
    let kinds = [FrameKind::Python, FrameKind::JavaScript, FrameKind::Java];
    for id in 1..=6u32 {
        profile.frames.insert(
            id,
            InterpreterFrame {
                id,
                kind: kinds[id as usize % 3],
                function: format!("function_{id}"),
                file: format!("src/file{id}.py"),
                line: id * 10,
                column: id,
                identity: 0x7f00_0000_0000 + id as u64,
            },
        );
    }
    for id in 1..=12u32 {
        let mut frames = vec![StackFrame::Native(0x5555_0000_1000 + id as u64)];
        if id % 2 == 0 {
            let frame = profile.frames[&(id / 2)].clone();
            frames.push(StackFrame::Interpreter(frame.kind, frame.id));
        }
        frames.push(StackFrame::Native(0x7f00_0000_2000));
        profile.stacks.insert(id, frames);
    }
    for (i, time_ms) in [100u64, 200].into_iter().enumerate() {
        profile.snapshots.push(Snapshot {
            time_ns: time_ms * 1_000_000,
            rss_bytes: 1 << 20,
            available_bytes: 1 << 30,
            live_bytes: 5000 + i as u64,
            live_blocks: 50,
            sites: (1..=9)
                .map(|stack| SiteLive {
                    stack,
                    live_bytes: 100 * stack as u64 + i as u64,
                    live_blocks: stack as u64,
                })
                .collect(),
        });
    }
    profile.site_ages = SiteAges {
        time_ns: 9_000_000,
        oldest: (1..=12)
            .map(|stack| SiteAge {
                stack,
                oldest_ns: 1000 * stack as u64,
            })
            .collect(),
    };
    let lost = [
        LeakKind::DefinitelyLost,
        LeakKind::IndirectlyLost,
        LeakKind::PossiblyLost,
    ];
    for (i, time_ms) in [150u64, 250].into_iter().enumerate() {
        profile.live_scans.push(LiveScan {
            time_ns: time_ms * 1_000_000,
            pause_ns: 10,
            duration_ns: 20,
            threads_stopped: 3,
            threads_missed: i as u32,
            outcome: if i == 0 {
                LiveScanOutcome::Done
            } else {
                LiveScanOutcome::ThreadsMissed
            },
            trigger: if i == 0 {
                LiveScanTrigger::Schedule
            } else {
                LiveScanTrigger::OnDemand
            },
            live_blocks: 40,
            totals: [(1, 2), (3, 4), (5, 6), (7, 8)],
            records: (1..=8)
                .map(|stack| leak(stack, lost[stack as usize % 3]))
                .collect(),
        });
    }
    profile.leaks = (1..=10)
        .map(|stack| leak(stack, LeakKind::ALL[stack as usize % 4]))
        .collect();
    profile.leak_estimates = (1..=10)
        .map(|stack| leak_of(stack, LeakKind::DefinitelyLost, 4096 * stack as u64, 8))
        .collect();
    profile
}

/// Appends chunks of at most `chunk_len` bytes (batches split to fit).
struct Writer {
    file: Vec<u8>,
    chunk_len: usize,
}

impl Writer {
    fn one(&mut self, encode: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>) {
        let mut buf = vec![0u8; self.chunk_len.max(1 << 16)];
        let len = encode(&mut buf).expect("a chunk fits");
        self.file.extend_from_slice(&buf[..len]);
    }

    /// Batch chunks until `left` says no record is left (at least one chunk).
    fn batch(
        &mut self,
        mut encode: impl FnMut(&mut [u8]) -> Result<Encoded, EncodeError>,
        left: impl Fn() -> bool,
    ) {
        let mut buf = vec![0u8; self.chunk_len];
        loop {
            let encoded = encode(&mut buf).expect("a batch head fits");
            self.file.extend_from_slice(&buf[..encoded.len]);
            if !left() {
                break;
            }
            assert!(encoded.taken > 0, "a record larger than a chunk");
        }
    }
}

/// The file the agent would write for `profile`, with chunks of at most `chunk_len` bytes.
pub fn encode_profile(profile: &Profile, chunk_len: usize) -> Vec<u8> {
    use std::cell::RefCell;
    let mut w = Writer {
        file: vec![0u8; HEADER_LEN],
        chunk_len,
    };
    encode_file_header(&mut w.file).unwrap();
    if let Some(process) = &profile.process {
        w.one(|buf| process.encode(buf));
    }
    if let Some(rate_bytes) = profile.sample_rate {
        w.one(|buf| Sampling { rate_bytes }.encode(buf));
    }
    for module in &profile.modules {
        w.one(|buf| module.encode(buf));
    }
    let frames = RefCell::new(profile.frames.values().cloned().peekable());
    if !profile.frames.is_empty() {
        w.batch(
            |buf| Frames::encode(buf, &mut frames.borrow_mut()),
            || frames.borrow_mut().peek().is_some(),
        );
    }
    let stacks = profile.stacks.iter().map(|(&id, frames)| Stack {
        id,
        frames: frames.as_slice(),
    });
    let stacks = RefCell::new(stacks.peekable());
    if !profile.stacks.is_empty() {
        w.batch(
            |buf| Stacks::encode(buf, &mut stacks.borrow_mut()),
            || stacks.borrow_mut().peek().is_some(),
        );
    }
    for spawn in &profile.spawns {
        w.one(|buf| spawn.encode(buf));
    }
    for snapshot in &profile.snapshots {
        let sites = RefCell::new(snapshot.sites.iter().copied().peekable());
        w.batch(
            |buf| snapshot.encode(buf, &mut sites.borrow_mut()),
            || sites.borrow_mut().peek().is_some(),
        );
    }
    for scan in &profile.live_scans {
        let records = RefCell::new(scan.records.iter().copied().peekable());
        w.batch(
            |buf| scan.encode(buf, &mut records.borrow_mut()),
            || records.borrow_mut().peek().is_some(),
        );
    }
    for exec in &profile.execs {
        let chunk = Exec {
            time_ns: exec.time_ns,
            call: exec.call,
            path: exec.path.as_str(),
            argv: exec.argv.as_slice(),
        };
        w.one(|buf| chunk.encode(buf));
        if let Some(errno) = exec.failed {
            w.one(|buf| {
                ExecFailed {
                    time_ns: exec.time_ns,
                    errno,
                }
                .encode(buf)
            });
        }
    }
    for warning in &profile.warnings {
        w.one(|buf| Warning(warning).encode(buf));
    }
    if let Some(exit) = &profile.exit {
        w.one(|buf| exit.encode(buf));
    }
    if let Some(scan) = &profile.scan {
        w.one(|buf| scan.encode(buf));
    }
    let leaks = RefCell::new(profile.leaks.iter().copied().peekable());
    if !profile.leaks.is_empty() {
        w.batch(
            |buf| Leaks::encode(buf, &mut leaks.borrow_mut()),
            || leaks.borrow_mut().peek().is_some(),
        );
    }
    let estimates = RefCell::new(profile.leak_estimates.iter().copied().peekable());
    if !profile.leak_estimates.is_empty() {
        w.batch(
            |buf| LeakEstimates::encode(buf, &mut estimates.borrow_mut()),
            || estimates.borrow_mut().peek().is_some(),
        );
    }
    let ages = &profile.site_ages;
    let oldest = RefCell::new(ages.oldest.iter().copied().peekable());
    w.batch(
        |buf| ages.encode(buf, &mut oldest.borrow_mut()),
        || oldest.borrow_mut().peek().is_some(),
    );
    if profile.complete {
        w.one(|buf| End.encode(buf));
    }
    if let Some(result) = &profile.run_result {
        w.one(|buf| result.encode(buf));
    }
    w.file
}

/// The offset of every chunk, then the file's end.
pub fn chunk_boundaries(file: &[u8]) -> Vec<usize> {
    let mut boundaries = vec![HEADER_LEN];
    let mut at = HEADER_LEN;
    while at < file.len() {
        let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
        at += CHUNK_HEADER_LEN + len;
        boundaries.push(at);
    }
    boundaries
}

/// The kind of every chunk, in order.
pub fn chunk_kinds(file: &[u8]) -> Vec<u16> {
    let boundaries = chunk_boundaries(file);
    boundaries[..boundaries.len() - 1]
        .iter()
        .map(|&at| u16::from_le_bytes([file[at], file[at + 1]]))
        .collect()
}

/// `Profile` has no `PartialEq` (nothing but tests compares whole profiles): compare what
/// every field shows.
pub fn assert_profiles_equal(actual: &Profile, expected: &Profile) {
    assert_eq!(format!("{actual:#?}"), format!("{expected:#?}"));
}

pub fn header(version: u32) -> Vec<u8> {
    let mut file = MAGIC.to_vec();
    file.extend(version.to_le_bytes());
    file.extend(0u32.to_le_bytes());
    file
}

pub fn v1_header() -> Vec<u8> {
    header(1)
}

pub fn v2_header() -> Vec<u8> {
    header(2)
}

/// Append a chunk of `kind` with `payload` and a valid checksum.
pub fn push_chunk(file: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let mut head = Vec::new();
    head.extend(kind.to_le_bytes());
    head.extend(0u16.to_le_bytes());
    head.extend((payload.len() as u32).to_le_bytes());
    let crc = checksum(&head, payload);
    file.extend(&head);
    file.extend(crc.to_le_bytes());
    file.extend(payload);
}

pub fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    out.extend((text.len() as u32).to_le_bytes());
    out.extend(text);
}

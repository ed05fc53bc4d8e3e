//! Every chunk kind round-trips: encode, decode, equal. Batch chunks split over several chunks
//! read back whole. Version 1 files still read; later versions are refused.

mod common;

use common::*;
use leakscope_format::*;

#[test]
fn fixed_chunks_round_trip() {
    let mut buf = [0u8; 256];

    let exit = Exit {
        how: ExitHow::Signal,
        code: -3,
        signal: 11,
        time_ns: 123_456_789,
    };
    let len = exit.encode(&mut buf).unwrap();
    assert_eq!(
        Exit::decode(payload(&buf[..len], ChunkKind::Exit)),
        Ok(exit)
    );

    let scan = Scan {
        duration_ns: 1,
        threads_stopped: 2,
        threads_missed: 3,
        root_bytes: 4,
        live_blocks: 5,
        runtime_blocks: 6,
        flags: scan_flags::CXX_FREERES | scan_flags::UNREADABLE_MEMORY,
    };
    let len = scan.encode(&mut buf).unwrap();
    assert_eq!(
        Scan::decode(payload(&buf[..len], ChunkKind::Scan)),
        Ok(scan)
    );

    for result in [
        RunResult {
            code: Some(3),
            signal: None,
            wall_ns: 77,
        },
        RunResult {
            code: None,
            signal: Some(9),
            wall_ns: u64::MAX,
        },
    ] {
        let len = result.encode(&mut buf).unwrap();
        let decoded = RunResult::decode(payload(&buf[..len], ChunkKind::RunResult));
        assert_eq!(decoded, Ok(result));
    }

    let sampling = Sampling {
        rate_bytes: 524_288,
    };
    let len = sampling.encode(&mut buf).unwrap();
    let decoded = Sampling::decode(payload(&buf[..len], ChunkKind::Sampling));
    assert_eq!(decoded, Ok(sampling));

    let failed = ExecFailed {
        time_ns: 5,
        errno: 2,
    };
    let len = failed.encode(&mut buf).unwrap();
    let decoded = ExecFailed::decode(payload(&buf[..len], ChunkKind::ExecFailed));
    assert_eq!(decoded, Ok(failed));

    let len = End.encode(&mut buf).unwrap();
    assert_eq!(len, CHUNK_HEADER_LEN);
    assert_eq!(End::decode(payload(&buf[..len], ChunkKind::End)), Ok(End));
}

#[test]
fn text_chunks_round_trip_from_borrowed_bytes_to_owned_strings() {
    let mut buf = [0u8; 1024];

    // The agent encodes borrowed bytes (the command line as /proc gives it).
    let process = Process {
        pid: 42,
        ppid: 1,
        start_unix_ns: 1_700_000_000_000_000_000,
        max_frames: 64,
        flags: process_flags::FORKED,
        argv: NulSeparated(b"./prog\0--flag\0\0last\0"),
        exe: &b"/bin/prog"[..],
        agent_version: &b"0.1.0"[..],
        kernel_start_ticks: Some(991),
    };
    let len = process.encode(&mut buf).unwrap();
    let decoded = Process::decode(payload(&buf[..len], ChunkKind::Process)).unwrap();
    assert_eq!(
        decoded,
        Process {
            pid: 42,
            ppid: 1,
            start_unix_ns: 1_700_000_000_000_000_000,
            max_frames: 64,
            flags: process_flags::FORKED,
            argv: strings(&["./prog", "--flag", "", "last"]),
            exe: "/bin/prog".into(),
            agent_version: "0.1.0".into(),
            kernel_start_ticks: Some(991),
        }
    );
    assert!(decoded.forked());
    // An older agent's Process chunk has no start ticks.
    let older = Process {
        kernel_start_ticks: None,
        ..decoded.clone()
    };
    let len = older.encode(&mut buf).unwrap();
    let decoded = Process::decode(payload(&buf[..len], ChunkKind::Process));
    assert_eq!(decoded, Ok(older));

    let module = Module {
        load_bias: 0x5555_0000_0000,
        start: 0x5555_0000_1000,
        end: 0x5555_0000_9000,
        path: "/usr/lib/libc.so.6".to_string(),
        build_id: vec![0xde, 0xad, 0xbe, 0xef],
    };
    let len = module.encode(&mut buf).unwrap();
    let decoded = Module::decode(payload(&buf[..len], ChunkKind::Module));
    assert_eq!(decoded, Ok(module));

    let warning = Warning("a thread did not stop".to_string());
    let len = warning.encode(&mut buf).unwrap();
    let decoded = Warning::decode(payload(&buf[..len], ChunkKind::Warning));
    assert_eq!(decoded, Ok(warning));

    let exec = Exec {
        time_ns: 9,
        call: ExecCall::Execvpe,
        path: "/bin/sh".to_string(),
        argv: strings(&["sh", "-c", "true"]),
    };
    let len = exec.encode(&mut buf).unwrap();
    let decoded = Exec::decode(payload(&buf[..len], ChunkKind::Exec));
    assert_eq!(decoded, Ok(exec.clone()));
    // From a C argv, walked once.
    let args: [&[u8]; 3] = [b"sh", b"-c", b"true"];
    let mut args = args.into_iter();
    let once = Exec {
        time_ns: 9,
        call: ExecCall::Execvpe,
        path: &b"/bin/sh"[..],
        argv: OnePass(std::cell::RefCell::new(&mut args)),
    };
    let len = once.encode(&mut buf).unwrap();
    let decoded = Exec::decode(payload(&buf[..len], ChunkKind::Exec));
    assert_eq!(decoded, Ok(exec));

    for spawn in [
        Spawn {
            time_ns: 1,
            how: SpawnHow::Popen,
            pid: None,
            program: "ls | wc".to_string(),
        },
        Spawn {
            time_ns: 2,
            how: SpawnHow::Fork,
            pid: Some(4321),
            program: String::new(),
        },
    ] {
        let len = spawn.encode(&mut buf).unwrap();
        let decoded = Spawn::decode(payload(&buf[..len], ChunkKind::Spawn));
        assert_eq!(decoded, Ok(spawn));
    }
}

#[test]
fn exec_and_spawn_keep_what_fits() {
    let mut buf = [0u8; 200];
    let long = "x".repeat(100);
    let exec = Exec {
        time_ns: 1,
        call: ExecCall::Execv,
        path: "/bin/p".to_string(),
        argv: vec![long.clone(), long.clone(), long],
    };
    let len = exec.encode(&mut buf).unwrap();
    let decoded = Exec::decode(payload(&buf[..len], ChunkKind::Exec)).unwrap();
    // 12 header + 8 + 1 + 10 + 4 = 35 bytes before the arguments; one argument of 104 bytes
    // leaves 61, less than the next one needs with its 64-byte margin.
    assert_eq!(decoded.argv.len(), 1);

    let spawn = Spawn {
        time_ns: 1,
        how: SpawnHow::System,
        pid: None,
        program: "y".repeat(10_000),
    };
    let mut buf = vec![0u8; 20_000];
    let len = spawn.encode(&mut buf).unwrap();
    let decoded = Spawn::decode(payload(&buf[..len], ChunkKind::Spawn)).unwrap();
    assert_eq!(decoded.program.len(), 4096);
}

#[test]
fn batch_chunks_split_and_read_back_whole() {
    let profile = sample_profile();
    // Small chunks force every batch over several chunks.
    let file = encode_profile(&profile, 160);
    let chunks = chunk_kinds(&file);
    for kind in [
        ChunkKind::Stacks,
        ChunkKind::Frames,
        ChunkKind::Leaks,
        ChunkKind::LeakEstimates,
        ChunkKind::Snapshot,
        ChunkKind::SiteAges,
        ChunkKind::LiveScan,
    ] {
        let count = chunks.iter().filter(|&&k| k == kind as u16).count();
        assert!(count >= 2, "{kind:?} in {count} chunks: {chunks:?}");
    }
    let read = read_profile_bytes(&file).unwrap();
    assert_profiles_equal(&read, &profile);

    // And in one big chunk each.
    let read = read_profile_bytes(&encode_profile(&profile, 1 << 20)).unwrap();
    assert_profiles_equal(&read, &profile);
}

#[test]
fn a_batch_encoder_takes_what_fits_and_says_so() {
    let records: Vec<LeakRecord> = (1..=10).map(|i| leak(i, LeakKind::PossiblyLost)).collect();
    // Header 12 + count 4 + 21 per record: 100 bytes hold 4 records.
    let mut buf = [0u8; 100];
    let mut iter = records.iter().copied().peekable();
    let encoded = Leaks::encode(&mut buf, &mut iter).unwrap();
    assert_eq!(encoded.taken, 4);
    assert_eq!(encoded.len, 12 + 4 + 4 * 21);
    assert_eq!(iter.next(), Some(records[4]));
    let decoded = Leaks::decode(payload(&buf[..encoded.len], ChunkKind::Leaks)).unwrap();
    assert_eq!(decoded.0, records[..4]);
    // A buffer too small for the head fails and takes nothing.
    let mut tiny = [0u8; 10];
    let mut iter = records.iter().copied().peekable();
    assert_eq!(Leaks::encode(&mut tiny, &mut iter), Err(EncodeError));
    assert_eq!(iter.next(), Some(records[0]));
}

#[test]
fn a_v2_stack_mixes_native_and_interpreter_frames() {
    let frames = vec![
        StackFrame::Native(0x4011ab),
        StackFrame::Interpreter(FrameKind::Python, 7),
        StackFrame::Interpreter(FrameKind::JavaScript, u32::MAX),
        StackFrame::Interpreter(FrameKind::Java, 0),
        StackFrame::Native(u64::MAX),
    ];
    let mut buf = [0u8; 256];
    let stack = Stack {
        id: 3,
        frames: frames.clone(),
    };
    let encoded = Stacks::encode(&mut buf, &mut [stack.clone()].into_iter().peekable()).unwrap();
    assert_eq!(encoded.taken, 1);
    assert_eq!(encoded.len, 12 + 4 + 6 + 9 * frames.len());
    let decoded = Stacks::decode(payload(&buf[..encoded.len], ChunkKind::Stacks), 2);
    assert_eq!(decoded, Ok(Stacks(vec![stack])));
}

#[test]
fn the_agents_tagged_words_give_the_frames_kind() {
    let frames = [
        StackFrame::Native(0x7fff_ffff_f000),
        StackFrame::Interpreter(FrameKind::Python, 1),
        StackFrame::Interpreter(FrameKind::Java, u32::MAX),
        StackFrame::Interpreter(FrameKind::JavaScript, 0),
    ];
    let words: Vec<u64> = frames.iter().map(|f| f.to_tagged()).collect();
    assert_eq!(words[0], 0x7fff_ffff_f000);
    assert_eq!(words[1], 0x0100_0000_0000_0001);
    assert_eq!(words[2], 0x0300_0000_ffff_ffff);
    assert_eq!(words[3], 0x0200_0000_0000_0000);
    let back: Vec<StackFrame> = words.iter().map(|&w| StackFrame::from_tagged(w)).collect();
    assert_eq!(back, frames);
    // The writer encodes the table's words directly.
    let mut buf = [0u8; 256];
    let stack = Stack {
        id: 1,
        frames: TaggedFrames(&words),
    };
    let encoded = Stacks::encode(&mut buf, &mut [stack].into_iter().peekable()).unwrap();
    let decoded = Stacks::decode(payload(&buf[..encoded.len], ChunkKind::Stacks), 2).unwrap();
    assert_eq!(decoded.0[0].frames, frames);
}

#[test]
fn a_version_1_file_still_reads_every_frame_as_native() {
    let mut file = v1_header();
    // Process (v1 had the same layout), a v1 Stacks chunk (bare u64 frames), a Leaks chunk,
    // End.
    let mut process = Vec::new();
    for field in [42u32, 1] {
        process.extend(field.to_le_bytes());
    }
    process.extend(7u64.to_le_bytes());
    process.extend(64u32.to_le_bytes());
    process.extend(0u32.to_le_bytes());
    process.extend(1u32.to_le_bytes());
    push_text(&mut process, b"./prog");
    push_text(&mut process, b"/bin/prog");
    push_text(&mut process, b"0.1.0");
    push_chunk(&mut file, ChunkKind::Process as u16, &process);
    let mut stacks = Vec::new();
    stacks.extend(1u32.to_le_bytes());
    stacks.extend(5u32.to_le_bytes());
    stacks.extend(2u16.to_le_bytes());
    stacks.extend(0x1000u64.to_le_bytes());
    stacks.extend(0x0100_0000_0000_2000u64.to_le_bytes());
    push_chunk(&mut file, ChunkKind::Stacks as u16, &stacks);
    let mut leaks = Vec::new();
    leaks.extend(1u32.to_le_bytes());
    leaks.extend(5u32.to_le_bytes());
    leaks.push(LeakKind::DefinitelyLost as u8);
    leaks.extend(4096u64.to_le_bytes());
    leaks.extend(1u64.to_le_bytes());
    push_chunk(&mut file, ChunkKind::Leaks as u16, &leaks);
    push_chunk(&mut file, ChunkKind::End as u16, &[]);

    let profile = read_profile_bytes(&file).unwrap();
    assert_eq!(profile.version, 1);
    assert_eq!(profile.process.as_ref().unwrap().argv, ["./prog"]);
    assert_eq!(profile.process.as_ref().unwrap().kernel_start_ticks, None);
    // In v1 every frame is a return address, whatever its bits.
    assert_eq!(
        profile.stacks[&5],
        [
            StackFrame::Native(0x1000),
            StackFrame::Native(0x0100_0000_0000_2000)
        ]
    );
    assert_eq!(
        profile.leaks,
        [leak_of(5, LeakKind::DefinitelyLost, 4096, 1)]
    );
    assert!(profile.complete);
    assert_eq!(profile.damage, None);
}

#[test]
fn later_and_earlier_versions_are_refused_with_the_version_named() {
    let mut file = encode_profile(&sample_profile(), 1 << 16);
    file[8..12].copy_from_slice(&4u32.to_le_bytes());
    let error = read_profile_bytes(&file).unwrap_err();
    assert!(matches!(error, ReadError::UnsupportedVersion(4)));
    assert_eq!(
        error.to_string(),
        "profile format version 4 (at byte 8) is not supported (this leakscope reads versions 1 to 3)"
    );
    file[8..12].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        read_profile_bytes(&file),
        Err(ReadError::UnsupportedVersion(0))
    ));
    assert!(matches!(
        read_profile_bytes(b"#!/bin/sh\necho hello world\n"),
        Err(ReadError::NotAProfile)
    ));
    assert!(matches!(read_profile_bytes(b""), Err(ReadError::Empty)));
    assert!(matches!(read_profile_bytes(b"LEAK"), Err(ReadError::Empty)));
}

#[test]
fn read_profile_names_the_file_in_errors_and_damage() {
    let dir = std::env::temp_dir().join(format!("leakscope-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let foreign = dir.join("foreign.profile");
    std::fs::write(&foreign, b"#!/bin/sh\necho hello world\n").unwrap();
    let error = read_profile(&foreign).unwrap_err();
    assert!(matches!(error.problem(), ReadError::NotAProfile));
    assert_eq!(
        error.to_string(),
        format!(
            "{}: not a leakscope profile (wrong magic bytes at byte 0)",
            foreign.display()
        )
    );

    let file = encode_profile(&sample_profile(), 1 << 16);
    let cut = dir.join("cut.profile");
    std::fs::write(&cut, &file[..HEADER_LEN + 5]).unwrap();
    let profile = read_profile(&cut).unwrap();
    assert_eq!(
        profile.damage.unwrap(),
        format!(
            "{}: the file ends inside a chunk header at byte 16 (cut short)",
            cut.display()
        )
    );
    let missing = dir.join("missing.profile");
    let error = read_profile(&missing).unwrap_err();
    assert!(matches!(error.problem(), ReadError::Io(_)));
    assert!(error
        .to_string()
        .starts_with(&missing.display().to_string()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_truncation_keeps_the_whole_chunks_before_it() {
    let profile = sample_profile();
    let file = encode_profile(&profile, 400);
    let boundaries = chunk_boundaries(&file);
    // Only the RunResult chunk (appended by `leakscope run`) comes after the agent's End.
    let run_result_at = boundaries[boundaries.len() - 2];
    for cut in HEADER_LEN..file.len() {
        let read = read_profile_bytes(&file[..cut]).unwrap();
        assert_eq!(read.complete, cut >= run_result_at, "cut at {cut}");
        // A cut between chunks is indistinguishable from a finished write; any other cut
        // is reported, with the offset of the chunk it cut.
        let last_whole = *boundaries.iter().filter(|&&b| b <= cut).max().unwrap();
        match &read.damage {
            None => assert_eq!(last_whole, cut, "cut at {cut}"),
            Some(damage) => {
                assert_ne!(last_whole, cut);
                assert!(
                    damage.contains(&format!("at byte {last_whole} ")),
                    "cut at {cut}: {damage}"
                );
            }
        }
        // Everything before the cut is there: the chunks read are those of the whole prefix.
        let kept = read_profile_bytes(&file[..last_whole]).unwrap();
        let mut read = read;
        read.damage = None;
        assert_profiles_equal(&read, &kept);
    }
    // Cut right after the Process chunk: the process survives, nothing else.
    let read = read_profile_bytes(&file[..boundaries[1]]).unwrap();
    assert_eq!(read.process, profile.process);
    assert!(read.stacks.is_empty());
    assert_eq!(read.damage, None);
}

#[test]
fn a_flipped_byte_is_damage_at_its_chunk_not_a_panic() {
    let file = encode_profile(&sample_profile(), 400);
    let boundaries = chunk_boundaries(&file);
    let kinds = chunk_kinds(&file);
    let end = kinds
        .iter()
        .position(|&k| k == ChunkKind::End as u16)
        .unwrap();
    let after_end = boundaries[end + 1];
    for at in HEADER_LEN..file.len() {
        let mut bad = file.clone();
        bad[at] ^= 0x5a;
        let read = read_profile_bytes(&bad).unwrap();
        let chunk = *boundaries.iter().filter(|&&b| b <= at).max().unwrap();
        let damage = read
            .damage
            .unwrap_or_else(|| panic!("byte {at}: no damage"));
        assert!(
            damage.contains(&format!("at byte {chunk} ")),
            "byte {at}: {damage}"
        );
        // Only the RunResult chunk comes after the agent's End.
        assert_eq!(read.complete, at >= after_end, "byte {at}");
    }
}

#[test]
fn malformed_payloads_name_the_offset_of_the_bad_field() {
    // A valid checksum over a Leaks chunk whose count claims more records than it holds.
    let mut file = v2_header();
    let mut leaks = Vec::new();
    leaks.extend(1000u32.to_le_bytes());
    leaks.extend([0u8; 21]);
    push_chunk(&mut file, ChunkKind::Leaks as u16, &leaks);
    let read = read_profile_bytes(&file).unwrap();
    assert_eq!(
        read.damage.as_deref(),
        Some(
            "the chunk at byte 16 is malformed (a count larger than the chunk can hold at byte 28); nothing after it was read"
        )
    );
    // An unknown frame kind in a Stacks chunk: the offset of the kind byte.
    let mut file = v2_header();
    let mut stacks = Vec::new();
    stacks.extend(1u32.to_le_bytes());
    stacks.extend(1u32.to_le_bytes());
    stacks.extend(1u16.to_le_bytes());
    stacks.push(9);
    stacks.extend(0u64.to_le_bytes());
    push_chunk(&mut file, ChunkKind::Stacks as u16, &stacks);
    let read = read_profile_bytes(&file).unwrap();
    assert_eq!(
        read.damage.as_deref(),
        Some(
            "the chunk at byte 16 is malformed (an unknown frame kind at byte 38); nothing after it was read"
        )
    );
    // An unknown chunk kind is skipped, not damage.
    let mut file = v2_header();
    push_chunk(&mut file, 999, b"from the future");
    push_chunk(&mut file, ChunkKind::End as u16, &[]);
    let read = read_profile_bytes(&file).unwrap();
    assert!(read.complete);
    assert_eq!(read.damage, None);
}

/// A version 3 file's Python frames are code locations; the reader turns each into an
/// interned frame with the line its code's table gives (here 3.9's `co_lnotab`: from byte 4
/// one line on, from byte 10 two more), sharing one frame per (code, line, column).
#[test]
fn python_code_locations_are_read_as_frames_with_their_lines() {
    let mut file = header(3);
    let mut buf = vec![0u8; 4096];
    let runtime = Runtime {
        time_ns: 5,
        runtime: RuntimeKind::CPython,
        event: RuntimeEvent::Detected,
        version: 0x0309_12f0,
        code_address: 0x4000,
    };
    let len = runtime.encode(&mut buf).unwrap();
    file.extend(&buf[..len]);
    let code = PythonCode {
        id: 1,
        address: 0x7f00_0000_1000,
        first_line: 40,
        name: "handle",
        file: "/srv/app.py",
        line_table: [4u8, 1, 6, 2],
    };
    let encoded = PythonCodes::encode(&mut buf, &mut [code].into_iter().peekable()).unwrap();
    file.extend(&buf[..encoded.len]);
    let at = |code, offset| StackFrame::PythonCode { code, offset };
    let words: Vec<u64> = [at(1, 0), at(1, 1), at(1, 5), at(2, 3)]
        .iter()
        .map(|f| f.to_tagged())
        .collect();
    let stack = Stack {
        id: 1,
        frames: TaggedFrames(&words),
    };
    let encoded = Stacks::encode(&mut buf, &mut [stack].into_iter().peekable()).unwrap();
    file.extend(&buf[..encoded.len]);

    let profile = read_profile_bytes(&file).unwrap();
    assert_eq!(profile.damage, None);
    assert_eq!(profile.runtimes, vec![runtime]);
    let frames = &profile.stacks[&1];
    let lines: Vec<(String, String, u32)> = frames
        .iter()
        .map(|frame| match *frame {
            StackFrame::Interpreter(FrameKind::Python, id) => {
                let f = &profile.frames[&id];
                (f.function.clone(), f.file.clone(), f.line)
            }
            other => panic!("not resolved: {other:?}"),
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("handle".into(), "/srv/app.py".into(), 40),
            ("handle".into(), "/srv/app.py".into(), 40),
            ("handle".into(), "/srv/app.py".into(), 43),
            ("<unknown Python code #2>".into(), String::new(), 0),
        ]
    );
    // Offsets 0 and 1 are one line: one interned frame.
    assert_eq!(frames[0], frames[1]);
    assert_eq!(profile.frames.len(), 3);
}

//! A hand-built profile of format version 2 whose leak stack mixes native and interpreter
//! frames, through the whole pipeline (`leakscope report`: reading, analysis, symbolization,
//! the text and the JSON report), with exact expected output.

use std::path::Path;
use std::process::Command;

use leakscope_format::*;

/// A Python program's leak: `malloc`'s caller in no module (an address of JIT code, say),
/// then two Python frames, then a native frame again.
fn write_profile(path: &Path) {
    let mut file = vec![0u8; HEADER_LEN];
    encode_file_header(&mut file).unwrap();
    let mut buf = vec![0u8; 4096];
    let push = |len: usize, buf: &[u8], file: &mut Vec<u8>| file.extend(&buf[..len]);

    let process = Process {
        pid: 4242,
        ppid: 1,
        start_unix_ns: 1_700_000_000_000_000_000,
        max_frames: 64,
        flags: 0,
        argv: ["python3", "job.py"],
        exe: "/usr/bin/python3",
        agent_version: "0.1.0",
        kernel_start_ticks: Some(1),
    };
    push(process.encode(&mut buf).unwrap(), &buf, &mut file);

    let frames = [
        InterpreterFrame {
            id: 1,
            kind: FrameKind::Python,
            function: "process_request",
            file: "/srv/app/job.py",
            line: 12,
            column: 9,
            identity: 0x7f12_3456_0000,
        },
        InterpreterFrame {
            id: 2,
            kind: FrameKind::Python,
            function: "<module>",
            file: "/srv/app/job.py",
            line: 30,
            column: 0,
            identity: 0x7f12_3456_1000,
        },
    ];
    let encoded = Frames::encode(&mut buf, &mut frames.into_iter().peekable()).unwrap();
    assert_eq!(encoded.taken, 2);
    push(encoded.len, &buf, &mut file);

    let stack = Stack {
        id: 1,
        frames: vec![
            StackFrame::Native(0x1234_5678),
            StackFrame::Interpreter(FrameKind::Python, 1),
            StackFrame::Interpreter(FrameKind::Python, 2),
            StackFrame::Native(0x1234_9abc),
        ],
    };
    let encoded = Stacks::encode(&mut buf, &mut [stack].into_iter().peekable()).unwrap();
    push(encoded.len, &buf, &mut file);

    let exit = Exit {
        how: ExitHow::Exit,
        code: 0,
        signal: 0,
        time_ns: 5_000_000,
    };
    push(exit.encode(&mut buf).unwrap(), &buf, &mut file);
    let scan = Scan {
        duration_ns: 1000,
        live_blocks: 1,
        flags: scan_flags::LIBC_FREERES,
        ..Scan::default()
    };
    push(scan.encode(&mut buf).unwrap(), &buf, &mut file);
    let leak = LeakRecord {
        stack: 1,
        kind: LeakKind::DefinitelyLost,
        bytes: 256,
        blocks: 1,
    };
    let encoded = Leaks::encode(&mut buf, &mut [leak].into_iter().peekable()).unwrap();
    push(encoded.len, &buf, &mut file);
    push(End.encode(&mut buf).unwrap(), &buf, &mut file);
    let result = RunResult {
        code: Some(0),
        signal: None,
        wall_ns: 6_000_000,
    };
    push(result.encode(&mut buf).unwrap(), &buf, &mut file);
    std::fs::write(path, file).unwrap();
}

fn report(path: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .arg("report")
        .args(extra)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_mixed_stack_reads_symbolizes_and_reports_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.profile");
    write_profile(&path);

    let text = report(&path, &[]);
    let stack: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.contains("definitely lost in loss record"))
        .take(5)
        .collect();
    assert_eq!(
        stack,
        [
            "256 bytes in 1 block are definitely lost in loss record 1 of 1",
            "   at 0x12345678: ???",
            "   by process_request (job.py:12) [python]",
            "   by <module> (job.py:30) [python]",
            "   by 0x12349ABC: ???",
        ],
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&report(&path, &["--format", "json"])).unwrap();
    let frames = &json["leaks"][0]["stack"];
    assert_eq!(
        *frames,
        serde_json::json!([
            {
                "kind": "native",
                "address": "0x12345678",
                "function": null,
                "file": null,
                "line": null,
                "module": null,
                "module_offset": null,
                "inlined": false
            },
            {
                "kind": "python",
                "address": null,
                "function": "process_request",
                "file": "/srv/app/job.py",
                "line": 12,
                "module": null,
                "module_offset": null,
                "inlined": false
            },
            {
                "kind": "python",
                "address": null,
                "function": "<module>",
                "file": "/srv/app/job.py",
                "line": 30,
                "module": null,
                "module_offset": null,
                "inlined": false
            },
            {
                "kind": "native",
                "address": "0x12349abc",
                "function": null,
                "file": null,
                "line": null,
                "module": null,
                "module_offset": null,
                "inlined": false
            }
        ]),
        "{json:#}"
    );
    assert_eq!(json["format_version"], 1);
}

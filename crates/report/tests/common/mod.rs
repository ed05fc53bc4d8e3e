//! Hand-built reports shared by the golden and the contract tests: every kind of loss record,
//! every kind of frame, a report with nothing leaked, and one with children.

use std::collections::BTreeMap;

use leakscope_analysis::{ExitStatus, Findings, LeakCheck, Leaks, Shortfall, StartedBy};
use leakscope_format::{
    scan_flags, Exit, ExitHow, Frame, LeakKind, LeakRecord, Profile, Scan, StackId,
};
use leakscope_report::{Frames, Report};

const PROGRAM: &str = "/home/dev/leaky/prog";
const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const PLUGIN: &str = "/opt/plugins/libplugin.so";

fn frame(address: u64, function: &str, file: &str, line: u32) -> Frame {
    Frame {
        address,
        function: Some(function.to_owned()),
        file: Some(file.to_owned()),
        line: Some(line),
        module: Some(PROGRAM.to_owned()),
        module_offset: Some(address - 0x5555_0000_0000),
        inlined: false,
        ..Frame::default()
    }
}

fn inlined(frame: Frame) -> Frame {
    Frame {
        inlined: true,
        ..frame
    }
}

/// The report of a whole profile whose exit scan ran and found `leaks`.
fn report_of(pid: u32, command: &[&str], exit: ExitStatus, leaks: &[LeakRecord]) -> Report {
    let profile = Profile {
        leaks: leaks.to_vec(),
        exit: Some(Exit {
            how: ExitHow::Exit,
            code: exit.code.unwrap_or(0),
            signal: 0,
            time_ns: 1_250_000_000,
        }),
        scan: Some(Scan {
            flags: scan_flags::LIBC_FREERES,
            ..Scan::default()
        }),
        complete: true,
        ..Profile::default()
    };
    Report {
        findings: Findings {
            pid,
            command: command.iter().map(|word| word.to_string()).collect(),
            exit,
            duration_s: 1.25,
            leaks: Leaks::of(&profile),
            ..Findings::default()
        },
        frames: vec![Frames::new()],
        gate: Default::default(),
        facts: Vec::new(),
    }
}

/// Place `children` under `parent`: their findings under its findings, their frames after
/// its own (each child's profiles renumbered to follow the parent's).
pub fn adopt(parent: &mut Report, children: Vec<Report>) {
    fn renumber(findings: &mut Findings, by: usize) {
        findings.profile += by;
        for child in &mut findings.children {
            renumber(child, by);
        }
    }
    for mut child in children {
        renumber(&mut child.findings, parent.frames.len());
        parent.frames.append(&mut child.frames);
        parent.findings.children.push(child.findings);
    }
}

fn leak(stack: StackId, kind: LeakKind, bytes: u64, blocks: u64) -> LeakRecord {
    LeakRecord {
        stack,
        kind,
        bytes,
        blocks,
    }
}

/// The leaky process watched over time: one growing site, one plateau, one bounded.
pub fn watched() -> Report {
    use leakscope_analysis::growth::{SiteGrowth, TimelinePoint, Verdict};
    let mut report = leaky();
    let finding = |stack, verdict, bytes_per_s: f64, last, exhaustion_s| SiteGrowth {
        stack,
        verdict,
        bytes_per_s,
        live_bytes_first: 0,
        live_bytes_last: last,
        live_bytes_peak: last,
        live_blocks_last: last / 64,
        confidence: 0.995,
        oldest_block_age_s: Some(3.9),
        exhaustion_s,
    };
    report.findings.growth = vec![
        finding(1, Verdict::Growing, 12_595.2, 49_152, Some(1_746_000.0)),
        finding(2, Verdict::Plateau, 0.0, 64_000, None),
        finding(3, Verdict::Bounded, -10.5, 0, None),
    ];
    report.findings.timeline = (0..4)
        .map(|i| TimelinePoint {
            t_s: 0.1 * (i + 1) as f64,
            live_bytes: 1000 * (i + 1),
            live_blocks: 10 * (i + 1),
            rss_bytes: 3_000_000,
        })
        .collect();
    report.findings.live_scans = live_scans();
    report
}

/// Three live scans (one abandoned) in which stack 1's definitely lost bytes rise.
fn live_scans() -> leakscope_analysis::LiveScans {
    use leakscope_analysis::{Amount, LiveScanPoint, LiveScans, LostGrowth};
    use leakscope_format::{LeakKind, LiveScanOutcome, LiveScanTrigger};
    let point = |t_s: f64, outcome, lost: u64| LiveScanPoint {
        t_s,
        trigger: if t_s > 3.0 {
            LiveScanTrigger::OnDemand
        } else {
            LiveScanTrigger::Schedule
        },
        outcome,
        pause_s: 0.0012 + t_s / 1000.0,
        duration_s: 0.0013 + t_s / 1000.0,
        threads_stopped: 2,
        threads_missed: u32::from(outcome == LiveScanOutcome::ThreadsMissed),
        live_blocks: 100,
        totals: [
            Amount {
                bytes: lost,
                blocks: lost / 64,
            },
            Amount::default(),
            Amount::default(),
            Amount {
                bytes: 6400,
                blocks: 100 - lost / 64,
            },
        ],
    };
    LiveScans {
        points: vec![
            point(1.0, LiveScanOutcome::Done, 640),
            point(2.0, LiveScanOutcome::ThreadsMissed, 0),
            point(3.0, LiveScanOutcome::Done, 1280),
            point(3.5, LiveScanOutcome::Done, 1600),
        ],
        lost_growing: vec![LostGrowth {
            stack: 1,
            kind: LeakKind::DefinitelyLost,
            series: vec![(1.0, 640), (3.0, 1280), (3.5, 1600)],
            bytes_per_s: 384.0,
        }],
    }
}

/// The leaky process, as a run in sampling mode reports it: estimated loss records.
pub fn sampled() -> Report {
    let mut report = leaky();
    report.findings.leaks.sample_rate = Some(524_288);
    report.findings.leaks.unsampled = leakscope_analysis::Amount {
        bytes: 1200,
        blocks: 3,
    };
    for record in &mut report.findings.leaks.records {
        record.estimated = true;
    }
    report
}

/// A process that lost memory in every way, with frames of every kind.
pub fn leaky() -> Report {
    let mut report = report_of(
        4242,
        &["./prog", "--size", "10", "two words"],
        ExitStatus {
            code: Some(0),
            signal: None,
        },
        &[
            leak(1, LeakKind::DefinitelyLost, 4096, 1),
            leak(2, LeakKind::IndirectlyLost, 64, 4),
            leak(3, LeakKind::PossiblyLost, 1_048_576, 1),
            leak(0, LeakKind::StillReachable, 24, 1),
        ],
    );
    report.frames[0] = BTreeMap::from([
        (0, Vec::new()),
        (
            1,
            vec![
                frame(
                    0x5555_0000_11a9,
                    "process_request",
                    "/home/dev/leaky/leak.c",
                    7,
                ),
                frame(0x5555_0000_11d0, "main", "/home/dev/leaky/leak.c", 12),
            ],
        ),
        (
            2,
            vec![
                inlined(frame(
                    0x5555_0000_1204,
                    "make_copy",
                    "/home/dev/leaky/leak.c",
                    15,
                )),
                frame(0x5555_0000_1204, "copy_name", "/home/dev/leaky/leak.c", 22),
                frame(0x5555_0000_11e0, "main", "/home/dev/leaky/leak.c", 13),
            ],
        ),
        (
            3,
            vec![
                Frame {
                    address: 0x7f00_0002_8a3e,
                    function: Some("strdup".to_owned()),
                    module: Some(LIBC.to_owned()),
                    module_offset: Some(0x2_8a3e),
                    ..Frame::default()
                },
                Frame {
                    address: 0x7f10_0000_1234,
                    module: Some(PLUGIN.to_owned()),
                    module_offset: Some(0x1234),
                    ..Frame::default()
                },
                Frame {
                    address: 0xdead_beef,
                    ..Frame::default()
                },
                frame(
                    0x5555_0000_1250,
                    "shapes::Factory::build(int)",
                    "/home/dev/leaky/widgets.cpp",
                    19,
                ),
            ],
        ),
    ]);
    report.findings.notes = vec![
        "the agent's stack walks were cut short in 3 allocations (no unwind info)".to_owned(),
        "could not read symbols from /opt/plugins/libplugin.so (failed to stat `/opt/plugins/libplugin.so`); its frames show as module+offset".to_owned(),
    ];
    report
}

/// A process that freed everything.
pub fn clean() -> Report {
    report_of(
        7,
        &["./clean"],
        ExitStatus {
            code: Some(0),
            signal: None,
        },
        &[],
    )
}

/// A process that forked twice: one child leaked and was killed, one freed everything.
pub fn with_children() -> Report {
    let mut parent = report_of(
        5000,
        &["./server"],
        ExitStatus {
            code: Some(1),
            signal: None,
        },
        &[leak(1, LeakKind::DefinitelyLost, 100, 2)],
    );
    parent.frames[0] = BTreeMap::from([(
        1,
        vec![frame(
            0x5555_0000_1000,
            "accept_client",
            "/src/server.c",
            40,
        )],
    )]);

    let mut worker = not_run();
    worker.findings.pid = 5001;
    worker.findings.started_by = StartedBy::Fork;
    worker.findings.command = vec!["./server".to_owned(), "--worker".to_owned()];

    let mut logger = clean();
    logger.findings.pid = 5002;
    logger.findings.started_by = StartedBy::Exec;
    logger.findings.command = vec!["./server".to_owned(), "--logger".to_owned()];
    logger.findings.exit = ExitStatus::default();
    logger.findings.duration_s = f64::NAN;

    adopt(&mut parent, vec![worker, logger]);
    parent
}

/// A process killed with SIGKILL: no exit scan, so no figures at all.
pub fn not_run() -> Report {
    let mut report = report_of(
        6000,
        &["./worker"],
        ExitStatus {
            code: None,
            signal: Some(9),
        },
        &[],
    );
    report.findings.leaks.leak_check = LeakCheck {
        shortfalls: vec![Shortfall::NotFinished {
            signal: Some(9),
            code: None,
        }],
    };
    report.findings.notes = vec!["the process did not finish normally (it was killed with SIGKILL, or replaced itself with exec), so there was no leak check at its end".to_owned()];
    report
}

/// The leaky process, whose exit scan missed two threads and could not read some memory.
pub fn incomplete() -> Report {
    let mut report = leaky();
    report.findings.leaks.leak_check = LeakCheck {
        shortfalls: vec![
            Shortfall::ThreadsMissed { threads: 2 },
            Shortfall::UnreadableMemory,
        ],
    };
    report.findings.notes.insert(
        0,
        "some threads did not stop for the leak scan; their registers were not scanned, so blocks only they point to may be reported as lost".to_owned(),
    );
    report
}

/// A process whose exit scan did not run for want of memory, with a clean child and a child
/// whose scan missed a thread but found nothing lost.
pub fn not_run_with_children() -> Report {
    let mut report = clean();
    report.findings.leaks.leak_check = LeakCheck {
        shortfalls: vec![Shortfall::NoMemory],
    };
    let mut checked = clean();
    checked.findings.pid = 8;
    checked.findings.started_by = StartedBy::Fork;
    let mut partly = clean();
    partly.findings.pid = 9;
    partly.findings.started_by = StartedBy::Fork;
    partly.findings.leaks.leak_check = LeakCheck {
        shortfalls: vec![Shortfall::ThreadsMissed { threads: 1 }],
    };
    adopt(&mut report, vec![checked, partly]);
    report
}

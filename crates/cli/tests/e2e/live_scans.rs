//! Issue 4: reachability scans while the program runs (`--scan-every`, SIGUSR1 on demand), and
//! snapshots in forked children. Programs in `tests/live/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::build::compile_file;
use crate::harness::leakscope::{wait_for_profile, Invocation};
use crate::harness::os_args;
use crate::harness::process::{self, Guard};
use crate::harness::report::{functions, read_json};

/// Compiles `tests/live/NAME.c` into `dir`.
fn build(name: &str, dir: &Path) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/live")
        .join(format!("{name}.c"));
    let binary = dir.join(name);
    compile_file(&source, &binary, &["-O1", "-pthread"], &[]).unwrap_or_else(|e| panic!("{e}"));
    binary
}

/// One block lost every 20 ms for 3 s, while two threads churn a reachable table (grown
/// and shrunk with realloc) and a linked list: every scan must see exactly the lost
/// blocks so far, none of the reachable ones, and the series must rise.
#[test]
fn lost_bytes_become_a_rising_series_and_reachable_churn_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let program = build("lost_over_time", dir.path());
    let report = Invocation::new(&program)
        .extra(["--scan-every", "300ms"])
        .run_ok(dir.path());
    let scans = report["live_scans"].as_array().unwrap();
    let done: Vec<&Value> = scans.iter().filter(|s| s["outcome"] == "done").collect();
    assert!(done.len() >= 5, "too few completed scans: {scans:#?}");
    let mut previous = 0;
    for scan in &done {
        let lost = &scan["definitely_lost"];
        let (bytes, blocks) = (
            lost["bytes"].as_u64().unwrap(),
            lost["blocks"].as_u64().unwrap(),
        );
        assert_eq!(
            bytes,
            64 * blocks,
            "only 64-byte blocks are ever lost: {scan}"
        );
        assert!(
            bytes > previous,
            "lost bytes must rise from scan to scan: {scans:#?}"
        );
        previous = bytes;
        assert_eq!(scan["indirectly_lost"]["bytes"], 0, "{scan}");
        // While main still loses blocks both churn threads run; a scan that lands after the
        // 150th block (149 lost) may find them stopped for good and being joined.
        let stopped = scan["threads_stopped"].as_u64().unwrap();
        if blocks < 149 {
            assert_eq!(stopped, 3, "main and two churn threads: {scan}");
        } else {
            assert!((1..=3).contains(&stopped), "{scan}");
        }
        let pause = scan["pause_ms"].as_f64().unwrap();
        assert!(
            pause > 0.0 && pause <= scan["duration_ms"].as_f64().unwrap(),
            "{scan}"
        );
    }
    let growing = report["lost_growth"].as_array().unwrap();
    assert_eq!(growing.len(), 1, "one site loses memory: {growing:#?}");
    assert_eq!(growing[0]["kind"], "definitely_lost");
    assert_eq!(
        functions(&growing[0]["stack"]).first().map(String::as_str),
        Some("lose_one")
    );
    // The exit check still finds all but the last block (still pointed to) lost.
    assert_eq!(report["summary"]["definitely_lost"]["blocks"], 149);
    assert_eq!(report["summary"]["definitely_lost"]["bytes"], 149 * 64);
}

/// SIGUSR1 to `leakscope run` asks for one scan now; the program goes on unharmed.
#[test]
fn sigusr1_to_leakscope_asks_for_a_scan_now() {
    let dir = tempfile::tempdir().unwrap();
    let program = build("on_demand", dir.path());
    let flag = dir.path().join("running");
    fs::write(&flag, b"").unwrap();
    let profile = dir.path().join("run.profile");
    let invocation = Invocation::new(&program)
        .args([&flag])
        .extra(os_args!["--keep", profile]);
    let report = invocation.report(dir.path());
    let mut command = invocation.command(dir.path());
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut guard = Guard::spawn(&mut command).unwrap();
    let leakscope_pid = guard.child().id() as i32;
    // The agent is ready once its writer has created the profile.
    wait_for_profile(&profile);
    process::signal(leakscope_pid, libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut scanned = false;
    while !scanned && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        scanned = leakscope_format::read_profile(&profile)
            .map(|p| !p.live_scans.is_empty())
            .unwrap_or(false);
    }
    fs::remove_file(&flag).unwrap();
    let status = guard.child().wait().unwrap();
    assert!(scanned, "no live scan was written after SIGUSR1");
    assert_eq!(status.code(), Some(0));
    let report = read_json(&report);
    let scans = report["live_scans"].as_array().unwrap();
    assert_eq!(scans.len(), 1, "{scans:#?}");
    assert_eq!(scans[0]["trigger"], "on_demand");
    assert_eq!(scans[0]["outcome"], "done");
    assert_eq!(scans[0]["definitely_lost"]["bytes"], 4096);
    assert_eq!(report["summary"]["definitely_lost"]["bytes"], 4096);
}

/// A forked child gets its own writer thread: snapshots while it runs, and a verdict.
#[test]
fn a_forked_child_is_snapshotted_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let program = build("forked_child_grows", dir.path());
    let report = Invocation::new(&program).run_ok(dir.path());
    let children = report["children"].as_array().unwrap();
    assert_eq!(children.len(), 1);
    let child = &children[0];
    let timeline = child["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 20, "the child's timeline: {timeline:#?}");
    let growing: Vec<&Value> = child["growth"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["verdict"] == "growing")
        .collect();
    assert_eq!(growing.len(), 1, "{:#?}", child["growth"]);
    assert_eq!(
        functions(&growing[0]["stack"]).first().map(String::as_str),
        Some("child_work")
    );
    assert_eq!(child["summary"]["still_reachable"]["bytes"], 300_000);
}

//! Golden tests of the real pipeline after the run: checked-in profiles are read
//! (`leakscope_format::tree`), analysed (`leakscope_analysis::analyze`), symbolized
//! (`leakscope_symbolize`, blazesym over real DWARF) and rendered as text and JSON
//! (`leakscope_report`), and the output is compared with `tests/golden_pipeline/NAME.txt` and
//! `NAME.json`, addresses and pids redacted as memcheck's own tests filter them.
//!
//! The cases, each a fixture of the corpus recorded by `leakscope run`:
//! - `tree_root_lost`: a definitely lost block with 14 indirectly lost blocks below it;
//! - `fork_child_leak`: a forked child that leaks (its own profile, `NAME.profile.PID`);
//! - `memo_cache`: a growth series (`tests/growth/`), one growing site among bounded ones,
//!   and the diff of its first and last snapshot (`memo_cache.diff.txt`, `leakscope diff`'s
//!   pipeline);
//! - `lost_over_time`: live scans (`--scan-every 300ms`) whose lost bytes rise.
//!
//! **Why the binaries are rebuilt.** Symbolization needs the executable that ran, and binaries
//! are never committed. So the test compiles each fixture again from its source in this
//! repository, with fixed flags that make the build reproducible (`-ffile-prefix-map` and
//! `-fdebug-prefix-map` take the directories out of the debug info: two builds in different
//! directories are byte for byte the same), and points the profile's module of the fixture
//! at the fresh build. The profile records the module's GNU build id and the symbolizer
//! refuses a file whose build id differs, so a different compiler or an edited fixture source
//! makes the test fail with "changed since the run" notes rather than pass on wrong symbols:
//! record the profiles again then (below).
//!
//! **What is left out.** Only the fixture's own frames are symbolized: the other modules
//! (libc, the dynamic loader) are removed from the profile before analysis, with their
//! addresses in the stacks, since their symbols are those of whatever libc this machine has.
//! The wall-clock duration of the run is redacted with the pids and addresses; the times of
//! the snapshots and scans are not, as they are fixed by the checked-in profile and the growth
//! verdicts are computed from them.
//!
//! **Bless and record.** `LEAKSCOPE_BLESS=1` rewrites the expected output (review the diff);
//! `LEAKSCOPE_RECORD=1` first runs each fixture again under this build's `leakscope run`
//! (the agent must be built: `cargo xtask test` does it) and replaces its profiles, then
//! blesses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use leakscope_format::tree::{read_tree, ProfileTree};
use leakscope_format::{Profile, StackFrame};
use leakscope_report::{render_json, render_text, Report, TextOptions};
use leakscope_symbolize::Symbolizer;

/// One recorded fixture.
struct Case {
    /// The name of its files in `tests/golden_pipeline/`, and of the binary.
    name: &'static str,
    /// Its source, relative to `tests/`.
    source: &'static str,
    /// Compiler flags besides the reproducibility ones.
    flags: &'static [&'static str],
    /// Options of `leakscope run` when recording.
    run_options: &'static [&'static str],
}

const TREE_ROOT_LOST: Case = Case {
    name: "tree_root_lost",
    source: "programs/tree_root_lost.c",
    flags: &["-g", "-O0", "-pthread"],
    run_options: &[],
};

const FORK_CHILD_LEAK: Case = Case {
    name: "fork_child_leak",
    source: "programs/fork_child_leak.c",
    flags: &["-g", "-O0", "-pthread"],
    run_options: &[],
};

const MEMO_CACHE: Case = Case {
    name: "memo_cache",
    source: "growth/memo_cache.c",
    flags: &["-g", "-O1", "-lm"],
    run_options: &["--interval", "250ms"],
};

const LOST_OVER_TIME: Case = Case {
    name: "lost_over_time",
    source: "live/lost_over_time.c",
    flags: &["-g", "-O1", "-pthread"],
    run_options: &["--scan-every", "300ms", "--interval", "500ms"],
};

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn golden_dir() -> PathBuf {
    tests_dir().join("golden_pipeline")
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// Compile `case` into `dir`, reproducibly: the source and build directories are mapped to
/// `.` in the debug info, so the binary (and its build id) does not depend on where either is.
fn build(case: &Case, dir: &Path) -> PathBuf {
    let source = tests_dir().join(case.source);
    let source_dir = source.parent().unwrap();
    let binary = dir.join(case.name);
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .current_dir(dir)
        .arg(format!("-ffile-prefix-map={}=.", source_dir.display()))
        .arg(format!("-fdebug-prefix-map={}=.", dir.display()))
        .arg(format!("-I{}", tests_dir().join("programs").display()))
        .arg("-o")
        .arg(case.name)
        .arg(&source)
        .args(case.flags)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the compiler '{compiler}': {e}"));
    assert!(status.success(), "{} does not compile", case.source);
    binary
}

/// Run the fixture under `leakscope run` and keep its profiles in `tests/golden_pipeline/`.
fn record(case: &Case, binary_dir: &Path) {
    let profile = golden_dir().join(format!("{}.profile", case.name));
    let _ = std::fs::remove_file(&profile);
    for old in leakscope_format::tree::child_profile_paths(&profile) {
        let _ = std::fs::remove_file(old);
    }
    let output = Command::new(env!("CARGO_BIN_EXE_leakscope"))
        .current_dir(binary_dir)
        .arg("run")
        .arg("--keep")
        .arg(&profile)
        .args(case.run_options)
        .arg("--")
        .arg(format!("./{}", case.name))
        .output()
        .unwrap();
    assert!(
        profile.exists(),
        "recording {} left no profile: {}",
        case.name,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Keep only the module of the fixture (pointed at `binary`) and the addresses in it.
fn only_the_fixture(profile: &mut Profile, case: &Case, binary: &Path) {
    let is_fixture = |path: &str| Path::new(path).file_name() == Some(case.name.as_ref());
    profile.modules.retain(|module| is_fixture(&module.path));
    for module in &mut profile.modules {
        module.path = binary.display().to_string();
    }
    let modules = profile.modules.clone();
    for frames in profile.stacks.values_mut() {
        frames.retain(|frame| match *frame {
            StackFrame::Native(address) => modules.iter().any(|m| m.contains(address)),
            StackFrame::Interpreter(..) | StackFrame::PythonCode { .. } => true,
        });
    }
}

/// The pipeline of `leakscope report`: analyse the tree, symbolize the stacks the findings
/// name, per profile, and gather the symbolizer's notes (the CLI's `pipeline::build_report`,
/// without its progress messages).
fn report_of(tree: &ProfileTree) -> Report {
    let profiles = tree.profiles();
    let analysis = leakscope_analysis::analyze(tree);
    let stacks = analysis.stacks(profiles.len());
    let mut symbolizer = Symbolizer::new();
    let frames = symbolizer.symbolize_each(&profiles, &stacks);
    Report::new(analysis.root, frames, symbolizer.notes())
}

/// Addresses, pids, the run's duration, the fresh binary's directory and the tool's version
/// replaced by placeholders.
fn redact(text: &str, binary_dir: &Path, pids: &BTreeMap<u32, String>) -> String {
    let mut text = text.replace(&binary_dir.display().to_string(), "BIN");
    for (pid, name) in pids.iter().rev() {
        for (before, after) in [
            (format!("Process {pid}"), format!("Process {name}")),
            (format!("process {pid}"), format!("process {name}")),
            (format!("(of {pid})"), format!("(of {name})")),
            (format!("\"pid\": {pid},"), format!("\"pid\": \"{name}\",")),
        ] {
            text = text.replace(&before, &after);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        let digits = rest[at + 2..]
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .count();
        out.push_str(if digits > 0 { "0x........" } else { "0x" });
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out.lines()
        .map(|line| {
            if let Some(at) = line.find("\"duration_s\": ") {
                format!("{}\"duration_s\": D,", &line[..at])
            } else if let Some(at) = line.find("\"version\": ") {
                format!("{}\"version\": V", &line[..at])
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if env_set("LEAKSCOPE_BLESS") || env_set("LEAKSCOPE_RECORD") {
        std::fs::write(&path, actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {} ({error}); run with LEAKSCOPE_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file. If the change is intended, rerun with \
         LEAKSCOPE_BLESS=1 and review the diff; if the symbolizer's notes say the fixture \
         changed since the run (another compiler, an edited source), record it again with \
         LEAKSCOPE_RECORD=1.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// Record (if asked), rebuild, read, pipeline, render, redact, compare.
fn check(case: &Case) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let binary = build(case, dir.path());
    if env_set("LEAKSCOPE_RECORD") {
        record(case, dir.path());
    }
    let mut tree = read_tree(&golden_dir().join(format!("{}.profile", case.name)))
        .expect("read the checked-in profile");
    assert!(tree.unreadable.is_empty(), "{:?}", tree.unreadable);
    only_the_fixture(&mut tree.root, case, &binary);
    for (_, profile) in &mut tree.descendants {
        only_the_fixture(profile, case, &binary);
    }
    // Pids in the order their profiles were read: PID1 the root, PID2... the others.
    let pids: BTreeMap<u32, String> = tree
        .profiles()
        .iter()
        .filter_map(|profile| profile.process.as_ref().map(|p| p.pid))
        .enumerate()
        .map(|(index, pid)| (pid, format!("PID{}", index + 1)))
        .collect();
    let report = report_of(&tree);
    let text = render_text(
        &report,
        TextOptions {
            color: false,
            ..TextOptions::default()
        },
    );
    check_golden(
        &format!("{}.txt", case.name),
        &redact(&text, dir.path(), &pids),
    );
    check_golden(
        &format!("{}.json", case.name),
        &redact(&render_json(&report), dir.path(), &pids),
    );
    report
}

#[test]
fn a_lost_tree_gives_one_definitely_and_fourteen_indirectly_lost_blocks() {
    let report = check(&TREE_ROOT_LOST);
    let summary = report.findings.leaks.summary;
    assert_eq!(
        (
            summary.definitely_lost.bytes,
            summary.definitely_lost.blocks
        ),
        (24, 1)
    );
    assert_eq!(
        (
            summary.indirectly_lost.bytes,
            summary.indirectly_lost.blocks
        ),
        (336, 14)
    );
}

#[test]
fn a_forked_child_is_reported_under_its_parent_and_fails_the_gate() {
    let report = check(&FORK_CHILD_LEAK);
    assert!(report.findings.leaks.lost().is_zero());
    assert_eq!(report.findings.children.len(), 1);
    let child = &report.findings.children[0];
    assert_eq!(child.started_by, leakscope_analysis::StartedBy::Fork);
    assert_eq!(child.leaks.lost().bytes, 100);
    let gate = leakscope_analysis::Gate::of(&report.findings, Default::default());
    assert!(!gate.passes());
    assert_eq!(gate.processes_that_lost, 1);
}

#[test]
fn a_memo_cache_is_growing() {
    let report = check(&MEMO_CACHE);
    assert!(report
        .findings
        .growth
        .iter()
        .any(|site| site.verdict == leakscope_analysis::Verdict::Growing));
}

/// `leakscope diff FILE`'s pipeline over the growth series: compare its first and last
/// snapshot, symbolize the stacks the diff shows, render.
#[test]
fn the_diff_of_a_memo_cache_s_first_and_last_snapshot_puts_the_cache_first() {
    use leakscope_analysis::{compare, Comparison, DiffSide};
    let dir = tempfile::tempdir().unwrap();
    let binary = build(&MEMO_CACHE, dir.path());
    let mut profile =
        leakscope_format::read_profile(&golden_dir().join("memo_cache.profile")).unwrap();
    only_the_fixture(&mut profile, &MEMO_CACHE, &binary);
    let comparison = Comparison::Moments {
        profile: &profile,
        from: None,
        to: None,
    };
    let diff = compare(comparison, 5).unwrap();
    let old_frames = Symbolizer::new().symbolize(&profile, &diff.stacks(DiffSide::Old));
    assert!(diff.stacks(DiffSide::New).is_empty());
    let report = leakscope_report::DiffReport {
        old_name: "memo_cache.profile".to_owned(),
        new_name: None,
        diff,
        old_frames,
        new_frames: Default::default(),
    };
    let text = leakscope_report::render_diff_text(&report);
    check_golden(
        "memo_cache.diff.txt",
        &redact(&text, dir.path(), &BTreeMap::new()),
    );
    let first = &report.diff.sites[0];
    assert!(first.delta.bytes_delta > 1_000_000, "{first:?}");
}

#[test]
fn live_scans_see_the_lost_bytes_rise() {
    let report = check(&LOST_OVER_TIME);
    assert!(report.findings.live_scans.points.len() >= 5);
    assert_eq!(report.findings.live_scans.lost_growing.len(), 1);
}

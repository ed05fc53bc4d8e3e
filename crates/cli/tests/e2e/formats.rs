//! Issue 10, items 2 and 3: `--format folded`, `flamegraph` and `pprof` on fixtures of the
//! corpus whose lost bytes per function are known, for `leakscope run` and `leakscope report`.
//! The folded lines are checked exactly, the SVG is parsed as XML, and the pprof profile is
//! decoded by Google's protobuf library for Python (`tests/formats/decode_pprof.py`), not by
//! leakscope's encoder, and its totals held to the JSON report of the same profile.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::harness::build::corpus;
use crate::harness::expect::{Exit, Level};
use crate::harness::leakscope::{assert_program_did_not_run, command, invoke};
use crate::harness::process::Output;

/// `leakscope run --keep DIR/run.profile FORMAT_ARGS PROGRAM ARGS` on a corpus fixture at -O0,
/// checked to end as the fixture does (0); returns the profile and the program's pid.
fn run_fixture(dir: &Path, name: &str, format_args: &[&str]) -> (PathBuf, u32, PathBuf) {
    let corpus = corpus();
    let fixture = corpus.fixture(name);
    let program = corpus.binary(fixture, Level::O0);
    let profile = dir.join("run.profile");
    let mut args: Vec<OsString> = vec!["run".into(), "--keep".into(), profile.clone().into()];
    args.extend(format_args.iter().map(OsString::from));
    args.push(program.clone().into());
    args.extend(corpus.args(fixture, Level::O0));
    let output = invoke(dir, &args);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    (profile, pid_of(&output), program)
}

/// The pid in `leakscope: watching PID <pid> (profile ...)`.
fn pid_of(output: &Output) -> u32 {
    let stderr = output.stderr_text();
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("leakscope: watching PID "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no 'watching PID' line on stderr:\n{stderr}"))
}

/// `leakscope report PROFILE ARGS`, checked to succeed; its standard output.
fn report(dir: &Path, profile: &Path, args: &[&str]) -> Vec<u8> {
    let mut all: Vec<OsString> = vec!["report".into(), profile.into()];
    all.extend(args.iter().map(OsString::from));
    let output = invoke(dir, &all);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    output.stdout
}

fn json_report(dir: &Path, profile: &Path) -> Value {
    serde_json::from_slice(&report(dir, profile, &["--format", "json"])).expect("JSON report")
}

/// Definitely plus indirectly lost bytes and blocks, and every unfreed byte and block, from
/// the JSON report's summary.
fn lost_and_unfreed(json: &Value) -> ((u64, u64), (u64, u64)) {
    let amount = |kind: &str, field: &str| json["summary"][kind][field].as_u64().unwrap();
    let sum = |kinds: &[&str], field: &str| kinds.iter().map(|k| amount(k, field)).sum::<u64>();
    let lost = ["definitely_lost", "indirectly_lost"];
    let all = [
        "definitely_lost",
        "indirectly_lost",
        "possibly_lost",
        "still_reachable",
    ];
    (
        (sum(&lost, "bytes"), sum(&lost, "blocks")),
        (sum(&all, "bytes"), sum(&all, "blocks")),
    )
}

/// The line number of the first line of the fixture's source that contains `text`.
fn line_of(fixture: &str, text: &str) -> usize {
    let corpus = corpus();
    let source = fs::read_to_string(&corpus.fixture(fixture).source).unwrap();
    source
        .lines()
        .position(|line| line.contains(text))
        .unwrap_or_else(|| panic!("{fixture}'s source has no line with {text:?}"))
        + 1
}

/// A folded line's stack and count.
fn split(line: &str) -> (&str, u64) {
    let (stack, count) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("not a folded line: {line:?}"));
    (
        stack,
        count
            .parse()
            .unwrap_or_else(|_| panic!("no count in {line:?}")),
    )
}

#[test]
fn folded_stacks_of_a_loop_are_one_line_of_its_lost_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lost.folded");
    let (profile, pid, program) = run_fixture(
        dir.path(),
        "loop_leaks",
        &["--format", "folded", "--output", out.to_str().unwrap()],
    );
    let folded = fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = folded.lines().collect();
    assert_eq!(lines.len(), 1, "{folded}");
    let (stack, bytes) = split(lines[0]);
    assert_eq!(bytes, 640, "ten blocks of 64 bytes: {folded}");
    let root = format!("pid {pid}: {}", program.display());
    assert!(stack.starts_with(&format!("{root};")), "{folded}");
    // Outermost first, each frame as `function (file:line)`; above main, libc's start-up.
    let leaf = format!(
        ";main (loop_leaks.c:{});leak_many (loop_leaks.c:{});leak_one (loop_leaks.c:{})",
        line_of("loop_leaks", "leak_many(10);"),
        line_of("loop_leaks", "leak_one(i);"),
        line_of("loop_leaks", "malloc(64)"),
    );
    assert!(stack.ends_with(&leaf), "{folded}\ndoes not end with {leaf}");
    // `leakscope report` gives the same bytes again from the kept profile.
    assert_eq!(
        report(dir.path(), &profile, &["--format", "folded"]),
        folded.as_bytes()
    );
}

#[test]
fn folded_stacks_of_a_lost_tree_add_up_to_definitely_and_indirectly_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (profile, pid, _) = run_fixture(dir.path(), "tree_root_lost", &["--output", "report.txt"]);
    let json = json_report(dir.path(), &profile);
    let ((lost_bytes, lost_blocks), _) = lost_and_unfreed(&json);
    assert_eq!((lost_bytes, lost_blocks), (24 + 336, 15), "{json}");

    let folded = String::from_utf8(report(dir.path(), &profile, &["--format", "folded"])).unwrap();
    let leaf = format!(
        ";make_tree (tree_root_lost.c:{})",
        line_of("tree_root_lost", "malloc(sizeof *n)")
    );
    let mut total = 0;
    for line in folded.lines() {
        let (stack, bytes) = split(line);
        assert!(stack.starts_with(&format!("pid {pid}: ")), "{line}");
        assert!(stack.ends_with(&leaf), "{line}");
        assert_eq!(bytes, 24, "a node per recursion path: {line}");
        total += bytes;
    }
    // Every node is reached by its own path of recursive calls: 15 distinct stacks.
    assert_eq!(folded.lines().count(), 15, "{folded}");
    assert_eq!(total, lost_bytes, "{folded}");

    let definite = String::from_utf8(report(
        dir.path(),
        &profile,
        &["--format", "folded", "--weight", "definite"],
    ))
    .unwrap();
    assert_eq!(definite.lines().count(), 1, "only the root: {definite}");
    assert_eq!(split(definite.trim_end()).1, 24);
    let reachable = invoke(
        dir.path(),
        &[
            OsString::from("report"),
            profile.clone().into(),
            "--format".into(),
            "folded".into(),
            "--weight".into(),
            "reachable".into(),
        ],
    );
    assert_eq!(reachable.exit(), Exit::Code(0));
    assert!(reachable.stdout.is_empty(), "nothing is still reachable");
    assert!(
        reachable.stderr_text().contains(
            "leakscope: no still reachable bytes in any process: there is nothing to draw"
        ),
        "an empty result is said, not silent: {}",
        reachable.stderr_text()
    );
}

#[test]
fn the_flamegraph_is_svg_naming_the_leaking_functions() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("lost.svg");
    let (profile, pid, _) = run_fixture(
        dir.path(),
        "global_sections",
        &[
            "--format",
            "flamegraph",
            "--output",
            svg_path.to_str().unwrap(),
        ],
    );
    let svg = fs::read_to_string(&svg_path).unwrap();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true, // inferno declares the SVG 1.1 DTD; nothing is fetched
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(&svg, options)
        .unwrap_or_else(|e| panic!("the flamegraph is not well-formed XML: {e}"));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    let titles: Vec<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("title"))
        .filter_map(|node| node.text())
        .collect();
    let frame = |prefix: &str| {
        titles
            .iter()
            .find(|title| title.starts_with(prefix))
            .unwrap_or_else(|| panic!("no frame {prefix:?} in {titles:#?}"))
            .to_string()
    };
    // The definitely lost blocks: 111 in the read-only page, 222 + 333 in the mappings.
    assert!(frame(&format!("pid {pid}: ")).contains("(666 bytes, 100.00%)"));
    assert!(frame("keep_in_readonly_page (global_sections.c:").contains("(111 bytes"));
    assert!(frame("keep_in_mapping (global_sections.c:").contains(" bytes"));
    assert!(
        !titles.iter().any(|t| t.starts_with("keep_in_globals")),
        "still reachable blocks are not lost: {titles:#?}"
    );
    // The live flamegraph has the still reachable ones too, and `report` draws it as well.
    let live = String::from_utf8(report(
        dir.path(),
        &profile,
        &["--format", "flamegraph", "--weight", "live"],
    ))
    .unwrap();
    assert!(
        live.contains("keep_in_globals (global_sections.c:"),
        "{live}"
    );
    assert!(live.contains("(2,331 bytes, 100.00%)"), "666 + 1665 bytes");
}

/// The profile decoded by `tests/formats/decode_pprof.py` under Debian's Python and its
/// python3-protobuf: a reader that shares no code with leakscope's encoder.
pub(crate) fn decode_pprof(path: &Path) -> Value {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.exists(),
        "the pprof test needs Debian's python3 and python3-protobuf: bash .ci/setup.sh installs them"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/formats/decode_pprof.py");
    let output = std::process::Command::new(python)
        .arg(&script)
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "decode_pprof.py failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("decode_pprof.py prints JSON")
}

#[test]
fn pprof_decoded_by_googles_protobuf_library_matches_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let pprof = dir.path().join("heap.pb.gz");
    let (profile, pid, program) = run_fixture(
        dir.path(),
        "global_sections",
        &["--format", "pprof", "--output", pprof.to_str().unwrap()],
    );
    let decoded = decode_pprof(&pprof);
    let json = json_report(dir.path(), &profile);
    let ((lost_bytes, lost_blocks), (unfreed_bytes, unfreed_blocks)) = lost_and_unfreed(&json);
    assert_eq!((lost_bytes, unfreed_bytes), (666, 666 + 1665), "{json}");

    let names: Vec<&str> = decoded["sample_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "inuse_objects",
            "inuse_space",
            "lost_objects",
            "lost_space",
            "possibly_lost_objects",
            "possibly_lost_space"
        ]
    );
    assert_eq!(decoded["default_sample_type"], "lost_space");
    assert_eq!(
        decoded["period_type"],
        serde_json::json!(["space", "bytes"])
    );
    let totals = &decoded["totals"];
    assert_eq!(totals["lost_space"], lost_bytes, "{decoded}");
    assert_eq!(totals["lost_objects"], lost_blocks, "{decoded}");
    assert_eq!(totals["inuse_space"], unfreed_bytes, "{decoded}");
    assert_eq!(totals["inuse_objects"], unfreed_blocks, "{decoded}");
    assert_eq!(totals["possibly_lost_space"], 0, "{decoded}");
    assert_eq!(
        decoded["mappings"][0],
        program.to_str().unwrap(),
        "mapping[0] is the main binary"
    );
    assert!(decoded["time_nanos"].as_i64().unwrap() > 1_600_000_000_000_000_000);
    assert!(decoded["duration_nanos"].as_i64().unwrap() > 0);

    // Each sample names its functions with file and line, its kind and its process.
    let samples = decoded["samples"].as_array().unwrap();
    let leaf_of = |sample: &Value| sample["frames"][0]["function"].as_str().map(str::to_owned);
    let lost_in = |function: &str| -> u64 {
        samples
            .iter()
            .filter(|s| s["labels"]["kind"] == "definitely_lost")
            .filter(|s| {
                s["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["function"] == function)
            })
            .map(|s| s["values"]["lost_space"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(lost_in("keep_in_readonly_page"), 111, "{decoded}");
    assert_eq!(lost_in("keep_in_mapping"), 222 + 333, "{decoded}");
    assert_eq!(lost_in("keep_in_globals"), 0, "{decoded}");
    for sample in samples {
        assert_eq!(sample["labels"]["pid"], pid, "{sample}");
        assert_eq!(sample["labels"]["program"], program.to_str().unwrap());
        let frame = &sample["frames"][0];
        assert!(leaf_of(sample).is_some(), "{sample}");
        assert!(frame["line"].as_i64().unwrap() > 0, "{sample}");
        assert!(
            frame["file"]
                .as_str()
                .unwrap()
                .ends_with("global_sections.c"),
            "the allocating frame is the fixture's: {sample}"
        );
    }

    // `leakscope report` writes the same profile again, to standard output when it is not a
    // terminal, and --weight chooses the default sample type.
    assert_eq!(
        report(dir.path(), &profile, &["--format", "pprof"]),
        fs::read(&pprof).unwrap()
    );
    let live = dir.path().join("live.pb.gz");
    report(
        dir.path(),
        &profile,
        &[
            "--format",
            "pprof",
            "--weight",
            "live",
            "--output",
            live.to_str().unwrap(),
        ],
    );
    assert_eq!(decode_pprof(&live)["default_sample_type"], "inuse_space");
}

#[test]
fn pprof_is_not_written_to_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (profile, _, _) = run_fixture(dir.path(), "loop_leaks", &["--output", "report.txt"]);
    // SAFETY: opens a new pseudo-terminal pair; the results are checked.
    let (_master, slave_path) = unsafe {
        use std::os::fd::FromRawFd;
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "no pseudo-terminal");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let name = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_owned();
        (
            fs::File::from(std::os::fd::OwnedFd::from_raw_fd(master)),
            name,
        )
    };
    let terminal = fs::OpenOptions::new()
        .write(true)
        .open(&slave_path)
        .unwrap();
    let output = command()
        .args(["report", "--format", "pprof"])
        .arg(&profile)
        .current_dir(dir.path())
        .stdout(terminal)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--format pprof writes a gzipped binary profile, not for a terminal: give --output FILE, or redirect standard output"),
        "{stderr}"
    );
}

#[test]
fn combinations_that_cannot_be_honoured_are_refused_before_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let program = corpus().program("stdio_clean", Level::O0);
    let refused = |args: &[&str], why: &str| {
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.push(program.clone().into());
        let output = invoke(dir.path(), &all);
        assert_eq!(
            output.exit(),
            Exit::Code(2),
            "{args:?}: {}",
            output.stderr_text()
        );
        assert_program_did_not_run(&output);
        assert!(
            output.stderr_text().contains(why),
            "{args:?}: {}",
            output.stderr_text()
        );
    };
    refused(
        &["run", "--format", "json", "--weight", "live"],
        "--weight chooses what --format folded, flamegraph and pprof weigh",
    );
    refused(
        &[
            "run",
            "--format",
            "pprof",
            "--weight",
            "reachable",
            "--output",
            "x.pb.gz",
        ],
        "--format pprof has no sample type of still reachable bytes alone",
    );
    let diff = invoke(
        dir.path(),
        &["diff", "--format", "folded", "a.profile", "b.profile"],
    );
    assert_eq!(diff.exit(), Exit::Code(2), "{}", diff.stderr_text());
    assert!(
        // clap's own refusal: diff's formats are text and json only.
        diff.stderr_text().contains("[possible values: text, json]"),
        "{}",
        diff.stderr_text()
    );
}

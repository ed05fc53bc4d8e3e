//! Issue 8, items 3 and 9: results that never claim a leak check that did not happen, and a
//! command line that behaves as users expect. Every test runs the real `leakscope` on programs
//! compiled here.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::build::compile_text;
use crate::harness::expect::Exit;
use crate::harness::leakscope::{
    assert_program_did_not_run, command, invoke, wait_for_profile, Invocation,
};
use crate::harness::os_args;
use crate::harness::process::{self, signal, Guard, Output};
use crate::harness::report::{read_json, read_text as read};

/// Frees everything; prints its pid; with an argument, waits for SIGINT or SIGTERM (each
/// counted by a handler), then prints how many came and exits with 3; loses 77 bytes.
const WAITER: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void count(int s) { (void)s; got++; }
static void *volatile sink;
int main(int argc, char **argv) {
    sink = malloc(77);
    sink = 0;
    if (argc > 1 && strcmp(argv[1], "count") == 0) {
        signal(SIGINT, count);
        signal(SIGTERM, count);
    }
    printf("%d\n", (int)getpid());
    fflush(stdout);
    if (argc > 1) {
        while (!got) pause();
        sleep(1); /* a second copy of the signal would arrive meanwhile */
        printf("got %d\n", (int)got);
        fflush(stdout);
        return 3;
    }
    return 0;
}
"#;

fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    compile_text(dir, &format!("{name}.c"), source, &["-O1", "-pthread"], &[])
}

/// `leakscope run --keep PROFILE --output DIR/report.txt PROGRAM ARGS` in `dir`, checked to
/// exit with 0 (the program's code); the text report is at `dir/report.txt`.
fn run_keeping(dir: &Path, profile: &Path, program: &Path, args: &[&str]) -> Output {
    let mut command = os_args![
        "run",
        "--keep",
        profile,
        "--output",
        dir.join("report.txt"),
        program
    ]
    .to_vec();
    command.extend(args.iter().map(Into::into));
    let output = invoke(dir, &command);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    output
}

/// A text report that must not look like a clean bill.
fn assert_not_called_clean(text: &str, headline: &str) {
    assert!(
        !text.contains("All heap blocks were freed"),
        "a check that did not complete is called clean:\n{text}"
    );
    let capitalised = format!("{}{}", headline[..1].to_uppercase(), &headline[1..]);
    assert!(
        text.lines().take(4).any(|l| l.starts_with(&capitalised)),
        "the headline does not say {capitalised:?}:\n{text}"
    );
    assert!(
        text.contains(&format!("LEAK SUMMARY: {headline}")),
        "the LEAK SUMMARY does not say {headline:?}:\n{text}"
    );
    // A check that did not run found nothing: the run's summary line does not say "no leaks".
    if headline.starts_with("the leak check did not run") {
        let summary = text.lines().rfind(|l| l.starts_with("leakscope: "));
        assert!(
            summary.is_some_and(|l| !l.contains("no leaks") && l.contains("did not run")),
            "the summary line: {summary:?}"
        );
    }
}

/// `leakscope run` started in the background, the program's first stdout line (its pid)
/// read.
struct Running {
    guard: Guard,
    stdout: BufReader<std::process::ChildStdout>,
    pid: i32,
}

impl Running {
    fn start<S: AsRef<std::ffi::OsStr>>(args: &[S], dir: &Path) -> Running {
        let mut cmd = command();
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = Guard::spawn(&mut cmd).unwrap();
        let mut stdout = BufReader::new(guard.child().stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let pid = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the program printed {line:?}, not its pid"));
        Running { guard, stdout, pid }
    }

    fn leakscope_pid(&mut self) -> i32 {
        self.guard.child().id() as i32
    }

    /// Wait (at most a minute) for leakscope's end: its status, the rest of stdout, stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let status = self
            .guard
            .wait_for(Duration::from_secs(60))
            .expect("leakscope did not end");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let mut stderr = String::new();
        self.guard
            .child()
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status, rest, stderr)
    }
}

// ---- A. Honest results -----------------------------------------------------------

/// SIGKILL leaves no leak check: the report says so in its headline and its LEAK SUMMARY,
/// JSON says `not_run`, and --error-exitcode fails the run although nothing was found.
#[test]
fn a_program_killed_with_sigkill_is_not_called_clean_and_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "waiter", WAITER);
    let profile = dir.path().join("killed.profile");
    let report = dir.path().join("report.txt");
    let run = Running::start(
        &os_args![
            "run",
            "--error-exitcode",
            "9",
            "--keep",
            profile,
            "--output",
            report,
            program,
            "wait"
        ],
        dir.path(),
    );
    wait_for_profile(&profile);
    signal(run.pid, libc::SIGKILL);
    let pid = run.pid;
    let (status, _, stderr) = run.finish();
    assert_eq!(
        status.code(),
        Some(9),
        "the gate must fail, not die of SIGKILL or pass; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "leakscope: exit code 9 (--error-exitcode): in process {pid}, the leak check did not run: the process was killed by SIGKILL"
        )),
        "{stderr}"
    );
    let text = read(&report);
    assert_not_called_clean(
        &text,
        "the leak check did not run: the process was killed by SIGKILL",
    );

    let json = dir.path().join("again.json");
    let output = invoke(
        dir.path(),
        &os_args!["report", profile, "--format", "json", "--output", json],
    );
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let json = read_json(&json);
    assert_eq!(json["leak_check"]["status"], "not_run", "{json}");
    assert!(json["leak_check"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("SIGKILL"));
}

/// The offsets of the chunks of a profile file: (kind, start, end).
fn chunks(bytes: &[u8]) -> Vec<(u16, usize, usize)> {
    let mut found = Vec::new();
    let mut at = leakscope_format::HEADER_LEN;
    while at + leakscope_format::CHUNK_HEADER_LEN <= bytes.len() {
        let kind = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let end = at + leakscope_format::CHUNK_HEADER_LEN + len;
        found.push((kind, at, end));
        at = end;
    }
    found
}

/// A whole profile of a program that freed everything, and its chunks.
fn clean_profile(dir: &Path) -> (Vec<u8>, Vec<(u16, usize, usize)>) {
    let program = compile(
        dir,
        "clean",
        "#include <stdlib.h>\nint main(void) { free(malloc(10)); return 0; }\n",
    );
    let profile = dir.join("clean.profile");
    run_keeping(dir, &profile, &program, &[]);
    assert!(read(&dir.join("report.txt")).contains("All heap blocks were freed"));
    let bytes = fs::read(&profile).unwrap();
    let found = chunks(&bytes);
    (bytes, found)
}

fn report_of_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (String, Value) {
    let profile = dir.join(name);
    fs::write(&profile, bytes).unwrap();
    let text = invoke(dir, &os_args!["report", profile]);
    assert_eq!(text.exit(), Exit::Code(0), "{}", text.stderr_text());
    let json = invoke(dir, &os_args!["report", "--format", "json", profile]);
    assert_eq!(json.exit(), Exit::Code(0), "{}", json.stderr_text());
    let value = serde_json::from_str(&json.stdout_text()).unwrap();
    (text.stdout_text(), value)
}

const SCAN: u16 = leakscope_format::ChunkKind::Scan as u16;
const EXIT: u16 = leakscope_format::ChunkKind::Exit as u16;

/// A profile cut short before the scan's results did not see a leak check; cut after the
/// Scan chunk, its leak records may be missing. Neither is called clean.
#[test]
fn a_cut_short_profile_is_not_called_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, found) = clean_profile(dir.path());
    let &(_, exit_start, exit_end) = found.iter().find(|c| c.0 == EXIT).expect("an Exit chunk");
    let &(_, _, scan_end) = found.iter().find(|c| c.0 == SCAN).expect("a Scan chunk");

    let (text, json) =
        report_of_bytes(dir.path(), "inside-exit.profile", &bytes[..exit_start + 15]);
    assert_not_called_clean(
        &text,
        "the leak check did not run: the profile is damaged or cut short before the leak check's results",
    );
    assert_eq!(json["leak_check"]["status"], "not_run");

    let (text, json) = report_of_bytes(dir.path(), "after-exit.profile", &bytes[..exit_end]);
    assert_not_called_clean(
        &text,
        "the leak check did not run: the profile is cut short before",
    );
    assert_eq!(json["leak_check"]["status"], "not_run");

    let (text, json) = report_of_bytes(dir.path(), "after-scan.profile", &bytes[..scan_end]);
    assert_not_called_clean(
        &text,
        "the leak check is incomplete: the profile is cut short after the scan",
    );
    assert!(text.contains("may be missing"), "{text}");
    assert_eq!(json["leak_check"]["status"], "incomplete");

    let (text, json) = report_of_bytes(dir.path(), "whole.profile", &bytes);
    assert!(text.contains("All heap blocks were freed"), "{text}");
    assert_eq!(json["leak_check"]["status"], "complete");
    assert_eq!(json["leak_check"]["reasons"], Value::Array(Vec::new()));
}

/// The Scan chunk's flags, set in a real profile: each one is said in words.
#[test]
fn scan_flags_say_why_the_check_did_not_run_or_is_incomplete() {
    use leakscope_format::scan_flags;
    let dir = tempfile::tempdir().unwrap();
    let (bytes, found) = clean_profile(dir.path());
    let &(_, start, end) = found.iter().find(|c| c.0 == SCAN).unwrap();
    let with_flags = |flags: u32, missed: u32| {
        let mut bytes = bytes.clone();
        let payload = start + leakscope_format::CHUNK_HEADER_LEN;
        bytes[payload + 12..payload + 16].copy_from_slice(&missed.to_le_bytes());
        bytes[payload + 40..payload + 44].copy_from_slice(&flags.to_le_bytes());
        let crc = leakscope_format::checksum(&bytes[start..start + 8], &bytes[payload..end]);
        bytes[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
        bytes
    };
    let cases = [
        (
            scan_flags::NOT_RUN_NO_MEMORY,
            0,
            "not_run",
            "the leak check did not run: the agent could not map the memory the scan needs",
        ),
        (
            scan_flags::THREADS_MISSED,
            2,
            "incomplete",
            "the leak check is incomplete: 2 threads did not stop for the scan",
        ),
        (
            scan_flags::UNREADABLE_MEMORY,
            0,
            "incomplete",
            "the leak check is incomplete: part of the heap or of the roots could not be read",
        ),
    ];
    for (flags, missed, status, headline) in cases {
        let (text, json) = report_of_bytes(
            dir.path(),
            &format!("flags-{flags}.profile"),
            &with_flags(flags, missed),
        );
        assert_not_called_clean(&text, headline);
        assert_eq!(json["leak_check"]["status"], status, "{json}");
    }
}

/// A thread that blocks every signal with the raw system call cannot be stopped: the scan
/// goes on, the report says it is incomplete, and the gate counts what it found (it can
/// only over-report), here nothing definitely or indirectly lost.
#[test]
fn a_thread_that_would_not_stop_makes_the_check_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "stubborn",
        r#"
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
static void *stubborn(void *arg) {
    unsigned long all = ~0UL;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, 0, 8);
    for (;;) pause();
    return arg;
}
int main(void) {
    pthread_t thread;
    pthread_create(&thread, 0, stubborn, 0);
    usleep(100000);
    free(malloc(100));
    return 0;
}
"#,
    );
    let report = dir.path().join("report.txt");
    // The live thread's dynamic thread vector is possibly lost, an error by memcheck's
    // default error kinds; this test is about definitely lost blocks, none here.
    let output = invoke(
        dir.path(),
        &os_args![
            "run",
            "--error-exitcode",
            "9",
            "--errors-for-leak-kinds",
            "definite",
            "--output",
            report,
            program
        ],
    );
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_not_called_clean(
        &read(&report),
        "the leak check is incomplete: 1 thread did not stop for the scan",
    );
}

/// A program that leaves the agent no memory for the scan (a tight RLIMIT_AS at the end):
/// the check did not run, and the gate fails.
#[test]
fn a_scan_without_memory_did_not_run_and_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "no_memory",
        r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
static void **kept;
static long vm_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmSize:", 7)) kb = atol(line + 7);
    fclose(f);
    return kb * 1024;
}
int main(void) {
    int n = 200000;
    kept = malloc(sizeof(void *) * n);
    for (int i = 0; i < n; i++) kept[i] = malloc(16);
    usleep(500000); /* the agent's writer has started */
    long limit = vm_bytes() + (64 << 10);
    struct rlimit rlimit = { limit, limit };
    setrlimit(RLIMIT_AS, &rlimit);
    return 0;
}
"#,
    );
    let (output, json) = Invocation::new(&program)
        .extra(["--error-exitcode", "9"])
        .run_json(dir.path());
    assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
    assert_eq!(json["leak_check"]["status"], "not_run", "{json}");
    assert!(json["leak_check"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("could not map"));
    assert!(
        output
            .stderr_text()
            .contains("the leak check did not run: the agent could not map"),
        "{}",
        output.stderr_text()
    );
}

/// A child that forks, with `mode`: "leak" (the child loses 100 bytes and exits) or "kill"
/// (the parent kills it with SIGKILL once it has run for a while). The parent frees
/// everything and exits 0.
const FORKER: &str = r#"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static void *volatile sink;
int main(int argc, char **argv) {
    int kill_it = argc > 1 && strcmp(argv[1], "kill") == 0;
    pid_t pid = fork();
    if (pid == 0) {
        sink = malloc(100);
        sink = 0;
        if (kill_it) for (;;) pause();
        return 0;
    }
    if (kill_it) { sleep(1); kill(pid, SIGKILL); }
    int status;
    waitpid(pid, &status, 0);
    return 0;
}
"#;

/// --error-exitcode counts every process of the tree: a forked child's lost block, or a
/// child whose check did not run, fail a run whose root is clean.
#[test]
fn the_gate_counts_forked_children() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "forker", FORKER);
    let gate = |mode: &str| {
        Invocation::new(&program)
            .args([mode])
            .extra(["--error-exitcode", "9"])
            .run_json(dir.path())
    };
    let (output, json) = gate("leak");
    assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
    assert_eq!(json["summary"]["definitely_lost"]["blocks"], 0);
    assert_eq!(
        json["children"][0]["summary"]["definitely_lost"]["blocks"],
        1
    );
    assert!(
        output
            .stderr_text()
            .contains("1 block (100 bytes) definitely or possibly lost in 1 process"),
        "{}",
        output.stderr_text()
    );

    let (output, json) = gate("kill");
    assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
    let child = &json["children"][0];
    assert_eq!(child["leak_check"]["status"], "not_run", "{json}");
    assert_eq!(json["leak_check"]["status"], "complete");
    assert!(
        output.stderr_text().contains(&format!(
            "in process {}, the leak check did not run",
            child["pid"]
        )),
        "{}",
        output.stderr_text()
    );
}

/// A program that replaces itself at once: whether or not its agent wrote anything, there
/// was no leak check, and the gate fails.
#[test]
fn the_gate_fails_when_the_program_execs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "execer",
        "#include <unistd.h>\nint main(void) { execl(\"/bin/true\", \"true\", (char *)0); return 1; }\n",
    );
    let output = invoke(
        dir.path(),
        &os_args![
            "run",
            "--error-exitcode",
            "9",
            "--output",
            dir.path().join("report.txt"),
            program
        ],
    );
    assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
    let report = dir.path().join("report.txt");
    if report.exists() {
        assert_not_called_clean(&read(&report), "the leak check did not run");
    }
}

// ---- B. The command line ---------------------------------------------------------

fn echo(dir: &Path) -> PathBuf {
    compile(
        dir,
        "echo_args",
        r#"
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) printf("arg[%s]\n", argv[i]);
    return 0;
}
"#,
    )
}

/// Without `--`, everything after the program's name is the program's, options included.
#[test]
fn options_after_the_program_are_the_programs() {
    let dir = tempfile::tempdir().unwrap();
    let program = echo(dir.path());
    let report = dir.path().join("report.json");
    let output = invoke(
        dir.path(),
        &os_args![
            "run",
            "--format",
            "json",
            "--output",
            report,
            program,
            "--duration",
            "5",
            "-x",
            "--",
            "--format"
        ],
    );
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(
        output.stdout_text(),
        "arg[--duration]\narg[5]\narg[-x]\narg[--]\narg[--format]\n"
    );
    assert_eq!(read_json(&report)["format_version"], 1);

    // `--` before the program stays allowed, and then even a mistyped option is the
    // program's.
    let output = invoke(
        dir.path(),
        &os_args![
            "run",
            "--output",
            dir.path().join("r.txt"),
            "--",
            program,
            "--durration"
        ],
    );
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(output.stdout_text(), "arg[--durration]\n");
}

/// An unknown option before the program is an error that suggests the closest one; the
/// program never runs.
#[test]
fn a_mistyped_option_before_the_program_is_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let program = echo(dir.path());
    for (typo, suggestion) in [
        ("--durration", Some("--duration")),
        ("--ouput", Some("--output")),
        ("-x", None),
    ] {
        let output = invoke(
            dir.path(),
            &os_args!["run", typo, "5s", "--", program, "ran"],
        );
        let stderr = output.stderr_text();
        assert_eq!(output.exit(), Exit::Code(2), "{typo}: {stderr}");
        assert!(
            stderr.contains(&format!("unexpected argument '{typo}'")),
            "{stderr}"
        );
        if let Some(suggestion) = suggestion {
            assert!(
                stderr.contains(&format!("a similar argument exists: '{suggestion}'")),
                "{stderr}"
            );
        }
        assert!(!stderr.contains("cannot run"), "{stderr}");
        assert_program_did_not_run(&output);
    }
}

/// A report that could not be written is found out before the program starts: one line,
/// exit code 1, and the program never runs.
#[test]
fn a_bad_output_is_refused_before_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let program = echo(dir.path());
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cases = vec![
        (vec!["--output".to_owned(), "/nonexistent/dir/report.txt".to_owned()], "cannot write the report to '/nonexistent/dir/report.txt': no directory '/nonexistent/dir'"),
        (vec!["--output".to_owned(), dir.path().display().to_string()], "it is a directory"),
        (vec!["--keep".to_owned(), "/nonexistent/dir/p.profile".to_owned()], "cannot keep the profile at '/nonexistent/dir/p.profile': no directory"),
    ];
    if !root {
        // (root may write anywhere)
        cases.push((
            vec![
                "--output".to_owned(),
                locked.join("report.txt").display().to_string(),
            ],
            "is not writable",
        ));
    }
    for (options, words) in cases {
        let mut args: Vec<std::ffi::OsString> = vec!["run".into()];
        args.extend(options.iter().map(Into::into));
        args.push(program.clone().into());
        args.push("ran".into());
        let output = invoke(dir.path(), &args);
        let stderr = output.stderr_text();
        assert_eq!(output.exit(), Exit::Code(1), "{options:?}: {stderr}");
        assert!(stderr.contains(words), "{options:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("leakscope: cannot "), "{stderr}");
        assert_program_did_not_run(&output);
    }
}

/// SIGINT or SIGTERM sent to leakscope alone ends the program, which gets it exactly once,
/// and leakscope reports.
#[test]
fn sigint_or_sigterm_to_leakscope_alone_reach_the_program_once() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "waiter", WAITER);
    // The waiter in `mode` under `leakscope run --format json`, `sent` to leakscope alone: how
    // leakscope ended, the rest of the program's stdout, leakscope's stderr, the report.
    let signalled = |mode: &str, sent: i32| {
        let report = dir.path().join(format!("{mode}-{sent}.json"));
        let mut run = Running::start(
            &os_args!["run", "--format", "json", "--output", report, program, mode],
            dir.path(),
        );
        signal(run.leakscope_pid(), sent);
        let (status, stdout, stderr) = run.finish();
        (status, stdout, stderr, read_json(&report))
    };
    // A program with the default action dies of it; leakscope reports, then dies the same.
    for sent in [libc::SIGINT, libc::SIGTERM] {
        let (status, _, stderr, json) = signalled("wait", sent);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sent), "{stderr}");
        assert_eq!(json["exit"]["signal"], sent, "{json}");
        assert_eq!(json["leak_check"]["status"], "complete", "{json}");
        assert_eq!(json["summary"]["definitely_lost"]["bytes"], 77, "{json}");
    }
    // A program that handles it gets it once and ends as it chooses.
    for sent in [libc::SIGINT, libc::SIGTERM] {
        let (status, stdout, stderr, json) = signalled("count", sent);
        assert_eq!(stdout, "got 1\n", "signal {sent}; stderr:\n{stderr}");
        assert_eq!(status.code(), Some(3), "{stderr}");
        assert_eq!(json["exit"]["code"], 3);
    }
}

/// Ctrl-C at a terminal goes to the whole foreground process group: the program must get
/// it from the terminal only, not a second time from leakscope, and leakscope outlives it
/// to report.
#[test]
fn ctrl_c_from_the_terminal_reaches_the_program_exactly_once() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "waiter", WAITER);
    // SAFETY: opens a new pseudo-terminal pair; the names and descriptors are checked.
    let (master, slave_path) = unsafe {
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
            std::fs::File::from(std::os::fd::OwnedFd::from_raw_fd(master)),
            name,
        )
    };
    use std::os::fd::FromRawFd;
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_path)
        .unwrap();
    let report = dir.path().join("report.json");
    let mut cmd = command();
    cmd.args(["run", "--format", "json", "--output"])
        .arg(&report)
        .arg(&program)
        .arg("count")
        .current_dir(dir.path())
        .stdin(slave)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid and ioctl are async-signal-safe: leakscope leads a new session whose
    // controlling terminal is the pseudo-terminal on its standard input, so that it and
    // the program form the terminal's foreground process group.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let session = child.id() as i32;
    // Kills the whole session's group if the test fails half-way.
    struct KillGroup(i32);
    impl Drop for KillGroup {
        fn drop(&mut self) {
            // SAFETY: the group this test created (its leader is leakscope).
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
        }
    }
    let _cleanup = KillGroup(session);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.trim().parse::<i32>().is_ok(),
        "the program printed {line:?}"
    );
    // The terminal's interrupt character.
    (&master).write_all(b"\x03").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "leakscope did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(rest, "got 1\n", "stderr:\n{stderr}");
    assert_eq!(
        status.code(),
        Some(3),
        "leakscope ended with {status:?}; stderr:\n{stderr}"
    );
    assert_eq!(read_json(&report)["exit"]["code"], 3);
}

/// A signal leakscope starts with ignored (`nohup`) stays ignored for the program, as it
/// would be without leakscope.
#[test]
fn an_ignored_signal_stays_ignored_for_the_program() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "dispositions",
        r#"
#include <signal.h>
#include <stdio.h>
int main(void) {
    int signals[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };
    for (int i = 0; i < 4; i++) {
        struct sigaction old;
        sigaction(signals[i], 0, &old);
        printf("%d %s\n", signals[i], old.sa_handler == SIG_IGN ? "ignored" : "default");
    }
    return 0;
}
"#,
    );
    let mut cmd = command();
    cmd.args(["run", "--output"])
        .arg(dir.path().join("report.txt"))
        .arg(&program)
        .current_dir(dir.path());
    // SAFETY: signal is async-signal-safe: leakscope starts as under `nohup`.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let output = process::run(&mut cmd, None, process::TIMEOUT).unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(
        output.stdout_text(),
        format!(
            "{} default\n{} default\n{} default\n{} ignored\n",
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGHUP
        )
    );
}

/// Once the program has ended, SIGINT stops leakscope itself: here while it waits to
/// write the report into a pipe nobody reads.
#[test]
fn after_the_program_ended_sigint_stops_leakscope() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "waiter", WAITER);
    let fifo = dir.path().join("report.fifo");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let profile = dir.path().join("p.profile");
    let mut run = Running::start(
        &os_args!["run", "--keep", profile, "--output", fifo, program],
        dir.path(),
    );
    // leakscope appends the program's end to the profile after it has stopped passing
    // signals on, then blocks opening the pipe.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leakscope_format::read_profile(&profile).is_ok_and(|p| p.run_result.is_some()) {
        assert!(
            Instant::now() < deadline,
            "the program's end was never recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let leakscope_pid = run.leakscope_pid();
    signal(leakscope_pid, libc::SIGINT);
    let (status, _, stderr) = run.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{stderr}");
}

/// `leakscope diff FILE --from T --to T` refuses moments outside the profile's time span
/// and a --from that is not before --to.
#[test]
fn diff_rejects_moments_outside_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "grower",
        "#include <stdlib.h>\n#include <unistd.h>\nvoid *kept[20];\n\
         int main(void) { for (int i = 0; i < 20; i++) { kept[i] = malloc(100); usleep(30000); } return 0; }\n",
    );
    let profile = dir.path().join("grower.profile");
    run_keeping(dir.path(), &profile, &program, &[]);
    let end_ms = leakscope_format::read_profile(&profile)
        .unwrap()
        .snapshots
        .last()
        .expect("snapshots")
        .time_ns
        / 1_000_000;
    assert!(end_ms > 300, "the program ran for {end_ms} ms");
    let diff = |options: &[String]| {
        let mut args: Vec<std::ffi::OsString> = vec!["diff".into(), profile.clone().into()];
        args.extend(options.iter().map(Into::into));
        invoke(dir.path(), &args)
    };
    let ms = |value: u64| format!("{value}ms");
    let refused = [
        (
            vec!["--from".to_owned(), ms(end_ms + 5000)],
            "is past the end of",
        ),
        (
            vec!["--to".to_owned(), "1h".to_owned()],
            "--to 3600s is past the end of",
        ),
        (
            vec![
                "--from".to_owned(),
                ms(end_ms / 2),
                "--to".to_owned(),
                ms(end_ms / 4),
            ],
            "must be earlier than --to",
        ),
        (
            vec![
                "--from".to_owned(),
                ms(end_ms / 2),
                "--to".to_owned(),
                ms(end_ms / 2),
            ],
            "must be earlier than --to",
        ),
    ];
    for (options, words) in refused {
        let output = diff(&options);
        let stderr = output.stderr_text();
        assert_eq!(output.exit(), Exit::Code(1), "{options:?}: {stderr}");
        assert!(stderr.contains(words), "{options:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(output.stdout.is_empty());
    }
    let output = diff(&[
        "--from".to_owned(),
        ms(end_ms / 4),
        "--to".to_owned(),
        ms(end_ms * 3 / 4),
    ]);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert!(
        output.stdout_text().contains("+"),
        "{}",
        output.stdout_text()
    );
}

/// Profiles, the program's and its forked children's, the kept ones and the default
/// temporary one, are readable by their owner only.
#[test]
fn profiles_are_created_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "forker", FORKER);
    let profile = dir.path().join("kept.profile");
    run_keeping(dir.path(), &profile, &program, &["leak"]);
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&profile), 0o600, "{}", profile.display());
    let children: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("kept.profile."))
        .collect();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(mode(&children[0]), 0o600, "{}", children[0].display());

    // The default profile under $TMPDIR.
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let mut cmd = command();
    cmd.args(["run", "--output"])
        .arg(dir.path().join("report2.txt"))
        .arg(&program)
        .arg("leak")
        .env("TMPDIR", &tmp)
        .current_dir(dir.path());
    let output = process::run(&mut cmd, None, process::TIMEOUT).unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let made: Vec<PathBuf> = fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    for path in made {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

/// One line at the start names the program's pid and the profile; nothing else before the
/// report (a fast report shows no progress).
#[test]
fn the_run_says_which_process_it_watches() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "waiter", WAITER);
    let profile = dir.path().join("watched.profile");
    let report = dir.path().join("report.txt");
    let output = run_keeping(dir.path(), &profile, &program, &[]);
    let pid = output.stdout_text().trim().to_owned();
    let stderr = output.stderr_text();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "leakscope: watching PID {pid} (profile {})",
                profile.display()
            ),
            format!(
                "leakscope: profile kept at {} (`leakscope report {}` prints this report again)",
                profile.display(),
                profile.display()
            ),
        ],
        "{stderr}"
    );
    assert!(read(&report).starts_with(&format!("Process {pid}: ")));
}

/// Once producing the report has taken longer than the threshold (a second by default,
/// LEAKSCOPE_PROGRESS_AFTER_MS to change it), each stage is shown as it begins.
#[test]
fn a_slow_report_shows_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "waiter", WAITER);
    let profile = dir.path().join("p.profile");
    let mut cmd = command();
    cmd.args(["run", "--keep"])
        .arg(&profile)
        .arg("--output")
        .arg(dir.path().join("report.txt"))
        .arg(&program)
        .env("LEAKSCOPE_PROGRESS_AFTER_MS", "0")
        .current_dir(dir.path());
    let output = process::run(&mut cmd, None, process::TIMEOUT).unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let stderr = output.stderr_text();
    let stages: Vec<&str> = stderr.lines().filter(|l| l.ends_with("...")).collect();
    assert_eq!(stages.len(), 4, "{stderr}");
    assert_eq!(stages[0], "leakscope: reading the profile...");
    assert_eq!(stages[1], "leakscope: analysing the profile...");
    assert!(
        stages[2].starts_with("leakscope: symbolizing ") && stages[2].ends_with(" stacks..."),
        "{stderr}"
    );
    assert_eq!(stages[3], "leakscope: writing the report...");

    // `leakscope report` too.
    let mut cmd = command();
    cmd.arg("report")
        .arg(&profile)
        .env("LEAKSCOPE_PROGRESS_AFTER_MS", "0")
        .current_dir(dir.path());
    let output = process::run(&mut cmd, None, process::TIMEOUT).unwrap();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert!(output
        .stderr_text()
        .starts_with("leakscope: reading the profile...\n"));

    // By default a fast report stays quiet.
    let output = invoke(dir.path(), &os_args!["report", profile]);
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(output.stderr_text(), "");
}

/// `leakscope dump FILE | head` and `leakscope report FILE | head`: a reader that closes the
/// pipe early ends leakscope's output quietly, with exit code 0 and no panic.
#[test]
fn a_closed_output_pipe_ends_the_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        dir.path(),
        "leaky",
        "#include <stdlib.h>\nint main(void) { for (int i = 0; i < 50; i++) malloc(10 + i); return 0; }\n",
    );
    let profile = dir.path().join("leaky.profile");
    run_keeping(dir.path(), &profile, &program, &[]);
    for subcommand in [&["dump"][..], &["report"], &["report", "--format", "json"]] {
        let mut child = command()
            .args(subcommand)
            .arg(&profile)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before leakscope writes anything.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(0),
            "leakscope {subcommand:?} into a closed pipe: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

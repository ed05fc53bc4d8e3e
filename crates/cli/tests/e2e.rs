//! End-to-end tests of `leakscope run`, held to memcheck's numbers.
//!
//! The fixtures in `tests/programs/` (see its README) each state in a header exactly what
//! `valgrind --leak-check=full --show-leak-kinds=all` reports for them. The harness builds every
//! fixture at -O0 and -O2 once (cached under `CARGO_TARGET_TMPDIR`), then:
//!
//! - `corpus::<fixture>::valgrind_o0/_o2` check that memcheck agrees with the header: this
//!   validates the corpus itself (skipped, with a message, when valgrind is not installed);
//! - `corpus::<fixture>::leakscope_o0/_o2` check that `leakscope run --format json` reports the
//!   header's totals, leak functions, children and exit status;
//! - `cross_check::valgrind_and_leakscope_agree` runs both tools on everything and prints the
//!   agreement table (also written to `CARGO_TARGET_TMPDIR/leakscope-e2e/agreement.txt`);
//! - `errors::*` are the targets leakscope must refuse, with one line on stderr;
//! - `passthrough::*` check that leakscope is invisible to the program it runs.
//!
//! Run one group with e.g. `cargo nextest run -p leakscope -E 'test(/valgrind_o/)'` or
//! `cargo test -p leakscope --test e2e passthrough`.
//!
//! `LEAKSCOPE_E2E_BIN=/abs/path` runs another `leakscope` instead of the one cargo built. With
//! `harness/reference_leakscope.py`, a stand-in that converts memcheck's own logs, every test
//! must pass: that checks the harness itself.

mod harness;

use std::ffi::OsString;
use std::fmt::Write as _;

use harness::build::{corpus, Fixture};
use harness::check;
use harness::expect::Level;
use harness::leakscope;
use harness::valgrind;

fn describe(fixture: &Fixture, level: Level) -> String {
    let corpus = corpus();
    let args: Vec<String> = corpus
        .args(fixture, level)
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let mut command = vec![corpus.binary(fixture, level).display().to_string()];
    command.extend(args);
    format!(
        "fixture {} at {level} ({})",
        fixture.name,
        command.join(" ")
    )
}

/// Test (a): memcheck reports exactly what the fixture's header says.
fn check_valgrind(name: &str, level: Level) {
    if !valgrind::available_or_skip(&format!("{name} at {level} under valgrind")) {
        return;
    }
    let corpus = corpus();
    let fixture = corpus.fixture(name);
    let run = valgrind::run(&corpus.binary(fixture, level), &corpus.args(fixture, level))
        .unwrap_or_else(|e| panic!("{}: {e}", describe(fixture, level)));
    let mut problems = check::against_header(fixture.expect(level), &run);
    for (who, report) in
        std::iter::once(("program", &run.main)).chain(run.children.iter().map(|c| ("child", c)))
    {
        if let Some(suppressed) = report.suppressed.filter(|s| s.blocks > 0) {
            problems.push(format!(
                "{who}: memcheck's default suppressions hid {suppressed}; leakscope does not \
                 read them, so a fixture must not depend on them"
            ));
        }
        let records = valgrind::totals_of_records(report);
        if records != report.totals {
            problems.push(format!(
                "{who}: memcheck's loss records add up to {records}, its summary says {}",
                report.totals
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "memcheck ({}) disagrees with the header of {}:\n  {}",
        valgrind::version().unwrap_or("?"),
        describe(fixture, level),
        problems.join("\n  ")
    );
}

/// Test (b): leakscope reports exactly what the fixture's header says.
fn check_leakscope(name: &str, level: Level) {
    let corpus = corpus();
    let fixture = corpus.fixture(name);
    let run = leakscope::run(&corpus.binary(fixture, level), &corpus.args(fixture, level))
        .unwrap_or_else(|e| panic!("{}: {e}", describe(fixture, level)));
    let problems = check::against_header(fixture.expect(level), &run);
    assert!(
        problems.is_empty(),
        "leakscope disagrees with the header of {}:\n  {}\nleakscope's stderr:\n{}",
        describe(fixture, level),
        problems.join("\n  "),
        String::from_utf8_lossy(&run.stderr)
    );
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        /// The fixtures that have tests: `every_fixture_has_tests` keeps this list equal to the
        /// fixtures in `tests/programs/`.
        const REGISTERED: &[&str] = &[$(stringify!($name)),*];
        $(
            mod $name {
                use super::super::{check_leakscope, check_valgrind};
                use super::super::harness::expect::Level;

                #[test]
                fn valgrind_o0() {
                    check_valgrind(stringify!($name), Level::O0);
                }

                #[test]
                fn valgrind_o2() {
                    check_valgrind(stringify!($name), Level::O2);
                }

                #[test]
                fn leakscope_o0() {
                    check_leakscope(stringify!($name), Level::O0);
                }

                #[test]
                fn leakscope_o2() {
                    check_leakscope(stringify!($name), Level::O2);
                }
            }
        )*
    };
}

mod corpus {
    use super::harness::build::{discover, programs_dir};

    corpus_tests!(
        abort_leak,
        aligned_allocs,
        blocked_all_signals,
        calloc_leak,
        canonical_plt_malloc,
        coroutine_stacks,
        cpp_exception,
        cpp_interior_heuristics,
        cpp_members,
        cpp_new,
        default_restored,
        dl_iterate_phdr_exit,
        dlclose_leak,
        dlopen_leak,
        dlopen_tls,
        echo_io,
        error_path,
        exec_child_env,
        exit_code,
        exit_from_thread,
        exit_from_thread_syscall,
        exit_underscore,
        exited_thread_stack,
        fatal_signal,
        fatal_signal_stale,
        fork_child_leak,
        global_reachable,
        global_sections,
        interior_cycle,
        interior_pointer,
        live_thread_stack,
        longjmp_deep,
        loop_leaks,
        lost_malloc,
        malloc_zero,
        many_leaks_100k,
        natural_no_scrub,
        no_leaks,
        one_shot_handler,
        pointer_to_self,
        print_env,
        prot_none_block,
        quick_exit_leak,
        realloc_edge,
        realloc_grow,
        register_only_thread,
        registers_at_exit,
        rust_box_leak,
        rust_mem_forget,
        segv_longjmp,
        sigaltstack_segv,
        signal_storm,
        sparse_mapping_roots,
        stack_cache_live_exit,
        stale_redzone_thread,
        stdio_clean,
        strdup_leak,
        thread_getattr_first,
        thread_leak_joined,
        thread_tls_roots,
        tls_reachable,
        tree_root_lost,
        unaligned_pointer,
        unreachable_cycle,
        valloc_family,
    );

    /// Parses the headers only (no build): a fixture without tests, or tests without a
    /// fixture, fail here.
    #[test]
    fn every_fixture_has_tests() {
        let fixtures = discover(&programs_dir()).unwrap_or_else(|e| panic!("{e}"));
        let found: Vec<&str> = fixtures.iter().map(|f| f.name.as_str()).collect();
        let mut registered = REGISTERED.to_vec();
        registered.sort_unstable();
        assert_eq!(
            found, registered,
            "the fixtures in tests/programs/ and the names in corpus_tests! (tests/e2e.rs) differ"
        );
        assert!(
            found.len() >= 25,
            "the corpus has only {} fixtures",
            found.len()
        );
    }
}

/// Test (c): both tools on every fixture and level, side by side.
mod cross_check {
    use super::*;
    use harness::parallel_map;

    #[test]
    fn valgrind_and_leakscope_agree() {
        if !valgrind::available_or_skip("the cross-check") {
            return;
        }
        let corpus = corpus();
        let jobs: Vec<(&Fixture, Level)> = corpus
            .fixtures
            .iter()
            .flat_map(|f| Level::ALL.map(|l| (f, l)))
            .collect();
        let results = parallel_map(&jobs, |(fixture, level)| {
            let binary = corpus.binary(fixture, *level);
            let args = corpus.args(fixture, *level);
            (
                valgrind::run(&binary, &args),
                leakscope::run(&binary, &args),
            )
        });
        let mut rows = Vec::new();
        let mut errors = String::new();
        for ((fixture, level), (vg, ls)) in jobs.iter().zip(&results) {
            rows.extend(check::agreement_rows(&fixture.name, level.name(), vg, ls));
            for (tool, result) in [("valgrind", vg), ("leakscope", ls)] {
                if let Err(e) = result {
                    let _ = writeln!(errors, "{} at {level} under {tool}: {e}", fixture.name);
                }
            }
        }
        let table = check::table(&rows);
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("leakscope-e2e")
            .join("agreement.txt");
        let _ = std::fs::write(&path, &table);
        println!("{table}\n(also in {})", path.display());
        let mismatches = rows.iter().filter(|r| !r.agree).count();
        assert!(
            mismatches == 0 && errors.is_empty(),
            "{mismatches} of {} rows disagree:\n{table}\n{errors}",
            rows.len()
        );
    }
}

/// Tests (d): targets leakscope must refuse, each with a non-zero exit and one line on stderr.
mod errors {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;
    use harness::build::{compile_static, programs_dir};
    use harness::expect::Exit;
    use harness::leakscope::Invocation;
    use harness::process::Output;

    fn echo_io() -> std::path::PathBuf {
        let corpus = corpus();
        corpus.binary(corpus.fixture("echo_io"), Level::O0)
    }

    fn run(invocation: Invocation<'_>) -> Output {
        let dir = tempfile::tempdir().unwrap();
        invocation
            .run(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }

    fn assert_refused(output: &Output, words: &str) {
        let stderr = output.stderr_text();
        assert!(
            matches!(output.exit(), Exit::Code(c) if c != 0),
            "leakscope should exit with a non-zero code, it ended with {}; stderr:\n{stderr}",
            output.exit()
        );
        assert!(
            stderr.to_lowercase().contains(words),
            "leakscope's message should mention {words:?}; stderr:\n{stderr}"
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "leakscope should print exactly one line on stderr; stderr:\n{stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "nothing should run, yet stdout has {:?}",
            output.stdout_text()
        );
    }

    #[test]
    fn program_not_found_by_path() {
        let missing = Path::new("/nonexistent/leakscope-e2e/no-such-program");
        assert_refused(&run(Invocation::new(missing)), "not found");
    }

    #[test]
    fn program_not_found_on_path() {
        let missing = Path::new("leakscope-e2e-no-such-program");
        assert_refused(&run(Invocation::new(missing)), "not found");
    }

    #[test]
    fn program_not_executable() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("echo_io");
        fs::copy(echo_io(), &copy).unwrap();
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
        assert_refused(&run(Invocation::new(&copy)), "not executable");
    }

    #[test]
    fn statically_linked_program() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("echo_io_static");
        if let Err(e) = compile_static(&programs_dir().join("echo_io.c"), &program) {
            println!(
                "skipping statically_linked_program: cannot link statically (is libc.a \
                 installed? apt-get install libc6-dev): {e}"
            );
            return;
        }
        assert_refused(&run(Invocation::new(&program)), "statically linked");
    }

    #[test]
    fn setuid_program() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("echo_io_setuid");
        fs::copy(echo_io(), &copy).unwrap();
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).unwrap();
        let mode = fs::metadata(&copy).unwrap().permissions().mode();
        assert_ne!(
            mode & 0o4000,
            0,
            "the setuid bit did not stick on {}",
            copy.display()
        );
        assert_refused(&run(Invocation::new(&copy)), "setuid");
    }

    #[test]
    fn agent_missing() {
        let program = echo_io();
        let invocation =
            Invocation::new(&program).env("LEAKSCOPE_AGENT", "/nonexistent/libleakscope_agent.so");
        assert_refused(&run(invocation), "agent");
    }
}

/// Tests (e): leakscope is invisible to the program it runs.
mod passthrough {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::Invocation;
    use harness::process::Output;

    fn binary(name: &str) -> std::path::PathBuf {
        let corpus = corpus();
        corpus.binary(corpus.fixture(name), Level::O0)
    }

    fn run(invocation: Invocation<'_>) -> Output {
        let dir = tempfile::tempdir().unwrap();
        invocation
            .run(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }

    #[test]
    fn stdout_stderr_stdin_and_arguments_pass_through() {
        let program = binary("echo_io");
        let args = [
            "first",
            "second arg",
            "",
            "--format",
            "text",
            "-x",
            "--",
            "ünï cödé",
        ];
        let output = run(Invocation::new(&program)
            .args(args)
            .stdin(b"hello\nworld\n".to_vec()));
        let expected: String = args.iter().map(|a| format!("arg[{a}]\n")).collect();
        assert_eq!(
            output.stdout_text(),
            format!("{expected}hello\nworld\n"),
            "stdout; stderr:\n{}",
            output.stderr_text()
        );
        assert!(
            output.stderr_text().contains("echo_io: stderr line\n"),
            "the program's stderr line is missing; stderr:\n{}",
            output.stderr_text()
        );
        assert_eq!(
            output.exit(),
            Exit::Code(0),
            "stderr:\n{}",
            output.stderr_text()
        );
    }

    #[test]
    fn binary_stdin_passes_through() {
        let program = binary("echo_io");
        let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        let output = run(Invocation::new(&program).stdin(data.clone()));
        assert_eq!(
            output.stdout.len(),
            data.len(),
            "stderr:\n{}",
            output.stderr_text()
        );
        assert!(output.stdout == data, "stdout differs from stdin");
    }

    #[test]
    fn exit_code_passes_through() {
        let output = run(Invocation::new(&binary("exit_code")));
        assert_eq!(
            output.exit(),
            Exit::Code(7),
            "stderr:\n{}",
            output.stderr_text()
        );
    }

    #[test]
    fn error_exitcode_replaces_the_code_only_when_leaking() {
        let leaking = run(Invocation::new(&binary("lost_malloc")).extra(["--error-exitcode", "9"]));
        assert_eq!(
            leaking.exit(),
            Exit::Code(9),
            "a leaking program; stderr:\n{}",
            leaking.stderr_text()
        );
        let clean = run(Invocation::new(&binary("exit_code")).extra(["--error-exitcode", "9"]));
        assert_eq!(
            clean.exit(),
            Exit::Code(7),
            "a clean program keeps its code; stderr:\n{}",
            clean.stderr_text()
        );
        let clean = run(Invocation::new(&binary("no_leaks")).extra(["--error-exitcode", "9"]));
        assert_eq!(
            clean.exit(),
            Exit::Code(0),
            "a clean program keeps its code; stderr:\n{}",
            clean.stderr_text()
        );
    }

    #[test]
    fn environment_passes_through() {
        let value = "a value with spaces, = and ünïcödé";
        let output = run(Invocation::new(&binary("print_env")).env("E2E_ENV_VALUE", value));
        assert_eq!(
            output.stdout_text(),
            format!("E2E_ENV_VALUE={value}\n"),
            "stderr:\n{}",
            output.stderr_text()
        );
        assert_eq!(output.exit(), Exit::Code(0));
    }

    #[test]
    fn ld_preload_is_not_inherited_by_executed_programs() {
        let output = run(Invocation::new(&binary("exec_child_env")));
        assert_eq!(
            output.stdout_text(),
            "[]\n",
            "a program run by the target saw a preload; stderr:\n{}",
            output.stderr_text()
        );
        assert_eq!(output.exit(), Exit::Code(0));
    }

    /// Arguments that are not UTF-8 reach the program byte for byte.
    #[test]
    fn non_utf8_arguments_pass_through() {
        use std::os::unix::ffi::OsStringExt;
        let program = binary("echo_io");
        let arg = OsString::from_vec(vec![b'a', 0xff, 0xfe, b'z']);
        let output = run(Invocation::new(&program).args([arg]));
        assert_eq!(
            output.stdout,
            b"arg[a\xff\xfez]\n",
            "stderr:\n{}",
            output.stderr_text()
        );
    }
}

/// The profile file and the process edges that the corpus does not cover: `--max-frames`,
/// `--keep` and `leakscope report`, a target killed with SIGKILL, damaged profiles, `fork` while
/// other threads allocate, and threads still allocating when the program exits.
mod robustness {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::{command, Invocation};
    use harness::process::{self, Output};
    use serde_json::Value;
    use std::fs;
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    fn fixture(name: &str) -> PathBuf {
        let corpus = corpus();
        corpus.binary(corpus.fixture(name), Level::O0)
    }

    /// Compile a C program given as text into `dir`.
    fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
        compile_at(dir, name, source, "-O1")
    }

    /// Compile a C program given as text into `dir` at an optimisation level.
    fn compile_at(dir: &Path, name: &str, source: &str, level: &str) -> PathBuf {
        let source_path = dir.join(format!("{name}.c"));
        fs::write(&source_path, source).unwrap();
        let binary = dir.join(name);
        let status = std::process::Command::new(harness::build::cc())
            .args(["-g", level, "-pthread", "-o"])
            .arg(&binary)
            .arg(&source_path)
            .status()
            .unwrap();
        assert!(status.success(), "compiling {name} failed");
        binary
    }

    fn read_json(path: &Path) -> Value {
        let text = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON: {e}\n{text}"))
    }

    fn leakscope(args: &[&std::ffi::OsStr]) -> Output {
        let mut cmd = command();
        cmd.args(args);
        process::run(&mut cmd, None, process::TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn max_frames_bounds_every_stack() {
        let dir = tempfile::tempdir().unwrap();
        let program = fixture("tree_root_lost");
        let (output, report) = Invocation::new(&program)
            .extra(["--max-frames", "2"])
            .run(dir.path())
            .unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let report = read_json(&report);
        let leaks = report["leaks"].as_array().unwrap();
        assert!(!leaks.is_empty());
        for leak in leaks {
            let mut addresses: Vec<&str> = leak["stack"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["address"].as_str().unwrap())
                .collect();
            addresses.dedup();
            assert!(
                addresses.len() <= 2,
                "a stack of {} frames: {leak}",
                addresses.len()
            );
        }
        // The totals do not depend on how deep stacks are.
        assert_eq!(report["summary"]["indirectly_lost"]["blocks"], 14);
    }

    #[test]
    fn a_kept_profile_reports_the_same_again() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("kept.profile");
        let program = fixture("fork_child_leak");
        let (output, first) = Invocation::new(&program)
            .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
            .run(dir.path())
            .unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let again = dir.path().join("again.json");
        let output = leakscope(&[
            "report".as_ref(),
            profile.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
            "--output".as_ref(),
            again.as_os_str(),
        ]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert_eq!(read_json(&first), read_json(&again));
        assert_eq!(read_json(&again)["children"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_target_killed_with_sigkill_leaves_a_readable_profile() {
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "sleeper",
            r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static void *volatile sink;
int main(void) {
    for (int i = 0; i < 100; i++) { sink = malloc(64); }
    printf("%d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
"#,
        );
        let profile = dir.path().join("killed.profile");
        let report = dir.path().join("report.json");
        let mut child = command()
            .args(["run", "--format", "json", "--output"])
            .arg(&report)
            .arg("--keep")
            .arg(&profile)
            .arg("--")
            .arg(&program)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid: i32 = line.trim().parse().unwrap();
        // Wait for the writer thread's first flush (every 200 ms), then kill.
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::metadata(&profile).map_or(0, |m| m.len()) < 64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: sends SIGKILL to the target program, a process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "leakscope dies as its target did"
        );
        let report = read_json(&report);
        assert_eq!(report["exit"]["signal"], 9);
        let notes = report["notes"].to_string();
        assert!(notes.contains("did not finish normally"), "notes: {notes}");
    }

    #[test]
    fn damaged_profiles_say_so_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("whole.profile");
        let program = fixture("lost_malloc");
        let (output, _) = Invocation::new(&program)
            .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
            .run(dir.path())
            .unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let bytes = fs::read(&profile).unwrap();

        let cut = dir.path().join("cut.profile");
        fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let output = leakscope(&["report".as_ref(), cut.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert!(
            output.stdout_text().contains("cut short"),
            "{}",
            output.stdout_text()
        );

        let foreign = dir.path().join("foreign.profile");
        fs::write(&foreign, b"#!/bin/sh\necho not a profile\n").unwrap();
        let output = leakscope(&["report".as_ref(), foreign.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(1));
        assert!(output.stderr_text().contains("not a leakscope profile"));
        assert_eq!(
            output.stderr_text().lines().count(),
            1,
            "{}",
            output.stderr_text()
        );

        let missing = dir.path().join("missing.profile");
        let output = leakscope(&["report".as_ref(), missing.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(1));
        assert!(output.stderr_text().contains("no such file"));
    }

    #[test]
    fn fork_while_other_threads_allocate_does_not_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "fork_storm",
            r#"
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int stop;
static void *churn(void *arg) {
    while (!stop) { void *p = malloc(16 + (rand() % 500)); free(p); }
    return arg;
}
int main(void) {
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) pthread_create(&threads[i], 0, churn, 0);
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        if (pid == 0) { void *p = malloc(100); free(p); _exit(0); }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status)) return 2;
    }
    stop = 1;
    for (int i = 0; i < 3; i++) pthread_join(threads[i], 0);
    return 0;
}
"#,
        );
        let (output, report) = Invocation::new(&program).run(dir.path()).unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let report = read_json(&report);
        assert_eq!(report["children"].as_array().unwrap().len(), 100);
    }

    #[test]
    fn threads_still_allocating_at_exit_are_stopped_for_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "busy_exit",
            r#"
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static void *volatile sink;
static void *churn(void *arg) {
    for (;;) { void *p = malloc(16 + (rand() % 500)); free(p); }
    return arg;
}
int main(void) {
    pthread_t threads[6];
    for (int i = 0; i < 6; i++) pthread_create(&threads[i], 0, churn, 0);
    usleep(100000);
    sink = malloc(4321);
    sink = 0;
    exit(0);
}
"#,
        );
        for _ in 0..3 {
            let (output, report) = Invocation::new(&program).run(dir.path()).unwrap();
            assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
            let report = read_json(&report);
            let lost = report["leaks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["kind"] == "definitely_lost" && l["bytes"] == 4321)
                .count();
            assert_eq!(lost, 1, "{report}");
        }
    }

    /// A library's constructor runs before the agent's own (a preloaded object is initialised
    /// after the libraries it precedes): its allocations are tracked all the same, with stacks.
    #[test]
    fn allocations_before_the_agents_constructor_are_tracked() {
        let dir = tempfile::tempdir().unwrap();
        let library_source = dir.path().join("early.c");
        fs::write(
            &library_source,
            "#include <stdlib.h>\n\
             void *volatile early_sink;\n\
             __attribute__((constructor)) static void early_init(void) {\n\
             early_sink = malloc(111); early_sink = 0; }\n",
        )
        .unwrap();
        let library = dir.path().join("libearly.so");
        let status = std::process::Command::new(harness::build::cc())
            .args(["-g", "-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&library_source)
            .status()
            .unwrap();
        assert!(status.success());
        let program_source = dir.path().join("uses_early.c");
        fs::write(
            &program_source,
            "extern void *volatile early_sink;\nint main(void) { return early_sink != 0; }\n",
        )
        .unwrap();
        let program = dir.path().join("uses_early");
        let status = std::process::Command::new(harness::build::cc())
            .args(["-g", "-o"])
            .arg(&program)
            .arg(&program_source)
            .arg(format!("-L{}", dir.path().display()))
            .arg("-learly")
            .arg(format!("-Wl,-rpath,{}", dir.path().display()))
            .status()
            .unwrap();
        assert!(status.success());
        let (output, report) = Invocation::new(&program).run(dir.path()).unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let report = read_json(&report);
        assert_eq!(report["summary"]["definitely_lost"]["bytes"], 111);
        assert_eq!(report["leaks"][0]["stack"][0]["function"], "early_init");
    }

    /// 100 000 blocks from one call site make one stack in the profile, not 100 000.
    #[test]
    fn identical_stacks_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("many.profile");
        let program = fixture("many_leaks_100k");
        let (output, _) = Invocation::new(&program)
            .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
            .run(dir.path())
            .unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let dump = leakscope(&["dump".as_ref(), profile.as_os_str()]);
        let stacks = dump
            .stdout_text()
            .lines()
            .filter(|l| l.starts_with("stack "))
            .count();
        assert!(
            (1..50).contains(&stacks),
            "{stacks} stacks for 100 000 allocations from one site"
        );
        let size = fs::metadata(&profile).unwrap().len();
        assert!(size < 64 * 1024, "the profile is {size} bytes");
    }

    /// The agent reuses the previous stack walk above the first frame both walks share. Every
    /// way for the stack to change under that cache must still give each allocation its own
    /// true stack: another caller at the same depth, alloca frames of another size, recursion
    /// of another depth, one call site reaching two functions through a pointer, and longjmp
    /// out of deep frames. Each leak has its own size, so its stack can be checked exactly.
    #[test]
    fn incremental_stack_walks_follow_every_change() {
        let dir = tempfile::tempdir().unwrap();
        for level in ["-O0", "-O2"] {
            check_changing_stacks(dir.path(), level);
        }
    }

    fn check_changing_stacks(dir: &Path, level: &str) {
        let name = format!("changing_stacks{level}");
        let program = compile_at(
            dir,
            &name,
            r#"
#include <alloca.h>
#include <setjmp.h>
#include <stdlib.h>
#define NOINLINE __attribute__((noipa))
static void *volatile sink;
static jmp_buf escape_hatch;
NOINLINE void leak_at(int tag) { sink = malloc(100 + tag); sink = 0; }
NOINLINE void via_a(int tag) { leak_at(tag); __asm__ volatile("" ::: "memory"); }
NOINLINE void via_b(int tag) { leak_at(tag); __asm__ volatile("" ::: "memory"); }
NOINLINE void with_alloca(int size, int tag) {
    char *buffer = alloca(size);
    buffer[0] = 1;
    __asm__ volatile("" : : "r"(buffer) : "memory");
    via_a(tag);
    __asm__ volatile("" ::: "memory");
}
NOINLINE void deep(int depth, int tag) {
    if (depth > 0) { deep(depth - 1, tag); __asm__ volatile("" ::: "memory"); return; }
    via_b(tag);
    __asm__ volatile("" ::: "memory");
}
NOINLINE void deep_then_jump(int depth, int tag) {
    if (depth > 0) { deep_then_jump(depth - 1, tag); __asm__ volatile("" ::: "memory"); return; }
    leak_at(tag);
    longjmp(escape_hatch, 1);
}
NOINLINE void call_through(void (*f)(int), int tag) { f(tag); __asm__ volatile("" ::: "memory"); }
int main(void) {
    for (int round = 0; round < 2; round++) {
        int base = round * 20;
        via_a(base + 1); via_b(base + 2); via_a(base + 3);
        with_alloca(16, base + 4); with_alloca(4096, base + 5);
        deep(3, base + 6); deep(7, base + 7); deep(3, base + 8);
        call_through(via_a, base + 9); call_through(via_b, base + 10);
        if (!setjmp(escape_hatch)) deep_then_jump(6, base + 11);
        via_a(base + 12);
    }
    return 0;
}
"#,
            level,
        );
        let (output, report) = Invocation::new(&program).run(dir).unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let report = read_json(&report);
        // Both rounds leak from the same call sites, so the record of tag t holds two blocks,
        // of 100 + t and 120 + t bytes.
        let stack_of = |tag: u64| -> Vec<String> {
            let leak = report["leaks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["bytes"] == 220 + 2 * tag && l["blocks"] == 2)
                .unwrap_or_else(|| panic!("no record for tag {tag}: {report}"));
            leak["stack"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["function"].as_str().unwrap_or("?").to_string())
                .take_while(|f| f != "main")
                .collect()
        };
        let deep = |n: usize| vec!["deep"; n];
        let expect: Vec<(u64, Vec<&str>)> = vec![
            (1, vec!["leak_at", "via_a"]),
            (2, vec!["leak_at", "via_b"]),
            (3, vec!["leak_at", "via_a"]),
            (4, vec!["leak_at", "via_a", "with_alloca"]),
            (5, vec!["leak_at", "via_a", "with_alloca"]),
            (6, [vec!["leak_at", "via_b"], deep(4)].concat()),
            (7, [vec!["leak_at", "via_b"], deep(8)].concat()),
            (8, [vec!["leak_at", "via_b"], deep(4)].concat()),
            (9, vec!["leak_at", "via_a", "call_through"]),
            (10, vec!["leak_at", "via_b", "call_through"]),
            (11, [vec!["leak_at"], vec!["deep_then_jump"; 7]].concat()),
            (12, vec!["leak_at", "via_a"]),
        ];
        for (tag, functions) in expect {
            assert_eq!(
                stack_of(tag),
                functions,
                "the stack of the leak tagged {tag}"
            );
        }
        assert_eq!(report["leaks"].as_array().unwrap().len(), 12);
    }

    /// `leakscope diff` matches sites across two runs of one binary (loaded at other
    /// addresses) and lists the growth: 100 then 1000 blocks kept from `remember`.
    #[test]
    fn diff_lists_what_grew_between_two_runs() {
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "keeper",
            r#"
#include <stdlib.h>
static void **kept;
__attribute__((noinline)) void remember(int i) { kept[i] = malloc(100); }
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    kept = malloc(sizeof(void *) * n);
    for (int i = 0; i < n; i++) remember(i);
    return 0;
}
"#,
        );
        let run_keeping = |n: &str, profile: &Path| {
            let (output, _) = Invocation::new(&program)
                .args([n])
                .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
                .run(dir.path())
                .unwrap();
            assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        };
        let (before, after) = (
            dir.path().join("100.profile"),
            dir.path().join("1000.profile"),
        );
        run_keeping("100", &before);
        run_keeping("1000", &after);
        let diff_json = dir.path().join("diff.json");
        let output = leakscope(&[
            "diff".as_ref(),
            before.as_os_str(),
            after.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
            "--output".as_ref(),
            diff_json.as_os_str(),
        ]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let diff = read_json(&diff_json);
        let top = &diff["sites"][0];
        assert_eq!(top["blocks_delta"], 900, "{diff}");
        assert_eq!(top["bytes_delta"], 90_000);
        assert_eq!(top["stack"][0]["function"], "remember");
    }
}

/// Sampling mode (`--sample-rate`) keeps every block in the live table, so the totals of every
/// fixture must still equal memcheck's exactly, whatever was sampled; only the loss records
/// become estimates.
mod sampling {
    use super::*;
    use harness::parallel_map;

    #[test]
    fn totals_stay_exact_for_every_fixture() {
        let corpus = corpus();
        let cases: Vec<(&str, Level)> = corpus
            .fixtures
            .iter()
            .flat_map(|f| [(f.name.as_str(), Level::O0), (f.name.as_str(), Level::O2)])
            .collect();
        let problems: Vec<String> = parallel_map(&cases, |&(name, level)| {
            let fixture = corpus.fixture(name);
            let expect = fixture.expect(level);
            let run = match leakscope::run_with(
                &corpus.binary(fixture, level),
                &corpus.args(fixture, level),
                &["--sample-rate", "16K"],
            ) {
                Ok(run) => run,
                Err(e) => return vec![format!("{}: {e}", describe(fixture, level))],
            };
            let mut problems = Vec::new();
            if run.exit != expect.exit {
                problems.push(format!("ended with {}, expected {}", run.exit, expect.exit));
            }
            if run.main.totals != expect.main.totals {
                problems.push(format!(
                    "totals {} where memcheck has {}",
                    run.main.totals, expect.main.totals
                ));
            }
            if let Some(child) = &expect.child {
                if !run.children.iter().any(|c| c.totals == child.totals) {
                    problems.push(format!("no child with totals {}", child.totals));
                }
            }
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", describe(fixture, level)))
                .collect()
        })
        .into_iter()
        .flatten()
        .collect();
        assert!(
            problems.is_empty(),
            "in sampling mode:\n  {}",
            problems.join("\n  ")
        );
    }

    /// The site that lost 100 000 blocks of 16 bytes, sampled at 1 KiB (about 1 600 samples,
    /// a standard error near 2.5%): its estimate must land within 12% of the truth, and be
    /// marked as an estimate.
    #[test]
    fn a_sites_estimate_is_close_to_the_truth() {
        let corpus = corpus();
        let fixture = corpus.fixture("many_leaks_100k");
        let dir = tempfile::tempdir().unwrap();
        let binary = corpus.binary(fixture, Level::O2);
        let (output, report) = harness::leakscope::Invocation::new(&binary)
            .extra(["--sample-rate", "1K"])
            .run(dir.path())
            .unwrap();
        assert_eq!(
            output.exit(),
            harness::expect::Exit::Code(0),
            "{}",
            output.stderr_text()
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        assert_eq!(report["sampling"]["rate_bytes"], 1024);
        assert_eq!(report["summary"]["definitely_lost"]["blocks"], 100_000);
        let site = &report["leaks"][0];
        assert_eq!(site["estimated"], true);
        let blocks = site["blocks"].as_f64().unwrap();
        assert!(
            (88_000.0..112_000.0).contains(&blocks),
            "estimated {blocks} blocks for 100 000: {site}"
        );
        let unsampled = report["sampling"]["unsampled"]["blocks"].as_u64().unwrap();
        assert!(unsampled > 90_000, "{unsampled} blocks not sampled");
    }
}

/// Issue 4's scenarios (`tests/growth/`): programs running a few seconds whose live memory per
/// site has a known shape. With the default settings, the sites named in each header must be
/// the growing ones, and no other site may be called growing.
mod growth {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::Invocation;
    use harness::parallel_map;
    use serde_json::Value;
    use std::fs;
    use std::path::PathBuf;

    fn scenarios_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/growth")
    }

    /// The header's `growing` and `not-growing` function lists.
    fn expectations(source: &str) -> (Vec<String>, Vec<String>) {
        let mut growing = Vec::new();
        let mut not_growing = Vec::new();
        for line in source.lines().take_while(|l| l.starts_with("//")) {
            let mut words = line.trim_start_matches('/').split_whitespace();
            match words.next() {
                Some("growing") => growing.extend(words.filter(|w| *w != "none").map(String::from)),
                Some("not-growing") => not_growing.extend(words.map(String::from)),
                _ => {}
            }
        }
        (growing, not_growing)
    }

    fn functions(site: &Value) -> Vec<String> {
        site["stack"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["function"].as_str().map(String::from))
            .collect()
    }

    fn check(source_path: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
        let name = source_path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let source = fs::read_to_string(source_path).unwrap();
        let (growing, not_growing) = expectations(&source);
        let binary = dir.join(&name);
        let status = std::process::Command::new(harness::build::cc())
            .args(["-g", "-O1", "-o"])
            .arg(&binary)
            .arg(source_path)
            .arg("-lm")
            .status()
            .unwrap();
        if !status.success() {
            return vec![format!("{name}: does not compile")];
        }
        let run_dir = dir.join(format!("{name}.run"));
        fs::create_dir_all(&run_dir).unwrap();
        let (output, report) = match Invocation::new(&binary).run(&run_dir) {
            Ok(done) => done,
            Err(e) => return vec![format!("{name}: {e}")],
        };
        if output.exit() != Exit::Code(0) {
            return vec![format!(
                "{name}: ended with {}: {}",
                output.exit(),
                output.stderr_text()
            )];
        }
        let report: Value = serde_json::from_str(&fs::read_to_string(report).unwrap()).unwrap();
        let sites = report["growth"].as_array().unwrap();
        let mut problems = Vec::new();
        if report["timeline"].as_array().unwrap().len() < 20 {
            problems.push(format!("{name}: fewer than 20 timeline points"));
        }
        let found: Vec<&Value> = sites.iter().filter(|s| s["verdict"] == "growing").collect();
        for site in &found {
            let stack = functions(site);
            if !stack.iter().any(|f| growing.contains(f)) {
                problems.push(format!(
                    "{name}: a false alarm, growing at {stack:?}: {site}"
                ));
            }
        }
        if !growing.is_empty() && found.is_empty() {
            problems.push(format!(
                "{name}: no growing site, expected one in {growing:?}"
            ));
        }
        for site in sites.iter().filter(|s| s["verdict"] == "growing") {
            let stack = functions(site);
            if stack.first().is_some_and(|f| not_growing.contains(f)) {
                problems.push(format!("{name}: {stack:?} is called growing"));
            }
        }
        problems
    }

    #[test]
    fn every_scenario_gets_the_right_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut sources: Vec<PathBuf> = fs::read_dir(scenarios_dir())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "c"))
            .collect();
        sources.sort();
        assert!(sources.len() >= 6, "the scenarios are missing");
        let problems: Vec<String> = parallel_map(&sources, |source| check(source, dir.path()))
            .into_iter()
            .flatten()
            .collect();
        assert!(problems.is_empty(), "\n  {}", problems.join("\n  "));
    }
}

/// Issue 4: reachability scans while the program runs (`--scan-every`, SIGUSR1 on demand), and
/// snapshots in forked children. Programs in `tests/live/`.
mod live_scans {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::Invocation;
    use harness::process::Guard;
    use serde_json::Value;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    fn build(name: &str, dir: &Path) -> PathBuf {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/live")
            .join(format!("{name}.c"));
        let binary = dir.join(name);
        let status = std::process::Command::new(harness::build::cc())
            .args(["-g", "-O1", "-pthread", "-o"])
            .arg(&binary)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success(), "{name}.c does not compile");
        binary
    }

    fn read_json(path: &Path) -> Value {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }

    fn functions(stack: &Value) -> Vec<String> {
        stack
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["function"].as_str().map(String::from))
            .collect()
    }

    /// One block lost every 20 ms for 3 s, while two threads churn a reachable table (grown
    /// and shrunk with realloc) and a linked list: every scan must see exactly the lost
    /// blocks so far, none of the reachable ones, and the series must rise.
    #[test]
    fn lost_bytes_become_a_rising_series_and_reachable_churn_is_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let program = build("lost_over_time", dir.path());
        let (output, report) = Invocation::new(&program)
            .extra(["--scan-every", "300ms"])
            .run(dir.path())
            .unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let report = read_json(&report);
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
            assert_eq!(
                scan["threads_stopped"], 3,
                "main and two churn threads: {scan}"
            );
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
        let report = dir.path().join("report.json");
        let mut command = harness::leakscope::command();
        command
            .args(["run", "--format", "json", "--output"])
            .arg(&report)
            .arg("--keep")
            .arg(&profile)
            .arg("--")
            .arg(&program)
            .arg(&flag)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut guard = Guard::spawn(&mut command).unwrap();
        let leakscope_pid = guard.child().id() as i32;
        // The agent is ready once its writer has created the profile.
        let deadline = Instant::now() + Duration::from_secs(20);
        while fs::metadata(&profile).map_or(0, |m| m.len()) < 64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: sends SIGUSR1 to the leakscope process this test started.
        unsafe { libc::kill(leakscope_pid, libc::SIGUSR1) };
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
        let (output, report) = Invocation::new(&program).run(dir.path()).unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let report = read_json(&report);
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
}

/// Issue 4: a real long-running server, watched for 30 s under load, must get a report with no
/// growing site. nginx from Debian's packages (`.ci/run` installs it), in one process
/// (`master_process off`), so that the process leakscope watches is the one serving.
mod real_server {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::Invocation;
    use serde_json::Value;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    fn nginx() -> Option<std::path::PathBuf> {
        ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
    }

    /// Keep-alive GET requests until `until`; returns how many got a response.
    fn load(port: u16, until: Instant) -> u64 {
        let mut served = 0;
        while Instant::now() < until {
            let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            while Instant::now() < until {
                let path = format!("/index.html?request={served}");
                let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
                if writer.write_all(request.as_bytes()).is_err() {
                    break;
                }
                let mut length = None;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse::<usize>().ok();
                    }
                }
                let Some(length) = length else { break };
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    break;
                }
                served += 1;
            }
        }
        served
    }

    #[test]
    fn nginx_watched_for_30_seconds_under_load_has_no_growing_site() {
        let Some(nginx) = nginx() else {
            eprintln!("SKIPPED: nginx is not installed (.ci/run installs it)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["logs", "html"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("html/index.html"), "hello from nginx\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = root.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\n\
                 error_log {root}/logs/error.log;\npid {root}/nginx.pid;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{ access_log off; server {{ listen 127.0.0.1:{port}; \
                 location / {{ root {root}/html; }} }} }}\n",
                root = root.display()
            ),
        )
        .unwrap();
        let started = Instant::now();
        let loader = std::thread::spawn(move || load(port, started + Duration::from_secs(28)));
        let (output, report) = Invocation::new(&nginx)
            .args([
                "-p".as_ref(),
                root.as_os_str(),
                "-c".as_ref(),
                conf.as_os_str(),
            ])
            .extra(["--duration", "30s"])
            .run(root)
            .unwrap();
        let served = loader.join().unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert!(served > 1000, "only {served} requests were served");
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        assert!(report["timeline"].as_array().unwrap().len() >= 100);
        let growing: Vec<&Value> = report["growth"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["verdict"] == "growing")
            .collect();
        assert!(growing.is_empty(), "after {served} requests: {growing:#?}");
    }
}

/// Issue 8, items 3 and 9: results that never claim a leak check that did not happen, and a
/// command line that behaves as users expect. Every test runs the real `leakscope` on programs
/// compiled here.
mod cli {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::command;
    use harness::process::{self, Guard, Output};
    use serde_json::Value;
    use std::fs;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

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
        let source_path = dir.join(format!("{name}.c"));
        fs::write(&source_path, source).unwrap();
        let binary = dir.join(name);
        let status = Command::new(harness::build::cc())
            .args(["-g", "-O1", "-pthread", "-o"])
            .arg(&binary)
            .arg(&source_path)
            .status()
            .unwrap();
        assert!(status.success(), "compiling {name} failed");
        binary
    }

    fn leakscope<S: AsRef<std::ffi::OsStr>>(args: &[S], dir: &Path) -> Output {
        let mut cmd = command();
        cmd.args(args).current_dir(dir);
        process::run(&mut cmd, None, process::TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    fn read_json(path: &Path) -> Value {
        let text = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON: {e}\n{text}"))
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("no file {}: {e}", path.display()))
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
    }

    /// `leakscope run` started in the background, the program's first stdout line (its pid)
    /// read.
    struct Running {
        guard: Guard,
        stdout: BufReader<std::process::ChildStdout>,
        pid: i32,
    }

    impl Running {
        fn start(args: &[&std::ffi::OsStr], dir: &Path) -> Running {
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
            let deadline = Instant::now() + Duration::from_secs(60);
            let status = loop {
                if let Some(status) = self.guard.child().try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "leakscope did not end");
                std::thread::sleep(Duration::from_millis(20));
            };
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

    /// Wait until the agent's writer has put something in the profile.
    fn wait_for_profile(profile: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while fs::metadata(profile).map_or(0, |m| m.len()) < 64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(pid: i32, signal: i32) {
        // SAFETY: kill(2) on a process this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
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
            &[
                "run".as_ref(),
                "--error-exitcode".as_ref(),
                "9".as_ref(),
                "--keep".as_ref(),
                profile.as_os_str(),
                "--output".as_ref(),
                report.as_os_str(),
                program.as_os_str(),
                "wait".as_ref(),
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
        let output = leakscope(
            &[
                "report".as_ref(),
                profile.as_os_str(),
                "--format".as_ref(),
                "json".as_ref(),
                "--output".as_ref(),
                json.as_os_str(),
            ],
            dir.path(),
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
        let output = leakscope(
            &[
                "run".as_ref(),
                "--keep".as_ref(),
                profile.as_os_str(),
                "--output".as_ref(),
                dir.join("clean.txt").as_os_str(),
                program.as_os_str(),
            ],
            dir,
        );
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert!(read(&dir.join("clean.txt")).contains("All heap blocks were freed"));
        let bytes = fs::read(&profile).unwrap();
        let found = chunks(&bytes);
        (bytes, found)
    }

    fn report_of_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (String, Value) {
        let profile = dir.join(name);
        fs::write(&profile, bytes).unwrap();
        let text = leakscope(&["report".as_ref(), profile.as_os_str()], dir);
        assert_eq!(text.exit(), Exit::Code(0), "{}", text.stderr_text());
        let json = leakscope(
            &[
                "report".as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                profile.as_os_str(),
            ],
            dir,
        );
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
        let output = leakscope(
            &[
                "run".as_ref(),
                "--error-exitcode".as_ref(),
                "9".as_ref(),
                "--output".as_ref(),
                report.as_os_str(),
                program.as_os_str(),
            ],
            dir.path(),
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
        let report = dir.path().join("report.json");
        let output = leakscope(
            &[
                "run".as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                "--error-exitcode".as_ref(),
                "9".as_ref(),
                "--output".as_ref(),
                report.as_os_str(),
                program.as_os_str(),
            ],
            dir.path(),
        );
        assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
        let json = read_json(&report);
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
            let report = dir.path().join(format!("{mode}.json"));
            let output = leakscope(
                &[
                    "run".as_ref(),
                    "--format".as_ref(),
                    "json".as_ref(),
                    "--error-exitcode".as_ref(),
                    "9".as_ref(),
                    "--output".as_ref(),
                    report.as_os_str(),
                    program.as_os_str(),
                    mode.as_ref(),
                ],
                dir.path(),
            );
            (output, read_json(&report))
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
                .contains("1 block (100 bytes) definitely or indirectly lost in 1 process"),
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
        let output = leakscope(
            &[
                "run".as_ref(),
                "--error-exitcode".as_ref(),
                "9".as_ref(),
                "--output".as_ref(),
                dir.path().join("report.txt").as_os_str(),
                program.as_os_str(),
            ],
            dir.path(),
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
        let output = leakscope(
            &[
                "run".as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                "--output".as_ref(),
                report.as_os_str(),
                program.as_os_str(),
                "--duration".as_ref(),
                "5".as_ref(),
                "-x".as_ref(),
                "--".as_ref(),
                "--format".as_ref(),
            ],
            dir.path(),
        );
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert_eq!(
            output.stdout_text(),
            "arg[--duration]\narg[5]\narg[-x]\narg[--]\narg[--format]\n"
        );
        assert_eq!(read_json(&report)["format_version"], 1);

        // `--` before the program stays allowed, and then even a mistyped option is the
        // program's.
        let output = leakscope(
            &[
                "run".as_ref(),
                "--output".as_ref(),
                dir.path().join("r.txt").as_os_str(),
                "--".as_ref(),
                program.as_os_str(),
                "--durration".as_ref(),
            ],
            dir.path(),
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
            let output = leakscope(
                &[
                    "run".as_ref(),
                    typo.as_ref(),
                    "5s".as_ref(),
                    "--".as_ref(),
                    program.as_os_str(),
                    "ran".as_ref(),
                ],
                dir.path(),
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
            assert!(
                output.stdout.is_empty(),
                "the program ran: {}",
                output.stdout_text()
            );
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
            let output = leakscope(&args, dir.path());
            let stderr = output.stderr_text();
            assert_eq!(output.exit(), Exit::Code(1), "{options:?}: {stderr}");
            assert!(stderr.contains(words), "{options:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.starts_with("leakscope: cannot "), "{stderr}");
            assert!(
                output.stdout.is_empty(),
                "the program ran: {}",
                output.stdout_text()
            );
        }
    }

    /// SIGINT or SIGTERM sent to leakscope alone ends the program, which gets it exactly once,
    /// and leakscope reports.
    #[test]
    fn sigint_or_sigterm_to_leakscope_alone_reach_the_program_once() {
        let dir = tempfile::tempdir().unwrap();
        let program = compile(dir.path(), "waiter", WAITER);
        // A program with the default action dies of it; leakscope reports, then dies the same.
        for sent in [libc::SIGINT, libc::SIGTERM] {
            let report = dir.path().join(format!("default-{sent}.json"));
            let mut run = Running::start(
                &[
                    "run".as_ref(),
                    "--format".as_ref(),
                    "json".as_ref(),
                    "--output".as_ref(),
                    report.as_os_str(),
                    program.as_os_str(),
                    "wait".as_ref(),
                ],
                dir.path(),
            );
            let leakscope_pid = run.leakscope_pid();
            signal(leakscope_pid, sent);
            let (status, _, stderr) = run.finish();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(sent), "{stderr}");
            let json = read_json(&report);
            assert_eq!(json["exit"]["signal"], sent, "{json}");
            assert_eq!(json["leak_check"]["status"], "complete", "{json}");
            assert_eq!(json["summary"]["definitely_lost"]["bytes"], 77, "{json}");
        }
        // A program that handles it gets it once and ends as it chooses.
        for sent in [libc::SIGINT, libc::SIGTERM] {
            let report = dir.path().join(format!("counted-{sent}.json"));
            let mut run = Running::start(
                &[
                    "run".as_ref(),
                    "--format".as_ref(),
                    "json".as_ref(),
                    "--output".as_ref(),
                    report.as_os_str(),
                    program.as_os_str(),
                    "count".as_ref(),
                ],
                dir.path(),
            );
            let leakscope_pid = run.leakscope_pid();
            signal(leakscope_pid, sent);
            let (status, stdout, stderr) = run.finish();
            assert_eq!(stdout, "got 1\n", "signal {sent}; stderr:\n{stderr}");
            assert_eq!(status.code(), Some(3), "{stderr}");
            assert_eq!(read_json(&report)["exit"]["code"], 3);
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
            &[
                "run".as_ref(),
                "--keep".as_ref(),
                profile.as_os_str(),
                "--output".as_ref(),
                fifo.as_os_str(),
                program.as_os_str(),
            ],
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
        let output = leakscope(
            &[
                "run".as_ref(),
                "--keep".as_ref(),
                profile.as_os_str(),
                "--output".as_ref(),
                dir.path().join("report.txt").as_os_str(),
                program.as_os_str(),
            ],
            dir.path(),
        );
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
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
            leakscope(&args, dir.path())
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
        let output = leakscope(
            &[
                "run".as_ref(),
                "--keep".as_ref(),
                profile.as_os_str(),
                "--output".as_ref(),
                dir.path().join("report.txt").as_os_str(),
                program.as_os_str(),
                "leak".as_ref(),
            ],
            dir.path(),
        );
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
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
        let output = leakscope(
            &[
                "run".as_ref(),
                "--keep".as_ref(),
                profile.as_os_str(),
                "--output".as_ref(),
                report.as_os_str(),
                program.as_os_str(),
            ],
            dir.path(),
        );
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let pid = output.stdout_text().trim().to_owned();
        let stderr = output.stderr_text();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines,
            [
                format!("leakscope: watching PID {pid} (profile {})", profile.display()),
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
        let output = leakscope(&["report".as_ref(), profile.as_os_str()], dir.path());
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert_eq!(output.stderr_text(), "");
    }
}

/// Programs the program starts: exec, posix_spawn, system, popen, vfork, fork, a change of
/// user. Without `--follow-children` each is named in the report as untracked; with it, each
/// gets its own report with exact figures.
mod children {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::command;
    use harness::process::{self, Output};
    use serde_json::Value;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// Loses as many bytes as its first argument says, in one block, and exits with 0.
    const LEAKER: &str = r#"
#include <stdlib.h>
static void *volatile sink;
__attribute__((noinline)) static void lose_bytes(long n) { sink = malloc(n); sink = 0; }
int main(int argc, char **argv) { lose_bytes(argc > 1 ? atol(argv[1]) : 1); return 0; }
"#;

    /// Starts the leaker five ways (argv[1] is its path): fork then execv (101 bytes),
    /// posix_spawn (102), system (103), popen (104), waits for each, then replaces itself with
    /// execl (105). Loses nothing itself.
    const STARTER: &str = r#"
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    const char *leaker = argv[1];
    char command[4096];
    pid_t pid = fork();
    if (pid == 0) { execv(leaker, (char *[]){(char *)leaker, "101", NULL}); _exit(127); }
    waitpid(pid, NULL, 0);
    if (posix_spawn(&pid, leaker, NULL, NULL, (char *[]){(char *)leaker, "102", NULL}, environ) == 0)
        waitpid(pid, NULL, 0);
    snprintf(command, sizeof command, "%s 103", leaker);
    if (system(command) != 0) return 2;
    snprintf(command, sizeof command, "%s 104", leaker);
    FILE *pipe = popen(command, "r");
    if (!pipe || pclose(pipe) != 0) return 3;
    execl(leaker, leaker, "105", (char *)NULL);
    return 4;
}
"#;

    fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
        let source_path = dir.join(format!("{name}.c"));
        fs::write(&source_path, source).unwrap();
        let binary = dir.join(name);
        let status = std::process::Command::new(harness::build::cc())
            .args(["-g", "-O1", "-o"])
            .arg(&binary)
            .arg(&source_path)
            .status()
            .unwrap();
        assert!(status.success(), "compiling {name} failed");
        binary
    }

    fn run(dir: &Path, options: &[&str], program: &[&std::ffi::OsStr]) -> (Output, Value) {
        let report = dir.join("report.json");
        let mut cmd = command();
        cmd.arg("run")
            .args(options)
            .args(["--format", "json", "--output"])
            .arg(&report)
            .arg("--keep")
            .arg(dir.join("run.profile"))
            .arg("--")
            .args(program)
            .current_dir(dir);
        let output = process::run(&mut cmd, None, process::TIMEOUT).unwrap();
        let text = fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("no report: {e}\n{}", output.stderr_text()));
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON: {e}"));
        (output, json)
    }

    /// Every document of the tree, depth first.
    fn documents(report: &Value) -> Vec<&Value> {
        let mut all = vec![report];
        for child in report["children"].as_array().into_iter().flatten() {
            all.extend(documents(child));
        }
        all
    }

    fn all_notes(report: &Value) -> String {
        documents(report)
            .iter()
            .flat_map(|d| d["notes"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn without_follow_children_every_started_program_is_named_as_untracked() {
        let dir = tempfile::tempdir().unwrap();
        let leaker = compile(dir.path(), "leaker", LEAKER);
        let starter = compile(dir.path(), "starter", STARTER);
        let (output, report) = run(
            dir.path(),
            &["--error-exitcode", "9"],
            &[starter.as_os_str(), leaker.as_os_str()],
        );
        // The program replaced itself with an untracked one: its leak check never happened.
        assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
        assert_eq!(report["leak_check"]["status"], "not_run");
        let reasons = report["leak_check"]["reasons"].to_string();
        assert!(
            reasons.contains("replaced itself with") && reasons.contains("untracked"),
            "{reasons}"
        );
        let notes = all_notes(&report);
        assert!(notes.contains("4 programs ran untracked"), "{notes}");
        for how in ["(exec)", "(posix_spawn)", "(system)", "(popen)"] {
            assert!(notes.contains(how), "no {how} in: {notes}");
        }
        // The forked image that only executed the leaker is not a document of its own.
        assert_eq!(documents(&report).len(), 1, "{report:#}");
    }

    #[test]
    fn follow_children_reports_every_started_program_with_its_own_figures() {
        let dir = tempfile::tempdir().unwrap();
        let leaker = compile(dir.path(), "leaker", LEAKER);
        let starter = compile(dir.path(), "starter", STARTER);
        let (output, report) = run(
            dir.path(),
            &["--follow-children", "--error-exitcode", "9"],
            &[starter.as_os_str(), leaker.as_os_str()],
        );
        assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
        let docs = documents(&report);
        let leaker_name = leaker.to_string_lossy().into_owned();
        for bytes in [101, 102, 103, 104, 105] {
            let found = docs.iter().find(|d| {
                d["command"].as_array().is_some_and(|c| {
                    c.first().and_then(Value::as_str) == Some(&leaker_name)
                        && c.get(1).and_then(Value::as_str) == Some(&bytes.to_string())
                })
            });
            let Some(found) = found else {
                panic!("no report for the leaker started to lose {bytes} bytes:\n{report:#}")
            };
            assert_eq!(found["started_by"], "exec");
            assert_eq!(found["leak_check"]["status"], "complete", "{found:#}");
            assert_eq!(
                found["summary"]["definitely_lost"]["bytes"], bytes,
                "{found:#}"
            );
            assert_eq!(found["summary"]["definitely_lost"]["blocks"], 1);
        }
        // system and popen run a shell, which executes the leaker: those are exec'd too.
        // The program's own image was replaced by the leaker (105), in place: same pid.
        let replaced = docs
            .iter()
            .find(|d| d["summary"]["definitely_lost"]["bytes"] == 105)
            .unwrap();
        assert_eq!(replaced["pid"], report["pid"]);
        let reasons = report["leak_check"]["reasons"].to_string();
        assert!(reasons.contains("whose own report follows"), "{reasons}");
        assert!(!all_notes(&report).contains("untracked"), "{report:#}");
    }

    #[test]
    fn a_program_that_execs_at_once_still_leaves_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let (output, report) = run(
            dir.path(),
            &[],
            &["sh".as_ref(), "-c".as_ref(), "exec true".as_ref()],
        );
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert_eq!(report["command"][0], "sh");
        let reasons = report["leak_check"]["reasons"].to_string();
        assert!(
            reasons.contains("replaced itself with '") && reasons.contains("true' (exec)"),
            "{reasons}"
        );
    }

    #[test]
    fn a_shell_that_vforks_is_followed_too() {
        let dir = tempfile::tempdir().unwrap();
        let leaker = compile(dir.path(), "leaker", LEAKER);
        let script = format!("{} 321 > /dev/null; true", leaker.display());
        let sh: [&std::ffi::OsStr; 3] = ["sh".as_ref(), "-c".as_ref(), script.as_ref()];
        let (_, untracked) = run(dir.path(), &[], &sh);
        let notes = all_notes(&untracked);
        assert!(notes.contains("1 program ran untracked"), "{notes}");
        let (_, followed) = run(dir.path(), &["--follow-children"], &sh);
        let lost: Vec<&Value> = documents(&followed)
            .into_iter()
            .map(|d| &d["summary"]["definitely_lost"]["bytes"])
            .collect();
        assert!(lost.contains(&&Value::from(321)), "{followed:#}");
    }

    #[test]
    fn a_child_that_drops_to_nobody_keeps_writing_its_profile() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: changing to user nobody needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "drops",
            r#"
#include <grp.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void *volatile sink;
__attribute__((noinline)) static void lose_bytes(long n) { sink = malloc(n); sink = 0; }
int main(void) {
    pid_t pid = fork();
    if (pid == 0) {
        lose_bytes(111);
        usleep(300000); /* past the agent's first snapshot: its profile exists, root's */
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) _exit(2);
        lose_bytes(222);
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
"#,
        );
        // The profile lies in a directory only root may enter (0700): after the change,
        // nobody could not open it by path.
        let private = dir.path().join("private");
        fs::create_dir(&private).unwrap();
        fs::set_permissions(
            &private,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let report_path = dir.path().join("report.json");
        let mut cmd = command();
        cmd.args(["run", "--format", "json", "--output"])
            .arg(&report_path)
            .arg("--keep")
            .arg(private.join("run.profile"))
            .arg(&program);
        let output = process::run(&mut cmd, None, process::TIMEOUT).unwrap();
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let report: Value =
            serde_json::from_str(&fs::read_to_string(&report_path).unwrap()).unwrap();
        let child = &report["children"][0];
        assert_eq!(child["started_by"], "fork", "{report:#}");
        assert_eq!(child["leak_check"]["status"], "complete", "{child:#}");
        assert_eq!(
            child["summary"]["definitely_lost"]["bytes"], 333,
            "{child:#}"
        );
        assert_eq!(child["summary"]["definitely_lost"]["blocks"], 2);
    }
}

/// Programs whose allocator is not glibc's alone, or that look into it; very large heaps; ends
/// in the first instant.
mod neighbours {
    use super::*;
    use harness::expect::Exit;
    use harness::leakscope::command;
    use harness::process::{self, Output};
    use serde_json::Value;
    use std::fs;
    use std::path::{Path, PathBuf};

    const JEMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

    fn compile(dir: &Path, name: &str, source: &str, compiler: &str, extra: &[&str]) -> PathBuf {
        let ext = if compiler == "c++" { "cpp" } else { "c" };
        let source_path = dir.join(format!("{name}.{ext}"));
        fs::write(&source_path, source).unwrap();
        let binary = dir.join(name);
        let status = std::process::Command::new(compiler)
            .args(["-g", "-O1", "-o"])
            .arg(&binary)
            .arg(&source_path)
            .args(extra)
            .status()
            .unwrap();
        assert!(status.success(), "compiling {name} failed");
        binary
    }

    fn run(dir: &Path, program: &[&std::ffi::OsStr]) -> (Output, Value) {
        let report = dir.join("report.json");
        let mut cmd = command();
        cmd.args(["run", "--format", "json", "--output"])
            .arg(&report)
            .arg("--")
            .args(program)
            .current_dir(dir);
        let output = process::run(&mut cmd, None, process::TIMEOUT).unwrap();
        let text = fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("no report: {e}\n{}", output.stderr_text()));
        (output, serde_json::from_str(&text).unwrap())
    }

    fn lost(report: &Value) -> (u64, u64) {
        let kind = &report["summary"]["definitely_lost"];
        (
            kind["bytes"].as_u64().unwrap(),
            kind["blocks"].as_u64().unwrap(),
        )
    }

    /// Asks glibc's heap functions about its blocks, prints what it can compare natively, and
    /// loses 100 bytes.
    const HEAP_QUESTIONS: &str = r#"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
static void *volatile sink;
__attribute__((noinline)) static void lose_hundred(void) { sink = malloc(100); sink = 0; }
int main(void) {
    char *p = malloc(100);
    size_t usable = malloc_usable_size(p);
    struct mallinfo2 info = mallinfo2();
    FILE *devnull = fopen("/dev/null", "w");
    int ok = malloc_trim(0) >= 0 && mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1
        && malloc_info(0, devnull) == 0 && info.uordblks > 0;
    fclose(devnull);
    printf("usable>=100 %d ok %d\n", usable >= 100, ok);
    free(p);
    lose_hundred();
    return 0;
}
"#;

    #[test]
    fn glibc_heap_functions_work_on_the_agents_blocks_with_or_without_jemalloc() {
        let dir = tempfile::tempdir().unwrap();
        let mut builds = vec![compile(dir.path(), "plain", HEAP_QUESTIONS, "cc", &[])];
        if Path::new(JEMALLOC).exists() {
            builds.push(compile(
                dir.path(),
                "with_jemalloc",
                HEAP_QUESTIONS,
                "cc",
                &[JEMALLOC],
            ));
        } else {
            eprintln!("jemalloc case skipped: {JEMALLOC} is missing (.ci/setup.sh installs it)");
        }
        for program in builds {
            // (Natively, a program linked with jemalloc has nothing in glibc's heap, so its
            // mallinfo2 is empty; under the agent every block is glibc's. Only the plain build
            // must print exactly what it prints natively.)
            let native = std::process::Command::new(&program).output().unwrap();
            let (output, report) = run(dir.path(), &[program.as_os_str()]);
            assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
            if program.ends_with("plain") {
                assert_eq!(
                    output.stdout_text(),
                    String::from_utf8_lossy(&native.stdout)
                );
            }
            assert_eq!(output.stdout_text(), "usable>=100 1 ok 1\n");
            assert_eq!(lost(&report), (100, 1), "{}", program.display());
        }
    }

    #[test]
    fn jemallocs_own_api_is_served_and_tracked() {
        if !Path::new(JEMALLOC).exists() {
            eprintln!("skipped: {JEMALLOC} is missing (.ci/setup.sh installs it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "jemalloc_api",
            r#"
#include <stdio.h>
#include <stdint.h>
#include <string.h>
void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t sallocx(const void *ptr, int flags);
void dallocx(void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);
size_t nallocx(size_t size, int flags);
#define ALIGN(lg) (lg)
#define ZERO 0x40
static void *volatile sink;
__attribute__((noinline)) static void lose_through_mallocx(void) { sink = mallocx(300, 0); sink = 0; }
int main(void) {
    char *a = mallocx(1000, ALIGN(12) | ZERO);
    int aligned = ((uintptr_t)a & 4095) == 0, zeroed = 1;
    for (int i = 0; i < 1000; i++) zeroed &= a[i] == 0;
    memset(a, 1, 1000);
    a = rallocx(a, 5000, ZERO);
    int kept = a[999] == 1 && a[4999] == 0;
    int sizes = sallocx(a, 0) >= 5000 && xallocx(a, 6000, 0, 0) >= 5000 && nallocx(40, 0) >= 40;
    sdallocx(a, 5000, 0);
    char *b = mallocx(64, 0);
    dallocx(b, 0);
    lose_through_mallocx();
    printf("%d %d %d %d\n", aligned, zeroed, kept, sizes);
    return 0;
}
"#,
            "cc",
            &[JEMALLOC],
        );
        let (output, report) = run(dir.path(), &[program.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert_eq!(output.stdout_text(), "1 1 1 1\n");
        assert_eq!(lost(&report), (300, 1), "{report:#}");
        let stack = report["leaks"][0]["stack"].to_string();
        assert!(stack.contains("lose_through_mallocx"), "{stack}");
    }

    #[test]
    fn cxx_new_is_tracked_even_where_jemalloc_defines_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = r#"
#include <cstdio>
#include <new>
struct Node { char payload[40]; Node *next; };
static Node *volatile sink;
__attribute__((noinline)) void lose_nodes() {
    sink = new Node();
    sink = nullptr;
    sink = new (std::nothrow) Node[2];
    sink = nullptr;
    Node *kept = new Node();
    delete kept;
}
int main() { lose_nodes(); std::puts("done"); }
"#;
        let mut builds = vec![compile(dir.path(), "plain", source, "c++", &[])];
        if Path::new(JEMALLOC).exists() {
            builds.push(compile(
                dir.path(),
                "with_jemalloc",
                source,
                "c++",
                &[JEMALLOC],
            ));
        }
        for program in builds {
            let (output, report) = run(dir.path(), &[program.as_os_str()]);
            assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
            // One Node (48 bytes) and an array of two (96 bytes, plus no cookie: trivial type).
            assert_eq!(lost(&report), (144, 2), "{}: {report:#}", program.display());
            let stacks = report["leaks"].to_string();
            assert!(stacks.contains("lose_nodes"), "{stacks}");
        }
    }

    #[test]
    fn a_program_with_its_own_malloc_gets_a_note_instead_of_an_all_clear() {
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "own_malloc",
            r#"
#include <stddef.h>
#include <string.h>
static char arena[1 << 20];
static size_t used;
void *malloc(size_t n) { void *p = arena + used; used += (n + 15) & ~(size_t)15; return p; }
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { void *p = malloc(a * b); memset(p, 0, a * b); return p; }
void *realloc(void *p, size_t n) { void *q = malloc(n); if (p) memcpy(q, p, n); return q; }
int main(void) { void *volatile p = malloc(100); p = 0; return 0; }
"#,
            "cc",
            &[],
        );
        let (_, report) = run(dir.path(), &[program.as_os_str()]);
        let notes = report["notes"].to_string();
        assert!(notes.contains("defines its own malloc"), "{notes}");
    }

    #[test]
    fn two_and_a_half_million_live_blocks_are_all_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let program = compile(
            dir.path(),
            "many_blocks",
            r#"
#include <stdlib.h>
void **volatile kept; /* volatile: the compiler may not drop the allocations */
__attribute__((noinline)) static void allocate(long n) {
    kept = malloc(n * sizeof *kept);
    for (long i = 0; i < n; i++) kept[i] = malloc(16);
    for (long i = 0; i < n; i += 2) kept[i] = 0; /* half of them lost */
}
int main(void) {
    allocate(2500000);
    kept = 0; /* and the array too, with the other half: indirectly lost */
    return 0;
}
"#,
            "cc",
            &[],
        );
        let (output, report) = run(dir.path(), &[program.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        assert_eq!(
            report["leak_check"]["status"], "complete",
            "{}",
            report["leak_check"]
        );
        assert_eq!(lost(&report), (20_000_000 + 1_250_000 * 16, 1_250_001));
        let indirect = &report["summary"]["indirectly_lost"];
        assert_eq!(indirect["blocks"], 1_250_000);
        assert_eq!(indirect["bytes"], 1_250_000 * 16);
    }

    #[test]
    fn a_program_killed_in_its_first_instant_still_has_a_report_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (output, report) = run(
            dir.path(),
            &["sh".as_ref(), "-c".as_ref(), "kill -9 $$".as_ref()],
        );
        assert_eq!(output.exit(), Exit::Signal(9), "{}", output.stderr_text());
        assert_eq!(report["command"][0], "sh");
        assert_eq!(report["leak_check"]["status"], "not_run");
        assert!(
            report["leak_check"]["reasons"]
                .to_string()
                .contains("SIGKILL"),
            "{report:#}"
        );
    }
}

//! Suppression files, display filters and the gate (issue 10): a program with known blocks,
//! a suppression file in the style projects ship (memcheck's syntax with `...`, `*`, `obj:`,
//! `match-leak-kinds` and other tools' entries, and a LeakSanitizer line), the exact bytes and
//! blocks suppressed, the gate's exit codes, and memcheck given the same file hiding the same
//! blocks.

use std::path::{Path, PathBuf};

use crate::harness::build::{compile_file, compile_text};
use crate::harness::expect::{Amount, Exit, Kind};
use crate::harness::leakscope::Invocation;
use crate::harness::{memcheck, process, valgrind};

/// Blocks by function: `register_token` (through `make_token`) loses 2 blocks of 24 bytes;
/// `cache_entry` keeps 3 blocks of 40 bytes reachable from a global; `parse_header` loses 1
/// block of 100 bytes. `noinline` keeps every frame at -O0 and under memcheck alike.
const PROGRAM: &str = r#"
#include <stdlib.h>
#include <string.h>

static void *cache[3];
static void *volatile sink;

__attribute__((noinline)) static char *make_token(void) {
    char *token = malloc(24);
    memset(token, 't', 24);
    return token;
}
__attribute__((noinline)) static void register_token(void) { sink = make_token(); sink = 0; }
__attribute__((noinline)) static void cache_entry(int i) { cache[i] = calloc(1, 40); }
__attribute__((noinline)) static void parse_header(void) { sink = malloc(100); sink = 0; }

int main(void) {
    register_token();
    register_token();
    for (int i = 0; i < 3; i++) cache_entry(i);
    parse_header();
    return 0;
}
"#;

/// Known leaks of the example program, as a project keeps them beside its tests.
const SUPPRESSIONS: &str = "\
# example.supp: what the example program keeps or loses on purpose.
# Shared by memcheck and leakscope.

# The token registry is never torn down.
{
   token-registry-is-never-freed
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:make_token
   obj:*/suppress_prog
   ...
   fun:main
}

# The cache lives as long as the process.
{
   cache-kept-for-the-process-lifetime
   Memcheck:Leak
   match-leak-kinds: reachable
   fun:*alloc
   fun:cache_?ntry
   ...
}

# Entries for other errors and tools are skipped.
{
   strlen-reads-past-the-end
   Memcheck:Addr8
   fun:strlen
}
{
   cache-race
   Helgrind:Race
   fun:cache_entry
}
";

fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let program = compile_text(dir, "suppress_prog.c", PROGRAM, &["-O0", "-g"], &[]);
    let supp = dir.join("example.supp");
    std::fs::write(&supp, SUPPRESSIONS).unwrap();
    (program, supp)
}

fn amount(json: &serde_json::Value) -> (u64, u64) {
    (
        json["bytes"].as_u64().unwrap(),
        json["blocks"].as_u64().unwrap(),
    )
}

#[test]
fn a_suppression_file_hides_exactly_its_blocks_and_counts_their_uses() {
    let dir = tempfile::tempdir().unwrap();
    let (program, supp) = build(dir.path());
    let (output, json) = Invocation::new(&program)
        .extra([
            "--suppressions".as_ref(),
            supp.as_os_str(),
            "--error-exitcode".as_ref(),
            "9".as_ref(),
        ])
        .run_json(dir.path());
    let summary = &json["summary"];
    assert_eq!(
        amount(&summary["suppressed"]),
        (2 * 24 + 3 * 40, 5),
        "{json:#}"
    );
    assert_eq!(amount(&summary["definitely_lost"]), (100, 1), "{json:#}");
    assert_eq!(amount(&summary["still_reachable"]), (0, 0), "{json:#}");
    let used = json["suppressions_used"].as_array().unwrap();
    let uses: Vec<(&str, u64, (u64, u64))> = used
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["records"].as_u64().unwrap(),
                amount(u),
            )
        })
        .collect();
    // Both calls of register_token come from one line each of main: two loss records.
    assert_eq!(
        uses,
        [
            ("token-registry-is-never-freed", 2, (48, 2)),
            ("cache-kept-for-the-process-lifetime", 1, (120, 3)),
        ]
    );
    assert_eq!(used[0]["line"], 6, "the line of the suppression's name");
    // parse_header's block is left, so the gate fails on it alone.
    assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
    assert!(
        output
            .stderr_text()
            .contains("1 block (100 bytes) definitely or possibly lost in 1 process"),
        "{}",
        output.stderr_text()
    );

    // A LeakSanitizer line in a second file takes the last one: the gate passes.
    let lsan = dir.path().join("lsan.supp");
    std::fs::write(&lsan, "# LeakSanitizer style\nleak:parse_header\n").unwrap();
    let (output, json) = Invocation::new(&program)
        .extra([
            "--suppressions".as_ref(),
            supp.as_os_str(),
            "--suppressions".as_ref(),
            lsan.as_os_str(),
            "--error-exitcode".as_ref(),
            "9".as_ref(),
        ])
        .run_json(dir.path());
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(amount(&json["summary"]["suppressed"]), (268, 6));
    assert_eq!(amount(&json["summary"]["definitely_lost"]), (0, 0));
}

#[test]
fn the_text_report_lists_uses_with_verbose_and_generates_suppressions_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let (program, supp) = build(dir.path());
    let report = dir.path().join("report.txt");
    let output = crate::harness::leakscope::invoke(
        dir.path(),
        &crate::harness::os_args![
            "run",
            "--format",
            "text",
            "--output",
            &report,
            "-v",
            "--suppressions",
            &supp,
            "--gen-suppressions",
            "--",
            &program
        ],
    );
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains("used_suppression:      2 token-registry-is-never-freed ")
            && text.contains("example.supp:6 suppressed: 48 bytes in 2 blocks"),
        "{text}"
    );
    assert!(
        text.contains("100 bytes in 1 block are definitely lost in loss record 1 of 1"),
        "{text}"
    );
    assert!(
        text.contains("        suppressed: 168 bytes in 5 blocks"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(
            "leakscope: 1 leak: 100 bytes definitely lost in 1 block; 168 bytes in 5 blocks suppressed"
        ),
        "{text}"
    );
    // The generated suppression, pasted into a file, suppresses that record.
    let start = text
        .find("{\n   <insert_a_suppression_name_here>")
        .expect("a suppression");
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    let generated = &text[start..end];
    assert!(
        generated.contains("fun:parse_header\n   fun:main\n"),
        "{generated}"
    );
    let generated_file = dir.path().join("generated.supp");
    std::fs::write(&generated_file, generated).unwrap();
    let (_, json) = Invocation::new(&program)
        .extra([
            "--suppressions".as_ref(),
            supp.as_os_str(),
            "--suppressions".as_ref(),
            generated_file.as_os_str(),
        ])
        .run_json(dir.path());
    assert_eq!(
        amount(&json["summary"]["definitely_lost"]),
        (0, 0),
        "{json:#}"
    );

    // memcheck reads the generated suppression too.
    if valgrind::available_or_skip("memcheck on a generated suppression") {
        let suppressed = memcheck_suppressed(&program, &[&supp, &generated_file]);
        assert_eq!(
            suppressed.0,
            Amount {
                bytes: 268,
                blocks: 6
            }
        );
    }
}

/// memcheck with the suppression files: what it suppressed, and its definitely lost.
fn memcheck_suppressed(program: &Path, files: &[&Path]) -> (Amount, Amount) {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("vg.log");
    let options: Vec<String> = files
        .iter()
        .map(|f| format!("--suppressions={}", f.display()))
        .collect();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut command = memcheck::command(&options, &log.display().to_string(), program, &[]);
    process::run(&mut command, None, process::TIMEOUT).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let report = valgrind::parse_log(&text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .unwrap_or_else(|| panic!("no leak summary:\n{text}"));
    (
        report
            .suppressed
            .expect("memcheck's summary has a suppressed line"),
        report.totals.get(Kind::DefinitelyLost),
    )
}

/// The same file given to memcheck suppresses the same blocks.
#[test]
fn memcheck_given_the_same_file_suppresses_the_same_blocks() {
    if !valgrind::available_or_skip("the suppression cross-check") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (program, supp) = build(dir.path());
    let (suppressed, definitely_lost) = memcheck_suppressed(&program, &[&supp]);
    assert_eq!(
        suppressed,
        Amount {
            bytes: 168,
            blocks: 5
        }
    );
    assert_eq!(
        definitely_lost,
        Amount {
            bytes: 100,
            blocks: 1
        }
    );
    let (_, json) = Invocation::new(&program)
        .extra(["--suppressions".as_ref(), supp.as_os_str()])
        .run_json(dir.path());
    assert_eq!(
        amount(&json["summary"]["suppressed"]),
        (suppressed.bytes, suppressed.blocks)
    );
    assert_eq!(
        amount(&json["summary"]["definitely_lost"]),
        (definitely_lost.bytes, definitely_lost.blocks)
    );
}

#[test]
fn a_malformed_file_is_an_error_with_its_line_before_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (program, _) = build(dir.path());
    let bad = dir.path().join("bad.supp");
    std::fs::write(
        &bad,
        "{\n   name\n   Memcheck:Leak\n   fun:malloc\n   fn:oops\n}\n",
    )
    .unwrap();
    let output = Invocation::new(&program)
        .extra(["--suppressions".as_ref(), bad.as_os_str()])
        .output();
    assert_eq!(output.exit(), Exit::Code(1), "{}", output.stderr_text());
    let stderr = output.stderr_text();
    assert!(
        stderr.contains(&format!(
            "bad suppression file: {}:5: expected a location line",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("watching PID"),
        "the program must not start: {stderr}"
    );
}

#[test]
fn quiet_prints_only_the_summary_line() {
    let dir = tempfile::tempdir().unwrap();
    let (program, supp) = build(dir.path());
    let output = crate::harness::leakscope::invoke(
        dir.path(),
        &crate::harness::os_args!["run", "--quiet", "--suppressions", &supp, "--", &program],
    );
    assert_eq!(output.exit(), Exit::Code(0));
    assert_eq!(
        output.stderr_text(),
        "leakscope: 1 leak: 100 bytes definitely lost in 1 block; 168 bytes in 5 blocks suppressed\n"
    );
}

/// `--fail-on growing` fails the gate on a growing site, and names it; without it the same
/// run passes (the memo cache is still reachable at exit: no leak).
#[test]
fn fail_on_growing_fails_the_gate_and_names_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/growth/memo_cache.c");
    let binary = dir.path().join("memo_cache");
    compile_file(&source, &binary, &["-O1"], &["-lm"]).unwrap();
    let output = Invocation::new(&binary)
        .extra(["--error-exitcode", "9", "--fail-on", "growing"])
        .output();
    assert_eq!(output.exit(), Exit::Code(9), "{}", output.stderr_text());
    let stderr = output.stderr_text();
    assert!(
        stderr.contains("(--fail-on growing): memoize")
            || stderr.contains("(--fail-on growing): cache_grow"),
        "{stderr}"
    );
    let output = Invocation::new(&binary)
        .extra(["--error-exitcode", "9"])
        .output();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
}

//! Programs the program starts: exec, posix_spawn, system, popen, vfork, fork, a change of
//! user. Without `--follow-children` each is named in the report as untracked; with it, each
//! gets its own report with exact figures.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::build::compile_text;
use crate::harness::expect::Exit;
use crate::harness::leakscope::{command, Invocation};
use crate::harness::os_args;
use crate::harness::process::{self, Output};
use crate::harness::report::{all_notes, documents, read_json};

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
    compile_text(dir, &format!("{name}.c"), source, &["-O1"], &[])
}

/// `leakscope run OPTIONS --keep DIR/run.profile -- PROGRAM...` in `dir`, and its JSON report.
fn run<S: AsRef<OsStr>>(dir: &Path, options: &[&str], program: &[S]) -> (Output, Value) {
    let profile = dir.join("run.profile");
    Invocation::new(Path::new(&program[0]))
        .args(program[1..].iter().map(AsRef::as_ref))
        .extra(options.iter().copied())
        .extra([OsStr::new("--keep"), profile.as_os_str()])
        .run_json(dir)
}

#[test]
fn without_follow_children_every_started_program_is_named_as_untracked() {
    let dir = tempfile::tempdir().unwrap();
    let leaker = compile(dir.path(), "leaker", LEAKER);
    let starter = compile(dir.path(), "starter", STARTER);
    let (output, report) = run(
        dir.path(),
        &["--error-exitcode", "9"],
        &os_args![starter, leaker],
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
        &os_args![starter, leaker],
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
    let (output, report) = run(dir.path(), &[], &os_args!["sh", "-c", "exec true"]);
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
    let report = read_json(&report_path);
    let child = &report["children"][0];
    assert_eq!(child["started_by"], "fork", "{report:#}");
    assert_eq!(child["leak_check"]["status"], "complete", "{child:#}");
    assert_eq!(
        child["summary"]["definitely_lost"]["bytes"], 333,
        "{child:#}"
    );
    assert_eq!(child["summary"]["definitely_lost"]["blocks"], 2);
}

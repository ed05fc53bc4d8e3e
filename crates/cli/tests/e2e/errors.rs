//! Tests (d): targets leakscope must refuse, each with a non-zero exit and one line on stderr.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::build::{compile_static, corpus, programs_dir};
use crate::harness::expect::{Exit, Level};
use crate::harness::leakscope::{assert_program_did_not_run, Invocation};
use crate::harness::process::Output;

fn echo_io() -> PathBuf {
    corpus().program("echo_io", Level::O0)
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
    assert_program_did_not_run(output);
}

#[test]
fn program_not_found_by_path() {
    let missing = Path::new("/nonexistent/leakscope-e2e/no-such-program");
    assert_refused(&Invocation::new(missing).output(), "not found");
}

#[test]
fn program_not_found_on_path() {
    let missing = Path::new("leakscope-e2e-no-such-program");
    assert_refused(&Invocation::new(missing).output(), "not found");
}

#[test]
fn program_not_executable() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("echo_io");
    fs::copy(echo_io(), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
    assert_refused(&Invocation::new(&copy).output(), "not executable");
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
    assert_refused(&Invocation::new(&program).output(), "statically linked");
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
    assert_refused(&Invocation::new(&copy).output(), "setuid");
}

#[test]
fn agent_missing() {
    let program = echo_io();
    let invocation =
        Invocation::new(&program).env("LEAKSCOPE_AGENT", "/nonexistent/libleakscope_agent.so");
    assert_refused(&invocation.output(), "agent");
}

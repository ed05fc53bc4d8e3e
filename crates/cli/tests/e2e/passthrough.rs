//! Tests (e): leakscope is invisible to the program it runs.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::harness::build::corpus;
use crate::harness::expect::{Exit, Level};
use crate::harness::leakscope::Invocation;

fn binary(name: &str) -> PathBuf {
    corpus().program(name, Level::O0)
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
    let output = Invocation::new(&program)
        .args(args)
        .stdin(b"hello\nworld\n".to_vec())
        .output();
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
    let output = Invocation::new(&program).stdin(data.clone()).output();
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
    let output = Invocation::new(&binary("exit_code")).output();
    assert_eq!(
        output.exit(),
        Exit::Code(7),
        "stderr:\n{}",
        output.stderr_text()
    );
}

#[test]
fn error_exitcode_replaces_the_code_only_when_leaking() {
    let leaking = Invocation::new(&binary("lost_malloc"))
        .extra(["--error-exitcode", "9"])
        .output();
    assert_eq!(
        leaking.exit(),
        Exit::Code(9),
        "a leaking program; stderr:\n{}",
        leaking.stderr_text()
    );
    let clean = Invocation::new(&binary("exit_code"))
        .extra(["--error-exitcode", "9"])
        .output();
    assert_eq!(
        clean.exit(),
        Exit::Code(7),
        "a clean program keeps its code; stderr:\n{}",
        clean.stderr_text()
    );
    let clean = Invocation::new(&binary("no_leaks"))
        .extra(["--error-exitcode", "9"])
        .output();
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
    let output = Invocation::new(&binary("print_env"))
        .env("E2E_ENV_VALUE", value)
        .output();
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
    let output = Invocation::new(&binary("exec_child_env")).output();
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
    let output = Invocation::new(&program).args([arg]).output();
    assert_eq!(
        output.stdout,
        b"arg[a\xff\xfez]\n",
        "stderr:\n{}",
        output.stderr_text()
    );
}

//! The memcheck command line of every comparison with memcheck, the oracle: the fixture corpus's
//! (`harness/valgrind.rs`) and the real-program suite's (`tests/real/mod.rs`, which includes this
//! file alone). Each adds the options that differ (how children and suppressions are handled).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// The options of a full leak check, memcheck's every kind shown, that both use.
pub const LEAK_CHECK: &[&str] = &[
    "--tool=memcheck",
    "--leak-check=full",
    "--show-leak-kinds=all",
    "--error-exitcode=0",
    "--num-callers=50",
    "--trace-children=no",
];

/// `valgrind LEAK_CHECK options --log-file=LOG program args`.
pub fn command(options: &[&str], log: &str, program: &Path, args: &[OsString]) -> Command {
    let mut command = Command::new("valgrind");
    command
        .args(LEAK_CHECK)
        .args(options)
        .arg(format!("--log-file={log}"))
        .arg(program)
        .args(args);
    command
}

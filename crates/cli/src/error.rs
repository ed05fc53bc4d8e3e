//! leakscope's own failures and the exit codes they map to (documented in the README).

use std::fmt;

/// Exit codes for leakscope's own failures. (After a run, leakscope exits with the
/// program's own status, or `--error-exitcode` when leaks are found.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Bad input: a profile that cannot be read, an output file that cannot be written.
    Failed = 1,
    /// Options that each parse but cannot be used together (clap's own errors exit with 2
    /// too): a bad command line.
    BadUsage = 2,
    /// leakscope cannot track this program (static, setuid, other architecture) or cannot
    /// find its agent.
    Unsupported = 125,
    /// The program exists but cannot be executed.
    NotExecutable = 126,
    /// The program was not found.
    NotFound = 127,
}

/// A failure with the one line that explains it.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: ExitCode,
    /// What happened and what to do.
    pub message: String,
}

impl Failure {
    /// A failure.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        if let Some(failure) = error.downcast_ref::<Failure>() {
            return Failure::new(failure.code, failure.message.clone());
        }
        Failure::new(ExitCode::Failed, format!("{error:#}"))
    }
}

//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Find every block a program lost, classified as memcheck does, with symbolized stacks.
#[derive(Debug, Parser)]
#[command(name = "leakscope", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program with the agent preloaded, then report every block it did not free.
    Run(RunArgs),
    /// Print the report of a kept profile again.
    Report(ReportArgs),
    /// Print what a profile file holds, chunk by chunk (for debugging leakscope itself).
    Dump {
        /// The profile file.
        file: PathBuf,
    },
}

/// Report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Grouped, sorted, memcheck-like text.
    Text,
    /// The JSON document described in docs/json-report.md.
    Json,
}

/// When to colour text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When writing to a terminal and NO_COLOR is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Where and how the report is written.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE (default: standard error for `run`, so it does not mix with
    /// the program's output; standard output for `report`).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Colour the text report.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// `leakscope run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Keep the profile at FILE (default: a new file under $TMPDIR, whose path the run prints).
    #[arg(long, value_name = "FILE")]
    pub keep: Option<PathBuf>,
    /// Most frames recorded per allocation stack.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_frames: u32,
    /// Exit with N if definitely or indirectly lost blocks are found (for CI).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=255))]
    pub error_exitcode: Option<i32>,
    /// The program and its arguments (put `--` before them if they start with `-`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM [ARGS]"
    )]
    pub command: Vec<OsString>,
}

/// `leakscope report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// The profile file (forked children's profiles beside it are included).
    pub file: PathBuf,
}

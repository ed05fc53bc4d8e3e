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
    /// Which sites' live memory grew most: between two profiles of the same program (at their
    /// ends), or between two moments of one profile (--from, --to).
    Diff(DiffArgs),
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
    /// One self-contained HTML page (charts, tables, flamegraphs) that works offline; write
    /// it with --output.
    Html,
}

/// Format of `leakscope diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// A table of the sites that grew most.
    Text,
    /// The JSON document described in docs/json-report.md (`leakscope diff`).
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
    /// the program's output; standard output for `report`). Checked before anything runs.
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
    /// Profiles are created with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub keep: Option<PathBuf>,
    /// Most frames recorded per allocation stack.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_frames: u32,
    /// Sampling mode, for production: record the stack of only one allocation in every BYTES
    /// bytes on average (Poisson sampling; a suffix K, M or G multiplies by 1024, 1024², 1024³;
    /// 512K is a good default). Every block is still tracked, so the totals stay exact; the
    /// bytes and blocks of each loss record become estimates, marked as such.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub sample_rate: Option<u64>,
    /// Stop the program after this long (SIGTERM, then SIGKILL if it has not ended 5 s later)
    /// and report, as for a long-running server: 90s, 5m, 1h, 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// The first interval between snapshots of live memory per site (it doubles every 100
    /// snapshots): 100ms, 1s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "100ms")]
    pub interval: std::time::Duration,
    /// Also run the leak check's reachability scan while the program runs, this often (30s,
    /// 5m): lost bytes become a series over time, and each scan's pause is measured and
    /// reported. A scan can also be asked for at any moment by sending SIGUSR1 to leakscope.
    /// Threads stop for the scan with a signal, so a program's sleeping calls (nanosleep,
    /// poll, epoll_wait) may return early with EINTR, as with any signal.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub scan_every: Option<std::time::Duration>,
    /// Track the programs the program executes too (exec, posix_spawn, system, popen, and
    /// fork followed by exec), each with its own report under `children`. The agent's
    /// variables then stay in the program's environment (LD_PRELOAD and LEAKSCOPE_*), so that
    /// every program executed inherits them. Without this, they run untracked and the report
    /// lists them.
    #[arg(long)]
    pub follow_children: bool,
    /// Keep an interpreter's own native frames in stacks. By default, in a Python program,
    /// each frame of CPython's evaluation loop is replaced by the Python frames it runs
    /// (function, file, line) and the interpreter's other native frames are left out; frames
    /// of C extensions and other libraries always stay.
    #[arg(long)]
    pub native: bool,
    /// In a Java program, the first interval between the JVM's class histograms (each one is
    /// a full garbage collection, whose pause is measured and reported; the interval doubles
    /// every 100 histograms). The first one is taken as soon as the JVM can be attached to.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub java_interval: std::time::Duration,
    /// Do not attach to a JVM in the program (no class histograms, no flight recording):
    /// only the native report.
    #[arg(long)]
    pub no_java: bool,
    /// Exit with N if definitely or indirectly lost blocks are found, in the program or any
    /// process it forked, or if the leak check of any of them did not run (for CI: a gate
    /// never passes on a check that did not happen).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=255))]
    pub error_exitcode: Option<i32>,
    /// The program and its arguments. Everything after the program's name is the program's
    /// (`leakscope run ./prog --duration 5` passes --duration to prog); an option before it
    /// must be one of leakscope's. Put `--` before a program whose name starts with `-`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "PROGRAM [ARGS]"
    )]
    pub command: Vec<OsString>,
}

/// `leakscope diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier profile (or the only one, with --from and --to).
    pub old: PathBuf,
    /// The later profile. Sites are matched by their return addresses relative to their
    /// modules, so two runs of the same binaries compare whatever their load addresses.
    pub new: Option<PathBuf>,
    /// With one profile: compare from this time since the start (default: the first snapshot).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub from: Option<std::time::Duration>,
    /// With one profile: compare up to this time since the start (default: the last snapshot).
    /// Both must lie within the profile's time span, --from before --to.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub to: Option<std::time::Duration>,
    /// How many sites to list.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Report format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Write the report to FILE (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `leakscope report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// The profile file (forked children's profiles beside it are included).
    pub file: PathBuf,
}

/// A duration: a number followed by ms, s, m or h (a bare number is seconds).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (such as 90s, 5m, 1h or 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': the unit must be ms, s, m or h")),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("'{text}' must be longer than zero"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// A byte count: digits, optionally followed by K, M or G (powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, multiplier) = match text
        .trim()
        .to_ascii_uppercase()
        .strip_suffix(['K', 'M', 'G'])
    {
        Some(_) => {
            let unit = text.trim().chars().last().map(|c| c.to_ascii_uppercase());
            let multiplier = match unit {
                Some('K') => 1 << 10,
                Some('M') => 1 << 20,
                _ => 1 << 30,
            };
            (text.trim()[..text.trim().len() - 1].to_string(), multiplier)
        }
        None => (text.trim().to_string(), 1u64),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a byte count (such as 524288 or 512K)"))?;
    match value.checked_mul(multiplier) {
        Some(0) => Err("the sample rate must be at least 1 byte".to_string()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("'{text}' is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, parse_duration};
    use std::time::Duration;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("524288"), Ok(524_288));
        assert_eq!(parse_bytes("512K"), Ok(524_288));
        assert_eq!(parse_bytes("512k"), Ok(524_288));
        assert_eq!(parse_bytes("1M"), Ok(1 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("").is_err());
    }
}

//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use leakscope_analysis::suppressions::LeakKinds;

/// Find every block a program lost, classified as memcheck does, with symbolized stacks.
#[derive(Debug, Parser)]
#[command(name = "leakscope", version, about, max_term_width = 100, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program with the agent preloaded, then report every block it did not free.
    #[command(after_help = RUN_EXAMPLES)]
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
    /// Folded stacks (`pid 42: prog;main;leak BYTES`), the input of flamegraph.pl, inferno and
    /// speedscope (docs/formats.md).
    Folded,
    /// An SVG flamegraph (docs/formats.md).
    Flamegraph,
    /// A gzipped pprof profile, for `go tool pprof`, Pyroscope, Parca (docs/formats.md).
    /// Binary: needs --output, or a standard output or error that is not a terminal.
    Pprof,
}

/// Format of `leakscope diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// A table of the sites that grew most.
    Text,
    /// The JSON document described in docs/json-report.md (`leakscope diff`).
    Json,
}

/// What the stack formats weigh each stack by (memcheck's kind names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Weight {
    /// Definitely and indirectly lost bytes (pprof: lost_space).
    Lost,
    /// Definitely lost bytes.
    Definite,
    /// Indirectly lost bytes.
    Indirect,
    /// Possibly lost bytes (pprof: possibly_lost_space).
    Possible,
    /// Still reachable bytes.
    Reachable,
    /// Every byte still allocated at exit, of every kind (pprof: inuse_space).
    Live,
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
    /// What --format folded and flamegraph weigh each stack by, and pprof's default sample
    /// type (default: lost, definitely and indirectly lost bytes).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub weight: Option<Weight>,
}

/// `leakscope --help`'s examples.
const MAIN_EXAMPLES: &str = "\
Examples:
  leakscope run -- ./prog args                 report every block prog did not free
  leakscope run --error-exitcode 9 -- ./tests  for CI: exit 9 if anything was lost
  leakscope run --keep app.profile -- ./app    keep the profile, then:
  leakscope report app.profile --format json   the same report again, as JSON
  leakscope diff before.profile after.profile  which sites grew between two runs

`leakscope run --help` lists the options of a run; docs/suppressions.md says how to hide
what is known and how to gate CI.";

/// `leakscope run --help`'s examples.
const RUN_EXAMPLES: &str = "\
Examples:
  leakscope run -- ./prog args
  leakscope run --suppressions known.supp --error-exitcode 9 -- ./unit-tests
  leakscope run --show-leak-kinds all --gen-suppressions -- ./prog
  leakscope run --duration 60s --fail-on growing --error-exitcode 9 -- ./server
  leakscope run --quiet --error-exitcode 9 -- ./prog   only the summary line
  leakscope run --format json --output report.json -- ./prog";

/// What the report leaves out and what fails the gate (memcheck's options and names).
#[derive(Debug, Args)]
pub struct LeakArgs {
    /// Read suppressions from FILE (repeatable): memcheck's syntax ({ name Memcheck:Leak
    /// match-leak-kinds: ... fun:... obj:... ... }) and LeakSanitizer's leak:PATTERN lines.
    /// Suppressed blocks count as `suppressed`, not as their kind. See docs/suppressions.md.
    #[arg(long = "suppressions", value_name = "FILE")]
    pub suppressions: Vec<PathBuf>,
    /// Do not apply the default suppressions (memcheck's own: glibc's dynamic thread
    /// vectors).
    #[arg(long)]
    pub no_default_suppressions: bool,
    /// Print after each loss record a memcheck suppression that matches it, ready to paste
    /// into a suppression file (text report only).
    #[arg(long)]
    pub gen_suppressions: bool,
    /// List each suppression used, with its loss records, bytes and blocks (memcheck's
    /// used_suppression: lines).
    #[arg(short, long)]
    pub verbose: bool,
    /// The kinds of loss record shown: definite,indirect,possible,reachable (any of them),
    /// all or none. Default: memcheck's definite,possible in the text report; all in JSON.
    #[arg(long, value_name = "KINDS", value_parser = LeakKinds::parse)]
    pub show_leak_kinds: Option<LeakKinds>,
    /// The kinds that fail --error-exitcode and count as leaks in the summary line (memcheck's
    /// names and default).
    #[arg(long, value_name = "KINDS", value_parser = LeakKinds::parse, default_value = "definite,possible")]
    pub errors_for_leak_kinds: LeakKinds,
    /// Do not show loss records of fewer bytes (their blocks still count; K, M, G suffixes).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "0")]
    pub min_bytes: u64,
    /// Show at most N loss records per process, the largest (the others still count).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print only the one-line summary (and errors) instead of the text report.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What else fails `--error-exitcode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A site whose live memory kept growing (a growth verdict), in any process.
    Growing,
}

/// `leakscope run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub leaks: LeakArgs,
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
    /// In a Node.js program, take V8 heap snapshots (at the 10th, 20th, 40th... sample of
    /// each isolate; the last two are compared: the constructors that grew between them,
    /// with their retainer paths) only while the isolate's used heap is at most BYTES (K, M,
    /// G suffixes; 0: never). Each snapshot stops the isolate for a time proportional to its
    /// heap: about 200 ms per MiB under leakscope on a slow machine. Above the limit, a note
    /// says that the snapshot was not taken.
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "32M")]
    pub js_heap_snapshot_limit: u64,
    /// In a Java program, the first interval between the JVM's class histograms (each one is
    /// a full garbage collection, whose pause is measured and reported; the interval doubles
    /// every 100 histograms). The first one is taken as soon as the JVM can be attached to.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub java_interval: std::time::Duration,
    /// Do not attach to a JVM in the program (no class histograms, no flight recording):
    /// only the native report.
    #[arg(long)]
    pub no_java: bool,
    /// Exit with N if blocks of the --errors-for-leak-kinds (definitely or possibly lost by
    /// default) are found, in the program or any process of its tree (forked, or executed
    /// with --follow-children), or if the leak check of any of them did not run (for CI: a
    /// gate never passes on a check that did not happen).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=255))]
    pub error_exitcode: Option<i32>,
    /// Also fail --error-exitcode on this: `growing`, a site whose live memory kept growing
    /// (a line names the site).
    #[arg(long, value_name = "WHAT", value_enum)]
    pub fail_on: Option<FailOn>,
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
    /// modules, so two runs of the same binaries compare whatever their load addresses; a
    /// Node.js program's JavaScript sites by their JavaScript stacks, per node thread id.
    pub new: Option<PathBuf>,
    /// With one profile: compare from this time since the start (default: the first snapshot).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub from: Option<std::time::Duration>,
    /// With one profile: compare up to this time since the start (default: the last snapshot).
    /// Both must lie within the profile's time span, --from before --to.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub to: Option<std::time::Duration>,
    /// How many sites to list (and JavaScript sites per Node.js isolate).
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
    #[command(flatten)]
    pub leaks: LeakArgs,
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

/// A size for `--min-bytes`: as [`parse_bytes`], and 0 is allowed (nothing left out).
fn parse_size(text: &str) -> Result<u64, String> {
    if text.trim() == "0" {
        return Ok(0);
    }
    parse_bytes(text).map_err(|e| e.replace("sample rate", "size"))
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, parse_duration, parse_size};
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
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1K"), Ok(1024));
    }
}

//! The subcommands.

pub mod diff;
pub mod dump;
pub mod report;
pub mod run;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use leakscope_analysis::suppressions::{self, LeakKinds, Suppressions};
use leakscope_analysis::{GateRule, LeakOptions};
use leakscope_report::Report;

use crate::args::{Color, FailOn, Format, LeakArgs, OutputArgs, Weight};
use crate::error::{ExitCode, Failure};

/// Where a report goes when `--output` is not given.
#[derive(Clone, Copy)]
pub enum DefaultSink {
    Stdout,
    Stderr,
}

/// A profile named on the command line must exist (a clearer message than the reader's).
pub fn require_profile(path: &Path) -> Result<(), Failure> {
    if path.exists() {
        return Ok(());
    }
    Err(Failure::new(
        crate::error::ExitCode::Failed,
        format!("cannot read the profile '{}': no such file", path.display()),
    ))
}

/// What the analysis must compute for `format`.
pub fn analysis_options(format: Format) -> leakscope_analysis::Options {
    leakscope_analysis::Options {
        detail: format == Format::Html,
    }
}

/// Refuse, before anything runs, what `emit` could not do as asked: an HTML page to a terminal
/// (or to `run`'s standard error, where the program's own messages go), `--weight` with a
/// format that weighs nothing, a weight pprof has no sample type for, pprof's binary to a
/// terminal.
pub fn check_output_args(output: &OutputArgs, sink: DefaultSink) -> Result<(), Failure> {
    let refuse = |message: String| Err(Failure::new(ExitCode::Usage, message));
    if output.format == Format::Html && output.output.is_none() {
        let (refused, name) = match sink {
            DefaultSink::Stdout => (std::io::stdout().is_terminal(), "standard output"),
            DefaultSink::Stderr => (true, "standard error"),
        };
        if refused {
            return refuse(format!(
                "--format html writes a page, not text for {name}: give --output FILE.html"
            ));
        }
    }
    if let (Format::Text | Format::Json | Format::Html, Some(_)) = (output.format, output.weight) {
        return refuse(
            "--weight chooses what --format folded, flamegraph and pprof weigh; the text, JSON and HTML reports show every kind"
                .to_owned(),
        );
    }
    if output.format == Format::Pprof {
        let weight = weight_of(output);
        if weight.pprof_sample_type().is_none() {
            return refuse(format!(
                "--format pprof has no sample type of {} alone (its values are inuse, lost and possibly lost); every sample has a `kind` label instead (go tool pprof -tagfocus kind=definitely_lost). Use --weight lost, possible or live",
                weight.words()
            ));
        }
        if to_terminal(output, sink) {
            return refuse(format!(
                "--format pprof writes a gzipped binary profile, not for a terminal: give --output FILE, or redirect standard {}",
                match sink {
                    DefaultSink::Stdout => "output",
                    DefaultSink::Stderr => "error",
                }
            ));
        }
    }
    Ok(())
}

/// The suppressions and display options of the command line, every suppression file read
/// (before the program starts, so that a bad file fails at once): a file that cannot be read
/// or parsed is an error that names it, and the line.
pub fn leak_options(
    args: &LeakArgs,
    output: &OutputArgs,
    fail_on: Option<FailOn>,
) -> Result<LeakOptions, Failure> {
    let usage = |message: String| Failure::new(crate::error::ExitCode::Usage, message);
    if args.gen_suppressions && output.format != Format::Text {
        return Err(usage(
            "--gen-suppressions writes its suppressions into the text report: use it with --format text".to_owned(),
        ));
    }
    if args.quiet && args.verbose {
        return Err(usage(
            "--quiet and --verbose contradict each other".to_owned(),
        ));
    }
    let mut suppressions = if args.no_default_suppressions {
        Suppressions::default()
    } else {
        Suppressions::defaults()
    };
    for path in &args.suppressions {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                crate::error::ExitCode::Failed,
                format!("cannot read the suppression file '{}': {e}", path.display()),
            )
        })?;
        let read = suppressions::parse(&text, &path.display().to_string()).map_err(|e| {
            Failure::new(
                crate::error::ExitCode::Failed,
                format!("bad suppression file: {e}"),
            )
        })?;
        suppressions.extend(read);
    }
    // memcheck's default for a person reading the text; JSON is for programs and keeps every
    // record unless asked otherwise.
    let show_kinds = args.show_leak_kinds.unwrap_or(match output.format {
        Format::Text => LeakKinds::DEFINITE_POSSIBLE,
        _ => LeakKinds::ALL,
    });
    Ok(LeakOptions {
        suppressions,
        show_kinds,
        gate: GateRule {
            error_kinds: args.errors_for_leak_kinds,
            fail_on_growing: fail_on == Some(FailOn::Growing),
        },
        min_bytes: args.min_bytes,
        limit: args.limit,
    })
}

fn weight_of(output: &OutputArgs) -> leakscope_report::Weight {
    use leakscope_report::Weight as W;
    match output.weight.unwrap_or(Weight::Lost) {
        Weight::Lost => W::Lost,
        Weight::Definite => W::Definite,
        Weight::Indirect => W::Indirect,
        Weight::Possible => W::Possible,
        Weight::Reachable => W::Reachable,
        Weight::Live => W::Live,
    }
}

/// The report goes to a terminal: no `--output`, and the default sink is one.
fn to_terminal(output: &OutputArgs, sink: DefaultSink) -> bool {
    output.output.is_none()
        && match sink {
            DefaultSink::Stdout => std::io::stdout().is_terminal(),
            DefaultSink::Stderr => std::io::stderr().is_terminal(),
        }
}

/// Render `report` as asked and write it out. The stack formats cannot say what the text
/// report says in place (a leak check that did not run, sampling's estimates, the notes): each
/// such caveat is a `leakscope:` line on standard error.
pub fn emit(
    report: &Report,
    output: &OutputArgs,
    leaks: &LeakArgs,
    sink: DefaultSink,
) -> Result<(), Failure> {
    let color = match output.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            to_terminal(output, sink) && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let weight = weight_of(output);
    let bytes = match output.format {
        Format::Text => leakscope_report::render_text(
            report,
            leakscope_report::TextOptions {
                color,
                verbose: leaks.verbose,
                gen_suppressions: leaks.gen_suppressions,
                quiet: leaks.quiet,
            },
        )
        .into_bytes(),
        Format::Json => leakscope_report::render_json(report).into_bytes(),
        Format::Html => leakscope_report::render_html(report).into_bytes(),
        Format::Folded => leakscope_report::render_folded(report, weight).into_bytes(),
        Format::Flamegraph => leakscope_report::render_flamegraph(report, weight).into_bytes(),
        Format::Pprof => leakscope_report::render_pprof(report, weight).ok_or_else(|| {
            // check_output_args refused this weight before anything ran.
            Failure::new(
                ExitCode::Usage,
                format!("--format pprof has no sample type of {}", weight.words()),
            )
        })?,
    };
    write_out(&bytes, output.output.as_deref(), sink)?;
    if matches!(
        output.format,
        Format::Folded | Format::Flamegraph | Format::Pprof
    ) {
        for caveat in leakscope_report::stack_caveats(report, weight) {
            eprintln!("leakscope: {caveat}");
        }
    }
    Ok(())
}

pub(crate) fn write_out(
    bytes: &[u8],
    path: Option<&Path>,
    sink: DefaultSink,
) -> Result<(), Failure> {
    let result = match path {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("cannot write the report to '{}'", path.display())),
        None => {
            let written = match sink {
                DefaultSink::Stdout => std::io::stdout().lock().write_all(bytes),
                DefaultSink::Stderr => std::io::stderr().lock().write_all(bytes),
            };
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write the report"),
            }
        }
    };
    result.map_err(Failure::from)
}

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

use crate::args::{Color, FailOn, Format, LeakArgs, OutputArgs};
use crate::error::Failure;

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

/// Refuse, before anything runs, an output that cannot be read where it would go: an HTML
/// page written to a terminal.
pub fn check_sink(output: &OutputArgs, sink: DefaultSink) -> Result<(), Failure> {
    if output.format != Format::Html || output.output.is_some() {
        return Ok(());
    }
    let (terminal, name) = match sink {
        DefaultSink::Stdout => (std::io::stdout().is_terminal(), "standard output"),
        // `run` reports on standard error, where the program's own messages go too.
        DefaultSink::Stderr => (true, "standard error"),
    };
    if terminal {
        return Err(Failure::new(
            crate::error::ExitCode::Usage,
            format!("--format html writes a page, not text for {name}: give --output FILE.html"),
        ));
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

/// Render `report` as asked and write it out.
pub fn emit(
    report: &Report,
    output: &OutputArgs,
    leaks: &LeakArgs,
    sink: DefaultSink,
) -> Result<(), Failure> {
    let to_terminal = output.output.is_none()
        && match sink {
            DefaultSink::Stdout => std::io::stdout().is_terminal(),
            DefaultSink::Stderr => std::io::stderr().is_terminal(),
        };
    let color = match output.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let text = match output.format {
        Format::Text => leakscope_report::render_text(
            report,
            leakscope_report::TextOptions {
                color,
                verbose: leaks.verbose,
                gen_suppressions: leaks.gen_suppressions,
                quiet: leaks.quiet,
            },
        ),
        Format::Json => leakscope_report::render_json(report),
        Format::Html => leakscope_report::render_html(report),
    };
    write_out(&text, output.output.as_deref(), sink)
}

pub(crate) fn write_out(text: &str, path: Option<&Path>, sink: DefaultSink) -> Result<(), Failure> {
    let result = match path {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to '{}'", path.display())),
        None => {
            let written = match sink {
                DefaultSink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
                DefaultSink::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
            };
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write the report"),
            }
        }
    };
    result.map_err(Failure::from)
}

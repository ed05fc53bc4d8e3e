//! `leakscope report FILE`: print the report of a kept profile again.

use crate::args::ReportArgs;
use crate::cmd::{
    analysis_options, check_output_args, emit, leak_options, require_profile, DefaultSink,
};
use crate::error::Failure;
use crate::pipeline;
use crate::progress::Progress;

/// Run the subcommand; returns the exit code.
pub fn report(args: ReportArgs) -> Result<i32, Failure> {
    check_output_args(&args.output, DefaultSink::Stdout)?;
    require_profile(&args.file)?;
    if let Some(output) = &args.output.output {
        crate::preflight::check_output(output, "write the report to")?;
    }
    let options = leak_options(&args.leaks, &args.output, None)?;
    let progress = Progress::start_unless(args.leaks.quiet);
    progress.stage("reading the profile...");
    let tree = pipeline::read_tree(&args.file)?;
    let (report, _gate) = pipeline::build_report(
        &tree,
        analysis_options(args.output.format),
        &progress,
        &options,
    );
    progress.stage("writing the report...");
    emit(&report, &args.output, &args.leaks, DefaultSink::Stdout)?;
    progress.finish();
    Ok(0)
}

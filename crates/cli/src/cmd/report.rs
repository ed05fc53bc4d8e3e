//! `leakscope report FILE`: print the report of a kept profile again.

use crate::args::ReportArgs;
use crate::cmd::{emit, DefaultSink};
use crate::error::Failure;
use crate::pipeline;

/// Run the subcommand; returns the exit code.
pub fn report(args: ReportArgs) -> Result<i32, Failure> {
    if !args.file.exists() {
        return Err(Failure::new(
            crate::error::ExitCode::Failed,
            format!(
                "cannot read the profile '{}': no such file",
                args.file.display()
            ),
        ));
    }
    if let Some(output) = &args.output.output {
        crate::preflight::check_output(output, "write the report to")?;
    }
    let tree = pipeline::read_tree(&args.file)?;
    let report = pipeline::build_report(&tree);
    emit(&report, &args.output, DefaultSink::Stdout)?;
    Ok(0)
}

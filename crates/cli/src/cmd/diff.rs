//! `leakscope diff OLD NEW` and `leakscope diff FILE --from T --to T`: read, compare (the
//! analysis decides the moments, checks them and picks the sites, native and JavaScript),
//! symbolize the native stacks the diff shows (JavaScript frames come named), render.

use std::path::Path;

use anyhow::Context;
use leakscope_analysis::{compare, Comparison, DiffSide};
use leakscope_format::{read_profile, Profile};
use leakscope_report::{render_diff_json, render_diff_text, DiffReport};
use leakscope_symbolize::Symbolizer;

use crate::args::{DiffArgs, DiffFormat};
use crate::cmd::{require_profile, write_out, DefaultSink};
use crate::error::{ExitCode, Failure};

/// Run the subcommand; returns the exit code.
pub fn diff(args: DiffArgs) -> Result<i32, Failure> {
    if let Some(output) = &args.output {
        crate::preflight::check_output(output, "write the diff to")?;
    }
    let old = read(&args.old)?;
    let new = match &args.new {
        Some(_) if args.from.is_some() || args.to.is_some() => {
            return Err(Failure::new(
                ExitCode::Failed,
                "--from and --to compare two moments of one profile; give one profile with them",
            ));
        }
        Some(new_path) => Some(read(new_path)?),
        None => None,
    };
    let comparison = match &new {
        Some(new) => Comparison::Ends { old: &old, new },
        None => Comparison::Moments {
            profile: &old,
            from: args.from,
            to: args.to,
        },
    };
    let diff = compare(comparison, args.limit).map_err(|refusal| {
        Failure::new(
            ExitCode::Failed,
            refusal.sentence(&args.old.display().to_string()),
        )
    })?;
    let mut symbolizer = Symbolizer::new();
    let new_frames = new
        .as_ref()
        .map(|new| symbolizer.symbolize(new, &diff.stacks(DiffSide::New)))
        .unwrap_or_default();
    let old_frames = symbolizer.symbolize(&old, &diff.stacks(DiffSide::Old));
    let report = DiffReport {
        old_name: args.old.display().to_string(),
        new_name: args.new.as_ref().map(|path| path.display().to_string()),
        diff,
        old_frames,
        new_frames,
    };
    let text = match args.format {
        DiffFormat::Text => render_diff_text(&report),
        DiffFormat::Json => render_diff_json(&report),
    };
    write_out(text.as_bytes(), args.output.as_deref(), DefaultSink::Stdout)?;
    Ok(0)
}

fn read(path: &Path) -> Result<Profile, Failure> {
    require_profile(path)?;
    Ok(read_profile(path)
        // The reader's error names the file.
        .context("cannot read the profile")?)
}

//! `leakscope diff OLD NEW` and `leakscope diff FILE --from T --to T`.

use std::path::Path;

use anyhow::Context;
use leakscope_analysis::diff::{diff_profiles, diff_snapshots};
use leakscope_format::{read_profile, Profile};
use leakscope_report::{render_diff_json, render_diff_text, DiffReport};
use leakscope_symbolize::Symbolizer;

use crate::args::{DiffArgs, Format};
use crate::cmd::{write_out, DefaultSink};
use crate::error::{ExitCode, Failure};

/// Run the subcommand; returns the exit code.
pub fn diff(args: DiffArgs) -> Result<i32, Failure> {
    if let Some(output) = &args.output {
        crate::preflight::check_output(output, "write the diff to")?;
    }
    let old = read(&args.old)?;
    let (deltas, compared, new) = match &args.new {
        Some(new_path) => {
            if args.from.is_some() || args.to.is_some() {
                return Err(Failure::new(
                    ExitCode::Failed,
                    "--from and --to compare two moments of one profile; give one profile with them",
                ));
            }
            let new = read(new_path)?;
            let compared = format!(
                "{} at its end -> {} at its end (largest growth first)",
                args.old.display(),
                new_path.display()
            );
            (diff_profiles(&old, &new), compared, Some(new))
        }
        None => {
            let last = old.snapshots.last().map_or(0.0, |s| s.time_ns as f64 / 1e9);
            let first = old
                .snapshots
                .first()
                .map_or(0.0, |s| s.time_ns as f64 / 1e9);
            let from = args.from.map_or(first, |d| d.as_secs_f64());
            let to = args.to.map_or(last, |d| d.as_secs_f64());
            if old.snapshots.is_empty() {
                return Err(Failure::new(
                    ExitCode::Failed,
                    format!(
                        "'{}' has no snapshots to compare (give a second profile to compare their ends)",
                        args.old.display()
                    ),
                ));
            }
            check_moments(&args, &old, from, to)?;
            let compared = format!(
                "{} from {from:.1} s to {to:.1} s (largest growth first)",
                args.old.display()
            );
            (diff_snapshots(&old, from, to), compared, None)
        }
    };
    let shown: Vec<_> = deltas.into_iter().take(args.limit).collect();
    // Symbolize each site in the profile that has it (the later one where both do).
    let mut symbolizer = Symbolizer::new();
    let in_new: Vec<_> = shown.iter().filter_map(|d| d.new_stack).collect();
    let in_old: Vec<_> = shown
        .iter()
        .filter(|d| d.new_stack.is_none() || new.is_none())
        .filter_map(|d| d.old_stack)
        .collect();
    let new_frames = new
        .as_ref()
        .map(|profile| symbolizer.symbolize(profile, &in_new))
        .unwrap_or_default();
    let old_frames = symbolizer.symbolize(&old, &in_old);
    let sites = shown
        .into_iter()
        .map(|delta| {
            let frames = match (new.is_some(), delta.new_stack, delta.old_stack) {
                (true, Some(stack), _) => new_frames.get(&stack).cloned(),
                (_, _, Some(stack)) => old_frames.get(&stack).cloned(),
                _ => None,
            };
            (delta, frames.unwrap_or_default())
        })
        .collect();
    let report = DiffReport { compared, sites };
    let text = match args.format {
        Format::Text => render_diff_text(&report),
        Format::Json => render_diff_json(&report),
    };
    write_out(&text, args.output.as_deref(), DefaultSink::Stdout)?;
    Ok(0)
}

/// `--from` and `--to` must lie within the profile's time span (from its start to its last
/// snapshot or its end, whichever is later), `--from` before `--to`: a moment the profile
/// does not cover would compare what was never measured.
fn check_moments(args: &DiffArgs, profile: &Profile, from: f64, to: f64) -> Result<(), Failure> {
    let end_ns = profile
        .snapshots
        .iter()
        .map(|s| s.time_ns)
        .chain(profile.exit.map(|e| e.time_ns))
        .max()
        .unwrap_or(0);
    let end = end_ns as f64 / 1e9;
    let refuse = |message: String| Err(Failure::new(ExitCode::Failed, message));
    for (option, moment) in [("--from", args.from), ("--to", args.to)] {
        if let Some(moment) = moment.filter(|m| m.as_nanos() > u128::from(end_ns)) {
            return refuse(format!(
                "{option} {moment:?} is past the end of '{}': it spans 0 s to {end:.3} s",
                args.old.display()
            ));
        }
    }
    if from >= to {
        return refuse(format!(
            "--from ({from:.3} s) must be earlier than --to ({to:.3} s){}",
            if args.from.is_none() || args.to.is_none() {
                let at = |s: Option<&leakscope_format::Snapshot>| {
                    s.map_or(0.0, |s| s.time_ns as f64 / 1e9)
                };
                format!(
                    " (by default --from is the first snapshot, at {:.3} s, and --to the last, at {:.3} s)",
                    at(profile.snapshots.first()),
                    at(profile.snapshots.last())
                )
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Profile, Failure> {
    if !path.exists() {
        return Err(Failure::new(
            ExitCode::Failed,
            format!("cannot read the profile '{}': no such file", path.display()),
        ));
    }
    Ok(read_profile(path)
        .with_context(|| format!("cannot read the profile '{}'", path.display()))?)
}

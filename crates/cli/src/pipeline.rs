//! The data flow after the run, in one place:
//! profile file(s) → `leakscope_format::read_profile` → `leakscope_analysis::analyze` →
//! `leakscope_symbolize` (only the stacks the findings name) → `leakscope_report::Report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use leakscope_format::{ExitHow, Profile, StackId};
use leakscope_report::{ExitStatus, Report};
use leakscope_symbolize::Symbolizer;

use crate::progress::Progress;

/// A profile and the profiles of the processes it forked, read from disk.
pub struct ProfileTree {
    /// The process `leakscope run` started.
    pub root: Profile,
    /// Its forked descendants, each with its file's path.
    pub descendants: Vec<(PathBuf, Profile)>,
}

/// Read `path` and every `<path>.<pid>` file beside it (forked children write there).
pub fn read_tree(path: &Path) -> Result<ProfileTree> {
    let root = leakscope_format::read_profile(path)
        .with_context(|| format!("cannot read the profile '{}'", path.display()))?;
    let mut descendants = Vec::new();
    for child_path in child_profile_paths(path) {
        match leakscope_format::read_profile(&child_path) {
            Ok(profile) => descendants.push((child_path, profile)),
            Err(error) => eprintln!(
                "leakscope: skipping the child profile '{}': {error}",
                child_path.display()
            ),
        }
    }
    Ok(ProfileTree { root, descendants })
}

/// The files `<path>.<digits>[.<digits>...]` beside `path`, sorted.
pub fn child_profile_paths(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (
        path.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        }),
        path.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let file_name = file_name.to_str()?;
            let rest = file_name.strip_prefix(&prefix)?;
            rest.split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| entry.path())
        })
        .collect();
    found.sort();
    found
}

/// Build the report for the whole tree: each forked process under the process that forked it
/// (by pid), any whose parent has no profile under the root.
pub fn build_report(tree: &ProfileTree, progress: &Progress) -> Report {
    let profiles: Vec<&Profile> = std::iter::once(&tree.root)
        .chain(tree.descendants.iter().map(|(_, profile)| profile))
        .collect();
    progress.stage(match profiles.len() {
        1 => "analysing the profile...".to_owned(),
        n => format!("analysing {n} profiles..."),
    });
    let mut reports: Vec<(Report, Vec<StackId>)> =
        profiles.iter().map(|profile| report_for(profile)).collect();
    let stacks: usize = reports.iter().map(|(_, stacks)| stacks.len()).sum();
    progress.stage(format!("symbolizing {stacks} stacks..."));
    let mut symbolizer = Symbolizer::new();
    for (profile, (report, stacks)) in profiles.iter().zip(&mut reports) {
        report.frames = symbolizer.symbolize(profile, stacks);
    }
    let mut reports = reports.into_iter().map(|(report, _)| report);
    let mut root = reports.next().expect("the root's report comes first");
    let mut pool: Vec<(u32, Report)> = tree
        .descendants
        .iter()
        .zip(reports)
        .map(|((_, profile), report)| {
            let ppid = profile.process.as_ref().map_or(0, |p| p.ppid);
            (ppid, report)
        })
        .collect();
    root.children = adopt(root.pid, &mut pool);
    let orphans = pool.into_iter().map(|(_, report)| report);
    root.children.extend(orphans);
    root.children.sort_by_key(|c| c.pid);
    for note in symbolizer.notes() {
        if !root.notes.contains(note) {
            root.notes.push(note.clone());
        }
    }
    root
}

/// Take the reports whose parent is `pid` out of `pool`, each with its own children.
fn adopt(pid: u32, pool: &mut Vec<(u32, Report)>) -> Vec<Report> {
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(pool)
        .into_iter()
        .partition(|(ppid, _)| *ppid == pid);
    *pool = rest;
    mine.into_iter()
        .map(|(_, mut report)| {
            report.children = adopt(report.pid, pool);
            report.children.sort_by_key(|c| c.pid);
            report
        })
        .collect()
}

/// Bounded sites kept in a report (the largest by peak): growing and plateau sites are all
/// kept, but a busy program has thousands of sites that merely churn.
const BOUNDED_SITES_SHOWN: usize = 50;

/// The report of one profile, without its frames yet, and the stacks it names.
fn report_for(profile: &Profile) -> (Report, Vec<StackId>) {
    use leakscope_analysis::growth::{self, Verdict};
    let findings = leakscope_analysis::analyze(profile);
    let mut bounded_shown = 0;
    let growth: Vec<_> = growth::growth(profile)
        .into_iter()
        .filter(|finding| {
            finding.verdict != Verdict::Bounded || {
                bounded_shown += 1;
                bounded_shown <= BOUNDED_SITES_SHOWN
            }
        })
        .collect();
    let timeline = growth::timeline(profile);
    let live_scans = leakscope_analysis::live_scans(profile);
    let mut stacks: Vec<_> = findings
        .records
        .iter()
        .map(|r| r.stack)
        .chain(growth.iter().map(|g| g.stack))
        .chain(live_scans.lost_growing.iter().map(|g| g.stack))
        .collect();
    stacks.sort_unstable();
    stacks.dedup();
    let (pid, command) = profile
        .process
        .as_ref()
        .map_or((0, Vec::new()), |p| (p.pid, p.argv.clone()));
    let exit = match (&profile.run_result, &profile.exit) {
        (Some(run), _) => ExitStatus {
            code: run.code,
            signal: run.signal,
        },
        (None, Some(exit)) if exit.how == ExitHow::Signal => ExitStatus {
            code: None,
            signal: Some(exit.signal),
        },
        (None, Some(exit)) => ExitStatus {
            code: Some(exit.code),
            signal: None,
        },
        (None, None) => ExitStatus::default(),
    };
    let duration_s = match (&profile.run_result, &profile.exit) {
        (Some(run), _) => run.wall_ns as f64 / 1e9,
        (None, Some(exit)) => exit.time_ns as f64 / 1e9,
        _ => 0.0,
    };
    let report = Report {
        pid,
        command,
        exit,
        duration_s,
        findings,
        frames: Default::default(),
        growth,
        timeline,
        live_scans,
        notes: notes_for(profile),
        children: Vec::new(),
    };
    (report, stacks)
}

fn notes_for(profile: &Profile) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(damage) = &profile.damage {
        notes.push(format!(
            "the profile is damaged or cut short ({damage}); this report shows what was read before that point"
        ));
    }
    if profile.exit.is_none() {
        notes.push(
            "the process did not finish normally (it was killed with SIGKILL, or replaced itself with exec), so there was no leak check at its end"
                .to_string(),
        );
    }
    notes.extend(profile.warnings.iter().cloned());
    notes
}

//! The data flow after the run, in one place:
//! profile file(s) → `leakscope_format::read_profile` → `leakscope_analysis::analyze` →
//! `leakscope_symbolize` (only the stacks the findings name) → `leakscope_report::Report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use leakscope_format::{ExitHow, Profile};
use leakscope_report::{ExitStatus, Report};
use leakscope_symbolize::Symbolizer;

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

/// Build the report for the whole tree.
pub fn build_report(tree: &ProfileTree) -> Report {
    let mut symbolizer = Symbolizer::new();
    let mut root = report_for(&tree.root, &mut symbolizer);
    let mut children: Vec<Report> = tree
        .descendants
        .iter()
        .map(|(_, profile)| report_for(profile, &mut symbolizer))
        .collect();
    // Nest each child under its parent (by pid); orphans go under the root.
    let ppids: Vec<u32> = tree
        .descendants
        .iter()
        .map(|(_, p)| p.process.as_ref().map_or(0, |i| i.ppid))
        .collect();
    // Attach deepest first: a child whose own children are attached before it moves.
    let mut order: Vec<usize> = (0..children.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(depth(i, &ppids, &children)));
    let mut slots: Vec<Option<Report>> = children.drain(..).map(Some).collect();
    for i in order {
        let Some(child) = slots[i].take() else {
            continue;
        };
        let parent = (0..slots.len())
            .find(|&j| j != i && slots[j].as_ref().is_some_and(|p| p.pid == ppids[i]));
        match parent {
            Some(j) => slots[j]
                .as_mut()
                .expect("checked above")
                .children
                .push(child),
            None => root.children.push(child),
        }
    }
    for report in std::iter::once(&mut root) {
        report.children.sort_by_key(|c| c.pid);
    }
    root
}

fn depth(i: usize, ppids: &[u32], children: &[Report]) -> usize {
    let mut d = 0;
    let mut current = i;
    while let Some(parent) = children.iter().position(|c| c.pid == ppids[current]) {
        d += 1;
        current = parent;
        if d > children.len() {
            break;
        }
    }
    d
}

fn report_for(profile: &Profile, symbolizer: &mut Symbolizer) -> Report {
    let findings = leakscope_analysis::analyze(profile);
    let mut stacks: Vec<_> = findings.records.iter().map(|r| r.stack).collect();
    stacks.sort_unstable();
    stacks.dedup();
    let frames = symbolizer.symbolize(profile, &stacks);
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
    Report {
        pid,
        command,
        exit,
        duration_s,
        findings,
        frames,
        notes: notes_for(profile),
        children: Vec::new(),
    }
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

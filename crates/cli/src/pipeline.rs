//! The data flow after the run, in one place:
//! profile file(s) → `leakscope_format::read_profile` → `leakscope_analysis::analyze` →
//! `leakscope_symbolize` (only the stacks the findings name) → `leakscope_report::Report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use leakscope_format::{ExitHow, Profile, StackId};
use leakscope_report::{ExitStatus, Report, StartedBy};
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

/// The files beside `path` that other process images of the run wrote: `<path>.<pid>`, and
/// after an `exec` (or for a later process with the same pid) `<path>.<pid>.e`,
/// `<path>.<pid>.e.e`, ... (see the agent's writer), sorted.
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
            let mut parts = rest.split('.');
            let pid = parts.next()?;
            (!pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && parts.all(|part| {
                    part == "e" || (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                }))
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
    let reports: Vec<Report> = reports.into_iter().map(|(report, _)| report).collect();
    let mut root = assemble(&profiles, reports);
    for note in symbolizer.notes() {
        if !root.notes.contains(note) {
            root.notes.push(note.clone());
        }
    }
    root
}

/// One process image's place in the run.
struct Placement {
    /// The image it is shown under (`None` for the root).
    parent: Option<usize>,
    started_by: StartedBy,
    /// A forked image that only executed another program: not shown (its blocks were the
    /// parent's copy, and went with the image); its successor takes its place.
    hidden: bool,
}

/// Arrange the reports of every image (`profiles[0]` is the root) into one tree.
///
/// Images of one process (the same pid and kernel start time) follow each other across
/// `exec`, in the order they started: each is shown under the one it replaced. The first image
/// of another process is shown under the image of its parent (by ppid) that was running when
/// it started, or under the root if that has no profile. A forked image that ended by `exec`
/// is left out and its successor shown in its place. What ran untracked, and processes that
/// left no profile, become notes of the image that started them.
fn assemble(profiles: &[&Profile], mut reports: Vec<Report>) -> Report {
    let info = |i: usize| profiles[i].process.as_ref();
    let pid = |i: usize| info(i).map_or(0, |p| p.pid);
    let start = |i: usize| info(i).map_or(0, |p| p.start_unix_ns);
    let process_key = |i: usize| (pid(i), info(i).and_then(|p| p.kernel_start_ticks));
    // The root first, then every other image in the order it started.
    let mut order: Vec<usize> = (1..profiles.len()).collect();
    order.sort_by_key(|&i| (start(i), i));
    order.insert(0, 0);
    let mut predecessor: Vec<Option<usize>> = vec![None; profiles.len()];
    let mut successor: Vec<Option<usize>> = vec![None; profiles.len()];
    for (at, &i) in order.iter().enumerate() {
        let earlier = order[..at].iter().rev().find(|&&j| {
            process_key(j) == process_key(i)
                && profiles[j].ended_by_exec().is_some()
                && successor[j].is_none()
        });
        if let Some(&j) = earlier {
            predecessor[i] = Some(j);
            successor[j] = Some(i);
        }
    }
    // Placements in `order`; `placed[image]` is the image's index there.
    let mut placements: Vec<Placement> = Vec::with_capacity(profiles.len());
    let mut placed: Vec<usize> = vec![0; profiles.len()];
    // The image a child is shown under: `image` itself, or where a hidden image would be.
    let shown_under = |placements: &[Placement], placed: &[usize], image: usize| -> usize {
        let placement = &placements[placed[image]];
        if placement.hidden {
            placement.parent.unwrap_or(0)
        } else {
            image
        }
    };
    for &i in &order {
        let forked = info(i).is_some_and(|p| p.forked());
        let hidden = i != 0 && forked && profiles[i].ended_by_exec().is_some();
        let (parent, started_by) = if i == 0 {
            (None, StartedBy::Run)
        } else if let Some(j) = predecessor[i] {
            (Some(shown_under(&placements, &placed, j)), StartedBy::Exec)
        } else {
            let ppid = info(i).map_or(0, |p| p.ppid);
            let parent = order
                .iter()
                .take_while(|&&j| j != i)
                .filter(|&&j| pid(j) == ppid && start(j) <= start(i))
                .max_by_key(|&&j| start(j))
                .copied()
                .unwrap_or(0);
            let started_by = if forked {
                StartedBy::Fork
            } else {
                StartedBy::Exec
            };
            (Some(shown_under(&placements, &placed, parent)), started_by)
        };
        placed[i] = placements.len();
        placements.push(Placement {
            parent,
            started_by,
            hidden,
        });
    }
    let placement = |i: usize| &placements[placed[i]];

    for (i, report) in reports.iter_mut().enumerate() {
        report.started_by = placement(i).started_by;
        if successor[i].is_some() {
            report.findings.leak_check.mark_exec_tracked();
        }
    }
    // What each image started untracked or without a profile, gathered per shown image (a
    // hidden image's go to the image it is hidden under), then one note of each kind.
    let mut gathered: Vec<Started> = (0..profiles.len()).map(|_| Started::default()).collect();
    for (i, started) in started_elsewhere(profiles, &successor)
        .into_iter()
        .enumerate()
    {
        let target = if placement(i).hidden {
            placement(i).parent.unwrap_or(0)
        } else {
            i
        };
        gathered[target].untracked.extend(started.untracked);
        gathered[target]
            .without_profile
            .extend(started.without_profile);
    }
    for (report, started) in reports.iter_mut().zip(gathered) {
        report.notes.extend(started.notes());
    }

    // Attach each shown image to its parent, latest first, so that an image has all its
    // children before its own parent takes it.
    let mut slots: Vec<Option<Report>> = reports.into_iter().map(Some).collect();
    for &i in order.iter().skip(1).rev() {
        let Some(report) = slots[i].take() else {
            continue;
        };
        if placement(i).hidden {
            continue;
        }
        let parent = placement(i).parent.unwrap_or(0);
        if let Some(parent_report) = slots[parent].as_mut() {
            parent_report.children.push(report);
        }
    }
    let mut root = slots[0].take().unwrap_or_default();
    sort_children(&mut root);
    root
}

/// Children in the order they started (they were attached latest first).
fn sort_children(report: &mut Report) {
    report.children.reverse();
    for child in &mut report.children {
        sort_children(child);
    }
}

/// What one image started that has no report: programs that ran untracked, and processes
/// that left no profile.
#[derive(Default)]
struct Started {
    untracked: Vec<String>,
    without_profile: Vec<String>,
}

impl Started {
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.untracked.is_empty() {
            let n = self.untracked.len();
            notes.push(format!(
                "{n} {} ran untracked (--follow-children tracks the programs a process executes): {}",
                if n == 1 { "program" } else { "programs" },
                list_some(&self.untracked)
            ));
        }
        if !self.without_profile.is_empty() {
            let n = self.without_profile.len();
            notes.push(format!(
                "{n} {} started left no profile (killed before the agent wrote one, a program the agent cannot enter such as a static or setuid one, or a profile it could not create): {}",
                if n == 1 { "process it" } else { "processes it" },
                list_some(&self.without_profile)
            ));
        }
        notes
    }
}

/// Per image, what it started that has no report of its own.
fn started_elsewhere(profiles: &[&Profile], successor: &[Option<usize>]) -> Vec<Started> {
    use leakscope_format::SpawnHow;
    let pids: std::collections::BTreeSet<u32> = profiles
        .iter()
        .filter_map(|p| p.process.as_ref().map(|p| p.pid))
        .collect();
    profiles
        .iter()
        .enumerate()
        .map(|(i, profile)| {
            let process = profile.process.as_ref();
            let following = process.is_some_and(|p| {
                p.flags & leakscope_format::process_flags::FOLLOWING_CHILDREN != 0
            });
            let forked = process.is_some_and(|p| p.forked());
            let mut started = Started::default();
            // The root's own exec is in its leak check's reason; a forked image that executed
            // a program is not shown, so its program is listed here.
            if let Some(exec) = profile.ended_by_exec() {
                if successor[i].is_none() && i != 0 && forked {
                    started.untracked.push(format!("'{}' (exec)", exec.path));
                }
            }
            for spawn in &profile.spawns {
                let has_profile = spawn.pid.is_some_and(|pid| pids.contains(&pid));
                let pid = spawn.pid.unwrap_or(0);
                match spawn.how {
                    SpawnHow::Fork if !has_profile => started.without_profile.push(format!(
                        "process {pid} (forked at {:.1} s)",
                        spawn.time_ns as f64 / 1e9
                    )),
                    SpawnHow::Fork => {}
                    how if !following => {
                        started
                            .untracked
                            .push(format!("'{}' ({})", spawn.program, how.name()))
                    }
                    how if spawn.pid.is_some() && !has_profile => started.without_profile.push(
                        format!("'{}' (process {pid}, {})", spawn.program, how.name()),
                    ),
                    _ => {}
                }
            }
            started
        })
        .collect()
}

/// The first few items, and how many more.
fn list_some(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
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
        started_by: StartedBy::Run,
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
    if profile.exit.is_none() && profile.ended_by_exec().is_none() {
        notes.push(
            "the process did not finish normally (it was killed with SIGKILL, or replaced itself with exec), so there was no leak check at its end"
                .to_string(),
        );
    }
    notes.extend(profile.warnings.iter().cloned());
    notes
}

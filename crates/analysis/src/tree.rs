//! The entry point: a profile tree in, the complete unrendered result out.

use leakscope_format::tree::ProfileTree;
use leakscope_format::{Profile, SpawnHow};

use crate::{Findings, Gate, StartedBy};

/// The complete, unrendered result of a run: what the reports render, and what decides the
/// exit code of `--error-exitcode`.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// The findings of the root image, with every other image of the run placed under the
    /// image that started it.
    pub root: Findings,
    /// The rule of `--error-exitcode` over every image of the tree.
    pub gate: Gate,
}

impl Analysis {
    /// Every stack to symbolize, per profile of a tree of `profile_count` profiles (indexed
    /// as [`ProfileTree::profiles`]). An image that is not shown (a fork that only executed
    /// another program) names none.
    pub fn stacks(&self, profile_count: usize) -> Vec<Vec<leakscope_format::StackId>> {
        let mut stacks = vec![Vec::new(); profile_count];
        for findings in self.root.processes() {
            if let Some(slot) = stacks.get_mut(findings.profile) {
                *slot = findings.stacks();
            }
        }
        stacks
    }
}

/// What to compute beyond what every report shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Each image's [`crate::Detail`] (the HTML report's moments and series).
    pub detail: bool,
}

/// [`analyze_with`] the default options.
pub fn analyze(tree: &ProfileTree) -> Analysis {
    analyze_with(tree, Options::default())
}

/// Analyse a whole run: each profile's findings ([`Findings::of`]), arranged into one tree
/// (each forked process under the process that forked it, by pid; each image after `exec`
/// under the one it replaced; any whose parent has no profile under the root), with notes on
/// what ran untracked or left no profile, and the gate over the whole tree.
pub fn analyze_with(tree: &ProfileTree, options: Options) -> Analysis {
    let profiles = tree.profiles();
    let findings: Vec<Findings> = profiles
        .iter()
        .enumerate()
        .map(|(index, profile)| {
            let mut findings = Findings {
                profile: index,
                ..Findings::of(profile)
            };
            if options.detail {
                findings.detail = Some(crate::moments::detail(profile, &findings.growth));
            }
            findings
        })
        .collect();
    let root = assemble(&profiles, findings);
    let gate = Gate::of(&root, crate::GateRule::default());
    Analysis { root, gate }
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

/// Arrange the findings of every image (`profiles[0]` is the root) into one tree.
///
/// Images of one process (the same pid and kernel start time) follow each other across
/// `exec`, in the order they started: each is shown under the one it replaced. The first image
/// of another process is shown under the image of its parent (by ppid) that was running when
/// it started, or under the root if that has no profile. A forked image that ended by `exec`
/// is left out and its successor shown in its place. What ran untracked, and processes that
/// left no profile, become notes of the image that started them.
fn assemble(profiles: &[&Profile], mut images: Vec<Findings>) -> Findings {
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

    for (i, findings) in images.iter_mut().enumerate() {
        findings.started_by = placement(i).started_by;
        if successor[i].is_some() {
            findings.leaks.leak_check.mark_exec_tracked();
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
    for (findings, started) in images.iter_mut().zip(gathered) {
        findings.notes.extend(started.notes());
    }

    // Attach each shown image to its parent, latest first, so that an image has all its
    // children before its own parent takes it.
    let mut slots: Vec<Option<Findings>> = images.into_iter().map(Some).collect();
    for &i in order.iter().skip(1).rev() {
        let Some(findings) = slots[i].take() else {
            continue;
        };
        if placement(i).hidden {
            continue;
        }
        let parent = placement(i).parent.unwrap_or(0);
        if let Some(parent_findings) = slots[parent].as_mut() {
            parent_findings.children.push(findings);
        }
    }
    let mut root = slots[0].take().unwrap_or_default();
    sort_children(&mut root);
    root
}

/// Children in the order they started (they were attached latest first).
fn sort_children(findings: &mut Findings) {
    findings.children.reverse();
    for child in &mut findings.children {
        sort_children(child);
    }
}

/// What one image started that has no findings of its own: programs that ran untracked, and
/// processes that left no profile.
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

/// Per image, what it started that has no findings of its own.
fn started_elsewhere(profiles: &[&Profile], successor: &[Option<usize>]) -> Vec<Started> {
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

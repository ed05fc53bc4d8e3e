//! [`Findings`]: everything the analysis found about one process image, unrendered.

use leakscope_format::{ExitHow, Profile, StackId};

use crate::growth::{self, SiteGrowth, TimelinePoint, Verdict};
use crate::{live_scans, Leaks, LiveScans};

/// Bounded sites kept in the findings of one image (the largest by peak): growing and plateau
/// sites are all kept, but a busy program has thousands of sites that merely churn.
pub const BOUNDED_SITES_SHOWN: usize = 50;

/// How a process ended, as the reports show it: the run result where `leakscope run` saw
/// the end, else the exit the agent recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal ended it.
    pub signal: Option<i32>,
}

/// How a process image came to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartedBy {
    /// `leakscope run` started it.
    #[default]
    Run,
    /// Its parent forked it: it runs the parent's program, with a copy of its blocks.
    Fork,
    /// A program executed by its parent (an `exec` in place, with the same pid, or in a new
    /// process: `fork` then `exec`, `posix_spawn`, `system`, `popen`).
    Exec,
}

impl StartedBy {
    /// The name used in JSON: `run`, `fork`, `exec`.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Fork => "fork",
            Self::Exec => "exec",
        }
    }
}

/// Everything the analysis found about one process image, and the images shown under it.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Which profile of the tree these findings come from (an index into
    /// `ProfileTree::profiles()`): the stacks they name are that profile's.
    pub profile: usize,
    /// Process id.
    pub pid: u32,
    /// The command line.
    pub command: Vec<String>,
    /// How it ended.
    pub exit: ExitStatus,
    /// Seconds from start to exit.
    pub duration_s: f64,
    /// Loss records, their totals, and whether the leak check ran over everything.
    pub leaks: Leaks,
    /// Verdicts on each site's live memory over time, growing sites first; bounded sites
    /// only the [`BOUNDED_SITES_SHOWN`] largest.
    pub growth: Vec<SiteGrowth>,
    /// The process's live memory over time.
    pub timeline: Vec<TimelinePoint>,
    /// Reachability scans made while the program ran.
    pub live_scans: LiveScans,
    /// Notes for the reader (a damaged profile, threads that could not be stopped...).
    pub notes: Vec<String>,
    /// Language runtimes found in the process (CPython), and what the agent did with them.
    pub runtimes: Vec<crate::runtimes::RuntimeFinding>,
    /// Processes forked by this one, and programs it executed, each with its own findings.
    pub children: Vec<Findings>,
    /// How this process image came to be.
    pub started_by: StartedBy,
    /// The JavaScript side of a Node.js process, per isolate (from leakscope's preload).
    pub scripts: Vec<crate::ScriptIsolate>,
    /// Live memory per site at chosen moments, and the series of the listed sites: only when
    /// [`crate::Options::detail`] asked for it.
    pub detail: Option<crate::Detail>,
    /// The Java classes of a JVM in the process, when `leakscope run` watched one.
    pub java: Option<crate::java::JavaFindings>,
}

impl Findings {
    /// The findings of one profile on its own: not yet placed in a tree (no children, started
    /// by `run`, and only its own notes).
    pub fn of(profile: &Profile) -> Findings {
        let mut bounded_shown = 0;
        let instrument = crate::scripts::InstrumentCode::of(profile);
        let mut instrument_sites = (0usize, 0u64);
        let growth: Vec<SiteGrowth> = growth::growth(profile)
            .into_iter()
            .filter(|site| {
                let ours = instrument
                    .as_ref()
                    .is_some_and(|code| code.allocated(profile, site.stack));
                if ours {
                    instrument_sites.0 += 1;
                    instrument_sites.1 += site.live_bytes_last;
                }
                !ours
            })
            .filter(|site| {
                site.verdict != Verdict::Bounded || {
                    bounded_shown += 1;
                    bounded_shown <= BOUNDED_SITES_SHOWN
                }
            })
            .collect();
        let (pid, command) = profile
            .process
            .as_ref()
            .map_or((0, Vec::new()), |p| (p.pid, p.argv.clone()));
        let leaks = Leaks::of(profile);
        let mut notes = notes_of(profile);
        let (scripts, script_notes) = crate::scripts::scripts(profile);
        notes.extend(script_notes);
        if let Some(code) = &instrument {
            if instrument_sites.0 > 0 || !leaks.instrument_kept.is_zero() {
                notes.push(format!(
                    "{} native {} ({} bytes at the end) and {} bytes in {} blocks at exit were allocated by {}, which leakscope started: they are its bookkeeping, not the program's, and are left out (counted as suppressed at exit)",
                    instrument_sites.0,
                    if instrument_sites.0 == 1 { "site" } else { "sites" },
                    instrument_sites.1,
                    leaks.instrument_kept.bytes,
                    leaks.instrument_kept.blocks,
                    code.what
                ));
            }
        }
        if !leaks.runtime_kept.is_zero() {
            notes.push(format!(
                "{} bytes in {} blocks that the Python interpreter allocated on its own account (no frame of a C extension or other code in their stacks) were not freed at exit; the interpreter keeps such memory on purpose, so they are counted as suppressed, not as lost or reachable",
                leaks.runtime_kept.bytes, leaks.runtime_kept.blocks
            ));
        }
        let java = crate::java::java(profile);
        if let Some(java) = &java {
            notes.extend(crate::java::notes(java));
        }
        Findings {
            profile: 0,
            pid,
            command,
            exit: exit_status(profile),
            duration_s: duration_s(profile),
            leaks,
            growth,
            timeline: growth::timeline(profile),
            live_scans: live_scans(profile),
            notes,
            runtimes: crate::runtimes::runtimes(profile),
            children: Vec::new(),
            started_by: StartedBy::Run,
            scripts,
            detail: None,
            java,
        }
    }

    /// Every stack these findings name (loss records, site growth, lost blocks that grew
    /// between live scans), sorted, each once: the stacks to symbolize. Not the children's.
    pub fn stacks(&self) -> Vec<StackId> {
        let mut stacks: Vec<StackId> = self
            .leaks
            .records
            .iter()
            .map(|r| r.stack)
            .chain(self.growth.iter().map(|g| g.stack))
            .chain(self.live_scans.lost_growing.iter().map(|g| g.stack))
            .chain(self.detail.iter().flat_map(crate::Detail::stacks))
            .collect();
        stacks.sort_unstable();
        stacks.dedup();
        stacks
    }

    /// This image and every image below it, parents before their children.
    pub fn processes(&self) -> Vec<&Findings> {
        let mut all = vec![self];
        let mut at = 0;
        while at < all.len() {
            let findings = all[at];
            all.extend(findings.children.iter());
            at += 1;
        }
        all
    }

    /// Add a note, unless it is there already.
    pub fn add_note(&mut self, note: &str) {
        if !self.notes.iter().any(|n| n == note) {
            self.notes.push(note.to_owned());
        }
    }
}

/// The run result where there is one (`leakscope run` saw the end from outside), else the
/// exit the agent recorded, else nothing known.
fn exit_status(profile: &Profile) -> ExitStatus {
    match (&profile.run_result, &profile.exit) {
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
    }
}

/// The run's wall time where `leakscope run` measured it, else the agent's time of exit.
fn duration_s(profile: &Profile) -> f64 {
    match (&profile.run_result, &profile.exit) {
        (Some(run), _) => run.wall_ns as f64 / 1e9,
        (None, Some(exit)) => exit.time_ns as f64 / 1e9,
        _ => 0.0,
    }
}

/// What the reader must know about one profile: damage, a missing end, the agent's warnings.
fn notes_of(profile: &Profile) -> Vec<String> {
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
    notes.extend(crate::runtimes::python_notes(profile));
    notes
}

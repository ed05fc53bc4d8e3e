//! Whether the leak check at exit happened, and over everything: the honesty of every figure
//! the report gives about lost blocks.
//!
//! The exit leak check is the agent's reachability scan, recorded in the profile's `Scan`
//! chunk followed by its `Leaks` chunks. Zero lost blocks means "no leak" only when that scan
//! ran to the end and its records were all read. Otherwise the report must say so, and a
//! gate (`--error-exitcode`) must not pass:
//!
//! - **not run**: no `Scan` chunk (the process was killed by `SIGKILL`, replaced itself with
//!   `exec`, or the profile is cut short or damaged before the scan's results), or a `Scan`
//!   chunk whose flags say it did not run ([`scan_flags::NOT_RUN_NO_MEMORY`]). Nothing is
//!   known about the blocks left at exit.
//! - **incomplete**: the scan ran, but some threads did not stop
//!   ([`scan_flags::THREADS_MISSED`]) or some memory could not be read
//!   ([`scan_flags::UNREADABLE_MEMORY`]). Both can only make the scan see fewer pointers, so
//!   blocks may be reported lost that are not, never the other way round: the lost figures
//!   are an upper bound. Or the profile ends after the `Scan` chunk, so some of its leak
//!   records may be missing: the lost figures may then be too low.

use leakscope_format::{scan_flags, Profile};

/// How far the leak check at exit got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeakCheckStatus {
    /// The scan ran over a stopped world, read everything, and all its records were read.
    Complete,
    /// The scan ran, but its figures are not the whole truth (see [`Shortfall`]).
    Incomplete,
    /// There was no scan: nothing is known about the blocks left at exit.
    NotRun,
}

impl LeakCheckStatus {
    /// The name used in JSON: `complete`, `incomplete`, `not_run`.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Incomplete => "incomplete",
            Self::NotRun => "not_run",
        }
    }
}

/// One reason why the leak check did not run or is incomplete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shortfall {
    /// The process ended without reaching the agent's exit path, so there was no scan.
    /// `signal` and `code` are how it ended as `leakscope run` saw it, when it did.
    NotFinished {
        /// The signal that ended it.
        signal: Option<i32>,
        /// Its exit code, when it exited (the program it executed did, then).
        code: Option<i32>,
    },
    /// The profile is cut short or damaged before the scan's results.
    EndsBeforeScan {
        /// What the reader found wrong, if the file is damaged rather than cut at a chunk
        /// boundary.
        damage: Option<String>,
    },
    /// The profile is whole but holds no scan (an agent that did not get to scan).
    NoScan,
    /// The agent could not map the memory the scan needs, so it did not run.
    NoMemory,
    /// Threads that did not stop for the scan: their registers were not scanned.
    ThreadsMissed {
        /// How many (0 when the profile says only "some").
        threads: u32,
    },
    /// Part of the heap or of the roots could not be read.
    UnreadableMemory,
    /// The process replaced its image with `exec`: the old image's blocks went with it, and
    /// memcheck checks no image at `exec` either. `tracked`: the program it executed has a
    /// profile (and a report) of its own; if not, that program ran unchecked.
    ReplacedByExec {
        /// The program it executed.
        program: String,
        /// Whether that program was tracked (set by whoever assembles the process tree).
        tracked: bool,
    },
    /// The profile ends after the scan's first chunk: some leak records may be missing.
    EndsAfterScan {
        /// What the reader found wrong, if anything.
        damage: Option<String>,
    },
}

impl Shortfall {
    /// Whether the check ran at all despite this.
    pub fn status(&self) -> LeakCheckStatus {
        match self {
            Self::NotFinished { .. }
            | Self::EndsBeforeScan { .. }
            | Self::NoScan
            | Self::NoMemory
            | Self::ReplacedByExec { .. } => LeakCheckStatus::NotRun,
            Self::ThreadsMissed { .. } | Self::UnreadableMemory | Self::EndsAfterScan { .. } => {
                LeakCheckStatus::Incomplete
            }
        }
    }

    /// Whether lost blocks may exist that the figures do not show. Threads not stopped and
    /// memory not read only hide pointers, so they can add lost blocks, not hide them.
    pub fn may_hide_lost_blocks(&self) -> bool {
        match self {
            // The image's own blocks are gone with it; what matters is the program it became.
            Self::ReplacedByExec { tracked, .. } => !tracked,
            _ => {
                self.status() == LeakCheckStatus::NotRun
                    || matches!(self, Self::EndsAfterScan { .. })
            }
        }
    }

    /// The reason in words, to follow "the leak check did not run: " or "the leak check is
    /// incomplete: ".
    pub fn describe(&self) -> String {
        match self {
            Self::NotFinished {
                signal: Some(9), ..
            } => "the process was killed by SIGKILL, which ends it before any of its exit code runs"
                .to_owned(),
            Self::NotFinished {
                signal: Some(signal),
                ..
            } => format!(
                "the process was ended by signal {signal} without reaching the agent's exit path"
            ),
            Self::NotFinished {
                code: Some(code), ..
            } => format!(
                "the process ended (exit code {code}) without reaching the agent's exit path: it replaced itself with another program (exec), which ran untracked"
            ),
            Self::NotFinished { .. } => {
                "the process did not finish normally (it was killed with SIGKILL, or replaced itself with exec)"
                    .to_owned()
            }
            Self::EndsBeforeScan { damage: Some(damage) } => format!(
                "the profile is damaged or cut short before the leak check's results ({damage})"
            ),
            Self::EndsBeforeScan { damage: None } => {
                "the profile is cut short before the leak check's results".to_owned()
            }
            Self::NoScan => "the profile holds no leak check results".to_owned(),
            Self::ReplacedByExec {
                program,
                tracked: true,
            } => format!(
                "the process replaced itself with '{program}' (exec), whose own report follows"
            ),
            Self::ReplacedByExec {
                program,
                tracked: false,
            } => format!(
                "the process replaced itself with '{program}' (exec), which ran untracked (--follow-children tracks it)"
            ),
            Self::NoMemory => "the agent could not map the memory the scan needs".to_owned(),
            Self::ThreadsMissed { threads } => format!(
                "{} did not stop for the scan, so {} registers were not scanned and blocks only {} to may be reported as lost",
                match threads {
                    0 => "some threads".to_owned(),
                    1 => "1 thread".to_owned(),
                    n => format!("{n} threads"),
                },
                if *threads == 1 { "its" } else { "their" },
                if *threads == 1 { "it points" } else { "they point" },
            ),
            Self::UnreadableMemory => {
                "part of the heap or of the roots could not be read, so blocks only that memory points to may be reported as lost"
                    .to_owned()
            }
            Self::EndsAfterScan { damage } => format!(
                "the profile is cut short after the scan{}, so some of its leak records may be missing",
                damage
                    .as_ref()
                    .map(|damage| format!(" ({damage})"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// How far the leak check at exit got, and why not further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakCheck {
    /// Every reason the check did not run or is incomplete; empty when it is complete.
    pub shortfalls: Vec<Shortfall>,
}

impl Default for LeakCheck {
    /// No results: a report built without a profile's scan never claims a complete check.
    fn default() -> Self {
        LeakCheck {
            shortfalls: vec![Shortfall::NoScan],
        }
    }
}

impl LeakCheck {
    /// The image replaced itself with `exec`, and the program it executed has a report of
    /// its own: say so, so that nothing counts as unchecked.
    pub fn mark_exec_tracked(&mut self) {
        for shortfall in &mut self.shortfalls {
            if let Shortfall::ReplacedByExec { tracked, .. } = shortfall {
                *tracked = true;
            }
        }
    }

    /// A check that ran over everything.
    pub fn complete() -> Self {
        LeakCheck {
            shortfalls: Vec::new(),
        }
    }

    /// The worst status of the shortfalls.
    pub fn status(&self) -> LeakCheckStatus {
        self.shortfalls
            .iter()
            .map(Shortfall::status)
            .max()
            .unwrap_or(LeakCheckStatus::Complete)
    }

    /// The reasons in words.
    pub fn reasons(&self) -> Vec<String> {
        self.shortfalls.iter().map(Shortfall::describe).collect()
    }

    /// Whether lost blocks may exist that the figures do not show: a gate must not pass.
    pub fn may_hide_lost_blocks(&self) -> bool {
        self.shortfalls.iter().any(Shortfall::may_hide_lost_blocks)
    }

    /// "the leak check did not run: why" or "the leak check is incomplete: why; why", or
    /// `None` when it is complete.
    pub fn sentence(&self) -> Option<String> {
        let lead = match self.status() {
            LeakCheckStatus::Complete => return None,
            LeakCheckStatus::Incomplete => "the leak check is incomplete",
            LeakCheckStatus::NotRun => "the leak check did not run",
        };
        Some(format!("{lead}: {}", self.reasons().join("; ")))
    }
}

/// Judge the exit leak check of a profile from its `Scan` chunk, its end and its damage.
pub fn leak_check(profile: &Profile) -> LeakCheck {
    let mut shortfalls = Vec::new();
    if let (None, Some(exec)) = (&profile.scan, profile.ended_by_exec()) {
        shortfalls.push(Shortfall::ReplacedByExec {
            program: exec.path.clone(),
            tracked: false,
        });
        return LeakCheck { shortfalls };
    }
    match &profile.scan {
        None => shortfalls.push(if profile.damage.is_some() {
            Shortfall::EndsBeforeScan {
                damage: profile.damage.clone(),
            }
        } else if profile.exit.is_none() {
            let run = profile.run_result.unwrap_or_default();
            Shortfall::NotFinished {
                signal: run.signal,
                code: run.code,
            }
        } else if !profile.complete {
            Shortfall::EndsBeforeScan { damage: None }
        } else {
            Shortfall::NoScan
        }),
        Some(scan) if scan.flags & scan_flags::NOT_RUN_NO_MEMORY != 0 => {
            shortfalls.push(Shortfall::NoMemory)
        }
        Some(scan) => {
            if scan.flags & scan_flags::THREADS_MISSED != 0 || scan.threads_missed > 0 {
                shortfalls.push(Shortfall::ThreadsMissed {
                    threads: scan.threads_missed,
                });
            }
            if scan.flags & scan_flags::UNREADABLE_MEMORY != 0 {
                shortfalls.push(Shortfall::UnreadableMemory);
            }
            if !profile.complete {
                shortfalls.push(Shortfall::EndsAfterScan {
                    damage: profile.damage.clone(),
                });
            }
        }
    }
    LeakCheck { shortfalls }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakscope_format::{Exit, ExitHow, RunResult, Scan};

    fn exited() -> Option<Exit> {
        Some(Exit {
            how: ExitHow::Exit,
            code: 0,
            signal: 0,
            time_ns: 1,
        })
    }

    fn whole(flags: u32, threads_missed: u32) -> Profile {
        Profile {
            exit: exited(),
            scan: Some(Scan {
                flags,
                threads_missed,
                ..Scan::default()
            }),
            complete: true,
            ..Profile::default()
        }
    }

    #[test]
    fn a_whole_profile_with_a_clean_scan_is_complete() {
        let check = leak_check(&whole(
            scan_flags::LIBC_FREERES | scan_flags::CXX_FREERES,
            0,
        ));
        assert_eq!(check, LeakCheck::complete());
        assert_eq!(check.status(), LeakCheckStatus::Complete);
        assert_eq!(check.sentence(), None);
        assert!(!check.may_hide_lost_blocks());
    }

    #[test]
    fn no_scan_chunk_means_not_run_and_says_why() {
        let killed = Profile {
            run_result: Some(RunResult {
                code: None,
                signal: Some(9),
                wall_ns: 1,
            }),
            ..Profile::default()
        };
        let check = leak_check(&killed);
        assert_eq!(check.status(), LeakCheckStatus::NotRun);
        assert!(check.may_hide_lost_blocks());
        let sentence = check.sentence().unwrap();
        assert!(
            sentence.starts_with("the leak check did not run: the process was killed by SIGKILL"),
            "{sentence}"
        );

        let execed = Profile {
            run_result: Some(RunResult {
                code: Some(0),
                signal: None,
                wall_ns: 1,
            }),
            ..Profile::default()
        };
        assert!(leak_check(&execed).sentence().unwrap().contains("exec"));
        let child = Profile::default();
        assert!(leak_check(&child)
            .sentence()
            .unwrap()
            .contains("did not finish normally"));

        let damaged = Profile {
            exit: exited(),
            damage: Some("checksum mismatch".into()),
            ..Profile::default()
        };
        let check = leak_check(&damaged);
        assert_eq!(check.status(), LeakCheckStatus::NotRun);
        assert!(check.sentence().unwrap().contains("checksum mismatch"));

        let cut_at_a_chunk = Profile {
            exit: exited(),
            ..Profile::default()
        };
        assert_eq!(
            leak_check(&cut_at_a_chunk).shortfalls,
            [Shortfall::EndsBeforeScan { damage: None }]
        );
        assert_eq!(
            leak_check(&Profile {
                complete: true,
                ..cut_at_a_chunk
            })
            .shortfalls,
            [Shortfall::NoScan]
        );
    }

    #[test]
    fn a_scan_without_memory_did_not_run_whatever_else_its_flags_say() {
        let check = leak_check(&whole(
            scan_flags::NOT_RUN_NO_MEMORY | scan_flags::THREADS_MISSED,
            2,
        ));
        assert_eq!(check.shortfalls, [Shortfall::NoMemory]);
        assert_eq!(
            check.sentence().unwrap(),
            "the leak check did not run: the agent could not map the memory the scan needs"
        );
        assert!(check.may_hide_lost_blocks());
    }

    #[test]
    fn missed_threads_and_unreadable_memory_make_it_incomplete_but_hide_no_loss() {
        let check = leak_check(&whole(
            scan_flags::THREADS_MISSED | scan_flags::UNREADABLE_MEMORY,
            1,
        ));
        assert_eq!(check.status(), LeakCheckStatus::Incomplete);
        assert!(!check.may_hide_lost_blocks());
        let sentence = check.sentence().unwrap();
        assert!(
            sentence.starts_with("the leak check is incomplete: 1 thread did not stop"),
            "{sentence}"
        );
        assert!(sentence.contains("; part of the heap or of the roots could not be read"));
        assert!(leak_check(&whole(scan_flags::THREADS_MISSED, 3))
            .sentence()
            .unwrap()
            .contains("3 threads did not stop"));
        assert!(leak_check(&whole(scan_flags::THREADS_MISSED, 0))
            .sentence()
            .unwrap()
            .contains("some threads did not stop"));
    }

    #[test]
    fn a_profile_cut_after_the_scan_may_miss_lost_blocks() {
        let cut = Profile {
            complete: false,
            damage: Some("the file ends inside a chunk".into()),
            ..whole(0, 0)
        };
        let check = leak_check(&cut);
        assert_eq!(check.status(), LeakCheckStatus::Incomplete);
        assert!(check.may_hide_lost_blocks());
        assert!(check.sentence().unwrap().contains("may be missing"));
    }

    #[test]
    fn the_default_never_claims_a_complete_check() {
        assert_eq!(LeakCheck::default().status(), LeakCheckStatus::NotRun);
        assert!(LeakCheck::default().may_hide_lost_blocks());
    }
}

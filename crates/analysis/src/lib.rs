//! Every judgement of leakscope, and no I/O, no printing, no symbols.
//!
//! [`analyze`] is the entry point: it turns a profile tree (the root profile and the profiles
//! of every other process image of the run) into an [`Analysis`], the complete, unrendered
//! result that the reports render: per image its [`Findings`] (loss records and totals,
//! site growth, timeline, live scans, exit status, notes, how it started, the images shown
//! under it) and the [`Gate`] of `--error-exitcode` over the whole tree. [`compare`] is the
//! entry point of `leakscope diff`. The parts: [`Leaks::of`] (loss records grouped by stack and
//! kind, sorted largest first, and the totals per kind), [`mod@growth`] (each site's growth
//! over time), [`mod@live_scans`], [`mod@leak_check`], [`mod@diff`] and [`mod@script_diff`].
//!
//! The words are those of `docs/glossary.md`.

pub mod compare;
pub mod diff;
mod filters;
mod findings;
mod gate;
pub mod growth;
pub mod heap_snapshot;
pub mod java;
pub mod leak_check;
pub mod live_scans;
pub mod moments;
pub mod runtimes;
pub mod script_diff;
pub mod scripts;
pub mod suppressions;
mod tree;

pub use compare::{compare, Compared, Comparison, Diff, DiffRefusal, DiffSide, DiffSite};
pub use filters::{GateRule, LeakOptions, NotShown};
pub use findings::{ExitStatus, Findings, StartedBy, BOUNDED_SITES_SHOWN};
pub use gate::{Gate, GrowingSite};
pub use tree::{analyze, analyze_with, Analysis, Options};

pub use diff::{diff_profiles, diff_profiles_by, diff_snapshots, stack_key, SiteDelta};
pub use growth::{classify, growth, life_snapshots, timeline, SiteGrowth, TimelinePoint, Verdict};
pub use leak_check::{leak_check, LeakCheck, LeakCheckStatus, Shortfall};
pub use live_scans::{live_scans, LiveScanPoint, LiveScans, LostGrowth};
pub use moments::{Detail, LiveMoment, MomentKind, SiteAt, SiteSeries};
pub use script_diff::{ScriptIsolateDelta, ScriptSiteDelta};
pub use scripts::{ListenerGrowth, ScriptFrame, ScriptIsolate, ScriptSite};

use std::cmp::Reverse;
use std::collections::BTreeMap;

use leakscope_format::{LeakKind, LeakRecord, Profile, StackId};

/// Bytes and blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    /// Total bytes.
    pub bytes: u64,
    /// Number of blocks.
    pub blocks: u64,
}

impl Amount {
    /// The sum of two amounts. Saturates rather than wraps: a damaged profile can claim
    /// anything, and a wrapped total would be a small, believable lie.
    pub fn plus(self, other: Amount) -> Amount {
        Amount {
            bytes: self.bytes.saturating_add(other.bytes),
            blocks: self.blocks.saturating_add(other.blocks),
        }
    }

    /// The difference of two amounts, never below zero.
    pub fn minus(self, other: Amount) -> Amount {
        Amount {
            bytes: self.bytes.saturating_sub(other.bytes),
            blocks: self.blocks.saturating_sub(other.blocks),
        }
    }

    /// No blocks and no bytes.
    pub fn is_zero(self) -> bool {
        self == Amount::default()
    }
}

/// The blocks of one kind allocated at one stack, as memcheck's "loss record".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossRecord {
    /// memcheck's kind.
    pub kind: LeakKind,
    /// Where the blocks were allocated.
    pub stack: StackId,
    /// How much.
    pub amount: Amount,
    /// The amount is an estimate from sampled allocations (sampling mode).
    pub estimated: bool,
}

/// Totals per kind, as memcheck's LEAK SUMMARY.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Definitely lost.
    pub definitely_lost: Amount,
    /// Indirectly lost.
    pub indirectly_lost: Amount,
    /// Possibly lost.
    pub possibly_lost: Amount,
    /// Still reachable.
    pub still_reachable: Amount,
    /// Suppressed: blocks a language runtime keeps at exit on purpose
    /// ([`Leaks::runtime_kept`]) and blocks of loss records a suppression matched
    /// ([`Leaks::suppressions_used`]), left out of their kinds.
    pub suppressed: Amount,
}

impl Summary {
    /// The total for one kind.
    pub fn of(&self, kind: LeakKind) -> Amount {
        match kind {
            LeakKind::DefinitelyLost => self.definitely_lost,
            LeakKind::IndirectlyLost => self.indirectly_lost,
            LeakKind::PossiblyLost => self.possibly_lost,
            LeakKind::StillReachable => self.still_reachable,
        }
    }

    pub(crate) fn of_mut(&mut self, kind: LeakKind) -> &mut Amount {
        match kind {
            LeakKind::DefinitelyLost => &mut self.definitely_lost,
            LeakKind::IndirectlyLost => &mut self.indirectly_lost,
            LeakKind::PossiblyLost => &mut self.possibly_lost,
            LeakKind::StillReachable => &mut self.still_reachable,
        }
    }

    /// Everything still allocated at exit, of every kind, suppressed blocks included: zero
    /// means "all heap blocks were freed".
    pub fn unfreed(&self) -> Amount {
        LeakKind::ALL
            .iter()
            .map(|&kind| self.of(kind))
            .fold(self.suppressed, Amount::plus)
    }
}

/// The leaks of one process image: its loss records, their totals, and whether its leak
/// check ran over everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leaks {
    /// Loss records, largest first.
    pub records: Vec<LossRecord>,
    /// Totals per kind (always exact, also in sampling mode).
    pub summary: Summary,
    /// Sampling mode's rate in bytes, if the run sampled.
    pub sample_rate: Option<u64>,
    /// Sampling mode: the unfreed blocks that were not sampled (they have no stack, so no loss
    /// record shows them; they count in the totals).
    pub unsampled: Amount,
    /// Whether the exit leak check ran over everything: the figures above mean "nothing
    /// lost" only when it did.
    pub leak_check: LeakCheck,
    /// Unfreed blocks that the Python interpreter allocated on its own account (no frame of
    /// a C extension or other code in their stacks): left out of the kinds and the records,
    /// counted in `summary.suppressed`.
    pub runtime_kept: Amount,
    /// Blocks that an instrument leakscope started allocated for itself (V8's sampling heap
    /// profiler), left out like `runtime_kept` and counted as suppressed.
    pub instrument_kept: Amount,
    /// The suppressions that matched loss records, in the order they were read, with their
    /// uses (see [`Analysis::apply`]).
    pub suppressions_used: Vec<suppressions::SuppressionUse>,
    /// The loss records left out of `records` by the display options, and why.
    pub not_shown: NotShown,
    /// Sampling mode only: the exact blocks, per stack and kind, of the sampled blocks, so
    /// that a suppressed estimate takes its exact blocks out of the totals.
    pub sampled_exact: BTreeMap<(StackId, LeakKind), Amount>,
}

impl Leaks {
    /// Definitely plus indirectly lost: the blocks no pointer reaches.
    pub fn lost(&self) -> Amount {
        self.summary
            .definitely_lost
            .plus(self.summary.indirectly_lost)
    }

    /// The blocks of the given kinds: what `--error-exitcode` counts, of its error kinds.
    pub fn of_kinds(&self, kinds: suppressions::LeakKinds) -> Amount {
        kinds
            .kinds()
            .map(|kind| self.summary.of(kind))
            .fold(Amount::default(), Amount::plus)
    }
}

impl Leaks {
    /// Group, total and sort the leak records of a profile.
    ///
    /// Records with the same stack and kind are merged (the agent may write a site's blocks in
    /// more than one record); records with no blocks are left out. The order is fixed so that
    /// reports are reproducible: most bytes first, then most blocks, then memcheck's order of
    /// kinds (definitely, indirectly, possibly lost, still reachable), then stack id.
    pub fn of(profile: &Profile) -> Leaks {
        let mut leaks = Leaks {
            sample_rate: profile.sample_rate,
            leak_check: leak_check(profile),
            ..Leaks::default()
        };
        let interpreter = runtimes::InterpreterCode::of(profile);
        let kept = |stack: StackId| {
            interpreter
                .as_ref()
                .is_some_and(|code| code.owns(profile, stack))
        };
        let instrument = scripts::InstrumentCode::of(profile);
        let instruments = |stack: StackId| {
            instrument
                .as_ref()
                .is_some_and(|code| code.allocated(profile, stack))
        };
        // The totals come from the exact records, whatever the mode.
        for ((stack, kind), amount) in merge(&profile.leaks) {
            if instruments(stack) {
                leaks.summary.suppressed = leaks.summary.suppressed.plus(amount);
                leaks.instrument_kept = leaks.instrument_kept.plus(amount);
                continue;
            }
            if kept(stack) {
                leaks.summary.suppressed = leaks.summary.suppressed.plus(amount);
                leaks.runtime_kept = leaks.runtime_kept.plus(amount);
                continue;
            }
            let total = leaks.summary.of_mut(kind);
            *total = total.plus(amount);
            if profile.sample_rate.is_some() && stack == 0 {
                leaks.unsampled = leaks.unsampled.plus(amount);
            } else if profile.sample_rate.is_some() {
                leaks.sampled_exact.insert((stack, kind), amount);
            }
        }
        // The loss records: exact, or in sampling mode the estimates of the sampled sites (the
        // blocks not sampled have no stack to show; they count in the totals only).
        let (records, estimated) = match profile.sample_rate {
            Some(_) => (&profile.leak_estimates, true),
            None => (&profile.leaks, false),
        };
        for ((stack, kind), amount) in merge(records) {
            if kept(stack) || instruments(stack) {
                continue;
            }
            leaks.records.push(LossRecord {
                kind,
                stack,
                amount,
                estimated,
            });
        }
        leaks.records.sort_by_key(|record| {
            (
                Reverse(record.amount.bytes),
                Reverse(record.amount.blocks),
                record.kind,
                record.stack,
            )
        });
        leaks
    }
}

/// Add up records of the same (stack, kind); drop empty ones.
fn merge(records: &[LeakRecord]) -> BTreeMap<(StackId, LeakKind), Amount> {
    let mut merged: BTreeMap<(StackId, LeakKind), Amount> = BTreeMap::new();
    for record in records {
        let amount = merged.entry((record.stack, record.kind)).or_default();
        *amount = amount.plus(Amount {
            bytes: record.bytes,
            blocks: record.blocks,
        });
    }
    merged.retain(|_, amount| amount.blocks > 0);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    use LeakKind::*;

    fn leak(stack: StackId, kind: LeakKind, bytes: u64, blocks: u64) -> LeakRecord {
        LeakRecord {
            stack,
            kind,
            bytes,
            blocks,
        }
    }

    /// A whole profile whose exit scan ran and found `leaks`.
    fn profile(leaks: Vec<LeakRecord>) -> Profile {
        Profile {
            leaks,
            scan: Some(leakscope_format::Scan::default()),
            complete: true,
            exit: Some(leakscope_format::Exit {
                how: leakscope_format::ExitHow::Exit,
                code: 0,
                signal: 0,
                time_ns: 1,
            }),
            ..Profile::default()
        }
    }

    fn record(kind: LeakKind, stack: StackId, bytes: u64, blocks: u64) -> LossRecord {
        LossRecord {
            kind,
            stack,
            amount: Amount { bytes, blocks },
            estimated: false,
        }
    }

    /// In sampling mode the totals stay exact (every block, sampled or not) and the loss
    /// records are the sampled sites' estimates.
    #[test]
    fn sampling_mode_totals_are_exact_and_records_estimated() {
        let profile = Profile {
            sample_rate: Some(4096),
            leaks: vec![
                leak(0, DefinitelyLost, 9000, 90), // not sampled: no stack
                leak(7, DefinitelyLost, 1000, 10),
            ],
            leak_estimates: vec![leak(7, DefinitelyLost, 9800, 98)],
            ..Profile::default()
        };
        let leaks = Leaks::of(&profile);
        assert_eq!(leaks.sample_rate, Some(4096));
        assert_eq!(
            leaks.unsampled,
            Amount {
                bytes: 9000,
                blocks: 90
            }
        );
        assert_eq!(
            leaks.summary.definitely_lost,
            Amount {
                bytes: 10_000,
                blocks: 100
            }
        );
        assert_eq!(
            leaks.records,
            vec![LossRecord {
                estimated: true,
                ..record(DefinitelyLost, 7, 9800, 98)
            }]
        );
    }

    #[test]
    fn a_profile_without_leaks_finds_nothing() {
        let leaks = Leaks::of(&profile(Vec::new()));
        assert_eq!(
            leaks,
            Leaks {
                leak_check: LeakCheck::complete(),
                ..Leaks::default()
            }
        );
        assert!(leaks.summary.unfreed().is_zero());
        assert!(leaks.lost().is_zero());
    }

    #[test]
    fn a_profile_without_a_scan_found_nothing_because_nothing_was_checked() {
        let leaks = Leaks::of(&Profile::default());
        assert_eq!(leaks.leak_check.status(), LeakCheckStatus::NotRun);
    }

    /// Counts far beyond 32 bits pass through the analysis unchanged.
    #[test]
    fn counts_are_64_bit_end_to_end() {
        let big = 5_000_000_000u64; // more than u32::MAX
        let leaks = Leaks::of(&profile(vec![
            leak(1, DefinitelyLost, big * 16, big),
            leak(2, IndirectlyLost, big * 32, big),
        ]));
        assert_eq!(leaks.records[0].amount.blocks, big);
        assert_eq!(
            leaks.lost(),
            Amount {
                bytes: big * 48,
                blocks: 2 * big
            }
        );
    }

    #[test]
    fn repeated_records_of_one_stack_and_kind_are_merged() {
        let leaks = Leaks::of(&profile(vec![
            leak(3, DefinitelyLost, 100, 1),
            leak(4, DefinitelyLost, 50, 2),
            leak(3, DefinitelyLost, 28, 3),
            // Same stack, other kind: a record of its own.
            leak(3, StillReachable, 7, 1),
        ]));
        assert_eq!(
            leaks.records,
            [
                record(DefinitelyLost, 3, 128, 4),
                record(DefinitelyLost, 4, 50, 2),
                record(StillReachable, 3, 7, 1),
            ]
        );
    }

    #[test]
    fn summary_totals_each_kind_and_leaves_suppressed_at_zero() {
        let leaks = Leaks::of(&profile(vec![
            leak(1, DefinitelyLost, 4096, 1),
            leak(2, DefinitelyLost, 10, 2),
            leak(2, IndirectlyLost, 64, 4),
            leak(5, PossiblyLost, 32, 1),
            leak(6, StillReachable, 1000, 10),
            leak(7, StillReachable, 24, 1),
        ]));
        let summary = leaks.summary;
        assert_eq!(
            summary.definitely_lost,
            Amount {
                bytes: 4106,
                blocks: 3
            }
        );
        assert_eq!(
            summary.indirectly_lost,
            Amount {
                bytes: 64,
                blocks: 4
            }
        );
        assert_eq!(
            summary.possibly_lost,
            Amount {
                bytes: 32,
                blocks: 1
            }
        );
        assert_eq!(
            summary.still_reachable,
            Amount {
                bytes: 1024,
                blocks: 11
            }
        );
        assert_eq!(summary.suppressed, Amount::default());
        assert_eq!(
            summary.unfreed(),
            Amount {
                bytes: 5226,
                blocks: 19
            }
        );
        assert_eq!(summary.of(IndirectlyLost), summary.indirectly_lost);
    }

    #[test]
    fn records_sort_by_bytes_then_blocks_then_kind_then_stack() {
        let leaks = Leaks::of(&profile(vec![
            leak(9, StillReachable, 100, 1),
            leak(8, PossiblyLost, 100, 1),
            leak(2, DefinitelyLost, 100, 1),
            leak(1, DefinitelyLost, 100, 1),
            leak(7, IndirectlyLost, 100, 1),
            leak(6, StillReachable, 100, 5),
            leak(5, StillReachable, 5000, 1),
            leak(4, DefinitelyLost, 1, 1),
        ]));
        let order: Vec<(LeakKind, StackId)> = leaks
            .records
            .iter()
            .map(|record| (record.kind, record.stack))
            .collect();
        assert_eq!(
            order,
            [
                (StillReachable, 5),
                (StillReachable, 6),
                (DefinitelyLost, 1),
                (DefinitelyLost, 2),
                (IndirectlyLost, 7),
                (PossiblyLost, 8),
                (StillReachable, 9),
                (DefinitelyLost, 4),
            ]
        );
    }

    #[test]
    fn the_order_does_not_depend_on_the_order_of_the_file() {
        let records = vec![
            leak(1, DefinitelyLost, 10, 1),
            leak(2, DefinitelyLost, 10, 1),
            leak(3, PossiblyLost, 10, 1),
            leak(1, StillReachable, 10, 1),
        ];
        let mut reversed = records.clone();
        reversed.reverse();
        assert_eq!(Leaks::of(&profile(records)), Leaks::of(&profile(reversed)));
    }

    #[test]
    fn zero_byte_blocks_count_but_empty_records_do_not() {
        let leaks = Leaks::of(&profile(vec![
            leak(1, DefinitelyLost, 0, 2),
            leak(2, DefinitelyLost, 0, 0),
        ]));
        assert_eq!(leaks.records, [record(DefinitelyLost, 1, 0, 2)]);
        assert_eq!(
            leaks.summary.definitely_lost,
            Amount {
                bytes: 0,
                blocks: 2
            }
        );
    }

    #[test]
    fn blocks_without_a_stack_still_count() {
        let leaks = Leaks::of(&profile(vec![leak(0, DefinitelyLost, 48, 3)]));
        assert_eq!(leaks.records, [record(DefinitelyLost, 0, 48, 3)]);
        assert_eq!(
            leaks.summary.definitely_lost,
            Amount {
                bytes: 48,
                blocks: 3
            }
        );
    }

    #[test]
    fn totals_saturate_instead_of_wrapping() {
        let leaks = Leaks::of(&profile(vec![
            leak(1, DefinitelyLost, u64::MAX, 1),
            leak(1, DefinitelyLost, 10, 1),
        ]));
        assert_eq!(
            leaks.records[0].amount,
            Amount {
                bytes: u64::MAX,
                blocks: 2
            }
        );
    }
}

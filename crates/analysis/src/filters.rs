//! What the user asked to leave out, and what fails the gate: suppressions, the leak kinds
//! shown, the smallest record shown and how many, the leak kinds and growth that fail
//! `--error-exitcode`. Applied to an [`Analysis`] once its stacks are symbolized, since a
//! suppression matches function, module and file names (which this crate takes as given, in
//! the frames the caller passes: it never symbolizes).

use std::collections::BTreeMap;

use leakscope_format::{Frame, StackId};

use crate::suppressions::{LeakKinds, SuppressionUse, Suppressions};
use crate::{Amount, Analysis, Findings, Gate};

/// The options of `--suppressions`, `--show-leak-kinds`, `--errors-for-leak-kinds`,
/// `--min-bytes`, `--limit` and `--fail-on`.
#[derive(Clone, Debug)]
pub struct LeakOptions {
    /// Every suppression in force, the default set first when it applies.
    pub suppressions: Suppressions,
    /// The kinds whose loss records are shown.
    pub show_kinds: LeakKinds,
    /// The rule of `--error-exitcode`.
    pub gate: GateRule,
    /// Loss records of fewer bytes are not shown.
    pub min_bytes: u64,
    /// At most this many loss records are shown per process (the largest).
    pub limit: Option<usize>,
}

impl Default for LeakOptions {
    /// No suppressions, every record shown, memcheck's gate.
    fn default() -> Self {
        LeakOptions {
            suppressions: Suppressions::default(),
            show_kinds: LeakKinds::ALL,
            gate: GateRule::default(),
            min_bytes: 0,
            limit: None,
        }
    }
}

/// What fails the gate of `--error-exitcode`, beside a leak check that did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateRule {
    /// Blocks of these kinds fail it (memcheck's `--errors-for-leak-kinds`).
    pub error_kinds: LeakKinds,
    /// A site whose live memory kept growing fails it (`--fail-on growing`).
    pub fail_on_growing: bool,
}

impl Default for GateRule {
    /// memcheck's default: definitely and possibly lost blocks are errors.
    fn default() -> Self {
        GateRule {
            error_kinds: LeakKinds::DEFINITE_POSSIBLE,
            fail_on_growing: false,
        }
    }
}

/// Loss records that are not shown, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotShown {
    /// Of a kind `--show-leak-kinds` leaves out: how many records, and their amount.
    pub by_kind: (u64, Amount),
    /// Smaller than `--min-bytes`.
    pub below_min_bytes: (u64, Amount),
    /// Beyond `--limit`.
    pub beyond_limit: (u64, Amount),
    /// How many of them are of each kind (indexed by `LeakKind as usize`).
    pub records_of: [u64; 4],
}

impl NotShown {
    /// Whether every record is shown.
    pub fn is_empty(&self) -> bool {
        self.by_kind.0 == 0 && self.below_min_bytes.0 == 0 && self.beyond_limit.0 == 0
    }

    /// All the records not shown.
    pub fn total(&self) -> (u64, Amount) {
        [self.by_kind, self.below_min_bytes, self.beyond_limit]
            .into_iter()
            .fold((0, Amount::default()), |(n, a), (m, b)| (n + m, a.plus(b)))
    }
}

impl Analysis {
    /// Apply `options` to every image of the tree: loss records that a suppression matches
    /// (each against `frames[findings.profile]`, the symbolized stacks of its profile) move from
    /// their kind to `suppressed` and count as that suppression's uses; records the display
    /// options leave out are counted in [`crate::Leaks::not_shown`]; the gate is judged
    /// again with `options.gate`. Suppressions are matched against every record whatever the
    /// kinds shown, so that the summary does not depend on what is displayed (memcheck
    /// matches only the kinds it shows or counts as errors).
    pub fn apply(&mut self, options: &LeakOptions, frames: &[BTreeMap<StackId, Vec<Frame>>]) {
        apply_to(&mut self.root, options, frames);
        self.gate = Gate::of(&self.root, options.gate);
    }
}

fn apply_to(
    findings: &mut Findings,
    options: &LeakOptions,
    frames: &[BTreeMap<StackId, Vec<Frame>>],
) {
    let profile_frames = frames.get(findings.profile);
    let frames_of = |stack: StackId| -> &[Frame] {
        profile_frames
            .and_then(|frames| frames.get(&stack))
            .map_or(&[][..], Vec::as_slice)
    };
    let leaks = &mut findings.leaks;
    let mut uses: BTreeMap<usize, SuppressionUse> = BTreeMap::new();
    let mut kept = Vec::with_capacity(leaks.records.len());
    let mut defaults_used = Amount::default();
    for record in std::mem::take(&mut leaks.records) {
        let frames = frames_of(record.stack);
        // A record with no stack (unsampled blocks, or none recorded) has nothing to match.
        let matched = (!frames.is_empty())
            .then(|| options.suppressions.first_match(record.kind, frames))
            .flatten();
        let Some(index) = matched else {
            kept.push(record);
            continue;
        };
        // The exact blocks: in sampling mode the record is an estimate, and only the sampled
        // blocks of its stack are known to have it.
        let exact = if record.estimated {
            leaks
                .sampled_exact
                .get(&(record.stack, record.kind))
                .copied()
                .unwrap_or_default()
        } else {
            record.amount
        };
        let total = leaks.summary.of_mut(record.kind);
        *total = total.minus(exact);
        leaks.summary.suppressed = leaks.summary.suppressed.plus(exact);
        let suppression = &options.suppressions.list[index];
        if suppression.is_default() {
            defaults_used = defaults_used.plus(exact);
        }
        let used = uses.entry(index).or_insert_with(|| SuppressionUse {
            index,
            name: suppression.name.clone(),
            file: suppression.file.clone(),
            line: suppression.line,
            records: 0,
            amount: Amount::default(),
        });
        used.records += 1;
        used.amount = used.amount.plus(exact);
    }
    leaks.suppressions_used = uses.into_values().collect();

    let mut shown = Vec::with_capacity(kept.len());
    for record in kept {
        let not_shown = &mut leaks.not_shown;
        let slot = if !options.show_kinds.contains(record.kind) {
            &mut not_shown.by_kind
        } else if record.amount.bytes < options.min_bytes {
            &mut not_shown.below_min_bytes
        } else if options.limit.is_some_and(|limit| shown.len() >= limit) {
            &mut not_shown.beyond_limit
        } else {
            shown.push(record);
            continue;
        };
        slot.0 += 1;
        slot.1 = slot.1.plus(record.amount);
        not_shown.records_of[record.kind as usize] += 1;
    }
    leaks.records = shown;

    if !defaults_used.is_zero() {
        findings.add_note(&format!(
            "the default suppressions (memcheck's own: glibc's dynamic thread vectors, kept for each thread's life) suppressed {}; --no-default-suppressions counts them as their kind",
            amount_words(defaults_used)
        ));
    }
    for child in &mut findings.children {
        apply_to(child, options, frames);
    }
}

/// "12 bytes in 1 block".
pub(crate) fn amount_words(amount: Amount) -> String {
    format!(
        "{} {} in {} {}",
        amount.bytes,
        if amount.bytes == 1 { "byte" } else { "bytes" },
        amount.blocks,
        if amount.blocks == 1 {
            "block"
        } else {
            "blocks"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suppressions::parse;
    use crate::{LeakCheck, Leaks, LossRecord, Summary};
    use leakscope_format::LeakKind::{self, *};

    fn record(kind: LeakKind, stack: StackId, bytes: u64, blocks: u64) -> LossRecord {
        LossRecord {
            kind,
            stack,
            amount: Amount { bytes, blocks },
            estimated: false,
        }
    }

    fn named(function: &str) -> Vec<Frame> {
        vec![Frame {
            function: Some(function.to_owned()),
            ..Frame::default()
        }]
    }

    /// A root with three records and a forked child with one.
    fn analysis() -> Analysis {
        let leaks = |records: Vec<LossRecord>| {
            let mut summary = Summary::default();
            for r in &records {
                let total = summary.of_mut(r.kind);
                *total = total.plus(r.amount);
            }
            Leaks {
                records,
                summary,
                leak_check: LeakCheck::complete(),
                ..Leaks::default()
            }
        };
        let child = Findings {
            profile: 1,
            pid: 2,
            leaks: leaks(vec![record(DefinitelyLost, 1, 100, 1)]),
            ..Findings::default()
        };
        let root = Findings {
            profile: 0,
            pid: 1,
            leaks: leaks(vec![
                record(StillReachable, 3, 4096, 2),
                record(DefinitelyLost, 1, 64, 4),
                record(PossiblyLost, 2, 10, 1),
            ]),
            children: vec![child],
            ..Findings::default()
        };
        let gate = Gate::of(&root, GateRule::default());
        Analysis { root, gate }
    }

    fn frames() -> Vec<BTreeMap<StackId, Vec<Frame>>> {
        let root = BTreeMap::from([
            (1, named("make_tree")),
            (2, named("intern")),
            (3, named("cache")),
        ]);
        let child = BTreeMap::from([(1, named("child_work"))]);
        vec![root, child]
    }

    #[test]
    fn suppressed_records_leave_their_kind_for_suppressed_and_count_their_uses() {
        let mut analysis = analysis();
        let options = LeakOptions {
            suppressions: Suppressions {
                list: parse("leak:make_tree\nleak:child_work\nleak:never\n", "t.supp").unwrap(),
            },
            ..LeakOptions::default()
        };
        analysis.apply(&options, &frames());
        let root = &analysis.root.leaks;
        assert_eq!(root.summary.definitely_lost, Amount::default());
        assert_eq!(
            root.summary.suppressed,
            Amount {
                bytes: 64,
                blocks: 4
            }
        );
        assert_eq!(root.records.len(), 2);
        assert_eq!(root.suppressions_used.len(), 1);
        assert_eq!(root.suppressions_used[0].name, "make_tree");
        assert_eq!(root.suppressions_used[0].records, 1);
        let child = &analysis.root.children[0].leaks;
        assert_eq!(
            child.summary.suppressed,
            Amount {
                bytes: 100,
                blocks: 1
            }
        );
        assert_eq!(child.suppressions_used[0].index, 1);
        // Only the possibly lost block is left of the error kinds.
        assert_eq!(
            analysis.gate.lost,
            Amount {
                bytes: 10,
                blocks: 1
            }
        );
        assert_eq!(analysis.gate.records, 1);
        assert!(!analysis.gate.passes());
    }

    #[test]
    fn display_options_hide_records_but_not_their_blocks() {
        let mut analysis = analysis();
        let options = LeakOptions {
            show_kinds: LeakKinds::DEFINITE_POSSIBLE,
            min_bytes: 11,
            ..LeakOptions::default()
        };
        analysis.apply(&options, &frames());
        let root = &analysis.root.leaks;
        assert_eq!(root.records, [record(DefinitelyLost, 1, 64, 4)]);
        assert_eq!(
            root.not_shown.by_kind,
            (
                1,
                Amount {
                    bytes: 4096,
                    blocks: 2
                }
            )
        );
        assert_eq!(
            root.not_shown.below_min_bytes,
            (
                1,
                Amount {
                    bytes: 10,
                    blocks: 1
                }
            )
        );
        assert_eq!(
            root.summary.still_reachable,
            Amount {
                bytes: 4096,
                blocks: 2
            }
        );
        // A hidden record of an error kind is still an error.
        assert_eq!(analysis.gate.records, 3);

        let mut analysis = self::analysis();
        analysis.apply(
            &LeakOptions {
                limit: Some(1),
                ..LeakOptions::default()
            },
            &frames(),
        );
        assert_eq!(analysis.root.leaks.records.len(), 1);
        assert_eq!(analysis.root.leaks.not_shown.beyond_limit.0, 2);
        assert_eq!(analysis.root.leaks.not_shown.total().0, 2);
    }

    #[test]
    fn the_error_kinds_and_growth_decide_the_gate() {
        let mut analysis = analysis();
        let only_reachable = GateRule {
            error_kinds: LeakKinds::of(&[StillReachable]),
            fail_on_growing: false,
        };
        analysis.apply(
            &LeakOptions {
                gate: only_reachable,
                ..LeakOptions::default()
            },
            &frames(),
        );
        assert_eq!(
            analysis.gate.lost,
            Amount {
                bytes: 4096,
                blocks: 2
            }
        );
        assert_eq!(analysis.gate.processes_that_lost, 1);

        let mut clean = Analysis::default();
        clean.root.leaks.leak_check = LeakCheck::complete();
        clean.root.growth.push(crate::SiteGrowth {
            stack: 5,
            verdict: crate::Verdict::Growing,
            bytes_per_s: 1000.0,
            live_bytes_first: 0,
            live_bytes_last: 0,
            live_bytes_peak: 0,
            live_blocks_last: 0,
            confidence: 1.0,
            oldest_block_age_s: None,
            exhaustion_s: None,
        });
        clean.apply(&LeakOptions::default(), &[]);
        assert!(
            clean.gate.passes(),
            "growth fails only with --fail-on growing"
        );
        assert_eq!(clean.gate.growing.len(), 1);
        let fail_on_growing = LeakOptions {
            gate: GateRule {
                fail_on_growing: true,
                ..GateRule::default()
            },
            ..LeakOptions::default()
        };
        clean.apply(&fail_on_growing, &[]);
        assert!(!clean.gate.passes());
    }
}

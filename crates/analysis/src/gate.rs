//! The rule of `--error-exitcode`.

use leakscope_format::StackId;

use crate::growth::Verdict;
use crate::suppressions::LeakKinds;
use crate::{Amount, Findings, GateRule};

/// The rule of `--error-exitcode`, over a whole tree of findings: a run fails when any of its
/// process images has blocks of the error kinds (memcheck's `--errors-for-leak-kinds`,
/// definitely and possibly lost by default; suppressed blocks are of no kind), when the leak
/// check of any of them did not run or may be missing lost blocks (see
/// [`crate::LeakCheck::may_hide_lost_blocks`]), forked children and executed programs
/// included, or, with `--fail-on growing`, when a site's live memory kept growing in any of
/// them. A gate never passes on a check that did not happen. An incomplete check that can
/// only over-report (threads not stopped, memory not read) counts as it is: its lost blocks
/// fail the run, its zero passes. The reports say why it fails
/// (`leakscope_report::gate_failure`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gate {
    /// The rule it was judged by.
    pub rule: GateRule,
    /// The blocks of the error kinds, added up over every process.
    pub lost: Amount,
    /// How many loss records of the error kinds, over every process.
    pub records: u64,
    /// How many processes have blocks of the error kinds.
    pub processes_that_lost: usize,
    /// The processes whose leak check did not run or may be missing lost blocks: pid, and
    /// why ("the leak check did not run: ...").
    pub unchecked: Vec<(u32, String)>,
    /// Every site whose live memory kept growing, in every process (they fail the gate
    /// only with `--fail-on growing`).
    pub growing: Vec<GrowingSite>,
    /// The run left no profile at all, so nothing was checked.
    pub no_profile: bool,
}

/// A growing site, where it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrowingSite {
    /// The process.
    pub pid: u32,
    /// Its profile in the tree (whose frames name `stack`).
    pub profile: usize,
    /// The site.
    pub stack: StackId,
    /// How fast it grew.
    pub bytes_per_s: f64,
}

impl Gate {
    /// Judge an image's findings and those of every image under it by `rule`.
    pub fn of(findings: &Findings, rule: GateRule) -> Gate {
        let mut gate = Gate {
            rule,
            ..Gate::default()
        };
        for process in findings.processes() {
            let leaks = &process.leaks;
            let lost = leaks.of_kinds(rule.error_kinds);
            if !lost.is_zero() {
                gate.lost = gate.lost.plus(lost);
                gate.processes_that_lost += 1;
            }
            // Shown or not, a record of an error kind is an error.
            gate.records += leaks
                .records
                .iter()
                .filter(|record| rule.error_kinds.contains(record.kind))
                .count() as u64;
            gate.records += rule
                .error_kinds
                .kinds()
                .map(|kind| leaks.not_shown.records_of[kind as usize])
                .sum::<u64>();
            if leaks.leak_check.may_hide_lost_blocks() {
                let why = leaks.leak_check.sentence().unwrap_or_default();
                gate.unchecked.push((process.pid, why));
            }
            gate.growing.extend(
                process
                    .growth
                    .iter()
                    .filter(|site| site.verdict == Verdict::Growing)
                    .map(|site| GrowingSite {
                        pid: process.pid,
                        profile: process.profile,
                        stack: site.stack,
                        bytes_per_s: site.bytes_per_s,
                    }),
            );
        }
        gate
    }

    /// The gate of a run that left no profile: it fails, as nothing was checked.
    pub fn without_profile() -> Gate {
        Gate {
            no_profile: true,
            ..Gate::default()
        }
    }

    /// Nothing of the error kinds, every process checked, and, with `--fail-on growing`,
    /// no site growing.
    pub fn passes(&self) -> bool {
        self.lost.is_zero()
            && self.unchecked.is_empty()
            && !self.no_profile
            && (!self.rule.fail_on_growing || self.growing.is_empty())
    }

    /// The error kinds.
    pub fn error_kinds(&self) -> LeakKinds {
        self.rule.error_kinds
    }
}

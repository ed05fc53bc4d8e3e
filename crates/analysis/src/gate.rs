//! The rule of `--error-exitcode`.

use crate::{Amount, Findings};

/// The rule of `--error-exitcode`, over a whole tree of findings: a run fails when any of its
/// process images lost blocks (definitely or indirectly lost), or when the leak check of any
/// of them did not run or may be missing lost blocks (see
/// [`crate::LeakCheck::may_hide_lost_blocks`]), forked children included. A gate never passes
/// on a check that did not happen. An incomplete check that can only over-report (threads not
/// stopped, memory not read) counts as it is: its lost blocks fail the run, its zero passes.
/// The reports say why it fails (`leakscope_report::gate_failure`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// Definitely and indirectly lost, added up over every process.
    pub lost: Amount,
    /// How many processes lost blocks.
    pub processes_that_lost: usize,
    /// The processes whose leak check did not run or may be missing lost blocks: pid, and
    /// why ("the leak check did not run: ...").
    pub unchecked: Vec<(u32, String)>,
    /// The run left no profile at all, so nothing was checked.
    pub no_profile: bool,
}

impl Gate {
    /// Judge an image's findings and those of every image under it.
    pub fn of(findings: &Findings) -> Gate {
        let mut gate = Gate::default();
        for process in findings.processes() {
            let leaks = &process.leaks;
            let lost = leaks.lost();
            if !lost.is_zero() {
                gate.lost = gate.lost.plus(lost);
                gate.processes_that_lost += 1;
            }
            if leaks.leak_check.may_hide_lost_blocks() {
                let why = leaks.leak_check.sentence().unwrap_or_default();
                gate.unchecked.push((process.pid, why));
            }
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

    /// Nothing lost, and every process checked.
    pub fn passes(&self) -> bool {
        self.lost.is_zero() && self.unchecked.is_empty() && !self.no_profile
    }
}

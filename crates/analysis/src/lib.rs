//! Turns a [`Profile`] into [`Findings`]: loss records grouped by stack and kind, sorted
//! largest first, and the totals per kind. No I/O, no printing, no symbols.

use leakscope_format::{LeakKind, Profile, StackId};

/// Bytes and blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    /// Total bytes.
    pub bytes: u64,
    /// Number of blocks.
    pub blocks: u64,
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
    /// Suppressed (always zero until suppressions land).
    pub suppressed: Amount,
}

/// What the analysis found in one profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Loss records, largest first.
    pub records: Vec<LossRecord>,
    /// Totals per kind.
    pub summary: Summary,
}

/// Group, total and sort the leak records of a profile.
pub fn analyze(profile: &Profile) -> Findings {
    let _ = profile;
    todo!("helper implements")
}

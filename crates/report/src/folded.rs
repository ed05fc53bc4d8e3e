//! Folded stacks (`root;caller;callee COUNT`, outermost frame first), the input of
//! flamegraph.pl, inferno and speedscope; and what the stack formats share: which bytes are
//! weighed ([`Weight`]), how a process and a frame are named, and what such a file cannot say
//! ([`stack_caveats`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use leakscope_analysis::{LeakCheckStatus, LossRecord, StartedBy};
use leakscope_format::{Frame, LeakKind};

use crate::{ProcessReport, Report};

/// Which unfreed bytes at exit a stack format weighs each stack by. The names are memcheck's
/// `--show-leak-kinds` words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weight {
    /// Definitely and indirectly lost: what memcheck's "leaked" and `--error-exitcode` count,
    /// and what fixing the definitely lost blocks frees.
    #[default]
    Lost,
    /// Definitely lost only.
    Definite,
    /// Indirectly lost only.
    Indirect,
    /// Possibly lost only.
    Possible,
    /// Still reachable only.
    Reachable,
    /// Everything still allocated at exit, of every kind: Go's "in use" at the end.
    Live,
}

impl Weight {
    /// Does a block of `kind` count in this weight?
    pub fn counts(self, kind: LeakKind) -> bool {
        match self {
            Weight::Lost => matches!(kind, LeakKind::DefinitelyLost | LeakKind::IndirectlyLost),
            Weight::Definite => kind == LeakKind::DefinitelyLost,
            Weight::Indirect => kind == LeakKind::IndirectlyLost,
            Weight::Possible => kind == LeakKind::PossiblyLost,
            Weight::Reachable => kind == LeakKind::StillReachable,
            Weight::Live => true,
        }
    }

    /// What is weighed, in words: "definitely and indirectly lost bytes".
    pub fn words(self) -> &'static str {
        match self {
            Weight::Lost => "definitely and indirectly lost bytes",
            Weight::Definite => "definitely lost bytes",
            Weight::Indirect => "indirectly lost bytes",
            Weight::Possible => "possibly lost bytes",
            Weight::Reachable => "still reachable bytes",
            Weight::Live => "bytes still allocated at exit",
        }
    }

    /// The bytes of a loss record this weight counts.
    fn bytes_of(self, record: &LossRecord) -> u64 {
        if self.counts(record.kind) {
            record.amount.bytes
        } else {
            0
        }
    }
}

/// The frame that stands for a process at the root of its stacks: `pid 4242: ./prog`, with
/// `(after exec)` for an image that an `exec` started, so that it does not merge with the
/// image before it under the same pid.
pub(crate) fn process_frame(report: &ProcessReport) -> String {
    let mut name = format!("pid {}", report.pid);
    if let Some(program) = report.command.first() {
        let _ = write!(name, ": {program}");
    }
    if report.started_by == StartedBy::Exec {
        name.push_str(" (after exec)");
    }
    folded_safe(&name)
}

/// A frame as the text report describes it, without the address: `make (leak.c:7)`,
/// `strdup (in /lib/libc.so.6)`, `/lib/libx.so+0x10`, `run (job.py:5) [python]`, with
/// ` (inlined)` after an inlined one; made safe for the folded format.
pub(crate) fn frame_name(frame: &Frame) -> String {
    folded_safe(&crate::text::frame_without_address(frame))
}

/// What stands for a stack that was not recorded.
pub(crate) const NO_STACK: &str = "[no stack recorded]";

/// `;` separates frames and a line ends the stack: a name keeps neither (a Rust type such as
/// `[u8; 8]` becomes `[u8, 8]`). The count follows the last space, so spaces may stay.
fn folded_safe(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ';' => ',',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Every process image of the report (parents before their children), each stack it weighs,
/// outermost frame first, with the process's frame at the root; identical stacks summed. Sorted
/// by stack, so the same report always gives the same lines.
pub(crate) fn weighed_stacks(report: &Report, weight: Weight) -> BTreeMap<String, u64> {
    let mut stacks = BTreeMap::new();
    for process in ProcessReport::root(report).every() {
        let root = process_frame(&process);
        for record in &process.leaks.records {
            let bytes = weight.bytes_of(record);
            if bytes == 0 {
                continue;
            }
            let frames = process.frames_of(record.stack);
            let mut line = root.clone();
            if frames.is_empty() {
                line.push(';');
                line.push_str(NO_STACK);
            }
            // The report's frames are the allocating one first; folded stacks start outermost.
            for frame in frames.iter().rev() {
                line.push(';');
                line.push_str(&frame_name(frame));
            }
            let total: &mut u64 = stacks.entry(line).or_default();
            *total = total.saturating_add(bytes);
        }
    }
    stacks
}

/// The folded stacks: one `root;...;leaf BYTES` line per distinct stack, sorted. Empty when no
/// process has any of the weighed bytes ([`stack_caveats`] then says so).
pub fn render_folded(report: &Report, weight: Weight) -> String {
    let mut out = String::new();
    for (stack, bytes) in weighed_stacks(report, weight) {
        let _ = writeln!(out, "{stack} {bytes}");
    }
    out
}

/// What a stack format (folded, flamegraph, pprof) cannot show but its reader must know, one
/// sentence each: every leak check that did not run or is incomplete, sampling's estimates,
/// the notes of each process, and an empty result. The text and JSON reports say all of this
/// in place; with the stack formats the CLI prints these on standard error.
pub fn stack_caveats(report: &Report, weight: Weight) -> Vec<String> {
    let mut caveats = Vec::new();
    let mut weighed = 0u64;
    for process in ProcessReport::root(report).every() {
        let who = process_frame(&process);
        let check = &process.leaks.leak_check;
        if let Some(sentence) = check.sentence() {
            let consequence = match check.status() {
                LeakCheckStatus::NotRun => "its blocks are missing from these stacks",
                _ => "its lost figures may be too high",
            };
            caveats.push(format!("{who}: {sentence}; {consequence}"));
        }
        if let Some(rate) = process.leaks.sample_rate {
            let unsampled = process.leaks.unsampled;
            caveats.push(format!(
                "{who}: sampling mode (one stack per {rate} bytes on average): the bytes of each stack are estimates, and {} bytes in {} blocks that were not sampled have no stack and are left out",
                unsampled.bytes, unsampled.blocks
            ));
        }
        if weight == Weight::Live && !process.leaks.runtime_kept.is_zero() {
            caveats.push(format!(
                "{who}: {} bytes that the Python interpreter keeps on purpose are left out (counted as suppressed)",
                process.leaks.runtime_kept.bytes
            ));
        }
        for note in &process.notes {
            caveats.push(format!("{who}: note: {note}"));
        }
        weighed = process
            .leaks
            .records
            .iter()
            .map(|record| weight.bytes_of(record))
            .fold(weighed, u64::saturating_add);
    }
    if weighed == 0 {
        caveats.push(format!(
            "no {} in any process: there is nothing to draw",
            weight.words()
        ));
    }
    caveats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_separators_and_control_characters_only() {
        assert_eq!(folded_safe("drop<[u8; 8]>"), "drop<[u8, 8]>");
        assert_eq!(folded_safe("a\nb\tc"), "a b c");
        assert_eq!(
            folded_safe("std::vector<int, alloc> f (a.cc:3)"),
            "std::vector<int, alloc> f (a.cc:3)"
        );
    }

    #[test]
    fn weights_count_memchecks_kinds() {
        use LeakKind::*;
        let counted = |weight: Weight| {
            LeakKind::ALL
                .into_iter()
                .filter(|&kind| weight.counts(kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(counted(Weight::Lost), [DefinitelyLost, IndirectlyLost]);
        assert_eq!(counted(Weight::Definite), [DefinitelyLost]);
        assert_eq!(counted(Weight::Indirect), [IndirectlyLost]);
        assert_eq!(counted(Weight::Possible), [PossiblyLost]);
        assert_eq!(counted(Weight::Reachable), [StillReachable]);
        assert_eq!(counted(Weight::Live), LeakKind::ALL);
    }
}

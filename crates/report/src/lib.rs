//! Renders findings, frames and run metadata as terminal text or JSON. No classification, no
//! symbolization, no file access: everything arrives in a [`Report`].
//!
//! Both renderers are deterministic: the same report gives the same bytes, with records in
//! the order the findings hold them and no clock read.

mod diff;
mod json;
mod text;

pub use diff::{render_diff_json, render_diff_text, DiffReport};

use std::collections::BTreeMap;

use leakscope_analysis::growth::{GrowthFinding, TimelinePoint};
use leakscope_analysis::{Amount, Findings, LiveScans};
use leakscope_format::{Frame, StackId};

pub use json::JSON_FORMAT_VERSION;

/// How the process ended, as the report shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal ended it.
    pub signal: Option<i32>,
}

/// Everything one report shows about one process.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Process id.
    pub pid: u32,
    /// The command line.
    pub command: Vec<String>,
    /// How it ended.
    pub exit: ExitStatus,
    /// Seconds from start to exit.
    pub duration_s: f64,
    /// What the analysis found.
    pub findings: Findings,
    /// Symbolized frames for every stack the findings and growth verdicts name.
    pub frames: BTreeMap<StackId, Vec<Frame>>,
    /// Verdicts on each site's live memory over time, growing sites first.
    pub growth: Vec<GrowthFinding>,
    /// The process's live memory over time.
    pub timeline: Vec<TimelinePoint>,
    /// Reachability scans made while the program ran.
    pub live_scans: LiveScans,
    /// Notes for the reader (a damaged profile, threads that could not be stopped...).
    pub notes: Vec<String>,
    /// Processes forked by this one, and programs it executed, each with its own report.
    pub children: Vec<Report>,
    /// How this process image came to be.
    pub started_by: StartedBy,
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

/// Options for the text report.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// Use ANSI colours.
    pub color: bool,
}

/// The terminal report, in memcheck's words: one paragraph per loss record, then the LEAK
/// SUMMARY (or "All heap blocks were freed", only after a complete leak check), then the notes,
/// then a section for each child. A leak check that did not run or is incomplete is said so
/// under the process's heading and in its LEAK SUMMARY.
pub fn render_text(report: &Report, options: TextOptions) -> String {
    text::render(report, options)
}

/// The JSON report (the documented contract, `format_version` 1; see `docs/json-report.md`),
/// pretty-printed, ending in a newline.
pub fn render_json(report: &Report) -> String {
    json::render(report)
}

impl Report {
    /// This process and every process below it, parents before their children.
    pub fn processes(&self) -> Vec<&Report> {
        let mut all = vec![self];
        let mut at = 0;
        while at < all.len() {
            let report = all[at];
            all.extend(report.children.iter());
            at += 1;
        }
        all
    }
}

/// The rule of `--error-exitcode`, over a whole report tree: a run fails when any of its
/// processes lost blocks (definitely or indirectly lost), or when the leak check of any of
/// them did not run or may be missing lost blocks (see
/// [`leakscope_analysis::LeakCheck::may_hide_lost_blocks`]). A gate never passes on a check
/// that did not happen. An incomplete check that can only over-report (threads not stopped,
/// memory not read) counts as it is: its lost blocks fail the run, its zero passes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// Definitely and indirectly lost, added up over every process.
    pub lost: Amount,
    /// How many processes lost blocks.
    pub processes_that_lost: usize,
    /// The processes whose leak check did not run or may be missing lost blocks: pid, and
    /// why ("the leak check did not run: ...").
    pub unchecked: Vec<(u32, String)>,
}

impl Gate {
    /// Judge a report and its children.
    pub fn of(report: &Report) -> Gate {
        let mut gate = Gate::default();
        for process in report.processes() {
            let findings = &process.findings;
            let lost = findings.lost();
            if !lost.is_zero() {
                gate.lost = gate.lost.plus(lost);
                gate.processes_that_lost += 1;
            }
            if findings.leak_check.may_hide_lost_blocks() {
                let why = findings.leak_check.sentence().unwrap_or_default();
                gate.unchecked.push((process.pid, why));
            }
        }
        gate
    }

    /// Nothing lost, and every process checked.
    pub fn passes(&self) -> bool {
        self.lost.is_zero() && self.unchecked.is_empty()
    }

    /// Why the gate fails, in one sentence; `None` when it passes.
    pub fn failure(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.lost.is_zero() {
            parts.push(format!(
                "{} {} ({} bytes) definitely or indirectly lost in {} {}",
                text::thousands(self.lost.blocks),
                if self.lost.blocks == 1 {
                    "block"
                } else {
                    "blocks"
                },
                text::thousands(self.lost.bytes),
                self.processes_that_lost,
                if self.processes_that_lost == 1 {
                    "process"
                } else {
                    "processes"
                }
            ));
        }
        for (pid, why) in &self.unchecked {
            parts.push(format!("in process {pid}, {why}"));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

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
use leakscope_analysis::{Findings, LiveScans};
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
    /// Processes forked by this one, each with its own report.
    pub children: Vec<Report>,
}

/// Options for the text report.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// Use ANSI colours.
    pub color: bool,
}

/// The terminal report, in memcheck's words: one paragraph per loss record, then the LEAK
/// SUMMARY (or "All heap blocks were freed"), then the notes, then a section for each child.
pub fn render_text(report: &Report, options: TextOptions) -> String {
    text::render(report, options)
}

/// The JSON report (the documented contract, `format_version` 1; see `docs/json-report.md`),
/// pretty-printed, ending in a newline.
pub fn render_json(report: &Report) -> String {
    json::render(report)
}

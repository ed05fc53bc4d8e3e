//! Renders the analysis's findings and their frames as terminal text, JSON or an HTML page. No
//! classification, no symbolization, no file access: everything arrives in a [`Report`]; the
//! decisions (what is shown, the cap on bounded sites, the exit status, the gate) were made
//! by `leakscope-analysis`.
//!
//! Both renderers are deterministic: the same report gives the same bytes, with records in
//! the order the findings hold them and no clock read.

mod diff;
mod html;
mod java;
mod json;
mod text;

pub use diff::{render_diff_json, render_diff_text, DiffReport};

use std::collections::BTreeMap;

use leakscope_analysis::{Findings, Gate};
use leakscope_format::{Frame, StackId};

pub use json::JSON_FORMAT_VERSION;

/// The symbolized frames of the stacks one profile's findings name.
pub type Frames = BTreeMap<StackId, Vec<Frame>>;

/// What a report shows: the findings of a whole run and the frames of the stacks they name.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The root image's findings, with the images under it.
    pub findings: Findings,
    /// Per profile of the run (indexed by [`Findings::profile`]), the symbolized frames of
    /// every stack its findings name. A stack with no frames here is shown without frames.
    pub frames: Vec<Frames>,
}

impl Report {
    /// The report of a run's findings, with the frames of each profile of the tree (indexed
    /// by [`Findings::profile`]) and the symbolizer's notes, which go to the root's notes
    /// (each once).
    pub fn new(mut findings: Findings, frames: Vec<Frames>, symbol_notes: &[String]) -> Report {
        for note in symbol_notes {
            findings.add_note(note);
        }
        Report { findings, frames }
    }
}

/// One process image's part of a report: its findings and its profile's frames.
#[derive(Clone, Copy)]
pub(crate) struct ProcessReport<'a> {
    pub(crate) findings: &'a Findings,
    pub(crate) frames: &'a Frames,
    every_frames: &'a [Frames],
}

impl<'a> ProcessReport<'a> {
    /// The root's part of `report`.
    pub(crate) fn root(report: &'a Report) -> Self {
        Self::of(&report.findings, &report.frames)
    }

    fn of(findings: &'a Findings, every_frames: &'a [Frames]) -> Self {
        static NO_FRAMES: Frames = BTreeMap::new();
        ProcessReport {
            findings,
            frames: every_frames.get(findings.profile).unwrap_or(&NO_FRAMES),
            every_frames,
        }
    }

    /// The parts of the images shown under this one.
    pub(crate) fn children(&self) -> impl Iterator<Item = ProcessReport<'a>> + 'a {
        let every_frames = self.every_frames;
        self.findings
            .children
            .iter()
            .map(move |child| Self::of(child, every_frames))
    }

    /// The frames of one stack (none if it was not symbolized).
    pub(crate) fn frames_of(&self, stack: StackId) -> &'a [Frame] {
        self.frames.get(&stack).map_or(&[][..], Vec::as_slice)
    }
}

impl std::ops::Deref for ProcessReport<'_> {
    type Target = Findings;

    fn deref(&self) -> &Findings {
        self.findings
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

/// The HTML report: one self-contained page (styles, script and data inline; nothing is
/// fetched) with the verdict, charts of memory over time, expanding tables of leaks and sites,
/// and flamegraphs of lost bytes and of live bytes at a chosen moment. The moments and the
/// series of the listed sites come from [`leakscope_analysis::Detail`]: analyse with
/// [`leakscope_analysis::Options::detail`] to have them.
pub fn render_html(report: &Report) -> String {
    html::render(report)
}

/// Why the gate of `--error-exitcode` fails, in one sentence; `None` when it passes.
pub fn gate_failure(gate: &Gate) -> Option<String> {
    if gate.no_profile {
        return Some("the leak check did not run".to_owned());
    }
    let mut parts = Vec::new();
    if !gate.lost.is_zero() {
        parts.push(format!(
            "{} {} ({} bytes) definitely or indirectly lost in {} {}",
            text::thousands(gate.lost.blocks),
            if gate.lost.blocks == 1 {
                "block"
            } else {
                "blocks"
            },
            text::thousands(gate.lost.bytes),
            gate.processes_that_lost,
            if gate.processes_that_lost == 1 {
                "process"
            } else {
                "processes"
            }
        ));
    }
    for (pid, why) in &gate.unchecked {
        parts.push(format!("in process {pid}, {why}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

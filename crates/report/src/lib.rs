//! Renders the analysis's findings and their frames as terminal text, JSON, an HTML page,
//! folded stacks, an SVG flamegraph or a pprof profile (docs/formats.md). No
//! classification, no symbolization, no file access: everything arrives in a [`Report`]; the
//! decisions (what is shown, the cap on bounded sites, the exit status, the gate) were made
//! by `leakscope-analysis`.
//!
//! Every renderer is deterministic: the same report gives the same bytes, with records in
//! the order the findings hold them and no clock read.

mod diff;
mod flamegraph;
mod folded;
mod html;
mod java;
mod json;
mod pprof;
mod text;

pub use diff::{render_diff_json, render_diff_text, DiffReport};
pub use flamegraph::render_flamegraph;
pub use folded::{render_folded, stack_caveats, Weight};
pub use pprof::{render_pprof, SAMPLE_TYPES as PPROF_SAMPLE_TYPES};

use std::collections::BTreeMap;

use leakscope_analysis::{Findings, Gate};
use leakscope_format::{Frame, Module, Profile, StackId};

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
    /// The gate of `--error-exitcode` over the whole tree: its error kinds decide what the
    /// summary line counts as leaks, and it lists the growing sites.
    pub gate: Gate,
    /// Per profile of the run (indexed by [`Findings::profile`]), what pprof's header and
    /// mappings carry. Empty when not known: the pprof profile then has no start time and no
    /// mappings.
    pub facts: Vec<ProfileFacts>,
}

/// What one profile says about its process beyond the findings, which no judgement needs but
/// pprof carries: when the process started and where its modules were loaded.
#[derive(Clone, Debug, Default)]
pub struct ProfileFacts {
    /// When the agent started in the process, in nanoseconds since the Unix epoch.
    pub start_unix_ns: Option<u64>,
    /// The modules the process loaded, in the order the agent saw them (the executable first).
    pub modules: Vec<Module>,
}

impl ProfileFacts {
    /// The facts of one profile.
    pub fn of(profile: &Profile) -> ProfileFacts {
        ProfileFacts {
            start_unix_ns: profile
                .process
                .as_ref()
                .map(|process| process.start_unix_ns)
                .filter(|&ns| ns != 0),
            modules: profile.modules.clone(),
        }
    }
}

impl Report {
    /// The report of a run's findings, with the frames of each profile of the tree (indexed
    /// by [`Findings::profile`]) and the symbolizer's notes, which go to the root's notes
    /// (each once).
    pub fn new(mut findings: Findings, frames: Vec<Frames>, symbol_notes: &[String]) -> Report {
        for note in symbol_notes {
            findings.add_note(note);
        }
        Report {
            findings,
            frames,
            gate: Gate::default(),
            facts: Vec::new(),
        }
    }

    /// The report with the facts of each profile of the tree (in the order of
    /// [`Report::frames`]).
    pub fn with_facts(mut self, facts: Vec<ProfileFacts>) -> Report {
        self.facts = facts;
        self
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

    /// This image and every image below it, parents before their children.
    pub(crate) fn every(&self) -> Vec<ProcessReport<'a>> {
        let mut all = vec![*self];
        let mut at = 0;
        while at < all.len() {
            let children: Vec<_> = all[at].children().collect();
            all.extend(children);
            at += 1;
        }
        all
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
    /// List each suppression used, per process (memcheck's `-v` `used_suppression:` lines).
    pub verbose: bool,
    /// After each loss record, a memcheck suppression that matches it.
    pub gen_suppressions: bool,
    /// Only the one-line summary.
    pub quiet: bool,
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

/// Why the gate of `--error-exitcode` fails, in one sentence; `None` when it passes. The
/// growing sites (with `--fail-on growing`) are named by their first frame in `report`.
pub fn gate_failure(gate: &Gate, report: &Report) -> Option<String> {
    if gate.no_profile {
        return Some("the leak check did not run".to_owned());
    }
    if gate.passes() {
        return None;
    }
    let mut parts = Vec::new();
    if !gate.lost.is_zero() {
        parts.push(format!(
            "{} ({}) {} in {}",
            text::count(gate.lost.blocks, "block", "blocks"),
            text::count(gate.lost.bytes, "byte", "bytes"),
            text::kinds_words(gate.error_kinds()),
            text::count(gate.processes_that_lost as u64, "process", "processes"),
        ));
    }
    for (pid, why) in &gate.unchecked {
        parts.push(format!("in process {pid}, {why}"));
    }
    if gate.rule.fail_on_growing {
        for site in &gate.growing {
            let frames = report
                .frames
                .get(site.profile)
                .and_then(|frames| frames.get(&site.stack))
                .map_or(&[][..], Vec::as_slice);
            parts.push(format!(
                "a site growing at {}/s in process {} (--fail-on growing): {}",
                text::human_bytes(site.bytes_per_s),
                site.pid,
                text::site_words(frames)
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

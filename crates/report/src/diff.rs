//! The `leakscope diff` report: which sites' live memory grew most between two profiles or two
//! moments of one, as Python's `tracemalloc` `compare_to` lists them.

use std::fmt::Write as _;

use serde::Serialize;

use leakscope_analysis::diff::SiteDelta;
use leakscope_analysis::{Compared, Diff, DiffSide};
use leakscope_format::Frame;

use crate::text::{render_frames, thousands, Style};
use crate::Frames;

/// What the diff report shows.
#[derive(Clone, Debug)]
pub struct DiffReport {
    /// The old profile (or the only one), as the report names it.
    pub old_name: String,
    /// The new profile: given when two profiles were compared ([`Compared::Ends`]; a report
    /// without it names the new profile `?`).
    pub new_name: Option<String>,
    /// What the analysis found.
    pub diff: Diff,
    /// The frames of the stacks the diff shows from the old profile.
    pub old_frames: Frames,
    /// The frames of the stacks the diff shows from the new profile.
    pub new_frames: Frames,
}

impl DiffReport {
    /// What was compared, in words ("a.profile at its end -> b.profile at its end").
    fn compared(&self) -> String {
        match (self.diff.compared, &self.new_name) {
            (Compared::Moments { from_s, to_s }, _) => format!(
                "{} from {from_s:.1} s to {to_s:.1} s (largest growth first)",
                self.old_name
            ),
            (Compared::Ends, new_name) => format!(
                "{} at its end -> {} at its end (largest growth first)",
                self.old_name,
                new_name.as_deref().unwrap_or("?")
            ),
        }
    }

    /// The sites, each with its frames.
    fn sites(&self) -> impl Iterator<Item = (&SiteDelta, &[Frame])> {
        self.diff.sites.iter().map(|site| {
            let frames = match site.shown {
                Some((DiffSide::Old, stack)) => self.old_frames.get(&stack),
                Some((DiffSide::New, stack)) => self.new_frames.get(&stack),
                None => None,
            };
            (&site.delta, frames.map_or(&[][..], Vec::as_slice))
        })
    }
}

/// The text form.
pub fn render_diff_text(report: &DiffReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Live memory per site: {}", report.compared());
    if report.diff.sites.is_empty() {
        let _ = writeln!(out, "No site's live memory changed.");
        return out;
    }
    for (delta, frames) in report.sites() {
        out.push('\n');
        let _ = writeln!(
            out,
            "{:+} bytes ({:+} blocks): {} -> {} bytes, {} -> {} blocks",
            delta.bytes_delta,
            delta.blocks_delta,
            thousands(delta.bytes_before),
            thousands(delta.bytes_after),
            thousands(delta.blocks_before),
            thousands(delta.blocks_after),
        );
        render_frames(&mut out, frames, &Style { color: false });
    }
    out
}

#[derive(Serialize)]
struct DiffDocument<'a> {
    format_version: u32,
    compared: String,
    sites: Vec<SiteJson<'a>>,
}

#[derive(Serialize)]
struct SiteJson<'a> {
    bytes_before: u64,
    bytes_after: u64,
    bytes_delta: i64,
    blocks_before: u64,
    blocks_after: u64,
    blocks_delta: i64,
    stack: Vec<crate::json::FrameJson<'a>>,
}

/// The JSON form (documented in docs/json-report.md, "The diff report").
pub fn render_diff_json(report: &DiffReport) -> String {
    let document = DiffDocument {
        format_version: crate::json::JSON_FORMAT_VERSION,
        compared: report.compared(),
        sites: report
            .sites()
            .map(|(delta, frames)| SiteJson {
                bytes_before: delta.bytes_before,
                bytes_after: delta.bytes_after,
                bytes_delta: delta.bytes_delta,
                blocks_before: delta.blocks_before,
                blocks_after: delta.blocks_after,
                blocks_delta: delta.blocks_delta,
                stack: frames.iter().map(crate::json::FrameJson::from).collect(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

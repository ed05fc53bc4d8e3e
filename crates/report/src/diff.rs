//! The `leakscope diff` report: which sites' live memory grew most between two profiles or two
//! moments of one, as Python's `tracemalloc` `compare_to` lists them, native sites first, then
//! the JavaScript sites of each Node.js isolate.

use std::fmt::Write as _;

use serde::Serialize;

use leakscope_analysis::diff::SiteDelta;
use leakscope_analysis::{Compared, Diff, DiffSide, ScriptIsolateDelta};
use leakscope_format::Frame;

use crate::text::{isolate_name, render_frames, render_script_frames, thousands, Style};
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
    for isolate in &report.diff.scripts {
        render_script_isolate(&mut out, isolate);
    }
    out
}

/// One isolate's JavaScript sites: estimates, as in the run's report, and no blocks (V8's
/// sampling heap profiler counts bytes).
fn render_script_isolate(out: &mut String, isolate: &ScriptIsolateDelta) {
    let _ = writeln!(
        out,
        "\nJavaScript, {}: estimated live bytes per allocation site (V8's sampling heap profiler)",
        isolate_name(isolate.thread)
    );
    if isolate.sites.is_empty() {
        let _ = writeln!(out, "No JavaScript site's live bytes changed.");
    }
    for site in &isolate.sites {
        out.push('\n');
        let _ = writeln!(
            out,
            "{:+} bytes: {} -> {} bytes",
            site.bytes_delta,
            thousands(site.bytes_before),
            thousands(site.bytes_after),
        );
        render_script_frames(out, &site.frames);
    }
}

#[derive(Serialize)]
struct DiffDocument<'a> {
    format_version: u32,
    compared: String,
    sites: Vec<SiteJson<'a>>,
    scripts: Vec<ScriptIsolateJson<'a>>,
}

#[derive(Serialize)]
struct ScriptIsolateJson<'a> {
    runtime: &'static str,
    thread: u32,
    sites: Vec<ScriptSiteJson<'a>>,
}

#[derive(Serialize)]
struct ScriptSiteJson<'a> {
    bytes_before: u64,
    bytes_after: u64,
    bytes_delta: i64,
    stack: Vec<crate::json::ScriptFrameJson<'a>>,
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
        scripts: report
            .diff
            .scripts
            .iter()
            .map(|isolate| ScriptIsolateJson {
                runtime: "node",
                thread: isolate.thread,
                sites: isolate
                    .sites
                    .iter()
                    .map(|site| ScriptSiteJson {
                        bytes_before: site.bytes_before,
                        bytes_after: site.bytes_after,
                        bytes_delta: site.bytes_delta,
                        stack: crate::json::script_frames(&site.frames),
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakscope_analysis::{ScriptFrame, ScriptSiteDelta};

    fn frame(function: &str, url: &str, line: u32, column: u32) -> ScriptFrame {
        ScriptFrame {
            function: function.to_owned(),
            url: url.to_owned(),
            line,
            column,
        }
    }

    fn report(scripts: Vec<ScriptIsolateDelta>) -> DiffReport {
        DiffReport {
            old_name: "a.profile".to_owned(),
            new_name: Some("b.profile".to_owned()),
            diff: Diff {
                compared: Compared::Ends,
                sites: Vec::new(),
                scripts,
            },
            old_frames: Frames::default(),
            new_frames: Frames::default(),
        }
    }

    /// The JavaScript sites follow the native ones, per isolate, their frames as the run's
    /// report renders JavaScript frames; no JavaScript side, no section.
    #[test]
    fn javascript_sites_follow_the_native_ones_per_isolate() {
        let grown = ScriptSiteDelta {
            frames: vec![
                frame("Array", "", 0, 0),
                frame("keepRecord", "/app/s.js", 7, 20),
            ],
            bytes_before: 32768,
            bytes_after: 1_081_344,
            bytes_delta: 1_048_576,
        };
        let with_scripts = report(vec![
            ScriptIsolateDelta {
                thread: 0,
                sites: vec![grown],
            },
            ScriptIsolateDelta {
                thread: 2,
                sites: Vec::new(),
            },
        ]);
        assert_eq!(
            render_diff_text(&with_scripts),
            "Live memory per site: a.profile at its end -> b.profile at its end (largest growth first)\n\
             No site's live memory changed.\n\
             \n\
             JavaScript, main thread: estimated live bytes per allocation site (V8's sampling heap profiler)\n\
             \n\
             +1048576 bytes: 32,768 -> 1,081,344 bytes\n   \
             at Array (native) [javascript]\n   \
             by keepRecord (/app/s.js:7:20) [javascript]\n\
             \n\
             JavaScript, worker thread 2: estimated live bytes per allocation site (V8's sampling heap profiler)\n\
             No JavaScript site's live bytes changed.\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_diff_json(&with_scripts)).unwrap();
        assert_eq!(
            json["scripts"],
            serde_json::json!([
                {
                    "runtime": "node",
                    "thread": 0,
                    "sites": [{
                        "bytes_before": 32768,
                        "bytes_after": 1081344,
                        "bytes_delta": 1048576,
                        "stack": [
                            {"kind": "javascript", "address": null, "function": "Array", "file": null, "line": null, "column": null, "module": null, "module_offset": null, "inlined": false},
                            {"kind": "javascript", "address": null, "function": "keepRecord", "file": "/app/s.js", "line": 7, "column": 20, "module": null, "module_offset": null, "inlined": false}
                        ]
                    }]
                },
                {"runtime": "node", "thread": 2, "sites": []}
            ])
        );

        let native_only = report(Vec::new());
        assert!(!render_diff_text(&native_only).contains("JavaScript"));
        let json: serde_json::Value =
            serde_json::from_str(&render_diff_json(&native_only)).unwrap();
        assert_eq!(json["scripts"], serde_json::json!([]));
    }
}

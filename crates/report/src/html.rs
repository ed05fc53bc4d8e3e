//! The HTML report: one self-contained page (no request leaves it: styles, script and data are
//! inline) that draws the run: the verdict, live heap and RSS over time with the listed sites
//! as lines, lost bytes over the live scans, leak groups and sites as tables that expand to
//! their stacks, and flamegraphs of lost bytes and of live bytes at a chosen moment.
//!
//! The page is a fixed template (`html/`) and one JSON object, the [`Page`], that its script
//! renders. The data is shaped for size, not for reading (the JSON report is the readable
//! contract): frames are interned once per process and stacks are lists of frame indices, so a
//! profile with 100,000 stacks embeds each frame's name once and each stack as a few numbers.
//! The script draws the flamegraph on a canvas and skips every frame narrower than half a
//! pixel, and the tables show their first rows until asked for more, so the page stays fast
//! whatever the number of stacks (docs/decisions/0012-html-report.md).

use std::collections::HashMap;

use leakscope_analysis::{LossRecord, MomentKind};
use leakscope_format::{Frame, FrameKind, LeakKind, StackId};
use serde::Serialize;

use crate::json::finite as round;
use crate::{ProcessReport, Report};

const TEMPLATE: &str = include_str!("html/report.html");
const STYLE: &str = include_str!("html/report.css");
const SCRIPT: &str = include_str!("html/report.js");

/// Everything the page's script draws.
#[derive(Serialize)]
struct Page<'a> {
    tool_version: &'static str,
    /// Every process image of the run, the root first, each parent before its children.
    processes: Vec<ProcessPage<'a>>,
}

#[derive(Serialize)]
struct ProcessPage<'a> {
    pid: u32,
    /// Index in `processes` of the image it is shown under (`null` for the root).
    parent: Option<usize>,
    started_by: &'static str,
    command: &'a [String],
    exit_code: Option<i32>,
    exit_signal: Option<i32>,
    duration_s: Option<f64>,
    leak_check: &'static str,
    leak_check_reasons: Vec<String>,
    /// `[bytes, blocks]` per kind: definitely, indirectly, possibly lost, still reachable,
    /// suppressed.
    summary: [[u64; 2]; 5],
    sample_rate: Option<u64>,
    /// `[label, location, kind]`: the function (or module and offset), where it is (file and
    /// line, or the module), and `n` (native), `p` (Python) or another kind's first letter.
    frames: Vec<[String; 3]>,
    /// The stacks as a tree of call paths from the outermost frame, flat: node `i` is
    /// `nodes[2i]` (how far back its parent node is: `i - parent`, 0 at the outermost frame;
    /// mostly 1, which keeps the page small) and `nodes[2i + 1]` (its frame). A parent comes
    /// before its children. Everything below names a stack by the node of its innermost frame
    /// (-1: a stack with no frames).
    nodes: Vec<i64>,
    /// `[kind (0..3 as in summary), bytes, blocks, stack node, estimated (0/1)]`, largest
    /// first.
    leaks: Vec<[i64; 5]>,
    growth: Vec<GrowthPage>,
    /// `[t_s, live_bytes, rss_bytes]`.
    timeline: Vec<(f64, u64, u64)>,
    /// `[t_s, definitely, indirectly, possibly lost bytes, pause_ms]` of completed scans.
    live_scans: Vec<(f64, u64, u64, u64, f64)>,
    lost_growth: Vec<LostGrowthPage>,
    moments: Vec<MomentPage>,
    /// The JavaScript side, per isolate (Node.js).
    scripts: Vec<ScriptPage>,
    /// The JVM's classes, if a JVM was watched.
    java: Option<JavaPage>,
    notes: &'a [String],
}

#[derive(Serialize)]
struct ScriptPage {
    thread: u32,
    version: String,
    heap_limit: u64,
    heap_used: u64,
    samples: usize,
    sampling_bytes: u64,
    sites: Vec<ScriptSitePage>,
    listeners: Vec<ListenerPage>,
    errors: Vec<String>,
    /// `[t_s, heap_used, pause_ms]` of each heap snapshot taken.
    snapshots: Vec<(f64, u64, f64)>,
    /// Whether the last two snapshots were compared.
    compared: bool,
    constructors: Vec<ConstructorPage>,
}

/// A constructor that grew between the heap snapshots.
#[derive(Serialize)]
struct ConstructorPage {
    /// `Request`, or `closure handle (script:line:column)`.
    name: String,
    growing: bool,
    /// `[instances, bytes]` before and after.
    before: [u64; 2],
    after: [u64; 2],
    new_instances: u64,
    /// `Map.table → (array)[3] → Request`; empty if none was searched.
    path: String,
    held_alike: u64,
    /// The index in `sites` of the growing site that allocates it.
    site: Option<usize>,
}

#[derive(Serialize)]
struct ScriptSitePage {
    verdict: &'static str,
    bytes_per_s: f64,
    live_bytes_last: u64,
    live_bytes_peak: u64,
    heap_exhaustion_s: Option<f64>,
    exhaustion_s: Option<f64>,
    /// `[function, "script:line:column"]`, innermost first.
    frames: Vec<[String; 2]>,
    series: Vec<(f64, u64)>,
}

#[derive(Serialize)]
struct ListenerPage {
    emitter: String,
    event: String,
    verdict: &'static str,
    per_s: f64,
    listeners_last: u64,
    added: u64,
    /// `[adds, frames]`.
    stacks: Vec<(u64, Vec<[String; 2]>)>,
}

#[derive(Serialize)]
struct JavaPage {
    status: &'static str,
    reason: Option<String>,
    version: Option<String>,
    collector: Option<String>,
    max_heap_bytes: Option<u64>,
    histograms: usize,
    /// `[median, longest, total]` pause in ms, if measured.
    pauses_ms: Option<[f64; 3]>,
    /// `[t_s, bytes]` of the whole Java heap at each histogram.
    heap: Vec<(f64, u64)>,
    classes: Vec<JavaClassPage>,
}

#[derive(Serialize)]
struct JavaClassPage {
    class: String,
    verdict: &'static str,
    bytes_per_s: f64,
    instances_per_s: f64,
    instances_last: u64,
    bytes_last: u64,
    heap_exhaustion_s: Option<f64>,
    /// The path from a GC root, as the text report words it.
    held_by: Option<String>,
    /// The sampled objects' class and their allocation stack, innermost first.
    allocated: Option<(String, Vec<String>)>,
    series: Vec<(f64, u64)>,
}

fn java_page(java: &leakscope_analysis::java::JavaFindings) -> JavaPage {
    JavaPage {
        status: java.status.json_name(),
        reason: java.reason.clone(),
        version: java.version.clone(),
        collector: java.collector.clone(),
        max_heap_bytes: java.max_heap_bytes,
        histograms: java.heap.len(),
        pauses_ms: java.pauses.as_ref().map(|p| {
            [
                round(p.median_ms, 1),
                round(p.max_ms, 1),
                round(p.total_ms, 1),
            ]
        }),
        heap: java
            .heap
            .iter()
            .map(|h| (round(h.t_s, 3), h.bytes))
            .collect(),
        classes: java
            .classes
            .iter()
            .map(|c| JavaClassPage {
                class: crate::java::readable_class(&c.class),
                verdict: c.verdict.json_name(),
                bytes_per_s: round(c.bytes_per_s, 1),
                instances_per_s: round(c.instances_per_s, 1),
                instances_last: c.instances_last,
                bytes_last: c.bytes_last,
                heap_exhaustion_s: c
                    .heap_exhaustion_s
                    .filter(|s| s.is_finite())
                    .map(f64::round),
                held_by: c.held_by.as_ref().map(crate::java::describe_path),
                allocated: c.allocated_at.as_ref().map(|site| {
                    (
                        crate::java::readable_class(&site.sampled_class),
                        site.frames
                            .iter()
                            .map(crate::java::describe_frame)
                            .collect(),
                    )
                }),
                series: c.series.iter().map(|&(t, b)| (round(t, 3), b)).collect(),
            })
            .collect(),
    }
}

fn script_frames(frames: &[leakscope_analysis::ScriptFrame]) -> Vec<[String; 2]> {
    frames
        .iter()
        .map(|f| {
            let place = match (f.url.is_empty(), f.line) {
                (true, _) => "native".to_owned(),
                (false, 0) => f.url.clone(),
                (false, line) => format!("{}:{line}:{}", f.url, f.column),
            };
            [f.function.clone(), place]
        })
        .collect()
}

fn script_page(isolate: &leakscope_analysis::ScriptIsolate) -> ScriptPage {
    ScriptPage {
        thread: isolate.thread,
        version: isolate.version.clone(),
        heap_limit: isolate.heap_limit,
        heap_used: isolate.heap_used_last,
        samples: isolate.samples,
        sampling_bytes: isolate.sampling_bytes,
        sites: isolate
            .sites
            .iter()
            .map(|site| ScriptSitePage {
                verdict: site.verdict.json_name(),
                bytes_per_s: round(site.bytes_per_s, 1),
                live_bytes_last: site.live_bytes_last,
                live_bytes_peak: site.live_bytes_peak,
                heap_exhaustion_s: site
                    .heap_exhaustion_s
                    .filter(|s| s.is_finite())
                    .map(f64::round),
                exhaustion_s: site.exhaustion_s.filter(|s| s.is_finite()).map(f64::round),
                frames: script_frames(&site.frames),
                series: site.series.iter().map(|&(t, b)| (round(t, 3), b)).collect(),
            })
            .collect(),
        listeners: isolate
            .listeners
            .iter()
            .map(|l| ListenerPage {
                emitter: l.emitter.clone(),
                event: l.event.clone(),
                verdict: l.verdict.json_name(),
                per_s: round(l.per_s, 2),
                listeners_last: l.listeners_last,
                added: l.added,
                stacks: l
                    .stacks
                    .iter()
                    .map(|(adds, frames)| (*adds, script_frames(frames)))
                    .collect(),
            })
            .collect(),
        errors: isolate.errors.clone(),
        snapshots: isolate
            .snapshots
            .iter()
            .filter_map(|s| Some((round(s.t_s, 3), s.heap_used, round(s.pause_ms?, 1))))
            .collect(),
        compared: isolate.comparison.is_some(),
        constructors: isolate
            .comparison
            .iter()
            .flat_map(|c| &c.groups)
            .map(|constructor| {
                let group = &constructor.growth;
                ConstructorPage {
                    name: match &group.location {
                        Some(l) => {
                            format!("closure {} ({}:{}:{})", group.name, l.url, l.line, l.column)
                        }
                        None => group.name.clone(),
                    },
                    growing: group.growing,
                    before: [group.before.instances, group.before.bytes],
                    after: [group.after.instances, group.after.bytes],
                    new_instances: group.new.instances,
                    path: if group.retainer_path.is_empty() {
                        String::new()
                    } else {
                        leakscope_analysis::heap_snapshot::path_text(group)
                    },
                    held_alike: group.held_alike,
                    site: constructor.site,
                }
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct GrowthPage {
    verdict: &'static str,
    bytes_per_s: f64,
    live_bytes_last: u64,
    live_bytes_peak: u64,
    live_blocks_last: u64,
    confidence: f64,
    oldest_block_age_s: Option<f64>,
    exhaustion_s: Option<f64>,
    stack: i64,
    /// `[t_s, live_bytes]`, for the sites drawn on the timeline; empty for the others.
    series: Vec<(f64, u64)>,
}

#[derive(Serialize)]
struct LostGrowthPage {
    kind: &'static str,
    bytes_per_s: f64,
    stack: i64,
    series: Vec<(f64, u64)>,
}

#[derive(Serialize)]
struct MomentPage {
    t_s: f64,
    kind: &'static str,
    live_bytes: u64,
    /// Flat pairs: stack node, live bytes.
    sites: Vec<i64>,
}

/// The page for `report`.
pub(crate) fn render(report: &Report) -> String {
    let mut processes = Vec::new();
    add_process(&mut processes, &ProcessReport::root(report), None);
    let page = Page {
        tool_version: env!("CARGO_PKG_VERSION"),
        processes,
    };
    let data = serde_json::to_string(&page)
        .expect("the page model serializes to JSON: no maps with non-string keys");
    // Inside <script>, only `</` (which could close the element) and `<!--` (which changes
    // how the parser reads script text) are dangerous; both only occur inside JSON strings,
    // where `\/` and `\u003c` mean the same characters.
    let data = data.replace("</", "<\\/").replace("<!--", "\\u003c!--");
    let title = format!(
        "leakscope: {}",
        escape_html(&report.findings.command.join(" "))
    );
    fill(
        TEMPLATE,
        &[
            ("title", &title),
            ("style", STYLE),
            ("script", SCRIPT),
            ("data", &data),
        ],
    )
}

/// `template` with each `{{name}}` replaced by its value, in one pass (a value that happens
/// to contain another placeholder's text stays as it is).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(length) = rest[start..].find("}}") else {
            break;
        };
        let name = &rest[start + 2..start + length];
        match values.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => {
                out.push_str(&rest[..start]);
                out.push_str(value);
            }
            None => out.push_str(&rest[..start + length + 2]),
        }
        rest = &rest[start + length + 2..];
    }
    out.push_str(rest);
    out
}

fn add_process<'a>(
    processes: &mut Vec<ProcessPage<'a>>,
    report: &ProcessReport<'a>,
    parent: Option<usize>,
) {
    let mut frames = FrameTable::default();
    let findings = report.findings;
    let leaks = &findings.leaks;
    let amount = |kind: LeakKind| {
        let a = leaks.summary.of(kind);
        [a.bytes, a.blocks]
    };
    let detail = findings.detail.as_ref();
    let series_of = |stack: StackId| {
        detail
            .and_then(|d| d.series.iter().find(|s| s.stack == stack))
            .map(|s| s.points.iter().map(|&(t, b)| (round(t, 3), b)).collect())
            .unwrap_or_default()
    };
    let page = ProcessPage {
        pid: findings.pid,
        parent,
        started_by: findings.started_by.json_name(),
        command: &findings.command,
        exit_code: findings.exit.code,
        exit_signal: findings.exit.signal,
        duration_s: (findings.duration_s.is_finite() && findings.duration_s >= 0.0)
            .then(|| round(findings.duration_s, 3)),
        leak_check: leaks.leak_check.status().json_name(),
        leak_check_reasons: leaks.leak_check.reasons(),
        summary: [
            amount(LeakKind::DefinitelyLost),
            amount(LeakKind::IndirectlyLost),
            amount(LeakKind::PossiblyLost),
            amount(LeakKind::StillReachable),
            [
                leaks.summary.suppressed.bytes,
                leaks.summary.suppressed.blocks,
            ],
        ],
        sample_rate: leaks.sample_rate,
        leaks: leaks
            .records
            .iter()
            .map(|record: &LossRecord| {
                [
                    kind_index(record.kind),
                    clamp(record.amount.bytes),
                    clamp(record.amount.blocks),
                    frames.stack(report, record.stack),
                    i64::from(record.estimated),
                ]
            })
            .collect(),
        growth: findings
            .growth
            .iter()
            .map(|site| GrowthPage {
                verdict: site.verdict.json_name(),
                bytes_per_s: round(site.bytes_per_s, 1),
                live_bytes_last: site.live_bytes_last,
                live_bytes_peak: site.live_bytes_peak,
                live_blocks_last: site.live_blocks_last,
                confidence: round(site.confidence, 3),
                oldest_block_age_s: site.oldest_block_age_s.map(|s| round(s, 3)),
                exhaustion_s: site
                    .exhaustion_s
                    .filter(|s| s.is_finite())
                    .map(|s| s.round()),
                stack: frames.stack(report, site.stack),
                series: series_of(site.stack),
            })
            .collect(),
        timeline: findings
            .timeline
            .iter()
            .map(|p| (round(p.t_s, 3), p.live_bytes, p.rss_bytes))
            .collect(),
        live_scans: findings
            .live_scans
            .points
            .iter()
            .filter(|p| p.outcome == leakscope_format::LiveScanOutcome::Done)
            .map(|p| {
                (
                    round(p.t_s, 3),
                    p.of(LeakKind::DefinitelyLost).bytes,
                    p.of(LeakKind::IndirectlyLost).bytes,
                    p.of(LeakKind::PossiblyLost).bytes,
                    round(p.pause_s * 1e3, 3),
                )
            })
            .collect(),
        lost_growth: findings
            .live_scans
            .lost_growing
            .iter()
            .map(|g| LostGrowthPage {
                kind: g.kind.json_name(),
                bytes_per_s: round(g.bytes_per_s, 1),
                stack: frames.stack(report, g.stack),
                series: g.series.iter().map(|&(t, b)| (round(t, 3), b)).collect(),
            })
            .collect(),
        moments: detail
            .map(|d| {
                d.moments
                    .iter()
                    .map(|m| MomentPage {
                        t_s: round(m.t_s, 3),
                        kind: match m.kind {
                            MomentKind::Even => "even",
                            MomentKind::Peak => "peak",
                            MomentKind::Last => "last",
                        },
                        live_bytes: m.live_bytes,
                        sites: m
                            .sites
                            .iter()
                            .flat_map(|s| [frames.stack(report, s.stack), clamp(s.bytes)])
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        scripts: findings.scripts.iter().map(script_page).collect(),
        java: findings.java.as_ref().map(java_page),
        notes: &findings.notes,
        frames: Vec::new(),
        nodes: Vec::new(),
    };
    let index = processes.len();
    processes.push(ProcessPage {
        frames: frames.frames,
        nodes: frames.nodes,
        ..page
    });
    for child in report.children() {
        add_process(processes, &child, Some(index));
    }
}

/// A process's frames, each stored once, and its stacks as a tree of call paths (stacks that
/// share their outer frames share those nodes: 100,000 stacks of 20 frames that differ in a
/// few take far fewer than 2,000,000 entries).
#[derive(Default)]
struct FrameTable {
    frames: Vec<[String; 3]>,
    frame_index: HashMap<[String; 3], u32>,
    /// Flat (distance back to the parent, frame) pairs, as [`ProcessPage::nodes`].
    nodes: Vec<i64>,
    node_index: HashMap<(i64, u32), i64>,
    stack_node: HashMap<StackId, i64>,
}

impl FrameTable {
    /// The node of `stack`'s innermost frame, adding its path on first sight (-1 for a
    /// stack without frames).
    fn stack(&mut self, report: &ProcessReport, stack: StackId) -> i64 {
        if let Some(&node) = self.stack_node.get(&stack) {
            return node;
        }
        let mut node = -1;
        for frame in report.frames_of(stack).iter().rev() {
            let frame = self.frame(frame);
            node = match self.node_index.get(&(node, frame)) {
                Some(&existing) => existing,
                None => {
                    let added = (self.nodes.len() / 2) as i64;
                    let back = if node < 0 { 0 } else { added - node };
                    self.nodes.extend([back, i64::from(frame)]);
                    self.node_index.insert((node, frame), added);
                    added
                }
            };
        }
        self.stack_node.insert(stack, node);
        node
    }

    fn frame(&mut self, frame: &Frame) -> u32 {
        let key = [
            label(frame),
            location(frame),
            kind_letter(frame.kind).to_owned(),
        ];
        if let Some(&index) = self.frame_index.get(&key) {
            return index;
        }
        let index = self.frames.len() as u32;
        self.frames.push(key.clone());
        self.frame_index.insert(key, index);
        index
    }
}

/// What a frame is called on the page: its function, else its module and offset, else its
/// address.
fn label(frame: &Frame) -> String {
    if let Some(function) = &frame.function {
        return function.clone();
    }
    match (&frame.module, frame.module_offset) {
        (Some(module), Some(offset)) => format!("{}+{offset:#x}", basename(module)),
        (Some(module), None) => basename(module).to_owned(),
        _ => format!("{:#x}", frame.address),
    }
}

/// Where a frame is: file and line, else the module.
fn location(frame: &Frame) -> String {
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.clone(),
        _ => frame.module.clone().unwrap_or_default(),
    }
}

fn kind_letter(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Native => "n",
        FrameKind::Python => "p",
        FrameKind::JavaScript => "j",
        FrameKind::Java => "J",
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A count as a JSON-safe number (JavaScript reads integers exactly up to 2^53).
fn clamp(value: u64) -> i64 {
    value.min(1 << 53) as i64
}

fn kind_index(kind: LeakKind) -> i64 {
    match kind {
        LeakKind::DefinitelyLost => 0,
        LeakKind::IndirectlyLost => 1,
        LeakKind::PossiblyLost => 2,
        LeakKind::StillReachable => 3,
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill("<{{a}}|{{b}}|{{c}}>", &[("a", "{{b}}"), ("b", "x")]),
            "<{{b}}|x|{{c}}>"
        );
    }

    #[test]
    fn data_cannot_close_its_script_element() {
        let report = Report {
            findings: leakscope_analysis::Findings {
                command: vec!["</script><script>alert(1)</script>".into(), "<!--".into()],
                ..Default::default()
            },
            frames: vec![Default::default()],
            ..Report::default()
        };
        let html = render(&report);
        let data_start = html.find("id=\"leakscope-data\"").unwrap();
        let data = &html[data_start..];
        let data = &data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()];
        assert!(!data.contains("</"), "{data}");
        assert!(!data.contains("<!--"), "{data}");
        let page: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(
            page["processes"][0]["command"][0],
            "</script><script>alert(1)</script>"
        );
        assert!(html.contains("<title>leakscope: &lt;/script&gt;"));
    }

    #[test]
    fn frames_and_stacks_are_stored_once() {
        let frame = |function: &str| Frame {
            function: Some(function.into()),
            file: Some("leak.c".into()),
            line: Some(7),
            ..Frame::default()
        };
        let mut frames = crate::Frames::new();
        frames.insert(1, vec![frame("leak"), frame("main")]);
        frames.insert(2, vec![frame("other"), frame("main")]);
        let findings = leakscope_analysis::Findings::default();
        let every = vec![frames];
        let report = ProcessReport {
            findings: &findings,
            frames: &every[0],
            every_frames: &every,
        };
        let mut table = FrameTable::default();
        // main is node 0; leak (frame 1) under it node 1; other (frame 2) node 2.
        assert_eq!(table.stack(&report, 1), 1);
        assert_eq!(table.stack(&report, 2), 2);
        assert_eq!(table.stack(&report, 1), 1);
        assert_eq!(table.stack(&report, 3), -1, "no frames");
        assert_eq!(table.nodes, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(table.frames.len(), 3);
        assert_eq!(
            table.frames[1],
            ["leak".to_owned(), "leak.c:7".to_owned(), "n".to_owned()]
        );
    }
}

//! The JSON report: the contract of `docs/json-report.md` and `docs/schema/report.v1.json`.
//!
//! The structs below are the wire format. Their field names are the contract: fields may be
//! added, none renamed or removed without a new [`JSON_FORMAT_VERSION`].

use serde::Serialize;

use leakscope_analysis::{Amount, LossRecord, Summary};
use leakscope_format::{Frame, FrameKind};

use crate::{ProcessReport, Report};

/// The `format_version` of the JSON report this crate writes.
pub const JSON_FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    format_version: u32,
    tool: Tool,
    pid: u32,
    command: &'a [String],
    started_by: &'static str,
    exit: ExitJson,
    duration_s: Option<f64>,
    leak_check: LeakCheckJson,
    summary: SummaryJson,
    sampling: Option<Sampling>,
    leaks: Vec<LeakJson<'a>>,
    leaks_not_shown: NotShownJson,
    suppressions_used: Vec<SuppressionUseJson<'a>>,
    growth: Vec<GrowthJson<'a>>,
    timeline: Vec<TimelineJson>,
    live_scans: Vec<LiveScanJson>,
    lost_growth: Vec<LostGrowthJson<'a>>,
    notes: &'a [String],
    runtimes: Vec<RuntimeJson>,
    scripts: Vec<ScriptIsolateJson<'a>>,
    /// The JVM's classes (absent when no JVM was watched: docs/json-report.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    java: Option<crate::java::JavaJson<'a>>,
    children: Vec<Document<'a>>,
}

/// The loss records `--show-leak-kinds`, `--min-bytes` and `--limit` left out of `leaks`.
#[derive(Serialize)]
struct NotShownJson {
    records: u64,
    bytes: u64,
    blocks: u64,
}

/// One suppression that matched loss records of this process.
#[derive(Serialize)]
struct SuppressionUseJson<'a> {
    name: &'a str,
    file: &'a str,
    line: usize,
    records: u64,
    bytes: u64,
    blocks: u64,
}

#[derive(Serialize)]
struct ScriptIsolateJson<'a> {
    runtime: &'static str,
    pid: u32,
    thread: u32,
    version: &'a str,
    argv: &'a [String],
    heap_limit_bytes: u64,
    heap_used_bytes: u64,
    sampling_bytes: u64,
    samples: usize,
    ended: Option<&'a str>,
    sites: Vec<ScriptSiteJson<'a>>,
    listeners: Vec<ListenerJson<'a>>,
    errors: &'a [String],
    heap_snapshots: Vec<HeapSnapshotJson<'a>>,
    heap_comparison: Option<HeapComparisonJson<'a>>,
}

/// One heap snapshot the preload took or skipped.
#[derive(Serialize)]
struct HeapSnapshotJson<'a> {
    n: u32,
    t_s: f64,
    heap_used_bytes: u64,
    pause_ms: Option<f64>,
    skipped: Option<&'a str>,
}

/// What grew between the isolate's last two heap snapshots.
#[derive(Serialize)]
struct HeapComparisonJson<'a> {
    compared: [u32; 2],
    nodes_before: u64,
    nodes_after: u64,
    constructors: Vec<ConstructorJson<'a>>,
}

#[derive(Serialize)]
struct ConstructorJson<'a> {
    name: &'a str,
    kind: &'a str,
    location: Option<ScriptLocationJson<'a>>,
    growing: bool,
    instances_before: u64,
    instances_after: u64,
    bytes_before: u64,
    bytes_after: u64,
    new_instances: u64,
    new_bytes: u64,
    retainer_path: Vec<RetainerStepJson<'a>>,
    retainer_path_text: Option<String>,
    held_alike: u64,
    site: Option<usize>,
}

#[derive(Serialize)]
struct ScriptLocationJson<'a> {
    file: Option<&'a str>,
    line: u32,
    column: u32,
}

#[derive(Serialize)]
struct RetainerStepJson<'a> {
    holder: &'a str,
    edge_type: &'a str,
    edge: &'a str,
}

#[derive(Serialize)]
struct ScriptSiteJson<'a> {
    verdict: &'static str,
    bytes_per_s: f64,
    live_bytes_last: u64,
    live_bytes_peak: u64,
    confidence: f64,
    heap_exhaustion_s: Option<f64>,
    exhaustion_s: Option<f64>,
    stack: Vec<ScriptFrameJson<'a>>,
}

#[derive(Serialize)]
struct ListenerJson<'a> {
    emitter: &'a str,
    event: &'a str,
    verdict: &'static str,
    per_s: f64,
    listeners_last: u64,
    added: u64,
    confidence: f64,
    stacks: Vec<ListenerStackJson<'a>>,
}

#[derive(Serialize)]
struct ListenerStackJson<'a> {
    adds: u64,
    stack: Vec<ScriptFrameJson<'a>>,
}

/// A JavaScript frame: the fields of [`FrameJson`] (no address, no module) and its column.
#[derive(Serialize)]
pub(crate) struct ScriptFrameJson<'a> {
    kind: &'static str,
    address: Option<String>,
    function: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
    column: Option<u32>,
    module: Option<&'a str>,
    module_offset: Option<String>,
    inlined: bool,
}

pub(crate) fn script_frames(
    frames: &[leakscope_analysis::ScriptFrame],
) -> Vec<ScriptFrameJson<'_>> {
    frames
        .iter()
        .map(|frame| ScriptFrameJson {
            kind: "javascript",
            address: None,
            function: &frame.function,
            file: (!frame.url.is_empty()).then_some(frame.url.as_str()),
            line: (frame.line > 0).then_some(frame.line),
            column: (frame.column > 0).then_some(frame.column),
            module: None,
            module_offset: None,
            inlined: false,
        })
        .collect()
}

fn script_isolate(isolate: &leakscope_analysis::ScriptIsolate) -> ScriptIsolateJson<'_> {
    ScriptIsolateJson {
        runtime: "node",
        pid: isolate.pid,
        thread: isolate.thread,
        version: &isolate.version,
        argv: &isolate.argv,
        heap_limit_bytes: isolate.heap_limit,
        heap_used_bytes: isolate.heap_used_last,
        sampling_bytes: isolate.sampling_bytes,
        samples: isolate.samples,
        ended: isolate.ended.as_deref(),
        sites: isolate
            .sites
            .iter()
            .map(|site| ScriptSiteJson {
                verdict: site.verdict.json_name(),
                bytes_per_s: finite(site.bytes_per_s, 1),
                live_bytes_last: site.live_bytes_last,
                live_bytes_peak: site.live_bytes_peak,
                confidence: finite(site.confidence, 3),
                heap_exhaustion_s: site.heap_exhaustion_s.map(|s| finite(s, 0)),
                exhaustion_s: site.exhaustion_s.map(|s| finite(s, 0)),
                stack: script_frames(&site.frames),
            })
            .collect(),
        listeners: isolate
            .listeners
            .iter()
            .map(|l| ListenerJson {
                emitter: &l.emitter,
                event: &l.event,
                verdict: l.verdict.json_name(),
                per_s: finite(l.per_s, 2),
                listeners_last: l.listeners_last,
                added: l.added,
                confidence: finite(l.confidence, 3),
                stacks: l
                    .stacks
                    .iter()
                    .map(|(adds, frames)| ListenerStackJson {
                        adds: *adds,
                        stack: script_frames(frames),
                    })
                    .collect(),
            })
            .collect(),
        errors: &isolate.errors,
        heap_snapshots: isolate
            .snapshots
            .iter()
            .map(|snapshot| HeapSnapshotJson {
                n: snapshot.n,
                t_s: finite(snapshot.t_s, 3),
                heap_used_bytes: snapshot.heap_used,
                pause_ms: snapshot.pause_ms.map(|ms| finite(ms, 1)),
                skipped: snapshot.skipped.as_deref(),
            })
            .collect(),
        heap_comparison: isolate
            .comparison
            .as_ref()
            .map(|comparison| HeapComparisonJson {
                compared: [comparison.compared.0, comparison.compared.1],
                nodes_before: comparison.nodes_before,
                nodes_after: comparison.nodes_after,
                constructors: comparison
                    .groups
                    .iter()
                    .map(|constructor| {
                        let group = &constructor.growth;
                        ConstructorJson {
                            name: &group.name,
                            kind: &group.kind,
                            location: group.location.as_ref().map(|l| ScriptLocationJson {
                                file: (!l.url.is_empty()).then_some(l.url.as_str()),
                                line: l.line,
                                column: l.column,
                            }),
                            growing: group.growing,
                            instances_before: group.before.instances,
                            instances_after: group.after.instances,
                            bytes_before: group.before.bytes,
                            bytes_after: group.after.bytes,
                            new_instances: group.new.instances,
                            new_bytes: group.new.bytes,
                            retainer_path: group
                                .retainer_path
                                .iter()
                                .map(|step| RetainerStepJson {
                                    holder: &step.holder,
                                    edge_type: &step.edge_type,
                                    edge: &step.edge,
                                })
                                .collect(),
                            retainer_path_text: (!group.retainer_path.is_empty())
                                .then(|| leakscope_analysis::heap_snapshot::path_text(group)),
                            held_alike: group.held_alike,
                            site: constructor.site,
                        }
                    })
                    .collect(),
            }),
    }
}

#[derive(Serialize)]
struct RuntimeJson {
    name: &'static str,
    version: String,
    frames_recorded: bool,
    objects_tracked_from_s: Option<f64>,
    finalizing_at_s: Option<f64>,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct ExitJson {
    code: Option<i32>,
    signal: Option<i32>,
}

#[derive(Serialize)]
struct LeakCheckJson {
    status: &'static str,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct AmountJson {
    bytes: u64,
    blocks: u64,
}

impl From<Amount> for AmountJson {
    fn from(amount: Amount) -> Self {
        AmountJson {
            bytes: amount.bytes,
            blocks: amount.blocks,
        }
    }
}

#[derive(Serialize)]
struct SummaryJson {
    definitely_lost: AmountJson,
    indirectly_lost: AmountJson,
    possibly_lost: AmountJson,
    still_reachable: AmountJson,
    suppressed: AmountJson,
}

impl From<&Summary> for SummaryJson {
    fn from(summary: &Summary) -> Self {
        SummaryJson {
            definitely_lost: summary.definitely_lost.into(),
            indirectly_lost: summary.indirectly_lost.into(),
            possibly_lost: summary.possibly_lost.into(),
            still_reachable: summary.still_reachable.into(),
            suppressed: summary.suppressed.into(),
        }
    }
}

#[derive(Serialize)]
struct GrowthJson<'a> {
    verdict: &'static str,
    bytes_per_s: f64,
    live_bytes_first: u64,
    live_bytes_last: u64,
    live_bytes_peak: u64,
    live_blocks_last: u64,
    confidence: f64,
    oldest_block_age_s: Option<f64>,
    exhaustion_s: Option<f64>,
    stack: Vec<FrameJson<'a>>,
}

#[derive(Serialize)]
struct TimelineJson {
    t_s: f64,
    live_bytes: u64,
    live_blocks: u64,
    rss_bytes: u64,
}

#[derive(Serialize)]
struct LiveScanJson {
    t_s: f64,
    trigger: &'static str,
    outcome: &'static str,
    pause_ms: f64,
    duration_ms: f64,
    threads_stopped: u32,
    threads_missed: u32,
    live_blocks: u64,
    definitely_lost: AmountJson,
    indirectly_lost: AmountJson,
    possibly_lost: AmountJson,
    still_reachable: AmountJson,
}

#[derive(Serialize)]
struct LostGrowthJson<'a> {
    kind: &'static str,
    bytes_per_s: f64,
    bytes_first: u64,
    bytes_last: u64,
    series: Vec<LostPointJson>,
    stack: Vec<FrameJson<'a>>,
}

#[derive(Serialize)]
struct LostPointJson {
    t_s: f64,
    bytes: u64,
}

fn live_scan_json(point: &leakscope_analysis::LiveScanPoint) -> LiveScanJson {
    use leakscope_format::{LeakKind, LiveScanOutcome, LiveScanTrigger};
    LiveScanJson {
        t_s: finite(point.t_s, 3),
        trigger: match point.trigger {
            LiveScanTrigger::Schedule => "schedule",
            LiveScanTrigger::OnDemand => "on_demand",
        },
        outcome: match point.outcome {
            LiveScanOutcome::Done => "done",
            LiveScanOutcome::ThreadsMissed => "threads_missed",
            LiveScanOutcome::NoMemory => "no_memory",
        },
        pause_ms: finite(point.pause_s * 1e3, 3),
        duration_ms: finite(point.duration_s * 1e3, 3),
        threads_stopped: point.threads_stopped,
        threads_missed: point.threads_missed,
        live_blocks: point.live_blocks,
        definitely_lost: point.of(LeakKind::DefinitelyLost).into(),
        indirectly_lost: point.of(LeakKind::IndirectlyLost).into(),
        possibly_lost: point.of(LeakKind::PossiblyLost).into(),
        still_reachable: point.of(LeakKind::StillReachable).into(),
    }
}

/// A number JSON can carry (no NaN or infinity), rounded for readability.
pub(crate) fn finite(value: f64, decimals: i32) -> f64 {
    if !value.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[derive(Serialize)]
struct Sampling {
    rate_bytes: u64,
    unsampled: AmountJson,
}

#[derive(Serialize)]
struct LeakJson<'a> {
    kind: &'static str,
    bytes: u64,
    blocks: u64,
    estimated: bool,
    loss_record: usize,
    stack: Vec<FrameJson<'a>>,
}

#[derive(Serialize)]
pub(crate) struct FrameJson<'a> {
    /// `native`, `python`, `javascript` or `java`.
    kind: &'static str,
    /// The return address of a native frame; `null` for an interpreter frame.
    address: Option<String>,
    function: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    module: Option<&'a str>,
    module_offset: Option<String>,
    inlined: bool,
}

impl<'a> From<&'a Frame> for FrameJson<'a> {
    fn from(frame: &'a Frame) -> Self {
        FrameJson {
            kind: frame.kind.name(),
            address: (frame.kind == FrameKind::Native).then(|| format!("{:#x}", frame.address)),
            function: frame.function.as_deref(),
            file: frame.file.as_deref(),
            line: frame.line,
            module: frame.module.as_deref(),
            module_offset: frame.module_offset.map(|offset| format!("{offset:#x}")),
            inlined: frame.inlined,
        }
    }
}

pub(crate) fn render(report: &Report) -> String {
    let mut json = serde_json::to_string_pretty(&document(&ProcessReport::root(report)))
        .expect("the report model serializes to JSON: no maps with non-string keys");
    json.push('\n');
    json
}

fn document<'a>(report: &ProcessReport<'a>) -> Document<'a> {
    Document {
        format_version: JSON_FORMAT_VERSION,
        tool: Tool {
            name: "leakscope",
            version: env!("CARGO_PKG_VERSION"),
        },
        pid: report.findings.pid,
        command: &report.findings.command,
        started_by: report.findings.started_by.json_name(),
        exit: ExitJson {
            code: report.findings.exit.code,
            signal: report.findings.exit.signal,
        },
        // JSON has no NaN or infinity; a duration that is not a real one is unknown.
        duration_s: (report.findings.duration_s.is_finite() && report.findings.duration_s >= 0.0)
            .then_some(report.findings.duration_s),
        leak_check: LeakCheckJson {
            status: report.findings.leaks.leak_check.status().json_name(),
            reasons: report.findings.leaks.leak_check.reasons(),
        },
        summary: (&report.findings.leaks.summary).into(),
        sampling: report
            .findings
            .leaks
            .sample_rate
            .map(|rate_bytes| Sampling {
                rate_bytes,
                unsampled: report.findings.leaks.unsampled.into(),
            }),
        leaks: report
            .findings
            .leaks
            .records
            .iter()
            .enumerate()
            .map(|(index, record)| leak(report, record, index + 1))
            .collect(),
        leaks_not_shown: {
            let (records, amount) = report.findings.leaks.not_shown.total();
            NotShownJson {
                records,
                bytes: amount.bytes,
                blocks: amount.blocks,
            }
        },
        suppressions_used: report
            .findings
            .leaks
            .suppressions_used
            .iter()
            .map(|used| SuppressionUseJson {
                name: &used.name,
                file: &used.file,
                line: used.line,
                records: used.records,
                bytes: used.amount.bytes,
                blocks: used.amount.blocks,
            })
            .collect(),
        growth: report
            .findings
            .growth
            .iter()
            .map(|site| GrowthJson {
                verdict: site.verdict.json_name(),
                bytes_per_s: finite(site.bytes_per_s, 1),
                live_bytes_first: site.live_bytes_first,
                live_bytes_last: site.live_bytes_last,
                live_bytes_peak: site.live_bytes_peak,
                live_blocks_last: site.live_blocks_last,
                confidence: finite(site.confidence, 3),
                oldest_block_age_s: site.oldest_block_age_s.map(|s| finite(s, 3)),
                exhaustion_s: site.exhaustion_s.map(|s| finite(s, 0)),
                stack: frames_of(report, site.stack),
            })
            .collect(),
        timeline: report
            .findings
            .timeline
            .iter()
            .map(|point| TimelineJson {
                t_s: finite(point.t_s, 3),
                live_bytes: point.live_bytes,
                live_blocks: point.live_blocks,
                rss_bytes: point.rss_bytes,
            })
            .collect(),
        live_scans: report
            .findings
            .live_scans
            .points
            .iter()
            .map(live_scan_json)
            .collect(),
        lost_growth: report
            .findings
            .live_scans
            .lost_growing
            .iter()
            .map(|growth| LostGrowthJson {
                kind: growth.kind.json_name(),
                bytes_per_s: finite(growth.bytes_per_s, 1),
                bytes_first: growth.bytes_first(),
                bytes_last: growth.bytes_last(),
                series: growth
                    .series
                    .iter()
                    .map(|&(t_s, bytes)| LostPointJson {
                        t_s: finite(t_s, 3),
                        bytes,
                    })
                    .collect(),
                stack: frames_of(report, growth.stack),
            })
            .collect(),
        notes: &report.findings.notes,
        runtimes: report
            .findings
            .runtimes
            .iter()
            .map(|r| RuntimeJson {
                name: r.name,
                version: r.version.clone(),
                frames_recorded: r.frames_recorded,
                objects_tracked_from_s: r.objects_tracked_from_s.map(|t| finite(t, 3)),
                finalizing_at_s: r.finalizing_at_s.map(|t| finite(t, 3)),
            })
            .collect(),
        scripts: report.findings.scripts.iter().map(script_isolate).collect(),
        java: report.findings.java.as_ref().map(crate::java::json),
        children: report.children().map(|child| document(&child)).collect(),
    }
}

fn leak<'a>(report: &ProcessReport<'a>, record: &LossRecord, loss_record: usize) -> LeakJson<'a> {
    LeakJson {
        kind: record.kind.json_name(),
        bytes: record.amount.bytes,
        blocks: record.amount.blocks,
        estimated: record.estimated,
        loss_record,
        stack: frames_of(report, record.stack),
    }
}

fn frames_of<'a>(
    report: &ProcessReport<'a>,
    stack: leakscope_format::StackId,
) -> Vec<FrameJson<'a>> {
    report
        .frames_of(stack)
        .iter()
        .map(FrameJson::from)
        .collect()
}

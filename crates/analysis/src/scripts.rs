//! The JavaScript side of a Node.js process, from the records of leakscope's preload
//! (`ScriptRecord` chunks; their shapes are in docs/decisions/0014-node.md): per isolate (the
//! main thread and each worker thread), the verdict of every JavaScript allocation site on
//! its sampled live bytes, with its rate and the time until the V8 heap limit and the
//! machine's memory would be used up, and the verdict of every (emitter class, event) pair on
//! its count of listeners, with the stacks that added them: a listener leak named as one;
//! and, from the comparison of its two heap snapshots (`heap_growth`, by
//! [`crate::heap_snapshot`]), the constructors that grew between them with their retainer
//! paths, each tied to a growing site where one allocates it.

use std::collections::BTreeMap;

use leakscope_format::Profile;
use serde::Deserialize;

use crate::growth::{classify, classify_with_floor, Verdict};
use crate::heap_snapshot::{GroupGrowth, HeapGrowth};

/// A listener count must rise by at least this many to be growing (Node warns at 11
/// listeners of one event on one emitter).
pub const MIN_RISE_LISTENERS: f64 = 10.0;

/// Sites listed per isolate: every growing or plateau site, then the largest bounded ones up
/// to this many.
pub const BOUNDED_SCRIPT_SITES_SHOWN: usize = 10;

/// One JavaScript frame.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(from = "(String, String, u32, u32)")]
pub struct ScriptFrame {
    /// The function's name (`(anonymous)` for none).
    pub function: String,
    /// The script's URL or path (empty for native code).
    pub url: String,
    /// 1-based line (0 if unknown).
    pub line: u32,
    /// 1-based column (0 if unknown).
    pub column: u32,
}

impl From<(String, String, u32, u32)> for ScriptFrame {
    fn from((function, url, line, column): (String, String, u32, u32)) -> Self {
        ScriptFrame {
            function,
            url,
            line,
            column,
        }
    }
}

/// One allocation site's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptSite {
    /// Innermost first.
    pub frames: Vec<ScriptFrame>,
    /// What its sampled live bytes did.
    pub verdict: Verdict,
    /// Theil–Sen slope of its live bytes, bytes per second.
    pub bytes_per_s: f64,
    /// Its live bytes at the last sample (an estimate: what the sampled objects stand for).
    pub live_bytes_last: u64,
    /// The most at any sample.
    pub live_bytes_peak: u64,
    /// How sure the verdict is, 0..1.
    pub confidence: f64,
    /// Growing only: seconds until the V8 heap limit is reached at this rate.
    pub heap_exhaustion_s: Option<f64>,
    /// Growing only: seconds until the machine's available memory is used up at this rate.
    pub exhaustion_s: Option<f64>,
    /// Its live bytes over time: (seconds since start, bytes).
    pub series: Vec<(f64, u64)>,
}

/// Listeners of one event on the emitters of one class.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerGrowth {
    /// The emitter's class (`EventEmitter`, `Socket`, `Server`...).
    pub emitter: String,
    /// The event.
    pub event: String,
    /// What the count of listeners did.
    pub verdict: Verdict,
    /// Listeners added per second (the slope of the count).
    pub per_s: f64,
    /// Listeners at the last sample, over every live emitter of the class.
    pub listeners_last: u64,
    /// Listeners ever added (removed ones included).
    pub added: u64,
    /// How sure the verdict is, 0..1.
    pub confidence: f64,
    /// The stacks that added them (of the adds that were sampled: the first 16, then one in
    /// 64), with how many adds each, most first.
    pub stacks: Vec<(u64, Vec<ScriptFrame>)>,
}

/// One isolate's findings.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptIsolate {
    /// The process.
    pub pid: u32,
    /// Node's thread id (0: the main thread).
    pub thread: u32,
    /// `v20.20.2`.
    pub version: String,
    /// The script and its arguments (main thread only).
    pub argv: Vec<String>,
    /// V8's heap limit, bytes.
    pub heap_limit: u64,
    /// V8's used heap at the last sample, bytes.
    pub heap_used_last: u64,
    /// The sampling heap profiler's mean distance between samples, bytes.
    pub sampling_bytes: u64,
    /// Samples taken.
    pub samples: usize,
    /// Growing sites first (fastest first), then plateaus, then the largest bounded ones.
    pub sites: Vec<ScriptSite>,
    /// Growing pairs first, then the rest by listeners.
    pub listeners: Vec<ListenerGrowth>,
    /// What the preload could not do (the heap profiler refused to start, say).
    pub errors: Vec<String>,
    /// How the isolate's recording ended (`exit`, `SIGTERM`...), if it did.
    pub ended: Option<String>,
    /// The heap snapshots taken or skipped, early (1) first.
    pub snapshots: Vec<SnapshotTaken>,
    /// The comparison of the last two snapshots, if two were taken.
    pub comparison: Option<SnapshotComparison>,
}

/// One heap snapshot the preload took, or skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotTaken {
    /// 1, 2, 3... in the order taken (at the 10th, 20th, 40th... sample).
    pub n: u32,
    /// When, s since the process started.
    pub t_s: f64,
    /// V8's used heap just before it, bytes.
    pub heap_used: u64,
    /// How long the isolate stood still for it (taken ones).
    pub pause_ms: Option<f64>,
    /// Why it was not taken (the heap was above the limit...).
    pub skipped: Option<String>,
}

/// What grew between an isolate's last two heap snapshots.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotComparison {
    /// Their numbers ([`SnapshotTaken::n`]).
    pub compared: (u32, u32),
    /// Nodes of the early and the late snapshot.
    pub nodes_before: u64,
    pub nodes_after: u64,
    /// The groups whose bytes rose most, largest rise first.
    pub groups: Vec<ConstructorGrowth>,
}

/// One constructor's (or closure's) growth, and the growing site that allocates it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstructorGrowth {
    /// Its counts in both snapshots and its retainer path.
    pub growth: GroupGrowth,
    /// The index in [`ScriptIsolate::sites`] of the growing site that probably allocates it
    /// (see `allocating_site`).
    pub site: Option<usize>,
}

/// A `listeners` record's row: (emitter class, event, listeners now, adds so far, the sampled
/// adds per stack id).
type ListenerRow = (String, String, u64, u64, Vec<(u32, u64)>);

/// One heap sample: time (s since start), V8's used heap, (site id, live bytes).
type HeapSample = (f64, u64, Vec<(u32, f64)>);

/// One (class, event) pair's listener counts over time, adds so far, sampled adds per stack.
type ListenerSeries = (Vec<(f64, u64)>, u64, Vec<(u32, u64)>);

#[derive(Deserialize)]
#[serde(tag = "k")]
enum Record {
    #[serde(rename = "start")]
    Start {
        th: u32,
        #[serde(default)]
        t: Option<f64>,
        node: String,
        heap_limit: u64,
        sampling_bytes: u64,
        #[serde(default)]
        argv: Vec<String>,
    },
    #[serde(rename = "site")]
    Site {
        th: u32,
        id: u32,
        frames: Vec<ScriptFrame>,
    },
    #[serde(rename = "heap")]
    Heap {
        th: u32,
        t: f64,
        used: u64,
        /// Taken as the isolate ended: not part of the series the verdicts judge.
        #[serde(default)]
        r#final: bool,
        sites: Vec<(u32, f64)>,
    },
    #[serde(rename = "lstack")]
    ListenerStack {
        th: u32,
        id: u32,
        frames: Vec<ScriptFrame>,
    },
    #[serde(rename = "listeners")]
    Listeners {
        th: u32,
        t: f64,
        #[serde(default)]
        r#final: bool,
        counts: Vec<ListenerRow>,
    },
    #[serde(rename = "error")]
    Error {
        th: u32,
        what: String,
        message: String,
    },
    #[serde(rename = "end")]
    End { th: u32, how: String },
    #[serde(rename = "snapshot")]
    Snapshot {
        th: u32,
        t: f64,
        n: u32,
        used: u64,
        #[serde(default)]
        pause_ms: Option<f64>,
        #[serde(default)]
        skipped: Option<String>,
    },
    /// Written by `leakscope run` from the isolate's two snapshots.
    #[serde(rename = "heap_growth")]
    HeapGrowth {
        th: u32,
        /// The `n` of the two snapshots compared.
        #[serde(default)]
        compared: (u32, u32),
        #[serde(flatten)]
        growth: HeapGrowth,
    },
    /// Written by `leakscope run` (not the preload): the code of the runtime's instrument.
    #[serde(rename = "instrument")]
    Instrument {
        what: String,
        module: String,
        ranges: Vec<(u64, u64)>,
    },
}

/// The code of a runtime's instrument that leakscope started (V8's sampling heap profiler):
/// what it allocates is its bookkeeping, not the program's, and is left out of the growth
/// verdicts and the leak check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstrumentCode {
    /// What the instrument is.
    pub what: String,
    /// Where its functions ran: `[start, end)`, process addresses, sorted.
    ranges: Vec<(u64, u64)>,
}

impl InstrumentCode {
    /// The instrument's code in `profile`, if `leakscope run` recorded it.
    pub fn of(profile: &Profile) -> Option<InstrumentCode> {
        let mut found: Option<InstrumentCode> = None;
        for record in &profile.script_records {
            if !record.line.contains("\"instrument\"") {
                continue;
            }
            let Ok(Record::Instrument {
                what,
                module,
                ranges,
            }) = serde_json::from_str::<Record>(&record.line)
            else {
                continue;
            };
            // The symbol table's addresses, moved to where the module was loaded.
            let Some(loaded) = profile.modules.iter().find(|m| m.path == module) else {
                continue;
            };
            let code = found.get_or_insert_with(InstrumentCode::default);
            code.what = what;
            code.ranges.extend(
                ranges
                    .into_iter()
                    .map(|(start, end)| (start + loaded.load_bias, end + loaded.load_bias)),
            );
        }
        if let Some(code) = &mut found {
            code.ranges.sort_unstable();
        }
        found
    }

    /// Was a block of `stack` allocated by the instrument (one of its functions is a frame)?
    pub fn allocated(&self, profile: &Profile, stack: leakscope_format::StackId) -> bool {
        profile.stacks.get(&stack).is_some_and(|frames| {
            frames.iter().any(|frame| match *frame {
                leakscope_format::StackFrame::Native(address) => {
                    let at = self.ranges.partition_point(|&(start, _)| start <= address);
                    self.ranges[..at]
                        .iter()
                        .rev()
                        .take(4)
                        .any(|&(start, end)| start <= address && address < end)
                }
                _ => false,
            })
        })
    }
}

#[derive(Default)]
struct IsolateRecords {
    /// When its recording started, s since the process started.
    started_s: Option<f64>,
    /// When it took its last sample, as it ended, s since the process started.
    ended_s: Option<f64>,
    version: String,
    argv: Vec<String>,
    heap_limit: u64,
    sampling_bytes: u64,
    sites: BTreeMap<u32, Vec<ScriptFrame>>,
    heap: Vec<HeapSample>,
    listener_stacks: BTreeMap<u32, Vec<ScriptFrame>>,
    listeners: BTreeMap<(String, String), ListenerSeries>,
    errors: Vec<String>,
    ended: Option<String>,
    snapshots: Vec<SnapshotTaken>,
    heap_growth: Option<((u32, u32), HeapGrowth)>,
}

/// The JavaScript findings of `profile`, one per isolate that left records (main thread
/// first), and notes on records that could not be read.
pub fn scripts(profile: &Profile) -> (Vec<ScriptIsolate>, Vec<String>) {
    let (isolates, unreadable) = read_records(profile);
    let available = crate::growth::last_available_bytes(profile);
    let findings: Vec<ScriptIsolate> = isolates
        .into_iter()
        .map(|((pid, thread), records)| judge(pid, thread, records, available))
        .collect();
    let mut notes = if unreadable > 0 {
        vec![format!(
            "{unreadable} of the Node.js preload's records could not be read and were left out"
        )]
    } else {
        Vec::new()
    };
    for isolate in &findings {
        for snapshot in &isolate.snapshots {
            if let Some(why) = &snapshot.skipped {
                notes.push(format!(
                    "JavaScript, {}: the {} heap snapshot was not taken: {why}",
                    isolate_name(isolate.thread),
                    if snapshot.n == 1 { "first" } else { "next" },
                ));
            }
        }
    }
    (findings, notes)
}

/// One isolate's JavaScript sites over time, every one of them (the findings list only the
/// sites worth reading): what `leakscope diff` compares.
#[derive(Clone, Debug, PartialEq)]
pub struct IsolateSites {
    /// The process.
    pub pid: u32,
    /// Node's thread id (0: the main thread).
    pub thread: u32,
    /// When the isolate's recording started, s since the process started (`None` for
    /// records without a `start` record, as in a file cut short).
    pub started_s: Option<f64>,
    /// When it ended (its last sample, taken as it ended), s since the process started;
    /// `None` if it left no such sample (the process was killed, or the file is cut short).
    pub ended_s: Option<f64>,
    /// The times of its samples, s since the process started (the sample taken as the isolate
    /// ended left out, as for the verdicts).
    pub times: Vec<f64>,
    /// Each site's frames (innermost first) and its live bytes at each of `times`.
    pub sites: Vec<(Vec<ScriptFrame>, Vec<u64>)>,
}

/// The JavaScript sites of `profile` over time, one [`IsolateSites`] per isolate that left
/// records (main thread first); records that cannot be read are left out.
pub fn isolate_sites(profile: &Profile) -> Vec<IsolateSites> {
    read_records(profile)
        .0
        .into_iter()
        .map(|((pid, thread), records)| IsolateSites {
            pid,
            thread,
            started_s: records.started_s,
            ended_s: records.ended_s,
            times: records.heap.iter().map(|h| h.0).collect(),
            sites: site_series(&records.heap)
                .into_iter()
                .filter_map(|(site, points)| {
                    let frames = records.sites.get(&site)?.clone();
                    Some((frames, points.into_iter().map(|p| p.1).collect()))
                })
                .collect(),
        })
        .collect()
}

/// Every isolate's records, by (pid, thread id), and how many records could not be read.
fn read_records(profile: &Profile) -> (BTreeMap<(u32, u32), IsolateRecords>, usize) {
    let mut isolates: BTreeMap<(u32, u32), IsolateRecords> = BTreeMap::new();
    let mut unreadable = 0usize;
    let start_ns = profile.process.as_ref().map_or(0, |p| p.start_unix_ns);
    // The preload's times are milliseconds since the epoch; the profile's are since start.
    let since_start = |t_ms: f64| (t_ms * 1e6 - start_ns as f64) / 1e9;
    for record in &profile.script_records {
        let Ok(parsed) = serde_json::from_str::<Record>(&record.line) else {
            unreadable += 1;
            continue;
        };
        let key = |th: u32| (record.pid, th);
        match parsed {
            Record::Start {
                th,
                t,
                node,
                heap_limit,
                sampling_bytes,
                argv,
            } => {
                let isolate = isolates.entry(key(th)).or_default();
                isolate.started_s = t.map(since_start);
                isolate.version = node;
                isolate.heap_limit = heap_limit;
                isolate.sampling_bytes = sampling_bytes;
                isolate.argv = argv;
            }
            Record::Site { th, id, frames } => {
                isolates
                    .entry(key(th))
                    .or_default()
                    .sites
                    .insert(id, frames);
            }
            Record::Heap {
                th,
                t,
                used,
                r#final,
                sites,
            } => {
                // As with the agent's snapshots, the program's end is not part of its life
                // (everything may have been dropped by then), but says when it ended.
                if r#final {
                    isolates.entry(key(th)).or_default().ended_s = Some(since_start(t));
                } else {
                    isolates
                        .entry(key(th))
                        .or_default()
                        .heap
                        .push((since_start(t), used, sites));
                }
            }
            Record::ListenerStack { th, id, frames } => {
                isolates
                    .entry(key(th))
                    .or_default()
                    .listener_stacks
                    .insert(id, frames);
            }
            Record::Listeners {
                th,
                t,
                r#final,
                counts,
            } => {
                let isolate = isolates.entry(key(th)).or_default();
                if r#final {
                    // The adds and their stacks are still worth having.
                    for (class, event, _, adds, stacks) in counts {
                        if let Some(entry) = isolate.listeners.get_mut(&(class, event)) {
                            entry.1 = adds;
                            entry.2 = stacks;
                        }
                    }
                    continue;
                }
                let t_s = since_start(t);
                for (class, event, listeners, adds, stacks) in counts {
                    let entry = isolate.listeners.entry((class, event)).or_default();
                    entry.0.push((t_s, listeners));
                    entry.1 = adds;
                    entry.2 = stacks;
                }
            }
            Record::Error { th, what, message } => isolates
                .entry(key(th))
                .or_default()
                .errors
                .push(format!("{what}: {message}")),
            Record::End { th, how } => isolates.entry(key(th)).or_default().ended = Some(how),
            Record::Snapshot {
                th,
                t,
                n,
                used,
                pause_ms,
                skipped,
            } => isolates
                .entry(key(th))
                .or_default()
                .snapshots
                .push(SnapshotTaken {
                    n,
                    t_s: since_start(t),
                    heap_used: used,
                    pause_ms,
                    skipped,
                }),
            Record::HeapGrowth {
                th,
                compared,
                growth,
            } => isolates.entry(key(th)).or_default().heap_growth = Some((compared, growth)),
            Record::Instrument { .. } => {}
        }
    }
    (isolates, unreadable)
}

/// Each site's live bytes at every sample: (s since start, bytes).
fn site_series(heap: &[HeapSample]) -> BTreeMap<u32, Vec<(f64, u64)>> {
    // Each sample lists every site with live samples: one missing from a sample held none.
    let mut series: BTreeMap<u32, Vec<(f64, u64)>> = BTreeMap::new();
    for (index, (t_s, _, sites)) in heap.iter().enumerate() {
        for &(site, bytes) in sites {
            let points = series.entry(site).or_insert_with(|| {
                // It held nothing at the samples before it appeared.
                heap[..index].iter().map(|h| (h.0, 0)).collect()
            });
            points.push((*t_s, bytes.max(0.0) as u64));
        }
        for points in series.values_mut() {
            if points.len() < index + 1 {
                points.push((*t_s, 0));
            }
        }
    }
    series
}

fn judge(pid: u32, thread: u32, records: IsolateRecords, available: Option<u64>) -> ScriptIsolate {
    let times: Vec<f64> = records.heap.iter().map(|h| h.0).collect();
    let run_length_s = match (times.first(), times.last()) {
        (Some(first), Some(last)) => last - first,
        _ => 0.0,
    };
    let series = site_series(&records.heap);
    let heap_used_last = records.heap.last().map_or(0, |h| h.1);
    let heap_room = records.heap_limit.saturating_sub(heap_used_last);
    let mut sites: Vec<ScriptSite> = series
        .into_iter()
        .filter_map(|(site, points)| {
            let frames = records.sites.get(&site)?.clone();
            let values: Vec<(f64, f64)> = points.iter().map(|&(t, b)| (t, b as f64)).collect();
            let (verdict, confidence, slope) = classify(&values, None, run_length_s);
            let growing = verdict == Verdict::Growing && slope > 0.0;
            Some(ScriptSite {
                frames,
                verdict,
                bytes_per_s: slope,
                live_bytes_last: points.last().map_or(0, |p| p.1),
                live_bytes_peak: points.iter().map(|p| p.1).max().unwrap_or(0),
                confidence,
                heap_exhaustion_s: growing.then(|| heap_room as f64 / slope),
                exhaustion_s: available.filter(|_| growing).map(|a| a as f64 / slope),
                series: points,
            })
        })
        .filter(|site| site.live_bytes_peak > 0)
        .collect();
    sites.sort_by(|a, b| {
        crate::growth::listing_order(
            (a.verdict, a.bytes_per_s, a.live_bytes_peak),
            (b.verdict, b.bytes_per_s, b.live_bytes_peak),
        )
    });
    let mut bounded = 0;
    sites.retain(|site| {
        site.verdict != Verdict::Bounded || {
            bounded += 1;
            bounded <= BOUNDED_SCRIPT_SITES_SHOWN
        }
    });

    let mut listeners: Vec<ListenerGrowth> = records
        .listeners
        .into_iter()
        .map(|((emitter, event), (points, added, stacks))| {
            let values: Vec<(f64, f64)> = points.iter().map(|&(t, n)| (t, n as f64)).collect();
            let (verdict, confidence, slope) =
                classify_with_floor(&values, None, run_length_s, MIN_RISE_LISTENERS);
            let mut stacks: Vec<(u64, Vec<ScriptFrame>)> = stacks
                .into_iter()
                .filter_map(|(id, count)| Some((count, records.listener_stacks.get(&id)?.clone())))
                .collect();
            stacks.sort_by_key(|stack| std::cmp::Reverse(stack.0));
            ListenerGrowth {
                emitter,
                event,
                verdict,
                per_s: slope,
                listeners_last: points.last().map_or(0, |p| p.1),
                added,
                confidence,
                stacks,
            }
        })
        .collect();
    listeners.sort_by(|a, b| {
        a.verdict
            .rank()
            .cmp(&b.verdict.rank())
            .then_with(|| b.listeners_last.cmp(&a.listeners_last))
            .then_with(|| (&a.emitter, &a.event).cmp(&(&b.emitter, &b.event)))
    });
    let comparison = records
        .heap_growth
        .map(|(compared, growth)| SnapshotComparison {
            compared,
            nodes_before: growth.nodes_before,
            nodes_after: growth.nodes_after,
            groups: growth
                .groups
                .into_iter()
                .map(|group| ConstructorGrowth {
                    site: allocating_site(&group, &sites),
                    growth: group,
                })
                .collect(),
        });
    ScriptIsolate {
        pid,
        thread,
        version: records.version,
        argv: records.argv,
        heap_limit: records.heap_limit,
        heap_used_last,
        sampling_bytes: records.sampling_bytes,
        samples: records.heap.len(),
        sites,
        listeners,
        errors: records.errors,
        ended: records.ended,
        snapshots: records.snapshots,
        comparison,
    }
}

/// A Node.js isolate by node's thread id: `main thread`, `worker thread 2`.
pub fn isolate_name(thread: u32) -> String {
    if thread == 0 {
        "main thread".to_owned()
    } else {
        format!("worker thread {thread}")
    }
}

/// The first growing site of `sites` that allocates `group`'s objects, as far as the
/// sampling profiler's frames tell: a frame of the constructor (V8 names a class's
/// constructor frame after the class) or, for a closure, the frame of the function it is
/// (same script, line and column); failing that, a site that runs in a function of the
/// program whose closure context is on the group's retainer path (`tick().context →
/// (closure context).requestCache → …`: the site's `tick` frame is where the holding
/// variable is in scope). V8's own kinds of value (`(string)`) name no function.
fn allocating_site(group: &GroupGrowth, sites: &[ScriptSite]) -> Option<usize> {
    if !matches!(group.kind.as_str(), "object" | "closure") {
        return None;
    }
    let growing_site_with = |wanted: &dyn Fn(&ScriptFrame) -> bool| {
        sites.iter().position(|site| {
            site.verdict == Verdict::Growing
                && site
                    .frames
                    .iter()
                    .any(|frame| !frame.url.is_empty() && wanted(frame))
        })
    };
    let named = growing_site_with(&|frame| {
        let at_location = group.location.as_ref().is_some_and(|l| {
            (l.url.as_str(), l.line, l.column) == (frame.url.as_str(), frame.line, frame.column)
        });
        frame.function == group.name || at_location
    });
    named.or_else(|| {
        let holding_closures: Vec<&str> = group
            .retainer_path
            .iter()
            .filter(|step| step.edge == "context")
            .filter_map(|step| step.holder.strip_suffix("()"))
            .filter(|function| *function != "(anonymous)")
            .collect();
        // node's own functions (timers, streams) hold everything a timer's closure holds.
        growing_site_with(&|frame| {
            !frame.url.starts_with("node:") && holding_closures.contains(&frame.function.as_str())
        })
    })
}

/// For tests: a profile of process `pid`, started 1,000 s after the epoch, whose preload
/// wrote `lines`.
#[cfg(test)]
pub(crate) fn profile_with_records<L: AsRef<str>>(pid: u32, lines: &[L]) -> Profile {
    use leakscope_format::{FrameKind, Process, ScriptRecord};
    Profile {
        process: Some(Process {
            pid,
            start_unix_ns: 1_000_000_000_000,
            ..Process::default()
        }),
        script_records: lines
            .iter()
            .map(|line| ScriptRecord {
                runtime: FrameKind::JavaScript,
                pid,
                line: line.as_ref().to_owned(),
            })
            .collect(),
        ..Profile::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(lines: &[String]) -> Profile {
        profile_with_records(7, lines)
    }

    #[test]
    fn a_growing_site_and_a_listener_leak_are_named() {
        let mut lines = vec![
            r#"{"k":"start","th":0,"t":1000000,"pid":7,"node":"v20.0.0","heap_limit":100000000,"sampling_bytes":32768,"interval_ms":250,"main":true,"argv":["s.js"]}"#.to_owned(),
            r#"{"k":"site","th":0,"id":1,"frames":[["remember","/s.js",3,5],["main","/s.js",9,1]]}"#.to_owned(),
            r#"{"k":"site","th":0,"id":2,"frames":[["churn","/s.js",4,5]]}"#.to_owned(),
            r#"{"k":"lstack","th":0,"id":1,"emitter":"EventEmitter","event":"tick","frames":[["attach","/s.js",6,3]]}"#.to_owned(),
            "{this is not json".to_owned(),
        ];
        for i in 0..20u64 {
            let t = 1_000_000 + i * 250;
            let churn = if i % 2 == 0 { 65536 } else { 0 };
            let sites = if churn > 0 {
                format!("[[1,{}],[2,{churn}]]", (i + 1) * 32768)
            } else {
                format!("[[1,{}]]", (i + 1) * 32768)
            };
            lines.push(format!(
                r#"{{"k":"heap","th":0,"t":{t},"used":{},"limit":100000000,"sites":{sites}}}"#,
                1_000_000 + i * 1000
            ));
            lines.push(format!(
                r#"{{"k":"listeners","th":0,"t":{t},"emitters":1,"counts":[["EventEmitter","tick",{},{},[[1,16]]],["Socket","data",1,1,[]]]}}"#,
                i * 50,
                i * 50
            ));
        }
        lines.push(r#"{"k":"end","th":0,"t":1006000,"how":"exit"}"#.to_owned());
        let (isolates, notes) = scripts(&profile(&lines));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(isolates.len(), 1);
        let main = &isolates[0];
        assert_eq!((main.pid, main.thread, main.samples), (7, 0, 20));
        assert_eq!(main.version, "v20.0.0");
        assert_eq!(main.ended.as_deref(), Some("exit"));
        assert_eq!(main.sites[0].frames[0].function, "remember");
        assert_eq!(main.sites[0].verdict, Verdict::Growing);
        assert!(
            (main.sites[0].bytes_per_s - 131072.0).abs() < 1.0,
            "{}",
            main.sites[0].bytes_per_s
        );
        assert!(main.sites[0].heap_exhaustion_s.is_some());
        assert_ne!(main.sites[1].verdict, Verdict::Growing, "churn alternates");
        // Times are seconds since the process started (1,000 s after the epoch).
        assert!((main.sites[0].series[0].0 - 0.0).abs() < 1e-9);
        let leak = &main.listeners[0];
        assert_eq!(
            (leak.emitter.as_str(), leak.event.as_str()),
            ("EventEmitter", "tick")
        );
        assert_eq!(leak.verdict, Verdict::Growing);
        assert_eq!(leak.listeners_last, 950);
        assert_eq!(leak.stacks[0].1[0].function, "attach");
        assert_ne!(main.listeners[1].verdict, Verdict::Growing);
    }
    #[test]
    fn snapshots_and_their_comparison_are_read_and_tied_to_the_growing_site() {
        let mut lines = vec![
            r#"{"k":"start","th":0,"t":1000000,"pid":7,"node":"v20.0.0","heap_limit":100000000,"sampling_bytes":32768,"interval_ms":250,"main":true,"argv":["s.js"]}"#.to_owned(),
            r#"{"k":"site","th":0,"id":1,"frames":[["Request","/s.js",3,3],["serve","/s.js",9,1],["tick","/s.js",20,1],["setTimeout","node:timers",140,1]]}"#.to_owned(),
            r#"{"k":"snapshot","th":0,"t":1001000,"n":1,"used":4000000,"limit":67108864,"pause_ms":512.25,"file":"/tmp/x.0.1.heapsnapshot"}"#.to_owned(),
            r#"{"k":"snapshot","th":0,"t":1002000,"n":2,"used":8000000,"limit":67108864,"pause_ms":901.5,"file":"/tmp/x.0.2.heapsnapshot"}"#.to_owned(),
            r#"{"k":"snapshot","th":0,"t":1004000,"n":3,"used":90000000,"limit":67108864,"skipped":"the V8 heap (85.8 MiB used) is above the limit of 64.0 MiB (--js-heap-snapshot-limit)"}"#.to_owned(),
            r#"{"k":"heap_growth","th":0,"compared":[1,2],"nodes_before":10,"nodes_after":20,"groups":[{"name":"(string)","kind":"string","location":null,"before":{"instances":1,"bytes":8},"after":{"instances":900,"bytes":90000},"new":{"instances":899,"bytes":89992},"growing":true,"retainer_path":[],"held_alike":0},{"name":"Request","kind":"object","location":null,"before":{"instances":1,"bytes":40},"after":{"instances":500,"bytes":80000},"new":{"instances":499,"bytes":79960},"growing":true,"retainer_path":[{"holder":"(closure context)","edge_type":"context","edge":"cache"},{"holder":"Map","edge_type":"internal","edge":"table"}],"held_alike":499},{"name":"Entry","kind":"object","location":null,"before":{"instances":1,"bytes":40},"after":{"instances":500,"bytes":70000},"new":{"instances":499,"bytes":69960},"growing":true,"retainer_path":[{"holder":"setTimeout()","edge_type":"internal","edge":"context"},{"holder":"tick()","edge_type":"internal","edge":"context"},{"holder":"(closure context)","edge_type":"context","edge":"entries"}],"held_alike":499},{"name":"Timeout","kind":"object","location":null,"before":{"instances":1,"bytes":40},"after":{"instances":500,"bytes":60000},"new":{"instances":499,"bytes":59960},"growing":true,"retainer_path":[{"holder":"setTimeout()","edge_type":"internal","edge":"context"},{"holder":"(closure context)","edge_type":"context","edge":"timers"}],"held_alike":499}]}"#.to_owned(),
        ];
        for i in 0..20u64 {
            lines.push(format!(
                r#"{{"k":"heap","th":0,"t":{},"used":1000000,"limit":100000000,"sites":[[1,{}]]}}"#,
                1_000_000 + i * 250,
                (i + 1) * 32768
            ));
        }
        let (isolates, notes) = scripts(&profile(&lines));
        assert_eq!(
            notes,
            ["JavaScript, main thread: the next heap snapshot was not taken: the V8 heap (85.8 MiB used) is above the limit of 64.0 MiB (--js-heap-snapshot-limit)"]
        );
        let main = &isolates[0];
        assert_eq!(main.sites[0].verdict, Verdict::Growing);
        let taken: Vec<(u32, f64, u64, Option<f64>)> = main
            .snapshots
            .iter()
            .map(|s| (s.n, s.t_s, s.heap_used, s.pause_ms))
            .collect();
        assert_eq!(
            taken,
            [
                (1, 1.0, 4_000_000, Some(512.25)),
                (2, 2.0, 8_000_000, Some(901.5)),
                (3, 4.0, 90_000_000, None)
            ]
        );
        let comparison = main.comparison.as_ref().unwrap();
        assert_eq!(comparison.compared, (1, 2));
        assert_eq!((comparison.nodes_before, comparison.nodes_after), (10, 20));
        let tied: Vec<(&str, Option<usize>)> = comparison
            .groups
            .iter()
            .map(|c| (c.growth.name.as_str(), c.site))
            .collect();
        // The site's frame `Request` is the class's constructor; strings name no function;
        // `Entry` is held in the closure context of `tick`, a frame of the site; `Timeout` only
        // in one of `setTimeout`, a frame of node's own code.
        assert_eq!(
            tied,
            [
                ("(string)", None),
                ("Request", Some(0)),
                ("Entry", Some(0)),
                ("Timeout", None)
            ]
        );
        assert_eq!(
            crate::heap_snapshot::path_text(&comparison.groups[1].growth),
            "(closure context).cache → Map.table → Request"
        );
    }
}

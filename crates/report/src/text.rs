//! The terminal report.
//!
//! ```text
//! Process 4242: ./prog arg
//! Exited with code 0.
//!
//! 4,096 bytes in 1 block are definitely lost in loss record 1 of 1
//!    at 0x55D0C0A011A9: process_request (leak.c:7)
//!    by 0x55D0C0A011D0: main (leak.c:12)
//!
//! LEAK SUMMARY:
//!    definitely lost: 4,096 bytes in 1 block
//!    indirectly lost: 0 bytes in 0 blocks
//!      possibly lost: 0 bytes in 0 blocks
//!    still reachable: 0 bytes in 0 blocks
//!         suppressed: 0 bytes in 0 blocks
//!
//! leakscope: 1 leak: 4,096 bytes definitely lost in 1 block
//! ```
//!
//! The wording follows memcheck's, so that people used to it read it at once, with one
//! difference: counts of one are singular ("1 block", where memcheck writes "1 blocks").
//! memcheck's `==pid==` prefixes are left out, as the report is printed after the program
//! ended rather than interleaved with its output. The last line sums up the whole run in one
//! glance (it is all `--quiet` prints).

use std::fmt::Write as _;
use std::path::Path;

use leakscope_analysis::suppressions::LeakKinds;
use leakscope_analysis::{Amount, LeakCheckStatus, LossRecord};
use leakscope_format::{Frame, FrameKind, LeakKind};

use leakscope_analysis::{ExitStatus, StartedBy};

use crate::{ProcessReport, Report, TextOptions};

/// ANSI escapes, or nothing when colour is off.
pub(crate) struct Style {
    pub(crate) color: bool,
}

impl Style {
    const RESET: &'static str = "\x1b[0m";
    pub(crate) const BOLD: &'static str = "\x1b[1m";
    const DIM: &'static str = "\x1b[2m";
    pub(crate) const RED: &'static str = "\x1b[31m";
    const GREEN: &'static str = "\x1b[32m";
    const YELLOW: &'static str = "\x1b[33m";

    pub(crate) fn paint(&self, escape: &str, text: &str) -> String {
        if self.color {
            format!("{escape}{text}{}", Self::RESET)
        } else {
            text.to_owned()
        }
    }

    /// Definitely lost is the one to fix; indirectly and possibly lost need a look; still
    /// reachable is usually fine.
    fn kind(&self, kind: LeakKind, text: &str) -> String {
        let escape = match kind {
            LeakKind::DefinitelyLost => Self::RED,
            LeakKind::IndirectlyLost | LeakKind::PossiblyLost => Self::YELLOW,
            LeakKind::StillReachable => Self::GREEN,
        };
        self.paint(escape, text)
    }
}

pub(crate) fn render(whole: &Report, options: TextOptions) -> String {
    let style = Style {
        color: options.color,
    };
    let mut out = String::new();
    if !options.quiet {
        let report = ProcessReport::root(whole);
        let heading = format!("Process {}: {}", report.pid, command_line(&report.command));
        render_process(&mut out, &report, &heading, &style, options);
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary_line(whole, &style));
    out
}

/// The whole run in one line: the loss records of the error kinds and their blocks per kind,
/// the leak checks that did not happen, the growing sites, what was suppressed.
fn summary_line(report: &Report, style: &Style) -> String {
    // Counted from the findings, with the gate's error kinds: a record hidden by the display
    // options is still a leak.
    let error_kinds = report.gate.error_kinds();
    let processes = report.findings.processes();
    let mut parts = Vec::new();
    let leaks: u64 = processes
        .iter()
        .map(|p| {
            let shown = p
                .leaks
                .records
                .iter()
                .filter(|r| error_kinds.contains(r.kind))
                .count() as u64;
            let hidden: u64 = error_kinds
                .kinds()
                .map(|kind| p.leaks.not_shown.records_of[kind as usize])
                .sum();
            shown + hidden
        })
        .sum();
    let checked = processes
        .iter()
        .any(|p| p.leaks.leak_check.status() != LeakCheckStatus::NotRun);
    if leaks == 0 {
        // Only a check that ran can find no leaks: with none, the line says that none ran.
        if checked {
            parts.push(style.paint(Style::GREEN, "no leaks"));
        }
    } else {
        let by_kind: Vec<String> = error_kinds
            .kinds()
            .filter_map(|kind| {
                let amount = processes
                    .iter()
                    .map(|p| p.leaks.summary.of(kind))
                    .fold(Amount::default(), Amount::plus);
                (!amount.is_zero()).then(|| {
                    format!(
                        "{} {} in {}",
                        count(amount.bytes, "byte", "bytes"),
                        style.kind(kind, kind.words()),
                        count(amount.blocks, "block", "blocks")
                    )
                })
            })
            .collect();
        parts.push(format!(
            "{}: {}",
            style.paint(Style::RED, &count(leaks, "leak", "leaks")),
            by_kind.join(", ")
        ));
    }
    let unchecked: Vec<_> = processes
        .iter()
        .filter(|p| p.leaks.leak_check.status() != LeakCheckStatus::Complete)
        .collect();
    if !unchecked.is_empty() {
        let not_run = unchecked
            .iter()
            .filter(|p| p.leaks.leak_check.status() == LeakCheckStatus::NotRun)
            .count() as u64;
        let incomplete = unchecked.len() as u64 - not_run;
        if not_run > 0 {
            parts.push(style.paint(
                Style::RED,
                &format!(
                    "the leak check did not run in {}",
                    count(not_run, "process", "processes")
                ),
            ));
        }
        if incomplete > 0 {
            parts.push(style.paint(
                Style::YELLOW,
                &format!(
                    "the leak check is incomplete in {}",
                    count(incomplete, "process", "processes")
                ),
            ));
        }
    }
    let growing: Vec<f64> = processes
        .iter()
        .flat_map(|p| p.growth.iter())
        .filter(|site| site.verdict == leakscope_analysis::Verdict::Growing)
        .map(|site| site.bytes_per_s)
        .collect();
    if !growing.is_empty() {
        let rate: f64 = growing.iter().sum();
        parts.push(format!(
            "{} ({}/s)",
            style.paint(
                Style::RED,
                &format!("{} growing", count(growing.len() as u64, "site", "sites"))
            ),
            human_bytes(rate)
        ));
    }
    let suppressed = processes
        .iter()
        .map(|p| p.leaks.summary.suppressed)
        .fold(Amount::default(), Amount::plus);
    if !suppressed.is_zero() {
        parts.push(format!("{} suppressed", bytes_in_blocks(suppressed)));
    }
    if processes.len() > 1 {
        parts.push(format!("over {} processes", processes.len()));
    }
    format!("leakscope: {}", parts.join("; "))
}

/// `1 block`, `2 blocks`, `1,024 bytes`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `4,096 bytes in 1 block`.
pub(crate) fn bytes_in_blocks(amount: Amount) -> String {
    format!(
        "{} in {}",
        count(amount.bytes, "byte", "bytes"),
        count(amount.blocks, "block", "blocks")
    )
}

/// The kinds in words: `definitely or possibly lost`, `definitely lost or still reachable`.
pub(crate) fn kinds_words(kinds: LeakKinds) -> String {
    let adverbs: Vec<&str> = kinds
        .kinds()
        .filter_map(|kind| match kind {
            LeakKind::DefinitelyLost => Some("definitely"),
            LeakKind::IndirectlyLost => Some("indirectly"),
            LeakKind::PossiblyLost => Some("possibly"),
            LeakKind::StillReachable => None,
        })
        .collect();
    let lost = match adverbs.as_slice() {
        [] => None,
        [only] => Some(format!("{only} lost")),
        [init @ .., last] => Some(format!("{} or {last} lost", init.join(", "))),
    };
    match (lost, kinds.contains(LeakKind::StillReachable)) {
        (Some(lost), true) => format!("{lost} or still reachable"),
        (Some(lost), false) => lost,
        (None, true) => "still reachable".to_owned(),
        (None, false) => "of no kind (--errors-for-leak-kinds none)".to_owned(),
    }
}

/// A site by its first named frame: `make_record (job.c:5)`.
pub(crate) fn site_words(frames: &[Frame]) -> String {
    let plain = Style { color: false };
    match frames
        .iter()
        .find(|frame| frame.function.is_some())
        .or(frames.first())
    {
        Some(frame) => describe_frame(frame, &plain),
        None => "(no stack recorded)".to_owned(),
    }
}

fn render_process(
    out: &mut String,
    report: &ProcessReport,
    heading: &str,
    style: &Style,
    options: TextOptions,
) {
    let _ = writeln!(out, "{}", style.paint(Style::BOLD, heading));
    let _ = writeln!(out, "{}", exit_sentence(report.exit));
    let check = &report.leaks.leak_check;
    if let Some(sentence) = check.sentence() {
        let _ = writeln!(
            out,
            "{}.",
            style.paint(check_colour(check.status()), &capitalized(&sentence))
        );
    }
    if let Some(rate) = report.leaks.sample_rate {
        let _ = writeln!(
            out,
            "Sampling: on average one allocation in every {} bytes has a stack. The bytes and \
             blocks of each loss record are estimates from those; the LEAK SUMMARY is exact.",
            thousands(rate)
        );
    }

    render_growth(out, report, style);
    render_scripts(out, report, style);
    render_live_scans(out, report, style);
    if let Some(java) = &report.java {
        crate::java::render_text(out, java, style);
    }

    let records = &report.leaks.records;
    for (index, record) in records.iter().enumerate() {
        out.push('\n');
        render_record(out, report, record, index + 1, records.len(), style);
        if options.gen_suppressions {
            render_suppression(out, record, report.frames_of(record.stack));
        }
    }
    render_not_shown(out, report);

    let unsampled = report.leaks.unsampled;
    if report.leaks.sample_rate.is_some() && !unsampled.is_zero() {
        let _ = writeln!(
            out,
            "\n{} were not sampled: they have no stack, and count only in the summary below.",
            bytes_in_blocks(unsampled),
        );
    }

    out.push('\n');
    render_summary(out, report, style);
    if options.verbose {
        render_suppressions_used(out, report);
    }

    if !report.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for note in &report.notes {
            let _ = writeln!(out, " - {note}");
        }
    }

    for child in report.children() {
        out.push('\n');
        let heading = match child.started_by {
            StartedBy::Exec if child.pid == report.pid => format!(
                "Process {} after exec: {}",
                child.pid,
                command_line(&child.command)
            ),
            StartedBy::Exec => format!(
                "Child process {} (of {}, executed): {}",
                child.pid,
                report.pid,
                command_line(&child.command)
            ),
            StartedBy::Run | StartedBy::Fork => format!(
                "Child process {} (of {}): {}",
                child.pid,
                report.pid,
                command_line(&child.command)
            ),
        };
        render_process(out, &child, &heading, style, options);
    }
}

/// memcheck's LEAK SUMMARY, or its "All heap blocks were freed" line, which only a complete
/// leak check may say. A check that did not run gives no figures (there are none: zeros would
/// read as "nothing lost"); an incomplete one gives them after saying why they may be off.
fn render_summary(out: &mut String, report: &ProcessReport, style: &Style) {
    let summary = &report.leaks.summary;
    let check = &report.leaks.leak_check;
    let Some(sentence) = check.sentence() else {
        if summary.unfreed().is_zero() {
            let _ = writeln!(out, "All heap blocks were freed -- no leaks are possible");
            return;
        }
        let _ = writeln!(out, "LEAK SUMMARY:");
        render_summary_lines(out, report, style);
        return;
    };
    let _ = writeln!(
        out,
        "LEAK SUMMARY: {}.",
        style.paint(check_colour(check.status()), &sentence)
    );
    if check.status() == LeakCheckStatus::NotRun {
        let _ = writeln!(
            out,
            "   (no figures: nothing is known about the blocks left allocated at the end)"
        );
    } else {
        render_summary_lines(out, report, style);
    }
}

fn render_summary_lines(out: &mut String, report: &ProcessReport, style: &Style) {
    let summary = &report.leaks.summary;
    for kind in LeakKind::ALL {
        render_summary_line(out, kind.words(), summary.of(kind), Some(kind), style);
    }
    render_summary_line(out, "suppressed", summary.suppressed, None, style);
}

/// Red when the check did not run, yellow when it is incomplete.
fn check_colour(status: LeakCheckStatus) -> &'static str {
    match status {
        LeakCheckStatus::NotRun => Style::RED,
        _ => Style::YELLOW,
    }
}

/// The sentence with its first letter in upper case.
fn capitalized(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn render_record(
    out: &mut String,
    report: &ProcessReport,
    record: &LossRecord,
    number: usize,
    count: usize,
    style: &Style,
) {
    let about = if record.estimated { "about " } else { "" };
    let amount = record.amount;
    let _ = writeln!(
        out,
        "{about}{} in {about}{} {} {} in loss record {number} of {count}{}",
        self::count(amount.bytes, "byte", "bytes"),
        self::count(amount.blocks, "block", "blocks"),
        if amount.bytes == 1 { "is" } else { "are" },
        style.kind(record.kind, record.kind.words()),
        if record.estimated { " (estimated)" } else { "" },
    );
    render_stack(out, report, record.stack, style);
}

/// A memcheck suppression that matches `record`, as memcheck's `--gen-suppressions=all`
/// prints it. The first location line stands for the allocation function, which memcheck's
/// stacks start with and leakscope's do not (nor does the profile say which it was):
/// `fun:*` matches it in both. The frames follow down to `main` (below it, memcheck's
/// frames are named otherwise); a frame with no function name is matched by its module.
fn render_suppression(out: &mut String, record: &LossRecord, frames: &[Frame]) {
    let _ = writeln!(out, "{{");
    let _ = writeln!(out, "   <insert_a_suppression_name_here>");
    let _ = writeln!(out, "   Memcheck:Leak");
    let _ = writeln!(out, "   match-leak-kinds: {}", LeakKinds::word(record.kind));
    let _ = writeln!(out, "   fun:*");
    for frame in frames {
        match (&frame.function, &frame.module) {
            (Some(function), _) => {
                let _ = writeln!(out, "   fun:{}", escaped_pattern(function));
            }
            (None, Some(module)) => {
                let _ = writeln!(out, "   obj:{}", escaped_pattern(module));
            }
            (None, None) => {
                let _ = writeln!(out, "   obj:*");
            }
        }
        if frame.function.as_deref() == Some("main") {
            break;
        }
    }
    let _ = writeln!(out, "}}");
}

/// A name as a suppression pattern: `*`, `?` and `\` made literal with `\`, as memcheck
/// (and leakscope) read them.
fn escaped_pattern(name: &str) -> String {
    let mut pattern = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '*' | '?' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// What the display options left out, in one line, with the option that shows it.
fn render_not_shown(out: &mut String, report: &ProcessReport) {
    let not_shown = &report.leaks.not_shown;
    if not_shown.is_empty() {
        return;
    }
    let mut reasons = Vec::new();
    let (n, amount) = not_shown.by_kind;
    if n > 0 {
        reasons.push(format!(
            "{} ({}) of the kinds --show-leak-kinds leaves out (--show-leak-kinds=all shows them)",
            count(n, "loss record", "loss records"),
            bytes_in_blocks(amount)
        ));
    }
    let (n, amount) = not_shown.below_min_bytes;
    if n > 0 {
        reasons.push(format!(
            "{} ({}) smaller than --min-bytes",
            count(n, "loss record", "loss records"),
            bytes_in_blocks(amount)
        ));
    }
    let (n, amount) = not_shown.beyond_limit;
    if n > 0 {
        reasons.push(format!(
            "{} ({}) beyond --limit",
            count(n, "loss record", "loss records"),
            bytes_in_blocks(amount)
        ));
    }
    let _ = writeln!(
        out,
        "\nNot shown: {}. They count in the summary below.",
        reasons.join("; ")
    );
}

/// memcheck's `-v` lines: `used_suppression:      2 name file:line suppressed: 12 bytes in
/// 1 block`.
fn render_suppressions_used(out: &mut String, report: &ProcessReport) {
    let used = &report.leaks.suppressions_used;
    if used.is_empty() {
        return;
    }
    out.push('\n');
    for suppression in used {
        let _ = writeln!(
            out,
            "used_suppression: {:>6} {} {}:{} suppressed: {}",
            suppression.records,
            suppression.name,
            suppression.file,
            suppression.line,
            bytes_in_blocks(suppression.amount)
        );
    }
}

/// A stack, memcheck style: `at` the allocating frame, `by` each caller.
fn render_stack(
    out: &mut String,
    report: &ProcessReport,
    stack: leakscope_format::StackId,
    style: &Style,
) {
    let frames = report.frames_of(stack);
    render_frames(out, frames, style);
}

/// Frames, memcheck style; "(no stack recorded)" when there are none.
pub(crate) fn render_frames(out: &mut String, frames: &[Frame], style: &Style) {
    if frames.is_empty() {
        let _ = writeln!(out, "   (no stack recorded)");
    }
    for (index, frame) in frames.iter().enumerate() {
        let lead = if index == 0 { "at" } else { "by" };
        if frame.kind != FrameKind::Native {
            // An interpreter frame has no address: its function and source, then its kind.
            let kind = style.paint(Style::DIM, &format!("[{}]", frame.kind.name()));
            let _ = writeln!(out, "   {lead} {} {kind}", describe_frame(frame, style));
            continue;
        }
        // Upper-case hex digits after a lower-case 0x, as memcheck prints addresses.
        let _ = writeln!(
            out,
            "   {lead} 0x{:X}: {}",
            frame.address,
            describe_frame(frame, style)
        );
    }
}

/// The live scans: how many, their pauses, lost bytes first and last, and every site whose
/// lost bytes kept rising.
fn render_live_scans(out: &mut String, report: &ProcessReport, style: &Style) {
    let scans = &report.live_scans;
    let Some((median_pause, longest_pause)) = scans.pauses() else {
        return;
    };
    let completed: Vec<_> = scans.completed().collect();
    out.push('\n');
    let _ = write!(
        out,
        "Live leak scans: {} ({} completed); the program was stopped {} per scan (median), {} at most.",
        scans.points.len(),
        completed.len(),
        human_seconds(median_pause),
        human_seconds(longest_pause),
    );
    if let (Some(first), Some(last)) = (completed.first(), completed.last()) {
        let lost = |p: &leakscope_analysis::LiveScanPoint| p.of(LeakKind::DefinitelyLost).bytes;
        let _ = write!(
            out,
            " Definitely lost: {} bytes at {:.1}s, {} bytes at {:.1}s.",
            thousands(lost(first)),
            first.t_s,
            thousands(lost(last)),
            last.t_s,
        );
    }
    out.push('\n');
    let abandoned = scans.points.len() - completed.len();
    if abandoned > 0 {
        let _ = writeln!(
            out,
            "{abandoned} {} abandoned: a thread did not stop within half a second.",
            if abandoned == 1 {
                "scan was"
            } else {
                "scans were"
            }
        );
    }
    for growth in &scans.lost_growing {
        let _ = writeln!(
            out,
            "{} at {}/s: {} bytes {} at {:.1}s, {} bytes at {:.1}s (over {} completed scans, never falling)",
            style.paint(Style::RED, "LOST BYTES GROWING"),
            human_bytes(growth.bytes_per_s),
            thousands(growth.bytes_first()),
            growth.kind.words(),
            growth.series.first().map_or(0.0, |p| p.0),
            thousands(growth.bytes_last()),
            growth.series.last().map_or(0.0, |p| p.0),
            growth.series.len(),
        );
        render_stack(out, report, growth.stack, style);
    }
}

/// The JavaScript side of a Node.js process, per isolate: its growing allocation sites and
/// listener leaks, each with its stack, and a line for the rest.
fn render_scripts(out: &mut String, report: &ProcessReport, style: &Style) {
    use leakscope_analysis::Verdict;
    for isolate in &report.scripts {
        out.push('\n');
        let thread = isolate_name(isolate.thread);
        let _ = writeln!(
            out,
            "{} {}, {thread}: {} {} of live JavaScript objects per allocation site (V8's sampling heap profiler, one sample per {} bytes allocated on average); V8 heap {} of {} at the end.",
            style.paint(Style::BOLD, "JavaScript"),
            if isolate.version.is_empty() { "(node)" } else { &isolate.version },
            thousands(isolate.samples as u64),
            if isolate.samples == 1 { "sample" } else { "samples" },
            thousands(isolate.sampling_bytes),
            human_bytes(isolate.heap_used_last as f64),
            human_bytes(isolate.heap_limit as f64),
        );
        for site in isolate
            .sites
            .iter()
            .filter(|s| s.verdict == Verdict::Growing)
        {
            let _ = writeln!(
                out,
                "{} at {}/s (confidence {:.2}): about {} live at the end",
                style.paint(Style::RED, "GROWING"),
                human_bytes(site.bytes_per_s),
                site.confidence,
                human_bytes(site.live_bytes_last as f64),
            );
            render_script_frames(out, &site.frames);
            let mut limits = Vec::new();
            if let Some(s) = site.heap_exhaustion_s {
                limits.push(format!("the V8 heap limit in {}", human_duration(s)));
            }
            if let Some(s) = site.exhaustion_s {
                limits.push(format!(
                    "the machine's available memory in {}",
                    human_duration(s)
                ));
            }
            if !limits.is_empty() {
                let _ = writeln!(
                    out,
                    "   At this rate it would reach {}.",
                    limits.join(", and ")
                );
            }
        }
        for leak in isolate
            .listeners
            .iter()
            .filter(|l| l.verdict == Verdict::Growing)
        {
            let _ = writeln!(
                out,
                "{}: {} '{}' listeners on {} objects at the end, {:.1} more per second ({} added in all); the stacks that added them:",
                style.paint(Style::RED, "LISTENER LEAK"),
                thousands(leak.listeners_last),
                leak.event,
                leak.emitter,
                leak.per_s,
                thousands(leak.added),
            );
            for (count, frames) in leak.stacks.iter().take(3) {
                let _ = writeln!(
                    out,
                    "   {} sampled {}:",
                    thousands(*count),
                    if *count == 1 { "add" } else { "adds" }
                );
                render_script_frames(out, frames);
            }
        }
        render_heap_comparison(out, isolate, style);
        let others = isolate
            .sites
            .iter()
            .filter(|s| s.verdict != Verdict::Growing)
            .count();
        let growing = isolate.sites.len() - others;
        if growing == 0 {
            let _ = writeln!(out, "No JavaScript allocation site kept growing.");
        }
        for error in &isolate.errors {
            let _ = writeln!(out, "The preload could not record everything: {error}.");
        }
    }
}

pub(crate) use leakscope_analysis::scripts::isolate_name;

/// An isolate's heap snapshots (each one's heap and pause) and the constructors that grew
/// between the last two, each with its retainer path and the growing site that
/// allocates it, if one is known.
fn render_heap_comparison(
    out: &mut String,
    isolate: &leakscope_analysis::ScriptIsolate,
    style: &Style,
) {
    let taken: Vec<String> = isolate
        .snapshots
        .iter()
        .filter_map(|snapshot| {
            let pause = snapshot.pause_ms?;
            Some(format!(
                "{} at {:.1} s (paused {pause:.0} ms)",
                human_bytes(snapshot.heap_used as f64),
                snapshot.t_s,
            ))
        })
        .collect();
    let Some(comparison) = &isolate.comparison else {
        // Its pause was paid all the same.
        if !taken.is_empty() {
            let _ = writeln!(
                out,
                "Heap {}: {}; nothing compared (the isolate ended before the next one).",
                if taken.len() == 1 {
                    "snapshot"
                } else {
                    "snapshots"
                },
                taken.join(", ")
            );
        }
        return;
    };
    let _ = writeln!(
        out,
        "Heap snapshots: {}; the last two compared:",
        taken.join(", ")
    );
    let growing: Vec<_> = comparison
        .groups
        .iter()
        .filter(|c| c.growth.growing)
        .collect();
    if growing.is_empty() {
        let _ = writeln!(out, "   No constructor grew between them.");
    }
    for constructor in growing {
        let group = &constructor.growth;
        let what = match (&group.location, group.kind.as_str()) {
            (Some(l), _) => format!("closure {} ({}:{}:{})", group.name, l.url, l.line, l.column),
            (None, "object") => group.name.clone(),
            (None, _) => group.name.clone(),
        };
        let _ = writeln!(
            out,
            "{} {what}: {} -> {} instances, {} -> {}; {} allocated between the snapshots and still alive",
            style.paint(Style::RED, "GROWING CONSTRUCTOR"),
            thousands(group.before.instances),
            thousands(group.after.instances),
            human_bytes(group.before.bytes as f64),
            human_bytes(group.after.bytes as f64),
            thousands(group.new.instances),
        );
        if !group.retainer_path.is_empty() {
            let held = if group.new.instances > 0 {
                format!(
                    "{} of the {} new ones held this way",
                    thousands(group.held_alike),
                    thousands(group.new.instances)
                )
            } else {
                format!("{} held this way", thousands(group.held_alike))
            };
            let _ = writeln!(
                out,
                "   retained through: {} ({held})",
                leakscope_analysis::heap_snapshot::path_text(group),
            );
        }
        if let Some(site) = constructor.site.and_then(|index| isolate.sites.get(index)) {
            if let Some(frame) = site.frames.iter().find(|f| !f.url.is_empty()) {
                let _ = writeln!(
                    out,
                    "   probably allocated at the growing site {} ({}:{}:{})",
                    frame.function, frame.url, frame.line, frame.column
                );
            }
        }
    }
}

/// JavaScript frames: `at function (script:line:column)`.
pub(crate) fn render_script_frames(out: &mut String, frames: &[leakscope_analysis::ScriptFrame]) {
    for (index, frame) in frames.iter().enumerate() {
        let lead = if index == 0 { "at" } else { "by" };
        let place = match (frame.url.is_empty(), frame.line) {
            (true, _) => "native".to_owned(),
            (false, 0) => frame.url.clone(),
            (false, line) => format!("{}:{line}:{}", frame.url, frame.column),
        };
        let _ = writeln!(out, "   {lead} {} ({place}) [javascript]", frame.function);
    }
    if let [only] = frames {
        if let Some(meaning) = v8_state_meaning(&only.function) {
            let _ = writeln!(
                out,
                "   (no JavaScript was on the stack: V8 names the state it was in, {meaning})"
            );
        }
    }
}

/// What a stack of one pseudo-frame means: V8's sampling heap profiler names the VM state
/// when an allocation happened with no JavaScript frame on the stack (V8's
/// `SamplingHeapProfiler::AddStack`).
fn v8_state_meaning(function: &str) -> Option<&'static str> {
    Some(match function {
        "(V8 API)" => "native code (node's own C++ or an addon) calling V8's API, for example the HTTP parser making header strings",
        "(EXTERNAL)" => "native code called from JavaScript",
        "(GC)" => "the garbage collector",
        "(PARSER)" => "the parser, compiling source",
        "(BYTECODE_COMPILER)" | "(COMPILER)" => "the compiler",
        "(IDLE)" | "(IDLE_EXTERNAL)" | "(JS)" | "(LOGGING)" => "an internal state",
        _ => return None,
    })
}

fn human_seconds(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.0} us", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// The growth verdicts: every growing site with its stack, then a line for the others.
fn render_growth(out: &mut String, report: &ProcessReport, style: &Style) {
    use leakscope_analysis::growth::Verdict;
    let growing: Vec<_> = report
        .growth
        .iter()
        .filter(|g| g.verdict == Verdict::Growing)
        .collect();
    let plateau = report
        .growth
        .iter()
        .filter(|g| g.verdict == Verdict::Plateau)
        .count();
    let bounded = report
        .growth
        .iter()
        .filter(|g| g.verdict == Verdict::Bounded)
        .count();
    if report.timeline.is_empty() && report.growth.is_empty() {
        return;
    }
    out.push('\n');
    if growing.is_empty() {
        let _ = writeln!(
            out,
            "No site's live memory kept growing ({} {} over {} snapshots).",
            report.growth.len(),
            if report.growth.len() == 1 {
                "site watched"
            } else {
                "sites watched"
            },
            report.timeline.len()
        );
    }
    for site in &growing {
        let _ = writeln!(
            out,
            "{} at {}/s (confidence {:.2}): {} bytes in {} blocks live at the end{}",
            style.paint(Style::RED, "GROWING"),
            human_bytes(site.bytes_per_s),
            site.confidence,
            thousands(site.live_bytes_last),
            thousands(site.live_blocks_last),
            site.oldest_block_age_s
                .map(|age| format!(
                    ", the oldest allocated {} before the end",
                    human_duration(age)
                ))
                .unwrap_or_default(),
        );
        render_stack(out, report, site.stack, style);
        if let Some(seconds) = site.exhaustion_s {
            let available = seconds * site.bytes_per_s;
            let _ = writeln!(
                out,
                "   At {}/s this site would use up the machine's {} of available memory in {}.",
                human_bytes(site.bytes_per_s),
                human_bytes(available),
                human_duration(seconds)
            );
        }
        out.push('\n');
    }
    if plateau + bounded > 0 {
        let _ = writeln!(
            out,
            "{plateau} {} rose and then stayed flat (plateau: a cache or pool that filled up); \
             {bounded} {} rose and fell or stayed flat (bounded).",
            if plateau == 1 { "site" } else { "sites" },
            if bounded == 1 { "site" } else { "sites" },
        );
    }
}

/// Bytes in binary units: `512 B`, `12.3 KiB`, `21.0 GiB`.
pub(crate) fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration in the largest unit that keeps it readable: `45 s`, `12 min`, `3.5 h`, `20 days`.
pub(crate) fn human_duration(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.1} s"),
        s if s < 90.0 * 60.0 => format!("{:.0} min", s / 60.0),
        s if s < 48.0 * 3600.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.0} days", s / 86400.0),
    }
}

/// A frame as the text report shows it, uncoloured and without its address (an interpreter
/// frame with its kind after it): the name the stack formats give it.
pub(crate) fn frame_without_address(frame: &Frame) -> String {
    let text = describe_frame(frame, &Style { color: false });
    if frame.kind == FrameKind::Native {
        text
    } else {
        format!("{text} [{}]", frame.kind.name())
    }
}

/// What a frame says after its address: `function (file:line)`, `function (in module)`,
/// `module+0xoffset`, or `???`.
fn describe_frame(frame: &Frame, style: &Style) -> String {
    let mut text = match &frame.function {
        Some(function) => {
            let function = style.paint(Style::BOLD, function);
            match (&frame.file, frame.line, &frame.module) {
                (Some(file), Some(line), _) => format!("{function} ({}:{line})", base_name(file)),
                (Some(file), None, _) => format!("{function} ({})", base_name(file)),
                (None, _, Some(module)) => format!("{function} (in {module})"),
                (None, _, None) => function,
            }
        }
        None => match (&frame.module, frame.module_offset) {
            (Some(module), Some(offset)) => format!("{module}+{offset:#x}"),
            (Some(module), None) => format!("??? (in {module})"),
            (None, _) => "???".to_owned(),
        },
    };
    if frame.inlined {
        text.push(' ');
        text.push_str(&style.paint(Style::DIM, "(inlined)"));
    }
    text
}

/// memcheck shows source files by name only; the full path is in the JSON report.
fn base_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(path)
}

/// One LEAK SUMMARY line, labels right-aligned as memcheck aligns them. Only a kind that has
/// blocks is coloured: a red "definitely lost: 0 bytes" would alarm for nothing.
fn render_summary_line(
    out: &mut String,
    label: &str,
    amount: Amount,
    kind: Option<LeakKind>,
    style: &Style,
) {
    let padded = format!("{label:>18}");
    let label_start = padded.len() - label.len();
    let shown = match kind {
        Some(kind) if !amount.is_zero() => {
            format!("{}{}", &padded[..label_start], style.kind(kind, label))
        }
        _ => padded,
    };
    let _ = writeln!(out, "{shown}: {}", bytes_in_blocks(amount));
}

fn exit_sentence(exit: ExitStatus) -> String {
    match (exit.code, exit.signal) {
        (_, Some(signal)) => match signal_name(signal) {
            Some(name) => format!("Killed by signal {signal} ({name})."),
            None => format!("Killed by signal {signal}."),
        },
        (Some(code), None) => format!("Exited with code {code}."),
        (None, None) => "How it ended was not recorded.".to_owned(),
    }
}

/// Linux's names for the signals that end processes (x86-64 and aarch64 numbering).
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        31 => "SIGSYS",
        _ => return None,
    })
}

/// The command line as a shell would take it back: words with spaces or shell syntax are
/// single-quoted.
pub(crate) fn command_line(command: &[String]) -> String {
    if command.is_empty() {
        return "(command not recorded)".to_owned();
    }
    command
        .iter()
        .map(|word| shell_quoted(word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `1234567` as `1,234,567`, as memcheck writes byte and block counts.
pub(crate) fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let leading = match digits.len() % 3 {
        0 => 3,
        partial => partial,
    };
    let (head, rest) = digits.split_at(leading.min(digits.len()));
    let mut grouped = head.to_owned();
    for group in rest.as_bytes().chunks(3) {
        grouped.push(',');
        grouped.push_str(std::str::from_utf8(group).expect("digits are ASCII"));
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack of one V8 state pseudo-frame says what it means; a real frame of the same
    /// shape, or a pseudo-frame under a script frame, does not.
    #[test]
    fn a_v8_state_pseudo_frame_is_explained() {
        use leakscope_analysis::ScriptFrame;
        let frame = |function: &str, url: &str| ScriptFrame {
            function: function.to_owned(),
            url: url.to_owned(),
            line: 0,
            column: 0,
        };
        let mut out = String::new();
        render_script_frames(&mut out, &[frame("(V8 API)", "")]);
        assert_eq!(
            out,
            "   at (V8 API) (native) [javascript]\n   (no JavaScript was on the stack: V8 names the state it was in, native code (node's own C++ or an addon) calling V8's API, for example the HTTP parser making header strings)\n"
        );
        let mut out = String::new();
        render_script_frames(&mut out, &[frame("repeat", "")]);
        assert_eq!(out, "   at repeat (native) [javascript]\n");
        let mut out = String::new();
        render_script_frames(&mut out, &[frame("(GC)", ""), frame("tick", "/a.js")]);
        assert!(!out.contains("no JavaScript"), "{out}");
    }

    /// Two snapshots compared: a growing constructor with its path and its site, a group that
    /// grew too little to be listed in text; then the same isolate with one snapshot only.
    #[test]
    fn heap_snapshots_and_growing_constructors_are_rendered() {
        use leakscope_analysis::heap_snapshot::{Count, GroupGrowth, RetainerStep};
        use leakscope_analysis::scripts::{ConstructorGrowth, SnapshotComparison, SnapshotTaken};
        use leakscope_analysis::{ScriptFrame, ScriptIsolate, ScriptSite, Verdict};
        let snapshot = |n: u32, pause_ms| SnapshotTaken {
            n,
            t_s: 2.5 * n as f64,
            heap_used: 4 << (20 + n),
            pause_ms,
            skipped: None,
        };
        let group = |name: &str, growing, path: Vec<RetainerStep>| GroupGrowth {
            name: name.to_owned(),
            kind: "object".to_owned(),
            location: None,
            before: Count {
                instances: 1_000,
                bytes: 40_000,
            },
            after: Count {
                instances: 26_000,
                bytes: 1_040_000,
            },
            new: Count {
                instances: 25_000,
                bytes: 1_000_000,
            },
            growing,
            held_alike: if path.is_empty() { 0 } else { 24_000 },
            retainer_path: path,
        };
        let step = |holder: &str, edge_type: &str, edge: &str| RetainerStep {
            holder: holder.to_owned(),
            edge_type: edge_type.to_owned(),
            edge: edge.to_owned(),
        };
        let mut isolate = ScriptIsolate {
            pid: 7,
            thread: 0,
            version: "v20.20.2".to_owned(),
            argv: Vec::new(),
            heap_limit: 1 << 32,
            heap_used_last: 1 << 24,
            sampling_bytes: 32_768,
            samples: 21,
            sites: vec![ScriptSite {
                frames: vec![ScriptFrame {
                    function: "serve".to_owned(),
                    url: "/app/s.js".to_owned(),
                    line: 20,
                    column: 15,
                }],
                verdict: Verdict::Growing,
                bytes_per_s: 1e6,
                live_bytes_last: 1 << 23,
                live_bytes_peak: 1 << 23,
                confidence: 0.75,
                heap_exhaustion_s: None,
                exhaustion_s: None,
                series: Vec::new(),
            }],
            listeners: Vec::new(),
            errors: Vec::new(),
            ended: None,
            snapshots: vec![snapshot(1, Some(987.4)), snapshot(2, Some(1543.0))],
            comparison: Some(SnapshotComparison {
                compared: (1, 2),
                nodes_before: 80_000,
                nodes_after: 120_000,
                groups: vec![
                    ConstructorGrowth {
                        growth: group(
                            "Request",
                            true,
                            vec![
                                step("(closure context)", "context", "requestCache"),
                                step("Map", "internal", "table"),
                                step("(array)", "internal", "17"),
                            ],
                        ),
                        site: Some(0),
                    },
                    ConstructorGrowth {
                        growth: group("Headers", false, Vec::new()),
                        site: None,
                    },
                ],
            }),
        };
        let style = Style { color: false };
        let mut out = String::new();
        render_heap_comparison(&mut out, &isolate, &style);
        assert_eq!(
            out,
            "Heap snapshots: 8.0 MiB at 2.5 s (paused 987 ms), 16.0 MiB at 5.0 s (paused 1543 ms); the last two compared:\n\
             GROWING CONSTRUCTOR Request: 1,000 -> 26,000 instances, 39.1 KiB -> 1015.6 KiB; 25,000 allocated between the snapshots and still alive\n   \
             retained through: (closure context).requestCache → Map.table → (array)[17] → Request (24,000 of the 25,000 new ones held this way)\n   \
             probably allocated at the growing site serve (/app/s.js:20:15)\n"
        );
        isolate.comparison = None;
        isolate.snapshots.truncate(1);
        let mut out = String::new();
        render_heap_comparison(&mut out, &isolate, &style);
        assert_eq!(
            out,
            "Heap snapshot: 8.0 MiB at 2.5 s (paused 987 ms); nothing compared (the isolate ended before the next one).\n"
        );
    }

    #[test]
    fn thousands_are_grouped_by_commas() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(4096), "4,096");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn command_words_are_quoted_only_when_needed() {
        let command = ["./prog", "--size=10", "two words", "", "it's"].map(String::from);
        assert_eq!(
            command_line(&command),
            r"./prog --size=10 'two words' '' 'it'\''s'"
        );
        assert_eq!(command_line(&[]), "(command not recorded)");
    }

    #[test]
    fn exit_sentences() {
        let exit = |code, signal| exit_sentence(ExitStatus { code, signal });
        assert_eq!(exit(Some(0), None), "Exited with code 0.");
        assert_eq!(exit(Some(3), None), "Exited with code 3.");
        assert_eq!(exit(None, Some(11)), "Killed by signal 11 (SIGSEGV).");
        assert_eq!(exit(None, Some(64)), "Killed by signal 64.");
        assert_eq!(exit(None, None), "How it ended was not recorded.");
    }

    #[test]
    fn frames_fall_back_from_source_to_module_to_nothing() {
        let plain = Style { color: false };
        let frame =
            |function: Option<&str>, file: Option<&str>, line, module: Option<&str>| Frame {
                address: 0x1000,
                function: function.map(String::from),
                file: file.map(String::from),
                line,
                module: module.map(String::from),
                module_offset: module.map(|_| 0x10),
                inlined: false,
                ..Frame::default()
            };
        let cases = [
            (
                frame(Some("f"), Some("/src/a.c"), Some(7), Some("/bin/p")),
                "f (a.c:7)",
            ),
            (
                frame(Some("f"), Some("/src/a.c"), None, Some("/bin/p")),
                "f (a.c)",
            ),
            (
                frame(Some("strdup"), None, None, Some("/lib/libc.so.6")),
                "strdup (in /lib/libc.so.6)",
            ),
            (frame(Some("f"), None, None, None), "f"),
            (
                frame(None, None, None, Some("/lib/libx.so")),
                "/lib/libx.so+0x10",
            ),
            (frame(None, None, None, None), "???"),
        ];
        for (frame, expected) in cases {
            assert_eq!(describe_frame(&frame, &plain), expected);
        }
    }

    #[test]
    fn interpreter_frames_show_function_source_and_kind_and_no_address() {
        let plain = Style { color: false };
        let python = Frame {
            kind: FrameKind::Python,
            function: Some("process_request".into()),
            file: Some("/srv/app/job.py".into()),
            line: Some(12),
            ..Frame::default()
        };
        let java = Frame {
            kind: FrameKind::Java,
            function: Some("Main.run".into()),
            ..Frame::default()
        };
        let unknown = Frame {
            kind: FrameKind::JavaScript,
            ..Frame::default()
        };
        let native = Frame {
            address: 0x4011ab,
            function: Some("main".into()),
            file: Some("/src/leak.c".into()),
            line: Some(9),
            ..Frame::default()
        };
        let mut out = String::new();
        render_frames(&mut out, &[python, native, java, unknown], &plain);
        assert_eq!(
            out,
            "   at process_request (job.py:12) [python]\n   by 0x4011AB: main (leak.c:9)\n   by Main.run [java]\n   by ??? [javascript]\n"
        );
    }

    #[test]
    fn summary_labels_line_up_like_memchecks() {
        let plain = Style { color: false };
        let mut out = String::new();
        let amount = Amount {
            bytes: 4096,
            blocks: 1,
        };
        render_summary_line(&mut out, "definitely lost", amount, None, &plain);
        render_summary_line(&mut out, "possibly lost", amount, None, &plain);
        render_summary_line(&mut out, "suppressed", amount, None, &plain);
        let expected = [
            "   definitely lost: 4,096 bytes in 1 block",
            "     possibly lost: 4,096 bytes in 1 block",
            "        suppressed: 4,096 bytes in 1 block",
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    }
}

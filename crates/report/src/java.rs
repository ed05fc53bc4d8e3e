//! The Java section of every format: the JVM's classes with their verdicts, the path from a
//! GC root that holds a growing class, and the allocation stack of its sampled objects.

use std::fmt::Write as _;

use serde::Serialize;

use leakscope_analysis::growth::Verdict;
use leakscope_analysis::java::{ClassGrowth, JavaFindings, PathLink, PathToRoot};
use leakscope_format::{JavaFrame, JavaStatus};

use crate::text::{human_bytes, human_duration, thousands, Style};

/// A class name as a Java programmer writes it: `byte[]` for `[B`,
/// `java.util.HashMap$Node[]` for `[Ljava.util.HashMap$Node;`.
pub(crate) fn readable_class(name: &str) -> String {
    let dimensions = name.bytes().take_while(|&b| b == b'[').count();
    if dimensions == 0 {
        return name.to_owned();
    }
    let element = &name[dimensions..];
    let base = match element {
        "B" => "byte",
        "C" => "char",
        "D" => "double",
        "F" => "float",
        "I" => "int",
        "J" => "long",
        "S" => "short",
        "Z" => "boolean",
        other => other
            .strip_prefix('L')
            .and_then(|rest| rest.strip_suffix(';'))
            .unwrap_or(other),
    };
    format!("{base}{}", "[]".repeat(dimensions))
}

/// One object of a path, and how it points to the next: `Main.SESSIONS (static field)`,
/// `java.util.HashMap (Size: 4343) .table`, `java.util.HashMap$Node[] [512 of 8192]`.
pub(crate) fn describe_link(link: &PathLink) -> String {
    let mut text = match link.description.strip_prefix("Class Name: ") {
        Some(class) if link.class == "java.lang.Class" && !link.field.is_empty() => {
            format!("{class}.{} (static field)", link.field)
        }
        Some(class) if link.class == "java.lang.Class" => format!("class {class}"),
        _ => {
            let mut text = readable_class(&link.class);
            if !link.description.is_empty() {
                let _ = write!(text, " ({})", link.description);
            }
            if !link.field.is_empty() {
                let _ = write!(text, " .{}", link.field);
            }
            if let Some((index, length)) = link.element {
                let _ = write!(text, " [{index} of {length}]");
            }
            text
        }
    };
    if link.skipped > 0 {
        let _ = write!(text, " → … {} objects left out …", link.skipped);
    }
    text
}

/// The whole path, root first.
pub(crate) fn describe_path(path: &PathToRoot) -> String {
    let mut parts = vec![format!("[{}]", path.root)];
    parts.extend(path.links.iter().map(describe_link));
    parts.join(" → ")
}

/// A frame of an allocation stack: `Main$Session.<init> (line 4) [java, JIT compiled]`.
pub(crate) fn describe_frame(frame: &JavaFrame) -> String {
    let (class, method) = frame
        .method
        .rsplit_once('.')
        .unwrap_or(("", frame.method.as_str()));
    let mut text = if class.is_empty() {
        method.to_owned()
    } else {
        format!("{}.{method}", readable_class(class))
    };
    if frame.line > 0 {
        let _ = write!(text, " (line {})", frame.line);
    }
    let how = frame.how.to_lowercase();
    if how.is_empty() {
        text.push_str(" [java]");
    } else {
        let _ = write!(text, " [java, {how}]");
    }
    text
}

/// The Java section of the text report.
pub(crate) fn render_text(out: &mut String, java: &JavaFindings, style: &Style) {
    out.push('\n');
    let mut about = Vec::new();
    if let Some(version) = &java.version {
        about.push(format!("JDK {version}"));
    }
    if let Some(collector) = &java.collector {
        about.push(format!("{collector} collector"));
    }
    if let Some(max) = java.max_heap_bytes {
        about.push(format!("max heap {}", human_bytes(max as f64)));
    }
    let about = if about.is_empty() {
        String::new()
    } else {
        format!(" ({})", about.join(", "))
    };
    if java.status != JavaStatus::Watched || java.heap.is_empty() {
        let why = java
            .reason
            .as_deref()
            .unwrap_or("it ended before a class histogram was taken");
        let taken = if java.heap.is_empty() {
            String::new()
        } else {
            format!(" after {} class histograms", java.heap.len())
        };
        let _ = writeln!(
            out,
            "Java{about}: {} {why}{taken}.",
            match java.status {
                JavaStatus::Watched | JavaStatus::Failed => "watching the JVM stopped:",
                JavaStatus::AttachRefused | JavaStatus::TooOld => "the JVM was not watched:",
            }
        );
        if java.heap.is_empty() {
            return;
        }
    }
    let first = java.heap.first().map_or(0.0, |p| p.t_s);
    let _ = write!(
        out,
        "Java{about}: {} class histograms from {first:.2} s on, every {}",
        java.heap.len(),
        human_interval(java.interval_s)
    );
    if let Some(pauses) = &java.pauses {
        let _ = write!(
            out,
            "; each paused the program (a full collection, {}): median {:.1} ms, longest {:.1} ms{}, {:.0} ms in all",
            if pauses.by_the_jvm {
                "as the JVM measured it"
            } else {
                "as leakscope measured the answer"
            },
            pauses.median_ms,
            pauses.max_ms,
            pauses
                .gc_max_ms
                .map(|gc| format!(" (of which {gc:.1} ms collecting)"))
                .unwrap_or_default(),
            pauses.total_ms
        );
    }
    out.push_str(".\n");
    let growing: Vec<&ClassGrowth> = java
        .classes
        .iter()
        .filter(|c| c.verdict == Verdict::Growing)
        .collect();
    if growing.is_empty() {
        let _ = writeln!(
            out,
            "No Java class kept growing ({} classes judged).",
            java.classes.len()
        );
    }
    for class in &growing {
        let _ = writeln!(
            out,
            "{} class {} at {}/s, {:.0} instances/s (confidence {:.2}): {} instances, {} bytes live at the last histogram",
            style.paint(Style::RED, "GROWING"),
            style.paint(Style::BOLD, &readable_class(&class.class)),
            human_bytes(class.bytes_per_s),
            class.instances_per_s,
            class.confidence,
            thousands(class.instances_last),
            thousands(class.bytes_last),
        );
        let mut runs_out = Vec::new();
        if let (Some(seconds), Some(max)) = (class.heap_exhaustion_s, java.max_heap_bytes) {
            runs_out.push(format!(
                "the Java heap (max {}, {} free) in {}",
                human_bytes(max as f64),
                human_bytes(seconds * class.bytes_per_s),
                human_duration(seconds)
            ));
        }
        if let Some(seconds) = class.machine_exhaustion_s {
            runs_out.push(format!(
                "the machine's {} of available memory in {}",
                human_bytes(seconds * class.bytes_per_s),
                human_duration(seconds)
            ));
        }
        if !runs_out.is_empty() {
            let _ = writeln!(
                out,
                "   At this rate the class alone would fill {}.",
                runs_out.join(", and ")
            );
        }
        match &class.held_by {
            Some(path) => {
                let _ = writeln!(
                    out,
                    "   Held by ({} of {} sampled objects): {}",
                    path.samples,
                    path.of_samples,
                    describe_path(path)
                );
            }
            None if java.recorded => {
                let _ = writeln!(
                    out,
                    "   Held by: no sampled object of this class (or held by it) has a path to a GC root"
                );
            }
            None => {}
        }
        if let Some(site) = &class.allocated_at {
            let whose = if site.sampled_class == class.class {
                String::new()
            } else {
                format!(" (of a {} it holds)", readable_class(&site.sampled_class))
            };
            let _ = writeln!(
                out,
                "   Allocated{whose}, in {} sampled objects:",
                site.samples
            );
            for (index, frame) in site.frames.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "      {} {}",
                    if index == 0 { "at" } else { "by" },
                    describe_frame(frame)
                );
            }
        }
    }
    let plateau = java
        .classes
        .iter()
        .filter(|c| c.verdict == Verdict::Plateau)
        .count();
    let bounded = java.classes.len() - growing.len() - plateau;
    if plateau + bounded > 0 {
        let _ = writeln!(
            out,
            "{plateau} Java {} rose and then stayed flat (plateau); the {bounded} largest other {} rose and fell or stayed flat (bounded).",
            if plateau == 1 { "class" } else { "classes" },
            if bounded == 1 { "class" } else { "classes" },
        );
    }
}

fn human_interval(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1e3)
    } else {
        format!("{seconds:.0} s")
    }
}

/// The `java` object of the JSON report (docs/json-report.md).
#[derive(Serialize)]
pub(crate) struct JavaJson<'a> {
    status: &'static str,
    reason: Option<&'a str>,
    version: Option<&'a str>,
    collector: Option<&'a str>,
    max_heap_bytes: Option<u64>,
    interval_s: f64,
    histograms: usize,
    pauses: Option<PausesJson>,
    old_object_samples: usize,
    heap: Vec<HeapJson>,
    classes: Vec<ClassJson<'a>>,
}

#[derive(Serialize)]
struct PausesJson {
    count: usize,
    measured_by: &'static str,
    median_ms: f64,
    max_ms: f64,
    total_ms: f64,
    gc_max_ms: Option<f64>,
}

#[derive(Serialize)]
struct HeapJson {
    t_s: f64,
    bytes: u64,
    instances: u64,
}

#[derive(Serialize)]
struct ClassJson<'a> {
    class: &'a str,
    verdict: &'static str,
    confidence: f64,
    bytes_per_s: f64,
    instances_per_s: f64,
    instances_last: u64,
    bytes_last: u64,
    bytes_peak: u64,
    oldest_sample_age_s: Option<f64>,
    heap_exhaustion_s: Option<f64>,
    machine_exhaustion_s: Option<f64>,
    held_by: Option<PathJson<'a>>,
    allocated_at: Option<AllocationJson<'a>>,
}

#[derive(Serialize)]
struct PathJson<'a> {
    root: &'a str,
    samples: usize,
    of_samples: usize,
    text: String,
    links: Vec<LinkJson<'a>>,
}

#[derive(Serialize)]
struct LinkJson<'a> {
    class: &'a str,
    description: Option<&'a str>,
    field: Option<&'a str>,
    element: Option<ElementJson>,
    skipped: u32,
}

#[derive(Serialize)]
struct ElementJson {
    index: u32,
    length: u32,
}

#[derive(Serialize)]
struct AllocationJson<'a> {
    sampled_class: &'a str,
    samples: usize,
    stack: Vec<JavaFrameJson<'a>>,
}

#[derive(Serialize)]
struct JavaFrameJson<'a> {
    kind: &'static str,
    function: &'a str,
    line: Option<u32>,
    how: Option<&'a str>,
}

fn rounded(value: f64, decimals: i32) -> f64 {
    if !value.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn some_text(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

pub(crate) fn json(java: &JavaFindings) -> JavaJson<'_> {
    JavaJson {
        status: java.status.json_name(),
        reason: java.reason.as_deref(),
        version: java.version.as_deref(),
        collector: java.collector.as_deref(),
        max_heap_bytes: java.max_heap_bytes,
        interval_s: rounded(java.interval_s, 3),
        histograms: java.heap.len(),
        pauses: java.pauses.map(|p| PausesJson {
            count: p.count,
            measured_by: if p.by_the_jvm { "jvm" } else { "leakscope" },
            median_ms: rounded(p.median_ms, 3),
            max_ms: rounded(p.max_ms, 3),
            total_ms: rounded(p.total_ms, 3),
            gc_max_ms: p.gc_max_ms.map(|v| rounded(v, 3)),
        }),
        old_object_samples: java.old_object_samples,
        heap: java
            .heap
            .iter()
            .map(|p| HeapJson {
                t_s: rounded(p.t_s, 3),
                bytes: p.bytes,
                instances: p.instances,
            })
            .collect(),
        classes: java
            .classes
            .iter()
            .map(|c| ClassJson {
                class: &c.class,
                verdict: c.verdict.json_name(),
                confidence: rounded(c.confidence, 3),
                bytes_per_s: rounded(c.bytes_per_s, 3),
                instances_per_s: rounded(c.instances_per_s, 3),
                instances_last: c.instances_last,
                bytes_last: c.bytes_last,
                bytes_peak: c.bytes_peak,
                oldest_sample_age_s: c.oldest_sample_age_s.map(|v| rounded(v, 3)),
                heap_exhaustion_s: c.heap_exhaustion_s.map(|v| rounded(v, 1)),
                machine_exhaustion_s: c.machine_exhaustion_s.map(|v| rounded(v, 1)),
                held_by: c.held_by.as_ref().map(|path| PathJson {
                    root: &path.root,
                    samples: path.samples,
                    of_samples: path.of_samples,
                    text: describe_path(path),
                    links: path
                        .links
                        .iter()
                        .map(|link| LinkJson {
                            class: &link.class,
                            description: some_text(&link.description),
                            field: some_text(&link.field),
                            element: link
                                .element
                                .map(|(index, length)| ElementJson { index, length }),
                            skipped: link.skipped,
                        })
                        .collect(),
                }),
                allocated_at: c.allocated_at.as_ref().map(|site| AllocationJson {
                    sampled_class: &site.sampled_class,
                    samples: site.samples,
                    stack: site
                        .frames
                        .iter()
                        .map(|f| JavaFrameJson {
                            kind: "java",
                            function: &f.method,
                            line: (f.line > 0).then_some(f.line),
                            how: some_text(&f.how),
                        })
                        .collect(),
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_read_as_java_source_spells_them() {
        assert_eq!(readable_class("[B"), "byte[]");
        assert_eq!(readable_class("[[I"), "int[][]");
        assert_eq!(
            readable_class("[Ljava.util.HashMap$Node;"),
            "java.util.HashMap$Node[]"
        );
        assert_eq!(readable_class("Main$Session"), "Main$Session");
    }

    #[test]
    fn a_path_reads_from_the_root_with_statics_named() {
        let link = |class: &str, description: &str, field: &str, element| PathLink {
            class: class.into(),
            description: description.into(),
            field: field.into(),
            element,
            skipped: 0,
        };
        let path = PathToRoot {
            root: "Class Loader Data".into(),
            links: vec![
                link("java.lang.Class", "Class Name: Main", "SESSIONS", None),
                link("java.util.HashMap", "Size: 12", "table", None),
                link("[Ljava.util.HashMap$Node;", "", "", Some((3, 16))),
                link("java.util.HashMap$Node", "", "value", None),
                link("Main$Session", "", "", None),
            ],
            samples: 2,
            of_samples: 3,
        };
        assert_eq!(
            describe_path(&path),
            "[Class Loader Data] → Main.SESSIONS (static field) → java.util.HashMap (Size: 12) .table → java.util.HashMap$Node[] [3 of 16] → java.util.HashMap$Node .value → Main$Session"
        );
    }

    #[test]
    fn java_frames_show_method_line_and_how_it_ran() {
        let frame = JavaFrame {
            method: "Main$Session.<init>".into(),
            line: 4,
            how: "JIT compiled".into(),
        };
        assert_eq!(
            describe_frame(&frame),
            "Main$Session.<init> (line 4) [java, jit compiled]"
        );
    }
}

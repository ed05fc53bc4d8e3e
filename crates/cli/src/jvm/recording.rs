//! leakscope's flight recording in the JVM: its settings, and reading it back with the JDK's
//! own `jfr print --json` (no JFR binary parser of leakscope's own).

use std::path::{Path, PathBuf};

use leakscope_format::{JavaFrame, JavaOldObject, JavaPause, JavaReferrer};
use serde_json::Value;

/// The events leakscope records, and nothing else (a settings file of its own, so the
/// program's own recordings and settings are not touched): old object samples with their
/// stacks and, at the end, their paths to GC roots (`cutoff` infinity: the search is not cut
/// short); and the stop-the-world operations and collections, to measure what each class
/// histogram cost the program.
pub const SETTINGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration version="2.0" label="leakscope" description="leakscope: old object samples with paths to GC roots, and the pauses of its class histograms">
  <event name="jdk.OldObjectSample">
    <setting name="enabled">true</setting>
    <setting name="stackTrace">true</setting>
    <setting name="cutoff">infinity</setting>
  </event>
  <event name="jdk.GarbageCollection">
    <setting name="enabled">true</setting>
    <setting name="threshold">0 ms</setting>
  </event>
  <event name="jdk.ExecuteVMOperation">
    <setting name="enabled">true</setting>
    <setting name="threshold">0 ms</setting>
  </event>
</configuration>
"#;

/// The events read back.
const EVENTS: &str = "jdk.OldObjectSample,jdk.GarbageCollection,jdk.ExecuteVMOperation";

/// The `jfr` tool of the JDK the JVM runs from (`<java.home>/bin/jfr`, found from the
/// process's executable), else the first on `PATH`.
pub fn find_jfr_tool(pid: i32) -> Option<PathBuf> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let beside = exe
        .as_deref()
        .and_then(Path::parent)
        .map(|bin| bin.join("jfr"));
    beside.filter(|tool| tool.is_file()).or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("jfr"))
                .find(|tool| tool.is_file())
        })
    })
}

/// What the recording held.
#[derive(Debug, Default)]
pub struct Read {
    pub old_objects: Vec<JavaOldObject>,
    pub pauses: Vec<JavaPause>,
}

/// Convert the recording with `jfr print --json` and read its events; `class_id` interns a
/// class name (as the histogram spells it).
pub fn read(
    tool: &Path,
    recording: &Path,
    class_id: &mut dyn FnMut(&str) -> u32,
) -> Result<Read, String> {
    let output = std::process::Command::new(tool)
        .args(["print", "--json", "--events", EVENTS])
        .arg(recording)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} print failed ({}): {}",
            tool.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let document: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("the JSON of {} print is not readable: {e}", tool.display()))?;
    Ok(events(&document, class_id))
}

/// The old object samples and histogram pauses of a `jfr print --json` document.
pub fn events(document: &Value, class_id: &mut dyn FnMut(&str) -> u32) -> Read {
    let mut read = Read::default();
    let events = document["recording"]["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut collections = Vec::new();
    for event in events {
        let values = &event["values"];
        match event["type"].as_str() {
            Some("jdk.OldObjectSample") => {
                if let Some(object) = old_object(values, class_id) {
                    read.old_objects.push(object);
                }
            }
            Some("jdk.ExecuteVMOperation")
                if values["operation"].as_str() == Some("GC_HeapInspection") =>
            {
                if let (Some(start), Some(duration)) = (
                    values["startTime"].as_str().and_then(unix_ns),
                    values["duration"].as_str().and_then(duration_ns),
                ) {
                    read.pauses.push(JavaPause {
                        unix_ns: start,
                        operation_ns: duration,
                        gc_ns: 0,
                    });
                }
            }
            Some("jdk.GarbageCollection")
                if values["cause"].as_str() == Some("Heap Inspection Initiated GC") =>
            {
                if let (Some(start), Some(pauses)) = (
                    values["startTime"].as_str().and_then(unix_ns),
                    values["sumOfPauses"].as_str().and_then(duration_ns),
                ) {
                    collections.push((start, pauses));
                }
            }
            _ => {}
        }
    }
    // Each histogram's collection runs inside its VM operation.
    for pause in &mut read.pauses {
        let end = pause.unix_ns + pause.operation_ns;
        pause.gc_ns = collections
            .iter()
            .filter(|&&(start, _)| start >= pause.unix_ns && start <= end)
            .map(|&(_, pauses)| pauses)
            .sum();
    }
    read.pauses.sort_by_key(|pause| pause.unix_ns);
    read
}

/// A JFR class name (`java/util/HashMap$Node`) as the histogram spells it
/// (`java.util.HashMap$Node`).
fn class_name(class: &Value) -> String {
    class["name"].as_str().map_or_else(
        || "<unknown class>".to_owned(),
        |name| name.replace('/', "."),
    )
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn old_object(values: &Value, class_id: &mut dyn FnMut(&str) -> u32) -> Option<JavaOldObject> {
    let object = &values["object"];
    if object.is_null() {
        return None;
    }
    let mut sample = JavaOldObject {
        allocated_unix_ns: values["allocationTime"].as_str().and_then(unix_ns)?,
        seen_unix_ns: values["startTime"].as_str().and_then(unix_ns)?,
        class: class_id(&class_name(&object["type"])),
        array_length: values["arrayElements"]
            .as_i64()
            .and_then(|n| u32::try_from(n).ok()),
        root_system: text(&values["root"]["system"]),
        root_type: text(&values["root"]["type"]),
        root_description: text(&values["root"]["description"]),
        ..JavaOldObject::default()
    };
    // The recorder gives the chain from the sample up: each object's referrer names the
    // object (and its field or element) that points to it.
    let mut referrer = &object["referrer"];
    while !referrer.is_null() {
        let holder = &referrer["object"];
        if holder.is_null() {
            break;
        }
        let element = &referrer["array"];
        sample.path.push(JavaReferrer {
            class: class_id(&class_name(&holder["type"])),
            description: text(&holder["description"]),
            field: text(&referrer["field"]["name"]),
            element: element["index"].as_u64().zip(element["size"].as_u64()).map(
                |(index, size)| {
                    (
                        u32::try_from(index).unwrap_or(u32::MAX),
                        u32::try_from(size).unwrap_or(u32::MAX),
                    )
                },
            ),
            skipped: referrer["skip"]
                .as_u64()
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        });
        referrer = &holder["referrer"];
    }
    sample.path.reverse();
    let trace = &values["stackTrace"];
    sample.stack_truncated = trace["truncated"].as_bool().unwrap_or(false);
    for frame in trace["frames"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let method = &frame["method"];
        sample.stack.push(JavaFrame {
            method: format!(
                "{}.{}",
                class_name(&method["type"]),
                method["name"].as_str().unwrap_or("?")
            ),
            line: frame["lineNumber"]
                .as_i64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            how: text(&frame["type"]),
        });
    }
    Some(sample)
}

/// An instant as `jfr print` writes it (`2026-12-03T12:13:09.729707153Z`, UTC) in ns since
/// the Unix epoch.
pub fn unix_ns(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: i64 = clock_parts.next()?.parse().ok()?;
    let nanos: i64 = if fraction.is_empty() {
        0
    } else {
        let digits = &fraction[..fraction.len().min(9)];
        digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32)
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(seconds * 1_000_000_000 + nanos).ok()
}

/// An ISO-8601 duration as `jfr print` writes it (`PT0.012046938S`, `PT1M2.5S`) in ns.
pub fn duration_ns(text: &str) -> Option<u64> {
    let mut rest = text.strip_prefix("PT")?;
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
        let value: f64 = rest[..end].parse().ok()?;
        total += value
            * match &rest[end..=end] {
                "H" => 3600.0,
                "M" => 60.0,
                "S" => 1.0,
                _ => return None,
            };
        rest = &rest[end + 1..];
    }
    (total >= 0.0).then(|| (total * 1e9).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_durations_as_jfr_prints_them() {
        assert_eq!(unix_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_ns("2026-12-03T12:13:09.729707153Z"),
            Some(1_796_299_989_729_707_153)
        );
        assert_eq!(
            unix_ns("2000-03-01T00:00:01.5Z"),
            Some(951_868_801_500_000_000)
        );
        assert_eq!(unix_ns("2026-12-03T12:13:09+01:00"), None);
        assert_eq!(duration_ns("PT0.012046938S"), Some(12_046_938));
        assert_eq!(duration_ns("PT1M2.5S"), Some(62_500_000_000));
        assert_eq!(duration_ns("PT0S"), Some(0));
        assert_eq!(duration_ns("P1D"), None);
    }

    #[test]
    fn a_sample_gets_its_path_from_the_root_and_its_stack() {
        let document: Value = serde_json::from_str(
            r#"{"recording":{"events":[
            {"type":"jdk.OldObjectSample","values":{
              "startTime":"2026-12-03T12:13:09Z","allocationTime":"2026-12-03T12:13:06Z",
              "arrayElements":256,
              "root":{"description":null,"system":"Class Loader Data","type":"<unknown>"},
              "stackTrace":{"truncated":false,"frames":[
                {"method":{"type":{"name":"Main$Session"},"name":"<init>"},"lineNumber":4,"type":"JIT compiled"},
                {"method":{"type":{"name":"Main"},"name":"main"},"lineNumber":11,"type":"Interpreted"}]},
              "object":{"type":{"name":"[B"},"referrer":{"field":{"name":"data"},"array":null,"skip":0,
                "object":{"type":{"name":"Main$Session"},"description":null,"referrer":{"field":null,"array":{"size":8192,"index":964},"skip":0,
                  "object":{"type":{"name":"[Ljava/util/HashMap$Node;"},"description":null,"referrer":{"field":{"name":"SESSIONS"},"array":null,"skip":0,
                    "object":{"type":{"name":"java/lang/Class"},"description":"Class Name: Main","referrer":null}}}}}}}}},
            {"type":"jdk.ExecuteVMOperation","values":{"startTime":"2026-12-03T12:13:07Z","duration":"PT0.0126S","operation":"GC_HeapInspection"}},
            {"type":"jdk.ExecuteVMOperation","values":{"startTime":"2026-12-03T12:13:07Z","duration":"PT0.001S","operation":"Cleanup"}},
            {"type":"jdk.GarbageCollection","values":{"startTime":"2026-12-03T12:13:07.0001Z","sumOfPauses":"PT0.0098S","cause":"Heap Inspection Initiated GC"}}
            ]}}"#,
        )
        .unwrap();
        let mut names: Vec<String> = Vec::new();
        let read = events(&document, &mut |name| {
            names.iter().position(|n| n == name).unwrap_or_else(|| {
                names.push(name.to_owned());
                names.len() - 1
            }) as u32
        });
        assert_eq!(read.pauses.len(), 1);
        assert_eq!(read.pauses[0].operation_ns, 12_600_000);
        assert_eq!(read.pauses[0].gc_ns, 9_800_000);
        let sample = &read.old_objects[0];
        assert_eq!(names[sample.class as usize], "[B");
        assert_eq!(sample.array_length, Some(256));
        assert_eq!(sample.root_system, "Class Loader Data");
        type Link<'n> = (&'n str, &'n str, Option<(u32, u32)>);
        let path: Vec<Link> = sample
            .path
            .iter()
            .map(|r| {
                (
                    names[r.class as usize].as_str(),
                    r.field.as_str(),
                    r.element,
                )
            })
            .collect();
        assert_eq!(
            path,
            vec![
                ("java.lang.Class", "SESSIONS", None),
                ("[Ljava.util.HashMap$Node;", "", Some((964, 8192))),
                ("Main$Session", "data", None),
            ]
        );
        assert_eq!(sample.path[0].description, "Class Name: Main");
        assert_eq!(sample.stack[0].method, "Main$Session.<init>");
        assert_eq!(sample.stack[0].line, 4);
        assert_eq!(sample.stack[1].how, "Interpreted");
        assert_eq!(
            sample.seen_unix_ns - sample.allocated_unix_ns,
            3_000_000_000
        );
    }
}

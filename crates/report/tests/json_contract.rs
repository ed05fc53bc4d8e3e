//! The JSON report against its documented contract: `docs/schema/report.v1.json` (checked
//! with a small validator for the keywords that schema uses) and `docs/json-report.md`
//! (which must describe every field the schema names).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use leakscope_report::{render_json, Report, JSON_FORMAT_VERSION};
use serde_json::Value;

fn docs_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(relative)
}

fn schema() -> Value {
    let text = std::fs::read_to_string(docs_path("schema/report.v1.json")).expect("read schema");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Check `value` against `schema`, collecting every mismatch with its JSON path. Stricter
/// than JSON Schema in one way: an object may only hold the properties its schema lists, so
/// that no field reaches the output without being documented.
fn validate(value: &Value, schema: &Value, root: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = schema.as_object().expect("schemas are objects");
    if let Some(reference) = schema.get("$ref") {
        let pointer = reference
            .as_str()
            .and_then(|reference| reference.strip_prefix('#'))
            .expect("local references only");
        let target = root.pointer(pointer).expect("reference resolves");
        validate(value, target, root, path, errors);
    }
    for (keyword, expected) in schema {
        match keyword.as_str() {
            "$ref" | "$schema" | "title" | "description" | "$defs" => {}
            "const" if value != expected => {
                errors.push(format!("{path}: {value} is not {expected}"))
            }
            "enum" if !expected.as_array().unwrap().contains(value) => {
                errors.push(format!("{path}: {value} is not one of {expected}"))
            }
            "type" => {
                let allowed: Vec<&str> = match expected {
                    Value::String(name) => vec![name.as_str()],
                    Value::Array(names) => {
                        names.iter().map(|name| name.as_str().unwrap()).collect()
                    }
                    _ => panic!("bad type keyword at {path}"),
                };
                // An integer is also a JSON Schema "number".
                let accepted = allowed.contains(&json_type(value))
                    || (allowed.contains(&"number") && value.is_number());
                if !accepted {
                    errors.push(format!("{path}: {} is not {allowed:?}", json_type(value)));
                }
            }
            "minimum" => {
                if let Some(number) = value.as_f64() {
                    if number < expected.as_f64().unwrap() {
                        errors.push(format!("{path}: {number} is below {expected}"));
                    }
                }
            }
            "maximum" => {
                if let Some(number) = value.as_f64() {
                    if number > expected.as_f64().unwrap() {
                        errors.push(format!("{path}: {number} is above {expected}"));
                    }
                }
            }
            "pattern" => {
                assert_eq!(
                    expected, "^0x[0-9a-f]+$",
                    "the validator knows only the hex pattern"
                );
                if let Some(text) = value.as_str() {
                    let digits = text.strip_prefix("0x").unwrap_or("");
                    let hex = !digits.is_empty()
                        && digits
                            .chars()
                            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
                    if !hex {
                        errors.push(format!("{path}: {text:?} is not lower-case 0x hex"));
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for key in expected.as_array().unwrap() {
                        let key = key.as_str().unwrap();
                        if !object.contains_key(key) {
                            errors.push(format!("{path}: missing {key}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    let properties = expected.as_object().unwrap();
                    for (key, item) in object {
                        match properties.get(key) {
                            Some(property) => {
                                validate(item, property, root, &format!("{path}.{key}"), errors)
                            }
                            None => errors.push(format!("{path}: {key} is not in the schema")),
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (index, item) in items.iter().enumerate() {
                        validate(item, expected, root, &format!("{path}[{index}]"), errors);
                    }
                }
            }
            // Every object's keys must be in its `properties` already (above).
            "additionalProperties" => assert_eq!(
                expected, false,
                "the validator knows only additionalProperties: false"
            ),
            "minItems" | "maxItems" => {
                if let Some(items) = value.as_array() {
                    let bound = expected.as_u64().unwrap() as usize;
                    let fits = if keyword == "minItems" {
                        items.len() >= bound
                    } else {
                        items.len() <= bound
                    };
                    if !fits {
                        errors.push(format!("{path}: {} items, {keyword} {bound}", items.len()));
                    }
                }
            }
            "const" | "enum" => {}
            other => panic!("the validator does not know the schema keyword {other} (at {path})"),
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_against_schema(report: &Report) -> Value {
    let output: Value = serde_json::from_str(&render_json(report)).expect("render_json gives JSON");
    let schema = schema();
    let mut errors = Vec::new();
    validate(&output, &schema, &schema, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "the report breaks its schema:\n{}",
        errors.join("\n")
    );
    output
}

#[test]
fn a_leaky_report_matches_the_schema() {
    let output = check_against_schema(&common::leaky());
    assert_eq!(output["leaks"].as_array().unwrap().len(), 4);
}

#[test]
fn a_watched_report_matches_the_schema() {
    let output = check_against_schema(&common::watched());
    assert_eq!(output["growth"][0]["verdict"], "growing");
    assert_eq!(output["timeline"].as_array().unwrap().len(), 4);
}

#[test]
fn a_sampled_report_matches_the_schema() {
    let output = check_against_schema(&common::sampled());
    assert_eq!(output["sampling"]["rate_bytes"], 524_288);
    assert_eq!(output["sampling"]["unsampled"]["blocks"], 3);
    assert_eq!(output["leaks"][0]["estimated"], true);
}

#[test]
fn a_clean_report_matches_the_schema() {
    let output = check_against_schema(&common::clean());
    assert_eq!(output["leaks"], Value::Array(Vec::new()));
}

#[test]
fn a_report_with_children_matches_the_schema() {
    let output = check_against_schema(&common::with_children());
    let children = output["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    // A duration that is not a number is written as unknown, not as an invalid number.
    assert_eq!(children[1]["duration_s"], Value::Null);
}

/// A Node.js isolate with a growing site, a listener pair, two heap snapshots and one skipped,
/// and their comparison with a retainer path.
#[test]
fn a_node_report_with_heap_snapshots_matches_the_schema() {
    use leakscope_analysis::heap_snapshot::{Count, GroupGrowth, RetainerStep, SourceLocation};
    use leakscope_analysis::scripts::{ConstructorGrowth, SnapshotComparison, SnapshotTaken};
    use leakscope_analysis::{ListenerGrowth, ScriptFrame, ScriptIsolate, ScriptSite, Verdict};
    let frame = |function: &str, line| ScriptFrame {
        function: function.to_owned(),
        url: "/app/server.js".to_owned(),
        line,
        column: 3,
    };
    let count = |instances, bytes| Count { instances, bytes };
    let group = |name: &str, kind: &str, location, path: Vec<RetainerStep>| GroupGrowth {
        name: name.to_owned(),
        kind: kind.to_owned(),
        location,
        before: count(10, 400),
        after: count(5_010, 200_400),
        new: count(5_000, 200_000),
        growing: true,
        held_alike: if path.is_empty() { 0 } else { 5_000 },
        retainer_path: path,
    };
    let step = |holder: &str, edge_type: &str, edge: &str| RetainerStep {
        holder: holder.to_owned(),
        edge_type: edge_type.to_owned(),
        edge: edge.to_owned(),
    };
    let snapshot = |n, pause_ms, skipped: Option<&str>| SnapshotTaken {
        n,
        t_s: 2.5 * n as f64,
        heap_used: 8_000_000 * n as u64,
        pause_ms,
        skipped: skipped.map(String::from),
    };
    let mut report = common::watched();
    report.findings.scripts = vec![ScriptIsolate {
        pid: 7,
        thread: 0,
        version: "v20.20.2".to_owned(),
        argv: vec!["/app/server.js".to_owned()],
        heap_limit: 4_345_298_944,
        heap_used_last: 12_000_000,
        sampling_bytes: 32_768,
        samples: 21,
        sites: vec![ScriptSite {
            frames: vec![frame("Request", 4), frame("serve", 12)],
            verdict: Verdict::Growing,
            bytes_per_s: 1_200_000.0,
            live_bytes_last: 8_000_000,
            live_bytes_peak: 8_000_000,
            confidence: 0.75,
            heap_exhaustion_s: Some(3_600.0),
            exhaustion_s: None,
            series: vec![(0.25, 0), (0.5, 32_768)],
        }],
        listeners: vec![ListenerGrowth {
            emitter: "EventEmitter".to_owned(),
            event: "tick".to_owned(),
            verdict: Verdict::Bounded,
            per_s: 0.0,
            listeners_last: 1,
            added: 1,
            confidence: 1.0,
            stacks: vec![(1, vec![frame("attach", 20)])],
        }],
        errors: Vec::new(),
        ended: Some("exit".to_owned()),
        snapshots: vec![
            snapshot(1, Some(987.4), None),
            snapshot(2, Some(1_543.0), None),
            snapshot(
                3,
                None,
                Some("the V8 heap (40.0 MiB used) is above the limit of 32.0 MiB"),
            ),
        ],
        comparison: Some(SnapshotComparison {
            compared: (1, 2),
            nodes_before: 80_000,
            nodes_after: 120_000,
            groups: vec![
                ConstructorGrowth {
                    growth: group(
                        "Request",
                        "object",
                        None,
                        vec![
                            step("(closure context)", "context", "requestCache"),
                            step("Map", "internal", "table"),
                            step("(array)", "internal", "17"),
                        ],
                    ),
                    site: Some(0),
                },
                ConstructorGrowth {
                    growth: group(
                        "onTick",
                        "closure",
                        Some(SourceLocation {
                            url: "/app/server.js".to_owned(),
                            line: 21,
                            column: 5,
                        }),
                        Vec::new(),
                    ),
                    site: None,
                },
            ],
        }),
    }];
    let output = check_against_schema(&report);
    let isolate = &output["scripts"][0];
    assert_eq!(isolate["heap_snapshots"][2]["pause_ms"], Value::Null);
    let constructors = &isolate["heap_comparison"]["constructors"];
    assert_eq!(
        constructors[0]["retainer_path_text"],
        "(closure context).requestCache → Map.table → (array)[17] → Request"
    );
    assert_eq!(constructors[0]["site"], 0);
    assert_eq!(constructors[1]["retainer_path_text"], Value::Null);
    assert_eq!(constructors[1]["location"]["line"], 21);
}

#[test]
fn every_document_says_how_far_its_leak_check_got() {
    let output = check_against_schema(&common::leaky());
    assert_eq!(output["leak_check"]["status"], "complete");
    assert_eq!(output["leak_check"]["reasons"], Value::Array(Vec::new()));

    let output = check_against_schema(&common::not_run());
    assert_eq!(output["leak_check"]["status"], "not_run");
    let reasons = output["leak_check"]["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0].as_str().unwrap().contains("SIGKILL"),
        "{reasons:?}"
    );

    let output = check_against_schema(&common::incomplete());
    assert_eq!(output["leak_check"]["status"], "incomplete");
    assert_eq!(output["leak_check"]["reasons"].as_array().unwrap().len(), 2);

    // Children carry their own.
    let output = check_against_schema(&common::not_run_with_children());
    assert_eq!(output["leak_check"]["status"], "not_run");
    assert_eq!(output["children"][0]["leak_check"]["status"], "complete");
    assert_eq!(output["children"][1]["leak_check"]["status"], "incomplete");
    let output = check_against_schema(&common::with_children());
    assert_eq!(output["children"][0]["leak_check"]["status"], "not_run");
}

/// Byte and block counts beyond 32 bits (and up to u64::MAX) reach the JSON exactly.
#[test]
fn counts_beyond_32_bits_are_written_exactly() {
    let mut report = common::clean();
    let big = leakscope_analysis::Amount {
        bytes: u64::MAX,
        blocks: 9_000_000_000,
    };
    report.findings.leaks.summary.definitely_lost = big;
    report.findings.leaks.records = vec![leakscope_analysis::LossRecord {
        kind: leakscope_format::LeakKind::DefinitelyLost,
        stack: 0,
        amount: big,
        estimated: false,
    }];
    let output = check_against_schema(&report);
    assert_eq!(output["summary"]["definitely_lost"]["bytes"], u64::MAX);
    assert_eq!(
        output["summary"]["definitely_lost"]["blocks"],
        9_000_000_000u64
    );
    assert_eq!(output["leaks"][0]["blocks"], 9_000_000_000u64);
    let text = leakscope_report::render_text(&report, Default::default());
    assert!(
        text.contains(
            "18,446,744,073,709,551,615 bytes in 9,000,000,000 blocks are definitely lost"
        ),
        "{text}"
    );
}

#[test]
fn the_validator_rejects_what_breaks_the_contract() {
    let schema = schema();
    let mut output: Value = serde_json::from_str(&render_json(&common::leaky())).unwrap();
    let frame = &mut output["leaks"][1]["stack"][0];
    frame["line"] = Value::from("7");
    frame.as_object_mut().unwrap().remove("inlined");
    frame["address"] = Value::from("0X55");
    output["summary"]["definitely_lost"]["bytes"] = Value::from(-1);
    output["undocumented"] = Value::Bool(true);
    output["format_version"] = Value::from(2);
    let mut errors = Vec::new();
    validate(&output, &schema, &schema, "$", &mut errors);
    assert_eq!(errors.len(), 6, "{errors:#?}");
}

#[test]
fn version_fields_carry_the_contract_and_the_crate_version() {
    let output: Value = serde_json::from_str(&render_json(&common::clean())).unwrap();
    assert_eq!(output["format_version"], JSON_FORMAT_VERSION);
    assert_eq!(output["tool"]["name"], "leakscope");
    assert_eq!(output["tool"]["version"], env!("CARGO_PKG_VERSION"));
}

/// Every property name in the schema.
fn schema_property_names(schema: &Value, names: &mut BTreeSet<String>) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = object.get("properties") {
                names.extend(properties.keys().cloned());
            }
            object
                .values()
                .for_each(|value| schema_property_names(value, names));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|value| schema_property_names(value, names)),
        _ => {}
    }
}

#[test]
fn the_document_describes_every_field_of_the_schema() {
    let document =
        std::fs::read_to_string(docs_path("json-report.md")).expect("read json-report.md");
    let mut names = BTreeSet::new();
    schema_property_names(&schema(), &mut names);
    let undocumented: Vec<&String> = names
        .iter()
        .filter(|name| !document.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/json-report.md does not describe {undocumented:?}"
    );
    assert!(
        names.len() > 20,
        "the schema walk found too few fields: {names:?}"
    );
}

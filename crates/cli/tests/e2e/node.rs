//! Issue 13: Node.js programs (`tests/node/`) under `leakscope run`, on every node on the
//! machine: JavaScript allocation sites that keep growing, listener leaks with the stack that
//! added the listeners, worker threads as isolates of their own, an HTTP server under load,
//! the program's own NODE_OPTIONS and exit code left as they were, and the JavaScript sites in
//! `leakscope diff`.
//!
//! Each script's header says what must be found:
//! - `expect listener-leak CLASS EVENT FUNCTION`: listeners of EVENT on CLASS emitters grow,
//!   and the stack that added most of them starts at FUNCTION;
//! - `expect growing-site F...`: the main thread's fastest growing site starts at one of F
//!   (V8's sampling heap profiler names the function an inlined callee was inlined into);
//! - `expect worker-growing-site F...`: a worker thread has such a site, the main thread not;
//! - `expect growing-constructor NAME WORD`: between the main thread's heap snapshots, the
//!   first growing constructor (objects and closures: V8's strings and numbers of the same
//!   objects grow beside them) is NAME, and its retainer path names WORD (the variable or
//!   field that holds its instances);
//! - `expect no-growing-constructor`: the main thread's snapshots were compared, and no
//!   constructor grew between them in any isolate;
//! - `expect no-growing-site`, `expect no-listener-leak`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::expect::Exit;
use crate::harness::leakscope::{invoke, Invocation};
use crate::harness::os_args;
use crate::harness::process::Guard;
use crate::harness::report::{functions, read_json};

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// Every distinct node on the machine (`node` and Debian's `nodejs` on PATH, by the file
/// they resolve to). None is a failure that says what to install: CI installs Debian's
/// nodejs through .ci/setup.sh.
fn nodes() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["node", "nodejs"] {
            let candidate = dir.join(name);
            if let Ok(real) = std::fs::canonicalize(&candidate) {
                if !found
                    .iter()
                    .any(|f| std::fs::canonicalize(f).ok() == Some(real.clone()))
                {
                    found.push(candidate);
                }
            }
        }
    }
    assert!(
        !found.is_empty(),
        "no node on PATH: install Debian's nodejs (bash .ci/setup.sh does)"
    );
    found
}

/// The `// expect` lines of a script.
fn expectations(script: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(script)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("// expect "))
        .map(|rest| rest.split_whitespace().map(String::from).collect())
        .collect()
}

fn isolates(report: &Value) -> &Vec<Value> {
    report["scripts"].as_array().expect("a scripts array")
}

fn growing(isolate: &Value) -> impl Iterator<Item = &Value> {
    isolate["sites"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "growing")
}

/// The innermost frame of the script's own code: V8's builtins (`repeat`, `push`, with no
/// script) are where the bytes were made, not who made them.
fn innermost(site: &Value) -> String {
    site["stack"]
        .as_array()
        .unwrap()
        .iter()
        .find(|frame| frame["file"].is_string())
        .and_then(|frame| frame["function"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Check `report` against the script's expectations; the failures.
fn check(name: &str, report: &Value, expected: &[Vec<String>]) -> Vec<String> {
    let mut failures = Vec::new();
    let all = isolates(report);
    let Some(main) = all.iter().find(|i| i["thread"] == 0) else {
        return vec![format!("{name}: no main-thread records: {report:#}")];
    };
    if main["samples"].as_u64().unwrap_or(0) < 8 {
        failures.push(format!("{name}: only {} samples", main["samples"]));
    }
    // The instrument's own native memory is never the program's growth.
    for site in report["growth"].as_array().unwrap() {
        let names = functions(&site["stack"]);
        if names
            .iter()
            .any(|f| f.contains("SamplingHeapProfiler") || f.contains("HeapSnapshotGenerator"))
        {
            failures.push(format!(
                "{name}: the sampling profiler's memory is reported: {names:?}"
            ));
        }
    }
    for expectation in expected {
        match expectation[0].as_str() {
            "listener-leak" => {
                let (class, event, function) = (&expectation[1], &expectation[2], &expectation[3]);
                let leak = main["listeners"].as_array().unwrap().iter().find(|l| {
                    l["verdict"] == "growing" && &l["emitter"] == class && &l["event"] == event
                });
                match leak {
                    None => failures.push(format!(
                        "{name}: no listener leak of '{event}' on {class}: {:#}",
                        main["listeners"]
                    )),
                    Some(leak) => {
                        let top = functions(&leak["stacks"][0]["stack"]);
                        if top.first() != Some(function) {
                            failures.push(format!(
                                "{name}: the listeners were added at {top:?}, not {function}"
                            ));
                        }
                    }
                }
            }
            "growing-site" => {
                let wanted = &expectation[1..];
                // A site with no script frame (V8's "(V8 API)": header strings the HTTP
                // parser made from C++) may grow faster; the script's own site is checked.
                match growing(main).find(|site| !innermost(site).is_empty()) {
                    Some(site) if wanted.contains(&innermost(site)) => {}
                    other => failures.push(format!(
                        "{name}: the fastest growing site of the script is {:?}, not one of {wanted:?}: {:#}",
                        other.map(innermost),
                        main["sites"]
                    )),
                }
            }
            "worker-growing-site" => {
                let wanted = &expectation[1..];
                let worker_has = all
                    .iter()
                    .filter(|i| i["thread"] != 0)
                    .any(|worker| growing(worker).any(|site| wanted.contains(&innermost(site))));
                if !worker_has {
                    failures.push(format!(
                        "{name}: no worker thread has a growing site in {wanted:?}: {all:#?}"
                    ));
                }
                if growing(main).any(|site| wanted.contains(&innermost(site))) {
                    failures.push(format!("{name}: the main thread has the worker's site"));
                }
            }
            "no-growing-site" => {
                for isolate in all {
                    if let Some(site) = growing(isolate).next() {
                        failures.push(format!(
                            "{name}: thread {} has a growing site: {site:#}",
                            isolate["thread"]
                        ));
                    }
                }
            }
            "growing-constructor" => {
                let (class, word) = (&expectation[1], &expectation[2]);
                let Some(comparison) = main["heap_comparison"].as_object() else {
                    failures.push(format!(
                        "{name}: the heap snapshots were not compared: {:#}",
                        main["heap_snapshots"]
                    ));
                    continue;
                };
                let first = comparison["constructors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| {
                        c["growing"] == true && (c["kind"] == "object" || c["kind"] == "closure")
                    });
                match first {
                    Some(c) if &c["name"] == class => {
                        let path = c["retainer_path_text"].as_str().unwrap_or_default();
                        if !path.contains(word.as_str()) {
                            failures.push(format!(
                                "{name}: the retainer path of {class} does not name {word}: {path}"
                            ));
                        }
                    }
                    other => failures.push(format!(
                        "{name}: the first growing constructor is {:?}, not {class}: {:#}",
                        other.map(|c| &c["name"]),
                        comparison["constructors"]
                    )),
                }
            }
            "no-growing-constructor" => {
                if main["heap_comparison"].is_null() {
                    failures.push(format!(
                        "{name}: the heap snapshots were not compared: {:#}",
                        main["heap_snapshots"]
                    ));
                }
                for isolate in all {
                    for c in isolate["heap_comparison"]["constructors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|c| c["growing"] == true)
                    {
                        failures.push(format!(
                            "{name}: thread {} has a growing constructor: {c:#}",
                            isolate["thread"]
                        ));
                    }
                }
            }
            "no-listener-leak" => {
                for isolate in all {
                    for l in isolate["listeners"].as_array().unwrap() {
                        if l["verdict"] == "growing" {
                            failures.push(format!("{name}: a listener leak: {l:#}"));
                        }
                    }
                }
            }
            other => failures.push(format!("{name}: unknown expectation '{other}'")),
        }
    }
    failures
}

/// Run one script under leakscope with `node`; the report.
fn run_script(node: &Path, script: &Path, dir: &Path) -> Value {
    let report = Invocation::new(node).args([script]).run_ok(dir);
    assert_eq!(report["exit"]["code"], 0);
    report
}

/// `script` under `node` with its profile kept at `dir/run.profile`: the profile's path and
/// the JSON report.
fn run_script_keeping(node: &Path, script: &Path, dir: &Path) -> (PathBuf, Value) {
    let profile = dir.join("run.profile");
    let report = Invocation::new(node)
        .args([script])
        .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
        .run_ok(dir);
    (profile, report)
}

fn scenario(name: &str) {
    let script = scripts_dir().join(name);
    let expected = expectations(&script);
    assert!(!expected.is_empty(), "{name} has no expectations");
    let mut failures = Vec::new();
    for node in nodes() {
        let dir = tempfile::tempdir().unwrap();
        let report = run_script(&node, &script, dir.path());
        failures.extend(
            check(name, &report, &expected)
                .into_iter()
                .map(|f| format!("{}: {f}", node.display())),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_seed_listener_leak_is_named_with_the_function_that_attached() {
    scenario("listener_leak.js");
}

#[test]
fn an_event_target_listener_leak_is_named_with_the_function_that_attached() {
    scenario("event_target_leak.js");
}

#[test]
fn an_unbounded_memo_object_grows_where_it_stores() {
    scenario("memo_object.js");
}

#[test]
fn an_es_module_memo_grows_where_it_stores() {
    scenario("memo_object.mjs");
}

#[test]
fn a_map_lru_of_fixed_capacity_has_no_growing_site() {
    scenario("lru_map.js");
}

#[test]
fn a_map_of_requests_grows_as_their_class_held_through_the_map() {
    scenario("request_cache.js");
}

/// The heap snapshots of request_cache.js in the text and HTML reports of its kept profile:
/// each snapshot's heap and pause, the growing `Request` with its retainer path through
/// `requestCache`'s Map; and no raw snapshot is left beside the profile.
#[test]
fn heap_snapshots_are_reported_in_text_and_html_and_their_files_removed() {
    let script = scripts_dir().join("request_cache.js");
    for node in nodes() {
        let dir = tempfile::tempdir().unwrap();
        let (profile, report) = run_script_keeping(&node, &script, dir.path());
        let node = node.display();
        let main = &isolates(&report)[0];
        let snapshots = main["heap_snapshots"].as_array().unwrap();
        assert!(snapshots.len() >= 2, "{node}: {snapshots:#?}");
        for snapshot in snapshots {
            assert!(
                snapshot["pause_ms"].as_f64().unwrap() > 0.0,
                "{node}: {snapshot}"
            );
            assert!(
                snapshot["heap_used_bytes"].as_u64().unwrap() > 1 << 20,
                "{node}: {snapshot}"
            );
        }
        // Tied to the growing site, which runs in `tick`, whose closure holds the Map.
        let request = main["heap_comparison"]["constructors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "Request")
            .unwrap_or_else(|| panic!("{node}: no Request: {main:#}"));
        let site = &main["sites"][request["site"].as_u64().unwrap_or(u64::MAX) as usize];
        assert_eq!(site["verdict"], "growing", "{node}: {request:#}");
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".heapsnapshot"))
            .collect();
        assert!(left.is_empty(), "{node}: snapshots left behind: {left:?}");

        let output = invoke(dir.path(), &os_args!["report", profile.as_os_str()]);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let text = output.stdout_text();
        let heading = text
            .lines()
            .find(|l| l.starts_with("Heap snapshots: "))
            .unwrap_or_else(|| panic!("{node}: no heap snapshots line:\n{text}"));
        assert_eq!(
            heading.matches("(paused ").count(),
            snapshots.len(),
            "{node}: {heading}"
        );
        let mut lines = text
            .lines()
            .skip_while(|l| !l.starts_with("GROWING CONSTRUCTOR Request: "));
        assert!(
            lines.next().is_some(),
            "{node}: no growing Request:\n{text}"
        );
        let path = lines.next().unwrap_or_default();
        assert!(
            path.starts_with("   retained through: ") && path.contains(".requestCache → Map."),
            "{node}: {path}"
        );
        let tie = lines.next().unwrap_or_default();
        assert!(
            tie.starts_with("   probably allocated at the growing site "),
            "{node}: {tie}"
        );

        let page = dir.path().join("report.html");
        let output = invoke(
            dir.path(),
            &os_args![
                "report",
                profile.as_os_str(),
                "--format",
                "html",
                "--output",
                page.as_os_str()
            ],
        );
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let rendered = crate::html::headless(
            dir.path(),
            &["--dump-dom"],
            &format!("file://{}", page.display()),
        );
        crate::html::assert_rendered(&rendered, "request_cache.js");
        assert!(
            rendered.dom.contains("Heap snapshots (node main thread)"),
            "{node}"
        );
        assert!(rendered.dom.contains(">Request</td>"), "{node}");
    }
}

/// Above `--js-heap-snapshot-limit` no snapshot is taken (node's own start-up heap is above
/// 1 MiB): a note says why, the program runs and exits as ever, and nothing is compared.
#[test]
fn a_heap_above_the_snapshot_limit_is_not_snapshotted_and_a_note_says_so() {
    let script = scripts_dir().join("request_cache.js");
    for node in nodes() {
        let dir = tempfile::tempdir().unwrap();
        let report = Invocation::new(&node)
            .args([&script])
            .extra(["--js-heap-snapshot-limit", "1M"])
            .run_ok(dir.path());
        let node = node.display();
        let main = &isolates(&report)[0];
        let snapshots = main["heap_snapshots"].as_array().unwrap();
        assert_eq!(snapshots.len(), 1, "{node}: {snapshots:#?}");
        assert!(snapshots[0]["pause_ms"].is_null(), "{node}: {snapshots:#?}");
        assert!(main["heap_comparison"].is_null(), "{node}: {main:#}");
        let note = report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n.as_str())
            .find(|n| n.contains("heap snapshot was not taken"))
            .unwrap_or_else(|| panic!("{node}: no note: {:#}", report["notes"]));
        assert!(
            note.starts_with(
                "JavaScript, main thread: the first heap snapshot was not taken: the V8 heap ("
            ) && note.ends_with("used) is above the limit of 1.0 MiB (--js-heap-snapshot-limit)"),
            "{node}: {note}"
        );
        // The sampling profiler still ran.
        assert!(growing(main).next().is_some(), "{node}: {main:#}");
    }
}

#[test]
fn a_worker_thread_is_an_isolate_of_its_own() {
    scenario("worker_leak.js");
}

/// The JavaScript sites of the memo script in the pprof profile, decoded by Google's protobuf
/// library: one sample per site of every isolate, with its JavaScript stack (function, script,
/// line), its live bytes as `inuse_space` and its verdict as a label, as the JSON report has
/// them.
#[test]
fn javascript_sites_are_samples_of_the_pprof_profile() {
    let script = scripts_dir().join("memo_object.js");
    for node in nodes() {
        let dir = tempfile::tempdir().unwrap();
        let (profile, report) = run_script_keeping(&node, &script, dir.path());
        let pprof = dir.path().join("heap.pb.gz");
        let args: [&std::ffi::OsStr; 6] = [
            "report".as_ref(),
            profile.as_os_str(),
            "--format".as_ref(),
            "pprof".as_ref(),
            "--output".as_ref(),
            pprof.as_os_str(),
        ];
        let output = invoke(dir.path(), &args);
        assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
        let decoded = crate::formats::decode_pprof(&pprof);
        let javascript: Vec<&Value> = decoded["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["labels"]["runtime"] == "javascript")
            .collect();
        let sites: Vec<&Value> = isolates(&report)
            .iter()
            .flat_map(|isolate| isolate["sites"].as_array().unwrap())
            .collect();
        let node = node.display();
        assert_eq!(javascript.len(), sites.len(), "{node}: {decoded}");
        assert!(
            sites.iter().any(|s| s["verdict"] == "growing"),
            "{node}: {report}"
        );
        for site in sites {
            let frames = frame_keys(&site["stack"]);
            let sample = javascript
                .iter()
                .find(|sample| frame_keys(&sample["frames"]) == frames);
            let sample = sample.unwrap_or_else(|| panic!("{node}: no sample for {site}"));
            assert_eq!(
                sample["values"]["inuse_space"], site["live_bytes_last"],
                "{node}: {site}"
            );
            assert_eq!(sample["values"]["lost_space"], 0, "{node}: {site}");
            assert_eq!(
                sample["labels"]["verdict"], site["verdict"],
                "{node}: {site}"
            );
        }
    }
}

/// (function, file, line) of each frame of a JSON report's stack or of a decoded pprof
/// sample's (no file or line: "" and 0, as pprof writes them).
fn frame_keys(frames: &Value) -> Vec<(String, String, u64)> {
    frames
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap_or_default().to_owned(),
                f["file"].as_str().unwrap_or_default().to_owned(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// `leakscope diff` compares the JavaScript sites too: of a short and a long run of a list
/// that keeps growing (matched by their JavaScript stacks, the site ids being the run's own),
/// and of the long run's first and last snapshot. Either way the list's site (`keepRecord`,
/// or `tick` it was inlined into, at the line of its `function`) is first in the main
/// thread's JavaScript section, with a positive delta, in JSON and in text alike.
#[test]
fn the_diff_puts_the_growing_javascript_site_first() {
    let script = scripts_dir().join("growing_list.js");
    let source = std::fs::read_to_string(&script).unwrap();
    let wanted: Vec<(String, u64)> = ["keepRecord", "tick"]
        .iter()
        .map(|function| {
            let declared = format!("function {function}(");
            let index = source.lines().position(|l| l.contains(&declared));
            let line = index.unwrap_or_else(|| panic!("no {declared} in the script")) + 1;
            (function.to_string(), line as u64)
        })
        .collect();
    for node in nodes() {
        let dir = tempfile::tempdir().unwrap();
        let keep = |seconds: &str| {
            let profile = dir.path().join(format!("{seconds}s.profile"));
            Invocation::new(&node)
                .args([script.as_os_str(), seconds.as_ref()])
                .extra([std::ffi::OsStr::new("--keep"), profile.as_os_str()])
                .run_ok(dir.path());
            profile
        };
        let (short, long) = (keep("1"), keep("3"));
        for profiles in [vec![&short, &long], vec![&long]] {
            let what = format!("{}: diff {profiles:?}", node.display());
            let diff = |format: &str| {
                let mut args = os_args!["diff", "--format", format].to_vec();
                args.extend(profiles.iter().map(|p| p.as_os_str().to_owned()));
                let output = invoke(dir.path(), &args);
                assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
                output.stdout_text()
            };
            let json: Value = serde_json::from_str(&diff("json")).unwrap();
            let main = json["scripts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|isolate| isolate["thread"] == 0)
                .unwrap_or_else(|| panic!("{what}: no main thread: {json:#}"));
            let top = &main["sites"][0];
            let delta = top["bytes_delta"].as_i64().unwrap_or(0);
            assert!(delta > 0, "{what}: {top:#}");
            assert_eq!(
                top["bytes_after"].as_i64().unwrap() - top["bytes_before"].as_i64().unwrap(),
                delta,
                "{what}: {top:#}"
            );
            let in_script = top["stack"]
                .as_array()
                .unwrap()
                .iter()
                .find(|frame| {
                    frame["file"]
                        .as_str()
                        .is_some_and(|f| f.ends_with("growing_list.js"))
                })
                .unwrap_or_else(|| panic!("{what}: no frame of the script: {top:#}"));
            let json_top = (
                in_script["function"].as_str().unwrap().to_owned(),
                in_script["line"].as_u64().unwrap(),
            );
            assert!(wanted.contains(&json_top), "{what}: the first JavaScript site is {json_top:?}, not one of {wanted:?}: {main:#}");

            let text = diff("text");
            assert_eq!(
                first_javascript_site(&text),
                Some((delta, json_top.0.clone(), json_top.1)),
                "{what}:\n{text}"
            );
        }
    }
}

/// The delta of the first site of the main thread's JavaScript section of a text diff, and
/// its innermost frame of growing_list.js (`   at keepRecord (/…/growing_list.js:9:20)
/// [javascript]`): function and line.
fn first_javascript_site(text: &str) -> Option<(i64, String, u64)> {
    let (_, section) = text.split_once("\nJavaScript, main thread: ")?;
    let mut lines = section
        .lines()
        .skip_while(|l| !l.starts_with('+') && !l.starts_with('-'));
    let delta = lines.next()?.split_once(" bytes:")?.0.parse().ok()?;
    let frame = lines
        .take_while(|l| l.starts_with("   "))
        .find(|l| l.contains("/growing_list.js:"))?;
    let (function, place) = frame.trim_start().split_once(' ')?.1.split_once(" (")?;
    let line = place
        .split_once("growing_list.js:")?
        .1
        .split(':')
        .next()?
        .parse()
        .ok()?;
    Some((delta, function.to_owned(), line))
}

/// Every script in tests/node/ is named by a test of this file.
#[test]
fn every_script_has_a_test() {
    let source = include_str!("node.rs");
    for entry in std::fs::read_dir(scripts_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            source.contains(&format!("\"{name}\"")),
            "tests/node/{name} is run by no test"
        );
    }
}

/// The program's NODE_OPTIONS (here a heap limit) is what it sees and obeys, its exit code
/// passes through, and its JavaScript side is still recorded.
#[test]
fn the_programs_node_options_and_exit_code_are_untouched() {
    let script = scripts_dir().join("options_and_exit.js");
    for node in nodes() {
        let dir = tempfile::tempdir().unwrap();
        let invocation = Invocation::new(&node)
            .args([&script])
            .env("NODE_OPTIONS", "--max-old-space-size=64");
        let (output, report) = invocation.run(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output.exit(), Exit::Code(3), "{}", output.stderr_text());
        let stdout = output.stdout_text();
        assert!(
            stdout.contains("NODE_OPTIONS=--max-old-space-size=64\n"),
            "{stdout}"
        );
        let limit: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("heap_limit_mib="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            limit <= 128,
            "the program's heap limit was not applied: {limit} MiB"
        );
        // As node defines them (`on` is `addListener` itself).
        assert!(
            stdout.contains(
                "listener_methods=addListener/2 addListener/2 prependListener/2 addEventListener/2\n"
            ),
            "{stdout}"
        );
        let report = read_json(&report);
        let main = &isolates(&report)[0];
        assert!(main["samples"].as_u64().unwrap() >= 1, "{main:#}");
        assert_eq!(main["heap_limit_bytes"].as_u64().unwrap() >> 20, limit);
        assert_eq!(main["ended"], "exit");
    }
}

/// A server on 127.0.0.1 that leaks per request, under a bounded local load, watched for a
/// few seconds and ended by `--duration`: the leaking function is growing, and the end by
/// SIGTERM still leaves a report.
#[test]
fn an_http_server_that_leaks_per_request_is_found_under_load() {
    let script = scripts_dir().join("http_leak.js");
    let expected = expectations(&script);
    let mut failures = Vec::new();
    for node in nodes() {
        let dir = tempfile::tempdir().unwrap();
        let invocation = Invocation::new(&node)
            .args([script.as_os_str(), "0".as_ref()])
            .extra(["--duration", "5s"]);
        let report_path = invocation.report(dir.path());
        let mut command = invocation.command(dir.path());
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut guard = Guard::spawn(&mut command).unwrap();
        let stdout = guard.child().stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port: u16 = lines
            .next()
            .and_then(|l| l.ok())
            .and_then(|l| {
                l.strip_prefix("listening on ")
                    .map(|p| p.trim().parse().unwrap())
            })
            .expect("the server prints its port");
        // Load until --duration ends the server (a site whose growth stopped a while before
        // the end would rightly be a plateau), at most 20 s.
        let started = Instant::now();
        let mut served = 0;
        while started.elapsed() < Duration::from_secs(20) {
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                break;
            };
            let request = format!(
                "GET /item/{served} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {served}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                served += 1;
            }
        }
        let status = guard.child().wait().unwrap();
        assert_eq!(status.code(), Some(0), "--duration's end is not a failure");
        assert!(served > 200, "only {served} requests were served");
        let report = read_json(&report_path);
        assert_eq!(isolates(&report)[0]["ended"], "SIGTERM");
        failures.extend(
            check("http_leak.js", &report, &expected)
                .into_iter()
                .map(|f| format!("{}: {f}", node.display())),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

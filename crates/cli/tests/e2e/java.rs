//! Java programs under `leakscope run` (issue 12): the programs of `tests/java/`, compiled by
//! `javac` once per test binary, each run for a few seconds with a short histogram interval,
//! under G1 and under Serial GC with a small heap. A missing JDK fails the tests with what to
//! install (CI installs it through `.ci/setup.sh`).
//!
//! - `session_store_*`: a static `HashMap` that keeps every session: the session class grows,
//!   held by the static field, allocated in its constructor; the request class does not; the
//!   old object sampler's native sites are left out;
//! - `lru_cache_*`: a `LinkedHashMap` LRU with `removeEldestEntry`: no class grows;
//! - `listeners_grow_and_events_do_not`: a listener list never deregistered;
//! - `inflaters_leak_natively`: `Inflater`s kept and never ended: their zlib memory grows on
//!   the native side (`inflateInit2_`), next to the Java class, and the JIT-compiled frames
//!   of its stack are named from the JVM's perf maps;
//! - `program_output_is_untouched`, `attach_refused_*`, `launcher_script_that_execs_java`:
//!   the program's own output, one line for a JVM that refuses, a launcher script.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::harness::leakscope::Invocation;

/// How long each program runs (its argument, in ms), and the interval between histograms.
const RUN_MS: &str = "4000";
const INTERVAL: &str = "250ms";

fn java_sources() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java")
}

/// The JDK's `java`, and the directory of the compiled programs.
struct Jdk {
    java: PathBuf,
    classes: PathBuf,
}

fn jdk() -> &'static Jdk {
    static JDK: OnceLock<Result<Jdk, String>> = OnceLock::new();
    JDK.get_or_init(|| {
        let find = |tool: &str| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(tool))
                    .find(|p| p.is_file())
            })
        };
        let missing = |tool: &str| {
            format!(
                "`{tool}` is not on PATH: the Java tests need a JDK 11 or later with javac and jfr (Debian: apt-get install openjdk-17-jdk-headless, which .ci/setup.sh installs)"
            )
        };
        let javac = find("javac").ok_or_else(|| missing("javac"))?;
        let java = find("java").ok_or_else(|| missing("java"))?;
        find("jfr").ok_or_else(|| missing("jfr"))?;
        let classes = Path::new(env!("CARGO_TARGET_TMPDIR")).join("leakscope-java");
        std::fs::create_dir_all(&classes).map_err(|e| e.to_string())?;
        let sources: Vec<PathBuf> = std::fs::read_dir(java_sources())
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "java"))
            .collect();
        let output = Command::new(&javac)
            .arg("-d")
            .arg(&classes)
            .args(&sources)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", javac.display()))?;
        if !output.status.success() {
            return Err(format!(
                "javac failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(Jdk { java, classes })
    })
    .as_ref()
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Run `class` under `leakscope run --format json` with the JVM options `jvm`; the report.
fn run(class: &str, jvm: &[&str], extra: &[&str]) -> (crate::harness::process::Output, Value) {
    let jdk = jdk();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut args: Vec<String> = jvm.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-cp".to_owned(),
        jdk.classes.display().to_string(),
        class.to_owned(),
        RUN_MS.to_owned(),
    ]);
    let mut flags = vec!["--java-interval", INTERVAL];
    flags.extend_from_slice(extra);
    Invocation::new(&jdk.java)
        .args(args)
        .extra(flags)
        .run_json(dir.path())
}

fn java_of(report: &Value) -> &Value {
    let java = &report["java"];
    assert!(
        java.is_object(),
        "no `java` in the report: {}",
        serde_json::to_string_pretty(report).unwrap()
    );
    java
}

fn class<'a>(java: &'a Value, name: &str) -> Option<&'a Value> {
    java["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == name)
}

fn growing(java: &Value) -> Vec<String> {
    java["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "growing")
        .map(|c| c["class"].as_str().unwrap().to_owned())
        .collect()
}

/// The JVM was watched: histograms at the interval, each pause measured by the JVM.
fn assert_watched(java: &Value, collector: &str) {
    assert_eq!(java["status"], "watched", "{java:#}");
    assert_eq!(java["collector"], collector);
    let histograms = java["histograms"].as_u64().unwrap();
    assert!(
        histograms >= 10,
        "only {histograms} histograms in 4 s at 250 ms"
    );
    let pauses = &java["pauses"];
    assert_eq!(pauses["measured_by"], "jvm", "{pauses:#}");
    assert!(pauses["count"].as_u64().unwrap() >= 10);
    let max = pauses["max_ms"].as_f64().unwrap();
    assert!(max > 0.0 && max < 1000.0, "a histogram paused for {max} ms");
}

fn check_session_store(report: &Value, collector: &str, max_heap: Option<u64>) {
    let java = java_of(report);
    assert_watched(java, collector);
    if let Some(bytes) = max_heap {
        assert_eq!(java["max_heap_bytes"], bytes);
    }
    let session = class(java, "SessionStore$Session").expect("the session class is judged");
    assert_eq!(session["verdict"], "growing", "{session:#}");
    assert!(session["instances_per_s"].as_f64().unwrap() > 100.0);
    assert!(session["heap_exhaustion_s"].as_f64().unwrap() > 0.0);
    let path = session["held_by"]["text"]
        .as_str()
        .expect("a path to a root");
    assert!(
        path.contains("SessionStore.SESSIONS (static field)")
            && path.ends_with("SessionStore$Session"),
        "{path}"
    );
    // A sampled session was allocated by `new Session(next)` in main (line 32); a sampled
    // `byte[]` it holds, in its constructor (line 12). Which the flight recorder sampled
    // more often varies from run to run.
    let allocated = &session["allocated_at"];
    let expected = match allocated["sampled_class"].as_str() {
        Some("SessionStore$Session") => ("SessionStore.main", 32),
        Some("[B") => ("SessionStore$Session.<init>", 12),
        other => panic!("sampled class {other:?}: {allocated:#}"),
    };
    let top = &allocated["stack"][0];
    assert_eq!(
        (top["function"].as_str(), top["line"].as_u64()),
        (Some(expected.0), Some(expected.1)),
        "{allocated:#}"
    );
    assert!(
        !growing(java).iter().any(|c| c == "SessionStore$Request"),
        "the transient requests grew: {:?}",
        growing(java)
    );
    // The old object sampler of leakscope's recording, whose sample list grows during the
    // run, is left out of the native sites and named in a note.
    let samplers: Vec<&Value> = report["growth"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|site| {
            site["stack"].as_array().unwrap().iter().any(|frame| {
                frame["function"].as_str().is_some_and(|f| {
                    f.starts_with("SampleList::") || f.starts_with("ObjectSampler::")
                })
            })
        })
        .collect();
    assert!(samplers.is_empty(), "{samplers:#?}");
    let notes = report["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|note| {
            let note = note.as_str().unwrap();
            note.contains("allocated by the JVM's flight recorder (its old object sampler)")
                && note.contains("left out")
        }),
        "{notes:#?}"
    );
}

#[test]
fn session_store_under_g1() {
    let (_, report) = run("SessionStore", &["-XX:+UseG1GC"], &[]);
    check_session_store(&report, "G1", None);
}

#[test]
fn session_store_under_serial_with_a_small_heap() {
    let (_, report) = run("SessionStore", &["-XX:+UseSerialGC", "-Xmx48m"], &[]);
    check_session_store(&report, "Serial", Some(48 << 20));
}

fn check_lru(report: &Value) {
    let java = java_of(report);
    // The cache fills within its first second: its entries are a plateau, or flat from the
    // first histogram on (bounded, and then maybe not among the largest listed).
    assert_eq!(growing(java), Vec::<String>::new(), "{java:#}");
    if let Some(entry) = class(java, "LruCache$Entry") {
        assert_ne!(entry["verdict"], "growing", "{entry:#}");
    }
}

#[test]
fn lru_cache_under_g1_has_no_growing_class() {
    let (_, report) = run("LruCache", &["-XX:+UseG1GC"], &[]);
    assert_watched(java_of(&report), "G1");
    check_lru(&report);
}

#[test]
fn lru_cache_under_serial_with_a_small_heap_has_no_growing_class() {
    let (_, report) = run("LruCache", &["-XX:+UseSerialGC", "-Xmx32m"], &[]);
    assert_watched(java_of(&report), "Serial");
    check_lru(&report);
}

#[test]
fn listeners_grow_and_events_do_not() {
    let kept = tempfile::tempdir().unwrap();
    let profile = kept.path().join("run.profile");
    let (_, report) = run(
        "Listeners",
        &["-XX:+UseG1GC", "-Xmx64m"],
        &["--keep", profile.to_str().unwrap()],
    );
    let java = java_of(&report);
    assert_watched(java, "G1");
    let listener = class(java, "Listeners$ConnectionListener").expect("judged");
    assert_eq!(listener["verdict"], "growing", "{listener:#}");
    let path = listener["held_by"]["text"].as_str().expect("a path");
    assert!(
        path.contains("Listeners.LISTENERS (static field)"),
        "{path}"
    );
    assert!(
        !growing(java).iter().any(|c| c == "Listeners$Event"),
        "{:?}",
        growing(java)
    );
    // The HTML page made from the kept profile has the classes, with the path to the root.
    let page = kept.path().join("page.html");
    let output = crate::harness::process::run(
        crate::harness::leakscope::command()
            .arg("report")
            .arg(&profile)
            .args(["--format", "html", "--output"])
            .arg(&page),
        None,
        crate::harness::process::TIMEOUT,
    )
    .unwrap();
    assert_eq!(
        output.exit(),
        crate::harness::expect::Exit::Code(0),
        "{}",
        output.stderr_text()
    );
    let data = crate::html::page_data(&std::fs::read_to_string(&page).unwrap());
    let java = &data["processes"][0]["java"];
    assert_eq!(java["status"], "watched", "{java:#}");
    let listener = java["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "Listeners$ConnectionListener")
        .expect("the listener class on the page");
    assert_eq!(listener["verdict"], "growing");
    assert!(listener["held_by"]
        .as_str()
        .unwrap()
        .contains("Listeners.LISTENERS (static field)"));
}

#[test]
fn inflaters_leak_natively() {
    let (_, report) = run("InflaterLeak", &["-XX:+UseSerialGC", "-Xmx32m"], &[]);
    let java = java_of(&report);
    assert!(growing(java).iter().any(|c| c == "java.util.zip.Inflater"));
    let native = report["growth"]
        .as_array()
        .unwrap()
        .iter()
        .find(|site| {
            site["verdict"] == "growing"
                && site["stack"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["function"] == "inflateInit2_")
        })
        .unwrap_or_else(|| {
            panic!(
                "no growing native site in inflateInit2_: {:#}",
                report["growth"]
            )
        });
    assert!(
        native["bytes_per_s"].as_f64().unwrap() > 100_000.0,
        "{native:#}"
    );
    // The JIT-compiled frames are named from the JVM's perf maps: the native method's
    // wrapper right above the JNI function, as the JVM calls it.
    let jit_named = |site: &Value| {
        let stack = site["stack"].as_array().unwrap();
        let jni = stack
            .iter()
            .position(|f| f["function"] == "Java_java_util_zip_Inflater_init")?;
        let caller = stack.get(jni + 1)?;
        (caller["module"] == "[JVM code cache]").then(|| caller["function"].clone())
    };
    let named: Vec<Value> = report["growth"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|site| site["verdict"] == "growing")
        .filter_map(jit_named)
        .collect();
    assert!(
        named
            .iter()
            .any(|name| name == "long java.util.zip.Inflater.init(boolean)"),
        "callers of the JNI function: {named:?}"
    );
    // leakscope removes the perf map the JVM wrote at its request.
    let pid = report["pid"].as_u64().unwrap();
    let map = std::path::PathBuf::from(format!("/tmp/perf-{pid}.map"));
    assert!(!map.exists(), "{} was left behind", map.display());
}

#[test]
fn program_output_is_untouched() {
    let (output, _) = run("SessionStore", &[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("sessions ") && stdout.lines().count() == 1,
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        assert!(line.starts_with("leakscope: "), "not leakscope's: {line}");
    }
}

#[test]
fn attach_refused_is_one_line_and_the_native_report_stays() {
    let (output, report) = run("SessionStore", &["-XX:+DisableAttachMechanism"], &[]);
    let java = java_of(&report);
    assert_eq!(java["status"], "attach_refused", "{java:#}");
    let reason = java["reason"].as_str().unwrap();
    assert!(reason.contains("-XX:+DisableAttachMechanism") && !reason.contains('\n'));
    assert!(
        report["summary"]["still_reachable"]["blocks"]
            .as_u64()
            .unwrap()
            > 0
    );
    // No thread dump on the program's output (what SIGQUIT does to a JVM that refuses).
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn no_java_leaves_the_jvm_alone() {
    let (_, report) = run("SessionStore", &[], &["--no-java"]);
    assert!(report.get("java").is_none());
}

#[test]
fn launcher_script_that_execs_java() {
    let jdk = jdk();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("launch.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec {} -cp {} SessionStore \"$@\"\n",
            jdk.java.display(),
            jdk.classes.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, report) = Invocation::new(&script)
        .args([RUN_MS])
        .extra(["--java-interval", INTERVAL])
        .run_json(dir.path());
    let java = java_of(&report);
    assert_eq!(java["status"], "watched");
    assert!(growing(java).iter().any(|c| c == "SessionStore$Session"));
}

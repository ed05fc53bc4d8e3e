//! Issue 10: the HTML report (`--format html`), from a real run: what the page carries (read
//! back from its data), that it is self-contained, that `leakscope report` makes the same page
//! from the kept profile, and that it renders in headless Chromium with no console message
//! (charts drawn, flamegraph drawn, search and tabs working). Programs in `tests/html/`.
//!
//! The screenshot of the rendered page is kept in the test's directory; `LEAKSCOPE_BLESS=1`
//! also writes it to `docs/images/html-report.png`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::build::compile_file;
use crate::harness::expect::Exit;
use crate::harness::leakscope::command;
use crate::harness::process;

fn build(name: &str, dir: &Path) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/html")
        .join(format!("{name}.c"));
    let binary = dir.join(name);
    compile_file(&source, &binary, &["-O1"], &[]).unwrap_or_else(|e| panic!("{e}"));
    binary
}

/// `leakscope ARGS`, which must exit with 0.
fn leakscope(dir: &Path, args: &[OsString]) {
    let output = process::run(
        command().args(args).current_dir(dir),
        None,
        process::TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
}

/// The page's data object.
pub(crate) fn page_data(html: &str) -> Value {
    let start = html
        .find(r#"<script type="application/json" id="leakscope-data">"#)
        .expect("the page carries its data");
    let data = &html[start..];
    let data = &data[data.find('>').unwrap() + 1..];
    let data = &data[..data.find("</script>").unwrap()];
    serde_json::from_str(data).unwrap_or_else(|e| panic!("the page's data is not JSON: {e}"))
}

/// The functions of the stack that ends at `node`, innermost first (see `nodes` in html.rs).
fn functions_of(process: &Value, node: i64) -> Vec<String> {
    let nodes = process["nodes"].as_array().unwrap();
    let frames = process["frames"].as_array().unwrap();
    let mut functions = Vec::new();
    let mut at = node;
    while at >= 0 {
        let i = at as usize;
        let frame = nodes[2 * i + 1].as_u64().unwrap() as usize;
        functions.push(frames[frame][0].as_str().unwrap().to_owned());
        let back = nodes[2 * i].as_i64().unwrap();
        at = if back == 0 { -1 } else { at - back };
    }
    functions
}

/// Nothing on the page may be fetched: no element with a source, no style sheet, no import.
fn assert_self_contained(html: &str) {
    for needle in [
        " src=",
        "<link",
        "@import",
        "url(",
        "fetch(",
        "XMLHttpRequest",
        "<iframe",
    ] {
        assert!(!html.contains(needle), "the page refers out ({needle:?})");
    }
}

/// Debian's Chromium (the project's set-up installs it).
fn chromium() -> PathBuf {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "the HTML report is checked in headless Chromium, which is not installed: install Debian's chromium (bash .ci/setup.sh does)"
    );
}

/// Chromium's run of a page: the DOM after the scripts ran, and the page's console messages.
pub(crate) struct Rendered {
    pub(crate) dom: String,
    pub(crate) console: Vec<String>,
    took: Duration,
}

pub(crate) fn headless(dir: &Path, extra: &[&str], url: &str) -> Rendered {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium-profile").display()
        ))
        .args(extra)
        .arg(url)
        .current_dir(dir);
    let started = Instant::now();
    let output = process::run(&mut command, None, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    // Chromium logs each console message (log, warning, error, uncaught exception) as a
    // line with `:CONSOLE`; the page logs nothing, so any such line is a fault.
    let console = output
        .stderr_text()
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    Rendered {
        dom: output.stdout_text(),
        console,
        took,
    }
}

fn attribute_values(dom: &str, name: &str) -> Vec<u64> {
    let needle = format!("{name}=\"");
    dom.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &dom[at + needle.len()..];
            rest[..rest.find('"')?].parse().ok()
        })
        .collect()
}

pub(crate) fn assert_rendered(page: &Rendered, what: &str) {
    assert!(
        page.console.is_empty(),
        "{what}: console: {:#?}",
        page.console
    );
    assert!(
        // (`="`: the page's script, which is in the DOM too, names the attributes.)
        page.dom.contains(r#"data-rendered="ok""#) && !page.dom.contains(r#"data-render-error=""#),
        "{what}: the page did not render:\n{}",
        &page.dom[..page.dom.len().min(4000)]
    );
}

/// A run with a growing site, lost blocks, live scans and a forked child: the page holds
/// exactly what the run found, `leakscope report` makes the same page again, and Chromium
/// draws it.
#[test]
fn the_page_carries_the_run_and_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let program = build("report_page", dir.path());
    let page = dir.path().join("page.html");
    let profile = dir.path().join("run.profile");
    leakscope(
        dir.path(),
        &crate::harness::os_args![
            "run",
            "--scan-every",
            "500ms",
            "--format",
            "html",
            "--output",
            &page,
            "--keep",
            &profile,
            "--",
            &program
        ],
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_self_contained(&html);
    let data = page_data(&html);
    let processes = data["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2, "the program and its forked child");
    let (root, child) = (&processes[0], &processes[1]);

    assert_eq!(
        root["summary"][0],
        serde_json::json!([1000, 10]),
        "definitely lost"
    );
    let lost: Vec<&Value> = root["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l[0] == 0)
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(
        (lost[0][1].as_u64(), lost[0][2].as_u64()),
        (Some(1000), Some(10))
    );
    let lost_functions = functions_of(root, lost[0][3].as_i64().unwrap());
    let first_own = lost_functions
        .iter()
        .position(|f| f == "parse_header")
        .unwrap_or_else(|| panic!("{lost_functions:?}"));
    assert_eq!(lost_functions[first_own + 1], "handle_request");

    let growth = root["growth"].as_array().unwrap();
    assert_eq!(growth[0]["verdict"], "growing", "{growth:#?}");
    assert!(
        functions_of(root, growth[0]["stack"].as_i64().unwrap())
            .contains(&"remember_session".to_owned()),
        "{growth:#?}"
    );
    let series = growth[0]["series"].as_array().unwrap();
    assert!(series.len() >= 10, "the growing site's series: {series:?}");
    let last_live = series.last().unwrap()[1].as_u64().unwrap();
    assert!(
        last_live >= 200 * 256,
        "remember_session held {last_live} bytes at the end"
    );
    assert!(!root["timeline"].as_array().unwrap().is_empty());
    assert!(root["live_scans"].as_array().unwrap().len() >= 2);
    let moments = root["moments"].as_array().unwrap();
    assert!(moments.len() >= 3, "{moments:?}");
    assert_eq!(moments.last().unwrap()["kind"], "last");

    assert_eq!(child["parent"], 0);
    assert_eq!(child["started_by"], "fork");
    assert_eq!(child["summary"][0], serde_json::json!([64, 1]));

    // The kept profile gives the same page.
    let again = dir.path().join("again.html");
    leakscope(
        dir.path(),
        &crate::harness::os_args!["report", &profile, "--format", "html", "--output", &again],
    );
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        html,
        "leakscope report made another page"
    );

    // In Chromium: the root's tab with a search, and the child's tab.
    let url = |fragment: &str| format!("file://{}#{fragment}", page.display());
    let rendered = headless(
        dir.path(),
        &["--dump-dom"],
        &url("process=0&weight=lost&search=parse_header"),
    );
    assert_rendered(&rendered, "the root's tab");
    let lines = attribute_values(&rendered.dom, "data-lines");
    assert_eq!(
        lines.len(),
        2,
        "the memory chart and the lost-over-time chart"
    );
    assert!(
        lines[0] >= 3,
        "live heap, RSS and the growing site: {lines:?}"
    );
    assert_eq!(lines[1], 3, "definitely, indirectly and possibly lost");
    let boxes = attribute_values(&rendered.dom, "data-boxes");
    assert!(boxes[0] >= 5, "flamegraph boxes: {boxes:?}");
    assert!(
        rendered
            .dom
            .contains("frames matching the search: 1,000 bytes (100.0%)"),
        "the search found parse_header's lost bytes"
    );
    let child_tab = headless(dir.path(), &["--dump-dom"], &url("process=1"));
    assert_rendered(&child_tab, "the child's tab");
    assert!(child_tab.dom.contains("64 bytes lost in 1 block."));

    let screenshot = dir.path().join("html-report.png");
    headless(
        dir.path(),
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2200",
            "--hide-scrollbars",
        ],
        &url("process=0"),
    );
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    if std::env::var_os("LEAKSCOPE_BLESS").is_some_and(|v| !v.is_empty()) {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/images");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("html-report.png"), png).unwrap();
    }
}

/// 100,000 lost blocks, each from a stack of its own: the page stays a few megabytes and
/// Chromium draws it (the time it took is printed, not judged: machines differ).
#[test]
fn a_page_of_100_000_stacks_renders() {
    let dir = tempfile::tempdir().unwrap();
    let program = build("many_stacks", dir.path());
    let page = dir.path().join("page.html");
    leakscope(
        dir.path(),
        &crate::harness::os_args!["run", "--format", "html", "--output", &page, "--", &program],
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let data = page_data(&html);
    let root = &data["processes"][0];
    assert_eq!(root["summary"][0], serde_json::json!([1_600_000, 100_000]));
    assert_eq!(
        root["leaks"].as_array().unwrap().len(),
        100_000,
        "a loss record per stack"
    );
    assert!(html.len() < 16 << 20, "the page is {} bytes", html.len());
    let rendered = headless(
        dir.path(),
        &["--dump-dom"],
        &format!("file://{}#search=leaf", page.display()),
    );
    assert_rendered(&rendered, "100,000 stacks");
    assert!(rendered
        .dom
        .contains("frames matching the search: 1.53 MiB (100.0%)"));
    // The table shows its first rows only.
    assert!(rendered.dom.contains("Show 50 more of 99,950"));
    eprintln!(
        "a page of {} bytes with 100,000 stacks: Chromium started, parsed and drew it in {:.2} s",
        html.len(),
        rendered.took.as_secs_f64()
    );
}

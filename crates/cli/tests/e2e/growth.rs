//! Issue 4's scenarios (`tests/growth/`): programs running a few seconds whose live memory per
//! site has a known shape. With the default settings, the sites named in each header must be
//! the growing ones, and no other site may be called growing.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::build::compile_file;
use crate::harness::expect::Exit;
use crate::harness::leakscope::Invocation;
use crate::harness::parallel_map;
use crate::harness::report::{functions, read_json};

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/growth")
}

/// The header's `growing` and `not-growing` function lists.
fn expectations(source: &str) -> (Vec<String>, Vec<String>) {
    let mut growing = Vec::new();
    let mut not_growing = Vec::new();
    for line in source.lines().take_while(|l| l.starts_with("//")) {
        let mut words = line.trim_start_matches('/').split_whitespace();
        match words.next() {
            Some("growing") => growing.extend(words.filter(|w| *w != "none").map(String::from)),
            Some("not-growing") => not_growing.extend(words.map(String::from)),
            _ => {}
        }
    }
    (growing, not_growing)
}

fn check(source_path: &Path, dir: &Path) -> Vec<String> {
    let name = source_path
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let source = fs::read_to_string(source_path).unwrap();
    let (growing, not_growing) = expectations(&source);
    let binary = dir.join(&name);
    if let Err(e) = compile_file(source_path, &binary, &["-O1"], &["-lm"]) {
        return vec![format!("{name}: does not compile: {e}")];
    }
    let run_dir = dir.join(format!("{name}.run"));
    fs::create_dir_all(&run_dir).unwrap();
    let (output, report) = match Invocation::new(&binary).run(&run_dir) {
        Ok(done) => done,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    if output.exit() != Exit::Code(0) {
        return vec![format!(
            "{name}: ended with {}: {}",
            output.exit(),
            output.stderr_text()
        )];
    }
    let report = read_json(&report);
    let sites = report["growth"].as_array().unwrap();
    let mut problems = Vec::new();
    if report["timeline"].as_array().unwrap().len() < 20 {
        problems.push(format!("{name}: fewer than 20 timeline points"));
    }
    let found: Vec<&Value> = sites.iter().filter(|s| s["verdict"] == "growing").collect();
    for site in &found {
        let stack = functions(&site["stack"]);
        if !stack.iter().any(|f| growing.contains(f)) {
            problems.push(format!(
                "{name}: a false alarm, growing at {stack:?}: {site}"
            ));
        }
    }
    if !growing.is_empty() && found.is_empty() {
        problems.push(format!(
            "{name}: no growing site, expected one in {growing:?}"
        ));
    }
    for site in sites.iter().filter(|s| s["verdict"] == "growing") {
        let stack = functions(&site["stack"]);
        if stack.first().is_some_and(|f| not_growing.contains(f)) {
            problems.push(format!("{name}: {stack:?} is called growing"));
        }
    }
    problems
}

#[test]
fn every_scenario_gets_the_right_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let mut sources: Vec<PathBuf> = fs::read_dir(scenarios_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    assert!(sources.len() >= 6, "the scenarios are missing");
    let problems: Vec<String> = parallel_map(&sources, |source| check(source, dir.path()))
        .into_iter()
        .flatten()
        .collect();
    assert!(problems.is_empty(), "\n  {}", problems.join("\n  "));
}

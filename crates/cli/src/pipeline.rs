//! The data flow after the run, in one place:
//! profile files → `leakscope_format::tree::read_tree` → `leakscope_analysis::analyze` →
//! `leakscope_symbolize` (only the stacks the findings name) → `leakscope_report::Report`.
//! Every decision is the analysis's; this file only calls the stages in order.

use std::path::Path;

use anyhow::{Context, Result};
use leakscope_analysis::{Gate, LeakOptions};
use leakscope_format::tree::ProfileTree;
use leakscope_report::{ProfileFacts, Report};
use leakscope_symbolize::Symbolizer;

use crate::progress::Progress;

/// Read `path` and every profile of its run beside it; a descendant that cannot be read is
/// skipped with a warning.
pub fn read_tree(path: &Path) -> Result<ProfileTree> {
    let tree = leakscope_format::tree::read_tree(path)
        // The reader's error names the file.
        .context("cannot read the profile")?;
    // The reader's error names the file.
    for (_, error) in &tree.unreadable {
        eprintln!("leakscope: skipping a child profile: {error}");
    }
    Ok(tree)
}

/// Analyse the whole tree, symbolize the stacks its findings name, apply the suppressions and
/// display options to the symbolized stacks, and return the report and the gate of
/// `--error-exitcode`.
pub fn build_report(
    tree: &ProfileTree,
    analysis_options: leakscope_analysis::Options,
    progress: &Progress,
    options: &LeakOptions,
) -> (Report, Gate) {
    let profiles = tree.profiles();
    progress.stage(match profiles.len() {
        1 => "analysing the profile...".to_owned(),
        n => format!("analysing {n} profiles..."),
    });
    let mut analysis = leakscope_analysis::analyze_with(tree, analysis_options);
    let stacks = analysis.stacks(profiles.len());
    let count: usize = stacks.iter().map(Vec::len).sum();
    progress.stage(format!("symbolizing {count} stacks..."));
    let mut symbolizer = Symbolizer::new();
    let frames = symbolizer.symbolize_each(&profiles, &stacks);
    analysis.apply(options, &frames);
    let mut notes = symbolizer.notes().to_vec();
    for (suppression, pattern) in options.suppressions.mangled_patterns() {
        notes.push(format!(
            "the suppression '{}' ({}:{}) names a C++ function by its mangled name, 'fun:{pattern}': memcheck matches mangled names, leakscope the demangled names its reports show, so that line matches nothing here (write the demangled name in a copy of it)",
            suppression.name, suppression.file, suppression.line
        ));
    }
    let facts = profiles.iter().map(|p| ProfileFacts::of(p)).collect();
    let mut report = Report::new(analysis.root, frames, &notes).with_facts(facts);
    report.gate = analysis.gate.clone();
    (report, analysis.gate)
}

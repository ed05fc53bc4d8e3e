//! The data flow after the run, in one place:
//! profile files → `leakscope_format::tree::read_tree` → `leakscope_analysis::analyze` →
//! `leakscope_symbolize` (only the stacks the findings name) → `leakscope_report::Report`.
//! Every decision is the analysis's; this file only calls the stages in order.

use std::path::Path;

use anyhow::{Context, Result};
use leakscope_analysis::Gate;
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

/// Analyse the whole tree, symbolize the stacks its findings name, and return the report
/// and the gate of `--error-exitcode`.
pub fn build_report(tree: &ProfileTree, progress: &Progress) -> (Report, Gate) {
    let profiles = tree.profiles();
    progress.stage(match profiles.len() {
        1 => "analysing the profile...".to_owned(),
        n => format!("analysing {n} profiles..."),
    });
    let analysis = leakscope_analysis::analyze(tree);
    let stacks = analysis.stacks(profiles.len());
    let count: usize = stacks.iter().map(Vec::len).sum();
    progress.stage(format!("symbolizing {count} stacks..."));
    let mut symbolizer = Symbolizer::new();
    let frames = symbolizer.symbolize_each(&profiles, &stacks);
    let facts = profiles.iter().map(|p| ProfileFacts::of(p)).collect();
    let report = Report::new(analysis.root, frames, symbolizer.notes()).with_facts(facts);
    (report, analysis.gate)
}

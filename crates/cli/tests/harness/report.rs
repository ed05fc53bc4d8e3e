//! Reading leakscope's JSON report (docs/json-report.md) in the tests that look at more than the
//! totals the corpus checks (`leakscope.rs` reads those).

use std::path::Path;

use serde_json::Value;

/// The JSON document at `path`; panics, naming the file, if there is none or it is not JSON.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON: {e}\n{text}"))
}

/// The text file at `path`; panics, naming it, if there is none.
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no file {}: {e}", path.display()))
}

/// The function names of a `stack`, allocating frame first; frames without one are left out.
pub fn functions(stack: &Value) -> Vec<String> {
    stack
        .as_array()
        .unwrap_or_else(|| panic!("a stack is an array: {stack}"))
        .iter()
        .filter_map(|f| f["function"].as_str().map(String::from))
        .collect()
}

/// Every document of a report's tree (the program's, its children's), depth first.
pub fn documents(report: &Value) -> Vec<&Value> {
    let mut all = vec![report];
    for child in report["children"].as_array().into_iter().flatten() {
        all.extend(documents(child));
    }
    all
}

/// The notes of every document of the tree, one a line.
pub fn all_notes(report: &Value) -> String {
    documents(report)
        .iter()
        .flat_map(|d| d["notes"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

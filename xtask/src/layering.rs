//! The crate dependency rules of the data flow (README.md, "Dependency rules"), checked on the
//! graph `cargo metadata` gives for both workspaces (the root one and the agent's).
//!
//! The data flows one way: agent -> profile file (format) -> analysis -> symbolize -> report ->
//! printed by the CLI. A dependency that points the other way, or that lets the CLI link the
//! agent (whose exported `malloc` would then interpose the CLI's own allocations), breaks a rule
//! below. Every kind of dependency counts (normal, build and dev): a test that needs a later
//! stage belongs to the crate that owns the whole flow, the CLI.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One edge of the graph: `from` depends on `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// "normal", "build" or "dev".
    pub kind: String,
}

/// A rule of the data flow, and the edges it forbids.
pub struct Rule {
    pub name: &'static str,
    pub forbids: fn(&Edge) -> bool,
}

const CLI: &str = "leakscope";
const AGENT: &str = "leakscope-agent";
const AGENT_CORE: &str = "leakscope-agent-core";
const FORMAT: &str = "leakscope-format";
const ANALYSIS: &str = "leakscope-analysis";
const SYMBOLIZE: &str = "leakscope-symbolize";
const REPORT: &str = "leakscope-report";

fn is_agent(name: &str) -> bool {
    name == AGENT || name == AGENT_CORE
}

fn is_leakscope(name: &str) -> bool {
    name == CLI || name.starts_with("leakscope-")
}

/// The rules, in the order the README gives them.
pub const RULES: &[Rule] = &[
    Rule {
        name: "the CLI never links the agent (crates/agent is built by the CLI's build script, \
               never a dependency): only the agent itself depends on leakscope-agent or \
               leakscope-agent-core",
        forbids: |edge| is_agent(&edge.to) && !(edge.from == AGENT && edge.to == AGENT_CORE),
    },
    Rule {
        name: "analysis knows neither symbolization nor reports",
        forbids: |edge| edge.from == ANALYSIS && (edge.to == SYMBOLIZE || edge.to == REPORT),
    },
    Rule {
        name: "reports do not symbolize",
        forbids: |edge| edge.from == REPORT && edge.to == SYMBOLIZE,
    },
    Rule {
        name: "nothing depends on the CLI",
        forbids: |edge| edge.to == CLI,
    },
    Rule {
        name: "the format depends on no other leakscope crate",
        forbids: |edge| edge.from == FORMAT && is_leakscope(&edge.to),
    },
];

/// Every broken rule, one message per forbidden edge, naming the rule and the edge.
pub fn violations(edges: &[Edge]) -> Vec<String> {
    let mut found = Vec::new();
    for rule in RULES {
        for edge in edges.iter().filter(|edge| (rule.forbids)(edge)) {
            found.push(format!(
                "dependency rule broken: {}: {} -> {} ({} dependency)",
                rule.name, edge.from, edge.to, edge.kind
            ));
        }
    }
    found
}

/// The edges between the packages of a workspace and what they depend on, from
/// `cargo metadata --no-deps` (its members' declared dependencies, by package name).
pub fn edges_of_metadata(metadata: &Value) -> Result<Vec<Edge>, String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no packages")?;
    let mut edges = Vec::new();
    for package in packages {
        let from = package["name"]
            .as_str()
            .ok_or("a package without a name in cargo metadata")?;
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let to = dependency["name"]
                .as_str()
                .ok_or_else(|| format!("a dependency of {from} without a name"))?;
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            edges.push(Edge {
                from: from.to_string(),
                to: to.to_string(),
                kind: kind.to_string(),
            });
        }
    }
    Ok(edges)
}

/// The edges of the workspace whose manifest is `manifest`, as `cargo metadata` reads them.
pub fn edges_of_workspace(cargo: &mut Command, manifest: &Path) -> Result<Vec<Edge>, String> {
    let output = cargo
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata --manifest-path {} failed: {}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata wrote no JSON: {e}"))?;
    edges_of_metadata(&metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str, kind: &str) -> Edge {
        Edge {
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
        }
    }

    /// The graph of DESIGN.md's data flow, as both workspaces declare it today.
    fn allowed() -> Vec<Edge> {
        vec![
            edge(CLI, FORMAT, "normal"),
            edge(CLI, ANALYSIS, "normal"),
            edge(CLI, SYMBOLIZE, "normal"),
            edge(CLI, REPORT, "normal"),
            edge(CLI, "serde_json", "dev"),
            edge(ANALYSIS, FORMAT, "normal"),
            edge(SYMBOLIZE, FORMAT, "normal"),
            edge(REPORT, ANALYSIS, "normal"),
            edge(REPORT, FORMAT, "normal"),
            edge(FORMAT, "crc32fast", "normal"),
            edge(AGENT, AGENT_CORE, "normal"),
            edge(AGENT, FORMAT, "normal"),
            edge(AGENT_CORE, FORMAT, "normal"),
        ]
    }

    #[test]
    fn the_data_flow_breaks_no_rule() {
        assert_eq!(violations(&allowed()), Vec::<String>::new());
    }

    #[test]
    fn each_backward_edge_is_named_with_its_rule() {
        let cases = [
            (
                edge(CLI, AGENT, "build"),
                "dependency rule broken: the CLI never links the agent (crates/agent is built \
                 by the CLI's build script, never a dependency): only the agent itself depends \
                 on leakscope-agent or leakscope-agent-core: leakscope -> leakscope-agent \
                 (build dependency)",
            ),
            (
                edge(REPORT, AGENT_CORE, "normal"),
                "dependency rule broken: the CLI never links the agent (crates/agent is built \
                 by the CLI's build script, never a dependency): only the agent itself depends \
                 on leakscope-agent or leakscope-agent-core: leakscope-report -> \
                 leakscope-agent-core (normal dependency)",
            ),
            (
                edge(ANALYSIS, SYMBOLIZE, "normal"),
                "dependency rule broken: analysis knows neither symbolization nor reports: \
                 leakscope-analysis -> leakscope-symbolize (normal dependency)",
            ),
            (
                edge(ANALYSIS, REPORT, "dev"),
                "dependency rule broken: analysis knows neither symbolization nor reports: \
                 leakscope-analysis -> leakscope-report (dev dependency)",
            ),
            (
                edge(REPORT, SYMBOLIZE, "normal"),
                "dependency rule broken: reports do not symbolize: leakscope-report -> \
                 leakscope-symbolize (normal dependency)",
            ),
            (
                edge("xtask", CLI, "normal"),
                "dependency rule broken: nothing depends on the CLI: xtask -> leakscope \
                 (normal dependency)",
            ),
            (
                edge(FORMAT, ANALYSIS, "normal"),
                "dependency rule broken: the format depends on no other leakscope crate: \
                 leakscope-format -> leakscope-analysis (normal dependency)",
            ),
        ];
        for (bad, message) in cases {
            let mut graph = allowed();
            graph.push(bad.clone());
            assert_eq!(violations(&graph), vec![message.to_string()], "{bad:?}");
        }
    }

    #[test]
    fn one_edge_may_break_two_rules() {
        let found = violations(&[edge(FORMAT, CLI, "dev")]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("nothing depends on the CLI"), "{found:?}");
        assert!(
            found[1].contains("the format depends on no other"),
            "{found:?}"
        );
    }

    #[test]
    fn metadata_is_read_into_edges() {
        let metadata = serde_json::json!({
            "packages": [
                {"name": "leakscope-report", "dependencies": [
                    {"name": "leakscope-analysis", "kind": null},
                    {"name": "tempfile", "kind": "dev"},
                ]},
                {"name": "leakscope-format", "dependencies": []},
            ]
        });
        assert_eq!(
            edges_of_metadata(&metadata).unwrap(),
            vec![
                edge(REPORT, ANALYSIS, "normal"),
                edge(REPORT, "tempfile", "dev"),
            ]
        );
        assert!(edges_of_metadata(&serde_json::json!({})).is_err());
    }
}

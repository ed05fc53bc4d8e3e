//! Comparing what a tool reported with a fixture's header, or with what the other tool reported.

use super::expect::{Exit, Expect, Kind, ProcessExpect, Totals};
use super::names;
use super::observed::{ProcessReport, Run};

/// Every way in which `run` differs from `expect`; empty when it agrees.
pub fn against_header(expect: &Expect, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    if run.exit != expect.exit {
        problems.push(format!(
            "the process ended with {}, expected {}",
            run.exit, expect.exit
        ));
    }
    if let Some(reported) = run.main.exit {
        if reported != expect.exit {
            problems.push(format!(
                "the report says the program ended with {reported}, expected {}",
                expect.exit
            ));
        }
    }
    process(&expect.main, &run.main, "program", &mut problems);
    match &expect.child {
        Some(child) => {
            let matching = run.children.iter().position(|c| c.totals == child.totals);
            match matching {
                Some(i) => process(child, &run.children[i], "child", &mut problems),
                None => problems.push(format!(
                    "no child reported {}; children reported: [{}]",
                    child.totals,
                    list_children(run)
                )),
            }
            let others = run
                .children
                .iter()
                .filter(|c| c.totals != child.totals && !c.totals.is_zero())
                .count();
            if others > 0 {
                problems.push(format!(
                    "unexpected leaks in other children: [{}]",
                    list_children(run)
                ));
            }
        }
        None => {
            if run.children.iter().any(|c| !c.totals.is_zero()) {
                problems.push(format!(
                    "no child with leaks was expected; children reported: [{}]",
                    list_children(run)
                ));
            }
        }
    }
    problems
}

fn list_children(run: &Run) -> String {
    run.children
        .iter()
        .map(|c| format!("pid {:?}: {}", c.pid, c.totals))
        .collect::<Vec<_>>()
        .join("; ")
}

fn process(expect: &ProcessExpect, report: &ProcessReport, who: &str, problems: &mut Vec<String>) {
    for kind in Kind::ALL {
        let (want, got) = (expect.totals.get(kind), report.totals.get(kind));
        if want != got {
            problems.push(format!("{who}: {kind} is {got}, expected {want}"));
        }
    }
    for (kind, wanted) in &expect.functions {
        let found = report
            .leaks
            .iter()
            .filter(|l| l.kind == *kind)
            .any(|l| l.functions.iter().any(|f| names::matches(f, wanted)));
        if !found {
            problems.push(format!(
                "{who}: no {kind} loss record has {wanted} in its stack; functions in {kind} \
                 stacks: {:?}",
                report.functions_of(*kind)
            ));
        }
    }
}

/// One line of the agreement table.
#[derive(Debug)]
pub struct Row {
    pub fixture: String,
    pub level: String,
    pub process: String,
    pub kind: String,
    pub valgrind: String,
    pub leakscope: String,
    pub agree: bool,
}

/// The rows comparing one fixture's two runs (either of which may have failed).
pub fn agreement_rows(
    fixture: &str,
    level: &str,
    valgrind: &Result<Run, String>,
    leakscope: &Result<Run, String>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let row = |process: &str, kind: &str, v: String, l: String| Row {
        fixture: fixture.to_string(),
        level: level.to_string(),
        process: process.to_string(),
        kind: kind.to_string(),
        agree: v == l,
        valgrind: v,
        leakscope: l,
    };
    let exit = |r: &Result<Run, String>| match r {
        Ok(run) => exit_cell(run.exit),
        Err(_) => "error".to_string(),
    };
    rows.push(row("program", "exit", exit(valgrind), exit(leakscope)));
    let totals_of = |r: &Result<Run, String>, child: Option<usize>| -> Option<Totals> {
        let run = r.as_ref().ok()?;
        match child {
            None => Some(run.main.totals),
            Some(i) => leaky_children(run).get(i).map(|c| c.totals),
        }
    };
    let child_count =
        |r: &Result<Run, String>| r.as_ref().map_or(0, |run| leaky_children(run).len());
    let children = child_count(valgrind).max(child_count(leakscope));
    for child in std::iter::once(None).chain((0..children).map(Some)) {
        let process = match child {
            None => "program".to_string(),
            Some(i) => format!("child {}", i + 1),
        };
        let (v, l) = (totals_of(valgrind, child), totals_of(leakscope, child));
        for kind in Kind::ALL {
            let cell = |t: Option<Totals>| match t {
                Some(t) => {
                    let a = t.get(kind);
                    format!("{}/{}", a.bytes, a.blocks)
                }
                None => "-".to_string(),
            };
            rows.push(row(&process, kind.key(), cell(v), cell(l)));
        }
    }
    rows
}

/// Children with something to report, in a stable order (by their totals).
fn leaky_children(run: &Run) -> Vec<&ProcessReport> {
    let mut children: Vec<&ProcessReport> = run
        .children
        .iter()
        .filter(|c| !c.totals.is_zero())
        .collect();
    children.sort_by_key(|c| {
        Kind::ALL.map(|k| {
            let a = c.totals.get(k);
            (a.bytes, a.blocks)
        })
    });
    children
}

fn exit_cell(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("code {c}"),
        Exit::Signal(s) => format!("signal {s}"),
    }
}

/// Renders the rows as an aligned text table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "fixture",
        "level",
        "process",
        "kind",
        "valgrind bytes/blocks",
        "leakscope bytes/blocks",
        "",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.fixture.clone(),
                r.level.clone(),
                r.process.clone(),
                r.kind.clone(),
                r.valgrind.clone(),
                r.leakscope.clone(),
                if r.agree { "ok" } else { "MISMATCH" }.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &cells {
        for (w, c) in widths.iter_mut().zip(line.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut push = |line: Vec<&str>| {
        let padded: Vec<String> = line
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    push(header.to_vec());
    for line in &cells {
        push(line.iter().map(String::as_str).collect());
    }
    out
}

//! Test (c): both tools on every fixture and level, side by side.

use std::fmt::Write as _;

use crate::harness::build::{corpus, Fixture};
use crate::harness::expect::Level;
use crate::harness::{check, leakscope, parallel_map, valgrind};

#[test]
fn valgrind_and_leakscope_agree() {
    if !valgrind::available_or_skip("the cross-check") {
        return;
    }
    let corpus = corpus();
    let jobs: Vec<(&Fixture, Level)> = corpus
        .fixtures
        .iter()
        .flat_map(|f| Level::ALL.map(|l| (f, l)))
        .collect();
    let results = parallel_map(&jobs, |(fixture, level)| {
        let binary = corpus.binary(fixture, *level);
        let args = corpus.args(fixture, *level);
        (
            valgrind::run(&binary, &args),
            leakscope::run(&binary, &args),
        )
    });
    let mut rows = Vec::new();
    let mut errors = String::new();
    for ((fixture, level), (vg, ls)) in jobs.iter().zip(&results) {
        rows.extend(check::agreement_rows(&fixture.name, level.name(), vg, ls));
        for (tool, result) in [("valgrind", vg), ("leakscope", ls)] {
            if let Err(e) = result {
                let _ = writeln!(errors, "{} at {level} under {tool}: {e}", fixture.name);
            }
        }
    }
    let table = check::table(&rows);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("leakscope-e2e")
        .join("agreement.txt");
    let _ = std::fs::write(&path, &table);
    println!("{table}\n(also in {})", path.display());
    let mismatches = rows.iter().filter(|r| !r.agree).count();
    assert!(
        mismatches == 0 && errors.is_empty(),
        "{mismatches} of {} rows disagree:\n{table}\n{errors}",
        rows.len()
    );
}

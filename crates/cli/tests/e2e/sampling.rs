//! Sampling mode (`--sample-rate`) keeps every block in the live table, so the totals of every
//! fixture must still equal memcheck's exactly, whatever was sampled; only the loss records
//! become estimates.

use crate::harness::build::corpus;
use crate::harness::expect::{Exit, Level};
use crate::harness::leakscope::{self, Invocation};
use crate::harness::parallel_map;

#[test]
fn totals_stay_exact_for_every_fixture() {
    let corpus = corpus();
    let cases: Vec<(&str, Level)> = corpus
        .fixtures
        .iter()
        .flat_map(|f| [(f.name.as_str(), Level::O0), (f.name.as_str(), Level::O2)])
        .collect();
    let problems: Vec<String> = parallel_map(&cases, |&(name, level)| {
        let fixture = corpus.fixture(name);
        let expect = fixture.expect(level);
        let run = match leakscope::run_with(
            &corpus.binary(fixture, level),
            &corpus.args(fixture, level),
            &["--sample-rate", "16K"],
        ) {
            Ok(run) => run,
            Err(e) => return vec![format!("{}: {e}", corpus.describe(fixture, level))],
        };
        let mut problems = Vec::new();
        if run.exit != expect.exit {
            problems.push(format!("ended with {}, expected {}", run.exit, expect.exit));
        }
        if run.main.totals != expect.main.totals {
            problems.push(format!(
                "totals {} where memcheck has {}",
                run.main.totals, expect.main.totals
            ));
        }
        if let Some(child) = &expect.child {
            if !run.children.iter().any(|c| c.totals == child.totals) {
                problems.push(format!("no child with totals {}", child.totals));
            }
        }
        problems
            .into_iter()
            .map(|p| format!("{}: {p}", corpus.describe(fixture, level)))
            .collect()
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        problems.is_empty(),
        "in sampling mode:\n  {}",
        problems.join("\n  ")
    );
}

/// The site that lost 100 000 blocks of 16 bytes, sampled at 1 KiB (about 1 600 samples,
/// a standard error near 2.5%): its estimate must land within 12% of the truth, and be
/// marked as an estimate.
#[test]
fn a_sites_estimate_is_close_to_the_truth() {
    let corpus = corpus();
    let fixture = corpus.fixture("many_leaks_100k");
    let dir = tempfile::tempdir().unwrap();
    let binary = corpus.binary(fixture, Level::O2);
    let (output, report) = Invocation::new(&binary)
        .extra(["--sample-rate", "1K"])
        .run_json(dir.path());
    assert_eq!(output.exit(), Exit::Code(0), "{}", output.stderr_text());
    assert_eq!(report["sampling"]["rate_bytes"], 1024);
    assert_eq!(report["summary"]["definitely_lost"]["blocks"], 100_000);
    let site = &report["leaks"][0];
    assert_eq!(site["estimated"], true);
    let blocks = site["blocks"].as_f64().unwrap();
    assert!(
        (88_000.0..112_000.0).contains(&blocks),
        "estimated {blocks} blocks for 100 000: {site}"
    );
    let unsampled = report["sampling"]["unsampled"]["blocks"].as_u64().unwrap();
    assert!(unsampled > 90_000, "{unsampled} blocks not sampled");
}

//! The rule of `--error-exitcode` ([`leakscope_analysis::Gate`]) over the shared reports' findings,
//! and its sentence ([`leakscope_report::gate_failure`]): lost blocks anywhere in the tree
//! fail the run, and so does a leak check that did not happen.

#[allow(dead_code)] // each test file uses some of the shared reports
mod common;

use leakscope_analysis::suppressions::LeakKinds;
use leakscope_analysis::{Gate, GateRule, LeakCheck, Shortfall};
use leakscope_format::LeakKind;
use leakscope_report::{gate_failure as gate_failure_in, Report};

/// The gate with definitely and indirectly lost as its error kinds (leakscope's default
/// before it took memcheck's), which these tests were written for.
fn gate_of(report: &Report) -> Gate {
    Gate::of(
        &report.findings,
        GateRule {
            error_kinds: LeakKinds::of(&[LeakKind::DefinitelyLost, LeakKind::IndirectlyLost]),
            fail_on_growing: false,
        },
    )
}

fn gate_failure(gate: &Gate) -> Option<String> {
    gate_failure_in(gate, &Report::default())
}

/// memcheck's default error kinds: definitely and possibly lost, not indirectly.
#[test]
fn the_default_error_kinds_are_memchecks() {
    let gate = Gate::of(&common::leaky().findings, GateRule::default());
    assert_eq!(gate.lost.blocks, 2);
    assert_eq!(gate.lost.bytes, 4096 + 1_048_576);
    assert_eq!(
        gate_failure(&gate).unwrap(),
        "2 blocks (1,052,672 bytes) definitely or possibly lost in 1 process"
    );
}

#[test]
fn a_clean_complete_run_passes() {
    let gate = gate_of(&common::clean());
    assert!(gate.passes(), "{gate:?}");
    assert_eq!(gate_failure(&gate), None);
}

#[test]
fn lost_blocks_fail_and_still_reachable_or_possibly_lost_do_not() {
    let gate = gate_of(&common::leaky());
    assert!(!gate.passes());
    // 1 definitely lost block of 4096 bytes and 4 indirectly lost of 64 in all.
    assert_eq!(gate.lost.blocks, 5);
    assert_eq!(gate.lost.bytes, 4160);
    assert_eq!(
        gate_failure(&gate).unwrap(),
        "5 blocks (4,160 bytes) definitely or indirectly lost in 1 process"
    );

    let mut reachable_only = common::leaky();
    let leaks = &mut reachable_only.findings.leaks;
    leaks.summary.definitely_lost = Default::default();
    leaks.summary.indirectly_lost = Default::default();
    assert!(gate_of(&reachable_only).passes());
}

#[test]
fn a_check_that_did_not_run_fails_even_with_nothing_lost() {
    let gate = gate_of(&common::not_run());
    assert!(!gate.passes());
    assert!(gate.lost.is_zero());
    let failure = gate_failure(&gate).unwrap();
    assert!(
        failure.starts_with(
            "in process 6000, the leak check did not run: the process was killed by SIGKILL"
        ),
        "{failure}"
    );
}

#[test]
fn the_whole_tree_counts_not_only_the_root() {
    // A clean root whose forked child lost a block.
    let mut root = common::clean();
    let mut child = common::leaky();
    child.findings.pid = 8;
    common::adopt(&mut root, vec![child]);
    let gate = gate_of(&root);
    assert!(!gate.passes());
    assert_eq!(gate.lost.blocks, 5);
    assert_eq!(gate.processes_that_lost, 1);

    // A grandchild whose check did not run.
    let mut root = common::clean();
    let mut child = common::clean();
    let mut grandchild = common::not_run();
    grandchild.findings.pid = 10;
    common::adopt(&mut child, vec![grandchild]);
    common::adopt(&mut root, vec![child]);
    let gate = gate_of(&root);
    assert!(!gate.passes());
    assert_eq!(gate.unchecked.len(), 1);
    assert_eq!(gate.unchecked[0].0, 10);

    // The root not checked, the children fine.
    let gate = gate_of(&common::not_run_with_children());
    assert_eq!(gate.unchecked.len(), 1, "{gate:?}");
    assert_eq!(gate.unchecked[0].0, 7);
}

#[test]
fn an_incomplete_check_counts_as_it_is_unless_records_may_be_missing() {
    // Threads not stopped, memory not read: lost figures can only be too high.
    let mut report = common::clean();
    report.findings.leaks.leak_check = LeakCheck {
        shortfalls: vec![
            Shortfall::ThreadsMissed { threads: 1 },
            Shortfall::UnreadableMemory,
        ],
    };
    assert!(gate_of(&report).passes());
    assert!(!gate_of(&common::incomplete()).passes());

    // Cut short after the scan: lost records may be missing, so a zero proves nothing.
    report.findings.leaks.leak_check = LeakCheck {
        shortfalls: vec![Shortfall::EndsAfterScan { damage: None }],
    };
    let gate = gate_of(&report);
    assert!(!gate.passes());
    assert!(gate_failure(&gate).unwrap().contains("may be missing"));
}

#[test]
fn every_reason_is_given() {
    let mut root = common::leaky();
    common::adopt(&mut root, vec![common::not_run()]);
    let failure = gate_failure(&gate_of(&root)).unwrap();
    assert!(failure.contains("definitely or indirectly lost in 1 process; in process 6000, the leak check did not run"), "{failure}");
}

#[test]
fn a_run_without_a_profile_fails_because_nothing_was_checked() {
    let gate = Gate::without_profile();
    assert!(!gate.passes());
    assert!(gate.lost.is_zero());
    assert_eq!(
        gate_failure(&gate).as_deref(),
        Some("the leak check did not run")
    );
}

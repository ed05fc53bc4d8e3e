//! The entry point [`leakscope_analysis::analyze`] over in-memory profile trees: where each
//! image is placed, how its exit status is merged, the cap on bounded sites, and the gate
//! over every image of the tree.

use leakscope_analysis::{analyze, ExitStatus, StartedBy, Verdict, BOUNDED_SITES_SHOWN};
use leakscope_format::tree::ProfileTree;
use leakscope_format::{
    process_flags, Exit, ExitHow, LeakKind, LeakRecord, Process, Profile, RunResult, Scan,
    SiteLive, Snapshot, Spawn, SpawnHow, StackId,
};

/// A whole profile of process `pid` (forked from `ppid` if given) whose exit scan ran and
/// found `lost` definitely lost bytes in one block at stack 1.
fn profile(pid: u32, forked_from: Option<u32>, start_unix_ns: u64, lost: u64) -> Profile {
    Profile {
        process: Some(Process {
            pid,
            ppid: forked_from.unwrap_or(1),
            start_unix_ns,
            flags: if forked_from.is_some() {
                process_flags::FORKED
            } else {
                0
            },
            argv: vec![format!("./prog{pid}")],
            kernel_start_ticks: Some(u64::from(pid)),
            ..Process::default()
        }),
        exit: Some(Exit {
            how: ExitHow::Exit,
            code: 3,
            signal: 0,
            time_ns: 2_000_000_000,
        }),
        leaks: if lost > 0 {
            vec![LeakRecord {
                stack: 1,
                kind: LeakKind::DefinitelyLost,
                bytes: lost,
                blocks: 1,
            }]
        } else {
            Vec::new()
        },
        scan: Some(Scan::default()),
        complete: true,
        ..Profile::default()
    }
}

fn tree(root: Profile, descendants: Vec<Profile>) -> ProfileTree {
    ProfileTree {
        root,
        descendants: descendants
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("run.profile.{i}").into(), p))
            .collect(),
        unreadable: Vec::new(),
    }
}

#[test]
fn a_forked_grandchild_that_lost_blocks_fails_the_gate_of_a_clean_root() {
    let mut root = profile(100, None, 1, 0);
    root.spawns = vec![Spawn {
        time_ns: 5,
        how: SpawnHow::Fork,
        pid: Some(101),
        program: String::new(),
    }];
    let child = profile(101, Some(100), 2, 0);
    let grandchild = profile(102, Some(101), 3, 48);
    // Files are read in the order of their paths, not of the processes' starts.
    let analysis = analyze(&tree(root, vec![grandchild, child]));

    let root = &analysis.root;
    assert_eq!((root.pid, root.profile), (100, 0));
    assert_eq!(root.children.len(), 1);
    let child = &root.children[0];
    assert_eq!(
        (child.pid, child.profile, child.started_by),
        (101, 2, StartedBy::Fork)
    );
    let grandchild = &child.children[0];
    assert_eq!((grandchild.pid, grandchild.profile), (102, 1));
    assert_eq!(grandchild.started_by, StartedBy::Fork);

    assert!(!analysis.gate.passes());
    assert_eq!(analysis.gate.lost.bytes, 48);
    assert_eq!(analysis.gate.processes_that_lost, 1);
    assert!(analysis.gate.unchecked.is_empty());
    // Each image names its own stacks, for its own profile.
    assert_eq!(analysis.stacks(3), [vec![], vec![1], vec![]]);
}

#[test]
fn a_fork_that_left_no_profile_is_a_note_of_its_parent() {
    let mut root = profile(100, None, 1, 0);
    root.spawns = vec![Spawn {
        time_ns: 1_500_000_000,
        how: SpawnHow::Fork,
        pid: Some(555),
        program: String::new(),
    }];
    let analysis = analyze(&tree(root, Vec::new()));
    assert_eq!(
        analysis.root.notes,
        ["1 process it started left no profile (killed before the agent wrote one, a program the agent cannot enter such as a static or setuid one, or a profile it could not create): process 555 (forked at 1.5 s)"]
    );
    assert!(analysis.gate.passes());
}

#[test]
fn the_run_result_is_the_exit_status_where_there_is_one() {
    let mut seen_inside = profile(100, None, 1, 0);
    let analysis = analyze(&tree(seen_inside.clone(), Vec::new()));
    assert_eq!(
        analysis.root.exit,
        ExitStatus {
            code: Some(3),
            signal: None
        }
    );
    assert_eq!(analysis.root.duration_s, 2.0);

    seen_inside.run_result = Some(RunResult {
        code: None,
        signal: Some(9),
        wall_ns: 2_500_000_000,
    });
    let analysis = analyze(&tree(seen_inside.clone(), Vec::new()));
    assert_eq!(
        analysis.root.exit,
        ExitStatus {
            code: None,
            signal: Some(9)
        }
    );
    assert_eq!(analysis.root.duration_s, 2.5);

    seen_inside.run_result = None;
    seen_inside.exit = Some(Exit {
        how: ExitHow::Signal,
        code: 0,
        signal: 11,
        time_ns: 1,
    });
    assert_eq!(
        analyze(&tree(seen_inside, Vec::new())).root.exit,
        ExitStatus {
            code: None,
            signal: Some(11)
        }
    );
}

#[test]
fn a_killed_process_is_unchecked_and_fails_the_gate_with_nothing_lost() {
    let mut killed = profile(100, None, 1, 0);
    killed.exit = None;
    killed.scan = None;
    killed.complete = false;
    let analysis = analyze(&tree(killed, Vec::new()));
    assert!(!analysis.gate.passes());
    assert!(analysis.gate.lost.is_zero());
    assert_eq!(analysis.gate.unchecked.len(), 1);
    assert_eq!(analysis.gate.unchecked[0].0, 100);
    assert_eq!(analysis.root.exit, ExitStatus::default());
    assert!(analysis.root.notes[0].starts_with("the process did not finish normally"));
}

/// 60 sites that churn (bounded) and one that grows, over 20 snapshots in 4 s: every growing
/// site is kept, and only the first [`BOUNDED_SITES_SHOWN`] bounded ones.
#[test]
fn bounded_sites_are_capped_and_growing_ones_are_not() {
    let churning: Vec<StackId> = (10..70).collect();
    let snapshots = (0..20u64)
        .map(|i| Snapshot {
            time_ns: i * 200_000_000,
            sites: churning
                .iter()
                .map(|&stack| SiteLive {
                    stack,
                    live_bytes: if i % 2 == 0 { 4096 } else { 1024 } + u64::from(stack),
                    live_blocks: 2,
                })
                .chain(std::iter::once(SiteLive {
                    stack: 2,
                    live_bytes: 100_000 * (i + 1),
                    live_blocks: i + 1,
                }))
                .collect(),
            ..Snapshot::default()
        })
        .collect();
    let mut watched = profile(100, None, 1, 0);
    watched.snapshots = snapshots;
    watched.exit = None;
    let analysis = analyze(&tree(watched, Vec::new()));
    let growth = &analysis.root.growth;
    let count = |verdict| growth.iter().filter(|g| g.verdict == verdict).count();
    assert_eq!(count(Verdict::Growing), 1, "{growth:#?}");
    assert_eq!(count(Verdict::Bounded), BOUNDED_SITES_SHOWN);
    assert_eq!(growth[0].stack, 2);
}

//! `growth` and `timeline` on whole profiles: snapshots that list only the sites that changed,
//! site ages, available memory.

use leakscope_analysis::{growth, timeline, Verdict};
use leakscope_format::{Exit, ExitHow, Profile, SiteAge, SiteAges, SiteLive, Snapshot, StackId};

fn age(stack: StackId, oldest_ns: u64) -> SiteAge {
    SiteAge { stack, oldest_ns }
}

const MS: u64 = 1_000_000;
const GIB: u64 = 1 << 30;

/// A site's live (bytes, blocks) at snapshot k, None before the site exists.
type SiteFn<'a> = &'a dyn Fn(usize) -> Option<(u64, u64)>;

/// A profile from per-site functions of the snapshot index (None: the site does not exist
/// yet), snapshots every 100 ms from 100 ms; each snapshot lists only the sites whose value
/// changed, as the agent writes them.
fn profile(count: usize, sites: &[(StackId, SiteFn)]) -> Profile {
    let mut previous: Vec<Option<(u64, u64)>> = vec![None; sites.len()];
    let mut snapshots = Vec::new();
    for k in 0..count {
        let mut changed = Vec::new();
        let mut live = (0, 0);
        for (i, (stack, value)) in sites.iter().enumerate() {
            let now = value(k);
            if let Some((bytes, blocks)) = now {
                live = (live.0 + bytes, live.1 + blocks);
                if previous[i] != now {
                    changed.push(SiteLive {
                        stack: *stack,
                        live_bytes: bytes,
                        live_blocks: blocks,
                    });
                }
            }
            previous[i] = now;
        }
        snapshots.push(Snapshot {
            time_ns: (k as u64 + 1) * 100 * MS,
            rss_bytes: 10 << 20,
            available_bytes: 4 * GIB,
            live_bytes: live.0,
            live_blocks: live.1,
            sites: changed,
        });
    }
    Profile {
        snapshots,
        ..Profile::default()
    }
}

/// A little deterministic jitter.
fn wobble(k: usize, amplitude: u64) -> u64 {
    (k as u64 * 2_654_435_761 % 1000) * amplitude / 1000
}

#[test]
fn every_verdict_in_one_profile_in_report_order() {
    let leak = |k: usize| Some((100 * k as u64 + 100, k as u64 + 1));
    let late_leak = |k: usize| (k >= 20).then(|| (1000 * (k as u64 - 19), k as u64 - 19));
    let slow_leak = |k: usize| Some((4096 + 20 * k as u64, 1 + k as u64 / 4));
    let cache = |k: usize| Some(((k as u64 + 1).min(8) * 8192, (k as u64 + 1).min(8) * 8));
    let churn = |k: usize| Some((20_000 + wobble(k, 6000), 40 + wobble(k, 10)));
    let nothing = |_: usize| Some((0, 0));
    let too_late = |k: usize| (k >= 55).then(|| (50_000 * (k as u64 - 54), 1));
    let mut profile = profile(
        60,
        &[
            (1, &leak),
            (2, &cache),
            (3, &churn),
            (4, &late_leak),
            (5, &nothing),
            (6, &too_late),
            (7, &slow_leak),
        ],
    );
    profile.site_ages = SiteAges {
        time_ns: 6000 * MS,
        oldest: vec![
            age(1, 100 * MS),
            age(2, 150 * MS),
            age(3, 5950 * MS),
            age(4, 2000 * MS),
        ],
    };
    let findings = growth(&profile);
    let order: Vec<(StackId, Verdict)> = findings.iter().map(|f| (f.stack, f.verdict)).collect();
    assert_eq!(
        order,
        [
            (4, Verdict::Growing),
            (1, Verdict::Growing),
            (7, Verdict::Growing),
            (2, Verdict::Plateau),
            (3, Verdict::Bounded),
        ]
    );

    let late = &findings[0];
    assert!(
        (late.bytes_per_s - 10_000.0).abs() < 1.0,
        "{}",
        late.bytes_per_s
    );
    assert_eq!(late.live_bytes_first, 0); // appeared after the first snapshot
    assert_eq!(late.live_bytes_last, 40_000);
    assert_eq!(late.live_bytes_peak, 40_000);
    assert_eq!(late.live_blocks_last, 40);
    assert_eq!(late.oldest_block_age_s, Some(4.0));
    let exhaustion = late.exhaustion_s.expect("growing, available memory known");
    assert!((exhaustion - 4.0 * GIB as f64 / 10_000.0).abs() < 10.0);
    assert!(late.confidence > 0.95, "{}", late.confidence);

    let leak = &findings[1];
    assert!(
        (leak.bytes_per_s - 1000.0).abs() < 0.1,
        "{}",
        leak.bytes_per_s
    );
    assert_eq!((leak.live_bytes_first, leak.live_bytes_last), (100, 6000));
    assert_eq!(leak.oldest_block_age_s, Some(5.9));

    // No ages for this one: still growing, with less confidence than the same with ages.
    let slow = &findings[2];
    assert_eq!(slow.oldest_block_age_s, None);
    assert!(slow.confidence < leak.confidence);
    assert!(slow.confidence > 0.5);

    for finding in &findings[3..] {
        assert_eq!(finding.exhaustion_s, None, "{}", finding.stack);
    }
    assert_eq!(findings[3].live_bytes_peak, 65_536);
}

/// A buffer grown by `realloc` (one block, ever larger) is always young; a FIFO backlog
/// (ever more blocks of one size) with young blocks is not a leak.
#[test]
fn the_age_counts_for_more_blocks_not_for_bigger_ones() {
    let buffer = |k: usize| Some((4096 + 512 * k as u64, 1));
    let backlog = |k: usize| Some((4096 + 512 * k as u64, 8 + k as u64));
    let mut profile = profile(50, &[(1, &buffer), (2, &backlog)]);
    profile.site_ages = SiteAges {
        time_ns: 5000 * MS,
        oldest: vec![age(1, 4950 * MS), age(2, 4800 * MS)],
    };
    let findings = growth(&profile);
    let verdicts: Vec<(StackId, Verdict)> = findings.iter().map(|f| (f.stack, f.verdict)).collect();
    assert_eq!(verdicts, [(1, Verdict::Growing), (2, Verdict::Bounded)]);
    // The buffer's age is still reported as it is.
    assert_eq!(findings[0].oldest_block_age_s, Some(0.05));
    assert!(findings[1].confidence < 0.5, "{}", findings[1].confidence);
}

/// The agent's exit snapshot comes after the program's exit handlers and destructors: a
/// cache freed there has not been given back while the program ran.
#[test]
fn teardown_at_exit_is_not_given_back() {
    let memo = |k: usize| Some((1000 * k as u64 + 1000, k as u64 + 1));
    let mut profile = profile(40, &[(1, &memo)]);
    let exit_ns = 4_050 * MS;
    profile.snapshots.push(Snapshot {
        time_ns: exit_ns,
        sites: vec![SiteLive {
            stack: 1,
            live_bytes: 0,
            live_blocks: 0,
        }],
        ..Snapshot::default()
    });
    profile.exit = Some(Exit {
        how: ExitHow::Exit,
        code: 0,
        signal: 0,
        time_ns: exit_ns,
    });
    let findings = growth(&profile);
    assert_eq!(findings[0].verdict, Verdict::Growing);
    assert_eq!(findings[0].live_bytes_last, 40_000);
    // The timeline shows the teardown all the same.
    assert_eq!(timeline(&profile).last().map(|p| p.live_bytes), Some(0));
    // Without the exit record, the drop is the program's own doing and counts (one point of
    // it is not enough to undo the verdict: the give-back is measured on a running median).
    profile.exit = None;
    assert_eq!(growth(&profile)[0].live_bytes_last, 0);
}

#[test]
fn exhaustion_needs_known_available_memory() {
    let leak = |k: usize| Some((1000 * k as u64 + 1000, k as u64 + 1));
    let mut profile = profile(40, &[(1, &leak)]);
    for snapshot in &mut profile.snapshots {
        snapshot.available_bytes = 0;
    }
    let findings = growth(&profile);
    assert_eq!(findings[0].verdict, Verdict::Growing);
    assert_eq!(findings[0].exhaustion_s, None);
    // The last snapshot that knew it counts.
    profile.snapshots[30].available_bytes = 1_000_000;
    let findings = growth(&profile);
    assert!((findings[0].exhaustion_s.expect("known") - 100.0).abs() < 1e-6);
}

#[test]
fn a_profile_without_snapshots_has_no_growth_and_no_timeline() {
    assert!(growth(&Profile::default()).is_empty());
    assert!(timeline(&Profile::default()).is_empty());
}

#[test]
fn under_a_second_of_snapshots_gives_no_verdict() {
    let leak = |k: usize| Some((1 << 20) * (k as u64 + 1)).map(|b| (b, 1));
    assert!(growth(&profile(9, &[(1, &leak)])).is_empty());
    assert_eq!(growth(&profile(11, &[(1, &leak)])).len(), 1);
}

#[test]
fn timeline_is_thinned_evenly_in_time_and_keeps_the_ends() {
    // 1700 snapshots with the agent's doubling interval: 100 ms, doubling every 100.
    let mut snapshots = Vec::new();
    let mut t = 0;
    for k in 0..1700u64 {
        t += (100 * MS) << (k / 100);
        snapshots.push(Snapshot {
            time_ns: t,
            rss_bytes: 1000 + k,
            available_bytes: GIB,
            live_bytes: 10 * k,
            live_blocks: k,
            sites: Vec::new(),
        });
    }
    let profile = Profile {
        snapshots,
        ..Profile::default()
    };
    let points = timeline(&profile);
    assert!(
        points.len() <= 500 && points.len() > 100,
        "{}",
        points.len()
    );
    let first = points[0];
    assert_eq!(
        (
            first.t_s,
            first.live_bytes,
            first.live_blocks,
            first.rss_bytes
        ),
        (0.1, 0, 0, 1000)
    );
    assert_eq!(points[points.len() - 1].live_blocks, 1699);
    assert!(points.windows(2).all(|pair| pair[0].t_s < pair[1].t_s));
    // Even in time: no gap between kept points is much wider than the even spacing or the
    // input's own interval, whichever is wider.
    let span = points[points.len() - 1].t_s - first.t_s;
    let widest_input = ((100 * MS) << 16) as f64 / 1e9;
    for pair in points.windows(2) {
        assert!(pair[1].t_s - pair[0].t_s <= (span / 499.0).max(widest_input) * 1.5);
    }

    // Short runs are not thinned.
    let short = Profile {
        snapshots: profile.snapshots[..80].to_vec(),
        ..Profile::default()
    };
    assert_eq!(timeline(&short).len(), 80);
}

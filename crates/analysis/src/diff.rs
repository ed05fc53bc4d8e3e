//! Which sites grew between two profiles, or between two moments of one profile, as Python's
//! `tracemalloc` `Snapshot.compare_to` does.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use leakscope_format::{Profile, StackFrame, StackId};

/// One site's live memory at two moments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteDelta {
    /// The site: its id in the new profile if the new profile has it, else in the old one.
    pub stack: StackId,
    /// The site's id in the old profile, if the old profile knows the site. When several of
    /// its stacks share the site's key, the one with the most live bytes (then the lowest id).
    pub old_stack: Option<StackId>,
    /// The site's id in the new profile, if the new profile knows the site (chosen likewise).
    pub new_stack: Option<StackId>,
    /// Live bytes before.
    pub bytes_before: u64,
    /// Live bytes after.
    pub bytes_after: u64,
    /// Live blocks before.
    pub blocks_before: u64,
    /// Live blocks after.
    pub blocks_after: u64,
    /// `bytes_after - bytes_before` (saturating at the ends of `i64`).
    pub bytes_delta: i64,
    /// `blocks_after - blocks_before` (saturating likewise).
    pub blocks_delta: i64,
}

/// Live (bytes, blocks) per site.
type Live = BTreeMap<StackId, (u64, u64)>;

/// [`diff_profiles_by`] with [`stack_key`]: sites match when their frames are the same
/// module offsets, which holds across runs of the same binaries whatever the address-space
/// layout.
pub fn diff_profiles(old: &Profile, new: &Profile) -> Vec<SiteDelta> {
    diff_profiles_by(old, new, stack_key)
}

/// The sites whose live memory changed from `old` to `new`, most growth first.
///
/// Each profile's live memory per site is taken at its last snapshot, or, for a profile
/// with no snapshots, from its exit leak records (all kinds added up; in sampling mode the
/// estimates). Stack ids are numbered per profile, so sites are matched by `key(profile,
/// stack)` (for example the symbolized frames); the stacks of one profile with the same key
/// are added up, and stacks whose key is None are left out. Unchanged sites are left out.
/// Order: bytes delta descending, then blocks delta descending, then stack id.
pub fn diff_profiles_by<K, F>(old: &Profile, new: &Profile, mut key: F) -> Vec<SiteDelta>
where
    K: Ord,
    F: FnMut(&Profile, StackId) -> Option<K>,
{
    let before = by_key(old, live_at_end(old), &mut key);
    let after = by_key(new, live_at_end(new), &mut key);
    let mut merged: BTreeMap<K, (Option<Side>, Option<Side>)> = BTreeMap::new();
    for (k, side) in before {
        merged.entry(k).or_default().0 = Some(side);
    }
    for (k, side) in after {
        merged.entry(k).or_default().1 = Some(side);
    }
    let deltas = merged.into_values().filter_map(|(before, after)| {
        let stack = after.or(before)?.stack;
        Some(delta(
            stack,
            before.map(|side| side.stack),
            after.map(|side| side.stack),
            before.map_or((0, 0), |side| side.live),
            after.map_or((0, 0), |side| side.live),
        ))
    });
    sorted(deltas)
}

/// The sites whose live memory changed between two moments of one profile (seconds since
/// the agent started), most growth first. The state at a moment is the one of the last
/// snapshot taken at or before it (nothing is live before the first snapshot). For the
/// same profile ids match, so `old_stack` and `new_stack` are both `Some(stack)`.
pub fn diff_snapshots(profile: &Profile, from_s: f64, to_s: f64) -> Vec<SiteDelta> {
    let before = live_at(profile, from_s);
    let after = live_at(profile, to_s);
    let stacks: std::collections::BTreeSet<StackId> =
        before.keys().chain(after.keys()).copied().collect();
    sorted(stacks.into_iter().map(|stack| {
        delta(
            stack,
            Some(stack),
            Some(stack),
            before.get(&stack).copied().unwrap_or_default(),
            after.get(&stack).copied().unwrap_or_default(),
        )
    }))
}

/// A key for a stack that holds across runs of the same binaries: each native frame as the
/// module's path and the address's offset in the module file (`path+0x1a2b`), or the raw
/// address for a frame in no known module; each interpreter frame as its kind, function, file
/// and line (`python:process_request@job.py:12`), never its id, which differs between runs;
/// joined by `;`. None for a stack the profile does not have (such as sampling mode's stack
/// 0, "not sampled").
pub fn stack_key(profile: &Profile, stack: StackId) -> Option<String> {
    let frames = profile.stacks.get(&stack)?;
    let mut key = String::new();
    for (i, &frame) in frames.iter().enumerate() {
        if i > 0 {
            key.push(';');
        }
        let address = match frame {
            StackFrame::Native(address) => address,
            StackFrame::Interpreter(kind, id) => {
                match profile.frames.get(&id) {
                    Some(f) => {
                        let _ = write!(key, "{}:{}@{}:{}", kind.name(), f.function, f.file, f.line);
                    }
                    // Not interned (a damaged file): the id is all there is.
                    None => {
                        let _ = write!(key, "{}:#{id}", kind.name());
                    }
                }
                continue;
            }
            // The reader resolves every code location; one left is a profile built by hand.
            StackFrame::PythonCode { code, offset } => {
                let _ = write!(key, "python:code#{code}+{offset}");
                continue;
            }
        };
        match profile
            .modules
            .iter()
            .find(|module| module.contains(address))
        {
            Some(module) => {
                let offset = address.wrapping_sub(module.load_bias);
                let _ = write!(key, "{}+{offset:#x}", module.path);
            }
            None => {
                let _ = write!(key, "{address:#x}");
            }
        }
    }
    Some(key)
}

/// One profile's part of a matched site.
#[derive(Clone, Copy, Debug)]
struct Side {
    stack: StackId,
    live: (u64, u64),
    /// The representative stack's own live bytes (to choose it).
    own_bytes: u64,
}

fn by_key<K: Ord>(
    profile: &Profile,
    live: Live,
    key: &mut impl FnMut(&Profile, StackId) -> Option<K>,
) -> BTreeMap<K, Side> {
    let mut sides: BTreeMap<K, Side> = BTreeMap::new();
    // Ascending stack ids: on equal bytes the lowest id stays the representative.
    for (stack, (bytes, blocks)) in live {
        let Some(k) = key(profile, stack) else {
            continue;
        };
        let side = sides.entry(k).or_insert(Side {
            stack,
            live: (0, 0),
            own_bytes: bytes,
        });
        side.live = (
            side.live.0.saturating_add(bytes),
            side.live.1.saturating_add(blocks),
        );
        if bytes > side.own_bytes {
            side.stack = stack;
            side.own_bytes = bytes;
        }
    }
    sides
}

/// Live memory per site at the last snapshot of the program's life (the exit snapshot, taken
/// after exit handlers and destructors, only if there is no other), or from the exit records
/// without snapshots.
fn live_at_end(profile: &Profile) -> Live {
    if let Some(last) = crate::growth::life_snapshots(profile).last() {
        return live_until(profile, last.time_ns);
    }
    if profile.snapshots.is_empty() {
        let records = match profile.sample_rate {
            Some(_) => &profile.leak_estimates,
            None => &profile.leaks,
        };
        let mut live = Live::new();
        for record in records {
            let entry = live.entry(record.stack).or_default();
            *entry = (
                entry.0.saturating_add(record.bytes),
                entry.1.saturating_add(record.blocks),
            );
        }
        live
    } else {
        live_until(profile, u64::MAX)
    }
}

/// Live memory per site as of the last snapshot at or before `t_s` seconds.
fn live_at(profile: &Profile, t_s: f64) -> Live {
    if t_s.is_nan() || t_s < 0.0 {
        return Live::new();
    }
    // Saturates for times past u64::MAX nanoseconds (and infinity).
    live_until(profile, (t_s * 1e9).round() as u64)
}

/// Live memory per site as of the last snapshot at or before `time_ns`.
fn live_until(profile: &Profile, time_ns: u64) -> Live {
    let mut live = Live::new();
    for snapshot in &profile.snapshots {
        if snapshot.time_ns > time_ns {
            break;
        }
        for site in &snapshot.sites {
            live.insert(site.stack, (site.live_bytes, site.live_blocks));
        }
    }
    live
}

fn delta(
    stack: StackId,
    old_stack: Option<StackId>,
    new_stack: Option<StackId>,
    before: (u64, u64),
    after: (u64, u64),
) -> SiteDelta {
    SiteDelta {
        stack,
        old_stack,
        new_stack,
        bytes_before: before.0,
        bytes_after: after.0,
        blocks_before: before.1,
        blocks_after: after.1,
        bytes_delta: difference(before.0, after.0),
        blocks_delta: difference(before.1, after.1),
    }
}

/// `after - before`, saturating at the ends of `i64`.
pub(crate) fn difference(before: u64, after: u64) -> i64 {
    (i128::from(after) - i128::from(before)).clamp(i128::from(i64::MIN), i128::from(i64::MAX))
        as i64
}

fn sorted(deltas: impl Iterator<Item = SiteDelta>) -> Vec<SiteDelta> {
    let mut deltas: Vec<SiteDelta> = deltas
        .filter(|d| d.bytes_delta != 0 || d.blocks_delta != 0)
        .collect();
    deltas.sort_by_key(|d| (Reverse(d.bytes_delta), Reverse(d.blocks_delta), d.stack));
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakscope_format::{
        Exit, ExitHow, FrameKind, InterpreterFrame, LeakKind, LeakRecord, Module, SiteLive,
        Snapshot,
    };

    fn snapshot(time_ms: u64, sites: &[(StackId, u64, u64)]) -> Snapshot {
        Snapshot {
            time_ns: time_ms * 1_000_000,
            sites: sites
                .iter()
                .map(|&(stack, live_bytes, live_blocks)| SiteLive {
                    stack,
                    live_bytes,
                    live_blocks,
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    fn natives(addresses: &[u64]) -> Vec<StackFrame> {
        addresses.iter().map(|&a| StackFrame::Native(a)).collect()
    }

    fn python_frame(id: u32, function: &str, line: u32) -> InterpreterFrame {
        InterpreterFrame {
            id,
            kind: FrameKind::Python,
            function: function.into(),
            file: "job.py".into(),
            line,
            column: 0,
            identity: 0x7f00_0000 + id as u64,
        }
    }

    /// Interpreter frames compare by kind, function, file and line: their ids (and the
    /// runtime's identities) differ from run to run.
    #[test]
    fn interpreter_frames_key_by_function_file_and_line_not_id() {
        let mut old = with_snapshots(vec![snapshot(0, &[(1, 100, 1)])]);
        old.frames.insert(3, python_frame(3, "process_request", 12));
        old.stacks.insert(
            1,
            vec![
                StackFrame::Native(0x9999),
                StackFrame::Interpreter(FrameKind::Python, 3),
            ],
        );
        let mut new = with_snapshots(vec![snapshot(0, &[(4, 250, 2), (5, 7, 1)])]);
        new.frames.insert(8, python_frame(8, "process_request", 12));
        new.frames.insert(9, python_frame(9, "process_request", 13));
        new.stacks.insert(
            4,
            vec![
                StackFrame::Native(0x9999),
                StackFrame::Interpreter(FrameKind::Python, 8),
            ],
        );
        new.stacks.insert(
            5,
            vec![
                StackFrame::Native(0x9999),
                StackFrame::Interpreter(FrameKind::Python, 9),
            ],
        );
        new.stacks
            .insert(6, vec![StackFrame::Interpreter(FrameKind::Java, 40)]);
        assert_eq!(
            stack_key(&new, 4).as_deref(),
            Some("0x9999;python:process_request@job.py:12")
        );
        assert_eq!(stack_key(&old, 1), stack_key(&new, 4));
        assert_eq!(stack_key(&new, 6).as_deref(), Some("java:#40"));
        let deltas = diff_profiles(&old, &new);
        assert_eq!(stacks(&deltas), [(4, 150), (5, 7)]);
        assert_eq!(deltas[0].old_stack, Some(1));
        assert_eq!(deltas[1].old_stack, None);
    }

    fn with_snapshots(snapshots: Vec<Snapshot>) -> Profile {
        Profile {
            snapshots,
            ..Profile::default()
        }
    }

    fn stacks(profile: &[SiteDelta]) -> Vec<(StackId, i64)> {
        profile.iter().map(|d| (d.stack, d.bytes_delta)).collect()
    }

    /// Values are carried forward: a site not mentioned in a later snapshot keeps its value.
    #[test]
    fn diff_snapshots_compares_two_moments_with_carried_values() {
        let profile = with_snapshots(vec![
            snapshot(100, &[(1, 100, 1), (2, 500, 5), (3, 70, 7)]),
            snapshot(200, &[(1, 300, 3)]),
            snapshot(300, &[(2, 200, 2), (4, 1000, 1)]),
            snapshot(400, &[(1, 900, 9)]),
        ]);
        let deltas = diff_snapshots(&profile, 0.15, 0.35);
        assert_eq!(stacks(&deltas), [(4, 1000), (1, 200), (2, -300)]);
        assert_eq!(
            deltas[1],
            SiteDelta {
                stack: 1,
                old_stack: Some(1),
                new_stack: Some(1),
                bytes_before: 100,
                bytes_after: 300,
                blocks_before: 1,
                blocks_after: 3,
                bytes_delta: 200,
                blocks_delta: 2,
            }
        );
        // Before the first snapshot nothing is live; after the last, the last state holds.
        let deltas = diff_snapshots(&profile, 0.0, 99.0);
        assert_eq!(stacks(&deltas), [(4, 1000), (1, 900), (2, 200), (3, 70)]);
        // The same moment twice: nothing changed.
        assert!(diff_snapshots(&profile, 0.25, 0.25).is_empty());
    }

    #[test]
    fn sites_that_only_changed_blocks_are_kept_and_ordered_after_bytes() {
        let profile = with_snapshots(vec![
            snapshot(0, &[(1, 64, 1), (2, 64, 1), (3, 64, 1)]),
            snapshot(100, &[(1, 64, 4), (3, 64, 2)]),
        ]);
        let deltas = diff_snapshots(&profile, 0.0, 0.1);
        let order: Vec<(StackId, i64)> = deltas.iter().map(|d| (d.stack, d.blocks_delta)).collect();
        assert_eq!(order, [(1, 3), (3, 1)]);
    }

    fn module(path: &str, start: u64, bias: u64) -> Module {
        Module {
            load_bias: bias,
            start,
            end: start + 0x10000,
            path: path.into(),
            build_id: Vec::new(),
        }
    }

    /// Two runs of one program: other load addresses, other stack ids, same sites.
    #[test]
    fn diff_profiles_matches_sites_by_module_offsets_not_ids() {
        let mut old = with_snapshots(vec![
            snapshot(0, &[(1, 100, 1), (2, 4000, 4)]),
            snapshot(500, &[(1, 150, 2)]),
        ]);
        old.modules = vec![module("/bin/prog", 0x5000_0000, 0x5000_0000)];
        old.stacks.insert(1, natives(&[0x5000_1234, 0x5000_2000]));
        old.stacks.insert(2, natives(&[0x5000_1300, 0x5000_2000]));

        let mut new = with_snapshots(vec![snapshot(0, &[(7, 9000, 9), (8, 150, 2), (9, 10, 1)])]);
        new.modules = vec![module("/bin/prog", 0x7000_0000, 0x7000_0000)];
        new.stacks.insert(7, natives(&[0x7000_1300, 0x7000_2000])); // old 2
        new.stacks.insert(8, natives(&[0x7000_1234, 0x7000_2000])); // old 1, unchanged
        new.stacks.insert(9, natives(&[0x7000_1400, 0x9999])); // new site, one frame outside

        assert_eq!(
            stack_key(&new, 9).as_deref(),
            Some("/bin/prog+0x1400;0x9999")
        );
        let deltas = diff_profiles(&old, &new);
        assert_eq!(
            deltas,
            [
                SiteDelta {
                    stack: 7,
                    old_stack: Some(2),
                    new_stack: Some(7),
                    bytes_before: 4000,
                    bytes_after: 9000,
                    blocks_before: 4,
                    blocks_after: 9,
                    bytes_delta: 5000,
                    blocks_delta: 5,
                },
                SiteDelta {
                    stack: 9,
                    old_stack: None,
                    new_stack: Some(9),
                    bytes_before: 0,
                    bytes_after: 10,
                    blocks_before: 0,
                    blocks_after: 1,
                    bytes_delta: 10,
                    blocks_delta: 1,
                },
            ]
        );
        // Reversed: the growth becomes a shrink and goes last; a site gone keeps its old id.
        let reversed = diff_profiles(&new, &old);
        assert_eq!(stacks(&reversed), [(9, -10), (2, -5000)]);
        assert_eq!(reversed[0].new_stack, None);
        assert_eq!(reversed[0].old_stack, Some(9));
    }

    /// The caller's key decides what a site is: stacks with the same key add up; stacks
    /// with no key are left out.
    #[test]
    fn diff_profiles_by_adds_up_stacks_with_one_key_and_skips_unkeyed() {
        let old = with_snapshots(vec![snapshot(0, &[(1, 100, 1), (2, 100, 1), (3, 5, 1)])]);
        let new = with_snapshots(vec![snapshot(0, &[(5, 300, 3), (6, 50, 1), (7, 1, 1)])]);
        let names: BTreeMap<StackId, &str> = [
            (1, "handle_request"),
            (2, "handle_request"),
            (5, "handle_request"),
            (6, "handle_request"),
            (7, "parse"),
        ]
        .into_iter()
        .collect();
        let deltas = diff_profiles_by(&old, &new, |_, stack| names.get(&stack).copied());
        assert_eq!(deltas.len(), 2);
        assert_eq!(
            (deltas[0].old_stack, deltas[0].new_stack, deltas[0].stack),
            (Some(1), Some(5), 5)
        );
        assert_eq!((deltas[0].bytes_before, deltas[0].bytes_after), (200, 350));
        assert_eq!((deltas[0].blocks_before, deltas[0].blocks_after), (2, 4));
        assert_eq!(stacks(&deltas), [(5, 150), (7, 1)]);
    }

    /// Without snapshots the exit records stand in: every kind of one stack added up.
    #[test]
    fn profiles_without_snapshots_use_the_exit_records() {
        let record = |stack, kind, bytes, blocks| LeakRecord {
            stack,
            kind,
            bytes,
            blocks,
        };
        let old = Profile {
            leaks: vec![record(1, LeakKind::DefinitelyLost, 64, 1)],
            ..Profile::default()
        };
        let new = Profile {
            leaks: vec![
                record(1, LeakKind::DefinitelyLost, 640, 10),
                record(1, LeakKind::StillReachable, 36, 1),
            ],
            ..Profile::default()
        };
        let by_id = |_: &Profile, stack: StackId| Some(stack);
        let deltas = diff_profiles_by(&old, &new, by_id);
        assert_eq!(stacks(&deltas), [(1, 612)]);
        assert_eq!(deltas[0].blocks_delta, 10);

        // Sampling mode: the estimates, not the exact records with stack 0.
        let sampled = Profile {
            sample_rate: Some(4096),
            leaks: vec![record(0, LeakKind::DefinitelyLost, 9000, 90)],
            leak_estimates: vec![record(1, LeakKind::DefinitelyLost, 8192, 2)],
            ..Profile::default()
        };
        let deltas = diff_profiles_by(&old, &sampled, by_id);
        assert_eq!(stacks(&deltas), [(1, 8128)]);
    }

    /// The snapshot the agent takes at exit comes after the program's exit handlers and
    /// destructors: what they freed is not what the program held. It counts only when it is
    /// the only snapshot.
    #[test]
    fn the_exit_snapshot_counts_only_when_it_is_the_only_one() {
        let exit = |ms: u64| {
            Some(Exit {
                how: ExitHow::Exit,
                code: 0,
                signal: 0,
                time_ns: ms * 1_000_000,
            })
        };
        let old = with_snapshots(vec![snapshot(100, &[(1, 1000, 10)])]);
        let mut new = with_snapshots(vec![
            snapshot(100, &[(1, 1000, 10)]),
            snapshot(200, &[(1, 5000, 50)]),
            snapshot(250, &[(1, 0, 0)]), // torn down at exit
        ]);
        new.exit = exit(250);
        let by_id = |_: &Profile, stack: StackId| Some(stack);
        assert_eq!(stacks(&diff_profiles_by(&old, &new, by_id)), [(1, 4000)]);
        // Without the exit record, the last snapshot is the last.
        new.exit = None;
        assert_eq!(stacks(&diff_profiles_by(&old, &new, by_id)), [(1, -1000)]);
        // A program that lived less than one interval has only the exit snapshot.
        let mut short = with_snapshots(vec![snapshot(30, &[(1, 64, 1)])]);
        short.exit = exit(30);
        assert_eq!(stacks(&diff_profiles_by(&old, &short, by_id)), [(1, -936)]);
        // diff_snapshots goes by the times it is given, the exit included.
        new.exit = exit(250);
        assert_eq!(stacks(&diff_snapshots(&new, 0.2, 0.25)), [(1, -5000)]);
    }

    #[test]
    fn deltas_saturate_instead_of_wrapping() {
        let old = with_snapshots(vec![snapshot(0, &[(1, 0, 0)])]);
        let new = with_snapshots(vec![snapshot(0, &[(1, u64::MAX, 1)])]);
        let deltas = diff_profiles_by(&old, &new, |_, stack| Some(stack));
        assert_eq!(deltas[0].bytes_delta, i64::MAX);
        let deltas = diff_profiles_by(&new, &old, |_, stack| Some(stack));
        assert_eq!(deltas[0].bytes_delta, i64::MIN);
    }

    #[test]
    fn identical_profiles_have_no_differences() {
        let profile = with_snapshots(vec![snapshot(0, &[(1, 10, 1), (2, 20, 2)])]);
        assert!(diff_profiles_by(&profile, &profile, |_, stack| Some(stack)).is_empty());
        assert!(
            diff_profiles_by(&Profile::default(), &Profile::default(), |_, s| Some(s)).is_empty()
        );
    }
}

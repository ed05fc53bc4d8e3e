//! The entry point of `leakscope diff`: which moments to compare, whether the profile covers
//! them, and which sites to show, native and JavaScript, with the stack of each native site in
//! the profile that shows it.

use std::time::Duration;

use leakscope_format::{Profile, StackId};

use crate::diff::{diff_profiles, diff_snapshots, SiteDelta};
use crate::script_diff::{diff_script_ends, diff_script_moments, ScriptIsolateDelta};

/// What to compare.
#[derive(Clone, Copy, Debug)]
pub enum Comparison<'a> {
    /// The end of one profile with the end of another.
    Ends {
        /// The earlier profile.
        old: &'a Profile,
        /// The later profile.
        new: &'a Profile,
    },
    /// Two moments of one profile (`--from`, `--to`): by default its first and its last
    /// snapshot.
    Moments {
        /// The profile.
        profile: &'a Profile,
        /// The earlier moment, since the agent started.
        from: Option<Duration>,
        /// The later moment.
        to: Option<Duration>,
    },
}

/// Which profile of a comparison a stack belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffSide {
    /// The old profile (the only one, when two moments of one are compared).
    Old,
    /// The new profile.
    New,
}

/// One site of a diff, and the stack that shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffSite {
    /// The site's live memory at the two moments.
    pub delta: SiteDelta,
    /// The stack to show for it: the later profile's where it has the site, else the old
    /// one's; `None` for a site with no stack in either.
    pub shown: Option<(DiffSide, StackId)>,
}

/// What was compared, for the report to say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compared {
    /// The ends of two profiles.
    Ends,
    /// Two moments of one profile, in seconds since the agent started.
    Moments {
        /// The earlier moment.
        from_s: f64,
        /// The later moment.
        to_s: f64,
    },
}

/// The result of `leakscope diff`, unrendered: the sites whose live memory changed most.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    /// What was compared.
    pub compared: Compared,
    /// The sites, largest growth first, at most the limit asked for.
    pub sites: Vec<DiffSite>,
    /// The JavaScript sites of each Node.js isolate that either side has (main thread first),
    /// largest growth first, at most the limit asked for per isolate; empty without a
    /// JavaScript side.
    pub scripts: Vec<ScriptIsolateDelta>,
}

impl Diff {
    /// The stacks to symbolize in one side's profile, sorted, each once.
    pub fn stacks(&self, side: DiffSide) -> Vec<StackId> {
        let mut stacks: Vec<StackId> = self
            .sites
            .iter()
            .filter_map(|site| site.shown)
            .filter(|&(of, _)| of == side)
            .map(|(_, stack)| stack)
            .collect();
        stacks.sort_unstable();
        stacks.dedup();
        stacks
    }
}

/// Why a comparison cannot be made.
#[derive(Clone, Debug, PartialEq)]
pub enum DiffRefusal {
    /// Two moments of a profile that has no snapshots.
    NoSnapshots,
    /// A moment after the profile's end.
    PastTheEnd {
        /// `--from` or `--to`.
        option: &'static str,
        /// The moment asked for.
        moment: Duration,
        /// The profile's end, in seconds.
        end_s: f64,
    },
    /// `--from` is not before `--to`.
    NotInOrder {
        /// The earlier moment, in seconds.
        from_s: f64,
        /// The later moment, in seconds.
        to_s: f64,
        /// The first and last snapshot's times in seconds, when a default moment was used.
        defaults: Option<(f64, f64)>,
    },
}

impl DiffRefusal {
    /// The refusal in a sentence, naming the profile as `profile`.
    pub fn sentence(&self, profile: &str) -> String {
        match self {
            Self::NoSnapshots => format!(
                "'{profile}' has no snapshots to compare (give a second profile to compare their ends)"
            ),
            Self::PastTheEnd {
                option,
                moment,
                end_s,
            } => format!(
                "{option} {moment:?} is past the end of '{profile}': it spans 0 s to {end_s:.3} s"
            ),
            Self::NotInOrder {
                from_s,
                to_s,
                defaults,
            } => format!(
                "--from ({from_s:.3} s) must be earlier than --to ({to_s:.3} s){}",
                match defaults {
                    Some((first, last)) => format!(
                        " (by default --from is the first snapshot, at {first:.3} s, and --to the last, at {last:.3} s)"
                    ),
                    None => String::new(),
                }
            ),
        }
    }
}

/// Compare, and keep the `limit` sites that grew most (and of each isolate's JavaScript
/// sites, the `limit` that grew most).
///
/// Two moments of one profile must lie within its time span (from its start to its last
/// snapshot or its end, whichever is later), the first before the second: a moment the
/// profile does not cover would compare what was never measured.
pub fn compare(comparison: Comparison<'_>, limit: usize) -> Result<Diff, DiffRefusal> {
    let (deltas, mut scripts, compared, two_profiles) = match comparison {
        Comparison::Ends { old, new } => (
            diff_profiles(old, new),
            diff_script_ends(old, new),
            Compared::Ends,
            true,
        ),
        Comparison::Moments { profile, from, to } => {
            let (from_s, to_s) = moments(profile, from, to)?;
            (
                diff_snapshots(profile, from_s, to_s),
                diff_script_moments(profile, from_s, to_s),
                Compared::Moments { from_s, to_s },
                false,
            )
        }
    };
    for isolate in &mut scripts {
        isolate.sites.truncate(limit);
    }
    let sites = deltas
        .into_iter()
        .take(limit)
        .map(|delta| {
            let shown = match (two_profiles, delta.new_stack, delta.old_stack) {
                (true, Some(stack), _) => Some((DiffSide::New, stack)),
                (_, _, Some(stack)) => Some((DiffSide::Old, stack)),
                _ => None,
            };
            DiffSite { delta, shown }
        })
        .collect();
    Ok(Diff {
        compared,
        sites,
        scripts,
    })
}

/// The two moments to compare in seconds, checked against the profile's span.
fn moments(
    profile: &Profile,
    from: Option<Duration>,
    to: Option<Duration>,
) -> Result<(f64, f64), DiffRefusal> {
    let at = |s: Option<&leakscope_format::Snapshot>| s.map_or(0.0, |s| s.time_ns as f64 / 1e9);
    let first = at(profile.snapshots.first());
    let last = at(profile.snapshots.last());
    let from_s = from.map_or(first, |d| d.as_secs_f64());
    let to_s = to.map_or(last, |d| d.as_secs_f64());
    if profile.snapshots.is_empty() {
        return Err(DiffRefusal::NoSnapshots);
    }
    let end_ns = profile
        .snapshots
        .iter()
        .map(|s| s.time_ns)
        .chain(profile.exit.map(|e| e.time_ns))
        .max()
        .unwrap_or(0);
    for (option, moment) in [("--from", from), ("--to", to)] {
        if let Some(moment) = moment.filter(|m| m.as_nanos() > u128::from(end_ns)) {
            return Err(DiffRefusal::PastTheEnd {
                option,
                moment,
                end_s: end_ns as f64 / 1e9,
            });
        }
    }
    if from_s >= to_s {
        return Err(DiffRefusal::NotInOrder {
            from_s,
            to_s,
            defaults: (from.is_none() || to.is_none()).then_some((first, last)),
        });
    }
    Ok((from_s, to_s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakscope_format::{SiteLive, Snapshot};

    fn snapshot(time_ns: u64, sites: &[(StackId, u64)]) -> Snapshot {
        Snapshot {
            time_ns,
            sites: sites
                .iter()
                .map(|&(stack, live_bytes)| SiteLive {
                    stack,
                    live_bytes,
                    live_blocks: 1,
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    fn watched() -> Profile {
        Profile {
            snapshots: vec![
                snapshot(1_000_000_000, &[(1, 100), (2, 100)]),
                snapshot(2_000_000_000, &[(1, 400), (2, 150)]),
                snapshot(3_000_000_000, &[(1, 900), (2, 50)]),
            ],
            ..Profile::default()
        }
    }

    #[test]
    fn moments_default_to_the_first_and_last_snapshot_and_the_limit_holds() {
        let profile = watched();
        let diff = compare(
            Comparison::Moments {
                profile: &profile,
                from: None,
                to: None,
            },
            1,
        )
        .unwrap();
        assert_eq!(
            diff.compared,
            Compared::Moments {
                from_s: 1.0,
                to_s: 3.0
            }
        );
        assert_eq!(diff.sites.len(), 1);
        assert_eq!(diff.sites[0].delta.bytes_delta, 800);
        assert_eq!(diff.sites[0].shown, Some((DiffSide::Old, 1)));
        assert_eq!(diff.stacks(DiffSide::Old), [1]);
        assert_eq!(diff.stacks(DiffSide::New), Vec::<StackId>::new());
    }

    /// `--limit` holds for the native sites and for each isolate's JavaScript sites; a
    /// profile without a JavaScript side has none.
    #[test]
    fn the_limit_holds_for_each_isolates_javascript_sites() {
        use leakscope_format::Process;
        let mut profile = watched();
        assert!(compare_moments(&profile, 10).scripts.is_empty());
        profile.process = Some(Process {
            start_unix_ns: 1_000_000_000_000,
            ..Process::default()
        });
        let lines = [
            r#"{"k":"site","th":0,"id":1,"frames":[["remember","/s.js",3,5]]}"#,
            r#"{"k":"site","th":0,"id":2,"frames":[["parse","/s.js",8,5]]}"#,
            r#"{"k":"heap","th":0,"t":1001000,"used":1,"sites":[[1,100],[2,100]]}"#,
            r#"{"k":"heap","th":0,"t":1003000,"used":1,"sites":[[1,900],[2,300]]}"#,
            r#"{"k":"site","th":1,"id":1,"frames":[["keepJob","/w.js",2,3]]}"#,
            r#"{"k":"site","th":1,"id":2,"frames":[["onJob","/w.js",5,3]]}"#,
            r#"{"k":"heap","th":1,"t":1001000,"used":1,"sites":[]}"#,
            r#"{"k":"heap","th":1,"t":1003000,"used":1,"sites":[[1,10],[2,20]]}"#,
        ];
        profile.script_records = crate::scripts::profile_with_records(7, &lines).script_records;
        let top = |diff: &Diff| -> Vec<(u32, Vec<(String, i64)>)> {
            diff.scripts
                .iter()
                .map(|isolate| {
                    let sites = isolate.sites.iter();
                    let sites = sites.map(|s| (s.frames[0].function.clone(), s.bytes_delta));
                    (isolate.thread, sites.collect())
                })
                .collect()
        };
        let diff = compare_moments(&profile, 1);
        assert_eq!(diff.sites.len(), 1);
        assert_eq!(
            top(&diff),
            [
                (0, vec![("remember".to_owned(), 800)]),
                (1, vec![("onJob".to_owned(), 20)])
            ]
        );
        assert_eq!(
            top(&compare_moments(&profile, 10)),
            [
                (
                    0,
                    vec![("remember".to_owned(), 800), ("parse".to_owned(), 200)]
                ),
                (
                    1,
                    vec![("onJob".to_owned(), 20), ("keepJob".to_owned(), 10)]
                )
            ]
        );
    }

    fn compare_moments(profile: &Profile, limit: usize) -> Diff {
        let moments = Comparison::Moments {
            profile,
            from: None,
            to: None,
        };
        compare(moments, limit).unwrap()
    }

    #[test]
    fn moments_outside_the_profile_or_out_of_order_are_refused() {
        let profile = watched();
        let refusal = |from: Option<u64>, to: Option<u64>| {
            compare(
                Comparison::Moments {
                    profile: &profile,
                    from: from.map(Duration::from_secs),
                    to: to.map(Duration::from_secs),
                },
                10,
            )
            .unwrap_err()
            .sentence("p")
        };
        assert_eq!(
            refusal(Some(4), None),
            "--from 4s is past the end of 'p': it spans 0 s to 3.000 s"
        );
        assert_eq!(
            refusal(Some(3), None),
            "--from (3.000 s) must be earlier than --to (3.000 s) (by default --from is the first snapshot, at 1.000 s, and --to the last, at 3.000 s)"
        );
        assert_eq!(
            refusal(Some(2), Some(1)),
            "--from (2.000 s) must be earlier than --to (1.000 s)"
        );
        let empty = Profile::default();
        assert_eq!(
            compare(
                Comparison::Moments {
                    profile: &empty,
                    from: None,
                    to: None
                },
                10
            ),
            Err(DiffRefusal::NoSnapshots)
        );
    }
}

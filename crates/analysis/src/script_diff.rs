//! The JavaScript side of `leakscope diff`: which JavaScript allocation sites of a Node.js
//! program grew between two profiles, or between two moments of one, per isolate.
//!
//! The preload numbers sites per run, so sites are matched by their JavaScript stack (each
//! frame's function, script URL, line and column), never by id. Isolates are matched by
//! node's thread id: 0 is the main thread, and node numbers worker threads 1, 2, ... in the
//! order the process starts them, so the second worker one run starts is compared with the
//! second worker of the other run. Pids differ per run and play no part.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use leakscope_format::Profile;

use crate::diff::difference;
use crate::scripts::{isolate_sites, IsolateSites, ScriptFrame};

/// One JavaScript allocation site's estimated live bytes (what its sampled objects stand
/// for) at two moments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSiteDelta {
    /// The site's stack, innermost first.
    pub frames: Vec<ScriptFrame>,
    /// Live bytes before.
    pub bytes_before: u64,
    /// Live bytes after.
    pub bytes_after: u64,
    /// `bytes_after - bytes_before` (saturating at the ends of `i64`).
    pub bytes_delta: i64,
}

/// The JavaScript sites of one isolate whose live bytes changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptIsolateDelta {
    /// Node's thread id (0: the main thread).
    pub thread: u32,
    /// Largest growth first (then by stack); unchanged sites are left out.
    pub sites: Vec<ScriptSiteDelta>,
}

/// Live bytes per site, by its frames.
type SiteBytes = BTreeMap<Vec<ScriptFrame>, u64>;

/// Live bytes per site, per thread id.
type Live = BTreeMap<u32, SiteBytes>;

/// The JavaScript sites whose live bytes changed from the end of `old` to the end of `new`,
/// per isolate that either profile has (main thread first). Each isolate's end is its last
/// sample before it ended (the one taken as it ended is not part of its life, as for the
/// verdicts). A profile without JavaScript records contributes nothing: its sites are all
/// new, or all gone.
pub fn diff_script_ends(old: &Profile, new: &Profile) -> Vec<ScriptIsolateDelta> {
    let at_end = |isolate: &IsolateSites| isolate.times.len().checked_sub(1);
    changes(
        live(&isolate_sites(old), at_end),
        live(&isolate_sites(new), at_end),
    )
}

/// The JavaScript sites whose live bytes changed between two moments of one profile (s since
/// the process started), per isolate. An isolate's state at a moment is its sample nearest to
/// the moment (the earlier of two as near): its samples are at least 250 ms apart and not in
/// step with the agent's snapshots, whose times the default moments are. Before the isolate
/// started, nothing of it was live; after its last sample, that sample holds, and for a
/// worker that exited, until its end: from then on nothing of it is live. (The main thread
/// ends with the process, whose end is not part of its life, as for the native sites: the
/// default `--to`, the agent's snapshot at exit, comes just after it.)
pub fn diff_script_moments(profile: &Profile, from_s: f64, to_s: f64) -> Vec<ScriptIsolateDelta> {
    let isolates = isolate_sites(profile);
    changes(
        live(&isolates, |isolate| nearest_sample(isolate, from_s)),
        live(&isolates, |isolate| nearest_sample(isolate, to_s)),
    )
}

/// Node's thread id of the main thread.
const MAIN_THREAD: u32 = 0;

/// The index of the sample of `isolate` nearest to `t_s`; `None` before the isolate started
/// (its `start` record, else its first sample), from when a worker ended on, or when it has
/// no samples.
fn nearest_sample(isolate: &IsolateSites, t_s: f64) -> Option<usize> {
    let first = *isolate.times.first()?;
    let worker_ended = isolate.thread != MAIN_THREAD && isolate.ended_s.is_some_and(|e| t_s >= e);
    if t_s.is_nan() || t_s < isolate.started_s.unwrap_or(first) || worker_ended {
        return None;
    }
    let after = isolate.times.partition_point(|&t| t < t_s);
    match after {
        0 => Some(0),
        n if n == isolate.times.len() => Some(n - 1),
        n if isolate.times[n] - t_s < t_s - isolate.times[n - 1] => Some(n),
        n => Some(n - 1),
    }
}

/// Every isolate's live bytes per site at the sample `at` picks (none: nothing live, but the
/// isolate is still listed). Sites of one isolate with the same frames are added up.
fn live(isolates: &[IsolateSites], at: impl Fn(&IsolateSites) -> Option<usize>) -> Live {
    let mut live = Live::new();
    for isolate in isolates {
        let sites = live.entry(isolate.thread).or_default();
        let Some(index) = at(isolate) else {
            continue;
        };
        for (frames, bytes) in &isolate.sites {
            let bytes = bytes.get(index).copied().unwrap_or(0);
            let total = sites.entry(frames.clone()).or_default();
            *total = total.saturating_add(bytes);
        }
    }
    live
}

fn changes(before: Live, after: Live) -> Vec<ScriptIsolateDelta> {
    let mut threads: BTreeMap<u32, (SiteBytes, SiteBytes)> = BTreeMap::new();
    for (thread, sites) in before {
        threads.entry(thread).or_default().0 = sites;
    }
    for (thread, sites) in after {
        threads.entry(thread).or_default().1 = sites;
    }
    threads
        .into_iter()
        .map(|(thread, (before, mut after))| {
            let mut sites: Vec<ScriptSiteDelta> = Vec::new();
            for (frames, bytes_before) in before {
                let bytes_after = after.remove(&frames).unwrap_or(0);
                sites.push(site_delta(frames, bytes_before, bytes_after));
            }
            for (frames, bytes_after) in after {
                sites.push(site_delta(frames, 0, bytes_after));
            }
            sites.retain(|site| site.bytes_delta != 0);
            sites.sort_by(|a, b| {
                (Reverse(a.bytes_delta), &a.frames).cmp(&(Reverse(b.bytes_delta), &b.frames))
            });
            ScriptIsolateDelta { thread, sites }
        })
        .collect()
}

fn site_delta(frames: Vec<ScriptFrame>, bytes_before: u64, bytes_after: u64) -> ScriptSiteDelta {
    ScriptSiteDelta {
        frames,
        bytes_before,
        bytes_after,
        bytes_delta: difference(bytes_before, bytes_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(pid: u32, lines: &[String]) -> Profile {
        crate::scripts::profile_with_records(pid, lines)
    }

    fn site(thread: u32, id: u32, frames: &str) -> String {
        format!(r#"{{"k":"site","th":{thread},"id":{id},"frames":{frames}}}"#)
    }

    /// A heap sample of `thread` at `ms` after the process started.
    fn heap(thread: u32, ms: u64, sites: &str, last: bool) -> String {
        format!(
            r#"{{"k":"heap","th":{thread},"t":{},"used":1000,"limit":100000000,"final":{last},"sites":{sites}}}"#,
            1_000_000 + ms
        )
    }

    const REMEMBER: &str = r#"[["remember","/s.js",3,5],["main","/s.js",9,1]]"#;
    const CHURN: &str = r#"[["churn","/s.js",4,5]]"#;
    const PARSE: &str = r#"[["parse","/s.js",12,3]]"#;
    const KEEP_JOB: &str = r#"[["keepJob","/w.js",2,3]]"#;

    /// (thread, [(innermost function, line, before, after, delta)]) of each isolate.
    type Summary = Vec<(u32, Vec<(String, u32, u64, u64, i64)>)>;

    fn summary(isolates: &[ScriptIsolateDelta]) -> Summary {
        isolates
            .iter()
            .map(|isolate| {
                let sites = isolate
                    .sites
                    .iter()
                    .map(|s| {
                        let top = &s.frames[0];
                        let (line, function) = (top.line, top.function.clone());
                        (function, line, s.bytes_before, s.bytes_after, s.bytes_delta)
                    })
                    .collect();
                (isolate.thread, sites)
            })
            .collect()
    }

    fn row(function: &str, line: u32, before: u64, after: u64) -> (String, u32, u64, u64, i64) {
        (
            function.to_owned(),
            line,
            before,
            after,
            after as i64 - before as i64,
        )
    }

    /// Two runs: other pids, other site ids, the same sites, matched by their stacks per
    /// thread id; a site with the same function at another line is another site.
    #[test]
    fn two_runs_match_sites_by_their_stack_per_thread_not_by_id() {
        let old = profile(
            100,
            &[
                site(0, 1, REMEMBER),
                site(0, 2, CHURN),
                heap(0, 500, "[[1,32768],[2,65536]]", false),
                heap(0, 1000, "[[1,65536],[2,32768]]", false),
                site(1, 1, KEEP_JOB),
                heap(1, 800, "[[1,32768]]", false),
            ],
        );
        let new = profile(
            200,
            &[
                site(0, 5, REMEMBER),
                site(0, 6, CHURN),
                site(0, 7, PARSE),
                site(0, 8, r#"[["remember","/s.js",30,5],["main","/s.js",9,1]]"#),
                heap(0, 500, "[[5,65536],[6,65536]]", false),
                heap(0, 3000, "[[5,196608],[7,4096],[8,8192]]", false),
                // Taken as the isolate ended: not its life.
                heap(0, 3100, "[[5,0]]", true),
                site(1, 3, KEEP_JOB),
                heap(1, 2900, "[[3,98304]]", false),
            ],
        );
        assert_eq!(
            summary(&diff_script_ends(&old, &new)),
            [
                (
                    0,
                    vec![
                        row("remember", 3, 65536, 196608),
                        row("remember", 30, 0, 8192),
                        row("parse", 12, 0, 4096),
                        row("churn", 4, 32768, 0),
                    ]
                ),
                (1, vec![row("keepJob", 2, 32768, 98304)]),
            ]
        );
        // The frames are the site's whole stack.
        let diff = diff_script_ends(&old, &new);
        assert_eq!(diff[0].sites[0].frames.len(), 2);
        assert_eq!(diff[0].sites[0].frames[1].function, "main");
    }

    /// A JavaScript side in one profile only: every site is new (or gone, the other way);
    /// none in either: no isolates at all.
    #[test]
    fn a_javascript_side_in_one_profile_only_is_all_new_or_all_gone() {
        let native = Profile::default();
        let node = profile(
            7,
            &[
                site(0, 1, REMEMBER),
                heap(0, 500, "[[1,32768]]", false),
                site(2, 1, KEEP_JOB),
                heap(2, 600, "[[1,4096]]", false),
            ],
        );
        assert_eq!(
            summary(&diff_script_ends(&native, &node)),
            [
                (0, vec![row("remember", 3, 0, 32768)]),
                (2, vec![row("keepJob", 2, 0, 4096)]),
            ]
        );
        assert_eq!(
            summary(&diff_script_ends(&node, &native)),
            [
                (0, vec![row("remember", 3, 32768, 0)]),
                (2, vec![row("keepJob", 2, 4096, 0)]),
            ]
        );
        assert!(diff_script_ends(&native, &native).is_empty());
        // Both with the same sites: the isolates are there, with nothing changed.
        assert_eq!(
            summary(&diff_script_ends(&node, &node)),
            [(0, vec![]), (2, vec![])]
        );
    }

    /// Two moments of one profile: each isolate's sample nearest to each moment (the earlier
    /// on a tie), nothing before it started, its last sample after its end.
    #[test]
    fn two_moments_take_each_isolates_nearest_sample() {
        let lines = [
            r#"{"k":"start","th":0,"t":1000200,"pid":7,"node":"v20.0.0","heap_limit":100000000,"sampling_bytes":32768,"interval_ms":250,"main":true,"argv":["s.js"]}"#.to_owned(),
            site(0, 1, REMEMBER),
            site(0, 2, CHURN),
            heap(0, 500, "[[1,32768]]", false),
            heap(0, 1000, "[[1,65536],[2,65536]]", false),
            heap(0, 1500, "[[1,98304]]", false),
            heap(0, 2000, "[[1,131072]]", false),
        ];
        let profile = profile(7, &lines);
        let moments = |from_s, to_s| summary(&diff_script_moments(&profile, from_s, to_s));
        // Started at 0.2 s: nothing was live at 0.1 s.
        assert_eq!(
            moments(0.1, 2.0),
            [(0, vec![row("remember", 3, 0, 131072)])]
        );
        // 0.3 s is nearest the sample at 0.5 s (after the start), 1.2 s the one at 1.0 s.
        let middle = [(
            0,
            vec![row("churn", 4, 0, 65536), row("remember", 3, 32768, 65536)],
        )];
        assert_eq!(moments(0.3, 1.2), middle);
        // Halfway between two samples: the earlier one.
        assert_eq!(moments(0.75, 1.25), middle);
        // After the last sample, the last one holds.
        assert_eq!(
            moments(1.0, 99.0),
            [(
                0,
                vec![row("remember", 3, 65536, 131072), row("churn", 4, 65536, 0)]
            )]
        );
        // Two moments nearest the same sample: nothing changed.
        assert_eq!(moments(1.6, 1.7), [(0, vec![])]);
    }

    /// A worker that exited has nothing live at a moment after its end, where its last
    /// sample would otherwise hold; the main thread, which ends with the process, keeps its
    /// last sample.
    #[test]
    fn a_worker_that_ended_has_nothing_live_after_its_end() {
        let lines = [
            site(0, 1, REMEMBER),
            heap(0, 500, "[[1,4096]]", false),
            heap(0, 1000, "[[1,8192]]", false),
            heap(0, 1300, "[[1,8192]]", true),
            site(3, 1, REMEMBER),
            heap(3, 500, "[[1,32768]]", false),
            heap(3, 1000, "[[1,65536]]", false),
            // Taken as the worker exited, at 1.2 s.
            heap(3, 1200, "[[1,65536]]", true),
        ];
        let profile = profile(7, &lines);
        let moments = |from_s, to_s| summary(&diff_script_moments(&profile, from_s, to_s));
        assert_eq!(
            moments(0.5, 1.1),
            [
                (0, vec![row("remember", 3, 4096, 8192)]),
                (3, vec![row("remember", 3, 32768, 65536)])
            ]
        );
        assert_eq!(
            moments(0.5, 1.5),
            [
                (0, vec![row("remember", 3, 4096, 8192)]),
                (3, vec![row("remember", 3, 32768, 0)])
            ]
        );
        assert_eq!(moments(1.3, 5.0), [(0, vec![]), (3, vec![])]);
    }
}

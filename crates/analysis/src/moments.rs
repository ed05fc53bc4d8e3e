//! The detail a picture of the run needs and a printed report does not: live memory per site
//! at a few moments of the program's life (for a flamegraph of live bytes "at a chosen
//! moment"), and the live-byte series of the sites the report lists as growing or as a
//! plateau (for the timeline chart). Computed only when asked for ([`crate::Options`]): for a
//! profile with 100,000 sites it is the largest part of the analysis.

use std::collections::BTreeMap;

use leakscope_format::{Profile, StackId};

use crate::growth::{even_in_time, life_snapshots, seconds, SiteGrowth, Verdict, TIMELINE_POINTS};

/// At most this many moments evenly spread over the program's life, plus the moment of peak
/// live memory (if it is not one of them).
pub const EVEN_MOMENTS: usize = 12;

/// Each moment holds every site that had live bytes then, so a profile with many sites has
/// fewer moments: together they hold about this many sites (but there are always at least
/// two even moments, the first and the last, and the peak). With 100,000 sites that is 4
/// moments: the page stays a few megabytes.
pub const SITES_IN_MOMENTS: usize = 400_000;

/// The series of at most this many sites (growing first, then plateaus, as the report lists
/// them): the lines of the timeline chart.
pub const SERIES_SHOWN: usize = 6;

/// Why a moment was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentKind {
    /// One of the evenly spread moments.
    Even,
    /// The snapshot of the most live heap bytes in the program's life.
    Peak,
    /// The last snapshot of the program's life.
    Last,
}

impl MomentKind {
    /// The word for it in reports.
    pub fn name(self) -> &'static str {
        match self {
            MomentKind::Even => "even",
            MomentKind::Peak => "peak",
            MomentKind::Last => "last",
        }
    }
}

/// One site's live memory at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteAt {
    /// The site.
    pub stack: StackId,
    /// Its live bytes then.
    pub bytes: u64,
    /// Its live blocks then.
    pub blocks: u64,
}

/// Every site that held memory at one snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveMoment {
    /// Seconds since the agent started.
    pub t_s: f64,
    /// Why this snapshot was chosen (the last snapshot may also be the peak: then `Last`).
    pub kind: MomentKind,
    /// The whole process's live heap bytes then.
    pub live_bytes: u64,
    /// The sites with live bytes then, by stack id.
    pub sites: Vec<SiteAt>,
}

/// One listed site's live bytes over the program's life.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteSeries {
    /// The site.
    pub stack: StackId,
    /// (seconds since start, live bytes), thinned evenly in time to at most
    /// [`TIMELINE_POINTS`] points.
    pub points: Vec<(f64, u64)>,
}

/// The detail of one profile: see the module's documentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detail {
    /// Moments in time order.
    pub moments: Vec<LiveMoment>,
    /// Series of the first growing or plateau sites of `growth`, in its order.
    pub series: Vec<SiteSeries>,
}

impl Detail {
    /// Every stack the detail names.
    pub fn stacks(&self) -> impl Iterator<Item = StackId> + '_ {
        self.moments
            .iter()
            .flat_map(|moment| moment.sites.iter().map(|site| site.stack))
            .chain(self.series.iter().map(|series| series.stack))
    }
}

/// The detail of `profile`, whose listed sites are `growth`.
pub fn detail(profile: &Profile, growth: &[SiteGrowth]) -> Detail {
    let snapshots = life_snapshots(profile);
    let Some(last) = snapshots.len().checked_sub(1) else {
        return Detail::default();
    };
    let sites: std::collections::BTreeSet<StackId> = snapshots
        .iter()
        .flat_map(|snapshot| snapshot.sites.iter().map(|site| site.stack))
        .collect();
    let even = (SITES_IN_MOMENTS / sites.len().max(1)).clamp(2, EVEN_MOMENTS);
    let mut chosen: Vec<(usize, MomentKind)> = even_in_time(
        &(0..snapshots.len()).collect::<Vec<_>>(),
        |&i| seconds(snapshots[i].time_ns),
        even,
    )
    .into_iter()
    .map(|i| {
        (
            i,
            if i == last {
                MomentKind::Last
            } else {
                MomentKind::Even
            },
        )
    })
    .collect();
    // The first snapshot of the most live bytes.
    let peak = snapshots
        .iter()
        .enumerate()
        .max_by_key(|&(i, s)| (s.live_bytes, std::cmp::Reverse(i)))
        .map_or(0, |(i, _)| i);
    match chosen.iter_mut().find(|(i, _)| *i == peak) {
        Some(moment) if moment.1 == MomentKind::Even => moment.1 = MomentKind::Peak,
        Some(_) => {}
        None => {
            chosen.push((peak, MomentKind::Peak));
            chosen.sort_unstable_by_key(|&(i, _)| i);
        }
    }

    let listed: Vec<StackId> = growth
        .iter()
        .filter(|site| matches!(site.verdict, Verdict::Growing | Verdict::Plateau))
        .take(SERIES_SHOWN)
        .map(|site| site.stack)
        .collect();
    let mut series: BTreeMap<StackId, Vec<(f64, u64)>> =
        listed.iter().map(|&stack| (stack, Vec::new())).collect();

    // One pass over the snapshots, carrying each site's values forward (a snapshot lists only
    // the sites that changed).
    let mut current: BTreeMap<StackId, (u64, u64)> = BTreeMap::new();
    let mut moments = Vec::with_capacity(chosen.len());
    let mut next = chosen.iter().peekable();
    for (index, snapshot) in snapshots.iter().enumerate() {
        for site in &snapshot.sites {
            current.insert(site.stack, (site.live_bytes, site.live_blocks));
        }
        let t_s = seconds(snapshot.time_ns);
        for (stack, points) in &mut series {
            points.push((t_s, current.get(stack).map_or(0, |&(bytes, _)| bytes)));
        }
        if let Some(&(_, kind)) = next.next_if(|(i, _)| *i == index) {
            moments.push(LiveMoment {
                t_s,
                kind,
                live_bytes: snapshot.live_bytes,
                sites: current
                    .iter()
                    .filter(|(_, &(bytes, _))| bytes > 0)
                    .map(|(&stack, &(bytes, blocks))| SiteAt {
                        stack,
                        bytes,
                        blocks,
                    })
                    .collect(),
            });
        }
    }
    let series = listed
        .iter()
        .map(|stack| {
            let points = series.remove(stack).unwrap_or_default();
            SiteSeries {
                stack: *stack,
                points: even_in_time(&points, |p| p.0, TIMELINE_POINTS),
            }
        })
        .collect();
    Detail { moments, series }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakscope_format::{SiteLive, Snapshot};

    fn snapshot(t_s: u64, live_bytes: u64, sites: &[(u32, u64)]) -> Snapshot {
        Snapshot {
            time_ns: t_s * 1_000_000_000,
            rss_bytes: 0,
            available_bytes: 0,
            live_bytes,
            live_blocks: 0,
            sites: sites
                .iter()
                .map(|&(stack, bytes)| SiteLive {
                    stack,
                    live_bytes: bytes,
                    live_blocks: 1,
                })
                .collect(),
        }
    }

    fn growing(stack: u32) -> SiteGrowth {
        SiteGrowth {
            stack,
            verdict: Verdict::Growing,
            bytes_per_s: 1.0,
            live_bytes_first: 0,
            live_bytes_last: 0,
            live_bytes_peak: 0,
            live_blocks_last: 0,
            confidence: 1.0,
            oldest_block_age_s: None,
            exhaustion_s: None,
        }
    }

    #[test]
    fn moments_carry_values_forward_and_mark_the_peak_and_the_end() {
        // Site 1 grows; site 2 appears at 1 s, peaks, and is freed at 3 s.
        let profile = Profile {
            snapshots: (0..30)
                .map(|t| match t {
                    0 => snapshot(0, 10, &[(1, 10)]),
                    1 => snapshot(1, 1020, &[(1, 20), (2, 1000)]),
                    3 => snapshot(3, 40, &[(1, 40), (2, 0)]),
                    t => snapshot(t, 10 * (t + 1), &[(1, 10 * (t + 1))]),
                })
                .collect(),
            ..Profile::default()
        };
        let detail = detail(&profile, &[growing(1)]);
        let kinds: Vec<MomentKind> = detail.moments.iter().map(|m| m.kind).collect();
        assert_eq!(detail.moments.len(), EVEN_MOMENTS + 1, "{kinds:?}");
        let peak = detail
            .moments
            .iter()
            .find(|m| m.kind == MomentKind::Peak)
            .unwrap();
        assert_eq!(peak.t_s, 1.0);
        assert_eq!(
            peak.sites,
            vec![
                SiteAt {
                    stack: 1,
                    bytes: 20,
                    blocks: 1
                },
                SiteAt {
                    stack: 2,
                    bytes: 1000,
                    blocks: 1
                }
            ]
        );
        let last = detail.moments.last().unwrap();
        assert_eq!((last.kind, last.t_s), (MomentKind::Last, 29.0));
        // A site freed to zero is not in later moments.
        assert_eq!(
            last.sites,
            vec![SiteAt {
                stack: 1,
                bytes: 300,
                blocks: 1
            }]
        );
        assert_eq!(detail.series.len(), 1);
        assert_eq!(detail.series[0].points.len(), 30);
        assert_eq!(detail.series[0].points[2], (2.0, 30));
    }

    #[test]
    fn many_sites_have_fewer_moments() {
        let sites = SITES_IN_MOMENTS / 3;
        let snapshots = (0..20u64)
            .map(|t| {
                let mut s = snapshot(t, 100 + t, &[]);
                if t == 0 {
                    s.sites = (0..sites as u32)
                        .map(|stack| SiteLive {
                            stack,
                            live_bytes: 1,
                            live_blocks: 1,
                        })
                        .collect();
                }
                s
            })
            .collect();
        let profile = Profile {
            snapshots,
            ..Profile::default()
        };
        let detail = detail(&profile, &[]);
        // Three even moments; the peak is the last.
        assert_eq!(detail.moments.len(), 3);
        assert_eq!(detail.moments[2].kind, MomentKind::Last);
        assert!(detail.moments.iter().all(|m| m.sites.len() == sites));
    }

    #[test]
    fn no_snapshots_no_detail() {
        assert_eq!(detail(&Profile::default(), &[]), Detail::default());
    }
}

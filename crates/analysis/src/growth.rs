//! Growth over time: for each allocation site, is its live memory growing (a leak), did it
//! grow and then level off (a plateau: a cache that filled up), or does it rise and fall
//! (bounded: churn, a batch that was freed, a queue)?
//!
//! Every threshold below is explained in `docs/decisions/0004-growth-verdicts.md`; the
//! constants are public so that reports and tests can quote them.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;

use leakscope_format::{Profile, Snapshot, StackId};

/// Fewer points than this and no verdict is given ([`classify`] answers bounded with
/// confidence 0; [`growth`] leaves the site out).
pub const MIN_POINTS: usize = 8;
/// A series shorter than this (seconds, first point to last) gets no verdict either.
pub const MIN_SPAN_S: f64 = 1.0;
/// Series longer than this are thinned, evenly in time, before the statistics (which look at
/// every pair of points).
pub const MAX_POINTS: usize = 300;
/// [`timeline`] keeps at most this many points.
pub const TIMELINE_POINTS: usize = 500;
/// Growing: the Mann–Kendall test over the whole series must reject "no upward trend" at
/// this one-sided p-value.
pub const TREND_P: f64 = 0.001;
/// Growing: the last third must have an upward Mann–Kendall trend at this one-sided p-value.
pub const TAIL_P: f64 = 0.05;
/// The end level must be at least this many bytes above the start level ...
pub const MIN_RISE_BYTES: f64 = 1024.0;
/// ... and at least this fraction of the site's peak.
pub const MIN_RISE_OF_PEAK: f64 = 0.10;
/// Growing: from the middle third to the last third, the level must rise at least this
/// fraction of what the run's average rate predicts.
pub const TAIL_RATE_OF_AVERAGE: f64 = 0.5;
/// Growing: the largest fall from a running peak (of the series smoothed by a running median
/// of [`SMOOTHING_POINTS`]) may be at most this fraction of the rise.
pub const MAX_GIVEBACK: f64 = 0.25;
/// The running median's width, in points, for the give-back.
pub const SMOOTHING_POINTS: usize = 5;
/// Growing: the site's oldest live block must be at least this fraction of the watched
/// window old (when the profile says how old it is).
pub const MIN_AGE_OF_WINDOW: f64 = 0.25;
/// [`growth`] ignores the age of a site whose mean block size grew this many times over the
/// run: its growth is in the size of its blocks (`realloc`), so its blocks are always young.
pub const RESIZED_BLOCKS: f64 = 2.0;
/// Plateau: the last third may drift (up or down) by at most this fraction of its level ...
pub const PLATEAU_DRIFT: f64 = 0.15;
/// ... its values (10th to 90th percentile) may spread over at most this fraction of it ...
pub const PLATEAU_SPREAD: f64 = 0.20;
/// ... and the rise must stand out of the noise: at least this many times its standard
/// deviation (the larger of two estimates: from the differences between successive points,
/// and from the last third's spread).
pub const PLATEAU_RISE_OVER_NOISE: f64 = 6.0;
/// The start and end levels are medians of this many points (the start level the lowest of
/// the first this many: see the decision record).
pub const LEVEL_POINTS: usize = 3;

/// What a site's live memory did over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A sustained upward trend that is never given back: a leak, reachable or not.
    Growing,
    /// Rose, then stayed flat: a cache or a pool that filled up.
    Plateau,
    /// Everything else: churn, rises and falls, flat from the start, or given back.
    Bounded,
}

impl Verdict {
    /// The name in the JSON report.
    pub fn json_name(self) -> &'static str {
        match self {
            Verdict::Growing => "growing",
            Verdict::Plateau => "plateau",
            Verdict::Bounded => "bounded",
        }
    }

    pub(crate) fn rank(self) -> u8 {
        match self {
            Verdict::Growing => 0,
            Verdict::Plateau => 1,
            Verdict::Bounded => 2,
        }
    }
}

/// One site's verdict and the numbers behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteGrowth {
    /// The site.
    pub stack: StackId,
    /// What its live memory did.
    pub verdict: Verdict,
    /// Theil–Sen slope of live bytes over the whole series, in bytes per second.
    pub bytes_per_s: f64,
    /// Live bytes at the start of the site's series (0 if the site appeared after the first
    /// snapshot: it held nothing before).
    pub live_bytes_first: u64,
    /// Live bytes at the last snapshot of the program's life ([`life_snapshots`]).
    pub live_bytes_last: u64,
    /// The most live bytes at any snapshot of the program's life.
    pub live_bytes_peak: u64,
    /// Live blocks at the last snapshot of the program's life.
    pub live_blocks_last: u64,
    /// How sure the verdict is, 0..1 (see the decision record for the formula per verdict).
    pub confidence: f64,
    /// How long before the end the site's oldest live block was allocated, if known. (Reported
    /// as known, but not used for the verdict when the site's blocks grew in size: see
    /// [`RESIZED_BLOCKS`].)
    pub oldest_block_age_s: Option<f64>,
    /// Growing sites only: seconds until the machine's available memory (as of the last
    /// snapshot that knew it) is used up at `bytes_per_s`.
    pub exhaustion_s: Option<f64>,
}

/// The whole process's live memory at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimelinePoint {
    /// Seconds since the agent started.
    pub t_s: f64,
    /// Live heap bytes.
    pub live_bytes: u64,
    /// Live heap blocks.
    pub live_blocks: u64,
    /// Resident set size.
    pub rss_bytes: u64,
}

/// The process's live memory over time, from the snapshots, thinned evenly in time to at
/// most [`TIMELINE_POINTS`] points (the first and the last are always kept).
pub fn timeline(profile: &Profile) -> Vec<TimelinePoint> {
    let points: Vec<TimelinePoint> = profile
        .snapshots
        .iter()
        .map(|snapshot| TimelinePoint {
            t_s: seconds(snapshot.time_ns),
            live_bytes: snapshot.live_bytes,
            live_blocks: snapshot.live_blocks,
            rss_bytes: snapshot.rss_bytes,
        })
        .collect();
    even_in_time(&points, |point| point.t_s, TIMELINE_POINTS)
}

/// The snapshots of the program's life: all but those the agent takes once the program's end
/// began. That is the one it takes at exit, after the program's exit handlers and destructors
/// have run (a cache torn down at exit has not been "given back" while the program ran), and,
/// in a Python program, every one from the interpreter's finalization on (it frees the
/// program's objects as it shuts down: a list that grew until then did not stop growing).
/// All of them when the profile records neither (the program was killed, or the file was cut
/// short).
pub fn life_snapshots(profile: &Profile) -> &[Snapshot] {
    let end = [
        profile.exit.map(|exit| exit.time_ns),
        profile.runtime_finalizing_ns(),
    ]
    .into_iter()
    .flatten()
    .min();
    match end {
        Some(end_ns) => {
            let life = profile
                .snapshots
                .partition_point(|snapshot| snapshot.time_ns < end_ns);
            &profile.snapshots[..life]
        }
        None => &profile.snapshots,
    }
}

/// A verdict for every site that held memory and has enough points for one: growing sites
/// first (fastest first), then plateaus, then bounded sites (each by largest peak first);
/// ties by stack id.
///
/// The series are those of the program's life ([`life_snapshots`]). A site's series starts
/// at the snapshot before the one that first mentions it, at zero live bytes (it held
/// nothing then), unless it is in the very first snapshot.
pub fn growth(profile: &Profile) -> Vec<SiteGrowth> {
    let life = life_snapshots(profile);
    let times: Vec<u64> = life.iter().map(|s| s.time_ns).collect();
    let Some(&last_ns) = times.last() else {
        return Vec::new();
    };
    let ages = &profile.site_ages;
    let end_ns = last_ns.max(ages.time_ns);
    let run_length_s = seconds(end_ns);
    let oldest: BTreeMap<StackId, u64> = ages
        .oldest
        .iter()
        .map(|age| (age.stack, age.oldest_ns))
        .collect();
    let available = last_available_bytes(profile);

    let mut findings = Vec::new();
    for (stack, series) in leakscope_format::site_series(life) {
        let peak = series.iter().map(|&(_, bytes, _)| bytes).max().unwrap_or(0);
        if peak == 0 {
            continue;
        }
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(series.len() + 1);
        let first_ns = series[0].0;
        let index = times.partition_point(|&t| t < first_ns);
        if index > 0 {
            points.push((seconds(times[index - 1]), 0.0));
        }
        points.extend(
            series
                .iter()
                .map(|&(t, bytes, _)| (seconds(t), bytes as f64)),
        );
        let age = oldest
            .get(&stack)
            .and_then(|&allocated| ages.time_ns.checked_sub(allocated))
            .map(seconds);
        // A site whose blocks grew in size rather than in number (a buffer grown by
        // `realloc`, a vector that doubles) always has a young block: its age says nothing.
        let mean_size = |&(_, bytes, blocks): &(u64, u64, u64)| bytes as f64 / blocks as f64;
        let first_size = series.iter().find(|point| point.2 > 0).map(mean_size);
        let last_size = series.last().filter(|point| point.2 > 0).map(mean_size);
        let resized = matches!((first_size, last_size),
            (Some(first), Some(last)) if last >= RESIZED_BLOCKS * first);
        let judged_age = if resized { None } else { age };
        let Some(assessment) = assess(&points, judged_age, run_length_s) else {
            continue;
        };
        let &(_, last_bytes, last_blocks) = series.last().expect("a series has a point");
        let exhaustion_s = match (assessment.verdict, available) {
            (Verdict::Growing, Some(bytes)) if assessment.slope > 0.0 => {
                Some(bytes as f64 / assessment.slope)
            }
            _ => None,
        };
        findings.push(SiteGrowth {
            stack,
            verdict: assessment.verdict,
            bytes_per_s: assessment.slope,
            live_bytes_first: if index > 0 { 0 } else { series[0].1 },
            live_bytes_last: last_bytes,
            live_bytes_peak: peak,
            live_blocks_last: last_blocks,
            confidence: assessment.confidence,
            oldest_block_age_s: age,
            exhaustion_s,
        });
    }
    findings.sort_by(|a, b| {
        listing_order(
            (a.verdict, a.bytes_per_s, a.live_bytes_peak),
            (b.verdict, b.bytes_per_s, b.live_bytes_peak),
        )
        .then_with(|| a.stack.cmp(&b.stack))
    });
    findings
}

/// The machine's available memory (`MemAvailable`) at the last snapshot that knew it: what a
/// growing series' time to exhaustion is measured against.
pub(crate) fn last_available_bytes(profile: &Profile) -> Option<u64> {
    profile
        .snapshots
        .iter()
        .rev()
        .map(|s| s.available_bytes)
        .find(|&bytes| bytes > 0)
}

/// The order in which judged series are listed, given each one's (verdict, slope, peak):
/// growing first, fastest first; then plateaus; then bounded; within a verdict the larger
/// peak first. Callers break the remaining ties by their own identity.
pub(crate) fn listing_order(a: (Verdict, f64, u64), b: (Verdict, f64, u64)) -> Ordering {
    a.0.rank()
        .cmp(&b.0.rank())
        .then_with(|| match a.0 {
            Verdict::Growing => b.1.total_cmp(&a.1),
            _ => Ordering::Equal,
        })
        .then_with(|| Reverse(a.2).cmp(&Reverse(b.2)))
}

/// The verdict for one series of `(seconds, live bytes)` points, with its confidence (0..1)
/// and its Theil–Sen slope (bytes per second).
///
/// `oldest_block_age_s` is how long before the end the site's oldest live block was
/// allocated (None if unknown). `run_length_s` is how long the site was watched; the age is
/// compared with the shorter of it and the series' own span. A series with fewer than
/// [`MIN_POINTS`] points or shorter than [`MIN_SPAN_S`] gets bounded with confidence 0.
pub fn classify(
    points: &[(f64, f64)],
    oldest_block_age_s: Option<f64>,
    run_length_s: f64,
) -> (Verdict, f64, f64) {
    match assess(points, oldest_block_age_s, run_length_s) {
        Some(assessment) => (assessment.verdict, assessment.confidence, assessment.slope),
        None => (Verdict::Bounded, 0.0, theil_sen(&prepare(points))),
    }
}

/// A verdict with its confidence and slope.
struct Assessment {
    verdict: Verdict,
    confidence: f64,
    slope: f64,
}

/// The statistics and the decision; None when the series is too short for a verdict.
fn assess(
    points: &[(f64, f64)],
    oldest_block_age_s: Option<f64>,
    run_length_s: f64,
) -> Option<Assessment> {
    assess_with_floor(points, oldest_block_age_s, run_length_s, MIN_RISE_BYTES)
}

/// [`classify`] for a series of something other than bytes (a count of listeners, say):
/// `min_rise` is the smallest rise, in the series' own unit, that can make it growing (for
/// bytes it is [`MIN_RISE_BYTES`]).
pub fn classify_with_floor(
    points: &[(f64, f64)],
    oldest_block_age_s: Option<f64>,
    run_length_s: f64,
    min_rise: f64,
) -> (Verdict, f64, f64) {
    match assess_with_floor(points, oldest_block_age_s, run_length_s, min_rise) {
        Some(assessment) => (assessment.verdict, assessment.confidence, assessment.slope),
        None => (Verdict::Bounded, 0.0, theil_sen(&prepare(points))),
    }
}

fn assess_with_floor(
    points: &[(f64, f64)],
    oldest_block_age_s: Option<f64>,
    run_length_s: f64,
    min_rise: f64,
) -> Option<Assessment> {
    let points = prepare(points);
    let n = points.len();
    if n < MIN_POINTS {
        return None;
    }
    let t0 = points[0].0;
    let span = points[n - 1].0 - t0;
    if span < MIN_SPAN_S {
        return None;
    }
    let values: Vec<f64> = points.iter().map(|&(_, y)| y).collect();
    // Most sites of a long-running program never change after they first appear: no need
    // to look at every pair of their points.
    if values.iter().all(|&y| y == values[0]) {
        return Some(Assessment {
            verdict: Verdict::Bounded,
            confidence: 1.0,
            slope: 0.0,
        });
    }
    let slope = theil_sen(&points);
    let peak = values.iter().copied().fold(0.0, f64::max);

    // The whole series: a monotonic trend, and how far the level moved.
    let p_up = mann_kendall(&values).p_up;
    let start = values[..LEVEL_POINTS]
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let end = median(&values[n - LEVEL_POINTS..]);
    let rise = end - start;
    let rise_floor = min_rise.max(MIN_RISE_OF_PEAK * peak);
    let giveback = max_drawdown(&running_median(&values, SMOOTHING_POINTS));

    // The last third of the time span (at least 6 points): still rising, or flat? And the
    // middle third before it (at least 1 point).
    let third = |k: f64| points.partition_point(|&(t, _)| t < t0 + span * k / 3.0);
    let tail_start = third(2.0).clamp(2, n - 6);
    let middle_start = third(1.0).clamp(1, tail_start - 1);
    let (middle, tail) = (&points[middle_start..tail_start], &points[tail_start..]);
    let tail_values = &values[tail_start..];
    let m = tail.len();
    let tail_p_up = mann_kendall(tail_values).p_up;
    // Rising: the last third's level above the middle third's.
    let tail_rise = median_of(tail) - median_of(middle);
    let tail_needed =
        TAIL_RATE_OF_AVERAGE * rise.max(0.0) * (mean_time(tail) - mean_time(middle)) / span;
    // Flat: the last third's own ends at the same level.
    let tail_drift = median_of(&tail[m - LEVEL_POINTS..]) - median_of(&tail[..LEVEL_POINTS]);
    let tail_level = median(tail_values);
    let tail_spread = {
        let mut sorted = tail_values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |fraction: f64| sorted[(fraction * (m - 1) as f64).round() as usize];
        at(0.9) - at(0.1)
    };
    let noise = {
        let steps: Vec<f64> = values
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).abs())
            .collect();
        // The median absolute difference of two independent normal values is 0.6745·√2·σ;
        // the 10th to 90th percentile range of normal values is 2.563·σ.
        (median(&steps) / (0.674_5 * std::f64::consts::SQRT_2)).max(tail_spread / 2.563)
    };

    // The age of the oldest live block, as a fraction of the watched window.
    let window = if run_length_s.is_finite() && run_length_s > 0.0 {
        run_length_s.min(span)
    } else {
        span
    };
    let age_fraction = oldest_block_age_s.map(|age| age / window);

    let rose = rise >= rise_floor;
    let trending = p_up < TREND_P && slope > 0.0;
    let tail_rising = tail_p_up < TAIL_P && tail_rise > 0.0 && tail_rise >= tail_needed;
    let kept = giveback <= MAX_GIVEBACK * rise;
    let old = age_fraction.is_none_or(|fraction| fraction >= MIN_AGE_OF_WINDOW);

    // The soft version of the growing gates: 1 when every one is met by a wide margin.
    let unit = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let growing_score = (1.0 - p_up)
        * (1.0 - tail_p_up)
        * unit(rise / rise_floor)
        * if slope > 0.0 { 1.0 } else { 0.0 }
        * if tail_needed > 0.0 {
            unit(tail_rise / tail_needed)
        } else {
            0.0
        }
        * if rise > 0.0 {
            unit(1.0 - giveback / rise)
        } else {
            0.0
        }
        * age_fraction.map_or(0.75, |fraction| unit(0.5 + fraction));

    let (verdict, confidence) = if rose && trending && tail_rising && kept && old {
        (Verdict::Growing, growing_score)
    } else if rose
        && !tail_rising
        && tail_drift.abs() <= PLATEAU_DRIFT * tail_level
        && tail_spread <= PLATEAU_SPREAD * tail_level
        && rise >= PLATEAU_RISE_OVER_NOISE * noise
    {
        let closeness = (tail_drift.abs() / (PLATEAU_DRIFT * tail_level))
            .max(tail_spread / (PLATEAU_SPREAD * tail_level))
            .max(PLATEAU_RISE_OVER_NOISE * noise / rise);
        (Verdict::Plateau, 1.0 - 0.5 * unit(closeness))
    } else {
        (Verdict::Bounded, 1.0 - growing_score)
    };
    Some(Assessment {
        verdict,
        confidence: unit(confidence),
        slope,
    })
}

/// Finite points, in time order, thinned to [`MAX_POINTS`].
fn prepare(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(t, y)| t.is_finite() && y.is_finite())
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    even_in_time(&points, |point| point.0, MAX_POINTS)
}

/// At most `max` of `items` (sorted by time), evenly spread in time: for each of `max`
/// evenly spaced moments, the item nearest to it, each item at most once. The first and the
/// last item are always kept.
pub(crate) fn even_in_time<T: Copy>(items: &[T], time: impl Fn(&T) -> f64, max: usize) -> Vec<T> {
    let n = items.len();
    if n <= max {
        return items.to_vec();
    }
    if max < 2 {
        return items[..max].to_vec();
    }
    let first = time(&items[0]);
    let span = time(&items[n - 1]) - first;
    let mut kept: Vec<usize> = Vec::with_capacity(max);
    for k in 0..max {
        let index = if k == 0 {
            0
        } else if k == max - 1 {
            n - 1
        } else {
            let moment = first + span * k as f64 / (max - 1) as f64;
            let after = items.partition_point(|item| time(item) < moment);
            if after == 0 {
                0
            } else if after == n || moment - time(&items[after - 1]) <= time(&items[after]) - moment
            {
                after - 1
            } else {
                after
            }
        };
        if kept.last().is_none_or(|&last| index > last) {
            kept.push(index);
        }
    }
    kept.into_iter().map(|index| items[index]).collect()
}

/// The Theil–Sen slope: the median of the slopes between every pair of points at different
/// times. 0 for fewer than two distinct times.
fn theil_sen(points: &[(f64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, &(ti, yi)) in points.iter().enumerate() {
        for &(tj, yj) in &points[i + 1..] {
            if tj > ti {
                slopes.push((yj - yi) / (tj - ti));
            }
        }
    }
    if slopes.is_empty() {
        return 0.0;
    }
    median(&slopes)
}

/// The Mann–Kendall trend test.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MannKendall {
    /// Σ sign(x_j − x_i) over i < j.
    s: i64,
    /// Var(S) under "no trend", corrected for ties.
    variance: f64,
    /// One-sided p-value for an upward trend (normal approximation, continuity corrected).
    p_up: f64,
}

fn mann_kendall(values: &[f64]) -> MannKendall {
    let n = values.len();
    let mut s: i64 = 0;
    for (i, &a) in values.iter().enumerate() {
        for &b in &values[i + 1..] {
            s += match b.partial_cmp(&a) {
                Some(Ordering::Greater) => 1,
                Some(Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let term = |t: f64| t * (t - 1.0) * (2.0 * t + 5.0);
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let ties: f64 = sorted
        .chunk_by(|a, b| a == b)
        .map(|group| term(group.len() as f64))
        .sum();
    let variance = ((term(n as f64) - ties) / 18.0).max(0.0);
    let p_up = if variance > 0.0 {
        let corrected = s as f64 - s.signum() as f64;
        upper_tail(corrected / variance.sqrt())
    } else {
        1.0
    };
    MannKendall { s, variance, p_up }
}

/// P(Z ≥ z) for a standard normal Z.
fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, from Numerical Recipes' `erfcc` (Chebyshev fit,
/// fractional error below 1.2e-7 everywhere): ample for p-values compared with 0.01.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The largest fall from a running peak.
fn max_drawdown(values: &[f64]) -> f64 {
    let mut peak = f64::NEG_INFINITY;
    let mut worst: f64 = 0.0;
    for &value in values {
        peak = peak.max(value);
        worst = worst.max(peak - value);
    }
    worst
}

/// Each value replaced by the median of the `width` values around it (fewer at the ends).
fn running_median(values: &[f64], width: usize) -> Vec<f64> {
    let reach = width / 2;
    (0..values.len())
        .map(|i| median(&values[i.saturating_sub(reach)..(i + reach + 1).min(values.len())]))
        .collect()
}

/// The median (the mean of the middle two for an even count). Panics on an empty slice.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    let n = sorted.len();
    let mid = n / 2;
    let (_, &mut upper, _) = sorted.select_nth_unstable_by(mid, f64::total_cmp);
    if n % 2 == 1 {
        upper
    } else {
        let lower = sorted[..mid]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

fn median_of(points: &[(f64, f64)]) -> f64 {
    median(&points.iter().map(|&(_, y)| y).collect::<Vec<_>>())
}

fn mean_time(points: &[(f64, f64)]) -> f64 {
    points.iter().map(|&(t, _)| t).sum::<f64>() / points.len() as f64
}

pub(crate) fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn erfc_matches_known_values() {
        // Reference values of erfc and of the normal upper tail.
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_1),
            (2.0, 0.004_677_734_981_047_266),
            (-1.0, 1.842_700_792_949_715),
        ] {
            assert!(close(erfc(x), expected, 2e-7 * expected.max(1e-3)), "{x}");
        }
        assert!(close(upper_tail(1.959_964), 0.025, 1e-7));
        assert!(close(upper_tail(2.326_348), 0.01, 1e-7));
        assert!(close(upper_tail(-2.326_348), 0.99, 1e-7));
    }

    #[test]
    fn mann_kendall_counts_pairs_and_corrects_for_ties() {
        // 1 2 2 3: pairs up = (1,2) (1,2) (1,3) (2,3) (2,3) = 5, ties = 1, down = 0.
        let test = mann_kendall(&[1.0, 2.0, 2.0, 3.0]);
        assert_eq!(test.s, 5);
        // (4*3*13 - 2*1*9) / 18 = (156 - 18) / 18
        assert!(close(test.variance, 138.0 / 18.0, 1e-12));
        let z = 4.0 / (138.0f64 / 18.0).sqrt();
        assert!(close(test.p_up, upper_tail(z), 1e-15));

        let down = mann_kendall(&[3.0, 2.0, 1.0, 0.0, -1.0]);
        assert_eq!(down.s, -10);
        // z = (-10 + 1) / sqrt(5*4*15/18) = -2.2045
        assert!(close(down.p_up, 0.986_25, 1e-4), "{}", down.p_up);

        let flat = mann_kendall(&[7.0; 10]);
        assert_eq!((flat.s, flat.variance, flat.p_up), (0, 0.0, 1.0));
    }

    #[test]
    fn mann_kendall_of_ten_increasing_values_is_significant() {
        let values: Vec<f64> = (0..10).map(f64::from).collect();
        let test = mann_kendall(&values);
        assert_eq!(test.s, 45);
        assert!(close(test.variance, 125.0, 1e-12));
        // z = 44 / sqrt(125) = 3.935..., p = 4.16e-5
        assert!(close(test.p_up, 4.16e-5, 1e-6), "{}", test.p_up);
    }

    #[test]
    fn theil_sen_ignores_outliers() {
        let mut points: Vec<(f64, f64)> = (0..20)
            .map(|i| (f64::from(i) * 0.1, 100.0 + 30.0 * f64::from(i) * 0.1))
            .collect();
        points[5].1 = 1e9;
        points[12].1 = -1e9;
        assert!(close(theil_sen(&points), 30.0, 1e-9));
        assert_eq!(theil_sen(&[(1.0, 5.0), (1.0, 9.0)]), 0.0);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0]), 5.0);
    }

    #[test]
    fn running_median_removes_lone_outliers() {
        let smoothed = running_median(&[1.0, 1.0, 9.0, 1.0, 1.0, 5.0, 5.0, 5.0], 5);
        assert_eq!(smoothed, [1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0]);
    }

    #[test]
    fn max_drawdown_is_the_largest_fall_from_a_running_peak() {
        assert_eq!(max_drawdown(&[0.0, 5.0, 3.0, 8.0, 2.0, 9.0]), 6.0);
        assert_eq!(max_drawdown(&[1.0, 2.0, 3.0]), 0.0);
    }

    #[test]
    fn thinning_is_even_in_time_and_keeps_the_ends() {
        // Doubling intervals, as the agent takes them: dense at first, sparse later.
        let mut times = Vec::new();
        let mut t = 0.0;
        for block in 0..10 {
            for _ in 0..100 {
                t += 0.1 * f64::powi(2.0, block);
                times.push(t);
            }
        }
        let kept = even_in_time(&times, |&t| t, 300);
        assert!(kept.len() <= 300 && kept.len() > 100, "{}", kept.len());
        assert_eq!(kept[0], times[0]);
        assert_eq!(kept[kept.len() - 1], times[times.len() - 1]);
        assert!(kept.windows(2).all(|pair| pair[0] < pair[1]));
        // Evenly in time: no gap much wider than the widest interval of the input, and the
        // early, dense stretch is thinned (the first 100 points span 10 s of ~100,000 s).
        let early = kept.iter().filter(|&&t| t <= 10.0).count();
        assert!(early <= 2, "{early}");
        let short = even_in_time(&times[..50], |&t| t, 300);
        assert_eq!(short, &times[..50]);
    }

    #[test]
    fn too_short_or_too_few_is_bounded_with_no_confidence() {
        // Steeply rising, but 7 points.
        let few: Vec<(f64, f64)> = (0..7)
            .map(|i| (f64::from(i) * 0.2, f64::from(i) * 1e6))
            .collect();
        let (verdict, confidence, slope) = classify(&few, Some(1.2), 1.2);
        assert_eq!((verdict, confidence), (Verdict::Bounded, 0.0));
        assert!(close(slope, 5e6, 1e-3));
        // Steeply rising, 10 points, 0.9 s.
        let short: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i) * 0.1, f64::from(i) * 1e6))
            .collect();
        assert_eq!(classify(&short, Some(0.9), 0.9).1, 0.0);
        assert_eq!(classify(&short, Some(0.9), 0.9).0, Verdict::Bounded);
        // The same 1.1 s long does get a verdict.
        let long: Vec<(f64, f64)> = (0..12)
            .map(|i| (f64::from(i) * 0.1, f64::from(i) * 1e6))
            .collect();
        assert_eq!(classify(&long, Some(1.1), 1.1).0, Verdict::Growing);
    }
}

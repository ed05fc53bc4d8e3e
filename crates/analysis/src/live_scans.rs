//! Reachability scans made while the program ran (`--scan-every`, or on demand): their
//! figures as a series, their pauses, and the sites whose lost bytes kept rising.
//!
//! Memory the program has lost cannot come back: a site's definitely lost bytes can only fall
//! if a block was seen as lost in one scan and reachable in a later one (a pointer the scan
//! cannot see, such as one the program keeps XOR-ed or only in the kernel). So a site whose
//! lost bytes rise from scan to scan and never fall is the strongest evidence of a leak there
//! is. The rule, stated plainly so that a reader can check it: at least three completed scans,
//! lost bytes that never fall, and rise in at least two steps and at least half of them (so a
//! single block lost once, mid-run, is not called growing).

use std::collections::BTreeMap;

use leakscope_format::{LeakKind, LiveScanOutcome, LiveScanTrigger, Profile, StackId};

use crate::Amount;

/// One live scan.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveScanPoint {
    /// When it began, in seconds since start.
    pub t_s: f64,
    /// Why it ran.
    pub trigger: LiveScanTrigger,
    /// How it ended.
    pub outcome: LiveScanOutcome,
    /// How long the program's threads were stopped.
    pub pause_s: f64,
    /// The whole scan, including writing its records.
    pub duration_s: f64,
    /// Threads stopped.
    pub threads_stopped: u32,
    /// Threads that did not stop in time (the scan was then abandoned).
    pub threads_missed: u32,
    /// Blocks classified.
    pub live_blocks: u64,
    /// Per kind, in [`LeakKind::ALL`] order.
    pub totals: [Amount; 4],
}

impl LiveScanPoint {
    /// The total of one kind.
    pub fn of(&self, kind: LeakKind) -> Amount {
        self.totals[kind as usize]
    }
}

/// A site whose lost bytes of one kind rose over the live scans.
#[derive(Clone, Debug, PartialEq)]
pub struct LostGrowth {
    /// The allocating stack.
    pub stack: StackId,
    /// Definitely or indirectly lost.
    pub kind: LeakKind,
    /// (seconds since start, lost bytes) per completed scan.
    pub series: Vec<(f64, u64)>,
    /// Bytes per second from the first to the last completed scan.
    pub bytes_per_s: f64,
}

impl LostGrowth {
    /// Lost bytes at the first completed scan.
    pub fn bytes_first(&self) -> u64 {
        self.series.first().map_or(0, |p| p.1)
    }
    /// Lost bytes at the last completed scan.
    pub fn bytes_last(&self) -> u64 {
        self.series.last().map_or(0, |p| p.1)
    }
}

/// Everything about the live scans of one process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveScans {
    /// Every scan, in time order (abandoned ones included).
    pub points: Vec<LiveScanPoint>,
    /// Sites whose lost bytes rose, fastest first.
    pub lost_growing: Vec<LostGrowth>,
}

impl LiveScans {
    /// The median and the longest pause of the scans that ran, in seconds.
    pub fn pauses(&self) -> Option<(f64, f64)> {
        let mut pauses: Vec<f64> = self.points.iter().map(|p| p.pause_s).collect();
        if pauses.is_empty() {
            return None;
        }
        pauses.sort_by(f64::total_cmp);
        let middle = pauses.len() / 2;
        let median = if pauses.len() % 2 == 1 {
            pauses[middle]
        } else {
            (pauses[middle - 1] + pauses[middle]) / 2.0
        };
        Some((median, pauses[pauses.len() - 1]))
    }

    /// The completed scans.
    pub fn completed(&self) -> impl Iterator<Item = &LiveScanPoint> {
        self.points
            .iter()
            .filter(|p| p.outcome == LiveScanOutcome::Done)
    }
}

/// The live scans of `profile`, and the sites whose lost bytes rose over them.
pub fn live_scans(profile: &Profile) -> LiveScans {
    let points: Vec<LiveScanPoint> = profile
        .live_scans
        .iter()
        .map(|scan| LiveScanPoint {
            t_s: scan.time_ns as f64 / 1e9,
            trigger: scan.trigger,
            outcome: scan.outcome,
            pause_s: scan.pause_ns as f64 / 1e9,
            duration_s: scan.duration_ns as f64 / 1e9,
            threads_stopped: scan.threads_stopped,
            threads_missed: scan.threads_missed,
            live_blocks: scan.live_blocks,
            totals: scan.totals.map(|(bytes, blocks)| Amount { bytes, blocks }),
        })
        .collect();

    let completed: Vec<_> = profile
        .live_scans
        .iter()
        .filter(|s| s.outcome == LiveScanOutcome::Done)
        .collect();
    // Per (stack, kind): lost bytes in each completed scan (0 where the site had none).
    let mut series: BTreeMap<(StackId, LeakKind), Vec<u64>> = BTreeMap::new();
    for (index, scan) in completed.iter().enumerate() {
        for record in &scan.records {
            if !matches!(
                record.kind,
                LeakKind::DefinitelyLost | LeakKind::IndirectlyLost
            ) {
                continue;
            }
            let values = series
                .entry((record.stack, record.kind))
                .or_insert_with(|| vec![0; completed.len()]);
            values[index] += record.bytes;
        }
    }
    let mut lost_growing: Vec<LostGrowth> = series
        .into_iter()
        .filter(|(_, values)| keeps_rising(values))
        .map(|((stack, kind), values)| {
            let series: Vec<(f64, u64)> = completed
                .iter()
                .zip(&values)
                .map(|(scan, &bytes)| (scan.time_ns as f64 / 1e9, bytes))
                .collect();
            let (first, last) = (series[0], series[series.len() - 1]);
            let span = last.0 - first.0;
            let bytes_per_s = if span > 0.0 {
                (last.1 - first.1) as f64 / span
            } else {
                0.0
            };
            LostGrowth {
                stack,
                kind,
                series,
                bytes_per_s,
            }
        })
        .collect();
    lost_growing.sort_by(|a, b| {
        b.bytes_per_s
            .total_cmp(&a.bytes_per_s)
            .then(a.stack.cmp(&b.stack))
            .then(a.kind.cmp(&b.kind))
    });
    LiveScans {
        points,
        lost_growing,
    }
}

/// The rule of this module's documentation: three or more values that never fall and rise in
/// at least two steps and at least half of them.
fn keeps_rising(values: &[u64]) -> bool {
    if values.len() < 3 {
        return false;
    }
    let steps = values.len() - 1;
    let mut rises = 0;
    for pair in values.windows(2) {
        if pair[1] < pair[0] {
            return false;
        }
        if pair[1] > pair[0] {
            rises += 1;
        }
    }
    rises >= 2 && rises * 2 >= steps
}

#[cfg(test)]
mod tests {
    use super::keeps_rising;

    #[test]
    fn a_steady_loss_keeps_rising() {
        assert!(keeps_rising(&[64, 128, 192, 256]));
        assert!(keeps_rising(&[0, 64, 64, 128]));
    }

    #[test]
    fn one_loss_mid_run_or_a_fall_is_not_rising() {
        assert!(!keeps_rising(&[0, 0, 64, 64, 64]));
        assert!(!keeps_rising(&[64, 128, 64, 192]));
        assert!(!keeps_rising(&[64, 128]));
        assert!(!keeps_rising(&[0, 0, 0, 0, 0, 64, 128]));
    }
}

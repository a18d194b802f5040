//! Clock skew between a memory source and the gate. Sources such as the metrics API stamp each
//! sample with their own clock (the node's kubelet, metrics-server), while the stages of the run
//! are timed by the gate's clock. This module judges, from samples read live (each with the
//! moment the gate received it), whether the two clocks disagree: a sample stamped in the future
//! of its arrival, or older than the source's resolution allows. A consistent offset is measured
//! so the sampler can re-base the samples onto the gate's clock; an offset that wanders cannot be
//! corrected and is reported as such. Pure functions over plain data; the sampler calls them.

use crate::model::{ClockSkew, Timestamp};

/// A sample may arrive stamped this far in the future before it counts as skew (clock jitter
/// between two NTP-synchronised hosts is milliseconds).
pub const FUTURE_TOLERANCE_MS: i64 = 2_000;
/// Beyond twice the source's resolution, how old the freshest sample may be on arrival (a
/// kubelet's stats lag its scrape by up to a housekeeping period, ~15 s).
pub const AGE_SLACK_MS: i64 = 30_000;
/// The resolution assumed while fewer than two distinct sample times are known
/// (metrics-server's slowest usual `--metric-resolution`).
pub const DEFAULT_RESOLUTION_MS: i64 = 60_000;

/// One fresh sample read live: the time it carries and when the gate received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub at: Timestamp,
    pub received: Timestamp,
}

/// The median of the positive gaps between consecutive values (sorted first).
fn median_gap(mut values: Vec<i64>) -> Option<i64> {
    values.sort_unstable();
    values.dedup();
    let mut gaps: Vec<i64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    Some(gaps[gaps.len() / 2])
}

/// Whether the readings of one series show a skewed clock, and how. `None`: the clocks agree
/// (every sample arrived no later than its own time plus the tolerance, and none was older than
/// the source's resolution explains).
///
/// The offset measured is the largest `at − received`: the freshest sample, read moments after it
/// was taken, is the best witness of the source's clock. Re-basing by it never puts a sample
/// after the moment it arrived. The offset is consistent when all readings lie within the
/// spread a sample's age explains (twice the resolution and twice the reading cadence, plus
/// 5 s); otherwise it is erratic (a clock that jumped during the run).
pub fn judge(readings: &[Reading]) -> Option<ClockSkew> {
    assess(readings).skew
}

/// A series' clock verdict with the readings left out of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    pub skew: Option<ClockSkew>,
    /// Readings whose stamp was out of line with all the others (a single sample stamped
    /// minutes off): left out of the verdict, so they cannot re-base the whole series.
    pub outliers: Vec<Reading>,
}

/// [`judge`], robust to a few out-of-line stamps: readings whose offset lies further from the
/// median offset than a sample's age explains are outliers when they are few (at most one in
/// ten, or one of at least three readings); the verdict is then made on the others. More than
/// that is a clock that jumped, judged on all readings (erratic).
pub fn assess(readings: &[Reading]) -> Assessment {
    let offset = |r: &Reading| (r.at - r.received).num_milliseconds();
    let mut sorted: Vec<i64> = readings.iter().map(offset).collect();
    sorted.sort_unstable();
    let Some(&median) = sorted.get(sorted.len() / 2) else {
        return Assessment::default();
    };
    let spread = spread_of(readings);
    let (inliers, outliers): (Vec<Reading>, Vec<Reading>) = readings
        .iter()
        .partition(|r| (offset(r) - median).abs() <= spread);
    let few = readings.len() >= 3 && outliers.len() <= (readings.len() / 10).max(1);
    if outliers.is_empty() || !few {
        return Assessment {
            skew: judge_all(readings),
            outliers: Vec::new(),
        };
    }
    Assessment {
        skew: judge_all(&inliers),
        outliers,
    }
}

/// The spread of offsets a sample's age explains: twice the resolution and twice the reading
/// cadence, plus 5 s.
fn spread_of(readings: &[Reading]) -> i64 {
    let resolution = median_gap(readings.iter().map(|r| r.at.timestamp_millis()).collect())
        .unwrap_or(DEFAULT_RESOLUTION_MS);
    let cadence = median_gap(
        readings
            .iter()
            .map(|r| r.received.timestamp_millis())
            .collect(),
    )
    .unwrap_or(0);
    2 * resolution + 2 * cadence + 5_000
}

fn judge_all(readings: &[Reading]) -> Option<ClockSkew> {
    let offsets: Vec<i64> = readings
        .iter()
        .map(|r| (r.at - r.received).num_milliseconds())
        .collect();
    let max = *offsets.iter().max()?;
    let min = *offsets.iter().min()?;
    let resolution = median_gap(readings.iter().map(|r| r.at.timestamp_millis()).collect())
        .unwrap_or(DEFAULT_RESOLUTION_MS);
    let cadence = median_gap(
        readings
            .iter()
            .map(|r| r.received.timestamp_millis())
            .collect(),
    )
    .unwrap_or(0);
    let max_age = 2 * resolution + AGE_SLACK_MS;
    if max <= FUTURE_TOLERANCE_MS && min >= -max_age {
        return None;
    }
    let spread = 2 * resolution + 2 * cadence + 5_000;
    Some(if max - min > spread {
        ClockSkew::Erratic {
            min_ms: min,
            max_ms: max,
        }
    } else {
        ClockSkew::Rebased { offset_ms: max }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    /// One reading per second for `n` seconds: stamped on whole seconds `offset_ms` off the
    /// gate's clock and received `age_ms` after they were taken.
    fn readings(n: i64, offset_ms: i64, age_ms: impl Fn(i64) -> i64) -> Vec<Reading> {
        (0..n)
            .map(|i| {
                let taken = t0() + Duration::seconds(i);
                Reading {
                    at: taken + Duration::milliseconds(offset_ms),
                    received: taken + Duration::milliseconds(age_ms(i)),
                }
            })
            .collect()
    }

    #[test]
    fn agreeing_clocks_are_left_alone() {
        assert_eq!(judge(&readings(20, 0, |i| 100 + (i * 37) % 900)), None);
        assert_eq!(judge(&[]), None);
        // A second or so in the future is jitter, not skew.
        assert_eq!(judge(&readings(20, 1_500, |_| 50)), None);
    }

    #[test]
    fn metrics_server_samples_as_old_as_its_resolution_are_not_skew() {
        // 15 s resolution: each sample is read up to 15 s + kubelet lag after it was taken.
        let r: Vec<Reading> = (0..8)
            .map(|i| {
                let taken = t0() + Duration::seconds(15 * i);
                Reading {
                    at: taken,
                    received: taken + Duration::seconds(12 + i % 3 * 4),
                }
            })
            .collect();
        assert_eq!(judge(&r), None);
    }

    #[test]
    fn a_clock_ahead_is_measured_from_the_freshest_sample() {
        let skew = judge(&readings(20, 300_000, |i| 200 + (i * 53) % 800));
        assert_eq!(skew, Some(ClockSkew::Rebased { offset_ms: 299_800 }));
    }

    #[test]
    fn a_clock_behind_further_than_the_resolution_allows_is_measured() {
        let skew = judge(&readings(20, -600_000, |i| 100 + (i * 53) % 800));
        assert_eq!(
            skew,
            Some(ClockSkew::Rebased {
                offset_ms: -600_100
            })
        );
        // Behind by less than the resolution explains: indistinguishable from old samples.
        assert_eq!(judge(&readings(20, -20_000, |_| 100)), None);
    }

    #[test]
    fn a_single_sample_from_the_future_is_enough() {
        let skew = judge(&readings(1, 300_000, |_| 0));
        assert_eq!(skew, Some(ClockSkew::Rebased { offset_ms: 300_000 }));
    }

    #[test]
    fn a_single_out_of_line_stamp_does_not_rebase_the_series() {
        // 20 agreeing readings and one stamped 5 min ahead.
        let mut r = readings(20, 0, |_| 300);
        r[7].at += Duration::minutes(5);
        let a = assess(&r);
        assert_eq!(a.skew, None);
        assert_eq!(a.outliers, vec![r[7]]);
        // One stamped 10 min behind, among readings from a clock 5 min ahead: still re-based
        // by the others' offset, the odd one left out.
        let mut r = readings(20, 300_000, |_| 300);
        r[3].at -= Duration::minutes(15);
        let a = assess(&r);
        assert_eq!(a.skew, Some(ClockSkew::Rebased { offset_ms: 299_700 }));
        assert_eq!(a.outliers.len(), 1);
        // Agreeing readings only: no outliers.
        assert!(assess(&readings(20, 0, |_| 300)).outliers.is_empty());
    }

    #[test]
    fn a_clock_that_jumps_is_erratic() {
        let mut r = readings(10, 0, |_| 300);
        r.extend(readings(10, 300_000, |_| 300).into_iter().map(|mut x| {
            x.at += Duration::seconds(10);
            x.received += Duration::seconds(10);
            x
        }));
        assert_eq!(
            judge(&r),
            Some(ClockSkew::Erratic {
                min_ms: -300,
                max_ms: 299_700
            })
        );
        // A jump backwards: the freshest sample looks fine, later ones far too old.
        let mut r = readings(10, 0, |_| 300);
        r.extend(readings(10, -600_000, |_| 300));
        assert!(matches!(judge(&r), Some(ClockSkew::Erratic { .. })));
    }
}

//! Analysis beyond "peak against a number": why memory behaved as it did and what to change.
//! `leak` fits a robust trend through every hold, `capacity` fits working set against users and
//! extrapolates it, `recommend` derives a limit, a request and runtime heap settings from the
//! measurement, `runtime` reads heap settings out of a container's environment, and `baseline`
//! reads an earlier `report.json` and compares with it. Everything here is pure (only
//! `baseline::read_baseline` reads a file); the judge turns the results into findings and the
//! reporters show them. This module holds the small statistics and time-window helpers they share.

pub mod baseline;
pub mod capacity;
pub mod leak;
pub mod recommend;
pub mod request_leak;
pub mod runtime;
#[cfg(test)]
pub(crate) mod testdata;

use crate::model::{ContainerSeries, Sample, StageKind, StageWindow, Timestamp};

/// Bytes in a MiB, as a float for rates and fits.
pub const MIB: f64 = 1024.0 * 1024.0;

/// The hold stages of a run (same users at start and end), in order.
pub fn holds(stages: &[StageWindow]) -> impl Iterator<Item = &StageWindow> {
    stages.iter().filter(|w| w.stage.kind() == StageKind::Hold)
}

/// The part of a stage judged after memory settles: it starts `settle` (a share) of the
/// stage's measured length after its start and ends with it.
pub fn settled(window: &StageWindow, settle: f64) -> (Timestamp, Timestamp) {
    let length = window.end - window.start;
    let skip_ms = (length.num_milliseconds() as f64 * settle.clamp(0.0, 1.0)).round() as i64;
    (
        window.start + chrono::Duration::milliseconds(skip_ms),
        window.end,
    )
}

/// The samples of `series` taken from `from` to `to`, both included.
pub fn samples_between(series: &ContainerSeries, from: Timestamp, to: Timestamp) -> Vec<Sample> {
    series
        .samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to)
        .copied()
        .collect()
}

/// The `q`-quantile (0..=1) of `values`, interpolating between neighbours; `None` when empty.
/// Reorders `values`.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, lo_value, upper) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_value = *lo_value;
    if frac == 0.0 || upper.is_empty() {
        return Some(lo_value);
    }
    let hi_value = upper.iter().copied().fold(f64::INFINITY, f64::min);
    Some(lo_value + (hi_value - lo_value) * frac)
}

/// The median of `values` (reordered); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// A robust standard deviation: 1.4826 × the median absolute deviation from the median, which
/// equals the standard deviation for normal noise and ignores outliers.
pub fn robust_sd(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    let Some(m) = median(&mut v) else {
        return 0.0;
    };
    let mut dev: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    1.4826 * median(&mut dev).unwrap_or(0.0)
}

#[cfg(test)]
mod tests;

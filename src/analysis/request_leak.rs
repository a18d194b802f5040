//! Growth per request, across the whole load: memory a service keeps for every request it
//! serves (the common leak) shows in seconds under load, long before a per-minute trend through
//! one long hold can be judged. For each pod's container the working set is set against the
//! requests completed so far (the driver's live timeline, else each stage's count spread evenly
//! over it) in the settled part of every hold, and one Theil–Sen slope is fitted through all of
//! them at once, pairing samples only within the same hold: the staircase a service climbs
//! when the load steps up (more users, more buffers) is between holds, so it never reads as
//! growth, while memory kept per request rises inside each hold. Ramps are left out for the
//! same reason. The same test as `leak` decides growth (clearly positive slopes, growth over
//! the judged requests beyond a floor and the noise); a clearly positive slope that stays
//! within the noise is a rise too small to call, which the judge warns about with the hold
//! length that would settle it.

use super::leak::{theil_sen_pooled, MIN_GROWTH_BYTES, MIN_SAMPLES, NOISE_FACTOR};
use super::{holds, robust_sd, samples_between, settled};
use crate::model::{LeakRule, Run, StageWindow, Timestamp};

/// A clearly positive slope whose growth stays within the noise is reported as a rise once the
/// growth is at least this much (smaller ones are allocator jitter).
pub const MIN_RISE_BYTES: f64 = MIN_GROWTH_BYTES / 4.0;

/// The working set of one pod's container against the requests served, through every hold.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTrend {
    pub pod: String,
    pub container: String,
    /// The holds judged (those with enough samples and at least one request).
    pub holds: Vec<StageWindow>,
    /// Samples used, over all holds.
    pub samples: usize,
    /// Requests completed in the judged parts of the holds.
    pub requests: f64,
    /// Seconds of judged hold time.
    pub seconds: f64,
    /// Theil–Sen slope, bytes per request.
    pub slope: f64,
    /// 25th percentile of the pairwise slopes, bytes per request.
    pub slope_low: f64,
    /// What the slope adds up to over the judged requests, bytes.
    pub growth: f64,
    /// Robust standard deviation of the working set around the lines, bytes.
    pub noise: f64,
    /// The line's working set at the end of the last judged hold, bytes.
    pub level_at_end: f64,
    /// When the last judged hold ended.
    pub end: Timestamp,
    /// The busiest judged hold's request rate, requests per second.
    pub rps: f64,
}

impl RequestTrend {
    /// The least growth over the judged requests that counts: the floor or the noise.
    pub fn threshold(&self) -> f64 {
        MIN_GROWTH_BYTES.max(NOISE_FACTOR * self.noise)
    }

    /// Clearly positive and larger than the noise, as `leak::HoldTrend::is_growing`.
    pub fn is_growing(&self) -> bool {
        self.slope > 0.0 && self.slope_low > 0.0 && self.growth >= self.threshold()
    }

    /// Clearly positive but within the noise: a rise too small to call in a run this short.
    pub fn rises_within_noise(&self) -> bool {
        !self.is_growing()
            && self.slope > 0.0
            && self.slope_low > 0.0
            && self.growth >= MIN_RISE_BYTES
    }

    /// The growth per second at the busiest hold's request rate, bytes.
    pub fn bytes_per_sec(&self) -> f64 {
        self.slope * self.rps
    }

    /// Minutes after the last hold until the line reaches `bytes` at the busiest hold's rate (0
    /// when it already has); `None` when it does not grow.
    pub fn minutes_to(&self, bytes: u64) -> Option<f64> {
        let per_sec = self.bytes_per_sec();
        if per_sec <= 0.0 {
            return None;
        }
        Some(((bytes as f64 - self.level_at_end) / per_sec / 60.0).max(0.0))
    }

    /// The hold length (including the settle share) at which growth at this trend's rate would
    /// clear the threshold; `None` when it does not rise.
    pub fn hold_needed(&self, settle: f64) -> Option<f64> {
        let per_sec = self.bytes_per_sec();
        (per_sec > 0.0).then(|| self.threshold() / per_sec / (1.0 - settle.clamp(0.0, 0.95)))
    }

    /// The slowest growth (bytes per minute) that the judged hold time could have shown.
    pub fn detectable_per_min(&self) -> f64 {
        if self.seconds <= 0.0 {
            f64::INFINITY
        } else {
            self.threshold() / self.seconds * 60.0
        }
    }
}

/// Requests completed by `at`: interpolated from the driver's live timeline, else each stage's
/// count spread evenly over the stage; `None` when the run has neither.
pub fn requests_at(run: &Run, at: Timestamp) -> Option<f64> {
    let marks = &run.load.timeline;
    if let (Some(first), Some(last)) = (marks.first(), marks.last()) {
        if at <= first.at {
            return Some(first.requests as f64);
        }
        if at >= last.at {
            return Some(last.requests as f64);
        }
        let i = marks.partition_point(|m| m.at <= at);
        let (a, b) = (marks[i - 1], marks[i]);
        let span = (b.at - a.at).num_microseconds().unwrap_or(0) as f64;
        let into = (at - a.at).num_microseconds().unwrap_or(0) as f64;
        let share = if span > 0.0 { into / span } else { 1.0 };
        return Some(a.requests as f64 + share * (b.requests as f64 - a.requests as f64));
    }
    if run.load.per_stage.is_empty() {
        return None;
    }
    let mut done = 0.0;
    for w in &run.stages {
        let count = run
            .load
            .per_stage
            .iter()
            .find(|s| s.index == w.stage.index)
            .map_or(0.0, |s| s.requests as f64);
        if at >= w.end {
            done += count;
            continue;
        }
        if at > w.start {
            let length = (w.end - w.start).num_microseconds().unwrap_or(0) as f64;
            let into = (at - w.start).num_microseconds().unwrap_or(0) as f64;
            if length > 0.0 {
                done += count * into / length;
            }
        }
        break;
    }
    Some(done)
}

/// The per-request trend of every pod's container with enough samples in at least one hold.
pub fn request_trends(run: &Run, rule: &LeakRule) -> Vec<RequestTrend> {
    let mut out = Vec::new();
    for series in &run.containers {
        let mut groups: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut windows: Vec<StageWindow> = Vec::new();
        let (mut requests, mut seconds, mut rps) = (0.0, 0.0, 0.0_f64);
        let mut last_span = 0.0;
        for window in holds(&run.stages) {
            let (from, to) = settled(window, rule.settle);
            let (Some(r0), Some(r1)) = (requests_at(run, from), requests_at(run, to)) else {
                continue;
            };
            let samples = samples_between(series, from, to);
            if samples.len() < MIN_SAMPLES || r1 <= r0 {
                continue;
            }
            let mut points = Vec::with_capacity(samples.len());
            for s in &samples {
                let Some(r) = requests_at(run, s.at) else {
                    continue;
                };
                points.push((r - r0, s.working_set as f64));
            }
            let secs = (to - from).num_milliseconds() as f64 / 1000.0;
            requests += r1 - r0;
            seconds += secs;
            if secs > 0.0 {
                rps = rps.max((r1 - r0) / secs);
            }
            last_span = r1 - r0;
            groups.push(points);
            windows.push(window.clone());
        }
        let Some(fit) = theil_sen_pooled(&groups) else {
            continue;
        };
        let residuals: Vec<f64> = groups
            .iter()
            .zip(&fit.intercepts)
            .flat_map(|(g, b)| g.iter().map(move |&(x, y)| y - (b + fit.slope * x)))
            .collect();
        let last = windows.last().expect("a fit has a hold");
        out.push(RequestTrend {
            pod: series.pod.clone(),
            container: series.container.clone(),
            samples: groups.iter().map(Vec::len).sum(),
            requests,
            seconds,
            slope: fit.slope,
            slope_low: fit.low,
            growth: fit.slope * requests,
            noise: robust_sd(&residuals),
            level_at_end: fit.intercepts.last().copied().unwrap_or(0.0) + fit.slope * last_span,
            end: last.end,
            rps,
            holds: windows,
        });
    }
    out
}

/// The steepest growing per-request trend of `container` across its pods, bytes per request;
/// `None` when none grows.
pub fn steepest_growing(trends: &[RequestTrend], container: &str) -> Option<f64> {
    trends
        .iter()
        .filter(|t| t.container == container && t.is_growing())
        .map(|t| t.slope)
        .max_by(f64::total_cmp)
}

#[cfg(test)]
#[path = "request_leak_tests.rs"]
mod tests;

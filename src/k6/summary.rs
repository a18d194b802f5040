//! From an `Aggregate` to the numbers a report shows (`K6Summary`), computed the way k6's own
//! end-of-test summary computes them: counts as sums of the points' values, avg from the exact
//! sum, min and max exact, percentiles interpolated linearly between the two neighbouring values
//! at rank i = p × (n − 1) (read from the histogram, ≤ 0.1 % value error overall). Per-stage
//! numbers come from the aggregate's time buckets, assigned to the scenario's declared stages
//! (offsets from the first point) or, without any, to stages reconstructed from the `vus`
//! timeline (`stages.rs`). `K6Summary::load_stats` converts to the gate's `LoadStats`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::{Counter, Histogram};

use super::aggregate::{Aggregate, MetricInfo, ReadStats, Trend, OTHER_NAME};
use super::stages::{declared_stages, reconstruct_stages};
use crate::model::{LoadStats, RequestStats, StageWindow, Timestamp};

/// What `LoadStats::latency_measure` says for k6 results.
pub const LATENCY_MEASURE: &str = "full response time (k6 http_req_duration)";

/// Distribution of a trend metric, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrendSummary {
    pub count: u64,
    pub avg_ms: f64,
    pub min_ms: f64,
    pub med_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One request `name` tag.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSummary {
    pub name: String,
    pub requests: u64,
    /// `http_req_failed` points that were true.
    pub failures: u64,
    pub duration: TrendSummary,
}

/// One stage as it ran, with the load measured in it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSummary {
    pub window: StageWindow,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub duration: TrendSummary,
    /// Highest `vus` seen in the stage (summed across runners).
    pub max_vus: u32,
}

/// Where the stage boundaries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageOrigin {
    /// The scenario declared them; placed at offsets from the first point.
    Declared,
    /// Reconstructed from the `vus` timeline (ramp while it changes, hold while flat).
    Reconstructed,
    /// No stages: no points, or no `vus` points and none declared.
    None,
}

/// Pass/fail counts of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    pub name: String,
    pub passes: u64,
    pub fails: u64,
}

/// The numbers of a k6 run, as read from its `--out json` output.
#[derive(Debug, Clone, PartialEq)]
pub struct K6Summary {
    /// The files read (`<stdin>` for `-`).
    pub sources: Vec<String>,
    pub stats: ReadStats,
    /// Things a report should mention: truncated or skipped lines, folded request names, ….
    pub warnings: Vec<String>,
    /// Why the input is incomplete, one reason per cut: a gzip stream that ends early, a last
    /// line cut off mid-way (`file:line: …`). Empty when every input was read to its end.
    pub incomplete: Vec<String>,
    /// Time of the first and last point (the run window); `None` without points.
    pub first_point: Option<Timestamp>,
    pub last_point: Option<Timestamp>,
    /// `http_reqs`: count and count per second of the window.
    pub requests: u64,
    pub rps: f64,
    /// `http_req_failed`: points, true points, and their mean.
    pub failed_points: u64,
    pub failures: u64,
    pub failed_rate: f64,
    pub duration: TrendSummary,
    pub per_request: Vec<RequestSummary>,
    /// `status` tag of `http_reqs` → count (0 = no response).
    pub status_codes: BTreeMap<u16, u64>,
    /// `checks`: points, passes, pass rate, per check.
    pub checks: u64,
    pub checks_passed: u64,
    pub checks_rate: f64,
    pub per_check: Vec<CheckSummary>,
    pub iterations: u64,
    /// Per second (start of the second), `vus`: max within the second, summed across runners.
    pub vus: Vec<(Timestamp, u32)>,
    pub max_vus: u32,
    pub stage_origin: StageOrigin,
    pub stages: Vec<StageSummary>,
    /// Metric definitions (type, threshold expressions) by metric name.
    pub metrics: BTreeMap<String, MetricInfo>,
}

pub(crate) fn ts(ns: i64) -> Timestamp {
    DateTime::<Utc>::from_timestamp_nanos(ns)
}

/// The value with 0-based rank `rank` (sorted ascending), at the middle of its histogram bucket.
fn value_at_rank<C: Counter>(h: &Histogram<C>, rank: u64) -> u64 {
    let mut seen = 0u64;
    for v in h.iter_recorded() {
        seen += v.count_since_last_iteration();
        if seen > rank {
            return h.median_equivalent(v.value_iterated_to());
        }
    }
    h.max()
}

/// k6's percentile: linear interpolation at i = p × (n − 1) over the sorted values.
fn percentile<C: Counter>(t: &Trend<C>, p: f64) -> f64 {
    let n = t.hist.len();
    if n == 0 {
        return 0.0;
    }
    let i = p * (n - 1) as f64;
    let (lo, hi) = (i.floor() as u64, i.ceil() as u64);
    let at = |rank: u64| -> f64 {
        if rank == 0 {
            t.min_ms
        } else if rank >= n - 1 {
            t.max_ms
        } else {
            t.to_ms(value_at_rank(&t.hist, rank))
        }
    };
    let (a, b) = (at(lo), at(hi));
    (a + (b - a) * (i - lo as f64)).clamp(t.min_ms, t.max_ms)
}

pub(crate) fn trend_summary<C: Counter>(t: &Trend<C>) -> TrendSummary {
    if t.count == 0 {
        return TrendSummary::default();
    }
    TrendSummary {
        count: t.count,
        avg_ms: t.sum_ns as f64 / 1e6 / t.count as f64,
        min_ms: t.min_ms,
        med_ms: percentile(t, 0.5),
        p90_ms: percentile(t, 0.9),
        p95_ms: percentile(t, 0.95),
        p99_ms: percentile(t, 0.99),
        max_ms: t.max_ms,
    }
}

fn rate(count: f64, span_ns: i64) -> f64 {
    if span_ns <= 0 {
        0.0
    } else {
        count / (span_ns as f64 / 1e9)
    }
}

/// Summarizes what was read. `stages` are the scenario's declared stages (k6 semantics: move
/// linearly from the previous target, 0 at first, to `target` over `duration`); without them
/// the stages are reconstructed from the `vus` timeline.
pub fn summarize(agg: &Aggregate, stages: Option<&[(Duration, u32)]>) -> K6Summary {
    let has_points = agg.first_ns <= agg.last_ns;
    // Saturating: points 330 years apart (a corrupted year) overflow i64 nanoseconds.
    let span = if has_points {
        agg.last_ns.saturating_sub(agg.first_ns)
    } else {
        0
    };
    let vus: Vec<(Timestamp, u32)> = agg
        .vus
        .iter()
        .map(|(&sec, &v)| (ts(sec.saturating_mul(1_000_000_000)), v))
        .collect();
    let (stage_origin, windows) = match (has_points, stages) {
        (false, _) => (StageOrigin::None, Vec::new()),
        (true, Some(declared)) if !declared.is_empty() => (
            StageOrigin::Declared,
            declared_stages(declared, agg.first_ns, agg.last_ns),
        ),
        (true, _) => {
            let w = reconstruct_stages(&agg.vus, agg.first_ns, agg.last_ns);
            let origin = if w.is_empty() {
                StageOrigin::None
            } else {
                StageOrigin::Reconstructed
            };
            (origin, w)
        }
    };
    let stage_summaries = stage_stats(agg, windows);
    let mut per_request: Vec<RequestSummary> = agg
        .names
        .entries
        .iter()
        .map(|(name, s)| RequestSummary {
            name: name.clone(),
            requests: s.requests.round() as u64,
            failures: s.failures.round() as u64,
            duration: trend_summary(&s.duration),
        })
        .collect();
    per_request.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.name.cmp(&b.name)));
    let per_check = agg
        .check_names
        .entries
        .iter()
        .map(|(name, (passes, fails))| CheckSummary {
            name: name.clone(),
            passes: *passes,
            fails: *fails,
        })
        .collect();
    let failures = agg.failed_sum.round() as u64;
    let checks_passed = agg.checks_sum.round() as u64;
    K6Summary {
        sources: agg.sources.clone(),
        stats: agg.stats.clone(),
        warnings: warnings(agg),
        incomplete: incomplete(agg),
        first_point: has_points.then(|| ts(agg.first_ns)),
        last_point: has_points.then(|| ts(agg.last_ns)),
        requests: agg.requests(),
        rps: rate(agg.requests, span),
        failed_points: agg.failed_points,
        failures,
        failed_rate: ratio(failures, agg.failed_points),
        duration: trend_summary(&agg.duration),
        per_request,
        status_codes: agg.status_codes(),
        checks: agg.checks_points,
        checks_passed,
        checks_rate: ratio(checks_passed, agg.checks_points),
        per_check,
        iterations: agg.iterations.round() as u64,
        max_vus: agg.vus.values().copied().max().unwrap_or(0),
        vus,
        stage_origin,
        stages: stage_summaries,
        metrics: agg.metrics.clone(),
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn incomplete(agg: &Aggregate) -> Vec<String> {
    let mut out: Vec<String> = agg
        .cut_streams
        .iter()
        .map(|f| {
            format!("{f}: the gzip stream stops before its end marker (the file was cut short)")
        })
        .collect();
    out.extend(
        agg.issues
            .iter()
            .filter(|i| i.truncated)
            .map(|i| format!("{}:{}: the last line is cut off mid-line", i.file, i.line)),
    );
    let listed = agg.issues.iter().filter(|i| i.truncated).count() as u64;
    if agg.stats.truncated_lines > listed {
        out.push(format!(
            "{} more last lines cut off mid-line",
            agg.stats.truncated_lines - listed
        ));
    }
    out
}

fn warnings(agg: &Aggregate) -> Vec<String> {
    let mut out = Vec::new();
    if agg.stats.points == 0 {
        out.push(format!(
            "no k6 points in {}: is this the output of `k6 run --out json=FILE`?",
            agg.sources.join(", ")
        ));
    }
    for issue in &agg.issues {
        if issue.truncated {
            out.push(format!("{}:{}: {}", issue.file, issue.line, issue.reason));
        } else {
            out.push(format!(
                "{}:{}: skipped (lenient): {}",
                issue.file, issue.line, issue.reason
            ));
        }
    }
    let listed = agg.issues.len() as u64;
    let total = agg.stats.skipped_lines + agg.stats.truncated_lines;
    if total > listed {
        out.push(format!(
            "… and {} more skipped or cut-off lines",
            total - listed
        ));
    }
    out.extend(agg.warnings.iter().cloned());
    if agg.names.folded {
        out.push(format!(
            "more than {} distinct request names: the rest are counted under \"{OTHER_NAME}\" \
             (tag requests with a `name` to group dynamic URLs)",
            agg.names.entries.len().saturating_sub(1)
        ));
    }
    if agg.check_names.folded {
        out.push(format!(
            "too many distinct check names: the rest are counted under \"{OTHER_NAME}\""
        ));
    }
    if agg.stats.unknown_lines > 0 {
        out.push(format!(
            "{} line(s) of an unknown type were ignored",
            agg.stats.unknown_lines
        ));
    }
    out
}

/// Requests, failures and latency per stage, from the time buckets (a bucket belongs to the
/// stage holding its midpoint; the last stage takes everything after its end).
fn stage_stats(agg: &Aggregate, windows: Vec<StageWindow>) -> Vec<StageSummary> {
    let nanos = |t: &Timestamp| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let bounds: Vec<(i64, i64)> = windows
        .iter()
        .map(|w| (nanos(&w.start), nanos(&w.end)))
        .collect();
    let width = agg.buckets.width_ns;
    let mut acc: Vec<(f64, f64, Trend<u32>)> = windows
        .iter()
        .map(|_| (0.0, 0.0, Trend::compact()))
        .collect();
    for (&key, b) in &agg.buckets.map {
        let mid = key.saturating_mul(width).saturating_add(width / 2);
        let i = bounds
            .iter()
            .position(|&(s, e)| mid >= s && mid < e)
            .or_else(|| {
                if bounds.first().is_some_and(|&(s, _)| mid < s) {
                    Some(0)
                } else {
                    bounds.len().checked_sub(1)
                }
            });
        if let Some(i) = i {
            acc[i].0 += b.requests;
            acc[i].1 += b.failures;
            acc[i].2.merge(&b.duration);
        }
    }
    windows
        .into_iter()
        .zip(acc)
        .zip(bounds)
        .map(|((window, (req, fail, trend)), (s, e))| {
            let max_vus = agg
                .vus
                .range(s.div_euclid(1_000_000_000)..=e.div_euclid(1_000_000_000))
                .map(|(_, &v)| v)
                .max()
                .unwrap_or(0);
            StageSummary {
                requests: req.round() as u64,
                failures: fail.round() as u64,
                rps: rate(req, e.saturating_sub(s)),
                duration: trend_summary(&trend),
                max_vus,
                window,
            }
        })
        .collect()
}

impl K6Summary {
    /// The stage windows, for lining memory up with load.
    pub fn stage_windows(&self) -> Vec<StageWindow> {
        self.stages.iter().map(|s| s.window.clone()).collect()
    }

    /// The gate's load numbers: requests = `http_reqs`, failures = true `http_req_failed`
    /// points, latency = `http_req_duration` (full response time, body included).
    pub fn load_stats(&self) -> LoadStats {
        LoadStats {
            driver: "k6".to_string(),
            latency_measure: LATENCY_MEASURE.to_string(),
            requests: self.requests,
            failures: self.failures,
            rps: self.rps,
            p50_ms: self.duration.med_ms,
            p95_ms: self.duration.p95_ms,
            p99_ms: self.duration.p99_ms,
            max_ms: self.duration.max_ms,
            per_request: self
                .per_request
                .iter()
                .map(|r| RequestStats {
                    name: r.name.clone(),
                    requests: r.requests,
                    failures: r.failures,
                    p50_ms: r.duration.med_ms,
                    p95_ms: r.duration.p95_ms,
                    p99_ms: r.duration.p99_ms,
                    max_ms: r.duration.max_ms,
                })
                .collect(),
            status_codes: self.status_codes.clone(),
            tool_thresholds_failed: false,
            tool_exit_code: None,
            per_stage: self
                .stages
                .iter()
                .map(|s| crate::model::StageLoad {
                    index: s.window.stage.index,
                    requests: s.requests,
                    failures: s.failures,
                    rps: s.rps,
                    p95_ms: s.duration.p95_ms,
                })
                .collect(),
            timeline: Vec::new(),
        }
    }
}

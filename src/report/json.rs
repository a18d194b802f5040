//! `report.json`, schema `oomgate.report/v1`: the machine-readable report CI systems, dashboards
//! and `--baseline` read. The shape is defined by serde structs dedicated to it (not by the domain
//! types, so a model change cannot silently change the document) and checked against
//! `schema/report.schema.json` by the tests. Fields may be added; none may change meaning.
//! Unknown numbers are `null`; timestamps are RFC 3339 UTC with milliseconds. Each stage lists the
//! peak, median and p95 working set of every container name within it; its own load numbers
//! (`requests`, `failures`, `rps`, `p95_ms`) appear only when the driver splits them by stage.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use serde::Serialize;

use super::{ReportView, Reporter, VpaView};
use crate::model::{Outcome, PeakSource, Severity, StageKind, Timestamp};

pub const SCHEMA_ID: &str = "oomgate.report/v1";

/// Writes `report.json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn name(&self) -> &'static str {
        "json"
    }

    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn render(&self, view: &ReportView, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &Document::from_view(view))
            .map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    }
}

/// The report as a JSON value (what `render` writes).
pub fn to_value(view: &ReportView) -> serde_json::Value {
    serde_json::to_value(Document::from_view(view)).expect("the report serializes")
}

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    verdict: Outcome,
    exit_code: u8,
    scenario: &'a str,
    workload: &'a str,
    started_at: String,
    ended_at: String,
    ended_early: Option<&'a str>,
    stages: Vec<Stage<'a>>,
    containers: Vec<Container<'a>>,
    findings: Vec<Finding<'a>>,
    load: Load<'a>,
    memory: Memory<'a>,
    policy: PolicyDoc,
    vpa: Option<Vpa<'a>>,
    notes: &'a [String],
    /// Pods that went away during the run; left out when none did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pods_gone: Vec<PodGone<'a>>,
}

#[derive(Serialize)]
struct PodGone<'a> {
    pod: &'a str,
    at: String,
    reason: Option<&'a str>,
    replaced_by: Option<&'a str>,
    samples: usize,
    last_sample_at: Option<String>,
    last_sample_bytes: Option<u64>,
    peak_bytes: Option<u64>,
    replacement_samples: usize,
}

#[derive(Serialize)]
struct Stage<'a> {
    index: usize,
    kind: StageKind,
    from_users: u32,
    to_users: u32,
    start: String,
    end: String,
    containers: Vec<StageContainer<'a>>,
    /// The stage's own load numbers, only when the driver splits them by stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p95_ms: Option<f64>,
}

#[derive(Serialize)]
struct StageContainer<'a> {
    container: &'a str,
    peak_bytes: Option<u64>,
    median_bytes: Option<u64>,
    p95_bytes: Option<u64>,
    samples: usize,
}

#[derive(Serialize)]
struct Container<'a> {
    container: &'a str,
    limit_bytes: Option<u64>,
    request_bytes: Option<u64>,
    allowed_peak_bytes: Option<u64>,
    peak_bytes: Option<u64>,
    peak_pod: Option<&'a str>,
    peak_at: Option<String>,
    peak_source: Option<PeakSource>,
    peak_upper_bytes: Option<u64>,
    samples: usize,
    resolution_seconds: f64,
    pods: &'a [String],
    results: BTreeMap<&'static str, Severity>,
    vpa_target_bytes: Option<u64>,
    /// What "What to change" suggests, as data for bots and later runs; `None` without memory
    /// data.
    suggestion: Option<Suggestion<'a>>,
}

/// One container's suggested settings and what they are based on.
#[derive(Serialize)]
struct Suggestion<'a> {
    /// Why nothing is sized from this run (`leak`: the working set keeps growing), else
    /// `None` and the values below are the suggestion.
    withheld: Option<&'static str>,
    limit_bytes: u64,
    request_bytes: Option<u64>,
    /// The runtime heap settings for `limit_bytes`, for the runtimes seen in the container's
    /// environment (empty when none was recognised; `heaps` then has every choice).
    env: Vec<SuggestedEnv<'a>>,
    heaps: Heaps,
    basis: SuggestionBasis,
}

#[derive(Serialize)]
struct SuggestedEnv<'a> {
    runtime: &'static str,
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct Heaps {
    gomemlimit_bytes: u64,
    node_max_old_space_mib: u64,
    java_max_ram_percentage: u32,
}

#[derive(Serialize)]
struct SuggestionBasis {
    /// The highest working-set sample (`peak_percentile` 100) of `peak_samples`, its stage and
    /// time.
    peak_bytes: u64,
    peak_percentile: f64,
    peak_samples: usize,
    peak_stage: Option<usize>,
    peak_at: String,
    /// The largest process's resident set (local workloads), and the same when above the peak.
    resident_bytes: Option<u64>,
    resident_floor_bytes: Option<u64>,
    /// What the limit keeps `headroom` above.
    sized_from_bytes: u64,
    headroom: f64,
    /// The request: the busiest hold's (0-based `stage`, `users`) median × `margin`.
    request_stage: Option<usize>,
    request_users: Option<u32>,
    request_median_bytes: Option<u64>,
    request_percentile: f64,
    request_margin: f64,
}

fn suggestion(c: &super::ContainerRow) -> Option<Suggestion<'_>> {
    use crate::analysis::recommend::REQUEST_MARGIN;
    let r = c.recommendation.as_ref()?;
    Some(Suggestion {
        withheld: super::advice::leaking(c).then_some("leak"),
        limit_bytes: r.limit,
        request_bytes: r.request,
        env: r
            .env
            .iter()
            .map(|e| SuggestedEnv {
                runtime: e.runtime,
                name: &e.name,
                value: &e.value,
            })
            .collect(),
        heaps: Heaps {
            gomemlimit_bytes: r.gomemlimit,
            node_max_old_space_mib: r.node_max_old_space_mib,
            java_max_ram_percentage: r.java_max_ram_percentage,
        },
        basis: SuggestionBasis {
            peak_bytes: r.peak,
            peak_percentile: 100.0,
            peak_samples: r.limit_basis.samples,
            peak_stage: r.limit_basis.stage,
            peak_at: time(r.limit_basis.at),
            resident_bytes: r.limit_basis.resident,
            resident_floor_bytes: r.limit_basis.resident_floor,
            sized_from_bytes: r.limit_basis.resident_floor.unwrap_or(r.peak),
            headroom: r.headroom,
            request_stage: r.request_basis.as_ref().map(|b| b.stage),
            request_users: r.request_basis.as_ref().map(|b| b.users),
            request_median_bytes: r.request_basis.as_ref().map(|b| b.median),
            request_percentile: 50.0,
            request_margin: REQUEST_MARGIN,
        },
    })
}

#[derive(Serialize)]
struct Finding<'a> {
    rule: &'static str,
    severity: Severity,
    container: Option<&'a str>,
    pod: Option<&'a str>,
    message: &'a str,
    observed: Option<serde_json::Number>,
    threshold: Option<serde_json::Number>,
    at: Option<String>,
}

#[derive(Serialize)]
struct Load<'a> {
    driver: &'a str,
    latency_measure: &'a str,
    requests: u64,
    failures: u64,
    error_rate: Option<f64>,
    rps: Option<f64>,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    per_request: Vec<PerRequest<'a>>,
    status_codes: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct PerRequest<'a> {
    name: &'a str,
    requests: u64,
    failures: u64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
}

#[derive(Serialize)]
struct Memory<'a> {
    source: &'a str,
    interval_seconds: f64,
    coverage: Option<f64>,
    ticks: u64,
    ticks_with_data: u64,
    limit_enforced: bool,
    notes: &'a [String],
    /// Every (pod, container)'s own coverage; left out when not counted per pod.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pods: Vec<PodCoverage<'a>>,
}

#[derive(Serialize)]
struct PodCoverage<'a> {
    pod: &'a str,
    container: &'a str,
    since: String,
    ticks: u64,
    covered: u64,
    coverage: f64,
    below_min_coverage: bool,
    limit_bytes: Option<u64>,
    peak_bytes: Option<u64>,
    /// Why ticks were uncovered, in words; null when none was.
    reason: Option<&'a str>,
    gaps: Vec<Gap<'a>>,
}

#[derive(Serialize)]
struct Gap<'a> {
    from: String,
    to: String,
    ticks: u64,
    /// absent, stuck, bad-value, read-failed.
    cause: &'static str,
    /// The sample time that stopped advancing (stuck only).
    #[serde(skip_serializing_if = "Option::is_none")]
    stamp: Option<String>,
    /// The value as the source spelled it (bad-value only).
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

fn pod_coverage(rows: &[super::view::PodCoverageRow]) -> Vec<PodCoverage<'_>> {
    use crate::model::GapCause;
    rows.iter()
        .map(|r| PodCoverage {
            pod: &r.pod,
            container: &r.container,
            since: time(r.since),
            ticks: r.ticks,
            covered: r.covered,
            coverage: r.share,
            below_min_coverage: r.below,
            limit_bytes: r.limit,
            peak_bytes: r.peak,
            reason: r.gaps.as_deref(),
            gaps: r
                .gap_spans
                .iter()
                .map(|g| {
                    let (cause, stamp, value) = match &g.cause {
                        GapCause::Absent => ("absent", None, None),
                        GapCause::Stuck { stamp } => ("stuck", Some(time(*stamp)), None),
                        GapCause::BadValue { value } => ("bad-value", None, Some(value.as_str())),
                        GapCause::ReadFailed => ("read-failed", None, None),
                    };
                    Gap {
                        from: time(g.from),
                        to: time(g.to),
                        ticks: g.ticks,
                        cause,
                        stamp,
                        value,
                    }
                })
                .collect(),
        })
        .collect()
}

#[derive(Serialize)]
struct PolicyDoc {
    headroom: f64,
    min_coverage: f64,
    require_limit: bool,
    fail_on_restart: bool,
    max_p95_ms: Option<f64>,
    max_error_rate: Option<f64>,
    vpa_tolerance: Option<f64>,
}

#[derive(Serialize)]
struct Vpa<'a> {
    state: &'static str,
    name: Option<&'a str>,
    low_confidence: bool,
    reason: Option<&'a str>,
    containers: Vec<VpaContainer<'a>>,
}

#[derive(Serialize)]
struct VpaContainer<'a> {
    container: &'a str,
    target_bytes: Option<u64>,
    lower_bytes: Option<u64>,
    upper_bytes: Option<u64>,
    uncapped_target_bytes: Option<u64>,
}

impl<'a> Vpa<'a> {
    fn from_view(v: &'a VpaView) -> Vpa<'a> {
        Vpa {
            state: v.state.id(),
            name: v.name.as_deref(),
            low_confidence: v.low_confidence,
            reason: v.reason.as_deref(),
            containers: v
                .containers
                .iter()
                .map(|c| VpaContainer {
                    container: &c.container,
                    target_bytes: c.target,
                    lower_bytes: c.lower,
                    upper_bytes: c.upper,
                    uncapped_target_bytes: c.uncapped_target,
                })
                .collect(),
        }
    }
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A finite number, else `null`.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Latency is unknown (not zero) when no request was made.
fn latency(requests: u64, ms: f64) -> Option<f64> {
    if requests == 0 {
        None
    } else {
        finite(ms)
    }
}

/// Integral values (bytes, exit codes) as JSON integers, others as floats, non-finite as null.
fn number(v: Option<f64>) -> Option<serde_json::Number> {
    let v = v?;
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        Some(serde_json::Number::from(v as i64))
    } else {
        serde_json::Number::from_f64(v)
    }
}

impl<'a> Document<'a> {
    fn from_view(view: &'a ReportView) -> Document<'a> {
        let load = &view.load;
        Document {
            schema: SCHEMA_ID,
            verdict: view.outcome,
            exit_code: view.exit_code,
            scenario: &view.scenario,
            workload: &view.workload,
            started_at: time(view.started_at),
            ended_at: time(view.ended_at),
            ended_early: view.ended_early.as_deref(),
            stages: view
                .stages
                .iter()
                .map(|s| Stage {
                    index: s.index,
                    kind: s.kind,
                    from_users: s.from_users,
                    to_users: s.to_users,
                    start: time(s.start),
                    end: time(s.end),
                    containers: s
                        .containers
                        .iter()
                        .map(|c| StageContainer {
                            container: &c.container,
                            peak_bytes: c.peak,
                            median_bytes: c.median,
                            p95_bytes: c.p95,
                            samples: c.samples,
                        })
                        .collect(),
                    requests: s.load.as_ref().map(|l| l.requests),
                    failures: s.load.as_ref().map(|l| l.failures),
                    rps: s.load.as_ref().and_then(|l| finite(l.rps)),
                    p95_ms: s.load.as_ref().and_then(|l| latency(l.requests, l.p95_ms)),
                })
                .collect(),
            containers: view
                .containers
                .iter()
                .map(|c| Container {
                    container: &c.container,
                    limit_bytes: c.limit,
                    request_bytes: c.request,
                    allowed_peak_bytes: c.allowed_peak,
                    peak_bytes: c.peak,
                    peak_pod: c.peak_pod.as_deref(),
                    peak_at: c.peak_at.map(time),
                    peak_source: c.peak_source,
                    peak_upper_bytes: c.peak_upper,
                    samples: c.samples,
                    resolution_seconds: c.resolution_seconds,
                    pods: &c.pods,
                    results: c.results.iter().map(|(r, s)| (r.id(), *s)).collect(),
                    vpa_target_bytes: c.vpa_target,
                    suggestion: suggestion(c),
                })
                .collect(),
            findings: view
                .findings
                .iter()
                .map(|f| Finding {
                    rule: f.rule.id(),
                    severity: f.severity,
                    container: f.container.as_deref(),
                    pod: f.pod.as_deref(),
                    message: &f.message,
                    observed: number(f.observed),
                    threshold: number(f.threshold),
                    at: f.at.map(time),
                })
                .collect(),
            load: Load {
                driver: &load.driver,
                latency_measure: &load.latency_measure,
                requests: load.requests,
                failures: load.failures,
                error_rate: (load.requests > 0).then(|| load.error_rate()),
                rps: finite(load.rps),
                p50_ms: latency(load.requests, load.p50_ms),
                p95_ms: latency(load.requests, load.p95_ms),
                p99_ms: latency(load.requests, load.p99_ms),
                max_ms: latency(load.requests, load.max_ms),
                per_request: load
                    .per_request
                    .iter()
                    .map(|r| PerRequest {
                        name: &r.name,
                        requests: r.requests,
                        failures: r.failures,
                        p50_ms: latency(r.requests, r.p50_ms),
                        p95_ms: latency(r.requests, r.p95_ms),
                        p99_ms: latency(r.requests, r.p99_ms),
                        max_ms: latency(r.requests, r.max_ms),
                    })
                    .collect(),
                status_codes: load
                    .status_codes
                    .iter()
                    .map(|(code, n)| (code.to_string(), *n))
                    .collect(),
            },
            memory: Memory {
                source: &view.memory.source,
                interval_seconds: view.memory.interval.as_secs_f64(),
                coverage: (view.memory.ticks > 0).then_some(view.memory.coverage),
                ticks: view.memory.ticks,
                ticks_with_data: view.memory.ticks_with_data,
                limit_enforced: view.memory.limit_enforced,
                notes: &view.memory.notes,
                pods: pod_coverage(&view.memory.pods),
            },
            policy: PolicyDoc {
                headroom: view.policy.headroom,
                min_coverage: view.policy.min_coverage,
                require_limit: view.policy.require_limit,
                fail_on_restart: view.policy.fail_on_restart,
                max_p95_ms: view.policy.max_p95.map(|d| d.as_secs_f64() * 1000.0),
                max_error_rate: view.policy.max_error_rate,
                vpa_tolerance: view.policy.vpa.map(|v| v.tolerance).and_then(finite),
            },
            vpa: view.vpa.as_ref().map(Vpa::from_view),
            notes: &view.notes,
            pods_gone: view
                .pods_gone
                .iter()
                .map(|g| PodGone {
                    pod: &g.pod,
                    at: time(g.at),
                    reason: g.reason.as_deref(),
                    replaced_by: g.replaced_by.as_deref(),
                    samples: g.samples,
                    last_sample_at: g.last_sample.map(|(at, _)| time(at)),
                    last_sample_bytes: g.last_sample.map(|(_, b)| b),
                    peak_bytes: g.peak_bytes,
                    replacement_samples: g.replacement_samples,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;

//! `report.json`, schema `oomgate.report/v1`: the machine-readable report CI systems, dashboards
//! and `--baseline` read. The shape is defined by serde structs dedicated to it (not by the domain
//! types, so a model change cannot silently change the document) and checked against
//! `schema/report.schema.json` by the tests. Fields may be added; none may change meaning.
//! Unknown numbers are `null`; timestamps are RFC 3339 UTC with milliseconds.

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
    stages: Vec<Stage>,
    containers: Vec<Container<'a>>,
    findings: Vec<Finding<'a>>,
    load: Load<'a>,
    memory: Memory<'a>,
    policy: PolicyDoc,
    vpa: Option<Vpa<'a>>,
    notes: &'a [String],
}

#[derive(Serialize)]
struct Stage {
    index: usize,
    kind: StageKind,
    from_users: u32,
    to_users: u32,
    start: String,
    end: String,
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
    samples: usize,
    resolution_seconds: f64,
    pods: &'a [String],
    results: BTreeMap<&'static str, Severity>,
    vpa_target_bytes: Option<u64>,
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
                    samples: c.samples,
                    resolution_seconds: c.resolution_seconds,
                    pods: &c.pods,
                    results: c.results.iter().map(|(r, s)| (r.id(), *s)).collect(),
                    vpa_target_bytes: c.vpa_target,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::super::tests::{recommendation, vpa_policy};
    use super::*;
    use crate::judge::evaluate;
    use crate::judge::fixtures::*;
    use crate::model::{Policy, RestartReason, Run, VpaStatus};

    const SCHEMA: &str = include_str!("../../schema/report.schema.json");

    fn validator() -> jsonschema::Validator {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the schema is valid")
    }

    fn errors(doc: &Value) -> Vec<String> {
        validator()
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect()
    }

    fn render(run: &Run, policy: &Policy) -> Value {
        let verdict = evaluate(policy, run);
        let view = ReportView::build(run, &verdict, policy);
        let mut bytes = Vec::new();
        JsonReporter.render(&view, &mut bytes).unwrap();
        assert!(bytes.ends_with(b"}\n"));
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A failing run with every optional part present: two pods, a kernel peak, an OOM kill, a
    /// container without limit, thresholds, notes.
    fn realistic() -> (Run, Policy) {
        let mut run = healthy_run();
        spike(&mut run.containers[0], t(12, 4, 30), 912_680_550);
        run.containers[2].kernel_peak_usage = Some((700 * MIB, t(12, 5, 0)));
        run.containers[2].min_inactive_file = Some(12 * MIB);
        run.containers
            .push(series("web-7d9f-x2k4p", "istio-proxy", None, 60 * MIB));
        run.restarts = vec![restart(
            "web-7d9f-a1b2c",
            "app",
            t(12, 5, 40),
            RestartReason::OomKilled,
        )];
        run.memory.notes = vec!["metrics-server repeats a sample until the next scrape".into()];
        run.notes = vec!["pod web-7d9f-a1b2c has a 768 MiB limit; the template says 1 GiB".into()];
        let policy = Policy {
            max_p95: Some(Duration::from_millis(500)),
            max_error_rate: Some(0.01),
            ..Policy::default()
        };
        (run, policy)
    }

    #[test]
    fn a_realistic_report_matches_the_schema() {
        let (run, policy) = realistic();
        let doc = render(&run, &policy);
        assert_eq!(errors(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["schema"], "oomgate.report/v1");
        assert_eq!(doc["verdict"], "fail");
        assert_eq!(doc["exit_code"], 1);
        assert_eq!(doc["started_at"], "2025-03-14T12:00:00.000Z");
        assert_eq!(doc["stages"][3]["kind"], "hold");
        assert_eq!(doc["stages"][0]["to_users"], 100);
        let app = &doc["containers"][0];
        assert_eq!(app["container"], "app");
        assert_eq!(app["limit_bytes"], 1_073_741_824u64);
        assert_eq!(app["allowed_peak_bytes"], 858_993_459u64);
        assert_eq!(app["peak_bytes"], 912_680_550u64);
        assert_eq!(app["peak_pod"], "web-7d9f-a1b2c");
        assert_eq!(app["peak_at"], "2025-03-14T12:04:30.000Z");
        assert_eq!(app["peak_source"], "sample");
        assert_eq!(app["results"]["headroom"], "fail");
        assert_eq!(app["results"]["oom-killed"], "fail");
        assert_eq!(app["resolution_seconds"], 5.0);
        let proxy = &doc["containers"][2];
        assert_eq!(proxy["limit_bytes"], Value::Null);
        assert_eq!(proxy["allowed_peak_bytes"], Value::Null);
        let first = &doc["findings"][0];
        assert_eq!(first["severity"], "fail");
        assert_eq!(first["observed"], json!(912_680_550u64));
        assert_eq!(first["threshold"], json!(858_993_459u64));
        assert_eq!(doc["load"]["status_codes"]["200"], 11_997);
        assert_eq!(doc["load"]["latency_measure"], "time to first byte");
        assert_eq!(doc["memory"]["coverage"], 1.0);
        assert_eq!(doc["policy"]["max_p95_ms"], 500.0);
        assert_eq!(doc["ended_early"], Value::Null);
        assert_eq!(doc["workload"], "deployment/web in staging");
        assert_eq!(doc["notes"][0], json!(run.notes[0]));
        assert_eq!(doc["vpa"], Value::Null);
        assert_eq!(app["vpa_target_bytes"], Value::Null);
        assert_eq!(doc["policy"]["vpa_tolerance"], Value::Null);
    }

    /// The realistic run compared with a VPA recommending 512 MiB for `app`.
    fn with_vpa(status: VpaStatus) -> (Run, Policy) {
        let (mut run, policy) = realistic();
        run.vpa = Some(status);
        (
            run,
            Policy {
                vpa: vpa_policy().vpa,
                ..policy
            },
        )
    }

    #[test]
    fn a_vpa_recommendation_matches_the_schema() {
        let (run, policy) = with_vpa(recommendation("web", true));
        let doc = render(&run, &policy);
        assert_eq!(errors(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(
            doc["vpa"],
            json!({
                "state": "recommendation",
                "name": "web",
                "low_confidence": true,
                "reason": null,
                "containers": [{
                    "container": "app",
                    "target_bytes": 536_870_912u64,
                    "lower_bytes": 268_435_456u64,
                    "upper_bytes": 1_073_741_824u64,
                    "uncapped_target_bytes": 629_145_600u64
                }]
            })
        );
        assert_eq!(doc["containers"][0]["vpa_target_bytes"], 536_870_912u64);
        assert_eq!(doc["containers"][1]["vpa_target_bytes"], Value::Null);
        assert_eq!(doc["policy"]["vpa_tolerance"], 0.2);
        // 870 MiB is 70 % above the target, but a low-confidence VPA only warns.
        assert_eq!(doc["containers"][0]["results"]["vpa-peak"], "warn");
        assert_eq!(doc["containers"][0]["results"]["vpa-request"], "pass");
        let rules: Vec<&str> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        for rule in ["vpa-peak", "vpa-request", "vpa-low-confidence"] {
            assert!(rules.contains(&rule), "{rule} in {rules:?}");
        }
    }

    #[test]
    fn a_vpa_without_recommendation_matches_the_schema() {
        let (run, policy) = with_vpa(VpaStatus::Unavailable {
            reason: "no VerticalPodAutoscaler targets deployment/web".into(),
        });
        let doc = render(&run, &policy);
        assert_eq!(errors(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(
            doc["vpa"],
            json!({
                "state": "unavailable",
                "name": null,
                "low_confidence": false,
                "reason": "no VerticalPodAutoscaler targets deployment/web",
                "containers": []
            })
        );
        assert!(doc["containers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["vpa_target_bytes"].is_null()));
        assert_eq!(
            doc["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["rule"] == "vpa-peak")
                .count(),
            1
        );

        let (run, policy) = with_vpa(VpaStatus::NoRecommendation { name: "web".into() });
        let doc = render(&run, &policy);
        assert_eq!(errors(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["vpa"]["state"], "no-recommendation");
        assert_eq!(doc["vpa"]["name"], "web");
        assert_eq!(doc["vpa"]["reason"], Value::Null);
        assert_eq!(doc["vpa"]["containers"], json!([]));
    }

    #[test]
    fn no_vpa_without_policy_vpa() {
        let (mut run, policy) = realistic();
        run.vpa = Some(recommendation("web", false));
        let doc = render(&run, &policy);
        assert_eq!(errors(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["vpa"], Value::Null);
        assert_eq!(doc["containers"][0]["vpa_target_bytes"], Value::Null);
        assert_eq!(doc["policy"]["vpa_tolerance"], Value::Null);
    }

    #[test]
    fn the_schema_rejects_vpa_drift() {
        let (run, policy) = with_vpa(recommendation("web", false));
        let good = render(&run, &policy);
        assert_eq!(errors(&good), Vec::<String>::new(), "{good:#}");

        let mut state = good.clone();
        state["vpa"]["state"] = json!("recommended");
        assert!(!errors(&state).is_empty());

        let mut nameless = good.clone();
        nameless["vpa"]["name"] = json!(null);
        assert!(!errors(&nameless).is_empty());

        let mut extra = good.clone();
        extra["vpa"]["containers"][0]["target_mb"] = json!(512);
        assert!(!errors(&extra).is_empty());

        let mut missing = good.clone();
        missing["vpa"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("uncapped_target_bytes");
        assert!(!errors(&missing).is_empty());

        let mut negative = good.clone();
        negative["containers"][0]["vpa_target_bytes"] = json!(-1);
        assert!(!errors(&negative).is_empty());

        let (run, policy) = with_vpa(VpaStatus::Unavailable {
            reason: "the CRD is not installed".into(),
        });
        let unavailable = render(&run, &policy);
        let mut no_reason = unavailable.clone();
        no_reason["vpa"]["reason"] = json!(null);
        assert!(!errors(&no_reason).is_empty());
        let mut with_containers = unavailable;
        with_containers["vpa"]["containers"] = good["vpa"]["containers"].clone();
        assert!(!errors(&with_containers).is_empty());
    }

    #[test]
    fn a_run_without_any_data_still_matches_the_schema_with_nulls() {
        let mut run = healthy_run();
        for c in &mut run.containers {
            c.samples.clear();
        }
        run.memory.ticks = 0;
        run.memory.ticks_with_data = 0;
        run.load = crate::model::LoadStats::default();
        run.ended_early = Some("the target never became ready".into());
        let doc = render(&run, &Policy::default());
        assert_eq!(errors(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["verdict"], "inconclusive");
        assert_eq!(doc["exit_code"], 3);
        assert_eq!(doc["containers"][0]["peak_bytes"], Value::Null);
        assert_eq!(doc["containers"][0]["peak_at"], Value::Null);
        assert_eq!(doc["load"]["p95_ms"], Value::Null);
        assert_eq!(doc["load"]["error_rate"], Value::Null);
        assert_eq!(doc["memory"]["coverage"], Value::Null);
    }

    #[test]
    fn the_schema_rejects_drift() {
        let (run, policy) = realistic();
        let good = render(&run, &policy);

        let mut maybe = good.clone();
        maybe["verdict"] = json!("maybe");
        assert!(!errors(&maybe).is_empty());

        let mut extra = good.clone();
        extra["containers"][0]["peak_mb"] = json!(870);
        assert!(!errors(&extra).is_empty());

        let mut rule = good.clone();
        rule["findings"][0]["rule"] = json!("headroom-ish");
        assert!(!errors(&rule).is_empty());

        let mut seconds = good.clone();
        seconds["started_at"] = json!("2025-03-14T12:00:00Z");
        assert!(!errors(&seconds).is_empty());

        let mut missing = good;
        missing["load"].as_object_mut().unwrap().remove("p95_ms");
        assert!(!errors(&missing).is_empty());
    }

    #[test]
    fn keeps_the_design_field_names() {
        let (run, policy) = realistic();
        let doc = render(&run, &policy);
        for key in [
            "schema",
            "verdict",
            "exit_code",
            "scenario",
            "started_at",
            "ended_at",
            "stages",
            "containers",
            "findings",
            "load",
            "vpa",
        ] {
            assert!(doc.get(key).is_some(), "{key}");
        }
        for key in [
            "container",
            "limit_bytes",
            "request_bytes",
            "peak_bytes",
            "peak_pod",
            "peak_at",
            "samples",
            "resolution_seconds",
        ] {
            assert!(doc["containers"][0].get(key).is_some(), "{key}");
        }
        for key in [
            "rule",
            "severity",
            "container",
            "message",
            "observed",
            "threshold",
        ] {
            assert!(doc["findings"][0].get(key).is_some(), "{key}");
        }
        for key in [
            "driver", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms",
        ] {
            assert!(doc["load"].get(key).is_some(), "{key}");
        }
        let (run, policy) = with_vpa(recommendation("web", false));
        let doc = render(&run, &policy);
        for key in ["name", "containers"] {
            assert!(doc["vpa"].get(key).is_some(), "{key}");
        }
        for key in ["container", "target_bytes", "lower_bytes", "upper_bytes"] {
            assert!(doc["vpa"]["containers"][0].get(key).is_some(), "{key}");
        }
    }
}

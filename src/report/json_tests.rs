//! Tests of `report.json`: real reports validated against `schema/report.schema.json`, the
//! schema rejecting drift, nulls for unknowns, and the field names the design fixes.

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
    run.containers[2].max_inactive_file = Some(12 * MIB);
    // Within the sidecar's 102.4 MiB allowed: an upper bound that still passes.
    run.containers[1].kernel_peak_usage = Some((100 * MIB, t(12, 5, 0)));
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
    // A pod's kernel peak usage below the group's sampled peak bounds nothing.
    assert_eq!(app["peak_upper_bytes"], Value::Null);
    // The sidecar's kernel peak usage (page cache included) is its peak's upper bound.
    let sidecar = &doc["containers"][1];
    assert_eq!(sidecar["container"], "sidecar");
    assert_eq!(sidecar["peak_source"], "sample");
    assert_eq!(sidecar["peak_upper_bytes"], 100 * MIB);
    assert_eq!(sidecar["results"]["headroom"], "pass");
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

#[test]
fn per_pod_coverage_is_data_that_matches_the_schema() {
    use crate::model::{CoverageGap, GapCause, SeriesCoverage};
    let mut run = healthy_run();
    for s in &mut run.containers {
        s.coverage = Some(SeriesCoverage {
            since: t(12, 0, 0),
            ticks: 72,
            covered: 72,
            gaps: Vec::new(),
            restamped: 0,
        });
    }
    run.containers[2].coverage = Some(SeriesCoverage {
        since: t(12, 0, 0),
        ticks: 72,
        covered: 30,
        gaps: vec![CoverageGap {
            from: t(12, 2, 30),
            to: t(12, 5, 55),
            ticks: 42,
            cause: GapCause::Stuck {
                stamp: t(12, 2, 25),
            },
        }],
        restamped: 0,
    });
    let doc = render(&run, &Policy::default());
    assert!(errors(&doc).is_empty(), "{:#?}", errors(&doc));
    assert_eq!(doc["verdict"], "inconclusive");
    let pods = doc["memory"]["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 4);
    let stuck = &pods[2];
    assert_eq!(stuck["pod"], "web-7d9f-x2k4p");
    assert_eq!(stuck["container"], "app");
    assert_eq!(stuck["covered"], 30);
    assert_eq!(stuck["below_min_coverage"], true);
    assert_eq!(stuck["limit_bytes"], GIB);
    assert_eq!(stuck["gaps"][0]["cause"], "stuck");
    assert_eq!(stuck["gaps"][0]["stamp"], "2025-03-14T12:02:25.000Z");
    assert!(stuck["reason"]
        .as_str()
        .unwrap()
        .starts_with("timestamp stuck since 12:02:25"));
    assert_eq!(pods[0]["reason"], Value::Null);
    // Without per-pod counts the key is left out.
    let doc = render(&healthy_run(), &Policy::default());
    assert!(doc["memory"].get("pods").is_none());
}

//! Reading baselines: a report as oomgate writes it, a hand-written one in the documented shape,
//! and everything that is not a usable report; then the delta table.

use std::path::Path;

use super::*;
use crate::judge::fixtures::*;

/// The documented `report.json` shape, with fields this reader does not know.
const REPORT: &str = r#"{
  "schema": "oomgate.report/v1", "verdict": "fail", "exit_code": 1,
  "scenario": "checkout-api", "workload": "deployment/web in staging",
  "started_at": "2025-03-13T12:00:00.000Z", "ended_at": "2025-03-13T12:14:00.000Z",
  "stages": [ { "index": 0, "kind": "ramp", "from_users": 0, "to_users": 100,
                "start": "2025-03-13T12:00:00.000Z", "end": "2025-03-13T12:02:00.000Z" } ],
  "containers": [
    { "container": "app", "limit_bytes": 1073741824, "request_bytes": 536870912,
      "peak_bytes": 912680550, "peak_pod": "web-7d9f-x2k4p", "peak_at": "2025-03-13T12:04:31.000Z",
      "samples": 120, "resolution_seconds": 1.0, "something_new": [1, 2] },
    { "container": "istio-proxy", "limit_bytes": null, "peak_bytes": null, "samples": 0 }
  ],
  "findings": [ { "rule": "headroom", "severity": "fail", "container": "app", "message": "…",
                  "observed": 912680550, "threshold": 858993459 } ],
  "load": { "driver": "goose", "requests": 12000, "failures": 3, "rps": 33.3,
            "p50_ms": 18.0, "p95_ms": 120.5, "p99_ms": 340.0 },
  "vpa": null
}"#;

fn parse(text: &str) -> Result<Baseline, BaselineError> {
    parse_baseline(Path::new("previous/report.json"), text)
}

fn err(text: &str) -> String {
    parse(text).expect_err("should be rejected").to_string()
}

#[test]
fn reads_a_report_in_the_documented_shape() {
    let b = parse(REPORT).unwrap();
    assert_eq!(b.scenario, "checkout-api");
    assert_eq!(b.verdict.as_deref(), Some("fail"));
    assert_eq!(
        b.started_at.unwrap().to_rfc3339(),
        "2025-03-13T12:00:00+00:00"
    );
    assert_eq!(b.peak("app"), Some(912_680_550));
    assert_eq!(b.peak("istio-proxy"), None);
    assert_eq!(b.containers[0].limit_bytes, Some(GIB));
    assert_eq!(b.driver.as_deref(), Some("goose"));
    assert_eq!(b.p95_ms, Some(120.5));
    assert_eq!(
        b.describe(),
        "the baseline (checkout-api, 2025-03-13 12:00 UTC)"
    );
}

#[test]
fn reads_the_report_oomgate_writes() {
    let run = healthy_run();
    let policy = crate::model::Policy::default();
    let verdict = crate::judge::evaluate(&policy, &run);
    let view = crate::report::ReportView::build(&run, &verdict, &policy);
    let text = serde_json::to_string(&crate::report::json::to_value(&view)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.json"), text).unwrap();
    // A file, or the directory a CI artifact was unpacked into.
    for path in [dir.path().join("report.json"), dir.path().to_path_buf()] {
        let b = read_baseline(&path).unwrap();
        assert_eq!(b.path, dir.path().join("report.json"));
        assert_eq!(b.scenario, "checkout-api");
        assert_eq!(b.started_at, Some(t(12, 0, 0)));
        assert_eq!(b.peak("app"), Some(610 * MIB));
        assert_eq!(b.peak("sidecar"), Some(40 * MIB));
        assert_eq!(b.p95_ms, Some(120.0));
    }
}

#[test]
fn a_missing_file_names_it() {
    let e = read_baseline(Path::new("/nonexistent/previous/report.json"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read the baseline report /nonexistent/previous/report.json: "),
        "{e}"
    );
}

#[test]
fn garbage_is_not_a_report() {
    assert_eq!(
        err("<html>502 Bad Gateway</html>"),
        "the baseline previous/report.json is not JSON (expected value at line 1 column 1): \
         --baseline takes the report.json an earlier oomgate run wrote (schema oomgate.report/v1)"
    );
    assert_eq!(
        err(r#"{"metrics": {"http_req_duration": {}}}"#),
        "the baseline previous/report.json is not an oomgate report (it has no \"schema\" \
         field): --baseline takes the report.json an earlier oomgate run wrote (schema \
         oomgate.report/v1)"
    );
    assert!(err("[1, 2]").contains("(the document is not a JSON object)"));
    assert!(
        err(r#"{"schema": "https://json-schema.org/draft/2020-12/schema"}"#)
            .contains("(its \"schema\" is \"https://json-schema.org/draft/2020-12/schema\")")
    );
    assert_eq!(
        err(r#"{"schema": "oomgate.report/v2", "scenario": "x"}"#),
        "the baseline previous/report.json has schema \"oomgate.report/v2\" but this oomgate \
         reads \"oomgate.report/v1\": compare with a report written by the same major version"
    );
}

#[test]
fn a_malformed_report_says_which_field() {
    let e = err(&REPORT.replace("\"peak_bytes\": 912680550", "\"peak_bytes\": \"870Mi\""));
    assert!(
        e.starts_with(
            "the baseline previous/report.json is not a valid oomgate report: \
             containers[0].peak_bytes: invalid type: string \"870Mi\""
        ),
        "{e}"
    );
    let e = err(r#"{"schema": "oomgate.report/v1"}"#);
    assert!(e.contains("missing field `scenario`"), "{e}");
    let e = err(&REPORT.replace(
        "2025-03-13T12:00:00.000Z\", \"ended_at",
        "yesterday\", \"ended_at",
    ));
    assert!(
        e.contains("started_at: \"yesterday\" is not an RFC 3339 time"),
        "{e}"
    );
}

#[test]
fn deltas_cover_both_sides_and_the_latency() {
    let mut b = parse(REPORT).unwrap();
    b.containers[0].peak_bytes = Some(500 * MIB);
    let run = healthy_run(); // app 610 MiB, sidecar 40 MiB, p95 120 ms
    let d = deltas(&run, &b);
    let rows: Vec<(String, Option<f64>, Option<f64>)> = d
        .iter()
        .map(|d| (d.label(), d.baseline, d.current))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "app peak".to_string(),
                Some((500 * MIB) as f64),
                Some((610 * MIB) as f64)
            ),
            ("sidecar peak".to_string(), None, Some((40 * MIB) as f64)),
            ("istio-proxy peak".to_string(), None, None),
            ("p95 latency".to_string(), Some(120.5), Some(120.0)),
        ]
    );
    assert!((d[0].change().unwrap() - 0.22).abs() < 1e-9);
    assert_eq!(d[1].change(), None);
    assert!(d[3].change().unwrap() < 0.0);
}

//! End to end for the analysis rules with the real demo service in a real memory cgroup: slow
//! growth through a hold is a `leak` although the peak stays far under the headroom, and a
//! baseline report 30 % lower makes the same run a `regression`.

use std::time::Duration;

use crate::support::{findings, require_cgroups, text, Case};

fn scenario(service_flags: &str, stages: &str, policy: &str) -> String {
    format!(
        r#"name: analysis
workload:
  local:
    command: ["{{BIN}}", demo-service, --listen, "127.0.0.1:{{PORT}}", {service_flags}]
    ready_url: http://127.0.0.1:{{PORT}}/healthz
    ready_timeout: 10s
    limit: 512Mi
    container: app
load:
  stages: {stages}
  requests:
    - {{ name: work, path: /api/work, expect_status: 200 }}
  think_time: 10ms..30ms
memory: {{ interval: 250ms }}
policy:
{policy}
"#
    )
}

#[test]
fn slow_growth_through_a_hold_is_a_leak_though_the_peak_is_far_under_the_headroom() {
    if !require_cgroups() {
        return;
    }
    // 1 MiB/s from t=3 s: about 20 MiB more by the end, far below the 409.6 MiB allowed.
    let case = Case::new(&scenario(
        "--baseline, 24Mi, --grow-per-sec, 1Mi, --grow-after, 3s",
        "[{ duration: 2s, users: 3 }, { duration: 16s, users: 3 }]",
        "  headroom: 20%\n  leak: { min_hold: 10s, horizon: 1h }",
    ));
    let o = case.run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = case.report();
    let leak = findings(&r, "leak", "fail");
    assert_eq!(leak.len(), 1, "{r:#}");
    let msg = leak[0]["message"].as_str().unwrap();
    assert!(msg.contains("MiB/min"), "reports the rate: {msg}");
    let rate = leak[0]["observed"].as_f64().unwrap() / (1024.0 * 1024.0);
    assert!(
        (40.0..=80.0).contains(&rate),
        "about 60 MiB/min measured, got {rate:.1}"
    );
    assert!(
        !findings(&r, "headroom", "pass").is_empty(),
        "the peak itself is fine: {r:#}"
    );
}

#[test]
fn a_steady_service_is_not_a_leak() {
    if !require_cgroups() {
        return;
    }
    let case = Case::new(&scenario(
        "--baseline, 24Mi",
        "[{ duration: 2s, users: 3 }, { duration: 14s, users: 3 }]",
        "  headroom: 20%\n  leak: { min_hold: 10s }",
    ));
    let o = case.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = case.report();
    assert!(
        findings(&r, "leak", "fail").is_empty() && findings(&r, "leak", "warn").is_empty(),
        "{r:#}"
    );
}

#[test]
fn a_baseline_thirty_percent_lower_is_a_regression() {
    if !require_cgroups() {
        return;
    }
    let case = Case::new(&scenario(
        "--baseline, 48Mi",
        "[{ duration: 1s, users: 2 }, { duration: 3s, users: 2 }]",
        "  headroom: 20%\n  regression: { max_growth: 10% }",
    ));
    let o = case.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The target branch's report, 30 % lower.
    let mut base = case.report();
    for c in base["containers"].as_array_mut().unwrap() {
        let peak = c["peak_bytes"].as_u64().unwrap();
        c["peak_bytes"] = serde_json::json!((peak as f64 * 0.7) as u64);
    }
    let base_path = case.dir.path().join("baseline.json");
    std::fs::write(&base_path, serde_json::to_string_pretty(&base).unwrap()).unwrap();
    let o = case.run(&["--baseline", base_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = case.report();
    let f = findings(&r, "regression", "fail");
    assert_eq!(f.len(), 1, "{r:#}");
    assert!(f[0]["message"].as_str().unwrap().contains('%'), "{r:#}");
    // A baseline that is not a report: exit 2 naming the file, before any load.
    let bad = case.dir.path().join("bad.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let started = std::time::Instant::now();
    let o = case.run(&["--baseline", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.json"),
        "{}",
        text(&o)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "rejected before the load"
    );
}

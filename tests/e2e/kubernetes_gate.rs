//! End to end on the simulated staging cluster: the real `oomgate` binary gates deployments whose
//! pods are real demo-service processes in real memory cgroups, with real Goose load through the
//! rig's Service proxy; memory from the metrics API and, in the last tests, from a real
//! Prometheus scraping the rig's cAdvisor endpoint.

use crate::support;

use std::process::Command;
use std::time::Duration;

use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, MetricsMode, PodTemplate, SimCluster, MI,
};
use crate::support::prometheus::{prometheus_for, require_prometheus};
use crate::support::{findings, run_bounded, text};

const STAGES: &str = "[{ duration: 2s, users: 4 }, { duration: 6s, users: 4 }]";

/// A scenario for deployment `web` in the rig's namespace.
fn scenario(
    cluster: &SimCluster,
    memory: &str,
    policy: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"name: k8s-test
target: {{ url: "{url}" }}
load:
  stages: {STAGES}
  requests:
    - {{ name: work, path: /api/work, expect_status: 200 }}
  think_time: 10ms..30ms
workload:
  kubernetes:
    namespace: {ns}
    deployment: web
    containers: [app]
memory:
{memory}
policy:
{policy}
"#,
        url = cluster.service_url("web"),
        ns = cluster.namespace(),
    );
    let path = dir.path().join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const METRICS_API: &str = "  source: metrics-api\n  interval: 1s";

fn run(
    cluster: &SimCluster,
    dir: &tempfile::TempDir,
    scenario: &std::path::Path,
) -> (std::process::Output, serde_json::Value) {
    let out = dir.path().join("report");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--kubeconfig",
            cluster.kubeconfig_path().to_str().unwrap(),
        ]),
        Duration::from_secs(120),
    );
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, report)
}

/// Deployment `web` of demo services (24 MiB baseline); replica slot 0 gets `slot0` as extra
/// process env (e.g. to grow). Waits until the pods serve and metrics have been scraped.
fn web(cluster: &SimCluster, replicas: u32, limit: u64, request: u64, slot0: &[(&str, &str)]) {
    let tpl = PodTemplate::app(
        ContainerTemplate::app(limit)
            .request(request)
            .env("DEMO_BASELINE", "24Mi"),
    );
    let extra: Vec<(String, String)> = slot0
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    cluster.add_deployment_with("web", replicas, tpl, move |slot| {
        if slot == 0 {
            extra.clone()
        } else {
            vec![]
        }
    });
    assert!(
        cluster.wait_ready("web", Duration::from_secs(20)),
        "web never became ready"
    );
    // metrics-server lists a pod only after its first scrapes.
    std::thread::sleep(Duration::from_millis(2500));
}

/// Slot 0 grows 12 MiB/s from 24 MiB up to 116 MiB: past the 102.4 MiB allowed by 128Mi.
const GROWER: &[(&str, &str)] = &[("DEMO_GROW_PER_SEC", "12Mi"), ("DEMO_MAX_BYTES", "116Mi")];

fn vpa(target: &str, upper: &str, low_confidence: bool) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                  "updatePolicy": { "updateMode": "Off" } },
        "status": {
            "conditions": [
                { "type": "RecommendationProvided", "status": "True", "lastTransitionTime": "2026-11-20T10:00:00Z" },
                { "type": "LowConfidence", "status": if low_confidence { "True" } else { "False" }, "lastTransitionTime": "2026-11-20T10:00:00Z" }
            ],
            "recommendation": { "containerRecommendations": [ {
                "containerName": "app",
                "lowerBound": { "cpu": "10m", "memory": "20Mi" },
                "target": { "cpu": "11m", "memory": target },
                "uncappedTarget": { "cpu": "11m", "memory": target },
                "upperBound": { "cpu": "12m", "memory": upper }
            } ] }
        }
    })
}

#[test]
fn healthy_two_replica_deployment_passes_and_check_reports_it() {
    if !require_cgroups("healthy_two_replica_deployment_passes") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 2, 256 * MI, 64 * MI, &[]);
    let (dir, sc) = scenario(&cluster, METRICS_API, "  headroom: 20%");
    let check = run_bounded(
        Command::new(support::oomgate()).args([
            "check",
            sc.to_str().unwrap(),
            "--kubeconfig",
            cluster.kubeconfig_path().to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let out = String::from_utf8_lossy(&check.stdout);
    for pod in cluster.pod_names("web") {
        assert!(out.contains(&pod), "check lists pod {pod}: {out}");
    }
    assert!(
        out.contains("limit 256 MiB") && out.contains("request 64 MiB"),
        "{out}"
    );
    assert!(out.contains("live sample"), "{out}");
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["verdict"], "pass");
    let c = &r["containers"][0];
    assert_eq!(c["container"], "app");
    assert_eq!(c["limit_bytes"], 256 * MI);
    assert!(c["peak_bytes"].as_u64().unwrap() > 20 * MI, "{c}");
    assert!(
        r["load"]["requests"].as_u64().unwrap() > 100,
        "{}",
        r["load"]
    );
    assert!(
        r["memory"]["coverage"].as_f64().unwrap() >= 0.9,
        "{}",
        r["memory"]
    );
}

#[test]
fn one_replica_growing_past_headroom_fails_naming_that_pod() {
    if !require_cgroups("one_replica_growing_past_headroom") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    // 128Mi limit → 102.4 MiB allowed; slot 0 grows 12 MiB/s from 24 MiB, capped below the limit.
    web(&cluster, 2, 128 * MI, 64 * MI, GROWER);
    let grower = cluster.pod_names("web")[0].clone();
    let (dir, sc) = scenario(&cluster, METRICS_API, "  headroom: 20%");
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = findings(&r, "headroom", "fail");
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0]["pod"], grower.as_str(), "{r:#}");
    assert!(f[0]["message"].as_str().unwrap().contains(&grower), "{r:#}");
}

#[test]
fn a_container_oom_killed_mid_run_fails_and_the_run_completes() {
    if !require_cgroups("a_container_oom_killed_mid_run") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    // Slot 0 grows 20 MiB/s in a 96Mi limit: the kernel kills it a few seconds in.
    web(
        &cluster,
        2,
        96 * MI,
        64 * MI,
        &[("DEMO_GROW_PER_SEC", "20Mi"), ("DEMO_GROW_AFTER", "3s")],
    );
    let victim = cluster.pod_names("web")[0].clone();
    let (dir, sc) = scenario(&cluster, METRICS_API, "  headroom: 20%");
    let started = std::time::Instant::now();
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "the run goes on after the kill"
    );
    let f = findings(&r, "oom-killed", "fail");
    assert!(!f.is_empty(), "{r:#}");
    assert_eq!(f[0]["pod"], victim.as_str(), "{r:#}");
    assert!(cluster.restarts(&victim) >= 1);
    assert!(
        r["ended_early"].is_null(),
        "other replicas still serve: the run completes: {r:#}"
    );
}

#[test]
fn request_far_below_the_vpa_target_fails_on_vpa_request() {
    if !require_cgroups("request_far_below_the_vpa_target") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 1, 1024 * MI, 256 * MI, &[]);
    cluster.set_vpa(vpa("512Mi", "1Gi", false));
    let (dir, sc) = scenario(
        &cluster,
        METRICS_API,
        "  vpa: { name: auto, tolerance: 20% }",
    );
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(findings(&r, "vpa-request", "fail").len(), 1, "{r:#}");
    assert_eq!(r["vpa"]["state"], "recommendation", "{r:#}");
    assert_eq!(r["vpa"]["containers"][0]["target_bytes"], 512 * MI);
}

#[test]
fn a_peak_far_above_the_vpa_upper_bound_fails_and_low_confidence_only_warns() {
    if !require_cgroups("a_peak_far_above_the_vpa_upper_bound") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 1, 512 * MI, 24 * MI, &[]);
    // Target 8 MiB, upper bound 10 MiB: the 24 MiB baseline is far above.
    cluster.set_vpa(vpa("8Mi", "10Mi", false));
    let (dir, sc) = scenario(
        &cluster,
        METRICS_API,
        "  vpa: { name: auto, tolerance: 20% }",
    );
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = findings(&r, "vpa-peak", "fail");
    assert_eq!(f.len(), 1, "{r:#}");
    assert!(
        f[0]["message"].as_str().unwrap().contains("upper bound"),
        "{r:#}"
    );
    // The same with LowConfidence: warnings only, the gate passes.
    cluster.set_vpa(vpa("8Mi", "10Mi", true));
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!findings(&r, "vpa-peak", "warn").is_empty(), "{r:#}");
    assert!(
        !findings(&r, "vpa-low-confidence", "warn").is_empty(),
        "{r:#}"
    );
}

#[test]
fn a_metrics_api_answering_503_is_inconclusive_never_a_pass() {
    if !require_cgroups("a_metrics_api_answering_503") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 1, 256 * MI, 64 * MI, &[]);
    cluster.set_metrics_mode(MetricsMode::Unavailable503);
    let (dir, sc) = scenario(&cluster, METRICS_API, "  headroom: 20%");
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(r["verdict"], "inconclusive");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("503") && err.contains("prometheus"),
        "says so and points to Prometheus: {err}"
    );
    // check exits 2 with the same pointer.
    let check = run_bounded(
        Command::new(support::oomgate()).args([
            "check",
            sc.to_str().unwrap(),
            "--kubeconfig",
            cluster.kubeconfig_path().to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
}

#[test]
fn the_same_verdicts_through_a_real_prometheus() {
    if !require_cgroups("the_same_verdicts_through_a_real_prometheus") || !require_prometheus() {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 2, 128 * MI, 64 * MI, GROWER);
    let (_prom, memory) = prometheus_for(&cluster, 2);
    let grower = cluster.pod_names("web")[0].clone();
    let (dir, sc) = scenario(&cluster, &memory, "  headroom: 20%");
    let (o, r) = run(&cluster, &dir, &sc);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(r["memory"]["source"], "prometheus");
    let f = findings(&r, "headroom", "fail");
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0]["pod"], grower.as_str(), "{r:#}");
    // Healthy replica only: pass.
    let healthy = SimCluster::start(ClusterConfig::default());
    web(&healthy, 2, 256 * MI, 64 * MI, &[]);
    let (_prom2, memory) = prometheus_for(&healthy, 2);

    let (dir2, sc2) = scenario(&healthy, &memory, "  headroom: 20%");
    let (o, r) = run(&healthy, &dir2, &sc2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["verdict"], "pass");
}

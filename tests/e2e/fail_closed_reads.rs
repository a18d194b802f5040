//! Fail closed when a read the policy depends on fails: the real `oomgate` binary on the
//! simulated staging cluster while its VerticalPodAutoscaler list answers 500, 503 or 429,
//! drops the connection before or in the middle of its answer, or hangs; `policy.vpa.name`
//! naming a VPA that does not exist (exit 2 at `check` and at `run`, before any load); a VPA
//! whose recommendation names none of the measured containers; and `check` with a pod that
//! has no live sample yet. Every fault has a control run without it on the same cluster.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, VpaFault, MI,
};
use crate::support::{findings, run_bounded, text};

/// A scenario for deployment `web` with `policy` (YAML body lines) and a short plan.
fn scenario(cluster: &SimCluster, dir: &Path, stages: &str, policy: &str) -> PathBuf {
    let text = format!(
        "name: fail-closed-reads\ntarget: {{ url: \"{url}\" }}\nload:\n  stages: {stages}\n  requests:\n    - {{ name: work, path: /api/work, expect_status: 200 }}\n  think_time: 10ms..30ms\nworkload:\n  kubernetes:\n    namespace: {ns}\n    deployment: web\n    containers: [app]\nmemory:\n  source: metrics-api\n  interval: 1s\npolicy:\n{policy}\n",
        url = cluster.service_url("web"),
        ns = cluster.namespace(),
    );
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const SHORT: &str = "[{ duration: 1s, users: 2 }, { duration: 4s, users: 2 }]";

/// Deployment `web` (24 MiB baseline, 256 MiB limit, 64 MiB request), scraped once.
fn web(cluster: &SimCluster, replicas: u32) {
    let tpl = PodTemplate::app(
        ContainerTemplate::app(256 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    );
    cluster.add_deployment("web", replicas, tpl);
    assert!(cluster.wait_ready("web", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(2500));
}

/// A confident VPA `web` targeting deployment `web`, recommending for `container`: target
/// 48 MiB (within 100% of both the demo's ~30 MiB peak and its 64 MiB request), upper bound 1 GiB.
fn vpa(container: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                  "updatePolicy": { "updateMode": "Off" } },
        "status": {
            "conditions": [
                { "type": "RecommendationProvided", "status": "True", "lastTransitionTime": "2026-11-20T10:00:00Z" },
                { "type": "LowConfidence", "status": "False", "lastTransitionTime": "2026-11-20T10:00:00Z" }
            ],
            "recommendation": { "containerRecommendations": [ {
                "containerName": container,
                "lowerBound": { "cpu": "10m", "memory": "20Mi" },
                "target": { "cpu": "11m", "memory": "48Mi" },
                "uncappedTarget": { "cpu": "11m", "memory": "48Mi" },
                "upperBound": { "cpu": "12m", "memory": "1Gi" }
            } ] }
        }
    })
}

/// `oomgate SUBCOMMAND SCENARIO [--out DIR] --kubeconfig …`, bounded.
fn oomgate(cluster: &SimCluster, sub: &str, sc: &Path, out: Option<&Path>) -> Output {
    let mut cmd = Command::new(support::oomgate());
    cmd.arg(sub).arg(sc);
    if let Some(out) = out {
        cmd.arg("--out").arg(out);
    }
    cmd.arg("--kubeconfig").arg(cluster.kubeconfig_path());
    run_bounded(&mut cmd, Duration::from_secs(90))
}

fn run(cluster: &SimCluster, dir: &Path, sc: &Path, tag: &str) -> (Output, serde_json::Value) {
    let out = dir.join(format!("report-{tag}"));
    let o = oomgate(cluster, "run", sc, Some(&out));
    let r = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, r)
}

/// The report validates against the repository's JSON Schema.
fn assert_schema(r: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(r)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json breaks the schema: {errors:?}"
    );
}

#[test]
fn a_failing_vpa_list_makes_the_vpa_rules_inconclusive_never_a_warning() {
    if !require_cgroups("a_failing_vpa_list") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 1);
    cluster.set_vpa(vpa("app"));
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        &cluster,
        dir.path(),
        SHORT,
        "  vpa: { name: auto, tolerance: 100% }",
    );

    // The control: the VPA is read and the comparison passes.
    let (o, r) = run(&cluster, dir.path(), &sc, "control");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["vpa"]["state"], "recommendation", "{r:#}");
    assert_eq!(findings(&r, "vpa-peak", "pass").len(), 1, "{r:#}");

    // Each fault: inconclusive (3), the VPA finding names why, the report says read-failed.
    let faults: [(VpaFault, &str, &[&str]); 6] = [
        (
            VpaFault::Status(500),
            "500",
            &["answered 500", "etcdserver"],
        ),
        (
            VpaFault::Status(503),
            "503",
            &["answered 503", "unable to handle"],
        ),
        (
            VpaFault::Status(429),
            "429",
            &["answered 429", "too many requests"],
        ),
        (VpaFault::DropConnection, "drop", &["closed the connection"]),
        (VpaFault::CutBody, "cut", &["closed the connection"]),
        (
            VpaFault::Hang(Duration::from_secs(30)),
            "hang",
            &["no answer within 10 s"],
        ),
    ];
    for (fault, tag, words) in faults {
        cluster.set_vpa_fault(fault);
        let started = Instant::now();
        let (o, r) = run(&cluster, dir.path(), &sc, tag);
        cluster.set_vpa_fault(VpaFault::None);
        eprintln!("{tag}: {:?} in {:?}", o.status.code(), started.elapsed());
        assert_eq!(o.status.code(), Some(3), "{tag}: {}", text(&o));
        assert_eq!(r["verdict"], "inconclusive", "{tag}: {r:#}");
        assert_eq!(r["vpa"]["state"], "read-failed", "{tag}: {r:#}");
        let f = findings(&r, "vpa-peak", "inconclusive");
        assert_eq!(f.len(), 1, "{tag}: {r:#}");
        let msg = f[0]["message"].as_str().unwrap();
        eprintln!("{tag}: {msg}");
        for w in words {
            assert!(
                msg.to_lowercase().contains(&w.to_lowercase()),
                "{tag}: {w:?} not in {msg}"
            );
        }
        assert!(
            msg.starts_with("the VPA rules could not be evaluated: "),
            "{tag}: {msg}"
        );
        // A cut connection is not a certificate problem, and no bare client-step wording.
        assert!(!msg.contains("certificate-authority"), "{tag}: {msg}");
        assert!(!msg.contains("SendRequest"), "{tag}: {msg}");
        assert!(findings(&r, "vpa-peak", "warn").is_empty(), "{tag}: {r:#}");
        assert_schema(&r);
    }

    // The same faults at `check`: exit 2 naming the failed read (no "ready to gate").
    cluster.set_vpa_fault(VpaFault::Status(503));
    let o = oomgate(&cluster, "check", &sc, None);
    cluster.set_vpa_fault(VpaFault::None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the VerticalPodAutoscaler could not be read") && err.contains("503"),
        "{}",
        text(&o)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("ready to gate"));
}

#[test]
fn a_vpa_name_that_does_not_exist_is_exit_2_at_check_and_at_run_before_any_load() {
    if !require_cgroups("a_vpa_name_that_does_not_exist") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 1);
    cluster.set_vpa(vpa("app"));
    let dir = tempfile::tempdir().unwrap();
    // A 30 s plan: a run that started its load could not end in 10 s.
    let long = "[{ duration: 1s, users: 2 }, { duration: 29s, users: 2 }]";
    let sc = scenario(
        &cluster,
        dir.path(),
        long,
        "  vpa: { name: web-vpa, tolerance: 100% }",
    );
    let o = oomgate(&cluster, "check", &sc, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let at = format!("{}:17:", sc.display());
    assert!(
        err.contains(&at)
            && err.contains("policy.vpa.name: no VerticalPodAutoscaler named `web-vpa` in namespace `staging` (found: web → Deployment/web)"),
        "file:line, the field, the name and what exists: {err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("ready to gate"));

    let out = dir.path().join("report-run");
    let started = Instant::now();
    let o = oomgate(&cluster, "run", &sc, Some(&out));
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        took < Duration::from_secs(10),
        "stopped before the load: {took:?}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("policy.vpa.name: no VerticalPodAutoscaler named `web-vpa`"),
        "{err}"
    );
    assert!(
        !out.join("report.json").exists(),
        "no verdict without a load"
    );

    // The control: the VPA's real name is read, check is ready to gate.
    let sc = scenario(
        &cluster,
        dir.path(),
        long,
        "  vpa: { name: web, tolerance: 100% }",
    );
    let o = oomgate(&cluster, "check", &sc, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ready to gate"));
}

#[test]
fn a_vpa_for_none_of_the_measured_containers_warns_naming_both_sets() {
    if !require_cgroups("a_vpa_for_none_of_the_measured_containers") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, 1);
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        &cluster,
        dir.path(),
        SHORT,
        "  vpa: { name: auto, tolerance: 100% }",
    );
    cluster.set_vpa(vpa("worker"));
    let (o, r) = run(&cluster, dir.path(), &sc, "other");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let warn = findings(&r, "vpa-peak", "warn");
    assert_eq!(warn.len(), 1, "{r:#}");
    let msg = warn[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("recommends for containers worker but the measured containers are app"),
        "{msg}"
    );
    assert!(findings(&r, "vpa-peak", "pass").is_empty(), "{r:#}");
    assert_schema(&r);
    // The control: a recommendation for `app` is compared, with no such warning.
    cluster.set_vpa(vpa("app"));
    let (o, r) = run(&cluster, dir.path(), &sc, "app");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(findings(&r, "vpa-peak", "warn").is_empty(), "{r:#}");
    assert_eq!(findings(&r, "vpa-peak", "pass").len(), 1, "{r:#}");
}

#[test]
fn check_is_not_ready_to_gate_while_a_pod_has_no_live_sample() {
    if !require_cgroups("check_is_not_ready_to_gate") {
        return;
    }
    // metrics-server scrapes every 20 s: a pod added between two scrapes has no sample yet.
    let cluster = SimCluster::start(ClusterConfig {
        metrics_resolution: Duration::from_secs(20),
        ..ClusterConfig::default()
    });
    let tpl = PodTemplate::app(
        ContainerTemplate::app(256 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    );
    cluster.add_deployment("web", 1, tpl);
    assert!(cluster.wait_ready("web", Duration::from_secs(20)));
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(&cluster, dir.path(), SHORT, "  headroom: 20%");
    // Wait for the first scrape (check passes: the control), then add a pod right after it.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let o = oomgate(&cluster, "check", &sc, None);
        if o.status.code() == Some(0) {
            assert!(String::from_utf8_lossy(&o.stdout).contains("ready to gate"));
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {}", text(&o));
        std::thread::sleep(Duration::from_millis(500));
    }
    cluster.scale("web", 2);
    let pods = cluster.pod_names("web");
    assert_eq!(pods.len(), 2, "{pods:?}");
    let o = oomgate(&cluster, "check", &sc, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!stdout.contains("ready to gate"), "{stdout}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has no live sample for") && err.contains("not ready to gate"),
        "{err}"
    );
    let missing: Vec<&String> = pods
        .iter()
        .filter(|p| err.contains(&format!("{p}/app")))
        .collect();
    assert_eq!(missing.len(), 1, "names the one new pod: {err}");
}

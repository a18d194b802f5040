//! Fail closed on coverage per pod and container (issue 13, items 1 and 7): end to end through
//! the real `oomgate` binary against the simulated cluster (real processes in real memory
//! cgroups, a metrics API and a cAdvisor endpoint scraped by a real Prometheus), every way one
//! pod or container goes unmeasured while the others are fine ends inconclusive (3), naming the
//! pod, the container, its share and why — never in PodMetrics, left out from t1 to t2, a
//! timestamp stuck since t, a scaled-up pod scraped late, no Prometheus series, NaN from
//! Prometheus — and each test has a control run without the fault that passes. A metrics-server
//! at 10 s resolution read every 5 s stays judgeable. Pods mid-rollout with different limits are
//! each judged against their own limit.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::cluster::metrics::{Outlier, PodFaults};
use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, MI,
};
use crate::support::prometheus::{prometheus_for, require_prometheus};
use crate::support::{findings, run_bounded, text};

/// 16 s of load.
const STAGES: &str = "[{ duration: 4s, users: 2 }, { duration: 12s, users: 2 }]";
/// How long a gate run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

const METRICS_API: &str = "  source: metrics-api\n  interval: 1s";

/// A scenario for deployment `web` measuring `containers`, with `memory` (the lines under
/// `memory:`), `stages` and `min_coverage`.
fn scenario(
    dir: &Path,
    cluster: &SimCluster,
    containers: &str,
    memory: &str,
    stages: &str,
    min_coverage: &str,
) -> PathBuf {
    let text = format!(
        r#"name: coverage
target: {{ url: "{url}" }}
load:
  stages: {stages}
  requests:
    - {{ name: work, path: /api/work, expect_status: 200 }}
  think_time: 20ms..40ms
workload:
  kubernetes:
    namespace: {ns}
    deployment: web
    containers: [{containers}]
memory:
{memory}
policy:
  headroom: 20%
  min_coverage: {min_coverage}
"#,
        url = cluster.service_url("web"),
        ns = cluster.namespace()
    );
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One gate run's results.
struct Gate {
    out: Output,
    report: serde_json::Value,
    summary: String,
    html: String,
}

impl Gate {
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// The inconclusive coverage findings about one pod.
    fn short_of(&self, pod: &str) -> Vec<String> {
        findings(&self.report, "coverage", "inconclusive")
            .into_iter()
            .filter(|f| f["pod"] == pod)
            .map(|f| f["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// `memory.pods[]` of one (pod, container).
    fn pod(&self, pod: &str, container: &str) -> serde_json::Value {
        self.report["memory"]["pods"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|p| p["pod"] == pod && p["container"] == container)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no coverage of {pod}/{container}: {:#}", self.report))
    }
}

/// `oomgate run` into `dir/report`; the report is validated against the JSON Schema.
fn gate_run(dir: &Path, scenario: &Path, kubeconfig: &Path) -> Gate {
    let out_dir = dir.join("report");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        RUN_LIMIT,
    );
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(&read("report.json")).unwrap_or(serde_json::Value::Null);
    if !report.is_null() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/report.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&report)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "report.json against the schema: {errors:#?}"
        );
    }
    Gate {
        out,
        report,
        summary: read("summary.md"),
        html: read("report.html"),
    }
}

/// `gate_run` on a thread, while `during` runs on this one; then the gate's results.
fn gate_run_while(dir: &Path, scenario: &Path, kubeconfig: &Path, during: impl FnOnce()) -> Gate {
    let (d, s, k) = (
        dir.to_path_buf(),
        scenario.to_path_buf(),
        kubeconfig.to_path_buf(),
    );
    let gate = std::thread::spawn(move || gate_run(&d, &s, &k));
    during();
    gate.join().expect("the gate thread")
}

/// A rig with deployment `web` (`replicas` pods of `tpl`), ready and scraped.
fn cluster_with(cfg: ClusterConfig, replicas: u32, tpl: PodTemplate) -> SimCluster {
    let settle = cfg.metrics_resolution * 2 + Duration::from_millis(500);
    let cluster = SimCluster::start(cfg);
    cluster.add_deployment("web", replicas, tpl);
    assert!(
        cluster.wait_ready("web", Duration::from_secs(20)),
        "web never became ready"
    );
    // metrics-server lists a pod only after its first scrapes.
    std::thread::sleep(settle.max(Duration::from_millis(2500)));
    cluster
}

fn app() -> ContainerTemplate {
    ContainerTemplate::app(129 * MI)
        .request(64 * MI)
        .env("DEMO_BASELINE", "24Mi")
}

fn web(replicas: u32) -> SimCluster {
    cluster_with(ClusterConfig::default(), replicas, PodTemplate::app(app()))
}

/// The control run passes with every (pod, container) covered, and every format shows it.
fn assert_control_passes(g: &Gate, pods: &[String], container: &str) {
    assert_eq!(
        g.code(),
        Some(0),
        "control: {}\n{:#}",
        text(&g.out),
        g.report["findings"]
    );
    for pod in pods {
        let p = g.pod(pod, container);
        assert!(
            p["coverage"].as_f64().unwrap() >= 0.9 && p["below_min_coverage"] == false,
            "control: {p:#}"
        );
        let line = format!("{pod}/{container}: ");
        assert!(
            text(&g.out).contains(&line),
            "terminal shows {line}: {}",
            text(&g.out)
        );
        assert!(
            g.summary.contains(&line),
            "summary.md shows {line}: {}",
            g.summary
        );
        assert!(g.html.contains(&line), "report.html shows {line}");
    }
}

#[test]
fn a_pod_never_in_pod_metrics_is_inconclusive_naming_it() {
    if !require_cgroups("a_pod_never_in_pod_metrics") {
        return;
    }
    let cluster = web(2);
    let pods = cluster.pod_names("web");
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), &cluster, "app", METRICS_API, STAGES, "90%");
    let control = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_control_passes(&control, &pods, "app");

    cluster.set_pod_faults(PodFaults {
        omit: vec![(pods[1].clone(), None)],
        ..PodFaults::default()
    });
    let g = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(g.code(), Some(3), "{}", text(&g.out));
    assert_eq!(g.report["verdict"], "inconclusive");
    let msg = g.short_of(&pods[1]);
    assert_eq!(msg.len(), 1, "{:#}", g.report);
    assert!(
        msg[0].starts_with(&format!(
            "{}/app: memory data for 0% of the sampling ticks",
            pods[1]
        )) && msg[0].contains("never in PodMetrics"),
        "{}",
        msg[0]
    );
    // The workload as a whole still had data on every tick: the hole this closes.
    assert!(g.short_of(&pods[0]).is_empty(), "{:#}", g.report);
    let p = g.pod(&pods[1], "app");
    assert_eq!(
        (p["covered"].as_u64(), &p["below_min_coverage"]),
        (Some(0), &serde_json::json!(true))
    );
    assert_eq!(p["gaps"][0]["cause"], "absent", "{p:#}");
    assert!(
        g.summary.contains(&format!("{}/app: 0% of", pods[1])),
        "{}",
        g.summary
    );
    eprintln!("{}", msg[0]);
}

#[test]
fn a_container_left_out_of_pod_metrics_for_a_while_is_inconclusive_naming_the_span() {
    if !require_cgroups("a_container_left_out_for_a_while") {
        return;
    }
    let tpl = PodTemplate {
        containers: vec![app(), ContainerTemplate::named("sidecar").limit(64 * MI)],
    };
    let cluster = cluster_with(ClusterConfig::default(), 1, tpl);
    let pod = cluster.pod_names("web")[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        &cluster,
        "app, sidecar",
        METRICS_API,
        STAGES,
        "90%",
    );
    let control = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_control_passes(&control, std::slice::from_ref(&pod), "sidecar");

    let g = gate_run_while(dir.path(), &sc, cluster.kubeconfig_path(), || {
        std::thread::sleep(Duration::from_secs(5));
        cluster.set_pod_faults(PodFaults {
            omit: vec![(pod.clone(), Some("sidecar".into()))],
            ..PodFaults::default()
        });
        std::thread::sleep(Duration::from_secs(8));
        cluster.set_pod_faults(PodFaults::default());
    });
    assert_eq!(g.code(), Some(3), "{}", text(&g.out));
    let msg = g.short_of(&pod);
    assert_eq!(msg.len(), 1, "only the sidecar is short: {:#}", g.report);
    assert!(
        msg[0].starts_with(&format!("{pod}/sidecar: memory data for "))
            && msg[0].contains("left out of PodMetrics from "),
        "{}",
        msg[0]
    );
    assert!(
        g.pod(&pod, "app")["coverage"].as_f64().unwrap() >= 0.9,
        "{:#}",
        g.report
    );
    let p = g.pod(&pod, "sidecar");
    let share = p["coverage"].as_f64().unwrap();
    assert!((0.3..0.8).contains(&share), "{p:#}");
    eprintln!("{}", msg[0]);
}

#[test]
fn a_frozen_timestamp_is_inconclusive_while_a_slow_metrics_server_is_judgeable() {
    if !require_cgroups("a_frozen_timestamp") {
        return;
    }
    // metrics-server at 10 s resolution, read every 5 s: two of three readings repeat.
    let cfg = ClusterConfig {
        metrics_resolution: Duration::from_secs(10),
        ..ClusterConfig::default()
    };
    let cluster = cluster_with(cfg, 2, PodTemplate::app(app()));
    let pods = cluster.pod_names("web");
    let dir = tempfile::tempdir().unwrap();
    let memory = "  source: metrics-api\n  interval: 5s";
    let stages = "[{ duration: 15s, users: 2 }, { duration: 25s, users: 2 }]";
    let sc = scenario(dir.path(), &cluster, "app", memory, stages, "90%");
    let control = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_control_passes(&control, &pods, "app");

    cluster.set_pod_faults(PodFaults {
        freeze: vec![pods[1].clone()],
        ..PodFaults::default()
    });
    let g = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(g.code(), Some(3), "{}", text(&g.out));
    let msg = g.short_of(&pods[1]);
    assert_eq!(msg.len(), 1, "{:#}", g.report);
    assert!(msg[0].contains("timestamp stuck since "), "{}", msg[0]);
    assert!(g.short_of(&pods[0]).is_empty(), "{:#}", g.report);
    assert_eq!(g.pod(&pods[1], "app")["gaps"][0]["cause"], "stuck");
    eprintln!("{}", msg[0]);
}

#[test]
fn a_scaled_up_pod_scraped_late_is_not_read_as_covered() {
    if !require_cgroups("a_scaled_up_pod_scraped_late") {
        return;
    }
    let cluster = web(1);
    let dir = tempfile::tempdir().unwrap();
    let stages = "[{ duration: 4s, users: 2 }, { duration: 20s, users: 2 }]";
    let sc = scenario(dir.path(), &cluster, "app", METRICS_API, stages, "80%");
    let scale_up = |cluster: &SimCluster| {
        std::thread::sleep(Duration::from_secs(3));
        cluster.scale("web", 2);
    };
    let control = gate_run_while(dir.path(), &sc, cluster.kubeconfig_path(), || {
        scale_up(&cluster)
    });
    let pods = cluster.pod_names("web");
    assert_eq!(pods.len(), 2);
    assert_control_passes(&control, &pods, "app");
    cluster.scale("web", 1);
    std::thread::sleep(Duration::from_secs(2));

    // New pods are scraped only 12 s after they start: the new pod runs unmeasured.
    cluster.set_pod_faults(PodFaults {
        delay_new: Some(Duration::from_secs(12)),
        ..PodFaults::default()
    });
    let before = cluster.pod_names("web");
    let g = gate_run_while(dir.path(), &sc, cluster.kubeconfig_path(), || {
        scale_up(&cluster)
    });
    let new = cluster
        .pod_names("web")
        .into_iter()
        .find(|p| !before.contains(p))
        .expect("a new pod");
    assert_eq!(g.code(), Some(3), "{}", text(&g.out));
    let msg = g.short_of(&new);
    assert_eq!(msg.len(), 1, "{:#}", g.report);
    assert!(
        msg[0].contains("since the pod appeared")
            && msg[0].contains("from its start at ")
            && msg[0].contains("before its first sample"),
        "{}",
        msg[0]
    );
    eprintln!("{}", msg[0]);
}

#[test]
fn prometheus_with_series_for_only_some_pods_or_nan_for_one_is_inconclusive() {
    if !require_cgroups("prometheus_partial_series") || !require_prometheus() {
        return;
    }
    let cluster = web(3);
    let pods = cluster.pod_names("web");
    // From before Prometheus's first scrape: no series for pods[1], NaN for pods[2]. (cAdvisor
    // stamps its samples, so a series that vanishes later is not marked stale: Prometheus
    // would keep answering with its last value for its 5 min lookback.)
    cluster.set_pod_faults(PodFaults {
        omit: vec![(pods[1].clone(), None)],
        nan: vec![pods[2].clone()],
        ..PodFaults::default()
    });
    let (prom, memory) = prometheus_for(&cluster, 2);
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), &cluster, "app", &memory, STAGES, "90%");
    let g = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(g.code(), Some(3), "{}", text(&g.out));
    let missing = g.short_of(&pods[1]);
    assert_eq!(missing.len(), 1, "{:#}", g.report);
    assert!(
        missing[0].contains("Prometheus never had a series for it"),
        "{}",
        missing[0]
    );
    let nan = g.short_of(&pods[2]);
    assert_eq!(nan.len(), 1, "{:#}", g.report);
    assert!(nan[0].contains("NaN from Prometheus from "), "{}", nan[0]);
    assert_eq!(g.pod(&pods[2], "app")["gaps"][0]["value"], "NaN");
    assert!(g.short_of(&pods[0]).is_empty(), "{:#}", g.report);
    eprintln!("{}\n{}", missing[0], nan[0]);

    // Control: the same Prometheus once every pod has a real series.
    cluster.set_pod_faults(PodFaults::default());
    prom.wait_for_series(
        "container_memory_working_set_bytes{container=\"app\"} >= 0",
        3,
        Duration::from_secs(20),
    );
    let control = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_control_passes(&control, &pods, "app");
}

#[test]
fn each_pod_is_judged_against_its_own_limit_mid_rollout() {
    if !require_cgroups("each_pod_against_its_own_limit") {
        return;
    }
    // Slot 0 grows to 60 MiB under 128Mi (allowed 102.4 MiB); slot 1 stays at 24 MiB.
    let cluster = SimCluster::start(ClusterConfig::default());
    cluster.add_deployment_with("web", 2, PodTemplate::app(app()), |slot| {
        if slot == 0 {
            vec![
                ("DEMO_GROW_PER_SEC".into(), "8Mi".into()),
                ("DEMO_MAX_BYTES".into(), "60Mi".into()),
            ]
        } else {
            vec![]
        }
    });
    assert!(cluster.wait_ready("web", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(2500));
    let pods = cluster.pod_names("web");
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), &cluster, "app", METRICS_API, STAGES, "90%");
    // Control: same limits, both within.
    let control = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_control_passes(&control, &pods, "app");

    // Mid-rollout: the quiet pod carries a 64Mi limit (allowed 51.2 MiB). The grower's 60 MiB
    // is judged against its own 128Mi, not the smallest limit: still a pass.
    let grower = control.report["containers"][0]["peak_pod"]
        .as_str()
        .unwrap()
        .to_string();
    let quiet = pods.iter().find(|p| **p != grower).unwrap().clone();
    cluster.set_pod_limit(&quiet, "app", 64 * MI);
    let g = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(g.code(), Some(0), "{}", text(&g.out));
    let pass = findings(&g.report, "headroom", "pass");
    assert_eq!(pass.len(), 1, "{:#}", g.report);
    let msg = pass[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("pod limits differ (64 MiB to ")
            && msg.contains("each pod judged against its own")
            && msg.contains(&format!("(pod {grower}, limit ")),
        "{msg}"
    );

    // And the pod with the smaller limit above it fails, named with its limit.
    cluster.set_pod_limit(&quiet, "app", 29 * MI);
    let g = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(g.code(), Some(1), "{}", text(&g.out));
    let fail = findings(&g.report, "headroom", "fail");
    assert_eq!(fail.len(), 1, "{:#}", g.report);
    assert_eq!(fail[0]["pod"], quiet.as_str());
    let msg = fail[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("app (pod {quiet}, limit 29 MiB): peak "))
            && msg.contains("allowed by its own 29 MiB limit"),
        "{msg}"
    );
    eprintln!("{msg}");
}

#[test]
fn a_single_out_of_line_timestamp_does_not_rebase_the_series() {
    if !require_cgroups("a_single_out_of_line_timestamp") {
        return;
    }
    let cluster = web(1);
    let pod = cluster.pod_names("web")[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), &cluster, "app", METRICS_API, STAGES, "90%");
    let clock_findings = |g: &Gate| -> Vec<String> {
        findings(&g.report, "coverage", "warn")
            .into_iter()
            .chain(findings(&g.report, "coverage", "inconclusive"))
            .map(|f| f["message"].as_str().unwrap_or_default().to_string())
            .filter(|m| m.starts_with("clock"))
            .collect()
    };
    let control = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_control_passes(&control, std::slice::from_ref(&pod), "app");
    assert!(clock_findings(&control).is_empty(), "{:#}", control.report);

    // The 6th PodMetrics answer stamps the pod 5 minutes ahead; every other is on time.
    cluster.set_pod_faults(PodFaults {
        outlier: Some(Outlier {
            pod: pod.clone(),
            after: 5,
            shift: chrono::TimeDelta::minutes(5),
        }),
        ..PodFaults::default()
    });
    let g = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(
        g.code(),
        Some(0),
        "{}\n{:#}",
        text(&g.out),
        g.report["findings"]
    );
    let clock = clock_findings(&g);
    assert_eq!(clock.len(), 1, "{clock:#?}");
    assert!(
        clock[0].starts_with(&format!(
            "clock: 1 metrics-api sample of {pod}/app carried a timestamp out of line"
        )) && !clock[0].contains("clock skew")
            && !clock[0].contains("  "),
        "not re-based: {}",
        clock[0]
    );
    // Every sample lies inside the run, and the samples after the odd one were all kept.
    let p = g.pod(&pod, "app");
    assert!(p["coverage"].as_f64().unwrap() >= 0.9, "{p:#}");
    eprintln!("{}", clock[0]);
}

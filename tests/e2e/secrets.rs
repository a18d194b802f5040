//! Secrets (issue 7, point 4): credentials in URLs and request headers that reference env vars
//! never appear in stdout, stderr or any file under --out of a real `oomgate run` (also with
//! -v), nor in `oomgate check`.

use crate::support;

use std::path::Path;

use crate::support::{require_cgroups, text, Case};

const URL_PASS: &str = "s3cr3tpassZQ81";
const API_TOKEN: &str = "tokVALUE-9f8e7d6c5b4a";

const SCENARIO: &str = r#"name: secrets
target: { url: "http://user:s3cr3tpassZQ81@127.0.0.1:{PORT}" }
workload:
  local:
    command: ["{BIN}", demo-service, --listen, "127.0.0.1:{PORT}"]
    ready_url: http://127.0.0.1:{PORT}/healthz
    ready_timeout: 10s
    limit: 256Mi
    container: app
load:
  stages: [{ duration: 2s, users: 2 }]
  requests:
    - { name: work, path: /api/work, expect_status: 200,
        headers: { Authorization: "Bearer ${API_TOKEN}" } }
  think_time: 10ms
memory: { interval: 200ms }
"#;

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    for secret in [URL_PASS, API_TOKEN] {
        assert!(!s.contains(secret), "{secret} leaked into {what}:\n{s}");
    }
}

fn run_and_search(extra: &[&str]) {
    let case = Case::new(SCENARIO);
    let o = case.run_with_env(extra, &[("API_TOKEN", API_TOKEN)]);
    assert!(matches!(o.status.code(), Some(0 | 1 | 3)), "{}", text(&o));
    assert_no_secret("stdout", &o.stdout);
    assert_no_secret("stderr", &o.stderr);
    let mut files = Vec::new();
    all_files(&case.out_dir(), &mut files);
    assert!(files.len() >= 6, "reports written: {files:?}");
    for (name, bytes) in files {
        assert_no_secret(&name, &bytes);
    }
}

#[test]
fn url_credentials_and_header_secrets_stay_out_of_a_run() {
    if !require_cgroups() {
        return;
    }
    run_and_search(&[]);
}

#[test]
fn url_credentials_and_header_secrets_stay_out_of_a_verbose_run() {
    if !require_cgroups() {
        return;
    }
    run_and_search(&["-v"]);
}

#[test]
fn url_credentials_and_header_secrets_stay_out_of_check() {
    let case = Case::new(SCENARIO);
    let o = support::run_bounded(
        std::process::Command::new(support::oomgate())
            .env("API_TOKEN", API_TOKEN)
            .args(["check", case.scenario.to_str().unwrap(), "-v"]),
        std::time::Duration::from_secs(30),
    );
    assert_no_secret("stdout", &o.stdout);
    assert_no_secret("stderr", &o.stderr);
}

const PROM_PASS: &str = "promPASSw0rd77";
const PROM_TOKEN: &str = "promTOKEN-a1b2c3d4e5";

/// `oomgate check -v` against the simulated cluster: the kubeconfig's bearer token, a Prometheus
/// bearer token from `bearer_token_env` and the credentials in the Prometheus URL (which is
/// unreachable, so the error path is searched too) never appear in stdout or stderr.
#[test]
fn cluster_and_prometheus_tokens_stay_out_of_check() {
    use support::cluster::{self, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, MI};
    if !cluster::require_cgroups("cluster_and_prometheus_tokens_stay_out_of_check") {
        return;
    }
    let sim = SimCluster::start(ClusterConfig::default());
    sim.add_deployment("web", 1, PodTemplate::app(ContainerTemplate::app(256 * MI)));
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    for memory in [
        "  source: metrics-api\n  interval: 1s".to_string(),
        format!(
            "  source: prometheus\n  prometheus:\n    url: http://promuser:{PROM_PASS}@127.0.0.1:{port}\n    bearer_token_env: OOMGATE_TEST_PROM_TOKEN"
        ),
    ] {
        let sc = dir.path().join("scenario.yaml");
        std::fs::write(
            &sc,
            format!(
                "name: k8s-secrets\ntarget: {{ url: \"{url}\" }}\nload:\n  stages: [{{ duration: 2s, users: 1 }}]\n  requests: [{{ path: / }}]\nworkload:\n  kubernetes:\n    namespace: {ns}\n    deployment: web\nmemory:\n{memory}\n",
                url = sim.service_url("web"),
                ns = sim.namespace(),
            ),
        )
        .unwrap();
        let o = support::run_bounded(
            std::process::Command::new(support::oomgate())
                .env("OOMGATE_TEST_PROM_TOKEN", PROM_TOKEN)
                .args([
                    "check",
                    sc.to_str().unwrap(),
                    "--kubeconfig",
                    sim.kubeconfig_path().to_str().unwrap(),
                    "-v",
                ]),
            std::time::Duration::from_secs(60),
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!sim.token().is_empty());
        // The check reached the cluster (so the kubeconfig token was used).
        assert!(all.contains("cluster: reachable"), "{}", text(&o));
        if memory.contains("prometheus") {
            assert_eq!(o.status.code(), Some(2), "dead Prometheus: {}", text(&o));
        }
        for secret in [sim.token(), PROM_PASS, PROM_TOKEN] {
            assert!(!all.contains(secret), "{secret} leaked:\n{}", text(&o));
        }
    }
}

const LIVE_PROM_TOKEN: &str = "liveTOKEN-7c1e5a9b3d2f";
const WRONG_PROM_TOKEN: &str = "wrongTOKEN-0f9e8d7c6b5a";

/// A full `oomgate run -v` against the simulated cluster with memory from a real Prometheus
/// behind a bearer-token proxy (Prometheus checks no tokens itself), the token coming from
/// `bearer_token_env`: the run measures and judges through the proxy, and neither the token
/// nor the cluster's token appears in any byte of stdout, stderr or the files under --out.
/// With a wrong token the run stops at once with exit 2 and a clear 401 message that shows
/// neither token.
#[test]
fn a_prometheus_token_works_for_a_full_run_and_never_shows() {
    use std::process::Command;
    use std::time::Duration;

    use support::auth_proxy::AuthProxy;
    use support::cluster::{self, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, MI};
    use support::prometheus::{require_prometheus, Prometheus};
    if !cluster::require_cgroups("a_prometheus_token_works_for_a_full_run") || !require_prometheus()
    {
        return;
    }
    let sim = SimCluster::start(ClusterConfig::default());
    sim.add_deployment(
        "web",
        2,
        PodTemplate::app(
            ContainerTemplate::app(256 * MI)
                .request(64 * MI)
                .env("DEMO_BASELINE", "24Mi"),
        ),
    );
    let prom = Prometheus::start(&[sim.metrics_target()]);
    prom.wait_for_series(
        "container_memory_working_set_bytes{container=\"app\"}",
        2,
        Duration::from_secs(20),
    );
    let proxy = AuthProxy::start(&prom.url, LIVE_PROM_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("scenario.yaml");
    std::fs::write(
        &sc,
        format!(
            "name: prom-token\ntarget: {{ url: \"{url}\" }}\nload:\n  stages: [{{ duration: 2s, users: 2 }}, {{ duration: 5s, users: 2 }}]\n  requests: [{{ name: work, path: /api/work, expect_status: 200 }}]\n  think_time: 10ms..30ms\nworkload:\n  kubernetes: {{ namespace: {ns}, deployment: web, containers: [app] }}\nmemory:\n  source: prometheus\n  interval: 1s\n  prometheus:\n    url: \"{prom}\"\n    bearer_token_env: OOMGATE_TEST_LIVE_PROM_TOKEN\npolicy:\n  headroom: 20%\n",
            url = sim.service_url("web"),
            ns = sim.namespace(),
            prom = proxy.url,
        ),
    )
    .unwrap();
    let run = |token: &str, out: &Path| {
        support::run_bounded(
            Command::new(support::oomgate())
                .env("OOMGATE_TEST_LIVE_PROM_TOKEN", token)
                .args(["run", sc.to_str().unwrap(), "--out"])
                .arg(out)
                .arg("--kubeconfig")
                .arg(sim.kubeconfig_path())
                .arg("-v"),
            Duration::from_secs(120),
        )
    };
    let secrets = [LIVE_PROM_TOKEN, WRONG_PROM_TOKEN, sim.token()];
    let search = |what: &str, bytes: &[u8]| {
        let s = String::from_utf8_lossy(bytes);
        for secret in secrets {
            assert!(!s.contains(secret), "{secret} leaked into {what}:\n{s}");
        }
    };

    // The right token: a real, judged run, memory through the proxy.
    let out = dir.path().join("report");
    let o = run(LIVE_PROM_TOKEN, &out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(proxy.accepted() > 5, "queries went through the proxy");
    assert_eq!(proxy.rejected(), 0, "the token was sent on every query");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass", "{report:#}");
    assert_eq!(report["memory"]["source"], "prometheus", "{report:#}");
    assert!(
        report["memory"]["ticks_with_data"].as_u64().unwrap() >= 5,
        "{report:#}"
    );
    let c = &report["containers"][0];
    assert_eq!(c["pods"].as_array().unwrap().len(), 2, "{report:#}");
    assert!(c["peak_bytes"].as_u64().unwrap() > 20 * MI, "{report:#}");
    search("stdout", &o.stdout);
    search("stderr", &o.stderr);
    let mut files = Vec::new();
    all_files(&out, &mut files);
    assert!(files.len() >= 6, "reports written: {files:?}");
    for (name, bytes) in &files {
        search(name, bytes);
    }

    // A wrong token: `check` exits 2 with a clear 401 that names the variable, not the token.
    let rejected_before = proxy.rejected();
    let o = support::run_bounded(
        Command::new(support::oomgate())
            .env("OOMGATE_TEST_LIVE_PROM_TOKEN", WRONG_PROM_TOKEN)
            .args(["check", sc.to_str().unwrap(), "-v", "--kubeconfig"])
            .arg(sim.kubeconfig_path()),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(proxy.rejected() > rejected_before, "the proxy said 401");
    let clear_401 = |o: &std::process::Output| {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("401") && err.contains("OOMGATE_TEST_LIVE_PROM_TOKEN"),
            "a clear 401 naming the variable: {}",
            text(o)
        );
    };
    clear_401(&o);
    search("stdout", &o.stdout);
    search("stderr", &o.stderr);
    // `run` stops before the load with exit 2 (a rejected credential is a configuration error)
    // and says 401 the same way.
    let out2 = dir.path().join("report-wrong");
    let o = run(WRONG_PROM_TOKEN, &out2);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no load was sent"),
        "{}",
        text(&o)
    );
    clear_401(&o);
    search("stdout", &o.stdout);
    search("stderr", &o.stderr);
    let mut files = Vec::new();
    all_files(&out2, &mut files);
    for (name, bytes) in &files {
        search(name, bytes);
    }
}

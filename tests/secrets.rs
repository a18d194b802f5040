//! Secrets (issue 7, point 4): credentials in URLs and request headers that reference env vars
//! never appear in stdout, stderr or any file under --out of a real `oomgate run` (also with
//! -v), nor in `oomgate check`.

mod support;

use std::path::Path;

use support::{require_cgroups, text, Case};

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
    std::env::set_var("API_TOKEN", API_TOKEN);
    let o = case.run(extra);
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

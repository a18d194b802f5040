//! End to end against the real control plane (`scripts/kube-rig`): a real kube-apiserver with
//! real RBAC, kube-controller-manager and kube-scheduler turning Deployments into pods, the
//! rig's kubelet stand-in running them as real demo-service processes in memory cgroups,
//! metrics-server behind the real aggregation layer, kube-state-metrics and Prometheus. One rig
//! per test process (started by the first test that needs it, taken down at exit; its watchdog
//! takes it down should this process be killed). Faults are real: a Role without the
//! metrics.k8s.io rule gets the real 403, and the kernel OOM-kills a container.
//! Without the rig (no root, no Go toolchain, a failed build): a failure when CI=true, else a
//! note and a return.

use crate::support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{findings, run_bounded, text};

const MI: u64 = 1024 * 1024;

struct Rig {
    dir: PathBuf,
    env: HashMap<String, String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Rig {
    fn start() -> Result<Rig, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("the rig needs root (memory cgroups)".into());
        }
        // Kept outside any tempdir guard: the atexit hook takes the rig down, then removes it.
        let dir = std::env::temp_dir().join(format!("oomgate-real-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let started = Instant::now();
        let out = Command::new(repo().join("scripts/kube-rig"))
            .arg("up")
            .arg(&dir)
            .env("OOMGATE_BIN", support::oomgate())
            .env("KUBE_RIG_WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running scripts/kube-rig: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "scripts/kube-rig up failed ({:?}):\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        eprintln!("kube-rig up in {:?}", started.elapsed());
        let env_text = std::fs::read_to_string(dir.join("env")).map_err(|e| e.to_string())?;
        let env = env_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Rig { dir, env })
    }

    fn down(&self) {
        let _ = Command::new(repo().join("scripts/kube-rig"))
            .arg("down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if std::env::var_os("KUBE_RIG_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn admin(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    fn gate(&self) -> PathBuf {
        self.dir.join("gate.kubeconfig")
    }

    fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
        match stdin {
            Some(input) => {
                use std::io::Write;
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("kubectl");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
            None => cmd.stdin(Stdio::null()).output().expect("kubectl"),
        }
    }

    /// `kubectl` as admin; panics with its output unless it succeeds.
    fn kubectl(&self, args: &[&str]) -> String {
        let o = self.kubectl_as(&self.admin(), args, None);
        assert!(o.status.success(), "kubectl {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn apply(&self, yaml: &str) {
        let o = self.kubectl_as(&self.admin(), &["apply", "-f", "-"], Some(yaml));
        assert!(o.status.success(), "kubectl apply: {}\n{yaml}", text(&o));
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl -o json")
    }

    /// A user with a client certificate and no grants: its kubeconfig.
    fn user(&self, name: &str) -> PathBuf {
        let o = Command::new(repo().join("scripts/kube-rig"))
            .args(["user", self.dir.to_str().unwrap(), name])
            .output()
            .unwrap();
        assert!(o.status.success(), "kube-rig user: {}", text(&o));
        PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
    }

    /// Waits until every pod of `app=<name>` in staging has a PodMetrics, i.e. metrics-server
    /// scraped it twice; returns the pod names.
    fn wait_for_pod_metrics(&self, name: &str, pods: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let listed = self.json(&["get", "pods", "-n", "staging", "-l", &format!("app={name}")]);
            let names: Vec<String> = listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
                .collect();
            let o = self.kubectl_as(
                &self.admin(),
                &[
                    "get",
                    "--raw",
                    "/apis/metrics.k8s.io/v1beta1/namespaces/staging/pods",
                ],
                None,
            );
            let metrics: serde_json::Value =
                serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
            let with: Vec<&str> = metrics["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["metadata"]["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            if names.len() == pods && names.iter().all(|n| with.contains(&n.as_str())) {
                return names;
            }
            assert!(
                start.elapsed() < limit,
                "no PodMetrics for {name} after {limit:?}: pods {names:?}, metrics {with:?}"
            );
            std::thread::sleep(Duration::from_millis(1000));
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.down();
    }
}

static RIG: OnceLock<Result<Rig, String>> = OnceLock::new();

extern "C" fn rig_down_at_exit() {
    if let Some(Ok(rig)) = RIG.get() {
        rig.down();
    }
}

/// The rig of this test process, started on first use; None (after a note) when it cannot run
/// here and CI is not set.
fn rig() -> Option<&'static Rig> {
    let r = RIG.get_or_init(|| {
        let r = Rig::start();
        if r.is_ok() {
            // SAFETY: registering a plain extern "C" fn; it only runs scripts/kube-rig down.
            unsafe {
                libc::atexit(rig_down_at_exit);
            }
        }
        r
    });
    match r {
        Ok(rig) => Some(rig),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the real control plane could not start, and CI=true: {why}")
        }
        Err(why) => {
            eprintln!("note: skipping: the real control plane could not start: {why}");
            None
        }
    }
}

/// A Deployment `name` of demo services in staging (limit, request, extra env), with a
/// NodePort Service; returns the Service's URL once the rollout is complete.
fn deploy(rig: &Rig, name: &str, replicas: u32, limit: &str, env: &[(&str, &str)]) -> String {
    let env: String = env
        .iter()
        .map(|(k, v)| format!("\n            - {{ name: {k}, value: \"{v}\" }}"))
        .collect();
    rig.apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{ name: {name}, namespace: staging }}
spec:
  replicas: {replicas}
  selector: {{ matchLabels: {{ app: {name} }} }}
  template:
    metadata: {{ labels: {{ app: {name} }} }}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: app
          image: local/demo-service
          env:
            - {{ name: DEMO_BASELINE, value: 24Mi }}{env}
          ports: [{{ name: http, containerPort: 8080 }}]
          resources:
            limits: {{ memory: {limit} }}
            requests: {{ memory: 64Mi, cpu: 10m }}
          readinessProbe:
            httpGet: {{ path: /healthz, port: http }}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{ name: {name}, namespace: staging }}
spec:
  type: NodePort
  selector: {{ app: {name} }}
  ports: [{{ port: 80, targetPort: http }}]
"#
    ));
    rig.kubectl(&[
        "rollout",
        "status",
        "-n",
        "staging",
        &format!("deployment/{name}"),
        "--timeout=90s",
    ]);
    let port = rig.kubectl(&[
        "get",
        "svc",
        "-n",
        "staging",
        name,
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    format!("http://127.0.0.1:{}", port.trim())
}

/// The healthy `web` deployment (2 replicas, 24 MiB in a 256Mi limit), shared by the tests
/// that need one; returns its URL once metrics-server reports both pods.
fn web(rig: &'static Rig) -> &'static str {
    static WEB: OnceLock<String> = OnceLock::new();
    WEB.get_or_init(|| {
        let url = deploy(rig, "web", 2, "256Mi", &[]);
        rig.wait_for_pod_metrics("web", 2, Duration::from_secs(60));
        url
    })
}

/// A scenario for deployment `name` in staging, memory from the metrics API. Every stage is
/// longer than metrics-server's 10 s resolution: a shorter one may hold no sample at all, which
/// the coverage rule rightly calls inconclusive.
fn scenario(name: &str, url: &str, hold: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"name: real-{name}
target: {{ url: "{url}" }}
load:
  stages: [{{ duration: 15s, users: 3 }}, {{ duration: {hold}, users: 3 }}]
  requests:
    - {{ name: work, path: /api/work, expect_status: 200 }}
  think_time: 20ms..50ms
workload:
  kubernetes:
    namespace: staging
    deployment: {name}
    containers: [app]
memory:
  source: metrics-api
  interval: 5s
policy:
  headroom: 20%
"#
    );
    let path = dir.path().join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn check(scenario: &Path, kubeconfig: &Path) -> Output {
    run_bounded(
        Command::new(support::oomgate()).args([
            "check",
            scenario.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    )
}

fn run(dir: &tempfile::TempDir, scenario: &Path, kubeconfig: &Path) -> (Output, serde_json::Value) {
    let out = dir.path().join("report");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        Duration::from_secs(150),
    );
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, report)
}

#[test]
fn a_healthy_deployment_passes_check_and_run_under_the_shipped_role() {
    let Some(rig) = rig() else { return };
    let url = web(rig);
    // The Service is really served on the node port, over the Ready pods.
    let body = reqwest_get(&format!("{url}/healthz"));
    assert_eq!(body.as_deref(), Some("ok"), "GET {url}/healthz");

    let (dir, sc) = scenario("web", url, "20s");
    let c = check(&sc, &rig.gate());
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    let out = String::from_utf8_lossy(&c.stdout);
    let pods = rig.wait_for_pod_metrics("web", 2, Duration::from_secs(5));
    for pod in &pods {
        assert!(out.contains(pod.as_str()), "check lists pod {pod}: {out}");
    }
    assert!(out.contains("limit 256 MiB"), "{out}");

    let (o, r) = run(&dir, &sc, &rig.gate());
    assert_eq!(o.status.code(), Some(0), "{}\n{r:#}", text(&o));
    assert_eq!(r["verdict"], "pass", "{r:#}");
    assert_eq!(r["exit_code"], 0, "{r:#}");
    let c = &r["containers"][0];
    assert_eq!(c["container"], "app", "{r:#}");
    assert_eq!(c["limit_bytes"], 256 * MI, "{r:#}");
    assert_eq!(c["request_bytes"], 64 * MI, "{r:#}");
    let peak = c["peak_bytes"].as_u64().unwrap_or(0);
    assert!(
        peak > 20 * MI && peak < 200 * MI,
        "the real working set of a 24 MiB baseline: {c}"
    );
    assert!(
        pods.iter().any(|p| c["peak_pod"] == p.as_str()),
        "peak_pod is one of {pods:?}: {c}"
    );
    assert!(
        r["load"]["requests"].as_u64().unwrap_or(0) > 100,
        "{}",
        r["load"]
    );
    assert_eq!(r["load"]["failures"], 0, "{}", r["load"]);
}

#[test]
fn a_role_without_the_metrics_rule_gets_the_real_403_and_check_names_the_rule() {
    let Some(rig) = rig() else { return };
    let url = web(rig);
    let (_dir, sc) = scenario("web", url, "10s");

    // Control: the shipped Role (bound to memory-gate by the rig) is enough for check.
    let c = check(&sc, &rig.gate());
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));

    // The same Role without its metrics.k8s.io rule, bound to a user of its own.
    let user = "memory-gate-no-metrics";
    let kubeconfig = rig.user(user);
    let rbac = std::fs::read_to_string(repo().join("ci-templates/kubernetes/rbac.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&rbac).unwrap();
    let mut role = docs
        .iter()
        .find(|d| d["kind"] == "Role")
        .expect("rbac.yaml has a Role")
        .clone();
    role["metadata"] = serde_json::json!({"name": "no-metrics", "namespace": "staging"});
    let rules = role["rules"].as_array_mut().unwrap();
    let before = rules.len();
    rules.retain(|r| r["apiGroups"][0] != "metrics.k8s.io");
    assert_eq!(
        rules.len(),
        before - 1,
        "rbac.yaml has one metrics.k8s.io rule"
    );
    let binding = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: no-metrics, namespace: staging}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: no-metrics}}\n\
         subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]\n"
    );
    rig.apply(&format!(
        "{}---\n{binding}",
        serde_saphyr::to_string(&role).unwrap()
    ));
    // The real authorizer says no (and yes to what the Role still grants).
    let can = |verb_res: &[&str]| {
        let mut args = vec!["auth", "can-i"];
        args.extend_from_slice(verb_res);
        args.extend(["-n", "staging", "--as", user]);
        String::from_utf8_lossy(&rig.kubectl_as(&rig.admin(), &args, None).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(can(&["list", "pods.metrics.k8s.io"]), "no");
    assert_eq!(can(&["list", "pods"]), "yes");

    let c = check(&sc, &kubeconfig);
    let all = text(&c);
    assert_eq!(c.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!(
            "RBAC forbids `list` on `pods.metrics.k8s.io` in namespace `staging` for user \"{user}\""
        )),
        "{all}"
    );
    assert!(
        all.contains(
            "add the rule {apiGroups: [\"metrics.k8s.io\"], resources: [\"pods\"], verbs: [\"list\"]} to the Role"
        ),
        "{all}"
    );
}

#[test]
fn a_container_the_kernel_oom_kills_shows_oomkilled_in_the_real_pod_status_and_fails_the_run() {
    let Some(rig) = rig() else { return };
    // 24 MiB, then after 15 s +16 MiB/s into a 96Mi limit: the kernel kills it ~20 s after
    // each start; the kubelet stand-in restarts it (restartPolicy Always), then backs off.
    let url = deploy(
        rig,
        "oomer",
        1,
        "96Mi",
        &[("DEMO_GROW_AFTER", "15s"), ("DEMO_GROW_PER_SEC", "16Mi")],
    );
    rig.wait_for_pod_metrics("oomer", 1, Duration::from_secs(60));
    let (dir, sc) = scenario("oomer", &url, "20s");
    let (o, r) = run(&dir, &sc, &rig.gate());
    assert_eq!(o.status.code(), Some(1), "{}\n{r:#}", text(&o));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let f = findings(&r, "oom-killed", "fail");
    assert!(!f.is_empty(), "{r:#}");

    // The real API server holds what the stand-in reported, as the kubelet does.
    let pods = rig.json(&["get", "pods", "-n", "staging", "-l", "app=oomer"]);
    let st = &pods["items"][0]["status"]["containerStatuses"][0];
    assert!(st["restartCount"].as_u64().unwrap_or(0) >= 1, "{st:#}");
    let last = &st["lastState"]["terminated"];
    assert_eq!(last["reason"], "OOMKilled", "{st:#}");
    assert_eq!(last["exitCode"], 137, "{st:#}");
    assert!(last["finishedAt"].is_string(), "{st:#}");
    assert!(
        st["containerID"]
            .as_str()
            .unwrap_or("")
            .starts_with("rig://"),
        "{st:#}"
    );

    // And Prometheus has it from both kube-state-metrics and the cAdvisor endpoint.
    let prom = &rig.env["KUBE_RIG_PROMETHEUS_URL"];
    for query in [
        r#"max(max_over_time(kube_pod_container_status_last_terminated_reason{namespace="staging",container="app",reason="OOMKilled",pod=~"oomer-.*"}[5m]))"#,
        r#"max(max_over_time(container_oom_events_total{namespace="staging",container="app",pod=~"oomer-.*"}[5m]))"#,
        r#"max(max_over_time(kube_pod_container_status_restarts_total{namespace="staging",container="app",pod=~"oomer-.*"}[5m]))"#,
    ] {
        let url = format!(
            "{prom}/api/v1/query?query={}",
            query
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect::<String>()
        );
        let body = reqwest_get(&url).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let value = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(value >= 1.0, "{query}: {body}");
    }
    rig.kubectl(&[
        "delete",
        "deployment",
        "-n",
        "staging",
        "oomer",
        "--wait=false",
    ]);
}

/// A plain HTTP GET (through the rig's NodePort proxy); the body, or None.
fn reqwest_get(url: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        resp.text().await.ok()
    })
}

//! A simulated staging Kubernetes cluster for the integration tests: an HTTPS server speaking
//! the Kubernetes API for the reads oomgate makes (discovery, pods with watch, deployments,
//! replica sets, stateful sets, metrics.k8s.io PodMetrics, autoscaling.k8s.io VPAs), serving
//! k8s-openapi objects, whose pods are REAL `oomgate demo-service` processes in REAL memory
//! cgroups with the declared limits. PodMetrics report each container's real working set (one
//! scrape per `metrics_resolution`); a container the kernel OOM-kills is restarted and shows
//! `lastState.terminated.reason: OOMKilled`, exit code 137, restartCount + 1; a cAdvisor-style
//! `/metrics` serves Prometheus; each workload gets a Service-like TCP proxy. It runs on its
//! own tokio runtime, so tests may be sync or async; dropping it kills every process and
//! removes every cgroup. Its faithfulness is checked with the real kubectl in
//! `tests/e2e/sim_cluster_kubectl.rs`.
//!
//! ```ignore
//! let cluster = SimCluster::start(ClusterConfig::default()); // "staging", 1 s, VPA CRD
//! cluster.add_deployment("web", 2, PodTemplate::app(ContainerTemplate::app(128 * MI)
//!     .request(64 * MI).env("DEMO_BASELINE", "24Mi")));
//! // one replica leaks: slot 0 gets extra env (process only, not in the pod spec)
//! cluster.add_deployment_with("api", 3, tpl, |slot| if slot == 0 {
//!     vec![("DEMO_GROW_PER_SEC".into(), "8Mi".into())] } else { vec![] });
//! cluster.kubeconfig_path(); cluster.service_url("web"); cluster.metrics_url();
//! ```
//!
//! The capability set (all methods take `&self` and block; misuse such as an unknown workload
//! panics):
//! - lifecycle: `start`, `add_deployment[_with]`, `add_statefulset[_with]` (return once all pods
//!   answer `/healthz`), `scale`, `delete_pod` (returns the replacement once ready),
//!   `wait_ready`; `Drop` kills every process and removes every cgroup.
//! - inspection: `pod_names`, `restarts`, `working_set`, `cgroup_path`, `pod_log`, `requests`
//!   (API requests seen), `namespace`.
//! - switches: `set_vpa`/`delete_vpa`, `set_vpa_fault` (VPA reads answer 500/503/429, drop the
//!   connection before or in the middle of the answer, or hang), `set_metrics_mode`,
//!   `set_metrics_faults` (a share of PodMetrics requests fail or hang; shifted timestamps),
//!   `set_pod_faults` (a pod or container left out of the metrics, a frozen timestamp, NaN in
//!   cAdvisor, new pods scraped late), `set_pod_limit` (one pod with another limit, as
//!   mid-rollout), `forbid`/`allow` (403 for a verb on a resource, like RBAC).
//! - RBAC (`rbac`): `issue_token_for_role(manifest)` binds a new token to the Role of an RBAC
//!   manifest (real kube-apiserver authorization: request attributes, rules, namespace, 403
//!   Status); `kubeconfig_for_token`, `rbac_decisions` (what each Role token asked for). The
//!   admin token (`token`, `kubeconfig_path`) keeps full access.
//! - endpoints: `kubeconfig_path`, `api_url`, `token`, `ca_pem`, `service_url`, `pod_url`,
//!   `metrics_url`, `metrics_target`, `work_dir`.
//! - `testkit`: `kubectl`/`kubectl_ok`/`kubectl_json` on a cluster, `run_kubectl`,
//!   `kubectl_available`, `leftover_cgroups`, `leftover_demo_processes`; `metrics` holds the
//!   PodMetrics serde types.
//!
//! Served: `/version`, `/api`, `/apis` and the group versions' resource lists; pods (list, get,
//! watch, `log`), deployments, replica sets, stateful sets (list, get, watch), daemon sets
//! (none), namespaces; metrics.k8s.io pods/nodes; autoscaling.k8s.io VPAs; Tables for
//! `kubectl get` without `-o`. Faithfulness notes: every pod's IP is 127.0.0.1 and each
//! container listens on its own port (shown as its `containerPort`); a limit without a request
//! defaults the request to the limit as the API server does; restarts use a CrashLoopBackOff
//! scaled down 10×; VPAs are served as given; no Events; the rig is read-only (writes get 405).
//! kube-rs 5 clients retry 503 (and 429/504) up to 15 times by default, so a test of the
//! metrics API being down waits for that back-off unless the client disables `default_retry`.

mod api;
mod cadvisor;
mod controllers;
mod discovery;
mod http;
mod inspect;
mod kubelet;
mod lifecycle;
pub mod metrics;
mod objects;
mod procs;
mod proxy;
pub mod rbac;
mod resources;
mod selector;
mod state;
mod table;
pub mod testkit;
mod tls;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// 1 MiB, for readable limits in tests.
pub const MI: u64 = 1 << 20;

/// One container of a pod template (the program is always the demo service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerTemplate {
    pub name: String,
    /// Memory limit in bytes: the cgroup limit and `resources.limits.memory`.
    pub limit: Option<u64>,
    /// Memory request in bytes (`resources.requests.memory`; defaults to the limit).
    pub request: Option<u64>,
    /// Environment of the container, shown in the pod spec; `DEMO_*` configure the demo service
    /// (e.g. `DEMO_BASELINE=24Mi`, `DEMO_GROW_PER_SEC=64Mi`, `DEMO_KEEP_PER_REQUEST=64Ki`).
    pub env: Vec<(String, String)>,
}

impl ContainerTemplate {
    /// A container named `app` with a memory limit.
    pub fn app(limit: u64) -> ContainerTemplate {
        ContainerTemplate::named("app").limit(limit)
    }

    /// A container without limit, request or env.
    pub fn named(name: &str) -> ContainerTemplate {
        ContainerTemplate {
            name: name.to_string(),
            limit: None,
            request: None,
            env: Vec::new(),
        }
    }

    pub fn limit(mut self, bytes: u64) -> ContainerTemplate {
        self.limit = Some(bytes);
        self
    }

    pub fn request(mut self, bytes: u64) -> ContainerTemplate {
        self.request = Some(bytes);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> ContainerTemplate {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

/// The pod template of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTemplate {
    pub containers: Vec<ContainerTemplate>,
}

impl PodTemplate {
    /// A pod with one container.
    pub fn app(container: ContainerTemplate) -> PodTemplate {
        PodTemplate {
            containers: vec![container],
        }
    }
}

/// How the cluster is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The namespace every workload lives in (e.g. "staging").
    pub namespace: String,
    /// How often PodMetrics are refreshed (1 s in tests; 15 s mimics metrics-server).
    pub metrics_resolution: Duration,
    /// Whether autoscaling.k8s.io/v1 (VPA) is served.
    pub vpa_crd_installed: bool,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            namespace: "staging".to_string(),
            metrics_resolution: Duration::from_secs(1),
            vpa_crd_installed: true,
        }
    }
}

/// What metrics.k8s.io does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsMode {
    /// Served normally.
    Normal,
    /// Registered but down: every metrics path answers 503 ServiceUnavailable.
    Unavailable503,
    /// Not installed: absent from `/apis`, every metrics path answers 404.
    NotFound404,
}

/// A fault on the autoscaling.k8s.io VPA reads (list and get; watches are served normally),
/// set with `SimCluster::set_vpa_fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpaFault {
    /// Served normally.
    None,
    /// Every VPA read answers this status (500 InternalError, 503 ServiceUnavailable, 429
    /// TooManyRequests) with a `metav1.Status` as the real API server words it.
    Status(u16),
    /// The connection is closed without any answer.
    DropConnection,
    /// The status line and headers are sent, with a `Content-Length` of the whole answer, then
    /// the connection is closed after the first bytes of the body (a dropped connection
    /// mid-response).
    CutBody,
    /// The answer is held back this long.
    Hang(Duration),
}

/// Extra process environment per replica slot (see `add_deployment_with`).
pub type ReplicaEnv = Arc<dyn Fn(usize) -> Vec<(String, String)> + Send + Sync>;

/// A running simulated cluster. See the module documentation.
pub struct SimCluster {
    shared: Arc<state::Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    kubeconfig: PathBuf,
    ca_pem: String,
    metrics_port: u16,
    /// Tokens bound to Roles (`issue_token_for_role`) and their authorization log.
    rbac: Arc<rbac::Authorizer>,
    /// Holds the kubeconfig, kubectl's cache and the containers' logs; removed on drop.
    dir: tempfile::TempDir,
}

/// Whether memory cgroups can be created here; with `CI=true` a missing capability panics
/// (tests must fail, not skip, in CI), otherwise a note is printed and false returned.
pub fn require_cgroups(test: &str) -> bool {
    match oomgate::memory::cgroup::MemoryCgroup::create("sim-probe", Some(64 << 20)) {
        Ok(cg) => {
            let _ = cg.remove();
            true
        }
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: CI=true but memory cgroups are not available: {e}");
            }
            eprintln!("note: {test} not run: memory cgroups are not available here: {e}");
            false
        }
    }
}

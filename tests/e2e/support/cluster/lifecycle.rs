//! Starting and stopping a `SimCluster` and changing its workloads: `start` builds the PKI,
//! binds the API, `/metrics` and Service ports on loopback, writes the kubeconfig and launches
//! the server, supervisor and scrape loops on the rig's own tokio runtime; `add_*` create a
//! Deployment (+ ReplicaSet) or StatefulSet with real pods and wait until they are ready;
//! `scale` and `delete_pod` behave like the controllers (a deleted replica is replaced; scale
//! down removes not-ready then newest pods, or the highest ordinals); `Drop` kills every process,
//! removes every cgroup and stops the runtime without blocking an async caller.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use oomgate::memory::cgroup::CgroupHierarchy;

use super::procs::{self, Spawner};
use super::state::{Kind, Shared, State, Workload};
use super::{api, cadvisor, kubelet, metrics, proxy, rbac, tls};
use super::{ClusterConfig, PodTemplate, ReplicaEnv, SimCluster};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Remove `oomgate-sim-*` cgroups left by rig processes that died without cleaning up (their
/// creator pid is in the name and no longer alive, and they hold no process).
fn sweep_stale_cgroups() {
    let Ok(h) = CgroupHierarchy::detect() else {
        return;
    };
    for parent in &h.parents {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with("oomgate-sim-") {
                continue;
            }
            let mut parts = name.rsplit('-');
            let (_n, pid) = (
                parts.next(),
                parts.next().and_then(|p| p.parse::<i32>().ok()),
            );
            let Some(pid) = pid else { continue };
            // SAFETY: kill with signal 0 only checks for existence.
            let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
            let empty = std::fs::read_to_string(e.path().join("cgroup.procs"))
                .is_ok_and(|s| s.trim().is_empty());
            if !alive && empty {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

fn bind_loopback() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.set_nonblocking(true).expect("non-blocking listener");
    l
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 50
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl SimCluster {
    /// Start a cluster with no workloads.
    pub fn start(cfg: ClusterConfig) -> SimCluster {
        sweep_stale_cgroups();
        let dir = tempfile::Builder::new()
            .prefix("sim-cluster-")
            .tempdir()
            .expect("temp dir for the simulated cluster");
        let log_dir = dir.path().join("logs");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let pki = tls::Pki::generate();
        let api_listener = bind_loopback();
        let api_port = api_listener.local_addr().expect("API address").port();
        let metrics_listener = bind_loopback();
        let metrics_port = metrics_listener
            .local_addr()
            .expect("metrics address")
            .port();
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64
            ^ (u64::from(std::process::id()) << 32);
        let mut state = State::new(seed);
        let token = format!("sim-{}", state.rand_hex(40));
        let (changed, _) = tokio::sync::watch::channel(state.rv);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            token: token.clone(),
            state: Mutex::new(state),
            changed,
            shutdown,
            spawner: Spawner::new(),
            bin: env!("CARGO_BIN_EXE_oomgate").into(),
            log_dir,
            api_port,
            started: Utc::now(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sim-cluster")
            .enable_all()
            .build()
            .expect("the simulated cluster's runtime");
        let rbac = Arc::new(rbac::Authorizer::default());
        runtime.spawn(api::serve(
            api_listener,
            pki.server_config,
            shared.clone(),
            rbac.clone(),
        ));
        runtime.spawn(cadvisor::serve(metrics_listener, shared.clone()));
        runtime.spawn(kubelet::supervise(shared.clone()));
        runtime.spawn(metrics::scrape_loop(shared.clone()));
        let kubeconfig = dir.path().join("kubeconfig");
        tls::write_kubeconfig(
            &kubeconfig,
            &format!("https://127.0.0.1:{api_port}"),
            &pki.ca_pem,
            &token,
            &cfg.namespace,
        )
        .expect("write the kubeconfig");
        SimCluster {
            shared,
            runtime: Some(runtime),
            kubeconfig,
            ca_pem: pki.ca_pem,
            metrics_port,
            rbac,
            dir,
        }
    }

    /// A Deployment `name` (app=`name`) with its ReplicaSet and `replicas` ready pods.
    pub fn add_deployment(&self, name: &str, replicas: u32, tpl: PodTemplate) {
        self.add_workload(Kind::Deployment, name, replicas, tpl, None);
    }

    /// Like `add_deployment`; `per_replica(slot)` gives extra process environment for the pod
    /// in replica slot `slot` (0-based; a replacement pod takes the slot of the pod it replaces,
    /// scaling up fills the lowest free slots). It reaches only the process, not the pod spec,
    /// like traffic that makes one replica behave differently.
    pub fn add_deployment_with(
        &self,
        name: &str,
        replicas: u32,
        tpl: PodTemplate,
        per_replica: impl Fn(usize) -> Vec<(String, String)> + Send + Sync + 'static,
    ) {
        let f: ReplicaEnv = Arc::new(per_replica);
        self.add_workload(Kind::Deployment, name, replicas, tpl, Some(f));
    }

    /// A StatefulSet `name` with pods `name-0`, `name-1`, … (slot = ordinal).
    pub fn add_statefulset(&self, name: &str, replicas: u32, tpl: PodTemplate) {
        self.add_workload(Kind::StatefulSet, name, replicas, tpl, None);
    }

    /// `add_statefulset` with per-ordinal process environment (see `add_deployment_with`).
    pub fn add_statefulset_with(
        &self,
        name: &str,
        replicas: u32,
        tpl: PodTemplate,
        per_replica: impl Fn(usize) -> Vec<(String, String)> + Send + Sync + 'static,
    ) {
        let f: ReplicaEnv = Arc::new(per_replica);
        self.add_workload(Kind::StatefulSet, name, replicas, tpl, Some(f));
    }

    fn add_workload(
        &self,
        kind: Kind,
        name: &str,
        replicas: u32,
        template: PodTemplate,
        per_replica: Option<ReplicaEnv>,
    ) {
        assert!(
            valid_name(name),
            "sim-cluster: invalid workload name {name:?}"
        );
        assert!(
            !template.containers.is_empty(),
            "sim-cluster: a pod needs a container"
        );
        let shared = &self.shared;
        let ns = shared.cfg.namespace.clone();
        let service = bind_loopback();
        let service_port = service.local_addr().expect("service address").port();
        let created = shared.update(|st| -> Result<(), String> {
            if st.workloads.contains_key(name) {
                return Err(format!("workload {name} exists already"));
            }
            let hash = st.rand_from(b"bcdfghjklmnpqrstvwxz2456789", 10);
            let uid = st.uid();
            let rs_uid = st.uid();
            st.workloads.insert(
                name.to_string(),
                Workload {
                    kind,
                    name: name.to_string(),
                    uid,
                    rs_uid,
                    hash,
                    created: Utc::now(),
                    generation: 1,
                    replicas,
                    template,
                    per_replica,
                    service_port,
                },
            );
            st.refresh_workload(&ns, name);
            for slot in 0..replicas as usize {
                procs::create_pod(shared, st, name, slot)?;
            }
            Ok(())
        });
        if let Err(e) = created {
            panic!("sim-cluster: adding {name}: {e}");
        }
        if let Some(rt) = &self.runtime {
            rt.spawn(proxy::serve(service, shared.clone(), name.to_string()));
        }
        self.expect_ready(name);
    }

    fn expect_ready(&self, workload: &str) {
        if !self.wait_ready(workload, READY_TIMEOUT) {
            let logs: Vec<String> = self
                .pod_names(workload)
                .iter()
                .map(|p| format!("--- {p}:\n{}", self.pod_log(p)))
                .collect();
            panic!(
                "sim-cluster: {workload} not ready within {READY_TIMEOUT:?}\n{}",
                logs.join("\n")
            );
        }
    }

    /// Wait until `workload` has exactly its replica count of pods, all ready and none
    /// terminating. False on timeout.
    pub fn wait_ready(&self, workload: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let done = {
                let st = self.shared.lock();
                let wl = st
                    .workloads
                    .get(workload)
                    .unwrap_or_else(|| panic!("sim-cluster: no workload {workload}"));
                let pods: Vec<_> = st
                    .pods
                    .values()
                    .filter(|p| p.workload == workload)
                    .collect();
                pods.len() == wl.replicas as usize && pods.iter().all(|p| p.ready())
            };
            if done {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Change the replica count (Deployment or StatefulSet); returns once the workload has
    /// exactly `replicas` ready pods (removed pods are terminated gracefully first).
    pub fn scale(&self, workload: &str, replicas: u32) {
        let shared = &self.shared;
        let ns = shared.cfg.namespace.clone();
        let victims = shared.update(|st| -> Result<Vec<String>, String> {
            let wl = st
                .workloads
                .get_mut(workload)
                .ok_or_else(|| format!("no workload {workload}"))?;
            wl.replicas = replicas;
            wl.generation += 1;
            let kind = wl.kind;
            let mut live: Vec<(bool, chrono::DateTime<Utc>, usize, String)> = st
                .pods
                .values()
                .filter(|p| p.workload == workload && p.deleting.is_none())
                .map(|p| (p.ready(), p.created, p.slot, p.name.clone()))
                .collect();
            let want = replicas as usize;
            let mut victims = Vec::new();
            if live.len() > want {
                match kind {
                    // Not ready first, then the newest.
                    Kind::Deployment => live.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1))),
                    Kind::StatefulSet => live.sort_by_key(|v| std::cmp::Reverse(v.2)),
                }
                victims = live[..live.len() - want]
                    .iter()
                    .map(|v| v.3.clone())
                    .collect();
            } else {
                let used: Vec<usize> = live.iter().map(|v| v.2).collect();
                let free: Vec<usize> = (0..)
                    .filter(|s| !used.contains(s))
                    .take(want - live.len())
                    .collect();
                for slot in free {
                    procs::create_pod(shared, st, workload, slot)?;
                }
            }
            st.refresh_workload(&ns, workload);
            Ok(victims)
        });
        let victims = victims.unwrap_or_else(|e| panic!("sim-cluster: scaling {workload}: {e}"));
        procs::delete_pods(shared, &victims);
        self.expect_ready(workload);
    }

    /// Delete a pod like `kubectl delete pod`: it terminates gracefully and its controller
    /// replaces it (a Deployment at once under a new name, a StatefulSet under the same name
    /// once the old one is gone). Returns the replacement's name once it is ready.
    pub fn delete_pod(&self, pod: &str) -> String {
        let shared = &self.shared;
        let (workload, slot, kind) = {
            let st = shared.lock();
            let p = st
                .pods
                .get(pod)
                .unwrap_or_else(|| panic!("sim-cluster: no pod {pod}"));
            let kind = st.workloads.get(&p.workload).map(|w| w.kind);
            (p.workload.clone(), p.slot, kind)
        };
        let mut replacement = None;
        if kind == Some(Kind::Deployment) {
            let r = shared.update(|st| procs::create_pod(shared, st, &workload, slot));
            replacement = Some(r.unwrap_or_else(|e| panic!("sim-cluster: replacing {pod}: {e}")));
        }
        procs::delete_pods(shared, &[pod.to_string()]);
        if kind == Some(Kind::StatefulSet) {
            let r = shared.update(|st| procs::create_pod(shared, st, &workload, slot));
            replacement = Some(r.unwrap_or_else(|e| panic!("sim-cluster: replacing {pod}: {e}")));
        }
        self.expect_ready(&workload);
        replacement.unwrap_or_default()
    }

    /// The kubeconfig file (cluster/user/context `sim`, current context `sim`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// PEM of the cluster's CA certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// `http://127.0.0.1:PORT/metrics`, the cAdvisor-style endpoint.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// `127.0.0.1:PORT` of the `/metrics` endpoint, for a Prometheus static target.
    pub fn metrics_target(&self) -> String {
        format!("127.0.0.1:{}", self.metrics_port)
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        let instances = {
            let mut st = self.shared.lock();
            st.shutting_down = true;
            let mut all = Vec::new();
            for pod in st.pods.values_mut() {
                for c in &mut pod.containers {
                    c.ready = false;
                    all.extend(c.inst.take());
                }
            }
            all
        };
        self.shared.shutdown.send_replace(true);
        std::thread::scope(|s| {
            for inst in instances {
                s.spawn(move || procs::terminate(inst, false));
            }
        });
        self.shared.spawner.stop();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl SimCluster {
    /// Test hook for untrusted names (issue 7, point 6): serve pod `pod` under `name` and rename
    /// its containers by `containers` (old, new), as an API server that did not validate names
    /// would. Watchers see the old pod DELETED and the renamed one ADDED; its processes keep
    /// running and its PodMetrics carry the new names from the next scrape. Only the API objects
    /// change: a renamed container must not be restarted (its cgroup and log file are named
    /// from the old names), and the cAdvisor `/metrics` text does not escape label values.
    pub fn rename_pod(&self, pod: &str, name: &str, containers: &[(&str, &str)]) {
        let ns = self.shared.cfg.namespace.clone();
        self.shared.update(|st| {
            let mut p = st
                .pods
                .remove(pod)
                .unwrap_or_else(|| panic!("sim-cluster: no pod {pod}"));
            st.remove::<k8s_openapi::api::core::v1::Pod>(pod);
            st.metrics.remove(pod);
            p.name = name.to_string();
            for c in &mut p.containers {
                if let Some((_, new)) = containers.iter().find(|(old, _)| *old == c.tpl.name) {
                    c.tpl.name = new.to_string();
                }
            }
            st.pods.insert(name.to_string(), p);
            st.refresh_pod(&ns, name);
        });
    }

    /// Test hook for the soak: (pod, timestamp in whole seconds as served) of every PodMetrics
    /// the metrics API serves right now, so a test polling it can tell which samples the source
    /// published.
    pub fn pod_metrics_stamps(&self) -> Vec<(String, i64)> {
        let st = self.shared.lock();
        st.metrics
            .iter()
            .map(|(pod, s)| (pod.clone(), s.timestamp.timestamp()))
            .collect()
    }
}

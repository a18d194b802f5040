//! The test-facing accessors and switches of a `SimCluster` that do not change workloads:
//! pod names, restart counts, URLs of Services and pods, live cgroup readings, container logs,
//! the API requests seen, the bearer token; and the switches for VPA objects, the metrics API
//! mode, injected metrics faults and simulated RBAC denials.

use std::path::PathBuf;

use chrono::Utc;

use super::state::Res;
use super::watch::event_line;
use super::{MetricsMode, SimCluster};

impl SimCluster {
    /// The bearer token the API server accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// `https://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.shared.api_port)
    }

    pub fn namespace(&self) -> &str {
        &self.shared.cfg.namespace
    }

    /// The workload's pods that are not terminating, by replica slot.
    pub fn pod_names(&self, workload: &str) -> Vec<String> {
        let st = self.shared.lock();
        let mut pods: Vec<(usize, String)> = st
            .pods
            .values()
            .filter(|p| p.workload == workload && p.deleting.is_none())
            .map(|p| (p.slot, p.name.clone()))
            .collect();
        pods.sort();
        pods.into_iter().map(|(_, n)| n).collect()
    }

    /// Sum of the pod's containers' restart counts (0 for an unknown pod).
    pub fn restarts(&self, pod: &str) -> u32 {
        let st = self.shared.lock();
        st.pods
            .get(pod)
            .map(|p| p.containers.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0)
    }

    /// `http://127.0.0.1:PORT`: the workload's Service (a per-connection round-robin proxy over
    /// its ready pods).
    pub fn service_url(&self, workload: &str) -> String {
        let st = self.shared.lock();
        let wl = st
            .workloads
            .get(workload)
            .unwrap_or_else(|| panic!("sim-cluster: no workload {workload}"));
        format!("http://127.0.0.1:{}", wl.service_port)
    }

    /// `http://127.0.0.1:PORT` of the pod's first container, bypassing the Service.
    pub fn pod_url(&self, pod: &str) -> String {
        let st = self.shared.lock();
        let p = st
            .pods
            .get(pod)
            .unwrap_or_else(|| panic!("sim-cluster: no pod {pod}"));
        format!("http://127.0.0.1:{}", p.containers[0].port)
    }

    /// The container's working set read from its cgroup now (None when not running).
    pub fn working_set(&self, pod: &str, container: &str) -> Option<u64> {
        let reader = {
            let st = self.shared.lock();
            let c = st
                .pods
                .get(pod)?
                .containers
                .iter()
                .find(|c| c.tpl.name == container)?;
            c.inst.as_ref()?.cgroup.reader()
        };
        reader.read().ok().map(|r| r.working_set)
    }

    /// The cgroup directory of the container's running instance.
    pub fn cgroup_path(&self, pod: &str, container: &str) -> Option<PathBuf> {
        let st = self.shared.lock();
        let c = st
            .pods
            .get(pod)?
            .containers
            .iter()
            .find(|c| c.tpl.name == container)?;
        Some(c.inst.as_ref()?.cgroup.path().to_path_buf())
    }

    /// The last 40 lines each container of the pod printed (all its instances).
    pub fn pod_log(&self, pod: &str) -> String {
        let names: Vec<String> = {
            let st = self.shared.lock();
            st.pods
                .get(pod)
                .map(|p| p.containers.iter().map(|c| c.tpl.name.clone()).collect())
                .unwrap_or_default()
        };
        let mut out = String::new();
        for c in names {
            let path = self.shared.log_dir.join(format!("{pod}_{c}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!("[{c}]\n{}\n", tail.join("\n")));
        }
        out
    }

    /// The API requests seen so far (`GET /path?query`), oldest first, at most 1000.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// Store (or replace) a VerticalPodAutoscaler, given as a full object. Missing
    /// apiVersion/kind, metadata.namespace, uid, generation, creationTimestamp and
    /// resourceVersion are filled in.
    pub fn set_vpa(&self, mut vpa: serde_json::Value) {
        let ns = self.shared.cfg.namespace.clone();
        self.shared.update(|st| {
            let name = vpa
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .expect("sim-cluster: a VPA needs metadata.name")
                .to_string();
            let existed = st.vpas.contains_key(&name);
            let uid = st.uid();
            st.rv += 1;
            let obj = vpa
                .as_object_mut()
                .expect("sim-cluster: a VPA is a JSON object");
            obj.entry("apiVersion")
                .or_insert("autoscaling.k8s.io/v1".into());
            obj.entry("kind").or_insert("VerticalPodAutoscaler".into());
            let meta = obj
                .get_mut("metadata")
                .and_then(|m| m.as_object_mut())
                .expect("metadata is an object");
            meta.entry("namespace").or_insert(ns.into());
            meta.entry("uid").or_insert(uid.into());
            meta.entry("generation").or_insert(1.into());
            meta.entry("creationTimestamp")
                .or_insert(Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string().into());
            meta.insert("resourceVersion".to_string(), st.rv.to_string().into());
            let labels = super::resources::value_labels(&vpa);
            let line = event_line(if existed { "MODIFIED" } else { "ADDED" }, &vpa);
            st.record(Res::Vpas, name.clone(), labels, line);
            st.vpas.insert(name, vpa);
        });
    }

    /// Remove a VerticalPodAutoscaler.
    pub fn delete_vpa(&self, name: &str) {
        self.shared.update(|st| {
            if let Some(mut vpa) = st.vpas.remove(name) {
                st.rv += 1;
                if let Some(m) = vpa.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    m.insert("resourceVersion".to_string(), st.rv.to_string().into());
                }
                let labels = super::resources::value_labels(&vpa);
                let line = event_line("DELETED", &vpa);
                st.record(Res::Vpas, name.to_string(), labels, line);
            }
        });
    }

    /// Make every VPA read (list, get) fail as `fault` says from now on; `VpaFault::None`
    /// serves them again.
    pub fn set_vpa_fault(&self, fault: super::VpaFault) {
        self.shared.lock().vpa_fault = fault;
    }

    /// Switch the metrics.k8s.io behaviour.
    pub fn set_metrics_mode(&self, mode: MetricsMode) {
        self.shared.lock().metrics_mode = mode;
    }

    /// Inject faults into PodMetrics requests from now on (a share of 503s or hangs, a shifted
    /// `timestamp`); the request count starts again at 0. `MetricsFaults::default()` = none.
    pub fn set_metrics_faults(&self, faults: super::metrics::MetricsFaults) {
        self.shared.lock().metrics_faults = super::metrics::FaultState { faults, seen: 0 };
    }

    /// Per-pod metrics faults from now on (a pod or container left out of PodMetrics and of
    /// `/metrics/cadvisor`, a frozen PodMetrics timestamp, NaN in cAdvisor, new pods' metrics
    /// delayed). `PodFaults::default()` = none.
    pub fn set_pod_faults(&self, faults: super::metrics::PodFaults) {
        self.shared.lock().pod_faults = faults;
    }

    /// Give one pod's container another memory limit, as a pod of an older ReplicaSet carries
    /// during a rollout: its spec (what the API serves) and its cgroup's limit both change.
    pub fn set_pod_limit(&self, pod: &str, container: &str, bytes: u64) {
        let ns = self.shared.cfg.namespace.clone();
        self.shared.update(|st| {
            let p = st
                .pods
                .get_mut(pod)
                .unwrap_or_else(|| panic!("sim-cluster: no pod {pod}"));
            let c = p
                .containers
                .iter_mut()
                .find(|c| c.tpl.name == container)
                .unwrap_or_else(|| panic!("sim-cluster: no container {container} in {pod}"));
            c.tpl.limit = Some(bytes);
            if let Some(i) = &c.inst {
                let dir = i.cgroup.path().to_path_buf();
                let file = match i.cgroup.version() {
                    oomgate::memory::cgroup::CgroupVersion::V1 => "memory.limit_in_bytes",
                    _ => "memory.max",
                };
                std::fs::write(dir.join(file), bytes.to_string())
                    .unwrap_or_else(|e| panic!("sim-cluster: setting {pod}'s limit: {e}"));
            }
            st.refresh_pod(&ns, pod);
        });
    }

    /// Answer `verb` (get, list, watch) on `resource` (e.g. "pods", "deployments",
    /// "verticalpodautoscalers") with 403 Forbidden from now on.
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.shared
            .lock()
            .forbidden
            .insert((verb.to_string(), resource.to_string()));
    }

    /// Undo `forbid`.
    pub fn allow(&self, verb: &str, resource: &str) {
        self.shared
            .lock()
            .forbidden
            .remove(&(verb.to_string(), resource.to_string()));
    }
}

//! The cluster's state behind one mutex: the API objects as k8s-openapi values (pods,
//! deployments, replica sets, stateful sets; VPAs as JSON), the global resourceVersion counter,
//! a bounded history of watch events (each already serialized as a `WatchEvent` line), and the
//! runtime side of every pod — its containers' real processes, cgroups, restart bookkeeping and
//! readiness. `commit` is the only way an object changes: it bumps the resourceVersion only when
//! the object really differs and records ADDED/MODIFIED; `remove` records DELETED. `Shared`
//! bundles the state with the configuration, the change notifier watch streams wait on and the
//! shutdown signal every background loop obeys.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, WatchEvent};
use k8s_openapi::{ListableResource, Metadata};
use oomgate::memory::cgroup::{CgroupReading, MemoryCgroup};
use serde::Serialize;

use super::metrics::Sample;
use super::{ClusterConfig, ContainerTemplate, MetricsMode, PodTemplate, ReplicaEnv};

/// Watch events kept for watches resuming from an older resourceVersion (older: 410 Gone).
pub(super) const HISTORY: usize = 1024;
/// Requests remembered for `SimCluster::requests`.
pub(super) const REQUEST_LOG: usize = 1000;

/// The resource kinds the rig serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Res {
    Pods,
    Deployments,
    ReplicaSets,
    StatefulSets,
    Vpas,
}

impl Res {
    /// (apiVersion, kind) of the objects of this resource.
    pub fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            Res::Pods => ("v1", "Pod"),
            Res::Deployments => ("apps/v1", "Deployment"),
            Res::ReplicaSets => ("apps/v1", "ReplicaSet"),
            Res::StatefulSets => ("apps/v1", "StatefulSet"),
            Res::Vpas => ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
        }
    }
}

/// One recorded watch event.
pub(super) struct Event {
    pub rv: u64,
    pub res: Res,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The serialized `{"type":…,"object":…}` line, without the newline.
    pub line: Arc<str>,
}

/// The stored API objects, by name (one namespace).
#[derive(Default)]
pub(super) struct Objects {
    pub pods: BTreeMap<String, Pod>,
    pub deployments: BTreeMap<String, Deployment>,
    pub replicasets: BTreeMap<String, ReplicaSet>,
    pub statefulsets: BTreeMap<String, StatefulSet>,
}

/// A k8s-openapi type the rig stores and serves.
pub(super) trait ApiObject:
    Serialize + Clone + PartialEq + Metadata<Ty = ObjectMeta> + ListableResource + Send + 'static
{
    const RES: Res;
    fn map(o: &Objects) -> &BTreeMap<String, Self>;
    fn map_mut(o: &mut Objects) -> &mut BTreeMap<String, Self>;
}

macro_rules! api_object {
    ($t:ty, $res:expr, $field:ident) => {
        impl ApiObject for $t {
            const RES: Res = $res;
            fn map(o: &Objects) -> &BTreeMap<String, Self> {
                &o.$field
            }
            fn map_mut(o: &mut Objects) -> &mut BTreeMap<String, Self> {
                &mut o.$field
            }
        }
    };
}
api_object!(Pod, Res::Pods, pods);
api_object!(Deployment, Res::Deployments, deployments);
api_object!(ReplicaSet, Res::ReplicaSets, replicasets);
api_object!(StatefulSet, Res::StatefulSets, statefulsets);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Deployment,
    StatefulSet,
}

/// A Deployment (with its one ReplicaSet) or a StatefulSet.
pub(super) struct Workload {
    pub kind: Kind,
    pub name: String,
    pub uid: String,
    /// The ReplicaSet's uid (deployments only).
    pub rs_uid: String,
    /// pod-template-hash (deployments) or the controller revision hash (stateful sets).
    pub hash: String,
    pub created: DateTime<Utc>,
    pub generation: i64,
    pub replicas: u32,
    pub template: PodTemplate,
    pub per_replica: Option<ReplicaEnv>,
    /// The TCP port of the workload's Service proxy.
    pub service_port: u16,
}

/// An exited container instance whose last reading cAdvisor still reports for a moment.
pub(super) struct Stale {
    pub id: String,
    pub reading: CgroupReading,
    pub until: Instant,
}

/// One running container process.
pub(super) struct Instance {
    pub child: Child,
    pub cgroup: MemoryCgroup,
    /// The 64-hex container id (`containerd://<id>`).
    pub id: String,
    pub started: DateTime<Utc>,
    pub pid: u32,
}

/// How the previous instance ended (`lastState.terminated`).
#[derive(Clone, Debug)]
pub(super) struct Terminated {
    pub reason: String,
    pub exit_code: i32,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub container_id: String,
}

pub(super) struct ContainerRt {
    pub tpl: ContainerTemplate,
    pub port: u16,
    /// Per-replica variables for the process only (not shown in the pod spec).
    pub extra_env: Vec<(String, String)>,
    pub inst: Option<Instance>,
    pub restart_count: u32,
    /// Crashes in a row without a long run in between (drives the back-off).
    pub crash_streak: u32,
    pub last_terminated: Option<Terminated>,
    /// When the next instance starts (None while one runs).
    pub restart_at: Option<Instant>,
    /// The back-off the container is waiting out, for the CrashLoopBackOff message.
    pub backoff_secs: u64,
    pub ready: bool,
    pub stale: Option<Stale>,
}

pub(super) struct PodRt {
    pub name: String,
    pub uid: String,
    pub workload: String,
    /// Replica slot (stateful set ordinal); what a `per_replica` function is called with.
    pub slot: usize,
    pub created: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    pub containers: Vec<ContainerRt>,
    pub deleting: Option<DateTime<Utc>>,
    pub last_ready: bool,
    pub ready_changed: DateTime<Utc>,
    /// Container id of the pod's pause (sandbox) container, for cAdvisor series.
    pub pause_id: String,
}

impl PodRt {
    pub fn ready(&self) -> bool {
        self.deleting.is_none() && self.containers.iter().all(|c| c.ready)
    }
}

pub(super) struct State {
    pub rv: u64,
    pub objects: Objects,
    /// VerticalPodAutoscaler objects as given, by name.
    pub vpas: BTreeMap<String, serde_json::Value>,
    pub history: VecDeque<Event>,
    pub workloads: BTreeMap<String, Workload>,
    pub pods: BTreeMap<String, PodRt>,
    pub metrics_mode: MetricsMode,
    /// Injected PodMetrics faults and clock offset (`set_metrics_faults`).
    pub metrics_faults: super::metrics::FaultState,
    /// Per-pod metrics faults (`set_pod_faults`).
    pub pod_faults: super::metrics::PodFaults,
    pub metrics: BTreeMap<String, Sample>,
    /// (verb, resource) pairs answered with 403 Forbidden.
    pub forbidden: BTreeSet<(String, String)>,
    /// Injected VPA read faults (`set_vpa_fault`).
    pub vpa_fault: super::VpaFault,
    pub requests: VecDeque<String>,
    pub shutting_down: bool,
    rng: u64,
}

impl State {
    pub fn new(seed: u64) -> State {
        State {
            rv: 1000,
            objects: Objects::default(),
            vpas: BTreeMap::new(),
            history: VecDeque::new(),
            workloads: BTreeMap::new(),
            pods: BTreeMap::new(),
            metrics_mode: MetricsMode::Normal,
            metrics_faults: Default::default(),
            pod_faults: Default::default(),
            metrics: BTreeMap::new(),
            forbidden: BTreeSet::new(),
            vpa_fault: super::VpaFault::None,
            requests: VecDeque::new(),
            shutting_down: false,
            rng: seed,
        }
    }

    /// splitmix64: enough randomness for names, uids and ids.
    pub fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` characters from `alphabet`.
    pub fn rand_from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[(self.next_u64() % alphabet.len() as u64) as usize]))
            .collect()
    }

    pub fn rand_hex(&mut self, n: usize) -> String {
        self.rand_from(b"0123456789abcdef", n)
    }

    /// A random version-4 UUID.
    pub fn uid(&mut self) -> String {
        let h = self.rand_hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    pub fn record(
        &mut self,
        res: Res,
        name: String,
        labels: BTreeMap<String, String>,
        line: String,
    ) {
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Event {
            rv: self.rv,
            res,
            name,
            labels,
            line: Arc::from(line),
        });
    }

    /// The oldest resourceVersion a watch may resume from without 410 Gone.
    pub fn oldest_resumable(&self) -> u64 {
        self.history.front().map(|e| e.rv - 1).unwrap_or(self.rv)
    }

    /// Store `obj`; when it is new or differs from the stored one (resourceVersion aside) bump
    /// the resourceVersion and record ADDED/MODIFIED. Returns whether anything changed.
    pub fn commit<T: ApiObject>(&mut self, mut obj: T) -> bool {
        let Some(name) = obj.metadata().name.clone() else {
            return false;
        };
        obj.metadata_mut().resource_version = None;
        let previous = T::map(&self.objects).get(&name);
        let added = previous.is_none();
        if let Some(prev) = previous {
            let mut prev = prev.clone();
            prev.metadata_mut().resource_version = None;
            if prev == obj {
                return false;
            }
        }
        self.rv += 1;
        obj.metadata_mut().resource_version = Some(self.rv.to_string());
        let labels = obj.metadata().labels.clone().unwrap_or_default();
        let event = if added {
            WatchEvent::Added(&obj)
        } else {
            WatchEvent::Modified(&obj)
        };
        let line = serde_json::to_string(&event).unwrap_or_default();
        self.record(T::RES, name.clone(), labels, line);
        T::map_mut(&mut self.objects).insert(name, obj);
        true
    }

    /// Remove an object, recording DELETED with its final state.
    pub fn remove<T: ApiObject>(&mut self, name: &str) -> Option<T> {
        let mut obj = T::map_mut(&mut self.objects).remove(name)?;
        self.rv += 1;
        obj.metadata_mut().resource_version = Some(self.rv.to_string());
        let labels = obj.metadata().labels.clone().unwrap_or_default();
        let line = serde_json::to_string(&WatchEvent::Deleted(&obj)).unwrap_or_default();
        self.record(T::RES, name.to_string(), labels, line);
        Some(obj)
    }
}

/// Everything the server tasks, the supervisor and the test-facing handle share.
pub(super) struct Shared {
    pub cfg: ClusterConfig,
    pub token: String,
    pub state: Mutex<State>,
    /// The latest resourceVersion; watch streams wait on it.
    pub changed: tokio::sync::watch::Sender<u64>,
    /// Becomes true when the cluster shuts down.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub spawner: super::procs::Spawner,
    /// The oomgate binary (its `demo-service` subcommand is every container's program).
    pub bin: PathBuf,
    pub log_dir: PathBuf,
    pub api_port: u16,
    pub started: DateTime<Utc>,
}

impl Shared {
    /// The state, even after a panic elsewhere poisoned the lock.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the state and wake the watch streams when the resourceVersion moved.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let before = st.rv;
        let out = f(&mut st);
        if st.rv != before {
            self.changed.send_replace(st.rv);
        }
        out
    }
}

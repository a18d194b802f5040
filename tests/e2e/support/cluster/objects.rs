//! The pods and namespaces the rig serves, built as k8s-openapi values from the runtime state:
//! a Pod per replica (spec with resources as Quantities, env and the real port, status with
//! conditions, container states, restart counts and `lastState.terminated` after a crash) and
//! the shared pieces of pod templates. `State::refresh_pod` rebuilds a pod and commits it (then
//! its workload, see `controllers`), so a watch sees MODIFIED exactly when something visible
//! changed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, EnvVar, HTTPGetAction, HostIP, Namespace,
    NamespaceSpec, NamespaceStatus, Pod, PodCondition, PodIP, PodSpec, PodStatus, PodTemplateSpec,
    Probe, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::state::{ContainerRt, Kind, PodRt, State, Workload};
use super::ContainerTemplate;

pub(super) const IMAGE: &str = "oomgate/demo:latest";
pub(super) const IMAGE_ID: &str =
    "docker.io/oomgate/demo@sha256:6f1d3c0a9be24d2b8e1a7c55f0e4b9d2c3a8f7e6d5c4b3a29180f7e6d5c4b3a2";
pub(super) const NODE: &str = "sim-node-1";

pub(super) fn time(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Bytes as the API server prints a BinarySI quantity: the largest exact binary suffix.
pub(super) fn binary_si(bytes: u64) -> String {
    for (suffix, shift) in [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ] {
        let unit = 1u64 << shift;
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The declared resources; like the API server, a limit without a request defaults the request.
fn resources(tpl: &ContainerTemplate) -> ResourceRequirements {
    let request = tpl.request.or(tpl.limit);
    let one = |v: Option<u64>| {
        v.map(|b| BTreeMap::from([("memory".to_string(), Quantity(binary_si(b)))]))
    };
    ResourceRequirements {
        limits: one(tpl.limit),
        requests: one(request),
        ..ResourceRequirements::default()
    }
}

fn container(tpl: &ContainerTemplate, port: Option<u16>) -> Container {
    let probe_port = port.map(i32::from).unwrap_or(8080);
    let env: Vec<EnvVar> = tpl
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            value_from: None,
        })
        .collect();
    let mut args = vec!["demo-service".to_string()];
    if let Some(p) = port {
        args.extend(["--listen".to_string(), format!("127.0.0.1:{p}")]);
    }
    Container {
        name: tpl.name.clone(),
        image: Some(IMAGE.to_string()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec!["oomgate".to_string()]),
        args: Some(args),
        env: (!env.is_empty()).then_some(env),
        ports: port.map(|p| {
            vec![ContainerPort {
                container_port: i32::from(p),
                name: Some("http".to_string()),
                protocol: Some("TCP".to_string()),
                ..ContainerPort::default()
            }]
        }),
        resources: Some(resources(tpl)),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".to_string()),
                port: IntOrString::Int(probe_port),
                scheme: Some("HTTP".to_string()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(1),
            timeout_seconds: Some(1),
            failure_threshold: Some(3),
            success_threshold: Some(1),
            ..Probe::default()
        }),
        termination_message_path: Some("/dev/termination-log".to_string()),
        termination_message_policy: Some("File".to_string()),
        ..Container::default()
    }
}

fn pod_spec(containers: Vec<Container>) -> PodSpec {
    let toleration = |key: &str| Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some("NoExecute".to_string()),
        toleration_seconds: Some(300),
        value: None,
    };
    PodSpec {
        containers,
        restart_policy: Some("Always".to_string()),
        termination_grace_period_seconds: Some(30),
        dns_policy: Some("ClusterFirst".to_string()),
        service_account_name: Some("default".to_string()),
        scheduler_name: Some("default-scheduler".to_string()),
        enable_service_links: Some(true),
        preemption_policy: Some("PreemptLowerPriority".to_string()),
        priority: Some(0),
        tolerations: Some(vec![
            toleration("node.kubernetes.io/not-ready"),
            toleration("node.kubernetes.io/unreachable"),
        ]),
        ..PodSpec::default()
    }
}

pub(super) fn template(
    wl: &Workload,
    template_labels: BTreeMap<String, String>,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(template_labels),
            ..ObjectMeta::default()
        }),
        spec: Some(pod_spec(
            wl.template
                .containers
                .iter()
                .map(|c| container(c, None))
                .collect(),
        )),
    }
}

fn condition(kind: &str, ok: bool, at: DateTime<Utc>, not_ready: &[String]) -> PodCondition {
    let (reason, message) = if ok || not_ready.is_empty() {
        (None, None)
    } else {
        (
            Some("ContainersNotReady".to_string()),
            Some(format!(
                "containers with unready status: [{}]",
                not_ready.join(" ")
            )),
        )
    };
    PodCondition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        last_transition_time: Some(time(at)),
        reason,
        message,
        ..PodCondition::default()
    }
}

fn container_status(ns: &str, pod: &PodRt, c: &ContainerRt) -> ContainerStatus {
    let state = match (&c.inst, &c.last_terminated) {
        (Some(inst), _) => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(inst.started)),
            }),
            ..ContainerState::default()
        },
        (None, Some(_)) if pod.deleting.is_none() => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("CrashLoopBackOff".to_string()),
                message: Some(format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    c.backoff_secs, c.tpl.name, pod.name, ns, pod.uid
                )),
            }),
            ..ContainerState::default()
        },
        _ => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".to_string()),
                message: None,
            }),
            ..ContainerState::default()
        },
    };
    let last_state = match &c.last_terminated {
        Some(t) => ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: Some(format!("containerd://{}", t.container_id)),
                exit_code: t.exit_code,
                reason: Some(t.reason.clone()),
                started_at: Some(time(t.started)),
                finished_at: Some(time(t.finished)),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        },
        None => ContainerState::default(),
    };
    let id = c
        .inst
        .as_ref()
        .map(|i| i.id.clone())
        .or_else(|| c.last_terminated.as_ref().map(|t| t.container_id.clone()));
    ContainerStatus {
        name: c.tpl.name.clone(),
        image: IMAGE.to_string(),
        image_id: IMAGE_ID.to_string(),
        container_id: id.map(|id| format!("containerd://{id}")),
        ready: c.ready,
        started: Some(c.inst.is_some()),
        restart_count: i32::try_from(c.restart_count).unwrap_or(i32::MAX),
        state: Some(state),
        last_state: Some(last_state),
        resources: Some(resources(&c.tpl)),
        ..ContainerStatus::default()
    }
}

fn pod_object(ns: &str, pod: &PodRt, wl: &Workload) -> Pod {
    let (owner_kind, owner_name, owner_uid) = match wl.kind {
        Kind::Deployment => ("ReplicaSet", format!("{}-{}", wl.name, wl.hash), &wl.rs_uid),
        Kind::StatefulSet => ("StatefulSet", wl.name.clone(), &wl.uid),
    };
    let mut spec = pod_spec(
        pod.containers
            .iter()
            .map(|c| container(&c.tpl, Some(c.port)))
            .collect(),
    );
    spec.node_name = Some(NODE.to_string());
    if wl.kind == Kind::StatefulSet {
        spec.hostname = Some(pod.name.clone());
        spec.subdomain = Some(wl.name.clone());
    }
    let any_resources = pod
        .containers
        .iter()
        .any(|c| c.tpl.limit.is_some() || c.tpl.request.is_some());
    let not_ready: Vec<String> = pod
        .containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.tpl.name.clone())
        .collect();
    let ready = pod.ready();
    let statuses: Vec<ContainerStatus> = pod
        .containers
        .iter()
        .map(|c| container_status(ns, pod, c))
        .collect();
    Pod {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            generate_name: (wl.kind == Kind::Deployment)
                .then(|| format!("{}-{}-", wl.name, wl.hash)),
            namespace: Some(ns.to_string()),
            uid: Some(pod.uid.clone()),
            creation_timestamp: Some(time(pod.created)),
            labels: Some(pod.labels.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: owner_kind.to_string(),
                name: owner_name,
                uid: owner_uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            deletion_timestamp: pod.deleting.map(time),
            deletion_grace_period_seconds: pod.deleting.map(|_| 30),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: Some(PodStatus {
            phase: Some("Running".to_string()),
            host_ip: Some("127.0.0.1".to_string()),
            host_ips: Some(vec![HostIP {
                ip: "127.0.0.1".to_string(),
            }]),
            pod_ip: Some("127.0.0.1".to_string()),
            pod_ips: Some(vec![PodIP {
                ip: "127.0.0.1".to_string(),
            }]),
            start_time: Some(time(pod.created)),
            qos_class: Some(
                if any_resources {
                    "Burstable"
                } else {
                    "BestEffort"
                }
                .to_string(),
            ),
            conditions: Some(vec![
                condition("PodReadyToStartContainers", true, pod.created, &[]),
                condition("Initialized", true, pod.created, &[]),
                condition("Ready", ready, pod.ready_changed, &not_ready),
                condition("ContainersReady", ready, pod.ready_changed, &not_ready),
                condition("PodScheduled", true, pod.created, &[]),
            ]),
            container_statuses: Some(statuses),
            ..PodStatus::default()
        }),
    }
}

/// A namespace object (`kubectl get ns`).
pub(super) fn namespace_object(name: &str, created: DateTime<Utc>) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            creation_timestamp: Some(time(created)),
            labels: Some(labels(&[("kubernetes.io/metadata.name", name)])),
            resource_version: Some("1".to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(NamespaceSpec {
            finalizers: Some(vec!["kubernetes".to_string()]),
        }),
        status: Some(NamespaceStatus {
            phase: Some("Active".to_string()),
            conditions: None,
        }),
    }
}

impl State {
    /// Rebuild the pod's object from its runtime state and commit it (then its workload's).
    pub fn refresh_pod(&mut self, ns: &str, name: &str) {
        let now = Utc::now();
        let Some(pod) = self.pods.get_mut(name) else {
            return;
        };
        let ready = pod.ready();
        if ready != pod.last_ready {
            pod.last_ready = ready;
            pod.ready_changed = now;
        }
        let Some(pod) = self.pods.get(name) else {
            return;
        };
        let Some(wl) = self.workloads.get(&pod.workload) else {
            return;
        };
        let workload = wl.name.clone();
        let obj = pod_object(ns, pod, wl);
        self.commit(obj);
        self.refresh_workload(ns, &workload);
    }
}

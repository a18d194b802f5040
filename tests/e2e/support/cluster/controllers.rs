//! The controllers' objects: the Deployment with its one ReplicaSet, or the StatefulSet, built
//! as k8s-openapi values from a workload and the readiness of its pods (replicas, ready and
//! available counts, Available/Progressing conditions, observed generation), and
//! `State::refresh_workload`, which commits them whenever a pod or the replica count changes.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, DeploymentStrategy,
    ReplicaSet, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::objects::{labels, template, time};
use super::state::{Kind, State, Workload};

/// (replicas, ready) over the workload's pods that are not terminating.
fn counts(st: &State, workload: &str) -> (i32, i32) {
    let pods = st
        .pods
        .values()
        .filter(|p| p.workload == workload && p.deleting.is_none());
    let (mut all, mut ready) = (0, 0);
    for p in pods {
        all += 1;
        if p.ready() {
            ready += 1;
        }
    }
    (all, ready)
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn deployment_objects(ns: &str, wl: &Workload, all: i32, ready: i32) -> (Deployment, ReplicaSet) {
    let app = labels(&[("app", &wl.name)]);
    let with_hash = labels(&[("app", &wl.name), ("pod-template-hash", &wl.hash)]);
    let replicas = i32::try_from(wl.replicas).unwrap_or(i32::MAX);
    let max_unavailable = replicas / 4;
    let available = ready >= replicas - max_unavailable;
    let cond = |kind: &str, ok: bool, reason: &str, message: String| DeploymentCondition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: Some(time(wl.created)),
        last_update_time: Some(time(wl.created)),
    };
    let rs_name = format!("{}-{}", wl.name, wl.hash);
    let deployment = Deployment {
        metadata: ObjectMeta {
            name: Some(wl.name.clone()),
            namespace: Some(ns.to_string()),
            uid: Some(wl.uid.clone()),
            generation: Some(wl.generation),
            creation_timestamp: Some(time(wl.created)),
            labels: Some(app.clone()),
            annotations: Some(labels(&[("deployment.kubernetes.io/revision", "1")])),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                match_expressions: None,
            },
            template: template(wl, app.clone()),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".to_string())),
                    max_unavailable: Some(IntOrString::String("25%".to_string())),
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(wl.generation),
            replicas: nonzero(all),
            updated_replicas: nonzero(all),
            ready_replicas: nonzero(ready),
            available_replicas: nonzero(ready),
            unavailable_replicas: nonzero((replicas - ready).max(0)),
            conditions: Some(vec![
                cond(
                    "Available",
                    available,
                    if available {
                        "MinimumReplicasAvailable"
                    } else {
                        "MinimumReplicasUnavailable"
                    },
                    if available {
                        "Deployment has minimum availability.".to_string()
                    } else {
                        "Deployment does not have minimum availability.".to_string()
                    },
                ),
                cond(
                    "Progressing",
                    true,
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                ),
            ]),
            ..DeploymentStatus::default()
        }),
    };
    let replica_set = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(rs_name),
            namespace: Some(ns.to_string()),
            uid: Some(wl.rs_uid.clone()),
            generation: Some(wl.generation),
            creation_timestamp: Some(time(wl.created)),
            labels: Some(with_hash.clone()),
            annotations: Some(labels(&[
                (
                    "deployment.kubernetes.io/desired-replicas",
                    &replicas.to_string(),
                ),
                (
                    "deployment.kubernetes.io/max-replicas",
                    &(replicas + (replicas + 3) / 4).to_string(),
                ),
                ("deployment.kubernetes.io/revision", "1"),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: "Deployment".to_string(),
                name: wl.name.clone(),
                uid: wl.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(with_hash.clone()),
                match_expressions: None,
            },
            template: Some(template(wl, with_hash)),
            min_ready_seconds: None,
        }),
        status: Some(ReplicaSetStatus {
            replicas: all,
            fully_labeled_replicas: nonzero(all),
            ready_replicas: nonzero(ready),
            available_replicas: nonzero(ready),
            observed_generation: Some(wl.generation),
            ..ReplicaSetStatus::default()
        }),
    };
    (deployment, replica_set)
}

fn statefulset_object(ns: &str, wl: &Workload, all: i32, ready: i32) -> StatefulSet {
    let app = labels(&[("app", &wl.name)]);
    let revision = format!("{}-{}", wl.name, wl.hash);
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(wl.name.clone()),
            namespace: Some(ns.to_string()),
            uid: Some(wl.uid.clone()),
            generation: Some(wl.generation),
            creation_timestamp: Some(time(wl.created)),
            labels: Some(app.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(i32::try_from(wl.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                match_expressions: None,
            },
            service_name: Some(wl.name.clone()),
            template: template(wl, app),
            pod_management_policy: Some("Parallel".to_string()),
            revision_history_limit: Some(10),
            ..StatefulSetSpec::default()
        }),
        status: Some(StatefulSetStatus {
            observed_generation: Some(wl.generation),
            replicas: all,
            ready_replicas: nonzero(ready),
            available_replicas: Some(ready),
            current_replicas: nonzero(all),
            updated_replicas: nonzero(all),
            current_revision: Some(revision.clone()),
            update_revision: Some(revision),
            collision_count: Some(0),
            ..StatefulSetStatus::default()
        }),
    }
}

impl State {
    /// Rebuild and commit the workload's objects (status counts follow pod readiness).
    pub fn refresh_workload(&mut self, ns: &str, name: &str) {
        let (all, ready) = counts(self, name);
        let Some(wl) = self.workloads.get(name) else {
            return;
        };
        match wl.kind {
            Kind::Deployment => {
                let (d, rs) = deployment_objects(ns, wl, all, ready);
                self.commit(d);
                self.commit(rs);
            }
            Kind::StatefulSet => {
                let s = statefulset_object(ns, wl, all, ready);
                self.commit(s);
            }
        }
    }
}

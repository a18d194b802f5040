//! Server-side printing, as `kubectl get` (without `-o`) asks for it with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: a `meta.k8s.io/v1` Table with the
//! API server's columns for pods (Ready, Status, Restarts "4 (3s ago)", Age, IP, Node),
//! deployments, replica sets and stateful sets, and the VPA CRD's printer columns (Mode, CPU,
//! Mem, Provided, Age). Each row carries the object as PartialObjectMetadata (the default), the
//! whole object (`includeObject=Object`) or nothing (`includeObject=None`).

use chrono::{DateTime, Utc};
use hyper::{Response, StatusCode};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use serde_json::{json, Value};

use super::http::{self, Body, Query};
use super::state::Res;

/// Whether the client asked for a Table.
pub(super) fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// Kubernetes' short human duration ("45s", "3m12s", "2h", "5d").
pub(super) fn age(since: Option<DateTime<Utc>>) -> String {
    let Some(since) = since else {
        return "<unknown>".to_string();
    };
    let s = (Utc::now() - since).num_seconds().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..600 if s % 60 == 0 => format!("{}m", s / 60),
        120..600 => format!("{}m{}s", s / 60, s % 60),
        600..10_800 => format!("{}m", s / 60),
        10_800..28_800 if (s / 60) % 60 == 0 => format!("{}h", s / 3600),
        10_800..28_800 => format!("{}h{}m", s / 3600, (s / 60) % 60),
        28_800..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn created(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<DateTime<Utc>> {
    let t = meta.creation_timestamp.as_ref()?;
    DateTime::from_timestamp(t.0.as_second(), 0)
}

fn column(name: &str, kind: &str, priority: i32) -> Value {
    json!({
        "name": name,
        "type": kind,
        "format": if name == "Name" { "name" } else { "" },
        "description": "",
        "priority": priority,
    })
}

fn containers_and_images(spec: Option<&PodSpec>) -> (String, String) {
    let cs = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    (
        cs.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        cs.iter()
            .map(|c| c.image.as_deref().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn selector(labels: Option<&std::collections::BTreeMap<String, String>>) -> String {
    labels
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A kind the API server prints as a table.
pub(super) trait Tabular: serde::Serialize {
    fn columns() -> Vec<Value>;
    fn cells(&self) -> Vec<Value>;
}

impl Tabular for Pod {
    fn columns() -> Vec<Value> {
        vec![
            column("Name", "string", 0),
            column("Ready", "string", 0),
            column("Status", "string", 0),
            column("Restarts", "string", 0),
            column("Age", "string", 0),
            column("IP", "string", 1),
            column("Node", "string", 1),
            column("Nominated Node", "string", 1),
            column("Readiness Gates", "string", 1),
        ]
    }

    fn cells(&self) -> Vec<Value> {
        let status = self.status.clone().unwrap_or_default();
        let statuses = status.container_statuses.unwrap_or_default();
        let ready = statuses.iter().filter(|s| s.ready).count();
        let restarts: i32 = statuses.iter().map(|s| s.restart_count).sum();
        let last_restart = statuses
            .iter()
            .filter_map(|s| {
                s.last_state
                    .as_ref()?
                    .terminated
                    .as_ref()?
                    .finished_at
                    .as_ref()
            })
            .max()
            .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0));
        let waiting = statuses
            .iter()
            .find_map(|s| s.state.as_ref()?.waiting.as_ref()?.reason.clone());
        let phase = if self.metadata.deletion_timestamp.is_some() {
            "Terminating".to_string()
        } else {
            waiting.unwrap_or_else(|| status.phase.unwrap_or_default())
        };
        let restarts = match last_restart {
            Some(t) if restarts > 0 => format!("{restarts} ({} ago)", age(Some(t))),
            _ => restarts.to_string(),
        };
        vec![
            json!(self.metadata.name),
            json!(format!("{ready}/{}", statuses.len())),
            json!(phase),
            json!(restarts),
            json!(age(created(&self.metadata))),
            json!(status.pod_ip.unwrap_or_default()),
            json!(self
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default()),
            json!("<none>"),
            json!("<none>"),
        ]
    }
}

impl Tabular for Deployment {
    fn columns() -> Vec<Value> {
        vec![
            column("Name", "string", 0),
            column("Ready", "string", 0),
            column("Up-to-date", "string", 0),
            column("Available", "string", 0),
            column("Age", "string", 0),
            column("Containers", "string", 1),
            column("Images", "string", 1),
            column("Selector", "string", 1),
        ]
    }

    fn cells(&self) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let (cs, images) = containers_and_images(spec.template.spec.as_ref());
        vec![
            json!(self.metadata.name),
            json!(format!(
                "{}/{}",
                st.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            json!(st.updated_replicas.unwrap_or(0)),
            json!(st.available_replicas.unwrap_or(0)),
            json!(age(created(&self.metadata))),
            json!(cs),
            json!(images),
            json!(selector(spec.selector.match_labels.as_ref())),
        ]
    }
}

impl Tabular for ReplicaSet {
    fn columns() -> Vec<Value> {
        vec![
            column("Name", "string", 0),
            column("Desired", "integer", 0),
            column("Current", "integer", 0),
            column("Ready", "integer", 0),
            column("Age", "string", 0),
            column("Containers", "string", 1),
            column("Images", "string", 1),
            column("Selector", "string", 1),
        ]
    }

    fn cells(&self) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let (cs, images) =
            containers_and_images(spec.template.as_ref().and_then(|t| t.spec.as_ref()));
        vec![
            json!(self.metadata.name),
            json!(spec.replicas.unwrap_or(1)),
            json!(st.replicas),
            json!(st.ready_replicas.unwrap_or(0)),
            json!(age(created(&self.metadata))),
            json!(cs),
            json!(images),
            json!(selector(spec.selector.match_labels.as_ref())),
        ]
    }
}

impl Tabular for StatefulSet {
    fn columns() -> Vec<Value> {
        vec![
            column("Name", "string", 0),
            column("Ready", "string", 0),
            column("Age", "string", 0),
            column("Containers", "string", 1),
            column("Images", "string", 1),
        ]
    }

    fn cells(&self) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let (cs, images) = containers_and_images(spec.template.spec.as_ref());
        vec![
            json!(self.metadata.name),
            json!(format!(
                "{}/{}",
                st.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            json!(age(created(&self.metadata))),
            json!(cs),
            json!(images),
        ]
    }
}

fn row_object(object: Value, q: &Query) -> Option<Value> {
    match q.get("includeObject") {
        Some("None") => None,
        Some("Object") => Some(object),
        _ => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or(Value::Null),
        })),
    }
}

fn table_value(columns: Vec<Value>, rows: Vec<(Vec<Value>, Value)>, rv: u64, q: &Query) -> Value {
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(cells, object)| match row_object(object, q) {
            Some(o) => json!({ "cells": cells, "object": o }),
            None => json!({ "cells": cells }),
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": rv.to_string() },
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// A Table of stored k8s-openapi objects.
pub(super) fn typed<T: Tabular>(objects: &[&T], rv: u64, q: &Query) -> Response<Body> {
    let rows = objects
        .iter()
        .map(|o| (o.cells(), serde_json::to_value(o).unwrap_or(Value::Null)))
        .collect();
    http::json(StatusCode::OK, &table_value(T::columns(), rows, rv, q))
}

/// A Table of VPAs with the VPA CRD's printer columns.
pub(super) fn vpas(objects: &[&Value], rv: u64, q: &Query) -> Response<Body> {
    http::json(StatusCode::OK, &vpa_table(objects, rv, q))
}

fn vpa_table(objects: &[&Value], rv: u64, q: &Query) -> Value {
    let columns = vec![
        column("Name", "string", 0),
        column("Mode", "string", 0),
        column("CPU", "string", 0),
        column("Mem", "string", 0),
        column("Provided", "string", 0),
        column("Age", "date", 0),
    ];
    let text = |v: Option<&Value>| v.and_then(|v| v.as_str()).unwrap_or("").to_string();
    let rows = objects
        .iter()
        .map(|v| {
            let target = v.pointer("/status/recommendation/containerRecommendations/0/target");
            let provided = v
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .and_then(|c| c.iter().find(|c| c["type"] == "RecommendationProvided"))
                .map(|c| text(c.get("status")));
            let cells = vec![
                json!(text(v.pointer("/metadata/name"))),
                json!(text(v.pointer("/spec/updatePolicy/updateMode"))),
                json!(text(target.and_then(|t| t.get("cpu")))),
                json!(text(target.and_then(|t| t.get("memory")))),
                json!(provided.unwrap_or_default()),
                json!(age(v
                    .pointer("/metadata/creationTimestamp")
                    .and_then(|t| t.as_str())
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)))),
            ];
            (cells, (*v).clone())
        })
        .collect();
    table_value(columns, rows, rv, q)
}

fn one<T: Tabular + serde::de::DeserializeOwned>(object: Value, rv: u64, q: &Query) -> Value {
    match serde_json::from_value::<T>(object.clone()) {
        Ok(o) => table_value(T::columns(), vec![(o.cells(), object)], rv, q),
        Err(_) => object,
    }
}

/// The one-row Table a watch event carries instead of `object` when a Table was asked for.
pub(super) fn of_object(res: Res, object: Value, q: &Query) -> Value {
    let rv = object
        .pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    match res {
        Res::Pods => one::<Pod>(object, rv, q),
        Res::Deployments => one::<Deployment>(object, rv, q),
        Res::ReplicaSets => one::<ReplicaSet>(object, rv, q),
        Res::StatefulSets => one::<StatefulSet>(object, rv, q),
        Res::Vpas => vpa_table(&[&object], rv, q),
    }
}

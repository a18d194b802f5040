//! Reads of stored objects: list (a k8s-openapi `List<T>` with the current resourceVersion,
//! filtered by `labelSelector`/`fieldSelector`), get (404 Status naming the resource when
//! absent) and watch, for pods, deployments, replica sets and stateful sets in the cluster's
//! namespace (another namespace lists empty, like a namespace without such objects); empty
//! daemon sets; the namespaces; and the VerticalPodAutoscalers stored by `set_vpa` (JSON
//! objects with a hand-built `VerticalPodAutoscalerList`, since no k8s-openapi type exists).

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::{Response, StatusCode};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use k8s_openapi::List;

use super::http::{self, Body, Query};
use super::selector::{FieldSelector, LabelSelector};
use super::state::{ApiObject, Res, Shared};
use super::table::{self, Tabular};
use super::watch::{self, Filter};

/// Namespaces that exist besides the cluster's own.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-node-lease", "kube-public", "kube-system"];

/// `metadata.labels` of a JSON object.
pub(super) fn value_labels(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn filter(shared: &Shared, ns: Option<&str>, q: &Query, pods: bool) -> Result<Filter, String> {
    let mut fields = vec!["metadata.name", "metadata.namespace"];
    if pods {
        fields.extend(["spec.nodeName", "status.phase"]);
    }
    Ok(Filter {
        namespace_ok: ns.is_none_or(|n| n == shared.cfg.namespace),
        namespace: shared.cfg.namespace.clone(),
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), &fields)?,
    })
}

/// list / get / watch of a stored k8s-openapi kind.
pub(super) fn typed<T: ApiObject + Tabular>(
    shared: &Arc<Shared>,
    ns: Option<&str>,
    name: Option<&str>,
    q: &Query,
    (group, plural): (&str, &str),
    as_table: bool,
) -> Response<Body> {
    if let Some(name) = name {
        let st = shared.lock();
        return match T::map(&st.objects).get(name) {
            Some(obj) if ns.is_none_or(|n| n == shared.cfg.namespace) => {
                if as_table {
                    table::typed(&[obj], st.rv, q)
                } else {
                    http::json(StatusCode::OK, obj)
                }
            }
            _ => http::object_not_found(plural, group, name),
        };
    }
    let f = match filter(shared, ns, q, T::RES == Res::Pods) {
        Ok(f) => f,
        Err(e) => return http::status(400, "BadRequest", e),
    };
    if q.flag("watch") {
        return watch::watch(shared.clone(), T::RES, f, q, as_table);
    }
    let st = shared.lock();
    let matching: Vec<&T> = T::map(&st.objects)
        .iter()
        .filter(|(n, o)| f.matches(n, o.metadata().labels.as_ref().unwrap_or(&BTreeMap::new())))
        .map(|(_, o)| o)
        .collect();
    if as_table {
        return table::typed(&matching, st.rv, q);
    }
    let items: Vec<T> = matching.into_iter().cloned().collect();
    http::json(
        StatusCode::OK,
        &List {
            items,
            metadata: ListMeta {
                resource_version: Some(st.rv.to_string()),
                ..ListMeta::default()
            },
        },
    )
}

/// Daemon sets: the rig has none.
pub(super) fn daemonsets(shared: &Shared, name: Option<&str>) -> Response<Body> {
    match name {
        Some(name) => http::object_not_found("daemonsets", "apps", name),
        None => http::json(
            StatusCode::OK,
            &List::<DaemonSet> {
                items: Vec::new(),
                metadata: ListMeta {
                    resource_version: Some(shared.lock().rv.to_string()),
                    ..ListMeta::default()
                },
            },
        ),
    }
}

pub(super) fn namespaces(shared: &Shared, name: Option<&str>) -> Response<Body> {
    let mut names: Vec<&str> = SYSTEM_NAMESPACES.to_vec();
    names.push(&shared.cfg.namespace);
    names.sort_unstable();
    names.dedup();
    let object = |n: &str| super::objects::namespace_object(n, shared.started);
    match name {
        Some(name) if names.contains(&name) => http::json(StatusCode::OK, &object(name)),
        Some(name) => http::object_not_found("namespaces", "", name),
        None => http::json(
            StatusCode::OK,
            &List::<Namespace> {
                items: names.into_iter().map(object).collect(),
                metadata: ListMeta {
                    resource_version: Some(shared.lock().rv.to_string()),
                    ..ListMeta::default()
                },
            },
        ),
    }
}

/// `/apis/autoscaling.k8s.io/v1/…` below the group version (`rest`).
pub(super) fn vpas(
    shared: &Arc<Shared>,
    rest: &[&str],
    q: &Query,
    as_table: bool,
) -> Response<Body> {
    let (ns, name) = match rest {
        ["verticalpodautoscalers"] => (None, None),
        ["namespaces", ns, "verticalpodautoscalers"] => (Some(*ns), None),
        ["namespaces", ns, "verticalpodautoscalers", name] => (Some(*ns), Some(*name)),
        _ => return http::path_not_found(),
    };
    if let Some(name) = name {
        let st = shared.lock();
        return match st.vpas.get(name) {
            Some(v) if ns.is_none_or(|n| n == shared.cfg.namespace) => {
                if as_table {
                    table::vpas(&[v], st.rv, q)
                } else {
                    http::json(StatusCode::OK, v)
                }
            }
            _ => http::object_not_found("verticalpodautoscalers", "autoscaling.k8s.io", name),
        };
    }
    let f = match filter(shared, ns, q, false) {
        Ok(f) => f,
        Err(e) => return http::status(400, "BadRequest", e),
    };
    if q.flag("watch") {
        return watch::watch(shared.clone(), Res::Vpas, f, q, as_table);
    }
    let st = shared.lock();
    let items: Vec<&serde_json::Value> = st
        .vpas
        .iter()
        .filter(|(n, v)| f.matches(n, &value_labels(v)))
        .map(|(_, v)| v)
        .collect();
    if as_table {
        return table::vpas(&items, st.rv, q);
    }
    http::json(
        StatusCode::OK,
        &serde_json::json!({
            "apiVersion": "autoscaling.k8s.io/v1",
            "kind": "VerticalPodAutoscalerList",
            "metadata": { "continue": "", "resourceVersion": st.rv.to_string() },
            "items": items,
        }),
    )
}

/// `pods/{name}/log`: what the container printed (all its instances), `tailLines` honoured.
pub(super) fn pod_log(shared: &Shared, ns: &str, name: &str, q: &Query) -> Response<Body> {
    let containers: Option<Vec<String>> = {
        let st = shared.lock();
        st.pods
            .get(name)
            .filter(|_| ns == shared.cfg.namespace)
            .map(|p| p.containers.iter().map(|c| c.tpl.name.clone()).collect())
    };
    let Some(containers) = containers else {
        return http::object_not_found("pods", "", name);
    };
    let container = match q.get("container") {
        Some(c) if containers.iter().any(|n| n == c) => c.to_string(),
        Some(c) => {
            return http::status(
                400,
                "BadRequest",
                format!("container {c} is not valid for pod {name}"),
            )
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return http::status(
                400,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ),
            )
        }
    };
    let path = shared.log_dir.join(format!("{name}_{container}.log"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = match q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let mut tail = lines[lines.len().saturating_sub(n)..].join("\n");
            if !tail.is_empty() {
                tail.push('\n');
            }
            tail
        }
        None => text,
    };
    http::text(StatusCode::OK, "text/plain", text)
}

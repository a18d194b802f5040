//! Resolves the measured Kubernetes workload: the Deployment, StatefulSet or DaemonSet (or a
//! bare label selector) named in the scenario, its label selector as a string, its live pods,
//! and per container the memory limit, request and literal environment read from those pods
//! (the template only serves to notice pods that differ from it mid-rollout). It also holds the
//! pure helpers other Kubernetes modules share: `Pod` → [`PodInfo`], label selector → string,
//! cluster quantities → bytes, and pod names → a Prometheus regex. It reads through the
//! `kube::Client` from [`crate::cluster`] and reports failures as [`ClusterError`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Pod, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};

use crate::cluster::{answered, classify, ClusterError};
use crate::scenario::{KubernetesSpec, WorkloadRef};
use crate::units::{format_bytes, parse_memory_quantity, UnitError};

/// One container's memory settings and literal environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerResources {
    pub name: String,
    /// `resources.limits.memory` in bytes.
    pub limit: Option<u64>,
    /// `resources.requests.memory` in bytes.
    pub request: Option<u64>,
    /// Environment variables with a literal `value` (`valueFrom` entries are skipped).
    pub env: Vec<(String, String)>,
}

/// One live pod of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    pub containers: Vec<ContainerResources>,
    /// `status.containerStatuses[].restartCount` by container name.
    pub restart_counts: BTreeMap<String, i32>,
    /// The pod's `Ready` condition is `True`.
    pub ready: bool,
    /// `metadata.creationTimestamp`, when the server gave one.
    pub created: Option<crate::model::Timestamp>,
}

/// What the gate measures in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedWorkload {
    pub namespace: String,
    /// `deployment/web`, `statefulset/db`, `pods with selector app=web`.
    pub description: String,
    /// The label selector as a string, e.g. `app=web,tier in (api,worker)`.
    pub selector: String,
    /// The workload template's containers (empty for a bare selector).
    pub template: Vec<ContainerResources>,
    /// The live pods, sorted by name, containers filtered to the scenario's list.
    pub pods: Vec<PodInfo>,
    /// Remarks for the report (pods that differ from the template, pods left out).
    pub notes: Vec<String>,
}

impl ResolvedWorkload {
    /// Each container's literal env, from the first pod (the template's values), for the
    /// runtime-setting lint.
    pub fn container_env(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.pods
            .first()
            .map(|p| {
                p.containers
                    .iter()
                    .map(|c| (c.name.clone(), c.env.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `deployment/web in staging`.
    pub fn label(&self) -> String {
        format!("{} in {}", self.description, self.namespace)
    }
}

/// Reads the workload, lists its pods and their memory settings.
pub async fn resolve(
    client: &kube::Client,
    spec: &KubernetesSpec,
) -> Result<ResolvedWorkload, ClusterError> {
    let ns = spec.namespace.as_str();
    let description = spec.workload.to_string();
    let not_found = |e: kube::Error, resource: &str| match classify(e, "get", resource, ns) {
        ClusterError::NotFound { namespace, .. } => ClusterError::NotFound {
            what: description.clone(),
            namespace,
        },
        other => other,
    };
    let (selector, template) = match &spec.workload {
        WorkloadRef::Deployment(name) => {
            let api = Api::<Deployment>::namespaced(client.clone(), ns);
            let d = answered(api.get(name), "get", "deployments")
                .await?
                .map_err(|e| not_found(e, "deployments"))?;
            let s = d.spec.ok_or_else(|| no_spec(&description))?;
            (s.selector, s.template)
        }
        WorkloadRef::StatefulSet(name) => {
            let api = Api::<StatefulSet>::namespaced(client.clone(), ns);
            let d = answered(api.get(name), "get", "statefulsets")
                .await?
                .map_err(|e| not_found(e, "statefulsets"))?;
            let s = d.spec.ok_or_else(|| no_spec(&description))?;
            (s.selector, s.template)
        }
        WorkloadRef::DaemonSet(name) => {
            let api = Api::<DaemonSet>::namespaced(client.clone(), ns);
            let d = answered(api.get(name), "get", "daemonsets")
                .await?
                .map_err(|e| not_found(e, "daemonsets"))?;
            let s = d.spec.ok_or_else(|| no_spec(&description))?;
            (s.selector, s.template)
        }
        WorkloadRef::Selector(sel) => {
            let pods = list_pods(client, ns, sel).await?;
            return assemble(
                description,
                ns,
                sel.clone(),
                Vec::new(),
                pods,
                &spec.containers,
            );
        }
    };
    let selector = label_selector_string(&selector).map_err(|m| {
        ClusterError::Workload(format!("{description} in {ns}: spec.selector: {m}"))
    })?;
    let template = template_resources(&template, &description)?;
    let pods = list_pods(client, ns, &selector).await?;
    assemble(description, ns, selector, template, pods, &spec.containers)
}

fn no_spec(description: &str) -> ClusterError {
    ClusterError::Workload(format!(
        "{description} has no spec; is it a complete object?"
    ))
}

async fn list_pods(
    client: &kube::Client,
    ns: &str,
    selector: &str,
) -> Result<Vec<Pod>, ClusterError> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let list = answered(
        api.list(&ListParams::default().labels(selector)),
        "list",
        "pods",
    )
    .await?
    .map_err(|e| classify(e, "list", "pods", ns))?;
    Ok(list.items)
}

fn template_resources(
    template: &PodTemplateSpec,
    description: &str,
) -> Result<Vec<ContainerResources>, ClusterError> {
    let Some(spec) = &template.spec else {
        return Ok(Vec::new());
    };
    spec.containers
        .iter()
        .map(|c| container_resources(c, None, &format!("{description} template")))
        .collect()
}

/// The pure part of [`resolve`]: from the listed pods to a [`ResolvedWorkload`].
pub fn assemble(
    description: String,
    namespace: &str,
    selector: String,
    template: Vec<ContainerResources>,
    mut pods: Vec<Pod>,
    containers_filter: &[String],
) -> Result<ResolvedWorkload, ClusterError> {
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut notes = Vec::new();
    let mut infos = Vec::new();
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded") | Some("Failed")) {
            let reason = pod.status.as_ref().and_then(|s| s.reason.as_deref());
            let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
            notes.push(format!(
                "pod {name} is {}{why} and is not measured",
                phase.unwrap_or_default()
            ));
            continue;
        }
        infos.push(pod_info(pod)?);
    }
    if infos.is_empty() {
        let message = match description.strip_prefix("pods with selector ") {
            Some(_) => format!(
                "no pods in {namespace} match the selector {selector}; check workload.kubernetes.selector and --namespace"
            ),
            None => format!("{description} in {namespace} has no pods (is it scaled to 0?)"),
        };
        return Err(ClusterError::Workload(message));
    }
    if !containers_filter.is_empty() {
        let mut present: Vec<&str> = infos
            .iter()
            .flat_map(|p| p.containers.iter().map(|c| c.name.as_str()))
            .collect();
        present.sort_unstable();
        present.dedup();
        let missing: Vec<&str> = containers_filter
            .iter()
            .map(String::as_str)
            .filter(|c| !present.contains(c))
            .collect();
        if !missing.is_empty() {
            return Err(ClusterError::Workload(format!(
                "container{} {} in no pod of {description} in {namespace} (its containers: {}); fix workload.kubernetes.containers",
                if missing.len() == 1 { "" } else { "s" },
                missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
                present.join(", ")
            )));
        }
    }
    let keep =
        |name: &str| containers_filter.is_empty() || containers_filter.iter().any(|c| c == name);
    let template: Vec<ContainerResources> =
        template.into_iter().filter(|c| keep(&c.name)).collect();
    for info in &mut infos {
        info.containers.retain(|c| keep(&c.name));
        info.restart_counts.retain(|c, _| keep(c));
    }
    // Pods whose settings differ from the template, or (bare selector) from the first pod.
    let (reference, reference_name) = if template.is_empty() {
        (
            infos[0].containers.clone(),
            format!("pod {}", infos[0].name),
        )
    } else {
        (template.clone(), format!("the {description} template"))
    };
    for info in &infos {
        for c in &info.containers {
            let Some(r) = reference.iter().find(|r| r.name == c.name) else {
                continue;
            };
            if (r.limit, r.request) != (c.limit, c.request) {
                notes.push(format!(
                    "pod {}: container {} has {}, {reference_name} has {} (a rollout in progress?); each pod is judged against its own limit",
                    info.name,
                    c.name,
                    describe_resources(c),
                    describe_resources(r)
                ));
            }
        }
    }
    Ok(ResolvedWorkload {
        namespace: namespace.to_string(),
        description,
        selector,
        template,
        pods: infos,
        notes,
    })
}

fn describe_resources(c: &ContainerResources) -> String {
    let show = |v: Option<u64>| v.map_or_else(|| "none".to_string(), format_bytes);
    format!("limit {} / request {}", show(c.limit), show(c.request))
}

/// A live pod's name, containers (memory settings as the kubelet applies them), restart counts
/// and readiness.
pub fn pod_info(pod: &Pod) -> Result<PodInfo, ClusterError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let applied = statuses
                .iter()
                .find(|s| s.name == c.name)
                .and_then(|s| s.resources.as_ref());
            container_resources(c, applied, &format!("pod {name}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let restart_counts = statuses
        .iter()
        .map(|s| (s.name.clone(), s.restart_count))
        .collect();
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Ok(PodInfo {
        name,
        containers,
        restart_counts,
        ready,
        created: pod.metadata.creation_timestamp.as_ref().and_then(k8s_time),
    })
}

/// A Kubernetes API time (k8s-openapi's jiff) on the model's clock.
pub fn k8s_time(
    t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Option<crate::model::Timestamp> {
    chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
}

/// A container's memory settings; `applied` (the container status's `resources`, set by
/// kubelets that resize in place) wins over the spec where it names memory.
pub fn container_resources(
    c: &Container,
    applied: Option<&ResourceRequirements>,
    owner: &str,
) -> Result<ContainerResources, ClusterError> {
    let memory = |field: &str| -> Result<Option<u64>, ClusterError> {
        let pick = |r: Option<&ResourceRequirements>| {
            let map = match field {
                "limits" => r.and_then(|r| r.limits.as_ref()),
                _ => r.and_then(|r| r.requests.as_ref()),
            };
            map.and_then(|m| m.get("memory")).map(|q| q.0.clone())
        };
        let Some(text) = pick(applied).or_else(|| pick(c.resources.as_ref())) else {
            return Ok(None);
        };
        cluster_quantity(&text).map(Some).map_err(|e| {
            ClusterError::Workload(format!(
                "{owner}, container {}: resources.{field}.memory: {e}",
                c.name
            ))
        })
    };
    let env = c
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|e| e.value_from.is_none())
        .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
        .collect();
    Ok(ContainerResources {
        name: c.name.clone(),
        limit: memory("limits")?,
        request: memory("requests")?,
        env,
    })
}

/// A memory quantity as the cluster reports it, in bytes. Like
/// [`parse_memory_quantity`], but a milli/micro/nano-byte value (which Kubernetes can print
/// after arithmetic on quantities) is rounded up to whole bytes instead of refused.
pub fn cluster_quantity(text: &str) -> Result<u64, UnitError> {
    match parse_memory_quantity(text) {
        Err(UnitError::FractionOfByte { .. }) => {
            let t = text.trim();
            let divisor: u64 = match t.chars().last() {
                Some('m') => 1_000,
                Some('u') => 1_000_000,
                Some('n') => 1_000_000_000,
                _ => return parse_memory_quantity(text),
            };
            let units = parse_memory_quantity(&t[..t.len() - 1])?;
            Ok(units.div_ceil(divisor))
        }
        other => other,
    }
}

/// `spec.selector` as a label selector string: `app=web,tier in (a,b),!canary`.
pub fn label_selector_string(sel: &LabelSelector) -> Result<String, String> {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for req in sel.match_expressions.iter().flatten() {
        let values = req.values.clone().unwrap_or_default();
        let list = || format!("({})", values.join(","));
        let part = match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "matchExpressions `{} {}` has no values",
                    req.key, req.operator
                ))
            }
            "In" => format!("{} in {}", req.key, list()),
            "NotIn" => format!("{} notin {}", req.key, list()),
            "Exists" => req.key.clone(),
            "DoesNotExist" => format!("!{}", req.key),
            other => {
                return Err(format!(
                    "matchExpressions operator `{other}` on `{}` is not In, NotIn, Exists or DoesNotExist",
                    req.key
                ))
            }
        };
        parts.push(part);
    }
    if parts.is_empty() {
        return Err("the selector is empty and would match every pod in the namespace".into());
    }
    Ok(parts.join(","))
}

/// An anchored regular expression matching exactly these pod names, for Prometheus' `$pods`:
/// `^(?:web-1|web-2)$` (`.` and other metacharacters escaped). No names → matches nothing.
pub fn pods_regex(names: &[String]) -> String {
    if names.is_empty() {
        return "^$".to_string();
    }
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    sorted.dedup();
    let alternatives: Vec<String> = sorted.iter().map(|n| regex_escape(n)).collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// Escapes regex metacharacters; `.` and friends as one-character classes so no backslash is
/// needed (PromQL string literals would need it doubled).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '{' | '}' | '$' => {
                out.push('[');
                out.push(ch);
                out.push(']');
            }
            '^' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
}

/// `(kind, name)` for VPA `targetRef` matching, e.g. `("Deployment", "web")`; `None` for a
/// bare selector.
pub fn workload_kind_name(w: &WorkloadRef) -> Option<(&'static str, &str)> {
    match w {
        WorkloadRef::Deployment(n) => Some(("Deployment", n)),
        WorkloadRef::StatefulSet(n) => Some(("StatefulSet", n)),
        WorkloadRef::DaemonSet(n) => Some(("DaemonSet", n)),
        WorkloadRef::Selector(_) => None,
    }
}

#[cfg(test)]
pub(crate) mod fake_api;
#[cfg(test)]
mod tests;

//! A Kubernetes workload for a run, and its preflight (`oomgate check`): connect with the
//! kubeconfig or the in-cluster service account, resolve the workload to its pods and their
//! limits, read the VPA, pick the memory source (metrics API or Prometheus), and follow the pods
//! with a watcher for the whole run (new pods are measured, gone pods keep their samples,
//! restarts and OOM kills become events), and follow how pods end (deleted, or evicted with
//! reason `Evicted`) for the `pod-deleted` rule.

use std::io::Write;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use super::{measure, Prepared, RunContext, RunResult, WorkloadEvent};
use crate::cluster::{self, ClusterAccess};
use crate::load::LoadDriver;
use crate::memory::metrics_api::MetricsApiSource;
use crate::memory::prometheus::{PrometheusClient, PrometheusSource};
use crate::memory::sampler::Sampler;
use crate::memory::MemorySource;
use crate::model::VpaStatus;
use crate::scenario::{KubernetesSpec, Scenario, SourceKind, WorkloadRef};
use crate::units::{format_bytes, format_duration};
use crate::workload::kubernetes::{self as k8s, PodInfo, ResolvedWorkload};
use crate::workload::restarts::{check_watch_access, watch_restarts, WatchUpdate};
use crate::workload::vpa::{read_vpa_checked, VpaError};
use k8s_openapi::api::core::v1::Pod;

/// The containers of a pod that are measured, as (name, limit, request).
fn measured(pod: &PodInfo, filter: &[String]) -> Vec<(String, Option<u64>, Option<u64>)> {
    pod.containers
        .iter()
        .filter(|c| filter.is_empty() || filter.contains(&c.name))
        .map(|c| (c.name.clone(), c.limit, c.request))
        .collect()
}

/// The VPA the policy asks for; RBAC refusing to list VPAs is an error (the gate must not pass
/// a comparison it could not make), and so is `policy.vpa.name` naming a VPA that does not
/// exist (`scenario.yaml:14:11: policy.vpa.name: no VerticalPodAutoscaler named …`).
pub(super) async fn read_vpa_for(
    client: &kube::Client,
    sc: &Scenario,
    k: &KubernetesSpec,
) -> Result<Option<VpaStatus>, VpaError> {
    let Some(policy) = sc.vpa.as_ref() else {
        return Ok(None);
    };
    let (kind, name) = match &k.workload {
        WorkloadRef::Deployment(n) => ("Deployment", n.as_str()),
        WorkloadRef::StatefulSet(n) => ("StatefulSet", n.as_str()),
        WorkloadRef::DaemonSet(n) => ("DaemonSet", n.as_str()),
        WorkloadRef::Selector(_) if policy.name.is_none() => {
            return Ok(Some(VpaStatus::Unavailable {
                reason: "a workload given by selector has no controller a VPA could target: name the VPA with policy.vpa.name"
                    .into(),
            }))
        }
        WorkloadRef::Selector(_) => ("", ""),
    };
    match read_vpa_checked(client, &k.namespace, policy.name.as_deref(), kind, name).await {
        Err(VpaError::NoSuchVpa(reason)) => Err(VpaError::NoSuchVpa(
            sc.error_at("policy.vpa.name", reason).to_string(),
        )),
        other => other.map(Some),
    }
}

fn memory_source(
    sc: &Scenario,
    client: &kube::Client,
    k: &KubernetesSpec,
    resolved: &ResolvedWorkload,
    pods: Arc<RwLock<Vec<String>>>,
) -> Result<Box<dyn MemorySource>> {
    Ok(match sc.memory.source {
        SourceKind::MetricsApi => Box::new(MetricsApiSource::new(
            client.clone(),
            k.namespace.clone(),
            resolved.selector.clone(),
            k.containers.clone(),
        )),
        SourceKind::Prometheus => {
            let spec = sc
                .memory
                .prometheus
                .as_ref()
                .context("memory.prometheus is missing")?;
            let token = match &spec.bearer_token_env {
                Some(var) => Some(std::env::var(var).with_context(|| {
                    format!("memory.prometheus.bearer_token_env names {var}, which is not set")
                })?),
                None => None,
            };
            let client =
                PrometheusClient::new(spec, token).context("setting up the Prometheus client")?;
            Box::new(PrometheusSource::new(
                client,
                spec.query.clone(),
                k.namespace.clone(),
                pods,
                k.containers.clone(),
            ))
        }
        SourceKind::Cgroup => anyhow::bail!("the cgroup source measures local workloads only"),
    })
}

pub(super) async fn execute(
    sc: &Scenario,
    k: &KubernetesSpec,
    ctx: &RunContext,
    driver: Box<dyn LoadDriver>,
) -> Result<RunResult> {
    // A signal while connecting and resolving ends the command at once (no run, no report).
    let (client, resolved) = tokio::select! {
        r = async {
            let client = cluster::connect(&ctx.access).await?;
            let resolved = k8s::resolve(&client, k).await?;
            anyhow::Ok((client, resolved))
        } => r?,
        _ = super::interrupted_wait() => anyhow::bail!("interrupted while connecting to the cluster and resolving the workload; no load was sent"),
    };
    log::info!(
        "{} in {}: {} pods ({})",
        resolved.description,
        resolved.namespace,
        resolved.pods.len(),
        resolved
            .pods
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for note in &resolved.notes {
        log::warn!("{note}");
    }
    // Restarts and OOM kills are seen only through a watch on the pods: no run without it.
    check_watch_access(&client, &k.namespace, &resolved.selector).await?;
    let vpa = read_vpa_for(&client, sc, k).await?;
    let pods = Arc::new(RwLock::new(
        resolved
            .pods
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>(),
    ));
    let mut source = memory_source(sc, &client, k, &resolved, Arc::clone(&pods))?;
    // A source that refuses the gate's credentials is a configuration error: stop before the
    // load. One that cannot answer now is said loudly; the run goes on and coverage decides.
    let name = source.name();
    tokio::select! {
        r = source.poll() => match r {
            Err(e @ crate::memory::SourceError::Denied(_)) => {
                anyhow::bail!("the {name} memory source refused the gate's credentials: {e}; no load was sent")
            }
            Err(e) => log::warn!("the {name} memory source does not answer: {e}"),
            Ok(_) => {}
        },
        _ = super::interrupted_wait() => anyhow::bail!("interrupted while probing the {name} memory source; no load was sent"),
    }
    let mut sampler = Sampler::new();
    let mut allowed = Vec::new();
    for pod in &resolved.pods {
        for (c, limit, request) in measured(pod, &k.containers) {
            if let Some(l) = limit {
                allowed.push((c.clone(), crate::model::allowed_peak(l, sc.policy.headroom)));
            }
            sampler.declare(&pod.name, &c, limit, request);
        }
    }
    allowed.dedup_by(|a, b| a.0 == b.0);
    let (mut updates, watch_task) = watch_restarts(
        client.clone(),
        k.namespace.clone(),
        resolved.selector.clone(),
        &resolved.pods,
    );
    let (tx, rx) = mpsc::channel(64);
    let tx_endings = tx.clone();
    let filter = k.containers.clone();
    let pods_for_task = Arc::clone(&pods);
    let forward = tokio::spawn(async move {
        while let Some(u) = updates.recv().await {
            let ev = match u {
                WatchUpdate::PodSeen(p) => {
                    if let Ok(mut names) = pods_for_task.write() {
                        if !names.contains(&p.name) {
                            names.push(p.name.clone());
                        }
                    }
                    WorkloadEvent::PodSeen {
                        containers: measured(&p, &filter),
                        pod: p.name,
                    }
                }
                WatchUpdate::PodGone(name) => WorkloadEvent::PodGone {
                    pod: name,
                    reason: None,
                },
                WatchUpdate::Restart(e) if filter.is_empty() || filter.contains(&e.container) => {
                    WorkloadEvent::Restart(e)
                }
                WatchUpdate::Restart(e) => {
                    log::info!(
                        "{} in pod {} restarted; it is not a measured container",
                        e.container,
                        e.pod
                    );
                    continue;
                }
                WatchUpdate::Error(e) => WorkloadEvent::Error(e),
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    let endings = watch_endings(
        client.clone(),
        k.namespace.clone(),
        resolved.selector.clone(),
        Arc::clone(&pods),
        tx_endings,
    );
    let prepared = Prepared {
        source,
        sampler,
        events: rx,
        stop_on_oom: sc.stop_on_oom,
        limit_enforced: true,
        notes: resolved.notes.clone(),
        workload: resolved.label(),
        vpa,
        allowed,
        env: resolved.container_env(),
        baseline: ctx.baseline.clone(),
    };
    let result = measure(sc, driver, prepared).await;
    watch_task.abort();
    forward.abort();
    endings.abort();
    result
}

/// Follows how the measured pods end, which the restart watcher does not say: a pod the kubelet
/// evicted stays listed (phase `Failed`, reason `Evicted`) while its controller replaces it,
/// and a deleted pod's last status may carry the reason it was removed for. Each measured pod
/// is reported once, as `PodGone` with its reason; errors are left to the restart watcher,
/// which watches the same pods.
fn watch_endings(
    client: kube::Client,
    namespace: String,
    selector: String,
    measured: Arc<RwLock<Vec<String>>>,
    tx: mpsc::Sender<WorkloadEvent>,
) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    use kube::runtime::WatchStreamExt;
    tokio::spawn(async move {
        let api = kube::Api::<Pod>::namespaced(client, &namespace);
        let config = watcher::Config::default().labels(&selector);
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut reported: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let (pod, deleted) = match item {
                Ok(Event::Apply(p)) | Ok(Event::InitApply(p)) => (p, false),
                Ok(Event::Delete(p)) => (p, true),
                _ => continue,
            };
            let Some((name, reason)) = ending(&pod, deleted) else {
                continue;
            };
            let is_measured = measured.read().map(|m| m.contains(&name)).unwrap_or(false);
            if !is_measured || reported.contains(&name) {
                continue;
            }
            reported.push(name.clone());
            let ev = WorkloadEvent::PodGone { pod: name, reason };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    })
}

/// A pod that has ended, with its reason: deleted (any reason, or none), or still listed but
/// failed with a reason (`Evicted`).
fn ending(pod: &Pod, deleted: bool) -> Option<(String, Option<String>)> {
    let name = pod.metadata.name.clone()?;
    let reason = end_reason(pod);
    let failed = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed");
    if deleted || (failed && reason.is_some()) {
        Some((name, reason))
    } else {
        None
    }
}

/// Why a pod ended: its `status.reason` (`Evicted` from the kubelet), else the reason of a true
/// `DisruptionTarget` condition (`EvictionByEvictionAPI`, `TerminationByKubelet`, …).
fn end_reason(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if let Some(r) = status.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        return Some(r.trim().to_string());
    }
    status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
        .and_then(|c| c.reason.clone())
        .filter(|r| !r.trim().is_empty())
}

/// `oomgate check` for a Kubernetes scenario: every missing piece is an error (exit 2).
pub async fn check(
    sc: &Scenario,
    k: &KubernetesSpec,
    access: &ClusterAccess,
    out: &mut dyn Write,
) -> Result<()> {
    // Names come from the cluster: never let one move the cursor or forge a line.
    let clean = crate::report::sanitize_terminal;
    let client = cluster::connect(access).await?;
    let version = cluster::probe(&client).await?;
    writeln!(out, "  cluster: reachable, Kubernetes {version}")?;
    let resolved = k8s::resolve(&client, k).await?;
    writeln!(
        out,
        "  workload: {} in namespace {} (selector {})",
        clean(&resolved.description),
        clean(&resolved.namespace),
        clean(&resolved.selector)
    )?;
    // The run watches the pods for restarts and OOM kills: that must be allowed too.
    check_watch_access(&client, &k.namespace, &resolved.selector).await?;
    let vpa = read_vpa_for(&client, sc, k).await?;
    for pod in &resolved.pods {
        writeln!(
            out,
            "    pod {}{}",
            clean(&pod.name),
            if pod.ready { "" } else { " (not ready)" }
        )?;
        for (c, limit, request) in measured(pod, &k.containers) {
            let target = match &vpa {
                Some(VpaStatus::Recommendation { containers, .. }) => containers
                    .iter()
                    .find(|r| r.container == c)
                    .and_then(|r| r.target)
                    .map(format_bytes),
                _ => None,
            };
            writeln!(
                out,
                "      container {}: limit {}, allowed peak {}, request {}, VPA target {}",
                clean(&c),
                limit.map(format_bytes).unwrap_or_else(|| "none".into()),
                limit
                    .map(|l| format_bytes(crate::model::allowed_peak(l, sc.policy.headroom)))
                    .unwrap_or_else(|| "-".into()),
                request.map(format_bytes).unwrap_or_else(|| "none".into()),
                target.unwrap_or_else(|| "-".into())
            )?;
        }
    }
    for note in &resolved.notes {
        writeln!(out, "  note: {}", clean(note))?;
    }
    match &vpa {
        None => {}
        Some(VpaStatus::Recommendation {
            name,
            low_confidence,
            ..
        }) => writeln!(
            out,
            "  VPA {}: recommendation present{}",
            clean(name),
            if *low_confidence {
                " (LowConfidence: VPA findings will only warn)"
            } else {
                ""
            }
        )?,
        Some(VpaStatus::NoRecommendation { name }) => writeln!(
            out,
            "  VPA {}: no recommendation yet (the recommender needs days of history)",
            clean(name)
        )?,
        Some(VpaStatus::Unavailable { reason }) => writeln!(out, "  VPA: {}", clean(reason))?,
        // The gate would be inconclusive on the VPA rules: `check` says so and fails.
        Some(VpaStatus::ReadFailed { reason }) => anyhow::bail!(
            "the VerticalPodAutoscaler could not be read, so policy.vpa cannot be judged: {reason}"
        ),
    }
    let pods = Arc::new(RwLock::new(
        resolved
            .pods
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>(),
    ));
    let mut source = memory_source(sc, &client, k, &resolved, pods)?;
    let resolution = match sc.memory.source {
        SourceKind::MetricsApi => {
            "metrics-server refreshes every 15–60 s (its --metric-resolution)"
        }
        SourceKind::Prometheus => "as fine as Prometheus's scrape interval",
        SourceKind::Cgroup => "",
    };
    writeln!(
        out,
        "  memory: {} source, sampled every {}; resolution {resolution}",
        sc.memory.source,
        format_duration(sc.memory.interval)
    )?;
    let mut sample = source.poll().await.map_err(|e| {
        anyhow::anyhow!("the {} memory source gives no data: {e}", sc.memory.source)
    })?;
    sample.retain(|o| o.bad_value.is_none());
    if sample.is_empty() {
        anyhow::bail!(
            "the {} memory source answered but has no data for these pods yet (metrics-server lists a pod only after two scrapes; try again in a minute)",
            sc.memory.source
        );
    }
    for o in &sample {
        writeln!(
            out,
            "    live sample: {}/{} working set {} at {}",
            clean(&o.pod),
            clean(&o.container),
            format_bytes(o.working_set),
            o.at.format("%H:%M:%S")
        )?;
    }
    let missing = without_sample(&resolved, &k.containers, &sample);
    if !missing.is_empty() {
        anyhow::bail!(
            "the {} memory source has no live sample for {}: the gate could not measure it, so it is not ready to gate \
             (metrics-server lists a new pod only after two scrapes: try again in a minute; a pod missing for longer is \
             dropped by metrics-server, e.g. when one of its containers reads 0)",
            sc.memory.source,
            missing
                .iter()
                .map(|(p, c)| format!("{}/{}", clean(p), clean(c)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// The (pod, container) pairs of the workload that `sample` has no reading for.
fn without_sample(
    resolved: &ResolvedWorkload,
    filter: &[String],
    sample: &[crate::memory::Observation],
) -> Vec<(String, String)> {
    resolved
        .pods
        .iter()
        .flat_map(|p| {
            measured(p, filter)
                .into_iter()
                .map(move |(c, _, _)| (p.name.clone(), c))
        })
        .filter(|(p, c)| !sample.iter().any(|o| &o.pod == p && &o.container == c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "web-1" },
            "spec": { "containers": [ { "name": "app" } ] },
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn an_evicted_pod_that_stays_listed_has_ended() {
        let p = pod(serde_json::json!({ "phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory." }));
        assert_eq!(
            ending(&p, false),
            Some(("web-1".to_string(), Some("Evicted".to_string())))
        );
    }

    #[test]
    fn a_running_pod_has_not_ended_and_a_deleted_one_has() {
        let p = pod(serde_json::json!({ "phase": "Running" }));
        assert_eq!(ending(&p, false), None);
        assert_eq!(ending(&p, true), Some(("web-1".to_string(), None)));
    }

    #[test]
    fn an_eviction_through_the_api_is_named_by_its_disruption_condition() {
        let p = pod(serde_json::json!({ "phase": "Running", "conditions": [
            { "type": "Ready", "status": "True" },
            { "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI" } ] }));
        assert_eq!(
            ending(&p, true),
            Some((
                "web-1".to_string(),
                Some("EvictionByEvictionAPI".to_string())
            ))
        );
    }
}

//! `oomgate judge`: gate a k6 run that already happened. The load numbers come from k6's JSON
//! results; the run's window is their first and last point; memory comes from the scenario's
//! Prometheus source through `query_range` over the window (one interval each side); limits,
//! requests and the VPA come from the cluster as in `run`. A window Prometheus no longer keeps
//! (or no series at all) is inconclusive, and the load numbers are still reported. Restarts
//! and OOM kills during the run come from kube-state-metrics and cAdvisor in the same
//! Prometheus (`workload::restart_history`); OOM kills neither shows make `oom-killed`
//! inconclusive, restarts unseen without kube-state-metrics are a warning. Results that are
//! incomplete — a gzip stream cut short, a last line cut mid-way, or a last point far
//! before the end of the scenario's declared plan — are not the planned load: the run is
//! judged as one that ended early (`ended_early`, a note, and the coverage rule's inconclusive
//! finding), saying how much of the plan the results cover.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::Duration as CDuration;

use super::kubernetes::read_vpa_for;
use super::{RunContext, RunResult};
use crate::cluster;
use crate::k6::{read_files, summarize, ReadOptions};
use crate::memory::prometheus::{fill_query, range_observations, PrometheusClient};
use crate::memory::sampler::Sampler;
use crate::model::{MemoryMeta, Run, OOMS_UNSEEN_NOTE, RESTARTS_UNSEEN_NOTE};
use crate::scenario::{Scenario, SourceKind, WorkloadRef, WorkloadSpec};
use crate::workload::kubernetes as k8s;
use crate::workload::restart_history;

/// Judge a finished k6 run from its results files.
pub async fn judge_k6(
    sc: &Scenario,
    files: &[PathBuf],
    lenient: bool,
    ctx: &RunContext,
) -> Result<RunResult> {
    let WorkloadSpec::Kubernetes(k) = &sc.workload else {
        anyhow::bail!(
            "{}: `oomgate judge` needs workload.kubernetes: a finished run's memory is read from Prometheus",
            sc.file.display()
        );
    };
    if sc.memory.source != SourceKind::Prometheus {
        anyhow::bail!(
            "{}: `oomgate judge` reads memory after the fact, which only Prometheus keeps: set memory.source: prometheus \
             (metrics-server has no history)",
            sc.file.display()
        );
    }
    let spec = sc
        .memory
        .prometheus
        .as_ref()
        .context("memory.prometheus is missing")?;
    let opts = ReadOptions {
        lenient,
        ..ReadOptions::default()
    };
    let agg = read_files(files, &opts).context("reading the k6 results")?;
    let declared: Option<Vec<(std::time::Duration, u32)>> =
        (!sc.load.stages.is_empty()).then(|| {
            sc.load
                .stages
                .iter()
                .map(|s| (s.duration, s.to_users))
                .collect()
        });
    let summary = summarize(&agg, declared.as_deref());
    for w in &summary.warnings {
        log::warn!("k6 results: {w}");
    }
    let (Some(first), Some(last)) = (summary.first_point, summary.last_point) else {
        anyhow::bail!("the k6 results hold no data points: nothing to judge");
    };
    log::info!(
        "k6 run from {} to {} UTC: {} requests",
        first.format("%Y-%m-%d %H:%M:%S"),
        last.format("%H:%M:%S"),
        summary.requests
    );
    let cut = incomplete(&summary.incomplete, sc.load.total_duration(), first, last);
    for reason in &cut {
        log::warn!("k6 results: {reason}");
    }
    let client = cluster::connect(&ctx.access).await?;
    let resolved = k8s::resolve(&client, k).await?;
    let vpa = read_vpa_for(&client, sc, k).await?;
    // Pods may have been replaced since the run: match the controller's pod names too.
    let mut alternatives: Vec<String> = resolved
        .pods
        .iter()
        .map(|p| k8s::regex_escape(&p.name))
        .collect();
    match &k.workload {
        WorkloadRef::Deployment(n) | WorkloadRef::StatefulSet(n) | WorkloadRef::DaemonSet(n) => {
            alternatives.push(format!("{}-.+", k8s::regex_escape(n)))
        }
        WorkloadRef::Selector(_) => {}
    }
    let pods_regex = format!("^(?:{})$", alternatives.join("|"));
    let token = match &spec.bearer_token_env {
        Some(var) => Some(std::env::var(var).with_context(|| {
            format!("memory.prometheus.bearer_token_env names {var}, which is not set")
        })?),
        None => None,
    };
    let prom = PrometheusClient::new(spec, token).context("setting up the Prometheus client")?;
    let step = sc.memory.interval;
    let pad = CDuration::from_std(step).unwrap_or_else(|_| CDuration::seconds(5));
    let (start, end) = (first - pad, last + pad);
    let query = fill_query(&spec.query, &k.namespace, &pods_regex);
    let series = prom
        .query_range(&query, start, end, step)
        .await
        .context("querying Prometheus over the k6 run's window")?;
    let observations = range_observations(&series, &k.containers);
    // Limits and requests by container name, from the live pods (replaced pods had the same template).
    let mut sampler = Sampler::new();
    let by_name = |c: &str| {
        resolved
            .pods
            .iter()
            .flat_map(|p| p.containers.iter())
            .find(|r| r.name == c)
            .map(|r| (r.limit, r.request))
            .unwrap_or((None, None))
    };
    // Each series is declared at its first point, so its coverage counts from there.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut declare_new = |sampler: &mut Sampler, obs: &[crate::memory::Observation]| {
        for o in obs {
            let key = (o.pod.clone(), o.container.clone());
            if !seen.contains(&key) {
                let (limit, request) = by_name(&o.container);
                sampler.declare(&o.pod, &o.container, limit, request);
                seen.push(key);
            }
        }
    };
    // One tick per step of the k6 window itself (the padding only catches samples near its
    // edges); a tick has data when any series has a value at that step.
    let mut steps: Vec<_> = observations.iter().map(|o| o.at).collect();
    steps.sort();
    steps.dedup();
    let step_ms = step.as_millis().max(1) as i64;
    let ticks = ((last - first).num_milliseconds() / step_ms) as u64 + 1;
    // Prometheus answers with millisecond timestamps: allow half a step of rounding.
    let half = CDuration::milliseconds(step_ms / 2);
    let in_window = steps
        .iter()
        .filter(|t| **t >= first - half && **t <= last + half)
        .count() as u64;
    // A pod still there after the run ran through its end; a replaced one counts ticks from its
    // series' first point to its last (a finished run says nothing else about when it went
    // away). A live pod's container Prometheus has no series for is declared from the step
    // after the pod was created, so every tick it then missed is uncovered.
    let live: Vec<&k8s::PodInfo> = resolved
        .pods
        .iter()
        .filter(|p| p.created.is_none_or(|c| c <= last))
        .collect();
    let mut last_of_gone_pod: std::collections::BTreeMap<&str, crate::model::Timestamp> =
        std::collections::BTreeMap::new();
    for o in &observations {
        if live.iter().any(|p| p.name == o.pod) {
            continue;
        }
        let e = last_of_gone_pod.entry(o.pod.as_str()).or_insert(o.at);
        *e = (*e).max(o.at);
    }
    let mut unreported: Vec<(&str, &k8s::ContainerResources, crate::model::Timestamp)> = live
        .iter()
        .flat_map(|p| p.containers.iter().map(move |c| (p, c)))
        .filter(|(_, c)| k.containers.is_empty() || k.containers.contains(&c.name))
        .filter(|(p, c)| {
            !observations
                .iter()
                .any(|o| o.pod == p.name && o.container == c.name)
        })
        .map(|(p, c)| (p.name.as_str(), c, p.created.unwrap_or(first).max(first)))
        .collect();
    for at in &steps {
        unreported.retain(|(pod, c, from)| {
            if from > at {
                return true;
            }
            sampler.declare(pod, &c.name, c.limit, c.request);
            false
        });
        let now: Vec<_> = observations
            .iter()
            .filter(|o| o.at == *at)
            .cloned()
            .collect();
        declare_new(&mut sampler, &now);
        sampler.record_received(now, *at, false);
        for (pod, _) in last_of_gone_pod.iter().filter(|(_, last)| *last == at) {
            sampler.pod_gone(pod);
        }
    }
    let mut notes = resolved.notes.clone();
    if observations.is_empty() {
        notes.push(format!(
            "Prometheus has no {} series for these pods between {} and {} UTC: the window may be older than its retention, or the query matches nothing",
            "container_memory_working_set_bytes",
            start.format("%Y-%m-%d %H:%M:%S"),
            end.format("%H:%M:%S")
        ));
    }
    // Restarts and OOM kills after the fact: kube-state-metrics and cAdvisor keep them.
    let history = restart_history::read(
        &prom,
        &k.namespace,
        &pods_regex,
        &k.containers,
        &seen,
        (start, end),
        step,
    )
    .await
    .context("querying Prometheus for the run's restarts and OOM kills")?;
    if !history.ooms_unseen.is_empty() || !history.unexplained.is_empty() {
        let mut why = Vec::new();
        if !history.ooms_unseen.is_empty() {
            why.push(format!(
                "Prometheus keeps neither cAdvisor's container_oom_events_total nor kube-state-metrics' \
                 kube_pod_container_status_restarts_total for {}",
                history.ooms_unseen.join(", ")
            ));
        }
        if !history.unexplained.is_empty() {
            why.push(format!(
                "{} restarted, but neither kube-state-metrics' last termination reason nor cAdvisor's \
                 OOM counter says why, so an OOM kill cannot be ruled out",
                history.unexplained.join(", ")
            ));
        }
        notes.push(format!(
            "{OOMS_UNSEEN_NOTE}: {}; scrape both exporters so that `judge` can see what happened during the run",
            why.join("; ")
        ));
    } else if !history.restarts_unseen.is_empty() {
        notes.push(format!(
            "{RESTARTS_UNSEEN_NOTE}: OOM kills come from cAdvisor's container_oom_events_total, but Prometheus \
             has no kube-state-metrics series (kube_pod_container_status_restarts_total) for {}, so \
             restarts for other reasons are not seen; scrape kube-state-metrics",
            history.restarts_unseen.join(", ")
        ));
    }
    notes.extend(cut.iter().map(|c| format!("incomplete k6 results: {c}")));
    let memory = MemoryMeta {
        source: "prometheus".into(),
        interval: step,
        ticks: ticks.max(in_window),
        ticks_with_data: in_window,
        limit_enforced: true,
        notes: notes.clone(),
    };
    let run = Run {
        scenario: sc.name.clone(),
        started_at: first,
        ended_at: last,
        stages: summary.stage_windows(),
        containers: sampler.into_series(),
        restarts: history.events,
        load: summary.load_stats(),
        memory,
        ended_early: (!cut.is_empty())
            .then(|| format!("the k6 results are incomplete: {}", cut.join("; "))),
        workload: resolved.label(),
        vpa,
        notes,
        baseline: ctx.baseline.clone(),
        env: resolved.container_env(),
    };
    let verdict = crate::judge::evaluate(&sc.policy, &run);
    Ok(RunResult { run, verdict })
}

/// Why the k6 results do not cover the planned run: the reader's cuts, and a last point far
/// before the end of a declared `planned` duration ("k6 stopped after 3.1 s of a 12 s plan").
fn incomplete(
    cuts: &[String],
    planned: std::time::Duration,
    first: crate::model::Timestamp,
    last: crate::model::Timestamp,
) -> Vec<String> {
    let mut out = cuts.to_vec();
    if let Some(short) = crate::load::plan::fell_short(planned, first, last) {
        out.push(format!(
            "the last point ({} UTC) is {} before the end of the declared stages: {}",
            last.format("%H:%M:%S"),
            crate::load::plan::seconds(short),
            crate::load::plan::how_much_ran("k6", planned, first, last)
        ));
    } else if !out.is_empty() && !planned.is_zero() {
        out.push(format!(
            "the results cover {}",
            crate::load::plan::ran_of(planned, first, last)
        ));
    }
    out
}

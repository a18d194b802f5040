//! Cross-field rules of the scenario file and the turn from the raw file into a `Scenario`:
//! exactly one workload, stages the driver can run, requests Goose can send, a memory source
//! that fits the workload, overrides from the command line and the environment applied first.
//! Errors carry the field path; its line and column come from the parser's spans
//! ([`super::spans`]), mapped back to the file as written.

use std::path::Path;
use std::time::Duration;

use super::raw::{self, Driver, LowConfidence, SourceKind};
use super::{
    K6Spec, KubernetesSpec, LoadSpec, LocalWorkloadSpec, MemorySpec, PrometheusSpec, RequestSpec,
    Scenario, ScenarioError, VpaPolicy, WorkloadRef, WorkloadSpec, DEFAULT_PROMETHEUS_QUERY,
};
use crate::model::{LowConfidencePolicy, Policy, Stage, VpaRule};
use crate::units::{format_duration, DurationValue};

/// How often a local workload's cgroup is read unless `memory.interval` says otherwise.
pub const LOCAL_DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// The finest `memory.interval` for the cgroup source (100 ms for the others).
pub const CGROUP_FINEST_INTERVAL: Duration = Duration::from_millis(20);

/// Values from the command line or `OOMGATE_*` variables that win over the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub namespace: Option<String>,
    pub target_url: Option<String>,
    /// What the scenario is read for; `judge` needs no load to send.
    pub purpose: Purpose,
}

/// What a scenario is read for. `oomgate judge` gates a k6 run that already happened: it needs
/// the workload, the memory source and the policy, but no target, no requests, no k6 script
/// and no stages (when given, the stages are the plan the results are held against).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Purpose {
    /// `run`, `check`, `demo`: a load will be sent.
    #[default]
    Run,
    /// `judge`: the load already happened.
    Judge,
}

struct Ctx<'a> {
    file: &'a Path,
    positions: super::spans::Positions<'a>,
}

impl Ctx<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> ScenarioError {
        let (line, column) = match self.positions.of(field) {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        };
        ScenarioError {
            file: self.file.to_path_buf(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

pub(super) fn validate(
    file: &Path,
    positions: super::spans::Positions<'_>,
    f: raw::ScenarioFile,
    overrides: &Overrides,
) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file, positions };
    if let Some(v) = f.version {
        if v != 1 {
            return Err(cx.err(
                "version",
                format!("version {v} is unknown: this oomgate reads version 1"),
            ));
        }
    }
    if f.name.trim().is_empty() {
        return Err(cx.err("name", "the scenario needs a name (it labels every report)"));
    }
    let workload = workload(&cx, f.workload, overrides)?;
    let judging = overrides.purpose == Purpose::Judge;
    let raw_load = match f.load {
        Some(l) => l,
        None if judging => raw::Load::default(),
        None => {
            return Err(cx.err(
                "load",
                "the scenario needs a load section: load.stages (and load.requests for Goose, load.k6.script for k6)",
            ))
        }
    };
    let load = load_spec(&cx, raw_load, judging)?;
    let target_url = target_url(&cx, f.target, &workload, &load, overrides)?;
    let memory = memory(&cx, f.memory, &workload)?;
    let (policy, stop_on_oom, vpa) = policy(&cx, f.policy.unwrap_or_default_raw())?;
    let mut policy = policy;
    policy.max_p95 = load.1.as_ref().and_then(|t| t.p95.map(|d| d.0));
    policy.max_error_rate = load.1.as_ref().and_then(|t| t.error_rate.map(|p| p.0));
    Ok(Scenario {
        file: file.to_path_buf(),
        name: f.name,
        target_url,
        load: load.0,
        workload,
        memory,
        policy,
        stop_on_oom,
        vpa,
    })
}

trait DefaultRaw {
    fn unwrap_or_default_raw(self) -> raw::PolicyRaw;
}

impl DefaultRaw for Option<raw::PolicyRaw> {
    fn unwrap_or_default_raw(self) -> raw::PolicyRaw {
        self.unwrap_or(raw::PolicyRaw {
            headroom: None,
            require_limit: None,
            fail_on_restart: None,
            stop_on_oom: None,
            min_coverage: None,
            vpa: None,
            leak: None,
            expected_peak_users: None,
            regression: None,
        })
    }
}

fn load_spec(
    cx: &Ctx,
    l: raw::Load,
    judging: bool,
) -> Result<(LoadSpec, Option<raw::Thresholds>), ScenarioError> {
    let driver = l.driver.unwrap_or(Driver::Goose);
    // What only sending the load needs (whole-second Goose stages, requests, a k6 script) is
    // not asked of a scenario that judges a finished k6 run.
    let sending = !judging;
    let mut stages = Vec::with_capacity(l.stages.len());
    let mut prev = 0u32;
    for (i, s) in l.stages.iter().enumerate() {
        let DurationValue(d) = s.duration;
        if sending && driver == Driver::Goose && d.subsec_nanos() != 0 {
            let secs = d.as_secs();
            return Err(cx.err(
                &format!("load.stages[{i}].duration"),
                format!(
                    "{} is not a whole number of seconds: the Goose driver plans in whole seconds (write {}s or {}s)",
                    format_duration(d),
                    secs,
                    secs + 1
                ),
            ));
        }
        stages.push(Stage {
            index: i,
            from_users: prev,
            to_users: s.users,
            duration: d,
        });
        prev = s.users;
    }
    if sending && driver == Driver::Goose {
        if stages.is_empty() {
            return Err(cx.err(
                "load.stages",
                "the Goose driver needs at least one stage, e.g. [{ duration: 30s, users: 10 }, { duration: 1m, users: 10 }]",
            ));
        }
        if stages.iter().all(|s| s.to_users == 0) {
            return Err(cx.err(
                "load.stages",
                "every stage has 0 users: no load would be sent",
            ));
        }
        if stages.iter().map(|s| s.duration).sum::<Duration>() == Duration::ZERO {
            return Err(cx.err(
                "load.stages",
                "the stages last 0s in total: give them durations",
            ));
        }
        if l.requests.is_empty() {
            return Err(cx.err(
                "load.requests",
                "the Goose driver needs at least one request, e.g. - { method: GET, path: / }",
            ));
        }
    }
    let mut requests = Vec::with_capacity(l.requests.len());
    for (i, r) in l.requests.into_iter().enumerate() {
        let field = |k: &str| format!("load.requests[{i}].{k}");
        if !(r.path.starts_with('/')
            || r.path.starts_with("http://")
            || r.path.starts_with("https://"))
        {
            return Err(cx.err(
                &field("path"),
                format!(
                    "\"{}\" must start with / (or be a full http(s) URL)",
                    r.path
                ),
            ));
        }
        if r.weight == Some(0) {
            return Err(cx.err(
                &field("weight"),
                "a weight of 0 never sends the request: remove it or use 1 or more",
            ));
        }
        for name in r.headers.keys() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return Err(cx.err(
                    &field("headers"),
                    format!("\"{name}\" is not a valid HTTP header name"),
                ));
            }
        }
        let method = r.method.unwrap_or(raw::Method::Get);
        requests.push(RequestSpec {
            name: r
                .name
                .unwrap_or_else(|| format!("{} {}", method.as_str(), r.path)),
            method,
            path: r.path,
            headers: r.headers.into_iter().collect(),
            body: r.body,
            weight: r.weight.unwrap_or(1),
            expect_status: r.expect_status.map(|e| e.0).unwrap_or_default(),
        });
    }
    let k6 = match (driver, l.k6) {
        (_, Some(k)) => {
            let script = cx.file.parent().unwrap_or(Path::new(".")).join(&k.script);
            Some(K6Spec {
                script,
                args: k.args,
            })
        }
        (Driver::K6, None) if sending => {
            return Err(cx.err(
                "load.k6",
                "the k6 driver needs load.k6.script: the k6 script to run",
            ));
        }
        (Driver::K6 | Driver::Goose, None) => None,
    };
    let think_time = l
        .think_time
        .map(|t| (t.min, t.max))
        .unwrap_or((Duration::ZERO, Duration::ZERO));
    Ok((
        LoadSpec {
            driver,
            stages,
            requests,
            think_time,
            k6,
        },
        l.thresholds,
    ))
}

fn workload(cx: &Ctx, w: raw::Workload, ov: &Overrides) -> Result<WorkloadSpec, ScenarioError> {
    match (w.kubernetes, w.local) {
        (Some(_), Some(_)) => Err(cx.err("workload", "give exactly one of workload.kubernetes or workload.local, not both")),
        (None, None) => Err(cx.err("workload", "give one of workload.kubernetes (a deployment in a cluster) or workload.local (a command oomgate starts)")),
        (Some(k), None) => {
            let named: Vec<(&str, WorkloadRef)> = [
                k.deployment.map(|n| ("deployment", WorkloadRef::Deployment(n))),
                k.statefulset.map(|n| ("statefulset", WorkloadRef::StatefulSet(n))),
                k.daemonset.map(|n| ("daemonset", WorkloadRef::DaemonSet(n))),
                k.selector.map(|n| ("selector", WorkloadRef::Selector(n))),
            ]
            .into_iter()
            .flatten()
            .collect();
            let workload = match named.len() {
                1 => named.into_iter().next().map(|(_, r)| r).ok_or_else(|| cx.err("workload.kubernetes", "internal: no workload"))?,
                0 => return Err(cx.err("workload.kubernetes", "name the workload: deployment, statefulset, daemonset or selector")),
                _ => {
                    let keys: Vec<&str> = named.iter().map(|(k, _)| *k).collect();
                    return Err(cx.err(&format!("workload.kubernetes.{}", keys[1]), format!("give only one of {}", keys.join(", "))));
                }
            };
            for (i, n) in [&workload].iter().enumerate() {
                let name = match n {
                    WorkloadRef::Selector(s) => s,
                    WorkloadRef::Deployment(s) | WorkloadRef::StatefulSet(s) | WorkloadRef::DaemonSet(s) => s,
                };
                if name.trim().is_empty() {
                    return Err(cx.err("workload.kubernetes", format!("workload {i} has an empty name")));
                }
            }
            let namespace = ov.namespace.clone().or(k.namespace).unwrap_or_else(|| "default".to_string());
            Ok(WorkloadSpec::Kubernetes(KubernetesSpec { namespace, workload, containers: k.containers.unwrap_or_default() }))
        }
        (None, Some(l)) => {
            if l.command.is_empty() || l.command[0].trim().is_empty() {
                return Err(cx.err("workload.local.command", "give the command to start, e.g. [./target/release/app, --port, \"8080\"]"));
            }
            if let Some(url) = &l.ready_url {
                if !url.starts_with("http://") {
                    return Err(cx.err("workload.local.ready_url", format!("\"{url}\" must be a plain http:// URL on this machine, e.g. http://127.0.0.1:8080/healthz")));
                }
            }
            let mut env = Vec::new();
            let (limit, request, container, limit_from) = match (&l.manifest, l.limit) {
                (Some(_), Some(_)) => {
                    return Err(cx.err("workload.local.limit", "give either limit or manifest (which holds the limit), not both"));
                }
                (Some(m), None) => {
                    let path = cx.file.parent().unwrap_or(Path::new(".")).join(m);
                    let c = crate::workload::manifest::read_manifest_container(&path, l.container.as_deref())
                        .map_err(|e| cx.err("workload.local.manifest", e.to_string()))?;
                    env.extend(c.env.iter().cloned());
                    let request = l.request.map(|b| b.0).or(c.request);
                    (c.limit, request, c.name.clone(), format!("{} ({}, container {})", m, c.workload, c.name))
                }
                (None, limit) => {
                    if l.container.is_some() && limit.is_some() {
                        // A container name without a manifest just names the series.
                    }
                    (limit.map(|b| b.0), l.request.map(|b| b.0), l.container.clone().unwrap_or_else(|| "app".to_string()), "scenario".to_string())
                }
            };
            if let Some(0) = limit {
                return Err(cx.err("workload.local.limit", "a limit of 0 bytes cannot run anything"));
            }
            env.extend(l.env);
            Ok(WorkloadSpec::Local(LocalWorkloadSpec {
                command: l.command,
                ready_url: l.ready_url,
                ready_timeout: l.ready_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
                limit,
                request,
                env,
                container,
                limit_from,
            }))
        }
    }
}

fn target_url(
    cx: &Ctx,
    t: Option<raw::Target>,
    w: &WorkloadSpec,
    load: &(LoadSpec, Option<raw::Thresholds>),
    ov: &Overrides,
) -> Result<Option<String>, ScenarioError> {
    let url = ov
        .target_url
        .clone()
        .or(t.map(|t| t.url))
        .or_else(|| match w {
            // A local service's base URL follows from its ready_url.
            WorkloadSpec::Local(l) => l.ready_url.as_deref().and_then(base_of),
            WorkloadSpec::Kubernetes(_) => None,
        });
    match url {
        Some(u) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) || base_of(&u).is_none() {
                return Err(cx.err(
                    "target.url",
                    format!(
                        "\"{}\" is not an http(s) URL, e.g. http://127.0.0.1:8080",
                        crate::redact::url(&u)
                    ),
                ));
            }
            Ok(Some(u.trim_end_matches('/').to_string()))
        }
        None if load.0.driver == Driver::K6 || ov.purpose == Purpose::Judge => Ok(None),
        None => Err(cx.err(
            "target.url",
            "give target.url: the base URL the load goes to (or --target-url / OOMGATE_TARGET_URL)",
        )),
    }
}

/// `http://host:port/path` → `http://host:port`.
fn base_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

fn memory(cx: &Ctx, m: Option<raw::Memory>, w: &WorkloadSpec) -> Result<MemorySpec, ScenarioError> {
    let local = matches!(w, WorkloadSpec::Local(_));
    let (source, interval, prom) = match m {
        Some(m) => (m.source, m.interval.map(|d| d.0), m.prometheus),
        None => (None, None, None),
    };
    let source = source.unwrap_or(if local {
        SourceKind::Cgroup
    } else {
        SourceKind::MetricsApi
    });
    match (local, source) {
        (true, SourceKind::MetricsApi | SourceKind::Prometheus) => {
            return Err(cx.err("memory.source", "a local workload is measured through its cgroup: use source: cgroup (or leave it out)"));
        }
        (false, SourceKind::Cgroup) => {
            return Err(cx.err("memory.source", "the cgroup source measures local workloads only: use metrics-api or prometheus for workload.kubernetes"));
        }
        _ => {}
    }
    // A cgroup is read from a handful of small kernel files, cheap enough to sample every
    // 100 ms by default (and down to 20 ms), so samples tell a working set from page cache
    // that the kernel's peak usage counter mixes; the cluster sources publish far slower.
    let interval = interval.unwrap_or(if local {
        LOCAL_DEFAULT_INTERVAL
    } else {
        Duration::from_secs(5)
    });
    let finest = if source == SourceKind::Cgroup {
        CGROUP_FINEST_INTERVAL
    } else {
        Duration::from_millis(100)
    };
    if interval < finest {
        return Err(cx.err(
            "memory.interval",
            format!(
                "{} is too fine: sample at {} or slower",
                format_duration(interval),
                format_duration(finest)
            ),
        ));
    }
    let prometheus = match prom {
        Some(p) => {
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return Err(cx.err(
                    "memory.prometheus.url",
                    format!("\"{}\" is not an http(s) URL", crate::redact::url(&p.url)),
                ));
            }
            Some(PrometheusSpec {
                url: p.url.trim_end_matches('/').to_string(),
                bearer_token_env: p.bearer_token_env,
                query: p
                    .query
                    .unwrap_or_else(|| DEFAULT_PROMETHEUS_QUERY.to_string()),
            })
        }
        None if source == SourceKind::Prometheus => {
            return Err(cx.err(
                "memory.prometheus",
                "source: prometheus needs memory.prometheus.url",
            ));
        }
        None => None,
    };
    Ok(MemorySpec {
        source,
        interval,
        prometheus,
    })
}

fn policy(cx: &Ctx, p: raw::PolicyRaw) -> Result<(Policy, bool, Option<VpaPolicy>), ScenarioError> {
    let mut policy = Policy::default();
    if let Some(h) = p.headroom {
        if h.0 >= 1.0 {
            return Err(cx.err(
                "policy.headroom",
                "a headroom of 100% allows no memory at all: use e.g. 20%",
            ));
        }
        policy.headroom = h.0;
    }
    if let Some(c) = p.min_coverage {
        policy.min_coverage = c.0;
    }
    policy.require_limit = p.require_limit.unwrap_or(true);
    policy.fail_on_restart = p.fail_on_restart.unwrap_or(true);
    let vpa = p.vpa.map(|v| VpaPolicy {
        name: v.name.filter(|n| n != "auto"),
        tolerance: v.tolerance.map(|t| t.0).unwrap_or(0.20),
        low_confidence: v.low_confidence.unwrap_or(LowConfidence::Warn),
    });
    policy.vpa = vpa.as_ref().map(|v| VpaRule {
        tolerance: v.tolerance,
        low_confidence: match v.low_confidence {
            LowConfidence::Warn => LowConfidencePolicy::Warn,
            LowConfidence::Judge => LowConfidencePolicy::Judge,
            LowConfidence::Ignore => LowConfidencePolicy::Ignore,
        },
    });
    if let Some(l) = p.leak {
        if let Some(d) = l.min_hold {
            policy.leak.min_hold = d.0;
        }
        if let Some(settle) = l.settle {
            if settle.0 >= 1.0 {
                return Err(cx.err(
                    "policy.leak.settle",
                    "a settle time of 100% leaves nothing of the hold to judge: use e.g. 20%",
                ));
            }
            policy.leak.settle = settle.0;
        }
        if let Some(d) = l.horizon {
            if d.0.is_zero() {
                return Err(cx.err(
                    "policy.leak.horizon",
                    "a horizon of 0s never fails a growing container: use e.g. 1h",
                ));
            }
            policy.leak.horizon = d.0;
        }
    }
    if let Some(users) = p.expected_peak_users {
        if users == 0 {
            return Err(cx.err(
                "policy.expected_peak_users",
                "0 users is no load to extrapolate to: write the peak load you expect, e.g. 400",
            ));
        }
        policy.expected_peak_users = Some(users);
    }
    if let Some(g) = p.regression.and_then(|r| r.max_growth) {
        policy.max_growth = g.0;
    }
    Ok((policy, p.stop_on_oom.unwrap_or(false), vpa))
}

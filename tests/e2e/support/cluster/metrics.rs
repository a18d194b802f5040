//! The metrics.k8s.io/v1beta1 API as metrics-server serves it: a scrape loop reads every running
//! container's REAL working set (usage − inactive file, from its cgroup) and CPU rate (from
//! /proc) once per `metrics_resolution` and keeps only the last scrape, so between scrapes the
//! same sample and timestamp are served again and a new pod appears only after its first
//! scrape. Memory quantities are spelled in three ways across pods (`NKi`, plain bytes, the
//! largest exact binary suffix) to exercise parsers. `MetricsMode` turns the whole group into
//! 503 ServiceUnavailable (aggregated API down) or 404 (not installed); [`MetricsFaults`] makes a
//! deterministic share of PodMetrics requests fail (503) or hang, and can shift every PodMetrics
//! `timestamp` as a skewed node clock would; [`PodFaults`] leaves a pod or a container out,
//! freezes a pod's sample, or delays a new pod's first scrape. k8s-openapi has no PodMetrics type, so the serde
//! types are defined here (and are public for tests).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hyper::{Response, StatusCode};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, Time};
use oomgate::memory::cgroup::CgroupReader;
use serde::{Deserialize, Serialize};

use super::http::{self, Body, Query};
use super::objects::{binary_si, time};
use super::selector::{FieldSelector, LabelSelector};
use super::state::Shared;
use super::MetricsMode;

/// `metrics.k8s.io/v1beta1` PodMetrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetrics {
    pub kind: String,
    pub api_version: String,
    pub metadata: ObjectMeta,
    pub timestamp: Time,
    pub window: String,
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerMetrics {
    pub name: String,
    /// `cpu` and `memory` quantities.
    pub usage: BTreeMap<String, Quantity>,
}

/// `PodMetricsList` (also used, empty, for `NodeMetricsList`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsList {
    pub kind: String,
    pub api_version: String,
    pub metadata: ListMeta,
    pub items: Vec<PodMetrics>,
}

/// The last scrape of one pod.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub timestamp: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    /// (container, working set bytes, nanocores)
    pub containers: Vec<(String, u64, u64)>,
    pub style: u8,
}

const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// How a faulty PodMetrics request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 ServiceUnavailable, as an aggregated API whose backend is not ready.
    Unavailable503,
    /// Headers at once, then the body stalls this long (past any sane client deadline).
    Hang(Duration),
}

/// Faults injected into PodMetrics requests (`SimCluster::set_metrics_faults`), deterministic:
/// counting PodMetrics requests from 0 since the switch, the last `failing` of every `period`
/// fail (`period: 2, failing: 1` fails requests 1, 3, 5, …; `period: 20, failing: 1` fails 5 %:
/// requests 19, 39, …), so the first request always succeeds; `clock_offset` is added to every
/// PodMetrics `timestamp` (positive = the node's clock runs ahead of the gate's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsFaults {
    pub period: u64,
    pub failing: u64,
    pub fault: Fault,
    pub clock_offset: chrono::TimeDelta,
}

impl Default for MetricsFaults {
    fn default() -> MetricsFaults {
        MetricsFaults {
            period: 0,
            failing: 0,
            fault: Fault::Unavailable503,
            clock_offset: chrono::TimeDelta::zero(),
        }
    }
}

/// Per-pod metrics faults (`SimCluster::set_pod_faults`), as a flaky metrics pipeline makes
/// them: metrics-server drops a pod from its answer (or, when one container reads 0, the whole
/// pod), a kubelet whose stats stop updating serves the same sample forever, a scrape target
/// exports NaN, a new pod is scraped late.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFaults {
    /// (pod, container) left out of PodMetrics and `/metrics/cadvisor`; container `None`
    /// leaves the whole pod out.
    pub omit: Vec<(String, Option<String>)>,
    /// Pods whose PodMetrics keep the sample (and timestamp) they had when frozen.
    pub freeze: Vec<String>,
    /// Pods whose `container_memory_working_set_bytes` is exported as NaN.
    pub nan: Vec<String>,
    /// Pods created less than this long ago are not scraped yet.
    pub delay_new: Option<Duration>,
    /// One PodMetrics answer, after `after` answers, stamps `pod` `shift` off (a single
    /// out-of-line timestamp); the answers after it are normal again.
    pub outlier: Option<Outlier>,
}

/// A single PodMetrics timestamp out of line (see [`PodFaults::outlier`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outlier {
    pub pod: String,
    pub after: u64,
    pub shift: chrono::TimeDelta,
}

impl PodFaults {
    /// Whether `container` of `pod` is left out (`None`: the pod as a whole).
    pub fn omitted(&self, pod: &str, container: Option<&str>) -> bool {
        self.omit.iter().any(|(p, c)| {
            p == pod
                && match (c, container) {
                    (None, _) => true,
                    (Some(c), Some(x)) => c == x,
                    (Some(_), None) => false,
                }
        })
    }
}

/// The faults in force and the PodMetrics requests counted since they were set.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FaultState {
    pub faults: MetricsFaults,
    pub seen: u64,
}

impl FaultState {
    /// Count one PodMetrics request; the fault it gets, if any.
    fn next(&mut self) -> Option<Fault> {
        let n = self.seen;
        self.seen += 1;
        let f = self.faults;
        (f.period > 0 && n % f.period >= f.period.saturating_sub(f.failing)).then_some(f.fault)
    }
}

/// A 200 whose body arrives only after `after` (the client sees headers, then nothing).
pub(super) fn stalled(resp: Response<Body>, after: Duration) -> Response<Body> {
    use http_body_util::BodyExt as _;
    let (parts, body) = resp.into_parts();
    let stream = futures::stream::once(async move {
        tokio::time::sleep(after).await;
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(bytes))
    });
    Response::from_parts(parts, http_body_util::StreamBody::new(stream).boxed())
}

/// How a quantity of memory is spelled for a pod (varies by pod name).
fn memory_quantity(bytes: u64, style: u8) -> Quantity {
    Quantity(match style {
        0 if bytes.is_multiple_of(1024) => format!("{}Ki", bytes / 1024),
        1 => bytes.to_string(),
        _ => binary_si(bytes),
    })
}

/// Go duration text for the window ("1s", "15s", "1.5s").
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}

/// utime + stime of a process in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based over the whole line).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

struct Target {
    pod: String,
    created: DateTime<Utc>,
    labels: BTreeMap<String, String>,
    style: u8,
    containers: Vec<(String, String, u32, CgroupReader)>,
}

/// The scrape loop; ends when the cluster shuts down.
pub(super) async fn scrape_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let every = shared
        .cfg
        .metrics_resolution
        .max(Duration::from_millis(100));
    // (pod, container id) → (when, cpu ticks) of the previous scrape.
    let mut previous: HashMap<(String, String), (Instant, u64)> = HashMap::new();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let targets: Vec<Target> = {
            let st = shared.lock();
            st.pods
                .values()
                .filter(|p| p.deleting.is_none())
                .map(|p| Target {
                    pod: p.name.clone(),
                    created: p.created,
                    labels: p.labels.clone(),
                    style: (p.name.bytes().map(u32::from).sum::<u32>() % 3) as u8,
                    containers: p
                        .containers
                        .iter()
                        .filter_map(|c| {
                            let i = c.inst.as_ref()?;
                            Some((c.tpl.name.clone(), i.id.clone(), i.pid, i.cgroup.reader()))
                        })
                        .collect(),
                })
                .collect()
        };
        let now = Utc::now();
        let faults = shared.lock().pod_faults.clone();
        let mut samples = BTreeMap::new();
        let mut seen = HashMap::new();
        for t in targets {
            if let Some(delay) = faults.delay_new {
                if now - t.created < chrono::TimeDelta::from_std(delay).unwrap_or_default() {
                    continue;
                }
            }
            let mut containers = Vec::new();
            for (name, id, pid, reader) in t.containers {
                let Ok(reading) = reader.read() else {
                    continue;
                };
                let key = (t.pod.clone(), id);
                let nanocores = match (cpu_ticks(pid), previous.get(&key)) {
                    (Some(ticks), Some((at, before))) => {
                        let secs = at.elapsed().as_secs_f64().max(0.001);
                        let used = ticks.saturating_sub(*before) as f64 / hz as f64;
                        (used / secs * 1e9) as u64
                    }
                    _ => 0,
                };
                if let Some(ticks) = cpu_ticks(pid) {
                    seen.insert(key, (Instant::now(), ticks));
                }
                containers.push((name, reading.working_set, nanocores));
            }
            if !containers.is_empty() {
                samples.insert(
                    t.pod,
                    Sample {
                        timestamp: now,
                        labels: t.labels,
                        containers,
                        style: t.style,
                    },
                );
            }
        }
        previous = seen;
        let mut st = shared.lock();
        for pod in &faults.freeze {
            match st.metrics.get(pod) {
                Some(old) => {
                    samples.insert(pod.clone(), old.clone());
                }
                None => {
                    samples.remove(pod);
                }
            }
        }
        st.metrics = samples;
    }
}

fn pod_metrics(
    ns: &str,
    name: &str,
    s: &Sample,
    window: &str,
    offset: chrono::TimeDelta,
) -> PodMetrics {
    PodMetrics {
        kind: "PodMetrics".to_string(),
        api_version: API_VERSION.to_string(),
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(ns.to_string()),
            creation_timestamp: Some(time(Utc::now())),
            labels: Some(s.labels.clone()),
            ..ObjectMeta::default()
        },
        timestamp: time(s.timestamp + offset),
        window: window.to_string(),
        containers: s
            .containers
            .iter()
            .map(|(name, ws, nanocores)| ContainerMetrics {
                name: name.clone(),
                usage: BTreeMap::from([
                    ("cpu".to_string(), Quantity(format!("{nanocores}n"))),
                    ("memory".to_string(), memory_quantity(*ws, s.style)),
                ]),
            })
            .collect(),
    }
}

/// A PodMetrics with the containers `faults` leave out removed; `None` when the whole pod is
/// left out or no container remains.
fn omitting(faults: &PodFaults, mut m: PodMetrics) -> Option<PodMetrics> {
    let pod = m.metadata.name.clone().unwrap_or_default();
    if faults.omitted(&pod, None) {
        return None;
    }
    m.containers
        .retain(|c| !faults.omitted(&pod, Some(&c.name)));
    (!m.containers.is_empty()).then_some(m)
}

fn list(kind: &str, items: Vec<PodMetrics>) -> Response<Body> {
    http::json(
        StatusCode::OK,
        &PodMetricsList {
            kind: kind.to_string(),
            api_version: API_VERSION.to_string(),
            metadata: ListMeta::default(),
            items,
        },
    )
}

/// Everything under `/apis/metrics.k8s.io/v1beta1/`; `rest` are the path segments after it.
pub(super) fn handle(shared: &Shared, rest: &[&str], q: &Query) -> Response<Body> {
    let mut st = shared.lock();
    let pod_metrics_request = matches!(
        rest,
        ["pods"] | ["namespaces", _, "pods"] | ["namespaces", _, "pods", _]
    );
    let fault = match st.metrics_mode {
        MetricsMode::Normal if pod_metrics_request => st.metrics_faults.next(),
        _ => None,
    };
    let offset = st.metrics_faults.faults.clock_offset;
    let mut one_off = None;
    if pod_metrics_request {
        if let Some(o) = &mut st.pod_faults.outlier {
            if o.after == 0 {
                one_off = st.pod_faults.outlier.take().map(|o| (o.pod, o.shift));
            } else {
                o.after -= 1;
            }
        }
    }
    let st = &*st;
    match st.metrics_mode {
        MetricsMode::NotFound404 => return http::path_not_found(),
        MetricsMode::Unavailable503 => {
            let what = rest.iter().rev().find(|s| **s == "pods" || **s == "nodes");
            return http::status(
                503,
                "ServiceUnavailable",
                format!(
                    "the server is currently unable to handle the request (get {}.metrics.k8s.io)",
                    what.unwrap_or(&"pods")
                ),
            );
        }
        MetricsMode::Normal => {}
    }
    let answer = answer(st, shared, rest, q, offset, one_off);
    match fault {
        None => answer,
        Some(Fault::Hang(d)) => stalled(answer, d),
        Some(Fault::Unavailable503) => http::status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request (get pods.metrics.k8s.io)",
        ),
    }
}

/// The normal answer to a metrics.k8s.io request.
fn answer(
    st: &super::state::State,
    shared: &Shared,
    rest: &[&str],
    q: &Query,
    offset: chrono::TimeDelta,
    one_off: Option<(String, chrono::TimeDelta)>,
) -> Response<Body> {
    let ns = shared.cfg.namespace.as_str();
    let offset_of = |pod: &str| match &one_off {
        Some((p, shift)) if p == pod => offset + *shift,
        _ => offset,
    };
    let window = go_duration(shared.cfg.metrics_resolution);
    let filtered = |only_ns: Option<&str>| -> Result<Vec<PodMetrics>, String> {
        let sel = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
        let fsel = FieldSelector::parse(
            q.get("fieldSelector").unwrap_or(""),
            &["metadata.name", "metadata.namespace"],
        )?;
        if only_ns.is_some_and(|n| n != ns) {
            return Ok(Vec::new());
        }
        Ok(st
            .metrics
            .iter()
            .filter(|(name, s)| {
                sel.matches(&s.labels)
                    && fsel.matches(|f| match f {
                        "metadata.name" => name.to_string(),
                        _ => ns.to_string(),
                    })
            })
            .filter_map(|(name, s)| {
                omitting(
                    &st.pod_faults,
                    pod_metrics(ns, name, s, &window, offset_of(name)),
                )
            })
            .collect())
    };
    let respond = |r: Result<Vec<PodMetrics>, String>| match r {
        Ok(items) => list("PodMetricsList", items),
        Err(e) => http::status(400, "BadRequest", e),
    };
    match rest {
        [] => super::discovery::resources_response(super::discovery::METRICS_GV),
        ["pods"] => respond(filtered(None)),
        ["namespaces", n, "pods"] => respond(filtered(Some(n))),
        ["namespaces", n, "pods", name] => match st.metrics.get(*name) {
            Some(s) if *n == ns => {
                match omitting(
                    &st.pod_faults,
                    pod_metrics(ns, name, s, &window, offset_of(name)),
                ) {
                    Some(m) => http::json(StatusCode::OK, &m),
                    None => http::object_not_found("podmetrics", "metrics.k8s.io", name),
                }
            }
            _ => http::object_not_found("podmetrics", "metrics.k8s.io", name),
        },
        ["nodes"] => list("NodeMetricsList", Vec::new()),
        ["nodes", name] => http::object_not_found("nodemetrics", "metrics.k8s.io", name),
        _ => http::path_not_found(),
    }
}

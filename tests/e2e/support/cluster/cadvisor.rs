//! A kubelet/cAdvisor-style `/metrics` endpoint on its own plain-HTTP loopback port, for a real
//! Prometheus to scrape: per running container `container_memory_working_set_bytes`,
//! `container_memory_usage_bytes`, `container_memory_max_usage_bytes`,
//! `container_spec_memory_limit_bytes` and `container_oom_events_total`, read live from the
//! container's cgroup at scrape time; the pod-level cgroup (`container=""`, `image=""`, the sum)
//! and the pause container (`container=""`, pause image) per pod, so a query must filter with
//! `container!=""` / `image!=""` as on a real cluster; and for a few seconds after a restart the
//! exited instance's last values under its old container id next to the new one. Values are
//! formatted like Go's Prometheus client (`2.2777856e+07`) with millisecond timestamps. The
//! per-pod faults (`set_pod_faults`) leave a pod's or a container's series out, or export its
//! working set as NaN.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use oomgate::memory::cgroup::{CgroupReader, CgroupReading};

use super::http::{self, Body};
use super::objects::IMAGE;
use super::state::Shared;

const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.9";
const PAUSE_BYTES: u64 = 229_376;

/// A number as Go's `strconv.FormatFloat(v, 'g', -1, 64)` prints it.
fn go_float(v: u64) -> String {
    if v < 1_000_000 {
        return v.to_string();
    }
    let s = format!("{:e}", v as f64);
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let exp: i32 = exp.parse().unwrap_or(0);
            format!(
                "{mantissa}e{}{:02}",
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            )
        }
        None => s,
    }
}

struct Series {
    container: String,
    id: String,
    image: &'static str,
    name: String,
    pod: String,
    reading: CgroupReading,
}

const METRICS: &[(&str, &str, &str)] = &[
    (
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set in bytes.",
    ),
    (
        "container_memory_usage_bytes",
        "gauge",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    ),
    (
        "container_memory_max_usage_bytes",
        "gauge",
        "Maximum memory usage recorded in bytes",
    ),
    (
        "container_spec_memory_limit_bytes",
        "gauge",
        "Memory limit for the container.",
    ),
    (
        "container_oom_events_total",
        "counter",
        "Count of out of memory events observed for the container",
    ),
];

fn value(metric: &str, r: &CgroupReading) -> u64 {
    match metric {
        "container_memory_working_set_bytes" => r.working_set,
        "container_memory_usage_bytes" => r.usage,
        "container_memory_max_usage_bytes" => r.peak_usage.unwrap_or(r.usage),
        "container_spec_memory_limit_bytes" => r.limit.unwrap_or(0),
        _ => r.oom_kills,
    }
}

/// The whole exposition text, read now.
pub(super) fn render(shared: &Shared) -> String {
    let ns = shared.cfg.namespace.clone();
    // (pod, pod cgroup id, pause id, containers: (name, id, live reader | stale reading))
    type Gathered = (
        String,
        String,
        String,
        Vec<(String, String, Result<CgroupReader, CgroupReading>)>,
    );
    let gathered: Vec<Gathered> = {
        let st = shared.lock();
        st.pods
            .values()
            .map(|p| {
                let qos = if p
                    .containers
                    .iter()
                    .any(|c| c.tpl.limit.is_some() || c.tpl.request.is_some())
                {
                    "burstable"
                } else {
                    "besteffort"
                };
                let mut cs = Vec::new();
                for c in &p.containers {
                    if let Some(s) = &c.stale {
                        cs.push((c.tpl.name.clone(), s.id.clone(), Err(s.reading)));
                    }
                    if let Some(i) = &c.inst {
                        cs.push((c.tpl.name.clone(), i.id.clone(), Ok(i.cgroup.reader())));
                    }
                }
                (
                    p.name.clone(),
                    format!("/kubepods/{qos}/pod{}", p.uid),
                    p.pause_id.clone(),
                    cs,
                )
            })
            .collect()
    };
    let faults = shared.lock().pod_faults.clone();
    let mut series = Vec::new();
    for (pod, pod_id, pause_id, containers) in gathered {
        let pause = CgroupReading {
            usage: PAUSE_BYTES + 45_056,
            working_set: PAUSE_BYTES,
            peak_usage: Some(PAUSE_BYTES + 45_056),
            ..CgroupReading::default()
        };
        let mut total = pause;
        for (name, id, source) in containers {
            let live = source.is_ok();
            let reading = match source {
                Ok(reader) => match reader.read() {
                    Ok(r) => r,
                    Err(_) => continue,
                },
                Err(stale) => stale,
            };
            if live {
                total.usage += reading.usage;
                total.working_set += reading.working_set;
                total.peak_usage = Some(
                    total.peak_usage.unwrap_or(0) + reading.peak_usage.unwrap_or(reading.usage),
                );
                total.oom_kills += reading.oom_kills;
                total.limit = match (total.limit, reading.limit) {
                    (Some(a), Some(b)) => Some(a + b),
                    (None, Some(b)) => Some(b),
                    (a, None) => a,
                };
            }
            if faults.omitted(&pod, None) || faults.omitted(&pod, Some(&name)) {
                continue;
            }
            series.push(Series {
                container: name,
                id: format!("{pod_id}/{id}"),
                image: IMAGE,
                name: id,
                pod: pod.clone(),
                reading,
            });
        }
        series.push(Series {
            container: String::new(),
            id: format!("{pod_id}/{pause_id}"),
            image: PAUSE_IMAGE,
            name: pause_id,
            pod: pod.clone(),
            reading: pause,
        });
        series.push(Series {
            container: String::new(),
            id: pod_id,
            image: "",
            name: String::new(),
            pod,
            reading: total,
        });
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut out = String::new();
    for (metric, kind, help) in METRICS {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
        for s in &series {
            let shown = if *metric == "container_memory_working_set_bytes"
                && !s.container.is_empty()
                && faults.nan.contains(&s.pod)
            {
                "NaN".to_string()
            } else {
                go_float(value(metric, &s.reading))
            };
            let _ = writeln!(
                out,
                "{metric}{{container=\"{}\",id=\"{}\",image=\"{}\",name=\"{}\",namespace=\"{ns}\",pod=\"{}\"}} {} {now_ms}",
                s.container,
                s.id,
                s.image,
                s.name,
                s.pod,
                shown
            );
        }
    }
    out
}

fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/metrics" => http::text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render(shared),
        ),
        "/healthz" => http::text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok".to_string(),
        ),
        _ => http::text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n".to_string(),
        ),
    }
}

/// Serve `/metrics` until the cluster shuts down.
pub(super) async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        eprintln!("sim-cluster: cannot use the /metrics listener");
        return;
    };
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(respond(&shared, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

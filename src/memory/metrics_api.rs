//! The `metrics-api` memory source: each tick lists the `metrics.k8s.io/v1beta1` PodMetrics of
//! the workload's pods (as metrics-server serves them, through the API server) and turns every
//! container's `usage.memory` — the working set — into an [`Observation`] stamped with the
//! PodMetrics' own `timestamp`, so a sample metrics-server repeats until its next scrape is
//! recognised by the sampler as the same sample. It talks to the API server through a
//! `kube::Client`; a missing or unavailable metrics API becomes a message pointing at
//! metrics-server or `memory.source: prometheus`. A tick's request has a deadline tied to the
//! sampling interval (see [`tick_deadline`]), so a hung API costs one uncovered tick per tick,
//! never a frozen sampler nor requests piling up.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::Deserialize;

use super::{BoxFuture, MemorySource, Observation, SourceError};
use crate::cluster::{classify, classify_status, error_chain};
use crate::model::Timestamp;
use crate::workload::kubernetes::cluster_quantity;

/// How long a list of PodMetrics may take when no sampling cadence is known yet (the first
/// reading, e.g. `oomgate check`'s live sample).
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest per-tick deadline (the sampling interval is at least 100 ms).
const MIN_TICK_DEADLINE: Duration = Duration::from_millis(100);

/// The deadline of one reading. The sampler polls on a fixed-rate ticker, so the time since the
/// previous poll started is the sampling interval; a reading may take three quarters of it and
/// then counts as a failed (uncovered) tick, its request dropped, so the next tick starts on time
/// with one request in flight at most. The first reading has no cadence: [`LIST_TIMEOUT`].
pub fn tick_deadline(since_previous: Option<Duration>) -> Duration {
    match since_previous {
        None => LIST_TIMEOUT,
        Some(gap) => {
            let ms = u64::try_from(gap.as_millis()).unwrap_or(u64::MAX) / 4 * 3;
            Duration::from_millis(ms).clamp(MIN_TICK_DEADLINE, LIST_TIMEOUT)
        }
    }
}

/// The PodMetrics resource of `metrics.k8s.io/v1beta1`.
pub fn pod_metrics_resource() -> ApiResource {
    ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    }
}

/// Reads the working set of the workload's containers from the metrics API.
pub struct MetricsApiSource {
    api: Api<DynamicObject>,
    namespace: String,
    selector: String,
    containers_filter: Vec<String>,
    /// When the previous poll started (the sampling cadence, for the per-tick deadline).
    last_poll: Option<Instant>,
}

impl MetricsApiSource {
    /// `selector` is the workload's label selector; `containers_filter` empty = all containers.
    pub fn new(
        client: kube::Client,
        namespace: String,
        selector: String,
        containers_filter: Vec<String>,
    ) -> Self {
        let api = Api::namespaced_with(client, &namespace, &pod_metrics_resource());
        MetricsApiSource {
            api,
            namespace,
            selector,
            containers_filter,
            last_poll: None,
        }
    }

    /// One live sample of every measured container (also what `oomgate check` shows). Pods
    /// metrics-server has not scraped twice yet are simply absent.
    pub async fn probe(&self) -> Result<Vec<Observation>, SourceError> {
        self.list_within(LIST_TIMEOUT).await
    }

    /// One reading that gives up after `deadline` (the request is dropped, not left running).
    async fn list_within(&self, deadline: Duration) -> Result<Vec<Observation>, SourceError> {
        let params = ListParams::default().labels(&self.selector);
        let list = match tokio::time::timeout(deadline, self.api.list(&params)).await {
            Err(_) => {
                return Err(SourceError::Other(format!(
                    "the metrics API did not answer within {} (listing PodMetrics in {}); this \
                     tick counts as uncovered: check the API server's and metrics-server's load \
                     (`kubectl get apiservice v1beta1.metrics.k8s.io`)",
                    crate::units::format_duration(deadline),
                    self.namespace
                )))
            }
            Ok(Err(e)) => return Err(metrics_error(e, &self.namespace)),
            Ok(Ok(list)) => list,
        };
        let now = Utc::now();
        let mut out = Vec::new();
        for item in &list.items {
            out.extend(observations(item, &self.containers_filter, now)?);
        }
        Ok(out)
    }
}

impl MemorySource for MetricsApiSource {
    fn name(&self) -> &'static str {
        "metrics-api"
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<Observation>, SourceError>> {
        let now = Instant::now();
        let deadline = tick_deadline(self.last_poll.map(|t| now - t));
        self.last_poll = Some(now);
        Box::pin(self.list_within(deadline))
    }
}

/// A metrics API failure as the user should read it.
pub fn metrics_error(err: kube::Error, namespace: &str) -> SourceError {
    let denied =
        matches!(&err, kube::Error::Api(status) if status.code == 401 || status.code == 403);
    let message = match &err {
        kube::Error::Api(status) => match status.code {
            404 => "the metrics API (metrics.k8s.io/v1beta1) is not installed in this cluster (404): install metrics-server, or set memory.source: prometheus".to_string(),
            503 => format!(
                "metrics API unavailable (503): metrics-server is not running or not ready ({}); check `kubectl -n kube-system get pods -l k8s-app=metrics-server`, or set memory.source: prometheus",
                status.message
            ),
            code => classify_status(code, &status.message, "list", "pods.metrics.k8s.io", namespace)
                .to_string(),
        },
        _ => classify(err, "list", "pods.metrics.k8s.io", namespace).to_string(),
    };
    if denied {
        SourceError::Denied(message)
    } else {
        SourceError::Other(message)
    }
}

#[derive(Deserialize)]
struct PodMetricsBody {
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    containers: Vec<ContainerMetrics>,
}

#[derive(Deserialize)]
struct ContainerMetrics {
    name: String,
    #[serde(default)]
    usage: std::collections::BTreeMap<String, String>,
}

/// The observations in one PodMetrics object. `now` stamps an object without a timestamp.
pub fn observations(
    obj: &DynamicObject,
    containers_filter: &[String],
    now: Timestamp,
) -> Result<Vec<Observation>, SourceError> {
    let pod = obj.metadata.name.clone().unwrap_or_default();
    let path = || format!("PodMetrics {pod}");
    let body: PodMetricsBody =
        serde_json::from_value(obj.data.clone()).map_err(|e| SourceError::Parse {
            path: path(),
            detail: error_chain(&e),
        })?;
    let at = match body.timestamp.as_deref() {
        Some(ts) => DateTime::parse_from_rfc3339(ts)
            .map_err(|e| SourceError::Parse {
                path: format!("{} timestamp", path()),
                detail: format!("\"{ts}\" is not an RFC 3339 time: {e}"),
            })?
            .with_timezone(&Utc),
        None => now,
    };
    let mut out = Vec::new();
    for c in body.containers {
        if !containers_filter.is_empty() && !containers_filter.contains(&c.name) {
            continue;
        }
        let Some(memory) = c.usage.get("memory") else {
            continue;
        };
        let working_set = cluster_quantity(memory).map_err(|e| SourceError::Parse {
            path: format!("{} container {} usage.memory", path(), c.name),
            detail: e.to_string(),
        })?;
        out.push(Observation {
            pod: pod.clone(),
            container: c.name,
            at,
            working_set,
            usage: None,
            kernel_peak_usage: None,
            oom_kills: None,
            bad_value: None,
            resident: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn pod_metrics(name: &str, ts: Option<&str>, memories: &[(&str, &str)]) -> DynamicObject {
        let containers: Vec<_> = memories
            .iter()
            .map(|(c, m)| json!({ "name": c, "usage": { "cpu": "9559630n", "memory": m } }))
            .collect();
        let mut v = json!({
            "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": { "name": name, "namespace": "staging", "creationTimestamp": "2022-01-27T19:25:00Z" },
            "window": "30s",
            "containers": containers
        });
        if let Some(ts) = ts {
            v["timestamp"] = json!(ts);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reads_working_set_in_every_spelling_with_the_sample_time() {
        let obj = pod_metrics(
            "web-1",
            Some("2022-01-27T19:24:31Z"),
            &[
                ("app", "22244Ki"),
                ("b", "380258472"),
                ("c", "262144k"),
                ("d", "0.4Gi"),
            ],
        );
        let now = Utc::now();
        let obs = observations(&obj, &[], now).unwrap();
        let values: Vec<u64> = obs.iter().map(|o| o.working_set).collect();
        assert_eq!(values, [22244 * 1024, 380258472, 262144000, 429496730]);
        let at = Utc.with_ymd_and_hms(2022, 1, 27, 19, 24, 31).unwrap();
        assert!(obs
            .iter()
            .all(|o| o.at == at && o.pod == "web-1" && o.usage.is_none()));
    }

    #[test]
    fn filters_containers_and_stamps_missing_timestamps() {
        let obj = pod_metrics("web-1", None, &[("app", "1Mi"), ("istio-proxy", "2Mi")]);
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let obs = observations(&obj, &["app".to_string()], now).unwrap();
        assert_eq!(obs.len(), 1);
        assert_eq!((obs[0].container.as_str(), obs[0].at), ("app", now));
    }

    #[test]
    fn bad_values_name_the_pod_and_container() {
        let obj = pod_metrics("web-1", Some("2022-01-27T19:24:31Z"), &[("app", "lots")]);
        let e = observations(&obj, &[], Utc::now()).unwrap_err().to_string();
        assert!(
            e.starts_with("PodMetrics web-1 container app usage.memory: "),
            "{e}"
        );
        let obj = pod_metrics("web-1", Some("yesterday"), &[("app", "1Mi")]);
        assert!(observations(&obj, &[], Utc::now()).is_err());
    }

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "")
                .with_code(code)
                .boxed(),
        )
    }

    #[tokio::test]
    async fn lists_pod_metrics_through_the_api() {
        use crate::workload::kubernetes::fake_api::{self, route, status};
        let list = json!({
            "kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
            "items": [ {
                "metadata": { "name": "web-1", "namespace": "staging", "labels": { "app": "web" } },
                "timestamp": "2022-01-27T19:24:31Z", "window": "30s",
                "containers": [ { "name": "app", "usage": { "cpu": "9559630n", "memory": "22244Ki" } } ]
            } ]
        });
        let api = fake_api::start(vec![
            route(
                "/apis/metrics.k8s.io/v1beta1/namespaces/staging/pods",
                200,
                list.to_string(),
            ),
            route(
                "/apis/metrics.k8s.io/v1beta1/namespaces/broken/pods",
                503,
                status(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                ),
            ),
        ])
        .await;
        let mut source = MetricsApiSource::new(
            api.client.clone(),
            "staging".into(),
            "app=web".into(),
            vec![],
        );
        assert_eq!(source.name(), "metrics-api");
        let obs = source.poll().await.unwrap();
        assert_eq!(obs.len(), 1);
        assert_eq!(
            (obs[0].pod.as_str(), obs[0].working_set),
            ("web-1", 22244 * 1024)
        );
        assert!(api.requests.lock().unwrap()[0].contains("labelSelector=app%3Dweb"));

        let broken = MetricsApiSource::new(
            api.client.clone(),
            "broken".into(),
            "app=web".into(),
            vec![],
        );
        let e = broken.probe().await.unwrap_err().to_string();
        assert!(e.starts_with("metrics API unavailable (503)"), "{e}");
        let missing =
            MetricsApiSource::new(api.client.clone(), "other".into(), "a=b".into(), vec![]);
        let e = missing.probe().await.unwrap_err().to_string();
        assert!(e.contains("is not installed"), "{e}");
    }

    #[test]
    fn a_tick_may_take_three_quarters_of_the_cadence() {
        let ms = Duration::from_millis;
        assert_eq!(tick_deadline(None), LIST_TIMEOUT);
        assert_eq!(tick_deadline(Some(ms(1000))), ms(750));
        assert_eq!(tick_deadline(Some(ms(1003))), ms(750));
        assert_eq!(tick_deadline(Some(ms(5000))), ms(3750));
        assert_eq!(tick_deadline(Some(ms(3))), MIN_TICK_DEADLINE);
        assert_eq!(tick_deadline(Some(Duration::from_secs(60))), LIST_TIMEOUT);
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = metrics_error(
            api_error(404, "the server could not find the requested resource"),
            "staging",
        );
        assert!(e
            .to_string()
            .contains("install metrics-server, or set memory.source: prometheus"));
        let e = metrics_error(
            api_error(503, "the server is currently unable to handle the request"),
            "staging",
        );
        assert!(e.to_string().starts_with("metrics API unavailable (503)"));
        let e = metrics_error(api_error(403, "forbidden"), "staging").to_string();
        assert!(
            e.starts_with("RBAC forbids `list` on `pods.metrics.k8s.io` in namespace `staging`"),
            "{e}"
        );
    }
}

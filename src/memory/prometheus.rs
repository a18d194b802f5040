//! The `prometheus` memory source and a small Prometheus HTTP API client. The client runs
//! instant and range queries (`/api/v1/query`, `/api/v1/query_range`, POSTed as a form so long
//! pod lists fit) with an optional bearer token it never shows, and turns Prometheus' own
//! `errorType`/`error` answers into [`PromError`]s. The source fills the scenario's query
//! template (`$namespace`, `$pods`) with the workload's current pods each tick and maps every
//! series labelled `pod` and `container` to an [`Observation`]. The same range client serves
//! `oomgate judge`, which reads a finished run's memory after the fact.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::{BoxFuture, MemorySource, Observation, SourceError};
use crate::model::Timestamp;
use crate::scenario::PrometheusSpec;
use crate::workload::kubernetes::pods_regex;

/// How long one Prometheus request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A Prometheus request failed. `Display` is the user-facing message; it never contains the
/// bearer token, and URLs are shown without credentials.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("memory.prometheus.url {url}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("cannot set up the Prometheus HTTP client: {0}")]
    Setup(String),
    #[error(
        "cannot reach Prometheus at {url}: {detail}; check memory.prometheus.url and your network"
    )]
    Unreachable { url: String, detail: String },
    #[error("Prometheus at {url} did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("Prometheus at {url} answered {status}: {}", rejected_hint(.token_env))]
    Rejected {
        url: String,
        status: u16,
        /// The environment variable the token came from, when there was one.
        token_env: Option<String>,
    },
    #[error("Prometheus query failed: {error_type}: {message}")]
    Query { error_type: String, message: String },
    #[error("Prometheus at {url} answered {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("Prometheus at {url}: unexpected answer: {detail}")]
    Decode { url: String, detail: String },
}

fn rejected_hint(token_env: &Option<String>) -> String {
    match token_env {
        Some(var) => format!("the bearer token from ${var} was rejected; check that it is valid and allowed to query"),
        None => "it requires authentication; set memory.prometheus.bearer_token_env to the name of a variable holding a token".to_string(),
    }
}

/// One series of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub at: Timestamp,
    pub value: f64,
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<(Timestamp, f64)>,
}

/// The `data` of a successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    Vector(Vec<Series>),
    Matrix(Vec<RangeSeries>),
    /// `scalar` and `string` results: nothing per container in them.
    Other(String),
}

/// Talks to one Prometheus server.
#[derive(Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    /// The base URL with any trailing `/` removed.
    base: String,
    token: Option<String>,
    token_env: Option<String>,
}

impl fmt::Debug for PrometheusClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusClient")
            .field("base", &crate::redact::url(&self.base))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl PrometheusClient {
    /// `token` was read by the caller from the variable `spec.bearer_token_env` names.
    pub fn new(spec: &PrometheusSpec, token: Option<String>) -> Result<Self, PromError> {
        let base = spec.url.trim().trim_end_matches('/').to_string();
        let parsed = Url::parse(&base).map_err(|e| PromError::BadUrl {
            url: crate::redact::url(&base),
            detail: format!("{e} (write e.g. http://prometheus.monitoring:9090)"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PromError::BadUrl {
                url: crate::redact::url(&base),
                detail: "only http:// and https:// are supported".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("oomgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PromError::Setup(crate::cluster::error_chain(&e.without_url())))?;
        Ok(PrometheusClient {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
            token_env: spec.bearer_token_env.clone(),
        })
    }

    /// `GET`-equivalent of `/api/v1/query?query=…` (sent as a POST form).
    pub async fn query_instant(&self, query: &str) -> Result<Vec<Series>, PromError> {
        let url = self.endpoint("query");
        match self.post(&url, &[("query", query.to_string())]).await? {
            QueryData::Vector(v) => Ok(v),
            QueryData::Matrix(_) => Err(decode(&url, "a range vector where an instant vector was expected; the query must not end in a [range] selector")),
            QueryData::Other(kind) => Err(decode(&url, &format!("a {kind} result; the query must return series labelled pod and container"))),
        }
    }

    /// `/api/v1/query_range` from `start` to `end` every `step`.
    pub async fn query_range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<Vec<RangeSeries>, PromError> {
        let url = self.endpoint("query_range");
        let params = [
            ("query", query.to_string()),
            ("start", unix_seconds(start)),
            ("end", unix_seconds(end)),
            ("step", format!("{}", step.as_secs_f64().max(0.001))),
        ];
        match self.post(&url, &params).await? {
            QueryData::Matrix(m) => Ok(m),
            QueryData::Vector(_) | QueryData::Other(_) => {
                Err(decode(&url, "a range query did not return a matrix"))
            }
        }
    }

    fn endpoint(&self, name: &str) -> String {
        format!("{}/api/v1/{name}", self.base)
    }

    async fn post(&self, url: &str, params: &[(&str, String)]) -> Result<QueryData, PromError> {
        let shown = crate::redact::url(url);
        let mut form = Url::parse("http://form.invalid/").expect("a valid constant URL");
        for (k, v) in params {
            form.query_pairs_mut().append_pair(k, v);
        }
        let body = form.query().unwrap_or_default().to_string();
        let mut request = self
            .http
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| transport(e, &shown))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(PromError::Rejected {
                url: shown,
                status: status.as_u16(),
                token_env: self.token.as_ref().and(self.token_env.clone()),
            });
        }
        let text = response.text().await.map_err(|e| transport(e, &shown))?;
        match parse_response(&text) {
            Ok(data) if status.is_success() => Ok(data),
            // Prometheus answers query errors with 400/422/503 and its own JSON.
            Err(e @ PromError::Query { .. }) => Err(e),
            Err(PromError::Decode { detail, .. }) if status.is_success() => {
                Err(PromError::Decode { url: shown, detail })
            }
            _ => Err(PromError::Http {
                url: shown,
                status: status.as_u16(),
                body: snippet(&text),
            }),
        }
    }
}

fn decode(url: &str, detail: &str) -> PromError {
    PromError::Decode {
        url: crate::redact::url(url),
        detail: detail.to_string(),
    }
}

fn transport(e: reqwest::Error, shown: &str) -> PromError {
    let timeout = e.is_timeout();
    let detail = crate::cluster::error_chain(&e.without_url());
    if timeout {
        PromError::Timeout {
            url: shown.to_string(),
        }
    } else {
        PromError::Unreachable {
            url: shown.to_string(),
            detail,
        }
    }
}

/// The first 300 characters of a body, on one line.
fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

fn unix_seconds(t: Timestamp) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// Parses a Prometheus API answer (`{"status":"success","data":{…}}` or
/// `{"status":"error","errorType":…,"error":…}`). `Decode` errors carry an empty URL.
pub fn parse_response(body: &str) -> Result<QueryData, PromError> {
    let bad = |detail: String| PromError::Decode {
        url: String::new(),
        detail,
    };
    let v: Value = serde_json::from_str(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    match v.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            return Err(PromError::Query {
                error_type: v["errorType"].as_str().unwrap_or("error").to_string(),
                message: v["error"].as_str().unwrap_or("(no message)").to_string(),
            })
        }
        other => {
            return Err(bad(format!(
                "status is {other:?}, not \"success\" or \"error\""
            )))
        }
    }
    let data = &v["data"];
    let result = data["result"].as_array();
    match data["resultType"].as_str() {
        Some("vector") => {
            let mut out = Vec::new();
            for item in result.ok_or_else(|| bad("vector without result".into()))? {
                let labels = labels(&item["metric"]);
                let (at, value) = sample(&item["value"]).map_err(bad)?;
                out.push(Series { labels, at, value });
            }
            Ok(QueryData::Vector(out))
        }
        Some("matrix") => {
            let mut out = Vec::new();
            for item in result.ok_or_else(|| bad("matrix without result".into()))? {
                let values = item["values"]
                    .as_array()
                    .map(|vals| vals.iter().map(sample).collect::<Result<Vec<_>, _>>())
                    .transpose()
                    .map_err(bad)?
                    .unwrap_or_default();
                out.push(RangeSeries {
                    labels: labels(&item["metric"]),
                    values,
                });
            }
            Ok(QueryData::Matrix(out))
        }
        Some(kind @ ("scalar" | "string")) => Ok(QueryData::Other(kind.to_string())),
        other => Err(bad(format!("unknown resultType {other:?}"))),
    }
}

fn labels(metric: &Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `[1435781451.781, "1.5e+08"]` → (time, value). Values may be `NaN` or `±Inf`.
fn sample(v: &Value) -> Result<(Timestamp, f64), String> {
    let pair = v.as_array().filter(|a| a.len() == 2);
    let (ts, val) = match pair {
        Some(a) => (&a[0], &a[1]),
        None => return Err(format!("a sample is not [time, \"value\"]: {v}")),
    };
    let secs = ts
        .as_f64()
        .ok_or_else(|| format!("sample time {ts} is not a number"))?;
    let at = DateTime::<Utc>::from_timestamp_millis((secs * 1000.0).round() as i64)
        .ok_or_else(|| format!("sample time {secs} is out of range"))?;
    let text = val
        .as_str()
        .ok_or_else(|| format!("sample value {val} is not a string"))?;
    let value = text
        .parse::<f64>()
        .map_err(|_| format!("sample value \"{text}\" is not a number"))?;
    Ok((at, value))
}

/// Replaces `$namespace` and `$pods` in a query template. Both are escaped for a PromQL
/// string literal, which is where the templates put them (`pod=~"$pods"`).
pub fn fill_query(template: &str, namespace: &str, pods_regex: &str) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    template
        .replace("$namespace", &escape(namespace))
        .replace("$pods", &escape(pods_regex))
}

/// Bytes from a sample value: `None` for NaN, infinities and negatives.
fn bytes(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 0.0).then(|| value.round() as u64)
}

/// The `(pod, container)` of a series worth measuring: both labels present, not the pod-level
/// sum (`container=""`) nor the pause container (`POD`), in the filter when there is one.
fn measured<'a>(
    labels: &'a BTreeMap<String, String>,
    filter: &[String],
) -> Option<(&'a str, &'a str)> {
    let pod = labels.get("pod").filter(|p| !p.is_empty())?;
    let container = labels.get("container").filter(|c| !c.is_empty())?;
    let wanted = if filter.is_empty() {
        container != "POD"
    } else {
        filter.contains(container)
    };
    wanted.then_some((pod.as_str(), container.as_str()))
}

/// One observation from a sample value. A value that is no working set (`NaN`, `±Inf`, a
/// negative number) becomes an observation with `bad_value` set, so the sampler can say why the
/// tick is uncovered instead of the series silently vanishing.
fn observation(pod: &str, container: &str, at: Timestamp, value: f64) -> Observation {
    let (working_set, bad_value) = match bytes(value) {
        Some(b) => (b, None),
        None => (0, Some(value.to_string())),
    };
    Observation {
        pod: pod.to_string(),
        container: container.to_string(),
        at,
        working_set,
        usage: None,
        kernel_peak_usage: None,
        oom_kills: None,
        bad_value,
        resident: None,
    }
}

/// Instant-query series → observations (series without pod/container labels and NaN skipped).
pub fn series_observations(series: &[Series], containers_filter: &[String]) -> Vec<Observation> {
    let mut out = series_readings(series, containers_filter);
    out.retain(|o| o.bad_value.is_none());
    out
}

/// Instant-query series → observations, a value that is no working set (NaN) kept as a
/// bad-value observation so the sampler can name it as the reason a tick is uncovered.
pub fn series_readings(series: &[Series], containers_filter: &[String]) -> Vec<Observation> {
    series
        .iter()
        .filter_map(|s| {
            let (pod, container) = measured(&s.labels, containers_filter)?;
            Some(observation(pod, container, s.at, s.value))
        })
        .collect()
}

/// Range-query series → observations, one per point (NaN and infinite points skipped).
pub fn range_observations(
    series: &[RangeSeries],
    containers_filter: &[String],
) -> Vec<Observation> {
    let mut out = Vec::new();
    for s in series {
        let Some((pod, container)) = measured(&s.labels, containers_filter) else {
            continue;
        };
        for &(at, value) in &s.values {
            out.push(observation(pod, container, at, value));
        }
    }
    out.retain(|o| o.bad_value.is_none());
    out
}

/// Reads the working set of the workload's containers from Prometheus, one instant query per
/// tick.
pub struct PrometheusSource {
    client: PrometheusClient,
    template: String,
    namespace: String,
    pods: Arc<RwLock<Vec<String>>>,
    containers_filter: Vec<String>,
}

impl PrometheusSource {
    /// `pods` holds the names of the pods to measure; whoever follows the pods adds new ones.
    pub fn new(
        client: PrometheusClient,
        query_template: String,
        namespace: String,
        pods: Arc<RwLock<Vec<String>>>,
        containers_filter: Vec<String>,
    ) -> Self {
        PrometheusSource {
            client,
            template: query_template,
            namespace,
            pods,
            containers_filter,
        }
    }

    /// The query as it is sent now.
    pub fn current_query(&self) -> (String, Vec<String>) {
        let pods = self.pods.read().map(|p| p.clone()).unwrap_or_default();
        (
            fill_query(&self.template, &self.namespace, &pods_regex(&pods)),
            pods,
        )
    }

    /// One instant query, filtered to the known pods.
    pub async fn probe(&self) -> Result<Vec<Observation>, SourceError> {
        let (query, pods) = self.current_query();
        if pods.is_empty() {
            return Ok(Vec::new());
        }
        let series = self
            .client
            .query_instant(&query)
            .await
            .map_err(|e| match e {
                PromError::Rejected { .. } => SourceError::Denied(e.to_string()),
                e => SourceError::Other(e.to_string()),
            })?;
        let mut obs = series_readings(&series, &self.containers_filter);
        obs.retain(|o| pods.contains(&o.pod));
        Ok(obs)
    }
}

impl MemorySource for PrometheusSource {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<Observation>, SourceError>> {
        Box::pin(self.probe())
    }
}

#[cfg(test)]
mod tests;

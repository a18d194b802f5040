//! The scenario file exactly as written (schema version 1): serde structs that reject unknown
//! keys, with unit-bearing values parsed while deserializing so their errors carry the line and
//! column. Cross-field rules live in `validate.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::units::{parse_duration, Bytes, DurationValue, Percent};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub version: Option<u32>,
    pub name: String,
    #[serde(default)]
    pub target: Option<Target>,
    /// Required to run a load; `oomgate judge` reads the load from k6's results instead.
    #[serde(default)]
    pub load: Option<Load>,
    pub workload: Workload,
    #[serde(default)]
    pub memory: Option<Memory>,
    #[serde(default)]
    pub policy: Option<PolicyRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Goose,
    K6,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default)]
    pub driver: Option<Driver>,
    #[serde(default)]
    pub stages: Vec<StageRaw>,
    #[serde(default)]
    pub requests: Vec<RequestRaw>,
    #[serde(default)]
    pub think_time: Option<ThinkTime>,
    #[serde(default)]
    pub k6: Option<K6Raw>,
    #[serde(default)]
    pub thresholds: Option<Thresholds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRaw {
    pub duration: DurationValue,
    pub users: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRaw {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub method: Option<Method>,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub expect_status: Option<ExpectStatus>,
}

/// `expect_status: 200` or `expect_status: [200, 201]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectStatus(pub Vec<u16>);

fn check_status<E: de::Error>(v: u64) -> Result<u16, E> {
    if (100..=599).contains(&v) {
        Ok(v as u16)
    } else {
        Err(E::custom(format!(
            "{v} is not an HTTP status code (100–599)"
        )))
    }
}

impl<'de> Deserialize<'de> for ExpectStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExpectStatus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code or a list of them, e.g. 200 or [200, 201]")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExpectStatus, E> {
                Ok(ExpectStatus(vec![check_status(v)?]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExpectStatus, E> {
                Ok(ExpectStatus(vec![check_status(
                    u64::try_from(v).unwrap_or(0),
                )?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExpectStatus, A::Error> {
                let mut codes = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    codes.push(check_status(v)?);
                }
                if codes.is_empty() {
                    return Err(de::Error::custom(
                        "an empty list accepts no response; list at least one status code",
                    ));
                }
                Ok(ExpectStatus(codes))
            }
        }
        d.deserialize_any(V)
    }
}

/// `think_time: 1s` or a range `500ms..1500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkTime {
    pub min: std::time::Duration,
    pub max: std::time::Duration,
}

impl<'de> Deserialize<'de> for ThinkTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let err = |e: crate::units::UnitError| de::Error::custom(e.to_string());
        match s.split_once("..") {
            Some((a, b)) => {
                let (min, max) = (
                    parse_duration(a.trim()).map_err(err)?,
                    parse_duration(b.trim()).map_err(err)?,
                );
                if min > max {
                    return Err(de::Error::custom(format!(
                        "\"{s}\": the range's lower end is above its upper end (write e.g. 500ms..1500ms)"
                    )));
                }
                Ok(ThinkTime { min, max })
            }
            None => {
                let t = parse_duration(s.trim()).map_err(err)?;
                Ok(ThinkTime { min: t, max: t })
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K6Raw {
    pub script: String,
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    #[serde(default)]
    pub p95: Option<DurationValue>,
    #[serde(default)]
    pub error_rate: Option<Percent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(default)]
    pub kubernetes: Option<KubernetesRaw>,
    #[serde(default)]
    pub local: Option<LocalRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRaw {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub deployment: Option<String>,
    #[serde(default)]
    pub statefulset: Option<String>,
    #[serde(default)]
    pub daemonset: Option<String>,
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    pub containers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRaw {
    pub command: Vec<String>,
    #[serde(default)]
    pub ready_url: Option<String>,
    #[serde(default)]
    pub ready_timeout: Option<DurationValue>,
    #[serde(default)]
    pub limit: Option<Bytes>,
    #[serde(default)]
    pub request: Option<Bytes>,
    #[serde(default)]
    pub manifest: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    MetricsApi,
    Prometheus,
    Cgroup,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::MetricsApi => "metrics-api",
            SourceKind::Prometheus => "prometheus",
            SourceKind::Cgroup => "cgroup",
        })
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Goose => "goose",
            Driver::K6 => "k6",
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    #[serde(default)]
    pub source: Option<SourceKind>,
    #[serde(default)]
    pub interval: Option<DurationValue>,
    #[serde(default)]
    pub prometheus: Option<PrometheusRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusRaw {
    pub url: String,
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LowConfidence {
    Warn,
    Ignore,
    Judge,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpaRaw {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tolerance: Option<Percent>,
    #[serde(default)]
    pub low_confidence: Option<LowConfidence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRaw {
    #[serde(default)]
    pub headroom: Option<Percent>,
    #[serde(default)]
    pub require_limit: Option<bool>,
    #[serde(default)]
    pub fail_on_restart: Option<bool>,
    #[serde(default)]
    pub stop_on_oom: Option<bool>,
    #[serde(default)]
    pub min_coverage: Option<Percent>,
    #[serde(default)]
    pub vpa: Option<VpaRaw>,
    #[serde(default)]
    pub leak: Option<LeakRaw>,
    #[serde(default)]
    pub expected_peak_users: Option<u32>,
    #[serde(default)]
    pub regression: Option<RegressionRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakRaw {
    #[serde(default)]
    pub min_hold: Option<DurationValue>,
    #[serde(default)]
    pub settle: Option<Percent>,
    #[serde(default)]
    pub horizon: Option<DurationValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionRaw {
    #[serde(default)]
    pub max_growth: Option<Percent>,
}

//! Baselines: an earlier run's `report.json` (schema `oomgate.report/v1`, e.g. the target
//! branch's last CI artifact) read back with `--baseline`, and the deltas between it and this
//! run — each container's peak and the p95 latency. Only the fields the comparison needs are
//! read (`scenario`, `started_at`, `containers[].container`/`peak_bytes`/`limit_bytes`,
//! `load.driver`/`p95_ms`); anything else in the document is ignored, as the schema allows
//! added fields. The judge (`judge::regression`) fails on peak growth beyond
//! `policy.regression.max_growth`; the summary shows the delta table.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::{group_containers, Baseline, BaselineContainer, Policy, Run};
use crate::report::json::SCHEMA_ID;

const HINT: &str =
    "--baseline takes the report.json an earlier oomgate run wrote (schema oomgate.report/v1)";

/// A baseline that cannot be used. `Display` is the whole message, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read the baseline report {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the baseline {} is not JSON ({source}): {HINT}", path.display())]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the baseline {} is not an oomgate report ({found}): {HINT}", path.display())]
    NotAReport { path: PathBuf, found: String },
    #[error(
        "the baseline {} has schema \"{schema}\" but this oomgate reads \"{SCHEMA_ID}\": compare \
         with a report written by the same major version", path.display()
    )]
    UnsupportedSchema { path: PathBuf, schema: String },
    #[error("the baseline {} is not a valid oomgate report: {field}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

#[derive(Deserialize)]
struct Document {
    scenario: String,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    containers: Vec<ContainerDoc>,
    #[serde(default)]
    load: Option<LoadDoc>,
}

#[derive(Deserialize)]
struct ContainerDoc {
    container: String,
    #[serde(default)]
    peak_bytes: Option<u64>,
    #[serde(default)]
    limit_bytes: Option<u64>,
    #[serde(default)]
    suggestion: Option<SuggestionDoc>,
}

#[derive(Deserialize)]
struct SuggestionDoc {
    #[serde(default)]
    limit_bytes: Option<u64>,
    /// Set when that run withheld its suggestion (a leak): its limit was never suggested.
    #[serde(default)]
    withheld: Option<String>,
}

#[derive(Deserialize)]
struct LoadDoc {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    p95_ms: Option<f64>,
}

/// Reads the `report.json` at `path` (or in `path`, when it is a directory, such as an
/// unpacked CI artifact).
pub fn read_baseline(path: &Path) -> Result<Baseline, BaselineError> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| BaselineError::Read {
        path: file.clone(),
        source,
    })?;
    parse_baseline(&file, &text)
}

/// Reads report text; `path` is named in errors.
pub fn parse_baseline(path: &Path, text: &str) -> Result<Baseline, BaselineError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| BaselineError::NotJson {
            path: path.to_path_buf(),
            source,
        })?;
    let not_a_report = |found: &str| BaselineError::NotAReport {
        path: path.to_path_buf(),
        found: found.to_string(),
    };
    let object = value
        .as_object()
        .ok_or_else(|| not_a_report("the document is not a JSON object"))?;
    match object.get("schema") {
        None => return Err(not_a_report("it has no \"schema\" field")),
        Some(serde_json::Value::String(s)) if s == SCHEMA_ID => {}
        Some(serde_json::Value::String(s)) if s.starts_with("oomgate.report/") => {
            return Err(BaselineError::UnsupportedSchema {
                path: path.to_path_buf(),
                schema: s.clone(),
            })
        }
        Some(other) => return Err(not_a_report(&format!("its \"schema\" is {other}"))),
    }
    let doc: Document = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        BaselineError::Invalid {
            path: path.to_path_buf(),
            field: if field == "." { "(top)".into() } else { field },
            message: e.into_inner().to_string(),
        }
    })?;
    let started_at = match doc.started_at {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(&s)
                .map_err(|e| BaselineError::Invalid {
                    path: path.to_path_buf(),
                    field: "started_at".into(),
                    message: format!("\"{s}\" is not an RFC 3339 time ({e})"),
                })?
                .with_timezone(&chrono::Utc),
        ),
    };
    let (driver, p95_ms) = match doc.load {
        Some(l) => (l.driver, l.p95_ms.filter(|v| v.is_finite())),
        None => (None, None),
    };
    Ok(Baseline {
        path: path.to_path_buf(),
        scenario: doc.scenario,
        started_at,
        verdict: doc.verdict,
        containers: doc
            .containers
            .into_iter()
            .map(|c| BaselineContainer {
                container: c.container,
                peak_bytes: c.peak_bytes,
                limit_bytes: c.limit_bytes,
                suggested_limit_bytes: c
                    .suggestion
                    .filter(|s| s.withheld.is_none())
                    .and_then(|s| s.limit_bytes),
            })
            .collect(),
        driver,
        p95_ms,
    })
}

/// What a delta compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A container's peak working set, bytes.
    PeakBytes,
    /// The run's p95 latency, milliseconds.
    P95Ms,
    /// The limit a container's "What to change" suggested, bytes (informational: the peak
    /// delta is what the regression rule judges).
    SuggestedLimitBytes,
}

/// One row of the delta table.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub metric: Metric,
    /// The container, for peaks.
    pub container: Option<String>,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
}

impl Delta {
    /// `(current − baseline) ÷ baseline`, when both are known and the baseline is above zero.
    pub fn change(&self) -> Option<f64> {
        match (self.baseline, self.current) {
            (Some(b), Some(c)) if b > 0.0 => Some((c - b) / b),
            _ => None,
        }
    }

    /// "app peak", "p95 latency".
    pub fn label(&self) -> String {
        match (self.metric, &self.container) {
            (Metric::PeakBytes, Some(c)) => format!("{c} peak"),
            (Metric::PeakBytes, None) => "peak".to_string(),
            (Metric::SuggestedLimitBytes, Some(c)) => format!("{c} suggested limit"),
            (Metric::SuggestedLimitBytes, None) => "suggested limit".to_string(),
            (Metric::P95Ms, _) => "p95 latency".to_string(),
        }
    }
}

/// The run's p95 latency, when requests were made.
pub fn current_p95(run: &Run) -> Option<f64> {
    (run.load.requests > 0 && run.load.p95_ms.is_finite()).then_some(run.load.p95_ms)
}

/// Peaks per container name (this run's containers in order, then those only the baseline
/// has), then the p95 latency.
pub fn deltas(run: &Run, baseline: &Baseline) -> Vec<Delta> {
    let mut out: Vec<Delta> = group_containers(run)
        .iter()
        .map(|g| Delta {
            metric: Metric::PeakBytes,
            container: Some(g.name.to_string()),
            baseline: baseline.peak(g.name).map(|b| b as f64),
            current: g.peak().map(|p| p.bytes as f64),
        })
        .collect();
    for c in &baseline.containers {
        if !out
            .iter()
            .any(|d| d.container.as_deref() == Some(&c.container))
        {
            out.push(Delta {
                metric: Metric::PeakBytes,
                container: Some(c.container.clone()),
                baseline: c.peak_bytes.map(|b| b as f64),
                current: None,
            });
        }
    }
    out.push(Delta {
        metric: Metric::P95Ms,
        container: None,
        baseline: baseline.p95_ms,
        current: current_p95(run),
    });
    out
}

/// The suggested limit per container name against the one the baseline suggested, for the
/// containers where either run suggested one.
pub fn suggestion_deltas(run: &Run, policy: &Policy, baseline: &Baseline) -> Vec<Delta> {
    let now = super::recommend::recommend(run, policy);
    let mut out: Vec<Delta> = now
        .iter()
        .map(|r| Delta {
            metric: Metric::SuggestedLimitBytes,
            container: Some(r.container.clone()),
            baseline: baseline
                .containers
                .iter()
                .find(|c| c.container == r.container)
                .and_then(|c| c.suggested_limit_bytes)
                .map(|b| b as f64),
            current: Some(r.limit as f64),
        })
        .collect();
    for c in &baseline.containers {
        if let Some(b) = c.suggested_limit_bytes {
            if !now.iter().any(|r| r.container == c.container) {
                out.push(Delta {
                    metric: Metric::SuggestedLimitBytes,
                    container: Some(c.container.clone()),
                    baseline: Some(b as f64),
                    current: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;

//! The scenario file: reading it (`${VAR}` expansion, YAML through serde_yaml_ng with unknown
//! keys rejected), validating it, and turning it into the typed `Scenario` the rest of oomgate
//! runs. Every error names the file, line, column and field path, and says what to write instead:
//! `scenarios/x.yaml:7:14: load.stages[1].duration: "5 minutes" is not a duration (write 5m)`.

mod depth;
mod expand;
mod locate;
pub mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::{Driver, Method, SourceKind};
pub use validate::{Overrides, Purpose};

use crate::model::{Policy, Stage};
use depth::{too_deep, MAX_FLOW_DEPTH};

/// A scenario error with its position in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted field path, e.g. `load.stages[1].duration`; empty for whole-file errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// One request of the Goose mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub name: String,
    pub method: Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub weight: u32,
    /// Accepted status codes; empty means "any 2xx".
    pub expect_status: Vec<u16>,
}

/// The k6 driver's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K6Spec {
    /// Resolved against the scenario file's directory.
    pub script: PathBuf,
    pub args: Vec<String>,
}

/// What load to send and how.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    pub driver: Driver,
    pub stages: Vec<Stage>,
    pub requests: Vec<RequestSpec>,
    /// Pause between two requests of one user (min = max for a fixed think time).
    pub think_time: (Duration, Duration),
    pub k6: Option<K6Spec>,
}

impl LoadSpec {
    pub fn total_duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }
}

/// Which Kubernetes object is measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadRef {
    Deployment(String),
    StatefulSet(String),
    DaemonSet(String),
    Selector(String),
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadRef::Deployment(n) => write!(f, "deployment/{n}"),
            WorkloadRef::StatefulSet(n) => write!(f, "statefulset/{n}"),
            WorkloadRef::DaemonSet(n) => write!(f, "daemonset/{n}"),
            WorkloadRef::Selector(s) => write!(f, "pods with selector {s}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSpec {
    pub namespace: String,
    pub workload: WorkloadRef,
    /// Empty = every container.
    pub containers: Vec<String>,
}

/// A service oomgate starts itself under a memory limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWorkloadSpec {
    pub command: Vec<String>,
    pub ready_url: Option<String>,
    pub ready_timeout: Duration,
    pub limit: Option<u64>,
    pub request: Option<u64>,
    /// Environment for the command (the manifest's literal env first, then the scenario's).
    pub env: Vec<(String, String)>,
    /// The container name used in reports.
    pub container: String,
    /// Where the limit came from, e.g. `scenario` or `deploy.yaml (Deployment/web)`.
    pub limit_from: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadSpec {
    Kubernetes(KubernetesSpec),
    Local(LocalWorkloadSpec),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusSpec {
    pub url: String,
    pub bearer_token_env: Option<String>,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemorySpec {
    pub source: SourceKind,
    pub interval: Duration,
    pub prometheus: Option<PrometheusSpec>,
}

/// VPA comparison settings (`policy.vpa`).
#[derive(Debug, Clone, PartialEq)]
pub struct VpaPolicy {
    /// `None` = auto: the VPA whose targetRef names the workload.
    pub name: Option<String>,
    pub tolerance: f64,
    pub low_confidence: raw::LowConfidence,
}

/// A validated scenario, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub file: PathBuf,
    pub name: String,
    /// Base URL of the load; `None` only for the k6 driver (the script has its URLs).
    pub target_url: Option<String>,
    pub load: LoadSpec,
    pub workload: WorkloadSpec,
    pub memory: MemorySpec,
    pub policy: Policy,
    pub stop_on_oom: bool,
    pub vpa: Option<VpaPolicy>,
}

impl Scenario {
    /// An error about `field` (a dotted path such as `policy.vpa.name`) found after parsing, e.g.
    /// against the cluster: `scenario.yaml:14:11: policy.vpa.name: …`. The position is looked
    /// up in the file again; without it the error still names the file and the field.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> ScenarioError {
        let at = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|text| locate::locate(&text, field));
        ScenarioError {
            file: self.file.clone(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The Prometheus query used when the scenario gives none: per container, without the pod-level
/// `container=""` series and the pause containers.
pub const DEFAULT_PROMETHEUS_QUERY: &str = "max by (pod, container) (container_memory_working_set_bytes{namespace=\"$namespace\", pod=~\"$pods\", container!=\"\", container!=\"POD\", image!=\"\"})";

/// Read, expand, parse and validate a scenario file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        field: String::new(),
        message: format!("cannot read the scenario: {e}"),
    })?;
    parse(path, &text, overrides, |name| std::env::var(name).ok())
}

/// Parse scenario text (`file` is used for messages and to resolve relative paths). An error's
/// position always lies inside the text.
pub fn parse(
    file: &Path,
    text: &str,
    overrides: &Overrides,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Scenario, ScenarioError> {
    parse_unclamped(file, text, overrides, lookup).map_err(|mut e| {
        if let Some(line) = e.line {
            let (line, column) = locate::clamp(text, line, e.column);
            e.line = Some(line);
            e.column = column;
        }
        e
    })
}

fn parse_unclamped(
    file: &Path,
    text: &str,
    overrides: &Overrides,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Scenario, ScenarioError> {
    let expanded = expand::expand(text, lookup).map_err(|e| ScenarioError {
        file: file.to_path_buf(),
        line: Some(e.line),
        column: Some(e.column),
        field: locate::field_at_line(text, e.line),
        message: e.message,
    })?;
    if let Some((line, column)) = too_deep(&expanded.text) {
        let (line, column) = expanded.original_position(line, column);
        return Err(ScenarioError {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            field: locate::field_at_line(text, line),
            message: format!(
                "brackets nested deeper than {MAX_FLOW_DEPTH} levels; a scenario needs a few \
                 at most: check for an unclosed `[` or `{{`"
            ),
        });
    }
    let de = serde_yaml_ng::Deserializer::from_str(&expanded.text);
    let raw: raw::ScenarioFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = clean_yaml_message(&inner.to_string(), &field);
        // A duplicate key: the parser points at the mapping's start; point at the repeat.
        let parent = if field == "." || field == "?" {
            String::new()
        } else {
            field
        };
        let duplicate = message
            .strip_prefix("duplicate field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(key, _)| key.to_string());
        let repeat = duplicate
            .as_deref()
            .and_then(|key| locate::locate_repeat(text, &parent, key));
        let (line, column) = match (repeat, inner.location()) {
            (Some((l, c)), _) => (Some(l), Some(c)),
            (None, Some(loc)) => {
                let (l, c) = expanded.original_position(loc.line(), loc.column());
                (Some(l), Some(c))
            }
            (None, None) => match locate::locate(text, &parent) {
                Some((l, c)) => (Some(l), Some(c)),
                None => (None, None),
            },
        };
        ScenarioError {
            file: file.to_path_buf(),
            line,
            column,
            message,
            // A duplicate names the repeated key itself (`load.stages`), not its mapping.
            field: match duplicate {
                Some(key) if parent.is_empty() => key,
                Some(key) => format!("{parent}.{key}"),
                None => parent,
            },
        }
    })?;
    validate::validate(file, text, raw, overrides)
}

/// Removes every " at line L column C" (serde_yaml_ng's own positions, which we print ourselves
/// and which may lie past the end of the text).
fn strip_positions(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" at line ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " at line ".len()..];
        let after_line = tail.trim_start_matches(|c: char| c.is_ascii_digit());
        rest = match after_line.strip_prefix(" column ") {
            Some(col) if after_line.len() < tail.len() => {
                col.trim_start_matches(|c: char| c.is_ascii_digit())
            }
            _ if after_line.len() < tail.len() => after_line,
            _ => {
                out.push_str(" at line ");
                tail
            }
        };
    }
    out.push_str(rest);
    out
}

/// serde_yaml_ng appends " at line L column C" and may prefix its own (parent) path; we print
/// both ourselves.
fn clean_yaml_message(msg: &str, field: &str) -> String {
    let stripped = strip_positions(msg);
    let mut m = stripped.as_str();
    if let Some((head, tail)) = m.split_once(": ") {
        if !head.contains(' ') && (head == "." || field.starts_with(head)) {
            m = tail;
        }
    }
    let m = m.trim();
    if let Some(rest) = m.strip_prefix("unknown field ") {
        // "unknown field `foo`, expected one of `a`, `b`"
        return match rest.split_once(", expected ") {
            Some((key, expected)) => format!("unknown key {key} (expected {expected})"),
            None => format!("unknown key {rest}"),
        };
    }
    if let Some(rest) = m.strip_prefix("invalid type: ") {
        return format!("wrong type: {rest}");
    }
    m.to_string()
}

#[cfg(test)]
mod tests;

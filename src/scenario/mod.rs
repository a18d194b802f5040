//! The scenario file: reading it (`${VAR}` expansion, then YAML through serde-saphyr with its
//! budgets, duplicate keys and unknown keys refused), validating it, and turning it into the
//! typed `Scenario` the rest of oomgate runs. Every error names the file, line, column and field
//! path, and says what to write instead:
//! `scenarios/x.yaml:7:14: load.stages[1].duration: "5 minutes" is not a duration (write 5m)`.
//! Positions come from serde-saphyr (its error locations while parsing, its spans for the
//! cross-field rules afterwards), mapped back through the expansion to the file as written.

mod expand;
mod message;
pub mod raw;
mod spans;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use message::plain as yaml_message;
pub use raw::{Driver, Method, SourceKind};
pub use validate::{Overrides, Purpose};

use crate::model::{Policy, Stage};

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
        let at = std::fs::read_to_string(&self.file).ok().and_then(|text| {
            let expanded = expand::expand(&text, |name| std::env::var(name).ok()).ok()?;
            let tree = on_parser_stack(|| spans::Node::parse(&expanded.text).ok());
            spans::Positions::new(&expanded, tree).of(field)
        });
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
    lookup: impl Fn(&str) -> Option<String> + Send,
) -> Result<Scenario, ScenarioError> {
    on_parser_stack(|| parse_unclamped(file, text, overrides, lookup)).map_err(|mut e| {
        if let Some(line) = e.line {
            let (line, column) = expand::clamp(text, line, e.column);
            e.line = Some(line);
            e.column = column;
        }
        e
    })
}

/// Runs `f` on a thread of its own with a large stack. serde-saphyr descends recursively, one
/// set of frames per nesting level: the 64 levels a scenario may have took more than the 2 MiB a
/// spawned thread (a test, a tokio worker) gets in a debug build. The memory is only reserved;
/// what the parse does not touch is never committed.
fn on_parser_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    const PARSER_STACK: usize = 64 << 20;
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("scenario-parser".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, f)
        {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => panic!("cannot start the scenario parser's thread: {e}"),
        }
    })
}

/// How deep flow collections (`[`, `{`) may nest: a scenario needs a few levels; the parser
/// stops `[[[[…` at the 65th before it costs anything.
pub const MAX_DEPTH: usize = 64;

/// The parser's limits for a scenario file: flow collections [`MAX_DEPTH`] deep, mappings and
/// sequences of any style twice that; the other limits are serde-saphyr's defaults, far above
/// any scenario.
fn budget() -> Option<serde_saphyr::Budget> {
    serde_saphyr::budget! {
        max_depth: 2 * MAX_DEPTH,
        flow_nesting_limit: MAX_DEPTH,
    }
}

/// The first variable whose value is not inside one scalar of the expanded document: it added
/// an item, a key, a comment or a collection, or ended a quoted string. `None` when every value
/// stays a (part of a) scalar, or when the text does not parse (the parse then reports it).
fn injected(
    expanded: &expand::Expanded,
    tree: Option<&serde_saphyr::Spanned<spans::Node>>,
) -> Option<expand::Placed> {
    let placed = expanded.placed();
    if placed.is_empty() {
        return None;
    }
    let scalars = spans::Node::scalars(tree?);
    placed.into_iter().find(|v| {
        !scalars
            .iter()
            .any(|&(at, len)| at <= v.offset && v.offset + v.len <= at + len)
    })
}

/// Whether `text` holds no YAML node: only blank lines and comments.
fn no_content(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---")
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
        field: expand::field_at_line(text, e.line),
        message: e.message,
    })?;
    // The shape of the whole document first, untyped: nesting too deep is refused wherever it
    // is (the typed parse below may stop at a wrong type before it gets there), and the spans
    // serve the checks below.
    let tree = match spans::Node::parse(&expanded.text) {
        Err(e) if message::too_deep(&e) => {
            let line = e.location().map_or(1, |at| at.line().max(1) as usize);
            let column = e.location().map_or(1, |at| at.column().max(1) as usize);
            let (line, column) = expanded.original_position(line, column);
            return Err(ScenarioError {
                file: file.to_path_buf(),
                line: Some(line),
                column: Some(column),
                field: expand::field_at_line(text, line),
                message: message::text(&e, &expanded.text),
            });
        }
        tree => tree.ok(),
    };
    if let Some(var) = injected(&expanded, tree.as_ref()) {
        return Err(ScenarioError {
            file: file.to_path_buf(),
            line: Some(var.line),
            column: Some(var.column),
            field: expand::field_at_line(text, var.line),
            message: format!(
                "the value of environment variable {} would change the scenario's structure \
                 (it holds YAML syntax such as `, `, `: `, ` #`, a bracket or a quote): a \
                 variable can only give a value",
                var.name
            ),
        });
    }
    let options = serde_saphyr::options! {
        budget: budget(),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    let mut path = String::new();
    let typed = |yaml: &str, options, path: &mut String| {
        serde_saphyr::with_deserializer_from_str_with_options(yaml, options, |de| {
            serde_path_to_error::deserialize::<_, raw::ScenarioFile>(de).map_err(|e| {
                *path = e.path().to_string();
                e.into_inner()
            })
        })
    };
    let raw = match typed(&expanded.text, options, &mut path) {
        // A document with nothing in it reads as an empty mapping: the first required key is
        // what is missing, at 1:1.
        Err(serde_saphyr::Error::Eof { .. }) if no_content(&expanded.text) => {
            typed("{}", serde_saphyr::Options::default(), &mut path)
        }
        other => other,
    };
    let raw = raw.map_err(|e| {
        let parent = if path == "." || path == "?" {
            String::new()
        } else {
            path
        };
        // A missing key: the mapping it is missing from (serde-saphyr points at its last key).
        let missing_from = match &e {
            serde_saphyr::Error::SerdeMissingField { .. } if parent.is_empty() => {
                Some(tree.as_ref().map(|t| t.referenced))
            }
            serde_saphyr::Error::SerdeMissingField { .. } => None,
            _ => None,
        };
        let at = match missing_from {
            Some(root) => root.or(e.location()),
            None => e.location(),
        };
        let (line, column) = match at.filter(|l| l.line() > 0) {
            Some(at) => {
                let (l, c) =
                    expanded.original_position(at.line() as usize, at.column().max(1) as usize);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ScenarioError {
            file: file.to_path_buf(),
            line,
            column,
            message: message::text(&e, &expanded.text),
            // A repeated key names the key itself (`load.stages`), not its mapping.
            field: match &e {
                serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
                    if parent.is_empty() {
                        key.clone()
                    } else {
                        format!("{parent}.{key}")
                    }
                }
                // A syntax error found while reading ahead has no serde path: the keys the
                // line is under.
                serde_saphyr::Error::ExternalMessage { .. } if parent.is_empty() => line
                    .map(|l| expand::field_at_line(text, l))
                    .unwrap_or_default(),
                _ => parent,
            },
        }
    })?;
    validate::validate(file, spans::Positions::new(&expanded, tree), raw, overrides)
}

#[cfg(test)]
mod tests;

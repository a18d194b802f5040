//! What to set, derived from what was measured: per container name a memory limit that keeps
//! the policy's headroom over the measured peak (peak ÷ (1 − headroom), rounded up to a whole MiB,
//! or to 64 MiB steps above 1 GiB) — or over the resident set of the container's largest
//! process when that is higher (a local run's cgroup may not be charged for the runtime's own
//! binary and libraries already in the page cache, which a cluster's container pays for), a
//! request from the median working set of the busiest hold
//! plus the VPA's own 15 % margin, and the runtime heap settings that follow from the limit —
//! GOMEMLIMIT at 90 % (Go's GC guide leaves 5–10 %), Node's `--max-old-space-size` at 75 % in
//! MiB, Java's `-XX:MaxRAMPercentage=75` — written out as a strategic-merge YAML patch for the
//! pod template. Reports show the recommendations; the judge quotes them in findings.

use super::capacity::capacity;
use super::runtime::{container_env, JAVA_VARIABLES};
use super::MIB;
use crate::model::group_containers;
use crate::model::{Policy, Run, Timestamp};
use crate::units::{format_bytes, format_bytes_exact_quantity, format_go_bytes, format_percent};

/// The VPA's safety margin over its target: requests get the same.
pub const REQUEST_MARGIN: f64 = 1.15;
/// GOMEMLIMIT as a share of the limit.
pub const GOMEMLIMIT_SHARE: f64 = 0.90;
/// Node's old-space heap as a share of the limit.
pub const NODE_HEAP_SHARE: f64 = 0.75;
/// Java's heap as a percentage of the container's memory.
pub const JAVA_MAX_RAM_PERCENTAGE: u32 = 75;

const MIB_U: u64 = 1 << 20;
const GIB_U: u64 = 1 << 30;
const LARGE_STEP: u64 = 64 * MIB_U;

/// `value` rounded up to a multiple of `step`, absorbing float error just above a multiple.
fn ceil_to(value: f64, step: u64) -> u64 {
    let steps = value / step as f64;
    let nearest = steps.round();
    let whole = if (steps - nearest).abs() < 1e-9 {
        nearest
    } else {
        steps.ceil()
    };
    (whole.max(0.0) as u64).saturating_mul(step)
}

/// The limit that keeps `headroom` free above `peak`: `peak ÷ (1 − headroom)` rounded up to a
/// whole MiB, or to a multiple of 64 MiB when that is above 1 GiB.
pub fn suggested_limit(peak: u64, headroom: f64) -> u64 {
    let exact = peak as f64 / (1.0 - headroom.clamp(0.0, 0.95));
    let mib = ceil_to(exact, MIB_U);
    if mib > GIB_U {
        ceil_to(exact, LARGE_STEP)
    } else {
        mib
    }
}

/// A request for a typical working set of `median` bytes: × 1.15, rounded up to a whole MiB.
pub fn suggested_request(median: u64) -> u64 {
    ceil_to(median as f64 * REQUEST_MARGIN, MIB_U)
}

/// GOMEMLIMIT for `limit`: 90 %, rounded down to a whole MiB.
pub fn gomemlimit_for(limit: u64) -> u64 {
    (limit as f64 * GOMEMLIMIT_SHARE / MIB) as u64 * MIB_U
}

/// `--max-old-space-size` (MiB) for `limit`: 75 %, rounded down.
pub fn node_heap_mib_for(limit: u64) -> u64 {
    (limit as f64 * NODE_HEAP_SHARE / MIB) as u64
}

/// Where a suggested request comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestBasis {
    /// 0-based stage index of the busiest hold.
    pub stage: usize,
    pub users: u32,
    /// Median working set of its settled part (the highest across pods), bytes.
    pub median: u64,
}

/// An environment variable to set, and for which runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSetting {
    pub runtime: &'static str,
    pub name: String,
    pub value: String,
}

/// Where the suggested limit comes from: the highest working-set sample (the 100th
/// percentile of the container's samples across pods), and the resident floor above it.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitBasis {
    /// When the peak sample was taken, and the 0-based stage it fell in (`None` outside every
    /// stage).
    pub at: Timestamp,
    pub stage: Option<usize>,
    /// That stage for people: "stage 4, hold at 200 users".
    pub stage_label: Option<String>,
    pub pod: String,
    /// Samples across pods the peak is the highest of.
    pub samples: usize,
    /// The highest resident set of the container's largest process, bytes, when the source
    /// reads it (local workloads).
    pub resident: Option<u64>,
    /// `resident` when it is above the working-set peak: the limit is sized from it instead.
    pub resident_floor: Option<u64>,
}

/// What one container name should be given.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub container: String,
    /// The measured peak (across pods), bytes.
    pub peak: u64,
    pub limit_basis: LimitBasis,
    pub headroom: f64,
    pub limit: u64,
    pub current_limit: Option<u64>,
    /// `None` when the run had no hold to base it on.
    pub request: Option<u64>,
    pub request_basis: Option<RequestBasis>,
    pub current_request: Option<u64>,
    /// GOMEMLIMIT, bytes.
    pub gomemlimit: u64,
    /// `--max-old-space-size`, MiB.
    pub node_max_old_space_mib: u64,
    pub java_max_ram_percentage: u32,
    /// The variables to set for the runtimes seen in the container's environment; empty when
    /// the runtime is unknown (the patch then lists the choices as comments).
    pub env: Vec<EnvSetting>,
}

/// A recommendation for every container name with memory data, in the order the run lists
/// them.
pub fn recommend(run: &Run, policy: &Policy) -> Vec<Recommendation> {
    let models = capacity(run, policy.leak.settle);
    let mut out = Vec::new();
    for group in group_containers(run) {
        let Some(peak) = group.peak() else { continue };
        let resident = group
            .series
            .iter()
            .filter_map(|s| s.max_resident.map(|(b, _)| b))
            .max();
        let resident_floor = resident.filter(|r| *r > peak.bytes);
        let limit = suggested_limit(resident_floor.unwrap_or(peak.bytes), policy.headroom);
        let limit_basis = LimitBasis {
            at: peak.at,
            stage: run.stage_at(peak.at).map(|w| w.stage.index),
            stage_label: run.stage_at(peak.at).map(|w| w.stage.describe()),
            pod: peak.pod.to_string(),
            samples: group.sample_count(),
            resident,
            resident_floor,
        };
        let basis = models
            .iter()
            .find(|m| m.container == group.name)
            .and_then(|m| {
                m.levels
                    .iter()
                    .max_by(|a, b| a.users.cmp(&b.users).then(a.median.total_cmp(&b.median)))
            })
            .map(|l| RequestBasis {
                stage: l.stage,
                users: l.users,
                median: l.median.round() as u64,
            });
        let request = basis
            .as_ref()
            .map(|b| suggested_request(b.median).min(limit));
        let env = container_env(run, group.name)
            .map(|env| runtime_env(env, limit))
            .unwrap_or_default();
        out.push(Recommendation {
            container: group.name.to_string(),
            peak: peak.bytes,
            limit_basis,
            headroom: policy.headroom,
            limit,
            current_limit: group.limit(),
            request,
            request_basis: basis,
            current_request: group.request(),
            gomemlimit: gomemlimit_for(limit),
            node_max_old_space_mib: node_heap_mib_for(limit),
            java_max_ram_percentage: JAVA_MAX_RAM_PERCENTAGE,
            env,
        });
    }
    out
}

/// The variables to change for the runtimes `env` shows, other flags kept.
fn runtime_env(env: &[(String, String)], limit: u64) -> Vec<EnvSetting> {
    let get = |name: &str| env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
    let mut out = Vec::new();
    if get("GOMEMLIMIT").is_some() {
        out.push(EnvSetting {
            runtime: "Go",
            name: "GOMEMLIMIT".into(),
            value: format_go_bytes(gomemlimit_for(limit)),
        });
    }
    if let Some(v) = get("NODE_OPTIONS") {
        let heap = format!("--max-old-space-size={}", node_heap_mib_for(limit));
        out.push(EnvSetting {
            runtime: "Node.js",
            name: "NODE_OPTIONS".into(),
            value: replace_flags(v, &["--max-old-space-size", "--max_old_space_size"], &heap),
        });
    }
    for name in JAVA_VARIABLES {
        if let Some(v) = get(name) {
            let pct = format!("-XX:MaxRAMPercentage={JAVA_MAX_RAM_PERCENTAGE}");
            out.push(EnvSetting {
                runtime: "Java",
                name: name.into(),
                value: replace_flags(
                    v,
                    &["-Xmx", "-XX:MaxHeapSize", "-XX:MaxRAMPercentage"],
                    &pct,
                ),
            });
        }
    }
    out
}

/// `options` without any token starting with one of `prefixes` (and the separate value of a
/// bare `--flag value`), with `replacement` appended.
fn replace_flags(options: &str, prefixes: &[&str], replacement: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut skip_next = false;
    for token in options.split_whitespace() {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let bare = token.trim_matches(|c| c == '"' || c == '\'');
        if prefixes.iter().any(|p| bare.starts_with(p)) {
            skip_next = bare.starts_with("--") && !bare.contains('=');
            continue;
        }
        kept.push(token);
    }
    kept.push(replacement);
    kept.join(" ")
}

fn yaml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A strategic-merge patch for the pod template setting the container's memory request and
/// limit and its runtime heap variables (as comments to choose from when its runtime is
/// unknown), e.g. for `kubectl patch deployment/web --patch-file memory.yaml`.
pub fn yaml_patch(r: &Recommendation) -> String {
    let mut y = String::new();
    let basis = match &r.request_basis {
        Some(b) => format!(
            "; request: median {} in the hold at {} users + 15%",
            format_bytes(b.median),
            b.users
        ),
        None => String::new(),
    };
    let floor = match r.limit_basis.resident_floor {
        Some(res) => format!(
            " (sized from its largest process's resident set of {}, higher)",
            format_bytes(res)
        ),
        None => String::new(),
    };
    y.push_str(&format!(
        "# {}: peak {} under load; limit keeps {} headroom{floor}{basis}\n",
        r.container,
        format_bytes(r.peak),
        format_percent(r.headroom)
    ));
    y.push_str("# apply with: kubectl patch <deployment|statefulset|daemonset>/<name> --patch-file <this file>\n");
    y.push_str("spec:\n  template:\n    spec:\n      containers:\n");
    y.push_str(&format!("        - name: {}\n", r.container));
    y.push_str("          resources:\n");
    if let Some(request) = r.request {
        y.push_str(&format!(
            "            requests:\n              memory: {}\n",
            format_bytes_exact_quantity(request)
        ));
    }
    y.push_str(&format!(
        "            limits:\n              memory: {}\n",
        format_bytes_exact_quantity(r.limit)
    ));
    if r.env.is_empty() {
        let go = format_go_bytes(r.gomemlimit);
        y.push_str("          # env: keep the line for the container's runtime\n");
        y.push_str("          # env:\n");
        y.push_str(&format!(
            "          #   - {{ name: GOMEMLIMIT, value: \"{go}\" }}   # Go\n"
        ));
        y.push_str(&format!(
            "          #   - {{ name: NODE_OPTIONS, value: \"--max-old-space-size={}\" }}   # Node.js\n",
            r.node_max_old_space_mib
        ));
        y.push_str(&format!(
            "          #   - {{ name: JAVA_TOOL_OPTIONS, value: \"-XX:MaxRAMPercentage={}\" }}   # Java\n",
            r.java_max_ram_percentage
        ));
    } else {
        y.push_str("          env:\n");
        for e in &r.env {
            y.push_str(&format!(
                "            - name: {}   # {}\n              value: {}\n",
                e.name,
                e.runtime,
                yaml_string(&e.value)
            ));
        }
    }
    y
}

#[cfg(test)]
#[path = "recommend_tests.rs"]
mod tests;

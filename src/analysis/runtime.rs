//! Runtime heap settings read from a container's environment and weighed against its memory
//! limit: Go's `GOMEMLIMIT` (plain bytes or with a B/KiB/MiB/GiB/TiB suffix, as the Go runtime
//! reads it), Node's `--max-old-space-size=N` (MiB) in `NODE_OPTIONS`, and Java's `-Xmx` /
//! `-XX:MaxHeapSize` (k/m/g/t suffixes) and `-XX:MaxRAMPercentage` in `JAVA_TOOL_OPTIONS`,
//! `JDK_JAVA_OPTIONS` or `JAVA_OPTS`. A heap close to the limit leaves no room for what lives
//! outside it (goroutine stacks, V8 code space, metaspace, threads, buffers); a heap at or above
//! the limit means the kernel kills the process before its garbage collector tries hard. What to
//! set instead comes from `recommend`. The judge (`judge::runtime`) words the findings.

use super::recommend::{gomemlimit_for, node_heap_mib_for, JAVA_MAX_RAM_PERCENTAGE};
use crate::model::Run;
use crate::units::format_go_bytes;

/// The Java variables searched for heap flags, in the order the JVM applies them.
pub const JAVA_VARIABLES: [&str; 3] = ["JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "JAVA_OPTS"];

/// Which heap setting a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapKind {
    GoMemLimit,
    NodeMaxOldSpace,
    JavaXmx,
    JavaMaxRamPercentage,
}

impl HeapKind {
    /// Above this share of the limit the setting warns.
    pub fn high(self) -> f64 {
        match self {
            HeapKind::GoMemLimit => 0.95,
            _ => 0.80,
        }
    }

    /// Below this share of the limit the setting warns (Go only: the GC would run needlessly).
    pub fn low(self) -> Option<f64> {
        match self {
            HeapKind::GoMemLimit => Some(0.50),
            _ => None,
        }
    }

    /// What lives outside this heap, for messages.
    pub fn outside(self) -> &'static str {
        match self {
            HeapKind::GoMemLimit => "memory the Go runtime does not manage (cgo, mmaps)",
            HeapKind::NodeMaxOldSpace => "code, stacks and buffers outside the V8 heap",
            HeapKind::JavaXmx | HeapKind::JavaMaxRamPercentage => {
                "metaspace, threads and buffers outside the heap"
            }
        }
    }
}

/// A heap setting's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeapValue {
    Bytes(u64),
    /// A share of the container's memory (MaxRAMPercentage 75 → 0.75).
    Share(f64),
}

/// One heap setting found in a container's environment.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapSetting {
    /// The environment variable: `GOMEMLIMIT`, `NODE_OPTIONS`, `JAVA_TOOL_OPTIONS`, …
    pub variable: String,
    /// The flag as written: `460MiB`, `--max-old-space-size=900`, `-Xmx900m`.
    pub token: String,
    pub kind: HeapKind,
    /// The value, or why it cannot be read (and what to write).
    pub value: Result<HeapValue, String>,
}

impl HeapSetting {
    /// "GOMEMLIMIT=460MiB", "NODE_OPTIONS --max-old-space-size=900".
    pub fn describe(&self) -> String {
        match self.kind {
            HeapKind::GoMemLimit => format!("{}={}", self.variable, self.token),
            _ => format!("{} {}", self.variable, self.token),
        }
    }

    /// The heap size this setting gives under `limit`.
    pub fn heap_bytes(&self, limit: u64) -> Option<u64> {
        match self.value {
            Ok(HeapValue::Bytes(b)) => Some(b),
            Ok(HeapValue::Share(s)) => Some((limit as f64 * s) as u64),
            Err(_) => None,
        }
    }
}

/// How a setting compares with the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Assessment {
    /// Between the low and the high bound.
    Fine { share: f64 },
    /// Above [`HeapKind::high`] but below the limit.
    High { share: f64 },
    /// Below [`HeapKind::low`].
    Low { share: f64 },
    /// At or above the limit.
    AtOrAboveLimit { share: f64 },
    /// The value cannot be read.
    Unreadable,
}

/// Weighs `setting` against `limit` (bytes).
pub fn assess(setting: &HeapSetting, limit: u64) -> Assessment {
    let Some(heap) = setting.heap_bytes(limit) else {
        return Assessment::Unreadable;
    };
    let share = match setting.value {
        Ok(HeapValue::Share(s)) => s,
        _ if limit == 0 => f64::INFINITY,
        _ => heap as f64 / limit as f64,
    };
    if share >= 1.0 {
        Assessment::AtOrAboveLimit { share }
    } else if share > setting.kind.high() {
        Assessment::High { share }
    } else if setting.kind.low().is_some_and(|low| share < low) {
        Assessment::Low { share }
    } else {
        Assessment::Fine { share }
    }
}

/// What to set instead under `limit`: "GOMEMLIMIT=921MiB (90% of the limit)"; `of` names the
/// limit ("the limit", "the 144 MiB limit suggested in …"). The values come from the same
/// functions `recommend` uses, so a finding and "What to change" quote one number.
pub fn advice(kind: HeapKind, limit: u64, of: &str) -> String {
    match kind {
        HeapKind::GoMemLimit => format!(
            "GOMEMLIMIT={} (90% of {of})",
            format_go_bytes(gomemlimit_for(limit))
        ),
        HeapKind::NodeMaxOldSpace => format!(
            "--max-old-space-size={} (75% of {of})",
            node_heap_mib_for(limit)
        ),
        HeapKind::JavaXmx | HeapKind::JavaMaxRamPercentage => format!(
            "-XX:MaxRAMPercentage={JAVA_MAX_RAM_PERCENTAGE} (and no -Xmx) so the heap follows the \
             limit"
        ),
    }
}

/// The environment recorded for `container`, when known.
pub fn container_env<'a>(run: &'a Run, container: &str) -> Option<&'a [(String, String)]> {
    run.env
        .iter()
        .find(|(name, _)| name == container)
        .map(|(_, env)| env.as_slice())
}

/// Every heap setting in `env`, in the order of the variables. Within one variable the last
/// occurrence of a flag wins, as it does for the runtimes; `GOMEMLIMIT=off` is no setting.
pub fn heap_settings(env: &[(String, String)]) -> Vec<HeapSetting> {
    let mut out = Vec::new();
    let get = |name: &str| env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
    if let Some(value) = get("GOMEMLIMIT") {
        let value = value.trim();
        if !value.is_empty() && value != "off" {
            out.push(HeapSetting {
                variable: "GOMEMLIMIT".into(),
                token: value.to_string(),
                kind: HeapKind::GoMemLimit,
                value: parse_go_bytes(value).map(HeapValue::Bytes),
            });
        }
    }
    if let Some(value) = get("NODE_OPTIONS") {
        let node = flags(value, &["--max-old-space-size", "--max_old_space_size"]);
        if let Some((token, raw)) = node.last() {
            out.push(HeapSetting {
                variable: "NODE_OPTIONS".into(),
                token: token.clone(),
                kind: HeapKind::NodeMaxOldSpace,
                value: raw
                    .parse::<u64>()
                    .map(|mib| HeapValue::Bytes(mib << 20))
                    .map_err(|_| "not a whole number of MiB (write e.g. 768)".to_string()),
            });
        }
    }
    for variable in JAVA_VARIABLES {
        let Some(value) = get(variable) else { continue };
        let tokens: Vec<&str> = value.split_whitespace().map(unquote).collect();
        let xmx = tokens.iter().rev().find_map(|t| {
            t.strip_prefix("-Xmx")
                .or_else(|| t.strip_prefix("-XX:MaxHeapSize="))
                .map(|v| (t, v))
        });
        if let Some((token, v)) = xmx {
            out.push(HeapSetting {
                variable: variable.into(),
                token: token.to_string(),
                kind: HeapKind::JavaXmx,
                value: parse_java_size(v).map(HeapValue::Bytes),
            });
        }
        let pct = tokens
            .iter()
            .rev()
            .find_map(|t| t.strip_prefix("-XX:MaxRAMPercentage=").map(|v| (t, v)));
        if let Some((token, v)) = pct {
            out.push(HeapSetting {
                variable: variable.into(),
                token: token.to_string(),
                kind: HeapKind::JavaMaxRamPercentage,
                value: v
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && (0.0..=100.0).contains(p))
                    .map(|p| HeapValue::Share(p / 100.0))
                    .ok_or_else(|| "not a percentage from 0 to 100 (write e.g. 75)".to_string()),
            });
        }
    }
    out
}

fn unquote(token: &str) -> &str {
    token.trim_matches(|c| c == '"' || c == '\'')
}

/// `(token, value)` of every `--flag=value` or `--flag value` among `names` in `options`.
fn flags(options: &str, names: &[&str]) -> Vec<(String, String)> {
    let tokens: Vec<&str> = options.split_whitespace().map(unquote).collect();
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        for name in names {
            if let Some(v) = token.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                out.push((token.to_string(), v.to_string()));
            } else if token == name {
                if let Some(v) = tokens.get(i + 1) {
                    out.push((format!("{token} {v}"), v.to_string()));
                }
            }
        }
    }
    out
}

/// A byte count as the Go runtime reads `GOMEMLIMIT`: digits with an optional `B`, `KiB`,
/// `MiB`, `GiB` or `TiB` suffix.
pub fn parse_go_bytes(s: &str) -> Result<u64, String> {
    let hint = || format!("\"{s}\" is not a Go byte count (write e.g. 460MiB or 482344960)");
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let shift = match suffix {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        _ => return Err(hint()),
    };
    let n: u64 = number.parse().map_err(|_| hint())?;
    n.checked_mul(1u64 << shift).ok_or_else(hint)
}

/// A Java size as `-Xmx` reads it: digits with an optional k/K, m/M, g/G or t/T suffix.
pub fn parse_java_size(s: &str) -> Result<u64, String> {
    let hint = || format!("\"{s}\" is not a Java heap size (write e.g. 768m or 2g)");
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        _ => return Err(hint()),
    };
    let n: u64 = number.parse().map_err(|_| hint())?;
    n.checked_mul(1u64 << shift).ok_or_else(hint)
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;

//! "What to change", worded from each container's `analysis::recommend::Recommendation` (the one
//! source of the suggested limit, request and runtime heap settings, which the judge quotes
//! too): a sentence on the limit and the request, a sentence on the runtime heap settings that
//! follow from the suggested limit, and the ready YAML patch of `recommend::yaml_patch` with the
//! container name made a safe YAML scalar. Shared by the terminal, Markdown and HTML reports so
//! all say the same; the text is plain (the caller escapes it) and the sentences never contain
//! the container name, which each format prints in its own markup.

use super::escape::yaml_scalar;
use super::ContainerRow;
use crate::analysis::recommend::{yaml_patch, Recommendation, GOMEMLIMIT_SHARE, NODE_HEAP_SHARE};
use crate::model::{Rule, Severity};
use crate::units::format_go_bytes;
use crate::units::{format_bytes, format_percent};

/// A suggested size, exact (suggestions are whole MiB): "1088 MiB", "2 GiB".
pub fn exact(b: u64) -> String {
    crate::units::format_bytes_exact(b)
}

/// How the numbers are derived, for the head of the block: "limit = peak ÷ (1 − 20% headroom),
/// rounded up …".
pub fn method(headroom: f64) -> String {
    format!(
        "limit = peak ÷ (1 − {} headroom), rounded up to a whole MiB (64 MiB steps above 1 GiB), \
         the peak being the highest working-set sample, or the largest process's resident set \
         when that is higher; request = median working set of the settled part of the busiest \
         hold × 1.15 (the VPA's margin); runtime \
         heaps from the suggested limit: GOMEMLIMIT {}, Node --max-old-space-size {}, Java \
         -XX:MaxRAMPercentage={}",
        format_percent(headroom),
        format_percent(GOMEMLIMIT_SHARE),
        format_percent(NODE_HEAP_SHARE),
        crate::analysis::recommend::JAVA_MAX_RAM_PERCENTAGE
    )
}

/// The container failed the leak rule: nothing sized from this run's peak holds, so the advice
/// is to fix the growth, with no new limit, heap or patch.
pub fn leaking(row: &ContainerRow) -> bool {
    row.results.get(&Rule::Leak) == Some(&Severity::Fail)
}

/// What to do with `row`'s limit and request, in one sentence; `None` without a
/// recommendation.
pub fn sentence(row: &ContainerRow) -> Option<String> {
    let r = row.recommendation.as_ref()?;
    if leaking(row) {
        let limit = r
            .current_limit
            .map(|l| format!("keep the limit {} for now", format_bytes(l)))
            .unwrap_or_else(|| {
                "set a memory limit so a leak ends in an OOM kill, not a node under pressure".into()
            });
        return Some(format!(
            "fix the growth first: its working set keeps growing with the load (see the leak \
             finding), so no limit sized from this run's peak of {} holds for long, and a \
             larger one only delays the OOM kill; {limit}, and size it from a run after the \
             fix, once memory levels off.",
            format_bytes(r.peak)
        ));
    }
    let b = &r.limit_basis;
    let why = match b.resident_floor {
        Some(resident) => format!(
            "its largest process's resident set {} ÷ (1 − {} headroom), above the working-set \
             peak of {}: a cluster charges the container for the runtime's own binary and \
             libraries, which this machine's page cache already held",
            format_bytes(resident),
            format_percent(r.headroom),
            format_bytes(r.peak)
        ),
        None => format!(
            "peak {} ÷ (1 − {} headroom)",
            format_bytes(r.peak),
            format_percent(r.headroom)
        ),
    };
    let new = exact(r.limit);
    let mut text = match r.current_limit {
        None => format!("set a memory limit of {new} ({why})"),
        Some(l) if l < r.limit => {
            format!("raise the limit from {} to {new} ({why})", format_bytes(l))
        }
        Some(l) if l >= r.limit.saturating_mul(2) => format!(
            "the limit {} is more than twice what this load needs; {new} would do ({why})",
            format_bytes(l)
        ),
        Some(l) if l == r.limit => format!("keep the limit {new} ({why})"),
        Some(l) => format!(
            "keep the limit {}, or lower it to {new} ({why})",
            format_bytes(l)
        ),
    };
    text.push_str(&format!(
        ", the peak being the highest of {} samples{}",
        b.samples,
        b.stage_label
            .as_ref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default()
    ));
    if row.results.get(&Rule::OomKilled) == Some(&Severity::Fail) {
        text.push_str(
            "; it was OOM-killed, so its real need lies above what was measured: treat this as a \
             lower bound and run the gate again",
        );
    }
    match (r.request, &r.request_basis) {
        (Some(req), Some(b)) => {
            let basis = format!(
                "the median of stage {}'s settled part, {} at {} users in the busiest pod, × 1.15",
                b.stage + 1,
                format_bytes(b.median),
                b.users
            );
            let req_text = exact(req);
            text.push_str(&match r.current_request {
                None => format!("; set a memory request of {req_text} ({basis})"),
                Some(now) if now == req => format!("; the request {req_text} fits ({basis})"),
                Some(now) => format!(
                    "; {} the request from {} to {req_text} ({basis})",
                    if now < req { "raise" } else { "lower" },
                    format_bytes(now)
                ),
            });
        }
        _ => text.push_str("; no hold with enough samples to base a request on"),
    }
    text.push('.');
    Some(text)
}

/// `NAME=value`, the value in double quotes when it has blanks or quotes.
fn assignment(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        format!(
            "{name}=\"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        )
    } else {
        format!("{name}={value}")
    }
}

/// The runtime heap settings that follow from the suggested limit, in one sentence: the
/// variables of the runtimes seen in the container's environment, or every choice when its
/// runtime is unknown.
pub fn runtime(r: &Recommendation) -> String {
    let limit = exact(r.limit);
    let go = format_percent(GOMEMLIMIT_SHARE);
    let node = format_percent(NODE_HEAP_SHARE);
    let share = |runtime: &str| match runtime {
        "Go" => format!("Go, {go}"),
        "Node.js" => format!("Node.js, {node}"),
        other => other.to_string(),
    };
    if r.env.is_empty() {
        return format!(
            "Runtime heap for the {limit} limit, for whichever runtime it runs: GOMEMLIMIT={} \
             (Go, {go}), NODE_OPTIONS=--max-old-space-size={} (Node.js, {node}), \
             JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage={} (Java).",
            format_go_bytes(r.gomemlimit),
            r.node_max_old_space_mib,
            r.java_max_ram_percentage
        );
    }
    let settings: Vec<String> = r
        .env
        .iter()
        .map(|e| format!("{} ({})", assignment(&e.name, &e.value), share(e.runtime)))
        .collect();
    format!(
        "Runtime heap for the {limit} limit: {}.",
        settings.join(", ")
    )
}

/// The runtime line for `row`: the heap settings for the suggested limit, or, for a container
/// that leaks, why none is given.
pub fn runtime_line(row: &ContainerRow, r: &Recommendation) -> String {
    if leaking(row) {
        "Runtime heap: no new setting until the growth is fixed (a heap sized to this run would \
         be outgrown the same way); keep it within the current limit (see the runtime-setting \
         finding)."
            .to_string()
    } else {
        runtime(r)
    }
}

/// The patch for `row`, `None` for a container that leaks (nothing to size yet).
pub fn patch_for(row: &ContainerRow, r: &Recommendation) -> Option<String> {
    (!leaking(row)).then(|| patch(r))
}

/// The ready strategic-merge patch for `r` (`recommend::yaml_patch`), the container name written
/// as a YAML scalar (quoted when it is not a plain DNS label).
pub fn patch(r: &Recommendation) -> String {
    let safe = Recommendation {
        container: yaml_scalar(&r.container),
        ..r.clone()
    };
    yaml_patch(&safe)
}

/// A Markdown code fence longer than any run of backticks in `text` (at least three).
pub fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::recommend::{EnvSetting, RequestBasis};

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn rec() -> Recommendation {
        Recommendation {
            container: "app".into(),
            peak: 870 * MIB,
            limit_basis: crate::analysis::recommend::LimitBasis {
                at: chrono::DateTime::UNIX_EPOCH,
                stage: Some(3),
                stage_label: Some("stage 4, hold at 200 users".into()),
                pod: "web-1".into(),
                samples: 480,
                resident: None,
                resident_floor: None,
            },
            headroom: 0.2,
            limit: 1088 * MIB,
            current_limit: Some(GIB),
            request: Some(575 * MIB),
            request_basis: Some(RequestBasis {
                stage: 3,
                users: 200,
                median: 500 * MIB,
            }),
            current_request: Some(512 * MIB),
            gomemlimit: 979 * MIB,
            node_max_old_space_mib: 816,
            java_max_ram_percentage: 75,
            env: Vec::new(),
        }
    }

    #[test]
    fn the_runtime_sentence_lists_every_choice_when_the_runtime_is_unknown() {
        assert_eq!(
            runtime(&rec()),
            "Runtime heap for the 1088 MiB limit, for whichever runtime it runs: \
             GOMEMLIMIT=979MiB (Go, 90%), NODE_OPTIONS=--max-old-space-size=816 (Node.js, 75%), \
             JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75 (Java)."
        );
    }

    #[test]
    fn the_runtime_sentence_names_the_variables_the_container_sets() {
        let mut r = rec();
        r.env = vec![
            EnvSetting {
                runtime: "Node.js",
                name: "NODE_OPTIONS".into(),
                value: "--enable-source-maps --max-old-space-size=816".into(),
            },
            EnvSetting {
                runtime: "Go",
                name: "GOMEMLIMIT".into(),
                value: "979MiB".into(),
            },
        ];
        assert_eq!(
            runtime(&r),
            "Runtime heap for the 1088 MiB limit: NODE_OPTIONS=\"--enable-source-maps \
             --max-old-space-size=816\" (Node.js, 75%), GOMEMLIMIT=979MiB (Go, 90%)."
        );
    }

    #[test]
    fn patches_quote_names_that_are_not_dns_labels_and_fences_outgrow_backticks() {
        let mut r = rec();
        r.container = "a\n```b".into();
        let p = patch(&r);
        assert!(p.contains("        - name: \"a\\n```b\"\n"), "{p}");
        assert!(!p.lines().any(|l| l.starts_with("```")), "{p}");
        assert_eq!(fence("x"), "```");
        assert_eq!(fence("a ```` b"), "`````");
        assert_eq!(exact(1088 * MIB), "1088 MiB");
        assert!(method(0.2).starts_with("limit = peak ÷ (1 − 20% headroom)"));
    }
}

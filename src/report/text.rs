//! Plain-text pieces the document formats (Markdown, HTML, JUnit) share, so they word things
//! alike: severity and verdict words and marks, the run's time span, the memory source line, the
//! VPA state line, the load thresholds and a stage's short label. The text is raw — it may contain
//! names from outside — and each caller escapes it for its syntax.

use std::time::Duration;

use super::{ReportView, StageRow, VpaState};
use crate::judge::{clock, format_ms, format_share};
use crate::model::{LowConfidencePolicy, Outcome, Severity, StageKind};
use crate::units::{format_duration, format_percent};

/// "fail", "inconclusive", "warn", "pass".
pub fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Fail => "fail",
        Severity::Inconclusive => "inconclusive",
        Severity::Warn => "warn",
        Severity::Pass => "pass",
    }
}

/// The mark shown next to a result.
pub fn severity_icon(s: Severity) -> &'static str {
    match s {
        Severity::Fail => "❌",
        Severity::Inconclusive => "❔",
        Severity::Warn => "⚠️",
        Severity::Pass => "✅",
    }
}

/// "PASS", "FAIL", "INCONCLUSIVE".
pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Inconclusive => "INCONCLUSIVE",
    }
}

/// ✅ pass, ❌ fail, ⚠️ inconclusive.
pub fn outcome_icon(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "✅",
        Outcome::Fail => "❌",
        Outcome::Inconclusive => "⚠️",
    }
}

/// "2025-03-14 12:00:00 → 12:06:00 UTC (6m), 4 stages, exit code 1".
pub fn run_span(view: &ReportView) -> String {
    let tenths = Duration::from_millis(view.duration().as_millis() as u64 / 100 * 100);
    format!(
        "{} → {} UTC ({}), {} stage{}, exit code {}",
        view.started_at.format("%Y-%m-%d %H:%M:%S"),
        clock(view.ended_at),
        format_duration(tenths),
        view.stages.len(),
        if view.stages.len() == 1 { "" } else { "s" },
        view.exit_code
    )
}

/// "metrics-api, every 5s, coverage 100% (73 of 73 ticks)".
pub fn memory_line(view: &ReportView) -> String {
    let m = &view.memory;
    let coverage = if m.ticks == 0 {
        "no sampling tick recorded".to_string()
    } else {
        format!(
            "coverage {} ({} of {} ticks)",
            format_share(m.coverage),
            m.ticks_with_data,
            m.ticks
        )
    };
    format!(
        "{}, every {}, {coverage}",
        m.source,
        format_duration(m.interval)
    )
}

/// The warning shown when the limit was only declared.
pub const LIMIT_NOT_ENFORCED: &str = "Limit not enforced: the memory limit was only declared, \
     not applied by a memory cgroup, so an OOM kill could not happen in this run.";

/// What the VPA's state means for the report, when it says something to mind.
pub fn vpa_line(view: &ReportView) -> Option<String> {
    let vpa = view.vpa.as_ref()?;
    let name = match &vpa.name {
        Some(n) => format!("VPA {n}"),
        None => "VPA".to_string(),
    };
    Some(match vpa.state {
        VpaState::NoRecommendation => {
            format!("{name}: no recommendation yet (needs days of history)")
        }
        VpaState::Unavailable => format!(
            "{name} unavailable: {}",
            vpa.reason.as_deref().unwrap_or("unknown reason")
        ),
        VpaState::Recommendation => {
            let mut parts = Vec::new();
            if vpa.low_confidence {
                let effect = match view.policy.vpa.map(|r| r.low_confidence) {
                    Some(LowConfidencePolicy::Judge) => "VPA findings are judged as usual",
                    Some(LowConfidencePolicy::Ignore) => "VPA rules are skipped",
                    Some(LowConfidencePolicy::Warn) | None => "VPA findings only warn",
                };
                parts.push(format!("low confidence (short history); {effect}"));
            }
            if !view.containers.iter().any(|c| c.vpa_target.is_some()) {
                parts.push("no memory target for any measured container".to_string());
            }
            if parts.is_empty() {
                return None;
            }
            format!("{name}: {}", parts.join("; "))
        }
    })
}

/// "p95 ≤ 500 ms, error rate ≤ 1%", when the scenario sets thresholds.
pub fn thresholds(view: &ReportView) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(p95) = view.policy.max_p95 {
        parts.push(format!("p95 ≤ {}", format_ms(p95.as_secs_f64() * 1000.0)));
    }
    if let Some(rate) = view.policy.max_error_rate {
        parts.push(format!("error rate ≤ {}", format_percent(rate)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// "ramp 0→100", "hold 200".
pub fn stage_short(s: &StageRow) -> String {
    match s.kind {
        StageKind::Hold => format!("hold {}", s.to_users),
        StageKind::Ramp => format!("ramp {}→{}", s.from_users, s.to_users),
    }
}

/// Latency in ms for people, "n/a" without any request.
pub fn latency(view: &ReportView, ms: f64) -> String {
    if view.load.requests == 0 {
        "n/a".to_string()
    } else {
        format_ms(ms)
    }
}

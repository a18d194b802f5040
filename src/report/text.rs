//! Plain-text pieces the formats share, so they word things alike: severity and verdict words
//! and marks, the run's time span, the memory source line, the VPA state line, the load
//! thresholds, a stage's short label, and the analysis cells (a trend's rate and when it reaches
//! the allowed peak, a capacity fit with its prediction, a baseline delta). The text is raw — it
//! may contain names from outside — and each caller escapes it for its syntax.

use crate::units::{format_change, format_minutes, format_ms, format_share};
use std::time::Duration;

use super::{BaselineView, CapacityRow, ReportView, StageRow, TrendRow, VpaState};
use crate::analysis::baseline::{Delta, Metric};

use crate::judge::clock;
use crate::model::{LowConfidencePolicy, Outcome, Severity, StageKind};
use crate::units::{format_bytes, format_duration, format_percent};

/// "fail", "inconclusive", "warn", "skipped", "pass".
pub fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Fail => "fail",
        Severity::Inconclusive => "inconclusive",
        Severity::Warn => "warn",
        Severity::Skipped => "skipped",
        Severity::Pass => "pass",
    }
}

/// The mark shown next to a result.
pub fn severity_icon(s: Severity) -> &'static str {
    match s {
        Severity::Fail => "❌",
        Severity::Inconclusive => "❔",
        Severity::Warn => "⚠️",
        Severity::Skipped => "⏭️",
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

/// One line per (pod, container) counted tick by tick: "web-1/app: 100% of 20 ticks (20 of
/// 20)", with "below the 90% required: …why" for one that is short. Empty when the source's
/// series were not counted per pod.
pub fn pod_coverage_lines(view: &ReportView) -> Vec<String> {
    view.memory
        .pods
        .iter()
        .map(|r| {
            let mut line = format!(
                "{}/{}: {} of {} ticks ({} of {})",
                r.pod,
                r.container,
                format_share(r.share),
                r.ticks,
                r.covered,
                r.ticks
            );
            if r.below {
                line.push_str(&format!(
                    ", below the {} required",
                    format_share(view.policy.min_coverage)
                ));
            }
            if let Some(gaps) = &r.gaps {
                line.push_str(&format!(": {gaps}"));
            }
            line
        })
        .collect()
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
        VpaState::ReadFailed => format!(
            "{name} could not be read, so the VPA rules are inconclusive: {}",
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

/// A stage's measured length for a table: whole seconds from a minute on ("2m", "5m3s"),
/// tenths below ("6s", "4.1s").
pub fn stage_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    let rounded = if ms >= 60_000 {
        (ms + 500) / 1000 * 1000
    } else {
        (ms + 50) / 100 * 100
    };
    format_duration(Duration::from_millis(rounded))
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

/// A trend in MiB per minute with its sign: "+2.10 MiB/min", "-0.35 MiB/min", "0.00 MiB/min".
pub fn trend_rate(bytes_per_min: f64) -> String {
    let mib = bytes_per_min / crate::analysis::MIB;
    if !mib.is_finite() {
        return "n/a".to_string();
    }
    if mib.abs() < 0.005 {
        return "0.00 MiB/min".to_string();
    }
    format!("{mib:+.2} MiB/min")
}

/// When a trend reaches the allowed peak, for a table cell: "in 37 min", "already reached",
/// "in 3.5 h (beyond the 1h horizon)", "no limit to reach", "—" (not growing).
pub fn trend_reach(row: &TrendRow, horizon: Duration) -> String {
    if !row.growing {
        return "—".to_string();
    }
    match (row.allowed, row.minutes_to_allowed) {
        (Some(_), Some(m)) if m <= 0.0 => "already reached".to_string(),
        (Some(_), Some(m)) if m * 60.0 > horizon.as_secs_f64() => format!(
            "in {} (beyond the {} horizon)",
            format_minutes(m),
            format_duration(horizon)
        ),
        (Some(_), Some(m)) => format!("in {}", format_minutes(m)),
        _ => "no limit to reach".to_string(),
    }
}

/// "stage 4 (200 users)".
pub fn trend_hold(row: &TrendRow) -> String {
    format!("stage {} ({} users)", row.stage + 1, row.users)
}

/// A capacity fit and its prediction, without the container name: "48 MiB + 0.62 MiB/user (2
/// holds at 100, 200 users); at 400 users ≈ 296 MiB ± 12 MiB, allowed 819.2 MiB".
pub fn capacity_line(row: &CapacityRow) -> String {
    use crate::analysis::capacity::{Follows, MIN_R_SQUARED};
    use crate::units::format_bytes_f;
    let mut text = match row.follows {
        Some(Follows::Requests { per_request }) => {
            return format!(
                "no per-user figure: the working set grows {} per request served (see the leak \
                 finding), so memory follows the requests, not the users, and a line through \
                 the holds would only say how long each ran",
                format_bytes_f(per_request)
            )
        }
        Some(Follows::Flat { rise, noise }) => format!(
            "no per-user figure: the holds' medians differ by {} across the loads held, within \
             twice the {} noise, so memory does not follow the users in this range",
            format_bytes_f(rise),
            format_bytes_f(noise)
        ),
        Some(Follows::NotLinear { r_squared }) => format!(
            "no per-user figure: the holds' medians do not lie on a line through the users \
             (R² {r_squared:.2}, below {MIN_R_SQUARED}): {}",
            row.fit
        ),
        Some(Follows::Users { r_squared: Some(r) }) => format!("{}, R² {r:.2}", row.fit),
        Some(Follows::Users { r_squared: None }) => {
            format!(
                "{}, a line through two load levels (a third would check it)",
                row.fit
            )
        }
        None => row.fit.clone(),
    };
    match (row.expected_users, &row.prediction) {
        (Some(users), Some(p)) => {
            text.push_str(&format!(
                "; at {users} users ≈ {} ± {}",
                format_bytes(p.bytes.round() as u64),
                format_bytes(p.band.round() as u64)
            ));
            if let Some(allowed) = row.allowed {
                let word = if p.bytes > allowed as f64 {
                    "above the"
                } else {
                    "within the"
                };
                text.push_str(&format!(", {word} {} allowed", format_bytes(allowed)));
            }
        }
        (Some(users), None) => text.push_str(&format!(
            "; {users} expected users is more than {}× the highest hold ({} users): not \
             extrapolated",
            crate::analysis::capacity::MAX_EXTRAPOLATION,
            row.max_users
        )),
        (None, _) => {}
    }
    text
}

/// One row of the delta table, plain: (label, baseline, this run, change, mark). The mark is
/// `Fail` for a peak that grew more than allowed, `Warn` for such a p95 latency.
pub fn delta_cells(
    d: &Delta,
    b: &BaselineView,
) -> (String, String, String, String, Option<Severity>) {
    let show = |v: Option<f64>| match (d.metric, v) {
        (_, None) => "—".to_string(),
        (Metric::PeakBytes | Metric::SuggestedLimitBytes, Some(v)) => {
            format_bytes(v.max(0.0) as u64)
        }
        (Metric::P95Ms, Some(v)) => format_ms(v),
    };
    let (change, mark) = match (d.metric, &b.other_driver, d.change()) {
        (Metric::P95Ms, Some(driver), _) => (format!("not compared ({driver})"), None),
        (Metric::SuggestedLimitBytes, _, Some(c)) => (format_change(c), None),
        (_, _, Some(c)) => {
            let over = c > b.max_growth;
            let mark = match d.metric {
                Metric::PeakBytes => Severity::Fail,
                Metric::P95Ms | Metric::SuggestedLimitBytes => Severity::Warn,
            };
            (format_change(c), over.then_some(mark))
        }
        (_, _, None) if d.current.is_none() && d.baseline.is_some() => {
            ("only in the baseline".to_string(), None)
        }
        (_, _, None) if d.baseline.is_none() && d.current.is_some() => ("new".to_string(), None),
        _ => ("—".to_string(), None),
    };
    (d.label(), show(d.baseline), show(d.current), change, mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_durations_are_rounded_for_tables() {
        let d = |ms| stage_duration(Duration::from_millis(ms));
        assert_eq!(d(4_001), "4s");
        assert_eq!(d(6_080), "6.1s");
        assert_eq!(d(120_400), "2m");
        assert_eq!(d(303_600), "5m4s");
    }
}

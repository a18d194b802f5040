//! The `leak` rule: one finding per container name from the trends `analysis::leak` fits
//! through the holds. A growing trend that would reach the allowed peak within
//! `policy.leak.horizon` after its hold fails; one that grows more slowly, or grows with no
//! limit to reach, warns; otherwise the container passes, and the finding says which trend was
//! largest. When several pods or holds grow, the one closest to its allowed peak is reported
//! and the others counted.

use super::{allowed_peak, clock, finding, group_containers, ContainerGroup};
use crate::analysis::format_bytes_f;
use crate::analysis::format_minutes;
use crate::analysis::leak::{hold_trends, long_holds, HoldTrend, MIN_SAMPLES};
use crate::model::{Finding, Policy, Rule, Run, Severity};
use crate::units::{format_bytes, format_duration, format_percent};

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let rule = &policy.leak;
    let long = long_holds(run, rule);
    let trends = if long.is_empty() {
        Vec::new()
    } else {
        hold_trends(run, rule)
    };
    let mut out = Vec::new();
    for group in group_containers(run) {
        let mut f = if long.is_empty() {
            finding(
                Rule::Leak,
                Severity::Skipped,
                format!(
                    "{}: not judged: no hold long enough to judge a trend (≥ {})",
                    group.name,
                    format_duration(rule.min_hold)
                ),
            )
        } else {
            let mine: Vec<&HoldTrend> = trends
                .iter()
                .filter(|t| t.container == group.name)
                .collect();
            if mine.is_empty() {
                finding(
                    Rule::Leak,
                    Severity::Skipped,
                    format!(
                        "{}: not judged: too few samples in the holds to judge a trend (needs {MIN_SAMPLES} \
                         per hold after the {} settle time; sampling every {})",
                        group.name,
                        format_percent(rule.settle),
                        format_duration(run.memory.interval)
                    ),
                )
            } else {
                judge_trends(policy, &group, &mine)
            }
        };
        f.container = Some(group.name.to_string());
        out.push(f);
    }
    out
}

/// A trend's verdict: severity, minutes to the allowed peak, the allowed peak and the limit.
struct Judged<'a> {
    trend: &'a HoldTrend,
    severity: Severity,
    minutes: Option<f64>,
    allowed: Option<(u64, u64)>,
}

fn judge_trends(policy: &Policy, group: &ContainerGroup<'_>, trends: &[&HoldTrend]) -> Finding {
    let horizon_min = policy.leak.horizon.as_secs_f64() / 60.0;
    let mut judged: Vec<Judged<'_>> = trends
        .iter()
        .map(|&trend| {
            let limit = group
                .series
                .iter()
                .find(|s| s.pod == trend.pod)
                .and_then(|s| s.limit)
                .or_else(|| group.limit());
            let allowed = limit.map(|l| (allowed_peak(l, policy.headroom), l));
            let minutes = allowed.and_then(|(a, _)| trend.minutes_to(a));
            let severity = if !trend.is_growing() {
                Severity::Pass
            } else if minutes.is_some_and(|m| m <= horizon_min) {
                Severity::Fail
            } else {
                Severity::Warn
            };
            Judged {
                trend,
                severity,
                minutes,
                allowed,
            }
        })
        .collect();
    // Worst first: severity, then soonest at the allowed peak, then steepest.
    judged.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(
                a.minutes
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.minutes.unwrap_or(f64::INFINITY)),
            )
            .then(b.trend.slope.total_cmp(&a.trend.slope))
    });
    let worst = &judged[0];
    let t = worst.trend;
    let stage = format!(
        "stage {} (hold at {} users)",
        t.window.stage.index + 1,
        t.window.stage.to_users
    );
    let rate = format!("{}/min", format_bytes_f(t.bytes_per_min()));
    if worst.severity == Severity::Pass {
        let holds = {
            let mut idx: Vec<usize> = trends.iter().map(|t| t.window.stage.index).collect();
            idx.dedup();
            idx.len()
        };
        let steepest = trends
            .iter()
            .max_by(|a, b| a.slope.total_cmp(&b.slope))
            .expect("at least one trend");
        let mut f = finding(
            Rule::Leak,
            Severity::Pass,
            format!(
                "{}: no growth through {holds} hold{} (largest trend {}{}/min in {}, within the \
                 noise)",
                group.name,
                if holds == 1 { "" } else { "s" },
                if steepest.slope > 0.0 { "+" } else { "" },
                format_bytes_f(steepest.bytes_per_min()),
                steepest.window.stage.describe()
            ),
        );
        f.observed = Some(steepest.bytes_per_min());
        return f;
    }
    let who = if group.pods().len() > 1 || t.pod != "local" {
        format!("{} (pod {})", group.name, t.pod)
    } else {
        group.name.to_string()
    };
    let head = format!("{who}: working set grows {rate} through {stage}");
    let others = judged[1..]
        .iter()
        .filter(|j| j.severity != Severity::Pass)
        .count();
    let also = match others {
        0 => String::new(),
        1 => "; 1 other pod or hold grows too".to_string(),
        n => format!("; {n} other pods or holds grow too"),
    };
    let message = match (worst.allowed, worst.minutes) {
        (Some((allowed, limit)), Some(minutes)) => {
            let reach = if minutes <= 0.0 {
                format!(
                    "and had already reached the {} allowed ({} limit, {} headroom) when the hold \
                     ended at {}",
                    format_bytes(allowed),
                    format_bytes(limit),
                    format_percent(policy.headroom),
                    clock(t.window.end)
                )
            } else {
                format!(
                    "and would reach the {} allowed ({} limit, {} headroom) {} after the hold \
                     ended at {}",
                    format_bytes(allowed),
                    format_bytes(limit),
                    format_percent(policy.headroom),
                    format_minutes(minutes),
                    clock(t.window.end)
                )
            };
            if worst.severity == Severity::Fail {
                format!(
                    "{head} {reach}{also}: take two heap profiles a few minutes apart under this \
                     load and fix what keeps growing"
                )
            } else {
                format!(
                    "{head} {reach}, beyond the {} horizon{also}: hold the load longer to see \
                     whether it levels off",
                    format_duration(policy.leak.horizon)
                )
            }
        }
        _ => format!(
            "{head}, and no memory limit bounds it{also}: set a limit, and take two heap \
             profiles a few minutes apart under this load to find what keeps growing"
        ),
    };
    let mut f = finding(Rule::Leak, worst.severity, message);
    f.pod = Some(t.pod.clone());
    f.at = Some(t.window.end);
    f.observed = Some(t.bytes_per_min());
    // The rate that would reach the allowed peak exactly at the horizon.
    f.threshold = worst.allowed.map(|(allowed, _)| {
        ((allowed as f64 - t.level_at_end) / (policy.leak.horizon.as_secs_f64() / 60.0))
            .max(0.0)
            .round()
    });
    f
}

#[cfg(test)]
#[path = "leak_tests.rs"]
mod tests;

//! The `leak` rule: one finding per container name, from two kinds of trend `analysis` fits.
//! Through every hold of at least `policy.leak.min_hold`, working set against time
//! (`analysis::leak`); through every hold however short, working set against requests served
//! (`analysis::request_leak`), which shows memory kept per request within seconds under load.
//! A growing trend that would reach the allowed peak within `policy.leak.horizon` fails; one
//! that grows more slowly, or grows with no limit to reach, warns; a clearly positive
//! per-request rise that stays within the noise warns with the hold length that would settle
//! it; otherwise the container passes, and the finding says which trend was largest and, for
//! short runs, the slowest growth the run could have shown. The worse of the two kinds is
//! reported; with neither (no hold with enough samples) the rule is skipped. When several pods
//! or holds grow, the one closest to its allowed peak is reported and the others counted.

use super::{clock, finding};
use crate::analysis::leak::{hold_trends, long_holds, HoldTrend, MIN_SAMPLES};
use crate::analysis::request_leak::{request_trends, RequestTrend};
use crate::model::{allowed_peak, group_containers, ContainerGroup};
use crate::model::{Finding, Policy, Rule, Run, Severity};
use crate::units::format_bytes_f;
use crate::units::format_minutes;
use crate::units::{format_bytes, format_duration, format_percent};

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let rule = &policy.leak;
    let long = long_holds(run, rule);
    let trends = if long.is_empty() {
        Vec::new()
    } else {
        hold_trends(run, rule)
    };
    let per_request = request_trends(run, rule);
    let mut out = Vec::new();
    for group in group_containers(run) {
        let by_time = if long.is_empty() {
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
        let mine: Vec<&RequestTrend> = per_request
            .iter()
            .filter(|t| t.container == group.name)
            .collect();
        let time_judged = by_time.severity != Severity::Skipped;
        let by_request =
            (!mine.is_empty()).then(|| judge_requests(policy, &group, &mine, time_judged));
        let mut f = match by_request {
            // Both not judged: the per-request one says what hold would judge it.
            Some(r)
                if rank(r.severity) > rank(by_time.severity)
                    || (r.severity == Severity::Skipped
                        && by_time.severity == Severity::Skipped) =>
            {
                r
            }
            _ => by_time,
        };
        f.container = Some(group.name.to_string());
        out.push(f);
    }
    out
}

/// Whether growth too slow for `t`'s holds to show (its detectable rate) would still take the
/// working set from the end of the holds to `allowed` within the horizon.
fn blind_to(t: &RequestTrend, allowed: u64, horizon_min: f64) -> bool {
    t.level_at_end + t.detectable_per_min() * horizon_min >= allowed as f64
}

/// Which of two leak findings to report: a judged result over a skipped one, the worse of two
/// judged ones, and the per-time one on a tie (it sees slower growth).
fn rank(s: Severity) -> u8 {
    match s {
        Severity::Skipped => 0,
        Severity::Pass => 1,
        Severity::Warn => 2,
        Severity::Inconclusive => 3,
        Severity::Fail => 4,
    }
}

/// "app" or "app (pod web-1)".
fn who(group: &ContainerGroup<'_>, pod: &str) -> String {
    if group.pods().len() > 1 || pod != "local" {
        format!("{} (pod {pod})", group.name)
    } else {
        group.name.to_string()
    }
}

/// The per-request trends of one container name: the worst pod decides.
fn judge_requests(
    policy: &Policy,
    group: &ContainerGroup<'_>,
    trends: &[&RequestTrend],
    time_judged: bool,
) -> Finding {
    let horizon_min = policy.leak.horizon.as_secs_f64() / 60.0;
    // (trend, severity, minutes to the allowed peak, (allowed peak, limit))
    type Judged<'t> = (&'t RequestTrend, Severity, Option<f64>, Option<(u64, u64)>);
    let judged: Vec<Judged<'_>> = trends
        .iter()
        .map(|&t| {
            let limit = group
                .series
                .iter()
                .find(|s| s.pod == t.pod)
                .and_then(|s| s.limit)
                .or_else(|| group.limit());
            let allowed = limit.map(|l| (allowed_peak(l, policy.headroom), l));
            let minutes = allowed.and_then(|(a, _)| t.minutes_to(a));
            let severity = if t.is_growing() {
                if minutes.is_some_and(|m| m <= horizon_min) {
                    Severity::Fail
                } else {
                    Severity::Warn
                }
            } else if t.rises_within_noise() {
                Severity::Warn
            } else if allowed.map_or(!time_judged, |(a, _)| blind_to(t, a, horizon_min)) {
                // Without a limit there is no allowed peak to project to: only a judged
                // per-minute trend makes a flat short run a pass.
                // Flat within what these holds can show, but growth too slow to show here
                // could still reach the allowed peak within the horizon: not judged.
                Severity::Skipped
            } else {
                Severity::Pass
            };
            (t, severity, minutes, allowed)
        })
        .collect();
    let (t, severity, minutes, allowed) = *judged
        .iter()
        .max_by(|a, b| {
            a.1.cmp(&b.1).then(
                b.2.unwrap_or(f64::INFINITY)
                    .total_cmp(&a.2.unwrap_or(f64::INFINITY)),
            )
        })
        .expect("at least one trend");
    let holds = t.holds.len();
    let through = format!(
        "through {holds} hold{} ({:.0} requests in {:.0} s)",
        if holds == 1 { "" } else { "s" },
        t.requests,
        t.seconds
    );
    let per_request = format!(
        "{} per request ({}/min at the busiest hold's {:.0} requests/s)",
        format_bytes_f(t.slope),
        format_bytes_f(t.bytes_per_sec() * 60.0),
        t.rps
    );
    let name = who(group, &t.pod);
    let others = judged
        .iter()
        .filter(|j| !std::ptr::eq(j.0, t) && j.1 != Severity::Pass)
        .count();
    let also = match others {
        0 => String::new(),
        1 => "; 1 other pod grows too".to_string(),
        n => format!("; {n} other pods grow too"),
    };
    let message = if severity == Severity::Skipped && allowed.is_none() {
        format!(
            "{}: not judged: no growth per request above the noise {through}, but holds this \
             short only show growth of {}/min or more and there is no memory limit to project \
             slower growth to: hold the load for {} or more to judge it",
            group.name,
            format_bytes_f(t.detectable_per_min()),
            format_duration(policy.leak.min_hold)
        )
    } else if severity == Severity::Skipped {
        let (a, _) = allowed.expect("checked above");
        let room = a as f64 - t.level_at_end;
        let needed = if room > 0.0 {
            let per_sec = room / policy.leak.horizon.as_secs_f64();
            format!(
                "hold the load for {} or more to judge it",
                format_minutes(
                    t.threshold() / per_sec / (1.0 - policy.leak.settle.clamp(0.0, 0.95)) / 60.0,
                )
            )
        } else {
            "the working set already stands at the allowed peak (see headroom)".to_string()
        };
        format!(
            "{}: not judged: no growth per request above the noise {through}, but holds this \
             short only show growth of {}/min or more, and slower growth could still reach the \
             {} allowed within the {} horizon: {needed}",
            group.name,
            format_bytes_f(t.detectable_per_min()),
            format_bytes(a),
            format_duration(policy.leak.horizon)
        )
    } else if severity == Severity::Pass {
        let slower = if !time_judged {
            format!(
                "; holds this short show growth of {}/min or more: hold the load ≥ {} to judge \
                 slower trends",
                format_bytes_f(t.detectable_per_min()),
                format_duration(policy.leak.min_hold)
            )
        } else {
            String::new()
        };
        format!(
            "{}: no growth per request {through} (slope {}{} per request, within the noise){slower}",
            group.name,
            if t.slope > 0.0 { "+" } else { "" },
            format_bytes_f(t.slope)
        )
    } else if !t.is_growing() {
        let needed = t
            .hold_needed(policy.leak.settle)
            .map(|s| format_minutes(s / 60.0))
            .unwrap_or_else(|| "longer".into());
        format!(
            "{name}: working set rises {per_request} {through}, {} over the run, within the noise \
             of ±{}: too little to call a leak in a run this short; hold the load for {needed} or \
             more to tell a leak from noise{also}",
            format_bytes_f(t.growth),
            format_bytes_f(t.noise)
        )
    } else {
        let head = format!("{name}: working set grows {per_request} {through}");
        match (allowed, minutes) {
            (Some((allowed, limit)), Some(minutes)) => {
                let bound = format!(
                    "the {} allowed ({} limit, {} headroom)",
                    format_bytes(allowed),
                    format_bytes(limit),
                    format_percent(policy.headroom)
                );
                let reach = if minutes <= 0.0 {
                    format!("and had already reached {bound} by {}", clock(t.end))
                } else {
                    format!(
                        "and would reach {bound} after {} more of this load",
                        format_minutes(minutes)
                    )
                };
                if severity == Severity::Fail {
                    format!(
                        "{head} {reach}{also}: memory is kept per request: take two heap \
                         profiles a few thousand requests apart and fix what each request \
                         leaves behind; a larger limit only delays the OOM kill"
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
                 profiles a few thousand requests apart to find what each request leaves behind"
            ),
        }
    };
    let mut f = finding(Rule::Leak, severity, message);
    if !matches!(severity, Severity::Pass | Severity::Skipped) {
        f.pod = Some(t.pod.clone());
        f.at = Some(t.end);
    }
    f.observed = Some(t.bytes_per_sec() * 60.0);
    f.threshold = allowed.map(|(allowed, _)| {
        ((allowed as f64 - t.level_at_end) / horizon_min)
            .max(0.0)
            .round()
    });
    f
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
    let head = format!(
        "{}: working set grows {rate} through {stage}",
        who(group, &t.pod)
    );
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

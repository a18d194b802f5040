//! Memory rules, judged per container name across all pods of the workload: `headroom` (each
//! pod's peak working set against that pod's own limit × (1 − headroom); where the kernel's
//! peak usage counter leaves the peak between two bounds, `working_set` decides), `no-limit`,
//! `oom-killed` and `restarted`. Each
//! container name gets one finding per rule (a pass when nothing happened); OOM kills and restarts
//! get one finding per event, naming the pod and the time.

use super::working_set::{decide, Bounded};
use super::{between, finding, when};
use crate::model::allowed_peak;
use crate::model::{group_containers, ContainerGroup};
use crate::model::{
    Finding, PeakSource, Policy, RestartEvent, RestartReason, Rule, Run, Severity,
    OOMS_UNSEEN_NOTE, RESTARTS_UNSEEN_NOTE,
};
use crate::units::format_byte_pair;
use crate::units::{format_bytes, format_percent};

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let groups = group_containers(run);
    let mut names: Vec<&str> = groups.iter().map(|g| g.name).collect();
    // A container that restarted but never brought a sample is still judged on its restarts.
    for r in &run.restarts {
        if !names.contains(&r.container.as_str()) {
            names.push(&r.container);
        }
    }
    let mut out = Vec::new();
    for name in names {
        let group = groups.iter().find(|g| g.name == name);
        if let Some(g) = group {
            out.push(no_limit(policy, run, g));
            out.extend(headroom(policy, run, g));
        }
        out.extend(restarts(policy, run, name, group));
    }
    out
}

/// "app" or "app (pod web-7d9f-x2k4p)".
fn subject(container: &str, pod: Option<&str>) -> String {
    match pod {
        Some(pod) => format!("{container} (pod {pod})"),
        None => container.to_string(),
    }
}

fn list(items: &[&str]) -> String {
    items.join(", ")
}

fn no_limit(policy: &Policy, run: &Run, g: &ContainerGroup<'_>) -> Finding {
    let unlimited = g.unlimited_pods();
    let pods = g.pods();
    let severity = if policy.require_limit {
        Severity::Fail
    } else {
        Severity::Warn
    };
    let mut f = if unlimited.is_empty() {
        let limits = match g.limit_spread() {
            Some((lo, hi)) => format!(
                "a memory limit is set on every pod ({} to {})",
                format_bytes(lo),
                format_bytes(hi)
            ),
            None => format!(
                "memory limit {} is set",
                format_bytes(g.limit().unwrap_or(0))
            ),
        };
        let mut f = finding(
            Rule::NoLimit,
            Severity::Pass,
            format!("{}: {limits}", g.name),
        );
        f.threshold = g.limit().map(|l| l as f64);
        f
    } else if unlimited.len() == pods.len() {
        let peak = match g.peak() {
            Some(p) => format!(
                "; it peaked at {} at {}",
                format_bytes(p.bytes),
                when(run, p.at)
            ),
            None => String::new(),
        };
        let mut f = finding(
            Rule::NoLimit,
            severity,
            format!(
                "{}: no memory limit is set{peak}, so nothing bounds its memory and its headroom \
                 cannot be judged: set resources.limits.memory",
                g.name
            ),
        );
        if let Some(p) = g.peak() {
            f.observed = Some(p.bytes as f64);
            f.at = Some(p.at);
            f.pod = Some(p.pod.to_string());
        }
        f
    } else {
        let mut f = finding(
            Rule::NoLimit,
            severity,
            format!(
                "{}: pod{} {} {} no memory limit while the other pods have {}: set \
                 resources.limits.memory on every pod",
                g.name,
                if unlimited.len() == 1 { "" } else { "s" },
                list(&unlimited),
                if unlimited.len() == 1 { "has" } else { "have" },
                format_bytes(g.limit().unwrap_or(0)),
            ),
        );
        f.pod = Some(unlimited[0].to_string());
        f
    };
    f.container = Some(g.name.to_string());
    f
}

/// One pod's copy of a container, judged against its own limit.
struct Judged<'a> {
    pod: &'a str,
    limit: u64,
    allowed: u64,
    bytes: u64,
    at: crate::model::Timestamp,
    source: PeakSource,
    /// The kernel's peak usage when it is above the sampled peak: an upper bound.
    upper: Option<(u64, crate::model::Timestamp)>,
    /// The reading before the one that first showed `upper`.
    upper_after: Option<crate::model::Timestamp>,
    max_inactive_file: Option<u64>,
}

impl Judged<'_> {
    /// How close to its own allowed peak (1.0 = at it).
    fn ratio(&self) -> f64 {
        self.bytes as f64 / self.allowed.max(1) as f64
    }

    fn bounded(&self) -> Bounded {
        decide(self.bytes, self.upper.map(|u| u.0), self.allowed)
    }

    fn over(&self) -> bool {
        self.bounded() == Bounded::Above
    }

    /// Above first, then undecided, then within.
    fn rank(&self) -> u8 {
        match self.bounded() {
            Bounded::Above => 2,
            Bounded::Undecided => 1,
            Bounded::Within => 0,
        }
    }
}

/// `headroom` for one container name: every pod's peak against that pod's own limit (during a
/// rollout pods can carry different limits); the finding speaks for the pod closest to (or
/// furthest above) its allowed peak, naming it and its limit, and lists other pods above theirs.
fn headroom(policy: &Policy, run: &Run, g: &ContainerGroup<'_>) -> Option<Finding> {
    // Without any limit there is nothing to keep headroom to; `no-limit` reports it.
    let limit = g.limit()?;
    let spread = g.limit_spread();
    let spread_text = match spread {
        Some((lo, hi)) => format!(
            "; pod limits differ ({} to {}), each pod judged against its own",
            format_bytes(lo),
            format_bytes(hi)
        ),
        None => String::new(),
    };
    let judged: Vec<Judged<'_>> = g
        .series
        .iter()
        .filter_map(|s| {
            let limit = s.limit?;
            let (bytes, at, source) = s.peak()?;
            Some(Judged {
                pod: &s.pod,
                limit,
                allowed: allowed_peak(limit, policy.headroom),
                bytes,
                at,
                source,
                upper: s.peak_upper(),
                upper_after: s.kernel_peak_after,
                max_inactive_file: s.max_inactive_file,
            })
        })
        .collect();
    // The pod above its own allowed peak (else undecided) furthest above (or closest to) it;
    // among equals the higher and earlier peak, as the group's peak is chosen.
    let worst = judged.iter().max_by(|a, b| {
        a.rank()
            .cmp(&b.rank())
            .then(a.ratio().total_cmp(&b.ratio()))
            .then(a.bytes.cmp(&b.bytes))
            .then(b.at.cmp(&a.at))
    });
    let mut f = match worst {
        None => {
            let allowed = allowed_peak(limit, policy.headroom);
            let mut f = finding(
                Rule::Headroom,
                Severity::Inconclusive,
                format!(
                    "{}: no memory data, so its peak cannot be judged against the {} allowed \
                     ({} limit, {} headroom){spread_text}",
                    g.name,
                    format_bytes(allowed),
                    format_bytes(limit),
                    format_percent(policy.headroom)
                ),
            );
            f.threshold = Some(allowed as f64);
            f
        }
        Some(w) => {
            let many = g.pods().len() > 1;
            let who = match (many, spread.is_some()) {
                (true, true) => format!(
                    "{} (pod {}, limit {})",
                    g.name,
                    w.pod,
                    format_bytes(w.limit)
                ),
                _ => subject(g.name, many.then_some(w.pod)),
            };
            let source = match w.source {
                PeakSource::KernelPeak => " (kernel peak counter, between samples)",
                PeakSource::Sample => "",
            };
            let (peak_text, allowed_text) = format_byte_pair(w.bytes, w.allowed);
            let head = format!("{who}: peak {peak_text}{source} at {}", when(run, w.at));
            let own = if spread.is_some() { "its own " } else { "the " };
            let others: Vec<String> = judged
                .iter()
                .filter(|j| j.over() && j.pod != w.pod)
                .map(|j| {
                    format!(
                        "{} ({} of the {} its {} limit allows)",
                        j.pod,
                        format_bytes(j.bytes),
                        format_bytes(j.allowed),
                        format_bytes(j.limit)
                    )
                })
                .collect();
            let others_text = if others.is_empty() {
                String::new()
            } else {
                format!("; also above their own allowed peak: {}", others.join(", "))
            };
            let mut f = match w.bounded() {
                Bounded::Above => finding(
                    Rule::Headroom,
                    Severity::Fail,
                    format!(
                        "{head} is above the {allowed_text} allowed by {own}{} limit with {} \
                         headroom{spread_text}{others_text}",
                        format_bytes(w.limit),
                        format_percent(policy.headroom)
                    ),
                ),
                Bounded::Undecided => {
                    let (upper, upper_at) = w.upper.unwrap_or((w.bytes, w.at));
                    let upper_after = w.upper_after;
                    let cache = match w.max_inactive_file {
                        Some(c) if c > 0 => format!(
                            "; samples saw up to {} of inactive page cache",
                            format_bytes(c)
                        ),
                        _ => String::new(),
                    };
                    finding(
                        Rule::Headroom,
                        Severity::Inconclusive,
                        format!(
                            "{head} is within the {allowed_text} allowed ({} limit, {} \
                             headroom), but the kernel's peak usage, page cache included, was \
                             {} ({}): the working-set peak lies between {} and \
                             {}, and the kernel's numbers cannot tell whether the memory above \
                             the samples was page cache or the service's own{cache}. Sample \
                             faster (memory.interval) to catch a spike of its own, or keep the \
                             service from filling its cgroup with page cache{spread_text}\
                             {others_text}",
                            format_bytes(w.limit),
                            format_percent(policy.headroom),
                            format_bytes(upper),
                            between(run, upper_after, upper_at),
                            format_bytes(w.bytes),
                            format_bytes(upper),
                        ),
                    )
                }
                Bounded::Within => {
                    let closest = if spread.is_some() {
                        ", the closest of its pods to its limit"
                    } else {
                        ""
                    };
                    let kernel = match w.upper {
                        Some((u, _)) => format!(
                            "; the kernel's peak usage, page cache included, was {} and is \
                             within it too",
                            format_bytes(u)
                        ),
                        None => String::new(),
                    };
                    finding(
                        Rule::Headroom,
                        Severity::Pass,
                        format!(
                            "{head} is within the {allowed_text} allowed ({} limit, {} \
                             headroom){closest}{kernel}{spread_text}",
                            format_bytes(w.limit),
                            format_percent(policy.headroom)
                        ),
                    )
                }
            };
            f.observed = Some(w.bytes as f64);
            f.at = Some(w.at);
            f.pod = Some(w.pod.to_string());
            f.threshold = Some(w.allowed as f64);
            f
        }
    };
    f.container = Some(g.name.to_string());
    Some(f)
}

/// `oom-killed` and `restarted` for one container name: a finding per event, or a pass each.
fn restarts(
    policy: &Policy,
    run: &Run,
    name: &str,
    group: Option<&ContainerGroup<'_>>,
) -> Vec<Finding> {
    let events: Vec<&RestartEvent> = run
        .restarts
        .iter()
        .filter(|r| r.container == name)
        .collect();
    let ooms: Vec<&RestartEvent> = events
        .iter()
        .copied()
        .filter(|r| r.reason == RestartReason::OomKilled)
        .collect();
    let others: Vec<&RestartEvent> = events
        .iter()
        .copied()
        .filter(|r| r.reason != RestartReason::OomKilled)
        .collect();
    let mut out = Vec::new();

    if ooms.is_empty() {
        out.push(match run.note_starting(OOMS_UNSEEN_NOTE) {
            Some(why) => unseen(Rule::OomKilled, Severity::Inconclusive, name, why),
            None => pass(Rule::OomKilled, name, "no OOM kill during the run"),
        });
    }
    for r in &ooms {
        // The limit of the killed pod's copy, else the container name's smallest.
        let limit = group.and_then(|g| {
            g.series
                .iter()
                .find(|s| s.pod == r.pod)
                .and_then(|s| s.limit)
                .or_else(|| g.limit())
        });
        // What was measured in the killed pod's copy: the kernel kills at the limit, so a
        // peak below it means the spike came between two samples.
        let measured = group.and_then(|g| {
            g.series
                .iter()
                .filter(|s| s.pod == r.pod)
                .filter_map(|s| s.peak())
                .max_by_key(|p| p.0)
        });
        let reached = match (limit, measured) {
            (Some(l), Some((peak, at, _))) if peak < l => format!(
                "the highest working set measured in this pod was {} at {} ({} of its {} \
                 limit): the rise to the limit came between two samples",
                format_bytes(peak),
                super::clock(at),
                crate::units::format_share(peak as f64 / l.max(1) as f64),
                format_bytes(l)
            ),
            (Some(l), Some((peak, at, _))) => format!(
                "the highest working set measured in this pod was {} at {}, at its {} limit",
                format_bytes(peak),
                super::clock(at),
                format_bytes(l)
            ),
            (Some(l), None) => format!(
                "no working set was measured in this pod before the kill (its limit is {})",
                format_bytes(l)
            ),
            (None, _) if group.is_some() => {
                "it has no memory limit, so the node itself ran out of memory".to_string()
            }
            (None, _) => "it was not measured, so its limit is unknown".to_string(),
        };
        let mut f = event_finding(
            Rule::OomKilled,
            Severity::Fail,
            r,
            format!(
                "{}: OOM-killed by the kernel at {}{}; {reached}",
                subject(name, Some(&r.pod)),
                when(run, r.at),
                exit_code(r)
            ),
        );
        f.threshold = limit.map(|l| l as f64);
        f.observed = measured.map(|m| m.0 as f64);
        out.push(f);
    }

    if others.is_empty() {
        let msg = if ooms.is_empty() {
            "no restart during the run"
        } else {
            "no restart besides the OOM kill"
        };
        // OOM kills are this gate's core promise and stay inconclusive when unseen (above);
        // restarts for other reasons, unseen, are not judged: skipped, saying why (never a pass).
        out.push(match run.note_starting(RESTARTS_UNSEEN_NOTE) {
            Some(why) => unseen(Rule::Restarted, Severity::Skipped, name, why),
            None => pass(Rule::Restarted, name, msg),
        });
    }
    let severity = if policy.fail_on_restart {
        Severity::Fail
    } else {
        Severity::Warn
    };
    for r in &others {
        let reason = match &r.reason {
            RestartReason::Other(reason) if !reason.trim().is_empty() => reason.trim(),
            _ => "reason unknown",
        };
        out.push(event_finding(
            Rule::Restarted,
            severity,
            r,
            format!(
                "{}: restarted at {} with reason {reason}{}; a restart under load drops requests \
             and resets its memory",
                subject(name, Some(&r.pod)),
                when(run, r.at),
                exit_code(r)
            ),
        ));
    }
    out
}

/// A restart rule that could not be evaluated: the run did not see that kind of event.
fn unseen(rule: Rule, severity: Severity, container: &str, why: &str) -> Finding {
    let mut f = finding(rule, severity, format!("{container}: {why}"));
    f.container = Some(container.to_string());
    f
}

fn exit_code(r: &RestartEvent) -> String {
    match r.exit_code {
        Some(code) => format!(", exit code {code}"),
        None => String::new(),
    }
}

fn pass(rule: Rule, container: &str, what: &str) -> Finding {
    let mut f = finding(rule, Severity::Pass, format!("{container}: {what}"));
    f.container = Some(container.to_string());
    f
}

fn event_finding(rule: Rule, severity: Severity, r: &RestartEvent, message: String) -> Finding {
    let mut f = finding(rule, severity, message);
    f.container = Some(r.container.clone());
    f.pod = Some(r.pod.clone());
    f.at = Some(r.at);
    f.observed = r.exit_code.map(f64::from);
    f
}

//! The judge: turns a measured `Run` into a `Verdict` by applying the gate `Policy`. It is pure —
//! no I/O, no clock — so every rule is tested with plain data. Each rule family lives in its own
//! file: `memory` (headroom, no-limit, oom-killed, restarted), `coverage` (is there enough memory
//! data to trust anything), `load` (latency, error-rate), `vpa` (vpa-peak, vpa-request,
//! vpa-low-confidence) and `pods` (pod-deleted: a pod went away while the load ran). Findings
//! are produced for passes too,
//! one per rule per container name plus the run-wide ones, so reports can show a result per rule.
//! The reporters reuse `group_containers` and `allowed_peak` so they show the numbers judged here.

mod capacity;
mod coverage;
#[cfg(test)]
pub(crate) mod fixtures;
mod leak;
mod load;
mod memory;
#[cfg(test)]
mod memory_tests;
mod pod_coverage;
mod pods;
mod regression;
mod runtime;
mod vpa;
mod working_set;

pub use pod_coverage::why as coverage_gaps;

use crate::model::{Finding, Outcome, Policy, Rule, Run, Severity, Timestamp, Verdict};

/// Judges `run` against `policy`. The outcome is `Fail` when any finding fails, else
/// `Inconclusive` when any is inconclusive, else `Pass` (warnings never fail the gate).
pub fn evaluate(policy: &Policy, run: &Run) -> Verdict {
    let mut findings = coverage::check(policy, run);
    findings.extend(memory::check(policy, run));
    findings.extend(load::check(policy, run));
    findings.extend(vpa::check(policy, run));
    let leaks = leak::check(policy, run);
    let leaking: Vec<String> = leaks
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .filter_map(|f| f.container.clone())
        .collect();
    findings.extend(leaks);
    findings.extend(capacity::check(policy, run));
    findings.extend(runtime::check(policy, run, &leaking));
    findings.extend(regression::check(policy, run));
    findings.extend(pods::check(run));
    Verdict {
        outcome: outcome_of(&findings),
        findings,
    }
}

/// The outcome a set of findings adds up to.
pub fn outcome_of(findings: &[Finding]) -> Outcome {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Fail) => Outcome::Fail,
        Some(Severity::Inconclusive) => Outcome::Inconclusive,
        _ => Outcome::Pass,
    }
}

/// Wall-clock time of day, `HH:MM:SS` (UTC).
pub fn clock(at: Timestamp) -> String {
    at.format("%H:%M:%S").to_string()
}

/// Where `at` falls in the run, for messages: "stage 4, hold at 200 users", or a note when it
/// lies outside every stage; `None` when the run has no stages.
pub fn stage_label(run: &Run, at: Timestamp) -> Option<String> {
    if let Some(w) = run.stage_at(at) {
        return Some(w.stage.describe());
    }
    let first = run.stages.first()?;
    Some(if at < first.start {
        "before the load started".to_string()
    } else {
        "after the load ended".to_string()
    })
}

/// When a kernel counter's peak happened, as closely as its readings tell: "between 12:04:30
/// and 12:04:31 (stage 4, hold at 200 users)", each end labelled when they fall in different
/// stages; [`when`] alone without the earlier reading.
pub(crate) fn between(run: &Run, after: Option<Timestamp>, at: Timestamp) -> String {
    let Some(after) = after.filter(|a| *a < at) else {
        return format!("first seen at {}", when(run, at));
    };
    let (a, b) = (stage_label(run, after), stage_label(run, at));
    if a == b {
        match b {
            Some(label) => format!("between {} and {} ({label})", clock(after), clock(at)),
            None => format!("between {} and {}", clock(after), clock(at)),
        }
    } else {
        format!("between {} and {}", when(run, after), when(run, at))
    }
}

/// "12:04:31 (stage 4, hold at 200 users)".
pub(crate) fn when(run: &Run, at: Timestamp) -> String {
    match stage_label(run, at) {
        Some(label) => format!("{} ({label})", clock(at)),
        None => clock(at),
    }
}

/// A finding with only the always-present fields set.
pub(crate) fn finding(rule: Rule, severity: Severity, message: String) -> Finding {
    Finding {
        rule,
        severity,
        container: None,
        pod: None,
        message,
        observed: None,
        threshold: None,
        at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::model::{allowed_peak, group_containers};

    #[test]
    fn allowed_peak_floors_to_bytes() {
        assert_eq!(allowed_peak(GIB, 0.2), 858_993_459);
        assert_eq!(allowed_peak(1000, 0.2), 800);
        assert_eq!(allowed_peak(256 * MIB, 0.0), 256 * MIB);
        assert_eq!(allowed_peak(256 * MIB, 1.0), 0);
        assert_eq!(allowed_peak(999, 0.25), 749);
    }

    #[test]
    fn outcome_takes_the_worst_and_warnings_pass() {
        let f = |s| finding(Rule::Headroom, s, String::new());
        assert_eq!(outcome_of(&[]), Outcome::Pass);
        assert_eq!(
            outcome_of(&[f(Severity::Pass), f(Severity::Warn)]),
            Outcome::Pass
        );
        assert_eq!(
            outcome_of(&[f(Severity::Inconclusive), f(Severity::Warn)]),
            Outcome::Inconclusive
        );
        assert_eq!(
            outcome_of(&[f(Severity::Inconclusive), f(Severity::Fail)]),
            Outcome::Fail
        );
    }

    #[test]
    fn a_healthy_run_passes_with_a_finding_per_rule_per_container() {
        let verdict = evaluate(&Policy::default(), &healthy_run());
        assert_eq!(verdict.outcome, Outcome::Pass, "{:#?}", verdict.findings);
        assert_eq!(verdict.exit_code(), 0);
        for rule in [
            Rule::Headroom,
            Rule::NoLimit,
            Rule::OomKilled,
            Rule::Restarted,
        ] {
            for name in ["app", "sidecar"] {
                let n = verdict
                    .findings
                    .iter()
                    .filter(|f| f.rule == rule && f.container.as_deref() == Some(name))
                    .count();
                assert_eq!(n, 1, "{rule} for {name}");
            }
        }
        for rule in [Rule::Coverage, Rule::ErrorRate] {
            assert!(verdict
                .findings
                .iter()
                .any(|f| f.rule == rule && f.container.is_none()));
        }
    }

    #[test]
    fn groups_by_name_and_finds_the_pod_that_peaked() {
        let run = healthy_run();
        let groups = group_containers(&run);
        assert_eq!(groups.len(), 2);
        let app = &groups[0];
        assert_eq!(app.name, "app");
        assert_eq!(app.pods(), vec!["web-7d9f-a1b2c", "web-7d9f-x2k4p"]);
        let peak = app.peak().unwrap();
        assert_eq!(peak.pod, "web-7d9f-x2k4p");
        assert_eq!(peak.bytes, 610 * MIB);
        assert_eq!(app.limit(), Some(GIB));
        assert_eq!(app.limit_spread(), None);
    }

    #[test]
    fn labels_times_outside_the_stages() {
        let run = healthy_run();
        assert_eq!(
            stage_label(&run, t(11, 59, 0)).as_deref(),
            Some("before the load started")
        );
        assert_eq!(
            stage_label(&run, t(12, 10, 0)).as_deref(),
            Some("after the load ended")
        );
        assert_eq!(
            when(&run, t(12, 4, 31)),
            "12:04:31 (stage 4, hold at 200 users)"
        );
    }
}

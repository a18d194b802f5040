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

use crate::model::{
    ContainerSeries, Finding, Outcome, PeakSource, Policy, Rule, Run, Severity, Timestamp, Verdict,
};
use crate::units::{format_bytes, format_percent};

/// Judges `run` against `policy`. The outcome is `Fail` when any finding fails, else
/// `Inconclusive` when any is inconclusive, else `Pass` (warnings never fail the gate).
pub fn evaluate(policy: &Policy, run: &Run) -> Verdict {
    let mut findings = coverage::check(policy, run);
    findings.extend(memory::check(policy, run));
    findings.extend(load::check(policy, run));
    findings.extend(vpa::check(policy, run));
    findings.extend(leak::check(policy, run));
    findings.extend(capacity::check(policy, run));
    findings.extend(runtime::check(policy, run));
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

/// The highest working set a container may reach: `limit × (1 − headroom)`, floored to bytes.
pub fn allowed_peak(limit: u64, headroom: f64) -> u64 {
    let exact = limit as f64 * (1.0 - headroom.clamp(0.0, 1.0));
    // Absorb the rounding error of the multiplication before flooring (1 GiB × 0.8 stays
    // 858993459; 1000 × 0.8 stays 800, not 799).
    let nearest = exact.round();
    let value = if (exact - nearest).abs() <= nearest.max(1.0) * 1e-12 {
        nearest
    } else {
        exact.floor()
    };
    (value as u64).min(limit)
}

/// Every series of one container name, across the pods of the workload.
#[derive(Debug, Clone)]
pub struct ContainerGroup<'a> {
    pub name: &'a str,
    pub series: Vec<&'a ContainerSeries>,
}

/// The highest working set of a container name across its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPeak<'a> {
    pub bytes: u64,
    pub at: Timestamp,
    pub source: PeakSource,
    pub pod: &'a str,
}

impl<'a> ContainerGroup<'a> {
    /// Distinct pod names, in the order the run lists them.
    pub fn pods(&self) -> Vec<&'a str> {
        let mut pods: Vec<&str> = Vec::new();
        for s in &self.series {
            if !pods.contains(&s.pod.as_str()) {
                pods.push(&s.pod);
            }
        }
        pods
    }

    /// The smallest memory limit among the pods that have one.
    pub fn limit(&self) -> Option<u64> {
        self.series.iter().filter_map(|s| s.limit).min()
    }

    /// The smallest and largest limit, when the pods disagree (a rollout in progress).
    pub fn limit_spread(&self) -> Option<(u64, u64)> {
        let min = self.series.iter().filter_map(|s| s.limit).min()?;
        let max = self.series.iter().filter_map(|s| s.limit).max()?;
        (min != max).then_some((min, max))
    }

    /// Pods whose copy of the container has no memory limit.
    pub fn unlimited_pods(&self) -> Vec<&'a str> {
        let mut pods: Vec<&str> = Vec::new();
        for s in self.series.iter().filter(|s| s.limit.is_none()) {
            if !pods.contains(&s.pod.as_str()) {
                pods.push(&s.pod);
            }
        }
        pods
    }

    /// The smallest memory request among the pods that have one.
    pub fn request(&self) -> Option<u64> {
        self.series.iter().filter_map(|s| s.request).min()
    }

    /// Samples across all pods.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// The highest peak across the pods (the earliest one on a tie).
    pub fn peak(&self) -> Option<GroupPeak<'a>> {
        self.series
            .iter()
            .filter_map(|s| {
                s.peak().map(|(bytes, at, source)| GroupPeak {
                    bytes,
                    at,
                    source,
                    pod: s.pod.as_str(),
                })
            })
            .max_by_key(|p| (p.bytes, std::cmp::Reverse(p.at)))
    }
}

/// The run's series grouped by container name, in the order names first appear.
pub fn group_containers(run: &Run) -> Vec<ContainerGroup<'_>> {
    let mut groups: Vec<ContainerGroup<'_>> = Vec::new();
    for s in &run.containers {
        match groups.iter_mut().find(|g| g.name == s.container) {
            Some(g) => g.series.push(s),
            None => groups.push(ContainerGroup {
                name: &s.container,
                series: vec![s],
            }),
        }
    }
    groups
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

/// A duration in milliseconds for humans: "3.4 ms", "742 ms", "1.25 s".
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "n/a".to_string()
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// A measured share for people: one decimal ("61.8%"), two significant digits below 1 %
/// ("0.025%"); never "0%" or "100%" unless it is exactly that.
pub fn format_share(share: f64) -> String {
    if !share.is_finite() {
        return "n/a".to_string();
    }
    let percent = share * 100.0;
    if share <= 0.0 || share == 1.0 {
        return format_percent(share);
    }
    if percent < 0.0001 {
        return "<0.0001%".to_string();
    }
    let decimals = if percent >= 1.0 {
        1
    } else {
        (1 - percent.log10().floor() as i32).clamp(1, 4)
    };
    let scale = 10f64.powi(decimals);
    let rounded = (percent * scale).round() / scale;
    if share < 1.0 && rounded >= 100.0 {
        return format!("{:.*}%", decimals as usize, 100.0 - 1.0 / scale);
    }
    format_percent(rounded / 100.0)
}

/// An observed share and the threshold it is compared with; the observed one is shown with
/// more digits when rounding would make the two look equal.
pub(crate) fn format_shares(observed: f64, threshold: f64) -> (String, String) {
    let (o, t) = (format_share(observed), format_percent(threshold));
    if o == t && observed != threshold {
        (format_percent(observed), t)
    } else {
        (o, t)
    }
}

/// Two byte counts that are compared; both get their exact byte count when rounding would
/// make them look equal ("819.2 MiB (858993460 bytes)").
pub(crate) fn format_byte_pair(a: u64, b: u64) -> (String, String) {
    let (fa, fb) = (format_bytes(a), format_bytes(b));
    if fa == fb && a != b {
        (format!("{fa} ({a} bytes)"), format!("{fb} ({b} bytes)"))
    } else {
        (fa, fb)
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

    #[test]
    fn formats_measured_shares() {
        assert_eq!(format_share(42.0 / 68.0), "61.8%");
        assert_eq!(format_share(0.9), "90%");
        assert_eq!(format_share(1.0), "100%");
        assert_eq!(format_share(0.0), "0%");
        assert_eq!(format_share(3.0 / 12_000.0), "0.025%");
        assert_eq!(format_share(0.9999), "99.9%");
        assert_eq!(format_share(1e-9), "<0.0001%");
        assert_eq!(format_shares(0.89999, 0.9).0, "89.999%");
        assert_eq!(format_shares(0.5, 0.9).0, "50%");
    }

    #[test]
    fn byte_pairs_that_look_equal_get_exact_counts() {
        assert_eq!(
            format_byte_pair(858_993_460, 858_993_459),
            (
                "819.2 MiB (858993460 bytes)".to_string(),
                "819.2 MiB (858993459 bytes)".to_string()
            )
        );
        assert_eq!(
            format_byte_pair(610 * MIB, 858_993_459),
            ("610 MiB".to_string(), "819.2 MiB".to_string())
        );
    }

    #[test]
    fn formats_milliseconds() {
        assert_eq!(format_ms(3.42), "3.4 ms");
        assert_eq!(format_ms(742.4), "742 ms");
        assert_eq!(format_ms(1250.0), "1.25 s");
        assert_eq!(format_ms(12_500.0), "12.5 s");
    }
}

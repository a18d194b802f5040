//! VPA rules, judged only when the policy asks for them (`policy.vpa`): `vpa-peak` (the measured
//! peak against the VPA's memory target: fail above the tolerance, warn below it), `vpa-request`
//! (the container's memory request against the target, either way) and `vpa-low-confidence`
//! (a VPA still short of history; its rules then only warn unless the policy says otherwise).
//! A VPA that is missing or has no recommendation yet is a warning, never a failure; one whose
//! list failed (5xx, 429, a dropped connection, a timeout) or could not be read makes the VPA
//! rules inconclusive (the policy asked for a comparison that could not be made); a
//! recommendation that names none of the measured containers is a warning listing both sets.

use super::{finding, when};
use crate::model::group_containers;
use crate::model::{
    Finding, LowConfidencePolicy, Policy, Rule, Run, Severity, VpaContainer, VpaStatus,
};
use crate::units::format_byte_pair;
use crate::units::{format_bytes, format_percent};

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let Some(rule) = policy.vpa else {
        return vec![finding(
            Rule::VpaPeak,
            Severity::Skipped,
            "not judged: no VPA configured (add policy.vpa to compare the peak with the \
             Vertical Pod Autoscaler's recommendation)"
                .to_string(),
        )];
    };
    let (name, low_confidence, recs) = match &run.vpa {
        None => {
            return vec![finding(
                Rule::VpaPeak,
                Severity::Skipped,
                "not judged: policy.vpa is set but this run read no VPA (a local workload has \
                 none)"
                    .to_string(),
            )]
        }
        Some(VpaStatus::Unavailable { reason }) => {
            return vec![finding(
                Rule::VpaPeak,
                Severity::Warn,
                format!("VPA comparison skipped: {reason}"),
            )]
        }
        Some(VpaStatus::ReadFailed { reason }) => {
            return vec![finding(
                Rule::VpaPeak,
                Severity::Inconclusive,
                format!(
                    "the VPA rules could not be evaluated: {reason}; policy.vpa asks for this \
                     comparison, so the verdict cannot pass without it (run again, or remove \
                     policy.vpa)"
                ),
            )]
        }
        Some(VpaStatus::NoRecommendation { name }) => {
            return vec![finding(
                Rule::VpaPeak,
                Severity::Warn,
                format!(
                    "VPA {name} has no recommendation yet: the recommender needs days of usage history \
                     (it weighs 8 days with a 24 h half-life); the VPA rules are skipped"
                ),
            )]
        }
        Some(VpaStatus::Recommendation { name, low_confidence, containers }) => {
            (name.as_str(), *low_confidence, containers)
        }
    };
    let mut out = Vec::new();
    // What a finding that would fail becomes.
    let fail = if low_confidence {
        match rule.low_confidence {
            LowConfidencePolicy::Judge => Severity::Fail,
            LowConfidencePolicy::Warn => Severity::Warn,
            LowConfidencePolicy::Ignore => {
                out.push(finding(
                    Rule::VpaLowConfidence,
                    Severity::Warn,
                    format!("VPA {name} reports LowConfidence (short history); the VPA rules are skipped as policy.vpa.low_confidence says"),
                ));
                return out;
            }
        }
    } else {
        Severity::Fail
    };
    out.push(if low_confidence {
        finding(
            Rule::VpaLowConfidence,
            Severity::Warn,
            format!(
                "VPA {name} reports LowConfidence: its recommendation rests on little history and its bounds are widened; \
                 VPA findings only warn until it is confident"
            ),
        )
    } else {
        finding(
            Rule::VpaLowConfidence,
            Severity::Pass,
            format!("VPA {name} is confident in its recommendation"),
        )
    });
    let tol = rule.tolerance;
    let groups = group_containers(run);
    if !groups.is_empty()
        && !groups
            .iter()
            .any(|g| recs.iter().any(|r| r.container == g.name))
    {
        let list = |names: Vec<&str>| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        out.push(finding(
            Rule::VpaPeak,
            Severity::Warn,
            format!(
                "VPA {name} recommends for containers {} but the measured containers are {}: \
                 no container could be compared (is the VPA for another workload, or were the \
                 containers renamed?)",
                list(recs.iter().map(|r| r.container.as_str()).collect()),
                list(groups.iter().map(|g| g.name).collect())
            ),
        ));
    }
    let compared_any = groups
        .iter()
        .any(|g| recs.iter().any(|r| r.container == g.name));
    for g in groups {
        // A container the VPA says nothing about is named, never silently left out (when none
        // could be compared, the warning above names them all).
        let target = recs
            .iter()
            .find(|r| r.container == g.name)
            .map(|r| (r, r.target));
        let (rec, target) = match target {
            Some((rec, Some(t))) => (rec, t),
            Some((_, None)) => {
                let mut f = finding(
                    Rule::VpaPeak,
                    Severity::Warn,
                    format!(
                        "{}: VPA {name} gives it no memory target: not compared",
                        g.name
                    ),
                );
                f.container = Some(g.name.to_string());
                out.push(f);
                continue;
            }
            None if compared_any => {
                let mut f = finding(
                    Rule::VpaPeak,
                    Severity::Warn,
                    format!(
                        "{}: VPA {name} has no recommendation for it (its containerPolicies may \
                         turn it off): not compared",
                        g.name
                    ),
                );
                f.container = Some(g.name.to_string());
                out.push(f);
                continue;
            }
            None => continue,
        };
        if let Some(peak) = g.peak() {
            out.push(vpa_peak(
                run, g.name, peak.pod, peak.bytes, peak.at, rec, target, tol, fail,
            ));
        }
        if let Some(request) = g.request() {
            out.push(vpa_request(g.name, request, target, tol, fail));
        }
    }
    out
}

fn share(observed: u64, target: u64) -> f64 {
    observed as f64 / target.max(1) as f64 - 1.0
}

#[allow(clippy::too_many_arguments)]
fn vpa_peak(
    run: &Run,
    container: &str,
    pod: &str,
    peak: u64,
    at: crate::model::Timestamp,
    rec: &VpaContainer,
    target: u64,
    tol: f64,
    fail: Severity,
) -> Finding {
    let d = share(peak, target);
    let (p, t) = format_byte_pair(peak, target);
    let upper = rec
        .upper_bound
        .map(|u| format!(", upper bound {}", format_bytes(u)))
        .unwrap_or_default();
    let (severity, message) = if d > tol {
        let beyond = match rec.upper_bound {
            Some(u) if peak > u => " and beyond its upper bound",
            _ => "",
        };
        (
            fail,
            format!(
                "{container}: peak {p} at {} is {} above the VPA target {t}{beyond} (tolerance {}{upper}): \
                 this change needs more memory than production history says, or the load is heavier than production",
                when(run, at),
                format_percent((d * 1000.0).round() / 1000.0),
                format_percent(tol)
            ),
        )
    } else if d < -tol {
        (
            Severity::Warn,
            format!(
                "{container}: peak {p} is {} below the VPA target {t} (tolerance {}): the load may be lighter than production",
                format_percent((-d * 1000.0).round() / 1000.0),
                format_percent(tol)
            ),
        )
    } else {
        (
            Severity::Pass,
            format!(
                "{container}: peak {p} is within {} of the VPA target {t}{upper}",
                format_percent(tol)
            ),
        )
    };
    let mut f = finding(Rule::VpaPeak, severity, message);
    f.container = Some(container.to_string());
    f.pod = Some(pod.to_string());
    f.observed = Some(peak as f64);
    f.threshold = Some(target as f64);
    f.at = Some(at);
    f
}

fn vpa_request(container: &str, request: u64, target: u64, tol: f64, fail: Severity) -> Finding {
    let d = share(request, target);
    let (r, t) = format_byte_pair(request, target);
    let (severity, message) = if d.abs() > tol {
        let dir = if d > 0.0 { "above" } else { "below" };
        (
            fail,
            format!(
                "{container}: memory request {r} is {} {dir} the VPA target {t} (tolerance {}): set resources.requests.memory to about {t}",
                format_percent((d.abs() * 1000.0).round() / 1000.0),
                format_percent(tol)
            ),
        )
    } else {
        (
            Severity::Pass,
            format!(
                "{container}: memory request {r} is within {} of the VPA target {t}",
                format_percent(tol)
            ),
        )
    };
    let mut f = finding(Rule::VpaRequest, severity, message);
    f.container = Some(container.to_string());
    f.observed = Some(request as f64);
    f.threshold = Some(target as f64);
    f
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::model::VpaRule;

    const MIB: u64 = 1024 * 1024;

    fn policy(lc: LowConfidencePolicy) -> Policy {
        Policy {
            vpa: Some(VpaRule {
                tolerance: 0.2,
                low_confidence: lc,
            }),
            ..Policy::default()
        }
    }

    fn rec(target: u64, low_confidence: bool) -> VpaStatus {
        VpaStatus::Recommendation {
            name: "web".into(),
            low_confidence,
            containers: vec![VpaContainer {
                container: "app".into(),
                target: Some(target),
                lower_bound: Some(target / 2),
                upper_bound: Some(target * 2),
                uncapped_target: Some(target),
            }],
        }
    }

    fn run_with(peak: u64, request: Option<u64>, vpa: VpaStatus) -> Run {
        let mut run = healthy_run();
        run.containers = vec![series("web-1", "app", Some(4096 * MIB), peak)];
        run.containers[0].request = request;
        run.vpa = Some(vpa);
        run
    }

    fn sev(fs: &[Finding], rule: Rule) -> Vec<Severity> {
        fs.iter()
            .filter(|f| f.rule == rule)
            .map(|f| f.severity)
            .collect()
    }

    #[test]
    fn peak_above_target_fails_below_warns_within_passes() {
        let p = policy(LowConfidencePolicy::Warn);
        let fs = check(&p, &run_with(700 * MIB, None, rec(512 * MIB, false)));
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Fail]);
        let msg = &fs.iter().find(|f| f.rule == Rule::VpaPeak).unwrap().message;
        assert!(msg.contains("above the VPA target 512 MiB"), "{msg}");
        let fs = check(&p, &run_with(300 * MIB, None, rec(512 * MIB, false)));
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Warn]);
        let fs = check(&p, &run_with(550 * MIB, None, rec(512 * MIB, false)));
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Pass]);
    }

    #[test]
    fn a_container_the_vpa_does_not_compare_is_named_not_left_out() {
        let p = policy(LowConfidencePolicy::Warn);
        // a sidecar beside the compared app: named
        let mut run = run_with(550 * MIB, None, rec(512 * MIB, false));
        run.containers
            .push(series("web-1", "sidecar", Some(64 * MIB), 20 * MIB));
        let fs = check(&p, &run);
        let side: Vec<_> = fs
            .iter()
            .filter(|f| f.container.as_deref() == Some("sidecar"))
            .collect();
        assert_eq!(side.len(), 1, "{fs:#?}");
        assert_eq!(side[0].severity, Severity::Warn);
        assert!(
            side[0].message.contains("no recommendation"),
            "{}",
            side[0].message
        );
        // a recommendation without a memory target: named
        let mut vpa = rec(512 * MIB, false);
        if let VpaStatus::Recommendation { containers, .. } = &mut vpa {
            containers[0].target = None;
        }
        let fs = check(&p, &run_with(550 * MIB, None, vpa));
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Warn]);
        assert!(fs.iter().any(|f| f.message.contains("no memory target")));
    }

    #[test]
    fn far_above_upper_bound_says_so() {
        let p = policy(LowConfidencePolicy::Warn);
        let fs = check(&p, &run_with(2000 * MIB, None, rec(512 * MIB, false)));
        let f = fs.iter().find(|f| f.rule == Rule::VpaPeak).unwrap();
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message.contains("beyond its upper bound"),
            "{}",
            f.message
        );
    }

    #[test]
    fn request_far_from_target_fails() {
        let p = policy(LowConfidencePolicy::Warn);
        let fs = check(
            &p,
            &run_with(500 * MIB, Some(256 * MIB), rec(512 * MIB, false)),
        );
        let f = fs.iter().find(|f| f.rule == Rule::VpaRequest).unwrap();
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message
                .contains("256 MiB is 50% below the VPA target 512 MiB"),
            "{}",
            f.message
        );
        let fs = check(
            &p,
            &run_with(500 * MIB, Some(480 * MIB), rec(512 * MIB, false)),
        );
        assert_eq!(sev(&fs, Rule::VpaRequest), vec![Severity::Pass]);
    }

    #[test]
    fn low_confidence_turns_failures_into_warnings() {
        let fs = check(
            &policy(LowConfidencePolicy::Warn),
            &run_with(2000 * MIB, Some(100 * MIB), rec(512 * MIB, true)),
        );
        assert!(fs.iter().all(|f| f.severity <= Severity::Warn), "{fs:#?}");
        assert_eq!(sev(&fs, Rule::VpaLowConfidence), vec![Severity::Warn]);
        let fs = check(
            &policy(LowConfidencePolicy::Judge),
            &run_with(2000 * MIB, None, rec(512 * MIB, true)),
        );
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Fail]);
        let fs = check(
            &policy(LowConfidencePolicy::Ignore),
            &run_with(2000 * MIB, None, rec(512 * MIB, true)),
        );
        assert!(sev(&fs, Rule::VpaPeak).is_empty());
    }

    #[test]
    fn missing_or_young_vpa_only_warns() {
        let p = policy(LowConfidencePolicy::Warn);
        let fs = check(
            &p,
            &run_with(
                2000 * MIB,
                None,
                VpaStatus::NoRecommendation { name: "web".into() },
            ),
        );
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Warn]);
        assert!(fs[0].message.contains("days"), "{}", fs[0].message);
        let fs = check(
            &p,
            &run_with(
                2000 * MIB,
                None,
                VpaStatus::Unavailable {
                    reason: "the CRD is not installed".into(),
                },
            ),
        );
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Warn]);
        // Without policy.vpa the rule is not judged, and says so.
        let fs = check(
            &Policy::default(),
            &run_with(1, None, rec(512 * MIB, false)),
        );
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Skipped]);
        assert!(fs[0].message.starts_with("not judged: no VPA configured"));
    }

    #[test]
    fn a_failed_read_is_inconclusive_with_the_reason() {
        let p = policy(LowConfidencePolicy::Warn);
        let reason = "the Kubernetes API answered 503 to `list` on `verticalpodautoscalers.autoscaling.k8s.io` in namespace `staging`: down";
        let fs = check(
            &p,
            &run_with(
                100 * MIB,
                None,
                VpaStatus::ReadFailed {
                    reason: reason.into(),
                },
            ),
        );
        assert_eq!(sev(&fs, Rule::VpaPeak), vec![Severity::Inconclusive]);
        assert!(fs[0].message.contains(reason), "{}", fs[0].message);
    }

    #[test]
    fn a_recommendation_for_other_containers_warns_naming_both() {
        let p = policy(LowConfidencePolicy::Warn);
        let mut vpa = rec(512 * MIB, false);
        if let VpaStatus::Recommendation { containers, .. } = &mut vpa {
            containers[0].container = "worker".into();
        }
        let fs = check(&p, &run_with(100 * MIB, None, vpa));
        let warn: Vec<&Finding> = fs
            .iter()
            .filter(|f| f.rule == Rule::VpaPeak && f.severity == Severity::Warn)
            .collect();
        assert_eq!(warn.len(), 1, "{fs:#?}");
        assert!(
            warn[0]
                .message
                .contains("recommends for containers worker but the measured containers are app"),
            "{}",
            warn[0].message
        );
        // The control: a recommendation for `app` gives no such warning.
        let fs = check(&p, &run_with(550 * MIB, None, rec(512 * MIB, false)));
        assert!(fs.iter().all(|f| f.severity != Severity::Warn), "{fs:#?}");
    }
}

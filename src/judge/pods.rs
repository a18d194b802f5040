//! The `pod-deleted` rule: a pod of the workload went away while the load ran (a rollout, a
//! `kubectl delete`, the node draining, an eviction). Its samples up to then are kept and judged
//! by the other rules; this rule says that it happened, when, what the pod had reached (last
//! sample and peak per container) and which pod replaced it. A deletion warns: the run still
//! measured the workload, but not the same pod throughout. An eviction fails: a kubelet evicts
//! under node memory pressure, which is the memory failure the gate exists to catch. Pure: it
//! reads the `PodGone` marks the runner put on the pod's series.

use super::{clock, finding, when};
use crate::model::{ContainerSeries, Finding, PodGone, Rule, Run, Severity};
use crate::units::format_bytes;

pub(super) fn check(run: &Run) -> Vec<Finding> {
    let mut pods: Vec<(&str, &PodGone)> = Vec::new();
    for s in &run.containers {
        if let Some(gone) = &s.gone {
            if !pods.iter().any(|(p, _)| *p == s.pod) {
                pods.push((&s.pod, gone));
            }
        }
    }
    pods.iter()
        .map(|&(pod, gone)| pod_finding(run, pod, gone))
        .collect()
}

fn pod_finding(run: &Run, pod: &str, gone: &PodGone) -> Finding {
    let series: Vec<&ContainerSeries> = run.containers.iter().filter(|s| s.pod == pod).collect();
    let reached = series
        .iter()
        .map(|s| reached(s))
        .collect::<Vec<_>>()
        .join("; ");
    let replacement = match &gone.replaced_by {
        Some(r) => match first_sample(run, r) {
            Some(at) => format!("replaced by {r}, measured from {}", clock(at)),
            None => format!("replaced by {r}, which brought no sample before the run ended"),
        },
        None => "no replacement pod appeared before the run ended".to_string(),
    };
    let (severity, what, advice) = if gone.evicted() {
        (
            Severity::Fail,
            format!(
                "was evicted at {} (reason {})",
                when(run, gone.at),
                gone.reason.as_deref().unwrap_or("Evicted").trim()
            ),
            "an eviction under node memory pressure is a memory failure: raise the pod's memory \
             request to what it really uses, or give the node room",
        )
    } else {
        (
            Severity::Warn,
            format!(
                "was deleted at {}{}",
                when(run, gone.at),
                gone.reason
                    .as_deref()
                    .filter(|r| !r.trim().is_empty())
                    .map(|r| format!(" (reason {})", r.trim()))
                    .unwrap_or_default()
            ),
            "the workload was not measured on the same pods throughout: if no rollout or \
             deletion was planned, find out who deleted it, and re-run the gate on a quiet \
             deployment",
        )
    };
    let mut f = finding(
        Rule::PodDeleted,
        severity,
        format!("pod {pod} {what} while the load ran; its samples are kept ({reached}); {replacement}: {advice}"),
    );
    f.pod = Some(pod.to_string());
    if let [only] = series.as_slice() {
        f.container = Some(only.container.clone());
    }
    f.at = Some(gone.at);
    f.observed = series
        .iter()
        .filter_map(|s| s.peak().map(|p| p.0))
        .max()
        .map(|b| b as f64);
    f
}

/// "app: last sample 27.1 MiB at 12:00:07, peak 27.3 MiB at 12:00:05".
fn reached(s: &ContainerSeries) -> String {
    match (s.samples.last(), s.peak()) {
        (Some(last), Some((peak, at, _))) => format!(
            "{}: last sample {} at {}, peak {} at {}",
            s.container,
            format_bytes(last.working_set),
            clock(last.at),
            format_bytes(peak),
            clock(at)
        ),
        _ => format!("{}: no sample before it went away", s.container),
    }
}

/// The earliest sample of any container of `pod`.
fn first_sample(run: &Run, pod: &str) -> Option<crate::model::Timestamp> {
    run.containers
        .iter()
        .filter(|s| s.pod == pod)
        .filter_map(|s| s.samples.first().map(|x| x.at))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::*;
    use crate::judge::{evaluate, outcome_of};
    use crate::model::{Outcome, Policy, Sample};

    /// The healthy fixture run with pod `web-7d9f-a1b2c` gone at 12:03:00 and `web-new`
    /// measured from 12:03:02.
    fn deleted(reason: Option<&str>, replaced: bool) -> Run {
        let mut run = healthy_run();
        let victim = run.containers[0].pod.clone();
        let at = t(12, 3, 0);
        for s in run.containers.iter_mut().filter(|s| s.pod == victim) {
            s.samples.retain(|x| x.at < at);
            s.gone = Some(PodGone {
                at,
                reason: reason.map(String::from),
                replaced_by: replaced.then(|| "web-new".to_string()),
            });
        }
        if replaced {
            let mut new = ContainerSeries::new("web-new", "app");
            new.limit = run.containers[0].limit;
            new.samples = vec![
                Sample {
                    at: t(12, 3, 2),
                    working_set: 300 * MIB,
                },
                Sample {
                    at: t(12, 3, 3),
                    working_set: 310 * MIB,
                },
            ];
            run.containers.push(new);
        }
        run
    }

    #[test]
    fn a_deleted_pod_warns_naming_it_its_numbers_and_the_replacement() {
        let run = deleted(None, true);
        let victim = run.containers[0].pod.clone();
        let f = check(&run);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Warn);
        assert_eq!(f[0].rule, Rule::PodDeleted);
        assert_eq!(f[0].pod.as_deref(), Some(victim.as_str()));
        assert_eq!(f[0].at, Some(t(12, 3, 0)));
        let m = &f[0].message;
        assert!(
            m.starts_with(&format!("pod {victim} was deleted at 12:03:00 (stage")),
            "{m}"
        );
        assert!(
            m.contains("last sample") && m.contains("at 12:02:55"),
            "{m}"
        );
        assert!(m.contains(", peak "), "{m}");
        assert!(
            m.contains("replaced by web-new, measured from 12:03:02"),
            "{m}"
        );
        // A warning never fails the gate on its own.
        assert_eq!(outcome_of(&f), Outcome::Pass);
    }

    #[test]
    fn an_evicted_pod_fails() {
        let run = deleted(Some("Evicted"), false);
        let f = check(&run);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Fail);
        let m = &f[0].message;
        assert!(
            m.contains("was evicted at 12:03:00") && m.contains("reason Evicted"),
            "{m}"
        );
        assert!(m.contains("no replacement pod appeared"), "{m}");
        assert!(m.contains("memory request"), "{m}");
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Fail, "{:#?}", v.findings);
    }

    #[test]
    fn other_reasons_are_named_but_only_warn() {
        let f = check(&deleted(Some("NodeLost"), true));
        assert_eq!(f[0].severity, Severity::Warn);
        assert!(
            f[0].message.contains("(reason NodeLost)"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_pod_gone_before_any_sample_says_so() {
        let mut run = deleted(None, true);
        for s in run.containers.iter_mut().filter(|s| s.gone.is_some()) {
            s.samples.clear();
        }
        let f = check(&run);
        assert!(
            f[0].message.contains("no sample before it went away"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn no_gone_pod_no_finding() {
        assert!(check(&healthy_run()).is_empty());
    }
}

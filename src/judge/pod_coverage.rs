//! The per-pod part of the `coverage` rule. The workload-wide share of ticks with data says
//! nothing about one pod that was never measured while the others were; so every (pod,
//! container) the sampler counted tick by tick is judged on its own, over the ticks while its
//! pod ran: below `min_coverage` is inconclusive, naming the pod, the container, its share and
//! why its ticks were uncovered (never in PodMetrics, left out from t1 to t2, timestamp stuck
//! since t, NaN from Prometheus, failed readings). A shortfall that failed readings of the whole
//! source explain is left to the workload-wide finding, which already names them.

use super::{clock, finding};
use crate::model::{
    ContainerSeries, CoverageGap, Finding, GapCause, Policy, Rule, Run, SeriesCoverage, Severity,
};
use crate::units::format_shares;

/// At most this many gaps are spelled out in one finding.
const GAPS_SHOWN: usize = 3;

/// One inconclusive finding per (pod, container) below `min_coverage`. `workload_inconclusive`:
/// the workload-wide share is already below it (failed readings are then not repeated per pod).
pub(super) fn check(policy: &Policy, run: &Run, workload_inconclusive: bool) -> Vec<Finding> {
    run.containers
        .iter()
        .filter_map(|s| Some((s, s.coverage.as_ref()?)))
        .filter(|(_, c)| c.ticks > 0 && c.share() < policy.min_coverage)
        .filter(|(_, c)| !workload_inconclusive || share_besides_failures(c) < policy.min_coverage)
        .map(|(s, c)| short(policy, run, s, c))
        .collect()
}

/// "; per pod and container at least 95.0% (lowest: web-1/app, 19 of 20 ticks)", for the
/// workload-wide pass finding; `None` when no series was counted per pod.
pub(super) fn lowest(run: &Run) -> Option<String> {
    let (s, c) = run
        .containers
        .iter()
        .filter_map(|s| Some((s, s.coverage.as_ref()?)))
        .filter(|(_, c)| c.ticks > 0)
        .min_by(|a, b| a.1.share().total_cmp(&b.1.share()))?;
    Some(format!(
        "; per pod and container at least {} (lowest: {}/{}, {} of {} ticks)",
        crate::units::format_share(c.share()),
        s.pod,
        s.container,
        c.covered,
        c.ticks
    ))
}

/// A warning per series with samples whose stamp was out of line with the rest of the series
/// (placed at the time the gate received them instead of re-basing the series by them).
pub(super) fn restamped(run: &Run) -> Vec<Finding> {
    run.containers
        .iter()
        .filter_map(|s| Some((s, s.coverage.as_ref()?.restamped)))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| {
            let mut f = finding(
                Rule::Coverage,
                Severity::Warn,
                format!(
                    "clock: {n} {} sample{} of {}/{} carried a timestamp out of line with the \
                     rest of its series; {} placed at the time the gate received {}, and \
                     the series was not re-based by {}",
                    run.memory.source,
                    if n == 1 { "" } else { "s" },
                    s.pod,
                    s.container,
                    if n == 1 { "it was" } else { "they were" },
                    if n == 1 { "it" } else { "them" },
                    if n == 1 { "it" } else { "them" },
                ),
            );
            f.pod = Some(s.pod.clone());
            f.container = Some(s.container.clone());
            f.observed = Some(n as f64);
            f
        })
        .collect()
}

/// The share of ticks covered when failed readings (which hit every series alike) are not
/// counted against the series.
fn share_besides_failures(c: &SeriesCoverage) -> f64 {
    let failed: u64 = c
        .gaps
        .iter()
        .filter(|g| g.cause == GapCause::ReadFailed)
        .map(|g| g.ticks)
        .sum();
    (c.covered + failed) as f64 / c.ticks.max(1) as f64
}

fn short(policy: &Policy, run: &Run, s: &ContainerSeries, c: &SeriesCoverage) -> Finding {
    let (observed, required) = format_shares(c.share(), policy.min_coverage);
    let while_ran = if s.gone.is_some() {
        "while the pod ran, until it went away"
    } else if c.since > run.started_at + slack(run) {
        "since the pod appeared"
    } else {
        "while the pod ran"
    };
    let mut f = finding(
        Rule::Coverage,
        Severity::Inconclusive,
        format!(
            "{}/{}: memory data for {observed} of the sampling ticks {while_ran} ({} of {}), \
             below the {required} required: {}; the verdict cannot be trusted for this pod",
            s.pod,
            s.container,
            c.covered,
            c.ticks,
            why(run, c)
        ),
    );
    f.pod = Some(s.pod.clone());
    f.container = Some(s.container.clone());
    f.observed = Some(c.share());
    f.threshold = Some(policy.min_coverage);
    f.at = c.gaps.first().map(|g| g.from);
    f
}

/// How late after the run's start a series' first tick may come and still be one of the pods
/// there from the start: one sampling interval and a second.
fn slack(run: &Run) -> chrono::Duration {
    chrono::Duration::from_std(run.memory.interval).unwrap_or_default()
        + chrono::Duration::seconds(1)
}

/// Why the ticks were uncovered, from the gaps.
pub fn why(run: &Run, c: &SeriesCoverage) -> String {
    let source = run.memory.source.as_str();
    if c.covered == 0 && c.gaps.iter().all(|g| g.cause == GapCause::Absent) {
        return match source {
            "metrics-api" => "never in PodMetrics (metrics-server left it out of every answer)",
            "prometheus" => "Prometheus never had a series for it",
            _ => "never read",
        }
        .to_string();
    }
    let mut parts: Vec<String> = c
        .gaps
        .iter()
        .take(GAPS_SHOWN)
        .map(|g| gap_text(source, c, g))
        .collect();
    if c.gaps.len() > GAPS_SHOWN {
        parts.push(format!("and {} more gaps", c.gaps.len() - GAPS_SHOWN));
    }
    if parts.is_empty() {
        // Every tick counted, none covered, no gap recorded: cannot happen, but say so.
        return "no fresh sample".to_string();
    }
    let failed = c.gaps.iter().any(|g| g.cause == GapCause::ReadFailed);
    let mut out = parts.join(", ");
    if let Some(note) = run.memory.read_failures().filter(|_| failed) {
        out.push_str(&format!(" ({note})"));
    }
    out
}

/// `from 12:00:05 to 12:00:40` / `at 12:00:05`.
fn span(g: &CoverageGap) -> String {
    if g.from == g.to {
        format!("at {}", clock(g.from))
    } else {
        format!("from {} to {}", clock(g.from), clock(g.to))
    }
}

fn gap_text(source: &str, c: &SeriesCoverage, g: &CoverageGap) -> String {
    let ticks = if g.ticks == 1 {
        "1 tick".to_string()
    } else {
        format!("{} ticks", g.ticks)
    };
    match &g.cause {
        GapCause::Absent => {
            let what = match source {
                "metrics-api" => "left out of PodMetrics",
                "prometheus" => "no Prometheus series",
                _ => "no reading",
            };
            if g.from == c.since && c.covered > 0 {
                format!(
                    "{what} from its start at {} until {} ({ticks}, before its first sample)",
                    clock(g.from),
                    clock(g.to)
                )
            } else {
                format!("{what} {} ({ticks})", span(g))
            }
        }
        GapCause::Stuck { stamp } => format!(
            "timestamp stuck since {} (the same sample repeated {}, {ticks}, longer than twice \
             the source's resolution)",
            clock(*stamp),
            span(g)
        ),
        GapCause::BadValue { value } => {
            let from = match source {
                "prometheus" => "Prometheus",
                other => other,
            };
            format!("{value} from {from} {} ({ticks})", span(g))
        }
        GapCause::ReadFailed => format!("readings failed {} ({ticks})", span(g)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::judge::evaluate;
    use crate::model::Outcome;

    /// `healthy_run` with every series counted: 72 ticks every 5 s from 12:00:00, all covered.
    fn counted() -> Run {
        let mut run = healthy_run();
        for s in &mut run.containers {
            s.coverage = Some(SeriesCoverage {
                since: t(12, 0, 0),
                ticks: 72,
                covered: 72,
                gaps: Vec::new(),
                restamped: 0,
            });
        }
        run
    }

    fn gap(from: Timestamp, to: Timestamp, ticks: u64, cause: GapCause) -> CoverageGap {
        CoverageGap {
            from,
            to,
            ticks,
            cause,
        }
    }

    use crate::model::Timestamp;

    fn inconclusive(run: &Run) -> Vec<Finding> {
        evaluate(&Policy::default(), run)
            .findings
            .into_iter()
            .filter(|f| f.rule == Rule::Coverage && f.severity == Severity::Inconclusive)
            .collect()
    }

    #[test]
    fn every_series_covered_passes_and_the_pass_names_the_lowest() {
        let mut run = counted();
        run.containers[3].coverage.as_mut().unwrap().covered = 70;
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Pass, "{:#?}", v.findings);
        let pass: Vec<_> = v
            .findings
            .iter()
            .filter(|f| f.rule == Rule::Coverage)
            .collect();
        assert_eq!(pass.len(), 1);
        assert!(
            pass[0].message.ends_with(
                "meeting the 90% required; per pod and container at least 97.2% (lowest: \
                 web-7d9f-x2k4p/sidecar, 70 of 72 ticks)"
            ),
            "{}",
            pass[0].message
        );
    }

    #[test]
    fn a_pod_never_in_pod_metrics_is_inconclusive_while_the_workload_share_is_full() {
        let mut run = counted();
        let c = run.containers[2].coverage.as_mut().unwrap();
        c.covered = 0;
        c.gaps = vec![gap(t(12, 0, 0), t(12, 5, 55), 72, GapCause::Absent)];
        run.containers[2].samples.clear();
        let f = inconclusive(&run);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            f[0].message,
            "web-7d9f-x2k4p/app: memory data for 0% of the sampling ticks while the pod ran (0 \
             of 72), below the 90% required: never in PodMetrics (metrics-server left it out \
             of every answer); the verdict cannot be trusted for this pod"
        );
        assert_eq!(f[0].pod.as_deref(), Some("web-7d9f-x2k4p"));
        assert_eq!(f[0].container.as_deref(), Some("app"));
        assert_eq!(f[0].observed, Some(0.0));
        assert_eq!(evaluate(&Policy::default(), &run).exit_code(), 3);
    }

    #[test]
    fn a_container_left_out_for_a_while_names_the_span() {
        let mut run = counted();
        let c = run.containers[1].coverage.as_mut().unwrap();
        c.covered = 32;
        c.gaps = vec![gap(t(12, 1, 0), t(12, 4, 15), 40, GapCause::Absent)];
        let f = inconclusive(&run);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.starts_with(
                "web-7d9f-a1b2c/sidecar: memory data for 44.4% of the sampling ticks while the \
                 pod ran (32 of 72), below the 90% required: left out of PodMetrics from \
                 12:01:00 to 12:04:15 (40 ticks)"
            ),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_stuck_timestamp_and_nan_are_named() {
        let mut run = counted();
        let c = run.containers[0].coverage.as_mut().unwrap();
        c.covered = 30;
        c.gaps = vec![gap(
            t(12, 2, 30),
            t(12, 5, 55),
            42,
            GapCause::Stuck {
                stamp: t(12, 2, 25),
            },
        )];
        let c = run.containers[3].coverage.as_mut().unwrap();
        c.covered = 2;
        c.gaps = vec![gap(
            t(12, 0, 10),
            t(12, 5, 55),
            70,
            GapCause::BadValue {
                value: "NaN".into(),
            },
        )];
        run.memory.source = "prometheus".into();
        let f = inconclusive(&run);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(
            f[0].message
                .contains("timestamp stuck since 12:02:25 (the same sample repeated from 12:02:30 to 12:05:55"),
            "{}",
            f[0].message
        );
        assert!(
            f[1].message
                .contains("NaN from Prometheus from 12:00:10 to 12:05:55 (70 ticks)"),
            "{}",
            f[1].message
        );
    }

    #[test]
    fn a_scaled_up_pod_missing_before_its_first_sample_is_not_covered() {
        let mut run = counted();
        let c = run.containers[2].coverage.as_mut().unwrap();
        *c = SeriesCoverage {
            since: t(12, 5, 0),
            ticks: 12,
            covered: 4,
            gaps: vec![gap(t(12, 5, 0), t(12, 5, 35), 8, GapCause::Absent)],
            restamped: 0,
        };
        let f = inconclusive(&run);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains("since the pod appeared (4 of 12)")
                && f[0].message.contains(
                    "left out of PodMetrics from its start at 12:05:00 until 12:05:35 (8 \
                     ticks, before its first sample)"
                ),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_restamped_sample_warns_and_the_verdict_stands() {
        let mut run = counted();
        run.containers[0].coverage.as_mut().unwrap().restamped = 1;
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Pass);
        let warn: Vec<_> = v
            .findings
            .iter()
            .filter(|f| f.rule == Rule::Coverage && f.severity == Severity::Warn)
            .collect();
        assert_eq!(warn.len(), 1);
        assert_eq!(
            warn[0].message,
            "clock: 1 metrics-api sample of web-7d9f-a1b2c/app carried a timestamp out of line \
             with the rest of its series; it was placed at the time the gate received it, and \
             the series was not re-based by it"
        );
    }

    #[test]
    fn failed_readings_of_the_whole_source_are_left_to_the_workload_finding() {
        let mut run = counted();
        run.memory.ticks_with_data = 36;
        for s in &mut run.containers {
            let c = s.coverage.as_mut().unwrap();
            c.covered = 36;
            c.gaps = vec![gap(t(12, 3, 0), t(12, 5, 55), 36, GapCause::ReadFailed)];
        }
        let f = inconclusive(&run);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0]
            .message
            .starts_with("memory data for 49.3% of sampling ticks"));
    }
}

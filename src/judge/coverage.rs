//! The `coverage` rule: is there enough memory data to trust the verdict? Inconclusive when no
//! memory was measured at all, when fewer than `min_coverage` of the sampling ticks brought data,
//! when a stage that ran has no sample from any container, or when the run ended early for a
//! reason other than an OOM kill. It also warns when the sampling interval is coarse against a
//! stage's length, warns when samples stamped by a skewed clock were re-based onto the gate's
//! clock (naming the offset), and is inconclusive when a clock wandered so samples cannot be
//! placed in stages. A pass finding states the coverage when all is well. Each (pod, container)
//! is also judged on its own ticks (`pod_coverage.rs`).

use crate::units::{format_share, format_shares};
use std::time::Duration;

use super::{clock, finding};
use crate::model::{ClockSkew, Finding, Policy, RestartReason, Rule, Run, Severity, StageWindow};
use crate::units::{format_duration, format_percent};

const UNTRUSTED: &str = "the verdict cannot be trusted";

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let meta = &run.memory;
    if run.containers.is_empty() {
        return vec![inconclusive(format!(
            "no memory data at all: no container of the workload was measured ({} source): \
             {UNTRUSTED}",
            meta.source
        ))];
    }
    let samples: usize = run.containers.iter().map(|c| c.samples.len()).sum();
    if samples == 0 {
        return vec![inconclusive(format!(
            "no memory data at all: the {} source brought no sample in {} sampling ticks: \
             {UNTRUSTED}",
            meta.source, meta.ticks
        ))];
    }

    let mut out = vec![ratio(policy, run)];
    if out[0].severity == Severity::Pass {
        if let Some(lowest) = super::pod_coverage::lowest(run) {
            out[0].message.push_str(&lowest);
        }
    }
    let workload_inconclusive = out[0].severity == Severity::Inconclusive;
    out.extend(super::pod_coverage::check(
        policy,
        run,
        workload_inconclusive,
    ));
    out.extend(clock_skew(run));
    out.extend(super::pod_coverage::restamped(run));
    let oom_killed = run
        .restarts
        .iter()
        .any(|r| r.reason == RestartReason::OomKilled);
    let ran: Vec<(usize, &StageWindow)> = run
        .stages
        .iter()
        .enumerate()
        .filter(|(_, w)| started(run, w))
        .collect();

    for &(i, w) in &ran {
        if samples_in(run, i) == 0 {
            let mut f = inconclusive(format!(
                "no memory sample during {} ({}–{}): {UNTRUSTED}{}",
                w.stage.describe(),
                clock(w.start),
                clock(w.end),
                coarse_hint(meta.interval, ran_for(run, w))
            ));
            f.at = Some(w.start);
            out.push(f);
        }
    }

    if let Some(reason) = &run.ended_early {
        // An OOM kill ends the run on purpose; the oom-killed rule fails it.
        if !oom_killed {
            let never = run.stages.len() - ran.len();
            let skipped = if never > 0 {
                format!("; {never} of {} stages never started", run.stages.len())
            } else {
                String::new()
            };
            let mut f = inconclusive(format!(
                "the run ended early at {} ({}){skipped}: the planned load was not fully \
                 applied, so {UNTRUSTED}",
                clock(run.ended_at),
                reason.trim()
            ));
            f.at = Some(run.ended_at);
            out.push(f);
        }
    }

    out.extend(coarse(run, &ran));
    out
}

fn inconclusive(message: String) -> Finding {
    finding(Rule::Coverage, Severity::Inconclusive, message)
}

/// `5m` (whole seconds; `<1s` below half a second).
fn offset_text(ms: i64) -> String {
    let secs = (ms.unsigned_abs() + 500) / 1000;
    if secs == 0 {
        "<1s".to_string()
    } else {
        format_duration(Duration::from_secs(secs))
    }
}

/// `5m ahead of` / `10m behind`.
fn direction(ms: i64) -> String {
    format!(
        "{} {}",
        offset_text(ms),
        if ms >= 0 { "ahead of" } else { "behind" }
    )
}

/// One finding per distinct clock skew, naming the series it affected: a warning with the
/// offset for re-based samples, inconclusive for a clock that wandered.
fn clock_skew(run: &Run) -> Vec<Finding> {
    let mut groups: Vec<(ClockSkew, Vec<(&str, &str)>)> = Vec::new();
    for c in &run.containers {
        let Some(skew) = c.clock_skew else { continue };
        // Offsets that print the same are one finding.
        let same = |k: &ClockSkew| match (k, &skew) {
            (ClockSkew::Rebased { offset_ms: a }, ClockSkew::Rebased { offset_ms: b }) => {
                direction(*a) == direction(*b)
            }
            (a, b) => a == b,
        };
        match groups.iter_mut().find(|(k, _)| same(k)) {
            Some((_, members)) => members.push((&c.pod, &c.container)),
            None => groups.push((skew, vec![(&c.pod, &c.container)])),
        }
    }
    let source = &run.memory.source;
    let fix = "fix the clock of the node or of metrics-server (NTP)";
    groups
        .into_iter()
        .map(|(skew, members)| {
            let list = members
                .iter()
                .map(|(p, c)| format!("{p}/{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut f = match skew {
                ClockSkew::Rebased { offset_ms } => {
                    let why = if offset_ms >= 0 {
                        "in the future when they arrived"
                    } else {
                        "older on arrival than the source's resolution explains"
                    };
                    let mut f = finding(
                        Rule::Coverage,
                        Severity::Warn,
                        format!(
                            "clock skew: the {source} samples of {list} were stamped {} the gate's \
                             clock ({why}); they were moved {} by {} onto the gate's clock so each \
                             falls in the stage it was measured in; {fix}",
                            direction(offset_ms),
                            if offset_ms >= 0 { "back" } else { "forward" },
                            offset_text(offset_ms)
                        ),
                    );
                    f.observed = Some(offset_ms as f64 / 1000.0);
                    f
                }
                ClockSkew::Erratic { min_ms, max_ms } => {
                    let mut f = inconclusive(format!(
                        "clock skew: the {source} samples of {list} were stamped between {} and \
                         {} the gate's clock, not by one consistent offset (a clock that jumped \
                         during the run), so they cannot be placed in the run's stages: \
                         {UNTRUSTED}; {fix}",
                        direction(min_ms),
                        direction(max_ms)
                    ));
                    f.observed = Some(max_ms as f64 / 1000.0);
                    f
                }
            };
            if let [(pod, container)] = members.as_slice() {
                f.pod = Some(pod.to_string());
                f.container = Some(container.to_string());
            } else if members.iter().all(|(_, c)| *c == members[0].1) {
                f.container = Some(members[0].1.to_string());
            }
            f
        })
        .collect()
}

/// Share of sampling ticks that brought data, against `min_coverage`.
fn ratio(policy: &Policy, run: &Run) -> Finding {
    let meta = &run.memory;
    let missed = missed_ticks(run);
    let ticks = meta.ticks + missed;
    let coverage = if ticks == 0 {
        0.0
    } else {
        meta.ticks_with_data as f64 / ticks as f64
    };
    let of = if missed == 0 {
        format!("{} of {ticks}", meta.ticks_with_data)
    } else {
        format!(
            "{} of {ticks}, {missed} of them never taken because a reading outlasted the {} \
             interval",
            meta.ticks_with_data,
            format_duration(meta.interval)
        )
    };
    let mut f = if meta.ticks == 0 {
        inconclusive(format!(
            "the {} sampler recorded no sampling tick, so the share of time memory was \
             measured is unknown: {UNTRUSTED}",
            meta.source
        ))
    } else if coverage < policy.min_coverage {
        let (observed, required) = format_shares(coverage, policy.min_coverage);
        let why = meta
            .read_failures()
            .map(|n| format!("; {n}"))
            .unwrap_or_default();
        inconclusive(format!(
            "memory data for {observed} of sampling ticks ({of}), below the {required} \
             required: {UNTRUSTED}{why}"
        ))
    } else {
        finding(
            Rule::Coverage,
            Severity::Pass,
            format!(
                "memory data for {} of sampling ticks ({of}, every {}), meeting the {} \
                 required",
                format_share(coverage),
                format_duration(meta.interval),
                format_percent(policy.min_coverage)
            ),
        )
    };
    f.observed = Some(coverage);
    f.threshold = Some(policy.min_coverage);
    f
}

/// Ticks the run's length called for that the sampler never recorded (a source that blocks
/// past the interval makes the ticker skip ticks), counted as uncovered so they cannot vanish
/// from the denominator. A shortfall within jitter (2 ticks or a tenth) is not counted.
fn missed_ticks(run: &Run) -> u64 {
    let interval = run.memory.interval.as_millis();
    if interval == 0 {
        return 0;
    }
    let window = (run.ended_at - run.started_at).num_milliseconds().max(0) as u128;
    let expected = u64::try_from(window / interval).unwrap_or(u64::MAX);
    let missing = expected.saturating_sub(run.memory.ticks);
    if missing > 2.max(expected / 10) {
        missing
    } else {
        0
    }
}

/// A stage started when its window is not empty and opened before the run ended (an early end
/// leaves the later stages with empty windows or windows after the end).
fn started(run: &Run, w: &StageWindow) -> bool {
    w.end > w.start && w.start < run.ended_at
}

/// How long a stage really ran (cut at the run's end).
fn ran_for(run: &Run, w: &StageWindow) -> Duration {
    (w.end.min(run.ended_at) - w.start)
        .to_std()
        .unwrap_or_default()
}

/// Samples from any container inside stage `index` (the last stage's end is inclusive, as in
/// `Run::stage_at`).
fn samples_in(run: &Run, index: usize) -> usize {
    let w = &run.stages[index];
    let last = index + 1 == run.stages.len();
    run.containers
        .iter()
        .flat_map(|c| &c.samples)
        .filter(|s| w.contains(s.at) || (last && s.at == w.end))
        .count()
}

fn coarse_hint(interval: Duration, stage: Duration) -> String {
    if !interval.is_zero() && interval >= stage {
        format!(
            "; sampling every {} is too coarse for a stage of {}",
            format_duration(interval),
            format_duration(stage)
        )
    } else {
        String::new()
    }
}

/// Warns when stages that did bring samples are shorter than two sampling intervals, unless
/// every series has a kernel peak counter (which bounds spikes between ticks from above).
fn coarse(run: &Run, ran: &[(usize, &StageWindow)]) -> Option<Finding> {
    let interval = run.memory.interval;
    if interval.is_zero() || run.containers.iter().all(|c| c.kernel_peak_usage.is_some()) {
        return None;
    }
    let short: Vec<String> = ran
        .iter()
        .filter(|&&(i, w)| ran_for(run, w) < interval * 2 && samples_in(run, i) > 0)
        .map(|(_, w)| {
            format!(
                "{} ({})",
                w.stage.describe(),
                format_duration(ran_for(run, w))
            )
        })
        .collect();
    if short.is_empty() {
        return None;
    }
    Some(finding(
        Rule::Coverage,
        Severity::Warn,
        format!(
            "sampling every {} is coarse against {}: a spike shorter than that can fall \
             between two samples",
            format_duration(interval),
            short.join(" and ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::judge::evaluate;
    use crate::model::Outcome;

    fn coverage(v: &crate::model::Verdict) -> Vec<&Finding> {
        v.findings
            .iter()
            .filter(|f| f.rule == Rule::Coverage)
            .collect()
    }

    #[test]
    fn full_coverage_passes_with_one_finding() {
        let v = evaluate(&Policy::default(), &healthy_run());
        let c = coverage(&v);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].severity, Severity::Pass);
        assert_eq!(
            c[0].message,
            "memory data for 100% of sampling ticks (73 of 73, every 5s), meeting the 90% required"
        );
    }

    #[test]
    fn low_coverage_is_inconclusive_with_exit_code_3() {
        let mut run = healthy_run();
        run.memory.ticks = 68;
        run.memory.ticks_with_data = 42;
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert_eq!(v.exit_code(), 3);
        let c = coverage(&v);
        assert_eq!(c[0].severity, Severity::Inconclusive);
        assert_eq!(
            c[0].message,
            "memory data for 61.8% of sampling ticks (42 of 68), below the 90% required: the \
             verdict cannot be trusted"
        );
    }

    #[test]
    fn low_coverage_quotes_why_the_readings_failed() {
        let mut run = healthy_run();
        run.memory.ticks = 68;
        run.memory.ticks_with_data = 42;
        run.memory.notes = vec![
            "limit enforced".into(),
            format!(
                "{} on 26 of 68 sampling ticks (38.2%) (prometheus source); the last error: \
                 connection refused",
                crate::model::READ_FAILURE_NOTE
            ),
        ];
        let v = evaluate(&Policy::default(), &run);
        let c = coverage(&v);
        assert!(
            c[0].message.ends_with(
                "the verdict cannot be trusted; memory readings failed on 26 of 68 sampling \
                 ticks (38.2%) (prometheus source); the last error: connection refused"
            ),
            "{}",
            c[0].message
        );
    }

    #[test]
    fn ticks_that_never_happened_count_as_uncovered() {
        // 6 minutes at 5 s call for 72 ticks; a source that blocked recorded 30, all with data.
        let mut run = healthy_run();
        run.memory.ticks = 30;
        run.memory.ticks_with_data = 30;
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        let c = coverage(&v);
        assert_eq!(
            c[0].message,
            "memory data for 41.7% of sampling ticks (30 of 72, 42 of them never taken because \
             a reading outlasted the 5s interval), below the 90% required: the verdict cannot \
             be trusted"
        );
        // A shortfall within jitter is not counted.
        run.memory.ticks = 66;
        run.memory.ticks_with_data = 66;
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Pass);
        assert!(coverage(&v)[0].message.contains("(66 of 66, every 5s)"));
    }

    #[test]
    fn coverage_exactly_at_the_minimum_passes() {
        let mut run = healthy_run();
        run.memory.ticks = 100;
        run.memory.ticks_with_data = 90;
        assert_eq!(evaluate(&Policy::default(), &run).outcome, Outcome::Pass);
        run.memory.ticks_with_data = 89;
        assert_eq!(
            evaluate(&Policy::default(), &run).outcome,
            Outcome::Inconclusive
        );
    }

    #[test]
    fn no_samples_at_all_is_inconclusive_never_pass() {
        let mut run = healthy_run();
        for c in &mut run.containers {
            c.samples.clear();
        }
        run.memory.ticks_with_data = 0;
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        let c = coverage(&v);
        assert_eq!(c.len(), 1);
        assert!(c[0].message.starts_with("no memory data at all: "));
        assert!(!v
            .findings
            .iter()
            .any(|f| f.rule == Rule::Headroom && f.severity == Severity::Pass));
    }

    #[test]
    fn no_containers_is_inconclusive_never_pass() {
        let mut run = healthy_run();
        run.containers.clear();
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(coverage(&v)[0]
            .message
            .starts_with("no memory data at all: no container"));
    }

    #[test]
    fn zero_ticks_is_inconclusive() {
        let mut run = healthy_run();
        run.memory.ticks = 0;
        run.memory.ticks_with_data = 0;
        assert_eq!(
            evaluate(&Policy::default(), &run).outcome,
            Outcome::Inconclusive
        );
    }

    #[test]
    fn a_stage_without_samples_is_inconclusive_and_named() {
        let mut run = healthy_run();
        for c in &mut run.containers {
            c.samples
                .retain(|s| !(s.at >= t(12, 3, 0) && s.at < t(12, 4, 0)));
        }
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        let c = coverage(&v);
        let f = c
            .iter()
            .find(|f| f.severity == Severity::Inconclusive)
            .unwrap();
        assert_eq!(
            f.message,
            "no memory sample during stage 3, ramp 100→200 users (12:03:00–12:04:00): the \
             verdict cannot be trusted"
        );
    }

    /// The OOM kill at 12:02:10 ends the run; stages 3 and 4 never started (empty windows).
    fn oom_ended_run() -> Run {
        let mut run = local_run();
        let end = t(12, 2, 10);
        run.ended_at = end;
        run.ended_early = Some("app was OOM-killed".into());
        run.restarts = vec![restart("local", "app", end, RestartReason::OomKilled)];
        run.stages[1].end = end;
        for w in &mut run.stages[2..] {
            w.start = end;
            w.end = end;
        }
        run.containers[0].samples.retain(|s| s.at < end);
        run.memory.ticks = 27;
        run.memory.ticks_with_data = 27;
        run
    }

    #[test]
    fn an_oom_kill_that_ends_the_run_early_fails_not_inconclusive() {
        let run = oom_ended_run();
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Fail, "{:#?}", v.findings);
        assert_eq!(v.exit_code(), 1);
        assert!(coverage(&v)
            .iter()
            .all(|f| f.severity != Severity::Inconclusive));
    }

    #[test]
    fn an_oom_early_end_still_fails_when_data_is_thin() {
        let mut run = oom_ended_run();
        run.memory.ticks_with_data = 5;
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Fail);
    }

    #[test]
    fn an_early_end_for_another_reason_is_inconclusive() {
        let mut run = oom_ended_run();
        run.restarts.clear();
        run.ended_early = Some("interrupted (Ctrl-C)".into());
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        let f = coverage(&v)
            .into_iter()
            .find(|f| f.severity == Severity::Inconclusive)
            .unwrap();
        assert_eq!(
            f.message,
            "the run ended early at 12:02:10 (interrupted (Ctrl-C)); 2 of 4 stages never \
             started: the planned load was not fully applied, so the verdict cannot be trusted"
        );
    }

    #[test]
    fn rebased_samples_warn_naming_the_offset_and_the_verdict_stands() {
        let mut run = healthy_run();
        for c in &mut run.containers {
            c.clock_skew = Some(ClockSkew::Rebased { offset_ms: 299_400 });
        }
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Pass);
        let warn: Vec<_> = coverage(&v)
            .into_iter()
            .filter(|f| f.severity == Severity::Warn)
            .collect();
        assert_eq!(warn.len(), 1, "one finding for one offset: {warn:#?}");
        assert!(
            warn[0]
                .message
                .contains("were stamped 4m59s ahead of the gate's clock (in the future"),
            "{}",
            warn[0].message
        );
        assert!(warn[0].message.contains("moved back by 4m59s"));
        assert_eq!(warn[0].observed, Some(299.4));

        run.containers[0].clock_skew = Some(ClockSkew::Rebased {
            offset_ms: -600_200,
        });
        let v = evaluate(&Policy::default(), &run);
        let behind = coverage(&v)
            .into_iter()
            .find(|f| f.message.contains("behind"))
            .unwrap();
        assert!(
            behind
                .message
                .contains("stamped 10m behind the gate's clock (older on arrival"),
            "{}",
            behind.message
        );
        assert!(behind.message.contains("moved forward by 10m"));
        assert_eq!(behind.pod.as_deref(), Some(run.containers[0].pod.as_str()));
    }

    #[test]
    fn a_wandering_clock_is_inconclusive() {
        let mut run = healthy_run();
        run.containers[0].clock_skew = Some(ClockSkew::Erratic {
            min_ms: -300,
            max_ms: 300_000,
        });
        let v = evaluate(&Policy::default(), &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        let f = coverage(&v)
            .into_iter()
            .find(|f| f.severity == Severity::Inconclusive)
            .unwrap();
        assert!(
            f.message
                .contains("between <1s behind and 5m ahead of the gate's clock"),
            "{}",
            f.message
        );
    }

    #[test]
    fn coarse_sampling_warns_unless_a_kernel_peak_is_kept() {
        let mut run = local_run();
        run.memory.interval = Duration::from_secs(45);
        let v = evaluate(&Policy::default(), &run);
        let warn: Vec<_> = coverage(&v)
            .into_iter()
            .filter(|f| f.severity == Severity::Warn)
            .collect();
        assert_eq!(warn.len(), 1);
        assert!(
            warn[0].message.contains("stage 1, ramp 0→100 users (1m)"),
            "{}",
            warn[0].message
        );
        assert_eq!(v.outcome, Outcome::Pass);

        run.containers[0].kernel_peak_usage = Some((120 * MIB, t(12, 0, 30)));
        let v = evaluate(&Policy::default(), &run);
        assert!(coverage(&v).iter().all(|f| f.severity != Severity::Warn));
    }
}

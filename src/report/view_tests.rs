//! Tests of `ReportView::build`: rows per container name, the VPA recommendation, findings
//! order, the chart series, restarts and the suggested limit and request.

use std::time::Duration;

use super::tests::{recommendation, vpa_policy};
use super::*;
use crate::judge::evaluate;
use crate::judge::fixtures::*;
use crate::model::{PeakSource, Policy, Rule, Severity, VpaStatus};

#[test]
fn builds_rows_per_container_name() {
    let run = healthy_run();
    let policy = Policy::default();
    let verdict = evaluate(&policy, &run);
    let view = ReportView::build(&run, &verdict, &policy);
    assert_eq!(view.exit_code, 0);
    assert_eq!(view.stages.len(), 4);
    assert_eq!(view.stages[3].description, "stage 4, hold at 200 users");
    assert_eq!(view.stages[3].duration, Duration::from_secs(120));
    assert_eq!(view.containers.len(), 2);
    let app = &view.containers[0];
    assert_eq!(app.container, "app");
    assert_eq!(app.limit, Some(GIB));
    assert_eq!(app.request, Some(GIB / 2));
    assert_eq!(app.allowed_peak, Some(858_993_459));
    assert_eq!(app.peak, Some(610 * MIB));
    assert_eq!(app.peak_pod.as_deref(), Some("web-7d9f-x2k4p"));
    assert_eq!(app.peak_at, Some(t(12, 4, 30)));
    assert_eq!(
        app.peak_stage.as_deref(),
        Some("stage 4, hold at 200 users")
    );
    assert_eq!(app.peak_source, Some(PeakSource::Sample));
    assert_eq!(app.samples, 146);
    assert_eq!(app.pods, vec!["web-7d9f-a1b2c", "web-7d9f-x2k4p"]);
    assert_eq!(app.resolution_seconds, 5.0);
    assert_eq!(app.results.get(&Rule::Headroom), Some(&Severity::Pass));
    for rule in [
        Rule::Headroom,
        Rule::NoLimit,
        Rule::OomKilled,
        Rule::Restarted,
    ] {
        assert_eq!(app.results.get(&rule), Some(&Severity::Pass), "{rule}");
    }
    assert_eq!(view.run_results.get(&Rule::Coverage), Some(&Severity::Pass));
    assert_eq!(view.memory.coverage, 1.0);
    assert_eq!(view.workload, "deployment/web in staging");
    assert_eq!(view.vpa, None);
    assert_eq!(app.vpa_target, None);
}

#[test]
fn carries_the_vpa_recommendation_per_container_and_the_notes() {
    let mut run = healthy_run();
    run.vpa = Some(recommendation("web", false));
    run.notes = vec!["pod web-7d9f-a1b2c has a different limit".into()];
    let policy = vpa_policy();
    let verdict = evaluate(&policy, &run);
    let view = ReportView::build(&run, &verdict, &policy);
    let vpa = view.vpa.as_ref().unwrap();
    assert_eq!(vpa.state, VpaState::Recommendation);
    assert_eq!(vpa.name.as_deref(), Some("web"));
    assert!(!vpa.low_confidence);
    assert_eq!(vpa.reason, None);
    assert_eq!(vpa.containers[0].uncapped_target, Some(600 * MIB));
    let app = &view.containers[0];
    assert_eq!(app.vpa_target, Some(512 * MIB));
    assert_eq!(app.vpa_lower, Some(256 * MIB));
    assert_eq!(app.vpa_upper, Some(GIB));
    // 610 MiB is 19 % above 512 MiB: within the tolerance; the request is exactly the target.
    assert_eq!(app.results.get(&Rule::VpaPeak), Some(&Severity::Pass));
    assert_eq!(app.results.get(&Rule::VpaRequest), Some(&Severity::Pass));
    let sidecar = &view.containers[1];
    assert_eq!(
        (sidecar.vpa_target, sidecar.vpa_lower, sidecar.vpa_upper),
        (None, None, None)
    );
    assert_eq!(
        view.run_results.get(&Rule::VpaLowConfidence),
        Some(&Severity::Pass)
    );
    assert_eq!(view.notes, run.notes);

    // Without policy.vpa the VPA is not reported, even when one was read.
    let policy = Policy::default();
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    assert_eq!(view.vpa, None);
    assert_eq!(view.containers[0].vpa_target, None);
}

#[test]
fn flattens_a_vpa_without_recommendation() {
    let mut run = healthy_run();
    let policy = vpa_policy();
    run.vpa = Some(VpaStatus::NoRecommendation { name: "web".into() });
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    let vpa = view.vpa.unwrap();
    assert_eq!(vpa.state, VpaState::NoRecommendation);
    assert_eq!(vpa.name.as_deref(), Some("web"));
    assert!(vpa.containers.is_empty());
    run.vpa = Some(VpaStatus::Unavailable {
        reason: "the CRD is not installed".into(),
    });
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    let vpa = view.vpa.unwrap();
    assert_eq!(vpa.state, VpaState::Unavailable);
    assert_eq!(vpa.name, None);
    assert_eq!(vpa.reason.as_deref(), Some("the CRD is not installed"));
    assert!(view.containers.iter().all(|c| c.vpa_target.is_none()));
}

#[test]
fn a_failed_vpa_read_is_read_failed_with_its_reason_and_says_the_rules_are_inconclusive() {
    let mut run = healthy_run();
    let policy = vpa_policy();
    run.vpa = Some(VpaStatus::ReadFailed {
        reason: "the Kubernetes API answered 503".into(),
    });
    let verdict = evaluate(&policy, &run);
    assert_eq!(verdict.outcome, crate::model::Outcome::Inconclusive);
    let view = ReportView::build(&run, &verdict, &policy);
    let vpa = view.vpa.clone().unwrap();
    assert_eq!(vpa.state, VpaState::ReadFailed);
    assert_eq!(vpa.state.id(), "read-failed");
    assert_eq!(
        vpa.reason.as_deref(),
        Some("the Kubernetes API answered 503")
    );
    assert_eq!(
        crate::report::text::vpa_line(&view).as_deref(),
        Some("VPA could not be read, so the VPA rules are inconclusive: the Kubernetes API answered 503")
    );
}

#[test]
fn sorts_findings_worst_first() {
    let mut run = healthy_run();
    run.containers[1].limit = None;
    run.containers[3].limit = None;
    run.memory.ticks_with_data = 50;
    spike(&mut run.containers[0], t(12, 2, 0), 900 * MIB);
    let policy = Policy {
        require_limit: false,
        ..Policy::default()
    };
    let verdict = evaluate(&policy, &run);
    let view = ReportView::build(&run, &verdict, &policy);
    let order: Vec<Severity> = view.findings.iter().map(|f| f.severity).collect();
    assert_eq!(order[0], Severity::Fail);
    assert_eq!(order[1], Severity::Inconclusive);
    assert_eq!(order[2], Severity::Warn);
    // Then the rules not judged, then the passes.
    let skipped = order[3..]
        .iter()
        .take_while(|s| **s == Severity::Skipped)
        .count();
    assert!(skipped >= 1, "{order:?}");
    assert!(
        order[3 + skipped..].iter().all(|s| *s == Severity::Pass),
        "{order:?}"
    );
    assert_eq!(view.rules_with(Severity::Fail), vec![Rule::Headroom]);
    assert_eq!(view.count(Severity::Warn), 1);
    assert_eq!(view.containers[1].allowed_peak, None);
    assert_eq!(
        view.containers[1].results.get(&Rule::NoLimit),
        Some(&Severity::Warn)
    );
}

#[test]
fn carries_the_chart_series_restarts_and_suggestions() {
    use crate::model::RestartReason;
    let mut run = healthy_run();
    spike(&mut run.containers[0], t(12, 5, 0), 700 * MIB);
    run.restarts = vec![
        restart(
            "web-7d9f-x2k4p",
            "app",
            t(12, 5, 40),
            RestartReason::OomKilled,
        ),
        restart(
            "web-7d9f-a1b2c",
            "sidecar",
            t(12, 2, 0),
            RestartReason::Other("Error".into()),
        ),
    ];
    let policy = Policy::default();
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    let app = &view.containers[0];
    // The max over both pods: 500 MiB (x2k4p) almost everywhere, both spikes kept.
    assert_eq!(app.working_set.len(), 73);
    assert_eq!(app.working_set[0].bytes, 500 * MIB);
    let at = |when| app.working_set.iter().find(|p| p.at == when).unwrap().bytes;
    assert_eq!(at(t(12, 4, 30)), 610 * MIB);
    assert_eq!(at(t(12, 5, 0)), 700 * MIB);
    // The peak pod's own series.
    assert_eq!(app.peak_pod.as_deref(), Some("web-7d9f-a1b2c"));
    assert_eq!(app.peak_pod_series.len(), 73);
    assert!(app
        .peak_pod_series
        .iter()
        .all(|p| p.bytes == 480 * MIB || p.bytes == 700 * MIB));
    // The recommendation is analysis::recommend's: 700 MiB ÷ 0.8 = 875 MiB; the busiest hold
    // (stage 4) has a median of 500 MiB → 575 MiB; the runtime heaps follow the limit.
    let r = app.recommendation.as_ref().unwrap();
    assert_eq!(r, &crate::analysis::recommend::recommend(&run, &policy)[0]);
    assert_eq!(r.limit, 875 * MIB);
    assert_eq!(r.request, Some(575 * MIB));
    let basis = r.request_basis.as_ref().unwrap();
    assert_eq!(
        (basis.stage, basis.users, basis.median),
        (3, 200, 500 * MIB)
    );
    assert_eq!(r.gomemlimit, 787 * MIB); // 90 % of 875 MiB, rounded down
    assert_eq!(r.node_max_old_space_mib, 656);
    assert_eq!(r.java_max_ram_percentage, 75);
    assert_eq!(
        view.containers[1]
            .recommendation
            .as_ref()
            .unwrap()
            .container,
        "sidecar"
    );
    assert_eq!(view.restarts.len(), 2);
    assert_eq!(view.restarts[0].container, "sidecar");
    assert!(!view.restarts[0].oom_killed);
    assert_eq!(view.restarts[0].reason, "Error");
    assert_eq!(
        view.restarts[0].stage.as_deref(),
        Some("stage 2, hold at 100 users")
    );
    assert!(view.restarts[1].oom_killed);
    assert_eq!(view.restarts[1].reason, "OOMKilled");
    assert_eq!(view.restarts[1].exit_code, Some(137));
    assert_eq!(view.restarts_of("app").count(), 1);
    assert_eq!(view.peak_users(), 200);
}

#[test]
fn a_single_pod_has_no_separate_peak_pod_series_and_no_data_no_suggestion() {
    let mut run = local_run();
    let policy = Policy::default();
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    assert!(view.containers[0].peak_pod_series.is_empty());
    assert_eq!(view.containers[0].working_set.len(), 73);
    run.containers[0].samples.clear();
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    assert!(view.containers[0].working_set.is_empty());
    assert_eq!(view.containers[0].recommendation, None);
}

#[test]
fn headlines_name_the_rules() {
    let run = healthy_run();
    let policy = Policy::default();
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    assert_eq!(
        view.headline(),
        "12 checks passed, 3 not judged (vpa-peak, capacity)"
    );
    let mut judged = evaluate(&policy, &run);
    judged.findings.retain(|f| f.severity != Severity::Skipped);
    let view = ReportView::build(&run, &judged, &policy);
    assert!(view.headline().starts_with("all "), "{}", view.headline());
    assert!(view.headline().ends_with(" checks passed"));
    let mut failing = run.clone();
    spike(&mut failing.containers[2], t(12, 4, 30), 900 * MIB);
    let view = ReportView::build(&failing, &evaluate(&policy, &failing), &policy);
    assert_eq!(view.headline(), "1 failing rule (headroom)");
    let mut thin = run;
    thin.memory.ticks_with_data = 10;
    let view = ReportView::build(&thin, &evaluate(&policy, &thin), &policy);
    assert_eq!(view.headline(), "not enough data to judge (coverage)");
}

#[test]
fn per_pod_coverage_lines_name_the_short_one_and_why() {
    use crate::model::{CoverageGap, GapCause, SeriesCoverage};
    let mut run = healthy_run();
    run.containers.truncate(2);
    run.containers[0].coverage = Some(SeriesCoverage {
        since: t(12, 0, 0),
        ticks: 72,
        covered: 72,
        gaps: Vec::new(),
        restamped: 0,
    });
    run.containers[1].coverage = Some(SeriesCoverage {
        since: t(12, 0, 0),
        ticks: 72,
        covered: 0,
        gaps: vec![CoverageGap {
            from: t(12, 0, 0),
            to: t(12, 5, 55),
            ticks: 72,
            cause: GapCause::Absent,
        }],
        restamped: 0,
    });
    let policy = Policy::default();
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    assert_eq!(
        crate::report::text::pod_coverage_lines(&view),
        vec![
            "web-7d9f-a1b2c/app: 100% of 72 ticks (72 of 72)".to_string(),
            "web-7d9f-a1b2c/sidecar: 0% of 72 ticks (0 of 72), below the 90% required: never \
             in PodMetrics (metrics-server left it out of every answer)"
                .to_string(),
        ]
    );
}

#[test]
fn a_rule_that_was_not_judged_is_counted_apart_from_the_passes() {
    use crate::model::{Finding, Outcome, Rule, Severity};
    let run = crate::judge::fixtures::healthy_run();
    let policy = crate::model::Policy::default();
    let mut verdict = crate::judge::evaluate(&policy, &run);
    verdict.findings.retain(|f| f.severity == Severity::Pass);
    let passes = verdict.findings.len();
    assert!(passes > 0);
    verdict.findings.push(Finding {
        rule: Rule::Leak,
        severity: Severity::Skipped,
        container: Some("app".into()),
        pod: None,
        message: "app: not judged: no hold long enough to judge a trend (≥ 1m)".into(),
        observed: None,
        threshold: None,
        at: None,
    });
    verdict.outcome = crate::judge::outcome_of(&verdict.findings);
    assert_eq!(
        verdict.outcome,
        Outcome::Pass,
        "skipped alone does not change a pass"
    );
    let view = ReportView::build(&run, &verdict, &policy);
    let plural = if passes == 1 { "check" } else { "checks" };
    assert_eq!(
        view.headline(),
        format!("{passes} {plural} passed, 1 not judged (leak)")
    );
    let junit = super::junit::render(&view);
    assert!(junit.contains("<skipped message=\"not judged: "), "{junit}");
    let md = super::markdown::render(&view);
    assert!(md.contains("skipped"), "{md}");
}

//! One example finding per rule, as the judge really words it, from small runs built on the
//! judge's fixtures: the sentences the README's "Rules" section quotes. Each example is checked
//! to produce a finding of its rule with the expected severity; `cargo test --lib rule_examples
//! -- --nocapture` prints them all.

use crate::model::{Baseline, BaselineContainer};
use std::time::Duration;

use crate::analysis::testdata::{holds_at, noise, run_of, run_with, sampled, users_at};
use crate::judge::evaluate;
use crate::judge::fixtures::*;
use crate::model::{
    Finding, LowConfidencePolicy, Policy, RestartReason, Rule, Run, Severity, VpaContainer,
    VpaRule, VpaStatus,
};

fn vpa(target_mib: u64, low_confidence: bool) -> VpaStatus {
    VpaStatus::Recommendation {
        name: "web".into(),
        low_confidence,
        containers: vec![VpaContainer {
            container: "app".into(),
            target: Some(target_mib * MIB),
            lower_bound: Some(target_mib * MIB / 2),
            upper_bound: Some(2 * target_mib * MIB),
            uncapped_target: Some(target_mib * MIB),
        }],
    }
}

fn judge_vpa() -> Policy {
    Policy {
        vpa: Some(VpaRule {
            tolerance: 0.2,
            low_confidence: LowConfidencePolicy::Warn,
        }),
        ..Policy::default()
    }
}

/// (rule, expected severity, policy, run) for every rule.
fn examples() -> Vec<(Rule, Severity, Policy, Run)> {
    let mut out = Vec::new();
    let default = Policy::default;

    let mut run = healthy_run();
    spike(&mut run.containers[2], t(12, 4, 30), 912_680_550);
    out.push((Rule::Headroom, Severity::Fail, default(), run));

    let mut run = healthy_run();
    run.containers[1].limit = None;
    run.containers[3].limit = None;
    out.push((Rule::NoLimit, Severity::Fail, default(), run));

    let mut run = healthy_run();
    run.restarts = vec![restart(
        "web-7d9f-a1b2c",
        "app",
        t(12, 5, 40),
        RestartReason::OomKilled,
    )];
    out.push((Rule::OomKilled, Severity::Fail, default(), run));

    let mut run = healthy_run();
    let reason = RestartReason::Other("Error".into());
    run.restarts = vec![restart("web-7d9f-x2k4p", "sidecar", t(12, 3, 5), reason)];
    out.push((Rule::Restarted, Severity::Fail, default(), run));

    let mut run = healthy_run();
    (run.memory.ticks, run.memory.ticks_with_data) = (73, 51);
    out.push((Rule::Coverage, Severity::Inconclusive, default(), run));

    let thresholds = Policy {
        max_p95: Some(Duration::from_millis(100)),
        max_error_rate: Some(0.0001),
        ..default()
    };
    out.push((
        Rule::Latency,
        Severity::Fail,
        thresholds.clone(),
        healthy_run(),
    ));
    out.push((Rule::ErrorRate, Severity::Fail, thresholds, healthy_run()));

    let mut run = healthy_run();
    run.load.driver = "k6".into();
    run.load.tool_thresholds_failed = true;
    out.push((Rule::ToolThresholds, Severity::Fail, default(), run));

    let mut run = healthy_run();
    run.vpa = Some(vpa(400, false));
    out.push((Rule::VpaPeak, Severity::Fail, judge_vpa(), run.clone()));
    out.push((Rule::VpaRequest, Severity::Fail, judge_vpa(), run));
    let mut run = healthy_run();
    run.vpa = Some(vpa(512, true));
    out.push((Rule::VpaLowConfidence, Severity::Warn, judge_vpa(), run));

    // 2 MiB/min through both holds under a 256 MiB limit.
    let run = run_of(vec![sampled(
        "web-1",
        "app",
        Some(256 * MIB),
        360,
        1,
        |s| 100.0 + 2.0 * s / 60.0 + noise(s as u64),
    )]);
    out.push((Rule::Leak, Severity::Fail, default(), run));

    // 100 MiB + 2 MiB per user through holds at 100 and 200 users; 400 expected.
    let (stages, seconds) = holds_at(&[100, 200]);
    let plan = stages.clone();
    let series = sampled("web-1", "app", Some(GIB), seconds, 1, move |s| {
        100.0 + 2.0 * users_at(&plan, s) + noise(s as u64)
    });
    let expecting = Policy {
        expected_peak_users: Some(400),
        ..default()
    };
    out.push((
        Rule::Capacity,
        Severity::Fail,
        expecting,
        run_with(stages, vec![series]),
    ));

    let mut run = healthy_run();
    run.env = vec![(
        "app".into(),
        vec![("NODE_OPTIONS".into(), "--max-old-space-size=900".into())],
    )];
    out.push((Rule::RuntimeSetting, Severity::Warn, default(), run));

    let mut run = healthy_run();
    run.baseline = Some(Baseline {
        path: "previous/report.json".into(),
        scenario: "checkout-api".into(),
        started_at: Some(t(11, 0, 0)),
        verdict: Some("pass".into()),
        containers: vec![BaselineContainer {
            container: "app".into(),
            peak_bytes: Some(469 * MIB),
            limit_bytes: Some(GIB),
            suggested_limit_bytes: None,
        }],
        driver: Some("goose".into()),
        p95_ms: Some(118.0),
    });
    out.push((Rule::Regression, Severity::Fail, default(), run));

    let mut run = healthy_run();
    let gone = crate::model::PodGone {
        at: t(12, 3, 0),
        reason: None,
        replaced_by: Some("web-7d9f-q8m3z".into()),
    };
    for s in run
        .containers
        .iter_mut()
        .filter(|s| s.pod == "web-7d9f-a1b2c")
    {
        s.samples.retain(|x| x.at < t(12, 3, 0));
        s.gone = Some(gone.clone());
    }
    let mut replacement = crate::model::ContainerSeries::new("web-7d9f-q8m3z", "app");
    replacement.limit = Some(GIB);
    replacement.samples = run.containers[0]
        .samples
        .iter()
        .map(|x| crate::model::Sample {
            at: x.at + chrono::Duration::seconds(185),
            working_set: x.working_set,
        })
        .filter(|x| x.at <= t(12, 6, 0))
        .collect();
    run.containers.push(replacement);
    out.push((Rule::PodDeleted, Severity::Warn, default(), run));
    out
}

/// The worst finding of `rule` (a container's one first).
fn worst(findings: &[Finding], rule: Rule) -> Option<&Finding> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .max_by_key(|f| (f.severity, f.container.is_some()))
}

#[test]
fn every_rule_has_a_real_example_finding() {
    let all = examples();
    let mut rules: Vec<Rule> = all.iter().map(|e| e.0).collect();
    rules.sort();
    rules.dedup();
    assert_eq!(rules.len(), 16, "one example per rule");
    for (rule, severity, policy, run) in all {
        let verdict = evaluate(&policy, &run);
        let f = worst(&verdict.findings, rule)
            .unwrap_or_else(|| panic!("no {rule} finding: {:#?}", verdict.findings));
        assert_eq!(f.severity, severity, "{rule}: {}", f.message);
        println!(
            "{rule} [{}]: {}",
            super::text::severity_word(f.severity),
            f.message
        );
    }
}

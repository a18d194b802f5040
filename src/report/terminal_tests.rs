//! Tests of the terminal summary: the verdict line, the numbers, alignment, colors only when asked
//! for, and names from outside printed sanitized.

use std::time::Duration;

use super::tests::{recommendation, vpa_policy};
use super::{ReportView, Reporter, TerminalReporter};
use crate::judge::evaluate;
use crate::judge::fixtures::*;
use crate::model::{LowConfidencePolicy, Policy, RestartReason, Run, VpaRule, VpaStatus};

fn render(run: &Run, policy: &Policy, color: bool) -> String {
    let verdict = evaluate(policy, run);
    let view = ReportView::build(run, &verdict, policy);
    let mut out = Vec::new();
    TerminalReporter { color }.render(&view, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn failing_run() -> Run {
    let mut run = healthy_run();
    spike(&mut run.containers[2], t(12, 4, 30), 912_680_550);
    run
}

#[test]
fn a_pass_starts_with_the_verdict_and_shows_the_numbers() {
    let out = render(&healthy_run(), &Policy::default(), false);
    println!("{out}");
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        "PASS  checkout-api — 12 checks passed, 3 not judged (vpa-peak, capacity)"
    );
    assert!(out.contains("exit code 0"));
    for needle in [
        "1 GiB",
        "819.2 MiB",
        "610 MiB",
        "12:04:30",
        "stage 4, hold at 200 users",
        "pod web-7d9f-x2k4p",
        "128 MiB",
        "requests 12000",
        "33.3 req/s",
        "latency (time to first byte)",
        "p95 120 ms",
        "p99 340 ms",
        "metrics-api, every 5s",
        "(73 of 73 ticks)",
        "list users",
        "503 ×3",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    assert!(!out.contains('\x1b'));
    assert!(!out.contains("LIMIT NOT ENFORCED"));
    assert_eq!(
        out.lines().nth(1),
        Some("  workload: deployment/web in staging")
    );
    let before_advice = out.split("\nWhat to change\n").next().unwrap();
    // Without policy.vpa no VPA column or section: only the line saying it was not judged.
    assert!(
        before_advice
            .lines()
            .filter(|l| l.contains("VPA"))
            .all(|l| l.contains("not judged: no VPA configured")),
        "{before_advice}"
    );
}

#[test]
fn a_fail_names_the_rule_and_lists_the_finding_first() {
    let mut run = failing_run();
    run.restarts = vec![restart(
        "web-7d9f-a1b2c",
        "sidecar",
        t(12, 3, 5),
        RestartReason::Other("Error".into()),
    )];
    let policy = Policy {
        fail_on_restart: false,
        ..Policy::default()
    };
    let out = render(&run, &policy, false);
    println!("{out}");
    assert!(
        out.starts_with("FAIL  checkout-api — 1 failing rule (headroom)\n"),
        "{out}"
    );
    assert!(out.contains("exit code 1"));
    let findings = out.split("Findings\n").nth(1).unwrap();
    let findings = findings.split("\nWhat to change\n").next().unwrap();
    let lines: Vec<&str> = findings.lines().collect();
    assert!(lines[0].starts_with(
        "  ✗ app (pod web-7d9f-x2k4p): peak 870.4 MiB at 12:04:30 (stage 4, hold at 200 users) is above the 819.2 MiB allowed"
    ), "{}", lines[0]);
    assert!(lines[0].ends_with("[headroom]"));
    assert!(lines[1].starts_with("  ! sidecar (pod web-7d9f-a1b2c): restarted at 12:03:05"));
    // Then the rules not judged (no VPA configured, no expected_peak_users), never a pass.
    assert!(
        lines[2..]
            .iter()
            .all(|l| l.starts_with("  - ") && l.contains("not judged")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 5, "pass findings are not listed");
    assert!(out.contains("✗ fail"));
}

#[test]
fn an_inconclusive_run_says_why() {
    let mut run = healthy_run();
    run.memory.ticks = 68;
    run.memory.ticks_with_data = 42;
    let out = render(&run, &Policy::default(), false);
    assert!(
        out.starts_with("INCONCLUSIVE  checkout-api — not enough data to judge (coverage)\n"),
        "{out}"
    );
    assert!(out.contains("exit code 3"));
    assert!(out.contains("  ? memory data for "));
}

#[test]
fn table_columns_are_aligned() {
    let out = render(&healthy_run(), &Policy::default(), false);
    let header = out.lines().find(|l| l.contains("CONTAINER")).unwrap();
    let app = out.lines().find(|l| l.starts_with("  app ")).unwrap();
    let sidecar = out.lines().find(|l| l.starts_with("  sidecar ")).unwrap();
    let col = |line: &str, needle: &str| {
        line.chars()
            .collect::<String>()
            .find(needle)
            .map(|b| line[..b].chars().count())
    };
    let limit_col = col(header, "LIMIT").unwrap();
    assert_eq!(col(app, "1 GiB"), Some(limit_col));
    assert_eq!(col(sidecar, "128 MiB"), Some(limit_col));
    let results = out.lines().find(|l| l.contains("RESULTS")).unwrap();
    let headroom = col(results, "HEADROOM").unwrap();
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("✓ pass")).collect();
    assert!(
        rows.iter()
            .take(2)
            .all(|l| col(l, "✓ pass") == Some(headroom)),
        "{out}"
    );
    assert!(out.lines().all(|l| l == l.trim_end()), "no trailing spaces");
}

#[test]
fn color_only_when_asked_for() {
    let colored = render(&failing_run(), &Policy::default(), true);
    assert!(colored.starts_with("\x1b[1;31mFAIL\x1b[0m"));
    assert!(colored.contains("\x1b[32m✓ pass\x1b[0m"));
    let plain = render(&failing_run(), &Policy::default(), false);
    assert!(!plain.contains('\x1b'));
}

#[test]
fn names_from_outside_are_sanitized() {
    let mut run = healthy_run();
    run.scenario = "evil\x1b[2J\nPASS".into();
    run.containers[0].pod = "web\x1b]0;title\x07-1".into();
    run.containers[1].container = "side\rcar".into();
    spike(&mut run.containers[0], t(12, 2, 0), 950 * MIB);
    run.memory.notes = vec!["note\x1b[31m red\nsecond line".into()];
    run.ended_early = Some("killed\x1b[A".into());
    run.workload = "deployment/web\x1b[8m in\nstaging".into();
    run.notes = vec!["pods\x1b[1A differ\u{202E}".into()];
    run.vpa = Some(recommendation("web\x1b[2K\x1b[1Gvpa", true));
    for color in [false, true] {
        let out = render(&run, &vpa_policy(), color);
        // Only the reporter's own styles may remain.
        let mut rest = out.clone();
        for own in [
            "\x1b[1;31m",
            "\x1b[32m",
            "\x1b[33m",
            "\x1b[1m",
            "\x1b[2m",
            "\x1b[0m",
        ] {
            rest = rest.replace(own, "");
        }
        assert!(!rest.contains('\x1b'), "{out:?}");
        assert!(!out.contains('\r'));
        assert!(!out.contains('\x07'));
        assert!(out.contains("evil\u{FFFD}[2J\u{FFFD}PASS"));
        assert!(out.contains("web\u{FFFD}]0;title\u{FFFD}-1"));
        assert!(out.contains("side\u{FFFD}car"));
        assert!(out.contains("note\u{FFFD}[31m red\u{FFFD}second line"));
        assert!(out.contains("workload: deployment/web\u{FFFD}[8m in\u{FFFD}staging"));
        assert!(out.contains("note: pods\u{FFFD}[1A differ\u{FFFD}"));
        assert!(
            out.contains("VPA web\u{FFFD}[2K\u{FFFD}[1Gvpa: low confidence"),
            "{out}"
        );
        assert!(out.lines().all(|l| !l.starts_with("PASS")));
    }
}

#[test]
fn an_unenforced_limit_and_missing_data_are_loud() {
    let mut run = local_run();
    run.memory.limit_enforced = false;
    run.memory.notes = vec!["limit not enforced: no permission to create cgroups".into()];
    run.load = crate::model::LoadStats::default();
    let out = render(&run, &Policy::default(), false);
    assert!(out.contains("!! LIMIT NOT ENFORCED"));
    assert!(out.contains("note: limit not enforced: no permission to create cgroups"));
    assert!(out.contains("no request was sent"));
    assert!(out.starts_with("INCONCLUSIVE"));
}

#[test]
fn no_limit_and_kernel_peak_are_shown() {
    let mut run = local_run();
    run.containers[0].limit = None;
    run.containers[0].kernel_peak_usage = Some((200 * MIB, t(12, 5, 0)));
    run.memory.interval = Duration::from_secs(1);
    let out = render(&run, &Policy::default(), false);
    println!("{out}");
    let row = out.lines().find(|l| l.starts_with("  app ")).unwrap();
    assert!(row.contains("none"), "{row}");
    // The sampled peak is the peak; the kernel's usage peak (page cache included) its bound.
    assert!(row.contains("100 MiB"), "{row}");
    assert!(row.contains("(kernel peak usage 200 MiB)"), "{row}");
    assert!(!row.contains("pod local"), "a single pod is not named");
    assert!(out.contains("✗ app: no memory limit is set"));
}

fn with_vpa(vpa: VpaStatus) -> Run {
    let mut run = healthy_run();
    run.vpa = Some(vpa);
    run
}

#[test]
fn a_vpa_recommendation_adds_a_target_column_and_vpa_results() {
    let mut run = with_vpa(recommendation("web", false));
    spike(&mut run.containers[2], t(12, 4, 30), 700 * MIB);
    run.notes = vec!["pod web-7d9f-a1b2c has a different limit".into()];
    let out = render(&run, &vpa_policy(), false);
    println!("{out}");
    let header = out.lines().find(|l| l.contains("CONTAINER")).unwrap();
    assert!(header.contains("OF LIMIT  VPA TARGET  PEAK AT"), "{header}");
    let col = |line: &str, needle: &str| line.find(needle).map(|b| line[..b].chars().count());
    let target = col(header, "VPA TARGET").unwrap();
    let app = out.lines().find(|l| l.starts_with("  app ")).unwrap();
    let sidecar = out.lines().find(|l| l.starts_with("  sidecar ")).unwrap();
    assert_eq!(col(app, "512 MiB"), Some(target), "{app}");
    assert_eq!(col(sidecar, "—  "), Some(target), "{sidecar}");
    let results = out.lines().find(|l| l.contains("RESULTS")).unwrap();
    assert!(results.contains("VPA-PEAK"), "{results}");
    assert!(results.contains("VPA-REQUEST"), "{results}");
    let app_results = out
        .lines()
        .filter(|l| l.starts_with("  app "))
        .nth(1)
        .unwrap();
    assert_eq!(col(app_results, "✗ fail"), col(results, "VPA-PEAK"));
    assert!(out.contains("vpa-low-confidence ✓ pass"), "{out}");
    assert!(out.contains("note: pod web-7d9f-a1b2c has a different limit"));
    assert!(out.contains("above the VPA target 512 MiB"));
    assert!(!out.contains("VPA web:"), "a confident VPA needs no line");
    assert!(out.lines().all(|l| l == l.trim_end()), "no trailing spaces");
}

#[test]
fn a_vpa_without_recommendation_says_so_under_the_table() {
    let out = render(
        &with_vpa(VpaStatus::NoRecommendation { name: "web".into() }),
        &vpa_policy(),
        false,
    );
    println!("{out}");
    assert!(!out.contains("VPA TARGET"));
    let after_table = out
        .lines()
        .skip_while(|l| !l.contains("CONTAINER"))
        .skip(3)
        .find(|l| !l.is_empty())
        .unwrap();
    assert_eq!(
        after_table,
        "  VPA web: no recommendation yet (needs days of history)"
    );
    assert!(out.contains("  run-wide: vpa-peak ! warn, "), "{out}");

    let out = render(
        &with_vpa(VpaStatus::Unavailable {
            reason: "the VerticalPodAutoscaler CRD is not installed".into(),
        }),
        &vpa_policy(),
        false,
    );
    assert!(
        out.contains("  VPA unavailable: the VerticalPodAutoscaler CRD is not installed\n"),
        "{out}"
    );
    assert!(!out.contains("VPA TARGET"));
}

#[test]
fn a_low_confidence_vpa_is_named_with_its_effect() {
    let run = with_vpa(recommendation("web", true));
    let out = render(&run, &vpa_policy(), false);
    assert!(out.contains("VPA TARGET"));
    assert!(
        out.contains("  VPA web: low confidence (short history); VPA findings only warn\n"),
        "{out}"
    );
    let policy = Policy {
        vpa: Some(VpaRule {
            tolerance: 0.2,
            low_confidence: LowConfidencePolicy::Ignore,
        }),
        ..Policy::default()
    };
    let out = render(&run, &policy, true);
    assert!(
        out.contains(
            "\x1b[33mVPA web: low confidence (short history); VPA rules are skipped\x1b[0m"
        ),
        "{out:?}"
    );
}

#[test]
fn a_recommendation_for_no_measured_container_is_mentioned() {
    let mut run = with_vpa(recommendation("web", false));
    for c in &mut run.containers {
        c.container = format!("{}-x", c.container);
    }
    let out = render(&run, &vpa_policy(), false);
    assert!(!out.contains("VPA TARGET"));
    assert!(
        out.contains("  VPA web: no memory target for any measured container\n"),
        "{out}"
    );
}

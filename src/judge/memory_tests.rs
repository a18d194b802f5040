//! Tests of the memory rules (headroom, no-limit, oom-killed, restarted) through `evaluate`, with
//! plain data: the design's message, the boundary at exactly the allowed peak, kernel peaks,
//! several pods, differing limits, missing limits and data, OOM kills and other restarts.

use super::fixtures::*;
use super::*;
use crate::judge::evaluate;
use crate::model::{allowed_peak, Outcome, RestartReason};

fn only(findings: &[Finding], rule: Rule, container: &str) -> Finding {
    let matching: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == rule && f.container.as_deref() == Some(container))
        .collect();
    assert_eq!(matching.len(), 1, "{rule} {container}: {findings:#?}");
    matching[0].clone()
}

/// One pod, one container "app", 1 GiB limit, peak `peak` at 12:04:31.
fn single(peak: u64) -> Run {
    let mut run = healthy_run();
    let mut s = series("web-7d9f-x2k4p", "app", Some(GIB), 500 * MIB);
    s.samples.push(crate::model::Sample {
        at: t(12, 4, 31),
        working_set: peak,
    });
    s.samples.sort_by_key(|s| s.at);
    run.containers = vec![s];
    run
}

#[test]
fn peak_above_allowed_fails_with_the_design_message() {
    let run = single(912_680_550);
    let v = evaluate(&Policy::default(), &run);
    assert_eq!(v.outcome, Outcome::Fail);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Fail);
    assert_eq!(
        f.message,
        "app: peak 870.4 MiB at 12:04:31 (stage 4, hold at 200 users) is above the \
         819.2 MiB allowed by the 1 GiB limit with 20% headroom"
    );
    assert_eq!(f.observed, Some(912_680_550.0));
    assert_eq!(f.threshold, Some(858_993_459.0));
    assert_eq!(f.at, Some(t(12, 4, 31)));
    assert_eq!(f.pod.as_deref(), Some("web-7d9f-x2k4p"));
}

#[test]
fn peak_equal_to_allowed_passes_and_one_byte_more_fails() {
    let allowed = allowed_peak(GIB, 0.2);
    let v = evaluate(&Policy::default(), &single(allowed));
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Pass);
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(
        f.message,
        "app: peak 819.2 MiB at 12:04:31 (stage 4, hold at 200 users) is within the \
         819.2 MiB allowed (1 GiB limit, 20% headroom)"
    );
    let v = evaluate(&Policy::default(), &single(allowed + 1));
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        f.message.starts_with(
            "app: peak 819.2 MiB (858993460 bytes) at 12:04:31 (stage 4, hold at 200 users) is \
         above the 819.2 MiB (858993459 bytes) allowed"
        ),
        "{}",
        f.message
    );
    assert_eq!(v.outcome, Outcome::Fail);
}

#[test]
fn a_kernel_peak_says_between_which_readings_it_happened() {
    let mut run = single(600 * MIB);
    let s = &mut run.containers[0];
    s.kernel_peak_usage = Some((950 * MIB, t(12, 5, 2)));
    s.kernel_peak_after = Some(t(12, 5, 1));
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert!(
        f.message
            .contains("was 950 MiB (between 12:05:01 and 12:05:02 (stage 4, hold at 200 users))"),
        "{}",
        f.message
    );
    // Across a stage boundary each end says where it lies.
    let s = &mut run.containers[0];
    s.kernel_peak_usage = Some((950 * MIB, t(12, 6, 1)));
    s.kernel_peak_after = Some(t(12, 5, 59));
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert!(
        f.message.contains(
            "(between 12:05:59 (stage 4, hold at 200 users) and 12:06:01 (after the load ended))"
        ),
        "{}",
        f.message
    );
}

#[test]
fn a_kernel_peak_above_the_allowed_peak_leaves_headroom_inconclusive_naming_both_bounds() {
    // Samples peak at 600 MiB; the kernel's usage peak, page cache included, reached 950 MiB
    // between two samples. The allowed 819.2 MiB lies between: neither a pass nor a fail.
    let mut run = single(600 * MIB);
    let s = &mut run.containers[0];
    s.kernel_peak_usage = Some((950 * MIB, t(12, 5, 2)));
    s.max_inactive_file = Some(30 * MIB);
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Inconclusive, "{}", f.message);
    assert_eq!(f.observed, Some((600 * MIB) as f64));
    assert_eq!(v.outcome, Outcome::Inconclusive);
    for part in [
        "app: peak 600 MiB at ",
        "is within the 819.2 MiB allowed (1 GiB limit, 20% headroom), but the kernel's peak \
         usage, page cache included, was 950 MiB (first seen at 12:05:02 (stage 4, hold at 200 \
         users))",
        "the working-set peak lies between 600 MiB and 950 MiB",
        "cannot tell whether the memory above the samples was page cache or the service's own",
        "samples saw up to 30 MiB of inactive page cache",
        "Sample faster (memory.interval)",
    ] {
        assert!(f.message.contains(part), "{part:?} in {}", f.message);
    }

    // The least cache seen is no excuse: judging 950 − 30 MiB would hide (or invent) a spike.
    run.containers[0].max_inactive_file = Some(900 * MIB);
    let v = evaluate(&Policy::default(), &run);
    assert_eq!(
        only(&v.findings, Rule::Headroom, "app").severity,
        Severity::Inconclusive
    );
}

#[test]
fn a_kernel_peak_within_the_allowed_peak_passes_and_a_sampled_peak_above_it_fails() {
    let mut run = single(600 * MIB);
    run.containers[0].kernel_peak_usage = Some((800 * MIB, t(12, 5, 2)));
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    assert!(
        f.message.contains(
            "; the kernel's peak usage, page cache included, was 800 MiB and is within it too"
        ),
        "{}",
        f.message
    );

    let mut run = single(820 * MIB);
    run.containers[0].kernel_peak_usage = Some((1000 * MIB, t(12, 5, 2)));
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Fail, "{}", f.message);
    assert_eq!(f.observed, Some((820 * MIB) as f64));

    // A kernel peak with no sample at all is no data, never a judged peak.
    let mut run = single(600 * MIB);
    run.containers[0].samples.clear();
    run.containers[0].kernel_peak_usage = Some((100 * MIB, t(12, 5, 2)));
    let v = evaluate(&Policy::default(), &run);
    assert_eq!(
        only(&v.findings, Rule::Headroom, "app").severity,
        Severity::Inconclusive
    );
}

#[test]
fn several_pods_name_the_pod_that_peaked() {
    let mut run = healthy_run();
    spike(&mut run.containers[0], t(12, 2, 0), 900 * MIB);
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        f.message.starts_with(
            "app (pod web-7d9f-a1b2c): peak 900 MiB at 12:02:00 (stage 2, hold at 100 users)"
        ),
        "{}",
        f.message
    );
    assert_eq!(
        only(&v.findings, Rule::Headroom, "sidecar").severity,
        Severity::Pass
    );
}

#[test]
fn differing_limits_judge_each_pod_against_its_own_and_name_it() {
    let mut run = healthy_run();
    run.containers[0].limit = Some(512 * MIB); // pod a1b2c, mid-rollout, 480 MiB flat
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    // 480 MiB > 512 MiB × 0.8; the other pod's 610 MiB is within its 1 GiB × 0.8.
    assert_eq!(f.severity, Severity::Fail);
    assert_eq!(f.threshold, Some(allowed_peak(512 * MIB, 0.2) as f64));
    assert_eq!(f.pod.as_deref(), Some("web-7d9f-a1b2c"));
    assert!(
        f.message
            .starts_with("app (pod web-7d9f-a1b2c, limit 512 MiB): peak 480 MiB at 12:00:00"),
        "{}",
        f.message
    );
    assert!(
        f.message
            .contains("allowed by its own 512 MiB limit with 20% headroom")
            && f.message.ends_with(
                "; pod limits differ (512 MiB to 1 GiB), each pod judged against its own"
            ),
        "{}",
        f.message
    );
}

#[test]
fn a_pod_with_a_larger_limit_is_not_failed_by_a_smaller_limit_elsewhere() {
    // Pod a1b2c has the smaller limit and a low peak; x2k4p peaks at 610 MiB under 1 GiB.
    let mut run = healthy_run();
    run.containers[0].limit = Some(512 * MIB);
    run.containers[0].samples = flat_samples(300 * MIB);
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    // The pod closest to its own allowed peak speaks: 610/819.2 > 300/409.6.
    assert_eq!(f.pod.as_deref(), Some("web-7d9f-x2k4p"));
    assert!(
        f.message.contains("(pod web-7d9f-x2k4p, limit 1 GiB)")
            && f.message.contains("the closest of its pods to its limit"),
        "{}",
        f.message
    );
    // And several pods above their own limits are all named.
    run.containers[0].samples = flat_samples(460 * MIB);
    spike(&mut run.containers[2], t(12, 4, 30), 900 * MIB);
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "app");
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        f.message.contains(
            "; also above their own allowed peak: web-7d9f-x2k4p (900 MiB of the 819.2 MiB its \
             1 GiB limit allows)"
        ) && f
            .message
            .starts_with("app (pod web-7d9f-a1b2c, limit 512 MiB): peak 460 MiB"),
        "{}",
        f.message
    );
}

#[test]
fn no_limit_fails_or_warns_and_skips_headroom() {
    let mut run = healthy_run();
    run.containers[1].limit = None;
    run.containers[3].limit = None;
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::NoLimit, "sidecar");
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        f.message.contains("set resources.limits.memory"),
        "{}",
        f.message
    );
    assert!(f
        .message
        .starts_with("sidecar: no memory limit is set; it peaked at 40 MiB"));
    assert!(!v
        .findings
        .iter()
        .any(|f| f.rule == Rule::Headroom && f.container.as_deref() == Some("sidecar")));
    assert_eq!(v.outcome, Outcome::Fail);

    let lenient = Policy {
        require_limit: false,
        ..Policy::default()
    };
    let v = evaluate(&lenient, &run);
    assert_eq!(
        only(&v.findings, Rule::NoLimit, "sidecar").severity,
        Severity::Warn
    );
    assert_eq!(v.outcome, Outcome::Pass);
}

#[test]
fn a_pod_without_limit_among_limited_ones_is_named() {
    let mut run = healthy_run();
    run.containers[2].limit = None;
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::NoLimit, "app");
    assert_eq!(f.severity, Severity::Fail);
    assert_eq!(f.pod.as_deref(), Some("web-7d9f-x2k4p"));
    assert!(f
        .message
        .starts_with("app: pod web-7d9f-x2k4p has no memory limit while"));
    // Headroom is still judged against the limit the other pod declares.
    assert_eq!(
        only(&v.findings, Rule::Headroom, "app").severity,
        Severity::Pass
    );
}

#[test]
fn a_limited_container_without_data_is_inconclusive_not_passed() {
    let mut run = healthy_run();
    run.containers[1].samples.clear();
    run.containers[3].samples.clear();
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Headroom, "sidecar");
    assert_eq!(f.severity, Severity::Inconclusive);
    assert_eq!(v.outcome, Outcome::Inconclusive);
}

#[test]
fn an_oom_kill_fails_with_pod_time_exit_code_and_limit() {
    let mut run = local_run();
    run.restarts = vec![restart(
        "local",
        "app",
        t(12, 2, 10),
        RestartReason::OomKilled,
    )];
    let v = evaluate(&Policy::default(), &run);
    assert_eq!(v.outcome, Outcome::Fail);
    let f = only(&v.findings, Rule::OomKilled, "app");
    assert_eq!(
        f.message,
        "app (pod local): OOM-killed by the kernel at 12:02:10 (stage 2, hold at 100 users), \
         exit code 137; the highest working set measured in this pod was 100 MiB at 12:00:00 \
         (39.1% of its 256 MiB limit): the rise to the limit came between two samples"
    );
    // The measured working set is the finding's observed number, the limit its threshold.
    assert_eq!(f.observed, Some((100 * MIB) as f64));
    assert_eq!(f.threshold, Some((256 * MIB) as f64));
    assert_eq!(f.at, Some(t(12, 2, 10)));
    let r = only(&v.findings, Rule::Restarted, "app");
    assert_eq!(r.severity, Severity::Pass);
    assert_eq!(r.message, "app: no restart besides the OOM kill");
}

#[test]
fn no_oom_kill_and_no_restart_pass_per_container() {
    let v = evaluate(&Policy::default(), &local_run());
    assert_eq!(
        only(&v.findings, Rule::OomKilled, "app").message,
        "app: no OOM kill during the run"
    );
    assert_eq!(
        only(&v.findings, Rule::Restarted, "app").severity,
        Severity::Pass
    );
}

#[test]
fn other_restarts_fail_or_warn_by_policy() {
    let mut run = healthy_run();
    run.restarts = vec![restart(
        "web-7d9f-a1b2c",
        "sidecar",
        t(12, 3, 30),
        RestartReason::Other("Error".into()),
    )];
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::Restarted, "sidecar");
    assert_eq!(f.severity, Severity::Fail);
    assert!(f
        .message
        .starts_with("sidecar (pod web-7d9f-a1b2c): restarted at 12:03:30 (stage 3, ramp 100→200 users) with reason Error, exit code 1"));
    assert_eq!(v.outcome, Outcome::Fail);
    let lenient = Policy {
        fail_on_restart: false,
        ..Policy::default()
    };
    let v = evaluate(&lenient, &run);
    assert_eq!(
        only(&v.findings, Rule::Restarted, "sidecar").severity,
        Severity::Warn
    );
    assert_eq!(v.outcome, Outcome::Pass);
}

#[test]
fn a_restart_of_an_unmeasured_container_is_still_judged() {
    let mut run = local_run();
    run.restarts = vec![restart(
        "local",
        "init",
        t(12, 0, 30),
        RestartReason::OomKilled,
    )];
    let v = evaluate(&Policy::default(), &run);
    let f = only(&v.findings, Rule::OomKilled, "init");
    assert_eq!(f.severity, Severity::Fail);
    assert!(f
        .message
        .ends_with("it was not measured, so its limit is unknown"));
}

#[test]
fn restarts_a_run_could_not_see_are_inconclusive_never_a_pass() {
    use crate::model::{OOMS_UNSEEN_NOTE, RESTARTS_UNSEEN_NOTE};
    // Neither exporter in Prometheus: both rules could not be evaluated.
    let mut run = single(500 * MIB);
    run.notes.push(format!("{OOMS_UNSEEN_NOTE}: no series"));
    let v = evaluate(&Policy::default(), &run);
    assert_eq!(v.outcome, Outcome::Inconclusive, "{:#?}", v.findings);
    let f = only(&v.findings, Rule::OomKilled, "app");
    assert_eq!(f.severity, Severity::Inconclusive);
    assert!(f.message.contains(OOMS_UNSEEN_NOTE), "{}", f.message);
    // cAdvisor only: OOM kills seen, other restarts not: `restarted` is not judged (skipped,
    // saying why), never a pass.
    let mut run = single(500 * MIB);
    run.notes
        .push(format!("{RESTARTS_UNSEEN_NOTE}: no kube-state-metrics"));
    let v = evaluate(&Policy::default(), &run);
    assert_eq!(
        only(&v.findings, Rule::OomKilled, "app").severity,
        Severity::Pass
    );
    let f = only(&v.findings, Rule::Restarted, "app");
    assert_eq!(f.severity, Severity::Skipped);
    assert!(f.message.contains(RESTARTS_UNSEEN_NOTE), "{}", f.message);
    assert_eq!(v.outcome, Outcome::Pass);
    // Control: the same run with nothing unseen passes.
    let v = evaluate(&Policy::default(), &single(500 * MIB));
    assert_eq!(v.outcome, Outcome::Pass);
}

//! Per-request growth in a 20-second run shaped like `oomgate demo` (ramp to 10 users, hold,
//! ramp to 20, hold; 200 and 400 requests a second): memory kept per request is caught across
//! both holds, a staircase that follows the users is not, a slow rise inside the noise is told
//! apart, and the per-stage counts stand in for a missing live timeline.

use super::*;
use crate::analysis::testdata::{noise, run_with};
use crate::analysis::MIB;
use crate::judge::fixtures::{t, window};
use crate::model::{ContainerSeries, RequestMark, Sample, StageLoad};
use std::time::Duration;

const KIB: f64 = 1024.0;

fn at(ms: i64) -> Timestamp {
    t(12, 0, 0) + chrono::Duration::milliseconds(ms)
}

/// Requests done by `ms`: 100/s average through the first ramp, 200/s in the first hold, 300/s
/// through the second ramp, 400/s in the second hold.
fn done(ms: i64) -> f64 {
    let s = ms as f64 / 1000.0;
    let phases = [(4.0, 100.0), (6.0, 200.0), (4.0, 300.0), (6.0, 400.0)];
    let (mut total, mut start) = (0.0, 0.0);
    for (len, rate) in phases {
        let end = start + len;
        total += rate * (s.min(end) - start).max(0.0);
        start = end;
    }
    total
}

/// The demo's plan with one container sampled every 250 ms; `bytes(ms, requests, users)`.
fn run(bytes: impl Fn(i64, f64, f64) -> f64, live: bool) -> Run {
    let stages = vec![
        window(0, 0, 10, at(0), at(4_000)),
        window(1, 10, 10, at(4_000), at(10_000)),
        window(2, 10, 20, at(10_000), at(14_000)),
        window(3, 20, 20, at(14_000), at(20_000)),
    ];
    let users = |ms: i64| match ms {
        ..4_000 => 10.0 * ms as f64 / 4_000.0,
        4_000..10_000 => 10.0,
        10_000..14_000 => 10.0 + 10.0 * (ms - 10_000) as f64 / 4_000.0,
        _ => 20.0,
    };
    let mut s = ContainerSeries::new("local", "demo");
    s.limit = Some(256 << 20);
    s.samples = (0..=80)
        .map(|i| {
            let ms = i * 250;
            Sample {
                at: at(ms),
                working_set: bytes(ms, done(ms), users(ms)).max(0.0) as u64,
            }
        })
        .collect();
    let mut run = run_with(stages, vec![s]);
    run.load.timeline = if live {
        (0..=80)
            .map(|i| RequestMark {
                at: at(i * 250),
                requests: done(i * 250) as u64,
            })
            .collect()
    } else {
        Vec::new()
    };
    run.load.per_stage = [400.0, 1200.0, 1200.0, 2400.0]
        .iter()
        .enumerate()
        .map(|(index, &r)| StageLoad {
            index,
            requests: r as u64,
            ..StageLoad::default()
        })
        .collect();
    run
}

fn trend(run: &Run) -> RequestTrend {
    let mut all = request_trends(run, &LeakRule::default());
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[test]
fn memory_kept_per_request_is_caught_across_both_short_holds() {
    // 48 MiB, a staircase of 1 MiB per user, 8 KiB kept per request, ±0.2 MiB of noise.
    let r = run(
        |ms, req, users| 48.0 * MIB + users * MIB + req * 8.0 * KIB + 0.2 * MIB * noise(ms as u64),
        true,
    );
    let tr = trend(&r);
    assert!((tr.slope - 8.0 * KIB).abs() < 0.5 * KIB, "{tr:#?}");
    assert!(tr.is_growing(), "{tr:#?}");
    assert_eq!(tr.holds.len(), 2);
    assert!((tr.rps - 400.0).abs() < 1.0, "{}", tr.rps);
    // 8 KiB × 400/s = 3.1 MiB/s: the 204.8 MiB allowed is minutes away, not hours.
    let minutes = tr.minutes_to((256.0 * 0.8 * MIB) as u64).unwrap();
    assert!(minutes > 0.1 && minutes < 2.0, "{minutes}");
}

#[test]
fn a_staircase_that_follows_the_users_is_no_growth_per_request() {
    let r = run(
        |ms, _, users| 48.0 * MIB + users * 3.0 * MIB + 0.3 * MIB * noise(ms as u64),
        true,
    );
    let tr = trend(&r);
    assert!(!tr.is_growing(), "{tr:#?}");
    assert!(!tr.rises_within_noise(), "{tr:#?}");
    // The slowest trend these 9.6 s of holds could show is stated, and it is steep.
    assert!(
        tr.detectable_per_min() >= 12.0 * MIB,
        "{}",
        tr.detectable_per_min()
    );
}

#[test]
fn a_slow_rise_inside_the_noise_is_told_apart_with_the_hold_it_needs() {
    // 0.5 KiB per request: about 1.7 MiB over the judged requests, under the 2 MiB floor.
    let r = run(
        |ms, req, _| 64.0 * MIB + req * 0.5 * KIB + 0.05 * MIB * noise(ms as u64),
        true,
    );
    let tr = trend(&r);
    assert!(!tr.is_growing(), "{tr:#?}");
    assert!(tr.rises_within_noise(), "{tr:#?}");
    let needed = tr.hold_needed(0.2).unwrap();
    assert!(needed > 6.0 && needed < 60.0, "{needed}");
}

#[test]
fn per_stage_counts_stand_in_for_a_missing_live_timeline() {
    let bytes = |ms: i64, req: f64, _| 48.0 * MIB + req * 8.0 * KIB + 0.1 * MIB * noise(ms as u64);
    let live = trend(&run(bytes, true));
    let spread = trend(&run(bytes, false));
    assert!(
        (live.slope - spread.slope).abs() < 0.05 * live.slope,
        "{live:?} {spread:?}"
    );
    let mut none = run(bytes, false);
    none.load.per_stage.clear();
    assert!(requests_at(&none, at(5_000)).is_none());
    assert!(request_trends(&none, &LeakRule::default()).is_empty());
}

#[test]
fn requests_are_interpolated_between_marks_and_clamped_outside() {
    let r = run(|_, _, _| 0.0, true);
    assert_eq!(requests_at(&r, at(5_000)), Some(done(5_000)));
    assert!((requests_at(&r, at(5_100)).unwrap() - done(5_100)).abs() < 1.0);
    assert_eq!(requests_at(&r, at(-1_000)), Some(0.0));
    assert_eq!(requests_at(&r, at(60_000)), Some(done(20_000)));
    let spread = run(|_, _, _| 0.0, false);
    assert_eq!(requests_at(&spread, at(7_000)), Some(400.0 + 600.0));
}

#[test]
fn a_short_flat_run_is_passed_only_when_it_could_have_seen_a_leak_that_matters() {
    use crate::judge::evaluate;
    use crate::model::{Policy, Rule, Severity};
    let r = run(
        |ms, _, users| 48.0 * MIB + users * 3.0 * MIB + 0.3 * MIB * noise(ms as u64),
        true,
    );
    let leak = |policy: &Policy| {
        evaluate(policy, &r)
            .findings
            .into_iter()
            .find(|f| f.rule == Rule::Leak)
            .unwrap()
    };
    // 9.6 s of holds show growth of 12 MiB/min or more; slower growth could still reach the
    // 204.8 MiB allowed within the default 1 h horizon: not judged, never a pass.
    let f = leak(&Policy::default());
    assert_eq!(f.severity, Severity::Skipped, "{}", f.message);
    assert!(
        f.message
            .contains("not judged: no growth per request above the noise")
            && f.message.contains("hold the load for "),
        "{}",
        f.message
    );
    // Within a 5-minute horizon no growth too slow to show could get there: a pass that says
    // how slow a trend it could see.
    let mut short = Policy::default();
    short.leak.horizon = Duration::from_secs(300);
    let f = leak(&short);
    assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    assert!(
        f.message.contains("holds this short show growth of"),
        "{}",
        f.message
    );
    // No limit: nothing to project slower growth to, so a short flat run is not judged.
    let mut unlimited = r.clone();
    unlimited.containers[0].limit = None;
    let f = evaluate(&short, &unlimited)
        .findings
        .into_iter()
        .find(|f| f.rule == Rule::Leak)
        .unwrap();
    assert_eq!(f.severity, Severity::Skipped, "{}", f.message);
    assert!(
        f.message.contains("no memory limit to project"),
        "{}",
        f.message
    );
}

#[test]
fn memory_kept_per_request_follows_the_requests_and_capacity_is_not_judged_on_users() {
    use crate::analysis::capacity::{capacity, Follows};
    use crate::model::{Policy, Rule, Severity};
    let policy = Policy {
        expected_peak_users: Some(40),
        ..Policy::default()
    };
    let capacity_of = |r: &Run| {
        let trends = request_trends(r, &policy.leak);
        let model = capacity(r, policy.leak.settle).remove(0);
        let follows = model.follows(steepest_growing(&trends, "demo"));
        let verdict = crate::judge::evaluate(&policy, r);
        let f = verdict
            .findings
            .iter()
            .find(|f| f.rule == Rule::Capacity)
            .cloned()
            .expect("a capacity finding");
        (follows, f)
    };
    // 8 KiB kept per request on top of the users' staircase: "per request", capacity skipped.
    let leaking = run(
        |ms, req, users| 48.0 * MIB + users * MIB + req * 8.0 * KIB + 0.2 * MIB * noise(ms as u64),
        true,
    );
    let (follows, f) = capacity_of(&leaking);
    assert!(
        matches!(follows, Some(Follows::Requests { per_request }) if (per_request - 8.0 * KIB).abs() < KIB),
        "{follows:?}"
    );
    assert_eq!(f.severity, Severity::Skipped, "{f:?}");
    assert!(f.message.contains("per request served"), "{}", f.message);
    // Control: the same staircase with nothing kept per request follows the users, and the
    // capacity rule judges it (20 users at 3 MiB each → about 108 MiB at 40 users).
    let staircase = run(
        |ms, _, users| 48.0 * MIB + users * 3.0 * MIB + 0.3 * MIB * noise(ms as u64),
        true,
    );
    let (follows, f) = capacity_of(&staircase);
    assert_eq!(
        follows,
        Some(Follows::Users { r_squared: None }),
        "{follows:?}"
    );
    assert_eq!(f.severity, Severity::Pass, "{f:?}");
}

//! The `leak` findings for synthetic series: a leak that reaches the allowed peak within the
//! horizon fails, a slower one or one without a limit warns, flat memory passes, and runs that
//! cannot be judged say why.

use super::*;
use crate::analysis::testdata::*;
use crate::judge::fixtures::{healthy_run, local_run};
use crate::model::{LeakRule, Policy};

fn leak_run(limit: Option<u64>) -> Run {
    // 2 MiB/min from 100 MiB with ±1 MiB of noise, sampled every second.
    run_of(vec![sampled("web-1", "app", limit, 360, 1, |s| {
        100.0 + 2.0 * s / 60.0 + noise(s as u64)
    })])
}

fn one(policy: &Policy, run: &Run) -> Finding {
    let mut found = check(policy, run);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[test]
fn a_leak_reaching_the_allowed_peak_within_the_horizon_fails() {
    let f = one(&Policy::default(), &leak_run(Some(256 * MIB)));
    assert_eq!(f.severity, Severity::Fail, "{}", f.message);
    // About 112 MiB at 12:06:00; 204.8 MiB is ~46 min away at 2 MiB/min.
    assert_eq!(
        f.message,
        "app (pod web-1): working set grows 1.9 MiB/min through stage 4 (hold at 200 users) and \
         would reach the 204.8 MiB allowed (256 MiB limit, 20% headroom) 50 min after the hold \
         ended at 12:06:00; 1 other pod or hold grows too: take two heap profiles a few minutes \
         apart under this load and fix what keeps growing"
    );
    assert_eq!(f.container.as_deref(), Some("app"));
    assert_eq!(f.pod.as_deref(), Some("web-1"));
    assert_eq!(f.at, Some(crate::judge::fixtures::t(12, 6, 0)));
    let rate = f.observed.unwrap() / MIB as f64;
    assert!((rate - 2.0).abs() < 0.2, "{rate}");
    // 92.8 MiB to go in 60 min: about 1.55 MiB/min would reach it exactly at the horizon.
    let threshold = f.threshold.unwrap() / MIB as f64;
    assert!((threshold - 1.55).abs() < 0.1, "{threshold}");
}

#[test]
fn a_slower_leak_warns() {
    let f = one(&Policy::default(), &leak_run(Some(GIB)));
    assert_eq!(f.severity, Severity::Warn, "{}", f.message);
    assert!(
        f.message.contains(
            "and would reach the 819.2 MiB allowed (1 GiB limit, 20% headroom) 6.3 h after the \
             hold ended at 12:06:00, beyond the 1h horizon"
        ),
        "{}",
        f.message
    );
    assert!(f
        .message
        .ends_with(": hold the load longer to see whether it levels off"));
    // A longer horizon turns it into a failure.
    let patient = Policy {
        leak: LeakRule {
            horizon: std::time::Duration::from_secs(8 * 3600),
            ..LeakRule::default()
        },
        ..Policy::default()
    };
    assert_eq!(one(&patient, &leak_run(Some(GIB))).severity, Severity::Fail);
}

#[test]
fn a_leak_without_a_limit_warns() {
    let f = one(&Policy::default(), &leak_run(None));
    assert_eq!(f.severity, Severity::Warn);
    assert!(
        f.message.contains("and no memory limit bounds it"),
        "{}",
        f.message
    );
    assert_eq!(f.threshold, None);
}

#[test]
fn a_healthy_run_passes_with_its_largest_trend() {
    let found = check(&Policy::default(), &healthy_run());
    assert_eq!(found.len(), 2);
    for f in &found {
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    }
    assert_eq!(
        found[0].message,
        "app: no growth through 2 holds (largest trend 0 B/min in stage 4, hold at 200 users, \
         within the noise)"
    );
}

#[test]
fn a_sawtooth_and_a_staircase_pass() {
    let stages = crate::judge::fixtures::four_stages();
    let users = stages.clone();
    let run = run_of(vec![
        sampled("web-1", "app", Some(256 * MIB), 360, 1, |s| {
            100.0 + 3.0 * (s % 20.0) + 0.5 * noise(s as u64)
        }),
        sampled("web-1", "worker", Some(256 * MIB), 360, 1, move |s| {
            50.0 + 0.5 * users_at(&users, (s - 5.0).max(0.0)) + noise(s as u64)
        }),
    ]);
    for f in check(&Policy::default(), &run) {
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    }
}

#[test]
fn runs_that_cannot_be_judged_say_why() {
    let strict = Policy {
        leak: LeakRule {
            min_hold: std::time::Duration::from_secs(300),
            ..LeakRule::default()
        },
        ..Policy::default()
    };
    let f = one(&strict, &local_run());
    assert_eq!(f.severity, Severity::Skipped);
    assert_eq!(
        crate::judge::evaluate(&strict, &local_run()).outcome,
        crate::model::Outcome::Pass
    );
    assert_eq!(
        f.message,
        "app: not judged: no hold long enough to judge a trend (≥ 5m)"
    );
    let sparse = run_of(vec![sampled("web-1", "app", Some(GIB), 360, 30, |_| 100.0)]);
    let f = one(&Policy::default(), &sparse);
    assert_eq!(f.severity, Severity::Skipped);
    assert_eq!(
        f.message,
        "app: not judged: too few samples in the holds to judge a trend (needs 5 per hold after the 20% \
         settle time; sampling every 5s)"
    );
}

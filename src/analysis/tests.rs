//! The shared helpers: quantiles, robust spread, settle windows.

use super::*;
use crate::judge::fixtures::{t, window};

#[test]
fn quantiles_interpolate() {
    let mut v = vec![4.0, 1.0, 3.0, 2.0];
    assert_eq!(median(&mut v), Some(2.5));
    assert_eq!(quantile(&mut v, 0.0), Some(1.0));
    assert_eq!(quantile(&mut v, 1.0), Some(4.0));
    assert_eq!(quantile(&mut v, 0.25), Some(1.75));
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [7.0]), Some(7.0));
}

#[test]
fn robust_sd_ignores_outliers() {
    let v = [1.0, 2.0, 3.0, 4.0, 5.0, 1000.0];
    assert!((robust_sd(&v) - 1.4826 * 1.5).abs() < 1e-9);
    assert_eq!(robust_sd(&[]), 0.0);
}

#[test]
fn settle_skips_a_share_of_the_stage() {
    let w = window(1, 100, 100, t(12, 1, 0), t(12, 3, 0));
    assert_eq!(settled(&w, 0.2), (t(12, 1, 24), t(12, 3, 0)));
    assert_eq!(settled(&w, 0.0), (t(12, 1, 0), t(12, 3, 0)));
    assert_eq!(holds(&crate::judge::fixtures::four_stages()).count(), 2);
}

/// The scenario's `policy` keys for these rules.
mod scenario_policy {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::{parse, Overrides, Scenario, ScenarioError};

    fn scenario(policy: &str) -> Result<Scenario, ScenarioError> {
        let text = format!(
            "name: x\ntarget: {{ url: \"http://127.0.0.1:1\" }}\nload:\n  stages: [{{ duration: \
             1s, users: 1 }}]\n  requests: [{{ path: / }}]\nworkload: {{ local: {{ command: [a], \
             limit: 1Gi }} }}\npolicy:\n{policy}"
        );
        parse(Path::new("s.yaml"), &text, &Overrides::default(), |_| None)
    }

    #[test]
    fn defaults_apply_without_the_keys() {
        let p = scenario("  headroom: 20%\n").unwrap().policy;
        assert_eq!(p.leak.min_hold, Duration::from_secs(60));
        assert_eq!(p.leak.settle, 0.2);
        assert_eq!(p.leak.horizon, Duration::from_secs(3600));
        assert_eq!(p.expected_peak_users, None);
        assert_eq!(p.max_growth, 0.10);
    }

    #[test]
    fn reads_leak_capacity_and_regression_settings() {
        let p = scenario(
            "  leak: { min_hold: 90s, settle: 25%, horizon: 2h }\n  expected_peak_users: 400\n  \
             regression: { max_growth: 15% }\n",
        )
        .unwrap()
        .policy;
        assert_eq!(p.leak.min_hold, Duration::from_secs(90));
        assert_eq!(p.leak.settle, 0.25);
        assert_eq!(p.leak.horizon, Duration::from_secs(7200));
        assert_eq!(p.expected_peak_users, Some(400));
        assert_eq!(p.max_growth, 0.15);
    }

    #[test]
    fn rejects_bad_values_where_they_are_written() {
        let e = |policy: &str| scenario(policy).expect_err("rejected").to_string();
        assert!(
            e("  leak: { horizon: 0s }\n").starts_with("s.yaml:8:20: policy.leak.horizon: "),
            "{}",
            e("  leak: { horizon: 0s }\n")
        );
        assert!(e("  leak: { min_hold: 60 }\n").contains("add a unit"));
        assert!(e("  leak: { window: 60s }\n").contains("policy.leak.window: unknown key `window`"));
        assert!(e("  expected_peak_users: 0\n").contains("policy.expected_peak_users"));
        assert!(e("  regression: { max_growth: 10 }\n").contains("policy.regression.max_growth"));
        assert!(e("  leak: { settle: 100% }\n").contains("policy.leak.settle"));
    }
}

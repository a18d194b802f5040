//! The `capacity` rule, only with `policy.expected_peak_users`: per container name, the
//! users→memory line `analysis::capacity` fits through the holds predicts the working set at the
//! expected load. Above the allowed peak fails; within it but with the band's upper end above
//! warns; fewer than two load levels, or a load beyond 4× the highest hold, warns that the run
//! cannot tell. Every finding shows the fit, so the numbers can be checked.

use super::finding;
use crate::analysis::capacity::{capacity, CapacityModel, Follows, MAX_EXTRAPOLATION};
use crate::analysis::recommend::suggested_limit;
use crate::analysis::request_leak::{request_trends, steepest_growing};
use crate::model::{allowed_peak, group_containers};
use crate::model::{Finding, Policy, Rule, Run, Severity};
use crate::units::{format_bytes, format_bytes_exact_quantity, format_percent};

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let groups = group_containers(run);
    let Some(expected) = policy.expected_peak_users else {
        return groups
            .iter()
            .map(|g| {
                let mut f = finding(
                    Rule::Capacity,
                    Severity::Skipped,
                    format!(
                        "{}: not judged: no expected_peak_users (set policy.expected_peak_users \
                         to predict memory at the load production sees)",
                        g.name
                    ),
                );
                f.container = Some(g.name.to_string());
                f
            })
            .collect();
    };
    let trends = request_trends(run, &policy.leak);
    capacity(run, policy.leak.settle)
        .iter()
        .map(|model| {
            let limit = groups
                .iter()
                .find(|g| g.name == model.container)
                .and_then(|g| g.limit());
            let follows = model.follows(steepest_growing(&trends, &model.container));
            let mut f = match follows {
                Some(Follows::Requests { per_request }) => finding(
                    Rule::Capacity,
                    Severity::Skipped,
                    format!(
                        "{}: not judged: the working set grows {} per request served (see the leak \
                         finding), not with the users, so a users→memory line cannot predict \
                         {expected} users: fix the growth and run again",
                        model.container,
                        crate::units::format_bytes_f(per_request)
                    ),
                ),
                _ => judge(policy, model, expected, limit),
            };
            f.container = Some(model.container.clone());
            f
        })
        .collect()
}

fn judge(policy: &Policy, model: &CapacityModel, expected: u32, limit: Option<u64>) -> Finding {
    let name = &model.container;
    let Some(fit_text) = model.describe() else {
        let held = match model.distinct_users().as_slice() {
            [] => "this run has no hold with memory data".to_string(),
            [one] => format!("this run holds only at {one} users"),
            _ => "the holds gave no usable fit".to_string(),
        };
        return finding(
            Rule::Capacity,
            Severity::Warn,
            format!(
                "{name}: predicting memory at {expected} users needs holds at two load levels at \
                 least; {held}: add a hold at another load"
            ),
        );
    };
    let Some(prediction) = model.predict(expected) else {
        let top = model.max_users().unwrap_or(0);
        let needed = (f64::from(expected) / MAX_EXTRAPOLATION).ceil() as u64;
        return finding(
            Rule::Capacity,
            Severity::Warn,
            format!(
                "{name}: {fit_text}; {expected} expected users is more than {MAX_EXTRAPOLATION}× \
                 the highest hold ({top} users), too far to extrapolate: add a hold at {needed} \
                 users or more"
            ),
        );
    };
    let at = format!(
        "{fit_text}; at {expected} users about {} ± {}",
        format_bytes(prediction.bytes.round() as u64),
        format_bytes(prediction.band.round() as u64)
    );
    let mut f = match limit {
        None => finding(
            Rule::Capacity,
            Severity::Skipped,
            format!("{name}: not judged: {at}, with no memory limit to compare with"),
        ),
        Some(limit) => {
            let allowed = allowed_peak(limit, policy.headroom);
            let allowed_text = format_bytes(allowed);
            let mut f = if prediction.bytes > allowed as f64 {
                let needed = suggested_limit(prediction.upper().ceil() as u64, policy.headroom);
                finding(
                    Rule::Capacity,
                    Severity::Fail,
                    format!(
                        "{name}: {at}, above the {allowed_text} allowed by the {} limit with {} \
                         headroom: raise the limit to {} or cut the memory each user costs",
                        format_bytes(limit),
                        format_percent(policy.headroom),
                        format_bytes_exact_quantity(needed)
                    ),
                )
            } else if prediction.upper() > allowed as f64 {
                finding(
                    Rule::Capacity,
                    Severity::Warn,
                    format!(
                        "{name}: {at}, within the {allowed_text} allowed but the upper end {} is \
                         not: add a hold nearer {expected} users to narrow the estimate",
                        format_bytes(prediction.upper().round() as u64)
                    ),
                )
            } else {
                finding(
                    Rule::Capacity,
                    Severity::Pass,
                    format!("{name}: {at}, within the {allowed_text} allowed"),
                )
            };
            f.threshold = Some(allowed as f64);
            f
        }
    };
    f.observed = Some(prediction.bytes.round());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testdata::*;

    /// `app` at `base + per_user × users` MiB (±1 MiB) through 2-minute holds at `levels`.
    fn run(levels: &[u32], base: f64, per_user: f64, limit: Option<u64>) -> Run {
        let (stages, seconds) = holds_at(levels);
        let users = stages.clone();
        let series = sampled("web-1", "app", limit, seconds, 1, move |s| {
            base + per_user * users_at(&users, s) + noise(s as u64)
        });
        run_with(stages, vec![series])
    }

    fn one(policy: &Policy, run: &Run) -> Finding {
        let mut found = check(policy, run);
        assert_eq!(found.len(), 1, "{found:#?}");
        found.remove(0)
    }

    fn expecting(users: u32) -> Policy {
        Policy {
            expected_peak_users: Some(users),
            ..Policy::default()
        }
    }

    #[test]
    fn no_expected_load_is_not_judged() {
        let found = check(&Policy::default(), &run(&[50, 100], 50.0, 0.5, Some(GIB)));
        assert!(!found.is_empty());
        for f in &found {
            assert_eq!(f.severity, Severity::Skipped, "{f:?}");
            assert!(
                f.message.contains("not judged: no expected_peak_users"),
                "{f:?}"
            );
        }
    }

    #[test]
    fn a_prediction_within_the_allowed_peak_passes_and_shows_the_fit() {
        let f = one(&expecting(400), &run(&[50, 100, 200], 50.0, 0.5, Some(GIB)));
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
        assert!(
            f.message.starts_with(
                "app: 50 MiB + 0.5 MiB/user (3 holds at 50, 100, 200 users); at 400 users about \
                 249.7 MiB ± 4.1 MiB"
            ),
            "{}",
            f.message
        );
        assert!(
            f.message.ends_with(", within the 819.2 MiB allowed"),
            "{}",
            f.message
        );
        let observed = f.observed.unwrap();
        assert!((observed / (250.0 * MIB as f64) - 1.0).abs() < 0.05);
        assert_eq!(f.threshold, Some(858_993_459.0));
    }

    #[test]
    fn a_prediction_above_the_allowed_peak_fails_and_says_what_limit_would_do() {
        let f = one(&expecting(400), &run(&[100, 200], 100.0, 2.0, Some(GIB)));
        assert_eq!(f.severity, Severity::Fail, "{}", f.message);
        assert!(
            f.message.contains("at 400 users about 899.8 MiB ± 5.5 MiB"),
            "{}",
            f.message
        );
        assert!(
            f.message.ends_with(
                "above the 819.2 MiB allowed by the 1 GiB limit with 20% headroom: raise the \
                 limit to 1152Mi or cut the memory each user costs"
            ),
            "{}",
            f.message
        );
    }

    #[test]
    fn an_uncertain_prediction_near_the_allowed_peak_warns() {
        // 780 MiB predicted at 400 users, but the holds are noisy (±40 MiB).
        let (stages, seconds) = holds_at(&[100, 200]);
        let users = stages.clone();
        let series = sampled("web-1", "app", Some(GIB), seconds, 1, move |s| {
            380.0 + users_at(&users, s) + 40.0 * noise(s as u64)
        });
        let f = one(&expecting(400), &run_with(stages, vec![series]));
        assert_eq!(f.severity, Severity::Warn, "{}", f.message);
        assert!(f.message.contains("but the upper end"), "{}", f.message);
    }

    #[test]
    fn beyond_four_times_the_highest_hold_is_refused() {
        let f = one(&expecting(401), &run(&[50, 100], 50.0, 0.5, Some(GIB)));
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.ends_with("401 expected users is more than 4× the highest hold (100 users), too far to extrapolate: add a hold at 101 users or more"),
            "{}",
            f.message
        );
    }

    #[test]
    fn one_load_level_warns_that_two_are_needed() {
        let f = one(&expecting(400), &run(&[100], 50.0, 0.5, Some(GIB)));
        assert_eq!(f.severity, Severity::Warn);
        assert_eq!(
            f.message,
            "app: predicting memory at 400 users needs holds at two load levels at least; this \
             run holds only at 100 users: add a hold at another load"
        );
    }

    #[test]
    fn without_a_limit_the_prediction_is_only_shown() {
        let f = one(&expecting(400), &run(&[50, 100], 50.0, 0.5, None));
        assert_eq!(f.severity, Severity::Skipped);
        assert!(f
            .message
            .ends_with(", with no memory limit to compare with"));
        assert_eq!(f.threshold, None);
    }
}

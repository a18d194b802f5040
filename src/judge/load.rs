//! Load rules, run-wide: `latency` (p95 against `load.thresholds.p95`) and `error-rate`
//! (failures against `load.thresholds.error_rate`). Independently of any threshold, a run that
//! sent no request is inconclusive and a run whose every request failed fails: in both cases the
//! memory was not measured under the load the scenario describes. Without a threshold, a run
//! whose failures exceed [`DEFAULT_MAX_ERROR_RATE`] is inconclusive: the memory was measured
//! under a load that mostly never reached the service's real code path (error pages are cheap).
//! An explicit threshold keeps its meaning, whatever its value.

use super::finding;
use crate::model::{Finding, LoadStats, Policy, Rule, Run, Severity};
use crate::units::{format_ms, format_shares};

/// The share of failed requests above which, with no `load.thresholds.error_rate` set, the load
/// is not the intended load and the memory verdict cannot stand: 10 %.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.10;

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let load = &run.load;
    if load.requests == 0 && load.latency_measure == crate::model::LATENCY_UNKNOWN {
        return vec![finding(
            Rule::ErrorRate,
            Severity::Inconclusive,
            format!(
                "no request was counted: the {} load was stopped before it reported its \
                 numbers, so how much load reached the target is unknown",
                driver(load)
            ),
        )];
    }
    if load.requests == 0 {
        return vec![finding(
            Rule::ErrorRate,
            Severity::Inconclusive,
            format!(
                "no request was sent ({} driver): the load never reached the target, so memory \
                 was not measured under load",
                driver(load)
            ),
        )];
    }
    let mut out = Vec::new();
    out.extend(latency(policy, load));
    out.push(error_rate(policy, load));
    if load.tool_thresholds_failed {
        let message = match load.tool_exit_code {
            Some(110) => format!(
                "{} marked the test as failed (exit code 110: the script called \
                 exec.test.fail()): see why in its output",
                driver(load)
            ),
            _ => format!(
                "{} reported its own thresholds as failed (exit code 99): see the thresholds in its output",
                driver(load)
            ),
        };
        out.push(finding(Rule::ToolThresholds, Severity::Fail, message));
    }
    out
}

fn driver(load: &LoadStats) -> &str {
    if load.driver.is_empty() {
        "load"
    } else {
        &load.driver
    }
}

fn latency(policy: &Policy, load: &LoadStats) -> Option<Finding> {
    let max = policy.max_p95?.as_secs_f64() * 1000.0;
    if load.latency_measure == crate::model::LATENCY_UNKNOWN {
        // A configured threshold that could not be judged is never a pass.
        let mut f = finding(
            Rule::Latency,
            Severity::Inconclusive,
            format!(
                "the p95 latency threshold of {} could not be evaluated: the {} load was stopped \
                 before it reported latencies (only {} requests were counted)",
                format_ms(max),
                driver(load),
                load.requests
            ),
        );
        f.threshold = Some(max);
        return Some(f);
    }
    let measure = if load.latency_measure.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", load.latency_measure.trim())
    };
    let others = format!(
        "p50 {}, p99 {}",
        format_ms(load.p50_ms),
        format_ms(load.p99_ms)
    );
    let mut f = if load.p95_ms > max {
        finding(
            Rule::Latency,
            Severity::Fail,
            format!(
                "p95 latency{measure} {} is above the {} threshold ({others})",
                format_ms(load.p95_ms),
                format_ms(max)
            ),
        )
    } else {
        finding(
            Rule::Latency,
            Severity::Pass,
            format!(
                "p95 latency{measure} {} is within the {} threshold ({others})",
                format_ms(load.p95_ms),
                format_ms(max)
            ),
        )
    };
    f.observed = Some(load.p95_ms);
    f.threshold = Some(max);
    Some(f)
}

fn error_rate(policy: &Policy, load: &LoadStats) -> Finding {
    let rate = load.error_rate();
    let counts = format!("{} of {} requests failed", load.failures, load.requests);
    let mut f = if load.failures >= load.requests {
        finding(
            Rule::ErrorRate,
            Severity::Fail,
            format!(
                "all {} requests failed{}: the target is down or refusing them, so memory was \
                 not measured under real load",
                load.requests,
                status_summary(load)
            ),
        )
    } else {
        match policy.max_error_rate {
            Some(max) => {
                let (observed, threshold) = format_shares(rate, max);
                let (severity, relation) = if rate > max {
                    (Severity::Fail, "above")
                } else {
                    (Severity::Pass, "within")
                };
                finding(
                    Rule::ErrorRate,
                    severity,
                    format!(
                        "error rate {observed} ({counts}) is {relation} the {threshold} threshold"
                    ),
                )
            }
            None if rate > DEFAULT_MAX_ERROR_RATE => {
                let (observed, threshold) = format_shares(rate, DEFAULT_MAX_ERROR_RATE);
                finding(
                    Rule::ErrorRate,
                    Severity::Inconclusive,
                    format!(
                        "error rate {observed} ({counts}{}) is above the default {threshold}: \
                         memory was measured under a load that mostly did not reach the \
                         service's real code path; fix what fails, or set \
                         load.thresholds.error_rate if these failures are expected",
                        top_statuses(load)
                            .map(|t| format!("; {t}"))
                            .unwrap_or_default()
                    ),
                )
            }
            None => {
                let (observed, threshold) = format_shares(rate, DEFAULT_MAX_ERROR_RATE);
                finding(
                    Rule::ErrorRate,
                    Severity::Pass,
                    format!(
                        "error rate {observed} ({counts}) is within the default {threshold}; \
                         no error-rate threshold is set"
                    ),
                )
            }
        }
    };
    f.observed = Some(rate);
    f.threshold = Some(policy.max_error_rate.unwrap_or(DEFAULT_MAX_ERROR_RATE));
    f
}

/// " (status 503 ×1180, 502 ×20)": [`top_statuses`] in parentheses, or nothing when unknown.
fn status_summary(load: &LoadStats) -> String {
    top_statuses(load)
        .map(|t| format!(" ({t})"))
        .unwrap_or_default()
}

/// "status 503 ×1180, 502 ×20": the three most frequent status codes, when known; requests
/// without any answer as "no HTTP response ×1349".
fn top_statuses(load: &LoadStats) -> Option<String> {
    let mut codes: Vec<(u16, u64)> = load.status_codes.iter().map(|(&c, &n)| (c, n)).collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown: Vec<String> = codes
        .iter()
        .take(3)
        .filter(|(c, _)| *c != 0)
        .map(|(c, n)| format!("{c} ×{n}"))
        .collect();
    // Goose records a request that got no HTTP answer at all (connection refused, reset, timed
    // out) with status 0.
    let unanswered = codes
        .iter()
        .take(3)
        .find(|(c, _)| *c == 0)
        .map(|(_, n)| format!("no HTTP response ×{n}"));
    let parts: Vec<String> = (!shown.is_empty())
        .then(|| format!("status {}", shown.join(", ")))
        .into_iter()
        .chain(unanswered)
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn requests_without_any_answer_are_named_as_such() {
        let mut run = healthy_run();
        run.load.requests = 1349;
        run.load.failures = 1349;
        run.load.status_codes = BTreeMap::from([(0, 1349)]);
        let f = one(&run, &Policy::default(), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message
                .starts_with("all 1349 requests failed (no HTTP response ×1349):"),
            "{}",
            f.message
        );
    }
    use std::time::Duration;

    use super::super::fixtures::*;
    use super::*;
    use crate::judge::evaluate;
    use crate::model::Outcome;

    fn one(run: &Run, policy: &Policy, rule: Rule) -> Finding {
        let v = evaluate(policy, run);
        let f: Vec<&Finding> = v.findings.iter().filter(|f| f.rule == rule).collect();
        assert_eq!(f.len(), 1, "{rule}: {:#?}", v.findings);
        f[0].clone()
    }

    fn thresholds(p95_ms: u64, error_rate: f64) -> Policy {
        Policy {
            max_p95: Some(Duration::from_millis(p95_ms)),
            max_error_rate: Some(error_rate),
            ..Policy::default()
        }
    }

    #[test]
    fn p95_above_the_threshold_fails_and_names_the_measure() {
        let run = healthy_run(); // p95 120 ms
        let f = one(&run, &thresholds(100, 0.01), Rule::Latency);
        assert_eq!(f.severity, Severity::Fail);
        assert_eq!(
            f.message,
            "p95 latency (time to first byte) 120 ms is above the 100 ms threshold \
             (p50 18 ms, p99 340 ms)"
        );
        assert_eq!(f.observed, Some(120.0));
        assert_eq!(f.threshold, Some(100.0));
        assert_eq!(
            evaluate(&thresholds(100, 0.01), &run).outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn p95_equal_to_the_threshold_passes() {
        let f = one(&healthy_run(), &thresholds(120, 0.01), Rule::Latency);
        assert_eq!(f.severity, Severity::Pass);
    }

    #[test]
    fn no_latency_finding_without_a_threshold() {
        let v = evaluate(&Policy::default(), &healthy_run());
        assert!(!v.findings.iter().any(|f| f.rule == Rule::Latency));
    }

    #[test]
    fn error_rate_above_the_threshold_fails() {
        let mut run = healthy_run();
        run.load.failures = 300; // 2.5 %
        let f = one(&run, &thresholds(500, 0.01), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message.starts_with(
                "error rate 2.5% (300 of 12000 requests failed) is above the 1% threshold"
            ),
            "{}",
            f.message
        );
        assert_eq!(f.observed, Some(0.025));
        assert_eq!(f.threshold, Some(0.01));
    }

    #[test]
    fn error_rate_at_the_threshold_passes() {
        let mut run = healthy_run();
        run.load.requests = 1000;
        run.load.failures = 10;
        let f = one(&run, &thresholds(500, 0.01), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Pass);
        run.load.failures = 11;
        let f = one(&run, &thresholds(500, 0.01), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Fail);
    }

    #[test]
    fn all_requests_failing_fails_without_any_threshold() {
        let mut run = healthy_run();
        run.load.failures = run.load.requests;
        run.load.status_codes = BTreeMap::from([(503, 11_000), (502, 1_000)]);
        let f = one(&run, &Policy::default(), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Fail);
        assert_eq!(
            f.message,
            "all 12000 requests failed (status 503 ×11000, 502 ×1000): the target is down or \
             refusing them, so memory was not measured under real load"
        );
        assert_eq!(evaluate(&Policy::default(), &run).outcome, Outcome::Fail);
    }

    #[test]
    fn no_request_sent_is_inconclusive() {
        let mut run = healthy_run();
        run.load = LoadStats {
            driver: "k6".into(),
            ..LoadStats::default()
        };
        let policy = thresholds(500, 0.01);
        let v = evaluate(&policy, &run);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        let f = one(&run, &policy, Rule::ErrorRate);
        assert!(f.message.starts_with("no request was sent (k6 driver)"));
        assert!(!v.findings.iter().any(|f| f.rule == Rule::Latency));
    }

    #[test]
    fn without_a_threshold_a_low_error_rate_passes_against_the_default() {
        let f = one(&healthy_run(), &Policy::default(), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Pass);
        assert!(
            f.message
                .ends_with("is within the default 10%; no error-rate threshold is set"),
            "{}",
            f.message
        );
        assert_eq!(f.threshold, Some(DEFAULT_MAX_ERROR_RATE));
    }

    #[test]
    fn without_a_threshold_a_mostly_failing_load_is_inconclusive_naming_share_and_statuses() {
        let mut run = healthy_run(); // 12000 requests
        run.load.failures = 4_800; // 40 %
        run.load.status_codes = BTreeMap::from([(200, 7_200), (503, 4_000), (0, 800)]);
        let f = one(&run, &Policy::default(), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Inconclusive);
        assert_eq!(
            f.message,
            "error rate 40% (4800 of 12000 requests failed; status 200 ×7200, 503 ×4000; \
             no HTTP response ×800) is above the default 10%: memory was measured under a load \
             that mostly did not reach the service's real code path; fix what fails, or set \
             load.thresholds.error_rate if these failures are expected"
        );
        assert_eq!(
            evaluate(&Policy::default(), &run).outcome,
            Outcome::Inconclusive
        );
        // At the default exactly: still the intended load.
        run.load.failures = 1_200;
        assert_eq!(
            one(&run, &Policy::default(), Rule::ErrorRate).severity,
            Severity::Pass
        );
    }

    #[test]
    fn an_explicit_threshold_keeps_its_meaning_above_the_default() {
        let mut run = healthy_run();
        run.load.failures = 4_800; // 40 %
        let f = one(&run, &thresholds(500, 0.5), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
        assert_eq!(f.threshold, Some(0.5));
        let f = one(&run, &thresholds(500, 0.3), Rule::ErrorRate);
        assert_eq!(f.severity, Severity::Fail, "{}", f.message);
    }

    #[test]
    fn a_latency_threshold_without_latencies_is_inconclusive() {
        let mut run = crate::judge::fixtures::healthy_run();
        run.load.latency_measure = crate::model::LATENCY_UNKNOWN.into();
        run.load.p95_ms = 0.0;
        let policy = Policy {
            max_p95: Some(std::time::Duration::from_millis(500)),
            ..Policy::default()
        };
        let fs = check(&policy, &run);
        let f = fs.iter().find(|f| f.rule == Rule::Latency).unwrap();
        assert_eq!(f.severity, Severity::Inconclusive, "{}", f.message);
        assert!(
            f.message.contains("could not be evaluated"),
            "{}",
            f.message
        );
        // The control: measured latencies are judged.
        run.load.latency_measure = "time to first byte".into();
        let fs = check(&policy, &run);
        let f = fs.iter().find(|f| f.rule == Rule::Latency).unwrap();
        assert_eq!(f.severity, Severity::Pass, "{}", f.message);
    }
}

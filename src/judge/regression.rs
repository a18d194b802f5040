//! The `regression` rule, only with a baseline (`Run.baseline`, from `--baseline`): per
//! container name, a peak that grew more than `policy.max_growth` over the baseline's fails;
//! a p95 latency that grew more than that warns; a peak whose samples are within but whose
//! kernel peak usage (page cache included) is above the growth allowed warns, never passes;
//! anything else passes. Messages show both
//! numbers and the change. A baseline of another scenario warns that the numbers may not be
//! comparable; latencies measured by different drivers are not compared.

use super::finding;
use crate::analysis::baseline::{deltas, Metric};
use crate::model::Baseline;
use crate::model::{Finding, Policy, Rule, Run, Severity};
use crate::units::format_change;
use crate::units::format_ms;
use crate::units::{format_bytes, format_percent};

pub(super) fn check(policy: &Policy, run: &Run) -> Vec<Finding> {
    let Some(baseline) = &run.baseline else {
        return Vec::new();
    };
    let base = baseline.describe();
    let allowed = format!("+{}", format_percent(policy.max_growth));
    let mut out = Vec::new();
    if baseline.scenario != run.scenario {
        out.push(finding(
            Rule::Regression,
            Severity::Warn,
            format!(
                "{base} is of scenario {} but this run is {}: its numbers may not be comparable; \
                 pass a report of the same scenario",
                baseline.scenario, run.scenario
            ),
        ));
    }
    for d in deltas(run, baseline) {
        match d.metric {
            Metric::PeakBytes => {
                let (Some(name), Some(current)) = (d.container.as_deref(), d.current) else {
                    continue; // only in the baseline: nothing to judge
                };
                let current_text = format_bytes(current as u64);
                let mut f = match (d.baseline, d.change()) {
                    (Some(b), Some(change)) => {
                        let head = format!(
                            "{name}: peak {current_text} vs {} in {base}, {}",
                            format_bytes(b as u64),
                            format_change(change)
                        );
                        let mut f = if change > policy.max_growth {
                            finding(
                                Rule::Regression,
                                Severity::Fail,
                                format!(
                                    "{head}, more than the {allowed} allowed: find what this \
                                     change allocates (compare heap profiles of both versions), \
                                     or raise policy.regression.max_growth if the growth is \
                                     intended"
                                ),
                            )
                        } else {
                            let most = (b * (1.0 + policy.max_growth)).floor();
                            match kernel_upper(run, name).filter(|u| *u as f64 > most) {
                                // The samples are within; the kernel saw usage above the growth
                                // allowed, page cache or a spike between samples: not a pass.
                                Some(upper) => finding(
                                    Rule::Regression,
                                    Severity::Warn,
                                    format!(
                                        "{head}, within the {allowed} allowed by its samples, \
                                         but the kernel's peak usage {} (page cache included) \
                                         is above it: a spike between two samples or page cache, \
                                         the numbers cannot tell (sample faster, \
                                         memory.interval)",
                                        format_bytes(upper)
                                    ),
                                ),
                                None => finding(
                                    Rule::Regression,
                                    Severity::Pass,
                                    format!("{head}, within the {allowed} allowed"),
                                ),
                            }
                        };
                        f.threshold = Some((b * (1.0 + policy.max_growth)).floor());
                        f
                    }
                    _ => finding(
                        Rule::Regression,
                        Severity::Skipped,
                        format!(
                            "{name}: not judged: peak {current_text}; {base} has no peak for it \
                             to compare with"
                        ),
                    ),
                };
                f.container = Some(name.to_string());
                f.observed = Some(current);
                out.push(f);
            }
            Metric::SuggestedLimitBytes => {}
            Metric::P95Ms => {
                if let Some(f) = latency(policy, run, baseline, d.baseline, d.current) {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// The highest kernel peak usage above the samples among `name`'s pods (the upper bound of its
/// working-set peak), when the memory source has a kernel peak counter.
fn kernel_upper(run: &Run, name: &str) -> Option<u64> {
    run.containers
        .iter()
        .filter(|s| s.container == name)
        .filter_map(|s| s.peak_upper().map(|(bytes, _)| bytes))
        .max()
}

fn latency(
    policy: &Policy,
    run: &Run,
    baseline: &Baseline,
    before: Option<f64>,
    now: Option<f64>,
) -> Option<Finding> {
    let (before, now) = (before?, now?);
    let base = baseline.describe();
    if let Some(driver) = baseline.driver.as_deref() {
        if !driver.is_empty() && !run.load.driver.is_empty() && driver != run.load.driver {
            return Some(finding(
                Rule::Regression,
                Severity::Skipped,
                format!(
                    "not judged: p95 latency not compared: {base} measured it with {driver}, this run with {} \
                     ({}), which measure different things",
                    run.load.driver, run.load.latency_measure
                ),
            ));
        }
    }
    if before <= 0.0 {
        return None;
    }
    let change = (now - before) / before;
    let allowed = format!("+{}", format_percent(policy.max_growth));
    let head = format!(
        "p95 latency {} vs {} in {base}, {}",
        format_ms(now),
        format_ms(before),
        format_change(change)
    );
    let mut f = if change > policy.max_growth {
        finding(
            Rule::Regression,
            Severity::Warn,
            format!(
                "{head}, more than the {allowed} allowed: compare the slowest requests of both \
                 versions"
            ),
        )
    } else {
        finding(
            Rule::Regression,
            Severity::Pass,
            format!("{head}, within the {allowed} allowed"),
        )
    };
    f.observed = Some(now);
    f.threshold = Some(before * (1.0 + policy.max_growth));
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::*;
    use crate::model::BaselineContainer;

    /// A baseline of the healthy run's scenario with these peaks and p95.
    fn baseline(app: u64, sidecar: u64, p95_ms: f64) -> Baseline {
        Baseline {
            path: "previous/report.json".into(),
            scenario: "checkout-api".into(),
            started_at: Some(t(11, 0, 0)),
            verdict: Some("pass".into()),
            containers: vec![
                BaselineContainer {
                    container: "app".into(),
                    peak_bytes: Some(app),
                    limit_bytes: Some(GIB),
                    suggested_limit_bytes: None,
                },
                BaselineContainer {
                    container: "sidecar".into(),
                    peak_bytes: Some(sidecar),
                    limit_bytes: Some(128 * MIB),
                    suggested_limit_bytes: None,
                },
            ],
            driver: Some("goose".into()),
            p95_ms: Some(p95_ms),
        }
    }

    fn judged(b: Baseline) -> Vec<Finding> {
        let mut run = healthy_run(); // app peaks at 610 MiB, sidecar at 40 MiB, p95 120 ms
        run.baseline = Some(b);
        check(&Policy::default(), &run)
    }

    fn about<'a>(found: &'a [Finding], container: Option<&str>) -> &'a Finding {
        let mut it = found.iter().filter(|f| f.container.as_deref() == container);
        let f = it.next().expect("a finding");
        assert!(it.next().is_none(), "one finding per subject");
        f
    }

    #[test]
    fn no_baseline_no_finding() {
        assert!(check(&Policy::default(), &healthy_run()).is_empty());
    }

    #[test]
    fn a_peak_30_percent_above_the_baseline_fails() {
        // 610 MiB now; 469.2 MiB in the baseline is 30 % less.
        let before = (610.0 * MIB as f64 / 1.3) as u64;
        let found = judged(baseline(before, 40 * MIB, 120.0));
        let app = about(&found, Some("app"));
        assert_eq!(app.severity, Severity::Fail);
        assert_eq!(
            app.message,
            "app: peak 610 MiB vs 469.2 MiB in the baseline (checkout-api, 2025-03-14 11:00 \
             UTC), +30%, more than the +10% allowed: find what this change allocates (compare \
             heap profiles of both versions), or raise policy.regression.max_growth if the \
             growth is intended"
        );
        assert_eq!(app.observed, Some((610 * MIB) as f64));
        assert_eq!(about(&found, Some("sidecar")).severity, Severity::Pass);
    }

    #[test]
    fn a_kernel_peak_above_the_allowed_growth_is_never_a_pass() {
        let before = (610.0 * MIB as f64 / 1.05) as u64; // samples: +5 %, within
        let mut run = healthy_run();
        run.baseline = Some(baseline(before, 40 * MIB, 120.0));
        let app = run
            .containers
            .iter_mut()
            .find(|s| s.container == "app")
            .unwrap();
        app.kernel_peak_usage = Some((900 * MIB, t(12, 3, 0)));
        let found = check(&Policy::default(), &run);
        let f = about(&found, Some("app"));
        assert_eq!(f.severity, Severity::Warn, "{}", f.message);
        assert!(
            f.message.contains("kernel's peak usage 900 MiB"),
            "{}",
            f.message
        );
        // Control: a kernel peak within the allowed growth leaves the pass.
        let app = run
            .containers
            .iter_mut()
            .find(|s| s.container == "app")
            .unwrap();
        app.kernel_peak_usage = Some((620 * MIB, t(12, 3, 0)));
        let found = check(&Policy::default(), &run);
        assert_eq!(about(&found, Some("app")).severity, Severity::Pass);
    }

    #[test]
    fn a_peak_5_percent_above_the_baseline_passes() {
        let before = (610.0 * MIB as f64 / 1.05) as u64;
        let found = judged(baseline(before, 45 * MIB, 120.0));
        let app = about(&found, Some("app"));
        assert_eq!(app.severity, Severity::Pass, "{}", app.message);
        assert!(
            app.message.ends_with(", +5%, within the +10% allowed"),
            "{}",
            app.message
        );
        let sidecar = about(&found, Some("sidecar"));
        assert!(sidecar.message.contains("-11.1%"), "{}", sidecar.message);
    }

    #[test]
    fn p95_latency_growth_warns() {
        let found = judged(baseline(610 * MIB, 40 * MIB, 100.0));
        let p95 = about(&found, None);
        assert_eq!(p95.severity, Severity::Warn);
        assert_eq!(
            p95.message,
            "p95 latency 120 ms vs 100 ms in the baseline (checkout-api, 2025-03-14 11:00 UTC), \
             +20%, more than the +10% allowed: compare the slowest requests of both versions"
        );
        let found = judged(baseline(610 * MIB, 40 * MIB, 115.0));
        assert_eq!(about(&found, None).severity, Severity::Pass);
    }

    #[test]
    fn other_scenarios_and_drivers_are_called_out() {
        let mut b = baseline(610 * MIB, 40 * MIB, 100.0);
        b.scenario = "search-api".into();
        b.driver = Some("k6".into());
        let found = judged(b);
        let run_wide: Vec<&Finding> = found.iter().filter(|f| f.container.is_none()).collect();
        assert_eq!(run_wide.len(), 2);
        assert_eq!(run_wide[0].severity, Severity::Warn);
        assert!(run_wide[0]
            .message
            .contains("is of scenario search-api but this run is checkout-api"));
        assert_eq!(run_wide[1].severity, Severity::Skipped);
        assert!(run_wide[1]
            .message
            .starts_with("not judged: p95 latency not compared"));
    }

    #[test]
    fn a_container_new_since_the_baseline_is_not_judged() {
        let mut b = baseline(610 * MIB, 40 * MIB, 120.0);
        b.containers.remove(1);
        let found = judged(b);
        let sidecar = about(&found, Some("sidecar"));
        assert_eq!(sidecar.severity, Severity::Skipped);
        assert!(sidecar
            .message
            .contains("has no peak for it to compare with"));
    }
}

//! The built-in load driver: a Goose attack assembled at run time from the scenario's request
//! mix. Goose is configured in code only — it never parses the process's argv, prints no tables,
//! opens no telnet or websocket controller — and runs the stages as a Goose test plan. Its
//! metrics (per request name, status codes, response-time buckets) become `LoadStats`; its
//! test-plan history gives the real start of each stage.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::goose::{
    GooseMethod, GooseRequest, GooseUser, Scenario, Transaction, TransactionFunction,
};
use goose::metrics::{GooseMetrics, GooseRequestMetricAggregate};
use goose::test_plan::TestPlanStepAction;
use goose::GooseAttack;

use super::plan::{goose_test_plan, stage_windows};
use super::{LiveCounters, LoadDriver, LoadError, LoadOutcome};
use crate::memory::BoxFuture;
use crate::model::{LoadStats, RequestStats, Stage};
use crate::scenario::{Method, RequestSpec};

/// Runs a scenario's requests with Goose.
pub struct GooseDriver {
    pub target_url: String,
    pub stages: Vec<Stage>,
    pub requests: Vec<RequestSpec>,
    pub think_time: (Duration, Duration),
}

impl LoadDriver for GooseDriver {
    fn name(&self) -> &'static str {
        "goose"
    }

    fn run(
        self: Box<Self>,
        live: Arc<LiveCounters>,
    ) -> BoxFuture<'static, Result<LoadOutcome, LoadError>> {
        Box::pin(async move { self.execute(live).await })
    }
}

fn goose_method(m: Method) -> GooseMethod {
    match m {
        Method::Get => GooseMethod::Get,
        Method::Post => GooseMethod::Post,
        Method::Put => GooseMethod::Put,
        Method::Patch => GooseMethod::Patch,
        Method::Delete => GooseMethod::Delete,
        Method::Head => GooseMethod::Head,
    }
}

/// One transaction per request spec: send it, judge the status, read the body.
fn transaction(spec: Arc<RequestSpec>, live: Arc<LiveCounters>) -> TransactionFunction {
    Arc::new(move |user: &mut GooseUser| {
        let spec = Arc::clone(&spec);
        let live = Arc::clone(&live);
        Box::pin(async move {
            let method = goose_method(spec.method);
            let mut builder = user.get_request_builder(&method, &spec.path)?;
            for (k, v) in &spec.headers {
                builder = builder.header(k.as_str(), v.as_str());
            }
            if let Some(body) = &spec.body {
                builder = builder.body(body.clone());
            }
            let mut request = GooseRequest::builder()
                .method(method)
                .path(spec.path.as_str())
                .name(spec.name.as_str())
                .set_request_builder(builder);
            if let [only] = spec.expect_status.as_slice() {
                request = request.expect_status_code(*only);
            }
            let mut goose = user.request(request.build()).await?;
            if spec.expect_status.len() > 1 {
                let code = goose.request.status_code;
                let expected = spec.expect_status.contains(&code);
                if expected && !goose.request.success {
                    user.set_success(&mut goose.request)?;
                } else if !expected && goose.request.success {
                    let tag = format!("unexpected status {code}");
                    user.set_failure(&tag, &mut goose.request, None, None)?;
                }
            }
            live.requests.fetch_add(1, Ordering::Relaxed);
            if !goose.request.success {
                live.failures.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(response) = goose.response {
                // Read the body so the connection is reused and the service's full answer counts.
                let _ = response.bytes().await;
            }
            Ok(())
        })
    })
}

impl GooseDriver {
    fn attack(&self, live: &Arc<LiveCounters>) -> Result<Box<GooseAttack>, LoadError> {
        let err = |e: goose::GooseError| LoadError::Goose(e.to_string());
        let mut config = GooseConfiguration::default();
        config.host = Some(self.target_url.clone());
        config.no_telnet = true;
        config.no_websocket = true;
        config.no_print_metrics = true;
        config.no_error_summary = true;
        config.quiet = 1;
        let mut scenario = Scenario::new("oomgate");
        for spec in &self.requests {
            let t = Transaction::new(transaction(Arc::new(spec.clone()), Arc::clone(live)))
                .set_name(&spec.name)
                .set_weight(spec.weight as usize)
                .map_err(err)?;
            scenario = scenario.register_transaction(t);
        }
        let (min, max) = self.think_time;
        if max > Duration::ZERO {
            scenario = scenario.set_wait_time(min, max).map_err(err)?;
        }
        let plan = goose_test_plan(&self.stages);
        log::debug!("goose test plan: {plan}");
        GooseAttack::initialize_with_config(config)
            .map_err(err)?
            .register_scenario(scenario)
            .set_default(GooseDefault::TestPlan, plan.as_str())
            .map_err(err)
    }

    async fn execute(self, live: Arc<LiveCounters>) -> Result<LoadOutcome, LoadError> {
        let attack = self.attack(&live)?;
        // Goose clears its killswitch as an attack starts, so a stop requested just before (a
        // signal, a refused watch) would be lost: re-assert it while the attack runs.
        let reassert = tokio::spawn(async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(reason) = super::stop_reason() {
                    ::goose::trigger_killswitch(&reason);
                }
            }
        });
        let metrics = {
            let _guard = crate::stdout_guard::StdoutToStderr::new();
            let result = attack.execute().await;
            reassert.abort();
            result.map_err(|e| LoadError::Goose(e.to_string()))?
        };
        let finished = metrics
            .history
            .iter()
            .rev()
            .find(|h| {
                matches!(
                    h.action,
                    TestPlanStepAction::Finished | TestPlanStepAction::Canceling
                )
            })
            .map(|h| h.timestamp)
            .unwrap_or_else(chrono::Utc::now);
        let starts: Vec<_> = metrics
            .history
            .iter()
            .filter(|h| {
                !matches!(
                    h.action,
                    TestPlanStepAction::Finished | TestPlanStepAction::Canceling
                )
            })
            .map(|h| h.timestamp)
            .collect();
        let windows = stage_windows(&self.stages, &starts, finished);
        // Goose ending its plan early on its own (its killswitch, a failed user) is an early end
        // too, even with no stop asked for.
        let stopped_early = super::stop_reason()
            .or_else(|| short_plan(&self.stages, windows.first().map(|w| w.start)?, finished));
        let elapsed = match (windows.first(), windows.last()) {
            (Some(a), Some(b)) => (b.end - a.start).to_std().unwrap_or_default(),
            _ => Duration::from_secs(metrics.duration as u64),
        };
        Ok(LoadOutcome {
            stats: stats(&metrics, elapsed),
            stages: windows,
            stopped_early,
            tool_thresholds_failed: false,
        })
    }
}

/// Why a Goose attack that began at `began` and finished at `finished` did not apply its whole
/// plan (whole seconds per stage, as the test plan has them), when it fell short by more than
/// the start-up slack.
fn short_plan(
    stages: &[Stage],
    began: chrono::DateTime<chrono::Utc>,
    finished: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let planned: Duration = stages
        .iter()
        .map(|s| Duration::from_secs(s.duration.as_secs()))
        .sum();
    super::plan::fell_short(planned, began, finished)?;
    let reached = stages
        .iter()
        .scan(began, |at, s| {
            let start = *at;
            *at += chrono::Duration::from_std(s.duration).unwrap_or_default();
            Some(start)
        })
        .filter(|start| *start < finished)
        .count();
    Some(format!(
        "Goose ended its test plan early on its own ({reached} of {} stages began)",
        stages.len()
    ))
}

/// Goose keys response times in log-linear buckets: each power of two split in 64; a bucket
/// reports its middle.
fn bucket_middle(floor_us: u64) -> u64 {
    let bits = if floor_us < 128 {
        0
    } else {
        63 - floor_us.leading_zeros() - 6
    };
    floor_us + ((1u64 << bits) >> 1)
}

/// Percentiles (nearest rank) over (bucket floor µs, count) pairs, in milliseconds.
fn percentiles(buckets: &BTreeMap<u64, u64>, ps: &[f64]) -> Vec<f64> {
    let total: u64 = buckets.values().sum();
    ps.iter()
        .map(|&p| {
            if total == 0 {
                return 0.0;
            }
            let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (&floor, &n) in buckets {
                seen += n;
                if seen >= rank {
                    return bucket_middle(floor) as f64 / 1000.0;
                }
            }
            0.0
        })
        .collect()
}

fn buckets_of(agg: &GooseRequestMetricAggregate) -> BTreeMap<u64, u64> {
    agg.raw_data
        .times_us
        .iter()
        .map(|(&k, &v)| (k, v as u64))
        .collect()
}

fn stats(metrics: &GooseMetrics, elapsed: Duration) -> LoadStats {
    let mut all: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out = LoadStats {
        driver: "goose".into(),
        latency_measure: "time to first byte".into(),
        ..Default::default()
    };
    let mut max_us = 0u64;
    for agg in metrics.requests.values() {
        let b = buckets_of(agg);
        for (k, v) in &b {
            *all.entry(*k).or_default() += v;
        }
        let p = percentiles(&b, &[0.5, 0.95, 0.99]);
        let requests = (agg.success_count + agg.fail_count) as u64;
        out.per_request.push(RequestStats {
            name: agg.path.clone(),
            requests,
            failures: agg.fail_count as u64,
            p50_ms: p[0],
            p95_ms: p[1],
            p99_ms: p[2],
            max_ms: agg.raw_data.maximum_time_us as f64 / 1000.0,
        });
        out.requests += requests;
        out.failures += agg.fail_count as u64;
        max_us = max_us.max(agg.raw_data.maximum_time_us);
        for (code, n) in &agg.status_code_counts {
            *out.status_codes.entry(*code).or_default() += *n as u64;
        }
    }
    out.per_request.sort_by(|a, b| a.name.cmp(&b.name));
    let p = percentiles(&all, &[0.5, 0.95, 0.99]);
    (out.p50_ms, out.p95_ms, out.p99_ms) = (p[0], p[1], p[2]);
    out.max_ms = max_us as f64 / 1000.0;
    let secs = elapsed.as_secs_f64();
    out.rps = if secs > 0.0 {
        out.requests as f64 / secs
    } else {
        0.0
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_middles() {
        assert_eq!(bucket_middle(100), 100);
        assert_eq!(bucket_middle(128), 129); // width 2
        assert_eq!(bucket_middle(1024), 1032); // width 16
    }

    #[test]
    fn nearest_rank_percentiles() {
        let b: BTreeMap<u64, u64> = [(10, 50), (20, 45), (100, 5)].into_iter().collect();
        let p = percentiles(&b, &[0.5, 0.95, 0.99]);
        assert_eq!(p, vec![0.010, 0.020, 0.100]);
        assert_eq!(percentiles(&BTreeMap::new(), &[0.5]), vec![0.0]);
    }

    #[test]
    fn a_plan_cut_short_is_an_early_end() {
        use chrono::TimeZone;
        let stage = |index, users, secs| Stage {
            index,
            from_users: 0,
            to_users: users,
            duration: Duration::from_secs(secs),
        };
        let stages = vec![stage(0, 2, 4), stage(1, 2, 8)];
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        assert_eq!(
            short_plan(&stages, t0, t0 + chrono::Duration::seconds(3)).as_deref(),
            Some("Goose ended its test plan early on its own (1 of 2 stages began)")
        );
        // The control: the whole plan, give or take the start-up slack.
        assert_eq!(
            short_plan(&stages, t0, t0 + chrono::Duration::seconds(11)),
            None
        );
    }
}

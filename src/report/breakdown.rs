//! The analysis parts of the view-model, computed once by `ReportView::build` with the same
//! functions the judge uses, so a report never shows other numbers than the findings: the
//! per-stage breakdown (peak, median and p95 working set of each container name over all its
//! pods' samples within the stage; the driver's per-stage load when it has one), the trend of
//! every pod's container through every hold long enough to judge (`analysis::leak::hold_trends`,
//! projected to the allowed peak as `judge::leak` does), the users→memory fit and its prediction
//! (`analysis::capacity`), and the deltas against a `--baseline` report
//! (`analysis::baseline::deltas`).

use crate::analysis::baseline::{deltas, suggestion_deltas, Delta};
use crate::analysis::capacity::{capacity, Follows, Prediction};
use crate::analysis::leak::hold_trends;
use crate::analysis::quantile;
use crate::analysis::request_leak::{request_trends, steepest_growing};
use crate::model::{allowed_peak, group_containers};

use crate::model::{Policy, Run, StageLoad};

/// One container name's working set within one stage, over all its pods' samples (bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMemory {
    pub container: String,
    /// `None` when no sample of the container fell in the stage.
    pub peak: Option<u64>,
    pub median: Option<u64>,
    pub p95: Option<u64>,
    pub samples: usize,
}

/// The working-set trend of one pod's container through one hold (`analysis::leak`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRow {
    pub container: String,
    pub pod: String,
    /// 0-based stage index of the hold.
    pub stage: usize,
    pub users: u32,
    /// Theil–Sen slope through the settled part of the hold, bytes per minute.
    pub bytes_per_min: f64,
    /// Clearly positive and above the noise (`HoldTrend::is_growing`).
    pub growing: bool,
    pub samples: usize,
    /// The container's allowed peak in that pod (limit × (1 − headroom)), when it has a limit.
    pub allowed: Option<u64>,
    /// Minutes after the hold until the trend reaches `allowed` (0 when it already had); `None`
    /// when it does not grow or there is no limit.
    pub minutes_to_allowed: Option<f64>,
}

impl TrendRow {
    /// The slope in MiB per minute.
    pub fn mib_per_min(&self) -> f64 {
        self.bytes_per_min / crate::analysis::MIB
    }
}

/// One container name's users→memory fit (`analysis::capacity`).
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityRow {
    pub container: String,
    /// "48 MiB + 0.62 MiB/user (2 holds at 100, 200 users)".
    pub fit: String,
    /// `policy.expected_peak_users`, when set.
    pub expected_users: Option<u32>,
    /// The working set predicted at the expected load; `None` without one or beyond
    /// `MAX_EXTRAPOLATION` × the highest hold.
    pub prediction: Option<Prediction>,
    /// The highest load held, users.
    pub max_users: u32,
    pub allowed: Option<u64>,
    /// What the working set follows: a per-user figure is shown only for `Users`.
    pub follows: Option<Follows>,
}

/// What the run is compared with under `--baseline`.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineView {
    /// "the baseline (checkout-api, 2025-03-13 12:00 UTC)".
    pub description: String,
    /// The file it was read from.
    pub path: String,
    /// Peaks per container name, then the p95 latency.
    pub deltas: Vec<Delta>,
    /// `policy.regression.max_growth`.
    pub max_growth: f64,
    /// The baseline's latency was measured by another driver (so it is not compared).
    pub other_driver: Option<String>,
}

/// Peak, median and p95 per container name for every stage, in stage order.
pub fn stage_memory(run: &Run) -> Vec<Vec<StageMemory>> {
    let groups = group_containers(run);
    let last = run.stages.len().saturating_sub(1);
    run.stages
        .iter()
        .enumerate()
        .map(|(i, w)| {
            groups
                .iter()
                .map(|g| {
                    let mut values: Vec<f64> = g
                        .series
                        .iter()
                        .flat_map(|s| s.samples.iter())
                        .filter(|s| w.contains(s.at) || (i == last && s.at == w.end))
                        .map(|s| s.working_set as f64)
                        .collect();
                    let samples = values.len();
                    let peak = values
                        .iter()
                        .copied()
                        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                    let median = quantile(&mut values, 0.5);
                    let p95 = quantile(&mut values, 0.95);
                    StageMemory {
                        container: g.name.to_string(),
                        peak: peak.map(|v| v as u64),
                        median: median.map(|v| v.round() as u64),
                        p95: p95.map(|v| v.round() as u64),
                        samples,
                    }
                })
                .collect()
        })
        .collect()
}

/// The load driver's per-stage numbers, by stage index: k6's come from its time buckets; Goose
/// aggregates the whole run, so its stages show memory only.
pub fn stage_loads(run: &Run) -> Vec<StageLoad> {
    run.load.per_stage.clone()
}

/// Every trend through the holds long enough to judge, as the judge's `leak` rule sees them:
/// growing ones first (soonest at the allowed peak first), then by slope, steepest first.
pub fn trends(run: &Run, policy: &Policy) -> Vec<TrendRow> {
    let mut rows: Vec<TrendRow> = hold_trends(run, &policy.leak)
        .into_iter()
        .map(|t| {
            let limit = run
                .containers
                .iter()
                .find(|s| s.pod == t.pod && s.container == t.container)
                .and_then(|s| s.limit)
                .or_else(|| {
                    group_containers(run)
                        .iter()
                        .find(|g| g.name == t.container)
                        .and_then(|g| g.limit())
                });
            let allowed = limit.map(|l| allowed_peak(l, policy.headroom));
            let growing = t.is_growing();
            TrendRow {
                minutes_to_allowed: allowed.and_then(|a| t.minutes_to(a)).filter(|_| growing),
                bytes_per_min: t.bytes_per_min(),
                growing,
                samples: t.samples,
                allowed,
                stage: t.window.stage.index,
                users: t.window.stage.to_users,
                container: t.container,
                pod: t.pod,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.growing
            .cmp(&a.growing)
            .then(
                a.minutes_to_allowed
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.minutes_to_allowed.unwrap_or(f64::INFINITY)),
            )
            .then(b.bytes_per_min.total_cmp(&a.bytes_per_min))
    });
    rows
}

/// The users→memory fit of every container name that has one (holds at two load levels at
/// least), with its prediction at `policy.expected_peak_users`.
pub fn capacity_rows(run: &Run, policy: &Policy) -> Vec<CapacityRow> {
    let groups = group_containers(run);
    let trends = request_trends(run, &policy.leak);
    capacity(run, policy.leak.settle)
        .iter()
        .filter_map(|m| {
            let fit = m.describe()?;
            let limit = groups
                .iter()
                .find(|g| g.name == m.container)
                .and_then(|g| g.limit());
            Some(CapacityRow {
                container: m.container.clone(),
                fit,
                expected_users: policy.expected_peak_users,
                prediction: policy.expected_peak_users.and_then(|u| m.predict(u)),
                max_users: m.max_users().unwrap_or(0),
                allowed: limit.map(|l| allowed_peak(l, policy.headroom)),
                follows: m.follows(steepest_growing(&trends, &m.container)),
            })
        })
        .collect()
}

/// The comparison with `run.baseline`, when there is one.
pub fn baseline(run: &Run, policy: &Policy) -> Option<BaselineView> {
    let b = run.baseline.as_ref()?;
    let other_driver = b
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && !run.load.driver.is_empty() && *d != run.load.driver)
        .map(str::to_string);
    Some(BaselineView {
        description: b.describe(),
        path: b.path.display().to_string(),
        deltas: {
            let mut d = deltas(run, b);
            // Peaks, then the suggested limits, then the p95 latency.
            let p95 = d.pop();
            d.extend(suggestion_deltas(run, policy, b));
            d.extend(p95);
            d
        },
        max_growth: policy.max_growth,
        other_driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::*;

    #[test]
    fn stage_statistics_count_every_pod_within_the_window() {
        let mut run = healthy_run();
        // app: pod a1b2c at 480 MiB, x2k4p at 500 MiB with 610 MiB at 12:04:30 (stage 4).
        spike(&mut run.containers[0], t(12, 1, 0), 700 * MIB);
        let stages = stage_memory(&run);
        assert_eq!(stages.len(), 4);
        let app = |i: usize| &stages[i][0];
        // Stage 1 (12:00–12:01, end excluded): 12 samples per pod.
        assert_eq!(app(0).samples, 24);
        assert_eq!(app(0).peak, Some(500 * MIB));
        assert_eq!(app(0).median, Some(490 * MIB));
        // Stage 2 starts with the 700 MiB spike.
        assert_eq!(app(1).peak, Some(700 * MIB));
        assert_eq!(app(1).samples, 48);
        // The last stage includes the sample at its end (12:06:00): 25 per pod.
        assert_eq!(app(3).samples, 50);
        assert_eq!(app(3).peak, Some(610 * MIB));
        assert_eq!(app(3).p95, Some(500 * MIB));
        assert_eq!(stages[3][1].container, "sidecar");
        assert_eq!(stages[3][1].peak, Some(40 * MIB));
        // A container without samples in a stage has no numbers.
        run.containers.iter_mut().for_each(|c| c.samples.clear());
        let empty = stage_memory(&run);
        assert_eq!(
            (empty[0][0].peak, empty[0][0].median, empty[0][0].samples),
            (None, None, 0)
        );
    }

    #[test]
    fn flat_holds_give_flat_trends_and_no_prediction_without_expected_users() {
        let run = healthy_run();
        let policy = Policy::default();
        let rows = trends(&run, &policy);
        // Two 2-minute holds × two pods × two containers.
        assert_eq!(rows.len(), 8);
        assert!(rows
            .iter()
            .all(|r| !r.growing && r.minutes_to_allowed.is_none()));
        for r in &rows {
            let limit = if r.container == "app" { GIB } else { 128 * MIB };
            assert_eq!(r.allowed, Some(allowed_peak(limit, 0.2)), "{r:?}");
        }
        // Flat everywhere: memory does not change with the users, the fit says so.
        let fits = capacity_rows(&run, &policy);
        assert_eq!(fits.len(), 2);
        assert!(
            fits[0].fit.starts_with("500 MiB + 0 B/user"),
            "{}",
            fits[0].fit
        );
        assert_eq!(fits[0].prediction, None);
        assert_eq!(fits[0].max_users, 200);
        assert_eq!(baseline(&run, &policy), None);
    }
}

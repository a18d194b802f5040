//! The view-model every report renders: `ReportView::build` precomputes, once, everything any
//! format shows from the `Run`, the `Verdict` and the `Policy` — per-container peaks against
//! limits, per-rule results, findings sorted worst first, the memory series for the chart
//! (downsampled in `timeline`), restarts and OOM kills, the per-stage breakdown, the trends,
//! capacity fit and baseline deltas (`breakdown`), and per container the recommendation of
//! `analysis::recommend` (limit, request, runtime heap settings). The formats only turn it into
//! bytes; strings from outside stay raw here and are escaped by each format for its own syntax.

use crate::model::{allowed_peak, group_containers, ContainerGroup};
use std::collections::BTreeMap;
use std::time::Duration;

use super::breakdown::{self, BaselineView, CapacityRow, StageMemory, TrendRow};
use super::timeline::{self, MemoryPoint, CHART_POINTS};
use crate::analysis::recommend::{recommend, Recommendation};
use crate::judge::stage_label;
use crate::model::{
    Finding, LoadStats, Outcome, PeakSource, Policy, RestartReason, Rule, Run, Severity, StageKind,
    StageLoad, Timestamp, Verdict, VpaStatus,
};

/// Everything a report shows, computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportView {
    pub scenario: String,
    /// What was measured: `deployment/web in staging`, `local service demo`.
    pub workload: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    /// Why the run stopped before its plan ended, if it did.
    pub ended_early: Option<String>,
    pub stages: Vec<StageRow>,
    /// One row per container name, in the order the run lists them.
    pub containers: Vec<ContainerRow>,
    /// Every finding, fails first, then inconclusive, warnings, passes (judge order within).
    pub findings: Vec<Finding>,
    /// Worst severity per run-wide rule (findings without a container).
    pub run_results: BTreeMap<Rule, Severity>,
    pub load: LoadStats,
    pub memory: MemoryView,
    pub policy: Policy,
    /// What the VPA said; `None` when the policy does not compare with a VPA or nothing was read.
    pub vpa: Option<VpaView>,
    /// Remarks about the measured workload (e.g. pods whose limits differ from the template).
    pub notes: Vec<String>,
    /// OOM kills and other restarts during the run, in time order.
    pub restarts: Vec<RestartRow>,
    /// The trend of every pod's container through every hold long enough to judge, growing
    /// ones first; empty without such a hold.
    pub trends: Vec<TrendRow>,
    /// The users→memory fit of every container name that has one.
    pub capacity: Vec<CapacityRow>,
    /// The comparison with the `--baseline` report, when there is one.
    pub baseline: Option<BaselineView>,
    /// Pods that went away during the run (deleted, evicted), in time order.
    pub pods_gone: Vec<PodGoneRow>,
}

/// A pod that went away during the run: what it had reached and what replaced it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodGoneRow {
    pub pod: String,
    pub at: Timestamp,
    /// The status reason it ended with (`Evicted`), when known.
    pub reason: Option<String>,
    pub replaced_by: Option<String>,
    /// Samples of all its containers, kept in the report.
    pub samples: usize,
    /// Its latest sample (any container): when, and the working set.
    pub last_sample: Option<(Timestamp, u64)>,
    /// Its highest working set (any container).
    pub peak_bytes: Option<u64>,
    /// Samples of the replacement pod, when there is one.
    pub replacement_samples: usize,
}

/// A container that was OOM-killed or restarted during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartRow {
    pub pod: String,
    pub container: String,
    pub at: Timestamp,
    pub oom_killed: bool,
    /// "OOMKilled" or the reason the container runtime gave.
    pub reason: String,
    pub exit_code: Option<i32>,
    /// "stage 4, hold at 200 users".
    pub stage: Option<String>,
}

/// A stage as it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRow {
    /// 0-based, as in the plan.
    pub index: usize,
    pub kind: StageKind,
    pub from_users: u32,
    pub to_users: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration: Duration,
    /// "stage 4, hold at 200 users".
    pub description: String,
    /// Peak, median and p95 working set of each container name within the stage, in the
    /// order of `ReportView::containers`.
    pub containers: Vec<StageMemory>,
    /// The load driver's numbers for this stage, when it splits them by stage.
    pub load: Option<StageLoad>,
}

/// One container name across all pods of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRow {
    pub container: String,
    /// The smallest limit among its pods (`headroom` judges each pod against its own); `None`
    /// without any limit.
    pub limit: Option<u64>,
    /// Smallest and largest limit when the pods disagree.
    pub limit_spread: Option<(u64, u64)>,
    pub request: Option<u64>,
    /// `limit × (1 − headroom)`.
    pub allowed_peak: Option<u64>,
    pub peak: Option<u64>,
    pub peak_pod: Option<String>,
    pub peak_at: Option<Timestamp>,
    /// "stage 4, hold at 200 users".
    pub peak_stage: Option<String>,
    pub peak_source: Option<PeakSource>,
    /// The highest kernel peak usage (page cache included) of its pods, when above `peak`: the
    /// working-set peak lies between the two.
    pub peak_upper: Option<u64>,
    pub samples: usize,
    pub pods: Vec<String>,
    /// The sampling interval, in seconds.
    pub resolution_seconds: f64,
    /// Worst severity per rule among this container's findings.
    pub results: BTreeMap<Rule, Severity>,
    /// The VPA's recommendation for this container name, when one exists.
    pub vpa_target: Option<u64>,
    pub vpa_lower: Option<u64>,
    pub vpa_upper: Option<u64>,
    /// Working set over time: the highest across pods at each sample time, downsampled to at
    /// most `CHART_POINTS` points (each bucket keeps its lowest and highest point).
    pub working_set: Vec<MemoryPoint>,
    /// The series of the pod that peaked, downsampled the same way; empty when only one pod ran
    /// the container (it would equal `working_set`).
    pub peak_pod_series: Vec<MemoryPoint>,
    /// What to set (limit, request, runtime heap settings), from `analysis::recommend`;
    /// `None` without a measured peak.
    pub recommendation: Option<Recommendation>,
}

impl ContainerRow {
    /// Peak as a share of the judged limit.
    pub fn peak_share_of_limit(&self) -> Option<f64> {
        match (self.peak, self.limit) {
            (Some(p), Some(l)) if l > 0 => Some(p as f64 / l as f64),
            _ => None,
        }
    }
}

/// What the memory sampler says about its own data.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryView {
    pub source: String,
    pub interval: Duration,
    pub coverage: f64,
    pub ticks: u64,
    pub ticks_with_data: u64,
    pub limit_enforced: bool,
    pub notes: Vec<String>,
    /// Coverage of every (pod, container) counted tick by tick, in the run's order; empty when
    /// the source's series were not counted per pod.
    pub pods: Vec<PodCoverageRow>,
}

/// One (pod, container)'s own coverage: the ticks while its pod ran and how many brought it a
/// fresh sample.
#[derive(Debug, Clone, PartialEq)]
pub struct PodCoverageRow {
    pub pod: String,
    pub container: String,
    /// The first tick counted for it.
    pub since: Timestamp,
    pub ticks: u64,
    pub covered: u64,
    pub share: f64,
    /// Below `policy.min_coverage` (the verdict is then inconclusive).
    pub below: bool,
    /// Why ticks were uncovered (never in PodMetrics, left out from t1 to t2, …); `None` when
    /// every tick was covered.
    pub gaps: Option<String>,
    /// The uncovered stretches themselves.
    pub gap_spans: Vec<crate::model::CoverageGap>,
    /// The pod's own limit of this container.
    pub limit: Option<u64>,
    /// Its own peak working set.
    pub peak: Option<u64>,
}

impl PodCoverageRow {
    fn rows(run: &Run, policy: &Policy) -> Vec<PodCoverageRow> {
        run.containers
            .iter()
            .filter_map(|s| {
                let c = s.coverage.as_ref()?;
                Some(PodCoverageRow {
                    pod: s.pod.clone(),
                    container: s.container.clone(),
                    since: c.since,
                    ticks: c.ticks,
                    covered: c.covered,
                    share: c.share(),
                    below: c.ticks > 0 && c.share() < policy.min_coverage,
                    gaps: (!c.gaps.is_empty()).then(|| crate::judge::coverage_gaps(run, c)),
                    gap_spans: c.gaps.clone(),
                    limit: s.limit,
                    peak: s.peak().map(|p| p.0),
                })
            })
            .collect()
    }
}

/// The state of the workload's VerticalPodAutoscaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpaState {
    Recommendation,
    NoRecommendation,
    Unavailable,
    ReadFailed,
}

impl VpaState {
    /// The id used in `report.json`.
    pub fn id(self) -> &'static str {
        match self {
            VpaState::Recommendation => "recommendation",
            VpaState::NoRecommendation => "no-recommendation",
            VpaState::Unavailable => "unavailable",
            VpaState::ReadFailed => "read-failed",
        }
    }
}

/// What the VPA said, flattened for the reporters.
#[derive(Debug, Clone, PartialEq)]
pub struct VpaView {
    pub state: VpaState,
    /// The VPA object's name; `None` when it is unavailable.
    pub name: Option<String>,
    pub low_confidence: bool,
    /// Why no VPA could be read (unavailable only).
    pub reason: Option<String>,
    /// Per-container recommendations (recommendation only).
    pub containers: Vec<VpaContainerView>,
}

/// One container's VPA recommendation (bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpaContainerView {
    pub container: String,
    pub target: Option<u64>,
    pub lower: Option<u64>,
    pub upper: Option<u64>,
    pub uncapped_target: Option<u64>,
}

impl VpaView {
    fn from_status(status: &VpaStatus) -> VpaView {
        match status {
            VpaStatus::Recommendation {
                name,
                low_confidence,
                containers,
            } => VpaView {
                state: VpaState::Recommendation,
                name: Some(name.clone()),
                low_confidence: *low_confidence,
                reason: None,
                containers: containers
                    .iter()
                    .map(|c| VpaContainerView {
                        container: c.container.clone(),
                        target: c.target,
                        lower: c.lower_bound,
                        upper: c.upper_bound,
                        uncapped_target: c.uncapped_target,
                    })
                    .collect(),
            },
            VpaStatus::NoRecommendation { name } => VpaView {
                state: VpaState::NoRecommendation,
                name: Some(name.clone()),
                low_confidence: false,
                reason: None,
                containers: Vec::new(),
            },
            VpaStatus::Unavailable { reason } => VpaView {
                state: VpaState::Unavailable,
                name: None,
                low_confidence: false,
                reason: Some(reason.clone()),
                containers: Vec::new(),
            },
            VpaStatus::ReadFailed { reason } => VpaView {
                state: VpaState::ReadFailed,
                name: None,
                low_confidence: false,
                reason: Some(reason.clone()),
                containers: Vec::new(),
            },
        }
    }

    /// The recommendation for `container`, if any.
    pub fn container(&self, container: &str) -> Option<&VpaContainerView> {
        self.containers.iter().find(|c| c.container == container)
    }
}

impl ReportView {
    pub fn build(run: &Run, verdict: &Verdict, policy: &Policy) -> ReportView {
        let loads = breakdown::stage_loads(run);
        let stages = run
            .stages
            .iter()
            .zip(breakdown::stage_memory(run))
            .map(|(w, containers)| StageRow {
                index: w.stage.index,
                kind: w.stage.kind(),
                from_users: w.stage.from_users,
                to_users: w.stage.to_users,
                start: w.start,
                end: w.end,
                duration: (w.end - w.start).to_std().unwrap_or_default(),
                description: w.stage.describe(),
                containers,
                load: loads.iter().find(|l| l.index == w.stage.index).cloned(),
            })
            .collect();
        let mut recommendations = recommend(run, policy);

        // Only what the policy compares with is reported.
        let vpa = policy.vpa.and(run.vpa.as_ref()).map(VpaView::from_status);

        let containers = group_containers(run)
            .iter()
            .map(|g| {
                let peak = g.peak();
                let limit = g.limit();
                let mut results: BTreeMap<Rule, Severity> = BTreeMap::new();
                for f in verdict
                    .findings
                    .iter()
                    .filter(|f| f.container.as_deref() == Some(g.name))
                {
                    worst(&mut results, f);
                }
                let rec = vpa.as_ref().and_then(|v| v.container(g.name));
                ContainerRow {
                    container: g.name.to_string(),
                    limit,
                    limit_spread: g.limit_spread(),
                    request: g.request(),
                    allowed_peak: limit.map(|l| allowed_peak(l, policy.headroom)),
                    peak: peak.map(|p| p.bytes),
                    peak_pod: peak.map(|p| p.pod.to_string()),
                    peak_at: peak.map(|p| p.at),
                    peak_stage: peak.and_then(|p| stage_label(run, p.at)),
                    peak_source: peak.map(|p| p.source),
                    peak_upper: g
                        .series
                        .iter()
                        .filter_map(|s| s.peak_upper().map(|u| u.0))
                        .max()
                        .filter(|&u| u > peak.map_or(0, |p| p.bytes)),
                    samples: g.sample_count(),
                    pods: g.pods().into_iter().map(String::from).collect(),
                    resolution_seconds: run.memory.interval.as_secs_f64(),
                    results,
                    vpa_target: rec.and_then(|r| r.target),
                    vpa_lower: rec.and_then(|r| r.lower),
                    vpa_upper: rec.and_then(|r| r.upper),
                    working_set: timeline::downsample(
                        timeline::max_over_pods(&g.series, run.memory.interval),
                        CHART_POINTS,
                    ),
                    peak_pod_series: peak_pod_series(g, peak.map(|p| p.pod)),
                    recommendation: recommendations
                        .iter()
                        .position(|r| r.container == g.name)
                        .map(|i| recommendations.remove(i)),
                }
            })
            .collect();

        let mut run_results = BTreeMap::new();
        for f in verdict.findings.iter().filter(|f| f.container.is_none()) {
            worst(&mut run_results, f);
        }

        let mut findings = verdict.findings.clone();
        findings.sort_by_key(|f| severity_rank(f.severity));

        ReportView {
            scenario: run.scenario.clone(),
            workload: run.workload.clone(),
            outcome: verdict.outcome,
            exit_code: verdict.exit_code(),
            started_at: run.started_at,
            ended_at: run.ended_at,
            ended_early: run.ended_early.clone(),
            stages,
            containers,
            findings,
            run_results,
            load: run.load.clone(),
            memory: MemoryView {
                source: run.memory.source.clone(),
                interval: run.memory.interval,
                coverage: run.memory.coverage(),
                ticks: run.memory.ticks,
                ticks_with_data: run.memory.ticks_with_data,
                limit_enforced: run.memory.limit_enforced,
                notes: run.memory.notes.clone(),
                pods: PodCoverageRow::rows(run, policy),
            },
            policy: policy.clone(),
            vpa,
            notes: run.notes.clone(),
            restarts: restart_rows(run),
            trends: breakdown::trends(run, policy),
            capacity: breakdown::capacity_rows(run, policy),
            baseline: breakdown::baseline(run, policy),
            pods_gone: pods_gone(run),
        }
    }

    /// How long the run took.
    pub fn duration(&self) -> Duration {
        (self.ended_at - self.started_at)
            .to_std()
            .unwrap_or_default()
    }

    /// Distinct rules with at least one finding of `severity`, in rule order.
    pub fn rules_with(&self, severity: Severity) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.rule)
            .collect();
        rules.sort();
        rules.dedup();
        rules
    }

    /// Findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The verdict in words, to follow the verdict itself: "2 failing rules (headroom,
    /// oom-killed)", "not enough data to judge (coverage)", "all 12 checks passed",
    /// "11 checks passed, 1 warning (vpa-peak)", "8 checks passed, 2 not judged (leak,
    /// capacity)": a rule that was not judged is counted apart from the passes.
    pub fn headline(&self) -> String {
        let list = |rules: Vec<Rule>| rules.iter().map(|r| r.id()).collect::<Vec<_>>().join(", ");
        match self.outcome {
            Outcome::Fail => {
                let rules = self.rules_with(Severity::Fail);
                let n = rules.len();
                format!(
                    "{} ({})",
                    plural(n, "failing rule", "failing rules"),
                    list(rules)
                )
            }
            Outcome::Inconclusive => format!(
                "not enough data to judge ({})",
                list(self.rules_with(Severity::Inconclusive))
            ),
            Outcome::Pass => {
                let passed = plural(self.count(Severity::Pass), "check", "checks");
                let skipped = self.rules_with(Severity::Skipped);
                let warnings = self.rules_with(Severity::Warn);
                if warnings.is_empty() && skipped.is_empty() {
                    return format!("all {passed} passed");
                }
                let mut parts = vec![format!("{passed} passed")];
                if !skipped.is_empty() {
                    parts.push(format!(
                        "{} not judged ({})",
                        self.count(Severity::Skipped),
                        list(skipped)
                    ));
                }
                if !warnings.is_empty() {
                    parts.push(format!(
                        "{} ({})",
                        plural(self.count(Severity::Warn), "warning", "warnings"),
                        list(warnings)
                    ));
                }
                parts.join(", ")
            }
        }
    }

    /// The most users any stage plans.
    pub fn peak_users(&self) -> u32 {
        self.stages.iter().map(|s| s.to_users).max().unwrap_or(0)
    }

    /// Restarts and OOM kills of `container`, in time order.
    pub fn restarts_of<'a>(&'a self, container: &'a str) -> impl Iterator<Item = &'a RestartRow> {
        self.restarts
            .iter()
            .filter(move |r| r.container == container)
    }

    /// Every rule that has a result for some container, in rule order.
    pub fn container_rules(&self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self
            .containers
            .iter()
            .flat_map(|c| c.results.keys().copied())
            .collect();
        rules.sort();
        rules.dedup();
        rules
    }
}

/// The peak pod's own series, when the container ran in more than one pod.
fn peak_pod_series(group: &ContainerGroup<'_>, pod: Option<&str>) -> Vec<MemoryPoint> {
    let Some(pod) = pod else {
        return Vec::new();
    };
    if group.pods().len() < 2 {
        return Vec::new();
    }
    let samples: Vec<_> = group
        .series
        .iter()
        .filter(|s| s.pod == pod)
        .flat_map(|s| s.samples.iter().copied())
        .collect();
    timeline::downsample(timeline::points(&samples), CHART_POINTS)
}

fn restart_rows(run: &Run) -> Vec<RestartRow> {
    let mut rows: Vec<RestartRow> = run
        .restarts
        .iter()
        .map(|r| RestartRow {
            pod: r.pod.clone(),
            container: r.container.clone(),
            at: r.at,
            oom_killed: r.reason == RestartReason::OomKilled,
            reason: match &r.reason {
                RestartReason::OomKilled => "OOMKilled".to_string(),
                RestartReason::Other(why) => why.clone(),
            },
            exit_code: r.exit_code,
            stage: stage_label(run, r.at),
        })
        .collect();
    rows.sort_by_key(|r| r.at);
    rows
}

/// "1 check", "2 checks".
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn worst(results: &mut BTreeMap<Rule, Severity>, f: &Finding) {
    let entry = results.entry(f.rule).or_insert(f.severity);
    *entry = (*entry).max(f.severity);
}

/// Sort key: fail, inconclusive, warn, skipped, pass.
fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Fail => 0,
        Severity::Inconclusive => 1,
        Severity::Warn => 2,
        Severity::Skipped => 3,
        Severity::Pass => 4,
    }
}

/// One row per pod that went away, in time order.
fn pods_gone(run: &Run) -> Vec<PodGoneRow> {
    let mut rows: Vec<PodGoneRow> = Vec::new();
    for s in &run.containers {
        let Some(gone) = &s.gone else { continue };
        if rows.iter().any(|r| r.pod == s.pod) {
            continue;
        }
        let series: Vec<_> = run.containers.iter().filter(|c| c.pod == s.pod).collect();
        let replacement_samples = gone.replaced_by.as_deref().map_or(0, |r| {
            run.containers
                .iter()
                .filter(|c| c.pod == r)
                .map(|c| c.samples.len())
                .sum()
        });
        rows.push(PodGoneRow {
            pod: s.pod.clone(),
            at: gone.at,
            reason: gone.reason.clone(),
            replaced_by: gone.replaced_by.clone(),
            samples: series.iter().map(|c| c.samples.len()).sum(),
            last_sample: series
                .iter()
                .filter_map(|c| c.samples.last())
                .max_by_key(|x| x.at)
                .map(|x| (x.at, x.working_set)),
            peak_bytes: series.iter().filter_map(|c| c.peak().map(|p| p.0)).max(),
            replacement_samples,
        });
    }
    rows.sort_by_key(|r| r.at);
    rows
}

//! The domain vocabulary every other module speaks: the planned `Stage`s of a load, the
//! measured `Run` (stage windows, per-container memory series, restarts, load numbers) and the
//! judged `Verdict` with its `Finding`s. Nothing here does I/O; the load drivers and memory
//! samplers fill a `Run`, the judge reads it, the reporters render it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

mod baseline;
mod group;

pub use baseline::{Baseline, BaselineContainer};
pub use group::{allowed_peak, group_containers, ContainerGroup, GroupPeak};

/// Wall-clock instant, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Whether a stage changes the number of users or keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Ramp,
    Hold,
}

/// One planned stage, k6 semantics: move linearly from `from_users` to `to_users` over `duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    pub from_users: u32,
    pub to_users: u32,
    pub duration: Duration,
}

impl Stage {
    pub fn kind(&self) -> StageKind {
        if self.from_users == self.to_users {
            StageKind::Hold
        } else {
            StageKind::Ramp
        }
    }

    /// "ramp" or "hold".
    pub fn kind_word(&self) -> &'static str {
        match self.kind() {
            StageKind::Hold => "hold",
            StageKind::Ramp => "ramp",
        }
    }

    /// "stage 4, hold at 200 users" / "stage 1, ramp 0→100 users" (1-based for humans).
    pub fn describe(&self) -> String {
        match self.kind() {
            StageKind::Hold => format!("stage {}, hold at {} users", self.index + 1, self.to_users),
            StageKind::Ramp => format!(
                "stage {}, ramp {}→{} users",
                self.index + 1,
                self.from_users,
                self.to_users
            ),
        }
    }
}

/// A stage as it really ran: the planned stage plus its measured start and end.
#[derive(Debug, Clone, PartialEq)]
pub struct StageWindow {
    pub stage: Stage,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl StageWindow {
    pub fn contains(&self, at: Timestamp) -> bool {
        at >= self.start && at < self.end
    }
}

/// One memory reading of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at: Timestamp,
    /// usage − inactive file cache, as the kubelet reports it.
    pub working_set: u64,
}

/// Where a container's peak came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeakSource {
    /// The highest sampled working set.
    Sample,
    /// The kernel's own peak counter of usage. `ContainerSeries::peak` no longer reports it (the
    /// counter includes page cache, so it is only an upper bound: `peak_upper`); the variant is
    /// kept so the value keeps its meaning in `report.json`.
    KernelPeak,
}

/// The memory history of one container of one pod (a local workload is pod "local").
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSeries {
    pub pod: String,
    pub container: String,
    pub limit: Option<u64>,
    pub request: Option<u64>,
    pub samples: Vec<Sample>,
    /// The kernel's peak of *usage* (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`), when known,
    /// with the time it was first seen at that value.
    pub kernel_peak_usage: Option<(u64, Timestamp)>,
    /// The reading before the one that first showed `kernel_peak_usage`: the kernel's peak
    /// happened after it (and by the time first seen), as closely as the counter tells.
    pub kernel_peak_after: Option<Timestamp>,
    /// The most `usage − working_set` (inactive file cache) seen in any sample; named when the
    /// kernel's usage peak and the samples leave the working-set peak undecided.
    pub max_inactive_file: Option<u64>,
    /// The highest resident set size of the container's largest process, and when (local
    /// workloads: `memory::resident`); a floor for the suggested limit.
    pub max_resident: Option<(u64, Timestamp)>,
    /// Set when the pod went away during the run (deleted, evicted); the samples up to then
    /// are kept.
    pub gone: Option<PodGone>,
    /// Set when the source's timestamps disagreed with the gate's clock (a skewed node or
    /// metrics-server clock); `None` when they agreed or the source uses the gate's clock.
    pub clock_skew: Option<ClockSkew>,
    /// How many of the sampling ticks while the pod ran brought this series a fresh sample,
    /// and why the others did not; `None` when the series was not counted tick by tick.
    pub coverage: Option<SeriesCoverage>,
}

/// The sampling ticks of one (pod, container) while its pod ran during the load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesCoverage {
    /// The first sampling tick counted for it (the pod was known to the gate by then).
    pub since: Timestamp,
    /// Ticks counted (from `since` until the pod went away or the load ended).
    pub ticks: u64,
    /// Ticks that brought a fresh sample, or repeated one still within the source's resolution.
    pub covered: u64,
    /// The uncovered stretches, in time order (consecutive ticks with the same cause merged).
    pub gaps: Vec<CoverageGap>,
    /// Samples whose timestamp was out of line with the rest of the series (a single stamp
    /// minutes off); their values were kept, placed at the time the gate received them.
    pub restamped: u64,
}

impl SeriesCoverage {
    /// Covered share of the ticks; 0 without ticks.
    pub fn share(&self) -> f64 {
        if self.ticks == 0 {
            0.0
        } else {
            self.covered as f64 / self.ticks as f64
        }
    }
}

/// A stretch of consecutive sampling ticks that brought one series no fresh sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverageGap {
    /// The first and the last uncovered tick (gate clock).
    pub from: Timestamp,
    pub to: Timestamp,
    pub ticks: u64,
    pub cause: GapCause,
}

/// Why a tick brought a series no fresh sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum GapCause {
    /// The source answered without this container (left out of PodMetrics, no Prometheus
    /// series for it).
    Absent,
    /// The source repeated a sample whose own timestamp, `stamp`, stopped advancing for longer
    /// than twice its resolution.
    Stuck { stamp: Timestamp },
    /// The source gave a value that is not a working set (`NaN`, `+Inf`, negative).
    BadValue { value: String },
    /// The reading failed as a whole (error, timeout, a tick skipped by a slow reading).
    ReadFailed,
}

/// How a series' sample timestamps related to the gate's clock when they did not agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSkew {
    /// A consistent offset, source − gate in milliseconds (positive: the source's clock runs
    /// ahead). Every sample's time was moved by −`offset_ms` onto the gate's clock.
    Rebased { offset_ms: i64 },
    /// The offset wandered from `min_ms` to `max_ms`: the samples cannot be placed on the run's
    /// clock and are kept as stamped.
    Erratic { min_ms: i64, max_ms: i64 },
}

/// A pod that went away while the load ran, as the workload watcher saw it. Every series of
/// that pod carries the same `PodGone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodGone {
    /// When the gate learnt the pod was gone.
    pub at: Timestamp,
    /// The pod's status reason at its end (`Evicted`), when the cluster said one.
    pub reason: Option<String>,
    /// The pod its controller created in its place, when one appeared during the run.
    pub replaced_by: Option<String>,
}

impl PodGone {
    /// Whether the kubelet evicted the pod (status reason `Evicted`: node pressure). An
    /// eviction through the Eviction API (a drain) is a deletion with a reason.
    pub fn evicted(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| r.trim().eq_ignore_ascii_case("Evicted"))
    }
}

impl ContainerSeries {
    pub fn new(pod: impl Into<String>, container: impl Into<String>) -> Self {
        ContainerSeries {
            pod: pod.into(),
            container: container.into(),
            limit: None,
            request: None,
            samples: Vec::new(),
            kernel_peak_usage: None,
            kernel_peak_after: None,
            max_inactive_file: None,
            max_resident: None,
            gone: None,
            clock_skew: None,
            coverage: None,
        }
    }

    /// The highest sampled working set and when: the peak that was seen, and so a lower bound
    /// of the real one. `None` without samples.
    pub fn peak(&self) -> Option<(u64, Timestamp, PeakSource)> {
        self.samples
            .iter()
            .max_by_key(|s| (s.working_set, std::cmp::Reverse(s.at)))
            .map(|s| (s.working_set, s.at, PeakSource::Sample))
    }

    /// An upper bound of the working-set peak above the sampled one, when the kernel gives one:
    /// its peak of usage (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`) counts page cache,
    /// and at the moment of that peak the cache may have been anything from nothing to all of
    /// it, so the working set then lies between the samples' peak and this. `None` without a
    /// kernel peak counter or when it is no higher than the highest sample.
    pub fn peak_upper(&self) -> Option<(u64, Timestamp)> {
        let (usage, at) = self.kernel_peak_usage?;
        let sampled = self.peak().map_or(0, |p| p.0);
        (usage > sampled).then_some((usage, at))
    }
}

/// Why a container restarted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum RestartReason {
    OomKilled,
    Other(String),
}

/// A container that was killed or restarted during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartEvent {
    pub pod: String,
    pub container: String,
    pub at: Timestamp,
    pub reason: RestartReason,
    pub exit_code: Option<i32>,
}

/// What the memory sampler knows about its own quality.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryMeta {
    /// `cgroup`, `procfs`, `metrics-api`, `prometheus`.
    pub source: String,
    pub interval: Duration,
    /// Sampling ticks attempted and ticks that brought at least one fresh sample.
    pub ticks: u64,
    pub ticks_with_data: u64,
    /// False when the limit is only declared, not enforced by a memory cgroup.
    pub limit_enforced: bool,
    /// Caveats to print and report (e.g. "limit not enforced: no permission to create cgroups").
    pub notes: Vec<String>,
}

/// How the note on failed memory readings (in `MemoryMeta::notes`) starts; the coverage rule
/// quotes it when it finds too little data.
pub const READ_FAILURE_NOTE: &str = "memory readings failed";

impl MemoryMeta {
    /// The note on failed memory readings, when any failed.
    pub fn read_failures(&self) -> Option<&str> {
        self.notes
            .iter()
            .find(|n| n.starts_with(READ_FAILURE_NOTE))
            .map(String::as_str)
    }

    pub fn coverage(&self) -> f64 {
        if self.ticks == 0 {
            0.0
        } else {
            self.ticks_with_data as f64 / self.ticks as f64
        }
    }
}

/// `LoadStats::latency_measure` when the load tool was stopped before it reported its numbers
/// (only the live request counters are known): a latency threshold cannot be judged.
pub const LATENCY_UNKNOWN: &str = "unknown: the load tool was stopped before it reported";

/// Latency and volume for a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestStats {
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The load driver's numbers for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadStats {
    /// `goose` or `k6`.
    pub driver: String,
    /// What latency means here: Goose measures time to first byte, k6 includes the body.
    pub latency_measure: String,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub per_request: Vec<RequestStats>,
    pub status_codes: BTreeMap<u16, u64>,
    /// The load tool's own thresholds failed (k6 exit code 99), or its script marked the test
    /// as failed (k6 exit code 110, `exec.test.fail()`).
    pub tool_thresholds_failed: bool,
    /// The exit code that said so (99 or 110), when the tool gave one.
    pub tool_exit_code: Option<i32>,
    /// Load numbers per stage, when the driver can split them (k6; not Goose).
    pub per_stage: Vec<StageLoad>,
    /// Requests completed so far, read at every memory tick (Goose, whose counters the gate
    /// sees live); empty when the driver reports only at the end. `analysis::leak` weighs
    /// memory against it, falling back to `per_stage` spread evenly over each stage.
    #[serde(skip)]
    pub timeline: Vec<RequestMark>,
}

/// Requests completed by `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMark {
    pub at: Timestamp,
    pub requests: u64,
}

/// The load driver's numbers for one stage, when the driver can split them by stage (k6 can,
/// from its time buckets; Goose aggregates the whole run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageLoad {
    /// 0-based stage index, as in the plan.
    pub index: usize,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub p95_ms: f64,
}

impl LoadStats {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }
}

/// Everything measured during one gate run; the judge's only input besides the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub scenario: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub stages: Vec<StageWindow>,
    pub containers: Vec<ContainerSeries>,
    pub restarts: Vec<RestartEvent>,
    pub load: LoadStats,
    pub memory: MemoryMeta,
    /// Set when the run stopped before its plan ended, with the reason.
    pub ended_early: Option<String>,
    /// What was measured, for report headers: `local demo`, `deployment/web in staging`.
    pub workload: String,
    /// The VPA recommendation read at the start of the run, when the policy asks for it.
    pub vpa: Option<VpaStatus>,
    /// Remarks about the measured workload (e.g. pods whose limits differ from the template).
    pub notes: Vec<String>,
    /// An earlier run's report (`--baseline`) to compare peaks and latency with.
    pub baseline: Option<Baseline>,
    /// Each container's environment (name, value), for the `runtime-setting` lint; empty when
    /// unknown.
    pub env: Vec<(String, Vec<(String, String)>)>,
}

/// One container's VPA recommendation (bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VpaContainer {
    pub container: String,
    pub target: Option<u64>,
    pub lower_bound: Option<u64>,
    pub upper_bound: Option<u64>,
    pub uncapped_target: Option<u64>,
}

/// What the cluster said about the workload's VerticalPodAutoscaler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum VpaStatus {
    /// A recommendation exists.
    Recommendation {
        name: String,
        low_confidence: bool,
        containers: Vec<VpaContainer>,
    },
    /// The VPA exists but has no recommendation yet (it needs days of history).
    NoRecommendation { name: String },
    /// No VPA targets the workload, or the CRD is not installed: there is nothing to compare
    /// with (a warning).
    Unavailable { reason: String },
    /// The VPA list failed (5xx, 429, a dropped connection, a timeout) or its answer could not
    /// be read: the comparison the policy asks for could not be made, so the VPA rules are
    /// inconclusive.
    ReadFailed { reason: String },
}

/// How a run's note starts when the run could not see OOM kills at all (a finished run judged
/// from a Prometheus that keeps neither cAdvisor's nor kube-state-metrics' series for its
/// pods); `oom-killed` is then inconclusive, never a pass.
pub const OOMS_UNSEEN_NOTE: &str = "OOM kills were not seen";
/// How a run's note starts when the run could not see restarts (no kube-state-metrics
/// series); `restarted` is then a warning that says so, never a pass.
pub const RESTARTS_UNSEEN_NOTE: &str = "restarts were not seen";

impl Run {
    /// The run's note that starts with `prefix` (e.g. [`OOMS_UNSEEN_NOTE`]), when it has one.
    pub fn note_starting(&self, prefix: &str) -> Option<&str> {
        self.notes
            .iter()
            .find(|n| n.starts_with(prefix))
            .map(String::as_str)
    }

    /// The stage running at `at`, if any.
    pub fn stage_at(&self, at: Timestamp) -> Option<&StageWindow> {
        self.stages.iter().find(|w| w.contains(at)).or_else(|| {
            // The last stage's end is exclusive; a sample exactly at the end belongs to it.
            self.stages.last().filter(|w| at == w.end)
        })
    }
}

/// The rule a finding comes from; its id is stable (reports, JUnit, annotations use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    Headroom,
    NoLimit,
    OomKilled,
    Restarted,
    VpaPeak,
    VpaRequest,
    VpaLowConfidence,
    Coverage,
    Latency,
    ErrorRate,
    Leak,
    Capacity,
    RuntimeSetting,
    Regression,
    /// The load tool's own thresholds (k6 exit code 99).
    ToolThresholds,
    /// A pod of the workload was deleted or evicted while the load ran.
    PodDeleted,
}

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::Headroom => "headroom",
            Rule::NoLimit => "no-limit",
            Rule::OomKilled => "oom-killed",
            Rule::Restarted => "restarted",
            Rule::VpaPeak => "vpa-peak",
            Rule::VpaRequest => "vpa-request",
            Rule::VpaLowConfidence => "vpa-low-confidence",
            Rule::Coverage => "coverage",
            Rule::Latency => "latency",
            Rule::ErrorRate => "error-rate",
            Rule::Leak => "leak",
            Rule::Capacity => "capacity",
            Rule::RuntimeSetting => "runtime-setting",
            Rule::Regression => "regression",
            Rule::ToolThresholds => "tool-thresholds",
            Rule::PodDeleted => "pod-deleted",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How bad a finding is. Ordered: a verdict takes the worst. `Skipped` is a rule this run could
/// not judge (the message says why: "no hold of 1m or more", "no VPA configured"): it never
/// counts as a pass, and alone it does not change a passing verdict either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Pass,
    Skipped,
    Warn,
    Inconclusive,
    Fail,
}

/// One judged fact, worded so a developer can act on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// The gate's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Inconclusive,
}

impl Outcome {
    /// 0 pass, 1 fail, 3 inconclusive (2 is reserved for errors before a verdict exists).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Inconclusive => 3,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
        })
    }
}

/// The judge's answer: the outcome and every finding (passes included, so reports can show a
/// result per rule per container).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
}

impl Verdict {
    pub fn exit_code(&self) -> u8 {
        self.outcome.exit_code()
    }
}

/// The validated gate policy the judge applies (built from the scenario's `policy` and
/// `load.thresholds`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Share of the limit kept free: fail when peak > limit × (1 − headroom). 0.2 = 20 %.
    pub headroom: f64,
    /// A measured container without a memory limit fails (else warns).
    pub require_limit: bool,
    /// A restart for a reason other than OOM fails (else warns).
    pub fail_on_restart: bool,
    /// Share of sampling ticks that must bring data; below → inconclusive.
    pub min_coverage: f64,
    /// `load.thresholds.p95`.
    pub max_p95: Option<Duration>,
    /// `load.thresholds.error_rate`, a share (0.01 = 1 %).
    pub max_error_rate: Option<f64>,
    /// `policy.vpa`: compare with the VPA recommendation.
    pub vpa: Option<VpaRule>,
    /// `policy.leak`: how growth through a hold is judged.
    pub leak: LeakRule,
    /// `policy.expected_peak_users`: the load to extrapolate memory to (`capacity`).
    pub expected_peak_users: Option<u32>,
    /// `policy.regression.max_growth`: allowed peak growth over a baseline, a share (0.1 = 10 %).
    pub max_growth: f64,
}

/// `policy.leak`: which holds are judged for growth and how far ahead a trend is projected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakRule {
    /// Holds shorter than this are not judged.
    pub min_hold: Duration,
    /// Share of each hold skipped at its start while memory settles (0.2 = 20 %).
    pub settle: f64,
    /// A trend that reaches the allowed peak within this time after the hold fails; slower
    /// growth warns.
    pub horizon: Duration,
}

impl Default for LeakRule {
    fn default() -> Self {
        LeakRule {
            min_hold: Duration::from_secs(60),
            settle: 0.20,
            horizon: Duration::from_secs(3600),
        }
    }
}

/// How VPA findings are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpaRule {
    /// Allowed relative distance from the VPA target (0.2 = ±20 %).
    pub tolerance: f64,
    /// What a LowConfidence VPA does to the VPA rules.
    pub low_confidence: LowConfidencePolicy,
}

/// `policy.vpa.low_confidence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowConfidencePolicy {
    /// VPA rules only warn while the VPA reports LowConfidence (the default).
    Warn,
    /// Judge as usual.
    Judge,
    /// Skip the VPA rules while confidence is low.
    Ignore,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            headroom: 0.20,
            require_limit: true,
            fail_on_restart: true,
            min_coverage: 0.90,
            max_p95: None,
            max_error_rate: None,
            vpa: None,
            leak: LeakRule::default(),
            expected_peak_users: None,
            max_growth: 0.10,
        }
    }
}

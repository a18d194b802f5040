//! The reporters: one `ReportView` holds everything any format needs, precomputed from the
//! `Run`, the `Verdict` and the `Policy` (per-container peaks against limits, per-rule results,
//! findings sorted worst first); each format is a `Reporter` that only renders the view as bytes.
//! Reporters do no other I/O and never reach back into the run. Strings that come from outside
//! (pod, container, scenario, workload and VPA names, notes, reasons) go through
//! `sanitize_terminal` before a terminal sees them.

pub mod json;
pub mod terminal;
#[cfg(test)]
mod terminal_tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::judge::{allowed_peak, group_containers, stage_label};
use crate::model::{
    Finding, LoadStats, Outcome, PeakSource, Policy, Rule, Run, Severity, StageKind, Timestamp,
    Verdict, VpaStatus,
};

pub use json::JsonReporter;
pub use terminal::TerminalReporter;

/// One output format.
pub trait Reporter {
    /// Short format name: "json", "terminal".
    fn name(&self) -> &'static str;
    /// The file it is written to under `--out`.
    fn file_name(&self) -> &'static str;
    fn render(&self, view: &ReportView, out: &mut dyn std::io::Write) -> std::io::Result<()>;
}

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
}

/// One container name across all pods of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRow {
    pub container: String,
    /// The smallest limit among its pods (the one judged); `None` without any limit.
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
}

/// The state of the workload's VerticalPodAutoscaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpaState {
    Recommendation,
    NoRecommendation,
    Unavailable,
}

impl VpaState {
    /// The id used in `report.json`.
    pub fn id(self) -> &'static str {
        match self {
            VpaState::Recommendation => "recommendation",
            VpaState::NoRecommendation => "no-recommendation",
            VpaState::Unavailable => "unavailable",
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
        }
    }

    /// The recommendation for `container`, if any.
    pub fn container(&self, container: &str) -> Option<&VpaContainerView> {
        self.containers.iter().find(|c| c.container == container)
    }
}

impl ReportView {
    pub fn build(run: &Run, verdict: &Verdict, policy: &Policy) -> ReportView {
        let stages = run
            .stages
            .iter()
            .map(|w| StageRow {
                index: w.stage.index,
                kind: w.stage.kind(),
                from_users: w.stage.from_users,
                to_users: w.stage.to_users,
                start: w.start,
                end: w.end,
                duration: (w.end - w.start).to_std().unwrap_or_default(),
                description: w.stage.describe(),
            })
            .collect();

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
                    samples: g.sample_count(),
                    pods: g.pods().into_iter().map(String::from).collect(),
                    resolution_seconds: run.memory.interval.as_secs_f64(),
                    results,
                    vpa_target: rec.and_then(|r| r.target),
                    vpa_lower: rec.and_then(|r| r.lower),
                    vpa_upper: rec.and_then(|r| r.upper),
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
            },
            policy: policy.clone(),
            vpa,
            notes: run.notes.clone(),
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

fn worst(results: &mut BTreeMap<Rule, Severity>, f: &Finding) {
    let entry = results.entry(f.rule).or_insert(f.severity);
    *entry = (*entry).max(f.severity);
}

/// Sort key: fail, inconclusive, warn, pass.
fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Fail => 0,
        Severity::Inconclusive => 1,
        Severity::Warn => 2,
        Severity::Pass => 3,
    }
}

/// Makes an outside string safe to print on a terminal: control characters (ANSI escapes,
/// newlines, carriage returns, tabs, C1 controls such as CSI) and bidirectional overrides are
/// replaced by U+FFFD, so a pod or scenario name cannot move the cursor, recolor the screen or
/// forge extra lines. Borrowed when nothing needed replacing.
pub fn sanitize_terminal(s: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if unsafe_char(c) { '\u{FFFD}' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::evaluate;
    use crate::judge::fixtures::*;
    use crate::model::{LowConfidencePolicy, VpaContainer, VpaRule};

    /// `policy.vpa` with ±20 % and the default low-confidence handling.
    pub(super) fn vpa_policy() -> Policy {
        Policy {
            vpa: Some(VpaRule {
                tolerance: 0.2,
                low_confidence: LowConfidencePolicy::Warn,
            }),
            ..Policy::default()
        }
    }

    /// VPA `name` recommending 512 MiB (256 MiB – 1 GiB, uncapped 600 MiB) for `app` only.
    pub(super) fn recommendation(name: &str, low_confidence: bool) -> VpaStatus {
        VpaStatus::Recommendation {
            name: name.into(),
            low_confidence,
            containers: vec![VpaContainer {
                container: "app".into(),
                target: Some(512 * MIB),
                lower_bound: Some(256 * MIB),
                upper_bound: Some(GIB),
                uncapped_target: Some(600 * MIB),
            }],
        }
    }

    #[test]
    fn sanitize_keeps_clean_strings_borrowed() {
        assert!(matches!(
            sanitize_terminal("web-7d9f-x2k4p → 200 users ✓"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn sanitize_replaces_escapes_newlines_and_bidi_overrides() {
        assert_eq!(
            sanitize_terminal("app\x1b[2J\x1b]0;pwned\x07\nPASS\r\t"),
            "app\u{FFFD}[2J\u{FFFD}]0;pwned\u{FFFD}\u{FFFD}PASS\u{FFFD}\u{FFFD}"
        );
        assert_eq!(sanitize_terminal("a\u{9b}31mb"), "a\u{FFFD}31mb");
        assert_eq!(sanitize_terminal("x\u{202E}gpj.exe"), "x\u{FFFD}gpj.exe");
        assert_eq!(sanitize_terminal("del\u{7f}"), "del\u{FFFD}");
    }

    #[test]
    fn builds_rows_per_container_name() {
        let run = healthy_run();
        let policy = Policy::default();
        let verdict = evaluate(&policy, &run);
        let view = ReportView::build(&run, &verdict, &policy);
        assert_eq!(view.exit_code, 0);
        assert_eq!(view.stages.len(), 4);
        assert_eq!(view.stages[3].description, "stage 4, hold at 200 users");
        assert_eq!(view.stages[3].duration, Duration::from_secs(120));
        assert_eq!(view.containers.len(), 2);
        let app = &view.containers[0];
        assert_eq!(app.container, "app");
        assert_eq!(app.limit, Some(GIB));
        assert_eq!(app.request, Some(GIB / 2));
        assert_eq!(app.allowed_peak, Some(858_993_459));
        assert_eq!(app.peak, Some(610 * MIB));
        assert_eq!(app.peak_pod.as_deref(), Some("web-7d9f-x2k4p"));
        assert_eq!(app.peak_at, Some(t(12, 4, 30)));
        assert_eq!(
            app.peak_stage.as_deref(),
            Some("stage 4, hold at 200 users")
        );
        assert_eq!(app.peak_source, Some(PeakSource::Sample));
        assert_eq!(app.samples, 146);
        assert_eq!(app.pods, vec!["web-7d9f-a1b2c", "web-7d9f-x2k4p"]);
        assert_eq!(app.resolution_seconds, 5.0);
        assert_eq!(app.results.get(&Rule::Headroom), Some(&Severity::Pass));
        assert_eq!(app.results.len(), 4);
        assert_eq!(view.run_results.get(&Rule::Coverage), Some(&Severity::Pass));
        assert_eq!(view.memory.coverage, 1.0);
        assert_eq!(view.workload, "deployment/web in staging");
        assert_eq!(view.vpa, None);
        assert_eq!(app.vpa_target, None);
    }

    #[test]
    fn carries_the_vpa_recommendation_per_container_and_the_notes() {
        let mut run = healthy_run();
        run.vpa = Some(recommendation("web", false));
        run.notes = vec!["pod web-7d9f-a1b2c has a different limit".into()];
        let policy = vpa_policy();
        let verdict = evaluate(&policy, &run);
        let view = ReportView::build(&run, &verdict, &policy);
        let vpa = view.vpa.as_ref().unwrap();
        assert_eq!(vpa.state, VpaState::Recommendation);
        assert_eq!(vpa.name.as_deref(), Some("web"));
        assert!(!vpa.low_confidence);
        assert_eq!(vpa.reason, None);
        assert_eq!(vpa.containers[0].uncapped_target, Some(600 * MIB));
        let app = &view.containers[0];
        assert_eq!(app.vpa_target, Some(512 * MIB));
        assert_eq!(app.vpa_lower, Some(256 * MIB));
        assert_eq!(app.vpa_upper, Some(GIB));
        // 610 MiB is 19 % above 512 MiB: within the tolerance; the request is exactly the target.
        assert_eq!(app.results.get(&Rule::VpaPeak), Some(&Severity::Pass));
        assert_eq!(app.results.get(&Rule::VpaRequest), Some(&Severity::Pass));
        let sidecar = &view.containers[1];
        assert_eq!(
            (sidecar.vpa_target, sidecar.vpa_lower, sidecar.vpa_upper),
            (None, None, None)
        );
        assert_eq!(
            view.run_results.get(&Rule::VpaLowConfidence),
            Some(&Severity::Pass)
        );
        assert_eq!(view.notes, run.notes);

        // Without policy.vpa the VPA is not reported, even when one was read.
        let policy = Policy::default();
        let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
        assert_eq!(view.vpa, None);
        assert_eq!(view.containers[0].vpa_target, None);
    }

    #[test]
    fn flattens_a_vpa_without_recommendation() {
        let mut run = healthy_run();
        let policy = vpa_policy();
        run.vpa = Some(VpaStatus::NoRecommendation { name: "web".into() });
        let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
        let vpa = view.vpa.unwrap();
        assert_eq!(vpa.state, VpaState::NoRecommendation);
        assert_eq!(vpa.name.as_deref(), Some("web"));
        assert!(vpa.containers.is_empty());
        run.vpa = Some(VpaStatus::Unavailable {
            reason: "the CRD is not installed".into(),
        });
        let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
        let vpa = view.vpa.unwrap();
        assert_eq!(vpa.state, VpaState::Unavailable);
        assert_eq!(vpa.name, None);
        assert_eq!(vpa.reason.as_deref(), Some("the CRD is not installed"));
        assert!(view.containers.iter().all(|c| c.vpa_target.is_none()));
    }

    #[test]
    fn sorts_findings_worst_first() {
        let mut run = healthy_run();
        run.containers[1].limit = None;
        run.containers[3].limit = None;
        run.memory.ticks_with_data = 50;
        spike(&mut run.containers[0], t(12, 2, 0), 900 * MIB);
        let policy = Policy {
            require_limit: false,
            ..Policy::default()
        };
        let verdict = evaluate(&policy, &run);
        let view = ReportView::build(&run, &verdict, &policy);
        let order: Vec<Severity> = view.findings.iter().map(|f| f.severity).collect();
        assert_eq!(order[0], Severity::Fail);
        assert_eq!(order[1], Severity::Inconclusive);
        assert_eq!(order[2], Severity::Warn);
        assert!(order[3..].iter().all(|s| *s == Severity::Pass));
        assert_eq!(view.rules_with(Severity::Fail), vec![Rule::Headroom]);
        assert_eq!(view.count(Severity::Warn), 1);
        assert_eq!(view.containers[1].allowed_peak, None);
        assert_eq!(
            view.containers[1].results.get(&Rule::NoLimit),
            Some(&Severity::Warn)
        );
    }
}

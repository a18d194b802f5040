//! The reporters: one `ReportView` holds everything any format needs, precomputed from the
//! `Run`, the `Verdict` and the `Policy` (per-container peaks against limits, per-rule results,
//! findings sorted worst first); each format is a `Reporter` that only renders the view as bytes.
//! Reporters do no other I/O and never reach back into the run. Strings that come from outside
//! (pod, container and scenario names, notes) go through `sanitize_terminal` before a terminal
//! sees them.

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
    Verdict,
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

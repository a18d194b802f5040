//! The reporters: one `ReportView` (in `view`) holds everything any format needs, precomputed
//! from the `Run`, the `Verdict` and the `Policy`; each format is a `Reporter` that only renders
//! the view as bytes: `terminal` (the human summary), `json` (`report.json`), `markdown`
//! (`summary.md` for MR notes and step summaries), `junit` (`junit.xml`), `openmetrics`
//! (`metrics.txt`), `svg` (`memory.svg`) and `html` (`report.html`). Reporters do no other I/O and
//! never reach back into the run. Strings from outside (pod, container, scenario, workload and VPA
//! names, k6 tags, notes, reasons) are escaped by each format: `sanitize_terminal` for terminals,
//! the helpers in `escape` for Markdown, XML, HTML and OpenMetrics.

mod advice;
#[cfg(test)]
mod analysis_tests;
pub mod breakdown;
pub mod escape;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod openmetrics;
#[cfg(test)]
mod rule_examples;
pub mod svg;
pub mod terminal;
#[cfg(test)]
mod terminal_tests;
mod text;
pub mod timeline;
mod view;
#[cfg(test)]
mod view_tests;

use std::borrow::Cow;

pub use breakdown::{BaselineView, CapacityRow, StageMemory, TrendRow};
pub use html::HtmlReporter;
pub use json::JsonReporter;
pub use junit::JunitReporter;
pub use markdown::MarkdownReporter;
pub use openmetrics::OpenMetricsReporter;
pub use svg::SvgReporter;
pub use terminal::TerminalReporter;
pub use timeline::MemoryPoint;
pub use view::{
    ContainerRow, MemoryView, ReportView, RestartRow, StageRow, VpaContainerView, VpaState, VpaView,
};

/// One output format.
pub trait Reporter {
    /// Short format name: "json", "terminal".
    fn name(&self) -> &'static str;
    /// The file it is written to under `--out`.
    fn file_name(&self) -> &'static str;
    fn render(&self, view: &ReportView, out: &mut dyn std::io::Write) -> std::io::Result<()>;
}

/// Every format written to `--out`: `report.json`, `summary.md`, `junit.xml`, `metrics.txt`,
/// `memory.svg`, `report.html` (the terminal summary goes to stdout instead).
pub fn all_file_reporters() -> Vec<Box<dyn Reporter>> {
    vec![
        Box::new(JsonReporter),
        Box::new(MarkdownReporter),
        Box::new(JunitReporter),
        Box::new(OpenMetricsReporter),
        Box::new(SvgReporter),
        Box::new(HtmlReporter),
    ]
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
    use crate::judge::fixtures::*;
    use crate::model::{LowConfidencePolicy, Policy, VpaContainer, VpaRule, VpaStatus};

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

    /// The view of a failing run with every part present: two pods, a VPA recommendation (low
    /// confidence), a headroom failure of `app`, an OOM kill, a container without limit, thresholds.
    pub(super) fn failing_view() -> ReportView {
        use crate::model::RestartReason;
        let mut run = healthy_run();
        spike(&mut run.containers[0], t(12, 4, 30), 912_680_550);
        run.containers
            .push(series("web-7d9f-x2k4p", "istio-proxy", None, 60 * MIB));
        run.restarts = vec![restart(
            "web-7d9f-a1b2c",
            "app",
            t(12, 5, 40),
            RestartReason::OomKilled,
        )];
        run.vpa = Some(recommendation("web", true));
        run.memory.notes = vec!["metrics-server repeats a sample until the next scrape".into()];
        let policy = Policy {
            max_p95: Some(std::time::Duration::from_millis(500)),
            max_error_rate: Some(0.01),
            ..vpa_policy()
        };
        let verdict = crate::judge::evaluate(&policy, &run);
        ReportView::build(&run, &verdict, &policy)
    }

    #[test]
    fn every_file_format_has_its_own_file() {
        let names: Vec<&str> = all_file_reporters().iter().map(|r| r.file_name()).collect();
        assert_eq!(
            names,
            [
                "report.json",
                "summary.md",
                "junit.xml",
                "metrics.txt",
                "memory.svg",
                "report.html"
            ]
        );
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
}

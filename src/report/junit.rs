//! `junit.xml`: the verdict as test results, for GitLab's merge-request test widget and GitHub
//! test reporters. One `<testcase>` per rule per container (classname `oomgate.<container>`,
//! name the rule id) and one per run-wide rule (classname `oomgate.run`); a failing rule carries
//! `<failure>` with its findings, an inconclusive or not-judged one `<skipped>`, a warning passes with a
//! `<system-out>` note. The counts on `<testsuites>` and `<testsuite>` add up to the testcases.
//! Every string is XML-escaped and stripped of characters XML 1.0 does not allow.

use std::fmt::Write as _;
use std::io;

use super::escape::{xml_attr as attr, xml_text as text};
use super::{ReportView, Reporter};
use crate::model::{Finding, Rule, Severity};

/// Writes `junit.xml`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JunitReporter;

impl Reporter for JunitReporter {
    fn name(&self) -> &'static str {
        "junit"
    }

    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, view: &ReportView, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render(view).as_bytes())
    }
}

/// One testcase: every finding of one rule for one container (or for the run).
#[derive(Debug)]
pub struct Case<'a> {
    /// `None` for a run-wide rule.
    pub container: Option<&'a str>,
    pub rule: Rule,
    pub findings: Vec<&'a Finding>,
}

impl Case<'_> {
    /// The worst severity among the case's findings.
    pub fn severity(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Pass)
    }

    fn classname(&self) -> String {
        format!("oomgate.{}", self.container.unwrap_or("run"))
    }
}

/// The testcases: containers in the view's order with their rules in rule order, then the
/// run-wide rules. Findings about a container the table does not list still get their own case.
pub fn cases(view: &ReportView) -> Vec<Case<'_>> {
    let mut cases: Vec<Case<'_>> = Vec::new();
    let mut order: Vec<Option<&str>> = view
        .containers
        .iter()
        .map(|c| Some(c.container.as_str()))
        .collect();
    for f in &view.findings {
        let c = f.container.as_deref();
        if c.is_some() && !order.contains(&c) {
            order.push(c);
        }
    }
    order.push(None);
    for container in order {
        let mut rules: Vec<Rule> = view
            .findings
            .iter()
            .filter(|f| f.container.as_deref() == container)
            .map(|f| f.rule)
            .collect();
        rules.sort();
        rules.dedup();
        for rule in rules {
            let findings = view
                .findings
                .iter()
                .filter(|f| f.container.as_deref() == container && f.rule == rule)
                .collect();
            cases.push(Case {
                container,
                rule,
                findings,
            });
        }
    }
    cases
}

/// The whole document.
pub fn render(view: &ReportView) -> String {
    let cases = cases(view);
    let count = |s: Severity| cases.iter().filter(|c| c.severity() == s).count();
    let (failures, skipped) = (
        count(Severity::Fail),
        count(Severity::Inconclusive) + count(Severity::Skipped),
    );
    let seconds = view.duration().as_secs_f64();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"oomgate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\" timestamp=\"{}\">",
        attr(&format!("oomgate: {}", view.scenario)),
        cases.len(),
        view.started_at.format("%Y-%m-%dT%H:%M:%S")
    );
    out.push_str("    <properties>\n");
    for (name, value) in [
        ("verdict", view.outcome.to_string()),
        ("exit_code", view.exit_code.to_string()),
        ("workload", view.workload.clone()),
        ("memory_source", view.memory.source.clone()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(&value)
        );
    }
    out.push_str("    </properties>\n");
    for case in &cases {
        testcase(case, &mut out);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn testcase(case: &Case<'_>, out: &mut String) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
        attr(&case.classname()),
        attr(case.rule.id())
    );
    let severity = case.severity();
    let worst: Vec<&&Finding> = case
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .collect();
    let message = worst
        .iter()
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    // Every finding of the case, one per line, marked with its severity.
    let body: String = case
        .findings
        .iter()
        .map(|f| {
            format!(
                "[{}] {}\n",
                super::text::severity_word(f.severity),
                f.message
            )
        })
        .collect();
    match severity {
        Severity::Fail => {
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                attr(&message),
                attr(case.rule.id()),
                text(&body)
            );
        }
        Severity::Inconclusive => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    </testcase>",
                attr(&format!("inconclusive: {message}")),
                text(&body)
            );
        }
        Severity::Skipped => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    </testcase>",
                attr(&format!("not judged: {message}")),
                text(&body)
            );
        }
        Severity::Warn | Severity::Pass => {
            let _ = writeln!(
                out,
                ">\n      <system-out>{}</system-out>\n    </testcase>",
                text(&body)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{recommendation, vpa_policy};
    use super::*;
    use crate::judge::evaluate;
    use crate::judge::fixtures::*;
    use crate::model::{Policy, RestartReason};

    fn view(run: &crate::model::Run, policy: &Policy) -> ReportView {
        ReportView::build(run, &evaluate(policy, run), policy)
    }

    #[test]
    fn one_case_per_rule_per_container_and_run_wide_ones() {
        let mut run = healthy_run();
        spike(&mut run.containers[2], t(12, 4, 30), 900 * MIB);
        run.restarts = vec![
            restart(
                "web-7d9f-a1b2c",
                "app",
                t(12, 5, 0),
                RestartReason::OomKilled,
            ),
            restart(
                "web-7d9f-x2k4p",
                "app",
                t(12, 5, 30),
                RestartReason::OomKilled,
            ),
        ];
        run.vpa = Some(recommendation("web", true));
        let v = view(&run, &vpa_policy());
        let cases = cases(&v);
        let mut pairs: Vec<(Option<&str>, Rule)> = v
            .findings
            .iter()
            .map(|f| (f.container.as_deref(), f.rule))
            .collect();
        pairs.sort();
        pairs.dedup();
        assert_eq!(cases.len(), pairs.len());
        let oom = cases
            .iter()
            .find(|c| c.container == Some("app") && c.rule == Rule::OomKilled)
            .unwrap();
        assert_eq!(oom.severity(), Severity::Fail);
        assert_eq!(oom.classname(), "oomgate.app");
        assert!(cases
            .iter()
            .any(|c| c.container.is_none() && c.rule == Rule::Coverage));
        assert_eq!(cases.last().unwrap().classname(), "oomgate.run");

        let xml = render(&v);
        let failures = cases
            .iter()
            .filter(|c| c.severity() == Severity::Fail)
            .count();
        assert_eq!(xml.matches("<testcase ").count(), cases.len());
        assert_eq!(xml.matches("<failure ").count(), failures);
        assert!(xml.contains(&format!(
            "tests=\"{}\" failures=\"{failures}\"",
            cases.len()
        )));
        assert!(xml.contains("type=\"oom-killed\""));
        // The vpa-peak warning passes, with its note.
        assert!(xml.contains("[warn] app: peak"), "{xml}");
    }

    #[test]
    fn inconclusive_rules_are_skipped() {
        let mut run = healthy_run();
        run.memory.ticks_with_data = 10;
        let v = view(&run, &Policy::default());
        let xml = render(&v);
        // The inconclusive coverage plus the three rules this run did not judge (no VPA
        // configured, no expected_peak_users for either container).
        assert!(xml.contains("skipped=\"4\""), "{xml}");
        assert!(xml.contains("<skipped message=\"inconclusive: "));
        assert_eq!(
            xml.matches("<skipped message=\"not judged: ").count(),
            3,
            "{xml}"
        );
    }

    #[test]
    fn hostile_names_are_escaped_and_illegal_characters_dropped() {
        let mut run = healthy_run();
        run.scenario = "a\"b<c>&\x1b[31m".into();
        for c in &mut run.containers {
            if c.container == "app" {
                c.container = "<x a='1'>\x1b\u{0}\"".into();
            }
        }
        let xml = render(&view(&run, &Policy::default()));
        assert!(!xml.contains('\x1b') && !xml.contains('\u{0}'));
        assert!(
            xml.contains("name=\"oomgate: a&quot;b&lt;c&gt;&amp;[31m\""),
            "{xml}"
        );
        assert!(xml.contains("classname=\"oomgate.&lt;x a=&apos;1&apos;&gt;&quot;\""));
        assert!(!xml.contains("<x a="));
    }
}

//! Untrusted strings (issue 7, point 6), end to end through the binary: a scenario name holding
//! `<script>`, quotes, a newline and an ANSI escape comes out escaped in report.html,
//! summary.md, junit.xml, metrics.txt and the terminal.

use crate::support::{require_cgroups, text, Case};

const SCENARIO: &str = r#"name: "<script>alert(1)</script>\"q'\nline2\u001b[31m"
target: { url: "http://127.0.0.1:{PORT}" }
workload:
  local:
    command: ["{BIN}", demo-service, --listen, "127.0.0.1:{PORT}"]
    ready_url: http://127.0.0.1:{PORT}/healthz
    ready_timeout: 10s
    limit: 256Mi
    container: app
load:
  stages: [{ duration: 2s, users: 2 }]
  requests:
    - { name: work, path: /api/work, expect_status: 200 }
  think_time: 10ms
memory: { interval: 200ms }
"#;

fn run() -> Option<(Case, std::process::Output)> {
    if !require_cgroups() {
        return None;
    }
    let case = Case::new(SCENARIO);
    let o = case.run(&[]);
    assert!(matches!(o.status.code(), Some(0 | 1 | 3)), "{}", text(&o));
    Some((case, o))
}

fn file(case: &Case, name: &str) -> String {
    std::fs::read_to_string(case.out_dir().join(name)).unwrap()
}

#[test]
fn html_escapes_the_scenario_name() {
    let Some((case, _)) = run() else { return };
    let html = file(&case, "report.html");
    assert!(
        !html.contains("<script>alert"),
        "raw <script> in report.html"
    );
    assert!(!html.contains('\u{1b}'), "raw ESC in report.html");
}

#[test]
fn markdown_escapes_the_scenario_name() {
    let Some((case, _)) = run() else { return };
    let md = file(&case, "summary.md");
    assert!(
        !md.contains("<script>"),
        "raw <script> in summary.md:\n{md}"
    );
    assert!(!md.contains('\u{1b}'), "raw ESC in summary.md");
    assert!(
        !md.contains("\nline2"),
        "the newline breaks summary.md:\n{md}"
    );
}

#[test]
fn junit_escapes_the_scenario_name() {
    let Some((case, _)) = run() else { return };
    let xml = file(&case, "junit.xml");
    assert!(
        !xml.contains("<script>"),
        "raw <script> in junit.xml:\n{xml}"
    );
    assert!(
        !xml.contains('\u{1b}'),
        "raw ESC (invalid in XML 1.0) in junit.xml"
    );
}

#[test]
fn openmetrics_escapes_the_scenario_name() {
    let Some((case, _)) = run() else { return };
    let m = file(&case, "metrics.txt");
    assert!(!m.contains('\u{1b}'), "raw ESC in metrics.txt");
    for line in m.lines() {
        assert!(
            line.starts_with('#') || line.is_empty() || !line.starts_with("line2"),
            "the newline broke an OpenMetrics sample:\n{m}"
        );
        // A label value may hold `"` only as `\"`.
        if let Some(v) = line.split("scenario=\"").nth(1) {
            assert!(v.contains("\\\"q"), "unescaped quote in {line}");
        }
    }
}

#[test]
fn terminal_output_has_no_raw_escape_from_the_name() {
    let Some((_, o)) = run() else { return };
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !out.contains("\u{1b}[31m"),
        "the name's ANSI escape reached stdout"
    );
    assert!(!o.stdout.contains(&0x1b), "raw ESC in stdout (not a tty)");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("\u{1b}[31m"),
        "the name's ANSI escape reached stderr"
    );
}

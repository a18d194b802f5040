//! Tests of `summary.md`: verdict first, the tables and numbers, escaping of outside strings, the
//! "What to change" block, and the 64 KiB limit with thousands of findings.

use super::super::tests::failing_view;
use super::*;
use crate::judge::evaluate;
use crate::judge::fixtures::*;
use crate::model::{Finding, Policy};

#[test]
fn a_failing_summary_starts_with_the_verdict_and_has_every_section() {
    let md = render(&failing_view());
    println!("{md}");
    assert!(md.starts_with("## ❌ oomgate FAIL: checkout-api\n"), "{md}");
    assert!(md.contains("**3 failing rules (headroom, no-limit, oom-killed)**"));
    for needle in [
        "| app | 1 GiB | 819.2 MiB | **870.4 MiB** ❌ | 85% | 12:04:30 | stage 4, hold at 200 users | web-7d9f-a1b2c | 512 MiB |",
        "| istio-proxy | ⚠️ none |",
        "| Results | headroom | no-limit | oom-killed | restarted | vpa-peak | vpa-request |",
        "| app | ❌ fail | ✅ pass | ❌ fail | ✅ pass | ⚠️ warn | ✅ pass |",
        "coverage ✅ pass · latency ✅ pass",
        "| 12000 | 3 (0.025%) | 33.3 req/s | 18 ms | 120 ms | 340 ms | 1.25 s |",
        "Thresholds: p95 ≤ 500 ms, error rate ≤ 1%.",
        "### Findings",
        "### What to change",
        "- **app**: raise the limit from 1 GiB to 1088 MiB (peak 870.4 MiB ÷ (1 − 20% headroom)), the peak being the highest of 146 samples (stage 4, hold at 200 users); it was OOM-killed",
        "; raise the request from 512 MiB to 575 MiB (the median of stage 4's settled part, 500 MiB at 200 users in the busiest pod, × 1.15).<br>",
        "Runtime heap for the 1088 MiB limit, for whichever runtime it runs: GOMEMLIMIT=979MiB (Go, 90%), \
         NODE\\_OPTIONS=--max-old-space-size=816 (Node.js, 75%), JAVA\\_TOOL\\_OPTIONS=-XX:MaxRAMPercentage=75 (Java).",
        "Patch for **app**:\n\n```yaml\n# app: peak 870.4 MiB under load; limit keeps 20% headroom",
        "        - name: app\n          resources:\n            requests:\n              memory: 575Mi\n            limits:\n              memory: 1088Mi\n",
        "          #   - { name: GOMEMLIMIT, value: \"979MiB\" }   # Go\n",
        "Patch for **istio-proxy**:",
        "VPA web: low confidence",
        // The per-stage breakdown, memory only: Goose has no per-stage load numbers.
        "| Stage | Users | Duration | Container | Peak | Median | p95 | Samples |\n",
        "| 4 hold | 200 | 2m | app | 870.4 MiB | 500 MiB | 500 MiB | 50 |\n| | | | sidecar | 40 MiB | 39 MiB | 40 MiB | 50 |\n",
        "| 1 ramp | 0→100 | 1m | app | 500 MiB | 490 MiB | 500 MiB | 24 |",
        "✅ No pod's working set grows through the holds (10 trends, steepest 0.00 MiB/min).",
        "<details><summary>All 10 trends</summary>",
        "- **app**: no per-user figure: the holds' medians differ by 0 B across the loads held, within twice the ",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    // Fails first; passes are left out.
    let findings = &md[md.find("### Findings").unwrap()..md.find("### What to change").unwrap()];
    let first = findings.lines().find(|l| l.starts_with("- ")).unwrap();
    assert!(first.starts_with("- ❌"), "{first}");
    assert!(!findings.contains("✅"));
    assert!(md.len() < MAX_BYTES);
}

#[test]
fn a_pass_says_so_and_lists_no_findings() {
    let run = healthy_run();
    let policy = Policy::default();
    let md = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy));
    assert!(md.starts_with("## ✅ oomgate PASS: checkout-api"), "{md}");
    // No VPA configured and no expected_peak_users: counted apart from the passes.
    assert!(
        md.contains("checks passed, 3 not judged (vpa-peak, capacity)"),
        "{md}"
    );
    assert!(
        md.contains(
            "keep the limit 1 GiB, or lower it to 763 MiB (peak 610 MiB ÷ (1 − 20% headroom))"
        ),
        "{md}"
    );
}

#[test]
fn outside_strings_are_escaped() {
    let mut run = healthy_run();
    run.scenario =
        "evil | <script>alert(1)</script> *bold* _it_ `code` [link](http://x)\nnext".into();
    for c in &mut run.containers {
        if c.container == "app" {
            c.container = "a|b<i>\x1b[31m".into();
        }
    }
    run.load.per_request[0].name = "GET /users?id=1|2 `x`".into();
    let policy = Policy::default();
    let md = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy));
    assert!(md.starts_with(
        "## ✅ oomgate PASS: evil \\| &lt;script&gt;alert(1)&lt;/script&gt; \\*bold\\* \\_it\\_ \\`code\\` \\[link\\](http://x) next\n"
    ), "{md}");
    assert!(
        md.contains("| a\\|b&lt;i&gt;\u{FFFD}\\[31m | 1 GiB |"),
        "{md}"
    );
    assert!(md.contains("| GET /users?id=1\\|2 \\`x\\` |"));
    assert!(!md.contains('\x1b'));
    let prose = &md[..md.find("```yaml").unwrap()];
    assert!(!prose.contains("<script") && !prose.contains("<i>"));
    // The YAML patch quotes the name instead.
    assert!(
        md.contains("        - name: \"a|b<i>\\u001B[31m\"\n"),
        "{md}"
    );
    // Every table row keeps its header's column count: the memory and results rows, four trends
    // (two pods, two holds) and four stage rows (the name is not the first cell there).
    let pipes = |l: &str| l.replace("\\|", "").matches('|').count();
    let lines: Vec<&str> = md.lines().collect();
    let header_of = |i: usize| {
        (0..i)
            .rev()
            .find(|&k| lines[k + 1].starts_with("|---"))
            .map(|k| lines[k])
            .unwrap()
    };
    let rows: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("| ") && lines[i].contains("| a\\|b"))
        .collect();
    assert_eq!(rows.len(), 2 + 4 + 4, "{md}");
    for i in rows {
        assert_eq!(pipes(lines[i]), pipes(header_of(i)), "{}", lines[i]);
    }
}

#[test]
fn thousands_of_findings_stay_under_64_kib_with_a_note() {
    let mut view = failing_view();
    let template = view.findings[0].clone();
    view.findings = (0..5000)
        .map(|i| Finding {
            message: format!(
                "app: finding number {i} with a long explanation of what happened and what to do about it"
            ),
            ..template.clone()
        })
        .collect();
    let md = render(&view);
    assert!(md.len() < MAX_BYTES, "{}", md.len());
    assert!(
        md.len() > MAX_BYTES - 4096,
        "the budget is used: {}",
        md.len()
    );
    assert!(md.contains("more findings not shown (summary.md is kept under 64 KiB)"));
    assert!(
        md.contains("### What to change"),
        "the advice survives the cut"
    );
    assert!(md.contains("finding number 0 "));
    assert!(!md.contains("finding number 4999 "));
    let shown = md.matches("finding number").count();
    let note = md
        .lines()
        .find(|l| l.contains("more findings not shown"))
        .unwrap();
    assert!(
        note.contains(&format!("{} more findings", 5000 - shown)),
        "{note}"
    );
}

#[test]
fn the_last_resort_cut_closes_a_code_fence() {
    let doc = format!("# head\n```yaml\n{}", "x: 1\n".repeat(20_000));
    let cut = fit(doc);
    assert!(cut.len() < MAX_BYTES);
    assert_eq!(cut.lines().filter(|l| l.starts_with("```")).count(), 2);
    assert!(cut.ends_with("report.html and report.json have everything._\n"));
}

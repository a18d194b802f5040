//! Tests of the analysis parts in every format, on one run that has them all: `app` leaks
//! 2 MiB/min under a 256 MiB limit (a `leak` failure), grows with the users (a capacity fit
//! predicting 300 expected users), runs Node with a heap flag (runtime settings to change), and
//! is compared with a baseline whose peak was 30 % lower (a `regression`); the view gets
//! per-stage load numbers as a driver that splits them by stage would give.

use crate::model::{Baseline, BaselineContainer};
use serde_json::Value;

use super::*;

use crate::analysis::testdata::{noise, run_of, sampled, users_at};
use crate::judge::evaluate;
use crate::judge::fixtures::{four_stages, t, GIB, MIB};
use crate::model::{Policy, Run, StageLoad};

/// The run and policy described above.
fn analysed() -> (Run, Policy) {
    let plan = four_stages();
    let app = sampled("web-1", "app", Some(256 * MIB), 360, 1, move |s| {
        60.0 + 0.2 * users_at(&plan, s) + 2.0 * s / 60.0 + noise(s as u64)
    });
    let sidecar = sampled("web-1", "sidecar", Some(64 * MIB), 360, 1, |s| {
        20.0 + 0.5 * noise(s as u64 + 7)
    });
    let mut run = run_of(vec![app, sidecar]);
    run.memory.interval = std::time::Duration::from_secs(1);
    (run.memory.ticks, run.memory.ticks_with_data) = (361, 361);
    run.env = vec![(
        "app".into(),
        vec![(
            "NODE_OPTIONS".into(),
            "--enable-source-maps --max-old-space-size=240".into(),
        )],
    )];
    run.baseline = Some(Baseline {
        path: "previous/report.json".into(),
        scenario: "checkout-api".into(),
        started_at: Some(t(11, 0, 0)),
        verdict: Some("pass".into()),
        containers: vec![
            BaselineContainer {
                container: "app".into(),
                peak_bytes: Some(100 * MIB),
                limit_bytes: Some(256 * MIB),
                suggested_limit_bytes: None,
            },
            BaselineContainer {
                container: "worker".into(),
                peak_bytes: Some(GIB),
                limit_bytes: None,
                suggested_limit_bytes: None,
            },
        ],
        driver: Some("goose".into()),
        p95_ms: Some(100.0),
    });
    let policy = Policy {
        expected_peak_users: Some(300),
        ..Policy::default()
    };
    (run, policy)
}

/// The view, with per-stage load numbers for every stage.
fn view() -> ReportView {
    let (run, policy) = analysed();
    let mut view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    for s in &mut view.stages {
        s.load = Some(StageLoad {
            index: s.index,
            requests: 1000 * (s.index as u64 + 1),
            failures: s.index as u64,
            rps: 10.0 * (s.index as f64 + 1.0),
            p95_ms: 100.0 + 10.0 * s.index as f64,
        });
    }
    view
}

#[test]
fn the_view_carries_stages_trends_capacity_and_baseline_from_the_analysis() {
    let (run, policy) = analysed();
    let view = ReportView::build(&run, &evaluate(&policy, &run), &policy);
    // Goose-like: no per-stage load.
    assert!(view.stages.iter().all(|s| s.load.is_none()));
    let hold = &view.stages[3];
    assert_eq!(hold.containers.len(), 2);
    let app = &hold.containers[0];
    assert_eq!((app.container.as_str(), app.samples), ("app", 121));
    assert!(app.peak >= app.p95 && app.p95 >= app.median, "{app:?}");
    // The trends are the judge's: the leak finding quotes the steepest growing one.
    let growing: Vec<_> = view.trends.iter().filter(|t| t.growing).collect();
    assert_eq!(growing.len(), 2, "{:#?}", view.trends);
    assert!((growing[0].mib_per_min() - 2.0).abs() < 0.2);
    assert_eq!(growing[0].allowed, Some(214_748_364));
    let leak = view
        .findings
        .iter()
        .find(|f| f.rule == crate::model::Rule::Leak && f.container.as_deref() == Some("app"))
        .unwrap();
    assert_eq!(leak.observed, Some(growing[0].bytes_per_min));
    // The capacity fit and prediction at 300 users.
    let fit = &view.capacity[0];
    assert!(
        fit.fit.contains("/user (2 holds at 100, 200 users)"),
        "{}",
        fit.fit
    );
    assert!(fit.prediction.is_some());
    // The baseline deltas: app, the container only the baseline has, the p95.
    let b = view.baseline.as_ref().unwrap();
    // Peaks (app, sidecar, worker), the suggested limits (app, sidecar: the baseline suggested
    // none), then the p95.
    assert_eq!(b.deltas.len(), 6, "{:#?}", b.deltas);
    assert_eq!(b.deltas[2].container.as_deref(), Some("worker"));
    assert_eq!(b.deltas[3].label(), "app suggested limit");
    assert_eq!(b.deltas[3].baseline, None);
    assert_eq!(b.other_driver, None);
}

#[test]
fn markdown_shows_the_stage_load_trends_fit_deltas_and_runtime_settings() {
    let md = markdown::render(&view());
    println!("{md}");
    for needle in [
        "| Stage | Users | Duration | Container | Peak | Median | p95 | Samples | Req/s | p95 latency | Errors |\n",
        "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|\n",
        " | 40.0 | 130 ms | 3 |\n| | | | sidecar | ",
        "### Trends through the holds",
        "| app | web-1 | stage 4 (200 users) | +",
        " MiB/min | ⚠️ yes | in ",
        "### Memory per user",
        "(2 holds at 100, 200 users), a line through two load levels (a third would check it); at 300 users ≈ ",
        "- **sidecar**: no per-user figure: the holds' medians differ by 17 KiB across the loads held, within twice the 0.36 MiB noise",
        "### Against the baseline\n\nCompared with the baseline (checkout-api, 2025-03-14 11:00 UTC), read from previous/report.json; a peak may grow by +10%.",
        "| app peak | 100 MiB | ",
        "| worker peak | 1 GiB | — | only in the baseline |",
        "| p95 latency | 100 ms | 120 ms | **+20%** ⚠️ |",
        "fix the growth first: its working set keeps growing with the load",
        "Runtime heap: no new setting until the growth is fixed",
    ] {
        let needle = needle.replace("NODE\\_OPTIONS   #", "NODE_OPTIONS   #");
        assert!(md.contains(&needle), "missing {needle:?}");
    }
    // The leaking app gets no patch, the sidecar does.
    assert!(!md.contains("Patch for **app**"), "{md}");
    assert!(md.contains("Patch for **sidecar**"), "{md}");
    assert!(!md.contains("NODE_OPTIONS   # Node.js"), "{md}");
    let app_row = md.lines().find(|l| l.starts_with("| app peak |")).unwrap();
    assert!(app_row.ends_with("** ❌ |"), "{app_row}");
    assert!(md.len() < markdown::MAX_BYTES);
}

#[test]
fn html_shows_the_same_sections_with_the_stage_rows_spanned() {
    let page = html::render(&view()).unwrap();
    for needle in [
        "<h2>What to change</h2>",
        "<h2>Trends through the holds</h2>",
        "<h2>Memory per user</h2>",
        "<h2>Against the baseline</h2>",
        "<h2>Stages</h2>",
        "<th class=\"num\">Req/s</th><th class=\"num\">p95 latency</th><th class=\"num\">Errors</th>",
        "<td rowspan=\"2\">4 hold</td>",
        "<td class=\"num\" rowspan=\"2\">40.0</td>",
        "<td class=\"name\">sidecar</td>",
        "<span class=\"badge fail\">fail</span>",
        "only in the baseline",
        "fix the growth first: its working set keeps growing with the load",
        "Runtime heap: no new setting until the growth is fixed",
        "<span class=\"over\">yes</span>",
    ] {
        assert!(page.contains(needle), "missing {needle:?}");
    }
    assert!(!page.contains("Patch for <b>app</b>"));
    assert!(page.contains("Patch for <b>sidecar</b>"));
}

#[test]
fn the_terminal_shows_a_compact_stage_table_and_the_analysis() {
    let mut out = Vec::new();
    TerminalReporter { color: false }
        .render(&view(), &mut out)
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    println!("{out}");
    let header = out.lines().find(|l| l.contains("CONTAINER  PEAK")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "STAGE",
            "USERS",
            "TIME",
            "CONTAINER",
            "PEAK",
            "MEDIAN",
            "P95",
            "REQ/S",
            "P95",
            "LAT",
            "ERRORS"
        ]
    );
    let hold = out.lines().find(|l| l.starts_with("  4 hold")).unwrap();
    assert!(hold.ends_with("40.0   130 ms   3"), "{hold}");
    for needle in [
        "Trends through the holds (≥ 1m, after 20% settle; horizon 1h)",
        "  ! app (pod web-1) stage 4 (200 users): +",
        "Memory per user\n  app: ",
        "Against the baseline (checkout-api, 2025-03-14 11:00 UTC): a peak may grow +10%",
        "app: fix the growth first: its working set keeps growing with the load",
        "What to change",
        "    Runtime heap: no new setting until the growth is fixed",
        "    Runtime heap for the ",
    ] {
        assert!(out.contains(needle), "missing {needle:?}");
    }
    let worker = out
        .lines()
        .find(|l| l.starts_with("  worker peak"))
        .unwrap();
    assert_eq!(
        worker.split_whitespace().collect::<Vec<_>>(),
        ["worker", "peak", "1", "GiB", "→", "—", "only", "in", "the", "baseline"]
    );
    // Findings come before the advice.
    assert!(out.find("\nFindings\n").unwrap() < out.find("\nWhat to change\n").unwrap());
}

#[test]
fn json_stages_carry_container_statistics_and_load_only_when_known() {
    let with_load = json::to_value(&view());
    let stage = &with_load["stages"][3];
    assert_eq!(stage["requests"], 4000);
    assert_eq!(stage["failures"], 3);
    assert_eq!(stage["rps"], 40.0);
    assert_eq!(stage["p95_ms"], 130.0);
    let app = &stage["containers"][0];
    assert_eq!(app["container"], "app");
    assert_eq!(app["samples"], 121);
    for key in ["peak_bytes", "median_bytes", "p95_bytes"] {
        assert!(app[key].as_u64().unwrap() > 100 * MIB, "{key}: {app}");
    }
    let (run, policy) = analysed();
    let plain = json::to_value(&ReportView::build(&run, &evaluate(&policy, &run), &policy));
    let stage = plain["stages"][3].as_object().unwrap();
    for key in ["requests", "failures", "rps", "p95_ms"] {
        assert!(!stage.contains_key(key), "{key} without per-stage load");
    }
    assert_eq!(stage["containers"], with_load["stages"][3]["containers"]);
    // Both validate (json_tests checks the schema itself).
    let schema: Value =
        serde_json::from_str(include_str!("../../schema/report.schema.json")).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    for doc in [&with_load, &plain] {
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert_eq!(errors, Vec::<String>::new());
    }
    // A stage without samples of a container has nulls, which the schema allows.
    let mut empty = view();
    empty.stages[0].containers[1].peak = None;
    empty.stages[0].containers[1].median = None;
    empty.stages[0].containers[1].p95 = None;
    empty.stages[0].containers[1].samples = 0;
    empty.stages[0].load = None;
    let doc = json::to_value(&empty);
    assert_eq!(doc["stages"][0]["containers"][1]["peak_bytes"], Value::Null);
    assert!(validator.is_valid(&doc));
    // The schema rejects drift in the new parts.
    let mut bad = with_load.clone();
    bad["stages"][0]["containers"][0]["peak_bytes"] = Value::from(-1);
    assert!(!validator.is_valid(&bad));
    let mut bad = with_load;
    bad["stages"][0]["containers"][0]["extra"] = Value::from(1);
    assert!(!validator.is_valid(&bad));
}

#[test]
fn openmetrics_has_the_leak_rate_per_pod_and_the_baseline_peaks() {
    let text = openmetrics::render(&view());
    assert!(text.contains(
        "# TYPE oomgate_leak_bytes_per_minute gauge\n# UNIT oomgate_leak_bytes_per_minute bytes_per_minute\n"
    ));
    let leak = text
        .lines()
        .find(|l| l.starts_with("oomgate_leak_bytes_per_minute{container=\"app\",pod=\"web-1\"} "))
        .unwrap();
    let rate: f64 = leak.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((rate / MIB as f64 - 2.0).abs() < 0.2, "{leak}");
    assert!(text.contains("oomgate_leak_bytes_per_minute{container=\"sidecar\",pod=\"web-1\"} "));
    assert!(text.contains(&format!(
        "oomgate_baseline_peak_bytes{{container=\"app\"}} {}\n",
        100 * MIB
    )));
    assert!(text.contains(&format!(
        "oomgate_baseline_peak_bytes{{container=\"worker\"}} {GIB}\n"
    )));
    assert!(text.ends_with("# EOF\n"));
    // Without holds long enough or a baseline, neither family appears.
    let (mut run, _) = analysed();
    run.baseline = None;
    let policy = Policy {
        leak: crate::model::LeakRule {
            min_hold: std::time::Duration::from_secs(600),
            ..Default::default()
        },
        ..Policy::default()
    };
    let text = openmetrics::render(&ReportView::build(&run, &evaluate(&policy, &run), &policy));
    assert!(!text.contains("oomgate_leak_bytes_per_minute"));
    assert!(!text.contains("oomgate_baseline_peak_bytes"));
}

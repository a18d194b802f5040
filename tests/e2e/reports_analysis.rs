//! The analysis parts of the reports against real consumers, on the realistic run of
//! `report_fixtures` (a leak in pod q7m2n through the 200-user hold, a baseline 30 % lower, a
//! GOMEMLIMIT close to the limit, 300 expected users): `report.json` with per-stage container
//! statistics (and per-stage load, as a driver that splits it by stage gives) validated by the
//! real `check-jsonschema` against `schema/report.schema.json`; the leak and baseline families
//! of `metrics.txt` read back by `prometheus_client`'s OpenMetrics parser; the stage table, the
//! trends, the capacity fit, the delta table and "What to change" (runtime settings and YAML
//! patch) in `summary.md`, `report.html` (in headless Chromium, with hostile names) and the
//! terminal. Missing tools fail under `CI=true` and are noted and skipped otherwise.

use std::process::Command;

use crate::report_fixtures::*;
use oomgate::model::StageLoad;
use oomgate::report::{html, json, markdown, openmetrics, Reporter, TerminalReporter};
use serde_json::{json, Value};

/// The realistic view with per-stage load numbers on every stage.
fn with_stage_load(mut view: oomgate::report::ReportView) -> oomgate::report::ReportView {
    for s in &mut view.stages {
        let i = s.index as u64;
        s.load = Some(StageLoad {
            index: s.index,
            requests: 20_000 + 10_000 * i,
            failures: 10 * i,
            rps: 150.0 + 50.0 * i as f64,
            p95_ms: 90.0 + 20.0 * i as f64,
        });
    }
    view
}

#[test]
fn report_json_with_stage_containers_validates_with_check_jsonschema() {
    let found = Command::new("check-jsonschema")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have(found, "check-jsonschema", "pip install check-jsonschema") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = view_of(realistic());
    let loaded = with_stage_load(view_of(realistic()));
    let docs = [
        ("plain.json", json::to_value(&plain)),
        ("loaded.json", json::to_value(&loaded)),
        (
            "hostile.json",
            json::to_value(&with_stage_load(view_of(hostile()))),
        ),
    ];
    for (name, doc) in &docs {
        std::fs::write(
            dir.path().join(name),
            serde_json::to_vec_pretty(doc).unwrap(),
        )
        .unwrap();
    }
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");
    let out = Command::new("check-jsonschema")
        .args(["--schemafile", schema])
        .args(docs.iter().map(|(name, _)| dir.path().join(name)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the documents say: every stage lists both containers; load only when known.
    let (plain, loaded) = (&docs[0].1, &docs[1].1);
    for stage in plain["stages"].as_array().unwrap() {
        let names: Vec<&str> = stage["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["container"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["app", "envoy"]);
        assert!(stage.get("rps").is_none() && stage.get("requests").is_none());
    }
    let hold = &loaded["stages"][3];
    assert_eq!(
        (
            &hold["requests"],
            &hold["failures"],
            &hold["rps"],
            &hold["p95_ms"]
        ),
        (&json!(50_000), &json!(30), &json!(300.0), &json!(150.0))
    );
    let app = &hold["containers"][0];
    // Two pods every 5 s through 5 minutes, end included (the OOM-killed pod misses one).
    assert_eq!(app["samples"], 121);
    assert_eq!(app["peak_bytes"], plain["containers"][0]["peak_bytes"]);
    assert!(app["median_bytes"].as_u64() < app["p95_bytes"].as_u64());
}

#[test]
fn metrics_carry_the_leak_rate_per_pod_and_the_baseline_peaks_for_the_real_parser() {
    if !have(
        python_module("prometheus_client"),
        "prometheus_client",
        "pip install prometheus-client==0.26.0",
    ) {
        return;
    }
    for view in [view_of(realistic()), view_of(hostile())] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.txt");
        std::fs::write(&path, openmetrics::render(&view)).unwrap();
        let out = python(
            "import sys, json\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             text = open(sys.argv[1], encoding='utf-8').read()\n\
             print(json.dumps([[f.name, f.type, f.unit, s.labels, s.value]\n\
               for f in text_string_to_metric_families(text) for s in f.samples\n\
               if f.name in ('oomgate_leak_bytes_per_minute', 'oomgate_baseline_peak_bytes')]))",
            &[&path],
        );
        let samples: Vec<(String, String, String, Value, f64)> =
            serde_json::from_str(&out).unwrap();
        let app = view.containers[0].container.replace('\x1b', "\u{FFFD}");
        let pod = |p: &str| view_pod(&view, p);
        let leak = |pod: &str| {
            let labels = json!({ "container": app, "pod": pod });
            let s = samples
                .iter()
                .find(|s| s.0 == "oomgate_leak_bytes_per_minute" && s.3 == labels);
            let s = s.unwrap_or_else(|| panic!("no leak rate for {labels} in {out}"));
            assert_eq!((s.1.as_str(), s.2.as_str()), ("gauge", "bytes_per_minute"));
            s.4 / MIB as f64
        };
        // Pod q7m2n grows 1.45 MiB/s (87 MiB/min) through the 200-user hold until it is
        // OOM-killed (the fit through the kill says 76 MiB/min); x2k4p is a sawtooth.
        let leaking = leak(&pod(POD_B));
        assert!((70.0..90.0).contains(&leaking), "{leaking} MiB/min");
        assert!(leak(&pod(POD_A)).abs() < 1.0);
        let baseline = |labels: Value| {
            samples
                .iter()
                .find(|s| s.0 == "oomgate_baseline_peak_bytes" && s.3 == labels)
                .unwrap_or_else(|| panic!("no baseline peak for {labels} in {out}"))
                .4
        };
        assert_eq!(baseline(json!({ "container": app })), (780 * MIB) as f64);
        assert_eq!(baseline(json!({ "container": "envoy" })), (66 * MIB) as f64);
    }
}

/// The pod name as the view holds it (the hostile run appends markup to it), read back as the
/// parser does (ESC → U+FFFD).
fn view_pod(view: &oomgate::report::ReportView, pod: &str) -> String {
    let p = view.trends.iter().find(|t| t.pod.starts_with(pod)).unwrap();
    p.pod.replace('\x1b', "\u{FFFD}")
}

#[test]
fn summary_md_shows_the_stages_trends_fit_deltas_and_what_to_change() {
    let md = markdown::render(&with_stage_load(view_of(realistic())));
    for needle in [
        "| Stage | Users | Duration | Container | Peak | Median | p95 | Samples | Req/s | p95 latency | Errors |",
        "| 4 hold | 200 | 5m | app | ",
        " | 300.0 | 150 ms | 30 |\n| | | | envoy | ",
        // The judge's trends: the OOM kill in the hold leaves q7m2n's growth within the noise.
        "| app | checkout-api-7d9f6c5b8-q7m2n | stage 4 (200 users) | +76.01 MiB/min | no | — |",
        "<details><summary>All 8 trends</summary>",
        "### Memory per user",
        "; at 300 users ≈ ",
        "Compared with the baseline (checkout-api, 2025-03-13 12:00 UTC), read from main/oomgate-report/report.json; a peak may grow by +10%.",
        "| app peak | 780 MiB | ",
        "| p95 latency | 141 ms | 148 ms | +5% |",
        "raise the limit from 1 GiB to ",
        "it was OOM-killed, so its real need lies above what was measured",
        "Runtime heap for the ",
        "GOMEMLIMIT=",
        "            - name: GOMEMLIMIT   # Go\n              value: \"",
        "Patch for **envoy**:",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    let app = md.lines().find(|l| l.starts_with("| app peak |")).unwrap();
    assert!(app.ends_with("** ❌ |"), "the regression is marked: {app}");
    assert!(md.len() < markdown::MAX_BYTES);
}

#[test]
fn the_terminal_shows_the_analysis_with_hostile_names_sanitized() {
    for (view, hostile) in [(view_of(realistic()), false), (view_of(hostile()), true)] {
        let mut out = Vec::new();
        TerminalReporter { color: false }
            .render(&with_stage_load(view), &mut out)
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        for needle in [
            "\nStages (working set over all pods' samples in the stage)\n",
            "REQ/S  P95 LAT  ERRORS",
            "\nTrends through the holds (",
            "\nMemory per user\n",
            "\nWhat to change\n",
            "- name: GOMEMLIMIT   # Go",
        ] {
            let needle = if hostile && needle.contains("GOMEMLIMIT") {
                "- name: NODE_OPTIONS   # Node.js"
            } else {
                needle
            };
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
        assert!(out.contains(" a peak may grow +10%"));
        assert!(!out.contains('\x1b'), "an escape survived");
        if hostile {
            assert!(out.contains("--title=<script>alert(5)</script> --max-old-space-size="));
        }
    }
}

#[test]
fn the_analysis_sections_render_in_chromium_with_hostile_names_escaped() {
    let page = html::render(&with_stage_load(view_of(hostile()))).unwrap();
    for needle in [
        "<h2>Trends through the holds</h2>",
        "<h2>Memory per user</h2>",
        "<h2>Against the baseline</h2>",
        "<h2>What to change</h2>",
        "prev/&lt;img src=x onerror=alert(4)&gt;.json",
        "--title=&lt;script&gt;alert(5)&lt;/script&gt;",
    ] {
        assert!(page.contains(needle), "missing {needle:?}");
    }
    if !have_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, &page).unwrap();
    let (dom, stderr) = chromium(&path, &["--dump-dom".into()]);
    assert_eq!(console_errors(&stderr, &path), Vec::<String>::new());
    assert!(!dom.to_lowercase().contains("<script") && !dom.contains("<img"));
    for heading in ["Trends through the holds", "Against the baseline", "Stages"] {
        assert!(dom.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
    assert!(
        dom.contains("rowspan=\"2\""),
        "stage rows span their containers"
    );
}

/// The realistic view rendered by every reporter also keeps working through `Reporter`.
#[test]
fn every_reporter_renders_the_analysed_view() {
    let view = with_stage_load(view_of(hostile()));
    for r in oomgate::report::all_file_reporters() {
        let mut bytes = Vec::new();
        r.render(&view, &mut bytes).unwrap();
        assert!(!bytes.is_empty(), "{}", r.file_name());
    }
}

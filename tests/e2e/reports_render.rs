//! End-to-end checks of the report files against real consumers: every format rendered from one
//! realistic run through `all_file_reporters`; `junit.xml` and `memory.svg` parsed back by
//! Python's `xml.etree`; `metrics.txt` parsed by the real OpenMetrics parser of Python's
//! `prometheus_client`; `report.html` opened in headless Chromium, with hostile names, which must
//! render without console errors, with no script element in the DOM, and leave a screenshot.
//! Missing tools (python3, prometheus_client, chromium) fail the test under `CI=true` and are
//! noted and skipped otherwise. `OOMGATE_UPDATE_DOCS=1` also refreshes `docs/report.png`,
//! `docs/memory.png` and `docs/memory.svg` from the realistic run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::report_fixtures::*;
use oomgate::model::Severity;
use oomgate::report::{junit, markdown, svg};
use serde_json::json;

#[test]
fn junit_parses_back_with_counts_matching_the_findings() {
    if !have_python() {
        return;
    }
    for view in [view_of(realistic()), view_of(hostile())] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, junit::render(&view)).unwrap();
        let out = python(
            "import sys, json, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             suite = root.find('testsuite')\n\
             cases = suite.findall('testcase')\n\
             print(json.dumps([[root.get(k) for k in ('tests', 'failures', 'skipped', 'errors')],\n\
               [suite.get(k) for k in ('tests', 'failures', 'skipped', 'errors')],\n\
               [sum(1 for c in cases if c.find(k) is not None) for k in ('failure', 'skipped')],\n\
               sorted([c.get('classname'), c.get('name')] for c in cases)]))",
            &[&path],
        );
        type Parsed = (Vec<String>, Vec<String>, Vec<usize>, Vec<(String, String)>);
        let (totals, suite, marked, cases): Parsed = serde_json::from_str(&out).unwrap();
        // Expected from the findings: one testcase per (container, rule), its worst severity;
        // names read back exactly, minus what XML cannot carry (ESC).
        let mut worst: BTreeMap<(String, String), Severity> = BTreeMap::new();
        for f in &view.findings {
            let c = f.container.as_deref().unwrap_or("run").replace('\x1b', "");
            let e = worst.entry((format!("oomgate.{c}"), f.rule.id().into()));
            let s = e.or_insert(f.severity);
            *s = (*s).max(f.severity);
        }
        let count = |s: Severity| worst.values().filter(|v| **v == s).count();
        let (fails, skips) = (
            count(Severity::Fail),
            count(Severity::Inconclusive) + count(Severity::Skipped),
        );
        let counts = [worst.len(), fails, skips, 0]
            .map(|n| n.to_string())
            .to_vec();
        assert_eq!(
            (&totals, &suite, &marked),
            (&counts, &counts, &vec![fails, skips])
        );
        assert_eq!(cases, worst.into_keys().collect::<Vec<_>>());
        assert!(fails >= 3, "headroom, oom-killed and vpa-peak fail");
    }
}

#[test]
fn openmetrics_parses_with_the_real_parser() {
    let module = python_module("prometheus_client");
    if !have(
        module,
        "prometheus_client",
        "pip install prometheus-client==0.26.0",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.txt");
    let view = view_of(hostile());
    let text = oomgate::report::openmetrics::render(&view);
    assert!(text.ends_with("# EOF\n"));
    std::fs::write(&path, &text).unwrap();
    let out = python(
        "import sys, json\n\
         from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
         text = open(sys.argv[1], encoding='utf-8').read()\n\
         print(json.dumps([[f.name, f.type, s.name, s.labels, s.value]\n\
           for f in text_string_to_metric_families(text) for s in f.samples]))",
        &[&path],
    );
    let samples: Vec<(String, String, String, serde_json::Value, f64)> =
        serde_json::from_str(&out).unwrap();
    let value = |family: &str, kind: &str, name: &str, labels: serde_json::Value| {
        let found = samples
            .iter()
            .find(|s| s.0 == family && s.2 == name && s.3 == labels);
        let s = found.unwrap_or_else(|| panic!("no {name} {labels} in {out}"));
        assert_eq!(s.1, kind, "{family}");
        s.4
    };
    let none = || json!({});
    let counter = |f: &str| value(f, "counter", &format!("{f}_total"), none());
    assert_eq!(counter("oomgate_requests"), 212_400.0);
    assert_eq!(counter("oomgate_failures"), 318.0);
    let verdict = |v: &str| {
        value(
            "oomgate_verdict",
            "gauge",
            "oomgate_verdict",
            json!({ "verdict": v }),
        )
    };
    assert_eq!(
        (verdict("fail"), verdict("pass"), verdict("inconclusive")),
        (1.0, 0.0, 0.0)
    );
    let gauge = |f: &str| value(f, "gauge", f, none());
    assert_eq!(gauge("oomgate_p95_seconds"), 0.148);
    assert_eq!(gauge("oomgate_coverage_ratio"), 1.0);
    let positive = [
        "oomgate_p50_seconds",
        "oomgate_p99_seconds",
        "oomgate_error_ratio",
    ];
    assert!(positive.iter().all(|f| gauge(f) > 0.0));
    // Every per-container family, keyed by the hostile name read back exactly (ESC → U+FFFD).
    let app = &view.containers[0].container;
    let app = json!({ "container": app.replace('\x1b', "\u{FFFD}") });
    let envoy = json!({ "container": "envoy" });
    let family = |f: &str, labels: &serde_json::Value| value(f, "gauge", f, labels.clone());
    assert_eq!(family("oomgate_limit_bytes", &envoy), 268_435_456.0);
    assert_eq!(family("oomgate_limit_bytes", &app), GIB as f64);
    assert_eq!(family("oomgate_allowed_peak_bytes", &app), 858_993_459.0);
    assert_eq!(family("oomgate_request_bytes", &app), 512.0 * MIB as f64);
    assert_eq!(family("oomgate_vpa_target_bytes", &app), 640.0 * MIB as f64);
    let peak = family("oomgate_peak_bytes", &app);
    assert_eq!(peak, view.containers[0].peak.unwrap() as f64);
    assert!((family("oomgate_headroom_ratio", &app) - peak / GIB as f64).abs() < 1e-12);
}

#[test]
fn the_svg_is_well_formed_and_labels_the_limit() {
    if !have_python() {
        return;
    }
    for view in [view_of(realistic()), view_of(hostile())] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.svg");
        std::fs::write(&path, svg::render(&view).unwrap()).unwrap();
        let out = python(
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             print(root.tag, root.get('width'), root.get('height'))\n\
             for t in root.iter('{http://www.w3.org/2000/svg}text'): print(repr((t.text or '').strip()))",
            &[&path],
        );
        assert!(
            out.starts_with("{http://www.w3.org/2000/svg}svg 800 800\n"),
            "{out}"
        );
        for label in [
            "'limit 1 GiB'",
            "'limit 256 MiB'",
            "'allowed peak 819.2 MiB (20% headroom)'",
            "'VPA target 640 MiB'",
        ] {
            assert!(out.contains(label), "missing {label} in\n{out}");
        }
        assert!(out.contains("'OOM kill "), "{out}");
    }
    let realistic = svg::render(&view_of(realistic())).unwrap();
    assert!(realistic.contains(">\nOOM kill checkout-api-7d9f6c5b8-q7m2n\n<"));
}

#[test]
fn the_html_report_renders_in_chromium_without_errors_or_injected_script() {
    if !have_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The check can see console errors: a page with a broken script must show up.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><p>x</p><script>no_such_function()</script>",
    )
    .unwrap();
    let (_, stderr) = chromium(&control, &["--dump-dom".into()]);
    assert!(
        !console_errors(&stderr, &control).is_empty(),
        "chromium's console log is not visible:\n{stderr}"
    );

    let page = dir.path().join("report.html");
    std::fs::write(
        &page,
        oomgate::report::html::render(&view_of(hostile())).unwrap(),
    )
    .unwrap();
    let (dom, stderr) = chromium(&page, &["--dump-dom".into()]);
    assert_eq!(
        console_errors(&stderr, &page),
        Vec::<String>::new(),
        "console errors"
    );
    assert!(dom.contains("<header class=\"banner fail\">"), "{dom}");
    assert!(
        !dom.to_lowercase().contains("<script"),
        "a script element survived"
    );
    assert!(!dom.contains("<img"), "an injected element survived");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is shown as text"
    );
    let png = dir.path().join("hostile.png");
    screenshot(&page, &png, (1200, 1600));
}

/// Every format through `all_file_reporters`, as `--out` writes them; then screenshots of the
/// report and the chart (refreshing `docs/` with `OOMGATE_UPDATE_DOCS=1`).
#[test]
fn every_file_format_renders_and_the_realistic_report_is_screenshotted() {
    let dir = tempfile::tempdir().unwrap();
    let view = view_of(realistic());
    write_all(&view, dir.path());
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let md = read("summary.md");
    assert!(md.starts_with("## ❌ oomgate FAIL: checkout-api") && md.len() < markdown::MAX_BYTES);
    assert!(md.contains("raise the limit from 1 GiB to"), "{md}");
    assert!(read("metrics.txt").ends_with("# EOF\n"));
    assert!(read("junit.xml").contains("<testcase classname=\"oomgate.app\" name=\"headroom\""));
    assert!(read("report.json").contains("\"schema\": \"oomgate.report/v1\""));
    let chart_svg = read("memory.svg");
    assert!(chart_svg.contains("limit 1 GiB") && chart_svg.contains("OOM kill"));
    assert!(
        read("report.html").contains(chart_svg.trim()),
        "the chart is inlined"
    );
    if !have_chromium() {
        return;
    }
    let (page, chart) = (
        dir.path().join("report.html"),
        dir.path().join("memory.svg"),
    );
    let (_, stderr) = chromium(&page, &["--dump-dom".into()]);
    assert_eq!(console_errors(&stderr, &page), Vec::<String>::new());
    // The docs show the whole page.
    let report_png = dir.path().join("report.png");
    screenshot(&page, &report_png, (1200, 5300));
    let memory_png = dir.path().join("memory.png");
    let height = svg::PANEL_HEIGHT * view.containers.len() as u32;
    screenshot(&chart, &memory_png, (svg::WIDTH, height));
    if std::env::var("OOMGATE_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&report_png, docs.join("report.png")).unwrap();
        std::fs::copy(&memory_png, docs.join("memory.png")).unwrap();
        std::fs::copy(&chart, docs.join("memory.svg")).unwrap();
    }
}

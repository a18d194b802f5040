//! Tests of `report.html`: self-contained, every section present, outside strings escaped.

use super::super::tests::failing_view;
use super::*;
use crate::judge::evaluate;
use crate::judge::fixtures::*;
use crate::model::Policy;

#[test]
fn a_self_contained_page_with_every_section() {
    let page = render(&failing_view()).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("default-src 'none'"));
    assert!(!page.contains("<script") && !page.contains("https://"));
    // The only URL is the SVG namespace, which loads nothing.
    assert_eq!(
        page.matches("http://").count(),
        page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(page.contains("<header class=\"banner fail\"><div class=\"word\">FAIL</div>"));
    for needle in [
        "<h2>Memory over time</h2>",
        "<svg width=\"800\"",
        "<h2>Findings</h2>",
        "<h2>Load</h2>",
        "<h2>What to change</h2>",
        "<h2>Stages</h2>",
        "memory: 1088Mi",
        "OOMKilled",
        "<span class=\"badge fail\">fail</span>",
        "passed checks</summary>",
    ] {
        assert!(page.contains(needle), "missing {needle:?}");
    }
}

#[test]
fn outside_strings_are_escaped() {
    let mut run = healthy_run();
    run.scenario = "<script>alert(1)</script>\"'&".into();
    run.workload = "deployment/<b>x</b>".into();
    for c in &mut run.containers {
        if c.container == "app" {
            c.container = "<img src=x onerror=alert(1)>".into();
        }
    }
    run.load.per_request[0].name = "GET /?q=<svg/onload=alert(1)>".into();
    let policy = Policy::default();
    let page = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy)).unwrap();
    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("<img src=x"));
    assert!(!page.contains("<svg/onload"));
    assert!(!page.contains("<b>x</b>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

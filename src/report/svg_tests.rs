//! Tests of `memory.svg`: well-formed, one panel per container with its lines and labels, the
//! no-data image, and escaped names.

use super::super::tests::failing_view;
use super::*;
use crate::judge::evaluate;
use crate::judge::fixtures::*;
use crate::model::Policy;

#[test]
fn draws_one_panel_per_container_with_the_threshold_labels() {
    let svg = render(&failing_view()).unwrap();
    assert!(
        svg.starts_with("<svg width=\"800\" height=\"1200\""),
        "{}",
        &svg[..200]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    for needle in [
        "limit 1 GiB",
        "allowed peak 819.2 MiB (20% headroom)",
        "VPA target 512 MiB",
        "peak 870.4 MiB",
        "OOM kill web-7d9f-a1b2c",
        "users (right axis)",
        "4 · hold 200",
        "limit 128 MiB",
        "FAIL: headroom, oom-killed",
        "12:04:00",
    ] {
        assert!(svg.contains(needle), "missing {needle:?}");
    }
}

#[test]
fn without_samples_the_image_says_so() {
    let mut run = healthy_run();
    for c in &mut run.containers {
        c.samples.clear();
    }
    let policy = Policy::default();
    let svg = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy)).unwrap();
    assert!(svg.contains("no memory data"));
    assert!(svg.starts_with("<svg width=\"800\" height=\"400\""));
    run.containers.clear();
    let svg = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy)).unwrap();
    assert!(svg.contains("no memory data"));
}

#[test]
fn names_are_escaped_and_stripped_of_controls() {
    let mut run = healthy_run();
    for c in &mut run.containers {
        if c.container == "app" {
            c.container = "<script>alert(1)</script>\x1b[31m".into();
        }
    }
    let policy = Policy::default();
    let svg = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy)).unwrap();
    assert!(!svg.contains("<script"));
    assert!(!svg.contains('\x1b'));
    assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn draws_odd_runs_without_panicking() {
    use crate::model::RestartReason;
    // No stages, one pod, GiB scale, no limit, a restart for another reason, a kernel peak.
    let mut run = local_run();
    run.stages.clear();
    run.containers[0].limit = None;
    for s in &mut run.containers[0].samples {
        s.working_set *= 60;
    }
    run.containers[0].kernel_peak_usage = Some((7 * GIB, t(12, 3, 0)));
    run.restarts = vec![restart(
        "local",
        "app",
        t(12, 5, 0),
        RestartReason::Other("Error".into()),
    )];
    let policy = Policy::default();
    let svg = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy)).unwrap();
    assert!(svg.contains("restart local"));
    assert!(svg.contains(" GiB"));
    assert!(!svg.contains("limit "), "no limit line without a limit");
    assert!(!svg.contains("users (right axis)"));
    // A run shorter than a second, with a single sample.
    let mut run = local_run();
    run.containers[0].samples.truncate(1);
    run.ended_at = run.started_at;
    let svg = render(&ReportView::build(&run, &evaluate(&policy, &run), &policy)).unwrap();
    assert!(svg.contains("peak 100 MiB"));
}

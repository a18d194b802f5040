//! `metrics.txt`: the run's numbers in the OpenMetrics text format, for GitLab's metrics report
//! (the merge-request widget shows each value against the target branch). Per container: peak,
//! limit, allowed peak, request, VPA target (bytes) and peak ÷ limit; for the run: latency
//! percentiles (seconds), requests and failures (counters, `_total`), error and coverage ratios,
//! the findings by severity (`oomgate_findings{severity="skipped"}` counts rules that were not
//! judged), and the verdict as `oomgate_verdict{verdict="…"}` 1 or 0; the steepest working-set trend
//! through a hold per container and pod (`oomgate_leak_bytes_per_minute`) when a hold was long
//! enough to judge, and each container's peak in the `--baseline` report
//! (`oomgate_baseline_peak_bytes`) when there is one. Each family has `# TYPE`, `# UNIT` where the
//! name ends in one, and `# HELP`; label values are escaped; the text ends in `# EOF`.

use std::fmt::Write as _;
use std::io;

use super::escape::label_value;
use super::{ReportView, Reporter};
use crate::analysis::baseline::Metric;
use crate::model::{Outcome, Severity};

/// Writes `metrics.txt`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMetricsReporter;

impl Reporter for OpenMetricsReporter {
    fn name(&self) -> &'static str {
        "openmetrics"
    }

    fn file_name(&self) -> &'static str {
        "metrics.txt"
    }

    fn render(&self, view: &ReportView, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render(view).as_bytes())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Gauge,
    Counter,
}

/// One metric family being written.
struct Family<'a> {
    name: &'a str,
    kind: Kind,
    help: &'a str,
    /// (labels, value); labels already rendered as `{…}` or empty.
    samples: Vec<(String, f64)>,
}

impl Family<'_> {
    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let kind = match self.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
        for unit in ["bytes", "seconds", "ratio", "bytes_per_minute"] {
            if self.name.ends_with(&format!("_{unit}")) {
                let _ = writeln!(out, "# UNIT {} {unit}", self.name);
            }
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let suffix = if self.kind == Kind::Counter {
            "_total"
        } else {
            ""
        };
        for (labels, value) in &self.samples {
            let _ = writeln!(out, "{}{suffix}{labels} {}", self.name, number(*value));
        }
    }
}

/// A sample value: integers without a fraction, others in Rust's shortest exact form.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn label(name: &str, value: &str) -> String {
    format!("{{{name}=\"{}\"}}", label_value(value))
}

/// `{container="…",pod="…"}`.
fn container_pod(container: &str, pod: &str) -> String {
    format!(
        "{{container=\"{}\",pod=\"{}\"}}",
        label_value(container),
        label_value(pod)
    )
}

/// The steepest trend through any hold per (container, pod), bytes per minute, in first-seen
/// order of the view's trends.
fn leak_samples(view: &ReportView) -> Vec<(String, f64)> {
    let mut steepest: Vec<(&str, &str, f64)> = Vec::new();
    for t in view.trends.iter().filter(|t| t.bytes_per_min.is_finite()) {
        match steepest
            .iter_mut()
            .find(|(c, p, _)| *c == t.container && *p == t.pod)
        {
            Some(entry) => entry.2 = entry.2.max(t.bytes_per_min),
            None => steepest.push((&t.container, &t.pod, t.bytes_per_min)),
        }
    }
    steepest
        .into_iter()
        .map(|(c, p, v)| (container_pod(c, p), v.round()))
        .collect()
}

/// Each container's peak in the baseline report.
fn baseline_samples(view: &ReportView) -> Vec<(String, f64)> {
    let Some(b) = &view.baseline else {
        return Vec::new();
    };
    b.deltas
        .iter()
        .filter(|d| d.metric == Metric::PeakBytes)
        .filter_map(|d| Some((label("container", d.container.as_deref()?), d.baseline?)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// The whole exposition.
pub fn render(view: &ReportView) -> String {
    let per_container = |name, help, value: &dyn Fn(&super::ContainerRow) -> Option<f64>| Family {
        name,
        kind: Kind::Gauge,
        help,
        samples: view
            .containers
            .iter()
            .filter_map(|c| {
                value(c)
                    .filter(|v| v.is_finite())
                    .map(|v| (label("container", &c.container), v))
            })
            .collect(),
    };
    let bytes = |b: Option<u64>| b.map(|b| b as f64);
    let l = &view.load;
    let loaded = l.requests > 0;
    let run_gauge = |name, help, value: Option<f64>| Family {
        name,
        kind: Kind::Gauge,
        help,
        samples: value
            .filter(|v| v.is_finite())
            .map(|v| vec![(String::new(), v)])
            .unwrap_or_default(),
    };
    let seconds = |ms: f64| loaded.then_some(ms / 1000.0);
    let families = [
        per_container(
            "oomgate_peak_bytes",
            "Peak working set of the container across its pods during the run.",
            &|c| bytes(c.peak),
        ),
        per_container(
            "oomgate_limit_bytes",
            "Memory limit of the container (the smallest among its pods).",
            &|c| bytes(c.limit),
        ),
        per_container(
            "oomgate_allowed_peak_bytes",
            "Highest working set the gate allows: limit x (1 - headroom).",
            &|c| bytes(c.allowed_peak),
        ),
        per_container(
            "oomgate_request_bytes",
            "Memory request of the container (the smallest among its pods).",
            &|c| bytes(c.request),
        ),
        per_container(
            "oomgate_headroom_ratio",
            "Peak working set divided by the memory limit.",
            &|c| c.peak_share_of_limit(),
        ),
        per_container(
            "oomgate_vpa_target_bytes",
            "The VerticalPodAutoscaler's memory target for the container.",
            &|c| bytes(c.vpa_target),
        ),
        Family {
            name: "oomgate_leak_bytes_per_minute",
            kind: Kind::Gauge,
            help: "Steepest working-set trend (Theil-Sen slope) of the container in the pod through a hold long enough to judge.",
            samples: leak_samples(view),
        },
        Family {
            name: "oomgate_baseline_peak_bytes",
            kind: Kind::Gauge,
            help: "Peak working set of the container in the baseline report (--baseline).",
            samples: baseline_samples(view),
        },
        run_gauge(
            "oomgate_p50_seconds",
            "Median request latency.",
            seconds(l.p50_ms),
        ),
        run_gauge(
            "oomgate_p95_seconds",
            "95th percentile request latency.",
            seconds(l.p95_ms),
        ),
        run_gauge(
            "oomgate_p99_seconds",
            "99th percentile request latency.",
            seconds(l.p99_ms),
        ),
        Family {
            name: "oomgate_requests",
            kind: Kind::Counter,
            help: "Requests the load driver sent.",
            samples: vec![(String::new(), l.requests as f64)],
        },
        Family {
            name: "oomgate_failures",
            kind: Kind::Counter,
            help: "Requests that failed.",
            samples: vec![(String::new(), l.failures as f64)],
        },
        run_gauge(
            "oomgate_error_ratio",
            "Failed requests divided by all requests.",
            loaded.then(|| l.error_rate()),
        ),
        run_gauge(
            "oomgate_coverage_ratio",
            "Share of memory sampling ticks that brought data.",
            (view.memory.ticks > 0).then_some(view.memory.coverage),
        ),
        Family {
            name: "oomgate_findings",
            kind: Kind::Gauge,
            help: "Findings of this run by severity; skipped counts rules that were not judged.",
            samples: [
                Severity::Pass,
                Severity::Skipped,
                Severity::Warn,
                Severity::Inconclusive,
                Severity::Fail,
            ]
            .into_iter()
            .map(|s| {
                let word = super::text::severity_word(s);
                (label("severity", word), view.count(s) as f64)
            })
            .collect(),
        },
        Family {
            name: "oomgate_verdict",
            kind: Kind::Gauge,
            help: "The gate's verdict: 1 for the outcome of this run, 0 for the others.",
            samples: [Outcome::Pass, Outcome::Fail, Outcome::Inconclusive]
                .into_iter()
                .map(|o| {
                    let value = if o == view.outcome { 1.0 } else { 0.0 };
                    (label("verdict", &o.to_string()), value)
                })
                .collect(),
        },
    ];
    let mut out = String::new();
    for f in &families {
        f.write(&mut out);
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::evaluate;
    use crate::judge::fixtures::*;
    use crate::model::{LoadStats, Policy};

    fn render_run(run: &crate::model::Run) -> String {
        let policy = Policy::default();
        render(&ReportView::build(run, &evaluate(&policy, run), &policy))
    }

    #[test]
    fn writes_the_families_with_metadata_and_ends_in_eof() {
        let text = render_run(&healthy_run());
        assert!(text.ends_with("# EOF\n"));
        for line in [
            "# TYPE oomgate_peak_bytes gauge",
            "# UNIT oomgate_peak_bytes bytes",
            "oomgate_peak_bytes{container=\"app\"} 639631360",
            "oomgate_limit_bytes{container=\"sidecar\"} 134217728",
            "oomgate_allowed_peak_bytes{container=\"app\"} 858993459",
            "oomgate_request_bytes{container=\"app\"} 536870912",
            "oomgate_headroom_ratio{container=\"app\"} 0.595703125",
            "oomgate_p95_seconds 0.12",
            "# TYPE oomgate_requests counter",
            "oomgate_requests_total 12000",
            "oomgate_failures_total 3",
            "oomgate_error_ratio 0.00025",
            "oomgate_coverage_ratio 1",
            "oomgate_verdict{verdict=\"pass\"} 1",
            "oomgate_verdict{verdict=\"fail\"} 0",
            "oomgate_verdict{verdict=\"inconclusive\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("oomgate_vpa_target_bytes"),
            "no VPA, no family"
        );
    }

    #[test]
    fn findings_are_counted_by_severity_with_skipped_apart_from_pass() {
        let mut run = healthy_run();
        run.stages.clear(); // no hold: the leak rule is not judged
        let policy = Policy::default();
        let verdict = evaluate(&policy, &run);
        let view = ReportView::build(&run, &verdict, &policy);
        let text = render(&view);
        let skipped = view.count(Severity::Skipped);
        assert!(skipped > 0, "{:#?}", view.findings);
        assert!(
            text.contains(&format!(
                "oomgate_findings{{severity=\"skipped\"}} {skipped}\n"
            )),
            "{text}"
        );
        let passed = view.count(Severity::Pass);
        assert!(
            text.contains(&format!("oomgate_findings{{severity=\"pass\"}} {passed}\n")),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped_and_unknowns_left_out() {
        let mut run = healthy_run();
        run.containers[0].container = "a\\b\"c\nd".into();
        run.load = LoadStats::default();
        let text = render_run(&run);
        assert!(
            text.contains("oomgate_peak_bytes{container=\"a\\\\b\\\"c\\nd\"} "),
            "{text}"
        );
        assert!(!text.contains("oomgate_p95_seconds"));
        assert!(!text.contains("oomgate_error_ratio"));
        assert!(text.contains("oomgate_requests_total 0"));
    }
}

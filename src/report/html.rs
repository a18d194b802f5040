//! `report.html`: the whole report as one self-contained page to open from CI artifacts — inline
//! CSS, the memory chart inlined as SVG, no script, no network (a Content-Security-Policy forbids
//! both). A verdict banner, then the findings (passes folded away), the chart, the memory and
//! results tables, "What to change" with the runtime heap settings and a YAML patch per
//! container, the trends through the holds, the memory per user, the deltas against a baseline,
//! the load numbers and the stages with each container's working set (the analysis sections are
//! in `analysis`). Every string from outside goes through `escape::html`; the chart's text is
//! already XML-escaped by plotters.

use crate::units::format_share;
use std::fmt::Write as _;
use std::io;

use super::escape::html as h;
use super::text::{self, severity_word};
use super::{svg, ReportView, Reporter};
use crate::judge::clock;
use crate::model::{Rule, Severity};
use crate::units::{format_bytes, format_percent};

/// Writes `report.html`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlReporter;

impl Reporter for HtmlReporter {
    fn name(&self) -> &'static str {
        "html"
    }

    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, view: &ReportView, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render(view)?.as_bytes())
    }
}

const CSS: &str = "
:root { --fail: #c62828; --warn: #b26a00; --pass: #1e7e3c; --inc: #6d4c9f; --ink: #222; --muted: #666; --line: #dde1e6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, 'DejaVu Sans', sans-serif; color: var(--ink); background: #f6f7f9; }
main { max-width: 1080px; margin: 0 auto; padding: 0 20px 40px; }
.banner { color: #fff; padding: 18px 20px; margin: 0 0 14px; border-radius: 0 0 8px 8px; display: flex; gap: 18px; align-items: center; }
.banner.pass { background: var(--pass); } .banner.fail { background: var(--fail); } .banner.inconclusive { background: var(--warn); }
.banner .word { font-size: 30px; font-weight: 800; letter-spacing: .04em; }
.banner h1 { margin: 0; font-size: 21px; word-break: break-all; } .banner p { margin: 2px 0 0; }
.meta { color: var(--muted); margin: 0 0 12px; }
.remark { background: #fff4e0; border-left: 4px solid var(--warn); padding: 6px 12px; margin: 6px 0; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 18px 14px; margin: 14px 0; }
h2 { font-size: 18px; margin: 12px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.name { word-break: break-all; font-weight: 600; }
.badge { display: inline-block; min-width: 4.2em; text-align: center; border-radius: 3px; padding: 0 6px; font-size: 12px; font-weight: 700; color: #fff; text-transform: uppercase; }
.badge.fail { background: var(--fail); } .badge.warn { background: var(--warn); } .badge.pass { background: var(--pass); } .badge.inconclusive { background: var(--inc); } .badge.skipped { background: #e5e7eb; color: #374151; }
.over { color: var(--fail); font-weight: 700; }
ul.findings { list-style: none; padding: 0; margin: 6px 0; } ul.findings li { padding: 4px 0; border-bottom: 1px solid var(--line); word-break: break-word; }
code, pre { font-family: 'DejaVu Sans Mono', monospace; font-size: 13px; }
code.rule { background: #eef0f3; padding: 0 4px; border-radius: 3px; }
code.pod { color: var(--muted); font-size: 12px; word-break: break-all; }
pre { background: #1f2430; color: #e6e6e6; padding: 12px; border-radius: 5px; overflow-x: auto; white-space: pre; }
figure.chart { margin: 8px 0; } figure.chart svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
details summary { cursor: pointer; color: var(--muted); margin: 6px 0; }
footer { color: var(--muted); font-size: 13px; text-align: center; margin-top: 20px; }
";

fn badge(s: Severity) -> String {
    let word = severity_word(s);
    format!("<span class=\"badge {word}\">{word}</span>")
}

fn bytes(b: Option<u64>) -> String {
    b.map(format_bytes).unwrap_or_else(|| "—".to_string())
}

/// The whole page.
pub fn render(view: &ReportView) -> io::Result<String> {
    let chart = svg::render(view)?;
    let mut out = String::with_capacity(64 * 1024 + chart.len());
    let outcome = view.outcome.to_string();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>oomgate {}: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        text::outcome_word(view.outcome),
        h(&view.scenario)
    );
    let _ = writeln!(
        out,
        "<header class=\"banner {outcome}\"><div class=\"word\">{}</div><div><h1>{}</h1><p>{}</p></div></header>",
        text::outcome_word(view.outcome),
        h(&view.scenario),
        h(&view.headline())
    );
    let mut meta = Vec::new();
    if !view.workload.trim().is_empty() {
        meta.push(h(view.workload.trim()));
    }
    meta.push(h(&text::run_span(view)));
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    if let Some(reason) = &view.ended_early {
        let _ = writeln!(
            out,
            "<p class=\"remark\"><b>Ended early:</b> {}</p>",
            h(reason)
        );
    }
    if !view.memory.limit_enforced {
        let _ = writeln!(
            out,
            "<p class=\"remark\"><b>{}</b></p>",
            h(text::LIMIT_NOT_ENFORCED)
        );
    }
    for note in &view.notes {
        let _ = writeln!(out, "<p class=\"remark\">Note: {}</p>", h(note));
    }

    findings(view, &mut out);
    let _ = writeln!(
        out,
        "<section><h2>Memory over time</h2><figure class=\"chart\">\n{}\n</figure></section>",
        chart.trim()
    );
    memory(view, &mut out);
    analysis::change(view, &mut out);
    analysis::analysis(view, &mut out);
    load(view, &mut out);
    analysis::stages(view, &mut out);
    let _ = writeln!(
        out,
        "<footer>oomgate {} · {} · generated from report data only; no script, no network</footer>\n</main>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        h(&format!("{} UTC", view.ended_at.format("%Y-%m-%d %H:%M:%S")))
    );
    Ok(out)
}

fn memory(view: &ReportView, out: &mut String) {
    let _ = writeln!(
        out,
        "<section><h2>Memory</h2>\n<p>Working set per container, across its pods; allowed peak = limit × (1 − {} headroom).</p>",
        format_percent(view.policy.headroom)
    );
    if view.containers.is_empty() {
        out.push_str("<p>No container was measured.</p>\n");
    } else {
        out.push_str(
            "<table><thead><tr><th>Container</th><th class=\"num\">Limit</th><th class=\"num\">Allowed peak</th>\
             <th class=\"num\">Peak</th><th class=\"num\">Of limit</th><th>Peak at (UTC), stage, pod</th>\
             <th class=\"num\">VPA target</th><th class=\"num\">Request</th></tr></thead><tbody>\n",
        );
        for c in &view.containers {
            let limit = match (c.limit, c.limit_spread) {
                (None, _) => "<span class=\"over\">none</span>".to_string(),
                (Some(_), Some((lo, hi))) => format!("{}–{}", format_bytes(lo), format_bytes(hi)),
                (Some(l), None) => format_bytes(l),
            };
            let over = c.results.get(&Rule::Headroom) == Some(&Severity::Fail);
            let mut peak = match c.peak {
                None => "no data".to_string(),
                Some(p) if over => format!("<span class=\"over\">{}</span>", format_bytes(p)),
                Some(p) => format_bytes(p),
            };
            if let Some(upper) = c.peak_upper {
                peak.push_str(&format!(
                    "<br><small>kernel peak usage {}</small>",
                    format_bytes(upper)
                ));
            }
            let _ = writeln!(
                out,
                "<tr><td class=\"name\">{}</td><td class=\"num\">{limit}</td><td class=\"num\">{}</td><td class=\"num\">{peak}</td>\
                 <td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                h(&c.container),
                bytes(c.allowed_peak),
                c.peak_share_of_limit().map(format_share).unwrap_or_else(|| "—".into()),
                peak_at(c),
                bytes(c.vpa_target),
                bytes(c.request),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if let Some(line) = text::vpa_line(view) {
        let _ = writeln!(out, "<p class=\"remark\">{}</p>", h(&line));
    }
    let rules = view.container_rules();
    if !rules.is_empty() {
        out.push_str("<table><thead><tr><th>Results</th>");
        for r in &rules {
            let _ = write!(out, "<th>{}</th>", h(r.id()));
        }
        out.push_str("</tr></thead><tbody>\n");
        for c in &view.containers {
            let _ = write!(out, "<tr><td class=\"name\">{}</td>", h(&c.container));
            for r in &rules {
                match c.results.get(r) {
                    Some(s) => {
                        let _ = write!(out, "<td>{}</td>", badge(*s));
                    }
                    None => out.push_str("<td>—</td>"),
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
    if !view.run_results.is_empty() {
        let parts: Vec<String> = view
            .run_results
            .iter()
            .map(|(r, s)| format!("<code class=\"rule\">{}</code> {}", h(r.id()), badge(*s)))
            .collect();
        let _ = writeln!(out, "<p>Run-wide: {}</p>", parts.join(" &nbsp; "));
    }
    let _ = writeln!(out, "<p>Memory data: {}.</p>", h(&text::memory_line(view)));
    if !view.memory.pods.is_empty() {
        out.push_str("<p>Coverage per pod and container:</p>\n<ul class=\"coverage\">\n");
        for (line, row) in text::pod_coverage_lines(view).iter().zip(&view.memory.pods) {
            let class = if row.below { " class=\"over\"" } else { "" };
            let _ = writeln!(out, "<li{class}>{}</li>", h(line));
        }
        out.push_str("</ul>\n");
    }
    for note in &view.memory.notes {
        let _ = writeln!(out, "<p class=\"remark\">{}</p>", h(note));
    }
    if !view.restarts.is_empty() {
        out.push_str("<table><thead><tr><th>Restart at (UTC)</th><th>Container</th><th>Pod</th><th>Reason</th><th class=\"num\">Exit code</th><th>Stage</th></tr></thead><tbody>\n");
        for r in &view.restarts {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"name\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                clock(r.at),
                h(&r.container),
                h(&r.pod),
                if r.oom_killed { "<span class=\"over\">OOMKilled</span>".to_string() } else { h(&r.reason) },
                r.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into()),
                h(r.stage.as_deref().unwrap_or("—"))
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}

/// "12:04:30 · stage 4, hold at 200 users" and the pod under it.
fn peak_at(c: &super::ContainerRow) -> String {
    let Some(at) = c.peak_at else {
        return "—".to_string();
    };
    let mut cell = clock(at);
    if let Some(stage) = &c.peak_stage {
        let _ = write!(cell, " · {}", h(stage));
    }
    if let Some(pod) = &c.peak_pod {
        let _ = write!(cell, "<br><code class=\"pod\">{}</code>", h(pod));
    }
    cell
}

fn finding_item(f: &crate::model::Finding) -> String {
    format!(
        "<li>{} <code class=\"rule\">{}</code> {}</li>\n",
        badge(f.severity),
        h(f.rule.id()),
        h(&f.message)
    )
}

fn findings(view: &ReportView, out: &mut String) {
    out.push_str("<section><h2>Findings</h2>\n");
    let (worth, passes): (Vec<_>, Vec<_>) = view
        .findings
        .iter()
        .partition(|f| f.severity != Severity::Pass);
    if worth.is_empty() {
        let _ = writeln!(out, "<p>All {} checks passed.</p>", view.findings.len());
    } else {
        out.push_str("<ul class=\"findings\">\n");
        for f in &worth {
            out.push_str(&finding_item(f));
        }
        out.push_str("</ul>\n");
    }
    if !passes.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} passed checks</summary><ul class=\"findings\">",
            passes.len()
        );
        for f in &passes {
            out.push_str(&finding_item(f));
        }
        out.push_str("</ul></details>\n");
    }
    out.push_str("</section>\n");
}

fn load(view: &ReportView, out: &mut String) {
    let l = &view.load;
    let driver = if l.driver.is_empty() {
        "load"
    } else {
        &l.driver
    };
    let _ = write!(
        out,
        "<section><h2>Load</h2>\n<p>{}, up to {} users",
        h(driver),
        view.peak_users()
    );
    if !l.latency_measure.trim().is_empty() {
        let _ = write!(out, "; latency is {}", h(l.latency_measure.trim()));
    }
    out.push_str(".</p>\n");
    if l.requests == 0 {
        out.push_str("<p>No request was sent.</p>\n</section>\n");
        return;
    }
    let lat = |ms| text::latency(view, ms);
    let _ = writeln!(
        out,
        "<table><thead><tr><th class=\"num\">Requests</th><th class=\"num\">Failures</th><th class=\"num\">Rate</th>\
         <th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr></thead>\
         <tbody><tr><td class=\"num\">{}</td><td class=\"num\">{} ({})</td><td class=\"num\">{:.1} req/s</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr></tbody></table>",
        l.requests,
        l.failures,
        format_share(l.error_rate()),
        l.rps,
        lat(l.p50_ms),
        lat(l.p95_ms),
        lat(l.p99_ms),
        lat(l.max_ms)
    );
    if let Some(t) = text::thresholds(view) {
        let _ = writeln!(out, "<p>Thresholds: {}.</p>", h(&t));
    }
    if !l.status_codes.is_empty() {
        let codes: Vec<String> = l
            .status_codes
            .iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .collect();
        let _ = writeln!(out, "<p>Status codes: {}.</p>", codes.join(", "));
    }
    if l.per_request.len() > 1 {
        out.push_str("<table><thead><tr><th>Request</th><th class=\"num\">Requests</th><th class=\"num\">Failures</th>\
             <th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">p99</th></tr></thead><tbody>\n");
        for r in &l.per_request {
            let _ = writeln!(
                out,
                "<tr><td class=\"name\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                h(&r.name),
                r.requests,
                r.failures,
                lat(r.p50_ms),
                lat(r.p95_ms),
                lat(r.p99_ms)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}

#[path = "html_analysis.rs"]
mod analysis;

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;

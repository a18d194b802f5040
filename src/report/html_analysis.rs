//! The analysis sections of `report.html`: "What to change" (per container the limit and
//! request sentence, the runtime heap settings and the ready YAML patch), the trends through the
//! holds, the memory-per-user fit, the delta table against a `--baseline` report, and the stages
//! with the peak, median and p95 working set of each container (plus the stage's req/s, p95
//! latency and errors when the driver splits its numbers by stage). Every outside string goes
//! through `escape::html`.

use crate::units::format_ms;
use std::fmt::Write as _;

use super::super::escape::html as h;
use super::super::text::{self, severity_word};
use super::super::{advice, ReportView};
use crate::judge::clock;
use crate::units::{format_bytes, format_duration, format_percent};

fn bytes(b: Option<u64>) -> String {
    b.map(format_bytes).unwrap_or_else(|| "—".to_string())
}

/// "What to change".
pub(super) fn change(view: &ReportView, out: &mut String) {
    out.push_str("<section><h2>What to change</h2>\n");
    let rows: Vec<_> = view
        .containers
        .iter()
        .filter(|c| c.recommendation.is_some())
        .collect();
    if rows.is_empty() {
        out.push_str("<p>Nothing to suggest: no container has memory data.</p>\n</section>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"meta\">{}.</p>\n<ul>",
        h(&advice::method(view.policy.headroom))
    );
    for c in &rows {
        let r = c.recommendation.as_ref().expect("filtered");
        let _ = writeln!(
            out,
            "<li><b>{}</b>: {}<br>{}</li>",
            h(&c.container),
            h(&advice::sentence(c).unwrap_or_default()),
            h(&advice::runtime_line(c, r))
        );
    }
    out.push_str("</ul>\n");
    for c in &rows {
        let r = c.recommendation.as_ref().expect("filtered");
        let Some(patch) = advice::patch_for(c, r) else {
            continue;
        };
        let _ = writeln!(
            out,
            "<p>Patch for <b>{}</b>:</p>\n<pre><code>{}</code></pre>",
            h(&c.container),
            h(&patch)
        );
    }
    out.push_str("</section>\n");
}

/// Trends, memory per user and the baseline deltas, each in its own section when it has data.
pub(super) fn analysis(view: &ReportView, out: &mut String) {
    if !view.trends.is_empty() {
        let leak = &view.policy.leak;
        let _ = writeln!(
            out,
            "<section><h2>Trends through the holds</h2>\n<p>Working-set trend of each pod through \
             every hold of at least {}, after the first {} of the hold (Theil–Sen slope); growth \
             that would reach the allowed peak within {} fails the <code class=\"rule\">leak</code> \
             rule.</p>",
            format_duration(leak.min_hold),
            format_percent(leak.settle),
            format_duration(leak.horizon)
        );
        out.push_str(
            "<table><thead><tr><th>Container</th><th>Pod</th><th>Hold</th><th class=\"num\">Trend</th>\
             <th>Growing</th><th>Reaches the allowed peak</th></tr></thead><tbody>\n",
        );
        for t in &view.trends {
            let _ = writeln!(
                out,
                "<tr><td class=\"name\">{}</td><td><code class=\"pod\">{}</code></td><td>{}</td>\
                 <td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                h(&t.container),
                h(&t.pod),
                h(&text::trend_hold(t)),
                h(&text::trend_rate(t.bytes_per_min)),
                if t.growing {
                    "<span class=\"over\">yes</span>"
                } else {
                    "no"
                },
                h(&text::trend_reach(t, leak.horizon))
            );
        }
        out.push_str("</tbody></table></section>\n");
    }
    if !view.capacity.is_empty() {
        out.push_str(
            "<section><h2>Memory per user</h2>\n<p>A line through the median working set of each \
             hold (<code class=\"rule\">capacity</code>):</p>\n<ul>\n",
        );
        for c in &view.capacity {
            let _ = writeln!(
                out,
                "<li><b>{}</b>: {}.</li>",
                h(&c.container),
                h(&text::capacity_line(c))
            );
        }
        out.push_str("</ul>\n");
        if view.policy.expected_peak_users.is_none() {
            out.push_str("<p class=\"meta\">Set <code>policy.expected_peak_users</code> to predict the memory at your peak load.</p>\n");
        }
        out.push_str("</section>\n");
    }
    if let Some(b) = &view.baseline {
        let _ = writeln!(
            out,
            "<section><h2>Against the baseline</h2>\n<p>Compared with {}, read from <code>{}</code>; \
             a peak may grow by +{}.</p>\n<table><thead><tr><th></th><th class=\"num\">Baseline</th>\
             <th class=\"num\">This run</th><th class=\"num\">Change</th></tr></thead><tbody>",
            h(&b.description),
            h(&b.path),
            format_percent(b.max_growth)
        );
        for d in &b.deltas {
            let (label, before, now, change, mark) = text::delta_cells(d, b);
            let change = match mark {
                Some(s) => format!(
                    "<span class=\"over\">{}</span> <span class=\"badge {w}\">{w}</span>",
                    h(&change),
                    w = severity_word(s)
                ),
                None => h(&change),
            };
            let _ = writeln!(
                out,
                "<tr><td class=\"name\">{}</td><td class=\"num\">{before}</td><td class=\"num\">{now}</td>\
                 <td class=\"num\">{change}</td></tr>",
                h(&label)
            );
        }
        out.push_str("</tbody></table></section>\n");
    }
}

/// The stages as they ran, with the working set of each container in each.
pub(super) fn stages(view: &ReportView, out: &mut String) {
    if view.stages.is_empty() {
        return;
    }
    let with_load = view.stages.iter().any(|s| s.load.is_some());
    let _ = write!(
        out,
        "<section><h2>Stages</h2>\n<p>Working set per container over all its pods' samples in each stage{}.</p>\n\
         <table><thead><tr><th>Stage</th><th class=\"num\">Users</th><th>Start – end (UTC)</th>\
         <th class=\"num\">Duration</th><th>Container</th><th class=\"num\">Peak</th><th class=\"num\">Median</th>\
         <th class=\"num\">p95</th><th class=\"num\">Samples</th>",
        if with_load {
            format!("; latency is {}", h(view.load.latency_measure.trim()))
        } else {
            String::new()
        }
    );
    if with_load {
        out.push_str("<th class=\"num\">Req/s</th><th class=\"num\">p95 latency</th><th class=\"num\">Errors</th>");
    }
    out.push_str("</tr></thead><tbody>\n");
    for s in &view.stages {
        let span = s.containers.len().max(1);
        let users = if s.from_users == s.to_users {
            s.to_users.to_string()
        } else {
            format!("{}→{}", s.from_users, s.to_users)
        };
        let head = format!(
            "<td rowspan=\"{span}\">{} {}</td><td class=\"num\" rowspan=\"{span}\">{users}</td>\
             <td rowspan=\"{span}\">{} – {}</td><td class=\"num\" rowspan=\"{span}\">{}</td>",
            s.index + 1,
            if s.from_users == s.to_users {
                "hold"
            } else {
                "ramp"
            },
            clock(s.start),
            clock(s.end),
            text::stage_duration(s.duration)
        );
        let load = match &s.load {
            Some(l) if with_load => format!(
                "<td class=\"num\" rowspan=\"{span}\">{:.1}</td><td class=\"num\" rowspan=\"{span}\">{}</td>\
                 <td class=\"num\" rowspan=\"{span}\">{}</td>",
                l.rps,
                if l.requests == 0 {
                    "n/a".to_string()
                } else {
                    format_ms(l.p95_ms)
                },
                l.failures
            ),
            None if with_load => format!("<td rowspan=\"{span}\" colspan=\"3\">—</td>"),
            _ => String::new(),
        };
        let cells: Vec<String> = if s.containers.is_empty() {
            vec!["<td>—</td><td class=\"num\">—</td><td class=\"num\">—</td><td class=\"num\">—</td><td class=\"num\">0</td>".to_string()]
        } else {
            s.containers
                .iter()
                .map(|c| {
                    format!(
                        "<td class=\"name\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                         <td class=\"num\">{}</td><td class=\"num\">{}</td>",
                        h(&c.container),
                        bytes(c.peak),
                        bytes(c.median),
                        bytes(c.p95),
                        c.samples
                    )
                })
                .collect()
        };
        for (i, row) in cells.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "<tr>{head}{row}{load}</tr>");
            } else {
                let _ = writeln!(out, "<tr>{row}</tr>");
            }
        }
    }
    out.push_str("</tbody></table></section>\n");
}

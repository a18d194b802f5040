//! The analysis sections of `summary.md`: the per-stage table (peak, median and p95 working set
//! of each container; the stage's req/s, p95 latency and errors when the driver splits its
//! numbers by stage), the trends through the holds, the memory-per-user fit, the delta table
//! against a `--baseline` report, and "What to change" from each container's recommendation with
//! its runtime heap settings and ready YAML patch. Outside strings go through
//! `escape::markdown`; the patches sit in fences longer than any backtick run inside them.

use std::fmt::Write as _;

use super::super::escape::markdown as md;
use super::super::text::{self, severity_icon};
use super::super::{advice, ReportView};
use crate::units::format_ms;
use crate::units::{format_bytes, format_duration, format_percent};

/// Most stage × container rows shown.
const MAX_STAGE_ROWS: usize = 120;
/// Most trend rows shown.
const MAX_TREND_ROWS: usize = 20;

fn bytes(b: Option<u64>) -> String {
    b.map(format_bytes).unwrap_or_else(|| "—".to_string())
}

/// "### Stages": one row per stage and container.
pub(super) fn stages(view: &ReportView, out: &mut String) {
    if view.stages.is_empty() {
        return;
    }
    let with_load = view.stages.iter().any(|s| s.load.is_some());
    out.push_str(
        "### Stages\n\nWorking set per container over all its pods' samples in each stage",
    );
    if with_load {
        let _ = write!(out, "; latency is {}", md(view.load.latency_measure.trim()));
    }
    out.push_str(".\n\n| Stage | Users | Duration | Container | Peak | Median | p95 | Samples |");
    if with_load {
        out.push_str(" Req/s | p95 latency | Errors |");
    }
    out.push_str("\n|---|--:|--:|---|--:|--:|--:|--:|");
    if with_load {
        out.push_str("--:|--:|--:|");
    }
    out.push('\n');
    let total: usize = view.stages.iter().map(|s| s.containers.len().max(1)).sum();
    let mut shown = 0;
    'stages: for s in &view.stages {
        let users = if s.from_users == s.to_users {
            s.to_users.to_string()
        } else {
            format!("{}→{}", s.from_users, s.to_users)
        };
        let head = format!(
            "| {} {} | {users} | {} |",
            s.index + 1,
            if s.from_users == s.to_users {
                "hold"
            } else {
                "ramp"
            },
            text::stage_duration(s.duration)
        );
        let load = match &s.load {
            Some(l) if with_load => format!(
                " {:.1} | {} | {} |",
                l.rps,
                if l.requests == 0 {
                    "n/a".to_string()
                } else {
                    format_ms(l.p95_ms)
                },
                l.failures
            ),
            None if with_load => " — | — | — |".to_string(),
            _ => String::new(),
        };
        let rows: Vec<String> = if s.containers.is_empty() {
            vec![" — | — | — | — | 0 |".to_string()]
        } else {
            s.containers
                .iter()
                .map(|c| {
                    format!(
                        " {} | {} | {} | {} | {} |",
                        md(&c.container),
                        bytes(c.peak),
                        bytes(c.median),
                        bytes(c.p95),
                        c.samples
                    )
                })
                .collect()
        };
        for (i, row) in rows.iter().enumerate() {
            if shown == MAX_STAGE_ROWS {
                let _ = writeln!(
                    out,
                    "\n_… {} more rows in report.html and report.json._",
                    total - shown
                );
                break 'stages;
            }
            shown += 1;
            if i == 0 {
                let _ = writeln!(out, "{head}{row}{load}");
            } else {
                let blank = if with_load { " | | |" } else { "" };
                let _ = writeln!(out, "| | | |{row}{blank}");
            }
        }
    }
    out.push('\n');
}

/// "### Trends", "### Memory per user" and "### Against the baseline", each when it has data.
pub(super) fn analysis(view: &ReportView, out: &mut String) {
    if !view.trends.is_empty() {
        trends(view, out);
    }
    if !view.capacity.is_empty() {
        out.push_str("### Memory per user\n\nA line through the median working set of each hold (`capacity`):\n\n");
        for c in &view.capacity {
            let _ = writeln!(
                out,
                "- **{}**: {}.",
                md(&c.container),
                md(&text::capacity_line(c))
            );
        }
        if view.policy.expected_peak_users.is_none() {
            out.push_str(
                "\nSet `policy.expected_peak_users` to predict the memory at your peak load.\n",
            );
        }
        out.push('\n');
    }
    if let Some(b) = &view.baseline {
        let _ = writeln!(
            out,
            "### Against the baseline\n\nCompared with {}, read from {}; a peak may grow by +{}.\n",
            md(&b.description),
            md(&b.path),
            format_percent(b.max_growth)
        );
        out.push_str("| | Baseline | This run | Change |\n|---|--:|--:|--:|\n");
        for d in &b.deltas {
            let (label, before, now, change, mark) = text::delta_cells(d, b);
            let change = match mark {
                Some(s) => format!("**{}** {}", md(&change), severity_icon(s)),
                None => md(&change),
            };
            let _ = writeln!(out, "| {} | {before} | {now} | {change} |", md(&label));
        }
        out.push('\n');
    }
}

/// "### Trends through the holds": the growing trends in a table, every trend folded away.
fn trends(view: &ReportView, out: &mut String) {
    let leak = &view.policy.leak;
    let _ = writeln!(
        out,
        "### Trends through the holds\n\nWorking-set trend of each pod through every hold of at \
         least {}, after the first {} of the hold (Theil–Sen slope); growth that would reach the \
         allowed peak within {} fails the `leak` rule.\n",
        format_duration(leak.min_hold),
        format_percent(leak.settle),
        format_duration(leak.horizon)
    );
    let table = |rows: &mut dyn Iterator<Item = &super::super::TrendRow>, out: &mut String| {
        out.push_str(
            "| Container | Pod | Hold | Trend | Growing | Reaches the allowed peak |\n\
             |---|---|---|--:|---|---|\n",
        );
        for t in rows.take(MAX_TREND_ROWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md(&t.container),
                md(&t.pod),
                text::trend_hold(t),
                text::trend_rate(t.bytes_per_min),
                if t.growing { "⚠️ yes" } else { "no" },
                text::trend_reach(t, leak.horizon)
            );
        }
    };
    let growing = view.trends.iter().filter(|t| t.growing).count();
    if growing == 0 {
        let steepest = view
            .trends
            .iter()
            .map(|t| t.bytes_per_min)
            .fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            out,
            "✅ No pod's working set grows through the holds ({} trends, steepest {}).\n",
            view.trends.len(),
            text::trend_rate(steepest)
        );
    } else {
        table(&mut view.trends.iter().filter(|t| t.growing), out);
        if growing > MAX_TREND_ROWS {
            let _ = writeln!(
                out,
                "\n_… {} more growing trends in report.html._",
                growing - MAX_TREND_ROWS
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "<details><summary>All {} trends</summary>\n",
        view.trends.len()
    );
    table(&mut view.trends.iter(), out);
    if view.trends.len() > MAX_TREND_ROWS {
        let _ = writeln!(
            out,
            "\n_… {} more (flatter) in report.html._",
            view.trends.len() - MAX_TREND_ROWS
        );
    }
    out.push_str("\n</details>\n\n");
}

/// "### What to change": per container the limit and request sentence, the runtime heap
/// settings, and the ready YAML patch.
pub(super) fn change(view: &ReportView) -> String {
    let mut out = String::from("### What to change\n\n");
    let rows: Vec<_> = view
        .containers
        .iter()
        .filter(|c| c.recommendation.is_some())
        .collect();
    if rows.is_empty() {
        out.push_str("Nothing to suggest: no container has memory data.\n");
        return out;
    }
    let _ = writeln!(out, "{}.\n", md(&advice::method(view.policy.headroom)));
    for c in &rows {
        let r = c.recommendation.as_ref().expect("filtered");
        let sentence = advice::sentence(c).unwrap_or_default();
        let _ = writeln!(
            out,
            "- **{}**: {}<br>\n  {}",
            md(&c.container),
            md(&sentence),
            md(&advice::runtime_line(c, r))
        );
    }
    for c in &rows {
        let r = c.recommendation.as_ref().expect("filtered");
        let Some(patch) = advice::patch_for(c, r) else {
            continue;
        };
        let fence = advice::fence(&patch);
        let _ = writeln!(
            out,
            "\nPatch for **{}**:\n\n{fence}yaml\n{patch}{fence}",
            md(&c.container)
        );
    }
    out
}

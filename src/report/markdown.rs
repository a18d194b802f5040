//! `summary.md`: what GitHub's step summary and a GitLab merge-request note show. The verdict
//! first (✅/❌/⚠️ and words), then the memory table (one row per container: limit, allowed peak,
//! peak, when and in which stage, VPA target) and the result per rule per container, the load
//! numbers, the per-stage table, the analysis (trends through the holds, memory per user, the
//! deltas against a baseline; in `analysis`), the findings worth reading (fails first, passes
//! skipped) and "What to change" with the runtime heap settings and a ready YAML patch per
//! container. Kept under 64 KiB: the findings list is cut, with a note, to fit. Every outside
//! string goes through `escape::markdown`.

use crate::units::format_share;
use std::fmt::Write as _;
use std::io;

use super::escape::markdown as md;
use super::text::{self, severity_icon, severity_word};
use super::{ReportView, Reporter};
use crate::judge::clock;
use crate::model::{Rule, Severity};
use crate::units::{format_bytes, format_percent};

/// `summary.md` stays strictly below this many bytes.
pub const MAX_BYTES: usize = 64 * 1024;

/// Writes `summary.md`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownReporter;

impl Reporter for MarkdownReporter {
    fn name(&self) -> &'static str {
        "markdown"
    }

    fn file_name(&self) -> &'static str {
        "summary.md"
    }

    fn render(&self, view: &ReportView, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render(view).as_bytes())
    }
}

/// The whole summary, under `MAX_BYTES`.
pub fn render(view: &ReportView) -> String {
    let mut head = String::new();
    verdict(view, &mut head);
    memory(view, &mut head);
    load(view, &mut head);
    analysis::stages(view, &mut head);
    analysis::analysis(view, &mut head);
    let tail = analysis::change(view);
    // What the findings may take: the rest, minus room for the truncation note.
    let budget = MAX_BYTES.saturating_sub(head.len() + tail.len() + 512);
    let mut doc = head;
    doc.push_str(&findings(view, budget));
    doc.push_str(&tail);
    fit(doc)
}

/// The last resort when even the tables do not fit: cut at a line, close an open code fence, say so.
fn fit(mut doc: String) -> String {
    if doc.len() < MAX_BYTES {
        return doc;
    }
    let note = "\n\n_… cut here: summary.md is kept under 64 KiB; report.html and report.json have everything._\n";
    let mut cut = MAX_BYTES - note.len() - 8;
    while !doc.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = doc[..cut].rfind('\n').unwrap_or(0);
    doc.truncate(cut);
    if doc.lines().filter(|l| l.starts_with("```")).count() % 2 == 1 {
        doc.push_str("\n```");
    }
    doc.push_str(note);
    doc
}

fn verdict(view: &ReportView, out: &mut String) {
    let _ = writeln!(
        out,
        "## {} oomgate {}: {}\n",
        text::outcome_icon(view.outcome),
        text::outcome_word(view.outcome),
        md(&view.scenario)
    );
    let _ = writeln!(out, "**{}**\n", md(&view.headline()));
    let mut facts = Vec::new();
    if !view.workload.trim().is_empty() {
        facts.push(md(view.workload.trim()));
    }
    facts.push(md(&text::run_span(view)));
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    let mut remarks = Vec::new();
    if let Some(reason) = &view.ended_early {
        remarks.push(format!("⚠️ **Ended early:** {}", md(reason)));
    }
    if !view.memory.limit_enforced {
        remarks.push(format!("⚠️ **{}**", md(text::LIMIT_NOT_ENFORCED)));
    }
    remarks.extend(view.notes.iter().map(|n| format!("Note: {}", md(n))));
    if !remarks.is_empty() {
        let _ = writeln!(out, "> {}\n", remarks.join("<br>\n> "));
    }
}

fn result_cell(s: Option<Severity>) -> String {
    match s {
        None => "—".to_string(),
        Some(s) => format!("{} {}", severity_icon(s), severity_word(s)),
    }
}

fn bytes(b: Option<u64>) -> String {
    b.map(format_bytes).unwrap_or_else(|| "—".to_string())
}

fn memory(view: &ReportView, out: &mut String) {
    let _ = writeln!(
        out,
        "### Memory\n\nWorking set per container, across its pods; allowed peak = limit × (1 − {} headroom).\n",
        format_percent(view.policy.headroom)
    );
    if view.containers.is_empty() {
        out.push_str("No container was measured.\n\n");
    } else {
        out.push_str(
            "| Container | Limit | Allowed peak | Peak | Of limit | Peak at (UTC) | Stage | Pod | VPA target |\n\
             |---|--:|--:|--:|--:|---|---|---|--:|\n",
        );
        for c in &view.containers {
            let limit = match (c.limit, c.limit_spread) {
                (None, _) => "⚠️ none".to_string(),
                (Some(_), Some((lo, hi))) => format!("{}–{}", format_bytes(lo), format_bytes(hi)),
                (Some(l), None) => format_bytes(l),
            };
            let mut peak = match c.peak {
                None => "no data".to_string(),
                Some(p) if c.results.get(&Rule::Headroom) == Some(&Severity::Fail) => {
                    format!("**{}** ❌", format_bytes(p))
                }
                Some(p) => format_bytes(p),
            };
            if let Some(upper) = c.peak_upper {
                peak.push_str(&format!(" (kernel peak usage {})", format_bytes(upper)));
            }
            let _ = writeln!(
                out,
                "| {} | {limit} | {} | {peak} | {} | {} | {} | {} | {} |",
                md(&c.container),
                bytes(c.allowed_peak),
                c.peak_share_of_limit()
                    .map(format_share)
                    .unwrap_or_else(|| "—".into()),
                c.peak_at.map(clock).unwrap_or_else(|| "—".into()),
                c.peak_stage
                    .as_deref()
                    .map(md)
                    .unwrap_or_else(|| "—".into()),
                c.peak_pod.as_deref().map(md).unwrap_or_else(|| "—".into()),
                bytes(c.vpa_target),
            );
        }
        out.push('\n');
    }
    if let Some(line) = text::vpa_line(view) {
        let _ = writeln!(out, "⚠️ {}\n", md(&line));
    }
    let rules = view.container_rules();
    if !rules.is_empty() {
        out.push_str("| Results |");
        for r in &rules {
            let _ = write!(out, " {} |", md(r.id()));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(rules.len()));
        out.push('\n');
        for c in &view.containers {
            let _ = write!(out, "| {} |", md(&c.container));
            for r in &rules {
                let _ = write!(out, " {} |", result_cell(c.results.get(r).copied()));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    if !view.run_results.is_empty() {
        let parts: Vec<String> = view
            .run_results
            .iter()
            .map(|(r, s)| format!("{} {}", md(r.id()), result_cell(Some(*s))))
            .collect();
        let _ = writeln!(out, "Run-wide: {}\n", parts.join(" · "));
    }
    let _ = writeln!(out, "Memory data: {}.\n", md(&text::memory_line(view)));
    if !view.memory.pods.is_empty() {
        let _ = writeln!(out, "Coverage per pod and container:\n");
        for line in text::pod_coverage_lines(view) {
            let _ = writeln!(out, "- {}", md(&line));
        }
        out.push('\n');
    }
    for note in &view.memory.notes {
        let _ = writeln!(out, "- {}", md(note));
    }
    if !view.memory.notes.is_empty() {
        out.push('\n');
    }
}

/// Most per-request rows shown (k6 tags can make many).
const MAX_REQUEST_ROWS: usize = 30;

fn load(view: &ReportView, out: &mut String) {
    let l = &view.load;
    let driver = if l.driver.is_empty() {
        "load"
    } else {
        &l.driver
    };
    let _ = write!(
        out,
        "### Load\n\n{}, up to {} users",
        md(driver),
        view.peak_users()
    );
    if !l.latency_measure.trim().is_empty() {
        let _ = write!(out, "; latency is {}", md(l.latency_measure.trim()));
    }
    out.push_str(".\n\n");
    if l.requests == 0 {
        out.push_str("No request was sent.\n\n");
        return;
    }
    let lat = |ms| text::latency(view, ms);
    let _ = writeln!(
        out,
        "| Requests | Failures | Rate | p50 | p95 | p99 | max |\n|--:|--:|--:|--:|--:|--:|--:|\n\
         | {} | {} ({}) | {:.1} req/s | {} | {} | {} | {} |\n",
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
        let _ = writeln!(out, "Thresholds: {}.\n", md(&t));
    }
    if !l.status_codes.is_empty() {
        let codes: Vec<String> = l
            .status_codes
            .iter()
            .map(|(code, n)| format!("{code} ×{n}"))
            .collect();
        let _ = writeln!(out, "Status codes: {}.\n", codes.join(", "));
    }
    if l.per_request.len() > 1 {
        out.push_str("<details><summary>Per request</summary>\n\n");
        out.push_str(
            "| Request | Requests | Failures | p50 | p95 | p99 |\n|---|--:|--:|--:|--:|--:|\n",
        );
        for r in l.per_request.iter().take(MAX_REQUEST_ROWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md(&r.name),
                r.requests,
                r.failures,
                lat(r.p50_ms),
                lat(r.p95_ms),
                lat(r.p99_ms)
            );
        }
        if l.per_request.len() > MAX_REQUEST_ROWS {
            let _ = writeln!(
                out,
                "\n_… {} more requests in report.json._",
                l.per_request.len() - MAX_REQUEST_ROWS
            );
        }
        out.push_str("\n</details>\n\n");
    }
}

/// The findings that are not passes, one line each, cut to `budget` bytes with a note.
fn findings(view: &ReportView, budget: usize) -> String {
    let mut out = String::from("### Findings\n\n");
    let worth: Vec<_> = view
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Pass)
        .collect();
    if worth.is_empty() {
        let _ = writeln!(out, "✅ All {} checks passed.\n", view.findings.len());
        return out;
    }
    for (i, f) in worth.iter().enumerate() {
        let line = format!(
            "- {} **{}** {}\n",
            severity_icon(f.severity),
            md(f.rule.id()),
            md(&f.message)
        );
        if out.len() + line.len() > budget {
            let left = worth.len() - i;
            let _ = writeln!(
                out,
                "\n_… {left} more finding{} not shown (summary.md is kept under 64 KiB); \
                 report.html and report.json list them all._",
                if left == 1 { "" } else { "s" }
            );
            break;
        }
        out.push_str(&line);
    }
    out.push('\n');
    out
}

#[path = "markdown_analysis.rs"]
mod analysis;

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;

//! The human summary printed at the end of a run: the verdict line first (then the workload and
//! the run's notes), then one row per container (limit, allowed peak, peak, VPA target when there
//! is one, peak time with pod and stage) with the VPA's state when it says something to mind, and
//! each container's result per rule, the stage table, the load numbers, the memory source and its
//! caveats, the trends, memory per user and baseline deltas, the findings worth reading (fails
//! first) and "What to change" (the stage table and the analysis parts are in `analysis`).
//! Columns are aligned by hand; color is the caller's decision (off for NO_COLOR or a non-TTY).
//! Every string from outside goes through `sanitize_terminal`.

use crate::units::{format_ms, format_share};
use std::io::{self, Write};

use super::{sanitize_terminal, ReportView, Reporter};
use crate::judge::clock;
use crate::model::{Outcome, Rule, Severity};
use crate::units::{format_bytes, format_duration, format_percent};

/// Writes the human summary, with ANSI colors when `color` is set.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalReporter {
    pub color: bool,
}

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Reporter for TerminalReporter {
    fn name(&self) -> &'static str {
        "terminal"
    }

    /// When the summary is also kept as a file (it is normally printed to stdout).
    fn file_name(&self) -> &'static str {
        "summary.txt"
    }

    fn render(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        self.verdict(view, out)?;
        self.containers(view, out)?;
        self.stages(view, out)?;
        self.load(view, out)?;
        self.memory(view, out)?;
        self.analysis(view, out)?;
        self.findings(view, out)?;
        self.change(view, out)
    }
}

/// A table cell: the visible text and an optional style wrapped around it after padding.
struct Cell {
    text: String,
    style: Option<&'static str>,
}

fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        style: None,
    }
}

fn styled(text: impl Into<String>, style: &'static str) -> Cell {
    Cell {
        text: text.into(),
        style: Some(style),
    }
}

fn clean(s: &str) -> String {
    sanitize_terminal(s).into_owned()
}

fn mark(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Fail => ("✗", RED),
        Severity::Inconclusive => ("?", YELLOW),
        Severity::Warn => ("!", YELLOW),
        Severity::Skipped => ("-", DIM),
        Severity::Pass => ("✓", GREEN),
    }
}

fn result_cell(s: Option<Severity>) -> Cell {
    match s {
        None => cell("—"),
        Some(s) => {
            let (m, style) = mark(s);
            let word = super::text::severity_word(s);
            styled(format!("{m} {word}"), style)
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl TerminalReporter {
    fn paint(&self, text: &str, style: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// Writes rows with columns padded to the widest cell; the last column is not padded.
    fn table(&self, out: &mut dyn Write, rows: &[Vec<Cell>]) -> io::Result<()> {
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.text.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in rows {
            let mut line = String::from("  ");
            for (i, c) in row.iter().enumerate() {
                let last = i + 1 == row.len();
                let pad = if last {
                    0
                } else {
                    widths[i] - c.text.chars().count() + 2
                };
                match c.style {
                    Some(style) => line.push_str(&self.paint(&c.text, style)),
                    None => line.push_str(&c.text),
                }
                line.push_str(&" ".repeat(pad));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }

    fn heading(&self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        writeln!(out)?;
        writeln!(out, "{}", self.paint(title, BOLD))
    }

    fn verdict(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        let (word, style) = match view.outcome {
            Outcome::Fail => ("FAIL", RED),
            Outcome::Inconclusive => ("INCONCLUSIVE", YELLOW),
            Outcome::Pass => ("PASS", GREEN),
        };
        let detail = view.headline();
        writeln!(
            out,
            "{}  {} — {detail}",
            self.paint(word, style),
            self.paint(&clean(&view.scenario), BOLD)
        )?;
        if !view.workload.trim().is_empty() {
            writeln!(out, "  workload: {}", clean(view.workload.trim()))?;
        }
        writeln!(
            out,
            "  {} → {} UTC ({}), {}, exit code {}",
            view.started_at.format("%Y-%m-%d %H:%M:%S"),
            clock(view.ended_at),
            format_duration(std::time::Duration::from_millis(
                view.duration().as_millis() as u64 / 100 * 100
            )),
            plural(view.stages.len(), "stage", "stages"),
            view.exit_code
        )?;
        if let Some(reason) = &view.ended_early {
            writeln!(
                out,
                "  {}",
                self.paint(&format!("ended early: {}", clean(reason)), YELLOW)
            )?;
        }
        for note in &view.notes {
            writeln!(out, "  note: {}", clean(note))?;
        }
        Ok(())
    }

    fn containers(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        self.heading(
            out,
            &format!(
                "Memory (working set; allowed = limit × (1 − {} headroom))",
                format_percent(view.policy.headroom)
            ),
        )?;
        if view.containers.is_empty() {
            writeln!(out, "  {}", self.paint("no container was measured", YELLOW))?;
            return self.vpa(view, out);
        }
        let vpa_column = view.containers.iter().any(|c| c.vpa_target.is_some());
        let mut header = vec!["CONTAINER", "LIMIT", "ALLOWED", "PEAK", "OF LIMIT"];
        if vpa_column {
            header.push("VPA TARGET");
        }
        header.push("PEAK AT");
        let mut rows = vec![header
            .into_iter()
            .map(|h| styled(h, DIM))
            .collect::<Vec<_>>()];
        for c in &view.containers {
            let limit = match (c.limit, c.limit_spread) {
                (None, _) => styled("none", YELLOW),
                (Some(_), Some((lo, hi))) => {
                    cell(format!("{}–{}", format_bytes(lo), format_bytes(hi)))
                }
                (Some(l), None) => cell(format_bytes(l)),
            };
            let peak_style = match c.results.get(&Rule::Headroom) {
                Some(Severity::Fail) => Some(RED),
                _ => None,
            };
            let peak = Cell {
                text: c.peak.map(format_bytes).unwrap_or_else(|| "no data".into()),
                style: if c.peak.is_none() {
                    Some(YELLOW)
                } else {
                    peak_style
                },
            };
            let mut at = String::new();
            if let Some(t) = c.peak_at {
                at.push_str(&clock(t));
                if let Some(stage) = &c.peak_stage {
                    at.push_str(&format!("  {stage}"));
                }
                let mut extra = Vec::new();
                if c.pods.len() > 1 {
                    if let Some(pod) = &c.peak_pod {
                        extra.push(format!("pod {}", clean(pod)));
                    }
                }
                if let Some(upper) = c.peak_upper {
                    extra.push(format!("kernel peak usage {}", format_bytes(upper)));
                }
                if !extra.is_empty() {
                    at.push_str(&format!("  ({})", extra.join(", ")));
                }
            }
            let mut row = vec![
                cell(clean(&c.container)),
                limit,
                cell(
                    c.allowed_peak
                        .map(format_bytes)
                        .unwrap_or_else(|| "—".into()),
                ),
                peak,
                cell(
                    c.peak_share_of_limit()
                        .map(format_share)
                        .unwrap_or_else(|| "—".into()),
                ),
            ];
            if vpa_column {
                let style = match c.results.get(&Rule::VpaPeak) {
                    Some(Severity::Fail) => Some(RED),
                    Some(Severity::Warn) => Some(YELLOW),
                    _ => None,
                };
                row.push(Cell {
                    text: c.vpa_target.map(format_bytes).unwrap_or_else(|| "—".into()),
                    style: c.vpa_target.and(style),
                });
            }
            row.push(cell(at));
            rows.push(row);
        }
        self.table(out, &rows)?;
        self.vpa(view, out)?;

        let rules = view.container_rules();
        writeln!(out)?;
        let mut header = vec![styled("RESULTS", DIM)];
        header.extend(rules.iter().map(|r| styled(r.id().to_uppercase(), DIM)));
        let mut rows = vec![header];
        for c in &view.containers {
            let mut row = vec![cell(clean(&c.container))];
            row.extend(rules.iter().map(|r| result_cell(c.results.get(r).copied())));
            rows.push(row);
        }
        self.table(out, &rows)?;
        if !view.run_results.is_empty() {
            let results: Vec<String> = view
                .run_results
                .iter()
                .map(|(rule, s)| {
                    let c = result_cell(Some(*s));
                    let text = match c.style {
                        Some(style) => self.paint(&c.text, style),
                        None => c.text,
                    };
                    format!("{} {text}", rule.id())
                })
                .collect();
            writeln!(out, "  run-wide: {}", results.join(", "))?;
        }
        Ok(())
    }

    /// One line under the memory table when the VPA's state needs minding: no recommendation
    /// (yet), unavailable, low confidence, or no recommendation for any measured container.
    fn vpa(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        match super::text::vpa_line(view) {
            // The VPA's name and reason come from the cluster: sanitize the whole line.
            Some(line) => writeln!(out, "  {}", self.paint(&clean(&line), YELLOW)),
            None => Ok(()),
        }
    }

    fn load(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        let load = &view.load;
        let peak_users = view.stages.iter().map(|s| s.to_users).max().unwrap_or(0);
        let driver = if load.driver.is_empty() {
            "load"
        } else {
            &load.driver
        };
        self.heading(
            out,
            &format!("Load ({}, up to {peak_users} users)", clean(driver)),
        )?;
        if load.requests == 0 {
            return writeln!(out, "  {}", self.paint("no request was sent", YELLOW));
        }
        let failures = format!("{} ({})", load.failures, format_share(load.error_rate()));
        let measure = if load.latency_measure.trim().is_empty() {
            String::new()
        } else {
            format!(" ({})", clean(load.latency_measure.trim()))
        };
        writeln!(
            out,
            "  requests {}   failures {}   {:.1} req/s",
            load.requests,
            if load.failures > 0 {
                self.paint(&failures, YELLOW)
            } else {
                failures
            },
            load.rps
        )?;
        writeln!(
            out,
            "  latency{measure}   p50 {}   p95 {}   p99 {}   max {}",
            format_ms(load.p50_ms),
            format_ms(load.p95_ms),
            format_ms(load.p99_ms),
            format_ms(load.max_ms)
        )?;
        if !load.status_codes.is_empty() {
            let codes: Vec<String> = load
                .status_codes
                .iter()
                .map(|(code, n)| format!("{code} ×{n}"))
                .collect();
            writeln!(out, "  status   {}", codes.join(", "))?;
        }
        if load.per_request.len() > 1 {
            let mut rows = vec![["REQUEST", "REQUESTS", "FAILURES", "P50", "P95", "P99"]
                .into_iter()
                .map(|h| styled(h, DIM))
                .collect::<Vec<_>>()];
            for r in &load.per_request {
                rows.push(vec![
                    cell(clean(&r.name)),
                    cell(r.requests.to_string()),
                    cell(r.failures.to_string()),
                    cell(format_ms(r.p50_ms)),
                    cell(format_ms(r.p95_ms)),
                    cell(format_ms(r.p99_ms)),
                ]);
            }
            writeln!(out)?;
            self.table(out, &rows)?;
        }
        Ok(())
    }

    fn memory(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        let m = &view.memory;
        self.heading(out, "Memory data")?;
        let coverage = if m.ticks == 0 {
            "no sampling tick recorded".to_string()
        } else {
            format!(
                "coverage {} ({} of {} ticks)",
                format_share(m.coverage),
                m.ticks_with_data,
                m.ticks
            )
        };
        let coverage = if m.ticks == 0 || m.coverage < view.policy.min_coverage {
            self.paint(&coverage, YELLOW)
        } else {
            coverage
        };
        writeln!(
            out,
            "  {}, every {}, {coverage}",
            clean(&m.source),
            format_duration(m.interval)
        )?;
        if !m.limit_enforced {
            writeln!(
                out,
                "  {}",
                self.paint(
                    "!! LIMIT NOT ENFORCED: the memory limit was only declared, not applied by a \
                     memory cgroup, so an OOM kill could not happen in this run",
                    RED
                )
            )?;
        }
        let rows = super::text::pod_coverage_lines(view);
        if !rows.is_empty() {
            writeln!(out, "  per pod and container:")?;
        }
        for (line, row) in rows.iter().zip(&m.pods) {
            let line = clean(line);
            let line = if row.below {
                self.paint(&line, YELLOW)
            } else {
                line
            };
            writeln!(out, "    {line}")?;
        }
        for note in &m.notes {
            writeln!(out, "  note: {}", clean(note))?;
        }
        Ok(())
    }

    fn findings(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        self.heading(out, "Findings")?;
        let worth: Vec<_> = view
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Pass)
            .collect();
        if worth.is_empty() {
            return writeln!(
                out,
                "  {}",
                self.paint(
                    &format!("{} passed", plural(view.findings.len(), "check", "checks")),
                    GREEN
                )
            );
        }
        for f in worth {
            let (m, style) = mark(f.severity);
            writeln!(
                out,
                "  {} {} {}",
                self.paint(m, style),
                clean(&f.message),
                self.paint(&format!("[{}]", f.rule), DIM)
            )?;
        }
        Ok(())
    }
}

#[path = "terminal_analysis.rs"]
mod analysis;

//! The analysis parts of the terminal summary: a compact stage table (per stage and container
//! the peak, median and p95 working set; the stage's req/s, p95 latency and errors when the
//! driver splits its numbers by stage), the growing trends through the holds (or one line saying
//! there are none), the memory-per-user fit, the deltas against a baseline, and "What to
//! change" with the runtime heap settings and the ready YAML patch of each container. Outside
//! strings go through `sanitize_terminal`.

use std::io::{self, Write};

use super::super::text;
use super::super::{advice, ReportView};
use super::{cell, clean, styled, Cell, TerminalReporter, DIM, RED, YELLOW};
use crate::model::Severity;
use crate::units::format_ms;
use crate::units::{format_bytes, format_duration, format_percent};

fn bytes(b: Option<u64>) -> String {
    b.map(format_bytes).unwrap_or_else(|| "—".to_string())
}

impl TerminalReporter {
    pub(super) fn stages(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        if view.stages.is_empty() {
            return Ok(());
        }
        self.heading(
            out,
            "Stages (working set over all pods' samples in the stage)",
        )?;
        let with_load = view.stages.iter().any(|s| s.load.is_some());
        let mut header = vec![
            "STAGE",
            "USERS",
            "TIME",
            "CONTAINER",
            "PEAK",
            "MEDIAN",
            "P95",
        ];
        if with_load {
            header.extend(["REQ/S", "P95 LAT", "ERRORS"]);
        }
        let mut rows = vec![header
            .into_iter()
            .map(|h| styled(h, DIM))
            .collect::<Vec<_>>()];
        for s in &view.stages {
            let users = if s.from_users == s.to_users {
                s.to_users.to_string()
            } else {
                format!("{}→{}", s.from_users, s.to_users)
            };
            let kind = if s.from_users == s.to_users {
                "hold"
            } else {
                "ramp"
            };
            let mut first = true;
            let containers: Vec<Option<&super::super::StageMemory>> = if s.containers.is_empty() {
                vec![None]
            } else {
                s.containers.iter().map(Some).collect()
            };
            for c in containers {
                let mut row = if first {
                    vec![
                        cell(format!("{} {kind}", s.index + 1)),
                        cell(users.clone()),
                        cell(text::stage_duration(s.duration)),
                    ]
                } else {
                    vec![cell(""), cell(""), cell("")]
                };
                match c {
                    Some(c) => row.extend([
                        cell(clean(&c.container)),
                        cell(bytes(c.peak)),
                        cell(bytes(c.median)),
                        cell(bytes(c.p95)),
                    ]),
                    None => row.extend([cell("—"), cell("—"), cell("—"), cell("—")]),
                }
                if with_load && first {
                    match &s.load {
                        Some(l) => row.extend([
                            cell(format!("{:.1}", l.rps)),
                            cell(if l.requests == 0 {
                                "n/a".to_string()
                            } else {
                                format_ms(l.p95_ms)
                            }),
                            if l.failures > 0 {
                                styled(l.failures.to_string(), YELLOW)
                            } else {
                                cell("0")
                            },
                        ]),
                        None => row.extend([cell("—"), cell("—"), cell("—")]),
                    }
                }
                first = false;
                rows.push(row);
            }
        }
        self.table(out, &rows)
    }

    pub(super) fn analysis(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        if !view.trends.is_empty() {
            let leak = &view.policy.leak;
            self.heading(
                out,
                &format!(
                    "Trends through the holds (≥ {}, after {} settle; horizon {})",
                    format_duration(leak.min_hold),
                    format_percent(leak.settle),
                    format_duration(leak.horizon)
                ),
            )?;
            let growing: Vec<_> = view.trends.iter().filter(|t| t.growing).collect();
            for t in &growing {
                let line = format!(
                    "{} (pod {}) {}: {}, reaches the allowed peak {}",
                    clean(&t.container),
                    clean(&t.pod),
                    text::trend_hold(t),
                    text::trend_rate(t.bytes_per_min),
                    text::trend_reach(t, leak.horizon)
                );
                writeln!(out, "  {} {line}", self.paint("!", YELLOW))?;
            }
            let flat = view.trends.len() - growing.len();
            if flat > 0 {
                let steepest = view
                    .trends
                    .iter()
                    .filter(|t| !t.growing)
                    .map(|t| t.bytes_per_min)
                    .fold(f64::NEG_INFINITY, f64::max);
                writeln!(
                    out,
                    "  {} {flat} of {} trends flat within the noise (steepest {})",
                    self.paint("✓", super::GREEN),
                    view.trends.len(),
                    text::trend_rate(steepest)
                )?;
            }
        }
        if !view.capacity.is_empty() {
            self.heading(out, "Memory per user")?;
            for c in &view.capacity {
                writeln!(
                    out,
                    "  {}: {}",
                    clean(&c.container),
                    clean(&text::capacity_line(c))
                )?;
            }
        }
        if let Some(b) = &view.baseline {
            self.heading(
                out,
                &format!(
                    "Against {}: a peak may grow +{}",
                    clean(&b.description),
                    format_percent(b.max_growth)
                ),
            )?;
            let mut rows: Vec<Vec<Cell>> = vec![["", "BASELINE", "", "THIS RUN", "CHANGE"]
                .into_iter()
                .map(|h| styled(h, DIM))
                .collect()];
            for d in &b.deltas {
                let (label, before, now, change, mark) = text::delta_cells(d, b);
                let change = match mark {
                    Some(Severity::Fail) => styled(change, RED),
                    Some(_) => styled(change, YELLOW),
                    None => cell(change),
                };
                rows.push(vec![
                    cell(clean(&label)),
                    cell(before),
                    cell("→"),
                    cell(now),
                    change,
                ]);
            }
            self.table(out, &rows)?;
        }
        Ok(())
    }

    pub(super) fn change(&self, view: &ReportView, out: &mut dyn Write) -> io::Result<()> {
        let rows: Vec<_> = view
            .containers
            .iter()
            .filter(|c| c.recommendation.is_some())
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.heading(out, "What to change")?;
        writeln!(
            out,
            "  {}",
            self.paint(&advice::method(view.policy.headroom), DIM)
        )?;
        for c in rows {
            let r = c.recommendation.as_ref().expect("filtered");
            writeln!(
                out,
                "  {}: {}",
                self.paint(&clean(&c.container), super::BOLD),
                clean(&advice::sentence(c).unwrap_or_default())
            )?;
            writeln!(out, "    {}", clean(&advice::runtime_line(c, r)))?;
            for line in advice::patch_for(c, r).unwrap_or_default().lines() {
                writeln!(out, "    {}", self.paint(&clean(line), DIM))?;
            }
        }
        Ok(())
    }
}

//! The progress display while the load runs: stage i/n, users, requests and req/s, failures,
//! and per container the current working set against the allowed peak. On a terminal it is a
//! live indicatif line on stderr, redrawn every tick; without one it is one plain log line every
//! 10 s, so CI logs stay readable. `NO_COLOR` and `-q` are honoured.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::load::LiveCounters;
use crate::memory::sampler::Sampler;
use crate::scenario::Scenario;
use crate::units::format_bytes;

/// Reports progress, live on a terminal or as periodic log lines.
pub struct Progress {
    every: Duration,
    last: Instant,
    started: Instant,
    /// Allowed peak per container name, when known.
    allowed: Vec<(String, u64)>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(every: Duration, allowed: Vec<(String, u64)>, quiet: bool) -> Self {
        let live = !quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("OOMGATE_NO_PROGRESS").is_none();
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            let template = if std::env::var_os("NO_COLOR").is_some() {
                "{spinner} {elapsed_precise} {msg}"
            } else {
                "{spinner:.cyan} {elapsed_precise} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            every,
            last: Instant::now(),
            started: Instant::now(),
            allowed,
            bar,
        }
    }

    fn line(&self, sc: &Scenario, live: &LiveCounters, sampler: &Sampler) -> String {
        let elapsed = self.started.elapsed();
        let (req, fail) = live.snapshot();
        let mut acc = Duration::ZERO;
        let stage = sc.load.stages.iter().find(|s| {
            acc += s.duration;
            elapsed < acc
        });
        let stage_txt = match stage {
            Some(s) => {
                let into = (elapsed.saturating_sub(acc - s.duration)).as_secs_f64();
                let frac = if s.duration.is_zero() {
                    1.0
                } else {
                    (into / s.duration.as_secs_f64()).min(1.0)
                };
                let users = s.from_users as f64 + (s.to_users as f64 - s.from_users as f64) * frac;
                format!(
                    "stage {}/{} ({}) {:.0} users",
                    s.index + 1,
                    sc.load.stages.len(),
                    s.kind_word(),
                    users
                )
            }
            None => "stopping".to_string(),
        };
        let mem: Vec<String> = sampler
            .current()
            .into_iter()
            .map(|(c, ws)| match self.allowed.iter().find(|(n, _)| *n == c) {
                Some((_, a)) => format!("{c} {} / {} allowed", format_bytes(ws), format_bytes(*a)),
                None => format!("{c} {}", format_bytes(ws)),
            })
            .collect();
        format!(
            "{stage_txt} · {req} req ({:.0}/s) · {fail} errors · {}",
            req as f64 / elapsed.as_secs_f64().max(0.001),
            if mem.is_empty() {
                "no memory data yet".to_string()
            } else {
                mem.join(", ")
            }
        )
    }

    /// Called every sampling tick.
    pub fn tick(&mut self, sc: &Scenario, live: &LiveCounters, sampler: &Sampler) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.line(sc, live, sampler));
            bar.tick();
            return;
        }
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        log::info!(
            "[{:>4}s] {}",
            self.started.elapsed().as_secs(),
            self.line(sc, live, sampler)
        );
    }

    /// Remove the live line before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

//! The progress line while the load runs: stage i/n, users, requests and req/s, failures, and
//! per container the current working set against the allowed peak. Without a terminal it is one
//! plain log line every 10 s.

use std::time::{Duration, Instant};

use crate::load::LiveCounters;
use crate::memory::sampler::Sampler;
use crate::scenario::Scenario;
use crate::units::format_bytes;

/// Prints one progress line every `every`.
pub struct Progress {
    every: Duration,
    last: Instant,
    started: Instant,
    /// Allowed peak per container name, when known.
    allowed: Vec<(String, u64)>,
}

impl Progress {
    pub fn new(every: Duration, allowed: Vec<(String, u64)>) -> Self {
        Progress {
            every,
            last: Instant::now(),
            started: Instant::now(),
            allowed,
        }
    }

    pub fn maybe_print(&mut self, sc: &Scenario, live: &LiveCounters, sampler: &Sampler) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        let elapsed = self.started.elapsed();
        let (req, fail) = live.snapshot();
        let mut acc = Duration::ZERO;
        let stage = sc.load.stages.iter().find(|s| {
            acc += s.duration;
            elapsed < acc
        });
        let stage_txt = match stage {
            Some(s) => format!("{}/{} {}", s.index + 1, sc.load.stages.len(), s.describe()),
            None => "stopping".to_string(),
        };
        let mem: Vec<String> = sampler
            .current()
            .into_iter()
            .map(|(c, ws)| match self.allowed.iter().find(|(n, _)| *n == c) {
                Some((_, a)) => format!("{c} {} of {} allowed", format_bytes(ws), format_bytes(*a)),
                None => format!("{c} {}", format_bytes(ws)),
            })
            .collect();
        log::info!(
            "[{:>4}s] {stage_txt} · {req} requests ({:.0}/s) · {fail} failed · {}",
            elapsed.as_secs(),
            req as f64 / elapsed.as_secs_f64().max(0.001),
            if mem.is_empty() {
                "no memory data yet".to_string()
            } else {
                mem.join(", ")
            }
        );
    }
}

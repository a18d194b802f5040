//! The orchestra of one gate run: start the workload, start the load driver, sample memory on a
//! fixed interval while the load runs, stop early on an OOM kill, a dead service or a signal,
//! then assemble the `Run`, judge it and hand it to the reporters. Cleanup (the service, its
//! cgroup) happens on every path, errors and interrupts included.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::sync::Notify;

use crate::load::goose::GooseDriver;
use crate::load::{self, LiveCounters, LoadDriver, LoadOutcome};
use crate::memory::sampler::Sampler;
use crate::memory::MemorySource;
use crate::model::{MemoryMeta, RestartEvent, RestartReason, Run, StageWindow, Verdict};
use crate::scenario::{Driver, Scenario, WorkloadSpec};
use crate::units::format_bytes;
use crate::workload::local::{LocalSpec, LocalWorkload};

/// Set by the signal handlers: the exit code an interrupted run ends with (130 SIGINT, 143
/// SIGTERM), 0 while not interrupted.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

fn interrupt_notify() -> &'static Notify {
    static N: std::sync::OnceLock<Notify> = std::sync::OnceLock::new();
    N.get_or_init(Notify::new)
}

/// The exit code of the signal that interrupted the run, if any.
pub fn interrupted() -> Option<u8> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        c => Some(c as u8),
    }
}

fn interrupt(code: i32, what: &str) {
    if INTERRUPTED
        .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        load::stop_running_load(&format!("interrupted by {what}"));
        interrupt_notify().notify_waiters();
        interrupt_notify().notify_one();
    }
}

/// Install Ctrl-C and SIGTERM handling before Goose can install its own. Must be called inside
/// the Tokio runtime.
pub fn install_signal_handlers() {
    // Goose installs a ctrlc handler unless one exists; ours takes the slot first.
    if let Err(e) = ctrlc::set_handler(|| interrupt(130, "Ctrl-C (SIGINT)")) {
        log::debug!("could not install the Ctrl-C handler: {e}");
    }
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::spawn(async move {
                if term.recv().await.is_some() {
                    interrupt(143, "SIGTERM");
                }
            });
        }
        Err(e) => log::debug!("could not install the SIGTERM handler: {e}"),
    }
}

/// What a finished run produced.
pub struct RunResult {
    pub run: Run,
    pub verdict: Verdict,
}

/// Sends one plain progress line every `every`.
struct Progress {
    every: Duration,
    last: Instant,
    started: Instant,
    allowed: Option<u64>,
}

impl Progress {
    fn maybe_print(&mut self, sc: &Scenario, live: &LiveCounters, sampler: &Sampler) {
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
            .map(|(c, ws)| match self.allowed {
                Some(a) => format!("{c} {} of {} allowed", format_bytes(ws), format_bytes(a)),
                None => format!("{c} {}", format_bytes(ws)),
            })
            .collect();
        log::info!(
            "[{:>4}s] {stage_txt} · {req} requests ({:.0}/s) · {fail} failed · {}",
            elapsed.as_secs(),
            req as f64 / elapsed.as_secs_f64().max(0.001),
            mem.join(", ")
        );
    }
}

/// Run a scenario end to end and judge it.
pub async fn execute(sc: &Scenario) -> Result<RunResult> {
    load::reset_stop();
    let WorkloadSpec::Local(local) = &sc.workload else {
        anyhow::bail!(
            "{}: workload.kubernetes is not supported by this build yet; use workload.local",
            sc.file.display()
        );
    };
    if sc.load.driver == Driver::K6 {
        anyhow::bail!(
            "{}: load.driver k6 is not supported by this build yet; use goose",
            sc.file.display()
        );
    }
    let target_url = sc
        .target_url
        .clone()
        .context("the scenario has no target URL")?;
    let spec = LocalSpec {
        command: local.command.clone(),
        env: local.env.clone(),
        ready_url: local.ready_url.clone(),
        ready_timeout: local.ready_timeout,
        limit: local.limit,
        name: local.container.clone(),
    };
    log::info!(
        "starting {} under a {} memory limit",
        local
            .command
            .first()
            .map(String::as_str)
            .unwrap_or("the service"),
        local.limit.map(format_bytes).unwrap_or_else(|| "no".into())
    );
    let mut workload = tokio::select! {
        w = LocalWorkload::start(&spec) => w.with_context(|| format!("starting workload.local from {}", sc.file.display()))?,
        _ = interrupt_notify().notified() => anyhow::bail!("interrupted while starting the service"),
    };
    for note in workload.notes() {
        log::warn!("{note}");
    }
    let result = measure(sc, &target_url, &mut workload).await;
    if let Err(e) = workload.shutdown().await {
        log::warn!("stopping the service: {e}");
    }
    result
}

async fn measure(
    sc: &Scenario,
    target_url: &str,
    workload: &mut LocalWorkload,
) -> Result<RunResult> {
    let WorkloadSpec::Local(local) = &sc.workload else {
        unreachable!("checked by execute")
    };
    let mut source = workload.memory_source();
    let mut sampler = Sampler::new();
    sampler.declare("local", &local.container, local.limit, local.request);
    let interval = sc.memory.interval;
    let driver: Box<dyn LoadDriver> = Box::new(GooseDriver {
        target_url: target_url.to_string(),
        stages: sc.load.stages.clone(),
        requests: sc.load.requests.clone(),
        think_time: sc.load.think_time,
    });
    let live = Arc::new(LiveCounters::default());
    let started_at = Utc::now();
    let mut load_task = tokio::spawn(driver.run(Arc::clone(&live)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut restarts: Vec<RestartEvent> = Vec::new();
    let mut ended_early: Option<String> = None;
    let mut progress = Progress {
        every: Duration::from_secs(10),
        last: Instant::now(),
        started: Instant::now(),
        allowed: local
            .limit
            .map(|l| (l as f64 * (1.0 - sc.policy.headroom)) as u64),
    };
    let outcome = loop {
        tokio::select! {
            res = &mut load_task => break res,
            _ = ticker.tick() => {
                let events = poll_once(source.as_mut(), &mut sampler).await;
                if let Some(e) = events.first() {
                    let msg = format!("{} was OOM-killed at {}", e.container, e.at.format("%H:%M:%S"));
                    log::warn!("{msg}: stopping the load");
                    ended_early.get_or_insert(format!("{msg}; the run stopped early"));
                    load::stop_running_load(&msg);
                }
                restarts.extend(events);
                if let Some(status) = workload.try_exit_status() {
                    if ended_early.is_none() {
                        let msg = format!("the service exited during the run ({status})");
                        log::warn!("{msg}: stopping the load");
                        // The OOM counter may trail the exit by a moment: look once more.
                        let late = poll_once(source.as_mut(), &mut sampler).await;
                        if late.is_empty() {
                            restarts.push(RestartEvent {
                                pod: "local".into(),
                                container: local.container.clone(),
                                at: Utc::now(),
                                reason: RestartReason::Other(status.to_string()),
                                exit_code: status.code(),
                            });
                        }
                        restarts.extend(late);
                        ended_early = Some(format!("{msg}; the run stopped early"));
                        load::stop_running_load(&msg);
                    }
                }
                progress.maybe_print(sc, &live, &sampler);
            }
            _ = interrupt_notify().notified() => {
                ended_early.get_or_insert_with(|| "interrupted; the run stopped early".into());
            }
        }
    };
    // One last reading so a peak in the final moments counts.
    restarts.extend(poll_once(source.as_mut(), &mut sampler).await);
    let ended_at = Utc::now();
    let outcome: LoadOutcome = outcome
        .context("the load task panicked")?
        .context("running the load")?;
    if ended_early.is_none() {
        ended_early = outcome.stopped_early.clone();
    }
    let stages: Vec<StageWindow> = outcome.stages;
    let memory = MemoryMeta {
        source: source.name().to_string(),
        interval,
        ticks: sampler.ticks,
        ticks_with_data: sampler.ticks_with_data,
        limit_enforced: workload.limit_enforced(),
        notes: workload.notes().to_vec(),
    };
    if let Some(err) = &sampler.last_error {
        log::warn!(
            "{} of {} memory readings failed; the last error: {err}",
            sampler.failed_ticks,
            sampler.ticks
        );
    }
    let run = Run {
        scenario: sc.name.clone(),
        started_at,
        ended_at,
        stages,
        containers: sampler.into_series(),
        restarts,
        load: outcome.stats,
        memory,
        ended_early,
        workload: format!("local service {}", local.container),
        vpa: None,
        notes: Vec::new(),
    };
    let verdict = crate::judge::evaluate(&sc.policy, &run);
    Ok(RunResult { run, verdict })
}

/// Poll the source once, feeding the sampler; returns OOM kills seen in this tick.
async fn poll_once(source: &mut dyn MemorySource, sampler: &mut Sampler) -> Vec<RestartEvent> {
    match source.poll().await {
        Ok(obs) => sampler.record(obs),
        Err(e) => {
            sampler.record_error(&e.to_string());
            Vec::new()
        }
    }
}

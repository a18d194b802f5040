//! The orchestra of one gate run: start (or find) the workload, start the load driver, sample
//! memory on a fixed interval while the load runs, follow the workload's events (a local service
//! exiting, pods appearing, going away or restarting), stop early on an OOM kill or a signal,
//! then assemble the `Run` and judge it. `local.rs` and `kubernetes.rs` prepare a workload and
//! its event channel; `measure` is shared. Cleanup happens on every path.

mod kubernetes;
mod local;
mod posthoc;
mod progress;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::sync::{mpsc, Notify};

pub use kubernetes::check as check_kubernetes;
pub use posthoc::judge_k6;

use crate::cluster::ClusterAccess;
use crate::load::goose::GooseDriver;
use crate::load::k6::K6Driver;
use crate::load::{self, LiveCounters, LoadDriver, LoadOutcome};
use crate::memory::sampler::Sampler;
use crate::memory::MemorySource;
use crate::model::{MemoryMeta, RestartEvent, RestartReason, Run, Verdict, VpaStatus};
use crate::scenario::{Driver, Scenario, WorkloadSpec};
use progress::Progress;

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

/// Where to find the cluster, for Kubernetes workloads.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    pub access: ClusterAccess,
    /// The report directory (the k6 driver writes its results there).
    pub out_dir: std::path::PathBuf,
    /// An earlier report to compare with (`--baseline`).
    pub baseline: Option<crate::analysis::baseline::Baseline>,
}

/// What a finished run produced.
pub struct RunResult {
    pub run: Run,
    pub verdict: Verdict,
}

/// Something that happened to the workload while the load ran.
#[derive(Debug, Clone)]
pub(crate) enum WorkloadEvent {
    /// A pod (new, or seen for the first time) with its containers' (name, limit, request).
    PodSeen {
        pod: String,
        containers: Vec<(String, Option<u64>, Option<u64>)>,
    },
    /// A pod went away; its samples stay.
    PodGone(String),
    /// A container restarted or was OOM-killed.
    Restart(RestartEvent),
    /// The local service's process ended (status text, exit code).
    ServiceExited {
        container: String,
        status: String,
        code: Option<i32>,
    },
    /// The watch had a problem (logged; the run goes on).
    Error(String),
}

/// What `prepare` hands to `measure`.
pub(crate) struct Prepared {
    pub source: Box<dyn MemorySource>,
    pub sampler: Sampler,
    pub events: mpsc::Receiver<WorkloadEvent>,
    /// An OOM kill ends the run (always for a local service; `stop_on_oom` in a cluster).
    pub stop_on_oom: bool,
    pub limit_enforced: bool,
    pub notes: Vec<String>,
    pub workload: String,
    pub vpa: Option<VpaStatus>,
    /// Allowed peak per container name, for the progress line.
    pub allowed: Vec<(String, u64)>,
    /// Each measured container's environment, for the runtime-setting lint.
    pub env: Vec<(String, Vec<(String, String)>)>,
    /// The baseline report to compare with (`--baseline`).
    pub baseline: Option<crate::analysis::baseline::Baseline>,
}

/// Run a scenario end to end and judge it.
pub async fn execute(sc: &Scenario, ctx: &RunContext) -> Result<RunResult> {
    load::reset_stop();
    let driver = driver(sc, ctx)?;
    match &sc.workload {
        WorkloadSpec::Local(l) => local::execute(sc, l, ctx, driver).await,
        WorkloadSpec::Kubernetes(k) => kubernetes::execute(sc, k, ctx, driver).await,
    }
}

/// The load driver the scenario asks for.
fn driver(sc: &Scenario, ctx: &RunContext) -> Result<Box<dyn LoadDriver>> {
    Ok(match sc.load.driver {
        Driver::Goose => Box::new(GooseDriver {
            target_url: sc
                .target_url
                .clone()
                .context("the scenario has no target URL")?,
            stages: sc.load.stages.clone(),
            requests: sc.load.requests.clone(),
            think_time: sc.load.think_time,
        }),
        Driver::K6 => {
            let k6 = sc.load.k6.as_ref().context("load.k6 is missing")?;
            Box::new(K6Driver {
                script: k6.script.clone(),
                args: k6.args.clone(),
                stages: sc.load.stages.clone(),
                results: ctx.out_dir.join("k6.json.gz"),
                target_url: sc.target_url.clone(),
            })
        }
    })
}

/// Wait for a signal; used while preparing so Ctrl-C never hangs.
pub(crate) async fn interrupted_wait() {
    if interrupted().is_some() {
        return;
    }
    interrupt_notify().notified().await
}

/// Drive the load while sampling memory and following workload events; then judge.
pub(crate) async fn measure(
    sc: &Scenario,
    driver: Box<dyn LoadDriver>,
    mut p: Prepared,
) -> Result<RunResult> {
    let live = Arc::new(LiveCounters::default());
    let started_at = Utc::now();
    let mut load_task = tokio::spawn(driver.run(Arc::clone(&live)));
    let mut ticker = tokio::time::interval(sc.memory.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut restarts: Vec<RestartEvent> = Vec::new();
    let mut ended_early: Option<String> = None;
    let quiet = log::max_level() < log::LevelFilter::Info;
    let mut progress = Progress::new(Duration::from_secs(10), p.allowed.clone(), quiet);
    let mut events_open = true;
    let stop = |ended_early: &mut Option<String>, msg: String| {
        log::warn!("{msg}: stopping the load");
        ended_early.get_or_insert(format!("{msg}; the run stopped early"));
        load::stop_running_load(&msg);
    };
    let outcome = loop {
        tokio::select! {
            res = &mut load_task => break res,
            _ = ticker.tick() => {
                let ooms = poll_once(p.source.as_mut(), &mut p.sampler).await;
                if let Some(e) = ooms.first() {
                    stop(&mut ended_early, format!("{} was OOM-killed at {}", e.container, e.at.format("%H:%M:%S")));
                }
                restarts.extend(ooms);
                progress.tick(sc, &live, &p.sampler);
            }
            ev = p.events.recv(), if events_open => match ev {
                None => events_open = false,
                Some(WorkloadEvent::PodSeen { pod, containers }) => {
                    log::info!("pod {pod} is part of the workload");
                    for (c, limit, request) in containers {
                        p.sampler.declare(&pod, &c, limit, request);
                    }
                }
                Some(WorkloadEvent::PodGone(pod)) => log::warn!("pod {pod} went away during the run; its samples are kept"),
                Some(WorkloadEvent::Restart(e)) => {
                    let oom = e.reason == RestartReason::OomKilled;
                    log::warn!(
                        "{} in pod {} {} at {}",
                        e.container,
                        e.pod,
                        if oom { "was OOM-killed".to_string() } else { format!("restarted ({:?})", e.reason) },
                        e.at.format("%H:%M:%S")
                    );
                    if oom && p.stop_on_oom {
                        stop(&mut ended_early, format!("{} in pod {} was OOM-killed", e.container, e.pod));
                    }
                    restarts.push(e);
                }
                Some(WorkloadEvent::ServiceExited { container, status, code }) => {
                    if ended_early.is_none() {
                        // The OOM counter may trail the exit by a moment: look once more.
                        let late = poll_once(p.source.as_mut(), &mut p.sampler).await;
                        if late.is_empty() && !restarts.iter().any(|r| r.reason == RestartReason::OomKilled) {
                            restarts.push(RestartEvent {
                                pod: "local".into(),
                                container: container.clone(),
                                at: Utc::now(),
                                reason: RestartReason::Other(format!("exited ({status})")),
                                exit_code: code,
                            });
                        }
                        restarts.extend(late);
                        stop(&mut ended_early, format!("the service exited during the run ({status})"));
                    }
                }
                Some(WorkloadEvent::Error(e)) => log::warn!("watching the workload: {e}"),
            },
            _ = interrupt_notify().notified() => {
                ended_early.get_or_insert_with(|| "interrupted; the run stopped early".into());
            }
        }
    };
    progress.finish();
    // One last reading so a peak in the final moments counts.
    restarts.extend(poll_once(p.source.as_mut(), &mut p.sampler).await);
    // Restart events that arrived while the load was stopping.
    while let Ok(ev) = p.events.try_recv() {
        if let WorkloadEvent::Restart(e) = ev {
            restarts.push(e);
        }
    }
    let ended_at = Utc::now();
    let mut outcome: LoadOutcome = outcome
        .context("the load task panicked")?
        .context("running the load")?;
    outcome.stats.tool_thresholds_failed = outcome.tool_thresholds_failed;
    if ended_early.is_none() {
        ended_early = outcome.stopped_early.clone();
    }
    if let Some(err) = &p.sampler.last_error {
        log::warn!(
            "{} of {} memory readings failed; the last error: {err}",
            p.sampler.failed_ticks,
            p.sampler.ticks
        );
    }
    dedup_restarts(&mut restarts);
    let memory = MemoryMeta {
        source: p.source.name().to_string(),
        interval: sc.memory.interval,
        ticks: p.sampler.ticks,
        ticks_with_data: p.sampler.ticks_with_data,
        limit_enforced: p.limit_enforced,
        notes: p.notes.clone(),
    };
    let run = Run {
        scenario: sc.name.clone(),
        started_at,
        ended_at,
        stages: outcome.stages,
        containers: p.sampler.into_series(),
        restarts,
        load: outcome.stats,
        memory,
        ended_early,
        workload: p.workload,
        vpa: p.vpa,
        notes: p.notes,
        baseline: p.baseline,
        env: p.env,
    };
    let verdict = crate::judge::evaluate(&sc.policy, &run);
    Ok(RunResult { run, verdict })
}

/// The same restart reported twice (by two paths) counts once.
fn dedup_restarts(restarts: &mut Vec<RestartEvent>) {
    let mut seen: Vec<RestartEvent> = Vec::new();
    restarts.retain(|r| {
        let dup = seen.iter().any(|s| {
            s.pod == r.pod
                && s.container == r.container
                && s.reason == r.reason
                && (s.at - r.at).num_milliseconds().abs() < 1000
        });
        if !dup {
            seen.push(r.clone());
        }
        !dup
    });
}

/// Poll the source once, feeding the sampler; returns OOM kills seen in this tick.
async fn poll_once(source: &mut dyn MemorySource, sampler: &mut Sampler) -> Vec<RestartEvent> {
    match source.poll().await {
        Ok(obs) => sampler.record(obs),
        Err(e) => {
            log::debug!("memory reading failed: {e}");
            sampler.record_error(&e.to_string());
            Vec::new()
        }
    }
}

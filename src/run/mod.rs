//! The orchestra of one gate run: start (or find) the workload, start the load driver, sample
//! memory on a fixed interval while the load runs, follow the workload's events (a local service
//! exiting, pods appearing, going away or restarting), stop early on an OOM kill or a signal,
//! then assemble the `Run` and judge it. `local.rs` and `kubernetes.rs` prepare a workload and
//! its event channel; `measure` is shared. Cleanup happens on every path.

mod kubernetes;
pub use preflight::check_local;
mod local;
mod posthoc;
mod preflight;
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
use crate::model::{MemoryMeta, RequestMark, RestartEvent, RestartReason, Run, Verdict, VpaStatus};
use crate::scenario::{Driver, Scenario, WorkloadSpec};
use progress::Progress;

/// Set by the signal handlers: the exit code an interrupted run ends with (130 SIGINT, 143
/// SIGTERM), 0 while not interrupted.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// Set by a second signal: the load is abandoned at once instead of after `STOP_GRACE`.
static FORCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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

/// How long shutting down may take after a second signal before the process exits anyway.
const SECOND_SIGNAL_GRACE: Duration = Duration::from_secs(3);

fn interrupt(code: i32, what: &str) {
    match INTERRUPTED.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {
            log::warn!(
                "{what}: stopping the load and writing partial reports (send it again to stop at once)"
            );
            load::stop_running_load(&format!("interrupted by {what}"));
            interrupt_notify().notify_waiters();
            interrupt_notify().notify_one();
        }
        Err(first) => second_interrupt(first, what),
    }
}

/// A second signal while shutting down: stop the load tool at once (k6 gets SIGKILL instead of
/// its graceful end) and, should the rest still take longer than `SECOND_SIGNAL_GRACE`, exit
/// with the first signal's code anyway. Runs at most once.
fn second_interrupt(code: i32, what: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::warn!(
            "second {what} while shutting down: stopping the load tool now; exiting within {} s",
            SECOND_SIGNAL_GRACE.as_secs()
        );
        FORCED.store(true, Ordering::SeqCst);
        load::force_stop();
        interrupt_notify().notify_one();
        let spawned = std::thread::Builder::new()
            .name("oomgate-exit".into())
            .spawn(move || {
                std::thread::sleep(SECOND_SIGNAL_GRACE);
                log::warn!("shutting down took too long after the second signal: exiting now; the reports may be missing");
                load::force_stop();
                std::process::exit(code);
            });
        if spawned.is_err() {
            std::process::exit(code);
        }
    });
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
    pub baseline: Option<crate::model::Baseline>,
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
    /// A pod went away (with the status reason it ended with, e.g. `Evicted`, when known); its
    /// samples stay.
    PodGone { pod: String, reason: Option<String> },
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
    pub baseline: Option<crate::model::Baseline>,
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
    let driver_name = driver.name();
    let mut load_task = tokio::spawn(driver.run(Arc::clone(&live)));
    let mut clock = TickClock::new(sc.memory.interval);
    let mut ticker = tokio::time::interval(sc.memory.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut restarts: Vec<RestartEvent> = Vec::new();
    let mut pods = PodLog::default();
    let mut failures = Failures::default();
    let mut ended_early: Option<String> = None;
    let quiet = log::max_level() < log::LevelFilter::Info;
    let mut progress = Progress::new(Duration::from_secs(10), p.allowed.clone(), quiet);
    let mut events_open = true;
    // Requests done at every tick, for the per-request leak trend (Goose counts live).
    let mut timeline: Vec<RequestMark> = Vec::new();
    // Once the load is asked to stop, it gets `STOP_GRACE` to end; a load tool still waiting
    // on requests a hanging target never answers is then abandoned.
    let mut stop_by: Option<tokio::time::Instant> = None;
    let mut abandoned = false;
    let stop = |ended_early: &mut Option<String>, msg: String| {
        log::warn!("{msg}: stopping the load");
        ended_early.get_or_insert(format!("{msg}; the run stopped early"));
        load::stop_running_load(&msg);
    };
    let outcome = loop {
        if FORCED.load(Ordering::SeqCst) {
            stop_by = Some(tokio::time::Instant::now());
        } else if stop_by.is_none() && load::stop_reason().is_some() {
            stop_by = Some(tokio::time::Instant::now() + STOP_GRACE);
        }
        tokio::select! {
            res = &mut load_task => break res,
            _ = tokio::time::sleep_until(stop_by.unwrap_or_else(tokio::time::Instant::now)), if stop_by.is_some() => {
                if FORCED.load(Ordering::SeqCst) {
                    log::warn!("abandoning the {driver_name} load at once (second signal)");
                } else {
                    log::warn!(
                        "the {driver_name} load did not end within {} s of being stopped (requests to the target still pending): abandoning it",
                        STOP_GRACE.as_secs()
                    );
                }
                load_task.abort();
                abandoned = true;
                break Ok(Err(load::LoadError::Other(format!(
                    "the load did not end within {} s of being stopped",
                    STOP_GRACE.as_secs()
                ))));
            }
            _ = ticker.tick() => {
                clock.catch_up(&mut p.sampler, &mut failures, p.source.name());
                // A reading still pending when the load ends is dropped (its tick counts as
                // missed): a hanging source must not hold up the verdict.
                let polled = tokio::select! {
                    o = poll_once(p.source.as_mut(), &mut p.sampler, &mut failures, false) => Ok(o),
                    res = &mut load_task => Err(res),
                };
                let ooms = match polled {
                    Ok(o) => o,
                    Err(res) => break res,
                };
                if let Some(e) = ooms.first() {
                    stop(&mut ended_early, format!("{} was OOM-killed at {}", e.container, e.at.format("%H:%M:%S")));
                }
                restarts.extend(ooms);
                timeline.push(RequestMark {
                    at: Utc::now(),
                    requests: live.snapshot().0,
                });
                progress.tick(sc, &live, &p.sampler);
            }
            ev = p.events.recv(), if events_open => match ev {
                None => events_open = false,
                Some(WorkloadEvent::PodSeen { pod, containers }) => {
                    log::info!("pod {pod} is part of the workload");
                    pods.seen(&pod, Utc::now());
                    for (c, limit, request) in containers {
                        p.sampler.declare(&pod, &c, limit, request);
                    }
                }
                Some(WorkloadEvent::PodGone { pod, reason }) => {
                    p.sampler.pod_gone(&pod);
                    pods.gone(&pod, reason, Utc::now());
                }
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
                        let late = poll_once(p.source.as_mut(), &mut p.sampler, &mut failures, false).await;
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
                ended_early.get_or_insert_with(|| {
                    format!(
                        "{}; the run stopped early",
                        load::stop_reason().unwrap_or_else(|| "interrupted".into())
                    )
                });
            }
        }
    };
    progress.finish();
    let load_ended = Utc::now();
    // One last reading so a peak in the final moments counts.
    clock.catch_up(&mut p.sampler, &mut failures, p.source.name());
    restarts.extend(poll_once(p.source.as_mut(), &mut p.sampler, &mut failures, true).await);
    // Events that arrived while the load was stopping.
    while let Ok(ev) = p.events.try_recv() {
        match ev {
            WorkloadEvent::Restart(e) => restarts.push(e),
            WorkloadEvent::PodGone { pod, reason } => {
                p.sampler.pod_gone(&pod);
                pods.gone(&pod, reason, Utc::now());
            }
            WorkloadEvent::PodSeen { pod, containers } => {
                pods.seen(&pod, Utc::now());
                for (c, limit, request) in containers {
                    p.sampler.declare(&pod, &c, limit, request);
                }
            }
            _ => {}
        }
    }
    let ended_at = Utc::now();
    let joined = outcome.context("the load task panicked")?;
    let mut outcome: LoadOutcome = match joined {
        Ok(o) => o,
        // Interrupted or abandoned: whatever the load tool left behind, the partial reports
        // are written, with the live counters as the load numbers.
        Err(e) if abandoned || interrupted().is_some() => {
            log::warn!(
                "the stopped load left no results of its own ({e}); reporting its live counters"
            );
            live_outcome(sc, driver_name, &live, started_at, ended_at)
        }
        // The load tool ended early on its own without results (k6 killed before its first
        // flush): a partial report, judged as a run that ended early.
        Err(load::LoadError::EndedEarly(why)) => {
            log::warn!("{why}; reporting its live counters");
            let mut o = live_outcome(sc, driver_name, &live, started_at, ended_at);
            o.stopped_early = Some(why);
            o
        }
        Err(e) => return Err(anyhow::Error::new(e).context("running the load")),
    };
    outcome.stats.tool_thresholds_failed = outcome.tool_thresholds_failed;
    if timeline.last().is_some_and(|m| m.requests > 0) {
        outcome.stats.timeline = timeline;
    }
    if ended_early.is_none() {
        ended_early = outcome.stopped_early.clone();
    }
    if ended_early.is_none() {
        // A signal after the load's last request: the run is still not one to pass.
        if let Some(reason) = load::stop_reason().filter(|_| interrupted().is_some()) {
            ended_early = Some(format!("{reason} while the run was finishing"));
        }
    }
    ended_early = ended_early
        .map(|reason| ran_share(sc, driver_name, &outcome, started_at, load_ended, reason));
    let mut memory_notes = p.notes.clone();
    for note in p.source.notes() {
        log::warn!("{note}");
        memory_notes.push(note);
    }
    if let Some(note) = failures.note(p.source.name(), &p.sampler) {
        log::warn!("{note}");
        memory_notes.push(note);
    }
    dedup_restarts(&mut restarts);
    let memory = MemoryMeta {
        source: p.source.name().to_string(),
        interval: sc.memory.interval,
        ticks: p.sampler.ticks,
        ticks_with_data: p.sampler.ticks_with_data,
        limit_enforced: p.limit_enforced,
        notes: memory_notes,
    };
    let mut containers = p.sampler.into_series();
    pods.mark(&mut containers);
    let run = Run {
        scenario: sc.name.clone(),
        started_at,
        ended_at,
        stages: outcome.stages,
        containers,
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

/// An early end's reason with how much of the plan ran appended: "k6 exited with code 108 (…);
/// k6 stopped after 3.1 s of a 12 s plan". The load began with its first stage (else when the
/// gate started it) and ended when the driver returned.
fn ran_share(
    sc: &Scenario,
    driver: &str,
    outcome: &LoadOutcome,
    started_at: crate::model::Timestamp,
    load_ended: crate::model::Timestamp,
    reason: String,
) -> String {
    let began = outcome.stages.first().map_or(started_at, |w| w.start);
    let planned = sc.load.total_duration();
    let share = load::plan::how_much_ran(driver, planned, began, load_ended.max(began));
    format!("{}; {share}", reason.trim_end())
}

/// How long a stopped load may take to end before it is abandoned.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The load numbers of a load that ended without results of its own (abandoned, or k6 killed
/// by a second signal): the live counters, and the planned stages laid out from the start and
/// cut at the end; the stages that never began keep their planned times (after the end, so
/// they count as never started).
fn live_outcome(
    sc: &Scenario,
    driver: &str,
    live: &LiveCounters,
    started_at: crate::model::Timestamp,
    ended_at: crate::model::Timestamp,
) -> LoadOutcome {
    let (requests, failures) = live.snapshot();
    let secs = (ended_at - started_at).num_milliseconds().max(0) as f64 / 1000.0;
    let mut starts = Vec::new();
    let mut at = started_at;
    for stage in &sc.load.stages {
        if at >= ended_at {
            break;
        }
        starts.push(at);
        at += chrono::Duration::from_std(stage.duration).unwrap_or_default();
    }
    LoadOutcome {
        stats: crate::model::LoadStats {
            driver: driver.to_string(),
            latency_measure: crate::model::LATENCY_UNKNOWN.into(),
            requests,
            failures,
            rps: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            ..Default::default()
        },
        stages: load::plan::with_unstarted(
            &sc.load.stages,
            load::plan::stage_windows(&sc.load.stages, &starts, ended_at),
            at,
        ),
        stopped_early: load::stop_reason(),
        tool_thresholds_failed: false,
    }
}

/// Counts sampling ticks by the clock, so ticks lost while a slow source kept a poll waiting
/// (a Prometheus that stopped answering can take its whole request timeout) count as ticks
/// without data instead of vanishing from the coverage denominator.
struct TickClock {
    origin: std::time::Instant,
    interval: Duration,
}

impl TickClock {
    fn new(interval: Duration) -> Self {
        TickClock {
            origin: std::time::Instant::now(),
            interval: interval.max(Duration::from_millis(1)),
        }
    }

    /// Before a poll: record every tick that fell due since the last one without being polled.
    fn catch_up(&mut self, sampler: &mut Sampler, failures: &mut Failures, source: &str) {
        let due = missed_ticks(self.origin.elapsed(), self.interval, sampler.ticks);
        for _ in 0..due {
            sampler.record_error(&format!(
                "the {source} source was still answering an earlier reading when this sampling tick fell due"
            ));
        }
        if due > 0 {
            let now = Utc::now();
            failures.first.get_or_insert(now);
            failures.last = Some(now);
        }
    }
}

/// Ticks due by `elapsed` (one at 0, then one every `interval`), minus the one about to be
/// polled and the `recorded` ones.
fn missed_ticks(elapsed: Duration, interval: Duration, recorded: u64) -> u64 {
    let due = (elapsed.as_nanos() / interval.as_nanos().max(1)) as u64 + 1;
    due.saturating_sub(1).saturating_sub(recorded)
}

/// When memory readings failed, for the report.
#[derive(Debug, Default)]
struct Failures {
    first: Option<crate::model::Timestamp>,
    last: Option<crate::model::Timestamp>,
}

impl Failures {
    /// "memory readings failed on 14 of 21 sampling ticks (66.7%) from 12:00:06 to 12:00:20
    /// (prometheus source); the last error: …", when any failed.
    fn note(&self, source: &str, sampler: &Sampler) -> Option<String> {
        if sampler.failed_ticks == 0 {
            return None;
        }
        let span = match (self.first, self.last) {
            (Some(a), Some(b)) if a != b => {
                format!(" from {} to {}", a.format("%H:%M:%S"), b.format("%H:%M:%S"))
            }
            (Some(a), _) => format!(" at {}", a.format("%H:%M:%S")),
            _ => String::new(),
        };
        Some(format!(
            "{} on {} of {} sampling ticks ({}){span} ({source} source); the last error: {}",
            crate::model::READ_FAILURE_NOTE,
            sampler.failed_ticks,
            sampler.ticks,
            crate::units::format_share(sampler.failed_ticks as f64 / sampler.ticks.max(1) as f64),
            sampler.last_error.as_deref().unwrap_or("unknown")
        ))
    }
}

/// Pods that appeared or went away during the run, to mark the gone pods' series with when,
/// why and which pod replaced them.
#[derive(Debug, Default)]
struct PodLog {
    /// Pods first seen after the run started, with when.
    new: Vec<(String, crate::model::Timestamp)>,
    /// Pods gone, with their reason and when.
    gone: Vec<(String, Option<String>, crate::model::Timestamp)>,
}

impl PodLog {
    fn seen(&mut self, pod: &str, at: crate::model::Timestamp) {
        if !self.new.iter().any(|(p, _)| p == pod) {
            self.new.push((pod.to_string(), at));
        }
    }

    fn gone(&mut self, pod: &str, reason: Option<String>, at: crate::model::Timestamp) {
        if let Some(known) = self.gone.iter_mut().find(|g| g.0 == pod) {
            // The same pod reported by two paths: keep the first time, any reason.
            if known.1.is_none() {
                known.1 = reason;
            }
            return;
        }
        log::warn!(
            "pod {pod} went away during the run{}; its samples are kept",
            reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        self.gone.push((pod.to_string(), reason, at));
    }

    /// Marks the series of every gone pod; its replacement is the pod that appeared closest in
    /// time to its going (and replaces no other pod).
    fn mark(&self, series: &mut [crate::model::ContainerSeries]) {
        let mut taken: Vec<&str> = Vec::new();
        for (pod, reason, at) in &self.gone {
            let replacement = self
                .new
                .iter()
                .filter(|(p, _)| p != pod && !taken.contains(&p.as_str()))
                .filter(|(p, _)| !self.gone.iter().any(|g| &g.0 == p && g.2 <= *at))
                .min_by_key(|(_, seen)| (*seen - *at).num_milliseconds().abs())
                .map(|(p, _)| p.as_str());
            taken.extend(replacement);
            let mark = crate::model::PodGone {
                at: *at,
                reason: reason.clone(),
                replaced_by: replacement.map(String::from),
            };
            for s in series.iter_mut().filter(|s| &s.pod == pod) {
                s.gone = Some(mark.clone());
            }
        }
    }
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

/// How long a reading may take once the run was interrupted.
const LAST_LOOK: Duration = Duration::from_secs(1);
/// How long the last reading after the load may take.
const FINAL_LOOK: Duration = Duration::from_secs(2);

/// One reading that never holds up a signal or the verdict: cut short when the run is
/// interrupted, bounded by `LAST_LOOK` once it has been and by `FINAL_LOOK` when it is the
/// `last` one after the load (a source that hangs, like a stopped Prometheus, would otherwise
/// keep the gate waiting for its whole request timeout).
async fn reading(
    source: &mut dyn MemorySource,
    last: bool,
) -> Result<Vec<crate::memory::Observation>, crate::memory::SourceError> {
    use crate::memory::SourceError;
    let bound = if interrupted().is_some() {
        Some((LAST_LOOK, "while the gate was shutting down"))
    } else if last {
        Some((FINAL_LOOK, "for the last reading after the load"))
    } else {
        None
    };
    if let Some((limit, when)) = bound {
        return tokio::time::timeout(limit, source.poll())
            .await
            .unwrap_or_else(|_| {
                Err(SourceError::Other(format!(
                    "the {} source did not answer within {} s {when}",
                    source.name(),
                    limit.as_secs()
                )))
            });
    }
    let name = source.name();
    tokio::select! {
        r = source.poll() => r,
        _ = async {
            while interrupted().is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } => Err(SourceError::Other(format!("the {name} reading was cut short by the interrupt"))),
    }
}

/// Poll the source once, feeding the sampler; returns OOM kills seen in this tick.
async fn poll_once(
    source: &mut dyn MemorySource,
    sampler: &mut Sampler,
    failures: &mut Failures,
    last: bool,
) -> Vec<RestartEvent> {
    match reading(source, last).await {
        Ok(obs) => sampler.record(obs),
        Err(e) => {
            let now = Utc::now();
            if failures.first.is_none() {
                log::warn!(
                    "memory reading failed at {}: {e}; every failed tick counts against coverage",
                    now.format("%H:%M:%S")
                );
            } else {
                log::debug!("memory reading failed: {e}");
            }
            failures.first.get_or_insert(now);
            failures.last = Some(now);
            sampler.record_error(&e.to_string());
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerSeries;
    use chrono::TimeZone;

    fn t(s: u32) -> crate::model::Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, s).unwrap()
    }

    #[test]
    fn ticks_a_slow_source_kept_waiting_count_as_missed() {
        let second = Duration::from_secs(1);
        // On time: the tick at 0 s and 1 s were polled; the one at 2.01 s is about to be.
        assert_eq!(missed_ticks(Duration::from_millis(2010), second, 2), 0);
        // The first tick.
        assert_eq!(missed_ticks(Duration::ZERO, second, 0), 0);
        // A poll at 2 s hung for 10 s: ticks at 3..=11 s were never polled.
        assert_eq!(missed_ticks(Duration::from_millis(12_005), second, 3), 9);
        // More ticks recorded than the clock says (an extra poll): nothing missed.
        assert_eq!(missed_ticks(Duration::from_millis(500), second, 4), 0);
    }

    #[test]
    fn a_failing_source_is_summed_up_with_its_last_error() {
        let mut sampler = Sampler::new();
        sampler.record(Vec::new());
        sampler.record_error("cannot reach Prometheus at http://p:9090: connection refused");
        sampler.record_error("cannot reach Prometheus at http://p:9090: connection refused");
        let failures = Failures {
            first: Some(t(6)),
            last: Some(t(7)),
        };
        assert_eq!(
            failures.note("prometheus", &sampler).unwrap(),
            "memory readings failed on 2 of 3 sampling ticks (66.7%) from 12:00:06 to 12:00:07 \
             (prometheus source); the last error: cannot reach Prometheus at http://p:9090: \
             connection refused"
        );
        assert!(Failures::default()
            .note("cgroup", &Sampler::new())
            .is_none());
    }

    #[test]
    fn gone_pods_are_marked_with_the_closest_new_pod_as_replacement() {
        let mut log = PodLog::default();
        log.seen("web-c", t(9));
        log.gone("web-a", None, t(10));
        log.gone("web-a", Some("Evicted".into()), t(11)); // again, by the other path
        log.seen("web-d", t(30));
        log.gone("web-b", None, t(29));
        let mut series = vec![
            ContainerSeries::new("web-a", "app"),
            ContainerSeries::new("web-a", "sidecar"),
            ContainerSeries::new("web-b", "app"),
            ContainerSeries::new("web-c", "app"),
        ];
        log.mark(&mut series);
        let a = series[0].gone.clone().unwrap();
        assert_eq!(
            (a.at, a.reason.as_deref(), a.replaced_by.as_deref()),
            (t(10), Some("Evicted"), Some("web-c"))
        );
        assert_eq!(series[1].gone, series[0].gone);
        let b = series[2].gone.clone().unwrap();
        assert_eq!(b.replaced_by.as_deref(), Some("web-d"));
        assert!(series[3].gone.is_none());
    }

    #[test]
    fn a_gone_pod_without_a_new_one_has_no_replacement() {
        let mut log = PodLog::default();
        log.gone("web-a", None, t(10));
        let mut series = vec![ContainerSeries::new("web-a", "app")];
        log.mark(&mut series);
        assert_eq!(series[0].gone.as_ref().unwrap().replaced_by, None);
    }
}

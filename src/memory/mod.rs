//! Memory sources and the sampler. A `MemorySource` answers one question per tick — what is the
//! working set of each container right now — from the kernel's cgroup files, /proc, the
//! metrics API or Prometheus. The sampler (`sampler.rs`) polls a source on a fixed interval,
//! deduplicates observations by their own timestamps, keeps coverage counts, turns rising
//! OOM-kill counters into restart events and checks the samples' clock (`clock.rs`).

use std::future::Future;
use std::pin::Pin;

use crate::model::Timestamp;

pub mod cgroup;
pub mod clock;
pub mod metrics_api;
pub mod procfs;
pub mod prometheus;
pub mod pss;
pub mod resident;

/// A boxed future, so sources can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One reading of one container, as a source reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub pod: String,
    pub container: String,
    /// The sample's own timestamp (the source's clock; the gate's clock for local sources).
    pub at: Timestamp,
    /// usage − inactive file cache.
    pub working_set: u64,
    /// Total usage including page cache, when the source knows it.
    pub usage: Option<u64>,
    /// The kernel's peak usage counter since the container started, when the source has one.
    pub kernel_peak_usage: Option<u64>,
    /// The cumulative OOM-kill counter, when the source has one.
    pub oom_kills: Option<u64>,
    /// Set when the source reported a value that is not a working set (`NaN`, `+Inf`, a
    /// negative number), as the source spelled it; `working_set` is then 0 and meaningless and
    /// the observation is no sample, only a reason its tick is uncovered.
    pub bad_value: Option<String>,
    /// The resident set size of the container's largest process (`resident::ResidentFloor`,
    /// local workloads only), bytes.
    pub resident: Option<u64>,
}

/// Why a tick brought no data.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected content: {detail}")]
    Parse { path: String, detail: String },
    /// The source refused the gate's credentials (401/403): a configuration error, not a
    /// passing outage, so a run stops before the load instead of ending inconclusive.
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Other(String),
}

/// Something that can tell the current memory of the measured containers.
pub trait MemorySource: Send {
    /// `cgroup`, `procfs`, `metrics-api`, `prometheus`.
    fn name(&self) -> &'static str;
    /// Read every measured container once. An empty vector means "no data this tick".
    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<Observation>, SourceError>>;
    /// Caveats the source found while polling, for the report's memory notes (e.g. the /proc
    /// fallback counting some processes by RSS instead of PSS).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}
pub mod sampler;
pub mod tally;

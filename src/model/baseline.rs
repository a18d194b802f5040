//! An earlier run as this one is compared with it (`--baseline`): what its `report.json` said
//! per container and of the load. `analysis::baseline` reads the file and computes the deltas;
//! the run carries the result so the judge and the reports see the same baseline.

use std::path::PathBuf;

use super::Timestamp;

/// One container of the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineContainer {
    pub container: String,
    pub peak_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// The limit that run suggested (`containers[].suggestion.limit_bytes`), when it wrote one.
    pub suggested_limit_bytes: Option<u64>,
}

/// What a baseline report says.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The file it was read from.
    pub path: PathBuf,
    pub scenario: String,
    pub started_at: Option<Timestamp>,
    pub verdict: Option<String>,
    pub containers: Vec<BaselineContainer>,
    /// `goose` or `k6`: their latencies measure different things.
    pub driver: Option<String>,
    pub p95_ms: Option<f64>,
}

impl Baseline {
    /// The baseline's peak for `container`.
    pub fn peak(&self, container: &str) -> Option<u64> {
        self.containers
            .iter()
            .find(|c| c.container == container)
            .and_then(|c| c.peak_bytes)
    }

    /// "the baseline (checkout-api, 2025-03-13 12:00 UTC)".
    pub fn describe(&self) -> String {
        match self.started_at {
            Some(at) => format!(
                "the baseline ({}, {})",
                self.scenario,
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => format!("the baseline ({})", self.scenario),
        }
    }
}

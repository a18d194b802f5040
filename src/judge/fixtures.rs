//! Test-only builders of plain `Run` data for the judge's and the reporters' tests: a realistic
//! healthy run (four stages, two pods, two containers, a sample every 5 s) that each test bends
//! into the case it checks.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::model::{
    ContainerSeries, LoadStats, MemoryMeta, RequestStats, RestartEvent, RestartReason, Run, Sample,
    Stage, StageWindow, Timestamp,
};

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

/// 2025-03-14 at `h:m:s` UTC.
pub fn t(h: u32, m: u32, s: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 14, h, m, s).unwrap()
}

pub fn window(index: usize, from: u32, to: u32, start: Timestamp, end: Timestamp) -> StageWindow {
    StageWindow {
        stage: Stage {
            index,
            from_users: from,
            to_users: to,
            duration: (end - start).to_std().unwrap_or_default(),
        },
        start,
        end,
    }
}

/// Ramp 0→100 (1 min), hold 100 (2 min), ramp 100→200 (1 min), hold 200 (2 min) from 12:00:00.
pub fn four_stages() -> Vec<StageWindow> {
    vec![
        window(0, 0, 100, t(12, 0, 0), t(12, 1, 0)),
        window(1, 100, 100, t(12, 1, 0), t(12, 3, 0)),
        window(2, 100, 200, t(12, 3, 0), t(12, 4, 0)),
        window(3, 200, 200, t(12, 4, 0), t(12, 6, 0)),
    ]
}

/// A sample every 5 s from 12:00:00 to 12:06:00 inclusive (73 samples), all at `bytes`.
pub fn flat_samples(bytes: u64) -> Vec<Sample> {
    (0..73)
        .map(|i| Sample {
            at: t(12, 0, 0) + chrono::Duration::seconds(5 * i),
            working_set: bytes,
        })
        .collect()
}

/// Sets the sample at `at` (which must be on the 5 s grid) to `bytes`.
pub fn spike(series: &mut ContainerSeries, at: Timestamp, bytes: u64) {
    let s = series
        .samples
        .iter_mut()
        .find(|s| s.at == at)
        .expect("spike on the sampling grid");
    s.working_set = bytes;
}

pub fn series(pod: &str, container: &str, limit: Option<u64>, bytes: u64) -> ContainerSeries {
    let mut s = ContainerSeries::new(pod, container);
    s.limit = limit;
    s.request = limit.map(|l| l / 2);
    s.samples = flat_samples(bytes);
    s
}

pub fn restart(pod: &str, container: &str, at: Timestamp, reason: RestartReason) -> RestartEvent {
    let exit_code = Some(match reason {
        RestartReason::OomKilled => 137,
        RestartReason::Other(_) => 1,
    });
    RestartEvent {
        pod: pod.into(),
        container: container.into(),
        at,
        reason,
        exit_code,
    }
}

pub fn healthy_load() -> LoadStats {
    LoadStats {
        driver: "goose".into(),
        latency_measure: "time to first byte".into(),
        requests: 12_000,
        failures: 3,
        rps: 33.3,
        p50_ms: 18.0,
        p95_ms: 120.0,
        p99_ms: 340.0,
        max_ms: 1250.0,
        per_request: vec![
            RequestStats {
                name: "list users".into(),
                requests: 9_000,
                failures: 1,
                p50_ms: 15.0,
                p95_ms: 100.0,
                p99_ms: 300.0,
                max_ms: 900.0,
            },
            RequestStats {
                name: "POST /api/orders".into(),
                requests: 3_000,
                failures: 2,
                p50_ms: 30.0,
                p95_ms: 180.0,
                p99_ms: 400.0,
                max_ms: 1250.0,
            },
        ],
        status_codes: BTreeMap::from([(200, 11_997), (503, 3)]),
        tool_thresholds_failed: false,
        tool_exit_code: None,
        per_stage: Vec::new(),
        timeline: Vec::new(),
    }
}

/// Two pods of `web`, each with `app` (1 GiB limit) and `sidecar` (128 MiB limit); `app` in
/// pod `web-7d9f-x2k4p` peaks at 610 MiB at 12:04:30; everything else is flat.
pub fn healthy_run() -> Run {
    let mut peaked = series("web-7d9f-x2k4p", "app", Some(GIB), 500 * MIB);
    spike(&mut peaked, t(12, 4, 30), 610 * MIB);
    Run {
        scenario: "checkout-api".into(),
        started_at: t(12, 0, 0),
        ended_at: t(12, 6, 0),
        stages: four_stages(),
        containers: vec![
            series("web-7d9f-a1b2c", "app", Some(GIB), 480 * MIB),
            series("web-7d9f-a1b2c", "sidecar", Some(128 * MIB), 40 * MIB),
            peaked,
            series("web-7d9f-x2k4p", "sidecar", Some(128 * MIB), 38 * MIB),
        ],
        restarts: Vec::new(),
        load: healthy_load(),
        memory: MemoryMeta {
            source: "metrics-api".into(),
            interval: Duration::from_secs(5),
            ticks: 73,
            ticks_with_data: 73,
            limit_enforced: true,
            notes: Vec::new(),
        },
        ended_early: None,
        workload: "deployment/web in staging".into(),
        vpa: None,
        notes: Vec::new(),
        baseline: None,
        env: Vec::new(),
    }
}

/// A local workload: one pod "local" with one container "app" under a 256 MiB limit.
pub fn local_run() -> Run {
    let mut run = healthy_run();
    run.containers = vec![series("local", "app", Some(256 * MIB), 100 * MIB)];
    run.memory.source = "cgroup".into();
    run
}

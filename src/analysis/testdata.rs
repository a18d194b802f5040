//! Test-only synthetic runs for the analysis tests: the judge's four-stage plan (ramp 0→100,
//! hold 100 for 2 min, ramp 100→200, hold 200 for 2 min, from 12:00:00) with working-set series
//! drawn from a function of time, sampled every second, plus reproducible noise.

use crate::judge::fixtures::{four_stages, healthy_run, t, window};
use crate::model::{ContainerSeries, Run, Sample, StageWindow};

pub use crate::judge::fixtures::{GIB, MIB};

/// Uniform noise in [−1, 1], the same for the same `i` on every run.
pub fn noise(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// A series sampled every `step` seconds over `seconds`, from 12:00:00; `mib(t)` gives the
/// working set in MiB at `t` seconds.
pub fn sampled(
    pod: &str,
    container: &str,
    limit: Option<u64>,
    seconds: i64,
    step: i64,
    mib: impl Fn(f64) -> f64,
) -> ContainerSeries {
    let mut s = ContainerSeries::new(pod, container);
    s.limit = limit;
    s.samples = (0..=seconds / step)
        .map(|i| {
            let secs = i * step;
            Sample {
                at: t(12, 0, 0) + chrono::Duration::seconds(secs),
                working_set: (mib(secs as f64).max(0.0) * MIB as f64) as u64,
            }
        })
        .collect();
    s
}

/// The four-stage plan with these series (every second for 6 minutes).
pub fn run_of(containers: Vec<ContainerSeries>) -> Run {
    run_with(four_stages(), containers)
}

pub fn run_with(stages: Vec<StageWindow>, containers: Vec<ContainerSeries>) -> Run {
    let mut run = healthy_run();
    if let (Some(first), Some(last)) = (stages.first(), stages.last()) {
        run.started_at = first.start;
        run.ended_at = last.end;
    }
    run.stages = stages;
    run.containers = containers;
    run
}

/// Holds of 2 minutes at each of `levels` users, each after a 30 s ramp, from 12:00:00; returns
/// the stages and the run's length in seconds.
pub fn holds_at(levels: &[u32]) -> (Vec<StageWindow>, i64) {
    let mut stages = Vec::new();
    let mut at = t(12, 0, 0);
    let mut users = 0;
    for &level in levels {
        let ramp_end = at + chrono::Duration::seconds(30);
        stages.push(window(stages.len(), users, level, at, ramp_end));
        let hold_end = ramp_end + chrono::Duration::seconds(120);
        stages.push(window(stages.len(), level, level, ramp_end, hold_end));
        at = hold_end;
        users = level;
    }
    (stages, (at - t(12, 0, 0)).num_seconds())
}

/// Users planned at `secs` seconds into `stages` (linear through ramps).
pub fn users_at(stages: &[StageWindow], secs: f64) -> f64 {
    let at = t(12, 0, 0) + chrono::Duration::milliseconds((secs * 1000.0) as i64);
    for w in stages {
        if w.contains(at) {
            let total = (w.end - w.start).num_milliseconds() as f64;
            let done = (at - w.start).num_milliseconds() as f64 / total;
            let (a, b) = (f64::from(w.stage.from_users), f64::from(w.stage.to_users));
            return a + (b - a) * done;
        }
    }
    stages.last().map_or(0.0, |w| f64::from(w.stage.to_users))
}

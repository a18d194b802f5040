//! The sampler's bookkeeping: it takes what a `MemorySource` returned on each tick and keeps one
//! `ContainerSeries` per pod and container. The same sample seen twice (same container, same
//! timestamp) counts once. A tick counts as covered when it brought at least one fresh sample,
//! or when the source answered with a sample that is still current: a source publishes at its
//! own resolution (metrics-server every 15–60 s) and a gate sampling faster sees the same sample
//! again in between, which loses nothing. "Current" means the last fresh sample arrived no longer
//! ago than the source's resolution (the median gap between its distinct sample times, 15 s
//! until two are known) plus one tick; a source that keeps repeating an older sample, or fails,
//! leaves its ticks uncovered;
//! a rising OOM-kill counter becomes an `oom-killed` restart event; the kernel's peak counter is
//! tracked with the time it was first seen at its highest value. Every tick counts, failed or
//! not. Fresh samples read live (ticks at least [`PACED`] apart, not a batch replayed from
//! history) are kept with their arrival time, and when the series is handed over their
//! timestamps are checked against the gate's clock (`clock.rs`): a consistent skew is re-based
//! onto the gate's clock and recorded on the series for the judge to report, while a single
//! out-of-line stamp is placed at its arrival time instead of re-basing the whole series.
//!
//! Besides the workload-wide tick counts, every (pod, container) keeps its own account
//! (`tally.rs`) from the first tick after it was declared until its pod went away: a tick covers
//! a series only when it brought that series a fresh sample (or repeated one within the source's
//! resolution); left out, stuck, a bad value (NaN) or a failed reading are counted as gaps with
//! their cause. "Fresh" means a timestamp not seen before for the series, so a stamp that ran
//! ahead once does not hide every later sample.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::clock::{self, Reading};
use super::tally::{Tally, TickState};
use super::Observation;
use crate::model::{ClockSkew, ContainerSeries, GapCause, RestartEvent, RestartReason, Timestamp};

/// Ticks at least this far apart are live readings; closer ones are a replayed batch (`oomgate
/// judge` feeds a finished run's Prometheus history in one go), whose ages say nothing about
/// clocks.
pub const PACED: Duration = Duration::from_millis(50);

/// The source resolution assumed until two distinct sample times are known (metrics-server's
/// default `--metric-resolution`).
const DEFAULT_RESOLUTION: chrono::Duration = chrono::Duration::seconds(15);
/// How many of the latest gaps between distinct sample times estimate the resolution.
const GAPS_KEPT: usize = 64;

/// Accumulates ticks into per-container series.
#[derive(Debug, Default)]
pub struct Sampler {
    series: BTreeMap<(String, String), ContainerSeries>,
    last_at: HashMap<(String, String), Timestamp>,
    /// Every sample time seen per series: a sample is fresh when its time is new.
    stamps: HashMap<(String, String), HashSet<Timestamp>>,
    /// Per-series coverage, tick by tick.
    tallies: BTreeMap<(String, String), Tally>,
    oom_counter: HashMap<(String, String), u64>,
    /// Fresh live samples' times and arrival times, per series, for the clock check.
    readings: HashMap<(String, String), Vec<Reading>>,
    /// When the previous tick was recorded.
    last_tick: Option<Instant>,
    /// When the previous tick was received and when the last fresh sample was (gate clock).
    last_received: Option<Timestamp>,
    last_fresh_received: Option<Timestamp>,
    /// The latest gaps between distinct sample times of one series, for the resolution.
    gaps: std::collections::VecDeque<chrono::Duration>,
    pub ticks: u64,
    pub ticks_with_data: u64,
    pub failed_ticks: u64,
    pub last_error: Option<String>,
}

impl Sampler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a container before any data arrives (so a container that never reports still
    /// shows up, with its limit).
    pub fn declare(
        &mut self,
        pod: &str,
        container: &str,
        limit: Option<u64>,
        request: Option<u64>,
    ) {
        let key = (pod.to_string(), container.to_string());
        // A pod recreated under the same name (a StatefulSet replica) counts again.
        self.tallies.entry(key.clone()).or_default().gone = false;
        let s = self
            .series
            .entry(key)
            .or_insert_with(|| ContainerSeries::new(pod, container));
        s.limit = limit;
        s.request = request;
    }

    /// A pod went away: its series count no more ticks.
    pub fn pod_gone(&mut self, pod: &str) {
        for ((p, _), t) in &mut self.tallies {
            if p == pod {
                t.gone = true;
            }
        }
    }

    /// The source's resolution: the median gap between its distinct sample times, 15 s until
    /// two are known.
    fn resolution(&self) -> chrono::Duration {
        if self.gaps.is_empty() {
            return DEFAULT_RESOLUTION;
        }
        let mut g: Vec<chrono::Duration> = self.gaps.iter().copied().collect();
        g.sort_unstable();
        g[g.len() / 2]
    }

    /// Count one tick for every series whose pod still runs: `states` holds what this tick
    /// brought each series; one it does not name was left out (`absent`).
    fn tick_all(
        &mut self,
        at: Timestamp,
        mut states: HashMap<(String, String), TickState>,
        absent: &GapCause,
    ) {
        let resolution = self.resolution();
        for (key, tally) in &mut self.tallies {
            let state = states
                .remove(key)
                .unwrap_or_else(|| TickState::Missing(absent.clone()));
            tally.tick(at, state, resolution);
        }
    }

    /// Record a tick that failed to bring data.
    pub fn record_error(&mut self, err: &str) {
        self.last_tick = Some(Instant::now());
        self.last_received = Some(Utc::now());
        self.ticks += 1;
        self.failed_ticks += 1;
        self.last_error = Some(err.to_string());
        self.tick_all(Utc::now(), HashMap::new(), &GapCause::ReadFailed);
    }

    /// Record one tick's observations, received now; returns OOM kills detected in this tick.
    pub fn record(&mut self, obs: Vec<Observation>) -> Vec<RestartEvent> {
        let now = Instant::now();
        let live = self
            .last_tick
            .is_some_and(|t| now.duration_since(t) >= PACED);
        self.last_tick = Some(now);
        self.record_received(obs, Utc::now(), live)
    }

    /// [`Self::record`] with the arrival time given and whether the tick was a live reading
    /// (only those feed the clock check).
    pub fn record_received(
        &mut self,
        obs: Vec<Observation>,
        received: Timestamp,
        live: bool,
    ) -> Vec<RestartEvent> {
        self.ticks += 1;
        let cadence = self
            .last_received
            .map_or(chrono::Duration::zero(), |t| received - t);
        self.last_received = Some(received);
        let answered = !obs.is_empty();
        let mut fresh = false;
        let mut events = Vec::new();
        let mut states: HashMap<(String, String), TickState> = HashMap::new();
        for o in obs {
            let key = (o.pod.clone(), o.container.clone());
            self.tallies.entry(key.clone()).or_default();
            self.series
                .entry(key.clone())
                .or_insert_with(|| ContainerSeries::new(&o.pod, &o.container));
            if let Some(kills) = o.oom_kills {
                let before = self.oom_counter.insert(key.clone(), kills);
                let rose = kills.saturating_sub(before.unwrap_or(0));
                for _ in 0..rose {
                    events.push(RestartEvent {
                        pod: o.pod.clone(),
                        container: o.container.clone(),
                        at: o.at,
                        reason: RestartReason::OomKilled,
                        exit_code: Some(137),
                    });
                }
            }
            if let Some(value) = &o.bad_value {
                states.entry(key).or_insert_with(|| {
                    TickState::Missing(GapCause::BadValue {
                        value: value.clone(),
                    })
                });
                continue;
            }
            if !self.stamps.entry(key.clone()).or_default().insert(o.at) {
                // The same sample again.
                if !matches!(states.get(&key), Some(TickState::Fresh)) {
                    states.insert(key, TickState::Repeat { stamp: o.at });
                }
                continue;
            }
            states.insert(key.clone(), TickState::Fresh);
            match self.last_at.get(&key).copied() {
                Some(prev) if o.at > prev => {
                    if self.gaps.len() == GAPS_KEPT {
                        self.gaps.pop_front();
                    }
                    self.gaps.push_back(o.at - prev);
                    self.last_at.insert(key.clone(), o.at);
                }
                Some(_) => {}
                None => {
                    self.last_at.insert(key.clone(), o.at);
                }
            }
            fresh = true;
            if live {
                self.readings
                    .entry(key.clone())
                    .or_default()
                    .push(Reading { at: o.at, received });
            }
            let s = self
                .series
                .entry(key)
                .or_insert_with(|| ContainerSeries::new(&o.pod, &o.container));
            s.samples.push(crate::model::Sample {
                at: o.at,
                working_set: o.working_set,
            });
            if let Some(usage) = o.usage {
                let inactive = usage.saturating_sub(o.working_set);
                s.max_inactive_file =
                    Some(s.max_inactive_file.map_or(inactive, |m| m.max(inactive)));
            }
            if let Some(resident) = o.resident {
                if s.max_resident.is_none_or(|(m, _)| resident > m) {
                    s.max_resident = Some((resident, o.at));
                }
            }
            if let Some(peak) = o.kernel_peak_usage {
                // The peak rose after the previous reading only when that reading had the
                // counter too (a first reading's peak may be from before the gate started).
                let had_counter = s.kernel_peak_usage.is_some();
                if s.kernel_peak_usage.is_none_or(|(p, _)| peak > p) {
                    s.kernel_peak_usage = Some((peak, o.at));
                    let n = s.samples.len();
                    s.kernel_peak_after = (had_counter && n >= 2).then(|| s.samples[n - 2].at);
                }
            }
        }
        if fresh {
            self.ticks_with_data += 1;
            self.last_fresh_received = Some(received);
        } else if answered && self.still_current(received, cadence) {
            self.ticks_with_data += 1;
        }
        self.tick_all(received, states, &GapCause::Absent);
        events
    }

    /// Whether the last fresh sample, received at `last_fresh_received`, is still the source's
    /// current one at `now`: no older than its resolution plus one tick (and a little jitter).
    fn still_current(&self, now: Timestamp, cadence: chrono::Duration) -> bool {
        let Some(last) = self.last_fresh_received else {
            return false;
        };
        let resolution = self.resolution();
        now - last <= resolution + cadence + chrono::Duration::milliseconds(500)
    }

    /// The latest working set per container name (max over pods), for progress lines.
    pub fn current(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for s in self.series.values() {
            if let Some(last) = s.samples.last() {
                let e = out.entry(s.container.clone()).or_insert(0);
                *e = (*e).max(last.working_set);
            }
        }
        out
    }

    /// The series, each checked against the gate's clock: a consistent skew is re-based (every
    /// sample time moved by the offset) and recorded in `clock_skew`, as is an erratic one; a
    /// sample whose stamp was out of line with the rest is placed at its arrival time. Each
    /// series carries its tick-by-tick coverage, samples in time order.
    pub fn into_series(mut self) -> Vec<ContainerSeries> {
        let resolution = self.resolution();
        for (key, s) in &mut self.series {
            let assessment = self
                .readings
                .get(key)
                .map(|r| clock::assess(r))
                .unwrap_or_default();
            let offset = match assessment.skew {
                Some(ClockSkew::Rebased { offset_ms }) => offset_ms,
                _ => 0,
            };
            let by = chrono::Duration::milliseconds(offset);
            let mut restamped = 0;
            for r in &assessment.outliers {
                // On the source's clock, where the re-basing below moves it to its arrival.
                let placed = r.received + by;
                for sample in s.samples.iter_mut().filter(|x| x.at == r.at) {
                    sample.at = placed;
                    restamped += 1;
                }
                if let Some((_, at)) = s.kernel_peak_usage.as_mut().filter(|(_, at)| *at == r.at) {
                    *at = placed;
                }
                if let Some(at) = s.kernel_peak_after.as_mut().filter(|at| **at == r.at) {
                    *at = placed;
                }
            }
            if offset != 0 {
                for sample in &mut s.samples {
                    sample.at -= by;
                }
                if let Some((_, at)) = &mut s.kernel_peak_usage {
                    *at -= by;
                }
                if let Some(at) = &mut s.kernel_peak_after {
                    *at -= by;
                }
            }
            s.samples.sort_by_key(|x| x.at);
            s.clock_skew = assessment.skew;
            s.coverage = self
                .tallies
                .get(key)
                .and_then(|t| t.finish(resolution, restamped));
        }
        self.series.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn obs(sec: u32, ws: u64, peak: Option<u64>, ooms: Option<u64>) -> Observation {
        Observation {
            pod: "p".into(),
            container: "app".into(),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, sec).unwrap(),
            working_set: ws,
            usage: Some(ws + 10),
            kernel_peak_usage: peak,
            oom_kills: ooms,
            bad_value: None,
            resident: None,
        }
    }

    #[test]
    fn dedups_by_timestamp_and_counts_coverage() {
        let mut s = Sampler::new();
        s.record(vec![obs(1, 100, None, None)]);
        s.record(vec![obs(1, 100, None, None)]); // repeated, still current: covered
        s.record(vec![]); // no answer: uncovered
        s.record_error("boom");
        s.record(vec![obs(2, 200, None, None)]);
        assert_eq!((s.ticks, s.ticks_with_data), (5, 3));
        let series = s.into_series();
        assert_eq!(series[0].samples.len(), 2);
        assert_eq!(series[0].max_inactive_file, Some(10));
    }

    #[test]
    fn live_samples_from_a_clock_ahead_are_rebased_onto_the_gate_clock() {
        let mut s = Sampler::new();
        let gate = |sec: u32| Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, sec).unwrap();
        for sec in 1..=10 {
            // Stamped 5 min ahead, received at the same second on the gate's clock.
            let mut o = obs(sec, u64::from(sec) * 100, None, None);
            o.at += chrono::Duration::minutes(5);
            s.record_received(vec![o], gate(sec), true);
        }
        let series = s.into_series();
        assert_eq!(
            series[0].clock_skew,
            Some(ClockSkew::Rebased { offset_ms: 300_000 })
        );
        let times: Vec<_> = series[0].samples.iter().map(|x| x.at).collect();
        assert_eq!(times.first(), Some(&gate(1)));
        assert_eq!(times.last(), Some(&gate(10)));
    }

    #[test]
    fn a_replayed_batch_is_not_taken_for_skew() {
        // `oomgate judge`: an hour-old history fed in one go.
        let mut s = Sampler::new();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap();
        for sec in 1..=10 {
            s.record_received(vec![obs(sec, 100, None, None)], now, false);
        }
        let series = s.into_series();
        assert_eq!(series[0].clock_skew, None);
        assert_eq!(series[0].samples[0].at.timestamp() % 60, 1);
        // And through `record`: ticks microseconds apart are not live.
        let mut s = Sampler::new();
        for sec in 1..=10 {
            s.record(vec![obs(sec, 100, None, None)]);
        }
        assert_eq!(s.into_series()[0].clock_skew, None);
    }

    #[test]
    fn a_slower_source_repeating_its_current_sample_is_covered_a_stale_one_is_not() {
        // metrics-server publishing every 15 s, read every 5 s: two of three ticks repeat.
        let gate = |sec: u32| {
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::seconds(i64::from(sec))
        };
        let at = |sec: u32| {
            let mut o = obs(0, 100, None, None);
            o.at = gate(sec);
            o
        };
        let mut s = Sampler::new();
        for tick in 0..12u32 {
            let published = tick / 3 * 15; // the source's newest sample time
            s.record_received(vec![at(published)], gate(tick * 5), true);
        }
        assert_eq!((s.ticks, s.ticks_with_data), (12, 12));
        // Then the source freezes on its last sample: current for one resolution + one tick,
        // uncovered after that.
        for tick in 12..18u32 {
            s.record_received(vec![at(45)], gate(tick * 5), true);
        }
        // The last fresh sample arrived at 45 s: the ticks at 60 and 65 s are within 15 s + 5 s
        // of it, those from 70 s on are not.
        assert_eq!((s.ticks, s.ticks_with_data), (18, 14));
    }

    fn gate(sec: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(sec)
    }

    fn of(pod: &str, container: &str, stamp: i64, ws: u64) -> Observation {
        let mut o = obs(0, ws, None, None);
        o.pod = pod.into();
        o.container = container.into();
        o.at = gate(stamp);
        o
    }

    fn coverage_of(series: &[ContainerSeries], pod: &str) -> crate::model::SeriesCoverage {
        series
            .iter()
            .find(|s| s.pod == pod)
            .and_then(|s| s.coverage.clone())
            .unwrap()
    }

    #[test]
    fn a_pod_left_out_is_uncovered_while_the_workload_share_is_full() {
        let mut s = Sampler::new();
        s.declare("a", "app", None, None);
        s.declare("b", "app", None, None);
        for tick in 0..10 {
            let mut o = vec![of("a", "app", tick, 100)];
            if tick < 3 {
                o.push(of("b", "app", tick, 100));
            }
            s.record_received(o, gate(tick), true);
        }
        assert_eq!((s.ticks, s.ticks_with_data), (10, 10));
        let series = s.into_series();
        assert_eq!(coverage_of(&series, "a").covered, 10);
        let b = coverage_of(&series, "b");
        assert_eq!((b.ticks, b.covered), (10, 3));
        assert_eq!(
            (b.gaps[0].from, b.gaps[0].to, &b.gaps[0].cause),
            (gate(3), gate(9), &GapCause::Absent)
        );
    }

    #[test]
    fn a_frozen_timestamp_nan_and_failed_readings_are_gaps_and_a_gone_pod_stops_counting() {
        let mut s = Sampler::new();
        s.declare("a", "app", None, None);
        s.declare("b", "app", None, None);
        s.declare("c", "app", None, None);
        for tick in 0..40 {
            // a: fresh every second; b: frozen at 4 s from then on; c: NaN from 10 s.
            let mut o = vec![of("a", "app", tick, 100), of("b", "app", tick.min(4), 100)];
            let mut nan = of("c", "app", tick, 0);
            if tick >= 10 {
                nan.bad_value = Some("NaN".into());
            }
            o.push(nan);
            s.record_received(o, gate(tick), true);
        }
        s.record_error("boom");
        s.pod_gone("a");
        s.record_error("boom");
        let series = s.into_series();
        let a = coverage_of(&series, "a");
        assert_eq!((a.ticks, a.covered), (41, 40), "gone after one failure");
        assert_eq!(a.gaps[0].cause, GapCause::ReadFailed);
        let b = coverage_of(&series, "b");
        // Resolution 1 s: repeats of the 4 s sample are stuck (35 of them) — not covered.
        assert_eq!(b.covered, 5, "{b:?}");
        assert_eq!(b.gaps[0].cause, GapCause::Stuck { stamp: gate(4) });
        let c = coverage_of(&series, "c");
        assert_eq!(c.covered, 10);
        assert_eq!(
            c.gaps[0].cause,
            GapCause::BadValue {
                value: "NaN".into()
            }
        );
        // NaN is no sample.
        let c_series = series.iter().find(|x| x.pod == "c").unwrap();
        assert_eq!(c_series.samples.len(), 10);
    }

    #[test]
    fn one_stamp_from_the_future_neither_hides_later_samples_nor_rebases_the_series() {
        let mut s = Sampler::new();
        for tick in 0..20 {
            let mut o = of("p", "app", tick, 100 + tick as u64);
            if tick == 5 {
                o.at += chrono::Duration::minutes(5);
            }
            s.record_received(vec![o], gate(tick), true);
        }
        let series = s.into_series();
        let p = &series[0];
        assert_eq!(p.clock_skew, None);
        assert_eq!(p.samples.len(), 20, "every later sample kept");
        let times: Vec<_> = p.samples.iter().map(|x| x.at).collect();
        assert_eq!(
            times,
            (0..20).map(gate).collect::<Vec<_>>(),
            "placed on arrival"
        );
        let c = p.coverage.clone().unwrap();
        assert_eq!((c.covered, c.restamped), (20, 1));
    }

    #[test]
    fn oom_counter_rises_into_events_and_peak_is_kept() {
        let mut s = Sampler::new();
        assert!(s.record(vec![obs(1, 100, Some(500), Some(0))]).is_empty());
        let ev = s.record(vec![obs(2, 50, Some(900), Some(1))]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].reason, RestartReason::OomKilled);
        assert!(s.record(vec![obs(3, 60, Some(900), Some(1))]).is_empty());
        let series = s.into_series();
        assert_eq!(series[0].kernel_peak_usage.map(|p| p.0), Some(900));
        assert_eq!(
            series[0].kernel_peak_usage.map(|p| p.1.timestamp() % 60),
            Some(2)
        );
        // It happened after the reading before (at 1 s), as closely as the counter tells.
        assert_eq!(
            series[0].kernel_peak_after.map(|t| t.timestamp() % 60),
            Some(1)
        );
    }
}

//! The sampler's bookkeeping: it takes what a `MemorySource` returned on each tick and keeps one
//! `ContainerSeries` per pod and container. The same sample seen twice (same container, same
//! timestamp) counts once; a tick counts as covered when it brought at least one fresh sample;
//! a rising OOM-kill counter becomes an `oom-killed` restart event; the kernel's peak counter is
//! tracked with the time it was first seen at its highest value.

use std::collections::{BTreeMap, HashMap};

use super::Observation;
use crate::model::{ContainerSeries, RestartEvent, RestartReason, Timestamp};

/// Accumulates ticks into per-container series.
#[derive(Debug, Default)]
pub struct Sampler {
    series: BTreeMap<(String, String), ContainerSeries>,
    last_at: HashMap<(String, String), Timestamp>,
    oom_counter: HashMap<(String, String), u64>,
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
        let s = self
            .series
            .entry((pod.to_string(), container.to_string()))
            .or_insert_with(|| ContainerSeries::new(pod, container));
        s.limit = limit;
        s.request = request;
    }

    /// Record a tick that failed to bring data.
    pub fn record_error(&mut self, err: &str) {
        self.ticks += 1;
        self.failed_ticks += 1;
        self.last_error = Some(err.to_string());
    }

    /// Record one tick's observations; returns OOM kills detected in this tick.
    pub fn record(&mut self, obs: Vec<Observation>) -> Vec<RestartEvent> {
        self.ticks += 1;
        let mut fresh = false;
        let mut events = Vec::new();
        for o in obs {
            let key = (o.pod.clone(), o.container.clone());
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
            if self.last_at.get(&key).is_some_and(|&t| t >= o.at) {
                continue; // the same sample again (or one older than what we have)
            }
            self.last_at.insert(key.clone(), o.at);
            fresh = true;
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
                s.min_inactive_file =
                    Some(s.min_inactive_file.map_or(inactive, |m| m.min(inactive)));
            }
            if let Some(peak) = o.kernel_peak_usage {
                if s.kernel_peak_usage.is_none_or(|(p, _)| peak > p) {
                    s.kernel_peak_usage = Some((peak, o.at));
                }
            }
        }
        if fresh {
            self.ticks_with_data += 1;
        }
        events
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

    pub fn into_series(self) -> Vec<ContainerSeries> {
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
        }
    }

    #[test]
    fn dedups_by_timestamp_and_counts_coverage() {
        let mut s = Sampler::new();
        s.record(vec![obs(1, 100, None, None)]);
        s.record(vec![obs(1, 100, None, None)]); // repeated sample: no fresh data
        s.record(vec![]);
        s.record_error("boom");
        s.record(vec![obs(2, 200, None, None)]);
        assert_eq!((s.ticks, s.ticks_with_data), (5, 2));
        let series = s.into_series();
        assert_eq!(series[0].samples.len(), 2);
        assert_eq!(series[0].min_inactive_file, Some(10));
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
    }
}

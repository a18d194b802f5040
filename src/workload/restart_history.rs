//! Restarts and OOM kills of a finished run, read from Prometheus after the fact (`oomgate
//! judge`). Two exporters keep them: kube-state-metrics counts every restart
//! (`kube_pod_container_status_restarts_total`) and says why the last one ended
//! (`kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}`,
//! `kube_pod_container_status_last_terminated_exitcode`); cAdvisor counts the kernel's OOM kills
//! (`container_oom_events_total`) even where kube-state-metrics is not scraped. This module
//! turns rises of those counters inside the run's window into [`RestartEvent`]s, and says
//! which of the two kinds of event it could not see at all, so that the judge never passes a
//! restart rule blind. The counter arithmetic ([`rises`]) is pure and tested on plain data.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Duration as CDuration;

use crate::memory::prometheus::{fill_query, PromError, PrometheusClient, RangeSeries};
use crate::model::{RestartEvent, RestartReason, Timestamp};

/// What Prometheus showed of a finished run's restarts.
#[derive(Debug, Default)]
pub struct RestartHistory {
    pub events: Vec<RestartEvent>,
    /// Measured containers (`pod/container`) kube-state-metrics' restart counter has no series
    /// for: their restarts are not seen.
    pub restarts_unseen: Vec<String>,
    /// Measured containers neither exporter has a series for: their OOM kills are not seen.
    pub ooms_unseen: Vec<String>,
    /// Restarts whose cause neither exporter recorded (`pod/container at time`): one of them
    /// may have been an OOM kill, so `oom-killed` cannot be judged for them.
    pub unexplained: Vec<String>,
}

const RESTARTS: &str = "kube_pod_container_status_restarts_total";
const LAST_REASON: &str = "kube_pod_container_status_last_terminated_reason";
const LAST_EXIT: &str = "kube_pod_container_status_last_terminated_exitcode";
const OOM_EVENTS: &str = "container_oom_events_total";

/// Reads the window `[start, end]` every `step` for the pods `pods_regex` matches in
/// `namespace`; `containers` limits it to those names (empty: every container). `measured`
/// are the (pod, container) pairs whose memory was read: each must be visible to both
/// exporters, or the history says which are not.
pub async fn read(
    prom: &PrometheusClient,
    namespace: &str,
    pods_regex: &str,
    containers: &[String],
    measured: &[(String, String)],
    (start, end): (Timestamp, Timestamp),
    step: Duration,
) -> Result<RestartHistory, PromError> {
    let query = |metric: &str| {
        let q = fill_query(
            &format!("{metric}{{namespace=\"$namespace\", pod=~\"$pods\", container!=\"\"}}"),
            namespace,
            pods_regex,
        );
        async move { prom.query_range(&q, start, end, step).await }
    };
    let number = |s: &RangeSeries| {
        s.values
            .iter()
            .filter(|(_, v)| v.is_finite())
            .copied()
            .collect::<Vec<_>>()
    };
    // kube-state-metrics exports one series per reason, valued 1 while it is the last one.
    let reason = |s: &RangeSeries| {
        let why = s.labels.get("reason").cloned().unwrap_or_default();
        s.values
            .iter()
            .filter(|(_, v)| *v >= 1.0)
            .map(|(t, _)| (*t, why.clone()))
            .collect::<Vec<_>>()
    };
    let restarts = by_container(query(RESTARTS).await?, containers, number);
    let reasons = by_container(query(LAST_REASON).await?, containers, reason);
    let exits = by_container(query(LAST_EXIT).await?, containers, number);
    let ooms = by_container(query(OOM_EVENTS).await?, containers, number);
    let mut history = combine(&restarts, &reasons, &exits, &ooms, start, step);
    mark_unseen(&mut history, &restarts, &ooms, measured);
    Ok(history)
}

/// The measured containers an exporter has no series for.
fn mark_unseen(
    history: &mut RestartHistory,
    restarts: &ByContainer<f64>,
    ooms: &ByContainer<f64>,
    measured: &[(String, String)],
) {
    for k in measured {
        if restarts.contains_key(k) {
            continue;
        }
        let name = format!("{}/{}", k.0, k.1);
        if !ooms.contains_key(k) {
            history.ooms_unseen.push(name.clone());
        }
        history.restarts_unseen.push(name);
    }
}

type Key = (String, String);

/// Every series of one container, kept apart: a pod replaced under the same name, or a
/// second exporter instance, has its own series, and counters are read per series.
type ByContainer<V> = BTreeMap<Key, Vec<Vec<(Timestamp, V)>>>;

fn by_container<V>(
    series: Vec<RangeSeries>,
    containers: &[String],
    points: impl Fn(&RangeSeries) -> Vec<(Timestamp, V)>,
) -> ByContainer<V> {
    let mut out: ByContainer<V> = BTreeMap::new();
    for s in series {
        let (Some(pod), Some(container)) = (s.labels.get("pod"), s.labels.get("container")) else {
            continue;
        };
        if !containers.is_empty() && !containers.contains(container) {
            continue;
        }
        let p = points(&s);
        out.entry((pod.clone(), container.clone()))
            .or_default()
            .push(p);
    }
    out
}

/// The rises of every series of one container, in time order.
fn all_rises(
    series: &[Vec<(Timestamp, f64)>],
    window_start: Timestamp,
    step: Duration,
) -> Vec<Timestamp> {
    let mut out: Vec<Timestamp> = series
        .iter()
        .flat_map(|s| rises(s, window_start, step))
        .collect();
    out.sort();
    out
}

/// Events from the four metrics' series: each rise of the restart counter is a restart, an
/// OOM kill when the last termination's reason reads OOMKilled at or after it, or when
/// cAdvisor's OOM counter rose within two steps of it. A restart neither records a cause for
/// is unexplained (cAdvisor's counter not rising proves nothing: the killed container's series
/// often goes away before the rise is scraped). OOM rises with no restart beside them (no
/// kube-state-metrics) are OOM kills of their own.
fn combine(
    restarts: &ByContainer<f64>,
    reasons: &ByContainer<String>,
    exits: &ByContainer<f64>,
    ooms: &ByContainer<f64>,
    window_start: Timestamp,
    step: Duration,
) -> RestartHistory {
    let near = CDuration::from_std(step * 2).unwrap_or_else(|_| CDuration::seconds(10));
    let mut events = Vec::new();
    let oom_rises: BTreeMap<&Key, Vec<Timestamp>> = ooms
        .iter()
        .map(|(k, v)| (k, all_rises(v, window_start, step)))
        .collect();
    let mut oom_used: Vec<(Key, Timestamp)> = Vec::new();
    let mut unexplained = Vec::new();
    for (k, series) in restarts {
        for at in all_rises(series, window_start, step) {
            let said = reasons.get(k).and_then(|r| {
                r.iter()
                    .flatten()
                    .filter(|(t, _)| *t >= at && *t <= at + near)
                    .min_by_key(|(t, _)| *t)
                    .map(|(_, reason)| reason.as_str())
            });
            let counted_oom = oom_rises
                .get(k)
                .and_then(|r| r.iter().find(|t| (**t - at).abs() <= near).copied());
            if let Some(t) = counted_oom {
                oom_used.push((k.clone(), t));
            }
            let exit_code = exits.get(k).and_then(|e| {
                e.iter()
                    .flatten()
                    .filter(|(t, _)| *t >= at)
                    .min_by_key(|(t, _)| *t)
                    .map(|(_, v)| v.round() as i32)
            });
            let oom = said == Some("OOMKilled") || counted_oom.is_some();
            let reason = match said {
                _ if oom => RestartReason::OomKilled,
                Some(other) => RestartReason::Other(other.to_string()),
                None => {
                    unexplained.push(format!("{}/{} at {}", k.0, k.1, at.format("%H:%M:%S")));
                    // "reason unknown" in the finding
                    RestartReason::Other(String::new())
                }
            };
            events.push(RestartEvent {
                pod: k.0.clone(),
                container: k.1.clone(),
                at,
                reason,
                exit_code: exit_code.or(oom.then_some(137)),
            });
        }
    }
    for (k, times) in &oom_rises {
        for at in times {
            if oom_used.iter().any(|(uk, t)| uk == *k && t == at) {
                continue;
            }
            events.push(RestartEvent {
                pod: k.0.clone(),
                container: k.1.clone(),
                at: *at,
                reason: RestartReason::OomKilled,
                exit_code: Some(137),
            });
        }
    }
    events.sort_by(|a, b| (a.at, &a.pod, &a.container).cmp(&(b.at, &b.pod, &b.container)));
    RestartHistory {
        events,
        unexplained,
        ..RestartHistory::default()
    }
}

/// The times a counter rose inside the window, one entry per unit of rise. A series that
/// starts well after the window opened belongs to a pod created during the run, whose counter
/// started at 0 then; a series present from the start is counted from its first value. A
/// counter that falls was reset (its exporter restarted) and counts again from 0.
pub fn rises(
    points: &[(Timestamp, f64)],
    window_start: Timestamp,
    step: Duration,
) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let Some(&(first_at, first)) = points.first() else {
        return out;
    };
    let late = CDuration::from_std(step * 2).unwrap_or_else(|_| CDuration::seconds(10));
    let mut last = if first_at > window_start + late {
        0.0
    } else {
        first
    };
    for &(at, v) in points {
        if v < last {
            // The counter was reset (its exporter restarted): it counts again from 0.
            last = 0.0;
        }
        if v > last {
            let n = (v - last).round().max(1.0) as u64;
            out.extend(std::iter::repeat_n(at, n.min(1000) as usize));
        }
        last = v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> Timestamp {
        chrono::Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn series(points: &[(i64, f64)]) -> Vec<(Timestamp, f64)> {
        points.iter().map(|&(s, v)| (t(s), v)).collect()
    }

    fn key() -> Key {
        ("web-0".to_string(), "app".to_string())
    }

    fn one(points: &[(i64, f64)]) -> ByContainer<f64> {
        BTreeMap::from([(key(), vec![series(points)])])
    }

    fn reason(why: &str, at: &[i64]) -> ByContainer<String> {
        let points = at.iter().map(|&s| (t(s), why.to_string())).collect();
        BTreeMap::from([(key(), vec![points])])
    }

    const STEP: Duration = Duration::from_secs(5);

    #[test]
    fn a_counter_present_from_the_start_counts_from_its_first_value() {
        let r = rises(
            &series(&[(0, 3.0), (5, 3.0), (10, 4.0), (15, 6.0)]),
            t(0),
            STEP,
        );
        assert_eq!(r, vec![t(10), t(15), t(15)]);
    }

    #[test]
    fn a_pod_created_during_the_run_counts_from_zero() {
        assert_eq!(
            rises(&series(&[(30, 1.0), (35, 1.0)]), t(0), STEP),
            vec![t(30)]
        );
        // present from the start: its earlier restarts are not this run's
        assert!(rises(&series(&[(5, 1.0), (10, 1.0)]), t(0), STEP).is_empty());
    }

    #[test]
    fn a_counter_reset_counts_again_from_zero() {
        let r = rises(&series(&[(0, 5.0), (5, 0.0), (10, 1.0)]), t(0), STEP);
        assert_eq!(r, vec![t(10)]);
        // reset and risen within one step: the new value is this run's
        let r = rises(&series(&[(0, 3.0), (5, 1.0)]), t(0), STEP);
        assert_eq!(r, vec![t(5)]);
    }

    #[test]
    fn a_pod_replaced_under_the_same_name_keeps_both_series_restarts() {
        // the old web-0 restarted 3 times before the run; its replacement, seen from t=30,
        // was OOM-killed before its first scrape
        let restarts = BTreeMap::from([(
            key(),
            vec![
                series(&[(0, 3.0), (20, 3.0)]),
                series(&[(30, 1.0), (35, 1.0)]),
            ],
        )]);
        let e = BTreeMap::new();
        let h = combine(&restarts, &reason("OOMKilled", &[30]), &e, &e, t(0), STEP);
        assert_eq!(h.events.len(), 1, "{:?}", h.events);
        assert_eq!(h.events[0].reason, RestartReason::OomKilled);
    }

    #[test]
    fn a_measured_container_an_exporter_lacks_is_unseen() {
        let mut h = RestartHistory::default();
        let other = ("web-1".to_string(), "app".to_string());
        let ooms = BTreeMap::from([(other.clone(), vec![series(&[(0, 0.0)])])]);
        mark_unseen(&mut h, &one(&[(0, 0.0)]), &ooms, &[key(), other]);
        assert_eq!(h.restarts_unseen, vec!["web-1/app"]);
        assert!(h.ooms_unseen.is_empty(), "cAdvisor sees web-1's OOM kills");
        let mut h = RestartHistory::default();
        let third = ("web-2".to_string(), "app".to_string());
        mark_unseen(&mut h, &one(&[(0, 0.0)]), &BTreeMap::new(), &[key(), third]);
        assert_eq!(h.ooms_unseen, vec!["web-2/app"]);
    }

    #[test]
    fn a_restart_with_oomkilled_as_last_reason_is_an_oom_kill() {
        let h = combine(
            &one(&[(0, 0.0), (5, 0.0), (10, 1.0)]),
            &reason("OOMKilled", &[10]),
            &one(&[(10, 137.0)]),
            &BTreeMap::new(),
            t(0),
            STEP,
        );
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.events[0].reason, RestartReason::OomKilled);
        assert_eq!(h.events[0].exit_code, Some(137));
        assert_eq!(h.events[0].at, t(10));
        assert!(h.unexplained.is_empty());
    }

    #[test]
    fn a_restart_for_another_reason_is_not_an_oom_kill() {
        let h = combine(
            &one(&[(0, 0.0), (10, 1.0)]),
            &reason("Error", &[10]),
            &one(&[(10, 1.0)]),
            &one(&[(0, 0.0), (10, 0.0)]),
            t(0),
            STEP,
        );
        assert_eq!(h.events.len(), 1);
        assert!(matches!(h.events[0].reason, RestartReason::Other(_)));
        assert_eq!(h.events[0].exit_code, Some(1));
    }

    #[test]
    fn a_named_reason_is_kept_and_an_unrecorded_one_is_unexplained() {
        let h = combine(
            &one(&[(0, 0.0), (10, 1.0)]),
            &reason("Error", &[10]),
            &BTreeMap::new(),
            &BTreeMap::new(),
            t(0),
            STEP,
        );
        assert_eq!(h.events[0].reason, RestartReason::Other("Error".into()));
        assert!(h.unexplained.is_empty());
        // no reason series and no OOM counter: it may have been an OOM kill
        let e = BTreeMap::new();
        let h = combine(
            &one(&[(0, 0.0), (10, 1.0)]),
            &BTreeMap::new(),
            &e,
            &e,
            t(0),
            STEP,
        );
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.unexplained.len(), 1, "{:?}", h.unexplained);
        assert!(h.unexplained[0].starts_with("web-0/app at "));
    }

    #[test]
    fn cadvisor_alone_shows_oom_kills_but_not_restarts() {
        let h = combine(
            &BTreeMap::new(),
            &BTreeMap::new(),
            &BTreeMap::new(),
            &one(&[(0, 0.0), (5, 0.0), (10, 1.0)]),
            t(0),
            STEP,
        );
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.events[0].reason, RestartReason::OomKilled);
        // and web-0 is unseen for restarts only
        let mut h = h;
        mark_unseen(&mut h, &BTreeMap::new(), &one(&[(0, 0.0)]), &[key()]);
        assert_eq!(h.restarts_unseen, vec!["web-0/app"]);
        assert!(h.ooms_unseen.is_empty());
    }

    #[test]
    fn an_oom_seen_by_both_exporters_is_one_event() {
        let h = combine(
            &one(&[(0, 0.0), (10, 1.0)]),
            &BTreeMap::new(),
            &BTreeMap::new(),
            &one(&[(0, 0.0), (5, 1.0)]),
            t(0),
            STEP,
        );
        assert_eq!(h.events.len(), 1, "{:?}", h.events);
        assert_eq!(h.events[0].reason, RestartReason::OomKilled);
    }

    #[test]
    fn nothing_at_all_sees_nothing() {
        let e = BTreeMap::new();
        let mut h = combine(&e, &BTreeMap::new(), &e, &e, t(0), STEP);
        assert!(h.events.is_empty());
        mark_unseen(&mut h, &e, &e, &[key()]);
        assert_eq!((h.restarts_unseen.len(), h.ooms_unseen.len()), (1, 1));
    }
}

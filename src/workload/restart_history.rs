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
    /// kube-state-metrics' restart counter had a series for the workload's pods.
    pub restarts_visible: bool,
    /// Either exporter had a series that would show an OOM kill.
    pub ooms_visible: bool,
    /// Restarts whose cause neither exporter recorded (`pod/container at time`): one of them
    /// may have been an OOM kill, so `oom-killed` cannot be judged for them.
    pub unexplained: Vec<String>,
}

const RESTARTS: &str = "kube_pod_container_status_restarts_total";
const LAST_REASON: &str = "kube_pod_container_status_last_terminated_reason";
const LAST_EXIT: &str = "kube_pod_container_status_last_terminated_exitcode";
const OOM_EVENTS: &str = "container_oom_events_total";

/// Reads the window `[start, end]` every `step` for the pods `pods_regex` matches in
/// `namespace`; `containers` limits it to those names (empty: every container).
pub async fn read(
    prom: &PrometheusClient,
    namespace: &str,
    pods_regex: &str,
    containers: &[String],
    (start, end): (Timestamp, Timestamp),
    step: Duration,
) -> Result<RestartHistory, PromError> {
    let selector = |metric: &str, extra: &str| {
        fill_query(
            &format!(
                "{metric}{{namespace=\"$namespace\", pod=~\"$pods\", container!=\"\"{extra}}}"
            ),
            namespace,
            pods_regex,
        )
    };
    let restarts = prom
        .query_range(&selector(RESTARTS, ""), start, end, step)
        .await?;
    let reasons = prom
        .query_range(&selector(LAST_REASON, ""), start, end, step)
        .await?;
    let exits = prom
        .query_range(&selector(LAST_EXIT, ""), start, end, step)
        .await?;
    let ooms = prom
        .query_range(&selector(OOM_EVENTS, ""), start, end, step)
        .await?;
    Ok(combine(
        &keep(restarts, containers),
        &reasons_of(reasons, containers),
        &keep(exits, containers),
        &keep(ooms, containers),
        start,
        step,
    ))
}

type Key = (String, String);

fn key(s: &RangeSeries) -> Option<Key> {
    Some((
        s.labels.get("pod")?.clone(),
        s.labels.get("container")?.clone(),
    ))
}

fn keep(series: Vec<RangeSeries>, containers: &[String]) -> BTreeMap<Key, Vec<(Timestamp, f64)>> {
    let mut out: BTreeMap<Key, Vec<(Timestamp, f64)>> = BTreeMap::new();
    for s in series {
        let Some(k) = key(&s) else { continue };
        if !containers.is_empty() && !containers.contains(&k.1) {
            continue;
        }
        // Several series per container (e.g. two cAdvisor instances): merge their points.
        let points = out.entry(k).or_default();
        points.extend(s.values.into_iter().filter(|(_, v)| v.is_finite()));
        points.sort_by_key(|(t, _)| *t);
    }
    out
}

/// The last termination's reason per container, over time: kube-state-metrics exports one
/// series per reason, valued 1 while it is the container's last reason.
fn reasons_of(
    series: Vec<RangeSeries>,
    containers: &[String],
) -> BTreeMap<Key, Vec<(Timestamp, String)>> {
    let mut out: BTreeMap<Key, Vec<(Timestamp, String)>> = BTreeMap::new();
    for s in series {
        let (Some(k), Some(reason)) = (key(&s), s.labels.get("reason")) else {
            continue;
        };
        if !containers.is_empty() && !containers.contains(&k.1) {
            continue;
        }
        let points = out.entry(k).or_default();
        points.extend(
            s.values
                .iter()
                .filter(|(_, v)| *v >= 1.0)
                .map(|(t, _)| (*t, reason.clone())),
        );
        points.sort_by_key(|(t, _)| *t);
    }
    out
}

/// Events from the four metrics' series: each rise of the restart counter is a restart, an
/// OOM kill when the last termination's reason reads OOMKilled at or after it, or when
/// cAdvisor's OOM counter rose within two steps of it. OOM rises with no restart beside them
/// (no kube-state-metrics) are OOM kills of their own.
fn combine(
    restarts: &BTreeMap<Key, Vec<(Timestamp, f64)>>,
    reasons: &BTreeMap<Key, Vec<(Timestamp, String)>>,
    exits: &BTreeMap<Key, Vec<(Timestamp, f64)>>,
    ooms: &BTreeMap<Key, Vec<(Timestamp, f64)>>,
    window_start: Timestamp,
    step: Duration,
) -> RestartHistory {
    let near = CDuration::from_std(step * 2).unwrap_or_else(|_| CDuration::seconds(10));
    let mut events = Vec::new();
    let oom_rises: BTreeMap<&Key, Vec<Timestamp>> = ooms
        .iter()
        .map(|(k, v)| (k, rises(v, window_start, step)))
        .collect();
    let mut oom_used: Vec<(Key, Timestamp)> = Vec::new();
    let mut unexplained = Vec::new();
    for (k, points) in restarts {
        for at in rises(points, window_start, step) {
            let said = reasons.get(k).and_then(|r| {
                r.iter()
                    .find(|(t, _)| *t >= at && *t <= at + near)
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
                    .find(|(t, _)| *t >= at)
                    .map(|(_, v)| v.round() as i32)
            });
            let oom = said == Some("OOMKilled") || counted_oom.is_some();
            let reason = match said {
                _ if oom => RestartReason::OomKilled,
                Some(other) => RestartReason::Other(other.to_string()),
                // cAdvisor counted no OOM kill for it: not an OOM kill, cause unrecorded.
                None if ooms.contains_key(k) => RestartReason::Other(String::new()),
                None => {
                    unexplained.push(format!("{}/{} at {}", k.0, k.1, at.format("%H:%M:%S")));
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
        restarts_visible: !restarts.is_empty(),
        ooms_visible: !restarts.is_empty() || !ooms.is_empty(),
        unexplained,
    }
}

/// The times a counter rose inside the window, one entry per unit of rise. A series that
/// starts well after the window opened belongs to a pod created during the run, whose counter
/// started at 0 then; a series present from the start is counted from its first value. A
/// counter that falls (its pod was replaced under the same name, or the exporter restarted)
/// starts again from its new value.
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

    fn one(points: &[(i64, f64)]) -> BTreeMap<Key, Vec<(Timestamp, f64)>> {
        BTreeMap::from([(("web-0".to_string(), "app".to_string()), series(points))])
    }

    fn reason(why: &str, at: &[i64]) -> BTreeMap<Key, Vec<(Timestamp, String)>> {
        let points = at.iter().map(|&s| (t(s), why.to_string())).collect();
        BTreeMap::from([(("web-0".to_string(), "app".to_string()), points)])
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
    fn a_counter_reset_starts_again_from_its_new_value() {
        let r = rises(&series(&[(0, 5.0), (5, 0.0), (10, 1.0)]), t(0), STEP);
        assert_eq!(r, vec![t(10)]);
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
        assert!(h.restarts_visible && h.ooms_visible);
    }

    #[test]
    fn a_restart_for_another_reason_is_not_an_oom_kill() {
        let h = combine(
            &one(&[(0, 0.0), (10, 1.0)]),
            &BTreeMap::new(),
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
        assert!(!h.restarts_visible && h.ooms_visible);
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
        let h = combine(&e, &BTreeMap::new(), &e, &e, t(0), STEP);
        assert!(h.events.is_empty() && !h.restarts_visible && !h.ooms_visible);
    }
}

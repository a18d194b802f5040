//! Stage windows for a k6 run. Declared stages (the scenario's `(duration, target)` list, k6
//! semantics) are laid out from the first point on; the last one also takes the tail of
//! requests that finish after the plan (k6's graceful stop). Without declared stages they are
//! reconstructed from the per-second `vus` timeline: a run of equal values lasting at least
//! `max(2 s, 5 % of the run)` is a hold (inside a ramp, it must also last twice the steps around
//! it), what lies between holds is a ramp (split where the direction turns), and a ramp of at
//! most 1.5 s before a first hold that starts the run is dropped (a constant-VU test is one
//! hold).

use std::collections::BTreeMap;
use std::time::Duration;

use super::summary::ts;
use crate::model::{Stage, StageWindow};

const NS: i64 = 1_000_000_000;

/// Declared stages placed at offsets from `first_ns`.
pub(crate) fn declared_stages(
    declared: &[(Duration, u32)],
    first_ns: i64,
    last_ns: i64,
) -> Vec<StageWindow> {
    let mut out = Vec::with_capacity(declared.len());
    let mut t = first_ns;
    let mut prev = 0;
    for (i, &(duration, target)) in declared.iter().enumerate() {
        let end = t.saturating_add(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX));
        out.push(StageWindow {
            stage: Stage {
                index: i,
                from_users: prev,
                to_users: target,
                duration,
            },
            start: ts(t),
            end: ts(end),
        });
        prev = target;
        t = end;
    }
    if let Some(last) = out.last_mut() {
        if ts(last_ns) >= last.end {
            last.end = ts(last_ns.saturating_add(1));
        }
    }
    out
}

/// A run of equal per-second `vus` values.
#[derive(Debug, Clone, Copy)]
struct Run {
    users: u32,
    first_sec: i64,
    last_sec: i64,
}

/// Turning points of `seq` (where the direction of change reverses; plateaus ignored). Never
/// the first or last element.
fn turns(seq: &[(i64, u32)]) -> Vec<(i64, u32)> {
    let mut out = Vec::new();
    let mut dir = std::cmp::Ordering::Equal;
    for w in seq.windows(2) {
        let d = w[1].1.cmp(&w[0].1);
        if d == std::cmp::Ordering::Equal {
            continue;
        }
        if dir != std::cmp::Ordering::Equal && d != dir {
            out.push(w[0]);
        }
        dir = d;
    }
    out
}

/// Adds the turning points of the samples after `from` (and before `to_sec`, if given).
fn add_turns(
    samples: &[(i64, u32)],
    from: (i64, u32),
    to_sec: Option<i64>,
    anchors: &mut Vec<(i64, u32)>,
) {
    let mut seq = vec![from];
    seq.extend(
        samples
            .iter()
            .copied()
            .filter(|&(s, _)| s > from.0 && to_sec.is_none_or(|end| s < end)),
    );
    anchors.extend(turns(&seq).into_iter().map(|(s, v)| (s * NS, v)));
}

/// Stages from the `vus` timeline (unix second → users) over the window `first..=last`.
pub(crate) fn reconstruct_stages(
    vus: &BTreeMap<i64, u32>,
    first_ns: i64,
    last_ns: i64,
) -> Vec<StageWindow> {
    if vus.is_empty() || last_ns < first_ns {
        return Vec::new();
    }
    let samples: Vec<(i64, u32)> = vus.iter().map(|(&s, &v)| (s, v)).collect();
    let mut runs: Vec<Run> = Vec::new();
    for &(sec, users) in &samples {
        match runs.last_mut() {
            Some(r) if r.users == users => r.last_sec = sec,
            _ => runs.push(Run {
                users,
                first_sec: sec,
                last_sec: sec,
            }),
        }
    }
    let total_secs = (last_ns.saturating_sub(first_ns) / NS).max(1);
    let hold_min = (total_secs / 20).max(2);
    let len = |r: &Run| r.last_sec - r.first_sec + 1;
    // A plateau is a hold when it lasts; one inside a ramp (lower before, higher after, or the
    // reverse) must also be clearly longer than the steps around it.
    let holds: Vec<Run> = (0..runs.len())
        .filter(|&i| {
            let r = &runs[i];
            let prev = i.checked_sub(1).map(|j| &runs[j]);
            let next = runs.get(i + 1);
            let before = prev.map_or(0, |p| p.users);
            let inside_ramp = next.is_some_and(|n| {
                (before < r.users && r.users < n.users) || (before > r.users && r.users > n.users)
            });
            let steps = prev.map_or(0, len).max(next.map_or(0, len));
            len(r) >= hold_min && (!inside_ramp || len(r) >= 2 * steps)
        })
        .map(|i| runs[i])
        .collect();

    // Anchors the users-over-time profile passes through, in time order.
    let mut anchors: Vec<(i64, u32)> = vec![(first_ns, 0)];
    // (second, users) of the last anchor; a sample in the very first second still counts.
    let mut cursor = (first_ns.div_euclid(NS) - 1, 0u32);
    for (i, h) in holds.iter().enumerate() {
        let starts_run = i == 0
            && samples.first().map(|s| s.0) == Some(h.first_sec)
            && h.first_sec * NS <= first_ns.saturating_add(3 * NS / 2);
        if starts_run {
            anchors[0] = (first_ns, h.users);
        } else {
            add_turns(&samples, cursor, Some(h.first_sec), &mut anchors);
            anchors.push((h.first_sec * NS, h.users));
        }
        anchors.push((h.last_sec * NS, h.users));
        cursor = (h.last_sec, h.users);
    }
    if let Some(&(_, last_users)) = samples.last() {
        add_turns(&samples, cursor, None, &mut anchors);
        anchors.push((last_ns, last_users));
    }

    // Clamp into the window, keep time order, then one stage per pair of anchors.
    let mut points: Vec<(i64, u32)> = Vec::with_capacity(anchors.len());
    for (t, u) in anchors {
        let t = t.clamp(first_ns, last_ns);
        match points.last_mut() {
            Some(p) if t <= p.0 => p.1 = u, // same instant: the later value wins
            _ => points.push((t, u)),
        }
    }
    let mut stages: Vec<(i64, i64, u32, u32)> = Vec::new(); // start, end, from, to
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        match stages.last_mut() {
            // Two holds at the same users, or two ramps in the same direction, are one stage.
            Some(last)
                if (last.2 == last.3 && a.1 == b.1 && last.3 == a.1)
                    || (last.2 < last.3 && a.1 < b.1 && last.3 == a.1)
                    || (last.2 > last.3 && a.1 > b.1 && last.3 == a.1) =>
            {
                last.1 = b.0;
                last.3 = b.1;
            }
            _ => stages.push((a.0, b.0, a.1, b.1)),
        }
    }
    if stages.is_empty() {
        // A single instant (or a single vus sample): one hold over the window.
        let users = samples.iter().map(|s| s.1).max().unwrap_or(0);
        stages.push((first_ns, last_ns, users, users));
    }
    if let Some(last) = stages.last_mut() {
        last.1 = last_ns.saturating_add(1).max(last.1);
    }
    stages
        .into_iter()
        .enumerate()
        .map(|(index, (start, end, from, to))| StageWindow {
            stage: Stage {
                index,
                from_users: from,
                to_users: to,
                duration: Duration::from_nanos(end.saturating_sub(start).max(0) as u64),
            },
            start: ts(start),
            end: ts(end),
        })
        .collect()
}

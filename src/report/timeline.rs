//! Memory over time, for the chart: one container name's working set as the highest value
//! across its pods at each sample time, the peak pod's own series, and downsampling that keeps
//! every bucket's minimum and maximum (so the peak survives) to a bounded number of points. Pure
//! functions over the `Run`'s samples; `ReportView::build` calls them once. (Suggested limits
//! and requests come from `analysis::recommend`.)

use std::time::Duration;

use crate::model::{ContainerSeries, Sample, Timestamp};

/// Most points a chart series keeps.
pub const CHART_POINTS: usize = 2000;

/// One point of a memory series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPoint {
    pub at: Timestamp,
    pub bytes: u64,
}

/// A series' samples in time order, one point per timestamp (the highest when a timestamp repeats).
pub fn points(samples: &[Sample]) -> Vec<MemoryPoint> {
    let mut out: Vec<MemoryPoint> = samples
        .iter()
        .map(|s| MemoryPoint {
            at: s.at,
            bytes: s.working_set,
        })
        .collect();
    out.sort_by_key(|p| (p.at, std::cmp::Reverse(p.bytes)));
    out.dedup_by_key(|p| p.at);
    out
}

/// The typical gap between two samples of a series; `None` with fewer than two samples.
fn median_gap(points: &[MemoryPoint]) -> Option<Duration> {
    let mut gaps: Vec<Duration> = points
        .windows(2)
        .filter_map(|w| (w[1].at - w[0].at).to_std().ok())
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort();
    Some(gaps[gaps.len() / 2])
}

/// The highest working set across `series` at every time any of them was sampled. A pod counts at
/// time `t` with its latest sample at or before `t`, unless that sample is older than twice its
/// own sampling gap (or twice `interval`), so pods sampled at different instants still combine and
/// a pod that went away stops counting.
pub fn max_over_pods(series: &[&ContainerSeries], interval: Duration) -> Vec<MemoryPoint> {
    let pods: Vec<(Vec<MemoryPoint>, Duration)> = series
        .iter()
        .map(|s| {
            let p = points(&s.samples);
            let gap = median_gap(&p).unwrap_or(interval).max(interval);
            (p, gap * 2)
        })
        .filter(|(p, _)| !p.is_empty())
        .collect();
    let mut times: Vec<Timestamp> = pods
        .iter()
        .flat_map(|(p, _)| p.iter().map(|x| x.at))
        .collect();
    times.sort();
    times.dedup();
    let mut cursors = vec![0usize; pods.len()];
    let mut out = Vec::with_capacity(times.len());
    for at in times {
        let mut best: Option<u64> = None;
        for ((points, stale), cursor) in pods.iter().zip(cursors.iter_mut()) {
            while *cursor + 1 < points.len() && points[*cursor + 1].at <= at {
                *cursor += 1;
            }
            let p = points[*cursor];
            let fresh = (at - p.at).to_std().is_ok_and(|age| age <= *stale);
            if p.at <= at && fresh {
                best = Some(best.map_or(p.bytes, |b| b.max(p.bytes)));
            }
        }
        if let Some(bytes) = best {
            out.push(MemoryPoint { at, bytes });
        }
    }
    out
}

/// At most `max` points: the series is cut into `max / 2` buckets of consecutive points and each
/// keeps its lowest and highest point, in time order. Shorter series come back unchanged.
pub fn downsample(points: Vec<MemoryPoint>, max: usize) -> Vec<MemoryPoint> {
    let buckets = (max / 2).max(1);
    if points.len() <= max.max(1) {
        return points;
    }
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(2 * buckets);
    for chunk in points.chunks(size) {
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.bytes < chunk[lo].bytes {
                lo = i;
            }
            if p.bytes > chunk[hi].bytes {
                hi = i;
            }
        }
        out.push(chunk[lo.min(hi)]);
        if lo != hi {
            out.push(chunk[lo.max(hi)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::{flat_samples, series, spike, t, GIB, MIB};

    #[test]
    fn the_max_over_pods_takes_each_time_the_highest_pod() {
        let a = series("a", "app", Some(GIB), 100 * MIB);
        let mut b = series("b", "app", Some(GIB), 90 * MIB);
        spike(&mut b, t(12, 2, 0), 300 * MIB);
        let max = max_over_pods(&[&a, &b], Duration::from_secs(5));
        assert_eq!(max.len(), 73);
        assert!(max.iter().all(|p| p.bytes >= 100 * MIB));
        assert_eq!(max.iter().map(|p| p.bytes).max(), Some(300 * MIB));
        assert_eq!(max[24].at, t(12, 2, 0));
        assert_eq!(max[24].bytes, 300 * MIB);
    }

    #[test]
    fn pods_sampled_at_different_instants_combine_and_gone_pods_drop_out() {
        let a = series("a", "app", Some(GIB), 100 * MIB);
        let mut b = series("b", "app", Some(GIB), 200 * MIB);
        // b is sampled 2 s later than a, and stops at 12:01:00.
        for s in &mut b.samples {
            s.at += chrono::Duration::seconds(2);
        }
        b.samples.truncate(13);
        let max = max_over_pods(&[&a, &b], Duration::from_secs(5));
        let at = |h, m, s| max.iter().find(|p| p.at == t(h, m, s)).unwrap().bytes;
        assert_eq!(
            at(12, 0, 5),
            200 * MIB,
            "b's sample of 12:00:02 still counts"
        );
        assert_eq!(at(12, 0, 7), 200 * MIB);
        assert_eq!(at(12, 3, 0), 100 * MIB, "b is gone");
    }

    #[test]
    fn downsampling_keeps_the_extremes_and_the_bound() {
        let mut s = ContainerSeries::new("a", "app");
        s.samples = (0..10_000)
            .map(|i| Sample {
                at: t(12, 0, 0) + chrono::Duration::milliseconds(100 * i),
                working_set: (i as u64 % 97) * MIB,
            })
            .collect();
        s.samples[7777].working_set = 5 * GIB;
        s.samples[4321].working_set = 0;
        let all = points(&s.samples);
        let small = downsample(all.clone(), CHART_POINTS);
        assert!(small.len() <= CHART_POINTS, "{}", small.len());
        assert!(small.len() > CHART_POINTS / 2);
        assert!(small.windows(2).all(|w| w[0].at < w[1].at));
        assert!(small.contains(&all[7777]));
        assert_eq!(small.iter().map(|p| p.bytes).min(), Some(0));
        let short = points(&flat_samples(MIB));
        assert_eq!(downsample(short.clone(), CHART_POINTS), short);
    }
}

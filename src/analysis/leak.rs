//! Growth through a hold: for every hold long enough to judge (`policy.leak.min_hold`), after a
//! settle time (`policy.leak.settle` of the hold), a Theil–Sen line (the median of pairwise
//! slopes, robust to spikes and GC drops) is fitted through each pod's container's working set.
//! A trend counts as growing only when it is clearly positive — the 25th percentile of the
//! pairwise slopes is above zero — and the growth it amounts to over the judged part exceeds
//! both a floor of a few MiB and the noise around the line. A staircase that settles with the
//! load is flat within each hold; a garbage-collected sawtooth has pairwise slopes on both
//! sides of zero. The judge (`judge::leak`) projects growing trends to the allowed peak.

use super::{holds, median, quantile, robust_sd, samples_between, settled, MIB};
use crate::model::{LeakRule, Run, StageWindow, Timestamp};

/// At most this many pairwise slopes are computed (every pair up to 316 samples); longer series
/// use a deterministic uniform sample of pairs, so a 10 000-sample hold costs the same as a
/// 316-sample one, and the quartiles of 50 000 slopes are still well within 1 % in rank.
pub const MAX_PAIRS: usize = 50_000;

/// Fewer samples than this in the judged part of a hold give no trend.
pub const MIN_SAMPLES: usize = 5;

/// Growth over the judged part below this is never called a leak (allocator jitter).
pub const MIN_GROWTH_BYTES: f64 = 2.0 * MIB;

/// Growth must also exceed this many robust standard deviations of the noise around the line.
pub const NOISE_FACTOR: f64 = 2.0;

/// A Theil–Sen line through points `(x, y)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlopeFit {
    /// The median of the pairwise slopes (y units per x unit).
    pub slope: f64,
    /// The 25th percentile of the pairwise slopes: above zero, the growth is clearly positive.
    pub low: f64,
    /// The 75th percentile of the pairwise slopes.
    pub high: f64,
    /// The line's value at x = 0: the median of `y − slope × x`.
    pub intercept: f64,
    /// How many pairwise slopes were used.
    pub pairs: usize,
}

impl SlopeFit {
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// A deterministic pseudo-random sequence (SplitMix64) for sampling pairs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Fits a Theil–Sen line. Pairs with equal x are skipped; `None` with fewer than two distinct
/// x values. Every pair is used up to [`MAX_PAIRS`], else a fixed-seed uniform sample of pairs
/// (the result is the same on every run).
pub fn theil_sen(points: &[(f64, f64)]) -> Option<SlopeFit> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let total = n * (n - 1) / 2;
    let mut slopes = Vec::with_capacity(total.min(MAX_PAIRS));
    let mut push = |i: usize, j: usize| {
        let ((xi, yi), (xj, yj)) = (points[i], points[j]);
        let dx = xj - xi;
        if dx != 0.0 && dx.is_finite() {
            slopes.push((yj - yi) / dx);
        }
    };
    if total <= MAX_PAIRS {
        for i in 0..n {
            for j in i + 1..n {
                push(i, j);
            }
        }
    } else {
        let mut rng = SplitMix64(0x006F_6F6D_6761_7465);
        let mut drawn = 0;
        while drawn < MAX_PAIRS {
            let (i, j) = (rng.below(n), rng.below(n));
            if i != j {
                push(i.min(j), i.max(j));
                drawn += 1;
            }
        }
    }
    let pairs = slopes.len();
    let slope = quantile(&mut slopes, 0.5)?;
    let low = quantile(&mut slopes, 0.25)?;
    let high = quantile(&mut slopes, 0.75)?;
    let mut offsets: Vec<f64> = points.iter().map(|&(x, y)| y - slope * x).collect();
    let intercept = median(&mut offsets)?;
    Some(SlopeFit {
        slope,
        low,
        high,
        intercept,
        pairs,
    })
}

/// One Theil–Sen slope through several groups of points, each with its own intercept.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledFit {
    pub slope: f64,
    /// 25th percentile of the pairwise slopes.
    pub low: f64,
    /// Per group, the median of `y − slope × x`.
    pub intercepts: Vec<f64>,
}

/// Fits one slope through `groups`, pairing points only within a group (so steps between the
/// groups never count as slope) and giving each group its own intercept. At most
/// [`MAX_PAIRS`] pairs: a larger group contributes a fixed-seed uniform sample of its pairs, in
/// proportion to its share of all pairs. `None` without two distinct x values in one group.
pub fn theil_sen_pooled(groups: &[Vec<(f64, f64)>]) -> Option<PooledFit> {
    let totals: Vec<usize> = groups
        .iter()
        .map(|g| g.len() * g.len().saturating_sub(1) / 2)
        .collect();
    let all: usize = totals.iter().sum();
    let mut slopes = Vec::with_capacity(all.min(MAX_PAIRS));
    let mut rng = SplitMix64(0x006F_6F6D_6761_7465);
    for (points, &total) in groups.iter().zip(&totals) {
        let mut push = |i: usize, j: usize| {
            let ((xi, yi), (xj, yj)) = (points[i], points[j]);
            let dx = xj - xi;
            if dx != 0.0 && dx.is_finite() {
                slopes.push((yj - yi) / dx);
            }
        };
        let budget = if all <= MAX_PAIRS {
            total
        } else {
            ((total as f64 / all as f64) * MAX_PAIRS as f64).ceil() as usize
        };
        if budget >= total {
            for i in 0..points.len() {
                for j in i + 1..points.len() {
                    push(i, j);
                }
            }
        } else {
            let n = points.len();
            let mut drawn = 0;
            while drawn < budget {
                let (i, j) = (rng.below(n), rng.below(n));
                if i != j {
                    push(i.min(j), i.max(j));
                    drawn += 1;
                }
            }
        }
    }
    let slope = quantile(&mut slopes, 0.5)?;
    let low = quantile(&mut slopes, 0.25)?;
    let intercepts = groups
        .iter()
        .map(|g| {
            let mut offsets: Vec<f64> = g.iter().map(|&(x, y)| y - slope * x).collect();
            median(&mut offsets).unwrap_or(0.0)
        })
        .collect();
    Some(PooledFit {
        slope,
        low,
        intercepts,
    })
}

/// The working-set trend of one pod's container through the judged part of one hold.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldTrend {
    pub pod: String,
    pub container: String,
    pub window: StageWindow,
    /// Start of the judged part (after the settle time); it ends with the hold.
    pub from: Timestamp,
    pub samples: usize,
    /// Theil–Sen slope, bytes per second.
    pub slope: f64,
    /// 25th percentile of the pairwise slopes, bytes per second.
    pub slope_low: f64,
    /// What the slope adds up to over the judged part, bytes.
    pub growth: f64,
    /// Robust standard deviation of the working set around the line, bytes.
    pub noise: f64,
    /// The line's working set at the end of the hold, bytes.
    pub level_at_end: f64,
}

impl HoldTrend {
    /// The slope in MiB per minute.
    pub fn mib_per_min(&self) -> f64 {
        self.slope * 60.0 / MIB
    }

    /// The slope in bytes per minute.
    pub fn bytes_per_min(&self) -> f64 {
        self.slope * 60.0
    }

    /// Clearly positive and larger than the noise: see the module documentation.
    pub fn is_growing(&self) -> bool {
        self.slope > 0.0
            && self.slope_low > 0.0
            && self.growth >= MIN_GROWTH_BYTES.max(NOISE_FACTOR * self.noise)
    }

    /// Minutes after the end of the hold until the line reaches `bytes` (0 when it already
    /// has); `None` when it does not grow.
    pub fn minutes_to(&self, bytes: u64) -> Option<f64> {
        if self.slope <= 0.0 {
            return None;
        }
        let left = bytes as f64 - self.level_at_end;
        Some((left / self.slope / 60.0).max(0.0))
    }
}

/// The holds at least `rule.min_hold` long, in order.
pub fn long_holds<'a>(run: &'a Run, rule: &LeakRule) -> Vec<&'a StageWindow> {
    holds(&run.stages)
        .filter(|w| {
            (w.end - w.start)
                .to_std()
                .is_ok_and(|length| length >= rule.min_hold)
        })
        .collect()
}

/// The trend through every long hold of every pod's container that has at least
/// [`MIN_SAMPLES`] samples in the judged part. Ordered by stage, then as the run lists series.
pub fn hold_trends(run: &Run, rule: &LeakRule) -> Vec<HoldTrend> {
    let mut out = Vec::new();
    for window in long_holds(run, rule) {
        let (from, to) = settled(window, rule.settle);
        for series in &run.containers {
            let samples = samples_between(series, from, to);
            if samples.len() < MIN_SAMPLES {
                continue;
            }
            let points: Vec<(f64, f64)> = samples
                .iter()
                .map(|s| (seconds(s.at - from), s.working_set as f64))
                .collect();
            let Some(fit) = theil_sen(&points) else {
                continue;
            };
            let span = seconds(to - from);
            let residuals: Vec<f64> = points.iter().map(|&(x, y)| y - fit.at(x)).collect();
            out.push(HoldTrend {
                pod: series.pod.clone(),
                container: series.container.clone(),
                window: window.clone(),
                from,
                samples: samples.len(),
                slope: fit.slope,
                slope_low: fit.low,
                growth: fit.slope * span,
                noise: robust_sd(&residuals),
                level_at_end: fit.at(span),
            });
        }
    }
    out
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
#[path = "leak_tests.rs"]
mod tests;

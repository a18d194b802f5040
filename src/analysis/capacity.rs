//! Memory against load: per container name, each hold gives one point — its users and the
//! median working set of its settled part (the highest median across pods) — and a least-squares
//! line through the points says how much memory a user costs. With `policy.expected_peak_users`
//! the line predicts the working set at that load, with an uncertainty band from the scatter
//! around the line and within the holds; the judge (`judge::capacity`) compares it with the
//! allowed peak. Extrapolating further than [`MAX_EXTRAPOLATION`] × the highest tested load is
//! refused: the line says nothing about what happens that far out.

use super::{holds, median, robust_sd, samples_between, settled};
use crate::model::group_containers;
use crate::model::Run;
use crate::units::format_bytes_f;

/// Predictions beyond this multiple of the highest held load are refused.
pub const MAX_EXTRAPOLATION: f64 = 4.0;

/// A hold needs this many settled samples in a pod to give a point.
pub const MIN_HOLD_SAMPLES: usize = 3;

/// The band is this many standard errors wide on each side (about 95 %).
pub const BAND_SIGMAS: f64 = 2.0;

/// With three holds or more, a line explaining less of their scatter than this is no line.
pub const MIN_R_SQUARED: f64 = 0.8;

/// What the working set follows across the holds, which decides whether a per-user figure
/// means anything.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Follows {
    /// The holds' medians rise with the users by more than twice the noise and, with three
    /// holds or more, lie on the line (`r_squared` ≥ [`MIN_R_SQUARED`]; `None` with two holds,
    /// where a line always fits).
    Users { r_squared: Option<f64> },
    /// The working set grows with the requests served within the holds (a per-request trend
    /// that grows, bytes per request): a per-user figure would only say how long each hold
    /// ran.
    Requests { per_request: f64 },
    /// The holds' medians differ by less than twice the noise across the loads held: memory
    /// does not depend on the load in this range. `rise` and `noise` in bytes.
    Flat { rise: f64, noise: f64 },
    /// Three holds or more that do not lie on a line.
    NotLinear { r_squared: f64 },
}

/// One hold's point of the fit.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldLevel {
    /// 0-based stage index.
    pub stage: usize,
    pub users: u32,
    /// The highest median working set across pods, bytes.
    pub median: f64,
    /// The pod with that median.
    pub pod: String,
    /// Robust standard deviation of that pod's settled samples, bytes.
    pub spread: f64,
}

/// Working set = `intercept + per_user × users`, by least squares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearFit {
    /// Bytes at zero users.
    pub intercept: f64,
    /// Bytes per user.
    pub per_user: f64,
    /// The standard deviation used for the band: the larger of the residual standard error
    /// (with three holds or more) and the typical spread within the holds, bytes.
    pub sigma: f64,
    /// Number of points, their mean users and the users' sum of squared deviations.
    pub n: usize,
    pub mean_users: f64,
    pub sxx: f64,
    /// The share of the holds' scatter the line explains, with three holds or more.
    pub r_squared: Option<f64>,
}

/// A predicted working set with its ± band (bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub users: u32,
    pub bytes: f64,
    pub band: f64,
}

impl Prediction {
    pub fn upper(&self) -> f64 {
        self.bytes + self.band
    }
}

impl LinearFit {
    /// The working set at `users`. Where the line falls with the load, the prediction is held
    /// at the line's value at the highest point (memory is not expected to shrink with load).
    pub fn predict(&self, users: u32, highest: f64) -> Prediction {
        let x = f64::from(users);
        let line = self.intercept + self.per_user * x;
        let bytes = if self.per_user < 0.0 { highest } else { line }.max(0.0);
        let leverage = 1.0 / self.n as f64 + (x - self.mean_users).powi(2) / self.sxx;
        Prediction {
            users,
            bytes,
            band: BAND_SIGMAS * self.sigma * leverage.sqrt(),
        }
    }
}

/// One container name's points and, with two load levels at least, its fit.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityModel {
    pub container: String,
    pub levels: Vec<HoldLevel>,
    pub fit: Option<LinearFit>,
}

impl CapacityModel {
    /// The distinct user counts held, ascending.
    pub fn distinct_users(&self) -> Vec<u32> {
        let mut users: Vec<u32> = self.levels.iter().map(|l| l.users).collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// The highest load held.
    pub fn max_users(&self) -> Option<u32> {
        self.levels.iter().map(|l| l.users).max()
    }

    /// Whether `users` lies within [`MAX_EXTRAPOLATION`] × the highest load held.
    pub fn can_predict(&self, users: u32) -> bool {
        self.max_users()
            .is_some_and(|m| m > 0 && f64::from(users) <= MAX_EXTRAPOLATION * f64::from(m))
    }

    /// The fit for people: "48 MiB + 0.62 MiB/user (2 holds at 100, 200 users)"; `None`
    /// without a fit.
    pub fn describe(&self) -> Option<String> {
        let fit = self.fit?;
        let sign = if fit.per_user < 0.0 { "−" } else { "+" };
        let users: Vec<String> = self.distinct_users().iter().map(u32::to_string).collect();
        Some(format!(
            "{} {sign} {}/user ({} hold{} at {} users)",
            format_bytes_f(fit.intercept),
            format_bytes_f(fit.per_user.abs()),
            self.levels.len(),
            if self.levels.len() == 1 { "" } else { "s" },
            users.join(", ")
        ))
    }

    /// What the working set follows, given the steepest growing per-request trend of the
    /// container (`analysis::request_leak`, bytes per request); `None` without a fit.
    pub fn follows(&self, growing_per_request: Option<f64>) -> Option<Follows> {
        let fit = self.fit?;
        if let Some(per_request) = growing_per_request.filter(|r| *r > 0.0) {
            return Some(Follows::Requests { per_request });
        }
        let users = self.distinct_users();
        let span = f64::from(*users.last()? - *users.first()?);
        let rise = fit.per_user * span;
        if rise.abs() <= 2.0 * fit.sigma {
            return Some(Follows::Flat {
                rise: rise.abs(),
                noise: fit.sigma,
            });
        }
        match fit.r_squared {
            Some(r) if r < MIN_R_SQUARED => Some(Follows::NotLinear { r_squared: r }),
            r_squared => Some(Follows::Users { r_squared }),
        }
    }

    /// The prediction at `users`: `None` without a fit or beyond the extrapolation limit.
    pub fn predict(&self, users: u32) -> Option<Prediction> {
        let fit = self.fit?;
        if !self.can_predict(users) {
            return None;
        }
        let top = self.max_users()?;
        let highest = fit.intercept + fit.per_user * f64::from(top);
        Some(fit.predict(users, highest))
    }
}

/// Least squares through `(users, bytes)` points; `spread` is the typical within-hold standard
/// deviation. `None` with fewer than two distinct user counts.
pub fn fit_line(points: &[(f64, f64)], spread: f64) -> Option<LinearFit> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let per_user = sxy / sxx;
    let intercept = mean_y - per_user * mean_x;
    let ssr: f64 = points
        .iter()
        .map(|p| (p.1 - intercept - per_user * p.0).powi(2))
        .sum();
    let sst: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let residual_se = if n > 2 {
        (ssr / (n - 2) as f64).sqrt()
    } else {
        0.0
    };
    let r_squared = (n > 2).then(|| if sst > 0.0 { 1.0 - ssr / sst } else { 0.0 });
    Some(LinearFit {
        intercept,
        per_user,
        sigma: residual_se.max(spread),
        n,
        mean_users: mean_x,
        sxx,
        r_squared,
    })
}

/// The capacity model of every container name, in the order the run lists them. Every hold
/// counts, whatever its length, after `settle` (a share of the hold) is skipped.
pub fn capacity(run: &Run, settle: f64) -> Vec<CapacityModel> {
    let mut out = Vec::new();
    for group in group_containers(run) {
        let mut levels = Vec::new();
        for window in holds(&run.stages) {
            let (from, to) = settled(window, settle);
            let mut best: Option<HoldLevel> = None;
            for series in &group.series {
                let samples = samples_between(series, from, to);
                if samples.len() < MIN_HOLD_SAMPLES {
                    continue;
                }
                let values: Vec<f64> = samples.iter().map(|s| s.working_set as f64).collect();
                let Some(m) = median(&mut values.clone()) else {
                    continue;
                };
                if best.as_ref().is_none_or(|b| m > b.median) {
                    best = Some(HoldLevel {
                        stage: window.stage.index,
                        users: window.stage.to_users,
                        median: m,
                        pod: series.pod.clone(),
                        spread: robust_sd(&values),
                    });
                }
            }
            levels.extend(best);
        }
        let points: Vec<(f64, f64)> = levels
            .iter()
            .map(|l| (f64::from(l.users), l.median))
            .collect();
        let spread = if levels.is_empty() {
            0.0
        } else {
            (levels.iter().map(|l| l.spread.powi(2)).sum::<f64>() / levels.len() as f64).sqrt()
        };
        out.push(CapacityModel {
            container: group.name.to_string(),
            fit: fit_line(&points, spread),
            levels,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testdata::*;

    /// `app` following `base + per_user × users` (MiB) with ±1 MiB of noise through holds of
    /// 2 minutes at `levels`.
    fn model(levels: &[u32], base: f64, per_user: f64) -> CapacityModel {
        let (stages, seconds) = holds_at(levels);
        let users = stages.clone();
        let series = sampled("web-1", "app", Some(GIB), seconds, 1, move |s| {
            base + per_user * users_at(&users, s) + noise(s as u64)
        });
        let run = run_with(stages, vec![series]);
        let mut models = capacity(&run, 0.2);
        assert_eq!(models.len(), 1);
        models.remove(0)
    }

    #[test]
    fn a_linear_model_extrapolates_to_twice_the_highest_hold_within_five_percent() {
        let m = model(&[50, 100, 200], 50.0, 0.5);
        assert_eq!(m.distinct_users(), vec![50, 100, 200]);
        let fit = m.fit.unwrap();
        assert!((fit.intercept / MIB as f64 - 50.0).abs() < 2.0, "{fit:?}");
        assert!((fit.per_user / MIB as f64 - 0.5).abs() < 0.02, "{fit:?}");
        let p = m.predict(400).unwrap();
        let expected = 250.0 * MIB as f64;
        assert!((p.bytes - expected).abs() / expected < 0.05, "{p:?}");
        // The band is honest but not absurd: ±1 MiB noise, extrapolated 2×.
        assert!(p.band > 0.0 && p.band < 10.0 * MIB as f64, "{p:?}");
        assert!(p.upper() > p.bytes);
    }

    #[test]
    fn refuses_to_extrapolate_beyond_four_times_the_highest_hold() {
        let m = model(&[50, 100], 50.0, 0.5);
        assert!(m.fit.is_some());
        assert!(m.predict(400).is_some());
        assert!(!m.can_predict(401));
        assert_eq!(m.predict(401), None);
    }

    #[test]
    fn one_load_level_gives_no_fit() {
        let m = model(&[100], 50.0, 0.5);
        assert_eq!(m.levels.len(), 1);
        assert_eq!(m.fit, None);
        assert_eq!(m.predict(150), None);
        // Two holds at the same level are still one level.
        assert!(fit_line(&[(100.0, 1.0), (100.0, 2.0)], 0.0).is_none());
    }

    #[test]
    fn memory_that_falls_with_load_is_held_at_the_highest_point() {
        let m = model(&[50, 100], 300.0, -0.5);
        let p = m.predict(300).unwrap();
        assert!((p.bytes / MIB as f64 - 250.0).abs() < 2.0, "{p:?}");
    }

    #[test]
    fn memory_follows_users_only_when_the_holds_rise_above_the_noise_on_a_line() {
        let m = model(&[50, 100, 200], 50.0, 0.5);
        match m.follows(None) {
            Some(Follows::Users { r_squared: Some(r) }) => assert!(r > 0.99, "{r}"),
            other => panic!("{other:?}"),
        }
        // Two holds: a line always fits, so no R².
        let two = model(&[50, 100], 50.0, 0.5);
        assert_eq!(two.follows(None), Some(Follows::Users { r_squared: None }));
        // ±1 MiB of noise and 0.001 MiB per user over 150 users: flat.
        let flat = model(&[50, 100, 200], 80.0, 0.001);
        assert!(
            matches!(flat.follows(None), Some(Follows::Flat { rise, noise }) if rise < 2.0 * noise),
            "{:?}",
            flat.follows(None)
        );
        // A growing per-request trend wins over any line through the holds.
        assert_eq!(
            m.follows(Some(8192.0)),
            Some(Follows::Requests {
                per_request: 8192.0
            })
        );
        assert_eq!(model(&[100], 50.0, 0.5).follows(None), None);
    }

    #[test]
    fn holds_off_the_line_are_not_linear() {
        // 0, 120 and 10 MiB at 0, 100 and 200 users: a rise, but no line (R² well below 0.8).
        let mib = MIB as f64;
        let points = [(0.0, 0.0), (100.0, 120.0 * mib), (200.0, 10.0 * mib)];
        let fit = fit_line(&points, 0.0).unwrap();
        assert!(fit.r_squared.unwrap() < 0.2, "{fit:?}");
        let m = CapacityModel {
            container: "app".into(),
            levels: [0, 100, 200]
                .iter()
                .enumerate()
                .map(|(stage, &users)| HoldLevel {
                    stage,
                    users,
                    median: points[stage].1,
                    pod: "p".into(),
                    spread: 0.0,
                })
                .collect(),
            fit: Some(LinearFit {
                per_user: mib,
                ..fit
            }),
        };
        assert!(
            matches!(m.follows(None), Some(Follows::NotLinear { r_squared }) if r_squared < 0.2)
        );
    }

    #[test]
    fn scatter_around_the_line_widens_the_band() {
        let fit = fit_line(&[(0.0, 0.0), (100.0, 120.0), (200.0, 190.0)], 0.0).unwrap();
        assert!(fit.sigma > 10.0, "{fit:?}");
        let near = fit.predict(100, 0.0);
        let far = fit.predict(800, 0.0);
        assert!(far.band > 3.0 * near.band, "{near:?} {far:?}");
    }
}

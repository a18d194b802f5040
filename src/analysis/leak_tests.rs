//! Theil–Sen on exact and noisy lines, and the hold trends of synthetic series: a slow leak is
//! caught in a 2-minute hold, a plateauing staircase and a GC sawtooth are not.

use super::*;
use crate::analysis::testdata::*;
use crate::analysis::testdata::{GIB, MIB};
use crate::judge::fixtures::{t, window};
use crate::model::LeakRule;

#[test]
fn theil_sen_recovers_an_exact_line() {
    let points: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
    let fit = theil_sen(&points).unwrap();
    assert_eq!(fit.slope, 2.0);
    assert_eq!(fit.low, 2.0);
    assert_eq!(fit.intercept, 3.0);
    assert_eq!(fit.pairs, 190);
    assert_eq!(fit.at(10.0), 23.0);
}

#[test]
fn theil_sen_ignores_spikes_and_needs_two_distinct_x() {
    let mut points: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 10.0 + i as f64)).collect();
    points[7].1 = 1e9;
    points[20].1 = -1e9;
    let fit = theil_sen(&points).unwrap();
    assert!((fit.slope - 1.0).abs() < 0.05, "{fit:?}");
    assert!(theil_sen(&[(1.0, 2.0)]).is_none());
    assert!(theil_sen(&[(1.0, 2.0), (1.0, 5.0)]).is_none());
}

#[test]
fn theil_sen_samples_pairs_of_long_series_deterministically() {
    let points: Vec<(f64, f64)> = (0..10_000)
        .map(|i| (i as f64, 0.5 * i as f64 + 40.0 * noise(i)))
        .collect();
    let started = std::time::Instant::now();
    let a = theil_sen(&points).unwrap();
    let elapsed = started.elapsed();
    let b = theil_sen(&points).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.pairs, MAX_PAIRS);
    assert!((a.slope - 0.5).abs() < 0.01, "{a:?}");
    // Bounded work: well under a second even unoptimised.
    assert!(elapsed.as_secs_f64() < 2.0, "{elapsed:?}");
}

/// The four-stage run with one `app` container whose working set is `mib(t)`.
fn trends(mib: impl Fn(f64) -> f64) -> Vec<HoldTrend> {
    let run = run_of(vec![sampled("web-1", "app", Some(GIB), 360, 1, mib)]);
    hold_trends(&run, &LeakRule::default())
}

#[test]
fn a_two_mib_per_minute_leak_is_caught_in_a_two_minute_hold() {
    // 2 MiB/min from the start, ±1 MiB of noise, sampled every second.
    let found = trends(|s| 200.0 + 2.0 * s / 60.0 + noise(s as u64));
    assert_eq!(found.len(), 2, "both holds are judged");
    for trend in &found {
        assert!(trend.is_growing(), "{trend:?}");
        assert!((trend.mib_per_min() - 2.0).abs() < 0.2, "{trend:?}");
        assert_eq!(
            trend.samples, 97,
            "96 s after the 24 s settle, both ends included"
        );
    }
    // Hold 200 ends at 12:06 (360 s) at about 212 MiB; 819.2 MiB is ~304 min away.
    let last = &found[1];
    assert!(
        (last.level_at_end / MIB as f64 - 212.0).abs() < 1.0,
        "{last:?}"
    );
    let minutes = last.minutes_to(858_993_459).unwrap();
    assert!((270.0..340.0).contains(&minutes), "{minutes}");
    assert_eq!(last.minutes_to(100 * MIB), Some(0.0));
}

#[test]
fn a_staircase_that_settles_with_the_load_is_flat_in_each_hold() {
    // Memory follows the users (150 MiB + 1 MiB/user) with a 5 s lag, plus noise.
    let stages = crate::judge::fixtures::four_stages();
    let found = trends(|s| {
        let lagged = users_at(&stages, (s - 5.0).max(0.0));
        150.0 + lagged + noise(s as u64)
    });
    assert_eq!(found.len(), 2);
    for trend in &found {
        assert!(!trend.is_growing(), "{trend:?}");
        assert!(trend.mib_per_min().abs() < 0.3, "{trend:?}");
    }
}

#[test]
fn a_garbage_collected_sawtooth_is_not_a_leak() {
    // Rebuilds 3 MiB/s, collected back to 200 MiB every 20 s, at several phases.
    for phase in [0.0, 3.0, 7.0, 11.0, 15.0, 18.0] {
        let found = trends(|s| 200.0 + 3.0 * ((s + phase) % 20.0) + 0.5 * noise(s as u64));
        assert_eq!(found.len(), 2);
        for trend in &found {
            assert!(!trend.is_growing(), "phase {phase}: {trend:?}");
        }
    }
}

#[test]
fn a_leak_under_a_sawtooth_shows_once_it_outgrows_the_teeth() {
    // 30-minute hold; the floor rises 6 MiB/min under a 60 MiB sawtooth.
    let stages = vec![
        window(0, 0, 100, t(12, 0, 0), t(12, 1, 0)),
        window(1, 100, 100, t(12, 1, 0), t(12, 31, 0)),
    ];
    let series = sampled("web-1", "app", Some(GIB), 1860, 1, |s| {
        200.0 + 6.0 * s / 60.0 + 3.0 * (s % 20.0)
    });
    let found = hold_trends(&run_with(stages, vec![series]), &LeakRule::default());
    assert_eq!(found.len(), 1);
    assert!(found[0].is_growing(), "{:?}", found[0]);
    assert!((found[0].mib_per_min() - 6.0).abs() < 1.0, "{:?}", found[0]);
}

#[test]
fn short_holds_and_sparse_series_give_no_trend() {
    let rule = LeakRule {
        min_hold: std::time::Duration::from_secs(180),
        ..LeakRule::default()
    };
    let run = run_of(vec![sampled("web-1", "app", Some(GIB), 360, 1, |_| 100.0)]);
    assert!(long_holds(&run, &rule).is_empty());
    assert!(hold_trends(&run, &rule).is_empty());
    // One sample every 30 s leaves 4 in the judged 96 s of each hold: too few.
    let run = run_of(vec![sampled("web-1", "app", Some(GIB), 360, 30, |_| 100.0)]);
    assert_eq!(long_holds(&run, &LeakRule::default()).len(), 2);
    assert!(hold_trends(&run, &LeakRule::default()).is_empty());
}

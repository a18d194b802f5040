//! Unit tests of the numbers made from k6 points: counts, rates and k6-style percentiles, the
//! request name cap, merging parallel runners, and stage windows (declared, or reconstructed
//! from the `vus` timeline). Synthetic lines come from the helpers in `tests.rs`.

use std::time::Duration;

use super::tests::{point, read_str, request, sample_run, vus};
use super::*;

#[test]
fn aggregates_follow_the_points() {
    let s = summarize(
        &read_str(&sample_run(), &ReadOptions::default()).unwrap(),
        None,
    );
    assert_eq!(s.requests, 50);
    assert_eq!(s.failures, 5);
    assert!((s.failed_rate - 0.1).abs() < 1e-12);
    assert_eq!(s.status_codes.get(&500), Some(&5));
    assert_eq!(s.status_codes.get(&200), Some(&45));
    let order = s.per_request.iter().find(|r| r.name == "order").unwrap();
    assert_eq!(order.requests, 17);
    assert_eq!(s.duration.count, 50);
    assert!((s.duration.avg_ms - (1.0 + 24.5 * 0.5)).abs() < 1e-9);
    assert_eq!(s.duration.min_ms, 1.0);
    assert_eq!(s.duration.max_ms, 25.5);
    assert_eq!(s.max_vus, 10);
    // 50 requests between 10:00:00.0 and 10:00:09.4
    assert!((s.rps - 50.0 / 9.4).abs() < 1e-9);
    let ls = s.load_stats();
    assert_eq!(ls.driver, "k6");
    assert_eq!(ls.latency_measure, LATENCY_MEASURE);
    assert_eq!((ls.requests, ls.failures), (50, 5));
    assert_eq!(ls.per_request.len(), 2);
}

#[test]
fn percentiles_interpolate_like_k6() {
    // k6: sorted values, i = p × (n − 1), linear between neighbours.
    let values: Vec<f64> = (0..1001)
        .map(|i| 0.05 + (i as f64).powf(1.7) * 0.013)
        .collect();
    let mut text = String::new();
    for (i, v) in values.iter().enumerate() {
        text.push_str(&point(
            "http_req_duration",
            &format!("2026-11-28T10:00:{:02}Z", i % 60),
            *v,
            "a",
            "200",
        ));
        text.push('\n');
    }
    let s = summarize(&read_str(&text, &ReadOptions::default()).unwrap(), None);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let k6 = |p: f64| {
        let i = p * (sorted.len() - 1) as f64;
        let (lo, hi) = (i.floor() as usize, i.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo as f64)
    };
    for (got, p) in [
        (s.duration.med_ms, 0.5),
        (s.duration.p90_ms, 0.9),
        (s.duration.p95_ms, 0.95),
        (s.duration.p99_ms, 0.99),
    ] {
        let want = k6(p);
        assert!((got - want).abs() / want < 0.001, "p{p}: {got} vs {want}");
    }
    assert_eq!(s.duration.max_ms, *sorted.last().unwrap());
}

#[test]
fn request_names_are_capped() {
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&request("2026-11-28T10:00:00Z", 1.0, &format!("n{i}"), 200));
    }
    let opts = ReadOptions {
        max_request_names: 4,
        ..ReadOptions::default()
    };
    let s = summarize(&read_str(&text, &opts).unwrap(), None);
    assert_eq!(s.per_request.len(), 5);
    let other = s.per_request.iter().find(|r| r.name == OTHER_NAME).unwrap();
    assert_eq!(other.requests, 6);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("distinct request names")));
}

#[test]
fn parallel_runners_add_up() {
    let a = read_str(&sample_run(), &ReadOptions::default()).unwrap();
    let mut b = read_str(&sample_run(), &ReadOptions::default()).unwrap();
    b.merge_runner(a);
    let s = summarize(&b, None);
    assert_eq!(s.requests, 100);
    assert_eq!(s.max_vus, 20);
    assert_eq!(s.duration.count, 100);
}

#[test]
fn declared_stages_start_at_the_first_point() {
    let s = summarize(
        &read_str(&sample_run(), &ReadOptions::default()).unwrap(),
        Some(&[(Duration::from_secs(4), 5), (Duration::from_secs(6), 5)]),
    );
    assert_eq!(s.stage_origin, StageOrigin::Declared);
    assert_eq!(s.stages.len(), 2);
    assert_eq!(Some(s.stages[0].window.start), s.first_point);
    assert_eq!(s.stages[0].window.stage.from_users, 0);
    assert_eq!(s.stages[1].window.stage.from_users, 5);
    assert_eq!(s.stages.iter().map(|st| st.requests).sum::<u64>(), 50);
    assert_eq!(s.stages[0].requests, 20); // 5 a second for 4 s
}

fn timeline(values: &[u32]) -> String {
    let mut s = String::new();
    for (i, v) in values.iter().enumerate() {
        let t = format!("2026-11-28T10:{:02}:{:02}.5Z", i / 60, i % 60);
        s.push_str(&vus(&t, *v));
        s.push_str(&request(&t, 1.0, "a", 200));
    }
    s
}

fn shape(s: &K6Summary) -> Vec<(u32, u32, u64)> {
    s.stages
        .iter()
        .map(|st| {
            let w = &st.window;
            (
                w.stage.from_users,
                w.stage.to_users,
                w.stage.duration.as_secs(),
            )
        })
        .collect()
}

#[test]
fn stages_are_reconstructed_from_vus() {
    // ramp 0→10 over 10 s, hold 20 s, ramp down over 10 s
    let mut v: Vec<u32> = (1..=10).collect();
    v.extend(std::iter::repeat_n(10, 20));
    v.extend((0..10).rev());
    let s = summarize(
        &read_str(&timeline(&v), &ReadOptions::default()).unwrap(),
        None,
    );
    assert_eq!(s.stage_origin, StageOrigin::Reconstructed);
    assert_eq!(shape(&s), vec![(0, 10, 8), (10, 10, 20), (10, 0, 10)]);
    assert_eq!(s.stages.iter().map(|st| st.requests).sum::<u64>(), 40);
    assert_eq!(s.stages[1].max_vus, 10);

    // constant VUs: one hold
    let s = summarize(
        &read_str(&timeline(&[5; 30]), &ReadOptions::default()).unwrap(),
        None,
    );
    assert_eq!(shape(&s), vec![(5, 5, 29)]);

    // a slow ramp with plateaus stays one ramp; a spike without hold turns
    let v = [1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 2, 6, 9, 6, 2, 0];
    let s = summarize(
        &read_str(&timeline(&v), &ReadOptions::default()).unwrap(),
        None,
    );
    let sh = shape(&s);
    assert_eq!(sh[0].0, 0);
    assert_eq!(sh[0].1, 4);
    assert_eq!(sh[1].0, 4);
    assert_eq!(sh[1].1, 4);
    assert!(sh.iter().any(|&(f, t, _)| f < 9 && t == 9), "{sh:?}");
    assert_eq!(sh.last().unwrap().1, 0);
}

//! Stages → plans. Scenario stages follow k6 (move linearly to `users` over `duration`; the same
//! users as before is a hold). Goose plans steps the same way but in whole seconds, and a plan
//! that does not end at 0 users holds its last step forever, so a stop step is appended.
//! The real start and end of each stage are read back from Goose's history. `how_much_ran`
//! words how much of a plan a load that ended early applied.

use crate::model::{Stage, StageWindow, Timestamp};

/// The `--test-plan` string Goose reads: `users,secs` steps joined by `;`, ending at 0 users.
pub fn goose_test_plan(stages: &[Stage]) -> String {
    let mut steps: Vec<String> = stages
        .iter()
        .map(|s| format!("{},{}s", s.to_users, s.duration.as_secs()))
        .collect();
    if stages.last().is_none_or(|s| s.to_users != 0) {
        steps.push("0,0s".to_string());
    }
    steps.join(";")
}

/// Pair the planned stages with the starts Goose recorded: `starts[i]` is when stage i began;
/// `finished` is when the attack ended. Stages that never began are left out; the stage running
/// when the attack ended early ends at `finished`.
pub fn stage_windows(
    stages: &[Stage],
    starts: &[Timestamp],
    finished: Timestamp,
) -> Vec<StageWindow> {
    stages
        .iter()
        .zip(starts.iter().enumerate())
        .map(|(stage, (i, &start))| StageWindow {
            stage: stage.clone(),
            start,
            end: starts.get(i + 1).copied().unwrap_or(finished).max(start),
        })
        .collect()
}

/// `windows` (the stages that began) followed by the planned stages after them that never
/// began, laid out one after the other from `next` (where the last begun one was planned to
/// end): the judge counts them as never started, the report still lists the whole plan.
pub fn with_unstarted(
    stages: &[Stage],
    mut windows: Vec<StageWindow>,
    mut next: Timestamp,
) -> Vec<StageWindow> {
    for stage in stages.iter().skip(windows.len()) {
        let end = next + chrono::Duration::from_std(stage.duration).unwrap_or_default();
        windows.push(StageWindow {
            stage: stage.clone(),
            start: next,
            end,
        });
        next = end;
    }
    windows
}

/// Seconds for people: one decimal under 100 s without a trailing `.0` ("3.1 s", "12 s"),
/// the unit format above.
pub fn seconds(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 100.0 {
        let text = format!("{secs:.1}");
        format!("{} s", text.strip_suffix(".0").unwrap_or(&text))
    } else {
        crate::units::format_duration(std::time::Duration::from_secs(d.as_secs()))
    }
}

/// "k6 stopped after 3.1 s of a 12 s plan" (`planned` zero: the script's own plan, "k6 stopped
/// after 3.1 s"): how long the load ran, from when its first stage began (`began`) to when it
/// ended.
pub fn how_much_ran(
    driver: &str,
    planned: std::time::Duration,
    began: Timestamp,
    ended: Timestamp,
) -> String {
    format!("{driver} stopped after {}", ran_of(planned, began, ended))
}

/// "3.1 s of a 12 s plan", or "3.1 s" without a declared plan.
pub fn ran_of(planned: std::time::Duration, began: Timestamp, ended: Timestamp) -> String {
    let ran = (ended - began).to_std().unwrap_or_default();
    if planned.is_zero() {
        seconds(ran)
    } else {
        format!(
            "{} of a {} plan",
            seconds(ran.min(planned)),
            seconds(planned)
        )
    }
}

/// The share of `planned` that a load running from `began` to `ended` left unapplied, when it
/// is more than the slack a tool needs to start and stop (the larger of 2 s and 5 % of the plan):
/// the load stopped early even though nobody said so.
pub fn fell_short(
    planned: std::time::Duration,
    began: Timestamp,
    ended: Timestamp,
) -> Option<std::time::Duration> {
    if planned.is_zero() {
        return None;
    }
    let ran = (ended - began).to_std().unwrap_or_default();
    let slack = std::time::Duration::from_secs(2).max(planned.mul_f64(0.05));
    let short = planned.saturating_sub(ran);
    (short > slack).then_some(short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration as CDuration, TimeZone, Utc};
    use std::time::Duration;

    fn stages(spec: &[(u64, u32)]) -> Vec<Stage> {
        let mut prev = 0;
        spec.iter()
            .enumerate()
            .map(|(i, &(secs, users))| {
                let s = Stage {
                    index: i,
                    from_users: prev,
                    to_users: users,
                    duration: Duration::from_secs(secs),
                };
                prev = users;
                s
            })
            .collect()
    }

    #[test]
    fn appends_a_stop_step() {
        assert_eq!(
            goose_test_plan(&stages(&[(120, 100), (300, 100), (120, 200), (300, 200)])),
            "100,120s;100,300s;200,120s;200,300s;0,0s"
        );
        assert_eq!(goose_test_plan(&stages(&[(5, 10), (5, 0)])), "10,5s;0,5s");
    }

    #[test]
    fn windows_follow_the_recorded_starts() {
        let st = stages(&[(5, 10), (10, 10), (5, 0)]);
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let starts = [t0, t0 + CDuration::seconds(5), t0 + CDuration::seconds(15)];
        let w = stage_windows(&st, &starts, t0 + CDuration::seconds(20));
        assert_eq!(w.len(), 3);
        assert_eq!(w[1].start, t0 + CDuration::seconds(5));
        assert_eq!(w[1].end, t0 + CDuration::seconds(15));
        assert_eq!(w[2].end, t0 + CDuration::seconds(20));
        // Ended early in stage 2: only two windows, the second cut at the end.
        let w = stage_windows(&st, &starts[..2], t0 + CDuration::seconds(7));
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].end, t0 + CDuration::seconds(7));
    }

    #[test]
    fn says_how_much_of_the_plan_ran() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let plan = Duration::from_secs(12);
        assert_eq!(
            how_much_ran("k6", plan, t0, t0 + CDuration::milliseconds(3100)),
            "k6 stopped after 3.1 s of a 12 s plan"
        );
        assert_eq!(
            how_much_ran("goose", Duration::ZERO, t0, t0 + CDuration::seconds(4)),
            "goose stopped after 4 s"
        );
        assert_eq!(
            how_much_ran(
                "k6",
                Duration::from_secs(900),
                t0,
                t0 + CDuration::seconds(200)
            ),
            "k6 stopped after 3m20s of a 15m plan"
        );
        assert_eq!(
            fell_short(plan, t0, t0 + CDuration::milliseconds(3100)),
            Some(Duration::from_millis(8900))
        );
        assert_eq!(
            fell_short(plan, t0, t0 + CDuration::milliseconds(11_000)),
            None
        );
        assert_eq!(fell_short(Duration::ZERO, t0, t0), None);
    }

    #[test]
    fn stages_that_never_began_keep_their_planned_times() {
        let st = stages(&[(5, 10), (10, 10), (5, 0)]);
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let begun = stage_windows(&st, &[t0], t0 + CDuration::seconds(3));
        let all = with_unstarted(&st, begun, t0 + CDuration::seconds(5));
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].end, t0 + CDuration::seconds(3));
        assert_eq!(all[1].start, t0 + CDuration::seconds(5));
        assert_eq!(all[2].end, t0 + CDuration::seconds(20));
    }
}

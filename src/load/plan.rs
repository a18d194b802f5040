//! Stages → plans. Scenario stages follow k6 (move linearly to `users` over `duration`; the same
//! users as before is a hold). Goose plans steps the same way but in whole seconds, and a plan
//! that does not end at 0 users holds its last step forever, so a stop step is appended.
//! The real start and end of each stage are read back from Goose's history.

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
}

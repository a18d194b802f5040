//! Coverage of one (pod, container), tick by tick: the sampler tells each series' [`Tally`]
//! what every sampling tick brought it while its pod ran (a fresh sample, the same sample again,
//! or nothing and why), and the tally turns that into a [`SeriesCoverage`]: ticks counted,
//! ticks covered, and the uncovered stretches with their causes. A repeated sample is covered
//! while the source could simply not have published a newer one yet: the repeats since the
//! last fresh sample are held back until the series moves on, then covered when they lasted no
//! longer than twice the source's resolution (plus a second of jitter), else counted as a
//! stuck timestamp. Pure bookkeeping over plain data; the sampler owns one tally per series.

use chrono::Duration;

use crate::model::{CoverageGap, GapCause, SeriesCoverage, Timestamp};

/// Jitter allowed on top of twice the resolution before repeats count as a stuck timestamp.
const STUCK_SLACK: Duration = Duration::seconds(1);

/// What one tick brought one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickState {
    /// A sample with a timestamp not seen before.
    Fresh,
    /// A sample already seen (the same timestamp as an earlier one).
    Repeat { stamp: Timestamp },
    /// Nothing usable, and why.
    Missing(GapCause),
}

/// Repeats since the last fresh sample, not yet judged.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Timestamp,
    last: Timestamp,
    ticks: u64,
    stamp: Timestamp,
}

/// The tick-by-tick account of one series.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    since: Option<Timestamp>,
    ticks: u64,
    covered: u64,
    gaps: Vec<CoverageGap>,
    /// Whether a covered tick came after the last gap (so the next gap starts a new stretch).
    covered_after_gap: bool,
    pending: Option<Pending>,
    last_fresh_received: Option<Timestamp>,
    /// The pod went away: no more ticks are counted.
    pub gone: bool,
}

impl Tally {
    /// Count one tick received at `at`; `resolution` is the source's current estimate.
    pub fn tick(&mut self, at: Timestamp, state: TickState, resolution: Duration) {
        if self.gone {
            return;
        }
        self.since.get_or_insert(at);
        self.ticks += 1;
        match state {
            TickState::Fresh => {
                self.settle(resolution);
                self.cover(1);
                self.last_fresh_received = Some(at);
            }
            TickState::Repeat { stamp } => match &mut self.pending {
                Some(p) => {
                    p.last = at;
                    p.ticks += 1;
                }
                None => {
                    self.pending = Some(Pending {
                        first: at,
                        last: at,
                        ticks: 1,
                        stamp,
                    })
                }
            },
            TickState::Missing(cause) => {
                self.settle(resolution);
                self.gap(at, at, 1, cause);
            }
        }
    }

    /// Judge the held-back repeats: covered when the old sample was still the source's newest
    /// one could expect, else a stuck timestamp.
    fn settle(&mut self, resolution: Duration) {
        let Some(p) = self.pending.take() else { return };
        let since = self.last_fresh_received.unwrap_or(p.first);
        if p.last - since <= resolution * 2 + STUCK_SLACK {
            self.cover(p.ticks);
        } else {
            self.gap(p.first, p.last, p.ticks, GapCause::Stuck { stamp: p.stamp });
        }
    }

    fn cover(&mut self, ticks: u64) {
        self.covered += ticks;
        self.covered_after_gap = true;
    }

    fn gap(&mut self, from: Timestamp, to: Timestamp, ticks: u64, cause: GapCause) {
        match self.gaps.last_mut() {
            Some(g) if !self.covered_after_gap && g.cause == cause => {
                g.to = to;
                g.ticks += ticks;
            }
            _ => self.gaps.push(CoverageGap {
                from,
                to,
                ticks,
                cause,
            }),
        }
        self.covered_after_gap = false;
    }

    /// The account so far (repeats still held back are judged with `resolution`); `None` when
    /// no tick was ever counted.
    pub fn finish(&self, resolution: Duration, restamped: u64) -> Option<SeriesCoverage> {
        let mut t = self.clone();
        t.settle(resolution);
        Some(SeriesCoverage {
            since: t.since?,
            ticks: t.ticks,
            covered: t.covered,
            gaps: t.gaps,
            restamped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(sec: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(sec)
    }

    const RES: Duration = Duration::seconds(15);

    #[test]
    fn repeats_within_two_resolutions_are_covered() {
        // metrics-server at 15 s read every 5 s: fresh, repeat, repeat, fresh, …
        let mut t = Tally::default();
        for tick in 0..12 {
            let state = if tick % 3 == 0 {
                TickState::Fresh
            } else {
                TickState::Repeat {
                    stamp: at(tick / 3 * 15),
                }
            };
            t.tick(at(tick * 5), state, RES);
        }
        let c = t.finish(RES, 0).unwrap();
        assert_eq!((c.ticks, c.covered), (12, 12));
        assert!(c.gaps.is_empty());
        assert_eq!(c.since, at(0));
    }

    #[test]
    fn a_stamp_stuck_for_longer_than_two_resolutions_is_not_covered() {
        let mut t = Tally::default();
        t.tick(at(0), TickState::Fresh, RES);
        for tick in 1..=10 {
            t.tick(at(tick * 5), TickState::Repeat { stamp: at(0) }, RES);
        }
        t.tick(at(55), TickState::Fresh, RES);
        let c = t.finish(RES, 0).unwrap();
        assert_eq!((c.ticks, c.covered), (12, 2));
        assert_eq!(
            c.gaps,
            vec![CoverageGap {
                from: at(5),
                to: at(50),
                ticks: 10,
                cause: GapCause::Stuck { stamp: at(0) },
            }]
        );
        // Still stuck when the run ends: judged at the end.
        let mut t = Tally::default();
        t.tick(at(0), TickState::Fresh, RES);
        for tick in 1..=10 {
            t.tick(at(tick * 5), TickState::Repeat { stamp: at(0) }, RES);
        }
        assert_eq!(t.finish(RES, 0).unwrap().covered, 1);
    }

    #[test]
    fn consecutive_missing_ticks_merge_into_one_gap_per_cause() {
        let mut t = Tally::default();
        t.tick(at(0), TickState::Missing(GapCause::Absent), RES);
        t.tick(at(1), TickState::Missing(GapCause::Absent), RES);
        t.tick(at(2), TickState::Missing(GapCause::ReadFailed), RES);
        t.tick(at(3), TickState::Fresh, RES);
        t.tick(at(4), TickState::Missing(GapCause::Absent), RES);
        let c = t.finish(RES, 0).unwrap();
        let spans: Vec<_> = c
            .gaps
            .iter()
            .map(|g| (g.from, g.to, g.ticks, g.cause.clone()))
            .collect();
        assert_eq!(
            spans,
            vec![
                (at(0), at(1), 2, GapCause::Absent),
                (at(2), at(2), 1, GapCause::ReadFailed),
                (at(4), at(4), 1, GapCause::Absent),
            ]
        );
        assert_eq!((c.ticks, c.covered), (5, 1));
    }

    #[test]
    fn a_gone_pod_counts_no_more_ticks_and_an_unticked_series_has_no_account() {
        let mut t = Tally::default();
        assert_eq!(t.finish(RES, 0), None);
        t.tick(at(0), TickState::Fresh, RES);
        t.gone = true;
        t.tick(at(1), TickState::Missing(GapCause::Absent), RES);
        let c = t.finish(RES, 0).unwrap();
        assert_eq!((c.ticks, c.covered, c.share()), (1, 1, 1.0));
    }
}

//! Overdue-ness: a job that has not completed for longer than its `overdue_after` is overdue,
//! and the status says so loudly (a stale backup is the failure users most need to hear about,
//! and a scheduler that quietly waits for a window that never opens would hide it).
//!
//! The clock starts at the last completion, or, for a job that never completed, when the engine
//! first saw the job (so a new job is not overdue the moment it is configured). A job is overdue
//! from `start + overdue_after` on, that instant included, like due-ness. A disabled job is
//! never overdue (the user turned it off on purpose); a paused one still is, because pausing
//! does not make the data any safer. A running job stays overdue until its run completes.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A job that is overdue, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdue {
    /// `last completed (or first seen) + overdue_after`.
    pub since: Timestamp,
    /// How long it has been overdue at the instant asked about (zero at `since` itself).
    pub for_: Duration,
}

/// When the job becomes (or became) overdue; `None` when it never will: disabled,
/// `overdue_after = off`, or nothing to count from.
pub fn overdue_at(
    last_completed: Option<Timestamp>,
    first_seen: Option<Timestamp>,
    overdue_after: Option<Duration>,
    enabled: bool,
) -> Option<Timestamp> {
    if !enabled {
        return None;
    }
    let after = overdue_after?;
    let start = last_completed.or(first_seen)?;
    let after = SignedDuration::try_from(after).unwrap_or(SignedDuration::MAX);
    Some(start.checked_add(after).unwrap_or(Timestamp::MAX))
}

/// Whether the job is overdue at `now`, and since when.
pub fn overdue(
    now: Timestamp,
    last_completed: Option<Timestamp>,
    first_seen: Option<Timestamp>,
    overdue_after: Option<Duration>,
    enabled: bool,
) -> Option<Overdue> {
    let since = overdue_at(last_completed, first_seen, overdue_after, enabled)?;
    if now < since {
        return None;
    }
    let for_ = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
    Some(Overdue { since, for_ })
}

/// Remembers which overdue spell was announced, so the warning is logged once when a job
/// becomes overdue rather than at every look (the job looks at least once a minute, and the
/// status pages poll every few seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverdueWatch {
    announced: Option<Timestamp>,
}

impl OverdueWatch {
    /// Takes the current overdue-ness; answers it when it is a spell not announced yet (a new
    /// `since`: the job became overdue, or became overdue again after a completion).
    pub fn observe(&mut self, current: Option<Overdue>) -> Option<Overdue> {
        match current {
            Some(o) if self.announced != Some(o.since) => {
                self.announced = Some(o.since);
                Some(o)
            }
            Some(_) => None,
            None => {
                self.announced = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn overdue_from_the_threshold_on_that_instant_included() {
        let last = Some(ts("2026-01-01T03:00:00Z"));
        let after = Some(15 * DAY);
        assert_eq!(
            overdue(ts("2026-01-16T02:59:59Z"), last, None, after, true),
            None
        );
        assert_eq!(
            overdue(ts("2026-01-16T03:00:00Z"), last, None, after, true),
            Some(Overdue {
                since: ts("2026-01-16T03:00:00Z"),
                for_: Duration::ZERO,
            })
        );
        assert_eq!(
            overdue(ts("2026-01-17T04:00:00Z"), last, None, after, true),
            Some(Overdue {
                since: ts("2026-01-16T03:00:00Z"),
                for_: DAY + Duration::from_secs(3600),
            })
        );
    }

    #[test]
    fn the_last_completion_counts_rather_than_the_first_sighting() {
        let first_seen = Some(ts("2025-06-01T00:00:00Z"));
        let last = Some(ts("2026-01-01T00:00:00Z"));
        let now = ts("2026-01-05T00:00:00Z");
        assert_eq!(overdue(now, last, first_seen, Some(7 * DAY), true), None);
        assert_eq!(
            overdue_at(last, first_seen, Some(7 * DAY), true),
            Some(ts("2026-01-08T00:00:00Z"))
        );
    }

    #[test]
    fn a_job_never_completed_counts_from_when_it_was_first_seen() {
        let first_seen = Some(ts("2026-01-01T00:00:00Z"));
        let after = Some(15 * DAY);
        assert_eq!(
            overdue(ts("2026-01-15T23:59:59Z"), None, first_seen, after, true),
            None
        );
        assert_eq!(
            overdue(ts("2026-01-17T00:00:00Z"), None, first_seen, after, true),
            Some(Overdue {
                since: ts("2026-01-16T00:00:00Z"),
                for_: DAY,
            })
        );
        // Nothing to count from: not overdue (the engine sets first_seen, so this is only a
        // record that has not been seen by a job actor yet).
        assert_eq!(
            overdue(ts("2099-01-01T00:00:00Z"), None, None, after, true),
            None
        );
    }

    #[test]
    fn disabled_and_off_are_never_overdue() {
        let last = Some(ts("2020-01-01T00:00:00Z"));
        let now = ts("2026-01-01T00:00:00Z");
        assert_eq!(overdue(now, last, None, Some(DAY), false), None);
        assert_eq!(overdue_at(last, None, Some(DAY), false), None);
        assert_eq!(overdue(now, last, None, None, true), None);
        assert_eq!(overdue_at(last, None, None, true), None);
    }

    #[test]
    fn a_huge_overdue_after_saturates() {
        let last = Some(ts("2026-01-01T00:00:00Z"));
        assert_eq!(
            overdue_at(last, None, Some(Duration::MAX), true),
            Some(Timestamp::MAX)
        );
        assert_eq!(
            overdue(
                ts("2099-01-01T00:00:00Z"),
                last,
                None,
                Some(Duration::MAX),
                true
            ),
            None
        );
    }

    #[test]
    fn the_watch_announces_each_spell_once() {
        let mut watch = OverdueWatch::default();
        let spell = |since: &str, hours: u64| Overdue {
            since: ts(since),
            for_: Duration::from_secs(hours * 3600),
        };
        assert_eq!(watch.observe(None), None);
        let first = spell("2026-01-16T00:00:00Z", 0);
        assert_eq!(watch.observe(Some(first)), Some(first));
        // Still the same spell, an hour and a day later: nothing new to say.
        assert_eq!(watch.observe(Some(spell("2026-01-16T00:00:00Z", 1))), None);
        assert_eq!(watch.observe(Some(spell("2026-01-16T00:00:00Z", 25))), None);
        // A completion clears it; the next spell is announced again.
        assert_eq!(watch.observe(None), None);
        let second = spell("2026-02-16T00:00:00Z", 0);
        assert_eq!(watch.observe(Some(second)), Some(second));
        // A completion seen only as a new `since` (never observed as not overdue) counts too.
        let third = spell("2026-03-16T00:00:00Z", 2);
        assert_eq!(watch.observe(Some(third)), Some(third));
    }
}

//! Due-ness with anacron semantics: a job is due when `now >= last completed + frequency`; a job
//! that never completed is due at once; an unfinished run (stopped early, failed, or cut off by
//! a crash) is due at once too, because that run has not completed yet.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::record::JobRecord;

/// When the job next becomes due; `None` when it is due already whatever the time.
pub fn next_due(record: &JobRecord, frequency: Duration) -> Option<Timestamp> {
    if record.unfinished_run.is_some() {
        return None;
    }
    let last = record.last_completed?;
    let frequency = SignedDuration::try_from(frequency).unwrap_or(SignedDuration::MAX);
    Some(last.checked_add(frequency).unwrap_or(Timestamp::MAX))
}

/// Whether the job is due at `now`.
pub fn is_due(record: &JobRecord, frequency: Duration, now: Timestamp) -> bool {
    match next_due(record, frequency) {
        None => true,
        Some(due) => now >= due,
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
    fn the_first_run_is_due_at_once() {
        let record = JobRecord::default();
        assert_eq!(next_due(&record, DAY), None);
        assert!(is_due(&record, DAY, ts("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn due_a_frequency_after_the_last_completion() {
        let record = JobRecord {
            last_completed: Some(ts("2026-01-01T03:00:00Z")),
            ..JobRecord::default()
        };
        assert_eq!(next_due(&record, DAY), Some(ts("2026-01-02T03:00:00Z")));
        assert!(!is_due(&record, DAY, ts("2026-01-02T02:59:59Z")));
        assert!(is_due(&record, DAY, ts("2026-01-02T03:00:00Z")));
        // Missed while the daemon was down: due as soon as it looks again.
        assert!(is_due(&record, DAY, ts("2026-01-09T12:00:00Z")));
    }

    #[test]
    fn an_unfinished_run_is_due_even_before_the_frequency_passes() {
        let record = JobRecord {
            last_completed: Some(ts("2026-01-01T03:00:00Z")),
            unfinished_run: Some(ts("2026-01-01T22:00:00Z")),
            ..JobRecord::default()
        };
        assert!(is_due(&record, DAY * 7, ts("2026-01-02T22:00:00Z")));
    }

    #[test]
    fn a_huge_frequency_saturates() {
        let record = JobRecord {
            last_completed: Some(ts("2026-01-01T03:00:00Z")),
            ..JobRecord::default()
        };
        assert_eq!(next_due(&record, Duration::MAX), Some(Timestamp::MAX));
    }
}

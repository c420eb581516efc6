//! Retry delays after failed runs: 1 s, doubling per consecutive failure, capped at an hour. A
//! completed run resets the count (the job actor zeroes `consecutive_failures`).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::record::JobRecord;

/// The wait after the first failure; it doubles with each further one.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest wait between retries.
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// How long to wait after the `consecutive_failures`-th failure in a row (zero for none).
pub fn backoff_delay(consecutive_failures: u32) -> Duration {
    if consecutive_failures == 0 {
        return Duration::ZERO;
    }
    // 2^12 s already exceeds the cap, so larger shifts need not be computed.
    let shift = (consecutive_failures - 1).min(12);
    (BACKOFF_BASE * (1u32 << shift)).min(BACKOFF_CAP)
}

/// When a failed job may run again; `None` when it has not failed since its last completion.
pub fn retry_at(record: &JobRecord) -> Option<Timestamp> {
    if record.consecutive_failures == 0 {
        return None;
    }
    let failed_at = record.last_error.as_ref()?.at;
    let delay =
        SignedDuration::try_from(backoff_delay(record.consecutive_failures)).expect("the cap fits");
    Some(failed_at.checked_add(delay).unwrap_or(Timestamp::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::LastError;

    #[test]
    fn doubles_from_one_second_to_an_hour() {
        let delays: Vec<u64> = (0..15).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(
            delays,
            [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
        );
        assert_eq!(backoff_delay(u32::MAX), BACKOFF_CAP);
    }

    #[test]
    fn retry_follows_the_last_failure() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut record = JobRecord {
            consecutive_failures: 3,
            last_error: Some(LastError {
                at,
                message: "boom".into(),
            }),
            ..JobRecord::default()
        };
        assert_eq!(
            retry_at(&record),
            Some("2026-01-01T00:00:04Z".parse().unwrap())
        );
        record.consecutive_failures = 0;
        assert_eq!(retry_at(&record), None);
    }
}

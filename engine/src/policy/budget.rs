//! Admission of byte and CPU requests. This release is the pass-through policy: everything is
//! admitted at once. The budget actor already asks these functions, so real limits (rates by
//! time of day, per-server caps, CPU shares) only change this module.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tahoe_jobs_config::BudgetSettings;

use crate::budget::ByteRequest;

/// The answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Now,
    /// Ask again after this long.
    After(Duration),
}

/// May `job` move these bytes now?
pub fn admit_bytes(
    _settings: &BudgetSettings,
    _job: &str,
    _request: &ByteRequest,
    _now: Timestamp,
    _tz: &TimeZone,
) -> Admission {
    Admission::Now
}

/// May `job` go on using the CPU now?
pub fn admit_cpu(_settings: &BudgetSettings, _job: &str, _now: Timestamp) -> Admission {
    Admission::Now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_admits_everything() {
        let settings = BudgetSettings::default();
        let now = Timestamp::UNIX_EPOCH;
        let request = ByteRequest::upload(u64::MAX);
        assert_eq!(
            admit_bytes(&settings, "j", &request, now, &TimeZone::UTC),
            Admission::Now
        );
        assert_eq!(admit_cpu(&settings, "j", now), Admission::Now);
    }
}

//! The budget actor's rules: which limits are in force at an instant, given the configured
//! `[budget]`, every job's own limits, the live overrides and the names destinations are also
//! known by; and when to look again. The arithmetic of each limit is
//! [`crate::limits::limits_at`]; this module only assembles its inputs, so the actor is left
//! with messages and a timer.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tahoe_jobs_config::{BudgetSettings, JobLimits};

use crate::limits::policy::resolve_destinations;
use crate::limits::{limits_at, LimitsNow, Overrides};
use crate::overrides::LiveOverrides;

/// The shortest wait before the next evaluation. Schedules always change after the instant they
/// are evaluated at; this floor only keeps a timer of zero from spinning if one ever did not.
pub const MIN_EVALUATION_INTERVAL: Duration = Duration::from_millis(1);

/// The limits in force at `now`. `jobs` holds each job's own limits by job id, with the job's
/// live overrides already applied (the supervisor applies them, as for the rest of the job's
/// configuration); `overrides` supplies the live `[budget]` values. `aliases` maps a name a
/// limit may be written with (a nickname) to the destination id the limiters count under.
pub fn limits_in_force(
    now: Timestamp,
    tz: &TimeZone,
    configured: &BudgetSettings,
    overrides: &LiveOverrides,
    jobs: &BTreeMap<String, JobLimits>,
    aliases: &BTreeMap<String, String>,
) -> LimitsNow {
    let budget = overrides.apply_budget(configured);
    let mut limits = limits_at(now, tz, &budget, jobs, &Overrides::default());
    if !aliases.is_empty() {
        limits.destinations = resolve_destinations(&limits.destinations, aliases);
    }
    limits
}

/// How long to wait from `now` before evaluating `limits` again: until their next boundary, at
/// most a minute.
pub fn evaluation_delay(limits: &LimitsNow, now: Timestamp) -> Duration {
    limits.sleep_from(now).max(MIN_EVALUATION_INTERVAL)
}

/// Whether two evaluations put the same limits in force (when they were made and the next
/// boundary aside): only a change is worth a log line.
pub fn same_limits(a: &LimitsNow, b: &LimitsNow) -> bool {
    a.total == b.total && a.cpu == b.cpu && a.jobs == b.jobs && a.destinations == b.destinations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overrides::OverrideTarget;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn jobs() -> BTreeMap<String, JobLimits> {
        let limits = JobLimits {
            bandwidth: "50%".parse().unwrap(),
            cpu: "25%".parse().unwrap(),
        };
        [("backup.home".to_string(), limits)].into()
    }

    fn configured() -> BudgetSettings {
        BudgetSettings {
            upload: "0800-2300 16KiB/s, 2300-0800 off".parse().unwrap(),
            ..BudgetSettings::default()
        }
    }

    #[test]
    fn a_job_percentage_follows_the_total_in_force() {
        let none = BTreeMap::new();
        let live = LiveOverrides::default();
        let day = ts("2026-11-26T12:00:00Z");
        let l = limits_in_force(day, &TimeZone::UTC, &configured(), &live, &jobs(), &none);
        assert_eq!(l.total.upload, Some(16 * 1024));
        assert_eq!(l.job("backup.home").upload, Some(8 * 1024));
        assert_eq!(l.cpu_for("backup.home"), Some(0.25));
        let night = ts("2026-11-26T23:00:00Z");
        let l = limits_in_force(night, &TimeZone::UTC, &configured(), &live, &jobs(), &none);
        assert_eq!(l.job("backup.home").upload, None);
    }

    #[test]
    fn live_budget_overrides_apply_above_the_configuration() {
        let mut live = LiveOverrides::default();
        let now = ts("2026-11-26T12:00:00Z");
        live.set(&OverrideTarget::Budget, "upload", Some("64KiB/s"), now)
            .unwrap();
        live.set(
            &OverrideTarget::Budget,
            "server.parents.upload",
            Some("8KiB/s"),
            now,
        )
        .unwrap();
        let aliases = [("parents".to_string(), "v0-abc".to_string())].into();
        let l = limits_in_force(now, &TimeZone::UTC, &configured(), &live, &jobs(), &aliases);
        assert_eq!(l.total.upload, Some(64 * 1024));
        assert_eq!(l.job("backup.home").upload, Some(32 * 1024));
        assert_eq!(l.destination("v0-abc").upload, Some(8 * 1024));
        assert!(!l.destinations.contains_key("parents"));
        // Nothing follows the time of day any more: look again in a minute.
        assert_eq!(evaluation_delay(&l, now), Duration::from_secs(60));
    }

    #[test]
    fn the_next_evaluation_is_the_boundary() {
        let none = BTreeMap::new();
        let live = LiveOverrides::default();
        let now = ts("2026-11-26T22:59:30Z");
        let l = limits_in_force(now, &TimeZone::UTC, &configured(), &live, &jobs(), &none);
        assert_eq!(evaluation_delay(&l, now), Duration::from_secs(30));
        assert_eq!(
            evaluation_delay(&l, ts("2026-11-26T23:00:00Z")),
            MIN_EVALUATION_INTERVAL
        );
        let later = limits_in_force(
            ts("2026-11-26T22:59:40Z"),
            &TimeZone::UTC,
            &configured(),
            &live,
            &jobs(),
            &none,
        );
        assert!(same_limits(&l, &later));
        let after = limits_in_force(
            ts("2026-11-26T23:00:00Z"),
            &TimeZone::UTC,
            &configured(),
            &live,
            &jobs(),
            &none,
        );
        assert!(!same_limits(&l, &after));
    }
}

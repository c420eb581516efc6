//! Which limits are in force at an instant: pure functions of the configured budget, each job's
//! limits, live overrides from the control API and the time zone.
//!
//! Percentages resolve against the total of the same direction in force at the same instant: a
//! job's `50%` is half of `[budget] upload` for its uploads and half of `[budget] download` for its
//! downloads, and no limit when that total is `off`. The caller re-evaluates at
//! [`LimitsNow::next_evaluation`], which is the next schedule boundary, so a change at 23:00 takes
//! effect at 23:00 and not at the next poll, and at least every [`MAX_EVALUATION_INTERVAL`] to
//! absorb clock jumps and time-zone changes.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tahoe_jobs_config::{BudgetSettings, JobLimits, RateNow, RateSchedule};

/// The longest the caller should wait before evaluating the limits again.
pub const MAX_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

/// Limits changed live through the control API; they replace the configured ones until cleared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Replaces `[budget]` as a whole.
    pub budget: Option<BudgetSettings>,
    /// Replaces a job's `bandwidth` and `cpu`, by job id.
    pub jobs: BTreeMap<String, JobLimits>,
}

/// An upload and a download limit in bytes per second; `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PairLimits {
    /// Upload limit, bytes per second; `None` means no limit.
    pub upload: Option<u64>,
    /// Download limit, bytes per second; `None` means no limit.
    pub download: Option<u64>,
}

/// A job's limits now.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct JobLimitsNow {
    /// The job's upload limit, bytes per second; `None` means no limit of its own.
    pub upload: Option<u64>,
    /// The job's download limit, bytes per second; `None` means no limit of its own.
    pub download: Option<u64>,
    /// Share of one core (0.25 = 25%).
    pub cpu: Option<f64>,
}

/// Every limit in force at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitsNow {
    /// The instant the limits were evaluated for.
    pub at: Timestamp,
    /// The limits on all jobs' traffic together (`[budget] upload` and `download`).
    pub total: PairLimits,
    /// Share of one core for the engine's process and the processes it watches, together.
    pub cpu: Option<f64>,
    /// By job id; a job missing here has no limits of its own.
    pub jobs: BTreeMap<String, JobLimitsNow>,
    /// By destination, keyed as configured (see [`resolve_destinations`]).
    pub destinations: BTreeMap<String, PairLimits>,
    /// The next instant any schedule above changes, if one ever does.
    pub next_change: Option<Timestamp>,
}

impl LimitsNow {
    /// No limit anywhere, never changing.
    pub fn unlimited(at: Timestamp) -> Self {
        LimitsNow {
            at,
            total: PairLimits::default(),
            cpu: None,
            jobs: BTreeMap::new(),
            destinations: BTreeMap::new(),
            next_change: None,
        }
    }

    /// A job's limits, no limit if it has none.
    pub fn job(&self, id: &str) -> JobLimitsNow {
        self.jobs.get(id).copied().unwrap_or_default()
    }

    /// A destination's limits, no limit if it has none.
    pub fn destination(&self, id: &str) -> PairLimits {
        self.destinations.get(id).copied().unwrap_or_default()
    }

    /// The CPU limit while `job` runs: the tighter of the job's own and the total.
    pub fn cpu_for(&self, job: &str) -> Option<f64> {
        tighter(self.cpu, self.job(job).cpu)
    }

    /// When to evaluate again: the next boundary, or [`MAX_EVALUATION_INTERVAL`] from `at`.
    pub fn next_evaluation(&self) -> Timestamp {
        let cap = self
            .at
            .checked_add(SignedDuration::try_from(MAX_EVALUATION_INTERVAL).expect("60 s fits"))
            .unwrap_or(self.at);
        self.next_change.map_or(cap, |c| c.min(cap))
    }

    /// How long to sleep from `now` until [`Self::next_evaluation`] (zero if already past).
    pub fn sleep_from(&self, now: Timestamp) -> Duration {
        let d = self.next_evaluation().duration_since(now);
        Duration::try_from(d).unwrap_or(Duration::ZERO)
    }
}

/// The limits in force at `now`. `jobs` holds each configured job's own limits by job id.
pub fn limits_at(
    now: Timestamp,
    tz: &TimeZone,
    budget: &BudgetSettings,
    jobs: &BTreeMap<String, JobLimits>,
    overrides: &Overrides,
) -> LimitsNow {
    let budget = overrides.budget.as_ref().unwrap_or(budget);
    let mut next_change: Option<Timestamp> = None;
    let mut eval = |schedule: &RateSchedule| -> RateNow {
        let r = schedule.at(now, tz);
        if let Some(c) = r.next_change {
            next_change = Some(next_change.map_or(c, |n| n.min(c)));
        }
        r
    };

    let upload_now = eval(&budget.upload).rate;
    let download_now = eval(&budget.download).rate;
    // A total given as a percentage has nothing to be a percentage of: no limit.
    let total = PairLimits {
        upload: upload_now.bytes_per_second(None),
        download: download_now.bytes_per_second(None),
    };

    // The configuration only allows absolute destination limits; a percentage that slips
    // through (a live override, say) resolves like a job's rather than failing.
    let mut destinations = BTreeMap::new();
    for (id, limits) in &budget.servers {
        let up = eval(&limits.upload).rate;
        let down = eval(&limits.download).rate;
        destinations.insert(
            id.clone(),
            PairLimits {
                upload: up.bytes_per_second(total.upload),
                download: down.bytes_per_second(total.download),
            },
        );
    }

    let mut job_ids: Vec<&String> = jobs.keys().collect();
    job_ids.extend(overrides.jobs.keys().filter(|k| !jobs.contains_key(*k)));
    let mut jobs_now = BTreeMap::new();
    for id in job_ids {
        let Some(limits) = overrides.jobs.get(id).or_else(|| jobs.get(id)) else {
            continue;
        };
        let bw = eval(&limits.bandwidth).rate;
        jobs_now.insert(
            id.clone(),
            JobLimitsNow {
                upload: bw.bytes_per_second(total.upload),
                download: bw.bytes_per_second(total.download),
                cpu: limits.cpu.fraction(),
            },
        );
    }

    LimitsNow {
        at: now,
        total,
        cpu: budget.cpu.fraction(),
        jobs: jobs_now,
        destinations,
        next_change,
    }
}

/// Re-keys destination limits through `aliases` (as configured -> destination id), for limits
/// written with a name the destination is also known by. Keys without an alias stay as they are;
/// when two keys land on one destination the tighter limit wins.
pub fn resolve_destinations(
    destinations: &BTreeMap<String, PairLimits>,
    aliases: &BTreeMap<String, String>,
) -> BTreeMap<String, PairLimits> {
    let mut out: BTreeMap<String, PairLimits> = BTreeMap::new();
    for (key, limits) in destinations {
        let id = aliases.get(key).unwrap_or(key);
        out.entry(id.clone())
            .and_modify(|l| {
                l.upload = tighter(l.upload, limits.upload);
                l.download = tighter(l.download, limits.download);
            })
            .or_insert(*limits);
    }
    out
}

/// The tighter of two limits, `None` being no limit.
pub fn tighter<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y < x { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tahoe_jobs_config::{CpuShare, ServerLimits};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sched(s: &str) -> RateSchedule {
        s.parse().unwrap()
    }

    fn job(bw: &str, cpu: &str) -> JobLimits {
        JobLimits {
            bandwidth: sched(bw),
            cpu: cpu.parse().unwrap(),
        }
    }

    fn budget() -> BudgetSettings {
        let mut servers = BTreeMap::new();
        servers.insert(
            "parents".to_string(),
            ServerLimits {
                upload: sched("0700-2200 8KiB/s, off"),
                download: sched("off"),
            },
        );
        servers.insert(
            "v0-abc".to_string(),
            ServerLimits {
                upload: sched("4KiB/s"),
                download: sched("1MiB/s"),
            },
        );
        BudgetSettings {
            upload: sched("0800-2300 16KiB/s, 2300-0800 off"),
            download: sched("1MiB/s"),
            cpu: "50%".parse().unwrap(),
            servers,
        }
    }

    fn jobs() -> BTreeMap<String, JobLimits> {
        [
            ("backup.home".to_string(), job("50%", "25%")),
            ("check.all".to_string(), job("4KiB/s", "off")),
            ("backup.free".to_string(), job("off", "off")),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn daytime_limits_resolve_percentages_against_the_total_in_force() {
        let utc = TimeZone::UTC;
        let l = limits_at(
            at("2026-11-26T12:00:00Z"),
            &utc,
            &budget(),
            &jobs(),
            &Overrides::default(),
        );
        assert_eq!(l.total.upload, Some(16 * 1024));
        assert_eq!(l.total.download, Some(1024 * 1024));
        assert_eq!(l.cpu, Some(0.5));
        let home = l.job("backup.home");
        assert_eq!(home.upload, Some(8 * 1024));
        assert_eq!(home.download, Some(512 * 1024));
        assert_eq!(home.cpu, Some(0.25));
        assert_eq!(l.job("check.all").upload, Some(4096));
        assert_eq!(l.job("backup.free"), JobLimitsNow::default());
        assert_eq!(l.job("unknown.job"), JobLimitsNow::default());
        assert_eq!(l.destination("parents").upload, Some(8 * 1024));
        assert_eq!(l.destination("v0-abc").upload, Some(4 * 1024));
        assert_eq!(l.destination("v0-abc").download, Some(1024 * 1024));
        // The parents' limit ends at 22:00, before the total's 23:00.
        assert_eq!(l.next_change, Some(at("2026-11-26T22:00:00Z")));
        assert_eq!(l.next_evaluation(), at("2026-11-26T12:01:00Z"));
    }

    #[test]
    fn at_night_the_total_is_off_and_percentages_follow() {
        let utc = TimeZone::UTC;
        let l = limits_at(
            at("2026-11-26T23:30:00Z"),
            &utc,
            &budget(),
            &jobs(),
            &Overrides::default(),
        );
        assert_eq!(l.total.upload, None);
        assert_eq!(l.job("backup.home").upload, None, "50% of off is off");
        assert_eq!(l.job("check.all").upload, Some(4096));
        assert_eq!(l.destination("parents").upload, None);
        assert_eq!(l.destination("v0-abc").upload, Some(4 * 1024), "absolute");
        // Next: the parents' window opens at 07:00, before the total's at 08:00.
        assert_eq!(l.next_change, Some(at("2026-11-27T07:00:00Z")));
    }

    #[test]
    fn next_evaluation_is_the_boundary_when_it_is_near() {
        let utc = TimeZone::UTC;
        let l = limits_at(
            at("2026-11-26T21:59:30Z"),
            &utc,
            &budget(),
            &jobs(),
            &Overrides::default(),
        );
        assert_eq!(l.next_evaluation(), at("2026-11-26T22:00:00Z"));
        assert_eq!(
            l.sleep_from(at("2026-11-26T21:59:30Z")),
            Duration::from_secs(30)
        );
        assert_eq!(l.sleep_from(at("2026-11-26T22:00:05Z")), Duration::ZERO);
        // Just past the boundary the parents' limit is off.
        let after = limits_at(
            at("2026-11-26T22:00:00Z"),
            &utc,
            &budget(),
            &jobs(),
            &Overrides::default(),
        );
        assert_eq!(after.destination("parents").upload, None);
    }

    #[test]
    fn schedules_follow_the_time_zone() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        // 07:30 UTC is 08:30 in Berlin in November: the 0800-2300 window is open there.
        let l = limits_at(
            at("2026-11-26T07:30:00Z"),
            &tz,
            &budget(),
            &jobs(),
            &Overrides::default(),
        );
        assert_eq!(l.total.upload, Some(16 * 1024));
    }

    #[test]
    fn overrides_replace_configured_limits() {
        let utc = TimeZone::UTC;
        let mut overrides = Overrides::default();
        overrides
            .jobs
            .insert("backup.home".into(), job("2KiB/s", "off"));
        overrides.jobs.insert("adhoc.job".into(), job("10%", "10%"));
        let mut b = budget();
        b.upload = sched("100KiB/s");
        b.cpu = CpuShare::UNLIMITED;
        b.servers.clear();
        overrides.budget = Some(b);
        let l = limits_at(
            at("2026-11-26T12:00:00Z"),
            &utc,
            &budget(),
            &jobs(),
            &overrides,
        );
        assert_eq!(l.total.upload, Some(100 * 1024));
        assert_eq!(l.cpu, None);
        assert!(l.destinations.is_empty());
        assert_eq!(l.job("backup.home").upload, Some(2048));
        assert_eq!(l.job("backup.home").cpu, None);
        assert_eq!(l.job("adhoc.job").upload, Some(10 * 1024));
        assert_eq!(l.job("check.all").upload, Some(4096), "not overridden");
        assert_eq!(l.next_change, None, "nothing follows the time of day");
        assert_eq!(l.next_evaluation(), at("2026-11-26T12:01:00Z"));
    }

    #[test]
    fn a_percentage_total_means_no_limit() {
        let utc = TimeZone::UTC;
        let b = BudgetSettings {
            upload: sched("50%"),
            ..BudgetSettings::default()
        };
        let l = limits_at(
            at("2026-11-26T12:00:00Z"),
            &utc,
            &b,
            &jobs(),
            &Overrides::default(),
        );
        assert_eq!(l.total.upload, None);
        assert_eq!(l.job("backup.home").upload, None);
    }

    #[test]
    fn cpu_for_a_job_is_the_tighter_of_job_and_total() {
        let utc = TimeZone::UTC;
        let l = limits_at(
            at("2026-11-26T12:00:00Z"),
            &utc,
            &budget(),
            &jobs(),
            &Overrides::default(),
        );
        assert_eq!(l.cpu_for("backup.home"), Some(0.25));
        assert_eq!(l.cpu_for("check.all"), Some(0.5));
        assert_eq!(l.cpu_for("nobody"), Some(0.5));
    }

    #[test]
    fn aliases_rekey_destinations_and_the_tighter_wins() {
        let mut d = BTreeMap::new();
        d.insert(
            "parents".to_string(),
            PairLimits {
                upload: Some(100),
                download: None,
            },
        );
        d.insert(
            "v0-xyz".to_string(),
            PairLimits {
                upload: Some(500),
                download: Some(50),
            },
        );
        d.insert("other".to_string(), PairLimits::default());
        let aliases: BTreeMap<String, String> =
            [("parents".to_string(), "v0-xyz".to_string())].into();
        let r = resolve_destinations(&d, &aliases);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r["v0-xyz"],
            PairLimits {
                upload: Some(100),
                download: Some(50)
            }
        );
        assert!(r.contains_key("other"));
    }

    #[test]
    fn tighter_treats_none_as_no_limit() {
        assert_eq!(tighter(Some(3), Some(5)), Some(3));
        assert_eq!(tighter(None, Some(5)), Some(5));
        assert_eq!(tighter(Some(3), None), Some(3));
        assert_eq!(tighter::<u64>(None, None), None);
    }
}

//! How much of a run is left and when it will be done, counting only the time its windows are
//! open: "about 2 more windows, done around Sat 04:00".
//!
//! What is left comes from the previous completed run's totals (the engine and the task record
//! them as estimates); the pace is the measured recent rate of the same counter. A first run has
//! no estimate, so it has no ETA: a guess there would be worse than none.

use std::time::Duration;

use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::jiff::Timestamp;
use tahoe_jobs_config::{Eta, Windows};

/// Counters that measure a run's progress, best first: bytes walked by a backup, files walked,
/// objects checked by a check job.
pub const MEASURES: [&str; 3] = ["bytes_seen", "files_seen", "objects_checked"];

/// How far a run is, on one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    pub counter: &'static str,
    pub done: u64,
    pub total: u64,
}

impl Measure {
    pub fn left(&self) -> u64 {
        self.total.saturating_sub(self.done)
    }
}

/// The best counter that has an estimate.
pub fn measure(
    counters: &std::collections::BTreeMap<String, u64>,
    estimates: &std::collections::BTreeMap<String, u64>,
) -> Option<Measure> {
    MEASURES.iter().find_map(|&counter| {
        let total = *estimates.get(counter).filter(|t| **t > 0)?;
        Some(Measure {
            counter,
            done: counters.get(counter).copied().unwrap_or(0),
            total,
        })
    })
}

/// What is left of a counter, when it has an estimate.
pub fn left_of(
    counter: &str,
    counters: &std::collections::BTreeMap<String, u64>,
    estimates: &std::collections::BTreeMap<String, u64>,
) -> Option<u64> {
    let total = *estimates.get(counter).filter(|t| **t > 0)?;
    Some(total.saturating_sub(counters.get(counter).copied().unwrap_or(0)))
}

/// Open-window time still needed at `per_second`; `None` without a pace.
pub fn work_left(left: u64, per_second: f64) -> Option<Duration> {
    if left == 0 {
        return Some(Duration::ZERO);
    }
    if !(per_second.is_finite() && per_second > 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(left as f64 / per_second).ok()
}

/// When the work will be done. A run started with "ignore the window" is not stopped by the
/// window, so its windows do not count.
pub fn finish(
    windows: &Windows,
    ignore_windows: bool,
    now: Timestamp,
    tz: &TimeZone,
    work: Duration,
) -> Option<Eta> {
    if ignore_windows {
        return Windows::Always.finish_after(now, tz, work);
    }
    windows.finish_after(now, tz, work)
}

/// "about 2 more windows, done around Sat 04:00", "done around 14:30 in this window".
pub fn describe(eta: &Eta, windows_matter: bool, now: Timestamp, tz: &TimeZone) -> String {
    let when = format!("done around {}", short_time(eta.at, now, tz));
    if !windows_matter {
        return when;
    }
    match eta.more_windows {
        0 => format!("{when} in this window"),
        1 => format!("about 1 more window, {when}"),
        n => format!("about {n} more windows, {when}"),
    }
}

/// A time as short as it can be without ambiguity: `14:30` today, `Sat 04:00` within the
/// week, `Sat 12 Dec 04:00` further out, `2027-01-05 04:00` in another year.
pub fn short_time(at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    let at_z = at.to_zoned(tz.clone());
    let now_z = now.to_zoned(tz.clone());
    let days_ahead = (at.as_second() - now.as_second()) / 86_400;
    if at_z.date() == now_z.date() {
        at_z.strftime("%H:%M").to_string()
    } else if (-6..=6).contains(&days_ahead) {
        at_z.strftime("%a %H:%M").to_string()
    } else if at_z.year() == now_z.year() {
        at_z.strftime("%a %d %b %H:%M").to_string()
    } else {
        at_z.strftime("%Y-%m-%d %H:%M").to_string()
    }
}

/// A duration the way a person says it: `45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

/// A duration in whole words, rounded down, for sentences such as "last completed 16 days
/// ago, expected every 1 week": whole weeks read as weeks, anything from a day up as days.
pub fn long_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..=59 => (s, "second"),
        60..=3599 => (s / 60, "minute"),
        3600..=86_399 => (s / 3600, "hour"),
        _ if s.is_multiple_of(604_800) => (s / 604_800, "week"),
        _ => (s / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_best_counter_with_an_estimate_measures_progress() {
        let counters = map(&[("files_seen", 40), ("bytes_seen", 4_000)]);
        let m = measure(
            &counters,
            &map(&[("bytes_seen", 10_000), ("files_seen", 100)]),
        )
        .unwrap();
        assert_eq!(m.counter, "bytes_seen");
        assert_eq!(m.left(), 6_000);
        let m = measure(&counters, &map(&[("files_seen", 100)])).unwrap();
        assert_eq!((m.counter, m.left()), ("files_seen", 60));
        assert_eq!(measure(&counters, &BTreeMap::new()), None, "a first run");
        // Past the estimate: nothing left rather than a negative amount.
        let m = measure(&map(&[("files_seen", 140)]), &map(&[("files_seen", 100)])).unwrap();
        assert_eq!(m.left(), 0);
    }

    #[test]
    fn work_left_needs_a_pace() {
        assert_eq!(work_left(600, 10.0), Some(Duration::from_secs(60)));
        assert_eq!(work_left(0, 0.0), Some(Duration::ZERO));
        assert_eq!(work_left(600, 0.0), None);
        assert_eq!(work_left(600, f64::NAN), None);
    }

    #[test]
    fn a_long_backup_spans_several_nightly_windows() {
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let windows: Windows = "2200-0400".parse().unwrap();
        // Thursday 23:00 in Paris (22:00 UTC), 14 hours of work left: 5 h tonight, 6 h on
        // Friday night, the last 3 h on Saturday night, done Sunday 01:00.
        let now = ts("2026-01-08T22:00:00Z");
        let eta = finish(&windows, false, now, &tz, Duration::from_secs(14 * 3600)).unwrap();
        assert_eq!(eta.more_windows, 2);
        assert_eq!(
            describe(&eta, true, now, &tz),
            "about 2 more windows, done around Sun 01:00"
        );
        // Ignoring the window, the same work is done by Friday 13:00.
        let eta = finish(&windows, true, now, &tz, Duration::from_secs(14 * 3600)).unwrap();
        assert_eq!(describe(&eta, false, now, &tz), "done around Fri 13:00");
        // Within the current window.
        let eta = finish(&windows, false, now, &tz, Duration::from_secs(1800)).unwrap();
        assert_eq!(
            describe(&eta, true, now, &tz),
            "done around 23:30 in this window"
        );
        // A window that never opens never finishes.
        let never: Windows = "none".parse().unwrap();
        assert_eq!(
            finish(&never, false, now, &tz, Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn times_and_durations_read_short() {
        let tz = TimeZone::UTC;
        let now = ts("2026-01-08T10:00:00Z");
        assert_eq!(short_time(ts("2026-01-08T14:30:00Z"), now, &tz), "14:30");
        assert_eq!(
            short_time(ts("2026-01-10T04:00:00Z"), now, &tz),
            "Sat 04:00"
        );
        assert_eq!(
            short_time(ts("2026-02-10T04:00:00Z"), now, &tz),
            "Tue 10 Feb 04:00"
        );
        assert_eq!(
            short_time(ts("2027-01-05T04:00:00Z"), now, &tz),
            "2027-01-05 04:00"
        );
        assert_eq!(short_duration(Duration::from_secs(45)), "45 s");
        assert_eq!(short_duration(Duration::from_secs(720)), "12 min");
        assert_eq!(
            short_duration(Duration::from_secs(3 * 3600 + 1200)),
            "3 h 20 min"
        );
        assert_eq!(
            short_duration(Duration::from_secs(2 * 86_400 + 4 * 3600)),
            "2 d 4 h"
        );
    }

    #[test]
    fn long_durations_read_as_words() {
        let d = Duration::from_secs;
        assert_eq!(long_duration(d(1)), "1 second");
        assert_eq!(long_duration(d(119)), "1 minute");
        assert_eq!(long_duration(d(5 * 3600 + 59)), "5 hours");
        assert_eq!(long_duration(d(86_400)), "1 day");
        assert_eq!(long_duration(d(7 * 86_400)), "1 week");
        assert_eq!(long_duration(d(14 * 86_400)), "2 weeks");
        assert_eq!(long_duration(d(15 * 86_400)), "15 days");
        assert_eq!(long_duration(d(16 * 86_400 + 3600)), "16 days");
    }
}

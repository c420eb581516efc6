//! Bandwidth values (`256KiB/s`, `1MB/s`, `2Mbps`, `500kbit/s`, `off`, `50%`) and time-of-day
//! schedules of them (`0800-2300 16KiB/s, 2300-0800 off`).
//!
//! `off` means "no limit", as in rclone's `--bwlimit` timetables.

use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::windows::{parse_piece, span_text, Piece, Span, Windows};

/// What a rate may look like, for error messages.
pub const RATE_ACCEPTED: &str = "a rate such as 256KiB/s, 1MB/s, 2Mbps, 500kbit/s, off (no limit) \
or 50% (of [budget] upload), optionally by time of day: 0800-2300 16KiB/s, 2300-0800 off";

/// One limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// No limit (`off`).
    Unlimited,
    /// A fixed rate in bytes per second.
    BytesPerSecond(u64),
    /// A share of the total `[budget] upload` limit in force at the same moment.
    PercentOfTotal(f64),
}

impl Rate {
    /// Resolves a percentage against the total in force; `None` means no limit.
    pub fn bytes_per_second(self, total: Option<u64>) -> Option<u64> {
        match self {
            Rate::Unlimited => None,
            Rate::BytesPerSecond(b) => Some(b),
            Rate::PercentOfTotal(p) => total.map(|t| ((t as f64) * p / 100.0).round() as u64),
        }
    }
}

const BYTE_UNITS: [(&str, f64); 9] = [
    ("B/s", 1.0),
    ("KB/s", 1e3),
    ("kB/s", 1e3),
    ("MB/s", 1e6),
    ("GB/s", 1e9),
    ("KiB/s", 1024.0),
    ("MiB/s", 1024.0 * 1024.0),
    ("GiB/s", 1024.0 * 1024.0 * 1024.0),
    ("Bps", 1.0),
];
const BIT_UNITS: [(&str, f64); 9] = [
    ("bps", 1.0),
    ("kbps", 1e3),
    ("Kbps", 1e3),
    ("Mbps", 1e6),
    ("Gbps", 1e9),
    ("bit/s", 1.0),
    ("kbit/s", 1e3),
    ("Mbit/s", 1e6),
    ("Gbit/s", 1e9),
];

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate::Unlimited);
        }
        if let Some(number) = t.strip_suffix('%') {
            let pct: f64 = number
                .trim()
                .parse()
                .map_err(|_| format!("{number:?} is not a number"))?;
            if !pct.is_finite() || pct <= 0.0 || pct > 100.0 {
                return Err("a percentage must be more than 0% and at most 100%".into());
            }
            return Ok(Rate::PercentOfTotal(pct));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{t:?} has no unit"))?;
        let (number, unit) = t.split_at(split);
        let unit = unit.trim();
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{number:?} is not a number"))?;
        let multiplier = BYTE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m)
            .or_else(|| {
                BIT_UNITS
                    .iter()
                    .find(|(u, _)| *u == unit)
                    .map(|(_, m)| *m / 8.0)
            })
            .ok_or_else(|| format!("unknown unit {unit:?}"))?;
        let bytes = value * multiplier;
        if !bytes.is_finite() || bytes < 1.0 {
            return Err(
                "a limit must be at least 1 byte per second; write off for no limit".into(),
            );
        }
        if bytes > 1e15 {
            return Err("the rate is implausibly large; write off for no limit".into());
        }
        Ok(Rate::BytesPerSecond(bytes.round() as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Unlimited => f.write_str("off"),
            Rate::PercentOfTotal(p) => write!(f, "{p}%"),
            Rate::BytesPerSecond(b) => {
                if *b >= 1024 * 1024 && b % (1024 * 1024) == 0 {
                    write!(f, "{}MiB/s", b / (1024 * 1024))
                } else if *b >= 1024 && b % 1024 == 0 {
                    write!(f, "{}KiB/s", b / 1024)
                } else {
                    write!(f, "{b}B/s")
                }
            }
        }
    }
}

/// A rate that may follow the time of day. Entries are tried in order; times that no entry covers
/// get the plain default entry if there is one, else no limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSchedule {
    entries: Vec<(Windows, Rate)>,
    default: Rate,
}

/// The rate in force at one instant and when it may change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateNow {
    /// The rate in force.
    pub rate: Rate,
    /// The next instant at which a time window of the schedule opens or closes; `None` when the rate never changes.
    pub next_change: Option<Timestamp>,
}

impl RateSchedule {
    /// The same rate at all times.
    pub fn constant(rate: Rate) -> Self {
        RateSchedule {
            entries: Vec::new(),
            default: rate,
        }
    }

    /// No limit at any time.
    pub fn unlimited() -> Self {
        Self::constant(Rate::Unlimited)
    }

    /// The rate at `now` and the next instant at which it may change.
    pub fn at(&self, now: Timestamp, tz: &TimeZone) -> RateNow {
        let mut rate = None;
        let mut next_change: Option<Timestamp> = None;
        for (windows, entry_rate) in &self.entries {
            let state = windows.state_at(now, tz);
            if let Some(change) = state.next_change {
                next_change = Some(next_change.map_or(change, |c| c.min(change)));
            }
            if state.open && rate.is_none() {
                rate = Some(*entry_rate);
            }
        }
        RateNow {
            rate: rate.unwrap_or(self.default),
            next_change,
        }
    }

    /// Whether any entry is a percentage of the total (which then must be configured).
    pub fn uses_percent(&self) -> bool {
        matches!(self.default, Rate::PercentOfTotal(_))
            || self
                .entries
                .iter()
                .any(|(_, r)| matches!(r, Rate::PercentOfTotal(_)))
    }

    /// Whether no entry sets any limit.
    pub fn is_unlimited(&self) -> bool {
        self.default == Rate::Unlimited && self.entries.iter().all(|(_, r)| *r == Rate::Unlimited)
    }
}

impl FromStr for RateSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err("the value is empty".into());
        }
        if !t.contains(|c: char| c == ',' || c.is_whitespace()) || t.parse::<Rate>().is_ok() {
            return Ok(RateSchedule::constant(t.parse()?));
        }
        let mut entries = Vec::new();
        let mut default = None;
        let mut pending_days: u8 = 0;
        for piece in t.split(',') {
            match parse_piece(piece) {
                Ok(Piece::Days(bits)) => pending_days |= bits,
                Ok(Piece::Window {
                    days,
                    start,
                    end,
                    rest,
                }) => {
                    if rest.is_empty() {
                        return Err(format!(
                            "the window {:?} has no rate after it",
                            piece.trim()
                        ));
                    }
                    let rate: Rate = rest.parse()?;
                    let days = days.unwrap_or(0) | pending_days;
                    pending_days = 0;
                    let span = Span {
                        days: if days == 0 { 0b111_1111 } else { days },
                        start_min: start,
                        end_min: end,
                    };
                    entries.push((Windows::Spans(vec![span]), rate));
                }
                Err(window_err) => {
                    // Not a window: it may be the plain default rate.
                    match piece.trim().parse::<Rate>() {
                        Ok(rate) if default.is_none() && pending_days == 0 => default = Some(rate),
                        Ok(_) => return Err("only one rate may stand without a window".into()),
                        Err(_) => return Err(window_err),
                    }
                }
            }
        }
        if pending_days != 0 {
            return Err("weekdays at the end are not followed by a window and a rate".into());
        }
        Ok(RateSchedule {
            entries,
            default: default.unwrap_or(Rate::Unlimited),
        })
    }
}

impl fmt::Display for RateSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return write!(f, "{}", self.default);
        }
        let mut parts: Vec<String> = self
            .entries
            .iter()
            .map(|(w, r)| match w {
                Windows::Spans(spans) => format!("{} {r}", span_text(&spans[0])),
                other => format!("{other} {r}"),
            })
            .collect();
        if self.default != Rate::Unlimited {
            parts.push(self.default.to_string());
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bps(s: &str) -> u64 {
        match s.parse::<Rate>().unwrap() {
            Rate::BytesPerSecond(b) => b,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn units() {
        assert_eq!(bps("256KiB/s"), 256 * 1024);
        assert_eq!(bps("1MB/s"), 1_000_000);
        assert_eq!(bps("2Mbps"), 250_000);
        assert_eq!(bps("500kbit/s"), 62_500);
        assert_eq!(bps("1.5 MiB/s"), 1_572_864);
        assert_eq!("off".parse::<Rate>().unwrap(), Rate::Unlimited);
        assert_eq!("50%".parse::<Rate>().unwrap(), Rate::PercentOfTotal(50.0));
    }

    #[test]
    fn rejects_bad_rates() {
        for bad in [
            "",
            "fast",
            "10",
            "10 parsecs",
            "0B/s",
            "0.01B/s",
            "150%",
            "0%",
            "-1MB/s",
            "1e99GB/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn percent_resolves_against_the_total() {
        assert_eq!(
            Rate::PercentOfTotal(25.0).bytes_per_second(Some(1000)),
            Some(250)
        );
        assert_eq!(Rate::PercentOfTotal(25.0).bytes_per_second(None), None);
    }

    #[test]
    fn time_of_day_schedule() {
        let utc = TimeZone::UTC;
        let sched: RateSchedule = "0800-2300 16KiB/s, 2300-0800 off".parse().unwrap();
        let noon: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let now = sched.at(noon, &utc);
        assert_eq!(now.rate, Rate::BytesPerSecond(16 * 1024));
        assert_eq!(
            now.next_change,
            Some("2026-11-26T23:00:00Z".parse().unwrap())
        );
        let night = sched.at("2026-11-26T23:30:00Z".parse().unwrap(), &utc);
        assert_eq!(night.rate, Rate::Unlimited);
        assert_eq!(sched.to_string(), "0800-2300 16KiB/s, 2300-0800 off");
    }

    #[test]
    fn schedule_with_weekdays_and_default() {
        let utc = TimeZone::UTC;
        let sched: RateSchedule = "Mon-Fri 0800-1800 100KiB/s, 1MiB/s".parse().unwrap();
        // 2026-11-28 is a Saturday.
        let sat = sched.at("2026-11-28T12:00:00Z".parse().unwrap(), &utc);
        assert_eq!(sat.rate, Rate::BytesPerSecond(1024 * 1024));
        let fri = sched.at("2026-11-27T12:00:00Z".parse().unwrap(), &utc);
        assert_eq!(fri.rate, Rate::BytesPerSecond(100 * 1024));
    }

    #[test]
    fn rejects_bad_schedules() {
        for bad in [
            "0800-2300",
            "0800-2300 fast",
            "2500-2600 1MB/s",
            "1MB/s, 2MB/s",
            "Mon",
        ] {
            assert!(bad.parse::<RateSchedule>().is_err(), "{bad:?} accepted");
        }
    }
}

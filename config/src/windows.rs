//! Allowed-time windows (`2200-2400,0000-0800`, `Mon-Fri 2200-0700, Sat,Sun 0000-2400`, `none`)
//! and the pure function that answers "at this instant, is it open, and when is the next change?"
//!
//! Windows are civil times in one time zone. Each occurrence is resolved to an absolute instant
//! with jiff's "compatible" rule (a time inside a DST gap moves forward by the gap, a time inside a
//! fold takes the earlier offset), so the answer is right across DST changes and wall-clock jumps:
//! nothing here remembers earlier answers.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// What a window list may look like, for error messages.
pub const WINDOWS_ACCEPTED: &str = "a comma list of HHMM-HHMM windows such as 2200-2400,0000-0800 \
(2400 may end a window; an end before the start wraps past midnight), each optionally after \
weekdays (Mon-Fri 2200-0700, Sat,Sun 0000-2400); empty for always open, or none for never";

const ALL_DAYS: u8 = 0b111_1111;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One recurring window: on the given weekdays, from `start` to `end` minutes after midnight.
/// `end <= start` wraps to the next day; the weekday is the day the window opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Bit 0 is Monday.
    pub days: u8,
    /// Opening time, in minutes after midnight.
    pub start_min: u16,
    /// Closing time, in minutes after midnight; at or before `start_min`, it is on the next day.
    pub end_min: u16,
}

impl Span {
    fn wraps(&self) -> bool {
        self.end_min <= self.start_min
    }
}

/// A set of allowed times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Windows {
    /// No restriction (the key is absent or empty).
    Always,
    /// Never open (`none`): the job only runs when started by hand with "ignore window".
    Never,
    /// Open during any of these spans.
    Spans(Vec<Span>),
}

/// The answer for one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// Whether the window is open at that instant.
    pub open: bool,
    /// When `open` flips next; `None` when it never will (always or never open).
    pub next_change: Option<Timestamp>,
}

impl Windows {
    /// Is the window open at `now` in zone `tz`, and when does that change?
    pub fn state_at(&self, now: Timestamp, tz: &TimeZone) -> WindowState {
        let spans = match self {
            Windows::Always => {
                return WindowState {
                    open: true,
                    next_change: None,
                }
            }
            Windows::Never => {
                return WindowState {
                    open: false,
                    next_change: None,
                }
            }
            Windows::Spans(spans) => spans,
        };
        let today = now.to_zoned(tz.clone()).date();
        // Two days back catches a wrapping window opened yesterday even across a DST shift;
        // nine days ahead always reaches the next opening of a weekly pattern.
        let first_day = today.saturating_sub(2.days());
        let horizon_end = midnight(today.saturating_add(9.days()), tz);
        let mut intervals = occurrences(spans, first_day, 9 + 2, tz);
        intervals.sort();
        let merged = merge(intervals);
        for (start, end) in merged {
            if start <= now && now < end {
                let reaches_horizon = horizon_end.is_some_and(|h| end >= h);
                return WindowState {
                    open: true,
                    next_change: if reaches_horizon { None } else { Some(end) },
                };
            }
            if start > now {
                return WindowState {
                    open: false,
                    next_change: Some(start),
                };
            }
        }
        WindowState {
            open: false,
            next_change: None,
        }
    }

    /// Whether this is `Windows::Always` (no restriction).
    pub fn is_always(&self) -> bool {
        matches!(self, Windows::Always)
    }

    /// When `work` of open-window time will have been spent, starting at `now`: the instant and
    /// how many more windows it takes after the current one (0 when it finishes in this one).
    /// `None` when it never finishes (never open) or not within `MAX_ETA_WINDOWS` windows.
    pub fn finish_after(
        &self,
        now: Timestamp,
        tz: &TimeZone,
        work: std::time::Duration,
    ) -> Option<Eta> {
        let mut left = jiff::SignedDuration::try_from(work).ok()?;
        let mut at = now;
        let mut more_windows = 0u32;
        for _ in 0..MAX_ETA_WINDOWS * 2 {
            let state = self.state_at(at, tz);
            if state.open {
                let Some(close) = state.next_change else {
                    return at.checked_add(left).ok().map(|at| Eta { at, more_windows });
                };
                let span = close.duration_since(at);
                if span >= left {
                    return at.checked_add(left).ok().map(|at| Eta { at, more_windows });
                }
                left -= span;
                at = close;
            } else {
                // Every jump over a closed stretch lands at the opening of one more window.
                at = state.next_change?;
                more_windows += 1;
            }
            if more_windows > MAX_ETA_WINDOWS {
                return None;
            }
        }
        None
    }
}

/// How far ahead [`Windows::finish_after`] looks.
pub const MAX_ETA_WINDOWS: u32 = 1000;

/// An estimated finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eta {
    /// When the work will be done.
    pub at: Timestamp,
    /// Windows that must still open after the current one (or, when closed now, counting the
    /// next one).
    pub more_windows: u32,
}

fn midnight(date: Date, tz: &TimeZone) -> Option<Timestamp> {
    date.to_datetime(Time::midnight())
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

fn at_minute(date: Date, minute: u16, tz: &TimeZone) -> Option<Timestamp> {
    if minute >= 1440 {
        return midnight(date.tomorrow().ok()?, tz);
    }
    let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
    date.to_datetime(time)
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// Every concrete occurrence of `spans` that opens on one of `count` days from `first_day`.
fn occurrences(
    spans: &[Span],
    first_day: Date,
    count: i64,
    tz: &TimeZone,
) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    for offset in 0..count {
        let Ok(date) = first_day.checked_add(offset.days()) else {
            continue;
        };
        let weekday_bit = 1u8 << date.weekday().to_monday_zero_offset();
        for span in spans.iter().filter(|s| s.days & weekday_bit != 0) {
            let end_date = if span.wraps() {
                match date.tomorrow() {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            } else {
                date
            };
            let (Some(start), Some(end)) = (
                at_minute(date, span.start_min, tz),
                at_minute(end_date, span.end_min, tz),
            ) else {
                continue;
            };
            if end > start {
                out.push((start, end));
            }
        }
    }
    out
}

fn merge(sorted: Vec<(Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(sorted.len());
    for (start, end) in sorted {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Parses `HHMM-HHMM`. `None` when the token does not look like a time range at all.
pub(crate) fn parse_time_range(token: &str) -> Option<Result<(u16, u16), String>> {
    let (a, b) = token.split_once('-')?;
    if !a.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((|| {
        let start = parse_hhmm(a, false)?;
        let end = parse_hhmm(b, true)?;
        // `2200-0000` means "until midnight", the same as `2200-2400`.
        let end = if end == 0 { 1440 } else { end };
        if start == end {
            return Err(format!(
                "{token} starts and ends at the same time; write 0000-2400 for a whole day"
            ));
        }
        Ok((start, end))
    })())
}

fn parse_hhmm(s: &str, may_be_2400: bool) -> Result<u16, String> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a time of the form HHMM"));
    }
    let hours: u16 = s[..2].parse().map_err(|_| format!("{s:?} is not HHMM"))?;
    let minutes: u16 = s[2..].parse().map_err(|_| format!("{s:?} is not HHMM"))?;
    if minutes > 59 {
        return Err(format!("{s}: minute {minutes} is out of range (00-59)"));
    }
    if hours == 24 && minutes == 0 {
        if may_be_2400 {
            return Ok(1440);
        }
        return Err("2400 can only end a window, not start one".into());
    }
    if hours > 23 {
        return Err(format!(
            "{s}: hour {hours} is out of range (00-23, or 2400 as an end)"
        ));
    }
    Ok(hours * 60 + minutes)
}

fn parse_day(name: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == lower)
        .or_else(|| FULL_DAY_NAMES.iter().position(|d| *d == lower))
        .map(|i| i as u8)
}

/// Parses `Mon`, `Mon-Fri` or `Fri-Mon` (wrapping) into a weekday bit set.
pub(crate) fn parse_days(token: &str) -> Result<u8, String> {
    let unknown = |t: &str| {
        format!("{t:?} is not a weekday (use Mon, Tue, Wed, Thu, Fri, Sat, Sun or a range like Mon-Fri)")
    };
    match token.split_once('-') {
        None => parse_day(token)
            .map(|d| 1 << d)
            .ok_or_else(|| unknown(token)),
        Some((a, b)) => {
            let from = parse_day(a).ok_or_else(|| unknown(a))?;
            let to = parse_day(b).ok_or_else(|| unknown(b))?;
            let mut bits = 0u8;
            let mut d = from;
            loop {
                bits |= 1 << d;
                if d == to {
                    break;
                }
                d = (d + 1) % 7;
            }
            Ok(bits)
        }
    }
}

/// The result of reading one comma-separated piece of a window list.
pub(crate) enum Piece {
    /// Only weekdays (`Sat` in `Sat,Sun 0000-2400`): they carry over to the next piece.
    Days(u8),
    /// Weekdays (possibly none given) and a time range, plus any text after the range.
    Window {
        days: Option<u8>,
        start: u16,
        end: u16,
        rest: String,
    },
}

/// Reads one piece: `[DAYS] HHMM-HHMM [REST]` or `DAYS`.
pub(crate) fn parse_piece(piece: &str) -> Result<Piece, String> {
    let tokens: Vec<&str> = piece.split_whitespace().collect();
    if tokens.is_empty() {
        return Err("an empty entry between commas".into());
    }
    let mut days: Option<u8> = None;
    for (i, token) in tokens.iter().enumerate() {
        if let Some(range) = parse_time_range(token) {
            let (start, end) = range?;
            return Ok(Piece::Window {
                days,
                start,
                end,
                rest: tokens[i + 1..].join(" "),
            });
        }
        let bits = parse_days(token).map_err(|e| {
            if token.starts_with(|c: char| c.is_ascii_digit()) {
                format!("{token:?} is not a window of the form HHMM-HHMM")
            } else {
                e
            }
        })?;
        days = Some(days.unwrap_or(0) | bits);
    }
    Ok(Piece::Days(days.unwrap_or(ALL_DAYS)))
}

impl FromStr for Windows {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("always") {
            return Ok(Windows::Always);
        }
        if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("never") {
            return Ok(Windows::Never);
        }
        let mut spans = Vec::new();
        let mut pending_days: u8 = 0;
        for piece in t.split(',') {
            match parse_piece(piece)? {
                Piece::Days(bits) => pending_days |= bits,
                Piece::Window {
                    days,
                    start,
                    end,
                    rest,
                } => {
                    if !rest.is_empty() {
                        return Err(format!("unexpected {rest:?} after the window"));
                    }
                    let days = days.unwrap_or(0) | pending_days;
                    pending_days = 0;
                    spans.push(Span {
                        days: if days == 0 { ALL_DAYS } else { days },
                        start_min: start,
                        end_min: end,
                    });
                }
            }
        }
        if pending_days != 0 {
            return Err("weekdays at the end are not followed by a window HHMM-HHMM".into());
        }
        Ok(Windows::Spans(spans))
    }
}

impl fmt::Display for Windows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Windows::Always => f.write_str("always"),
            Windows::Never => f.write_str("none"),
            Windows::Spans(spans) => {
                let parts: Vec<String> = spans.iter().map(span_text).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

pub(crate) fn span_text(span: &Span) -> String {
    let hhmm = |m: u16| format!("{:02}{:02}", m / 60, m % 60);
    let time = format!("{}-{}", hhmm(span.start_min), hhmm(span.end_min));
    if span.days == ALL_DAYS {
        return time;
    }
    let names: Vec<String> = (0..7)
        .filter(|d| span.days & (1 << d) != 0)
        .map(|d| {
            let n = DAY_NAMES[d as usize];
            format!("{}{}", n[..1].to_ascii_uppercase(), &n[1..])
        })
        .collect();
    format!("{} {time}", names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn at(civil: &str, zone: &str) -> Timestamp {
        civil
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(tz(zone))
            .unwrap()
            .timestamp()
    }

    fn w(s: &str) -> Windows {
        s.parse().unwrap()
    }

    #[test]
    fn the_seed_example_parses() {
        let windows = w("2200-2400,0000-0800");
        assert_eq!(windows.to_string(), "2200-2400,0000-0800");
    }

    #[test]
    fn open_at_night_across_midnight_with_2400() {
        let z = "UTC";
        let windows = w("2200-2400,0000-0800");
        let s = windows.state_at(at("2026-11-26T23:30", z), &tz(z));
        assert!(s.open);
        // 2400 and 0000 touch, so the window runs on to 08:00 without a flicker at midnight.
        assert_eq!(s.next_change, Some(at("2026-11-27T08:00", z)));
        let s = windows.state_at(at("2026-11-26T12:00", z), &tz(z));
        assert!(!s.open);
        assert_eq!(s.next_change, Some(at("2026-11-26T22:00", z)));
    }

    #[test]
    fn an_end_before_the_start_wraps() {
        let z = "UTC";
        let windows = w("2200-0800");
        let s = windows.state_at(at("2026-11-27T03:00", z), &tz(z));
        assert!(s.open);
        assert_eq!(s.next_change, Some(at("2026-11-27T08:00", z)));
        let s = windows.state_at(at("2026-11-27T08:00", z), &tz(z));
        assert!(!s.open, "the end instant is outside the window");
    }

    #[test]
    fn weekday_sets() {
        let z = "UTC";
        // 2026-11-27 is a Friday.
        let windows = w("Mon-Fri 2200-0700, Sat,Sun 0000-2400");
        let fri_23 = windows.state_at(at("2026-11-27T23:00", z), &tz(z));
        assert!(fri_23.open);
        // Friday night runs into Saturday, which is open all day, then Sunday, to Monday 00:00.
        assert_eq!(fri_23.next_change, Some(at("2026-11-30T00:00", z)));
        let mon_noon = windows.state_at(at("2026-11-30T12:00", z), &tz(z));
        assert!(!mon_noon.open);
        assert_eq!(mon_noon.next_change, Some(at("2026-11-30T22:00", z)));
        // Monday 03:00 belongs to no window: Sunday's ends at midnight and Monday's opens at 22:00.
        assert!(!windows.state_at(at("2026-11-30T03:00", z), &tz(z)).open);
    }

    #[test]
    fn always_and_never() {
        let now = at("2026-11-26T12:00", "UTC");
        let utc = tz("UTC");
        assert_eq!(
            w("").state_at(now, &utc),
            WindowState {
                open: true,
                next_change: None
            }
        );
        assert_eq!(
            w("none").state_at(now, &utc),
            WindowState {
                open: false,
                next_change: None
            }
        );
        // A window covering the whole week never changes.
        let s = w("0000-2400").state_at(now, &utc);
        assert!(s.open);
        assert_eq!(s.next_change, None);
    }

    #[test]
    fn new_york_spring_forward_gap() {
        // 2026-03-08 02:00 EST jumps to 03:00 EDT.
        let z = "America/New_York";
        let windows = w("0230-0400");
        let before = windows.state_at(at("2026-03-08T01:00", z), &tz(z));
        assert!(!before.open);
        // 02:30 does not exist that day; compatible resolution opens at 03:30 EDT.
        assert_eq!(
            before.next_change,
            Some("2026-03-08T07:30:00Z".parse().unwrap())
        );
        let inside = windows.state_at("2026-03-08T07:45:00Z".parse().unwrap(), &tz(z));
        assert!(inside.open);
        assert_eq!(
            inside.next_change,
            Some("2026-03-08T08:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn new_york_fall_back_fold() {
        // 2026-11-01 02:00 EDT falls back to 01:00 EST; 01:00-02:00 happens twice.
        let z = "America/New_York";
        let windows = w("0000-0130");
        let s = windows.state_at("2026-11-01T04:10:00Z".parse().unwrap(), &tz(z));
        assert!(s.open, "00:10 EDT is inside");
        // 01:30 is ambiguous; the earlier (EDT) reading closes the window: 05:30Z.
        assert_eq!(s.next_change, Some("2026-11-01T05:30:00Z".parse().unwrap()));
        // During the repeated hour (01:10 EST = 06:10Z) the window is closed.
        assert!(
            !windows
                .state_at("2026-11-01T06:10:00Z".parse().unwrap(), &tz(z))
                .open
        );
    }

    #[test]
    fn berlin_nights_across_dst_are_wall_clock_nights() {
        // 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
        let z = "Europe/Berlin";
        let windows = w("2200-0800");
        let spring = windows.state_at(at("2026-03-28T23:00", z), &tz(z));
        assert!(spring.open);
        assert_eq!(
            spring.next_change,
            Some("2026-03-29T06:00:00Z".parse().unwrap())
        );
        let autumn = windows.state_at(at("2026-10-24T23:00", z), &tz(z));
        assert!(autumn.open);
        assert_eq!(
            autumn.next_change,
            Some("2026-10-25T07:00:00Z".parse().unwrap())
        );
        // The autumn night gains the repeated hour: 22:00 CEST to 08:00 CET is 11 hours.
        let opened: Timestamp = at("2026-10-24T22:00", z);
        assert_eq!(
            autumn.next_change.unwrap().duration_since(opened).as_secs(),
            11 * 3600
        );
    }

    #[test]
    fn rejects_bad_windows_with_reasons() {
        for (bad, needle) in [
            ("2500-2600", "hour 25"),
            ("2200-2260", "minute 60"),
            ("2400-0100", "2400 can only end"),
            ("0800-0800", "same time"),
            ("22-08", "HHMM"),
            ("Funday 2200-2300", "not a weekday"),
            ("Mon-Fri", "not followed"),
            ("2200-2300 extra", "unexpected"),
            ("2200-2300,,0100-0200", "empty entry"),
        ] {
            let err = bad.parse::<Windows>().unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn eta_counts_the_windows_ahead() {
        let z = "UTC";
        let windows = w("2200-0800");
        let hour = std::time::Duration::from_secs(3600);
        // Inside a window with 2 h left of it, 1 h of work finishes in this window.
        let eta = windows
            .finish_after(at("2026-11-27T06:00", z), &tz(z), hour)
            .unwrap();
        assert_eq!(
            eta,
            Eta {
                at: at("2026-11-27T07:00", z),
                more_windows: 0
            }
        );
        // 25 h of work from Fri 06:00: 2 h now, then three 10 h nights: Mon 01:00.
        let eta = windows
            .finish_after(at("2026-11-27T06:00", z), &tz(z), hour * 25)
            .unwrap();
        assert_eq!(
            eta,
            Eta {
                at: at("2026-11-30T01:00", z),
                more_windows: 3
            }
        );
        // Closed at noon: the first window ahead counts.
        let eta = windows
            .finish_after(at("2026-11-27T12:00", z), &tz(z), hour)
            .unwrap();
        assert_eq!(
            eta,
            Eta {
                at: at("2026-11-27T23:00", z),
                more_windows: 1
            }
        );
        assert_eq!(
            w("none").finish_after(at("2026-11-27T12:00", z), &tz(z), hour),
            None
        );
        let eta = w("")
            .finish_after(at("2026-11-27T12:00", z), &tz(z), hour)
            .unwrap();
        assert_eq!(eta.more_windows, 0);
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "2200-0800",
            "Mon-Fri 2200-0700,Sat,Sun 0000-2400",
            "none",
            "always",
        ] {
            let parsed = w(text);
            assert_eq!(
                parsed.to_string().parse::<Windows>().unwrap(),
                parsed,
                "{text}"
            );
        }
    }
}

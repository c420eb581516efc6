//! Durations written the way people write them (`1week`, `36h`, `1d 12h`, `90min`), via humantime.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A positive duration parsed with humantime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// What a duration value may look like, for error messages.
pub const DURATION_ACCEPTED: &str =
    "a duration such as 1week, 36h, 1d 12h or 90min (units: s, min, h, d, week)";

impl HumanDuration {
    /// The parsed duration as a `std::time::Duration`.
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err("the value is empty".into());
        }
        let d = humantime::parse_duration(trimmed).map_err(|e| e.to_string())?;
        if d.is_zero() {
            return Err("a duration of zero would make the job run continuously".into());
        }
        Ok(HumanDuration(d))
    }
}

/// Read from a key's text like [`FromStr`]: a task type's key can be a `HumanDuration`.
impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for HumanDuration {
    /// In weeks or days where the duration has them, never in humantime's months and years:
    /// those are 30.44 and 365.25 days, so 60 days would read "1month 29days 13h 26m 24s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAY: u64 = 86_400;
        let days = self.0.as_secs() / DAY;
        let rest = self.0 - Duration::from_secs(days * DAY);
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        match (days, rest.is_zero()) {
            (0, _) => write!(f, "{}", humantime::format_duration(self.0)),
            (d, true) if d % 7 == 0 => write!(f, "{}week{}", d / 7, plural(d / 7)),
            (d, true) => write!(f, "{d}day{}", plural(d)),
            (d, false) => write!(
                f,
                "{d}day{} {}",
                plural(d),
                humantime::format_duration(rest)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_weeks_and_days_and_reads_back() {
        let cases = [
            (7 * 86400, "1week"),
            (14 * 86400, "2weeks"),
            (60 * 86400, "60days"),
            (86400, "1day"),
            (15 * 86400, "15days"),
            (36 * 3600, "1day 12h"),
            (90 * 60, "1h 30m"),
            (0, "0s"),
        ];
        for (secs, text) in cases {
            let d = HumanDuration(Duration::from_secs(secs));
            assert_eq!(d.to_string(), text);
            assert_eq!(humantime::parse_duration(text).unwrap(), d.0, "{text}");
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("1week", 7 * 86400),
            ("36h", 36 * 3600),
            ("1d 12h", 36 * 3600),
            ("90min", 90 * 60),
            ("  2d ", 2 * 86400),
        ];
        for (text, secs) in cases {
            assert_eq!(
                text.parse::<HumanDuration>().unwrap().0,
                Duration::from_secs(secs),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_nonsense_zero_and_empty() {
        for bad in ["", "soon", "0s", "12", "-1d", "1 fortnight"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn displays_in_humantime_form() {
        assert_eq!(
            "1d 12h".parse::<HumanDuration>().unwrap().to_string(),
            "1day 12h"
        );
    }
}

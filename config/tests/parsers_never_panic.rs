//! Property tests: no input makes a parser panic, and every rejection carries a message.

use proptest::prelude::*;
use tahoe_jobs_config::ini::parse_ini;
use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::jiff::Timestamp;
use tahoe_jobs_config::*;

/// Strings built from the characters the parsers care about, so the search reaches deep paths.
fn config_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9:,%/ .A-Za-z\\-\\[\\]=#;\\n\\t]{0,40}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn windows_parse_or_explain(s in config_like()) {
        if let Err(e) = s.parse::<Windows>() { prop_assert!(!e.is_empty()); }
    }

    #[test]
    fn any_arbitrary_string_is_safe(s in any::<String>()) {
        let _ = s.parse::<Windows>();
        let _ = s.parse::<RateSchedule>();
        let _ = s.parse::<Rate>();
        let _ = s.parse::<CpuShare>();
        let _ = s.parse::<HumanDuration>();
        let _ = parse_ini(&s);
        let _ = parse_target(&s);
        let _ = redact(&s);
    }

    #[test]
    fn rates_parse_or_explain(s in config_like()) {
        if let Err(e) = s.parse::<RateSchedule>() { prop_assert!(!e.is_empty()); }
        if let Err(e) = s.parse::<Rate>() { prop_assert!(!e.is_empty()); }
    }

    #[test]
    fn ini_parses_or_names_a_line(s in config_like()) {
        if let Err(e) = parse_ini(&s) {
            prop_assert!(e.line >= 1 && e.line <= s.lines().count().max(1));
        }
    }

    /// For any valid window list and instant, the next change is in the future and the state
    /// really flips there (checked one second before and at the change).
    #[test]
    fn next_change_is_a_real_flip(
        start in 0u16..24, start_m in 0u16..60, end in 0u16..25, end_m in 0u16..60,
        secs in 1_700_000_000i64..1_900_000_000i64,
        zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    ) {
        let end_m = if end == 24 { 0 } else { end_m };
        let text = format!("{start:02}{start_m:02}-{end:02}{end_m:02}");
        let Ok(windows) = text.parse::<Windows>() else { return Ok(()) };
        let tz = TimeZone::get(zone).unwrap();
        let now = Timestamp::from_second(secs).unwrap();
        let state = windows.state_at(now, &tz);
        if let Some(change) = state.next_change {
            prop_assert!(change > now);
            let just_before = change - jiff::SignedDuration::from_secs(1);
            if just_before > now {
                prop_assert_eq!(windows.state_at(just_before, &tz).open, state.open, "{} {} {}", text, now, zone);
            }
            prop_assert_ne!(windows.state_at(change, &tz).open, state.open, "{} {} {}", text, now, zone);
        }
    }
}

//! The retention policy as a pure function: given the names in `Archives/`, which one `Latest`
//! links to, the rules and a time zone, which archives stay and why.
//!
//! The rules are restic's `forget` policy: walking the archives from newest to oldest,
//! `keep_last` keeps the first N; `keep_hourly` (daily, weekly, monthly, yearly) keeps the
//! newest archive of each of the last N hours (days, ISO weeks, months, years) that have one,
//! counted in the given time zone; `keep_within` keeps every archive newer than that long
//! before the newest. An archive kept by any rule stays. Besides the rules, `Latest`'s archive,
//! the newest archive and every entry whose name is not a `tahoe backup` time stamp always stay.

use std::fmt;
use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The `keep_*` rules; zero (or `None`) turns a rule off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Option<Duration>,
}

impl Policy {
    /// Whether no rule is set: such a policy would remove every archive but the protected
    /// ones, which is never what a user meant.
    pub fn keeps_nothing(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none_or(|d| d.is_zero())
    }
}

/// Why an entry stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// `Latest` links to this archive.
    Latest,
    /// The newest archive.
    Newest,
    /// The name is not a `tahoe backup` time stamp: the entry is the user's.
    NotAnArchive,
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Within,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Latest => "Latest",
            Reason::Newest => "newest",
            Reason::NotAnArchive => "not a backup time stamp",
            Reason::Last => "last",
            Reason::Hourly => "hourly",
            Reason::Daily => "daily",
            Reason::Weekly => "weekly",
            Reason::Monthly => "monthly",
            Reason::Yearly => "yearly",
            Reason::Within => "within",
        })
    }
}

/// The decision for one entry of `Archives/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub name: String,
    /// The archive's time, when the name is a `tahoe backup` time stamp.
    pub time: Option<Timestamp>,
    /// Why it stays, in [`Reason`] order; empty: it is removed.
    pub keep: Vec<Reason>,
}

impl Verdict {
    pub fn kept(&self) -> bool {
        !self.keep.is_empty()
    }
}

/// The time of an archive named as `tahoe backup` names them (`2024-03-01_12:05:09Z`, UTC,
/// whole seconds), or `None` for any other name.
pub fn archive_time(name: &str) -> Option<Timestamp> {
    let civil = DateTime::strptime("%Y-%m-%d_%H:%M:%SZ", name).ok()?;
    let time = civil.to_zoned(TimeZone::UTC).ok()?.timestamp();
    // strptime accepts some variants (no zero padding); only the exact form is `tahoe backup`'s.
    (time.strftime("%Y-%m-%d_%H:%M:%SZ").to_string() == name).then_some(time)
}

/// Decides every entry. `names` are the entries of `Archives/`, `latest` the names among them
/// that `Latest` links to. The verdicts come newest first, the entries that are not archives
/// last (in name order).
pub fn plan(names: &[String], latest: &[String], policy: &Policy, tz: &TimeZone) -> Vec<Verdict> {
    let mut archives: Vec<Verdict> = Vec::new();
    let mut others: Vec<Verdict> = Vec::new();
    for name in names {
        match archive_time(name) {
            Some(time) => archives.push(Verdict {
                name: name.clone(),
                time: Some(time),
                keep: Vec::new(),
            }),
            None => others.push(Verdict {
                name: name.clone(),
                time: None,
                keep: vec![Reason::NotAnArchive],
            }),
        }
    }
    archives.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    others.sort_by(|a, b| a.name.cmp(&b.name));

    let bucket_rules: [(Reason, u32, BucketOf); 5] = [
        (Reason::Hourly, policy.hourly, |z| {
            day_key(z) * 100 + i64::from(z.hour())
        }),
        (Reason::Daily, policy.daily, day_key),
        (Reason::Weekly, policy.weekly, |z| {
            let week = z.date().iso_week_date();
            i64::from(week.year()) * 100 + i64::from(week.week())
        }),
        (Reason::Monthly, policy.monthly, |z| {
            i64::from(z.year()) * 100 + i64::from(z.month())
        }),
        (Reason::Yearly, policy.yearly, |z| i64::from(z.year())),
    ];
    let mut left: Vec<u32> = bucket_rules.iter().map(|r| r.1).collect();
    let mut last_bucket: Vec<Option<i64>> = vec![None; bucket_rules.len()];
    let newest = archives.first().and_then(|a| a.time);
    let within_after = match (newest, policy.within) {
        (Some(newest), Some(within)) if !within.is_zero() => jiff::SignedDuration::try_from(within)
            .ok()
            .and_then(|d| newest.checked_sub(d).ok()),
        _ => None,
    };

    for (index, archive) in archives.iter_mut().enumerate() {
        let time = archive.time.expect("archives have times");
        let mut keep = Vec::new();
        if latest.contains(&archive.name) {
            keep.push(Reason::Latest);
        }
        if index < policy.last as usize {
            keep.push(Reason::Last);
        }
        let zoned = time.to_zoned(tz.clone());
        for (i, (reason, _, bucket_of)) in bucket_rules.iter().enumerate() {
            if left[i] == 0 {
                continue;
            }
            let bucket = bucket_of(&zoned);
            if last_bucket[i] != Some(bucket) {
                last_bucket[i] = Some(bucket);
                left[i] -= 1;
                keep.push(*reason);
            }
        }
        if within_after.is_some_and(|after| time > after) {
            keep.push(Reason::Within);
        }
        if index == 0 && keep.is_empty() {
            keep.push(Reason::Newest);
        }
        keep.sort();
        archive.keep = keep;
    }
    archives.extend(others);
    archives
}

/// The bucket (hour, day, ISO week, month, year) an archive's local time falls in.
type BucketOf = fn(&jiff::Zoned) -> i64;

fn day_key(z: &jiff::Zoned) -> i64 {
    i64::from(z.year()) * 10_000 + i64::from(z.month()) * 100 + i64::from(z.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    use Reason::*;

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The kept names with their reasons, newest first; the removed ones are left out.
    fn kept(
        list: &[&str],
        latest: &[&str],
        policy: Policy,
        zone: &TimeZone,
    ) -> Vec<(String, Vec<Reason>)> {
        plan(&names(list), &names(latest), &policy, zone)
            .into_iter()
            .filter(Verdict::kept)
            .map(|v| (v.name, v.keep))
            .collect()
    }

    fn table(rows: &[(&str, &[Reason])]) -> Vec<(String, Vec<Reason>)> {
        rows.iter()
            .map(|(n, r)| (n.to_string(), r.to_vec()))
            .collect()
    }

    #[test]
    fn archive_names_are_exactly_tahoe_backups_form() {
        assert_eq!(
            archive_time("2024-03-01_12:05:09Z"),
            Some("2024-03-01T12:05:09Z".parse().unwrap())
        );
        for other in [
            "2024-3-01_12:05:09Z",
            "2024-03-01_12:05:09",
            "2024-03-01 12:05:09Z",
            "2024-13-01_12:05:09Z",
            "2024-03-01_12:05:09Z.old",
            "notes",
            "",
            "Latest",
        ] {
            assert_eq!(archive_time(other), None, "{other:?}");
        }
    }

    #[test]
    fn keep_last_keeps_the_n_newest_whatever_the_order_given() {
        let list = [
            "2026-01-03_12:00:00Z",
            "2026-01-05_12:00:00Z",
            "2026-01-01_12:00:00Z",
            "2026-01-04_12:00:00Z",
            "2026-01-02_12:00:00Z",
        ];
        let policy = Policy {
            last: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], policy, &utc()),
            table(&[
                ("2026-01-05_12:00:00Z", &[Last]),
                ("2026-01-04_12:00:00Z", &[Last]),
                ("2026-01-03_12:00:00Z", &[Last]),
            ])
        );
        // More than there are: all stay.
        let policy = Policy {
            last: 9,
            ..Policy::default()
        };
        assert_eq!(kept(&list, &[], policy, &utc()).len(), 5);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_of_the_last_days_that_have_one() {
        let list = [
            "2026-01-10_23:00:00Z",
            "2026-01-10_08:00:00Z",
            // No archive on the 9th: the rule counts days that have one.
            "2026-01-08_12:00:00Z",
            "2026-01-07_18:00:00Z",
            "2026-01-07_06:00:00Z",
            "2026-01-06_12:00:00Z",
        ];
        let policy = Policy {
            daily: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], policy, &utc()),
            table(&[
                ("2026-01-10_23:00:00Z", &[Daily]),
                ("2026-01-08_12:00:00Z", &[Daily]),
                ("2026-01-07_18:00:00Z", &[Daily]),
            ])
        );
    }

    #[test]
    fn days_are_counted_in_the_configured_time_zone() {
        // 03:00Z on the 11th is 22:00 on the 10th in New York (EST, UTC-5); 20:00Z on the 10th
        // is 15:00 the same day there. In UTC they are two days; in New York, one.
        let list = [
            "2026-01-11_03:00:00Z",
            "2026-01-10_20:00:00Z",
            "2026-01-09_20:00:00Z",
        ];
        let policy = Policy {
            daily: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], policy, &utc()),
            table(&[
                ("2026-01-11_03:00:00Z", &[Daily]),
                ("2026-01-10_20:00:00Z", &[Daily]),
            ])
        );
        assert_eq!(
            kept(&list, &[], policy, &tz("America/New_York")),
            table(&[
                ("2026-01-11_03:00:00Z", &[Daily]),
                ("2026-01-09_20:00:00Z", &[Daily]),
            ])
        );
    }

    #[test]
    fn hours_across_the_autumn_dst_change_are_local_hours() {
        // 2026-11-01 in New York: 01:00-02:00 happens twice (EDT, then EST). 05:10Z and 05:30Z
        // are 01:10 and 01:30 EDT, 06:30Z is 01:30 EST, 07:10Z is 02:10 EST.
        let list = [
            "2026-11-01_07:10:00Z",
            "2026-11-01_06:30:00Z",
            "2026-11-01_05:30:00Z",
            "2026-11-01_05:10:00Z",
        ];
        let policy = Policy {
            hourly: 3,
            ..Policy::default()
        };
        // Local hours 2, 1, 1, 1: two buckets, so only two archives are kept.
        assert_eq!(
            kept(&list, &[], policy, &tz("America/New_York")),
            table(&[
                ("2026-11-01_07:10:00Z", &[Hourly]),
                ("2026-11-01_06:30:00Z", &[Hourly]),
            ])
        );
        // In UTC they are four hours: three are kept.
        assert_eq!(kept(&list, &[], policy, &utc()).len(), 3);
    }

    #[test]
    fn days_across_the_spring_dst_change_in_berlin() {
        // 2026-03-29: clocks go from 02:00 to 03:00 CET->CEST. 22:30Z on the 28th is 23:30 CET
        // (the 28th); 22:30Z on the 29th is 00:30 CEST on the 30th; 21:30Z on the 29th is
        // 23:30 CEST on the 29th.
        let list = [
            "2026-03-29_22:30:00Z",
            "2026-03-29_21:30:00Z",
            "2026-03-29_01:30:00Z",
            "2026-03-28_22:30:00Z",
        ];
        let policy = Policy {
            daily: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], policy, &tz("Europe/Berlin")),
            table(&[
                ("2026-03-29_22:30:00Z", &[Daily]), // the 30th
                ("2026-03-29_21:30:00Z", &[Daily]), // the 29th (01:30Z is 03:30 CEST, same day)
                ("2026-03-28_22:30:00Z", &[Daily]), // the 28th
            ])
        );
    }

    #[test]
    fn weeks_months_and_years_across_a_year_end() {
        // 2026 has 53 ISO weeks: Mon 2026-12-28 to Sun 2027-01-03 is 2026-W53; 2027-01-04 starts
        // 2027-W01; 2026-12-27 (a Sunday) is in W52.
        let list = [
            "2027-01-04_12:00:00Z",
            "2027-01-02_12:00:00Z",
            "2026-12-30_12:00:00Z",
            "2026-12-27_12:00:00Z",
            "2025-12-31_12:00:00Z",
        ];
        let weekly = Policy {
            weekly: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], weekly, &utc()),
            table(&[
                ("2027-01-04_12:00:00Z", &[Weekly]),
                ("2027-01-02_12:00:00Z", &[Weekly]),
                ("2026-12-27_12:00:00Z", &[Weekly]),
            ])
        );
        let monthly = Policy {
            monthly: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], monthly, &utc()),
            table(&[
                ("2027-01-04_12:00:00Z", &[Monthly]),
                ("2026-12-30_12:00:00Z", &[Monthly]),
            ])
        );
        let yearly = Policy {
            yearly: 5,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], yearly, &utc()),
            table(&[
                ("2027-01-04_12:00:00Z", &[Yearly]),
                ("2026-12-30_12:00:00Z", &[Yearly]),
                ("2025-12-31_12:00:00Z", &[Yearly]),
            ])
        );
        // The year ends at local midnight: 2026-12-31_23:30Z is already 2027 in Berlin.
        let list = [
            "2027-01-01_12:00:00Z",
            "2026-12-31_23:30:00Z",
            "2026-12-31_12:00:00Z",
        ];
        let yearly = Policy {
            yearly: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], yearly, &tz("Europe/Berlin")),
            table(&[
                ("2027-01-01_12:00:00Z", &[Yearly]),
                ("2026-12-31_12:00:00Z", &[Yearly]),
            ])
        );
        assert_eq!(
            kept(&list, &[], yearly, &utc()),
            table(&[
                ("2027-01-01_12:00:00Z", &[Yearly]),
                ("2026-12-31_23:30:00Z", &[Yearly]),
            ])
        );
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_archive_not_to_now() {
        let list = [
            "2026-01-10_12:00:00Z",
            "2026-01-09_12:00:00Z",
            "2026-01-08_12:00:01Z",
            "2026-01-08_12:00:00Z", // exactly two days before the newest: not newer
            "2025-06-01_00:00:00Z",
        ];
        let policy = Policy {
            within: Some(Duration::from_secs(2 * 86_400)),
            ..Policy::default()
        };
        assert_eq!(
            kept(&list, &[], policy, &utc()),
            table(&[
                ("2026-01-10_12:00:00Z", &[Within]),
                ("2026-01-09_12:00:00Z", &[Within]),
                ("2026-01-08_12:00:01Z", &[Within]),
            ])
        );
    }

    #[test]
    fn rules_combine_and_each_kept_archive_says_which_rules_keep_it() {
        // The example policy on a year of weekly backups (Sundays 02:00Z) and a few
        // daily ones in the last week, in UTC.
        let mut list: Vec<String> = Vec::new();
        let mut day: jiff::civil::Date = "2025-01-05".parse().unwrap();
        while day <= "2025-12-28".parse().unwrap() {
            list.push(format!("{day}_02:00:00Z"));
            day = day.checked_add(jiff::Span::new().days(7)).unwrap();
        }
        for d in ["2025-12-29", "2025-12-30", "2025-12-31", "2026-01-01"] {
            list.push(format!("{d}_02:00:00Z"));
        }
        let policy = Policy {
            last: 3,
            daily: 7,
            weekly: 5,
            monthly: 12,
            yearly: 3,
            within: Some(Duration::from_secs(10 * 86_400)),
            ..Policy::default()
        };
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        let got = kept(&refs, &[], policy, &utc());
        let expected = table(&[
            (
                "2026-01-01_02:00:00Z",
                &[Last, Daily, Weekly, Monthly, Yearly, Within],
            ),
            (
                "2025-12-31_02:00:00Z",
                &[Last, Daily, Monthly, Yearly, Within],
            ),
            ("2025-12-30_02:00:00Z", &[Last, Daily, Within]),
            ("2025-12-29_02:00:00Z", &[Daily, Within]),
            ("2025-12-28_02:00:00Z", &[Daily, Weekly, Within]),
            ("2025-12-21_02:00:00Z", &[Daily, Weekly]),
            ("2025-12-14_02:00:00Z", &[Daily, Weekly]),
            ("2025-12-07_02:00:00Z", &[Weekly]),
            ("2025-11-30_02:00:00Z", &[Monthly]),
            ("2025-10-26_02:00:00Z", &[Monthly]),
            ("2025-09-28_02:00:00Z", &[Monthly]),
            ("2025-08-31_02:00:00Z", &[Monthly]),
            ("2025-07-27_02:00:00Z", &[Monthly]),
            ("2025-06-29_02:00:00Z", &[Monthly]),
            ("2025-05-25_02:00:00Z", &[Monthly]),
            ("2025-04-27_02:00:00Z", &[Monthly]),
            ("2025-03-30_02:00:00Z", &[Monthly]),
            ("2025-02-23_02:00:00Z", &[Monthly]),
        ]);
        assert_eq!(got, expected);
    }

    #[test]
    fn latest_the_newest_and_other_entries_always_stay() {
        let list = [
            "2026-01-10_12:00:00Z",
            "2026-01-09_12:00:00Z",
            "2026-01-08_12:00:00Z",
            "my notes",
            "2026-01-07_12:00:00Z.old",
        ];
        // Latest links to an older archive (a restored or re-linked one): it stays.
        let policy = Policy {
            last: 1,
            ..Policy::default()
        };
        let all = plan(
            &names(&list),
            &names(&["2026-01-08_12:00:00Z"]),
            &policy,
            &utc(),
        );
        let shown: Vec<(&str, Vec<Reason>)> = all
            .iter()
            .map(|v| (v.name.as_str(), v.keep.clone()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("2026-01-10_12:00:00Z", vec![Last]),
                ("2026-01-09_12:00:00Z", vec![]),
                ("2026-01-08_12:00:00Z", vec![Latest]),
                ("2026-01-07_12:00:00Z.old", vec![NotAnArchive]),
                ("my notes", vec![NotAnArchive]),
            ]
        );
        // With no rule at all (refused in the configuration), the newest still stays.
        let none = plan(&names(&list), &[], &Policy::default(), &utc());
        assert_eq!(none[0].keep, vec![Newest]);
        assert!(Policy::default().keeps_nothing());
        assert!(!policy.keeps_nothing());
    }

    #[test]
    fn an_empty_archives_directory_has_an_empty_plan() {
        assert!(plan(&[], &[], &Policy::default(), &utc()).is_empty());
    }

    #[test]
    fn removing_what_the_plan_removes_leaves_a_plan_that_removes_nothing_more() {
        // Why a stopped run can simply start again: the next plan over what is left keeps
        // the same archives (no kept archive's bucket depends on a removed one).
        let mut list: Vec<String> = Vec::new();
        let mut t: Timestamp = "2024-12-20T05:00:00Z".parse().unwrap();
        while t < "2026-02-01T00:00:00Z".parse().unwrap() {
            list.push(t.strftime("%Y-%m-%d_%H:%M:%SZ").to_string());
            t = t.checked_add(jiff::SignedDuration::from_hours(31)).unwrap();
        }
        for policy in [
            Policy {
                last: 4,
                daily: 5,
                ..Policy::default()
            },
            Policy {
                hourly: 30,
                weekly: 6,
                monthly: 4,
                ..Policy::default()
            },
            Policy {
                yearly: 2,
                within: Some(Duration::from_secs(20 * 86_400)),
                ..Policy::default()
            },
        ] {
            let zone = tz("Europe/Berlin");
            let first = plan(&list, &[], &policy, &zone);
            let left: Vec<String> = first
                .iter()
                .filter(|v| v.kept())
                .map(|v| v.name.clone())
                .collect();
            assert!(left.len() < list.len(), "{policy:?} removes something");
            let second = plan(&left, &[], &policy, &zone);
            assert!(second.iter().all(Verdict::kept), "{policy:?}");
            // Also after removing only part of it (a stop in the middle).
            let removed: Vec<&String> = first
                .iter()
                .filter(|v| !v.kept())
                .map(|v| &v.name)
                .collect();
            let half: Vec<String> = list
                .iter()
                .filter(|n| !removed[..removed.len() / 2].contains(n))
                .cloned()
                .collect();
            let again: Vec<String> = plan(&half, &[], &policy, &zone)
                .into_iter()
                .filter(|v| v.kept())
                .map(|v| v.name)
                .collect();
            assert_eq!(again, left, "{policy:?}");
        }
    }
}

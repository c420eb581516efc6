//! The retention policy against tables worked out by hand.

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
fn the_oldest_archive_stays_while_a_rule_has_fewer_periods_than_it_asks_for() {
    let list = [
        "2026-03-10_12:00:00Z",
        "2026-03-01_12:00:00Z",
        "2026-02-14_12:00:00Z",
        "2026-01-20_12:00:00Z",
        "2026-01-05_12:00:00Z",
    ];
    // Three months of backups for twelve asked: the first backup stays beside each month's
    // newest (restic 0.17).
    let monthly = Policy {
        monthly: 12,
        ..Policy::default()
    };
    assert_eq!(
        kept(&list, &[], monthly, &utc()),
        table(&[
            ("2026-03-10_12:00:00Z", &[Monthly]),
            ("2026-02-14_12:00:00Z", &[Monthly]),
            ("2026-01-20_12:00:00Z", &[Monthly]),
            ("2026-01-05_12:00:00Z", &[Oldest]),
        ])
    );
    // Once the rule has its periods, the oldest goes like any other.
    let filled = Policy {
        monthly: 2,
        ..Policy::default()
    };
    assert_eq!(
        kept(&list, &[], filled, &utc()),
        table(&[
            ("2026-03-10_12:00:00Z", &[Monthly]),
            ("2026-02-14_12:00:00Z", &[Monthly]),
        ])
    );
    // keep_last and keep_within do not count: they say how many, not how far back.
    let last = Policy {
        last: 9,
        within: Some(std::time::Duration::from_secs(3600)),
        ..Policy::default()
    };
    assert!(kept(&list, &[], last, &utc())
        .iter()
        .all(|(_, why)| !why.contains(&Oldest)));
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
    // Local hours 2, 1, 1, 1: two buckets, so two archives are kept by the rule, and the
    // oldest since the rule asked for three.
    assert_eq!(
        kept(&list, &[], policy, &tz("America/New_York")),
        table(&[
            ("2026-11-01_07:10:00Z", &[Hourly]),
            ("2026-11-01_06:30:00Z", &[Hourly]),
            ("2026-11-01_05:10:00Z", &[Oldest]),
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
            // Three years for five asked: the oldest is kept as such too.
            ("2025-12-31_12:00:00Z", &[Yearly, Oldest]),
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
        // Two years with an archive for `yearly = 3`: the first backup stays.
        ("2025-01-05_02:00:00Z", &[Oldest]),
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

#[test]
fn the_worked_example_of_docs_prune_md() {
    let list = [
        "2026-01-02_09:00:00Z",
        "2026-01-01_08:00:00Z",
        "2025-12-31_23:30:00Z",
        "2025-12-31_12:00:00Z",
        "2025-12-28_12:00:00Z",
        "2025-12-22_12:00:00Z",
        "2025-11-15_12:00:00Z",
        "2025-10-26_01:30:00Z",
    ];
    let policy = Policy {
        last: 1,
        daily: 2,
        weekly: 2,
        monthly: 3,
        within: Some(Duration::from_secs(86_400)),
        ..Policy::default()
    };
    assert_eq!(
        kept(&list, &[], policy, &tz("Europe/Berlin")),
        table(&[
            (
                "2026-01-02_09:00:00Z",
                &[Last, Daily, Weekly, Monthly, Within]
            ),
            ("2026-01-01_08:00:00Z", &[Daily]),
            ("2025-12-31_12:00:00Z", &[Monthly]),
            ("2025-12-28_12:00:00Z", &[Weekly]),
            ("2025-11-15_12:00:00Z", &[Monthly]),
        ])
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Up to 60 archives spread over three years (so that hours, days, weeks, months and years
    /// all have several), a policy, and a zone with DST.
    fn archives() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::btree_set(0i64..3 * 366 * 24 * 4, 1..60).prop_map(|quarters| {
            let start: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
            quarters
                .into_iter()
                .map(|q| {
                    let t = start
                        .checked_add(jiff::SignedDuration::from_mins(15 * q))
                        .unwrap();
                    t.strftime("%Y-%m-%d_%H:%M:%SZ").to_string()
                })
                .collect()
        })
    }

    fn policies() -> impl Strategy<Value = Policy> {
        (
            0u32..4,
            0u32..30,
            0u32..10,
            0u32..8,
            0u32..14,
            0u32..4,
            proptest::option::of(0u64..90),
        )
            .prop_map(
                |(last, hourly, daily, weekly, monthly, yearly, within)| Policy {
                    last,
                    hourly,
                    daily,
                    weekly,
                    monthly,
                    yearly,
                    within: within.map(|d| Duration::from_secs(d * 86_400)),
                },
            )
    }

    fn kept_names(list: &[String], latest: &[String], policy: &Policy) -> Vec<String> {
        plan(list, latest, policy, &tz("Europe/Berlin"))
            .into_iter()
            .filter(Verdict::kept)
            .map(|v| v.name)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn the_newest_and_latest_always_stay_and_each_rule_keeps_at_most_n(
            list in archives(),
            policy in policies(),
            pick in 0usize..60,
        ) {
            let latest = vec![list[pick % list.len()].clone()];
            let verdicts = plan(&list, &latest, &policy, &tz("Europe/Berlin"));
            prop_assert_eq!(verdicts.len(), list.len());
            prop_assert!(verdicts[0].kept());
            let newest = list.iter().max().unwrap();
            prop_assert_eq!(&verdicts[0].name, newest);
            prop_assert!(verdicts.iter().any(|v| v.name == latest[0] && v.kept()));
            for (reason, n) in [
                (Last, policy.last),
                (Hourly, policy.hourly),
                (Daily, policy.daily),
                (Weekly, policy.weekly),
                (Monthly, policy.monthly),
                (Yearly, policy.yearly),
            ] {
                let by = verdicts.iter().filter(|v| v.keep.contains(&reason)).count();
                prop_assert!(by <= n as usize, "{:?} kept {} > {}", reason, by, n);
            }
        }

        #[test]
        fn another_rule_never_removes_an_archive_and_a_second_pass_removes_nothing(
            list in archives(),
            policy in policies(),
            more in policies(),
        ) {
            let kept = kept_names(&list, &[], &policy);
            let wider = Policy {
                last: policy.last.max(more.last),
                hourly: policy.hourly.max(more.hourly),
                daily: policy.daily.max(more.daily),
                weekly: policy.weekly.max(more.weekly),
                monthly: policy.monthly.max(more.monthly),
                yearly: policy.yearly.max(more.yearly),
                within: policy.within.max(more.within),
            };
            let kept_wider = kept_names(&list, &[], &wider);
            for name in &kept {
                prop_assert!(kept_wider.contains(name), "{} dropped by a wider policy", name);
            }
            // What a run leaves is what the next run keeps: prune is idempotent.
            prop_assert_eq!(kept_names(&kept, &[], &policy), kept);
        }
    }
}

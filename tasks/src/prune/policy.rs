//! The retention policy as a pure function: given the names in `Archives/`, which one `Latest`
//! links to, the rules and a time zone, which archives stay and why.
//!
//! The rules are restic's `forget` policy: walking the archives from newest to oldest,
//! `keep_last` keeps the first N; `keep_hourly` (daily, weekly, monthly, yearly) keeps the
//! newest archive of each of the last N hours (days, ISO weeks, months, years) that have one,
//! counted in the given time zone; `keep_within` keeps every archive newer than that long
//! before the newest. An archive kept by any rule stays. Besides the rules, `Latest`'s archive,
//! the newest archive and every entry whose name is not a `tahoe backup` time stamp always stay.
//! As in restic 0.17, while an hourly to yearly rule has fewer periods than it asks for, the
//! oldest archive stays too: `keep_monthly = 12` on three months of backups keeps the first.

use std::fmt;
use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The `keep_*` rules; zero (or `None`) turns a rule off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the N newest archives.
    pub last: u32,
    /// Keep the newest archive of each of the last N hours that have one.
    pub hourly: u32,
    /// Keep the newest archive of each of the last N days that have one.
    pub daily: u32,
    /// Keep the newest archive of each of the last N ISO weeks that have one.
    pub weekly: u32,
    /// Keep the newest archive of each of the last N months that have one.
    pub monthly: u32,
    /// Keep the newest archive of each of the last N years that have one.
    pub yearly: u32,
    /// Keep every archive newer than this long before the newest one.
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
    /// Among the `keep_last` newest archives.
    Last,
    /// The newest archive of one of the `keep_hourly` hours.
    Hourly,
    /// The newest archive of one of the `keep_daily` days.
    Daily,
    /// The newest archive of one of the `keep_weekly` ISO weeks.
    Weekly,
    /// The newest archive of one of the `keep_monthly` months.
    Monthly,
    /// The newest archive of one of the `keep_yearly` years.
    Yearly,
    /// The oldest archive, kept while an hourly to yearly rule has fewer periods than it asks
    /// for (restic 0.17's rule), so a young backup keeps its first archive.
    Oldest,
    /// Newer than `keep_within` before the newest archive.
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
            Reason::Oldest => "oldest (a rule has fewer periods than it asks for)",
            Reason::Within => "within",
        })
    }
}

/// The decision for one entry of `Archives/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The entry's name in `Archives/`.
    pub name: String,
    /// The archive's time, when the name is a `tahoe backup` time stamp.
    pub time: Option<Timestamp>,
    /// Why it stays, in [`Reason`] order; empty: it is removed.
    pub keep: Vec<Reason>,
}

impl Verdict {
    /// True when the entry stays (it has at least one reason).
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
    let short_rule = bucket_rules
        .iter()
        .zip(&left)
        .any(|((_, asked, _), left)| *asked > 0 && *left > 0);
    if let Some(oldest) = archives.last_mut().filter(|_| short_rule) {
        oldest.keep.push(Reason::Oldest);
        oldest.keep.sort();
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
#[path = "policy_tests.rs"]
mod tests;

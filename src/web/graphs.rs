//! The parts of the view the pictures are drawn from: a job's week ahead (its allowed windows as
//! bands), its run history, and the rate samples of every job and storage server. Pure
//! functions of the engine's status, the configuration and the rate history; nothing here can
//! hold a path or a capability (times, counts, outcomes and job or server ids only).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::jiff::{Timestamp, ToSpan};
use tahoe_jobs_config::Windows;
use tahoe_jobs_engine::{BudgetReport, RunEntry};

use super::rate_history::{Owner, RateHistory, Series, DAY, HOUR, TEN_MINUTES};

/// How many days the week strip covers.
pub const WEEK_DAYS: i64 = 7;
/// A bound on the bands drawn, whatever the windows (e.g. one per hour all week).
const MAX_BANDS: usize = 7 * 24;

/// The next seven days, from this morning's midnight: when the job's windows are open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekView {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Open windows, clipped to `from..to`, in order.
    pub open: Vec<BandView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandView {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// One past run, as the history table shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    pub started: Timestamp,
    pub ended: Timestamp,
    /// `completed`, `stopped_early` or `failed`.
    pub outcome: String,
    /// Files (or, for a check job, objects) the run went through.
    pub files: Option<u64>,
    /// Bytes it read.
    pub bytes: Option<u64>,
    /// Bytes it uploaded.
    pub uploaded: Option<u64>,
    pub duration_secs: u64,
}

/// The rate samples of one flow over the last ten minutes, the last hour and the last day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graphs {
    pub ten_minutes: Series,
    pub hour: Series,
    pub day: Series,
}

/// The samples of every job and storage server. Not in the JSON (the metrics give a scraper
/// the same figures over any span it likes): only the pages draw them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphsView {
    pub jobs: BTreeMap<String, Graphs>,
    pub servers: BTreeMap<String, Graphs>,
}

/// The week ahead of `now` for `windows` in `tz`.
pub fn week(windows: &Windows, now: Timestamp, tz: &TimeZone) -> WeekView {
    let today = now.to_zoned(tz.clone()).date();
    let from = today
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let to = today
        .saturating_add(WEEK_DAYS.days())
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(from);
    let mut open = Vec::new();
    let mut at = from;
    while at < to && open.len() < MAX_BANDS {
        let state = windows.state_at(at, tz);
        let change = state.next_change.filter(|c| *c > at).unwrap_or(to).min(to);
        if state.open {
            open.push(BandView {
                start: at,
                end: change,
            });
        }
        if state.next_change.is_none() {
            break;
        }
        at = change;
    }
    WeekView { from, to, open }
}

/// A job's history for the view, newest first.
pub fn runs(history: &[RunEntry]) -> Vec<RunView> {
    history
        .iter()
        .rev()
        .map(|r| {
            let get = |k: &str| r.counters.get(k).copied();
            RunView {
                started: r.started,
                ended: r.ended,
                outcome: r.outcome.name().to_string(),
                files: get("files_seen").or_else(|| get("objects_checked")),
                bytes: get("bytes_seen"),
                uploaded: get("bytes_uploaded"),
                duration_secs: std::time::Duration::try_from(r.ended.duration_since(r.started))
                    .map_or(0, |d| d.as_secs()),
            }
        })
        .collect()
}

/// The samples of every job in the status and every server the budget knows.
pub fn graphs(
    jobs: impl Iterator<Item = String>,
    budget: Option<&BudgetReport>,
    history: &RateHistory,
    now: Timestamp,
) -> GraphsView {
    let of = |owner: Owner| Graphs {
        ten_minutes: history.series(&owner, TEN_MINUTES, now),
        hour: history.series(&owner, HOUR, now),
        day: history.series(&owner, DAY, now),
    };
    let mut servers: Vec<String> = Vec::new();
    if let Some(b) = budget {
        servers.extend(b.limits.destinations.keys().cloned());
        servers.extend(b.stats.destinations.keys().cloned());
    }
    servers.sort();
    servers.dedup();
    GraphsView {
        jobs: jobs.map(|id| (id.clone(), of(Owner::Job(id)))).collect(),
        servers: servers
            .into_iter()
            .map(|id| (id.clone(), of(Owner::Server(id))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::ts;
    use super::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    #[test]
    fn the_week_has_a_band_per_night_clipped_to_seven_days() {
        // Thursday 23:00 in Paris; windows 22:00-04:00.
        let w = week(
            &"2200-0400".parse().unwrap(),
            ts("2026-01-08T22:00:00Z"),
            &paris(),
        );
        assert_eq!(
            w.from,
            ts("2026-01-07T23:00:00Z"),
            "Thursday 00:00 in Paris"
        );
        assert_eq!(w.to, ts("2026-01-14T23:00:00Z"));
        // 00:00-04:00 Thursday, then 22:00-04:00 each night, the last cut at midnight.
        assert_eq!(w.open.len(), 8, "{:?}", w.open);
        assert_eq!(
            w.open[0],
            BandView {
                start: ts("2026-01-07T23:00:00Z"),
                end: ts("2026-01-08T03:00:00Z")
            }
        );
        assert_eq!(
            w.open[1],
            BandView {
                start: ts("2026-01-08T21:00:00Z"),
                end: ts("2026-01-09T03:00:00Z")
            }
        );
        assert_eq!(w.open[7].end, w.to);
    }

    #[test]
    fn always_and_never_open_weeks() {
        let now = ts("2026-01-08T22:00:00Z");
        let always = week(&Windows::Always, now, &paris());
        assert_eq!(
            always.open,
            vec![BandView {
                start: always.from,
                end: always.to
            }]
        );
        assert!(week(&Windows::Never, now, &paris()).open.is_empty());
    }

    #[test]
    fn runs_are_newest_first_with_their_figures() {
        let runs = runs(&super::super::fixture::history());
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[0].started, ts("2025-12-31T21:00:00Z"));
        assert_eq!(runs[0].duration_secs, 6 * 3600);
        assert_eq!(
            (runs[0].files, runs[0].bytes, runs[0].uploaded),
            (Some(1000), Some(10_000_000_000), Some(5_000_000_000))
        );
        assert_eq!(runs[1].outcome, "failed");
        assert_eq!(runs[3].outcome, "stopped_early");
    }
}

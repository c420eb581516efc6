//! The samples behind the rate graphs: for each flow (a job's or a storage server's upload or
//! download), the bytes it moved in each interval and the limit in force, over the last hour
//! (10-second steps; the last ten minutes are read from the same ring) and the last 24 hours
//! (1-minute steps).
//!
//! Fed from what the web state already observes (the budget's byte counters, every few seconds)
//! and bounded: each ring holds a fixed number of steps and drops the oldest, so the daemon's
//! memory does not grow with its uptime. Kept in memory only: a restart starts the graphs
//! afresh, while the run history (in the state store) survives.

use std::collections::{BTreeMap, VecDeque};

use tahoe_jobs_config::jiff::Timestamp;
use tahoe_jobs_engine::BudgetReport;

/// A span of history: its step and how many steps it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub step_secs: i64,
    pub steps: usize,
}

/// The last ten minutes, in 10-second steps (read from the hour's ring).
pub const TEN_MINUTES: Span = Span {
    step_secs: 10,
    steps: 60,
};
/// The last hour, in 10-second steps.
pub const HOUR: Span = Span {
    step_secs: 10,
    steps: 360,
};
/// The last 24 hours, in 1-minute steps.
pub const DAY: Span = Span {
    step_secs: 60,
    steps: 1440,
};

impl Span {
    pub fn secs(self) -> i64 {
        self.step_secs * self.steps as i64
    }
}

/// One step of a flow: when it began (Unix seconds), its mean rate and the limit in force at
/// its end (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: i64,
    pub rate: f64,
    pub limit: Option<u64>,
}

/// Whose flow: a job or a storage server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    Job(String),
    Server(String),
}

#[derive(Debug, Clone, Copy)]
struct Step {
    start: i64,
    bytes: u64,
    /// Seconds of observation that fell in this step.
    secs: f64,
    limit: Option<u64>,
}

/// A bounded ring of steps.
#[derive(Debug)]
struct Ring {
    span: Span,
    steps: VecDeque<Step>,
}

impl Ring {
    fn new(span: Span) -> Ring {
        Ring {
            span,
            steps: VecDeque::new(),
        }
    }

    fn add(&mut self, at: i64, bytes: u64, secs: f64, limit: Option<u64>) {
        let start = at - at.rem_euclid(self.span.step_secs);
        match self.steps.back_mut() {
            Some(last) if last.start == start => {
                last.bytes += bytes;
                last.secs += secs;
                last.limit = limit;
            }
            // A clock that went back: count it in the newest step rather than reorder.
            Some(last) if last.start > start => {
                last.bytes += bytes;
                last.secs += secs;
            }
            _ => self.steps.push_back(Step {
                start,
                bytes,
                secs,
                limit,
            }),
        }
        let oldest = start - self.span.secs();
        while self
            .steps
            .front()
            .is_some_and(|s| s.start <= oldest || self.steps.len() > self.span.steps)
        {
            self.steps.pop_front();
        }
    }

    fn points(&self, now: i64, span: Span) -> Vec<Point> {
        let oldest = now - span.secs().min(self.span.secs());
        self.steps
            .iter()
            .filter(|s| s.start > oldest && s.secs > 0.0)
            .map(|s| Point {
                at: s.start,
                rate: s.bytes as f64 / s.secs,
                limit: s.limit,
            })
            .collect()
    }
}

/// One direction of one flow: the last counter value seen and both rings.
#[derive(Debug)]
struct Track {
    last: Option<(i64, u64)>,
    hour: Ring,
    day: Ring,
}

impl Track {
    fn new() -> Track {
        Track {
            last: None,
            hour: Ring::new(HOUR),
            day: Ring::new(DAY),
        }
    }

    /// `total` bytes moved so far, seen at `at` (Unix seconds) under `limit`.
    fn observe(&mut self, at: i64, total: u64, limit: Option<u64>) {
        let Some((last_at, last_total)) = self.last else {
            self.last = Some((at, total));
            return;
        };
        if at <= last_at {
            return;
        }
        // A counter that went back (its limiter was rebuilt) starts again from here.
        let bytes = total.saturating_sub(last_total);
        let secs = (at - last_at) as f64;
        self.hour.add(at, bytes, secs, limit);
        self.day.add(at, bytes, secs, limit);
        self.last = Some((at, total));
    }
}

/// Upload and download points of a flow over one span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub upload: Vec<Point>,
    pub download: Vec<Point>,
}

/// The rate history of every job and storage server.
#[derive(Debug, Default)]
pub struct RateHistory {
    flows: BTreeMap<(Owner, bool), Track>,
}

impl RateHistory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a flow's byte counter (`upload` or not) at `at`.
    pub fn observe(
        &mut self,
        owner: Owner,
        upload: bool,
        at: Timestamp,
        total: u64,
        limit: Option<u64>,
    ) {
        self.flows
            .entry((owner, upload))
            .or_insert_with(Track::new)
            .observe(at.as_second(), total, limit);
    }

    /// Records every job's and server's counters from the budget's report, and forgets the
    /// flows it no longer has.
    pub fn observe_budget(&mut self, report: &BudgetReport, at: Timestamp) {
        let stats = &report.stats;
        let mut seen = Vec::new();
        for (id, s) in &stats.jobs {
            for (upload, f) in [(true, &s.upload), (false, &s.download)] {
                seen.push((Owner::Job(id.clone()), upload));
                self.observe(Owner::Job(id.clone()), upload, at, f.bytes, f.limit);
            }
        }
        for (id, d) in &stats.destinations {
            for (upload, f) in [(true, &d.upload), (false, &d.download)] {
                seen.push((Owner::Server(id.clone()), upload));
                self.observe(Owner::Server(id.clone()), upload, at, f.bytes, f.limit);
            }
        }
        self.flows.retain(|key, _| seen.contains(key));
    }

    /// The points of `owner`'s flows over `span`, as of `now`.
    pub fn series(&self, owner: &Owner, span: Span, now: Timestamp) -> Series {
        let points = |upload: bool| {
            self.flows
                .get(&(owner.clone(), upload))
                .map(|t| {
                    let ring = if span.step_secs == HOUR.step_secs {
                        &t.hour
                    } else {
                        &t.day
                    };
                    ring.points(now.as_second(), span)
                })
                .unwrap_or_default()
        };
        Series {
            upload: points(true),
            download: points(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn job() -> Owner {
        Owner::Job("backup.b1".into())
    }

    #[test]
    fn rates_are_bytes_over_the_time_observed_in_each_step() {
        let mut h = RateHistory::new();
        // 1000 B/s for 30 s, sampled every 2 s, under a 4 KiB/s limit, then 0 B/s.
        for s in (0..=30).step_by(2) {
            h.observe(job(), true, at(s), 1000 * s as u64, Some(4096));
        }
        for s in (32..=40).step_by(2) {
            h.observe(job(), true, at(s), 30_000, Some(4096));
        }
        let series = h.series(&job(), HOUR, at(40));
        assert!(series.download.is_empty());
        let rates: Vec<f64> = series.upload.iter().map(|p| p.rate).collect();
        // The step from 30 s holds 2 s at 1000 B/s and 8 s at nothing.
        assert_eq!(rates, vec![1000.0, 1000.0, 1000.0, 200.0, 0.0]);
        assert!(series.upload.iter().all(|p| p.limit == Some(4096)));
        let ten = h.series(&job(), TEN_MINUTES, at(600 + 25));
        assert_eq!(ten.upload.len(), 2, "the steps from 30 s on: {ten:?}");
        let day = h.series(&job(), DAY, at(40));
        assert_eq!(day.upload.len(), 1, "one minute step");
        assert!((day.upload[0].rate - 750.0).abs() < 1e-9);
    }

    #[test]
    fn the_rings_are_bounded_and_drop_what_is_older_than_their_span() {
        let mut h = RateHistory::new();
        // Two days of samples every 10 s.
        for s in (0..2 * 86_400).step_by(10) {
            h.observe(job(), true, at(s), s as u64, None);
        }
        let now = at(2 * 86_400 - 10);
        let hour = h.series(&job(), HOUR, now).upload;
        let day = h.series(&job(), DAY, now).upload;
        assert!(hour.len() <= HOUR.steps, "{}", hour.len());
        assert!(day.len() <= DAY.steps, "{}", day.len());
        assert!(hour.len() >= HOUR.steps - 1);
        assert!(day.len() >= DAY.steps - 1);
        let track = &h.flows[&(job(), true)];
        assert!(track.hour.steps.len() <= HOUR.steps && track.day.steps.len() <= DAY.steps);
        assert!(hour
            .iter()
            .all(|p| p.at > now.as_second() - 3600 && (p.rate - 1.0).abs() < 1e-9));
        // Seen an hour later, the hour's ring shows nothing.
        assert!(h.series(&job(), HOUR, at(3 * 86_400)).upload.is_empty());
    }

    #[test]
    fn a_counter_that_goes_back_or_a_repeated_instant_adds_nothing() {
        let mut h = RateHistory::new();
        h.observe(job(), true, at(0), 5000, None);
        h.observe(job(), true, at(0), 9000, None);
        h.observe(job(), true, at(4), 100, None);
        h.observe(job(), true, at(8), 500, None);
        let points = h.series(&job(), HOUR, at(8)).upload;
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].rate, 50.0, "0 B in 4 s, then 400 B in 4 s");
        assert!(h
            .series(&Owner::Server("x".into()), HOUR, at(8))
            .upload
            .is_empty());
    }

    #[test]
    fn flows_gone_from_the_budget_are_forgotten() {
        let mut report = super::super::fixture::budget();
        let mut h = RateHistory::new();
        h.observe_budget(&report, at(0));
        h.observe_budget(&report, at(2));
        assert!(h
            .flows
            .contains_key(&(Owner::Server("v0-parents".into()), true)));
        report.stats.destinations.clear();
        h.observe_budget(&report, at(4));
        assert!(!h
            .flows
            .contains_key(&(Owner::Server("v0-parents".into()), true)));
        assert!(h.flows.contains_key(&(job(), false)));
    }
}

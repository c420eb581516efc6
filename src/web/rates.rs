//! Recent rates of each running job's counters (bytes uploaded per second, files walked per
//! second), from samples of the status taken every few seconds.
//!
//! A task's own average since its start hides a stall or a speed-up for hours in a 45-hour run;
//! what the user wants to see, and what an ETA should use, is the pace of the last minute.

use std::collections::{BTreeMap, HashMap, VecDeque};

use tahoe_jobs_config::jiff::Timestamp;

/// How far back a rate looks.
pub const RATE_SPAN_SECS: i64 = 60;

/// Samples of every running job's counters.
#[derive(Debug, Default)]
pub struct RateTracker {
    jobs: HashMap<String, Track>,
}

#[derive(Debug)]
struct Track {
    /// When the run being sampled started: a new run's counters start again from zero.
    run: Timestamp,
    samples: VecDeque<(Timestamp, BTreeMap<String, u64>)>,
}

impl RateTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a job's counters at `at`; `run` is when its current run started, `None` when it
    /// is not running (its samples are then dropped).
    pub fn observe(
        &mut self,
        job: &str,
        run: Option<Timestamp>,
        at: Timestamp,
        counters: &BTreeMap<String, u64>,
    ) {
        let Some(run) = run else {
            self.jobs.remove(job);
            return;
        };
        let track = self.jobs.entry(job.to_string()).or_insert_with(|| Track {
            run,
            samples: VecDeque::new(),
        });
        if track.run != run {
            track.run = run;
            track.samples.clear();
        }
        if track.samples.back().is_some_and(|(t, _)| *t >= at) {
            return;
        }
        track.samples.push_back((at, counters.clone()));
        // Keep one sample older than the span, so a rate always covers the whole span.
        while track.samples.len() > 2
            && track.samples[1].0.as_second() <= at.as_second() - RATE_SPAN_SECS
        {
            track.samples.pop_front();
        }
    }

    /// Forgets jobs that are gone from the configuration.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.jobs.retain(|job, _| keep(job));
    }

    /// `counter`'s increase per second over the recent samples; `None` until two samples at
    /// least a second apart exist, or when the counter went backwards.
    pub fn rate(&self, job: &str, counter: &str) -> Option<f64> {
        let track = self.jobs.get(job)?;
        let (t0, first) = track.samples.front()?;
        let (t1, last) = track.samples.back()?;
        let secs = t1.duration_since(*t0).as_secs_f64();
        if secs < 1.0 {
            return None;
        }
        let a = first.get(counter).copied().unwrap_or(0);
        let b = last.get(counter).copied().unwrap_or(0);
        (b >= a).then(|| (b - a) as f64 / secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn c(n: u64) -> BTreeMap<String, u64> {
        [("bytes_uploaded".to_string(), n)].into()
    }

    #[test]
    fn the_rate_covers_the_last_minute() {
        let mut r = RateTracker::new();
        let run = Some(at(0));
        r.observe("j", run, at(0), &c(0));
        assert_eq!(r.rate("j", "bytes_uploaded"), None, "one sample");
        // 10 B/s for two minutes, then 100 B/s for one.
        for s in (2..=120).step_by(2) {
            r.observe("j", run, at(s), &c(10 * s as u64));
        }
        assert_eq!(r.rate("j", "bytes_uploaded"), Some(10.0));
        for s in (122..=180).step_by(2) {
            r.observe("j", run, at(s), &c(1200 + 100 * (s as u64 - 120)));
        }
        let rate = r.rate("j", "bytes_uploaded").unwrap();
        assert!((rate - 100.0).abs() < 16.0, "{rate}");
        assert_eq!(r.rate("j", "files_seen"), Some(0.0));
    }

    #[test]
    fn a_new_run_or_a_stop_starts_afresh() {
        let mut r = RateTracker::new();
        r.observe("j", Some(at(0)), at(0), &c(0));
        r.observe("j", Some(at(0)), at(10), &c(1000));
        assert_eq!(r.rate("j", "bytes_uploaded"), Some(100.0));
        r.observe("j", Some(at(20)), at(20), &c(0));
        assert_eq!(r.rate("j", "bytes_uploaded"), None);
        r.observe("j", None, at(30), &c(0));
        assert_eq!(r.rate("j", "bytes_uploaded"), None);
        r.observe("k", Some(at(0)), at(0), &c(0));
        r.observe("k", Some(at(0)), at(5), &c(5));
        r.retain(|j| j != "k");
        assert_eq!(r.rate("k", "bytes_uploaded"), None);
    }
}

//! The last runs of a job (when each started and ended, how it ended, its counters), kept in the
//! store beside the job's record so the pages can show a history that survives restarts.
//!
//! Bounded: the oldest run is dropped when a new one would make more than [`HISTORY_LEN`], so a
//! job that runs every few minutes for years keeps a history of the same size. Written, like the
//! record, as JSON with a `"v"` version marker. The counters are the task's own, by name: the
//! engine does not know what they count.

use std::collections::{BTreeMap, VecDeque};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::record::RecordError;

/// How many runs a job's history keeps.
pub const HISTORY_LEN: usize = 50;

/// The history version this release writes and reads.
pub const HISTORY_VERSION: u64 = 1;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The run completed.
    Completed,
    /// Stopped before the end (window closed, paused, shut down); the next run resumes it.
    StoppedEarly,
    /// The run failed: its task could not be built, returned an error or panicked.
    Failed,
}

impl RunOutcome {
    /// The snake_case name, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            RunOutcome::Completed => "completed",
            RunOutcome::StoppedEarly => "stopped_early",
            RunOutcome::Failed => "failed",
        }
    }
}

/// One run: from the task's start to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEntry {
    /// When the run started.
    pub started: Timestamp,
    /// When the run ended.
    pub ended: Timestamp,
    /// How the run ended.
    pub outcome: RunOutcome,
    /// The task's counters at the end of the run.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// The task's labels at the end of the run (see [`crate::ProgressSink::set_label`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A job's last runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunHistory {
    runs: VecDeque<RunEntry>,
}

#[derive(Serialize, Deserialize)]
struct Versioned {
    v: u64,
    runs: VecDeque<RunEntry>,
}

impl RunHistory {
    /// Adds a run, dropping the oldest beyond [`HISTORY_LEN`].
    pub fn push(&mut self, run: RunEntry) {
        self.runs.push_back(run);
        while self.runs.len() > HISTORY_LEN {
            self.runs.pop_front();
        }
    }

    /// The runs, oldest first.
    pub fn runs(&self) -> impl DoubleEndedIterator<Item = &RunEntry> + ExactSizeIterator {
        self.runs.iter()
    }

    /// How many runs are kept (at most `HISTORY_LEN`).
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether no run is kept.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Encodes the history with its version marker.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Versioned {
            v: HISTORY_VERSION,
            runs: self.runs.clone(),
        })
        .expect("a history always serializes")
    }

    /// Decodes a history this release understands; one longer than the bound (written by a
    /// release with a larger one) keeps its newest runs.
    pub fn from_bytes(bytes: &[u8]) -> Result<RunHistory, RecordError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        let version = value
            .get("v")
            .and_then(serde_json::Value::as_u64)
            .ok_or(RecordError::NoVersion)?;
        if version != HISTORY_VERSION {
            return Err(RecordError::FutureVersion {
                found: version,
                supported: HISTORY_VERSION,
            });
        }
        let stored: Versioned = serde_json::from_value(value)?;
        let mut history = RunHistory::default();
        for run in stored.runs {
            history.push(run);
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: i64) -> RunEntry {
        RunEntry {
            started: Timestamp::from_second(1_800_000_000 + n * 100).unwrap(),
            ended: Timestamp::from_second(1_800_000_050 + n * 100).unwrap(),
            outcome: RunOutcome::Completed,
            counters: [("files_seen".to_string(), n as u64)].into(),
            labels: Default::default(),
        }
    }

    #[test]
    fn the_history_keeps_the_newest_runs_up_to_the_bound() {
        let mut h = RunHistory::default();
        for n in 0..(HISTORY_LEN as i64 + 7) {
            h.push(run(n));
        }
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h.runs().next().unwrap(), &run(7), "the oldest were dropped");
        assert_eq!(h.runs().last().unwrap(), &run(HISTORY_LEN as i64 + 6));
    }

    #[test]
    fn it_round_trips_with_a_version_marker() {
        let mut h = RunHistory::default();
        h.push(run(1));
        h.push(RunEntry {
            outcome: RunOutcome::StoppedEarly,
            labels: [("data_path".to_string(), "direct".to_string())].into(),
            ..run(2)
        });
        let bytes = h.to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["v"], 1);
        assert_eq!(value["runs"][1]["outcome"], "stopped_early");
        assert_eq!(value["runs"][1]["labels"]["data_path"], "direct");
        // No labels, no field: a history written before labels reads the same.
        assert!(value["runs"][0].get("labels").is_none());
        assert_eq!(RunHistory::from_bytes(&bytes).unwrap(), h);
    }

    #[test]
    fn a_longer_stored_history_is_cut_and_a_future_one_refused() {
        let runs: Vec<RunEntry> = (0..60).map(run).collect();
        let bytes = serde_json::to_vec(&serde_json::json!({ "v": 1, "runs": runs })).unwrap();
        let h = RunHistory::from_bytes(&bytes).unwrap();
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h.runs().next().unwrap(), &run(10));
        assert!(matches!(
            RunHistory::from_bytes(br#"{"v":2,"runs":[]}"#),
            Err(RecordError::FutureVersion { found: 2, .. })
        ));
        assert!(matches!(
            RunHistory::from_bytes(br#"{"runs":[]}"#),
            Err(RecordError::NoVersion)
        ));
    }
}

//! What the engine remembers about one job between runs and restarts, and how it is written.
//!
//! Each record is JSON with a `"v"` version marker, so a later release can migrate old records
//! and an older release refuses (with a clear error) a record it does not understand instead of
//! misreading it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::stop::StopReason;

/// The record version this release writes and reads.
pub const RECORD_VERSION: u64 = 1;

/// How the last run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LastOutcome {
    /// The run completed.
    Completed {
        /// When the run ended.
        at: Timestamp,
    },
    /// `reason` is `None` when the task stopped without being asked to.
    StoppedEarly {
        /// When the run ended.
        at: Timestamp,
        /// Why it was asked to stop.
        reason: Option<StopReason>,
    },
    /// The run failed (or its task panicked).
    Failed {
        /// When the run ended.
        at: Timestamp,
        /// The error, as displayed.
        message: String,
    },
}

impl LastOutcome {
    /// When the run ended.
    pub fn at(&self) -> Timestamp {
        match self {
            LastOutcome::Completed { at }
            | LastOutcome::StoppedEarly { at, .. }
            | LastOutcome::Failed { at, .. } => *at,
        }
    }
}

/// A pause set by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PauseState {
    /// Until the user resumes the job.
    Indefinite,
    /// Until an instant (a pause `for` a while).
    Until {
        /// When the pause ends.
        until: Timestamp,
    },
}

impl PauseState {
    /// Whether the pause still holds at `now` (a pause `for` a while lapses by itself).
    pub fn active_at(self, now: Timestamp) -> bool {
        match self {
            PauseState::Indefinite => true,
            PauseState::Until { until } => now < until,
        }
    }

    /// When the pause ends; `None` for an indefinite pause.
    pub fn until(self) -> Option<Timestamp> {
        match self {
            PauseState::Indefinite => None,
            PauseState::Until { until } => Some(until),
        }
    }
}

/// The last failure, kept until a run completes so the status can show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// When the failed run ended.
    pub at: Timestamp,
    /// The error, as displayed.
    pub message: String,
}

/// One job's persisted record (version 1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRecord {
    /// When the current logical run first started; set while a run is unfinished (stopped early,
    /// failed, or cut off by a crash), cleared when it completes. An unfinished run is resumed at
    /// the next opportunity whatever the frequency says.
    pub unfinished_run: Option<Timestamp>,
    /// When the engine first saw this job: a job that never completed counts as overdue from
    /// here. Added after version 1 was released, so older version-1 records lack it (the
    /// struct's `serde(default)` reads them as `None`, and the job actor sets it at its start);
    /// older releases ignore it, so the version stays 1.
    pub first_seen: Option<Timestamp>,
    /// When the last run started.
    pub last_started: Option<Timestamp>,
    /// When a run last completed.
    pub last_completed: Option<Timestamp>,
    /// How the last run ended.
    pub last_outcome: Option<LastOutcome>,
    /// The last failure, cleared when a run completes.
    pub last_error: Option<LastError>,
    /// A pause set by the user, if any; it may have lapsed (see `PauseState::active_at`).
    pub pause: Option<PauseState>,
    /// Failed runs since the last completed one; drives the backoff.
    pub consecutive_failures: u32,
    /// Counters of the most recent run, however it ended.
    pub last_run_counters: BTreeMap<String, u64>,
    /// Counters of the most recent completed run: estimates for the next one.
    pub last_completed_totals: BTreeMap<String, u64>,
}

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(
        "the record was written by a newer tahoe-jobs (record version {found}; this release \
         reads up to {supported}): upgrade tahoe-jobs, or move the state directory aside to \
         start afresh"
    )]
    /// The record's version is not the one this release reads (a newer release wrote it).
    FutureVersion {
        /// The version marker found in the record.
        found: u64,
        /// The version this release reads, [`RECORD_VERSION`].
        supported: u64,
    },
    /// The record has no `"v"` marker.
    #[error("the record has no version marker \"v\"; it was not written by tahoe-jobs")]
    NoVersion,
    /// The record's JSON is not valid or does not match the version's shape.
    #[error("the record is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Versioned<'a> {
    v: u64,
    #[serde(flatten)]
    record: &'a JobRecord,
}

impl JobRecord {
    /// Encodes the record with its version marker.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Versioned {
            v: RECORD_VERSION,
            record: self,
        })
        .expect("a record always serializes")
    }

    /// Decodes a record of any version this release understands.
    pub fn from_bytes(bytes: &[u8]) -> Result<JobRecord, RecordError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        let version = value
            .get("v")
            .and_then(serde_json::Value::as_u64)
            .ok_or(RecordError::NoVersion)?;
        match version {
            RECORD_VERSION => Ok(serde_json::from_value(value)?),
            found => Err(RecordError::FutureVersion {
                found,
                supported: RECORD_VERSION,
            }),
        }
    }

    /// The pause in force at `now`, if any.
    pub fn active_pause(&self, now: Timestamp) -> Option<PauseState> {
        self.pause.filter(|p| p.active_at(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_with_a_version_marker() {
        let mut record = JobRecord {
            last_completed: Some(ts("2026-01-01T00:00:00Z")),
            last_outcome: Some(LastOutcome::StoppedEarly {
                at: ts("2026-01-02T00:00:00Z"),
                reason: Some(StopReason::WindowClosed),
            }),
            pause: Some(PauseState::Until {
                until: ts("2026-01-03T00:00:00Z"),
            }),
            consecutive_failures: 2,
            ..JobRecord::default()
        };
        record.last_run_counters.insert("files".into(), 7);
        let bytes = record.to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["v"], 1);
        assert_eq!(JobRecord::from_bytes(&bytes).unwrap(), record);
    }

    #[test]
    fn a_version_1_record_without_first_seen_still_loads() {
        // As the first release wrote them, before `first_seen` existed.
        let old = br#"{"v":1,"unfinished_run":null,"last_started":"2026-01-01T00:00:00Z",
            "last_completed":"2026-01-01T01:00:00Z","last_outcome":{"kind":"completed",
            "at":"2026-01-01T01:00:00Z"},"last_error":null,"pause":null,
            "consecutive_failures":0,"last_run_counters":{},"last_completed_totals":{}}"#;
        let record = JobRecord::from_bytes(old).unwrap();
        assert_eq!(record.first_seen, None);
        assert_eq!(record.last_completed, Some(ts("2026-01-01T01:00:00Z")));
        let seen = JobRecord {
            first_seen: Some(ts("2026-01-02T00:00:00Z")),
            ..record
        };
        let bytes = seen.to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["v"], 1);
        assert_eq!(JobRecord::from_bytes(&bytes).unwrap(), seen);
    }

    #[test]
    fn a_future_version_is_a_clear_error() {
        let err = JobRecord::from_bytes(br#"{"v":2,"something":"new"}"#).unwrap_err();
        assert!(matches!(
            err,
            RecordError::FutureVersion {
                found: 2,
                supported: 1
            }
        ));
        assert!(err.to_string().contains("upgrade tahoe-jobs"), "{err}");
    }

    #[test]
    fn a_record_without_a_version_is_refused() {
        assert!(matches!(
            JobRecord::from_bytes(br#"{"last_started":null}"#),
            Err(RecordError::NoVersion)
        ));
        assert!(matches!(
            JobRecord::from_bytes(b"not json"),
            Err(RecordError::Invalid(_))
        ));
    }

    #[test]
    fn pause_for_lapses() {
        let p = PauseState::Until {
            until: ts("2026-01-01T01:00:00Z"),
        };
        assert!(p.active_at(ts("2026-01-01T00:59:59Z")));
        assert!(!p.active_at(ts("2026-01-01T01:00:00Z")));
        assert!(PauseState::Indefinite.active_at(ts("2099-01-01T00:00:00Z")));
    }
}

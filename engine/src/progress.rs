//! The progress sink a task reports into: named counters, short named labels, the current item,
//! estimates of the total, and recent warnings. The engine reads snapshots of it for status
//! pages.
//!
//! Counters, labels and estimates are public (the pages still hide capabilities and paths in
//! labels); the current item and warnings may name files and are only shown on the private
//! control page.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How many recent warnings are kept per job.
pub const WARNINGS_KEPT: usize = 100;

/// A point-in-time copy of a run's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    /// Counters by name (`files`, `bytes`), as the task set them.
    pub counters: BTreeMap<String, u64>,
    /// Short texts about the run by name, as the task set them (which way it reaches its
    /// data, say). The engine does not know what they mean.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What the task is working on now (private: may be a path).
    pub current: Option<String>,
    /// Estimated totals for this run, by counter name (from the previous run, say).
    pub estimates: BTreeMap<String, u64>,
    /// Recent warnings, oldest first (private: may name paths).
    pub warnings: VecDeque<Warning>,
    /// How many warnings there were in all (the list keeps the latest).
    pub warnings_total: u64,
}

/// Something the user should know about a run (a skipped file, say); shown only on the
/// private control page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// When it happened.
    pub at: Timestamp,
    /// What happened (never a capability).
    pub message: String,
}

/// A cloneable handle to one run's progress.
#[derive(Debug, Clone, Default)]
pub struct ProgressSink(Arc<Mutex<ProgressSnapshot>>);

impl ProgressSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut ProgressSnapshot) -> R) -> R {
        f(&mut self.0.lock().expect("progress lock"))
    }

    /// Adds `n` to a counter.
    pub fn add(&self, counter: &str, n: u64) {
        self.with(|p| *p.counters.entry(counter.to_string()).or_default() += n);
    }

    /// Sets a counter.
    pub fn set(&self, counter: &str, value: u64) {
        self.with(|p| {
            p.counters.insert(counter.to_string(), value);
        });
    }

    /// The value of `counter` (0 if unset).
    pub fn get(&self, counter: &str) -> u64 {
        self.with(|p| p.counters.get(counter).copied().unwrap_or(0))
    }

    /// Sets a label: a short text about the run shown with its counters (never a secret).
    pub fn set_label(&self, name: &str, value: impl Into<String>) {
        self.with(|p| {
            p.labels.insert(name.to_string(), value.into());
        });
    }

    /// What the task works on now (a path, say; shown only on the private control page).
    pub fn set_current(&self, item: Option<String>) {
        self.with(|p| p.current = item);
    }

    /// Records the expected final value of a counter, for estimates of what is left.
    pub fn set_estimate(&self, counter: &str, total: u64) {
        self.with(|p| {
            p.estimates.insert(counter.to_string(), total);
        });
    }

    /// Records a warning (also worth logging by the caller, without secrets).
    pub fn warn(&self, at: Timestamp, message: impl Into<String>) {
        self.with(|p| {
            p.warnings_total += 1;
            if p.warnings.len() == WARNINGS_KEPT {
                p.warnings.pop_front();
            }
            p.warnings.push_back(Warning {
                at,
                message: message.into(),
            });
        });
    }

    /// A copy of everything, for the status.
    pub fn snapshot(&self) -> ProgressSnapshot {
        self.with(|p| p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_estimates_and_bounded_warnings() {
        let sink = ProgressSink::new();
        sink.add("files_uploaded", 2);
        sink.add("files_uploaded", 3);
        sink.set("files_seen", 10);
        sink.set_estimate("files_seen", 100);
        sink.set_label("mode", "fast");
        sink.set_label("mode", "slow");
        for i in 0..(WARNINGS_KEPT + 5) {
            sink.warn(Timestamp::UNIX_EPOCH, format!("w{i}"));
        }
        let snap = sink.snapshot();
        assert_eq!(snap.counters["files_uploaded"], 5);
        assert_eq!(snap.counters["files_seen"], 10);
        assert_eq!(snap.estimates["files_seen"], 100);
        assert_eq!(snap.labels["mode"], "slow");
        assert_eq!(snap.warnings.len(), WARNINGS_KEPT);
        assert_eq!(snap.warnings_total, (WARNINGS_KEPT + 5) as u64);
        assert_eq!(snap.warnings.front().unwrap().message, "w5");
    }
}

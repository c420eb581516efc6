//! What the check task remembers, as stored values: per object the last check's findings and
//! what was done about them, the frontier entries of a traversal, and the state of a pass.
//!
//! Every value is one format-version byte followed by JSON, so a later release can tell an old
//! record from a new one; an unknown version is an error, never a guess.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::summary::CheckSummary;
use crate::tahoe::CheckResults;

/// The format version written by this release.
pub const FORMAT: u8 = 1;

/// Whether an object is a file or a directory (directories are listed as well as checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A file.
    File,
    /// A directory.
    Directory,
}

/// The numbers of one check, before or after a repair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// Whether the node judged the object healthy.
    pub healthy: bool,
    /// Whether enough shares were found to recover the object.
    pub recoverable: bool,
    /// Distinct good shares found.
    pub shares_good: u64,
    /// Shares needed to recover the object (k).
    pub shares_needed: u64,
    /// Shares the object was encoded into (N).
    pub shares_expected: u64,
    /// Servers holding at least one good share.
    pub good_hosts: u64,
    /// Tahoe's servers-of-happiness measure of the placement.
    pub happiness: u64,
    /// Corrupt shares found.
    pub corrupt_shares: u64,
    /// Servers that answered the check (whether or not they hold shares).
    pub servers_responding: u64,
    /// Good share holders by server id (`v0-...`): how many shares each holds.
    pub hosts: BTreeMap<String, u32>,
}

impl Findings {
    /// Reads a check's `results`. Missing counts (a literal object's answer) read as zero, and
    /// a missing `recoverable` as "recoverable if healthy".
    pub fn from_results(r: &CheckResults) -> Findings {
        let mut hosts: BTreeMap<String, u32> = BTreeMap::new();
        for servers in r.sharemap.values() {
            for s in servers {
                *hosts.entry(s.clone()).or_default() += 1;
            }
        }
        Findings {
            healthy: r.healthy,
            recoverable: r.recoverable.unwrap_or(r.healthy),
            shares_good: r.count_shares_good.unwrap_or(0),
            shares_needed: r.count_shares_needed.unwrap_or(0),
            shares_expected: r.count_shares_expected.unwrap_or(0),
            good_hosts: r.count_good_share_hosts.unwrap_or(hosts.len() as u64),
            happiness: r.count_happiness.unwrap_or(0),
            corrupt_shares: r.count_corrupt_shares.unwrap_or(0),
            servers_responding: r.servers_responding.len() as u64,
            hosts,
        }
    }

    /// Shares missing from a full set (what a repair has to upload).
    pub fn missing_shares(&self) -> u64 {
        self.shares_expected.saturating_sub(self.shares_good)
    }
}

/// A repair the node attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairOutcome {
    /// Whether the node reported the repair successful.
    pub successful: bool,
    /// The node's check right after the repair.
    pub after: Findings,
}

/// What became of an object that was healthy but on fewer servers than `shares.happy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Rebalance {
    /// Repair is off: only reported.
    NotAttempted,
    /// Not possible in this state; retried next time (too few servers answered, say).
    Deferred {
        /// Why, in words.
        reason: String,
    },
    /// Not possible for this object at all (a mutable file, another encoding).
    Impossible {
        /// Why, in words.
        reason: String,
    },
    /// The node placed the shares again; the good share hosts before and after.
    Done {
        /// Servers holding a good share before the re-upload.
        hosts_before: u64,
        /// Servers holding a good share after it.
        hosts_after: u64,
    },
    /// The attempt failed (the node's message, capabilities removed).
    Failed {
        /// What failed.
        error: String,
    },
}

impl Rebalance {
    /// True when the object now has at least `happy` good share hosts.
    pub fn helped(&self, happy: u32) -> bool {
        matches!(self, Rebalance::Done { hosts_after, .. } if *hosts_after >= u64::from(happy))
    }
}

/// The last check of one object, keyed by its verify cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// The pass that checked it.
    pub pass: u64,
    /// Unix seconds.
    pub checked_at: i64,
    /// Whether it is a file or a directory.
    pub kind: ObjectKind,
    /// Names the shares on the servers (`storage/shares/<first 2>/<index>/`); grants nothing.
    pub storage_index: String,
    /// Where it was last seen, below the job's target (private: for the control page).
    pub path: String,
    /// Whether the check verified the shares' contents.
    pub verified: bool,
    /// Whether the check added or renewed a lease on the shares.
    pub lease_added: bool,
    /// Before any repair.
    pub found: Findings,
    /// The repair the node attempted; `None` when none was.
    pub repair: Option<RepairOutcome>,
    /// Set when the object was unbalanced after the check (and repair, if any).
    pub rebalance: Option<Rebalance>,
    /// The `shares.happy` it was judged against.
    pub happy: u32,
}

impl ObjectRecord {
    /// Healthy after whatever repair happened.
    pub fn healthy_now(&self) -> bool {
        match &self.repair {
            Some(r) => r.successful && r.after.healthy,
            None => self.found.healthy,
        }
    }

    /// Good share hosts after whatever repair and rebalance happened.
    pub fn good_hosts_now(&self) -> u64 {
        match (&self.rebalance, &self.repair) {
            (Some(Rebalance::Done { hosts_after, .. }), _) => *hosts_after,
            (_, Some(r)) => r.after.good_hosts,
            _ => self.found.good_hosts,
        }
    }

    /// Healthy, but on fewer servers than `shares.happy`, even after any repair or rebalance.
    pub fn unbalanced_now(&self) -> bool {
        self.healthy_now() && self.good_hosts_now() < u64::from(self.happy)
    }

    /// Nothing left to do for it: what makes a recent check worth skipping.
    pub fn fine(&self) -> bool {
        self.healthy_now() && !self.unbalanced_now()
    }
}

/// An object still to visit in the current pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontierEntry {
    /// Below the job's target; empty for the target itself.
    pub path: String,
    /// The strongest cap known (a write cap when the parent gave one: mutable repair needs it).
    /// A secret: the store lives in the node's private directory.
    pub cap: String,
    /// Its verify cap, the key of its records; `None` when it has none (LIT caps).
    pub verify_cap: Option<String>,
    /// Whether it is a file or a directory.
    pub kind: ObjectKind,
    /// Its size in bytes, if its parent's listing gave one.
    pub size: Option<u64>,
}

/// The state of the current (or last) pass over the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassState {
    /// The pass number: 1 for a job's first pass, one more for each pass after.
    pub id: u64,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; set when the frontier ran empty.
    pub finished_at: Option<i64>,
    /// Sequence number for the next frontier entry.
    pub next_seq: u64,
    /// Counts of this pass so far (across stopped and resumed runs).
    pub counts: CheckSummary,
}

impl PassState {
    /// True once the pass completed (`finished_at` is set).
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

/// A stored value in a format this release cannot read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The value starts with a format version this release does not know.
    #[error("a stored {what} has format version {version}, which this tahoe-jobs does not know (written by a newer release?)")]
    UnknownVersion {
        /// What kind of value it is, e.g. `object record`.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// The value is empty or its JSON does not decode.
    #[error("a stored {what} is damaged: {message}")]
    Damaged {
        /// What kind of value it is, e.g. `object record`.
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// One version byte, then JSON.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    // Serializing plain structs of strings and numbers to a Vec cannot fail.
    serde_json::to_writer(&mut out, value).expect("records serialize");
    out
}

/// Reads a value written by [`encode`]; `what` names it in errors.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, FormatError> {
    match bytes.split_first() {
        Some((&FORMAT, json)) => serde_json::from_slice(json).map_err(|e| FormatError::Damaged {
            what,
            message: e.to_string(),
        }),
        Some((&version, _)) => Err(FormatError::UnknownVersion { what, version }),
        None => Err(FormatError::Damaged {
            what,
            message: "empty value".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(healthy: bool, hosts: u64) -> ObjectRecord {
        ObjectRecord {
            pass: 1,
            checked_at: 0,
            kind: ObjectKind::File,
            storage_index: String::new(),
            path: "a".into(),
            verified: false,
            lease_added: true,
            found: Findings {
                healthy,
                recoverable: true,
                good_hosts: hosts,
                ..Findings::default()
            },
            repair: None,
            rebalance: None,
            happy: 3,
        }
    }

    #[test]
    fn round_trip_and_unknown_version() {
        let r = record(true, 3);
        let bytes = encode(&r);
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(decode::<ObjectRecord>("object record", &bytes).unwrap(), r);
        let mut newer = bytes.clone();
        newer[0] = 9;
        let err = decode::<ObjectRecord>("object record", &newer).unwrap_err();
        assert!(err.to_string().contains("format version 9"), "{err}");
        assert!(decode::<ObjectRecord>("object record", &[FORMAT, b'{']).is_err());
        assert!(decode::<ObjectRecord>("object record", &[]).is_err());
    }

    #[test]
    fn state_after_repair_and_rebalance() {
        let mut r = record(false, 2);
        assert!(!r.healthy_now() && !r.unbalanced_now() && !r.fine());
        r.repair = Some(RepairOutcome {
            successful: true,
            after: Findings {
                healthy: true,
                recoverable: true,
                good_hosts: 2,
                ..Findings::default()
            },
        });
        assert!(r.healthy_now() && r.unbalanced_now() && !r.fine());
        r.rebalance = Some(Rebalance::Done {
            hosts_before: 2,
            hosts_after: 3,
        });
        assert!(r.fine());
        assert!(r.rebalance.as_ref().unwrap().helped(3));
        assert!(!Rebalance::Done {
            hosts_before: 1,
            hosts_after: 2
        }
        .helped(3));
    }

    #[test]
    fn findings_from_a_check() {
        let results: CheckResults = serde_json::from_value(serde_json::json!({
            "healthy": false, "recoverable": true, "count-shares-good": 2, "count-shares-needed": 2,
            "count-shares-expected": 3, "count-good-share-hosts": 2, "count-corrupt-shares": 1,
            "servers-responding": ["v0-a", "v0-b", "v0-c"],
            "sharemap": {"0": ["v0-a"], "1": ["v0-b"], "2": ["v0-b"]}}))
        .unwrap();
        let f = Findings::from_results(&results);
        assert_eq!(f.hosts.get("v0-b"), Some(&2));
        assert_eq!(
            (f.good_hosts, f.servers_responding, f.missing_shares()),
            (2, 3, 1)
        );
        let lit = Findings::from_results(&CheckResults {
            healthy: true,
            ..CheckResults::default()
        });
        assert!(lit.healthy && lit.recoverable);
    }
}

//! The counts of a pass: the progress counter names, how one object's record adds to them, and
//! the summary `tahoe deep-check` would print for the same results, with its exit code.

use serde::{Deserialize, Serialize};
use tahoe_jobs_engine::ProgressSink;

use super::record::{ObjectRecord, Rebalance};

/// Progress counter names (public on status pages: counts only, never paths).
pub mod counter {
    /// Objects whose health was established in this pass (literal objects included).
    pub const OBJECTS_CHECKED: &str = "objects_checked";
    /// Healthy before any repair.
    pub const HEALTHY: &str = "healthy";
    /// Unhealthy before any repair.
    pub const UNHEALTHY: &str = "unhealthy";
    /// Too few shares found to recover them, before any repair.
    pub const UNRECOVERABLE: &str = "unrecoverable";
    /// Corrupt shares found (a share count, not an object count).
    pub const CORRUPT_SHARES: &str = "corrupt_shares";
    /// Objects the node attempted to repair.
    pub const REPAIRS_ATTEMPTED: &str = "repairs_attempted";
    /// Repairs after which the object was healthy.
    pub const REPAIRED: &str = "repaired";
    /// Unhealthy after whatever repair happened.
    pub const STILL_UNHEALTHY: &str = "still_unhealthy";
    /// Healthy but on fewer servers than `shares.happy`, after any repair.
    pub const UNBALANCED: &str = "unbalanced";
    /// Unbalanced objects that the node placed on `shares.happy` servers again.
    pub const REBALANCED: &str = "rebalanced";
    /// Skipped because they were checked within `recheck_after` and were fine.
    pub const SKIPPED_RECENT: &str = "skipped_recent";
    /// Objects that could not be checked or directories that could not be listed.
    pub const ERRORS: &str = "errors";
    /// Directories whose children were listed.
    pub const DIRS_LISTED: &str = "dirs_listed";
}

/// The counts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckSummary {
    /// Objects whose health was established (literal objects included).
    pub objects_checked: u64,
    /// Objects healthy before any repair.
    pub healthy: u64,
    /// Objects unhealthy before any repair.
    pub unhealthy: u64,
    /// Objects with too few shares to recover them, before any repair.
    pub unrecoverable: u64,
    /// Corrupt shares found, over all objects.
    pub corrupt_shares: u64,
    /// Objects the node attempted to repair.
    pub repairs_attempted: u64,
    /// Repairs after which the object was healthy.
    pub repaired: u64,
    /// Objects unhealthy after whatever repair happened.
    pub still_unhealthy: u64,
    /// Objects healthy but on fewer servers than `shares.happy`, after any repair.
    pub unbalanced: u64,
    /// Unbalanced objects that the node placed on `shares.happy` servers again.
    pub rebalanced: u64,
    /// Objects skipped because they were checked within `recheck_after` and were fine.
    pub skipped_recent: u64,
    /// Objects that could not be checked or directories that could not be listed.
    pub errors: u64,
    /// Directories whose children were listed.
    pub dirs_listed: u64,
}

impl CheckSummary {
    /// Adds one checked object.
    pub fn add_record(&mut self, r: &ObjectRecord) {
        self.objects_checked += 1;
        if r.found.healthy {
            self.healthy += 1;
        } else {
            self.unhealthy += 1;
        }
        if !r.found.recoverable {
            self.unrecoverable += 1;
        }
        self.corrupt_shares += r.found.corrupt_shares;
        if r.repair.is_some() {
            self.repairs_attempted += 1;
            if r.healthy_now() {
                self.repaired += 1;
            }
        }
        if !r.healthy_now() {
            self.still_unhealthy += 1;
        }
        if let Some(rebalance) = &r.rebalance {
            self.unbalanced += 1;
            if rebalance.helped(r.happy) {
                self.rebalanced += 1;
            }
        }
    }

    /// Adds a literal object: its data is in its cap, so it is healthy by definition.
    pub fn add_literal(&mut self) {
        self.objects_checked += 1;
        self.healthy += 1;
    }

    /// Adds the counts of `other` (one visit's) to these.
    pub fn add(&mut self, other: &CheckSummary) {
        let CheckSummary {
            objects_checked,
            healthy,
            unhealthy,
            unrecoverable,
            corrupt_shares,
            repairs_attempted,
            repaired,
            still_unhealthy,
            unbalanced,
            rebalanced,
            skipped_recent,
            errors,
            dirs_listed,
        } = other;
        self.objects_checked += objects_checked;
        self.healthy += healthy;
        self.unhealthy += unhealthy;
        self.unrecoverable += unrecoverable;
        self.corrupt_shares += corrupt_shares;
        self.repairs_attempted += repairs_attempted;
        self.repaired += repaired;
        self.still_unhealthy += still_unhealthy;
        self.unbalanced += unbalanced;
        self.rebalanced += rebalanced;
        self.skipped_recent += skipped_recent;
        self.errors += errors;
        self.dirs_listed += dirs_listed;
    }

    /// Repairs that left the object unhealthy.
    pub fn repairs_failed(&self) -> u64 {
        self.repairs_attempted - self.repaired.min(self.repairs_attempted)
    }

    fn pairs(&self) -> [(&'static str, u64); 13] {
        use counter::*;
        [
            (OBJECTS_CHECKED, self.objects_checked),
            (HEALTHY, self.healthy),
            (UNHEALTHY, self.unhealthy),
            (UNRECOVERABLE, self.unrecoverable),
            (CORRUPT_SHARES, self.corrupt_shares),
            (REPAIRS_ATTEMPTED, self.repairs_attempted),
            (REPAIRED, self.repaired),
            (STILL_UNHEALTHY, self.still_unhealthy),
            (UNBALANCED, self.unbalanced),
            (REBALANCED, self.rebalanced),
            (SKIPPED_RECENT, self.skipped_recent),
            (ERRORS, self.errors),
            (DIRS_LISTED, self.dirs_listed),
        ]
    }

    /// Shows the counts in a run's progress (a resumed pass shows the whole pass so far).
    pub fn to_progress(&self, p: &ProgressSink) {
        for (name, value) in self.pairs() {
            p.set(name, value);
        }
    }

    /// `tahoe deep-check`'s summary for these counts (`repairing`: the `--repair` form), then
    /// one line of what deep-check does not report: unrecoverable objects, corrupt shares and
    /// placement against `happy`, plus errors and skips when there were any.
    pub fn lines(&self, repairing: bool, happy: u32) -> Vec<String> {
        let mut out = Vec::new();
        if repairing {
            out.push(format!("done: {} objects checked", self.objects_checked));
            out.push(format!(
                " pre-repair: {} healthy, {} unhealthy",
                self.healthy, self.unhealthy
            ));
            out.push(format!(
                " {} repairs attempted, {} successful, {} failed",
                self.repairs_attempted,
                self.repaired,
                self.repairs_failed()
            ));
            out.push(format!(
                " post-repair: {} healthy, {} unhealthy",
                self.objects_checked - self.still_unhealthy.min(self.objects_checked),
                self.still_unhealthy
            ));
        } else {
            out.push(format!(
                "done: {} objects checked, {} healthy, {} unhealthy",
                self.objects_checked, self.healthy, self.unhealthy
            ));
        }
        let mut extra = format!(
            " {} unrecoverable, {} corrupt shares, {} unbalanced (fewer than {happy} good share hosts)",
            self.unrecoverable, self.corrupt_shares, self.unbalanced
        );
        if repairing {
            extra.push_str(&format!(", {} rebalanced", self.rebalanced));
        }
        out.push(extra);
        if self.errors > 0 {
            out.push(format!(
                " {} objects could not be checked or listed",
                self.errors
            ));
        }
        if self.skipped_recent > 0 {
            out.push(format!(
                " {} objects skipped (checked recently)",
                self.skipped_recent
            ));
        }
        out
    }

    /// The one-shot command's exit code: 0 when every object is healthy (after repair, when
    /// repairing) and every object could be checked, else 1. Unbalanced objects are healthy.
    pub fn exit_code(&self) -> i32 {
        if self.still_unhealthy == 0 && self.errors == 0 {
            0
        } else {
            1
        }
    }
}

/// A one-line description of one object's state for warnings and `-v` output (no caps).
pub fn describe(r: &ObjectRecord) -> String {
    let f = &r.found;
    let mut s = if f.healthy {
        "healthy".to_string()
    } else if f.recoverable {
        "not healthy".to_string()
    } else {
        "unrecoverable".to_string()
    };
    if f.shares_expected > 0 {
        s.push_str(&format!(
            ": {} good shares (encoding is {}-of-{}) on {} servers",
            f.shares_good, f.shares_needed, f.shares_expected, f.good_hosts
        ));
    }
    if f.corrupt_shares > 0 {
        s.push_str(&format!(", {} corrupt", f.corrupt_shares));
    }
    if let Some(repair) = &r.repair {
        s.push_str(if r.healthy_now() {
            "; repair successful"
        } else {
            "; repair failed"
        });
        if repair.after.shares_expected > 0 {
            s.push_str(&format!(
                " ({} good shares on {} servers after)",
                repair.after.shares_good, repair.after.good_hosts
            ));
        }
    }
    match &r.rebalance {
        None => {}
        Some(Rebalance::NotAttempted) => s.push_str(&format!(
            "; unbalanced: {} good share hosts, {} wanted",
            r.good_hosts_now(),
            r.happy
        )),
        Some(Rebalance::Deferred { reason }) => {
            s.push_str(&format!("; unbalanced, rebalance deferred: {reason}"))
        }
        Some(Rebalance::Impossible { reason }) => {
            s.push_str(&format!("; unbalanced, cannot rebalance: {reason}"))
        }
        Some(Rebalance::Done {
            hosts_before,
            hosts_after,
        }) => s.push_str(&format!(
            "; rebalanced: {hosts_before} -> {hosts_after} good share hosts{}",
            if *hosts_after >= u64::from(r.happy) {
                ""
            } else {
                " (did not help enough)"
            }
        )),
        Some(Rebalance::Failed { error }) => {
            s.push_str(&format!("; unbalanced, rebalance failed: {error}"))
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::record::{Findings, ObjectKind, RepairOutcome};

    fn rec(healthy: bool, recoverable: bool) -> ObjectRecord {
        ObjectRecord {
            pass: 1,
            checked_at: 0,
            kind: ObjectKind::File,
            storage_index: String::new(),
            path: "p".into(),
            verified: true,
            lease_added: false,
            found: Findings {
                healthy,
                recoverable,
                shares_good: 2,
                shares_needed: 2,
                shares_expected: 3,
                good_hosts: 2,
                corrupt_shares: 1,
                ..Findings::default()
            },
            repair: None,
            rebalance: None,
            happy: 3,
        }
    }

    #[test]
    fn deep_check_lines_and_exit_code() {
        let mut s = CheckSummary::default();
        s.add_literal();
        s.add_record(&rec(true, true));
        s.add_record(&rec(false, true));
        assert_eq!(
            s.lines(false, 3),
            vec![
                "done: 3 objects checked, 2 healthy, 1 unhealthy".to_string(),
                " 0 unrecoverable, 2 corrupt shares, 0 unbalanced (fewer than 3 good share hosts)"
                    .to_string(),
            ]
        );
        assert_eq!(s.exit_code(), 1);
        let mut ok = CheckSummary::default();
        ok.add_literal();
        assert_eq!(ok.exit_code(), 0);
        ok.errors = 1;
        assert_eq!(ok.exit_code(), 1);
        assert_eq!(
            ok.lines(false, 3)[2],
            " 1 objects could not be checked or listed"
        );
    }

    #[test]
    fn repair_lines_count_pre_and_post() {
        let mut s = CheckSummary::default();
        s.add_record(&rec(true, true));
        let mut fixed = rec(false, true);
        fixed.repair = Some(RepairOutcome {
            successful: true,
            after: Findings {
                healthy: true,
                recoverable: true,
                good_hosts: 3,
                ..Findings::default()
            },
        });
        s.add_record(&fixed);
        let mut failed = rec(false, true);
        failed.repair = Some(RepairOutcome {
            successful: false,
            after: failed.found.clone(),
        });
        s.add_record(&failed);
        let mut balanced = rec(true, true);
        balanced.rebalance = Some(Rebalance::Done {
            hosts_before: 2,
            hosts_after: 3,
        });
        s.add_record(&balanced);
        assert_eq!(
            s.lines(true, 3),
            vec![
                "done: 4 objects checked".to_string(),
                " pre-repair: 2 healthy, 2 unhealthy".to_string(),
                " 2 repairs attempted, 1 successful, 1 failed".to_string(),
                " post-repair: 3 healthy, 1 unhealthy".to_string(),
                " 0 unrecoverable, 4 corrupt shares, 1 unbalanced (fewer than 3 good share hosts), 1 rebalanced"
                    .to_string(),
            ]
        );
        assert_eq!(s.exit_code(), 1);
        assert!(describe(&failed).contains("repair failed"));
        assert!(describe(&balanced).contains("rebalanced: 2 -> 3"));
    }

    #[test]
    fn progress_shows_every_count() {
        let p = ProgressSink::new();
        let s = CheckSummary {
            skipped_recent: 4,
            objects_checked: 2,
            ..CheckSummary::default()
        };
        let mut twice = s.clone();
        twice.add(&s);
        assert_eq!((twice.skipped_recent, twice.objects_checked), (8, 4));
        s.to_progress(&p);
        assert_eq!(p.get(counter::SKIPPED_RECENT), 4);
        assert_eq!(p.get(counter::OBJECTS_CHECKED), 2);
        assert_eq!(p.snapshot().counters.len(), 13);
    }
}

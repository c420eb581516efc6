//! The check task's decisions as plain functions: whether to check an object again, whether to
//! repair it, whether and how to rebalance it, and what the budget is asked for first.

use std::collections::BTreeMap;
use std::time::Duration;

use tahoe_jobs_engine::limits::expansion::{self, Coding};
use tahoe_jobs_engine::{ByteRequest, Direction};

use super::caps::Storage;
use super::record::{Findings, ObjectRecord, Rebalance};

/// Whether to send an object a `t=check` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Check it: never checked, or its last check is old or found something to do.
    Check,
    /// Already checked in this pass (it is reachable along another path).
    SeenThisPass,
    /// Checked within `recheck_after`, and nothing was wrong.
    Recent,
}

/// Objects checked in this pass are never checked again in it; others are skipped while their
/// last check is younger than `recheck_after` and found nothing to do. Anything unhealthy or
/// unbalanced is looked at every pass, so its record stays current and repair is retried.
pub fn recheck(
    last: Option<&ObjectRecord>,
    pass: u64,
    now_secs: i64,
    recheck_after: Duration,
) -> Recheck {
    let Some(last) = last else {
        return Recheck::Check;
    };
    if last.pass == pass {
        return Recheck::SeenThisPass;
    }
    let age = now_secs.saturating_sub(last.checked_at);
    // A clock that went backwards makes the age negative: treat that as "just checked".
    let recent = u64::try_from(age).map_or(true, |age| age < recheck_after.as_secs());
    if last.fine() && recent {
        Recheck::Recent
    } else {
        Recheck::Check
    }
}

/// What to do about a check's findings when repair is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairPlan {
    /// Healthy, or repair is off.
    Nothing,
    /// Too few shares survive: a repair cannot succeed.
    Unrecoverable,
    /// A mutable object reached only through a read-only cap: Tahoe repairs mutable objects
    /// only with the write cap (it must set the write enabler).
    NeedsWriteCap,
    /// Ask the node to repair. `verify`: check the shares' contents again first, because that
    /// is how the node saw the corrupt ones (without it the node would think it healthy).
    Repair {
        /// Verify the shares in the repairing check.
        verify: bool,
    },
}

/// The repair plan for the findings `found` of a check: `repair` is whether the job repairs,
/// `verified` whether the check verified the shares, `writable` whether the cap at hand can
/// repair the object (see `repairable_with`).
pub fn repair_plan(found: &Findings, repair: bool, verified: bool, writable: bool) -> RepairPlan {
    if !repair || found.healthy {
        RepairPlan::Nothing
    } else if !found.recoverable {
        RepairPlan::Unrecoverable
    } else if !writable {
        RepairPlan::NeedsWriteCap
    } else {
        RepairPlan::Repair {
            verify: verified && found.corrupt_shares > 0,
        }
    }
}

/// What to do about an object that is healthy but on fewer servers than `shares.happy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalancePlan {
    /// Balanced (or unhealthy: that is repair's business).
    NotNeeded,
    /// Unbalanced; record this outcome without asking the node for anything.
    Report(Rebalance),
    /// Download the object's bytes and upload them again: the node finds the existing shares and
    /// places the missing ones on servers that hold none, until `shares.happy` are used.
    ReUpload,
}

/// What the rebalance step needs to know about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalanceInput {
    /// How the grid stores the object, from its cap.
    pub storage: Storage,
    /// Whether the object is healthy now (after a repair, if one was made).
    pub healthy: bool,
    /// The number of servers holding at least one good share.
    pub good_hosts: u64,
    /// The number of servers that answered the check.
    pub servers_responding: u64,
    /// The coding written in the object's cap (immutable objects only).
    pub coding: Option<Coding>,
}

/// Tahoe repairs only unhealthy objects (`filenode.py` `_maybe_repair` returns at once when the
/// check says healthy), so `repair=true` never moves shares of a healthy file. Re-uploading the
/// same bytes through the same node does: convergent encryption gives the same storage index,
/// and the uploader tops the placement up to `shares.happy`. That only holds when this node
/// would encode the file the same way (same k and N; same convergence secret, which cannot be
/// seen beforehand and is checked by comparing the caps after the upload).
pub fn rebalance_plan(
    input: &RebalanceInput,
    happy: u32,
    node_coding: Coding,
    repair: bool,
) -> RebalancePlan {
    let happy = u64::from(happy);
    if !input.healthy || input.good_hosts >= happy {
        return RebalancePlan::NotNeeded;
    }
    if !repair {
        return RebalancePlan::Report(Rebalance::NotAttempted);
    }
    match (input.storage, input.coding) {
        (Storage::Immutable, Some(c)) if c == node_coding => {}
        (Storage::Immutable, Some(c)) => {
            return RebalancePlan::Report(Rebalance::Impossible {
                reason: format!(
                    "it is encoded {}-of-{} and this node encodes {}-of-{}, so an upload would make another file",
                    c.needed, c.total, node_coding.needed, node_coding.total
                ),
            })
        }
        (Storage::Mutable, _) => {
            return RebalancePlan::Report(Rebalance::Impossible {
                reason: "Tahoe re-places the shares of a mutable object only when it is unhealthy"
                    .into(),
            })
        }
        _ => {
            return RebalancePlan::Report(Rebalance::Impossible {
                reason: "the node cannot re-place objects of this kind".into(),
            })
        }
    }
    if input.servers_responding < happy {
        return RebalancePlan::Report(Rebalance::Deferred {
            reason: format!(
                "only {} servers answered and {happy} are needed",
                input.servers_responding
            ),
        });
    }
    RebalancePlan::ReUpload
}

/// What a verifying check moves: the node downloads every share, so each holder sends what it
/// holds (from the last known placement, else spread evenly), S x N/k in all.
pub fn verify_request(size: u64, coding: Coding, hosts: &BTreeMap<String, u32>) -> ByteRequest {
    let destinations = if hosts.is_empty() {
        Vec::new()
    } else {
        expansion::from_share_map(size, coding, hosts)
    };
    ByteRequest {
        direction: Direction::Download,
        bytes: expansion::wire_bytes(size, coding),
        destinations,
        direct: false,
    }
}

/// What a repair moves: the node downloads k shares (about the file's size) from the holders,
/// then uploads the missing shares to servers it chooses.
pub fn repair_requests(size: u64, coding: Coding, found: &Findings) -> (ByteRequest, ByteRequest) {
    let download = ByteRequest {
        direction: Direction::Download,
        bytes: size,
        destinations: if found.hosts.is_empty() {
            Vec::new()
        } else {
            let holders: Vec<String> = found.hosts.keys().cloned().collect();
            let per = size.div_ceil(holders.len() as u64);
            holders.into_iter().map(|h| (h, per)).collect()
        },
        direct: false,
    };
    let missing = u32::try_from(found.missing_shares()).unwrap_or(u32::MAX);
    let upload = ByteRequest::upload(expansion::destination_bytes(size, coding, missing));
    (download, upload)
}

/// The coding to estimate an object's bytes with: the one in its cap, else the one its last
/// check reported, else the node's own.
pub fn coding_or(node: Coding, cap: Option<Coding>, found: Option<&Findings>) -> Coding {
    cap.or_else(|| {
        found.and_then(|f| {
            Coding::new(
                u32::try_from(f.shares_needed).ok()?,
                u32::try_from(f.shares_expected).ok()?,
            )
        })
    })
    .unwrap_or(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::record::ObjectKind;

    const DAY: u64 = 86_400;

    fn rec(pass: u64, checked_at: i64, healthy: bool, hosts: u64) -> ObjectRecord {
        ObjectRecord {
            pass,
            checked_at,
            kind: ObjectKind::File,
            storage_index: String::new(),
            path: String::new(),
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
    fn recheck_skips_this_pass_and_recent_fine_objects_only() {
        let week = Duration::from_secs(7 * DAY);
        let now = 100 * DAY as i64;
        assert_eq!(recheck(None, 5, now, week), Recheck::Check);
        let r = rec(5, now - 10, false, 1);
        assert_eq!(recheck(Some(&r), 5, now, week), Recheck::SeenThisPass);
        let fine = rec(4, now - DAY as i64, true, 3);
        assert_eq!(recheck(Some(&fine), 5, now, week), Recheck::Recent);
        let old = rec(4, now - 7 * DAY as i64, true, 3);
        assert_eq!(recheck(Some(&old), 5, now, week), Recheck::Check);
        // Recent but unhealthy, or unbalanced: look again.
        assert_eq!(
            recheck(Some(&rec(4, now - 1, false, 3)), 5, now, week),
            Recheck::Check
        );
        assert_eq!(
            recheck(Some(&rec(4, now - 1, true, 2)), 5, now, week),
            Recheck::Check
        );
        // recheck_after 0 checks everything not seen in this pass.
        assert_eq!(recheck(Some(&fine), 5, now, Duration::ZERO), Recheck::Check);
        // A clock that went backwards does not force a check.
        let future = rec(4, now + 50, true, 3);
        assert_eq!(recheck(Some(&future), 5, now, week), Recheck::Recent);
    }

    #[test]
    fn repair_only_what_can_be_repaired() {
        let healthy = Findings {
            healthy: true,
            recoverable: true,
            ..Findings::default()
        };
        assert_eq!(repair_plan(&healthy, true, true, true), RepairPlan::Nothing);
        let sick = Findings {
            healthy: false,
            recoverable: true,
            corrupt_shares: 1,
            ..Findings::default()
        };
        assert_eq!(repair_plan(&sick, false, true, true), RepairPlan::Nothing);
        assert_eq!(
            repair_plan(&sick, true, true, true),
            RepairPlan::Repair { verify: true }
        );
        assert_eq!(
            repair_plan(&sick, true, false, true),
            RepairPlan::Repair { verify: false }
        );
        assert_eq!(
            repair_plan(&sick, true, true, false),
            RepairPlan::NeedsWriteCap
        );
        let lost = Findings {
            recoverable: false,
            ..sick
        };
        assert_eq!(
            repair_plan(&lost, true, true, true),
            RepairPlan::Unrecoverable
        );
    }

    fn input(storage: Storage, hosts: u64, responding: u64) -> RebalanceInput {
        RebalanceInput {
            storage,
            healthy: true,
            good_hosts: hosts,
            servers_responding: responding,
            coding: Coding::new(2, 3),
        }
    }

    #[test]
    fn rebalance_decisions() {
        let node = Coding::new(2, 3).unwrap();
        let im = |h, r| input(Storage::Immutable, h, r);
        assert_eq!(
            rebalance_plan(&im(3, 3), 3, node, true),
            RebalancePlan::NotNeeded
        );
        let sick = RebalanceInput {
            healthy: false,
            ..im(1, 3)
        };
        assert_eq!(
            rebalance_plan(&sick, 3, node, true),
            RebalancePlan::NotNeeded
        );
        assert_eq!(
            rebalance_plan(&im(2, 3), 3, node, false),
            RebalancePlan::Report(Rebalance::NotAttempted)
        );
        assert_eq!(
            rebalance_plan(&im(2, 3), 3, node, true),
            RebalancePlan::ReUpload
        );
        assert!(matches!(
            rebalance_plan(&im(2, 2), 3, node, true),
            RebalancePlan::Report(Rebalance::Deferred { reason }) if reason.contains("only 2 servers")
        ));
        assert!(matches!(
            rebalance_plan(&input(Storage::Mutable, 2, 3), 3, node, true),
            RebalancePlan::Report(Rebalance::Impossible { .. })
        ));
        let other = Coding::new(3, 10).unwrap();
        assert!(matches!(
            rebalance_plan(&im(2, 3), 3, other, true),
            RebalancePlan::Report(Rebalance::Impossible { reason }) if reason.contains("2-of-3")
        ));
    }

    #[test]
    fn budget_requests() {
        let c = Coding::new(2, 3).unwrap();
        let mut hosts = BTreeMap::new();
        hosts.insert("v0-a".to_string(), 2);
        hosts.insert("v0-b".to_string(), 1);
        let v = verify_request(1000, c, &hosts);
        assert_eq!(v.direction, Direction::Download);
        assert_eq!(v.bytes, 1500);
        assert_eq!(
            v.destinations,
            vec![("v0-a".to_string(), 1000), ("v0-b".to_string(), 500)]
        );
        assert!(verify_request(1000, c, &BTreeMap::new())
            .destinations
            .is_empty());
        let found = Findings {
            shares_good: 2,
            shares_expected: 3,
            hosts,
            ..Findings::default()
        };
        let (down, up) = repair_requests(1000, c, &found);
        assert_eq!((down.bytes, up.bytes), (1000, 500));
        assert_eq!(down.destinations.len(), 2);
        assert_eq!(up.direction, Direction::Upload);
    }

    #[test]
    fn coding_prefers_the_cap_then_the_last_check() {
        let node = Coding::new(3, 10).unwrap();
        let found = Findings {
            shares_needed: 2,
            shares_expected: 4,
            ..Findings::default()
        };
        assert_eq!(
            coding_or(node, Coding::new(1, 1), Some(&found)),
            Coding::new(1, 1).unwrap()
        );
        assert_eq!(
            coding_or(node, None, Some(&found)),
            Coding::new(2, 4).unwrap()
        );
        assert_eq!(coding_or(node, None, Some(&Findings::default())), node);
        assert_eq!(coding_or(node, None, None), node);
    }
}

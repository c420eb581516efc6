//! Checking one object: a `t=check` (verifying and adding a lease as the job says), then, when
//! repair is on, a repair of what the check found unhealthy, then a rebalance of what is healthy
//! but on too few servers. Each step asks the budget first for the bytes it will move.
//!
//! The repair is a second request rather than `repair=true` on the first: the budget can then be
//! asked for what the repair moves, which is only known from the first check's findings.

use tahoe_jobs_engine::limits::expansion::Coding;
use tahoe_jobs_engine::TaskContext;

use std::sync::Arc;

use super::caps::{chk_params, repairable_with, storage_of};
use super::direct::DirectChecker;
use super::policy::{
    coding_or, rebalance_plan, repair_plan, repair_requests, verify_request, RebalanceInput,
    RebalancePlan, RepairPlan,
};
use super::rebalance::reupload;
use super::record::{Findings, FrontierEntry, ObjectRecord, RepairOutcome};
use crate::tahoe::{Cap, CheckOptions, TahoeClient, TahoeError};

/// What every check of a pass shares.
#[derive(Debug, Clone)]
pub struct Inspector {
    /// The client of the node that checks, repairs and re-uploads.
    pub client: TahoeClient,
    /// Verify every share's contents in the check (the job's `verify`).
    pub verify: bool,
    /// Repair what the check finds unhealthy and rebalance what is on too few servers (the
    /// job's `repair`).
    pub repair: bool,
    /// Add or renew a lease on the shares in the check (the job's `add_lease`).
    pub add_lease: bool,
    /// `[client] shares.happy` of the node.
    pub happy: u32,
    /// The node's `shares.needed`-of-`shares.total`.
    pub node_coding: Coding,
    /// The direct data path, when the job uses it: immutable objects are then checked (without
    /// verify) at the storage servers instead of by the node.
    pub direct: Option<Arc<DirectChecker>>,
}

impl Inspector {
    /// Checks (and repairs, rebalances) the object of `entry`. `last` is its previous record.
    pub async fn inspect(
        &self,
        ctx: &TaskContext,
        entry: &FrontierEntry,
        last: Option<&ObjectRecord>,
        pass: u64,
    ) -> Result<ObjectRecord, TahoeError> {
        let cap = Cap::new(entry.cap.clone());
        let chk = chk_params(&cap);
        let coding = coding_or(
            self.node_coding,
            chk.map(|c| c.coding),
            last.map(|r| &r.found),
        );
        let size = chk.map(|c| c.size).or(entry.size).unwrap_or(0);
        if self.verify {
            let hosts = last.map(|r| r.found.hosts.clone()).unwrap_or_default();
            ctx.budget()
                .acquire(verify_request(size, coding, &hosts))
                .await;
        }
        let direct = match &self.direct {
            Some(direct) if !self.verify => direct.check(&cap).await,
            _ => None,
        };
        let first = match direct {
            Some(report) => report,
            None => {
                self.client
                    .check(
                        &cap,
                        "",
                        CheckOptions {
                            verify: self.verify,
                            repair: false,
                            add_lease: self.add_lease,
                        },
                    )
                    .await?
            }
        };
        let mut found = Findings::from_results(&first.results);
        let mut repair = None;
        let plan = repair_plan(&found, self.repair, self.verify, repairable_with(&cap));
        if let RepairPlan::Repair { verify } = plan {
            if verify {
                ctx.budget()
                    .acquire(verify_request(size, coding, &found.hosts))
                    .await;
            }
            let (download, upload) = repair_requests(size, coding, &found);
            ctx.budget().acquire(download).await;
            ctx.budget().acquire(upload).await;
            let second = self
                .client
                .check(
                    &cap,
                    "",
                    CheckOptions {
                        verify,
                        repair: true,
                        add_lease: false,
                    },
                )
                .await?;
            match second.repair {
                Some(r) if r.attempted => {
                    repair = Some(RepairOutcome {
                        successful: r.successful,
                        after: Findings::from_results(&r.post_repair),
                    })
                }
                // Healthy on the second look (a server came back in between): nothing to do,
                // and the second look is the better record.
                _ => found = Findings::from_results(&second.results),
            }
        }

        let now = repair.as_ref().map_or(&found, |r| &r.after);
        let input = RebalanceInput {
            storage: storage_of(&cap),
            healthy: repair
                .as_ref()
                .map_or(found.healthy, |r| r.successful && r.after.healthy),
            good_hosts: now.good_hosts,
            servers_responding: now.servers_responding,
            coding: chk.map(|c| c.coding),
        };
        let rebalance = match rebalance_plan(&input, self.happy, self.node_coding, self.repair) {
            RebalancePlan::NotNeeded => None,
            RebalancePlan::Report(r) => Some(r),
            RebalancePlan::ReUpload => {
                Some(reupload(&self.client, ctx, &cap, size, input.good_hosts).await?)
            }
        };
        Ok(ObjectRecord {
            pass,
            checked_at: ctx.now().as_second(),
            kind: entry.kind,
            storage_index: first.storage_index.clone(),
            path: entry.path.clone(),
            verified: self.verify,
            lease_added: self.add_lease,
            found,
            repair,
            rebalance,
            happy: self.happy,
        })
    }
}

//! The budget actor: owns the limit schedule. It works out the limits in force
//! ([`crate::policy::budget`]) from the configured `[budget]`, every job's own limits and the live
//! overrides, and puts them in force in the feed-pacing gate ([`LimitedBudget`]) and, when the
//! embedder runs one, in the shaping proxy ([`ShapingControl`]). It does so again exactly at the
//! next boundary of any schedule (and at least once a minute, for wall-clock jumps), and at once
//! when one of its inputs changes.
//!
//! Tasks never send it messages: they hold the gate itself (as an `Arc<dyn BudgetGate>`), whose
//! waits are smooth reserve-then-wait on shared buckets. New limits change the buckets' rates in
//! place, so they reach transfers that are already waiting.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use jiff::tz::TimeZone;
use serde::Serialize;
use tahoe_jobs_config::{BudgetSettings, JobLimits};
use tracing::info;

use crate::clock::SharedClock;
use crate::limits::{BudgetStats, LimitedBudget, LimitsNow, ProcStat};
use crate::overrides::LiveOverrides;
use crate::policy::budget::{evaluation_delay, limits_in_force, same_limits};
use crate::shaping::ShapingControl;

/// Everything the budget actor starts with.
pub struct BudgetSetup {
    /// The feed-pacing gate the tasks hold; the actor sets its limits.
    pub gate: Arc<LimitedBudget>,
    /// The shaping proxy's control, when the embedder runs one; it gets the same limits.
    pub shaping: Option<ShapingControl>,
    /// The clock the limit schedules are evaluated by.
    pub clock: SharedClock,
    /// The zone in which the rate schedules' times of day are read.
    pub timezone: TimeZone,
    /// `[budget]` as configured in the files.
    pub budget: BudgetSettings,
    /// The live overrides, applied above `budget` and the jobs' limits.
    pub overrides: LiveOverrides,
    /// Each job's own limits by job id, its live overrides applied.
    pub jobs: BTreeMap<String, JobLimits>,
}

/// One per engine.
pub struct BudgetActor {
    gate: Arc<LimitedBudget>,
    shaping: Option<ShapingControl>,
    clock: SharedClock,
    timezone: TimeZone,
    configured: BudgetSettings,
    overrides: LiveOverrides,
    jobs: BTreeMap<String, JobLimits>,
    aliases: BTreeMap<String, String>,
    /// The limits last put in force.
    in_force: Option<LimitsNow>,
    timer: Option<SpawnHandle>,
}

/// What the CPU governor watches: this process and `others` (the store's node, say), because
/// the CPU share covers them together.
pub fn cpu_watch(others: &[u32]) -> ProcStat {
    let mut pids = vec![std::process::id()];
    for pid in others {
        if !pids.contains(pid) {
            pids.push(*pid);
        }
    }
    ProcStat::new(pids)
}

impl BudgetActor {
    /// Builds the actor and puts the limits in force at once, so that a task started before the
    /// actor first runs is already held to them.
    pub fn new(setup: BudgetSetup) -> Self {
        let mut actor = BudgetActor {
            gate: setup.gate,
            shaping: setup.shaping,
            clock: setup.clock,
            timezone: setup.timezone,
            configured: setup.budget,
            overrides: setup.overrides,
            jobs: setup.jobs,
            aliases: BTreeMap::new(),
            in_force: None,
            timer: None,
        };
        actor.put_in_force();
        actor
    }

    fn put_in_force(&mut self) -> &LimitsNow {
        let now = self.clock.now();
        let limits = limits_in_force(
            now,
            &self.timezone,
            &self.configured,
            &self.overrides,
            &self.jobs,
            &self.aliases,
        );
        self.gate.apply(&limits);
        if let Some(shaping) = &self.shaping {
            shaping.apply(&limits);
        }
        if !self
            .in_force
            .as_ref()
            .is_some_and(|old| same_limits(old, &limits))
        {
            info!(
                upload = ?limits.total.upload,
                download = ?limits.total.download,
                cpu = ?limits.cpu,
                limited_jobs = limits.jobs.values().filter(|j| **j != Default::default()).count(),
                limited_servers = limits.destinations.len(),
                next_change = ?limits.next_change,
                "budget limits in force"
            );
        }
        self.in_force.insert(limits)
    }

    /// Puts the limits in force and sets the timer for the next evaluation.
    fn evaluate(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let delay = evaluation_delay(self.put_in_force(), now);
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        self.timer = Some(ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.evaluate(ctx);
        }));
    }
}

impl Actor for BudgetActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.evaluate(ctx);
    }
}

/// Replaces `[budget]` as configured in the files (a reload); live overrides stay above it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct UpdateBudget(pub BudgetSettings);

impl Handler<UpdateBudget> for BudgetActor {
    type Result = ();

    fn handle(&mut self, UpdateBudget(settings): UpdateBudget, ctx: &mut Context<Self>) {
        info!("budget settings updated");
        self.configured = settings;
        self.evaluate(ctx);
    }
}

/// Replaces every job's own limits (by job id, live overrides applied): after a reload or a live
/// change of a job's `bandwidth` or `cpu`. A job no longer listed is forgotten, figures and all.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetJobLimits(pub BTreeMap<String, JobLimits>);

impl Handler<SetJobLimits> for BudgetActor {
    type Result = ();

    fn handle(&mut self, SetJobLimits(jobs): SetJobLimits, ctx: &mut Context<Self>) {
        for gone in self.jobs.keys().filter(|id| !jobs.contains_key(*id)) {
            self.gate.remove_job(gone);
        }
        self.jobs = jobs;
        self.evaluate(ctx);
    }
}

/// The live overrides now in force; only their `[budget]` part is read here (job overrides
/// arrive applied, in [`SetJobLimits`]).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetBudgetOverrides(pub LiveOverrides);

impl Handler<SetBudgetOverrides> for BudgetActor {
    type Result = ();

    fn handle(&mut self, SetBudgetOverrides(o): SetBudgetOverrides, ctx: &mut Context<Self>) {
        self.overrides = o;
        self.evaluate(ctx);
    }
}

/// Names a destination limit may be written with (a nickname) -> the destination id the
/// limiters count under. Replaces the previous aliases.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetDestinationAliases(pub BTreeMap<String, String>);

impl Handler<SetDestinationAliases> for BudgetActor {
    type Result = ();

    fn handle(&mut self, msg: SetDestinationAliases, ctx: &mut Context<Self>) {
        self.aliases = msg.0;
        self.evaluate(ctx);
    }
}

/// The other processes whose CPU time counts toward the CPU share (the node restarted with a
/// new pid, say); this process always counts.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetCpuPids(pub Vec<u32>);

impl Handler<SetCpuPids> for BudgetActor {
    type Result = ();

    fn handle(&mut self, SetCpuPids(pids): SetCpuPids, _: &mut Context<Self>) {
        let watch = cpu_watch(&pids);
        info!(pids = ?watch.pids(), "CPU share watches new processes");
        self.gate.set_cpu_source(Box::new(watch));
    }
}

/// Whether the store's traffic is known to flow through the shaping proxy: per-destination and
/// total limits are then the proxy's business, and feed pacing keeps only the job limits.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetExactShaping(pub bool);

impl Handler<SetExactShaping> for BudgetActor {
    type Result = ();

    fn handle(&mut self, SetExactShaping(on): SetExactShaping, _: &mut Context<Self>) {
        info!(exact_shaping = on, "shaping mode");
        self.gate.set_exact_shaping(on);
    }
}

/// What the budget is doing: the limits in force and the limiters' figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReport {
    /// The limits in force.
    pub limits: LimitsNow,
    /// What the limiters have counted: rates, bytes and time held back.
    pub stats: BudgetStats,
}

/// A [`BudgetReport`] now.
#[derive(Debug, Message)]
#[rtype(result = "BudgetReport")]
pub struct GetBudgetReport;

impl Handler<GetBudgetReport> for BudgetActor {
    type Result = MessageResult<GetBudgetReport>;

    fn handle(&mut self, _: GetBudgetReport, _: &mut Context<Self>) -> Self::Result {
        MessageResult(BudgetReport {
            limits: self.gate.limits(),
            stats: self.gate.stats(),
        })
    }
}

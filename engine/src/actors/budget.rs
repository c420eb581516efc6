//! The budget actor: owns the limits and answers "may this job move these bytes / use the CPU
//! now?" by asking [`crate::policy::budget`]. Tasks reach it through [`ActorBudgetGate`], a
//! [`BudgetGate`] that hides the actix types.
//!
//! It also keeps the engine's [`LimitedBudget`] (the gate the engine hands to tasks) in step with
//! the limits in force: the configured `[budget]` with its live overrides and every job's own
//! limits, evaluated again at each schedule boundary (see [`crate::limits::policy`]) and at once
//! when any of them changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use async_trait::async_trait;
use jiff::tz::TimeZone;
use serde::Serialize;
use tahoe_jobs_config::{BudgetSettings, JobLimits};

use crate::budget::{BudgetGate, ByteRequest};
use crate::clock::SharedClock;
use crate::limits::{limits_at, BudgetStats, LimitedBudget, LimitsNow, Overrides};
use crate::overrides::LiveOverrides;
use crate::policy::budget::{admit_bytes, admit_cpu};
use crate::policy::Admission;

/// The shortest wait between two evaluations of the limits, so a boundary that evaluates to
/// "now" cannot spin.
const MIN_REFRESH: Duration = Duration::from_millis(50);

/// Owns the budget settings; one per engine.
pub struct BudgetActor {
    /// As configured in the files.
    settings: BudgetSettings,
    clock: SharedClock,
    tz: TimeZone,
    /// Only the `[budget]` part is used here.
    overrides: LiveOverrides,
    /// Each job's limits, live overrides applied, by job id.
    job_limits: BTreeMap<String, JobLimits>,
    gate: Arc<LimitedBudget>,
    timer: Option<SpawnHandle>,
}

impl BudgetActor {
    pub fn new(settings: BudgetSettings, clock: SharedClock, tz: TimeZone) -> Self {
        BudgetActor {
            settings,
            clock,
            tz,
            overrides: LiveOverrides::default(),
            job_limits: BTreeMap::new(),
            gate: Arc::new(LimitedBudget::for_this_process()),
            timer: None,
        }
    }

    /// Starts with these live overrides of `[budget]`.
    pub fn with_overrides(mut self, overrides: LiveOverrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// Starts with these job limits (by job id).
    pub fn with_job_limits(mut self, job_limits: BTreeMap<String, JobLimits>) -> Self {
        self.job_limits = job_limits;
        self
    }

    /// The gate whose limits this actor keeps current: the one to hand to tasks.
    pub fn gate(&self) -> Arc<LimitedBudget> {
        self.gate.clone()
    }

    /// Puts the limits in force now into the gate, and comes back at the next boundary.
    fn refresh(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let budget = self.overrides.apply_budget(&self.settings);
        let limits = limits_at(
            now,
            &self.tz,
            &budget,
            &self.job_limits,
            &Overrides::default(),
        );
        self.gate.apply(&limits);
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let wait = limits.sleep_from(now).max(MIN_REFRESH);
        self.timer = Some(ctx.run_later(wait, |act, ctx| {
            act.timer = None;
            act.refresh(ctx);
        }));
    }
}

impl Actor for BudgetActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.refresh(ctx);
    }
}

/// May `job` move these bytes now?
#[derive(Debug, Message)]
#[rtype(result = "Admission")]
pub struct AcquireBytes {
    pub job: String,
    pub request: ByteRequest,
}

/// May `job` go on using the CPU now?
#[derive(Debug, Message)]
#[rtype(result = "Admission")]
pub struct CpuCheckpoint {
    pub job: String,
}

/// Replaces the limits, live.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct UpdateBudget(pub BudgetSettings);

impl Handler<AcquireBytes> for BudgetActor {
    type Result = MessageResult<AcquireBytes>;

    fn handle(&mut self, msg: AcquireBytes, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        MessageResult(admit_bytes(
            &self.settings,
            &msg.job,
            &msg.request,
            now,
            &self.tz,
        ))
    }
}

impl Handler<CpuCheckpoint> for BudgetActor {
    type Result = MessageResult<CpuCheckpoint>;

    fn handle(&mut self, msg: CpuCheckpoint, _: &mut Context<Self>) -> Self::Result {
        MessageResult(admit_cpu(&self.settings, &msg.job, self.clock.now()))
    }
}

impl Handler<UpdateBudget> for BudgetActor {
    type Result = ();

    fn handle(&mut self, msg: UpdateBudget, ctx: &mut Context<Self>) {
        tracing::info!("budget settings updated");
        self.settings = msg.0;
        self.refresh(ctx);
    }
}

/// Replaces the live overrides (only their `[budget]` part matters here).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetBudgetOverrides(pub LiveOverrides);

impl Handler<SetBudgetOverrides> for BudgetActor {
    type Result = ();

    fn handle(&mut self, msg: SetBudgetOverrides, ctx: &mut Context<Self>) {
        self.overrides = msg.0;
        self.refresh(ctx);
    }
}

/// Replaces every job's limits (by job id); a job no longer listed is forgotten.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetJobLimits(pub BTreeMap<String, JobLimits>);

impl Handler<SetJobLimits> for BudgetActor {
    type Result = ();

    fn handle(&mut self, msg: SetJobLimits, ctx: &mut Context<Self>) {
        for gone in self.job_limits.keys().filter(|id| !msg.0.contains_key(*id)) {
            self.gate.remove_job(gone);
        }
        self.job_limits = msg.0;
        self.refresh(ctx);
    }
}

/// What the budget is doing: the limits in force and the limiters' figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReport {
    pub limits: LimitsNow,
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

/// The [`BudgetGate`] tasks get: asks the budget actor, and waits as long as it says.
#[derive(Clone)]
pub struct ActorBudgetGate {
    addr: Addr<BudgetActor>,
}

impl ActorBudgetGate {
    pub fn new(addr: Addr<BudgetActor>) -> Self {
        ActorBudgetGate { addr }
    }

    pub fn shared(addr: Addr<BudgetActor>) -> Arc<dyn BudgetGate> {
        Arc::new(Self::new(addr))
    }
}

#[async_trait]
impl BudgetGate for ActorBudgetGate {
    async fn acquire(&self, job: &str, request: ByteRequest) {
        loop {
            let msg = AcquireBytes {
                job: job.to_string(),
                request: request.clone(),
            };
            match self.addr.send(msg).await {
                Ok(Admission::After(delay)) => tokio::time::sleep(delay).await,
                // The actor is gone only while the engine shuts down; the task is being
                // stopped then, so letting it through is harmless and never hangs it.
                Ok(Admission::Now) | Err(_) => return,
            }
        }
    }

    async fn cpu_checkpoint(&self, job: &str) {
        loop {
            let msg = CpuCheckpoint {
                job: job.to_string(),
            };
            match self.addr.send(msg).await {
                Ok(Admission::After(delay)) => tokio::time::sleep(delay).await,
                Ok(Admission::Now) | Err(_) => return,
            }
        }
    }
}

//! The budget actor: owns the limits and answers "may this job move these bytes / use the CPU
//! now?" by asking [`crate::policy::budget`]. Tasks reach it through [`ActorBudgetGate`], a
//! [`BudgetGate`] that hides the actix types.

use std::sync::Arc;

use actix::prelude::*;
use async_trait::async_trait;
use jiff::tz::TimeZone;
use tahoe_jobs_config::BudgetSettings;

use crate::budget::{BudgetGate, ByteRequest};
use crate::clock::SharedClock;
use crate::policy::budget::{admit_bytes, admit_cpu};
use crate::policy::Admission;

/// Owns the budget settings; one per engine.
pub struct BudgetActor {
    settings: BudgetSettings,
    clock: SharedClock,
    tz: TimeZone,
}

impl BudgetActor {
    pub fn new(settings: BudgetSettings, clock: SharedClock, tz: TimeZone) -> Self {
        BudgetActor {
            settings,
            clock,
            tz,
        }
    }
}

impl Actor for BudgetActor {
    type Context = Context<Self>;
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

    fn handle(&mut self, msg: UpdateBudget, _: &mut Context<Self>) {
        tracing::info!("budget settings updated");
        self.settings = msg.0;
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

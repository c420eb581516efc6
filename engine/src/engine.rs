//! The engine's front door: [`Engine::start`] builds the actors from an [`EngineOptions`], and
//! the cloneable [`EngineHandle`] is what the binary and the web layer talk to.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use jiff::tz::TimeZone;
use tahoe_jobs_config::{BudgetSettings, JobConfig};

use crate::actors::budget::{
    BudgetActor, BudgetReport, GetBudgetReport, SetBudgetOverrides, SetJobLimits, UpdateBudget,
};
use crate::actors::job::JobCommand;
use crate::actors::supervisor::{
    effective_job_limits, load_records, validate_jobs, EffectiveJobLimits, ForJob, GetOverrides,
    Reload, ReloadSummary, SetOverride, Shutdown, Status, Supervisor,
};
use crate::budget::BudgetGate;
use crate::clock::{SharedClock, SystemClock};
use crate::error::EngineError;
use crate::overrides::{LiveOverrides, OverrideTarget};
use crate::status::EngineStatus;
use crate::store::Store;
use crate::task::Registry;

/// What the engine is started with.
pub struct EngineOptions {
    /// Where the sled database lives (created 0700).
    pub state_dir: PathBuf,
    /// The zone the jobs' windows are written in.
    pub timezone: TimeZone,
    pub clock: SharedClock,
    pub registry: Registry,
    pub jobs: Vec<JobConfig>,
    pub budget: BudgetSettings,
}

impl EngineOptions {
    /// Options with the system clock and zone and no budget limits.
    pub fn new(state_dir: impl Into<PathBuf>, registry: Registry, jobs: Vec<JobConfig>) -> Self {
        EngineOptions {
            state_dir: state_dir.into(),
            timezone: TimeZone::system(),
            clock: Arc::new(SystemClock),
            registry,
            jobs,
            budget: BudgetSettings::default(),
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("state_dir", &self.state_dir)
            .field("registry", &self.registry)
            .field(
                "jobs",
                &self.jobs.iter().map(JobConfig::id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The engine.
#[derive(Debug)]
pub struct Engine;

impl Engine {
    /// Opens the store, reads every job's record and starts the actors. Must be called inside a
    /// running actix System; the jobs start evaluating as soon as the caller yields.
    ///
    /// Fails without starting anything when a job's task type is not registered, two jobs share
    /// an id, the store cannot be opened, or a record cannot be read (written by a newer
    /// release, say).
    pub fn start(options: EngineOptions) -> Result<EngineHandle, EngineError> {
        if actix_rt::Arbiter::try_current().is_none() {
            return Err(EngineError::NoSystem);
        }
        validate_jobs(&options.jobs, &options.registry)?;
        let store = Store::open(&options.state_dir)?;
        let records = load_records(&store, &options.jobs)?;
        let overrides = store.load_overrides()?;
        let budget = BudgetActor::new(
            options.budget,
            options.clock.clone(),
            options.timezone.clone(),
        )
        .with_job_limits(effective_job_limits(&options.jobs, &overrides))
        .with_overrides(overrides);
        let gate: Arc<dyn BudgetGate> = budget.gate();
        let budget = budget.start();
        let supervisor = Supervisor::new(
            store,
            options.registry,
            options.clock,
            options.timezone,
            gate,
            options.jobs,
            records,
        )
        .start();
        Ok(EngineHandle { supervisor, budget })
    }
}

/// A handle to a running engine; cheap to clone and `Send`.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    supervisor: Addr<Supervisor>,
    budget: Addr<BudgetActor>,
}

impl EngineHandle {
    /// Every job's status.
    pub async fn status(&self) -> Result<EngineStatus, EngineError> {
        Ok(self.supervisor.send(Status).await?)
    }

    /// Pauses a job (by id, or by name when unambiguous): a running task is stopped. `for_`
    /// makes the pause end by itself. Survives restarts.
    pub async fn pause(&self, job: &str, for_: Option<Duration>) -> Result<(), EngineError> {
        self.command(job, JobCommand::Pause(for_)).await
    }

    /// Lifts a pause.
    pub async fn resume(&self, job: &str) -> Result<(), EngineError> {
        self.command(job, JobCommand::Resume).await
    }

    /// Runs a job as soon as its window allows, whatever its frequency; with `ignore_window`,
    /// at once, and a window close does not stop it. Fails on a paused job.
    pub async fn run_now(&self, job: &str, ignore_window: bool) -> Result<(), EngineError> {
        self.command(job, JobCommand::RunNow { ignore_window })
            .await
    }

    /// Replaces the job list: removed jobs stop, changed jobs stop (reason `Reconfigured`) and
    /// start again with the new configuration, the others run on undisturbed. Nothing changes
    /// when the new list is invalid.
    pub async fn reload(&self, jobs: Vec<JobConfig>) -> Result<ReloadSummary, EngineError> {
        let summary = self.supervisor.send(Reload(jobs)).await??;
        self.sync_job_limits().await?;
        Ok(summary)
    }

    /// The values changed live, which apply above the configuration files.
    pub async fn overrides(&self) -> Result<LiveOverrides, EngineError> {
        Ok(self.supervisor.send(GetOverrides).await?)
    }

    /// Changes one value live (`Some`), or goes back to the configured one (`None`): a job's
    /// `allowed_times`, `bandwidth` or `cpu`, or a `[budget]` key (`upload`, `download`, `cpu`,
    /// `server.NAME.upload|download`). Takes effect at once, is kept in the state store, and
    /// applies again after a restart or reload. Answers every override now in force.
    pub async fn set_override(
        &self,
        target: OverrideTarget,
        key: &str,
        value: Option<&str>,
    ) -> Result<LiveOverrides, EngineError> {
        let budget = target == OverrideTarget::Budget;
        let overrides = self
            .supervisor
            .send(SetOverride {
                target,
                key: key.to_string(),
                value: value.map(str::to_string),
            })
            .await??;
        if budget {
            self.budget
                .send(SetBudgetOverrides(overrides.clone()))
                .await?;
        } else {
            self.sync_job_limits().await?;
        }
        Ok(overrides)
    }

    /// The limits in force now and what the limiters did: rates, bytes, time throttled.
    pub async fn budget(&self) -> Result<BudgetReport, EngineError> {
        Ok(self.budget.send(GetBudgetReport).await?)
    }

    /// Hands every job's limits (live overrides applied) to the budget.
    async fn sync_job_limits(&self) -> Result<(), EngineError> {
        let limits = self.supervisor.send(EffectiveJobLimits).await?;
        Ok(self.budget.send(SetJobLimits(limits)).await?)
    }

    /// Replaces the budget limits, live.
    pub async fn update_budget(&self, settings: BudgetSettings) -> Result<(), EngineError> {
        Ok(self.budget.send(UpdateBudget(settings)).await?)
    }

    /// Stops every task (they get 500 ms to return, then are dropped), saves and flushes the
    /// store, and releases it. Completes within 10 s. The handle is useless afterwards.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        Ok(self.supervisor.send(Shutdown).await?)
    }

    async fn command(&self, job: &str, command: JobCommand) -> Result<(), EngineError> {
        self.supervisor
            .send(ForJob {
                job: job.to_string(),
                command,
            })
            .await?
    }
}

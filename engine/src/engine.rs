//! The engine's front door: [`Engine::start`] builds the actors from an [`EngineOptions`], and
//! the cloneable [`EngineHandle`] is what the binary and the web layer talk to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use jiff::tz::TimeZone;
use tahoe_jobs_config::{BudgetSettings, JobConfig};

use crate::actors::budget::{
    cpu_watch, BudgetActor, BudgetReport, BudgetSetup, GetBudgetReport, SetBudgetOverrides,
    SetCpuPids, SetDestinationAliases, SetExactShaping, SetJobLimits, UpdateBudget,
};
use crate::actors::job::JobCommand;
use crate::actors::supervisor::{
    effective_job_limits, load_records, validate_jobs, EffectiveJobLimits, ForJob, GetOverrides,
    Reload, ReloadSummary, SetOverride, Shutdown, Status, Supervisor,
};
use crate::budget::BudgetGate;
use crate::clock::{SharedClock, SystemClock};
use crate::error::EngineError;
use crate::events::{self, EventReceiver, EventSender};
use crate::limits::{CpuSource, LimitedBudget};
use crate::overrides::{LiveOverrides, OverrideTarget};
use crate::runtime::TaskRuntime;
use crate::shaping::ShapingControl;
use crate::status::EngineStatus;
use crate::store::Store;
use crate::task::Registry;

/// What the engine is started with.
pub struct EngineOptions {
    /// Where the sled database lives (created 0700).
    pub state_dir: PathBuf,
    /// The zone the jobs' windows are written in.
    pub timezone: TimeZone,
    /// The wall clock (tests use a `ManualClock` or `TokioClock`).
    pub clock: SharedClock,
    /// The task types jobs may have.
    pub registry: Registry,
    /// The jobs to run (`Config::jobs` from the loader).
    pub jobs: Vec<JobConfig>,
    /// Limits shared by all jobs (`[budget]`).
    pub budget: BudgetSettings,
    /// How the budget is enforced beyond the limits themselves; the default suits a process
    /// that runs alone, without the shaping proxy.
    pub enforcement: Enforcement,
    /// Where tasks run: the binary's multi-threaded runtime ([`crate::task_runtime`]), off
    /// the actors' thread.
    pub task_runtime: TaskRuntime,
    /// The most the store's page cache may hold, in bytes (`[jobs] cache_size`).
    pub cache_size: u64,
}

/// How the budget is enforced: which processes the CPU share covers, and whether a shaping proxy
/// carries the store's traffic.
#[derive(Default)]
pub struct Enforcement {
    /// Other processes whose CPU time counts toward `[budget] cpu` together with this one's
    /// (the store's node, which does most of the work a task asks for).
    pub cpu_pids: Vec<u32>,
    /// Where CPU time is read from instead of `/proc` for this process and `cpu_pids` (tests,
    /// platforms without `/proc`).
    pub cpu_source: Option<Box<dyn CpuSource>>,
    /// The running shaping proxy, if any: it gets the same limits as the feed pacing, at the
    /// same instants.
    pub shaping: Option<ShapingControl>,
    /// Whether the store's traffic is known to flow through that proxy. Feed pacing then keeps
    /// only the job limits and leaves per-destination and total limits to the proxy. Leave it
    /// off until that is checked, or the traffic would not be held to them at all.
    pub exact_shaping: bool,
}

impl std::fmt::Debug for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcement")
            .field("cpu_pids", &self.cpu_pids)
            .field("cpu_source", &self.cpu_source.as_ref().map(|_| "custom"))
            .field("shaping", &self.shaping.is_some())
            .field("exact_shaping", &self.exact_shaping)
            .finish()
    }
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
            enforcement: Enforcement::default(),
            task_runtime: TaskRuntime::current(),
            cache_size: tahoe_jobs_config::DEFAULT_CACHE_SIZE,
        }
    }

    /// Runs the tasks on this runtime instead of the actors' thread.
    pub fn with_task_runtime(mut self, runtime: TaskRuntime) -> Self {
        self.task_runtime = runtime;
        self
    }

    /// Counts these processes' CPU time toward `[budget] cpu` too.
    pub fn with_cpu_pids(mut self, pids: Vec<u32>) -> Self {
        self.enforcement.cpu_pids = pids;
        self
    }

    /// Hands the shaping proxy its limits; `exact` once its route is known to be in use.
    pub fn with_shaping(mut self, control: ShapingControl, exact: bool) -> Self {
        self.enforcement.shaping = Some(control);
        self.enforcement.exact_shaping = exact;
        self
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("state_dir", &self.state_dir)
            .field("registry", &self.registry)
            .field("enforcement", &self.enforcement)
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
        let store = Store::open_with_cache(&options.state_dir, options.cache_size)?;
        let records = load_records(&store, &options.jobs)?;
        let overrides = store.load_overrides()?;
        let enforcement = options.enforcement;
        let cpu = enforcement
            .cpu_source
            .unwrap_or_else(|| Box::new(cpu_watch(&enforcement.cpu_pids)));
        let gate = Arc::new(LimitedBudget::new(cpu));
        gate.set_exact_shaping(enforcement.exact_shaping);
        // Built before the supervisor, so the limits are in force before any job can start.
        let budget = BudgetActor::new(BudgetSetup {
            gate: gate.clone(),
            shaping: enforcement.shaping,
            clock: options.clock.clone(),
            timezone: options.timezone.clone(),
            budget: options.budget,
            jobs: effective_job_limits(&options.jobs, &overrides),
            overrides,
        })
        .start();
        let events = events::channel();
        let supervisor = Supervisor::new(
            store,
            options.registry,
            options.clock,
            options.timezone,
            gate as Arc<dyn BudgetGate>,
            events.clone(),
            options.task_runtime,
        )
        .with_jobs(options.jobs, records)
        .start();
        Ok(EngineHandle {
            supervisor,
            budget,
            events,
        })
    }
}

/// A handle to a running engine; cheap to clone and `Send`.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    supervisor: Addr<Supervisor>,
    budget: Addr<BudgetActor>,
    events: EventSender,
}

impl EngineHandle {
    /// A stream of job events (a run succeeded or failed, a job became overdue) from now on.
    /// Subscribe right after [`Engine::start`], before yielding, to miss none. Receiving is the
    /// listener's pace: a listener more than [`events::EVENT_BUFFER`] events behind loses the
    /// oldest, and the jobs never wait for it.
    pub fn subscribe(&self) -> EventReceiver {
        self.events.subscribe()
    }

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

    /// The limits in force now and what the limiters did: rates, bytes, time throttled, the CPU
    /// share, and whether exact shaping is on.
    pub async fn budget(&self) -> Result<BudgetReport, EngineError> {
        Ok(self.budget.send(GetBudgetReport).await?)
    }

    /// Counts these processes' CPU time toward `[budget] cpu` (with this one's) from now on: the
    /// node restarted with a new pid, say.
    pub async fn set_cpu_pids(&self, pids: Vec<u32>) -> Result<(), EngineError> {
        Ok(self.budget.send(SetCpuPids(pids)).await?)
    }

    /// Says whether the store's traffic is known to flow through the shaping proxy (see
    /// [`Enforcement::exact_shaping`]).
    pub async fn set_exact_shaping(&self, on: bool) -> Result<(), EngineError> {
        Ok(self.budget.send(SetExactShaping(on)).await?)
    }

    /// Names per-destination limits may be written with (a nickname) -> the destination id the
    /// limiters count under; replaces the previous ones and takes effect at once.
    pub async fn set_destination_aliases(
        &self,
        aliases: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        Ok(self.budget.send(SetDestinationAliases(aliases)).await?)
    }

    /// Hands every job's limits (live overrides applied) to the budget.
    async fn sync_job_limits(&self) -> Result<(), EngineError> {
        let limits = self.supervisor.send(EffectiveJobLimits).await?;
        Ok(self.budget.send(SetJobLimits(limits)).await?)
    }

    /// Replaces `[budget]` as configured (a reload), live: in force within the second; live
    /// overrides stay above it.
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

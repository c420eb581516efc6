//! The supervisor: builds a job actor per configured job, routes commands to them, collects the
//! status, applies configuration reloads job by job, and shuts everything down.
//!
//! Failed and panicking runs never reach it: each job actor catches them and backs off on its
//! own, so one job's trouble does not disturb the others. A reload retires only the jobs that
//! were removed or changed; a changed job's new actor reads the record the old one left, so an
//! unfinished run resumes under the new configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::oneshot;
use futures::future::join_all;
use jiff::tz::TimeZone;
use tahoe_jobs_config::{JobConfig, JobLimits};
use tracing::{error, info, warn};

use crate::actors::job::{
    Command, GetStatus, JobActor, JobCommand, JobSetup, Retire, UpdateConfig,
};
use crate::budget::BudgetGate;
use crate::clock::SharedClock;
use crate::error::EngineError;
use crate::events::EventSender;
use crate::overrides::{LiveOverrides, OverrideTarget};
use crate::record::JobRecord;
use crate::runtime::TaskRuntime;
use crate::status::EngineStatus;
use crate::stop::StopReason;
use crate::store::Store;
use crate::task::Registry;

#[path = "supervisor_after.rs"]
mod after;

/// How long shutdown waits for jobs before giving up on them and flushing anyway; with the
/// tasks' 500 ms grace this is far more than needed, and well inside the 10 s promised.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(8);

struct JobEntry {
    /// As configured in the files, before live overrides: what a reload compares.
    config: JobConfig,
    addr: Addr<JobActor>,
    gone: oneshot::Receiver<()>,
}

/// The actor that owns every job actor (see the module documentation); one per engine.
pub struct Supervisor {
    /// `None` once shut down, so the database is released.
    store: Option<Store>,
    registry: Registry,
    clock: SharedClock,
    timezone: TimeZone,
    budget: Arc<dyn BudgetGate>,
    /// Where every job announces its events.
    events: EventSender,
    /// Where the jobs' tasks run.
    task_runtime: TaskRuntime,
    jobs: BTreeMap<String, JobEntry>,
    /// Values changed live, applied above every job's configuration.
    overrides: LiveOverrides,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Ids of the jobs that are new in the configuration.
    pub added: Vec<String>,
    /// Ids of the jobs no longer in the configuration (retired).
    pub removed: Vec<String>,
    /// Ids of the jobs whose configuration changed (restarted with the new one).
    pub changed: Vec<String>,
    /// Ids of the jobs left as they were.
    pub unchanged: Vec<String>,
}

/// Checks that job ids are unique and their task types registered.
pub fn validate_jobs(jobs: &[JobConfig], registry: &Registry) -> Result<(), EngineError> {
    let mut seen = BTreeSet::new();
    for job in jobs {
        let id = job.id();
        if !registry.contains(&job.task_type) {
            return Err(EngineError::UnknownTaskType {
                job: id,
                task_type: job.task_type.clone(),
                known: registry.task_types().join(", "),
            });
        }
        if !seen.insert(id.clone()) {
            return Err(EngineError::DuplicateJob(id));
        }
    }
    Ok(())
}

/// Reads the records of `jobs`, failing on the first that cannot be read.
pub fn load_records(
    store: &Store,
    jobs: &[JobConfig],
) -> Result<BTreeMap<String, JobRecord>, EngineError> {
    jobs.iter()
        .map(|job| {
            let id = job.id();
            let record = store.load(&id)?;
            Ok((id, record))
        })
        .collect()
}

impl Supervisor {
    /// Builds the supervisor, with no jobs yet ([`Supervisor::with_jobs`]).
    pub fn new(
        store: Store,
        registry: Registry,
        clock: SharedClock,
        timezone: TimeZone,
        budget: Arc<dyn BudgetGate>,
        events: EventSender,
        task_runtime: TaskRuntime,
    ) -> Self {
        // Engine::start has read them already, so an unreadable value failed the start there.
        let overrides = store.load_overrides().unwrap_or_else(|e| {
            error!(error = %e, "ignoring the live overrides");
            LiveOverrides::default()
        });
        Supervisor {
            overrides,
            store: Some(store),
            registry,
            clock,
            timezone,
            budget,
            events,
            task_runtime,
            jobs: BTreeMap::new(),
        }
    }

    /// Starts a job actor per job (records already read).
    pub fn with_jobs(
        mut self,
        jobs: Vec<JobConfig>,
        mut records: BTreeMap<String, JobRecord>,
    ) -> Self {
        for job in jobs {
            let record = records.remove(&job.id()).unwrap_or_default();
            self.start_job(job, record);
        }
        self
    }

    fn start_job(&mut self, config: JobConfig, record: JobRecord) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let (gone_tx, gone) = oneshot::channel();
        let id = config.id();
        let addr = JobActor::new(JobSetup {
            config: self.overrides.apply_job(&config),
            record,
            store,
            registry: self.registry.clone(),
            clock: self.clock.clone(),
            timezone: self.timezone.clone(),
            budget: self.budget.clone(),
            events: self.events.clone(),
            task_runtime: self.task_runtime.clone(),
            gone: gone_tx,
        })
        .start();
        self.jobs.insert(id, JobEntry { config, addr, gone });
    }

    /// Finds a job by id, or by name when only one job has it.
    fn resolve(&self, job: &str) -> Result<Addr<JobActor>, EngineError> {
        let id = self.resolve_id(job)?;
        Ok(self.jobs[&id].addr.clone())
    }

    /// A job's id, from its id or from its name when only one job has it.
    fn resolve_id(&self, job: &str) -> Result<String, EngineError> {
        if self.jobs.contains_key(job) {
            return Ok(job.to_string());
        }
        let by_name: Vec<&JobEntry> = self
            .jobs
            .values()
            .filter(|e| e.config.name == job)
            .collect();
        match by_name.as_slice() {
            [one] => Ok(one.config.id()),
            [] => Err(EngineError::UnknownJob {
                job: job.to_string(),
                known: self.jobs.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
            many => Err(EngineError::AmbiguousJob {
                name: job.to_string(),
                ids: many
                    .iter()
                    .map(|e| e.config.id())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// Stops the given jobs and waits until their actors (and their store handles) are gone.
async fn retire_all(entries: Vec<JobEntry>, reason: StopReason) {
    let waits = entries.into_iter().map(|entry| async move {
        let _ = entry.addr.send(Retire(reason)).await;
        let _ = entry.gone.await;
    });
    if tokio::time::timeout(SHUTDOWN_WAIT, join_all(waits))
        .await
        .is_err()
    {
        warn!(
            wait_secs = SHUTDOWN_WAIT.as_secs(),
            "some jobs did not stop in time; going on without them"
        );
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.follow_completions(ctx);
        info!(jobs = self.jobs.len(), "engine started");
    }
}

/// Everything's status.
#[derive(Debug, Message)]
#[rtype(result = "EngineStatus")]
pub struct Status;

impl Handler<Status> for Supervisor {
    type Result = ResponseFuture<EngineStatus>;

    fn handle(&mut self, _: Status, _: &mut Context<Self>) -> Self::Result {
        let addrs: Vec<Addr<JobActor>> = self.jobs.values().map(|e| e.addr.clone()).collect();
        let clock = self.clock.clone();
        Box::pin(async move {
            let replies = join_all(addrs.iter().map(|a| a.send(GetStatus))).await;
            EngineStatus {
                now: clock.now(),
                // A job that is being retired cannot answer; it is simply left out.
                jobs: replies.into_iter().filter_map(Result::ok).collect(),
            }
        })
    }
}

/// A command for one job (by id, or by name when unambiguous).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct ForJob {
    /// The job's id, or its name when only one job has it.
    pub job: String,
    /// What to do.
    pub command: JobCommand,
}

impl Handler<ForJob> for Supervisor {
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, msg: ForJob, _: &mut Context<Self>) -> Self::Result {
        let addr = self.resolve(&msg.job);
        Box::pin(async move { addr?.send(Command(msg.command)).await? })
    }
}

/// Replaces the job list: removed jobs stop, changed jobs restart, the others run on.
#[derive(Debug, Message)]
#[rtype(result = "Result<ReloadSummary, EngineError>")]
pub struct Reload(pub Vec<JobConfig>);

impl Handler<Reload> for Supervisor {
    type Result = AtomicResponse<Self, Result<ReloadSummary, EngineError>>;

    fn handle(&mut self, Reload(jobs): Reload, _: &mut Context<Self>) -> Self::Result {
        let checked = self
            .store
            .as_ref()
            .ok_or(EngineError::Stopped)
            .and_then(|store| {
                validate_jobs(&jobs, &self.registry)?;
                // Read before touching anything, so an unreadable record leaves all jobs running.
                load_records(store, &jobs)
            });
        if let Err(e) = checked {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let mut summary = ReloadSummary::default();
        let new_ids: BTreeSet<String> = jobs.iter().map(JobConfig::id).collect();
        let mut retiring = Vec::new();
        for id in self.jobs.keys().cloned().collect::<Vec<_>>() {
            if !new_ids.contains(&id) {
                summary.removed.push(id.clone());
                retiring.extend(self.jobs.remove(&id));
            }
        }
        let mut to_start = Vec::new();
        for job in jobs {
            let id = job.id();
            match self.jobs.get(&id) {
                Some(entry) if entry.config == job => summary.unchanged.push(id),
                Some(_) => {
                    summary.changed.push(id.clone());
                    retiring.extend(self.jobs.remove(&id));
                    to_start.push(job);
                }
                None => {
                    summary.added.push(id);
                    to_start.push(job);
                }
            }
        }
        info!(
            added = summary.added.len(),
            removed = summary.removed.len(),
            changed = summary.changed.len(),
            unchanged = summary.unchanged.len(),
            "reloading jobs"
        );
        AtomicResponse::new(Box::pin(
            fut::wrap_future::<_, Self>(retire_all(retiring, StopReason::Reconfigured)).map(
                move |(), act, _| {
                    for job in to_start {
                        let id = job.id();
                        // Read again: a changed job's old actor has just written its record.
                        let record = act.store.as_ref().map(|s| s.load(&id));
                        match record {
                            Some(Ok(record)) => act.start_job(job, record),
                            Some(Err(e)) => error!(job = %id, error = %e, "could not start job"),
                            None => {}
                        }
                    }
                    Ok(summary)
                },
            ),
        ))
    }
}

/// Stops every job, flushes and releases the store, and stops the supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Supervisor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        info!("engine shutting down");
        let entries: Vec<JobEntry> = std::mem::take(&mut self.jobs).into_values().collect();
        AtomicResponse::new(Box::pin(
            fut::wrap_future::<_, Self>(retire_all(entries, StopReason::ShuttingDown))
                .then(|(), act, _| {
                    // Flushed on sled's threads when the tasks have a runtime of their own: the
                    // actors' thread never waits on the disk.
                    let store = act.store.take();
                    let separate = act.task_runtime.is_separate();
                    fut::wrap_future(async move {
                        let Some(store) = store else { return };
                        let flushed = if separate {
                            store.close_async().await
                        } else {
                            store.flush()
                        };
                        if let Err(e) = flushed {
                            error!(error = %e, "could not flush the state store");
                        }
                    })
                })
                .map(|(), _, ctx| {
                    info!("engine stopped");
                    ctx.stop();
                }),
        ))
    }
}

/// The live overrides.
#[derive(Debug, Message)]
#[rtype(result = "LiveOverrides")]
pub struct GetOverrides;

impl Handler<GetOverrides> for Supervisor {
    type Result = MessageResult<GetOverrides>;

    fn handle(&mut self, _: GetOverrides, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.overrides.clone())
    }
}

/// Sets (`Some`) or removes (`None`) one live override, persists it, and applies a job's at
/// once. Answers every override now in force. Budget overrides are only recorded here: the
/// engine handle passes them on to the budget actor.
#[derive(Debug, Message)]
#[rtype(result = "Result<LiveOverrides, EngineError>")]
pub struct SetOverride {
    /// A job or the budget.
    pub target: OverrideTarget,
    /// The key to change (`bandwidth`, `server.NAME.upload`, ...).
    pub key: String,
    /// The new value as the user wrote it; `None` removes the override.
    pub value: Option<String>,
}

impl Handler<SetOverride> for Supervisor {
    type Result = Result<LiveOverrides, EngineError>;

    fn handle(&mut self, msg: SetOverride, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.as_ref().ok_or(EngineError::Stopped)?;
        let target = match &msg.target {
            OverrideTarget::Job(job) => OverrideTarget::Job(self.resolve_id(job)?),
            OverrideTarget::Budget => OverrideTarget::Budget,
        };
        let mut overrides = self.overrides.clone();
        overrides.set(&target, &msg.key, msg.value.as_deref(), self.clock.now())?;
        store.save_overrides(&overrides)?;
        self.overrides = overrides;
        match (&target, &msg.value) {
            (_, Some(value)) => {
                info!(target = ?target, key = %msg.key, %value, "live override set")
            }
            (_, None) => info!(target = ?target, key = %msg.key, "live override removed"),
        }
        if let OverrideTarget::Job(id) = &target {
            let entry = &self.jobs[id];
            entry
                .addr
                .do_send(UpdateConfig(self.overrides.apply_job(&entry.config)));
        }
        Ok(self.overrides.clone())
    }
}

/// Every job's limits in force, live overrides applied, by job id: for the budget.
#[derive(Debug, Message)]
#[rtype(result = "BTreeMap<String, JobLimits>")]
pub struct EffectiveJobLimits;

impl Handler<EffectiveJobLimits> for Supervisor {
    type Result = MessageResult<EffectiveJobLimits>;

    fn handle(&mut self, _: EffectiveJobLimits, _: &mut Context<Self>) -> Self::Result {
        MessageResult(effective_job_limits(
            self.jobs.values().map(|e| &e.config),
            &self.overrides,
        ))
    }
}

/// Each job's limits with the live overrides applied, by job id.
pub fn effective_job_limits<'a>(
    jobs: impl IntoIterator<Item = &'a JobConfig>,
    overrides: &LiveOverrides,
) -> BTreeMap<String, JobLimits> {
    jobs.into_iter()
        .map(|job| (job.id(), overrides.apply_job(job).limits))
        .collect()
}

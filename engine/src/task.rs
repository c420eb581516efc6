//! The extension point: the [`Task`] trait every task type implements, the [`TaskContext`] the
//! engine hands it, and the [`Registry`] that maps a task type name to a factory.
//!
//! A task knows nothing about actors: it gets a context, does its work, watches the stop signal,
//! and returns [`Outcome::Completed`] or [`Outcome::StoppedEarly`]. Everything it must remember
//! across runs (what is done, where to resume) goes in its job-scoped sled tree.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tahoe_jobs_config::{JobConfig, TaskKeys, TaskSchema};

use crate::budget::{BudgetHandle, ByteRequest, Stopped};
use crate::clock::{SharedClock, SystemClock};
use crate::progress::ProgressSink;
use crate::stop::StopSignal;

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All the work is done: the job's frequency clock restarts from now.
    Completed,
    /// The stop signal fired; the next run resumes from the task's own records.
    StoppedEarly,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Something the task depends on is not reachable now (the node is down, say): retry with
    /// backoff, and say "waiting for ..." in the status.
    #[error("waiting for {what}: {message}")]
    Unavailable {
        /// What is missing: `the Tahoe node`.
        what: String,
        /// Why, for the user (never a capability).
        message: String,
    },
    /// The run cannot succeed as configured (a missing source directory, say): retry with
    /// backoff; the message tells the user what to fix.
    #[error("{0}")]
    Failed(String),
    /// The job's configuration is not usable by this task type.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The job's sled tree could not be read or written.
    #[error("state store: {0}")]
    Store(#[from] sled::Error),
}

/// What the engine gives a running task.
#[derive(Clone)]
pub struct TaskContext {
    job_id: String,
    stop: StopSignal,
    budget: BudgetHandle,
    progress: ProgressSink,
    store: sled::Tree,
    clock: SharedClock,
    timezone: jiff::tz::TimeZone,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("job_id", &self.job_id)
            .finish()
    }
}

impl TaskContext {
    /// A context for one run of job `job_id`: the engine builds one per run; tests and
    /// embedders that drive a task themselves may too. The time zone is the system's until
    /// [`with_timezone`](Self::with_timezone) says otherwise.
    pub fn new(
        job_id: impl Into<String>,
        stop: StopSignal,
        budget: BudgetHandle,
        progress: ProgressSink,
        store: sled::Tree,
        clock: SharedClock,
    ) -> Self {
        TaskContext {
            job_id: job_id.into(),
            stop,
            budget,
            progress,
            store,
            clock,
            timezone: jiff::tz::TimeZone::system(),
        }
    }

    /// The same context in time zone `timezone` (`[jobs] timezone`; the engine sets it).
    pub fn with_timezone(mut self, timezone: jiff::tz::TimeZone) -> Self {
        self.timezone = timezone;
        self
    }

    /// A context for running a task outside the engine (one-shot commands, task tests): no
    /// limits, a fresh stop signal, the system clock.
    pub fn standalone(job_id: impl Into<String>, store: sled::Tree) -> Self {
        let job_id = job_id.into();
        TaskContext::new(
            job_id.clone(),
            StopSignal::new(),
            BudgetHandle::unlimited(job_id),
            ProgressSink::new(),
            store,
            Arc::new(SystemClock),
        )
    }

    /// The job's id, `backup.b1`: for log lines.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// Fires when the run must end (window closed, pause, shutdown): return soon after.
    pub fn stop(&self) -> &StopSignal {
        &self.stop
    }

    /// The job's share of the bandwidth and CPU budgets.
    pub fn budget(&self) -> &BudgetHandle {
        &self.budget
    }

    /// Where the task reports counters, estimates and warnings for the status page.
    pub fn progress(&self) -> &ProgressSink {
        &self.progress
    }

    /// The job's own sled tree, kept across runs and restarts.
    pub fn store(&self) -> &sled::Tree {
        &self.store
    }

    /// The current time from the engine's clock (settable in tests).
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// The engine's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The configured time zone (`[jobs] timezone`), for rules that speak of days and months.
    pub fn timezone(&self) -> &jiff::tz::TimeZone {
        &self.timezone
    }

    /// Waits until the job may move these bytes, or returns [`Stopped`] as soon as the stop
    /// signal fires (at once if it already has): a stop never waits on the budget.
    pub async fn acquire(&self, request: ByteRequest) -> Result<(), Stopped> {
        self.budget.acquire_or_stop(request, &self.stop).await
    }

    /// A point where the CPU governor may hold the task back (between files, between chunks of
    /// a large one); cut short by the stop signal like [`Self::acquire`].
    pub async fn cpu_checkpoint(&self) -> Result<(), Stopped> {
        self.budget.cpu_checkpoint_or_stop(&self.stop).await
    }

    /// Makes everything the task wrote so far durable. Call it at natural checkpoints (after a
    /// batch of files); the engine also flushes when a run ends.
    pub async fn checkpoint(&self) -> Result<(), TaskError> {
        crate::store::flush_tree(&self.store).await?;
        Ok(())
    }
}

/// A task type's work for one job.
#[async_trait]
pub trait Task: Send + 'static {
    /// Does (or resumes) the job's work. Must return soon after `ctx.stop()` fires; the engine
    /// drops (aborts) the future if it has not returned [`STOP_GRACE`] (500 ms) after the stop,
    /// which keeps a window close within the second the engine promises.
    ///
    /// [`STOP_GRACE`]: crate::actors::job::STOP_GRACE
    async fn run(&mut self, ctx: &TaskContext) -> Result<Outcome, TaskError>;
}

/// Builds a task for one job from its configuration.
pub type TaskFactory = Arc<dyn Fn(&JobConfig) -> Result<Box<dyn Task>, TaskError> + Send + Sync>;

/// Maps task type names (`backup`, `check`, ...) to their keys and factories.
///
/// A task type registers with the keys it reads ([`Registry::register`]); the configuration
/// loader takes the [`schemas`](Registry::schemas) and checks each section against the one
/// registered under its name, so the configuration crate needs no change for a new type.
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<String, (TaskSchema, TaskFactory)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers task type `task_type` whose jobs' own keys are `K`: the loader checks them
    /// against `K`, and `factory` gets them parsed. A later registration of the same name
    /// replaces the earlier one.
    pub fn register<K, F>(&mut self, task_type: &str, factory: F) -> &mut Self
    where
        K: TaskKeys,
        F: Fn(&JobConfig, &K) -> Result<Box<dyn Task>, TaskError> + Send + Sync + 'static,
    {
        let name = task_type.to_string();
        let build = move |job: &JobConfig| {
            let keys = job.params.get::<K>().ok_or_else(|| {
                TaskError::Config(format!(
                    "job {} carries no keys of task type {name}",
                    job.id()
                ))
            })?;
            factory(job, keys)
        };
        self.types.insert(
            task_type.to_string(),
            (TaskSchema::of::<K>(task_type), Arc::new(build)),
        );
        self
    }

    /// Registers a task type that takes any key as text (`job.params.texts()`), for quick
    /// experiments and tests; users get no check of its keys and no "did you mean".
    pub fn register_free_form<F>(&mut self, task_type: &str, factory: F) -> &mut Self
    where
        F: Fn(&JobConfig) -> Result<Box<dyn Task>, TaskError> + Send + Sync + 'static,
    {
        self.types.insert(
            task_type.to_string(),
            (TaskSchema::free_form(task_type), Arc::new(factory)),
        );
        self
    }

    /// Whether `task_type` is registered.
    pub fn contains(&self, task_type: &str) -> bool {
        self.types.contains_key(task_type)
    }

    /// The registered type names.
    pub fn task_types(&self) -> Vec<String> {
        self.types.keys().cloned().collect()
    }

    /// The registered types' keys, for the configuration loader
    /// ([`LoadOptions::task_types`](tahoe_jobs_config::LoadOptions::task_types)).
    pub fn schemas(&self) -> Vec<TaskSchema> {
        self.types.values().map(|(s, _)| s.clone()).collect()
    }

    /// Builds the task for `job`.
    pub fn build(&self, job: &JobConfig) -> Result<Box<dyn Task>, TaskError> {
        let (_, factory) = self.types.get(&job.task_type).ok_or_else(|| {
            TaskError::Config(format!(
                "no task type {:?} is registered (known: {})",
                job.task_type,
                self.task_types().join(", ")
            ))
        })?;
        factory(job)
    }
}

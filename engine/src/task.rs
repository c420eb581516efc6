//! The extension point: the [`Task`] trait every task type implements, the [`TaskContext`] the
//! engine hands it, and the [`Registry`] that maps a task type name to a factory.
//!
//! A task knows nothing about actors: it gets a context, does its work, watches the stop signal,
//! and returns [`Outcome::Completed`] or [`Outcome::StoppedEarly`]. Everything it must remember
//! across runs (what is done, where to resume) goes in its job-scoped sled tree.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tahoe_jobs_config::JobConfig;

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
    Unavailable { what: String, message: String },
    /// The run cannot succeed as configured (a missing source directory, say): retry with
    /// backoff; the message tells the user what to fix.
    #[error("{0}")]
    Failed(String),
    /// The job's configuration is not usable by this task type.
    #[error("bad configuration: {0}")]
    Config(String),
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
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("job_id", &self.job_id)
            .finish()
    }
}

impl TaskContext {
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
        }
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

    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    pub fn stop(&self) -> &StopSignal {
        &self.stop
    }

    pub fn budget(&self) -> &BudgetHandle {
        &self.budget
    }

    pub fn progress(&self) -> &ProgressSink {
        &self.progress
    }

    /// The job's own sled tree, kept across runs and restarts.
    pub fn store(&self) -> &sled::Tree {
        &self.store
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
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
        self.store.flush_async().await?;
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

/// Maps task type names (`backup`, `check`, ...) to factories.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, TaskFactory>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a task type. A later registration of the same name replaces the earlier one.
    pub fn register<F>(&mut self, task_type: &str, factory: F) -> &mut Self
    where
        F: Fn(&JobConfig) -> Result<Box<dyn Task>, TaskError> + Send + Sync + 'static,
    {
        self.factories
            .insert(task_type.to_string(), Arc::new(factory));
        self
    }

    pub fn contains(&self, task_type: &str) -> bool {
        self.factories.contains_key(task_type)
    }

    /// The registered type names, for the configuration loader's list of known sections.
    pub fn task_types(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// Builds the task for `job`.
    pub fn build(&self, job: &JobConfig) -> Result<Box<dyn Task>, TaskError> {
        let factory = self.factories.get(&job.task_type).ok_or_else(|| {
            TaskError::Config(format!(
                "no task type {:?} is registered (known: {})",
                job.task_type,
                self.task_types().join(", ")
            ))
        })?;
        factory(job)
    }
}

//! The errors the engine's public API returns.

use crate::overrides::OverrideError;
use crate::store::StoreError;

/// Why the engine could not start, or could not do what a handle asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "job {job} has task type {task_type:?}, which this build does not know (known: {known})"
    )]
    /// A job names a task type no factory is registered for.
    UnknownTaskType {
        /// The job's id.
        job: String,
        /// The task type it names.
        task_type: String,
        /// The registered types.
        known: String,
    },
    /// Two jobs have the same id.
    #[error("job {0} is configured more than once; give each job a distinct name")]
    DuplicateJob(String),
    /// No job has this id or name.
    #[error("there is no job {job} (jobs: {known})")]
    UnknownJob {
        /// The id or name asked for.
        job: String,
        /// The jobs there are.
        known: String,
    },
    /// A short name matches more than one job.
    #[error("{name} names more than one job ({ids}); use the full id")]
    AmbiguousJob {
        /// The name asked for.
        name: String,
        /// The ids it matches.
        ids: String,
    },
    /// The job is paused, so it cannot be started now.
    #[error("job {0} is paused; resume it first")]
    Paused(String),
    /// `Engine::start` was called outside an actix System.
    #[error("the engine must be started inside a running actix System")]
    NoSystem,
    /// The engine has shut down; its handle no longer works.
    #[error("the engine has shut down")]
    Stopped,
    /// A live override was refused.
    #[error(transparent)]
    Override(#[from] OverrideError),
}

impl From<actix::MailboxError> for EngineError {
    fn from(_: actix::MailboxError) -> Self {
        EngineError::Stopped
    }
}

//! The errors the engine's public API returns.

use crate::overrides::OverrideError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "job {job} has task type {task_type:?}, which this build does not know (known: {known})"
    )]
    UnknownTaskType {
        job: String,
        task_type: String,
        known: String,
    },
    #[error("job {0} is configured more than once; give each job a distinct name")]
    DuplicateJob(String),
    #[error("there is no job {job} (jobs: {known})")]
    UnknownJob { job: String, known: String },
    #[error("{name} names more than one job ({ids}); use the full id")]
    AmbiguousJob { name: String, ids: String },
    #[error("job {0} is paused; resume it first")]
    Paused(String),
    #[error("the engine must be started inside a running actix System")]
    NoSystem,
    #[error("the engine has shut down")]
    Stopped,
    #[error(transparent)]
    Override(#[from] OverrideError),
}

impl From<actix::MailboxError> for EngineError {
    fn from(_: actix::MailboxError) -> Self {
        EngineError::Stopped
    }
}

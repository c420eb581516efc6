//! A job's state machine, as the job actor walks it:
//!
//! ```text
//! not due (until) -> waiting for window (opens) -> running -> stopping (reason)
//!   -> stopped early (reason) | completed | failed (retry at) -> re-evaluated at once
//! paused (until) and disabled hold from any idle state.
//! ```
//!
//! `Completed` and `StoppedEarly` mark the end of a run; the actor re-plans straight after, so
//! they show in the log (and for an instant in the status), not as resting states.

use std::fmt;

use jiff::Timestamp;

use crate::policy::Plan;
use crate::stop::StopReason;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Not evaluated yet.
    New,
    /// The job is disabled in the configuration.
    Disabled,
    /// A user paused the job.
    Paused {
        /// When the pause ends; `None` for an indefinite pause.
        until: Option<Timestamp>,
    },
    /// Idle until the job becomes due by its frequency.
    NotDue {
        /// When the job becomes due.
        until: Timestamp,
    },
    /// Due, but outside its allowed window.
    WaitingForWindow {
        /// When the window opens next; `None` when it never does.
        opens: Option<Timestamp>,
    },
    /// A run is in progress.
    Running {
        /// When the run started.
        since: Timestamp,
    },
    /// The stop signal fired; the task has ~500 ms to return before it is dropped.
    Stopping {
        /// Why the run was asked to stop.
        reason: StopReason,
    },
    /// A run ended before completing.
    StoppedEarly {
        /// Why it was asked to stop; `None` when the task stopped without being asked to.
        reason: Option<StopReason>,
    },
    /// A run completed.
    Completed,
    /// A run failed; the job waits before it tries again.
    Failed {
        /// When the job retries, by the backoff.
        retry_at: Timestamp,
    },
}

impl JobState {
    /// The state an idle job waits in; `None` for [`Plan::Start`], which is not a waiting state.
    pub fn from_plan(plan: Plan) -> Option<JobState> {
        Some(match plan {
            Plan::Start { .. } => return None,
            Plan::Disabled => JobState::Disabled,
            Plan::Paused { until } => JobState::Paused { until },
            Plan::Failed { retry_at } => JobState::Failed { retry_at },
            Plan::NotDue { until } => JobState::NotDue { until },
            Plan::WaitingForWindow { opens } => JobState::WaitingForWindow { opens },
        })
    }

    /// The instant that belongs to the state (until, opens, since, retry at).
    pub fn instant(&self) -> Option<Timestamp> {
        match *self {
            JobState::Paused { until } => until,
            JobState::NotDue { until } => Some(until),
            JobState::WaitingForWindow { opens } => opens,
            JobState::Running { since } => Some(since),
            JobState::Failed { retry_at } => Some(retry_at),
            JobState::New
            | JobState::Disabled
            | JobState::Stopping { .. }
            | JobState::StoppedEarly { .. }
            | JobState::Completed => None,
        }
    }

    /// The stop reason, for the states that have one.
    pub fn reason(&self) -> Option<StopReason> {
        match *self {
            JobState::Stopping { reason } => Some(reason),
            JobState::StoppedEarly { reason } => reason,
            _ => None,
        }
    }

    /// Whether a task is still running: running, or stopping and not returned yet.
    pub fn is_running(&self) -> bool {
        matches!(self, JobState::Running { .. } | JobState::Stopping { .. })
    }
}

/// An instant to the second, for logs: the status keeps full precision.
pub(crate) fn short(t: Timestamp) -> Timestamp {
    t.round(jiff::Unit::Second).unwrap_or(t)
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JobState::New => f.write_str("new"),
            JobState::Disabled => f.write_str("disabled"),
            JobState::Paused { until: None } => f.write_str("paused"),
            JobState::Paused { until: Some(t) } => write!(f, "paused until {}", short(t)),
            JobState::NotDue { until } => write!(f, "not due until {}", short(until)),
            JobState::WaitingForWindow { opens: None } => {
                f.write_str("waiting for a window that never opens")
            }
            JobState::WaitingForWindow { opens: Some(t) } => {
                write!(f, "waiting for the window opening at {}", short(t))
            }
            JobState::Running { since } => write!(f, "running since {}", short(since)),
            JobState::Stopping { reason } => write!(f, "stopping ({reason})"),
            JobState::StoppedEarly { reason: Some(r) } => write!(f, "stopped early ({r})"),
            JobState::StoppedEarly { reason: None } => {
                f.write_str("stopped early (without being asked)")
            }
            JobState::Completed => f.write_str("completed"),
            JobState::Failed { retry_at } => write!(f, "failed, retrying at {}", short(retry_at)),
        }
    }
}

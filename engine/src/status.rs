//! The status snapshot served to the binary and the web layer: its own serializable types, so
//! engine internals can change without changing what clients see.
//!
//! `progress.current` and `progress.warnings` may name files: a public page should show only
//! the counters and estimates.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use tahoe_jobs_config::WindowState;

use crate::progress::ProgressSnapshot;
use crate::record::LastOutcome;
use crate::state::JobState;
use crate::stop::StopReason;

/// Every job, at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    pub now: Timestamp,
    pub jobs: Vec<JobStatus>,
}

impl EngineStatus {
    pub fn job(&self, id: &str) -> Option<&JobStatus> {
        self.jobs.iter().find(|j| j.id == id)
    }
}

/// One job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub id: String,
    pub task_type: String,
    pub enabled: bool,
    pub frequency_secs: u64,
    pub state: StateView,
    /// When the job next looks at its situation because something changes (the window opens
    /// or closes, it becomes due, a pause or backoff ends); `None` when nothing is scheduled.
    pub next_transition: Option<Timestamp>,
    pub window: WindowView,
    pub last_started: Option<Timestamp>,
    pub last_completed: Option<Timestamp>,
    pub last_outcome: Option<OutcomeView>,
    /// When the run that has not completed yet (stopped early, failed or interrupted) began.
    pub unfinished_run_since: Option<Timestamp>,
    /// When the job becomes due by its frequency; `None` when it is due already.
    pub next_due: Option<Timestamp>,
    pub last_error: Option<ErrorView>,
    pub consecutive_failures: u32,
    pub paused: bool,
    /// When a pause `for` a while ends; `None` for no pause or an indefinite one.
    pub paused_until: Option<Timestamp>,
    /// The current run's progress, or the last run's when idle.
    pub progress: ProgressSnapshot,
    pub last_run_counters: BTreeMap<String, u64>,
    pub last_completed_totals: BTreeMap<String, u64>,
    /// When the engine first saw the job (a job never completed counts as overdue from here).
    pub first_seen: Option<Timestamp>,
    /// `overdue_after` in seconds; `None` when it is `off`.
    pub overdue_after_secs: Option<u64>,
    /// Set while the job is overdue: it has not completed for longer than `overdue_after`
    /// (see [`crate::policy::overdue`]).
    pub overdue: Option<OverdueView>,
    /// The last runs, oldest first (at most [`crate::history::HISTORY_LEN`]).
    pub history: Vec<crate::history::RunEntry>,
}

/// Since when a job is overdue, and for how long at the snapshot's instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OverdueView {
    pub since: Timestamp,
    pub for_secs: u64,
}

impl From<crate::policy::Overdue> for OverdueView {
    fn from(o: crate::policy::Overdue) -> Self {
        OverdueView {
            since: o.since,
            for_secs: o.for_.as_secs(),
        }
    }
}

/// The state's name, its instant (until / opens / since / retry at) and its stop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateView {
    pub kind: StateKind,
    pub at: Option<Timestamp>,
    pub reason: Option<StopReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    New,
    Disabled,
    Paused,
    NotDue,
    WaitingForWindow,
    Running,
    Stopping,
    StoppedEarly,
    Completed,
    Failed,
}

impl From<JobState> for StateView {
    fn from(state: JobState) -> Self {
        let kind = match state {
            JobState::New => StateKind::New,
            JobState::Disabled => StateKind::Disabled,
            JobState::Paused { .. } => StateKind::Paused,
            JobState::NotDue { .. } => StateKind::NotDue,
            JobState::WaitingForWindow { .. } => StateKind::WaitingForWindow,
            JobState::Running { .. } => StateKind::Running,
            JobState::Stopping { .. } => StateKind::Stopping,
            JobState::StoppedEarly { .. } => StateKind::StoppedEarly,
            JobState::Completed => StateKind::Completed,
            JobState::Failed { .. } => StateKind::Failed,
        };
        StateView {
            kind,
            at: state.instant(),
            reason: state.reason(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowView {
    pub open: bool,
    pub next_change: Option<Timestamp>,
}

impl From<WindowState> for WindowView {
    fn from(w: WindowState) -> Self {
        WindowView {
            open: w.open,
            next_change: w.next_change,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeView {
    Completed {
        at: Timestamp,
    },
    StoppedEarly {
        at: Timestamp,
        reason: Option<StopReason>,
    },
    Failed {
        at: Timestamp,
        message: String,
    },
}

impl From<&LastOutcome> for OutcomeView {
    fn from(o: &LastOutcome) -> Self {
        match o.clone() {
            LastOutcome::Completed { at } => OutcomeView::Completed { at },
            LastOutcome::StoppedEarly { at, reason } => OutcomeView::StoppedEarly { at, reason },
            LastOutcome::Failed { at, message } => OutcomeView::Failed { at, message },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorView {
    pub at: Timestamp,
    pub message: String,
}

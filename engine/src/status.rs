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
    /// The instant of the snapshot.
    pub now: Timestamp,
    /// Every job the engine runs, one entry each.
    pub jobs: Vec<JobStatus>,
}

impl EngineStatus {
    /// The job with this id (`backup.b1`), if the engine has it.
    pub fn job(&self, id: &str) -> Option<&JobStatus> {
        self.jobs.iter().find(|j| j.id == id)
    }
}

/// One job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// The job's id, `backup.b1`.
    pub id: String,
    /// The job's task type, `backup`.
    pub task_type: String,
    /// Whether the job runs on its schedule (`enabled`).
    pub enabled: bool,
    /// How often the job runs, in seconds.
    pub frequency_secs: u64,
    /// Where the job is in its state machine.
    pub state: StateView,
    /// When the job next looks at its situation because something changes (the window opens
    /// or closes, it becomes due, a pause or backoff ends); `None` when nothing is scheduled.
    pub next_transition: Option<Timestamp>,
    /// Whether the job's allowed window is open, and when that changes.
    pub window: WindowView,
    /// When the job's last run started.
    pub last_started: Option<Timestamp>,
    /// When the job last completed a run.
    pub last_completed: Option<Timestamp>,
    /// How the last run ended.
    pub last_outcome: Option<OutcomeView>,
    /// When the run that has not completed yet (stopped early, failed or interrupted) began.
    pub unfinished_run_since: Option<Timestamp>,
    /// When the job becomes due by its frequency; `None` when it is due already.
    pub next_due: Option<Timestamp>,
    /// The last failure, kept until a run completes.
    pub last_error: Option<ErrorView>,
    /// Failed runs since the last completed one.
    pub consecutive_failures: u32,
    /// Whether a user's pause holds now.
    pub paused: bool,
    /// When a pause `for` a while ends; `None` for no pause or an indefinite one.
    pub paused_until: Option<Timestamp>,
    /// The current run's progress, or the last run's when idle.
    pub progress: ProgressSnapshot,
    /// Counters of the most recent run, however it ended.
    pub last_run_counters: BTreeMap<String, u64>,
    /// Counters of the most recent completed run.
    pub last_completed_totals: BTreeMap<String, u64>,
    /// When the engine first saw the job (a job never completed counts as overdue from here).
    pub first_seen: Option<Timestamp>,
    /// `overdue_after` in seconds; `None` when it is `off`.
    pub overdue_after_secs: Option<u64>,
    /// Set while the job is overdue: it has not completed for longer than `overdue_after`
    /// (see [`crate::policy::overdue()`]).
    pub overdue: Option<OverdueView>,
    /// The last runs, oldest first (at most [`crate::history::HISTORY_LEN`]).
    pub history: Vec<crate::history::RunEntry>,
}

/// Since when a job is overdue, and for how long at the snapshot's instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OverdueView {
    /// When the job became overdue.
    pub since: Timestamp,
    /// How long it has been overdue at the snapshot's instant, in seconds.
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
    /// The state's name.
    pub kind: StateKind,
    /// The state's instant: until (paused, not due), opens (waiting for window), since (running) or retry at (failed); `None` for the others.
    pub at: Option<Timestamp>,
    /// Why the run is stopping or stopped early; `None` for other states or a task that stopped unasked.
    pub reason: Option<StopReason>,
}

/// The name of a job's state, serialized in snake case (`waiting_for_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// Not evaluated yet.
    New,
    /// The job is disabled in the configuration.
    Disabled,
    /// A user paused the job.
    Paused,
    /// Idle until the job becomes due by its frequency.
    NotDue,
    /// Due, but waiting for its allowed window to open.
    WaitingForWindow,
    /// A run is in progress.
    Running,
    /// The run was asked to stop and has not returned yet.
    Stopping,
    /// A run just ended before completing.
    StoppedEarly,
    /// A run just completed.
    Completed,
    /// The last run failed; the job waits to retry.
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

/// Whether a job's allowed window is open, as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowView {
    /// Whether the window is open now.
    pub open: bool,
    /// When `open` flips next; `None` when it never will.
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

/// How a job's last run ended, tagged by `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeView {
    /// The run completed.
    Completed {
        /// When the run ended.
        at: Timestamp,
    },
    /// The run ended before completing.
    StoppedEarly {
        /// When the run ended.
        at: Timestamp,
        /// Why it was asked to stop; `None` when the task stopped without being asked to.
        reason: Option<StopReason>,
    },
    /// The run failed (or its task panicked).
    Failed {
        /// When the run ended.
        at: Timestamp,
        /// The error, as displayed.
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

/// A job's last failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorView {
    /// When the failed run ended.
    pub at: Timestamp,
    /// The error, as displayed.
    pub message: String,
}

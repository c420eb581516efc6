//! Job events: what the engine tells the outside world when a run ends or a job becomes overdue,
//! so a binary or an embedder can run hooks or send notifications. The engine only announces;
//! what is done with an event (commands, HTTP, mail) is the listener's business and can never
//! hold a job up: events go out on a bounded broadcast channel whose send does not wait, and a
//! listener that falls behind loses the oldest events (it is told how many).
//!
//! An event carries the job id, its task type, counts, instants and the task's error message;
//! never a task's parameters. The error message is the task's own, written for the user: it may
//! name a local path, so a listener that sends it off the machine should hide those.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::broadcast;

/// How many events a slow listener may lag behind before it loses the oldest.
pub const EVENT_BUFFER: usize = 256;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run completed.
    Success,
    /// A run failed (the task's error, a panic, a task that could not be built, or one that
    /// stopped without being asked to). A run stopped by its window, a pause or a shutdown is
    /// not a failure and sends no event.
    Failure,
    /// The job has not completed for longer than its `overdue_after` (once per spell).
    Overdue,
}

impl EventKind {
    /// The snake_case name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Success => "success",
            EventKind::Failure => "failure",
            EventKind::Overdue => "overdue",
        }
    }
}

/// One event about one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    /// What happened.
    pub kind: EventKind,
    /// `backup.b1`.
    pub job: String,
    /// The job's task type, `backup`.
    pub task_type: String,
    /// When it happened (a run's end, or the instant the job was seen overdue).
    pub at: Timestamp,
    /// When the run began (success and failure).
    pub started: Option<Timestamp>,
    /// How long the run took (success and failure).
    pub duration: Option<Duration>,
    /// The run's progress counters (files, bytes, ...); empty for an overdue event.
    pub counters: BTreeMap<String, u64>,
    /// The failure's message (failure only).
    pub error: Option<String>,
    /// Failed runs since the last completed one.
    pub consecutive_failures: u32,
    /// When the job last completed a run, if ever.
    pub last_completed: Option<Timestamp>,
    /// Since when the job is overdue (overdue only).
    pub overdue_since: Option<Timestamp>,
}

/// The sending side, held by the supervisor and every job actor.
pub type EventSender = broadcast::Sender<JobEvent>;
/// A listener's side: [`crate::EngineHandle::subscribe`].
pub type EventReceiver = broadcast::Receiver<JobEvent>;

/// A new channel; the receiver it comes with is dropped (listeners subscribe).
pub fn channel() -> EventSender {
    broadcast::channel(EVENT_BUFFER).0
}

/// Sends without waiting; no listener is not an error.
pub fn announce(events: &EventSender, event: JobEvent) {
    let _ = events.send(event);
}

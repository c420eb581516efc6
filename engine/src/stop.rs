//! The stop signal a task watches: set when its window closes, it is paused, or the daemon
//! shuts down. Tasks `select!` on [`StopSignal::stopped`] so in-flight work is cancelled, not
//! waited for.

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Why a run was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The job's allowed window closed.
    WindowClosed,
    /// The job was paused.
    Paused,
    /// The daemon is shutting down.
    ShuttingDown,
    /// The job was removed or changed by a configuration reload.
    Reconfigured,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::WindowClosed => "window closed",
            StopReason::Paused => "paused",
            StopReason::ShuttingDown => "shutting down",
            StopReason::Reconfigured => "reconfigured",
        })
    }
}

/// A cloneable stop signal.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl StopSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the task to stop; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        {
            let mut r = self.reason.lock().expect("stop lock");
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.token.cancel();
    }

    /// Whether the signal has fired.
    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it fired, once it has.
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().expect("stop lock")
    }

    /// Resolves once a stop is requested.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }
}

//! The budget interface a task sees: ask before moving bytes, and give the CPU governor a chance
//! to hold the task back. Under the engine the gate behind it is a
//! [`LimitedBudget`](crate::limits::LimitedBudget), whose limits the budget actor keeps up to
//! date; a task only holds a [`BudgetHandle`], so it never sees actix.
//!
//! A wait for the budget can be long (a low limit at night), so the waits that also watch a
//! [`StopSignal`] ([`BudgetHandle::acquire_or_stop`], and `TaskContext::acquire`) return as soon
//! as the task is asked to stop, saying so, instead of letting the stop wait on the budget.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::stop::{StopReason, StopSignal};

/// Which way bytes move, seen from this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The job sends bytes (to the node or the storage servers).
    Upload,
    /// The job receives bytes.
    Download,
}

/// A request to move bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteRequest {
    /// Which way the bytes go.
    pub direction: Direction,
    /// Bytes the task itself sends or receives.
    pub bytes: u64,
    /// Bytes per destination (a storage server id) that follow from these bytes: estimates,
    /// or exact with [`Self::direct`]; empty when unknown.
    pub destinations: Vec<(String, u64)>,
    /// The task sends these bytes to the destinations itself (a direct upload to a storage
    /// server), not through the node: the destination figures are exact, and the shaping
    /// proxy never carries these bytes, so the destination and total limits hold them in the
    /// feed limiter even while exact shaping is on.
    pub direct: bool,
}

impl ByteRequest {
    /// A request to send `bytes`.
    pub fn upload(bytes: u64) -> Self {
        ByteRequest {
            direction: Direction::Upload,
            bytes,
            destinations: Vec::new(),
            direct: false,
        }
    }

    /// A request to send `bytes` straight to storage server `server` (see [`Self::direct`]).
    pub fn direct_upload(server: impl Into<String>, bytes: u64) -> Self {
        ByteRequest {
            direction: Direction::Upload,
            bytes,
            destinations: vec![(server.into(), bytes)],
            direct: true,
        }
    }

    /// A request to receive `bytes`.
    pub fn download(bytes: u64) -> Self {
        ByteRequest {
            direction: Direction::Download,
            bytes,
            destinations: Vec::new(),
            direct: false,
        }
    }
}

/// A wait for the budget cut short because the task was asked to stop: nothing was granted,
/// and the task should wind up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped while waiting for the budget")]
pub struct Stopped {
    /// Why the run was stopped, when the stop signal said.
    pub reason: Option<StopReason>,
}

/// The policy side: implemented by [`LimitedBudget`](crate::limits::LimitedBudget), and by
/// [`Unlimited`].
#[async_trait]
pub trait BudgetGate: Send + Sync + 'static {
    /// Resolves when `job` may move the requested bytes.
    async fn acquire(&self, job: &str, request: ByteRequest);
    /// Resolves when `job` may go on using the CPU (a duty cycle point).
    async fn cpu_checkpoint(&self, job: &str);
}

/// The pass-through policy: everything is allowed at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

#[async_trait]
impl BudgetGate for Unlimited {
    async fn acquire(&self, _job: &str, _request: ByteRequest) {}
    async fn cpu_checkpoint(&self, _job: &str) {}
}

/// What a task holds: the gate, bound to its job.
#[derive(Clone)]
pub struct BudgetHandle {
    job: String,
    gate: Arc<dyn BudgetGate>,
}

impl std::fmt::Debug for BudgetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetHandle")
            .field("job", &self.job)
            .finish()
    }
}

impl BudgetHandle {
    /// A handle for job `job` on the engine's budget `gate`.
    pub fn new(job: impl Into<String>, gate: Arc<dyn BudgetGate>) -> Self {
        BudgetHandle {
            job: job.into(),
            gate,
        }
    }

    /// A handle that never waits (one-shot commands without limits, tests).
    pub fn unlimited(job: impl Into<String>) -> Self {
        Self::new(job, Arc::new(Unlimited))
    }

    /// Waits until the bytes may move, however long that takes; prefer
    /// [`Self::acquire_or_stop`] (or `TaskContext::acquire`) in a task.
    pub async fn acquire(&self, request: ByteRequest) {
        self.gate.acquire(&self.job, request).await
    }

    /// Waits while the CPU governor holds the job back (not cut short by a stop: see
    /// [`TaskContext::cpu_checkpoint`](crate::TaskContext::cpu_checkpoint)).
    pub async fn cpu_checkpoint(&self) {
        self.gate.cpu_checkpoint(&self.job).await
    }

    /// Waits until the bytes may move, or until `stop` fires, whichever comes first; an already
    /// stopped task gets [`Stopped`] at once, without queueing for the budget.
    pub async fn acquire_or_stop(
        &self,
        request: ByteRequest,
        stop: &StopSignal,
    ) -> Result<(), Stopped> {
        until_stopped(stop, self.acquire(request)).await
    }

    /// [`Self::cpu_checkpoint`], cut short when `stop` fires.
    pub async fn cpu_checkpoint_or_stop(&self, stop: &StopSignal) -> Result<(), Stopped> {
        until_stopped(stop, self.cpu_checkpoint()).await
    }
}

async fn until_stopped(
    stop: &StopSignal,
    wait: impl std::future::Future<Output = ()>,
) -> Result<(), Stopped> {
    let stopped = || Stopped {
        reason: stop.reason(),
    };
    if stop.is_stopped() {
        return Err(stopped());
    }
    tokio::select! {
        biased;
        _ = stop.stopped() => Err(stopped()),
        _ = wait => Ok(()),
    }
}

//! The budget interface a task sees: ask before moving bytes, and give the CPU governor a chance
//! to hold the task back. The policy behind it lives in the budget actor; a task only holds a
//! [`BudgetHandle`], so it never sees actix.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Which way bytes move, seen from this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upload,
    Download,
}

/// A request to move bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteRequest {
    pub direction: Direction,
    /// Bytes the task itself sends or receives.
    pub bytes: u64,
    /// Estimated bytes per destination (a storage server id) that follow from these bytes;
    /// empty when unknown.
    pub destinations: Vec<(String, u64)>,
}

impl ByteRequest {
    pub fn upload(bytes: u64) -> Self {
        ByteRequest {
            direction: Direction::Upload,
            bytes,
            destinations: Vec::new(),
        }
    }

    pub fn download(bytes: u64) -> Self {
        ByteRequest {
            direction: Direction::Download,
            bytes,
            destinations: Vec::new(),
        }
    }
}

/// The policy side: implemented by the budget actor's client, and by [`Unlimited`].
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

    pub async fn acquire(&self, request: ByteRequest) {
        self.gate.acquire(&self.job, request).await
    }

    pub async fn cpu_checkpoint(&self) {
        self.gate.cpu_checkpoint(&self.job).await
    }
}

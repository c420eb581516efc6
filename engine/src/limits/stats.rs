//! Status snapshots of the limiters: plain serializable data, separate from the limiters
//! themselves, so the status page, JSON and metrics can change without touching the arithmetic.

use serde::{Deserialize, Serialize};

/// One direction of one flow (a job, a destination or the total).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FlowStats {
    /// Bytes per second over the last few seconds.
    pub rate: f64,
    /// Bytes moved since the limiter was created.
    pub bytes: u64,
    /// The limit in force now, bytes per second; `None` means no limit.
    pub limit: Option<u64>,
    /// Seconds callers spent waiting on this flow, summed over callers.
    pub throttled_seconds: f64,
}

impl FlowStats {
    /// Adds another flow's figures into this one (several connections to one destination).
    /// The limit is kept if either has one, since they are the same destination's limit.
    pub fn merge(&mut self, other: &FlowStats) {
        self.rate += other.rate;
        self.bytes += other.bytes;
        self.limit = self.limit.or(other.limit);
        self.throttled_seconds += other.throttled_seconds;
    }
}

/// Both directions of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DirectionStats {
    /// The upload direction.
    pub upload: FlowStats,
    /// The download direction.
    pub download: FlowStats,
}

/// How a destination's bytes were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accounting {
    /// Counted on the wire by the shaping proxy, or sent by tahoe-jobs itself straight to the
    /// server (direct uploads).
    Exact,
    /// Derived from what tasks fed in, with the encoding expansion and share placement applied.
    Estimated,
}

/// One destination's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DestinationStats {
    /// Whether the figures are counted on the wire or estimated.
    pub mode: Accounting,
    /// Traffic to the destination.
    pub upload: FlowStats,
    /// Traffic from the destination.
    pub download: FlowStats,
}

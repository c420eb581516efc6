//! Resource limits: the arithmetic behind the budget actor.
//!
//! - [`bucket`]: a smooth byte-rate limiter whose rate changes live;
//! - [`policy`]: which limits are in force at an instant (schedules, percentages, overrides);
//! - [`expansion`]: how many bytes reach the wire and each destination for bytes fed in;
//! - [`cpu`]: the duty-cycle CPU governor;
//! - [`gate`]: [`LimitedBudget`], the [`crate::BudgetGate`] that puts them together;
//! - [`stats`]: serializable snapshots for the status page.
//!
//! Destinations are opaque ids chosen by the caller; nothing here knows what stores them.

pub mod bucket;
pub mod cpu;
pub mod expansion;
pub mod gate;
pub mod policy;
pub mod stats;

pub use bucket::Bucket;
pub use cpu::{CpuError, CpuGovernor, CpuSource, ProcStat};
pub use expansion::Coding;
pub use gate::{BudgetStats, CpuStats, JobStats, LimitedBudget};
pub use policy::{limits_at, JobLimitsNow, LimitsNow, Overrides, PairLimits};
pub use stats::{Accounting, DestinationStats, DirectionStats, FlowStats};

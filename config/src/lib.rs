//! Configuration for tahoe-jobs.
//!
//! Jobs live in `NODEDIR/tahoe-jobs.cfg` (tahoe.cfg's INI dialect, jobs by prefix:
//! `[backup] b1.source = ...`), layered with an optional TOML file, `TAHOE_JOBS_*` environment
//! variables and command-line values through figment. [`load`] validates the merged tree into a
//! typed [`Config`]; every bad value is reported with its source, key and what is accepted.
//!
//! The value types (durations, time windows, rates, CPU shares) each have their own parser and
//! pure evaluation functions, so policy can be tested without any I/O.

pub mod cpu;
pub mod duration;
pub mod error;
pub mod ini;
pub mod load;
pub mod model;
pub mod node_facts;
pub mod rate;
pub mod size;
pub mod windows;

pub use cpu::CpuShare;
pub use duration::HumanDuration;
pub use error::{ConfigError, Problem};
pub use load::{
    load, parse_bool, parse_duration_or_zero, parse_target, redact, LoadOptions,
    DEFAULT_NODE_TIMEOUT, DEFAULT_RECHECK_AFTER, DEFAULT_RECHECK_ALL_AFTER, JOB_FILE_NAME,
};
pub use model::*;
pub use node_facts::{Encoding, NodeFacts};
pub use rate::{Rate, RateNow, RateSchedule};
pub use size::DEFAULT_CACHE_SIZE;
pub use windows::{Eta, WindowState, Windows};

/// Re-exported so users of this crate name instants and zones with the same types.
pub use jiff;

//! Configuration for tahoe-jobs.
//!
//! Jobs live in `NODEDIR/tahoe-jobs.cfg` (tahoe.cfg's INI dialect, jobs by prefix:
//! `[backup] b1.source = ...`), layered with an optional TOML file, `TAHOE_JOBS_*` environment
//! variables and command-line values through figment. [`load()`](fn@load) validates the merged tree into a
//! typed [`Config`]; every bad value is reported with its source, key and what is accepted.
//!
//! The crate knows sections, jobs by prefix, layering, provenance and the keys every job has;
//! it knows no task type. A task type declares its own keys as a serde struct implementing
//! [`TaskKeys`]; the loader checks each section against the [`TaskSchema`] of its type.
//!
//! The value types (durations, time windows, rates, CPU shares) each have their own parser and
//! pure evaluation functions, so policy can be tested without any I/O.

#![warn(missing_docs)]

mod budget_section;
pub mod cpu;
mod daemon_section;
pub mod duration;
pub mod error;
pub mod hooks;
pub mod ini;
mod job_section;
pub mod load;
pub mod model;
pub mod node_facts;
mod origins;
pub mod rate;
pub mod schema;
pub mod size;
mod text_de;
mod validate;
pub mod values;
pub mod windows;

pub use cpu::CpuShare;
pub use duration::HumanDuration;
pub use error::{ConfigError, Problem};
pub use job_section::COMMON_JOB_KEYS;
pub use load::{load, LoadOptions, DEFAULT_FREQUENCY, DEFAULT_NODE_TIMEOUT, JOB_FILE_NAME};
pub use model::*;
pub use node_facts::{Encoding, NodeFacts};
pub use rate::{Rate, RateNow, RateSchedule};
pub use schema::{JobContext, KeyDoc, KeyProblem, TaskKeys, TaskParams, TaskSchema};
pub use size::DEFAULT_CACHE_SIZE;
pub use values::{
    parse_absolute_path, parse_bool, parse_duration_or_zero, parse_path, parse_target, redact,
    BOOL_ACCEPTED, TARGET_ACCEPTED,
};
pub use windows::{Eta, WindowState, Windows};

/// Re-exported so users of this crate name instants and zones with the same types.
pub use jiff;

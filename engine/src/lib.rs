//! The tahoe-jobs engine: runs jobs at the right times, inside their windows and budgets, and
//! remembers what they did. It knows nothing about Tahoe-LAFS: task types plug in through the
//! [`Task`] trait and the [`Registry`].
//!
//! Code map:
//! - [`task`], [`stop`], [`progress`], [`budget`], [`clock`]: what a task sees.
//! - [`policy`]: the rules (due-ness, overdue-ness, backoff, what to do and when to look again)
//!   as plain functions.
//! - [`record`], [`store`]: what is remembered per job, and the sled database it lives in;
//!   [`overrides`]: values changed live, a layer above the configuration files.
//! - [`limits`]: the limiters and which limits are in force when; [`shaping`]: the SOCKS5
//!   proxy that paces the store's own traffic.
//! - [`state`]: the job state machine; [`actors`]: supervisor, job, window and budget actors.
//! - [`runtime`]: where task work runs (a multi-threaded runtime beside the actors' thread).
//! - [`engine`]: [`Engine::start`] and the [`EngineHandle`]; [`status`]: the status snapshot.

pub mod actors;
pub mod budget;
pub mod clock;
pub mod engine;
pub mod error;
pub mod limits;
pub mod overrides;
pub mod policy;
pub mod progress;
pub mod record;
pub mod runtime;
pub mod shaping;
pub mod state;
pub mod status;
pub mod stop;
pub mod store;
pub mod task;

pub use actors::budget::BudgetReport;
pub use actors::job::JobCommand;
pub use actors::supervisor::ReloadSummary;
pub use budget::{BudgetGate, BudgetHandle, ByteRequest, Direction, Stopped, Unlimited};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, TokioClock};
pub use engine::{Enforcement, Engine, EngineHandle, EngineOptions};
pub use error::EngineError;
pub use overrides::{LiveOverrides, OverrideError, OverrideTarget, OverrideValue};
pub use progress::{ProgressSink, ProgressSnapshot, Warning};
pub use record::{JobRecord, RecordError};
pub use runtime::{task_runtime, TaskRuntime};
pub use state::JobState;
pub use status::{EngineStatus, JobStatus, OverdueView, StateKind, StateView};
pub use stop::{StopReason, StopSignal};
pub use store::{Store, StoreError};
pub use task::{Outcome, Registry, Task, TaskContext, TaskError, TaskFactory};

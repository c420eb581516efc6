//! The tahoe-jobs engine: runs jobs at the right times, inside their windows and budgets, and
//! remembers what they did. It knows nothing about Tahoe-LAFS: task types plug in through the
//! [`Task`] trait and the [`Registry`].
//!
//! What an embedder uses (re-exported here; the modules behind them are private):
//! - [`Engine::start`] with [`EngineOptions`], and the [`EngineHandle`] it returns (status,
//!   pause, run now, reload, shutdown);
//! - the extension point: [`Task`], [`TaskContext`] (stop signal, budget, progress, the job's
//!   sled tree, clock, time zone), [`Outcome`], [`TaskError`], and the [`Registry`] a task type
//!   registers with, together with its keys (the key-declaration types are re-exported below
//!   from the configuration crate: [`TaskKeys`], [`KeyDoc`], [`KeyProblem`], [`JobContext`]);
//! - [`Clock`] and its implementations, [`StopSignal`], [`ProgressSink`], [`BudgetHandle`].
//!
//! Public modules, for the `tahoe-jobs` binary and the engine's own tests rather than for
//! embedders: [`status`] (the status snapshot), [`overrides`] (live changes), [`limits`] and
//! [`shaping`] (limiters, the SOCKS5 pacing proxy), [`record`] (the per-job record), [`policy`]
//! (the scheduling rules as plain functions) and [`actors`]. A job's last runs are kept by
//! [`RunHistory`]; task work runs on a [`TaskRuntime`] beside the actors' thread;
//! [`events`] carries job events (a run ended, a job became
//! overdue) to hooks and notifications.

#![warn(missing_docs)]

pub mod actors;
mod budget;
mod clock;
mod engine;
mod error;
pub mod events;
mod history;
pub mod limits;
pub mod overrides;
pub mod policy;
mod progress;
pub mod record;
pub mod runtime;
pub mod shaping;
mod state;
pub mod status;
mod stop;
mod store;
mod task;

pub use actors::budget::BudgetReport;
pub use actors::job::JobCommand;
pub use actors::supervisor::ReloadSummary;
pub use budget::{BudgetGate, BudgetHandle, ByteRequest, Direction, Stopped, Unlimited};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, TokioClock};
pub use engine::{Enforcement, Engine, EngineHandle, EngineOptions};
pub use error::EngineError;
pub use events::{EventKind, EventReceiver, JobEvent};
pub use history::{RunEntry, RunHistory, RunOutcome, HISTORY_LEN};
pub use overrides::{LiveOverrides, OverrideError, OverrideTarget, OverrideValue};
pub use progress::{ProgressSink, ProgressSnapshot, Warning};
pub use record::{JobRecord, RecordError};
pub use runtime::{task_runtime, TaskRuntime};
pub use state::JobState;
pub use status::{EngineStatus, JobStatus, OverdueView, StateKind, StateView};
pub use stop::{StopReason, StopSignal};
pub use store::{flush_tree, Store, StoreError};
pub use tahoe_jobs_config::{JobContext, KeyDoc, KeyProblem, TaskKeys};
pub use task::{Outcome, Registry, Task, TaskContext, TaskError, TaskFactory};

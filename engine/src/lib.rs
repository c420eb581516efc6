//! The tahoe-jobs engine: runs jobs at the right times, inside their windows and budgets, and
//! remembers what they did. It knows nothing about Tahoe-LAFS: task types plug in through the
//! [`Task`] trait and the [`Registry`].

pub mod budget;
pub mod clock;
pub mod progress;
pub mod stop;
pub mod task;

pub use budget::{BudgetGate, BudgetHandle, ByteRequest, Direction, Unlimited};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use progress::{ProgressSink, ProgressSnapshot, Warning};
pub use stop::{StopReason, StopSignal};
pub use task::{Outcome, Registry, Task, TaskContext, TaskError, TaskFactory};

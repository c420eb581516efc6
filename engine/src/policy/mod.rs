//! Scheduling, overdue-ness and budget policy as plain functions of (record, schedule, window
//! state, limits, now): no actors, no I/O, no clocks of their own. The actors only wire timers
//! and messages to these, so every rule is tested here with a given instant.

pub mod backoff;
pub mod budget;
pub mod due;
pub mod overdue;
pub mod plan;

pub use backoff::{backoff_delay, retry_at, BACKOFF_CAP};
pub use budget::{evaluation_delay, limits_in_force, same_limits};
pub use due::{is_due, next_due};
pub use overdue::{overdue, overdue_at, Overdue, OverdueWatch};
pub use plan::{
    plan, timer_delay, while_running, window_still_holds, Plan, RunCheck, RunNow, MAX_SLEEP,
};

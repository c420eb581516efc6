//! The actors: a [`Supervisor`](supervisor::Supervisor) owning one
//! [`JobActor`](job::JobActor) per job, and the [`BudgetActor`](budget::BudgetActor). They only
//! wire timers and messages to the pure functions in [`crate::policy`].
//!
//! Windows need no actor of their own: each job actor keeps one timer, set to the next instant at
//! which its plan can change (its window opens or closes, it becomes due, a pause or backoff
//! ends) and never longer than a minute, and re-plans from the wall clock when it fires. That is
//! at the instant in the normal case, and within a minute after a wall-clock jump or a suspend.

pub mod budget;
pub mod job;
pub mod supervisor;

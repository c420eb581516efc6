//! The actors: a [`Supervisor`](supervisor::Supervisor) owning one
//! [`JobActor`](job::JobActor) per job, each job gated by its own
//! [`WindowActor`](window::WindowActor) and by the one [`BudgetActor`](budget::BudgetActor).
//! They only wire timers and messages to the pure functions in [`crate::policy`].
//!
//! - A job actor starts its window actor and learns from it, by [`window::WindowChanged`]
//!   messages, when its window opens and closes: at the instant, and within a minute after a
//!   wall-clock jump or a suspend. Its own timer covers only what is its own: when the job
//!   becomes due, and when a pause or a backoff ends (also never longer than a minute).
//! - The budget actor keeps the limits in force in the gate every task holds, and in the shaping
//!   proxy if there is one: at each boundary of the limit schedules, and at once on a change.
//!   Tasks wait on the gate directly, never on an actor's mailbox.

pub mod budget;
pub mod job;
pub mod supervisor;
pub mod window;

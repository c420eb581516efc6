//! The window actor: one per job, started by its job actor. It owns the job's allowed times,
//! their zone and the wall clock, and tells the job when its window opens and closes with a
//! typed [`WindowChanged`]. The job actor never evaluates windows itself.
//!
//! Its timer is set to the next boundary itself, so the news arrives at the instant, and never
//! further out than [`MAX_SLEEP`], so a wall-clock jump or a machine suspend (after which tokio
//! timers and the wall clock disagree) is noticed within a minute. Which spans are open at an
//! instant, across midnight and DST changes, is `Windows::state_at`, a pure function of the
//! configuration crate; this actor only carries its answers.

use actix::prelude::*;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use tahoe_jobs_config::{WindowState, Windows};
use tracing::debug;

use crate::clock::SharedClock;
use crate::policy::timer_delay;
#[cfg(doc)]
use crate::policy::MAX_SLEEP;

/// The job's window opened or closed (or, after a jump of the wall clock or new allowed times,
/// changes at another instant than announced before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct WindowChanged {
    /// Whether the window is open now.
    pub open: bool,
    /// When `open` flips next; `None` when it never will (always or never open).
    pub next_change: Option<Timestamp>,
}

impl WindowChanged {
    /// The same news as a `WindowState`.
    pub fn state(self) -> WindowState {
        WindowState {
            open: self.open,
            next_change: self.next_change,
        }
    }
}

impl From<WindowState> for WindowChanged {
    fn from(s: WindowState) -> Self {
        WindowChanged {
            open: s.open,
            next_change: s.next_change,
        }
    }
}

/// The window now, looked at afresh from the wall clock.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "WindowChanged")]
pub struct CurrentWindow;

/// New allowed times (a reload, or a live override of `allowed_times`): in force at once.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SetWindows(pub Windows);

/// Stops the actor: its job is going away.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopWindow;

/// The actor that watches one job's allowed times (see the module documentation).
pub struct WindowActor {
    /// For log lines only.
    job: String,
    windows: Windows,
    timezone: TimeZone,
    clock: SharedClock,
    listener: Recipient<WindowChanged>,
    /// What the listener last heard, so that a periodic look that finds nothing new stays quiet.
    told: Option<WindowChanged>,
    timer: Option<SpawnHandle>,
}

impl WindowActor {
    /// An actor for `job`'s `windows` in zone `timezone`, telling `listener` of each change; `job` only names it in logs.
    pub fn new(
        job: impl Into<String>,
        windows: Windows,
        timezone: TimeZone,
        clock: SharedClock,
        listener: Recipient<WindowChanged>,
    ) -> Self {
        WindowActor {
            job: job.into(),
            windows,
            timezone,
            clock,
            listener,
            told: None,
            timer: None,
        }
    }

    /// Looks at the window now, tells the listener if that is news, and sets the timer for the
    /// next look.
    fn look(&mut self, ctx: &mut Context<Self>) -> WindowChanged {
        let now = self.clock.now();
        let state = WindowChanged::from(self.windows.state_at(now, &self.timezone));
        if !self.listener.connected() {
            ctx.stop();
            return state;
        }
        if self.told != Some(state) {
            debug!(job = %self.job, open = state.open, next_change = ?state.next_change, "window");
            self.told = Some(state);
            self.listener.do_send(state);
        }
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let delay = timer_delay(now, state.next_change);
        self.timer = Some(ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.look(ctx);
        }));
        state
    }
}

impl Actor for WindowActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.look(ctx);
    }
}

impl Handler<CurrentWindow> for WindowActor {
    type Result = MessageResult<CurrentWindow>;

    fn handle(&mut self, _: CurrentWindow, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.look(ctx))
    }
}

impl Handler<SetWindows> for WindowActor {
    type Result = ();

    fn handle(&mut self, SetWindows(windows): SetWindows, ctx: &mut Context<Self>) {
        if windows != self.windows {
            self.windows = windows;
            self.look(ctx);
        }
    }
}

impl Handler<StopWindow> for WindowActor {
    type Result = ();

    fn handle(&mut self, _: StopWindow, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

//! Wall-clock time, injected so that tests can set it. Durations and sleeps use tokio's clock
//! (which tests pause and advance); instants that must be persisted or shown use this wall clock.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock for tests: set it, or advance it together with tokio's paused clock.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    /// A clock that shows `start` until told otherwise.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    /// Sets the time.
    pub fn set(&self, t: Timestamp) {
        *self.0.lock().expect("clock lock") = t;
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: std::time::Duration) {
        let mut t = self.0.lock().expect("clock lock");
        *t = t
            .checked_add(SignedDuration::try_from(d).expect("duration fits"))
            .expect("timestamp in range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// A wall clock that follows tokio's clock: a fixed starting instant plus the tokio time elapsed
/// since the clock was made, plus any [`jump`](TokioClock::jump). On a paused tokio runtime it
/// moves exactly when tokio time is advanced, so timers and wall-clock instants stay in step in
/// tests without anyone advancing two clocks by hand.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: Timestamp,
    origin: tokio::time::Instant,
    jumped: Arc<Mutex<SignedDuration>>,
}

impl TokioClock {
    /// Starts at `start`, now. Call it inside the runtime whose clock it should follow.
    pub fn new(start: Timestamp) -> Self {
        TokioClock {
            start,
            origin: tokio::time::Instant::now(),
            jumped: Arc::new(Mutex::new(SignedDuration::ZERO)),
        }
    }

    /// Moves the wall clock without moving tokio time, as a suspend or an NTP correction does.
    pub fn jump(&self, by: SignedDuration) {
        *self.jumped.lock().expect("clock lock") += by;
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.origin.elapsed()).expect("duration fits");
        let jumped = *self.jumped.lock().expect("clock lock");
        self.start
            .checked_add(elapsed + jumped)
            .expect("timestamp in range")
    }
}

//! Wall-clock time, injected so that tests can set it. Durations and sleeps use tokio's clock
//! (which tests pause and advance); instants that must be persisted or shown use this wall clock.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
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
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, t: Timestamp) {
        *self.0.lock().expect("clock lock") = t;
    }

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

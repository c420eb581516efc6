//! What a job should do at an instant, and when to look again.
//!
//! [`plan`] answers for a job that is not running: start now, or which state to wait in and
//! until when. [`while_running`] answers for a running one: go on (until when) or stop (why).
//! [`timer_delay`] turns the answer into a timer that never sleeps longer than [`MAX_SLEEP`], so
//! a wall-clock jump or a machine suspend is noticed within a minute.

use std::time::Duration;

use jiff::Timestamp;
use tahoe_jobs_config::{Schedule, WindowState};

use crate::policy::backoff::retry_at;
use crate::policy::due::next_due;
use crate::record::JobRecord;
use crate::stop::StopReason;

/// The longest a job sleeps before re-evaluating.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A user's request to run a job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunNow {
    /// Also run outside the allowed windows (and do not stop when a window closes).
    pub ignore_window: bool,
}

/// What an idle job should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Start a run now.
    Start {
        /// The run was asked for with "ignore window": it runs outside the allowed window too.
        ignore_window: bool,
    },
    /// The job is disabled (`enabled = false`) and no run was asked for.
    Disabled,
    /// `until` is `None` for a pause without an end.
    Paused {
        /// When the pause ends; `None` when it has no end.
        until: Option<Timestamp>,
    },
    /// The job failed and waits out its backoff.
    Failed {
        /// When it may try again.
        retry_at: Timestamp,
    },
    /// The job is not due yet by its frequency.
    NotDue {
        /// When it becomes due.
        until: Timestamp,
    },
    /// Due, but outside its window; `opens` is `None` when the window never opens.
    WaitingForWindow {
        /// When the window opens next; `None` when it never does.
        opens: Option<Timestamp>,
    },
}

impl Plan {
    /// When the plan may change by itself (beyond the periodic re-evaluation).
    pub fn wake_at(&self) -> Option<Timestamp> {
        match *self {
            Plan::Start { .. } | Plan::Disabled => None,
            Plan::Paused { until } => until,
            Plan::Failed { retry_at } => Some(retry_at),
            Plan::NotDue { until } => Some(until),
            Plan::WaitingForWindow { opens } => opens,
        }
    }

    /// When the job's own timer should fire: [`Plan::wake_at`], except for the opening of a
    /// window, which the window actor announces. A job timer set to that instant too could fire
    /// before the news arrives and find the window still shut.
    pub fn timer_at(&self) -> Option<Timestamp> {
        match self {
            Plan::WaitingForWindow { .. } => None,
            other => other.wake_at(),
        }
    }
}

/// Decides for a job that is not running. A pause beats everything; a run-now request beats
/// the frequency, the backoff and `enabled = false`, and with `ignore_window` the window too.
pub fn plan(
    record: &JobRecord,
    schedule: &Schedule,
    window: WindowState,
    now: Timestamp,
    run_now: Option<RunNow>,
) -> Plan {
    if let Some(pause) = record.active_pause(now) {
        return Plan::Paused {
            until: pause.until(),
        };
    }
    if let Some(request) = run_now {
        return if request.ignore_window || window.open {
            Plan::Start {
                ignore_window: request.ignore_window,
            }
        } else {
            Plan::WaitingForWindow {
                opens: window.next_change,
            }
        };
    }
    if !schedule.enabled {
        return Plan::Disabled;
    }
    if let Some(retry_at) = retry_at(record).filter(|t| *t > now) {
        return Plan::Failed { retry_at };
    }
    if let Some(until) = next_due(record, schedule.frequency).filter(|t| *t > now) {
        return Plan::NotDue { until };
    }
    if window.open {
        Plan::Start {
            ignore_window: false,
        }
    } else {
        Plan::WaitingForWindow {
            opens: window.next_change,
        }
    }
}

/// What a running job should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCheck {
    /// Go on; look again at `until` (the window's close) if given.
    Continue {
        /// The window's close, when there is one to watch.
        until: Option<Timestamp>,
    },
    /// Stop the run, for this reason.
    Stop(StopReason),
}

/// Decides for a running job.
pub fn while_running(
    record: &JobRecord,
    window: WindowState,
    now: Timestamp,
    ignore_window: bool,
) -> RunCheck {
    if record.active_pause(now).is_some() {
        return RunCheck::Stop(StopReason::Paused);
    }
    if ignore_window {
        return RunCheck::Continue { until: None };
    }
    if !window.open {
        return RunCheck::Stop(StopReason::WindowClosed);
    }
    RunCheck::Continue {
        until: window.next_change,
    }
}

/// Whether a window state heard earlier still holds at `now`: until its `next_change`. Past
/// that instant the window actor's news is on its way, or the wall clock jumped; either way the
/// job asks the window actor rather than guess.
pub fn window_still_holds(window: WindowState, now: Timestamp) -> bool {
    match window.next_change {
        Some(change) => now < change,
        None => true,
    }
}

/// How long to sleep before looking again: until `wake`, but never more than [`MAX_SLEEP`].
pub fn timer_delay(now: Timestamp, wake: Option<Timestamp>) -> Duration {
    let Some(wake) = wake else {
        return MAX_SLEEP;
    };
    let until = wake.duration_since(now);
    if until.is_negative() {
        return Duration::ZERO;
    }
    Duration::try_from(until)
        .unwrap_or(MAX_SLEEP)
        .min(MAX_SLEEP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{LastError, PauseState};
    use tahoe_jobs_config::jiff::tz::TimeZone;
    use tahoe_jobs_config::Windows;

    const DAY: Duration = Duration::from_secs(86_400);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule(windows: &str) -> Schedule {
        Schedule {
            frequency: DAY,
            allowed_times: windows.parse().unwrap(),
            enabled: true,
            overdue_after: None,
            after: Vec::new(),
        }
    }

    fn window(s: &Schedule, now: Timestamp) -> WindowState {
        s.allowed_times.state_at(now, &TimeZone::UTC)
    }

    fn plan_at(record: &JobRecord, s: &Schedule, now: &str, run_now: Option<RunNow>) -> Plan {
        let now = ts(now);
        plan(record, s, window(s, now), now, run_now)
    }

    #[test]
    fn a_new_job_starts_in_its_window_and_waits_outside_it() {
        let s = schedule("2200-0600");
        let record = JobRecord::default();
        assert_eq!(
            plan_at(&record, &s, "2026-01-01T23:00:00Z", None),
            Plan::Start {
                ignore_window: false
            }
        );
        let waiting = plan_at(&record, &s, "2026-01-01T12:00:00Z", None);
        assert_eq!(
            waiting,
            Plan::WaitingForWindow {
                opens: Some(ts("2026-01-01T22:00:00Z"))
            }
        );
        assert_eq!(waiting.wake_at(), Some(ts("2026-01-01T22:00:00Z")));
    }

    #[test]
    fn a_completed_job_is_not_due_until_the_frequency_passes() {
        let s = schedule("");
        let record = JobRecord {
            last_completed: Some(ts("2026-01-01T10:00:00Z")),
            ..JobRecord::default()
        };
        assert_eq!(
            plan_at(&record, &s, "2026-01-01T12:00:00Z", None),
            Plan::NotDue {
                until: ts("2026-01-02T10:00:00Z")
            }
        );
        assert_eq!(
            plan_at(&record, &s, "2026-01-02T10:00:00Z", None),
            Plan::Start {
                ignore_window: false
            }
        );
    }

    #[test]
    fn a_stopped_run_resumes_at_the_next_window_before_the_frequency_passes() {
        let s = schedule("2200-0600");
        let record = JobRecord {
            last_completed: Some(ts("2026-01-01T23:00:00Z")),
            unfinished_run: Some(ts("2026-01-02T22:00:00Z")),
            ..JobRecord::default()
        };
        assert_eq!(
            plan_at(&record, &s, "2026-01-03T12:00:00Z", None),
            Plan::WaitingForWindow {
                opens: Some(ts("2026-01-03T22:00:00Z"))
            }
        );
        assert_eq!(
            plan_at(&record, &s, "2026-01-03T22:00:00Z", None),
            Plan::Start {
                ignore_window: false
            }
        );
    }

    #[test]
    fn pauses_hold_and_lapse() {
        let s = schedule("");
        let mut record = JobRecord {
            pause: Some(PauseState::Until {
                until: ts("2026-01-01T13:00:00Z"),
            }),
            ..JobRecord::default()
        };
        let paused = plan_at(&record, &s, "2026-01-01T12:00:00Z", None);
        assert_eq!(
            paused,
            Plan::Paused {
                until: Some(ts("2026-01-01T13:00:00Z"))
            }
        );
        assert_eq!(paused.wake_at(), Some(ts("2026-01-01T13:00:00Z")));
        // A pause beats run-now.
        assert_eq!(
            plan_at(
                &record,
                &s,
                "2026-01-01T12:00:00Z",
                Some(RunNow {
                    ignore_window: true
                })
            ),
            paused
        );
        assert_eq!(
            plan_at(&record, &s, "2026-01-01T13:00:00Z", None),
            Plan::Start {
                ignore_window: false
            }
        );
        record.pause = Some(PauseState::Indefinite);
        let forever = plan_at(&record, &s, "2030-01-01T00:00:00Z", None);
        assert_eq!(forever, Plan::Paused { until: None });
        assert_eq!(forever.wake_at(), None);
    }

    #[test]
    fn run_now_ignores_the_frequency_and_optionally_the_window() {
        let s = schedule("2200-0600");
        let record = JobRecord {
            last_completed: Some(ts("2026-01-01T23:00:00Z")),
            ..JobRecord::default()
        };
        let noon = "2026-01-02T12:00:00Z";
        let night = "2026-01-02T23:00:00Z";
        let plain = Some(RunNow {
            ignore_window: false,
        });
        let anyway = Some(RunNow {
            ignore_window: true,
        });
        assert!(matches!(
            plan_at(&record, &s, noon, None),
            Plan::NotDue { .. }
        ));
        assert_eq!(
            plan_at(&record, &s, noon, plain),
            Plan::WaitingForWindow {
                opens: Some(ts("2026-01-02T22:00:00Z"))
            }
        );
        assert_eq!(
            plan_at(&record, &s, noon, anyway),
            Plan::Start {
                ignore_window: true
            }
        );
        assert_eq!(
            plan_at(&record, &s, "2026-01-02T22:30:00Z", plain),
            Plan::Start {
                ignore_window: false
            }
        );
        // Not due until 23:00 without the request.
        assert!(matches!(
            plan_at(&record, &s, "2026-01-02T22:30:00Z", None),
            Plan::NotDue { .. }
        ));
        assert_eq!(
            plan_at(&record, &s, night, None),
            Plan::Start {
                ignore_window: false
            }
        );
    }

    #[test]
    fn disabled_jobs_only_run_when_asked() {
        let mut s = schedule("");
        s.enabled = false;
        let record = JobRecord::default();
        assert_eq!(
            plan_at(&record, &s, "2026-01-01T12:00:00Z", None),
            Plan::Disabled
        );
        assert_eq!(
            plan_at(
                &record,
                &s,
                "2026-01-01T12:00:00Z",
                Some(RunNow {
                    ignore_window: false
                })
            ),
            Plan::Start {
                ignore_window: false
            }
        );
    }

    #[test]
    fn failures_back_off() {
        let s = schedule("");
        let record = JobRecord {
            unfinished_run: Some(ts("2026-01-01T12:00:00Z")),
            consecutive_failures: 4,
            last_error: Some(LastError {
                at: ts("2026-01-01T12:00:00Z"),
                message: "boom".into(),
            }),
            ..JobRecord::default()
        };
        assert_eq!(
            plan_at(&record, &s, "2026-01-01T12:00:07Z", None),
            Plan::Failed {
                retry_at: ts("2026-01-01T12:00:08Z")
            }
        );
        assert_eq!(
            plan_at(&record, &s, "2026-01-01T12:00:08Z", None),
            Plan::Start {
                ignore_window: false
            }
        );
    }

    #[test]
    fn a_window_that_never_opens_waits_forever() {
        let s = schedule("none");
        assert_eq!(
            plan_at(&JobRecord::default(), &s, "2026-01-01T12:00:00Z", None),
            Plan::WaitingForWindow { opens: None }
        );
        assert_eq!(s.allowed_times, Windows::Never);
    }

    #[test]
    fn running_jobs_stop_when_the_window_closes_or_they_are_paused() {
        let s = schedule("2200-0600");
        let record = JobRecord::default();
        let inside = ts("2026-01-01T23:00:00Z");
        assert_eq!(
            while_running(&record, window(&s, inside), inside, false),
            RunCheck::Continue {
                until: Some(ts("2026-01-02T06:00:00Z"))
            }
        );
        let after = ts("2026-01-02T06:00:00Z");
        assert_eq!(
            while_running(&record, window(&s, after), after, false),
            RunCheck::Stop(StopReason::WindowClosed)
        );
        assert_eq!(
            while_running(&record, window(&s, after), after, true),
            RunCheck::Continue { until: None }
        );
        let paused = JobRecord {
            pause: Some(PauseState::Indefinite),
            ..JobRecord::default()
        };
        assert_eq!(
            while_running(&paused, window(&s, inside), inside, true),
            RunCheck::Stop(StopReason::Paused)
        );
    }

    #[test]
    fn the_job_timer_leaves_window_openings_to_the_window_actor() {
        let opens = Some(ts("2026-01-01T22:00:00Z"));
        let waiting = Plan::WaitingForWindow { opens };
        assert_eq!(waiting.wake_at(), opens);
        assert_eq!(waiting.timer_at(), None);
        let not_due = Plan::NotDue {
            until: ts("2026-01-02T10:00:00Z"),
        };
        assert_eq!(not_due.timer_at(), not_due.wake_at());
    }

    #[test]
    fn a_window_state_holds_until_its_next_change() {
        let closes = WindowState {
            open: true,
            next_change: Some(ts("2026-01-01T23:00:00Z")),
        };
        assert!(window_still_holds(closes, ts("2026-01-01T22:59:59Z")));
        assert!(!window_still_holds(closes, ts("2026-01-01T23:00:00Z")));
        let always = WindowState {
            open: true,
            next_change: None,
        };
        assert!(window_still_holds(always, ts("2099-01-01T00:00:00Z")));
    }

    #[test]
    fn timers_are_capped_at_a_minute() {
        let now = ts("2026-01-01T00:00:00Z");
        assert_eq!(timer_delay(now, None), MAX_SLEEP);
        assert_eq!(
            timer_delay(now, Some(ts("2026-01-01T00:00:05Z"))),
            Duration::from_secs(5)
        );
        assert_eq!(
            timer_delay(now, Some(ts("2026-01-02T00:00:00Z"))),
            MAX_SLEEP
        );
        assert_eq!(
            timer_delay(now, Some(ts("2025-12-31T00:00:00Z"))),
            Duration::ZERO
        );
    }
}

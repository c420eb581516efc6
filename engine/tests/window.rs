//! The window actor alone, on the paused clock: it announces each boundary at the instant
//! (across midnight and DST changes), stays quiet in between, notices a wall-clock jump within a
//! minute, and applies new allowed times at once.

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tahoe_jobs_engine::actors::window::{
    CurrentWindow, SetWindows, StopWindow, WindowActor, WindowChanged,
};
use tahoe_jobs_engine::{Clock, TokioClock};

use crate::util::*;

type Heard = Vec<(Timestamp, WindowChanged)>;

/// Stands in for a job actor: notes what it hears, and when.
struct Listener {
    clock: TokioClock,
    heard: Arc<Mutex<Heard>>,
}

impl Actor for Listener {
    type Context = Context<Self>;
}

impl Handler<WindowChanged> for Listener {
    type Result = ();

    fn handle(&mut self, msg: WindowChanged, _: &mut Context<Self>) {
        self.heard.lock().unwrap().push((self.clock.now(), msg));
    }
}

/// Everything heard so far; queued behind any news already sent, so nothing sent is missed.
#[derive(Message)]
#[rtype(result = "Heard")]
struct WhatWasHeard;

impl Handler<WhatWasHeard> for Listener {
    type Result = MessageResult<WhatWasHeard>;

    fn handle(&mut self, _: WhatWasHeard, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.heard.lock().unwrap().clone())
    }
}

struct Watch {
    clock: TokioClock,
    window: Addr<WindowActor>,
    listener: Addr<Listener>,
}

impl Watch {
    /// Starts a window actor for `windows` in `zone` with the wall clock at `start`.
    async fn start(start: Timestamp, windows: &str, zone: &str) -> Watch {
        let clock = TokioClock::new(start);
        let listener = Listener {
            clock: clock.clone(),
            heard: Arc::default(),
        }
        .start();
        let window = WindowActor::new(
            "test.job",
            windows.parse().expect("windows"),
            TimeZone::get(zone).expect("a zone"),
            Arc::new(clock.clone()),
            listener.clone().recipient(),
        )
        .start();
        // Makes sure the actor has started (and sent its first news) before the test looks.
        window.send(CurrentWindow).await.unwrap();
        Watch {
            clock,
            window,
            listener,
        }
    }

    async fn heard(&self) -> Heard {
        self.listener.send(WhatWasHeard).await.unwrap()
    }
}

fn news(open: bool, next_change: Option<Timestamp>) -> WindowChanged {
    WindowChanged { open, next_change }
}

#[test]
fn each_boundary_is_announced_at_the_instant_and_nothing_in_between() {
    run_paused(|| async {
        let start = ts("2026-01-10T21:59:30Z");
        let w = Watch::start(start, "2200-2300", "UTC").await;
        pass(2 * HOUR).await;
        let opens = ts("2026-01-10T22:00:00Z");
        let closes = ts("2026-01-10T23:00:00Z");
        assert_eq!(
            w.heard().await,
            vec![
                (start, news(false, Some(opens))),
                (opens, news(true, Some(closes))),
                (closes, news(false, Some(ts("2026-01-11T22:00:00Z")))),
            ]
        );
        // Asking does not repeat what the listener already knows.
        let now = w.window.send(CurrentWindow).await.unwrap();
        assert_eq!(now, news(false, Some(ts("2026-01-11T22:00:00Z"))));
        assert_eq!(w.heard().await.len(), 3);
    });
}

#[test]
fn a_window_across_midnight_is_one_window() {
    run_paused(|| async {
        let zone = "Europe/Berlin";
        let start = civil("2026-06-01T23:29:00", zone);
        let w = Watch::start(start, "2330-0030", zone).await;
        pass(2 * HOUR).await;
        let opens = civil("2026-06-01T23:30:00", zone);
        let closes = civil("2026-06-02T00:30:00", zone);
        assert_eq!(
            w.heard().await,
            vec![
                (start, news(false, Some(opens))),
                (opens, news(true, Some(closes))),
                (
                    closes,
                    news(false, Some(civil("2026-06-02T23:30:00", zone)))
                ),
            ]
        );
    });
}

#[test]
fn boundaries_follow_the_wall_clock_across_dst_changes() {
    run_paused(|| async {
        // New York springs forward at 02:00 on 2026-03-08: 01:00-04:00 lasts two hours.
        let zone = "America/New_York";
        let w = Watch::start(ts("2026-03-08T05:59:00Z"), "0100-0400", zone).await;
        pass(3 * HOUR).await;
        let heard = w.heard().await;
        assert_eq!(heard.len(), 3, "{heard:?}");
        assert_eq!(
            heard[1],
            (
                ts("2026-03-08T06:00:00Z"),
                news(true, Some(ts("2026-03-08T08:00:00Z")))
            )
        );
        assert_eq!(heard[2].0, ts("2026-03-08T08:00:00Z"));
        assert!(!heard[2].1.open);
    });
    run_paused(|| async {
        // It falls back at 02:00 on 2026-11-01: 01:00 EDT to 04:00 EST lasts four hours.
        let zone = "America/New_York";
        let w = Watch::start(ts("2026-11-01T04:59:00Z"), "0100-0400", zone).await;
        pass(5 * HOUR).await;
        let heard = w.heard().await;
        assert_eq!(heard.len(), 3, "{heard:?}");
        assert_eq!(
            heard[1],
            (
                ts("2026-11-01T05:00:00Z"),
                news(true, Some(ts("2026-11-01T09:00:00Z")))
            )
        );
        assert_eq!(heard[2].0, ts("2026-11-01T09:00:00Z"));
    });
}

#[test]
fn a_wall_clock_jump_is_noticed_within_a_minute_either_way() {
    run_paused(|| async {
        let w = Watch::start(ts("2026-01-10T12:00:00Z"), "2200-2300", "UTC").await;
        pass(secs_d(1)).await;
        // The machine sleeps through the evening: its wall clock jumps past 22:00 while tokio
        // time (what timers follow) stands still.
        w.clock.jump(SignedDuration::from_hours(10));
        let jumped = w.clock.now();
        pass(secs_d(60)).await;
        let heard = w.heard().await;
        assert_eq!(heard.len(), 2, "{heard:?}");
        let (at, opened) = heard[1];
        assert!(opened.open);
        assert_eq!(opened.next_change, Some(ts("2026-01-10T23:00:00Z")));
        assert!(
            secs(jumped, at) <= 60.0,
            "noticed {} s late",
            secs(jumped, at)
        );

        // And back: an NTP correction puts the clock before the window again.
        w.clock.jump(SignedDuration::from_hours(-2));
        let jumped = w.clock.now();
        pass(secs_d(60)).await;
        let heard = w.heard().await;
        assert_eq!(heard.len(), 3, "{heard:?}");
        assert!(!heard[2].1.open);
        assert!(secs(jumped, heard[2].0) <= 60.0);

        // A question is answered from the wall clock at once, without waiting for the timer.
        w.clock.jump(SignedDuration::from_hours(2));
        let now = w.window.send(CurrentWindow).await.unwrap();
        assert!(now.open);
        let heard = w.heard().await;
        assert_eq!(heard.len(), 4);
        assert_eq!(heard[3], (w.clock.now(), now), "the listener hears it too");
    });
}

#[test]
fn new_allowed_times_take_effect_at_once() {
    run_paused(|| async {
        let start = ts("2026-01-10T12:00:00Z");
        let w = Watch::start(start, "2200-2300", "UTC").await;
        pass(ms(10_500)).await;
        let changed_at = w.clock.now();
        w.window
            .send(SetWindows("1100-1300".parse().unwrap()))
            .await
            .unwrap();
        let heard = w.heard().await;
        assert_eq!(
            heard[1],
            (changed_at, news(true, Some(ts("2026-01-10T13:00:00Z"))))
        );
        // The same times again are no news.
        w.window
            .send(SetWindows("1100-1300".parse().unwrap()))
            .await
            .unwrap();
        pass(HOUR).await;
        let heard = w.heard().await;
        assert_eq!(heard.len(), 3, "{heard:?}");
        assert_eq!(heard[2].0, ts("2026-01-10T13:00:00Z"));

        // Always open: one last message, and no boundary ever again.
        w.window
            .send(SetWindows("".parse().unwrap()))
            .await
            .unwrap();
        pass(DAY).await;
        let heard = w.heard().await;
        assert_eq!(heard.len(), 4);
        assert_eq!(heard[3].1, news(true, None));

        w.window.send(StopWindow).await.unwrap();
        pass(ms(1)).await;
        assert!(!w.window.connected(), "stopped when told");
    });
}

#[test]
fn the_window_actor_goes_away_with_its_job() {
    run_paused(|| async {
        let w = Watch::start(ts("2026-01-10T12:00:00Z"), "2200-2300", "UTC").await;
        let Watch {
            window, listener, ..
        } = w;
        listener.send(StopListening).await.unwrap();
        // It notices when it next looks, within a minute.
        pass(secs_d(61)).await;
        assert!(!window.connected());
    });
}

/// Stops the listener, as a job actor stops when its job is removed.
#[derive(Message)]
#[rtype(result = "()")]
struct StopListening;

impl Handler<StopListening> for Listener {
    type Result = ();

    fn handle(&mut self, _: StopListening, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

//! The engine driven end to end on a paused tokio clock: due-ness across restarts, windows (at
//! midnight, across DST changes, closing on a running task), pause, run-now, failing and
//! panicking tasks, configuration reloads, shutdown, and unreadable records.

mod after;
mod budget;
mod events;
mod example;
mod overdue;
mod overrides;
mod util;
mod window;

use std::time::Duration;

use tahoe_jobs_engine::HISTORY_LEN;
use tahoe_jobs_engine::{
    Engine, EngineError, EngineOptions, Outcome, RecordError, Registry, RunOutcome, StateKind,
    StopReason, Store,
};
use util::*;

fn stopped_within_a_second(at: jiff::Timestamp, close: jiff::Timestamp) {
    let late = secs(close, at);
    assert!(
        (0.0..=1.0).contains(&late),
        "stopped {late} s after the close at {close}"
    );
}

#[test]
fn the_first_run_is_due_at_once_then_not_until_the_frequency_passes_across_restarts() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let jobs = || vec![counting("c", "", DAY, 3)];

        let engine = h.start(jobs()).unwrap();
        pass(secs_d(10)).await;
        let starts = h.probe.starts("count.c");
        assert_eq!(starts, vec![(t0, 0)], "the first run starts at once");
        let st = job_status(&engine, "count.c").await;
        assert_eq!(st.state.kind, StateKind::NotDue);
        let completed = after(t0, secs_d(3));
        assert_eq!(st.last_completed, Some(completed));
        assert_eq!(st.next_due, Some(after(completed, DAY)));
        assert_eq!(st.state.at, Some(after(completed, DAY)));
        assert_eq!(st.last_completed_totals.get("units"), Some(&3));
        engine.shutdown().await.unwrap();

        // Restarted an hour later: not due, and nothing runs until it is.
        pass(HOUR).await;
        let engine = h.start(jobs()).unwrap();
        pass(secs_d(1)).await;
        let st = job_status(&engine, "count.c").await;
        assert_eq!(st.state.kind, StateKind::NotDue);
        assert_eq!(st.state.at, Some(after(completed, DAY)));
        pass(20 * HOUR).await;
        assert_eq!(h.probe.starts("count.c").len(), 1);
        engine.shutdown().await.unwrap();

        // Down while it became due: it runs as soon as the daemon is back (anacron).
        pass(2 * DAY).await;
        let back = h.now();
        let engine = h.start(jobs()).unwrap();
        pass(secs_d(5)).await;
        let starts = h.probe.starts("count.c");
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[1], (back, 0));
        let st = job_status(&engine, "count.c").await;
        assert_eq!(st.last_completed, Some(after(back, secs_d(3))));
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn each_run_is_in_the_history_across_restarts_and_it_keeps_the_last_fifty() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let jobs = || vec![counting("c", "", DAY, 3)];
        let engine = h.start(jobs()).unwrap();
        pass(secs_d(10)).await;
        let st = job_status(&engine, "count.c").await;
        assert_eq!(st.history.len(), 1);
        let run = &st.history[0];
        assert_eq!(
            (run.started, run.ended, run.outcome),
            (t0, after(t0, secs_d(3)), RunOutcome::Completed)
        );
        assert_eq!(run.counters.get("units"), Some(&3));
        let pace =
            |labels: &std::collections::BTreeMap<String, String>| labels.get("pace").cloned();
        assert_eq!(pace(&run.labels).as_deref(), Some("one unit a second"));
        assert_eq!(
            pace(&st.progress.labels),
            pace(&run.labels),
            "the last run's, when idle"
        );
        engine.shutdown().await.unwrap();

        let engine = h.start(jobs()).unwrap();
        pass(secs_d(1)).await;
        let st = job_status(&engine, "count.c").await;
        assert_eq!(st.history.len(), 1, "kept across a restart");
        assert_eq!(
            pace(&st.history[0].labels).as_deref(),
            Some("one unit a second")
        );
        // A run a day for 60 days: the history keeps the newest 50.
        for _ in 0..60 {
            pass(DAY).await;
        }
        let st = job_status(&engine, "count.c").await;
        assert!(h.probe.starts("count.c").len() > HISTORY_LEN + 5);
        assert_eq!(st.history.len(), HISTORY_LEN);
        let last_start = h.probe.starts("count.c").last().unwrap().0;
        assert_eq!(st.history.last().unwrap().started, last_start);
        assert!(st.history.windows(2).all(|w| w[0].started < w[1].started));
        assert!(
            st.history[0].started > after(t0, 10 * DAY),
            "the oldest were dropped"
        );
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_window_close_stops_the_run_within_a_second_and_the_next_window_resumes_it() {
    run_paused(|| async {
        let zone = "Europe/Berlin";
        let h = Harness::new(civil("2026-06-01T21:59:30", zone), zone);
        let id = "count.long";
        // 2000 units take 33 min 20 s; the window is an hour.
        let engine = h
            .start(vec![counting("long", "2200-2300", 7 * DAY, 2000)])
            .unwrap();
        let open = civil("2026-06-01T22:00:00", zone);
        pass(secs_d(31)).await;
        assert_eq!(h.probe.starts(id), vec![(open, 0)]);
        assert_eq!(state_of(&engine, id).await, StateKind::Running);
        pass(secs_d(2000)).await;
        assert_eq!(
            h.probe.returns(id),
            vec![(after(open, secs_d(2000)), Outcome::Completed)]
        );

        // Asked to run again at 22:40: it runs, and the window closes on it at 23:00.
        pass(secs_d(40 * 60 - 2000 - 1)).await;
        let asked = h.now();
        engine.run_now(id, false).await.unwrap();
        let close = civil("2026-06-01T23:00:00", zone);
        pass(secs_d(21 * 60)).await;
        let returns = h.probe.returns(id);
        assert_eq!(returns.len(), 2);
        assert_eq!(returns[1].1, Outcome::StoppedEarly);
        stopped_within_a_second(returns[1].0, close);
        let done_then = h.probe.units(id) - 2000;
        assert!((1199..=1200).contains(&done_then), "{done_then}");
        assert_eq!(h.probe.starts(id)[1], (asked, 0));

        let st = job_status(&engine, id).await;
        let next_open = civil("2026-06-02T22:00:00", zone);
        assert_eq!(st.state.kind, StateKind::WaitingForWindow);
        assert_eq!(st.state.at, Some(next_open));
        assert_eq!(st.unfinished_run_since, Some(asked));
        assert!(!st.window.open);
        assert_eq!(st.window.next_change, Some(next_open));
        assert!(matches!(
            st.last_outcome,
            Some(tahoe_jobs_engine::status::OutcomeView::StoppedEarly {
                reason: Some(StopReason::WindowClosed),
                ..
            })
        ));
        let outcomes: Vec<RunOutcome> = st.history.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            vec![RunOutcome::Completed, RunOutcome::StoppedEarly]
        );
        assert_eq!(st.history[1].started, asked);
        assert_eq!(st.history[1].ended, returns[1].0);

        // The next evening the unfinished run resumes, though a week has not passed since the
        // last completion, and the units already done are not done again.
        pass(DAY).await;
        let starts = h.probe.starts(id);
        assert_eq!(starts.len(), 3);
        assert_eq!(starts[2], (next_open, done_then as u64));
        assert_eq!(h.probe.units(id), 4000, "every unit done exactly once");
        let st = job_status(&engine, id).await;
        assert_eq!(st.unfinished_run_since, None);
        assert_eq!(st.state.kind, StateKind::NotDue);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_window_across_midnight_runs_through_it() {
    run_paused(|| async {
        let zone = "Europe/Berlin";
        let h = Harness::new(civil("2026-06-01T23:29:00", zone), zone);
        let id = "count.night";
        let engine = h
            .start(vec![counting("night", "2330-0030", DAY, 100_000)])
            .unwrap();
        pass(secs_d(62 * 60)).await;
        let open = civil("2026-06-01T23:30:00", zone);
        assert_eq!(h.probe.starts(id), vec![(open, 0)], "no stop at midnight");
        let returns = h.probe.returns(id);
        assert_eq!(returns.len(), 1);
        stopped_within_a_second(returns[0].0, civil("2026-06-02T00:30:00", zone));
        pass(DAY).await;
        let starts = h.probe.starts(id);
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[1].0, civil("2026-06-02T23:30:00", zone));
        assert!((3599..=3600).contains(&starts[1].1), "{:?}", starts[1]);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn windows_follow_the_wall_clock_across_dst_changes() {
    run_paused(|| async {
        // New York springs forward at 02:00 on 2026-03-08: 01:00-04:00 lasts two hours.
        let zone = "America/New_York";
        let h = Harness::new(ts("2026-03-08T05:59:00Z"), zone);
        let id = "count.dst";
        let engine = h
            .start(vec![counting("dst", "0100-0400", DAY, 1_000_000)])
            .unwrap();
        pass(3 * HOUR).await;
        assert_eq!(h.probe.starts(id)[0].0, ts("2026-03-08T06:00:00Z"));
        let returns = h.probe.returns(id);
        assert_eq!(returns.len(), 1);
        stopped_within_a_second(returns[0].0, ts("2026-03-08T08:00:00Z"));
        let units = h.probe.units(id);
        assert!((7199..=7200).contains(&units), "{units}");
        engine.shutdown().await.unwrap();
    });
    run_paused(|| async {
        // It falls back at 02:00 on 2026-11-01: 01:00 EDT to 04:00 EST lasts four hours.
        let zone = "America/New_York";
        let h = Harness::new(ts("2026-11-01T04:59:00Z"), zone);
        let id = "count.dst";
        let engine = h
            .start(vec![counting("dst", "0100-0400", DAY, 1_000_000)])
            .unwrap();
        pass(5 * HOUR).await;
        assert_eq!(h.probe.starts(id)[0].0, ts("2026-11-01T05:00:00Z"));
        let returns = h.probe.returns(id);
        assert_eq!(returns.len(), 1);
        stopped_within_a_second(returns[0].0, ts("2026-11-01T09:00:00Z"));
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_task_that_ignores_its_stop_signal_is_dropped_within_a_second() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T21:59:59Z"), "UTC");
        let id = "stubborn.s";
        let engine = h
            .start(vec![job("stubborn", "s", "2200-2300", DAY)])
            .unwrap();
        pass(HOUR + secs_d(5)).await;
        assert_eq!(h.probe.starts(id).len(), 1);
        assert!(h.probe.returns(id).is_empty(), "it never returns by itself");
        let drops = h.probe.drops(id);
        assert_eq!(drops.len(), 1);
        stopped_within_a_second(drops[0], ts("2026-01-10T23:00:00Z"));
        let st = job_status(&engine, id).await;
        assert_eq!(st.state.kind, StateKind::WaitingForWindow);
        assert!(st.unfinished_run_since.is_some());
        assert_eq!(st.consecutive_failures, 0);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_pause_for_a_while_ends_by_itself() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let id = "count.p";
        let engine = h.start(vec![counting("p", "", DAY, 100)]).unwrap();
        // Half seconds keep the test's instants off the task's unit boundaries.
        pass(ms(10_500)).await;
        let paused_at = h.now();
        engine.pause(id, Some(HOUR)).await.unwrap();
        pass(secs_d(1)).await;
        let returns = h.probe.returns(id);
        assert_eq!(returns.len(), 1);
        assert_eq!(returns[0], (paused_at, Outcome::StoppedEarly));
        let st = job_status(&engine, id).await;
        assert_eq!(st.state.kind, StateKind::Paused);
        assert!(st.paused);
        assert_eq!(st.paused_until, Some(after(paused_at, HOUR)));
        assert_eq!(st.next_transition, Some(after(paused_at, HOUR)));

        pass(HOUR - secs_d(5)).await;
        assert_eq!(h.probe.starts(id).len(), 1, "still paused");
        pass(secs_d(10)).await;
        let starts = h.probe.starts(id);
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[1], (after(paused_at, HOUR), 10));
        pass(secs_d(100)).await;
        assert_eq!(h.probe.units(id), 100);
        let st = job_status(&engine, id).await;
        assert!(!st.paused);
        assert!(st.last_completed.is_some());
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn pauses_survive_restarts() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let id = "count.p";
        let jobs = || vec![counting("p", "", DAY, 100)];

        let engine = h.start(jobs()).unwrap();
        pass(ms(5_500)).await;
        engine.pause("p", None).await.unwrap();
        engine.shutdown().await.unwrap();

        let engine = h.start(jobs()).unwrap();
        pass(DAY).await;
        assert_eq!(h.probe.starts(id).len(), 1, "an indefinite pause holds");
        let st = job_status(&engine, id).await;
        assert_eq!(st.state.kind, StateKind::Paused);
        assert_eq!(st.paused_until, None);
        assert_eq!(
            engine.run_now(id, true).await.unwrap_err().to_string(),
            "job count.p is paused; resume it first"
        );
        let resumed = h.now();
        engine.resume(id).await.unwrap();
        pass(secs_d(1)).await;
        assert_eq!(h.probe.starts(id)[1], (resumed, 5));

        // A pause for a while, across a restart, still ends at its time.
        pass(ms(9_250)).await;
        let paused_at = h.now();
        engine.pause(id, Some(2 * HOUR)).await.unwrap();
        engine.shutdown().await.unwrap();
        pass(HOUR).await;
        let engine = h.start(jobs()).unwrap();
        pass(HOUR - secs_d(1)).await;
        assert_eq!(h.probe.starts(id).len(), 2);
        pass(secs_d(2)).await;
        let starts = h.probe.starts(id);
        assert_eq!(starts.len(), 3);
        assert_eq!(starts[2], (after(paused_at, 2 * HOUR), 15));
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn run_now_ignores_the_frequency_and_with_the_flag_the_window() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T21:59:00Z"), "UTC");
        let id = "count.r";
        let engine = h
            .start(vec![counting("r", "2200-2300", 7 * DAY, 60)])
            .unwrap();
        pass_until(&h, ts("2026-01-10T22:03:00Z")).await;
        assert_eq!(
            h.probe.returns(id),
            vec![(ts("2026-01-10T22:01:00Z"), Outcome::Completed)]
        );

        // In the window, not due: run-now starts it at once (by name, too).
        pass_until(&h, ts("2026-01-10T22:10:00Z")).await;
        engine.run_now("r", false).await.unwrap();
        pass(secs_d(1)).await;
        assert_eq!(h.probe.starts(id)[1].0, ts("2026-01-10T22:10:00Z"));

        // Outside the window it waits for the window...
        pass_until(&h, ts("2026-01-10T23:30:00Z")).await;
        engine.run_now(id, false).await.unwrap();
        pass(secs_d(1)).await;
        let st = job_status(&engine, id).await;
        assert_eq!(st.state.kind, StateKind::WaitingForWindow);
        assert_eq!(st.state.at, Some(ts("2026-01-11T22:00:00Z")));
        pass_until(&h, ts("2026-01-10T23:40:00Z")).await;
        assert_eq!(h.probe.starts(id).len(), 2);
        // ...unless told to ignore it.
        engine.run_now(id, true).await.unwrap();
        pass(secs_d(1)).await;
        assert_eq!(h.probe.starts(id)[2].0, ts("2026-01-10T23:40:00Z"));
        pass(secs_d(60)).await;
        assert_eq!(h.probe.returns(id).len(), 3);

        // Not due by frequency the next evening: nothing runs by itself.
        pass_until(&h, ts("2026-01-11T22:59:30Z")).await;
        assert_eq!(h.probe.starts(id).len(), 3);
        // A run that ignores the window is not stopped when the window closes.
        engine.run_now(id, true).await.unwrap();
        pass(secs_d(2 * 60)).await;
        let returns = h.probe.returns(id);
        assert_eq!(returns.len(), 4);
        assert_eq!(returns[3], (ts("2026-01-11T23:00:30Z"), Outcome::Completed));

        assert!(matches!(
            engine.run_now("nope", false).await,
            Err(EngineError::UnknownJob { .. })
        ));
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_failing_or_panicking_task_backs_off_while_another_job_keeps_running() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        h.set_failures("flaky.p", 4);
        h.set_failures("flaky.e", 3);
        let engine = h
            .start(vec![
                job("flaky", "p", "", DAY),
                with_param(job("flaky", "e", "", DAY), "mode", "err"),
                counting("steady", "", DAY, 60),
            ])
            .unwrap();

        pass(secs_d(2)).await;
        let st = job_status(&engine, "flaky.p").await;
        assert_eq!(st.state.kind, StateKind::Failed);
        assert_eq!(st.state.at, Some(after(t0, secs_d(3))), "1 s then 2 s");
        assert_eq!(st.consecutive_failures, 2);
        let message = st.last_error.unwrap().message;
        assert!(message.contains("panicked on purpose"), "{message}");
        let e = job_status(&engine, "flaky.e").await;
        assert_eq!(
            e.last_error.unwrap().message,
            "flaky task failed on purpose"
        );

        pass(secs_d(63)).await;
        let at = |s: &[u64]| -> Vec<jiff::Timestamp> {
            s.iter().map(|n| after(t0, secs_d(*n))).collect()
        };
        let starts = |id: &str| -> Vec<jiff::Timestamp> {
            h.probe.starts(id).into_iter().map(|(t, _)| t).collect()
        };
        // Delays of 1, 2, 4 and 8 s between attempts.
        assert_eq!(starts("flaky.p"), at(&[0, 1, 3, 7, 15]));
        assert_eq!(starts("flaky.e"), at(&[0, 1, 3, 7]));
        // The other job ran straight through, undisturbed.
        assert_eq!(starts("count.steady"), at(&[0]));
        assert_eq!(
            h.probe.returns("count.steady"),
            vec![(after(t0, secs_d(60)), Outcome::Completed)]
        );

        // A success resets the backoff.
        let st = job_status(&engine, "flaky.p").await;
        assert_eq!(st.consecutive_failures, 0);
        assert!(st.last_error.is_none());
        assert_eq!(st.last_completed, Some(after(t0, secs_d(15))));
        assert_eq!(st.state.kind, StateKind::NotDue);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_reload_adds_removes_and_changes_jobs_leaving_the_others_running() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let a = counting("a", "", DAY, 1000);
        let b = counting("b", "", DAY, 1000);
        let c = counting("c", "", DAY, 5);
        let engine = h.start(vec![a.clone(), b.clone()]).unwrap();
        pass(ms(10_500)).await;

        let summary = engine.reload(vec![a.clone(), c.clone()]).await.unwrap();
        assert_eq!(summary.added, ["count.c"]);
        assert_eq!(summary.removed, ["count.b"]);
        assert_eq!(summary.unchanged, ["count.a"]);
        assert!(summary.changed.is_empty());
        let reloaded_at = h.now();
        pass(secs_d(10)).await;
        assert_eq!(
            h.probe.returns("count.b"),
            vec![(reloaded_at, Outcome::StoppedEarly)]
        );
        assert_eq!(h.probe.starts("count.a").len(), 1, "a runs on undisturbed");
        assert_eq!(h.probe.units("count.a"), 20);
        assert_eq!(
            h.probe.returns("count.c"),
            vec![(after(reloaded_at, secs_d(5)), Outcome::Completed)]
        );
        let ids: Vec<String> = engine
            .status()
            .await
            .unwrap()
            .jobs
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, ["count.a", "count.c"]);

        // A changed job is stopped and starts again where it was.
        let a2 = counting("a", "", DAY, 2000);
        let summary = engine
            .reload(vec![a2.clone(), c.clone(), b.clone()])
            .await
            .unwrap();
        assert_eq!(summary.changed, ["count.a"]);
        assert_eq!(summary.added, ["count.b"]);
        pass(secs_d(1)).await;
        assert_eq!(h.probe.starts("count.a")[1].1, 20);
        assert_eq!(h.probe.starts("count.b")[1].1, 10, "b resumes its run");

        // An invalid list changes nothing.
        let err = engine
            .reload(vec![a2.clone(), job("unknown", "x", "", DAY)])
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::UnknownTaskType { .. }), "{err}");
        let err = engine
            .reload(vec![a2.clone(), a2.clone()])
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::DuplicateJob(_)), "{err}");
        pass(secs_d(5)).await;
        assert_eq!(h.probe.starts("count.a").len(), 2);
        assert_eq!(h.probe.starts("count.b").len(), 2);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn shutdown_stops_every_task_quickly_and_the_run_resumes_after_a_restart() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let jobs = || vec![counting("c", "", DAY, 100), job("stubborn", "s", "", DAY)];
        let engine = h.start(jobs()).unwrap();
        pass(ms(30_500)).await;
        let before = tokio::time::Instant::now();
        engine.shutdown().await.unwrap();
        let took = before.elapsed();
        assert!(took <= Duration::from_secs(1), "shutdown took {took:?}");
        assert!(engine.status().await.is_err(), "the handle is dead");

        // The store is released: it reopens at once, and shows the run was cut short.
        {
            let store = Store::open(&h.state_dir()).unwrap();
            let record = store.load("count.c").unwrap();
            assert!(record.unfinished_run.is_some());
            assert!(matches!(
                record.last_outcome,
                Some(tahoe_jobs_engine::record::LastOutcome::StoppedEarly {
                    reason: Some(StopReason::ShuttingDown),
                    ..
                })
            ));
        }
        let engine = h.start(jobs()).unwrap();
        pass(secs_d(1)).await;
        assert_eq!(h.probe.starts("count.c")[1].1, 30);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_wall_clock_jump_is_noticed_within_a_minute() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let id = "count.j";
        let engine = h.start(vec![counting("j", "2200-2300", DAY, 10)]).unwrap();
        pass(secs_d(1)).await;
        // The machine sleeps through the evening: its wall clock jumps past 22:00.
        h.clock.jump(jiff::SignedDuration::from_hours(10));
        let jumped = h.now();
        pass(secs_d(61)).await;
        let starts = h.probe.starts(id);
        assert_eq!(starts.len(), 1);
        assert!(secs(jumped, starts[0].0) <= 60.0, "{starts:?}");
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_record_from_a_future_release_is_a_clear_error() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        {
            let store = Store::open(&h.state_dir()).unwrap();
            store.save_raw("count.c", br#"{"v":2,"new":true}"#).unwrap();
            store.flush().unwrap();
        }
        let err = h.start(vec![counting("c", "", DAY, 1)]).unwrap_err();
        match &err {
            EngineError::Store(e) => assert!(matches!(
                e.record_error(),
                Some(RecordError::FutureVersion {
                    found: 2,
                    supported: 1
                })
            )),
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("count.c") && text.contains("newer tahoe-jobs"),
            "{text}"
        );
        // Nothing was started, so the store is free again.
        Store::open(&h.state_dir()).unwrap();
    });
}

#[test]
fn the_engine_refuses_to_start_outside_an_actix_system_or_with_unknown_task_types() {
    let dir = tempfile::tempdir().unwrap();
    let err = Engine::start(EngineOptions::new(dir.path(), Registry::new(), vec![])).unwrap_err();
    assert!(matches!(err, EngineError::NoSystem), "{err}");
    run_paused(|| async {
        let dir = tempfile::tempdir().unwrap();
        let err = Engine::start(EngineOptions::new(
            dir.path(),
            Registry::new(),
            vec![counting("c", "", DAY, 1)],
        ))
        .unwrap_err();
        assert!(matches!(err, EngineError::UnknownTaskType { .. }), "{err}");
    });
}

#[test]
fn the_status_serializes_and_the_handle_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let engine = h.start(vec![counting("c", "", DAY, 100)]).unwrap();
        assert_send(&engine);
        assert_send(&engine.status());
        assert_send(&engine.run_now("c", false));
        pass(ms(5_500)).await;
        let value = serde_json::to_value(engine.status().await.unwrap()).unwrap();
        let job = &value["jobs"][0];
        assert_eq!(job["id"], "count.c");
        assert_eq!(job["task_type"], "count");
        assert_eq!(job["state"]["kind"], "running");
        assert_eq!(job["state"]["at"], "2026-01-10T12:00:00Z");
        assert_eq!(job["window"]["open"], true);
        assert_eq!(job["progress"]["counters"]["units"], 5);
        assert_eq!(job["last_started"], "2026-01-10T12:00:00Z");
        engine.shutdown().await.unwrap();
    });
}

/// With a task runtime of its own (as the daemon gives it), a job's task runs on that
/// runtime's threads, not on the actors' thread, and its record is flushed before the engine's
/// shutdown returns: a new engine on the same state directory sees the run completed.
#[test]
fn tasks_run_on_the_task_runtime_and_shutdown_waits_for_the_flushes() {
    use std::sync::{Arc, Mutex};
    use tahoe_jobs_engine::{Task, TaskContext, TaskError, TaskRuntime};

    struct Where(Arc<Mutex<Option<tokio::sync::oneshot::Sender<Option<String>>>>>);
    #[async_trait::async_trait]
    impl Task for Where {
        async fn run(&mut self, _: &TaskContext) -> Result<Outcome, TaskError> {
            let name = std::thread::current().name().map(str::to_string);
            if let Some(tx) = self.0.lock().unwrap().take() {
                let _ = tx.send(name);
            }
            Ok(Outcome::Completed)
        }
    }

    let tasks = tahoe_jobs_engine::task_runtime().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let mut registry = Registry::new();
    registry.register_free_form("where", move |_| {
        Ok(Box::new(Where(tx.clone())) as Box<dyn Task>)
    });
    let options = |registry| {
        EngineOptions::new(dir.path(), registry, vec![job("where", "w", "", DAY)])
            .with_task_runtime(TaskRuntime::on(tasks.handle().clone()))
    };
    let actors = std::thread::current().id();
    let system = actix_rt::System::new();
    system.block_on(async {
        let engine = Engine::start(options(registry.clone())).unwrap();
        let name = rx.await.expect("the task ran");
        assert_eq!(name.as_deref(), Some("tahoe-jobs-task"));
        assert_eq!(std::thread::current().id(), actors);
        // Until the job has taken in the task's end.
        while job_status(&engine, "where.w")
            .await
            .last_completed
            .is_none()
        {
            tokio::task::yield_now().await;
        }
        engine.shutdown().await.unwrap();
    });
    let store = Store::open(dir.path()).unwrap();
    assert!(store.load("where.w").unwrap().last_completed.is_some());
}

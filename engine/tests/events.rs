//! Job events through the engine: a failure, then a success, each announced once with its
//! counts, duration and error; a run stopped by its window announces nothing; an overdue spell is
//! announced once; a listener that never reads holds no job up.

use tahoe_jobs_engine::{EventKind, JobEvent};
use tokio::sync::broadcast::error::TryRecvError;

use crate::util::*;

fn drain(rx: &mut tahoe_jobs_engine::EventReceiver) -> Vec<JobEvent> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("the event stream broke: {e}"),
        }
    }
}

#[test]
fn a_failed_then_completed_run_is_announced_with_its_error_counts_and_duration() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        h.set_failures("flaky.e", 1);
        let engine = h
            .start(vec![
                with_param(job("flaky", "e", "", DAY), "mode", "err"),
                counting("c", "", DAY, 5),
            ])
            .unwrap();
        let mut rx = engine.subscribe();
        pass(secs_d(10)).await;
        let events = drain(&mut rx);
        let of = |id: &str| -> Vec<&JobEvent> { events.iter().filter(|e| e.job == id).collect() };

        let flaky = of("flaky.e");
        assert_eq!(
            flaky.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![EventKind::Failure, EventKind::Success]
        );
        assert_eq!(
            flaky[0].error.as_deref(),
            Some("flaky task failed on purpose")
        );
        assert_eq!(flaky[0].consecutive_failures, 1);
        assert_eq!(flaky[0].task_type, "flaky");
        assert_eq!(flaky[1].error, None);
        assert_eq!(flaky[1].consecutive_failures, 0);
        assert_eq!(
            flaky[1].started,
            Some(after(t0, secs_d(1))),
            "retried after 1 s"
        );

        let count = of("count.c");
        assert_eq!(count.len(), 1);
        assert_eq!(count[0].kind, EventKind::Success);
        assert_eq!(count[0].started, Some(t0));
        assert_eq!(count[0].at, after(t0, secs_d(5)));
        assert_eq!(count[0].duration, Some(secs_d(5)));
        assert_eq!(count[0].counters.get("units"), Some(&5));
        assert_eq!(count[0].last_completed, Some(after(t0, secs_d(5))));
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_run_stopped_by_its_window_announces_nothing_and_an_overdue_spell_is_announced_once() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        // Open for the first minute of the day: a 600-unit run is stopped by the close.
        let mut stopped = counting("w", "1200-1201", DAY, 600);
        stopped.schedule.overdue_after = None;
        let mut stale = counting("s", "none", DAY, 3);
        stale.schedule.overdue_after = Some(2 * DAY);
        let engine = h.start(vec![stopped, stale]).unwrap();
        let mut rx = engine.subscribe();
        pass(secs_d(120)).await;
        assert_eq!(
            job_status(&engine, "count.w").await.state.kind,
            tahoe_jobs_engine::StateKind::WaitingForWindow
        );
        pass_until(&h, after(t0, 2 * DAY + HOUR)).await;
        let events = drain(&mut rx);
        let overdue: Vec<_> = events.iter().filter(|e| e.job == "count.s").collect();
        assert_eq!(overdue.len(), 1, "{events:?}");
        assert_eq!(overdue[0].kind, EventKind::Overdue);
        assert_eq!(overdue[0].overdue_since, Some(after(t0, 2 * DAY)));
        assert!(overdue[0].counters.is_empty());
        // count.w was stopped by its window each day: never a failure; each stop resumes.
        assert!(
            events
                .iter()
                .filter(|e| e.job == "count.w")
                .all(|e| e.kind != EventKind::Failure),
            "{events:?}"
        );
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_listener_that_never_reads_holds_no_job_up() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        h.set_failures("flaky.e", 300);
        let engine = h
            .start(vec![with_param(job("flaky", "e", "", DAY), "mode", "err")])
            .unwrap();
        let mut rx = engine.subscribe();
        // The backoff is capped, so 300 failures (more than the buffer holds) come within days; the listener reads none.
        pass_until(&h, after(t0, 20 * DAY)).await;
        let st = job_status(&engine, "flaky.e").await;
        assert!(
            st.last_completed.is_some(),
            "the job went on without the listener"
        );
        assert!(matches!(
            rx.try_recv(),
            Err(TryRecvError::Lagged(n)) if n > 0
        ));
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_job_waiting_for_its_window_announces_overdue_at_the_instant() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let mut stale = counting("s", "none", secs_d(1), 3);
        stale.schedule.overdue_after = Some(secs_d(90));
        let engine = h.start(vec![stale]).unwrap();
        let mut rx = engine.subscribe();
        pass(secs_d(89)).await;
        assert!(drain(&mut rx).is_empty(), "not overdue yet");
        pass(secs_d(1)).await;
        // A moment past the instant, so the job's timer for it has surely fired.
        pass(ms(10)).await;
        let events = drain(&mut rx);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind, EventKind::Overdue);
        assert_eq!(
            events[0].at,
            after(t0, secs_d(90)),
            "at the instant, not a minute later"
        );
        engine.shutdown().await.unwrap();
    });
}

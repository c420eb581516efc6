//! `after` through the engine: a job runs when a job it follows completes, inside its own
//! window, once more after a run under way, and not while it is paused (the request is
//! refused, not kept for later).

use tahoe_jobs_config::JobConfig;
use tahoe_jobs_engine::StateKind;

use crate::util::*;

fn following(mut job: JobConfig, leader: &str) -> JobConfig {
    job.schedule.after = vec![leader.to_string()];
    job
}

fn start_times(h: &Harness, id: &str) -> Vec<jiff::Timestamp> {
    h.probe.starts(id).into_iter().map(|(at, _)| at).collect()
}

#[test]
fn a_job_runs_when_the_job_it_follows_completes() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let engine = h
            .start(vec![
                counting("b", "", 7 * DAY, 10),
                following(counting("p", "", 7 * DAY, 5), "count.b"),
                following(counting("w", "2200-2300", 7 * DAY, 5), "count.b"),
                following(counting("q", "", 7 * DAY, 20), "count.b"),
            ])
            .unwrap();
        pass_until(&h, ts("2026-01-10T12:01:00Z")).await;
        // New jobs are due at once; p runs again when b completes (12:00:10), though its
        // frequency of a week has not passed.
        assert_eq!(
            start_times(&h, "count.p"),
            vec![ts("2026-01-10T12:00:00Z"), ts("2026-01-10T12:00:10Z")]
        );
        assert_eq!(h.probe.returns("count.p").len(), 2);
        // q was running when b completed: it runs once more when that run ends.
        assert_eq!(
            start_times(&h, "count.q"),
            vec![ts("2026-01-10T12:00:00Z"), ts("2026-01-10T12:00:20Z")]
        );
        // w follows b too, but only inside its own window.
        assert!(h.probe.starts("count.w").is_empty());
        assert_eq!(
            state_of(&engine, "count.w").await,
            StateKind::WaitingForWindow
        );

        // Paused, p is not run after b; resumed, it does not run either (not due).
        engine.pause("p", None).await.unwrap();
        engine.run_now("b", false).await.unwrap();
        pass_until(&h, ts("2026-01-10T12:02:00Z")).await;
        assert_eq!(h.probe.returns("count.b").len(), 2);
        engine.resume("p").await.unwrap();
        pass_until(&h, ts("2026-01-10T12:03:00Z")).await;
        assert_eq!(start_times(&h, "count.p").len(), 2);

        // b completes again: p follows.
        engine.run_now("b", false).await.unwrap();
        pass_until(&h, ts("2026-01-10T12:04:00Z")).await;
        assert_eq!(
            start_times(&h, "count.p").last(),
            Some(&ts("2026-01-10T12:03:10Z"))
        );

        // w runs once when its window opens, for all of b's completions before it.
        pass_until(&h, ts("2026-01-10T22:01:00Z")).await;
        assert_eq!(start_times(&h, "count.w"), vec![ts("2026-01-10T22:00:00Z")]);
        engine.shutdown().await.unwrap();
    });
}

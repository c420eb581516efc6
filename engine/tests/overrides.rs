//! Live overrides through the engine handle: a changed window acts at once on a running job,
//! limits reach the budget, and both survive a restart until they are reset.

use tahoe_jobs_engine::{Outcome, OverrideTarget, StateKind};

use crate::util::*;

#[test]
fn a_live_window_change_stops_a_run_at_once_survives_a_restart_and_resets() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let id = "count.c";
        let jobs = || vec![counting("c", "", DAY, 10_000)];
        let engine = h.start(jobs()).unwrap();
        pass(secs_d(5)).await;
        assert_eq!(state_of(&engine, id).await, StateKind::Running);

        // By name, as the CLI allows.
        let changed_at = h.now();
        let overrides = engine
            .set_override(
                OverrideTarget::Job("c".into()),
                "allowed_times",
                Some("none"),
            )
            .await
            .unwrap();
        assert_eq!(overrides.jobs[id]["allowed_times"].value, "none");
        pass(secs_d(1)).await;
        let returns = h.probe.returns(id);
        assert_eq!(returns.len(), 1, "{returns:?}");
        assert_eq!(returns[0].1, Outcome::StoppedEarly);
        assert!(secs(changed_at, returns[0].0) <= 1.0);
        let st = job_status(&engine, id).await;
        assert_eq!(st.state.kind, StateKind::WaitingForWindow);
        assert!(!st.window.open);

        // A bad value is refused and changes nothing.
        let err = engine
            .set_override(
                OverrideTarget::Job(id.into()),
                "allowed_times",
                Some("soon"),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("allowed_times"), "{err}");
        engine.shutdown().await.unwrap();

        // The override outlives the process: the job still waits.
        let engine = h.start(jobs()).unwrap();
        pass(secs_d(5)).await;
        assert_eq!(state_of(&engine, id).await, StateKind::WaitingForWindow);
        assert_eq!(h.probe.starts(id).len(), 1);

        // Back to the file's value: the unfinished run resumes within a second.
        let overrides = engine
            .set_override(OverrideTarget::Job(id.into()), "allowed_times", None)
            .await
            .unwrap();
        assert!(overrides.jobs.is_empty());
        pass(secs_d(1)).await;
        assert_eq!(h.probe.starts(id).len(), 2);
        assert_eq!(state_of(&engine, id).await, StateKind::Running);
        engine.shutdown().await.unwrap();
    })
}

#[test]
fn live_limits_reach_the_budget_and_survive_a_restart() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let id = "count.c";
        let jobs = || vec![counting("c", "none", DAY, 10)];
        let engine = h.start(jobs()).unwrap();
        pass(secs_d(1)).await;
        let limits = engine.budget().await.unwrap().limits;
        assert_eq!(limits.job(id).upload, None);
        assert_eq!(limits.total.upload, None);

        engine
            .set_override(OverrideTarget::Job(id.into()), "bandwidth", Some("64KiB/s"))
            .await
            .unwrap();
        engine
            .set_override(OverrideTarget::Job(id.into()), "cpu", Some("25%"))
            .await
            .unwrap();
        engine
            .set_override(OverrideTarget::Budget, "upload", Some("1MiB/s"))
            .await
            .unwrap();
        let limits = engine.budget().await.unwrap().limits;
        assert_eq!(limits.job(id).upload, Some(64 * 1024));
        assert_eq!(limits.job(id).cpu, Some(0.25));
        assert_eq!(limits.total.upload, Some(1024 * 1024));
        engine.shutdown().await.unwrap();

        let engine = h.start(jobs()).unwrap();
        pass(secs_d(1)).await;
        let limits = engine.budget().await.unwrap().limits;
        assert_eq!(limits.job(id).upload, Some(64 * 1024));
        assert_eq!(limits.total.upload, Some(1024 * 1024));

        engine
            .set_override(OverrideTarget::Budget, "upload", None)
            .await
            .unwrap();
        engine
            .set_override(OverrideTarget::Job(id.into()), "bandwidth", None)
            .await
            .unwrap();
        let report = engine.budget().await.unwrap();
        assert_eq!(report.limits.total.upload, None);
        assert_eq!(report.limits.job(id).upload, None);
        assert_eq!(report.limits.job(id).cpu, Some(0.25), "still overridden");
        let overrides = engine.overrides().await.unwrap();
        assert_eq!(overrides.jobs[id].keys().collect::<Vec<_>>(), vec!["cpu"]);
        assert!(overrides.budget.is_empty());
        engine.shutdown().await.unwrap();
    })
}

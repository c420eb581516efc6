//! Overdue jobs through the engine: a job whose window never opens becomes overdue
//! `overdue_after` after it was first seen, stays so while paused, is cleared by a completed run,
//! and its first sighting survives restarts (and is added to records written before it existed).

use tahoe_jobs_engine::{OverdueView, Store};

use crate::util::*;

/// A counting job whose window never opens, overdue three days after its last completion.
fn stale(name: &str) -> tahoe_jobs_config::JobConfig {
    let mut job = counting(name, "none", DAY, 3);
    job.schedule.overdue_after = Some(3 * DAY);
    job
}

#[test]
fn a_job_whose_window_never_opens_becomes_overdue_and_a_completed_run_clears_it() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let id = "count.s";
        let engine = h.start(vec![stale("s")]).unwrap();
        pass(secs_d(1)).await;
        let st = job_status(&engine, id).await;
        assert_eq!(st.first_seen, Some(t0));
        assert_eq!(st.overdue_after_secs, Some(3 * 86_400));
        assert_eq!(st.overdue, None);
        assert!(h.probe.starts(id).is_empty(), "the window never opens");

        // A second before the threshold: not yet. The first sighting survives a restart.
        let threshold = after(t0, 3 * DAY);
        pass_until(&h, threshold - jiff::SignedDuration::from_secs(1)).await;
        assert_eq!(job_status(&engine, id).await.overdue, None);
        engine.shutdown().await.unwrap();
        let engine = h.start(vec![stale("s")]).unwrap();
        let st = job_status(&engine, id).await;
        assert_eq!(
            st.first_seen,
            Some(t0),
            "first_seen is kept across restarts"
        );
        assert_eq!(st.overdue, None);

        // At the threshold and after it: overdue since then, for as long as has passed.
        pass_until(&h, threshold).await;
        assert_eq!(
            job_status(&engine, id).await.overdue,
            Some(OverdueView {
                since: threshold,
                for_secs: 0
            })
        );
        pass(HOUR).await;
        assert_eq!(
            job_status(&engine, id).await.overdue,
            Some(OverdueView {
                since: threshold,
                for_secs: 3600
            })
        );

        // Pausing does not make the data safer: still overdue.
        engine.pause(id, None).await.unwrap();
        let st = job_status(&engine, id).await;
        assert!(st.paused);
        assert_eq!(st.overdue.map(|o| o.since), Some(threshold));
        engine.resume(id).await.unwrap();

        // A run completes (started by hand, the window never opens): no longer overdue, and
        // overdue again three days after that completion.
        engine.run_now(id, true).await.unwrap();
        pass(secs_d(5)).await;
        let st = job_status(&engine, id).await;
        let completed = st.last_completed.expect("the run completed");
        assert_eq!(st.overdue, None);
        pass_until(&h, after(completed, 3 * DAY)).await;
        assert_eq!(
            job_status(&engine, id).await.overdue,
            Some(OverdueView {
                since: after(completed, 3 * DAY),
                for_secs: 0
            })
        );
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_record_written_before_first_seen_existed_gets_it_at_start() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let id = "count.s";
        {
            let store = Store::open(&h.state_dir()).unwrap();
            // A version-1 record as the first release wrote it: never completed, one failure.
            store
                .save_raw(
                    id,
                    br#"{"v":1,"unfinished_run":null,"last_started":null,"last_completed":null,
                        "last_outcome":null,"last_error":null,"pause":null,
                        "consecutive_failures":1,"last_run_counters":{},
                        "last_completed_totals":{}}"#,
                )
                .unwrap();
            store.flush().unwrap();
        }
        let engine = h.start(vec![stale("s")]).unwrap();
        pass(secs_d(1)).await;
        let st = job_status(&engine, id).await;
        assert_eq!(st.consecutive_failures, 1, "the old record was read");
        assert_eq!(st.first_seen, Some(t0));
        engine.shutdown().await.unwrap();
        let store = Store::open(&h.state_dir()).unwrap();
        assert_eq!(store.load(id).unwrap().first_seen, Some(t0), "and saved");
    });
}

#[test]
fn a_disabled_job_and_overdue_after_off_are_never_overdue() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let mut disabled = stale("d");
        disabled.schedule.enabled = false;
        let mut off = stale("o");
        off.schedule.overdue_after = None;
        let engine = h.start(vec![disabled, off, stale("s")]).unwrap();
        pass(10 * DAY).await;
        let status = engine.status().await.unwrap();
        let overdue = |id: &str| status.job(id).expect("the job").overdue;
        assert_eq!(overdue("count.d"), None);
        assert_eq!(overdue("count.o"), None);
        assert_eq!(status.job("count.o").unwrap().overdue_after_secs, None);
        assert_eq!(
            overdue("count.s").map(|o| o.since),
            Some(after(t0, 3 * DAY)),
            "the same job, enabled and with overdue_after on, is overdue"
        );
        engine.shutdown().await.unwrap();
    });
}

/// Log lines written while the returned guard is held, on this thread (the paused runtime and
/// its actors run on it).
fn capture_logs() -> (
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || Sink(sink.clone()))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[test]
fn the_warning_is_logged_once_per_overdue_spell_not_at_every_look() {
    let (logs, _guard) = capture_logs();
    let warnings = || {
        String::from_utf8_lossy(&logs.lock().unwrap())
            .lines()
            .filter(|l| l.contains("job is overdue"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let id = "count.s";
        let engine = h.start(vec![stale("s")]).unwrap();
        pass(3 * DAY - HOUR).await;
        assert!(warnings().is_empty());

        // Overdue: one warning within a minute, however often the status is asked for and
        // however long it stays overdue.
        pass(HOUR + secs_d(60)).await;
        assert_eq!(warnings().len(), 1, "{:?}", warnings());
        for _ in 0..20 {
            job_status(&engine, id).await;
        }
        pass(DAY).await;
        let logged = warnings();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(logged[0].contains("count.s") && logged[0].contains("never completed"));

        // A completed run ends the spell; the next one is announced again.
        engine.run_now(id, true).await.unwrap();
        pass(secs_d(5)).await;
        assert_eq!(job_status(&engine, id).await.overdue, None);
        pass(3 * DAY + secs_d(60)).await;
        let logged = warnings();
        assert_eq!(logged.len(), 2, "{logged:?}");
        assert!(logged[1].contains("not completed for longer than overdue_after"));
        engine.shutdown().await.unwrap();
    });
}

//! The budget as tasks meet it under the engine, on the paused clock: a job limit paces a feed,
//! limits that follow the time of day change at the boundary, a live change takes effect within
//! a second, a job's percentage follows the total in force, the CPU governor holds a busy task
//! back, the shaping proxy gets the same limits at the same instants, and a stop never waits on
//! the budget.

use tahoe_jobs_engine::shaping::ShapingProxy;
use tahoe_jobs_engine::{Enforcement, Outcome, OverrideTarget};

use crate::util::*;

const KIB: u64 = 1024;

#[test]
fn a_job_limit_paces_a_feed_to_within_a_few_percent() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let id = "feed.f";
        let engine = h.start(vec![feeding("f", "10KiB/s")]).unwrap();
        pass(secs_d(31)).await;
        let from = after(t0, secs_d(1));
        let rate = h.meter.rate(id, from, after(from, secs_d(30)));
        assert_near(rate, 10 * KIB, 2.0);

        let report = engine.budget().await.unwrap();
        assert_eq!(report.limits.job(id).upload, Some(10 * KIB));
        let stats = &report.stats.jobs[id];
        assert_eq!(stats.upload.limit, Some(10 * KIB));
        assert!(stats.upload.throttled_seconds > 25.0, "{stats:?}");
        assert!(!report.stats.exact_shaping);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_time_of_day_change_of_the_total_takes_effect_at_the_boundary() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T11:59:30Z"), "UTC");
        let id = "feed.f";
        let budget = upload_budget("0800-1200 8KiB/s, 32KiB/s");
        // Started 30 s before the boundary, so the once-a-minute look would come 30 s late.
        let engine = h.start_with(vec![feeding("f", "off")], budget).unwrap();
        pass_until(&h, ts("2026-01-10T11:59:59.990Z")).await;
        let limits = engine.budget().await.unwrap().limits;
        assert_eq!(limits.total.upload, Some(8 * KIB));
        assert_eq!(limits.next_change, Some(ts("2026-01-10T12:00:00Z")));
        pass(ms(20)).await;
        let limits = engine.budget().await.unwrap().limits;
        assert_eq!(limits.total.upload, Some(32 * KIB), "at 12:00:00.010");

        pass_until(&h, ts("2026-01-10T12:00:31Z")).await;
        let before = h
            .meter
            .rate(id, ts("2026-01-10T11:59:35Z"), ts("2026-01-10T11:59:59Z"));
        assert_near(before, 8 * KIB, 2.0);
        let after_ = h
            .meter
            .rate(id, ts("2026-01-10T12:00:01Z"), ts("2026-01-10T12:00:31Z"));
        assert_near(after_, 32 * KIB, 2.0);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_live_change_takes_effect_within_a_second() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let id = "feed.f";
        let engine = h.start(vec![feeding("f", "4KiB/s")]).unwrap();
        pass(ms(10_500)).await;

        // The job's own limit, raised through an override.
        let changed = h.now();
        engine
            .set_override(OverrideTarget::Job(id.into()), "bandwidth", Some("40KiB/s"))
            .await
            .unwrap();
        assert_eq!(
            engine.budget().await.unwrap().limits.job(id).upload,
            Some(40 * KIB)
        );
        pass(secs_d(11)).await;
        let from = after(changed, secs_d(1));
        assert_near(
            h.meter.rate(id, from, after(from, secs_d(10))),
            40 * KIB,
            3.0,
        );

        // The total, lowered through an override of [budget].
        let changed = h.now();
        engine
            .set_override(OverrideTarget::Budget, "upload", Some("8KiB/s"))
            .await
            .unwrap();
        pass(secs_d(11)).await;
        let from = after(changed, secs_d(1));
        assert_near(
            h.meter.rate(id, from, after(from, secs_d(10))),
            8 * KIB,
            3.0,
        );

        // And the configured [budget] replaced (a reload): the override still wins.
        engine.update_budget(upload_budget("2KiB/s")).await.unwrap();
        let limits = engine.budget().await.unwrap().limits;
        assert_eq!(limits.total.upload, Some(8 * KIB));
        engine
            .set_override(OverrideTarget::Budget, "upload", None)
            .await
            .unwrap();
        let limits = engine.budget().await.unwrap().limits;
        assert_eq!(limits.total.upload, Some(2 * KIB));
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_job_percentage_resolves_against_the_total_in_force() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T11:59:30Z"), "UTC");
        let id = "feed.half";
        let budget = upload_budget("0800-1200 8KiB/s, 32KiB/s");
        let engine = h.start_with(vec![feeding("half", "50%")], budget).unwrap();
        pass_until(&h, ts("2026-01-10T12:00:31Z")).await;
        let before = h
            .meter
            .rate(id, ts("2026-01-10T11:59:35Z"), ts("2026-01-10T11:59:59Z"));
        assert_near(before, 4 * KIB, 2.0);
        let after_ = h
            .meter
            .rate(id, ts("2026-01-10T12:00:01Z"), ts("2026-01-10T12:00:31Z"));
        assert_near(after_, 16 * KIB, 2.0);

        // A new total, live: half of it at once.
        engine
            .update_budget(upload_budget("64KiB/s"))
            .await
            .unwrap();
        let report = engine.budget().await.unwrap();
        assert_eq!(report.limits.job(id).upload, Some(32 * KIB));
        assert_eq!(report.stats.jobs[id].upload.limit, Some(32 * KIB));
        // No total, no limit (checked with the job paused: an unlimited feed never sleeps).
        engine.pause(id, None).await.unwrap();
        engine.update_budget(upload_budget("off")).await.unwrap();
        assert_eq!(engine.budget().await.unwrap().limits.job(id).upload, None);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn the_cpu_governor_holds_a_busy_task_to_its_share() {
    run_paused(|| async {
        let t0 = ts("2026-01-10T12:00:00Z");
        let h = Harness::new(t0, "UTC");
        let id = "burn.b";
        let mut burn = job("burn", "b", "", DAY);
        burn.limits.cpu = "25%".parse().unwrap();
        let engine = h.start(vec![burn]).unwrap();
        pass(secs_d(60)).await;
        let used = h.cpu.used.lock().unwrap().as_secs_f64();
        let share = used / 60.0;
        assert!((share - 0.25).abs() < 0.03, "{share}");
        assert!(h.cpu.reads.load(std::sync::atomic::Ordering::SeqCst) > 10);

        let report = engine.budget().await.unwrap();
        let stats = &report.stats.jobs[id];
        assert_eq!(stats.cpu_limit, Some(0.25));
        assert!(stats.cpu_paused_seconds > 30.0, "{stats:?}");
        assert!(report.stats.cpu.error.is_none());
        let recent = report.stats.cpu.recent_share.unwrap();
        assert!((recent - 0.25).abs() < 0.05, "{recent}");
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_stop_does_not_wait_on_the_budget() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T12:00:00Z"), "UTC");
        let id = "feed.slow";
        // Each acquisition of 1 MiB at 1 KiB/s waits for about 17 minutes.
        let slow = with_param(
            feeding("slow", "1KiB/s"),
            "chunk",
            &(1024 * KIB).to_string(),
        );
        let engine = h.start(vec![slow]).unwrap();
        pass(ms(10_500)).await;
        let paused = h.now();
        engine.pause(id, None).await.unwrap();
        pass(secs_d(1)).await;
        assert_eq!(
            h.probe.returns(id),
            vec![(paused, Outcome::StoppedEarly)],
            "returned by itself at once, not cancelled after the grace"
        );
        assert_eq!(h.meter.bytes(id, ts("2026-01-10T12:00:00Z"), h.now()), 0);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn the_shaping_proxy_gets_the_same_limits_at_the_same_instants() {
    run_paused(|| async {
        let h = Harness::new(ts("2026-01-10T11:59:30Z"), "UTC");
        let proxy = ShapingProxy::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let shaping = proxy.control();
        let mut budget = upload_budget("0800-1200 8KiB/s, 32KiB/s");
        budget.servers.insert(
            "v0-parents".into(),
            tahoe_jobs_config::ServerLimits {
                upload: "4KiB/s".parse().unwrap(),
                download: "off".parse().unwrap(),
            },
        );
        let enforcement = Enforcement {
            shaping: Some(shaping.clone()),
            exact_shaping: true,
            ..Enforcement::default()
        };
        let engine = h
            .start_enforced(vec![feeding("f", "16KiB/s")], budget, enforcement)
            .unwrap();
        pass(secs_d(1)).await;
        assert_eq!(shaping.stats().total.upload.limit, Some(8 * KIB));
        pass_until(&h, ts("2026-01-10T12:00:00.010Z")).await;
        assert_eq!(shaping.stats().total.upload.limit, Some(32 * KIB));

        // Exact shaping: the feed keeps only the job's own limit; the total is the proxy's.
        let report = engine.budget().await.unwrap();
        assert!(report.stats.exact_shaping);
        assert_eq!(
            report.limits.destination("v0-parents").upload,
            Some(4 * KIB)
        );
        pass(secs_d(10)).await;
        let now = h.now();
        let rate = h
            .meter
            .rate("feed.f", after(ts("2026-01-10T12:00:00Z"), secs_d(1)), now);
        assert_near(rate, 16 * KIB, 3.0);

        // Without it, the total holds the feed too.
        engine.set_exact_shaping(false).await.unwrap();
        engine.update_budget(upload_budget("8KiB/s")).await.unwrap();
        assert_eq!(shaping.stats().total.upload.limit, Some(8 * KIB));
        let from = after(h.now(), secs_d(1));
        pass(secs_d(11)).await;
        assert_near(
            h.meter.rate("feed.f", from, after(from, secs_d(10))),
            8 * KIB,
            3.0,
        );
        assert!(!engine.budget().await.unwrap().stats.exact_shaping);
        engine.shutdown().await.unwrap();
    });
}

//! Inputs for the unit tests of the views, pages and metrics: a daemon with a backup job in the
//! middle of a run, whose warnings, current file and last error hold paths and a capability
//! that must never reach the public outputs.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::jiff::Timestamp;
use tahoe_jobs_config::{
    BudgetSettings, Config, CpuShare, DaemonSettings, JobConfig, JobLimits, RateSchedule, Schedule,
    Setting, TaskParams,
};
use tahoe_jobs_engine::status::{ErrorView, OverdueView, StateKind, StateView, WindowView};
use tahoe_jobs_engine::{EngineStatus, JobStatus, LiveOverrides, ProgressSnapshot, Warning};

use super::rates::RateTracker;
use super::view::{build, build_control, ControlView, Inputs, StatusView};

pub const SECRET_CAP: &str = "URI:DIR2:secretsecret:keykeykey";
pub const SECRET_PATH: &str = "/home/alice/Private/diary.txt";

/// What the view builder makes of `status` for the public, with the fixture's configuration,
/// live overrides and rates, and `budget` as the budget's report (`None`: none yet).
pub fn view(status: &EngineStatus, budget: Option<&tahoe_jobs_engine::BudgetReport>) -> StatusView {
    with_inputs(status, budget, build)
}

/// [`view`] with the fixture's budget report.
pub fn view_with_budget(status: &EngineStatus) -> StatusView {
    view(status, Some(&budget()))
}

/// The control page's view of `status`, with the fixture's budget report when `budget`.
pub fn control_view(status: &EngineStatus, budget: bool) -> ControlView {
    let report = budget.then(self::budget);
    with_inputs(status, report.as_ref(), build_control)
}

fn with_inputs<T>(
    status: &EngineStatus,
    budget: Option<&tahoe_jobs_engine::BudgetReport>,
    f: impl FnOnce(&Inputs<'_>) -> T,
) -> T {
    let (config, overrides, rates) = (config(), overrides(), rates());
    let rate_history = rate_history();
    f(&Inputs {
        status,
        budget,
        overrides: &overrides,
        config: &config,
        rates: &rates,
        rate_history: &rate_history,
    })
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Thursday 23:00 in Paris.
pub fn now() -> Timestamp {
    ts("2026-01-08T22:00:00Z")
}

pub fn config() -> Config {
    let job = JobConfig {
        task_type: "backup".into(),
        name: "b1".into(),
        schedule: Schedule {
            frequency: Duration::from_secs(7 * 86_400),
            allowed_times: "2200-0400".parse().unwrap(),
            enabled: true,
            overdue_after: Some(Schedule::default_overdue_after(Duration::from_secs(
                7 * 86_400,
            ))),
            after: Vec::new(),
        },
        limits: JobLimits {
            bandwidth: "1MiB/s".parse().unwrap(),
            cpu: CpuShare::UNLIMITED,
        },
        params: TaskParams::none(),
    };
    Config {
        node_dir: PathBuf::from("/home/alice/.tahoe"),
        daemon: DaemonSettings {
            web_addr: "127.0.0.1:3457".parse().unwrap(),
            state_dir: PathBuf::from("/home/alice/.tahoe/private/tahoe-jobs"),
            timezone: TimeZone::get("Europe/Paris").unwrap(),
            timezone_name: "Europe/Paris".into(),
            shaping_addr: None,
            node_timeout: std::time::Duration::from_secs(600),
            cache_size: tahoe_jobs_config::DEFAULT_CACHE_SIZE,
        },
        budget: BudgetSettings {
            upload: "2MiB/s".parse::<RateSchedule>().unwrap(),
            ..BudgetSettings::default()
        },
        jobs: vec![job],
        hooks: Default::default(),
        settings: vec![
            Setting {
                key: "backup.b1.source".into(),
                value: "/home/alice/Private".into(),
                origin: "/home/alice/.tahoe/tahoe-jobs.cfg:3".into(),
            },
            Setting {
                key: "backup.b1.bandwidth".into(),
                value: "1MiB/s".into(),
                origin: "/home/alice/.tahoe/tahoe-jobs.cfg:5".into(),
            },
        ],
        warnings: Vec::new(),
    }
}

/// A backup halfway through its second run, with its previous run's totals as estimates.
pub fn status() -> EngineStatus {
    let counters: BTreeMap<String, u64> = [
        ("files_seen", 500),
        ("files_uploaded", 120),
        ("files_reused", 370),
        ("files_skipped", 2),
        ("bytes_seen", 5_000_000_000),
        ("bytes_uploaded", 1_200_000_000),
        ("dirs_created", 12),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let estimates: BTreeMap<String, u64> = [("files_seen", 1000), ("bytes_seen", 10_000_000_000)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let warnings: VecDeque<Warning> = [Warning {
        at: now(),
        message: format!("skipped {SECRET_PATH}: permission denied"),
    }]
    .into();
    EngineStatus {
        now: now(),
        jobs: vec![JobStatus {
            id: "backup.b1".into(),
            task_type: "backup".into(),
            enabled: true,
            frequency_secs: 7 * 86_400,
            state: StateView {
                kind: StateKind::Running,
                at: Some(ts("2026-01-08T21:00:00Z")),
                reason: None,
            },
            next_transition: Some(ts("2026-01-09T03:00:00Z")),
            window: WindowView {
                open: true,
                next_change: Some(ts("2026-01-09T03:00:00Z")),
            },
            last_started: Some(ts("2026-01-08T21:00:00Z")),
            last_completed: Some(ts("2026-01-01T03:00:00Z")),
            last_outcome: None,
            unfinished_run_since: Some(ts("2026-01-08T21:00:00Z")),
            next_due: None,
            last_error: Some(ErrorView {
                at: ts("2026-01-07T22:00:00Z"),
                message: format!("could not link {SECRET_CAP} under {SECRET_PATH}"),
            }),
            consecutive_failures: 1,
            paused: false,
            paused_until: None,
            progress: ProgressSnapshot {
                counters,
                // A fallback whose reason holds a path and (by mistake somewhere) a capability.
                labels: [(
                    "data_path".to_string(),
                    format!("node (fallback: cannot read {SECRET_PATH}: {SECRET_CAP})"),
                )]
                .into(),
                current: Some(SECRET_PATH.into()),
                estimates,
                warnings,
                warnings_total: 1,
            },
            last_run_counters: BTreeMap::new(),
            last_completed_totals: BTreeMap::new(),
            first_seen: Some(ts("2025-06-01T10:00:00Z")),
            overdue_after_secs: Some(15 * 86_400),
            overdue: None,
            history: history(),
        }],
    }
}

/// Four earlier runs: a first backup over two nights (stopped early, then completed), a failure
/// and a weekly run that completed.
pub fn history() -> Vec<tahoe_jobs_engine::RunEntry> {
    use tahoe_jobs_engine::{RunEntry, RunOutcome};
    let run = |started: &str, ended: &str, outcome, files: u64, bytes: u64| RunEntry {
        started: ts(started),
        ended: ts(ended),
        outcome,
        counters: [
            ("files_seen".to_string(), files),
            ("bytes_seen".to_string(), bytes),
            ("bytes_uploaded".to_string(), bytes / 2),
        ]
        .into(),
        labels: [("data_path".to_string(), "direct".to_string())].into(),
    };
    vec![
        run(
            "2025-12-17T21:00:00Z",
            "2025-12-18T03:00:00Z",
            RunOutcome::StoppedEarly,
            600,
            6_000_000_000,
        ),
        run(
            "2025-12-18T21:00:00Z",
            "2025-12-19T01:30:00Z",
            RunOutcome::Completed,
            1000,
            10_000_000_000,
        ),
        run(
            "2025-12-25T21:00:00Z",
            "2025-12-25T21:00:05Z",
            RunOutcome::Failed,
            0,
            0,
        ),
        run(
            "2025-12-31T21:00:00Z",
            "2026-01-01T03:00:00Z",
            RunOutcome::Completed,
            1000,
            10_000_000_000,
        ),
    ]
}

/// The same backup, idle and overdue: last completed 16 days ago, a day past its
/// `overdue_after` of 15 days (the default for a weekly job), waiting for its window.
pub fn overdue_status() -> EngineStatus {
    let mut status = status();
    let job = &mut status.jobs[0];
    job.state = StateView {
        kind: StateKind::WaitingForWindow,
        at: Some(ts("2026-01-09T21:00:00Z")),
        reason: None,
    };
    job.window = WindowView {
        open: false,
        next_change: Some(ts("2026-01-09T21:00:00Z")),
    };
    job.last_completed = Some(ts("2025-12-23T22:00:00Z"));
    job.unfinished_run_since = None;
    job.progress.current = None;
    job.overdue = Some(OverdueView {
        since: ts("2026-01-07T22:00:00Z"),
        for_secs: 86_400,
    });
    status
}

/// Rates as sampled over the last minute: 100 kB/s walked, 50 kB/s uploaded.
pub fn rates() -> RateTracker {
    let mut r = RateTracker::new();
    let run = Some(ts("2026-01-08T21:00:00Z"));
    let base = status().jobs[0].progress.counters.clone();
    let mut earlier = base.clone();
    *earlier.get_mut("bytes_seen").unwrap() -= 6_000_000;
    *earlier.get_mut("bytes_uploaded").unwrap() -= 3_000_000;
    r.observe("backup.b1", run, ts("2026-01-08T21:59:00Z"), &earlier);
    r.observe("backup.b1", run, now(), &base);
    r
}

/// Half an hour of the backup uploading at about 60 kB/s under its 256 KiB/s limit, and of the
/// parents' server near its 64 KiB/s limit, sampled every 10 s.
pub fn rate_history() -> super::rate_history::RateHistory {
    use super::rate_history::Owner;
    let mut h = super::rate_history::RateHistory::new();
    let start = now().as_second() - 1800;
    for i in 0..=180 {
        let at = Timestamp::from_second(start + i * 10).unwrap();
        let wobble = (i % 7) as u64 * 20_000;
        let job = i as u64 * 600_000 + wobble;
        let server = i as u64 * 640_000 + wobble;
        let down = i as u64 * 30_000;
        h.observe(
            Owner::Job("backup.b1".into()),
            true,
            at,
            job,
            Some(256 * 1024),
        );
        h.observe(
            Owner::Job("backup.b1".into()),
            false,
            at,
            down,
            Some(256 * 1024),
        );
        h.observe(
            Owner::Server("v0-parents".into()),
            true,
            at,
            server,
            Some(64 * 1024),
        );
        h.observe(Owner::Server("v0-parents".into()), false, at, 0, None);
    }
    h
}

pub fn overrides() -> LiveOverrides {
    let mut o = LiveOverrides::default();
    o.set(
        &tahoe_jobs_engine::OverrideTarget::Job("backup.b1".into()),
        "bandwidth",
        Some("256KiB/s"),
        ts("2026-01-08T20:00:00Z"),
    )
    .unwrap();
    o
}

/// The budget while the backup uploads at 50 kB/s under its live 256 KiB/s limit, through a
/// server limited to 64 KiB/s.
pub fn budget() -> tahoe_jobs_engine::BudgetReport {
    use tahoe_jobs_engine::limits::{
        Accounting, BudgetStats, CpuStats, DestinationStats, DirectionStats, FlowStats,
        JobLimitsNow, JobStats, LimitsNow, PairLimits,
    };
    let flow = |rate: f64, bytes: u64, limit: Option<u64>, throttled: f64| FlowStats {
        rate,
        bytes,
        limit,
        throttled_seconds: throttled,
    };
    let mut limits = LimitsNow::unlimited(now());
    limits.total.upload = Some(2 * 1024 * 1024);
    limits.jobs.insert(
        "backup.b1".into(),
        JobLimitsNow {
            upload: Some(256 * 1024),
            download: Some(256 * 1024),
            cpu: None,
        },
    );
    limits.destinations.insert(
        "v0-parents".into(),
        PairLimits {
            upload: Some(64 * 1024),
            download: None,
        },
    );
    let stats = BudgetStats {
        total: DirectionStats {
            upload: flow(150_000.0, 3_600_000_000, Some(2 * 1024 * 1024), 0.0),
            download: FlowStats::default(),
        },
        jobs: [(
            "backup.b1".to_string(),
            JobStats {
                upload: flow(50_000.0, 1_200_000_000, Some(256 * 1024), 3600.0),
                download: FlowStats::default(),
                cpu_limit: None,
                cpu_paused_seconds: 0.0,
            },
        )]
        .into(),
        destinations: [(
            "v0-parents".to_string(),
            DestinationStats {
                mode: Accounting::Estimated,
                upload: flow(60_000.0, 400_000_000, Some(64 * 1024), 7200.0),
                download: FlowStats::default(),
            },
        )]
        .into(),
        cpu: CpuStats {
            limit: None,
            recent_share: Some(0.4),
            error: None,
        },
        exact_shaping: false,
    };
    tahoe_jobs_engine::BudgetReport { limits, stats }
}

//! The prune task and `tahoe-jobs prune` on a real grid. Archives with made-up time stamps
//! (across the DST changes and year ends of Europe/Berlin) are made by linking one snapshot of a
//! real `tahoe backup` under many names; `Latest` links a second snapshot, also linked under one
//! old name. The kept sets are the tables below, worked out by hand (the reasoning beside each
//! name); `Latest`, its archive and the entries that are not time stamps survive; stock
//! `tahoe backup` still works on the target afterwards; a run stopped in the middle leaves a
//! consistent `Archives/` and the next run finishes.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tahoe_jobs_config::jiff::tz::TimeZone;
use tahoe_jobs_config::Target;
use tahoe_jobs_engine::{
    BudgetHandle, ProgressSink, StopReason, StopSignal, SystemClock, TaskContext,
};
use tahoe_jobs_tasks::prune::{
    prune_once, run_prune, PruneObserver, PruneOptions, PruneParams, Quiet,
};
use tahoe_jobs_tasks::tahoe::{Cap, ClientOptions, TahoeClient};

use crate::support::files::write_file;
use crate::support::process::{lossy_text, runtime, tahoe_jobs_command, wait_for_the_next_second};
use crate::support::{shared_grid, Grid};

/// The made-up archives, newest first, with their local time in Europe/Berlin.
const NAMES: &[&str] = &[
    "2026-01-02_09:00:00Z", // A: Fri 2026-01-02 10:00 CET, ISO 2026-W01
    "2026-01-01_08:00:00Z", // B: Thu 2026-01-01 09:00, W01
    "2025-12-31_23:30:00Z", // C: Thu 2026-01-01 00:30 (already 2026 in Berlin), W01
    "2025-12-31_12:00:00Z", // D: Wed 2025-12-31 13:00, W01 (Mon 12-29 starts 2026-W01)
    "2025-12-28_12:00:00Z", // E: Sun 2025-12-28 13:00, 2025-W52
    "2025-12-22_12:00:00Z", // F: Mon 2025-12-22 13:00, W52
    "2025-11-15_12:00:00Z", // G: Sat 2025-11-15 13:00, W46
    "2025-10-26_01:30:00Z", // I: Sun 2025-10-26 02:30 CET (the second 02:30 that night)
    "2025-10-26_00:30:00Z", // H: Sun 2025-10-26 02:30 CEST (the first)
    "2025-10-25_22:30:00Z", // J: Sun 2025-10-26 00:30 CEST
    "2025-03-30_01:30:00Z", // K: Sun 2025-03-30 03:30 CEST (after the spring change): Latest's
    "2025-03-29_23:30:00Z", // L: Sun 2025-03-30 00:30 CET
    "2024-12-31_23:59:59Z", // M: Wed 2025-01-01 00:59:59 (2025 in Berlin)
    "2024-06-01_12:00:00Z", // N: Sat 2024-06-01 14:00
];
/// Linked to `Latest`'s snapshot; every other made-up name links the older one.
const LATEST_ARCHIVE: &str = "2025-03-30_01:30:00Z";
/// Entries that are not `tahoe backup` time stamps: the user's, never removed.
const OTHERS: &[&str] = &["my notes", "2025-01-01_00:00:00Z.partial"];

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

fn params(alias: &str) -> PruneParams {
    PruneParams {
        target: Target::Alias {
            alias: alias.into(),
            path: String::new(),
        },
        keep_last: 0,
        keep_hourly: 0,
        keep_daily: 0,
        keep_weekly: 0,
        keep_monthly: 0,
        keep_yearly: 0,
        keep_within: None,
    }
}

/// What a target holds after [`prepare`]: the client, and the write caps of the target and its
/// `Archives`, and the two snapshots.
struct Prepared {
    client: TahoeClient,
    archives: Cap,
    older: Cap,
}

/// Two real `tahoe backup` runs of a changing source to `alias:` (two snapshots, `Latest` on the
/// second), then the made-up archives instead of the real names.
fn prepare(grid: &Grid, alias: &str, source: &Path) -> Prepared {
    grid.create_alias(alias);
    for round in 0..2u8 {
        // `tahoe backup` names an archive by the second: two in one second would share a name.
        if round > 0 {
            wait_for_the_next_second();
        }
        // A new size each round: `tahoe backup` takes a file as unchanged when its size and
        // its whole-second mtime and ctime are (backupdb.py), and the kernel's file times run a
        // few milliseconds behind the wall clock, so the second write may still carry the
        // first one's second (seen in CI: both archives were the same snapshot).
        write_file(
            &source.join("photo.jpg"),
            &vec![round; 5000 + usize::from(round)],
        );
        tahoe_backup(grid, source, alias);
    }
    let rt = runtime();
    rt.block_on(async {
        let client = TahoeClient::from_node_dir(grid.node_dir(), &ClientOptions::default())
            .expect("a client");
        let root = Cap::new(grid.alias_cap(alias).expect("the alias"));
        let target = client.list(&root, "").await.expect("list the target");
        let archives = target.children["Archives"]
            .rw_cap
            .clone()
            .expect("Archives");
        let latest = target.children["Latest"].ro_cap.clone().expect("Latest");
        let real = client.list(&archives, "").await.expect("list Archives");
        assert_eq!(real.children.len(), 2, "two real archives");
        let older = real
            .children
            .values()
            .filter_map(|c| c.ro_cap.clone())
            .find(|c| c.expose() != latest.expose())
            .expect("the first backup's snapshot");
        for name in real.children.keys() {
            client.unlink(&archives, "", name).await.expect("unlink");
        }
        let prepared = Prepared {
            client,
            archives,
            older,
        };
        relink(&prepared, &latest).await;
        prepared
    })
}

/// (Re)links every made-up name, so each policy starts from the same `Archives/`.
async fn relink(p: &Prepared, latest: &Cap) {
    for name in NAMES.iter().chain(OTHERS) {
        let cap = if *name == LATEST_ARCHIVE {
            latest
        } else {
            &p.older
        };
        p.client
            .link(&p.archives, "", name, cap)
            .await
            .expect("link a made-up archive");
    }
}

async fn archive_names(p: &Prepared) -> BTreeSet<String> {
    p.client
        .list(&p.archives, "")
        .await
        .expect("list Archives")
        .children
        .into_keys()
        .collect()
}

fn tahoe_backup(grid: &Grid, source: &Path, alias: &str) {
    let out = grid.tahoe([
        OsStr::new("backup"),
        source.as_os_str(),
        OsStr::new(&format!("{alias}:")),
    ]);
    assert!(
        out.status.success(),
        "tahoe backup failed: {}",
        lossy_text(&out.stderr)
    );
}

fn expected(kept: &[&str]) -> BTreeSet<String> {
    kept.iter().chain(OTHERS).map(|s| s.to_string()).collect()
}

#[test]
fn prune_keeps_what_the_hand_worked_tables_say_and_tahoe_backup_still_works() {
    let grid = shared_grid();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    let p = prepare(grid, "prune-tables", &source);
    let rt = runtime();
    let latest = rt.block_on(async {
        let root = Cap::new(grid.alias_cap("prune-tables").unwrap());
        let target = p.client.list(&root, "").await.unwrap();
        target.children["Latest"].ro_cap.clone().unwrap()
    });

    let cases: Vec<(&str, PruneParams, Vec<&str>)> = vec![
        (
            // Days with an archive, newest first: 01-02 (A), 01-01 (B; C is the same Berlin
            // day), 12-31 (D), 12-28 (E). K stays as Latest's.
            "keep_daily = 4",
            PruneParams {
                keep_daily: 4,
                ..params("prune-tables")
            },
            vec![NAMES[0], NAMES[1], NAMES[3], NAMES[4], LATEST_ARCHIVE],
        ),
        (
            // Weeks: 2026-W01 (A; B, C, D too), 2025-W52 (E; F too), W46 (G). Years in Berlin:
            // 2026 (A; B and C too), 2025 (D; ... M too: 2025 in Berlin), 2024 (N).
            "keep_weekly = 3, keep_yearly = 3",
            PruneParams {
                keep_weekly: 3,
                keep_yearly: 3,
                ..params("prune-tables")
            },
            vec![
                NAMES[0],
                NAMES[3],
                NAMES[4],
                NAMES[6],
                NAMES[13],
                LATEST_ARCHIVE,
            ],
        ),
        (
            // Local hours: A..G are seven different hours; I and H are both 02:00-03:00 on
            // 10-26 (CET and CEST): one bucket, I is its newest; J (00:30) and K (03:30 on
            // 03-30) are the ninth and tenth. keep_within 2d of A adds nothing new (A-D).
            "keep_last = 1, keep_hourly = 10, keep_within = 2d",
            PruneParams {
                keep_last: 1,
                keep_hourly: 10,
                keep_within: Some(std::time::Duration::from_secs(2 * 86_400)),
                ..params("prune-tables")
            },
            vec![
                NAMES[0], NAMES[1], NAMES[2], NAMES[3], NAMES[4], NAMES[5], NAMES[6], NAMES[7],
                NAMES[9], NAMES[10],
            ],
        ),
        (
            // Only the newest: everything else goes but Latest's archive and the user's.
            "keep_last = 1",
            PruneParams {
                keep_last: 1,
                ..params("prune-tables")
            },
            vec![NAMES[0], LATEST_ARCHIVE],
        ),
    ];
    for (what, policy, kept) in cases {
        rt.block_on(async {
            relink(&p, &latest).await;
            let options = PruneOptions {
                client: ClientOptions::default(),
                dry_run: false,
                observer: &Quiet,
            };
            let report = prune_once(grid.node_dir(), &policy, &options, berlin())
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(!report.stopped, "{what}");
            let left = archive_names(&p).await;
            assert_eq!(left, expected(&kept), "{what}");
            let removed: BTreeSet<String> = report.removed.iter().cloned().collect();
            let all: BTreeSet<String> = NAMES.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                removed,
                all.difference(&left).cloned().collect(),
                "{what}: the report names what was removed"
            );
        });
    }

    // Latest still links the second snapshot, and stock `tahoe backup` carries on: a new
    // archive appears and Latest moves to it.
    rt.block_on(async {
        let root = Cap::new(grid.alias_cap("prune-tables").unwrap());
        let target = p.client.list(&root, "").await.unwrap();
        let now_latest = target.children["Latest"].ro_cap.clone().unwrap();
        assert_eq!(now_latest.expose(), latest.expose());
    });
    let before = rt.block_on(archive_names(&p));
    write_file(&source.join("new.txt"), b"after the prune");
    tahoe_backup(grid, &source, "prune-tables");
    let after = rt.block_on(archive_names(&p));
    let new: Vec<&String> = after.difference(&before).collect();
    assert_eq!(new.len(), 1, "tahoe backup added one archive: {new:?}");
    assert!(before.is_subset(&after));
    let out = grid.tahoe(["ls", "prune-tables:Latest"]);
    assert!(out.status.success(), "{}", lossy_text(&out.stderr));
    let listed = lossy_text(&out.stdout);
    assert!(listed.contains("new.txt"), "{listed}");
}

/// Fires the stop signal once `after` archives have been removed.
struct StopAfter {
    stop: StopSignal,
    after: usize,
    seen: AtomicUsize,
}

impl PruneObserver for StopAfter {
    fn removed(&self, _name: &str) {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.stop.stop(StopReason::WindowClosed);
        }
    }
}

#[test]
fn a_prune_stopped_in_the_middle_leaves_consistent_archives_and_the_next_run_finishes() {
    let grid = shared_grid();
    let tmp = tempfile::tempdir().unwrap();
    let p = prepare(grid, "prune-stop", &tmp.path().join("src"));
    let policy = PruneParams {
        keep_last: 1,
        ..params("prune-stop")
    };
    let final_set = expected(&[NAMES[0], LATEST_ARCHIVE]);
    let rt = runtime();
    let db = tahoe_jobs_tasks::sled::Config::new()
        .temporary(true)
        .open()
        .unwrap();
    let context = |stop: StopSignal| {
        TaskContext::new(
            "prune.p1",
            stop,
            BudgetHandle::unlimited("prune.p1"),
            ProgressSink::new(),
            db.open_tree("prune.p1").unwrap(),
            Arc::new(SystemClock),
        )
        .with_timezone(berlin())
    };

    let stop = StopSignal::new();
    let observer = StopAfter {
        stop: stop.clone(),
        after: 3,
        seen: AtomicUsize::new(0),
    };
    let options = PruneOptions {
        client: ClientOptions::default(),
        dry_run: false,
        observer: &observer,
    };
    let ctx = context(stop);
    let first = rt
        .block_on(run_prune(grid.node_dir(), &policy, &options, &ctx))
        .expect("the first run");
    assert!(first.stopped, "the run saw the stop");
    assert_eq!(first.removed.len(), 3, "{:?}", first.removed);
    // Oldest first: the three oldest of the removed ones are gone.
    assert_eq!(first.removed, vec![NAMES[13], NAMES[12], NAMES[11]]);
    // Consistent: exactly the planned ones are gone, stock `tahoe ls` lists the rest, and every
    // archive left is a whole, listable directory.
    let left = rt.block_on(archive_names(&p));
    let mut want: BTreeSet<String> = NAMES.iter().chain(OTHERS).map(|s| s.to_string()).collect();
    for gone in &first.removed {
        want.remove(gone);
    }
    assert_eq!(left, want);
    let out = grid.tahoe(["ls", "prune-stop:Archives"]);
    assert!(out.status.success(), "{}", lossy_text(&out.stderr));
    let listed: BTreeSet<String> = lossy_text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(listed, want);
    rt.block_on(async {
        let archives = p.client.list(&p.archives, "").await.unwrap();
        for (name, child) in archives
            .children
            .iter()
            .filter(|(n, _)| NAMES.contains(&n.as_str()))
        {
            let cap = child.ro_cap.clone().expect("an archive's cap");
            let inside = p.client.list(&cap, "").await;
            assert!(
                inside.is_ok_and(|l| l.children.contains_key("photo.jpg")),
                "Archives/{name} is not whole"
            );
        }
    });
    // The progress said how far it got.
    assert_eq!(ctx.progress().get("removed"), 3);

    // The next run plans again over what is left and finishes.
    let options = PruneOptions {
        client: ClientOptions::default(),
        dry_run: false,
        observer: &Quiet,
    };
    let second = rt
        .block_on(run_prune(
            grid.node_dir(),
            &policy,
            &options,
            &context(StopSignal::new()),
        ))
        .expect("the second run");
    assert!(!second.stopped);
    assert_eq!(second.removed.len(), NAMES.len() - 2 - 3);
    assert_eq!(rt.block_on(archive_names(&p)), final_set);
}

#[test]
fn the_prune_command_prints_the_plan_and_removes_nothing_on_a_dry_run() {
    let grid = shared_grid();
    let tmp = tempfile::tempdir().unwrap();
    let p = prepare(grid, "prune-cli", &tmp.path().join("src"));
    let rt = runtime();
    let prune = |args: &[&str]| {
        tahoe_jobs_command()
            .arg("-d")
            .arg(grid.node_dir())
            .args(["--set", "jobs.timezone=Europe/Berlin", "prune"])
            .args(args)
            .output()
            .expect("run tahoe-jobs prune")
    };
    let before = rt.block_on(archive_names(&p));
    let out = prune(&["--dry-run", "--keep-daily", "4", "prune-cli:"]);
    let stdout = lossy_text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        lossy_text(&out.stderr)
    );
    assert_eq!(
        rt.block_on(archive_names(&p)),
        before,
        "a dry run removes nothing"
    );
    let line_of = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not in {stdout}"))
            .to_string()
    };
    assert!(line_of(NAMES[0]).starts_with("keep") && line_of(NAMES[0]).contains("(daily)"));
    assert!(line_of(NAMES[2]).starts_with("would remove"));
    assert!(line_of(LATEST_ARCHIVE).contains("(Latest)"));
    assert!(line_of("my notes").contains("not a backup time stamp"));
    assert!(!stdout.contains("URI:"), "{stdout}");

    let out = prune(&["--keep-daily", "4", "prune-cli:"]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy_text(&out.stderr));
    assert_eq!(
        rt.block_on(archive_names(&p)),
        expected(&[NAMES[0], NAMES[1], NAMES[3], NAMES[4], LATEST_ARCHIVE])
    );
    assert!(lossy_text(&out.stdout).contains("removed"));

    // No rule, or a target that does not exist: exit 1 with a message.
    let out = prune(&["prune-cli:"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(lossy_text(&out.stderr).contains("--keep-daily"));
    let out = prune(&["--keep-last", "1", "no-such-alias:"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!lossy_text(&out.stderr).contains("URI:"));
}

#[test]
fn prune_jobs_come_from_configuration_through_the_registry() {
    let grid = shared_grid();
    let tmp = tempfile::tempdir().unwrap();
    let p = prepare(grid, "prune-job", &tmp.path().join("src"));
    let config = tahoe_jobs_config::load(&tahoe_jobs_config::LoadOptions {
        node_dir: grid.node_dir().to_path_buf(),
        config_file: None,
        overrides: vec![
            ("prune.p1.target".into(), "prune-job:".into()),
            ("prune.p1.keep_weekly".into(), "3".into()),
            ("prune.p1.keep_yearly".into(), "3".into()),
            ("jobs.timezone".into(), "Europe/Berlin".into()),
        ],
        read_env: false,
        task_types: tahoe_jobs_tasks::schemas(),
    })
    .expect("configuration");
    let job = config.job("prune.p1").expect("the prune job");
    let mut registry = tahoe_jobs_engine::Registry::new();
    tahoe_jobs_tasks::register(&mut registry, grid.node_dir());
    let mut task = registry.build(job).expect("a prune task");
    let db = tahoe_jobs_tasks::sled::Config::new()
        .temporary(true)
        .open()
        .unwrap();
    // As the engine builds it: the configured time zone.
    let ctx = TaskContext::standalone(job.id(), db.open_tree(job.id()).unwrap())
        .with_timezone(config.daemon.timezone.clone());
    let rt = runtime();
    assert_eq!(
        rt.block_on(task.run(&ctx)).unwrap(),
        tahoe_jobs_engine::Outcome::Completed
    );
    // The second table of the first test, through the daemon's path.
    assert_eq!(
        rt.block_on(archive_names(&p)),
        expected(&[
            NAMES[0],
            NAMES[3],
            NAMES[4],
            NAMES[6],
            NAMES[13],
            LATEST_ARCHIVE
        ])
    );
    assert_eq!(ctx.progress().get("removed"), 8);
    // The entries that are not archives were warned about once each, and not again.
    let warned = |ctx: &TaskContext| ctx.progress().snapshot().warnings.len();
    assert_eq!(warned(&ctx), OTHERS.len());
    let again = TaskContext::standalone(job.id(), db.open_tree(job.id()).unwrap());
    let mut task = registry.build(job).expect("a prune task");
    assert_eq!(
        rt.block_on(task.run(&again)).unwrap(),
        tahoe_jobs_engine::Outcome::Completed
    );
    assert_eq!(warned(&again), 0);
}

#[test]
fn tahoe_jobs_config_names_file_line_and_a_suggestion_for_a_prune_typo() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("tahoe-jobs.cfg"),
        "[prune]\np1.target = backup:pictures\np1.keep_daily = 7\np1.keep_wekly = 5\n",
    )
    .unwrap();
    let out = tahoe_jobs_command()
        .arg("-d")
        .arg(tmp.path())
        .arg("config")
        .output()
        .unwrap();
    let stderr = lossy_text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tahoe-jobs.cfg line 4")
            && stderr.contains("prune.p1.keep_wekly")
            && stderr.contains("did you mean keep_weekly?"),
        "{stderr}"
    );
    // Fixed, it shows every prune key with its source.
    std::fs::write(
        tmp.path().join("tahoe-jobs.cfg"),
        "[prune]\np1.target = backup:pictures\np1.keep_daily = 7\np1.keep_weekly = 5\n",
    )
    .unwrap();
    let out = tahoe_jobs_command()
        .arg("-d")
        .arg(tmp.path())
        .arg("config")
        .output()
        .unwrap();
    let stdout = lossy_text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", lossy_text(&out.stderr));
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} not in {stdout}"))
            .to_string()
    };
    assert!(line("prune.p1.keep_weekly ").contains("tahoe-jobs.cfg line 4"));
    assert!(line("prune.p1.keep_within ").contains("built-in default"));
}

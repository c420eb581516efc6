//! `tahoe-jobs backup --data-path direct` on a real grid: files and immutable directories go
//! straight to the storage server (the node's own uploader counts none of them), stock
//! `tahoe cp -r` restores the tree byte for byte, and a `tahoe backup` of the same tree
//! afterwards lands on the same file caps (convergence: the servers already hold every share).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tahoe_jobs_engine::{
    BudgetGate, BudgetHandle, ByteRequest, StopReason, StopSignal, TaskContext,
};
use tahoe_jobs_tasks::backup::{open_backupdb, run_backup, BackupOptions, RunEnd};

use crate::support::backup_run::{backup_params, task_context};
use crate::support::files::{assert_same_tree, seeded_bytes, tree_of, write_file};
use crate::support::node::{latest_cap, ls_json, node_counter, restore};
use crate::support::process::runtime;
use crate::support::process::{lossy_text, os, tahoe_jobs_command, wait_for_the_next_second};
use crate::support::shares::stored_share_bytes;
use crate::support::{shared_grid, Grid, GridSpec};

fn sample_tree(root: &Path) {
    write_file(&root.join("top.txt"), b"top level\n");
    write_file(&root.join("empty-file"), b"");
    write_file(&root.join("docs/ünïcode ✓.txt"), &seeded_bytes(101, 3000));
    write_file(&root.join("docs/a b/c.bin"), &seeded_bytes(102, 70_000));
    write_file(&root.join("docs/a b/deeper/d.txt"), b"deep\n");
    write_file(
        &root.join("big.bin"),
        &seeded_bytes(103, 2 * 1024 * 1024 + 17),
    );
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
}

/// Path -> read cap of every file below `dir` (`alias:path`). Holds caps: never print it.
fn file_caps(grid: &Grid, dir: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let listing = ls_json(grid, dir);
    let children = listing[1]["children"].as_object().expect("a directory");
    for (name, child) in children {
        let path = format!("{dir}/{name}");
        if child[0] == "dirnode" {
            for (p, cap) in file_caps(grid, &path) {
                out.insert(p.replacen(dir, "", 1), cap);
            }
        } else {
            let cap = child[1]["ro_uri"].as_str().expect("ro_uri").to_string();
            out.insert(format!("/{name}"), cap);
        }
    }
    out
}

#[test]
fn direct_backup_restores_and_converges_with_tahoe_backup() {
    let grid = Grid::start(GridSpec::ONE_OF_ONE);
    grid.create_alias("bd");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let target = "bd:home";

    let through_node = node_counter(&grid, "uploader.files_uploaded");
    let out = tahoe_jobs_command()
        .arg("-d")
        .arg(grid.node_dir())
        .args([os("backup"), os("--data-path"), os("direct")])
        .args([src.as_os_str(), os(target)])
        .output()
        .expect("cannot run tahoe-jobs");
    let (stdout, stderr) = (lossy_text(&out.stdout), lossy_text(&out.stderr));
    assert!(out.status.success(), "tahoe-jobs backup failed: {stderr}");
    assert!(
        stdout.contains(" 6 files uploaded (0 reused), 0 files skipped, 5 directories created"),
        "{stdout}"
    );
    assert!(!stdout.contains("URI:") && !stderr.contains("URI:"));
    assert!(
        !stderr.contains("through the node"),
        "the direct path fell back: {stderr}"
    );
    // Neither the files nor the immutable directories went through the node's uploader (it
    // counts both); only the mutable directories were linked through it.
    assert_eq!(
        node_counter(&grid, "uploader.files_uploaded"),
        through_node,
        "the node uploaded something"
    );
    assert_same_tree(&restore(&grid, target, tmp.path()), &tree_of(&src));
    let ours = file_caps(&grid, &format!("{target}/Latest"));
    assert_eq!(ours.len(), 6);

    // Stock `tahoe backup` of the same tree (Archives names are per second) makes the same
    // caps: every file it uploads converges on the shares already there.
    wait_for_the_next_second();
    let out = grid.tahoe([os("backup"), src.as_os_str(), os(target)]);
    assert!(
        out.status.success(),
        "tahoe backup: {}",
        lossy_text(&out.stderr)
    );
    let theirs = file_caps(&grid, &format!("{target}/Latest"));
    assert!(
        ours == theirs,
        "tahoe backup's file caps differ from the direct upload's for {:?}",
        ours.keys()
            .filter(|k| ours.get(*k) != theirs.get(*k))
            .collect::<Vec<_>>()
    );
    assert_same_tree(&restore(&grid, target, tmp.path()), &tree_of(&src));
}

type GateFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// A budget that admits `admit` requests (recording them), then says so on `held` and holds
/// every later request until the run is stopped.
struct Holding {
    admit: usize,
    admitted: Mutex<Vec<ByteRequest>>,
    held: Mutex<Option<mpsc::Sender<()>>>,
}

// Written out as `#[async_trait]` expands it (this crate does not depend on async-trait).
impl BudgetGate for Holding {
    fn acquire<'a, 'b, 'c>(&'a self, _job: &'b str, request: ByteRequest) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        let mut admitted = self.admitted.lock().unwrap();
        if admitted.len() < self.admit {
            admitted.push(request);
            return Box::pin(async {});
        }
        if let Some(held) = self.held.lock().unwrap().take() {
            let _ = held.send(());
        }
        Box::pin(std::future::pending())
    }

    fn cpu_checkpoint<'a, 'b, 'c>(&'a self, _job: &'b str) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async {})
    }
}

/// A stop while a large file's direct upload waits for the budget ends the run at once with
/// nothing recorded for the file and its shares left unfinished on the server; the next run
/// uploads the file again, claims those shares and sends only what they lack: every request
/// of both runs is one share write to the one server, and together they add up to the share
/// (plus one header rewrite to claim it) and the new directory.
#[test]
fn a_direct_backup_stopped_mid_file_sends_only_the_rest_next_time() {
    let grid = shared_grid();
    let alias = format!("bdstop{}", std::process::id());
    grid.create_alias(&alias);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // Five segments of 1 MiB (1-of-1: one block per segment, one write each).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    write_file(
        &src.join("big.bin"),
        &seeded_bytes(nanos, 4 * 1024 * 1024 + 5),
    );
    let mut params = backup_params(&src, &alias, "b", 2);
    params.data_path = tahoe_jobs_tasks::DataPath::Direct;
    let db_dir = tmp.path().join("db");
    let server = grid.server_id(0).to_string();
    let context = |gate: Arc<Holding>, stop: StopSignal| {
        let store = open_backupdb(&db_dir, &params.target).unwrap();
        task_context(
            "backup.stop",
            store,
            stop,
            BudgetHandle::new("backup.stop", gate),
        )
    };
    let run = |ctx: TaskContext| {
        let end = runtime().block_on(run_backup(
            grid.node_dir(),
            &params,
            &BackupOptions::default(),
            &ctx,
        ));
        (end.expect("the run fails"), ctx)
    };

    // Run 1: header and blocks 0 and 1 go; the wait for block 2 is cut short by a stop, once
    // blocks 0 and 1 have landed (their answers counted in the progress: the writes of later
    // segments may be under way while earlier ones travel, and a stop cuts those off).
    let (held_tx, held_rx) = mpsc::channel();
    let first = Arc::new(Holding {
        admit: 2,
        admitted: Mutex::new(Vec::new()),
        held: Mutex::new(Some(held_tx)),
    });
    let stop = StopSignal::new();
    let ctx = context(first.clone(), stop.clone());
    let run_over = Arc::new(AtomicBool::new(false));
    let stopper = {
        let (ctx, run_over) = (ctx.clone(), run_over.clone());
        std::thread::spawn(move || {
            held_rx
                .recv()
                .expect("the upload never waited for the budget");
            while ctx.progress().get("bytes_uploaded") < 2 * 1024 * 1024 {
                assert!(
                    !run_over.load(Ordering::SeqCst),
                    "the run ended before blocks 0 and 1 landed"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            stop.stop(StopReason::Paused);
        })
    };
    let (end, ctx) = run(ctx);
    run_over.store(true, Ordering::SeqCst);
    // A run that never waited leaves the stopper waiting: let it fail instead of hanging.
    drop(first.held.lock().unwrap().take());
    stopper
        .join()
        .expect("the upload never waited for the budget, or ended before blocks 0 and 1 landed");
    let RunEnd::Stopped(summary) = end else {
        panic!("the stopped run ended as {end:?}");
    };
    assert_eq!(summary.files_uploaded, 0);
    // Progress counted the two segments that went, not the file.
    assert_eq!(ctx.progress().get("bytes_uploaded"), 2 * 1024 * 1024);
    drop(ctx); // and with it the backupdb, which the next run opens
    let admitted = first.admitted.lock().unwrap().clone();
    for r in &admitted {
        assert_eq!(r.destinations, vec![(server.clone(), r.bytes)], "{r:?}");
        assert!(r.direct, "{r:?}");
    }
    let sent_first: u64 = admitted.iter().map(|r| r.bytes).sum();
    assert!(
        latest_cap(grid, &format!("{alias}:b")).is_none(),
        "nothing is linked"
    );

    // Run 2: the file is not in the backupdb, so it is uploaded, continuing the share.
    let second = Arc::new(Holding {
        admit: usize::MAX,
        admitted: Mutex::new(Vec::new()),
        held: Mutex::new(None),
    });
    let (end, _) = run(context(second.clone(), StopSignal::new()));
    let RunEnd::Completed(summary) = end else {
        panic!("the second run ended as {end:?}");
    };
    assert_eq!((summary.files_uploaded, summary.files_reused), (1, 0));
    let admitted = second.admitted.lock().unwrap().clone();
    assert!(admitted
        .iter()
        .all(|r| r.direct && r.destinations == vec![(server.clone(), r.bytes)]));
    let claim = admitted[0].bytes;
    assert!(
        claim < 100,
        "the first write claims the share with its header: {claim}"
    );
    let sent_second: u64 = admitted.iter().map(|r| r.bytes).sum();
    let latest = latest_cap(grid, &format!("{alias}:b")).expect("Latest is linked");
    let listing = ls_json(grid, &format!("{alias}:b/Latest"));
    let file_cap = listing[1]["children"]["big.bin"][1]["ro_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = |cap: &str| stored_share_bytes(grid, cap)[&server];
    assert_eq!(
        sent_second,
        stored(&file_cap) - sent_first + claim + stored(&latest),
        "the second run sent more than what the first left missing (and the directory)"
    );
}

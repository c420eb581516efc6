//! The check task and `tahoe-jobs check` on real grids: a stopped storage node (unhealthy but
//! recoverable, then repaired onto a replacement, then rebalanced), deleted and corrupt share
//! files (found by verify, repaired), a pass stopped and resumed without checking anything twice
//! (counted by the node's own storage statistics), lease renewal read from the share files, and
//! the `check` type built from configuration through the registry.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tahoe_jobs_config::Target;
use tahoe_jobs_engine::{
    BudgetGate, BudgetHandle, ByteRequest, Direction, Outcome, StopReason, StopSignal, Task,
    TaskContext,
};
use tahoe_jobs_tasks::check::record::ObjectKind;
use tahoe_jobs_tasks::check::CheckParams;
use tahoe_jobs_tasks::check::{
    counter, run_check, CheckDb, CheckOptions, CheckSummary, CheckTask, ObjectRecord, PassEnd,
    Rebalance,
};

use crate::support::backup_run::task_context;
use crate::support::files::{seeded_bytes, write_file};
use crate::support::node::node_counter;
use crate::support::process::{lossy_text, runtime, tahoe_jobs_command, wait_for_the_next_second};
use crate::support::{shared_grid, Grid, GridSpec};

/// 2-of-3 on three storage nodes, happy 3: one server down leaves every file recoverable but
/// unhealthy, and any two servers are too few to be balanced.
const TWO_OF_THREE: GridSpec = GridSpec {
    storage_nodes: 3,
    needed: 2,
    happy: 3,
    total: 3,
};

/// The two tests with three storage nodes take turns: each runs four nodes and stops and
/// starts them, which is enough load for two shared cores.
fn three_node_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Uploads the local directory `dir` below `alias:` with stock `tahoe cp -r`.
fn upload(grid: &Grid, dir: &Path, alias: &str) {
    let out = grid.tahoe([
        OsStr::new("cp"),
        OsStr::new("-r"),
        dir.as_os_str(),
        OsStr::new(&format!("{alias}:")),
    ]);
    assert!(
        out.status.success(),
        "tahoe cp -r: {}",
        lossy_text(&out.stderr)
    );
}

fn params(alias: &str, verify: bool, repair: bool, add_lease: bool) -> CheckParams {
    CheckParams {
        target: Target::Alias {
            alias: alias.into(),
            path: String::new(),
        },
        verify,
        repair,
        add_lease,
        recheck_after: Duration::ZERO,
        data_path: tahoe_jobs_tasks::DataPath::Node,
    }
}

fn open_tree(dir: &Path) -> tahoe_jobs_tasks::sled::Tree {
    let db = tahoe_jobs_tasks::sled::Config::new()
        .path(dir)
        .open()
        .unwrap();
    db.open_tree("check").unwrap()
}

/// A budget gate that records what it is asked for and, optionally, fires a stop signal at a
/// given CPU checkpoint (the run passes one before each object).
#[derive(Default)]
struct Gate {
    checkpoints: AtomicUsize,
    stop_at: Option<(usize, StopSignal)>,
    requests: Mutex<Vec<ByteRequest>>,
}

impl Gate {
    fn requests(&self) -> MutexGuard<'_, Vec<ByteRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes(&self, direction: Direction) -> u64 {
        self.requests()
            .iter()
            .filter(|r| r.direction == direction)
            .map(|r| r.bytes)
            .sum()
    }
}

type GateFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

// Written out as `#[async_trait]` expands it (this crate does not depend on async-trait).
impl BudgetGate for Gate {
    fn acquire<'a, 'b, 'c>(&'a self, _job: &'b str, request: ByteRequest) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.requests().push(request);
        Box::pin(async {})
    }

    fn cpu_checkpoint<'a, 'b, 'c>(&'a self, _job: &'b str) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        let n = self.checkpoints.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((at, stop)) = &self.stop_at {
            if n == *at {
                stop.stop(StopReason::WindowClosed);
            }
        }
        Box::pin(async {})
    }
}

fn context(tree: &tahoe_jobs_tasks::sled::Tree, stop: StopSignal, gate: Arc<Gate>) -> TaskContext {
    task_context(
        "check.test",
        tree.clone(),
        stop,
        BudgetHandle::new("check.test", gate),
    )
}

/// Runs one whole pass and returns its counts and the gate it used.
fn pass(
    grid: &Grid,
    tree: &tahoe_jobs_tasks::sled::Tree,
    p: &CheckParams,
) -> (CheckSummary, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let ctx = context(tree, StopSignal::new(), gate.clone());
    let end = runtime()
        .block_on(run_check(
            grid.node_dir(),
            p,
            &CheckOptions::default(),
            &ctx,
        ))
        .expect("check pass");
    // The run says which way it checked (every server of these grids speaks HTTPS).
    let used = ctx.progress().snapshot().labels["data_path"].clone();
    let expected = match p.data_path {
        tahoe_jobs_tasks::DataPath::Node => "node",
        tahoe_jobs_tasks::DataPath::Direct if p.verify => "node (fallback: verify = true",
        tahoe_jobs_tasks::DataPath::Direct => "direct",
    };
    assert!(used.starts_with(expected), "data path {used:?} for {p:?}");
    match end {
        PassEnd::Completed(s) => {
            assert_eq!(
                ctx.progress().get(counter::OBJECTS_CHECKED),
                s.objects_checked
            );
            (s, gate)
        }
        PassEnd::Stopped(_) => panic!("an unstopped pass stopped"),
    }
}

/// The latest record of every object, by path below the target.
fn records(tree: &tahoe_jobs_tasks::sled::Tree) -> BTreeMap<String, ObjectRecord> {
    CheckDb::new(tree.clone())
        .records()
        .map(|r| {
            let (_, rec) = r.expect("readable record");
            (rec.path.clone(), rec)
        })
        .collect()
}

/// Records of immutable files (what rebalancing can act on), by path.
fn files(tree: &tahoe_jobs_tasks::sled::Tree) -> BTreeMap<String, ObjectRecord> {
    records(tree)
        .into_iter()
        .filter(|(_, r)| r.kind == ObjectKind::File)
        .collect()
}

fn tahoe_jobs(grid: &Grid, args: &[&str]) -> Output {
    // The one-shot command keeps its traversal in the node directory, one run at a time.
    static LOCK: Mutex<()> = Mutex::new(());
    let _turn = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tahoe_jobs_command()
        .arg("-d")
        .arg(grid.node_dir())
        .arg("check")
        .args(args)
        .output()
        .expect("cannot run tahoe-jobs")
}

/// The `done: ...` line of a deep-check-like output.
fn done_line(out: &Output) -> String {
    lossy_text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("done:"))
        .unwrap_or_else(|| {
            panic!(
                "no done line in: {}{}",
                lossy_text(&out.stdout),
                lossy_text(&out.stderr)
            )
        })
        .to_string()
}

/// Where storage node `node` keeps the shares of `storage_index`.
fn share_dir(grid: &Grid, node: usize, storage_index: &str) -> PathBuf {
    grid.shares_dir(node)
        .join(&storage_index[..2])
        .join(storage_index)
}

/// The share files storage node `node` holds for `storage_index`.
fn share_files(grid: &Grid, node: usize, storage_index: &str) -> Vec<PathBuf> {
    match std::fs::read_dir(share_dir(grid, node, storage_index)) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Replaces storage node `i`'s disk by an empty one (it must be stopped).
fn wipe(grid: &Grid, i: usize) {
    assert!(!grid.is_running(i));
    let shares = grid.shares_dir(i);
    std::fs::remove_dir_all(&shares).unwrap();
    std::fs::create_dir_all(&shares).unwrap();
}

/// Three immutable files of several sizes in two directories, and one literal (inline) file.
fn sample(root: &Path) -> PathBuf {
    let data = root.join("data");
    write_file(&data.join("a.bin"), &seeded_bytes(1, 120_000));
    write_file(&data.join("b.bin"), &seeded_bytes(2, 60_000));
    write_file(&data.join("sub/c.bin"), &seeded_bytes(3, 30_000));
    write_file(&data.join("sub/tiny.txt"), b"tiny\n");
    data
}

#[test]
fn stopped_node_repair_onto_a_replacement_and_rebalance() {
    let _turn = three_node_turn();
    let grid = Grid::start(TWO_OF_THREE);
    grid.create_alias("ck");
    let tmp = tempfile::tempdir().unwrap();
    upload(&grid, &sample(tmp.path()), "ck");
    let tree = open_tree(&tmp.path().join("db"));
    let (check, repair) = (
        params("ck", false, false, false),
        params("ck", false, true, false),
    );
    // The alias root, data, data/sub, three CHK files and one LIT file.
    const OBJECTS: u64 = 7;

    let (s, _) = pass(&grid, &tree, &check);
    assert_eq!(
        (s.objects_checked, s.healthy, s.unbalanced),
        (OBJECTS, OBJECTS, 0),
        "{s:?}"
    );
    assert_eq!(s.dirs_listed, 3);
    let cli = tahoe_jobs(&grid, &["ck:"]);
    assert_eq!(cli.status.code(), Some(0), "{}", lossy_text(&cli.stderr));

    // One server down: everything with shares is unhealthy, and still recoverable.
    grid.stop_node(2);
    let (s, _) = pass(&grid, &tree, &check);
    assert_eq!(
        (s.objects_checked, s.healthy, s.unhealthy, s.unrecoverable),
        (OBJECTS, 1, OBJECTS - 1, 0),
        "{s:?}"
    );
    for (path, r) in files(&tree)
        .iter()
        .filter(|(_, r)| !r.storage_index.is_empty())
    {
        assert!(!r.found.healthy && r.found.recoverable, "{path}: {r:?}");
        assert_eq!((r.found.shares_good, r.found.good_hosts), (2, 2), "{path}");
    }
    // The one-shot command says the same as `tahoe deep-check`, and fails.
    let cli = tahoe_jobs(&grid, &["ck:"]);
    assert_eq!(cli.status.code(), Some(1), "{}", lossy_text(&cli.stderr));
    let deep = grid.tahoe(["deep-check", "ck:"]);
    assert!(deep.status.success(), "{}", lossy_text(&deep.stderr));
    assert_eq!(done_line(&cli), done_line(&deep));
    assert_eq!(
        done_line(&cli),
        "done: 7 objects checked, 1 healthy, 6 unhealthy"
    );
    assert!(lossy_text(&cli.stdout).contains("'ck:data/a.bin': not healthy"));
    assert!(
        !lossy_text(&cli.stdout).contains("URI:"),
        "no capability is printed"
    );

    // A replacement server with an empty disk; repair makes everything healthy again, and
    // whatever the repairer put on too few servers is rebalanced in the same pass.
    wipe(&grid, 2);
    grid.start_node(2);
    let (s, gate) = pass(&grid, &tree, &repair);
    assert_eq!(
        (s.unhealthy, s.repairs_attempted),
        (OBJECTS - 1, OBJECTS - 1),
        "{s:?}"
    );
    assert_eq!((s.repaired, s.still_unhealthy), (OBJECTS - 1, 0), "{s:?}");
    assert!(
        gate.bytes(Direction::Upload) > 0,
        "repairs asked the budget for their uploads"
    );
    for (path, r) in files(&tree)
        .iter()
        .filter(|(_, r)| !r.storage_index.is_empty())
    {
        assert!(r.healthy_now(), "{path}: {r:?}");
        assert_eq!(r.good_hosts_now(), 3, "{path}: {r:?}");
    }
    let cli = tahoe_jobs(&grid, &["ck:"]);
    assert_eq!(cli.status.code(), Some(0), "{}", lossy_text(&cli.stdout));
    assert_eq!(
        done_line(&cli),
        "done: 7 objects checked, 7 healthy, 0 unhealthy"
    );

    // Down again, and repaired while down: healthy, but on two servers only; rebalancing has to
    // wait for a third.
    // (Which objects need a repair here depends on where the repairer put the shares above:
    // it is happy with any placement, so an object may already hold all its shares on the two
    // servers that are up.)
    grid.stop_node(2);
    let (s, _) = pass(&grid, &tree, &repair);
    assert_eq!(s.still_unhealthy, 0, "{s:?}");
    assert_eq!(s.rebalanced, 0);
    let chk: Vec<ObjectRecord> = files(&tree)
        .into_values()
        .filter(|r| !r.storage_index.is_empty())
        .collect();
    assert_eq!(chk.len(), 3);
    for r in &chk {
        assert!(r.healthy_now() && r.unbalanced_now(), "{r:?}");
        assert!(
            matches!(&r.rebalance, Some(Rebalance::Deferred { reason }) if reason.contains("only 2 servers")),
            "{r:?}"
        );
    }

    // A replacement again: the files are healthy (all shares exist) yet unbalanced, which
    // Tahoe's repair ignores; the task has the node place them again, and says it helped.
    wipe(&grid, 2);
    grid.start_node(2);
    let (s, gate) = pass(&grid, &tree, &repair);
    assert!(s.unbalanced >= 3 && s.rebalanced >= 3, "{s:?}");
    for (path, r) in files(&tree)
        .iter()
        .filter(|(_, r)| !r.storage_index.is_empty())
    {
        assert!(r.found.healthy && r.found.good_hosts == 2, "{path}: {r:?}");
        assert_eq!(
            r.rebalance,
            Some(Rebalance::Done {
                hosts_before: 2,
                hosts_after: 3
            }),
            "{path}"
        );
        assert!(!r.unbalanced_now());
        assert!(
            share_files(&grid, 2, &r.storage_index).len() == 1,
            "{path}: a share on the new server"
        );
    }
    // Rebalancing streams each file down and up again through the budget.
    assert!(
        gate.bytes(Direction::Download) >= 210_000,
        "{:?}",
        gate.requests()
    );
    let (s, _) = pass(&grid, &tree, &check);
    assert_eq!(s.healthy, OBJECTS, "{s:?}");
}

#[test]
fn verify_finds_deleted_and_corrupt_shares_and_repair_restores_them() {
    let _turn = three_node_turn();
    let grid = Grid::start(TWO_OF_THREE);
    grid.create_alias("cv");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_file(&data.join("corrupt.bin"), &seeded_bytes(10, 100_000));
    write_file(&data.join("deleted.bin"), &seeded_bytes(11, 100_000));
    upload(&grid, &data, "cv");
    let tree = open_tree(&tmp.path().join("db"));
    let plain = params("cv", false, false, false);
    let verify = params("cv", true, false, false);
    let verify_repair = params("cv", true, true, false);

    pass(&grid, &tree, &plain);
    let si = |name: &str| files(&tree)[&format!("data/{name}")].storage_index.clone();
    let (corrupt_si, deleted_si) = (si("corrupt.bin"), si("deleted.bin"));
    let corrupt_share = share_files(&grid, 1, &corrupt_si)
        .pop()
        .expect("a share on node 1");
    let mut share = std::fs::read(&corrupt_share).unwrap();
    // Well inside the share data (a 12-byte header, then blocks), far from the leases at the end.
    for b in &mut share[4000..4100] {
        *b ^= 0xff;
    }
    std::fs::write(&corrupt_share, &share).unwrap();
    for f in share_files(&grid, 1, &deleted_si) {
        std::fs::remove_file(f).unwrap();
    }

    // Without verify only the missing share shows.
    let (s, _) = pass(&grid, &tree, &plain);
    assert_eq!((s.unhealthy, s.corrupt_shares), (1, 0), "{s:?}");
    let f = files(&tree);
    assert!(f["data/corrupt.bin"].found.healthy);
    assert!(!f["data/deleted.bin"].found.healthy);

    // Verify downloads every share (through the budget) and finds the corrupt one.
    let (s, gate) = pass(&grid, &tree, &verify);
    assert_eq!((s.unhealthy, s.corrupt_shares), (2, 1), "{s:?}");
    let f = files(&tree);
    let c = &f["data/corrupt.bin"];
    assert!(
        !c.found.healthy && c.found.recoverable && c.verified,
        "{c:?}"
    );
    assert_eq!((c.found.shares_good, c.found.corrupt_shares), (2, 1));
    assert!(
        gate.bytes(Direction::Download) >= 2 * 150_000,
        "verify asks for every share's bytes: {:?}",
        gate.requests()
    );
    let cli = tahoe_jobs(&grid, &["--verify", "cv:"]);
    assert_eq!(cli.status.code(), Some(1));
    assert!(
        lossy_text(&cli.stdout).contains("1 corrupt shares"),
        "{}",
        lossy_text(&cli.stdout)
    );

    // Repair restores the deleted share. Tahoe 1.20 cannot replace the corrupt one: the server
    // still answers that it holds that share number, so the repairer uploads nothing; the record
    // says so instead of pretending.
    let (s, _) = pass(&grid, &tree, &verify_repair);
    assert_eq!(
        (s.repairs_attempted, s.repaired, s.still_unhealthy),
        (2, 1, 1),
        "{s:?}"
    );
    let f = files(&tree);
    // The repairer may put the new share on a server that already holds one; the rebalance in
    // the same pass then puts one on the server that lost its share.
    let d = &f["data/deleted.bin"];
    assert!(d.healthy_now() && d.good_hosts_now() == 3, "{d:?}");
    assert!(!share_files(&grid, 1, &deleted_si).is_empty());
    let c = &f["data/corrupt.bin"];
    assert!(c.repair.as_ref().is_some_and(|r| !r.successful), "{c:?}");
    assert!(!c.healthy_now() && c.found.recoverable);

    // Once the server's operator removes the corrupt share (the node's verify told the server
    // about it: see its corruption advisories), repair puts a good one back.
    std::fs::remove_file(&corrupt_share).unwrap();
    let (s, _) = pass(&grid, &tree, &verify_repair);
    assert_eq!((s.repaired, s.still_unhealthy), (1, 0), "{s:?}");
    let (s, _) = pass(&grid, &tree, &verify);
    assert_eq!((s.unhealthy, s.corrupt_shares), (0, 0), "{s:?}");
}

/// `storage_server.get` of the node's own storage server: one per immutable check on a 1-of-1
/// grid (mutable directories are read with `readv`).
fn node_gets(grid: &Grid) -> u64 {
    node_counter(grid, "storage_server.get")
}

#[test]
fn a_stopped_pass_resumes_without_checking_anything_twice() {
    // A grid of its own: its node's statistics count only this test's requests.
    let grid = Grid::start(GridSpec::ONE_OF_ONE);
    grid.create_alias("cr");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for i in 0..12 {
        write_file(
            &data.join(format!("d{}/f{i}", i % 3)),
            &seeded_bytes(20 + i, 2_000),
        );
    }
    upload(&grid, &data, "cr");
    // The alias root, data, three subdirectories, twelve files.
    const OBJECTS: u64 = 17;
    let tree = open_tree(&tmp.path().join("db"));
    let p = params("cr", false, false, false);
    let rt = runtime();
    let gets = node_gets(&grid);
    // One object at a time, so that a stop between objects leaves nothing in flight and the
    // node's count is exact.
    let one = CheckOptions {
        concurrency: Some(1),
        ..CheckOptions::default()
    };

    // Stopped at the 8th object: 7 are done.
    let stop = StopSignal::new();
    let gate = Arc::new(Gate {
        stop_at: Some((8, stop.clone())),
        ..Gate::default()
    });
    let ctx = context(&tree, stop, gate);
    let mut task = CheckTask::new(grid.node_dir(), p.clone(), one.clone());
    assert_eq!(rt.block_on(task.run(&ctx)).unwrap(), Outcome::StoppedEarly);
    let first = ctx.progress().get(counter::OBJECTS_CHECKED);
    assert_eq!(first, 7);
    let files_first = files(&tree).len() as u64;
    assert_eq!(
        node_gets(&grid) - gets,
        files_first,
        "one check per file so far"
    );

    // Resumed: the rest, and the pass's counts include the first run's.
    let ctx = context(&tree, StopSignal::new(), Arc::new(Gate::default()));
    let mut task = CheckTask::new(grid.node_dir(), p.clone(), one.clone());
    assert_eq!(rt.block_on(task.run(&ctx)).unwrap(), Outcome::Completed);
    assert_eq!(ctx.progress().get(counter::OBJECTS_CHECKED), OBJECTS);
    assert_eq!(ctx.progress().get(counter::HEALTHY), OBJECTS);
    let all = records(&tree);
    assert_eq!(all.len() as u64, OBJECTS);
    assert!(all.values().all(|r| r.pass == 1));
    assert_eq!(files(&tree).len(), 12);
    assert_eq!(
        node_gets(&grid) - gets,
        12,
        "each file checked exactly once over both runs"
    );

    // A new pass with recheck_after: everything was fine an instant ago, so nothing is checked,
    // but the tree is still walked.
    let recent = CheckParams {
        recheck_after: Duration::from_secs(3600),
        ..p.clone()
    };
    let gets = node_gets(&grid);
    let ctx = context(&tree, StopSignal::new(), Arc::new(Gate::default()));
    let mut task = CheckTask::new(grid.node_dir(), recent, one.clone());
    assert_eq!(rt.block_on(task.run(&ctx)).unwrap(), Outcome::Completed);
    let progress = ctx.progress();
    assert_eq!(progress.get(counter::SKIPPED_RECENT), OBJECTS);
    assert_eq!(progress.get(counter::OBJECTS_CHECKED), 0);
    assert_eq!(progress.get(counter::DIRS_LISTED), 5);
    assert_eq!(node_gets(&grid), gets);
    assert!(records(&tree).values().all(|r| r.pass == 1));

    // Four at a time, stopped early and resumed, on a fresh record: the same counts; the node
    // may also have seen the checks that were in flight at the stop (at most three).
    let tree = open_tree(&tmp.path().join("db4"));
    let gets = node_gets(&grid);
    let stop = StopSignal::new();
    let gate = Arc::new(Gate {
        stop_at: Some((8, stop.clone())),
        ..Gate::default()
    });
    let four = CheckOptions {
        concurrency: Some(4),
        ..CheckOptions::default()
    };
    let ctx = context(&tree, stop, gate);
    let mut task = CheckTask::new(grid.node_dir(), p.clone(), four.clone());
    assert_eq!(rt.block_on(task.run(&ctx)).unwrap(), Outcome::StoppedEarly);
    assert!(ctx.progress().get(counter::OBJECTS_CHECKED) < OBJECTS);
    let ctx = context(&tree, StopSignal::new(), Arc::new(Gate::default()));
    let mut task = CheckTask::new(grid.node_dir(), p, four);
    assert_eq!(rt.block_on(task.run(&ctx)).unwrap(), Outcome::Completed);
    assert_eq!(ctx.progress().get(counter::OBJECTS_CHECKED), OBJECTS);
    assert_eq!(ctx.progress().get(counter::DIRS_LISTED), 5);
    assert_eq!(records(&tree).len() as u64, OBJECTS);
    let seen = node_gets(&grid) - gets;
    assert!(
        (12..=15).contains(&seen),
        "the node saw {seen} checks of 12 files"
    );
}

/// The expiry times (Unix seconds) of the leases in an immutable share file: a 12-byte header
/// (version, unused, lease count), the share data, then 72-byte leases (owner, renew secret,
/// cancel secret, expiry), all big-endian (allmydata/storage/immutable.py).
fn lease_expiries(share: &Path) -> Vec<u32> {
    let data = std::fs::read(share).unwrap();
    let count = u32::from_be_bytes(data[8..12].try_into().unwrap()) as usize;
    let start = data.len() - 72 * count;
    (0..count)
        .map(|i| {
            let lease = &data[start + 72 * i..start + 72 * (i + 1)];
            u32::from_be_bytes(lease[68..72].try_into().unwrap())
        })
        .collect()
}

#[test]
fn add_lease_renews_the_leases_on_the_servers() {
    let grid = shared_grid();
    grid.create_alias("cl");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("leased");
    write_file(&data.join("f.bin"), &seeded_bytes(30, 50_000));
    upload(grid, &data, "cl");
    let tree = open_tree(&tmp.path().join("db"));
    let no_lease = params("cl", false, false, false);

    pass(grid, &tree, &no_lease);
    let si = files(&tree)["leased/f.bin"].storage_index.clone();
    let share = share_files(grid, 0, &si)
        .pop()
        .expect("the share on the only server");
    let before = lease_expiries(&share);
    assert_eq!(before.len(), 1, "the upload's lease");

    // Lease times have one-second resolution: a renewal from now on would change the expiry.
    wait_for_the_next_second();
    pass(grid, &tree, &no_lease);
    assert_eq!(
        lease_expiries(&share),
        before,
        "a check without add_lease leaves leases alone"
    );

    // The direct path renews at the storage server with the secrets the node derives.
    let direct = CheckParams {
        data_path: tahoe_jobs_tasks::DataPath::Direct,
        ..params("cl", false, false, true)
    };
    let (s, _) = pass(grid, &tree, &direct);
    assert_eq!(s.healthy, s.objects_checked);
    assert!(files(&tree)["leased/f.bin"].lease_added);
    let after = lease_expiries(&share);
    assert_eq!(
        after.len(),
        1,
        "this node's lease is renewed, not added again"
    );
    // The upload's lease was set at least a second before (wait_for_the_next_second above).
    assert!(
        after[0] > before[0],
        "expiry moved from {} to {}",
        before[0],
        after[0]
    );

    // And the node's own add-lease renews that same lease.
    let (s, _) = pass(grid, &tree, &params("cl", false, false, true));
    assert_eq!(s.healthy, s.objects_checked);
    assert_eq!(lease_expiries(&share).len(), 1);
}

#[test]
fn check_jobs_come_from_configuration_through_the_registry() {
    let grid = shared_grid();
    grid.create_alias("cj");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cfgdata");
    write_file(&data.join("x.bin"), &seeded_bytes(40, 5_000));
    upload(grid, &data, "cj");
    let config = tahoe_jobs_config::load(&tahoe_jobs_config::LoadOptions {
        node_dir: grid.node_dir().to_path_buf(),
        config_file: None,
        overrides: vec![
            ("check.c1.target".into(), "cj:".into()),
            ("check.c1.verify".into(), "true".into()),
        ],
        read_env: false,
        task_types: tahoe_jobs_tasks::schemas(),
    })
    .expect("configuration");
    let job = config.job("check.c1").expect("the check job");
    let mut registry = tahoe_jobs_engine::Registry::new();
    tahoe_jobs_tasks::register(&mut registry, grid.node_dir());
    assert!(registry.contains("check"));
    let mut task = registry.build(job).expect("a check task");
    let tree = open_tree(&tmp.path().join("db"));
    let ctx = TaskContext::standalone(job.id(), tree.clone());
    assert_eq!(
        runtime().block_on(task.run(&ctx)).unwrap(),
        Outcome::Completed
    );
    // The alias root, cfgdata, x.bin.
    assert_eq!(ctx.progress().get(counter::OBJECTS_CHECKED), 3);
    assert!(records(&tree).values().all(|r| r.verified && r.lease_added));
}

/// `check -v` quotes every path as `backup -v` does, so a newline in a name cannot split a
/// line of its output (or forge one).
#[test]
fn verbose_output_quotes_paths() {
    let grid = shared_grid();
    grid.create_alias("cq");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("quoted");
    write_file(&data.join("new\nline.bin"), &seeded_bytes(41, 5_000));
    write_file(&data.join("plain.txt"), b"tiny\n");
    upload(grid, &data, "cq");
    for data_path in ["direct", "node"] {
        let out = tahoe_jobs(grid, &["-v", "--data-path", data_path, "cq:"]);
        let stdout = lossy_text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", lossy_text(&out.stderr));
        for line in [
            "'cq:quoted/new\\x0aline.bin': healthy: ",
            "'cq:quoted/plain.txt': healthy (LIT)",
        ] {
            assert!(
                stdout.lines().any(|l| l.starts_with(line)),
                "{data_path}: missing line {line:?} in:\n{stdout}"
            );
        }
        assert!(
            !stdout.lines().any(|l| l.starts_with("line.bin")),
            "{data_path}: a name was split across lines:\n{stdout}"
        );
    }
}

/// Output lines about objects, sorted (objects finish in any order when several are in flight).
fn object_lines(out: &Output) -> Vec<String> {
    let mut lines: Vec<String> = lossy_text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("'dp:"))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The direct data path (share listings at the storage servers) against the node's checker on
/// a 2-of-3 grid where one file lost a share, one server holds an extra share of another file,
/// and then a server is stopped: the same findings for every object, the same output as the
/// node path and the same `done:` line as `tahoe deep-check`.
#[test]
fn direct_checks_equal_the_nodes_with_deleted_extra_and_stopped_shares() {
    let _turn = three_node_turn();
    let grid = Grid::start(TWO_OF_THREE);
    grid.create_alias("dp");
    let tmp = tempfile::tempdir().unwrap();
    upload(&grid, &sample(tmp.path()), "dp");
    let node = params("dp", false, false, false);
    let direct = CheckParams {
        data_path: tahoe_jobs_tasks::DataPath::Direct,
        ..node.clone()
    };
    let first_tree = open_tree(&tmp.path().join("first"));
    let (s, _) = pass(&grid, &first_tree, &node);
    assert_eq!(s.healthy, 7, "{s:?}");
    let first = files(&first_tree);
    let sis: Vec<String> = first
        .values()
        .filter(|r| !r.storage_index.is_empty())
        .map(|r| r.storage_index.clone())
        .collect();
    assert_eq!(sis.len(), 3);

    // One share of the first file is lost; the second file gets an extra copy of a share on a
    // server that already holds one of its shares.
    let lost = share_files(&grid, 0, &sis[0]);
    std::fs::remove_file(&lost[0]).unwrap();
    let extra = share_files(&grid, 2, &sis[1]);
    let on_1 = share_dir(&grid, 1, &sis[1]);
    assert!(!share_files(&grid, 1, &sis[1]).is_empty());
    std::fs::copy(&extra[0], on_1.join(extra[0].file_name().unwrap())).unwrap();

    let compare = |label: &str, round: &str| {
        let (node_tree, direct_tree) = (
            open_tree(&tmp.path().join(format!("{round}-node"))),
            open_tree(&tmp.path().join(format!("{round}-direct"))),
        );
        let (by_node, _) = pass(&grid, &node_tree, &node);
        let (by_direct, _) = pass(&grid, &direct_tree, &direct);
        assert_eq!(by_node, by_direct, "{label}: counts");
        let found = |tree| -> BTreeMap<String, _> {
            files(&tree)
                .into_iter()
                .map(|(path, r)| (path, (r.storage_index, r.found)))
                .collect()
        };
        assert_eq!(found(node_tree), found(direct_tree), "{label}: findings");

        let cli_direct = tahoe_jobs(&grid, &["-v", "--data-path", "direct", "dp:"]);
        let cli_node = tahoe_jobs(&grid, &["-v", "--data-path", "node", "dp:"]);
        let deep = grid.tahoe(["deep-check", "dp:"]);
        assert!(deep.status.success(), "{}", lossy_text(&deep.stderr));
        assert_eq!(done_line(&cli_direct), done_line(&deep), "{label}");
        assert_eq!(
            object_lines(&cli_direct),
            object_lines(&cli_node),
            "{label}"
        );
        assert_eq!(cli_direct.status.code(), cli_node.status.code(), "{label}");
        (done_line(&cli_direct), lossy_text(&cli_direct.stderr))
    };

    let (done, stderr) = compare("a lost share and an extra one", "one");
    assert_eq!(done, "done: 7 objects checked, 6 healthy, 1 unhealthy");
    assert!(!stderr.contains("WARNING"), "{stderr}");

    // A stopped server holds no shares as far as the check can tell, and is named once.
    grid.stop_node(2);
    let (done, stderr) = compare("a server stopped", "two");
    assert_ne!(done, "done: 7 objects checked, 6 healthy, 1 unhealthy");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("WARNING"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("unreachable"), "{stderr}");
    assert!(warnings[0].contains(&grid.server_id(2)[3..11]), "{stderr}");
    assert!(!stderr.contains("URI:"), "{stderr}");
}

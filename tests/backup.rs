//! The backup task and `tahoe-jobs backup` on a real grid: restores with stock `tahoe cp -r`
//! compared byte for byte, turns with `tahoe backup` on one target, upload counts from the
//! node's own statistics, stop and resume, excludes, odd files, and an unplugged source.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tahoe_jobs_config::Target;
use tahoe_jobs_engine::{BudgetHandle, ByteRequest, Outcome, StopReason, StopSignal, Task};
use tahoe_jobs_tasks::backup::{
    counter, open_backupdb, run_backup, BackupOptions, BackupTask, RunEnd,
};

use crate::support::backup_run::{backup_params, task_context, Hook};
use crate::support::files::{assert_same_tree, seeded_bytes, tree_of, write_file};
use crate::support::node::{latest_cap, node_counter, restore};
use crate::support::process::{
    describe_output, lossy_text, os, runtime, tahoe_jobs_command, wait_for_the_next_second,
};
use crate::support::{shared_grid, Grid, GridSpec};

/// The one-shot command keeps its backupdb in the node directory, and sled allows one process
/// at a time there: CLI runs against the shared grid take turns.
fn oneshot_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `tahoe-jobs -d NODEDIR backup ARGS...`; with `as_plain_root`, root runs it without the
/// capabilities that let root read any file (setpriv), so a mode-000 file is unreadable as it
/// is for any other user.
fn cli_backup(grid: &Grid, args: &[&OsStr], as_plain_root: bool) -> Output {
    let _turn = oneshot_lock();
    let mut cmd = if as_plain_root && running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set", "-dac_override,-dac_read_search"])
            .arg(env!("CARGO_BIN_EXE_tahoe-jobs"));
        c
    } else {
        tahoe_jobs_command()
    };
    cmd.arg("-d").arg(grid.node_dir()).arg("backup").args(args);
    cmd.output().expect("cannot run tahoe-jobs")
}

fn running_as_root() -> bool {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .expect("cannot run id -u");
    lossy_text(&out.stdout).trim() == "0"
}

/// Panics with the command's stderr unless it exited with `code`. Only stderr is shown: our
/// stdout holds no caps either, but `tahoe` output may.
fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: {}",
        describe_output(out)
    );
}

/// The node's count of immutable uploads (files and immutable directories alike).
fn node_uploads(grid: &Grid) -> u64 {
    node_counter(grid, "uploader.files_uploaded")
}

fn archive_count(grid: &Grid, target: &str) -> usize {
    let out = grid.tahoe(["ls", &format!("{target}/Archives")]);
    assert!(
        out.status.success(),
        "tahoe ls Archives: {}",
        lossy_text(&out.stderr)
    );
    lossy_text(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// A tree with nested and empty directories, an empty file, a file of several chunks, and
/// names with spaces and non-ASCII letters.
fn sample_tree(root: &Path) {
    write_file(&root.join("top.txt"), b"top level\n");
    write_file(&root.join("empty-file"), b"");
    write_file(&root.join("docs/ünïcode ✓.txt"), &seeded_bytes(1, 3000));
    write_file(&root.join("docs/a b/c.bin"), &seeded_bytes(2, 70_000));
    write_file(&root.join("docs/a b/deeper/d.txt"), b"deep\n");
    write_file(&root.join("big.bin"), &seeded_bytes(3, 1_300_000));
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
}

#[test]
fn restores_byte_identical_and_alternates_with_tahoe_backup() {
    let grid = shared_grid();
    grid.create_alias("bk_restore");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let target = "bk_restore:home";

    let out = cli_backup(grid, &[src.as_os_str(), os(target)], false);
    assert_exit(&out, 0, "first tahoe-jobs backup");
    let stdout = lossy_text(&out.stdout);
    assert!(
        stdout.contains(
            " 6 files uploaded (0 reused), 0 files skipped, 5 directories created (0 reused), 0 directories skipped"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("URI:") && !lossy_text(&out.stderr).contains("URI:"));
    assert_same_tree(&restore(grid, target, tmp.path()), &tree_of(&src));

    // Stock `tahoe backup` continues on the same target (Archives names are per second).
    wait_for_the_next_second();
    write_file(&src.join("docs/added by tahoe.txt"), b"new\n");
    let out = grid.tahoe([os("backup"), src.as_os_str(), os(target)]);
    assert!(
        out.status.success(),
        "tahoe backup: {}",
        lossy_text(&out.stderr)
    );
    assert_same_tree(&restore(grid, target, tmp.path()), &tree_of(&src));
    let by_tahoe = grid.tahoe(["ls", "--json", &format!("{target}/Latest/docs")]);
    let by_tahoe: serde_json::Value = serde_json::from_slice(&by_tahoe.stdout).unwrap();

    // ... and tahoe-jobs after it again.
    wait_for_the_next_second();
    write_file(&src.join("top.txt"), b"top level, edited\n");
    let out = cli_backup(grid, &[src.as_os_str(), os(target)], false);
    assert_exit(&out, 0, "tahoe-jobs after tahoe backup");
    assert!(
        lossy_text(&out.stdout).contains(" 2 files uploaded (5 reused)"),
        "{}",
        lossy_text(&out.stdout)
    );
    assert_same_tree(&restore(grid, target, tmp.path()), &tree_of(&src));
    assert_eq!(archive_count(grid, target), 3);

    // The same per-child metadata keys and value types as `tahoe backup` writes.
    let ours = grid.tahoe(["ls", "--json", &format!("{target}/Latest/docs")]);
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let shape = |v: &serde_json::Value| -> Vec<(String, bool)> {
        let m = v[1]["children"]["ünïcode ✓.txt"][1]["metadata"]
            .as_object()
            .expect("metadata")
            .clone();
        m.iter()
            .filter(|(k, _)| k.as_str() != "tahoe")
            .map(|(k, v)| (k.clone(), v.is_f64()))
            .collect()
    };
    assert_eq!(shape(&ours), shape(&by_tahoe));
    let ours_m = &ours[1]["children"]["ünïcode ✓.txt"][1]["metadata"];
    let stat = std::fs::metadata(src.join("docs/ünïcode ✓.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(ours_m["st_ino"], stat.ino());
    assert_eq!(ours_m["st_mode"], stat.mode());
    assert!((ours_m["mtime"].as_f64().unwrap() - stat.mtime() as f64).abs() < 1.0);
}

/// Upload counts come from the node itself (`uploader.files_uploaded`, which counts immutable
/// files and immutable directories), on a grid of this test's own so no other test's uploads
/// are counted.
#[test]
fn uploads_only_what_changed_and_resumes_after_a_stop() {
    let grid = Grid::start(GridSpec::ONE_OF_ONE);
    grid.create_alias("bk");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..5 {
        write_file(
            &src.join(format!("d1/f{i}")),
            &seeded_bytes(10 + i, 1000 + 300 * i as usize),
        );
    }
    for i in 0..3 {
        write_file(&src.join(format!("d2/g{i}")), &seeded_bytes(20 + i, 2000));
    }
    for i in 0..2 {
        write_file(
            &src.join(format!("d2/sub/h{i}")),
            &seeded_bytes(30 + i, 2500),
        );
    }
    write_file(&src.join("top.txt"), &seeded_bytes(40, 900));
    let db_dir = tmp.path().join("db");
    let rt = runtime();
    let opts = BackupOptions::default();
    let p = backup_params(&src, "bk", "t", 4);
    let store = open_backupdb(&db_dir, &p.target).unwrap();
    let once = |label: &str| {
        let ctx = task_context(
            "backup.test",
            store.clone(),
            StopSignal::new(),
            BudgetHandle::unlimited("t"),
        );
        let before = node_uploads(&grid);
        let end = rt
            .block_on(run_backup(grid.node_dir(), &p, &opts, &ctx))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let RunEnd::Completed(summary) = end else {
            panic!("{label}: stopped")
        };
        (summary, node_uploads(&grid) - before)
    };

    let (first, uploads) = once("first run");
    assert_eq!((first.files_uploaded, first.dirs_created), (11, 4));
    assert_eq!(uploads, 15, "11 files and 4 immutable directories");

    let (second, uploads) = once("unchanged re-run");
    assert_eq!(uploads, 0, "an unchanged tree uploads nothing");
    assert_eq!((second.files_reused, second.dirs_reused), (11, 4));

    // One modified file and one renamed directory: the file, the renamed directory's files
    // (the backupdb knows files by path, as tahoe backup's does), and the two directories whose
    // children changed (d1 and the root); the renamed directory itself is reused by content.
    write_file(&src.join("d1/f0"), &seeded_bytes(99, 1000));
    std::fs::rename(src.join("d2"), src.join("d2-renamed")).unwrap();
    let (third, uploads) = once("after modify and rename");
    assert_eq!(third.files_uploaded, 6);
    assert_eq!(third.files_reused, 5);
    assert_eq!((third.dirs_created, third.dirs_reused), (2, 2));
    assert_eq!(uploads, 8);
    assert_same_tree(&restore(&grid, "bk:t", tmp.path()), &tree_of(&src));

    // A fresh tree, stopped halfway by the stop signal, then resumed: each file is uploaded
    // once in all (plus at most the uploads in flight at the stop), and nothing is linked
    // until the run that completes.
    let big = tmp.path().join("big");
    for i in 0..40 {
        write_file(
            &big.join(format!("dir{}/file{i}", i % 4)),
            &seeded_bytes(100 + i, 20_000),
        );
    }
    let p2 = backup_params(&big, "bk", "resume", 2);
    let store2 = open_backupdb(&tmp.path().join("db2"), &p2.target).unwrap();
    let stop = StopSignal::new();
    let ctx = task_context(
        "backup.test",
        store2.clone(),
        stop.clone(),
        BudgetHandle::unlimited("t"),
    );
    let before = node_uploads(&grid);
    let progress = ctx.progress().clone();
    let stopper = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while progress.get(counter::FILES_UPLOADED) < 15 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.stop(StopReason::WindowClosed);
        }
    });
    let mut task = BackupTask::new(grid.node_dir(), p2.clone(), BackupOptions::default());
    let outcome = rt.block_on(task.run(&ctx)).expect("stopped run");
    stopper.join().unwrap();
    // How promptly a stop is obeyed is a timing matter, tested on tokio's paused clock in
    // tasks/tests/stop_promptly.rs; here: the run ended early, and with fewer files than the
    // tree has.
    assert_eq!(outcome, Outcome::StoppedEarly);
    let done_before_stop = ctx.progress().get(counter::FILES_UPLOADED);
    assert!((15..40).contains(&done_before_stop), "{done_before_stop}");
    assert_eq!(
        latest_cap(&grid, "bk:resume"),
        None,
        "a stopped run links nothing"
    );

    let ctx = task_context(
        "backup.test",
        store2,
        StopSignal::new(),
        BudgetHandle::unlimited("t"),
    );
    let outcome = rt.block_on(task.run(&ctx)).expect("resumed run");
    assert_eq!(outcome, Outcome::Completed);
    let resumed = ctx.progress().get(counter::FILES_UPLOADED);
    assert_eq!(ctx.progress().get(counter::FILES_REUSED), done_before_stop);
    assert_eq!(done_before_stop + resumed, 40, "every file uploaded once");
    let uploads = node_uploads(&grid) - before;
    let dirs = 5;
    assert!(
        uploads >= 40 + dirs && uploads <= 40 + dirs + 2,
        "node saw {uploads} uploads for 40 files and {dirs} directories (concurrency 2)"
    );
    assert_same_tree(&restore(&grid, "bk:resume", tmp.path()), &tree_of(&big));
}

#[test]
fn a_file_changed_during_its_upload_is_not_remembered() {
    let grid = shared_grid();
    grid.create_alias("bk_changing");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_file(&src.join("steady.txt"), &seeded_bytes(1, 5000));
    let moving = src.join("moving.bin");
    write_file(&moving, &seeded_bytes(2, 300_000));
    let p = backup_params(&src, "bk_changing", "", 1);
    let store = open_backupdb(&tmp.path().join("db"), &p.target).unwrap();
    let rt = runtime();

    // The budget is asked before each chunk is sent: rewrite the file's first byte on the
    // second chunk, so its mtime and ctime change mid-upload.
    let chunks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook = {
        let (chunks, moving) = (chunks.clone(), moving.clone());
        Hook(move |r: &ByteRequest| {
            if r.bytes == 64 * 1024 && chunks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
            {
                let mtime = std::fs::metadata(&moving).unwrap().modified().unwrap();
                let mut data = std::fs::read(&moving).unwrap();
                data[0] ^= 0xff;
                std::fs::write(&moving, data).unwrap();
                // The kernel stamps files from a clock that ticks every few milliseconds: set
                // the mtime apart so the change shows however soon it comes.
                std::fs::File::options()
                    .write(true)
                    .open(&moving)
                    .unwrap()
                    .set_modified(mtime + Duration::from_secs(1))
                    .unwrap();
            }
        })
    };
    let ctx = task_context(
        "backup.test",
        store.clone(),
        StopSignal::new(),
        BudgetHandle::new("t", Arc::new(hook)),
    );
    let end = rt
        .block_on(run_backup(
            grid.node_dir(),
            &p,
            &BackupOptions::default(),
            &ctx,
        ))
        .unwrap();
    let RunEnd::Completed(first) = end else {
        panic!("stopped")
    };
    assert_eq!((first.files_uploaded, first.files_changed), (2, 1));
    assert!(ctx
        .progress()
        .snapshot()
        .warnings
        .iter()
        .any(|w| w.message.contains("changed while it was uploaded")
            && w.message.contains("moving.bin")));

    let ctx = task_context(
        "backup.test",
        store,
        StopSignal::new(),
        BudgetHandle::unlimited("t"),
    );
    let end = rt
        .block_on(run_backup(
            grid.node_dir(),
            &p,
            &BackupOptions::default(),
            &ctx,
        ))
        .unwrap();
    let RunEnd::Completed(second) = end else {
        panic!("stopped")
    };
    assert_eq!(
        (
            second.files_uploaded,
            second.files_reused,
            second.files_changed
        ),
        (1, 1, 0),
        "only the file that changed mid-upload is uploaded again"
    );
    assert_same_tree(&restore(grid, "bk_changing:", tmp.path()), &tree_of(&src));
}

#[test]
fn excludes_follow_tahoe_backup() {
    let grid = shared_grid();
    grid.create_alias("bk_excl");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_file(&src.join("keep.txt"), b"keep");
    write_file(&src.join("skip.tmp"), b"tmp");
    write_file(&src.join("sub/skip.tmp"), b"tmp, deeper");
    write_file(&src.join("sub/keep.TMP"), b"case matters");
    write_file(&src.join("cache/inside"), b"in an excluded directory");
    write_file(&src.join(".git/config"), b"vcs");
    write_file(&src.join(".gitignore"), b"vcs");
    write_file(&src.join("sub/.svn/entries"), b"vcs");
    write_file(&src.join("sub/.github/ci.yml"), b"not vcs");
    write_file(&src.join("listed.o"), b"from the exclude file");
    let exclude_file = tmp.path().join("excludes");
    write_file(&exclude_file, b"*.o\n\n");

    let out = cli_backup(
        grid,
        &[
            os("--exclude"),
            os("*.tmp"),
            os("--exclude"),
            os("cache"),
            os("--exclude-vcs"),
            os("--exclude-from"),
            exclude_file.as_os_str(),
            src.as_os_str(),
            os("bk_excl:x"),
        ],
        false,
    );
    assert_exit(&out, 0, "backup with excludes");
    let mut expected = tree_of(&src);
    expected.retain(|p, _| {
        let s = p.to_string_lossy();
        !(s.ends_with(".tmp")
            || s.starts_with("cache")
            || s.starts_with(".git/")
            || s == ".git"
            || s == ".gitignore"
            || s.starts_with("sub/.svn")
            || s == "listed.o")
    });
    assert!(expected.contains_key(Path::new("sub/keep.TMP")));
    assert!(expected.contains_key(Path::new("sub/.github/ci.yml")));
    assert_same_tree(&restore(grid, "bk_excl:x", tmp.path()), &expected);
}

/// Symlinks, FIFOs, a mode-000 file and directory, and a name that is not UTF-8 are skipped
/// with a warning naming each, and the run exits 2 like `tahoe backup`. Tests run as root, who
/// can read mode-000 files, so the command runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
/// (setpriv), as root without those is refused like any other user.
#[test]
fn odd_files_are_skipped_with_warnings() {
    let grid = shared_grid();
    grid.create_alias("bk_odd");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_file(&src.join("fine.txt"), b"fine");
    write_file(&src.join("dir/also-fine.txt"), b"also fine");
    std::os::unix::fs::symlink("fine.txt", src.join("link")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(src.join("fifo"))
        .status()
        .unwrap()
        .success());
    let secret = src.join("dir/secret.txt");
    write_file(&secret, b"unreadable");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let closed = src.join("closed");
    write_file(&closed.join("inside.txt"), b"behind a closed door");
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
    let bad_name = src.join(OsStr::from_bytes(b"caf\xe9.txt"));
    write_file(&bad_name, b"latin-1 name");

    let out = cli_backup(grid, &[src.as_os_str(), os("bk_odd:")], true);
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_exit(&out, 2, "backup with odd files");
    let stderr = lossy_text(&out.stderr);
    let src_s = src.display();
    for warning in [
        format!("WARNING: cannot backup symlink '{src_s}/link'"),
        format!("WARNING: cannot backup special '{src_s}/fifo'"),
        format!("WARNING: permission denied on file '{src_s}/dir/secret.txt'"),
        format!("WARNING: permission denied on directory '{src_s}/closed'"),
        format!("WARNING: cannot backup file '{src_s}/caf\\xe9.txt': its name is not valid UTF-8"),
    ] {
        assert!(
            stderr.contains(&warning),
            "missing {warning:?} in:\n{stderr}"
        );
    }
    assert!(
        lossy_text(&out.stdout).contains(
            " 2 files uploaded (0 reused), 4 files skipped, 2 directories created (0 reused), 1 directories skipped"
        ),
        "{}",
        lossy_text(&out.stdout)
    );
    let mut expected = BTreeMap::new();
    expected.insert(PathBuf::from("fine.txt"), Some(b"fine".to_vec()));
    expected.insert(PathBuf::from("dir"), None);
    expected.insert(
        PathBuf::from("dir/also-fine.txt"),
        Some(b"also fine".to_vec()),
    );
    assert_same_tree(&restore(grid, "bk_odd:", tmp.path()), &expected);
}

/// A directory that can be listed but not searched (mode 0644): each entry's lstat fails. A
/// subdirectory in it counts as a skipped directory and a file as a skipped file (the listing's
/// file type tells which), each warned about with the error it really met.
#[test]
fn entries_of_an_unsearchable_directory_are_skipped_by_kind() {
    let grid = shared_grid();
    grid.create_alias("bk_unsearchable");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_file(&src.join("fine.txt"), b"fine");
    let half = src.join("half");
    write_file(&half.join("sub/inside.txt"), b"inside");
    write_file(&half.join("f.txt"), b"f");
    std::fs::set_permissions(&half, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = cli_backup(grid, &[src.as_os_str(), os("bk_unsearchable:")], true);
    std::fs::set_permissions(&half, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_exit(&out, 2, "backup with an unsearchable directory");
    let stderr = lossy_text(&out.stderr);
    let src_s = src.display();
    for warning in [
        format!("WARNING: permission denied on directory '{src_s}/half/sub'\n"),
        format!("WARNING: permission denied on file '{src_s}/half/f.txt'\n"),
    ] {
        assert!(
            stderr.contains(&warning),
            "missing {warning:?} in:\n{stderr}"
        );
    }
    assert!(
        lossy_text(&out.stdout).contains(
            " 1 files uploaded (0 reused), 1 files skipped, 2 directories created (0 reused), 1 directories skipped"
        ),
        "{}",
        lossy_text(&out.stdout)
    );
}

/// `backup -v` names every file and directory quoted as warnings are, so a newline in a name
/// cannot split a line of its output (or forge one).
#[test]
fn verbose_output_quotes_names() {
    let grid = shared_grid();
    grid.create_alias("bk_verbose");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_file(&src.join("plain.txt"), b"plain");
    write_file(&src.join("new\nline.txt"), b"two lines");
    write_file(&src.join("d\nir/x"), b"x");

    let out = cli_backup(grid, &[os("-v"), src.as_os_str(), os("bk_verbose:")], false);
    assert_exit(&out, 0, "verbose backup");
    let stdout = lossy_text(&out.stdout);
    let src_s = src.display();
    for line in [
        format!("uploaded '{src_s}/plain.txt'"),
        format!("uploaded '{src_s}/new\\x0aline.txt'"),
        format!("uploaded '{src_s}/d\\x0air/x'"),
        format!(" created directory for '{src_s}/d\\x0air'"),
        format!(" created directory for '{src_s}'"),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing line {line:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("line.txt") || l.starts_with("ir")),
        "a name was split across lines:\n{stdout}"
    );
}

/// An external drive that is not plugged in shows as a missing or empty source: the run fails
/// with a clear error and `Latest` keeps pointing at the last real backup.
#[test]
fn unplugged_source_fails_and_keeps_latest() {
    let grid = shared_grid();
    grid.create_alias("bk_unplug");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("drive");
    sample_tree(&src);
    let out = cli_backup(grid, &[src.as_os_str(), os("bk_unplug:pics")], false);
    assert_exit(&out, 0, "backup of the plugged-in drive");
    let latest = latest_cap(grid, "bk_unplug:pics").expect("Latest after the first backup");

    std::fs::rename(&src, tmp.path().join("elsewhere")).unwrap();
    let out = cli_backup(grid, &[src.as_os_str(), os("bk_unplug:pics")], false);
    assert_exit(&out, 1, "backup of a missing source");
    assert!(
        lossy_text(&out.stderr).contains("does not exist"),
        "{}",
        lossy_text(&out.stderr)
    );

    std::fs::create_dir(&src).unwrap();
    let out = cli_backup(grid, &[src.as_os_str(), os("bk_unplug:pics")], false);
    assert_exit(&out, 1, "backup of an empty mount point");
    let stderr = lossy_text(&out.stderr);
    assert!(
        stderr.contains("is empty") && stderr.contains("Latest is unchanged"),
        "{stderr}"
    );
    assert!(!stderr.contains("URI:"), "{stderr}");

    assert!(
        latest_cap(grid, "bk_unplug:pics") == Some(latest),
        "Latest must not change"
    );
    assert_eq!(archive_count(grid, "bk_unplug:pics"), 1);
}

#[test]
fn unknown_alias_and_stopped_node_are_clear_errors() {
    let grid = shared_grid();
    let tmp = tempfile::tempdir().unwrap();
    write_file(&tmp.path().join("src/f"), b"x");
    let out = cli_backup(
        grid,
        &[tmp.path().join("src").as_os_str(), os("no_such_alias:x")],
        false,
    );
    assert_exit(&out, 1, "unknown alias");
    assert!(
        lossy_text(&out.stderr).contains("tahoe create-alias no_such_alias"),
        "{}",
        lossy_text(&out.stderr)
    );

    // A node directory whose node.url points at a port nothing listens on.
    let fake = tmp.path().join("node");
    std::fs::create_dir_all(fake.join("private")).unwrap();
    std::fs::write(fake.join("node.url"), "http://127.0.0.1:1/\n").unwrap();
    std::fs::write(fake.join("private/aliases"), "a: URI:DIR2:aaaa:bbbb\n").unwrap();
    let out = tahoe_jobs_command()
        .arg("-d")
        .arg(&fake)
        .args([os("backup"), tmp.path().join("src").as_os_str(), os("a:x")])
        .output()
        .unwrap();
    assert_exit(&out, 1, "node down");
    let stderr = lossy_text(&out.stderr);
    assert!(
        stderr.contains("unreachable") && !stderr.contains("aaaa"),
        "{stderr}"
    );
}

/// The storage index of the file at `path` (below an alias), from `tahoe check --raw`.
fn storage_index(grid: &Grid, path: &str) -> String {
    let out = grid.tahoe(["check", "--raw", path]);
    assert!(
        out.status.success(),
        "tahoe check {path}: {}",
        lossy_text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check JSON");
    let si = v["storage-index"].as_str().unwrap_or_default().to_string();
    assert!(!si.is_empty(), "no storage index for {path}");
    si
}

/// Deletes every share of `storage_index` on every storage node; returns how many were there.
fn delete_shares(grid: &Grid, storage_index: &str) -> usize {
    let mut deleted = 0;
    for i in 0..grid.storage_nodes() {
        let dir = grid
            .shares_dir(i)
            .join(&storage_index[..2])
            .join(storage_index);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            deleted += entries.count();
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    deleted
}

/// A backup job as the daemon gets it: from the configuration (here `--set`-style overrides)
/// through the registry, with its recheck keys.
fn configured_task(grid: &Grid, src: &Path, target: &str, recheck: Option<&str>) -> Box<dyn Task> {
    let mut overrides = vec![
        ("backup.b1.source".to_string(), src.display().to_string()),
        ("backup.b1.target".to_string(), target.to_string()),
        // Upload counts come from the node's uploader: the node's data path.
        ("backup.b1.data_path".to_string(), "node".to_string()),
    ];
    if let Some(r) = recheck {
        overrides.push(("backup.b1.recheck_after".into(), r.into()));
        overrides.push(("backup.b1.recheck_all_after".into(), r.into()));
    }
    let config = tahoe_jobs_config::load(&tahoe_jobs_config::LoadOptions {
        node_dir: grid.node_dir().to_path_buf(),
        config_file: None,
        overrides,
        read_env: false,
        task_types: tahoe_jobs_tasks::schemas(),
    })
    .expect("configuration");
    let mut registry = tahoe_jobs_engine::Registry::new();
    tahoe_jobs_tasks::register(&mut registry, grid.node_dir());
    registry
        .build(config.job("backup.b1").expect("the backup job"))
        .expect("a backup task")
}

/// With `recheck_after = recheck_all_after = 0s`, every capability the backupdb would reuse is
/// checked first; a file whose shares are all gone from the grid is found unhealthy and
/// uploaded again (only it), and the restore is whole again. The default policy right after
/// trusts what was just checked and uploads nothing. Both through the daemon's path (job
/// configuration -> registry -> task) and the one-shot command's flags.
#[test]
fn recheck_after_zero_checks_every_reused_cap_and_reuploads_a_lost_file() {
    // A grid of its own: shares are deleted, and upload counts must be exact.
    let grid = Grid::start(GridSpec::ONE_OF_ONE);
    grid.create_alias("rc");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // Every file above 55 bytes, so none is a literal capability (those hold their data and
    // have no shares to lose).
    write_file(&src.join("a.bin"), &seeded_bytes(501, 3_000));
    write_file(&src.join("sub/b.bin"), &seeded_bytes(502, 40_000));
    write_file(&src.join("sub/c.txt"), &seeded_bytes(503, 200));
    write_file(&src.join("sub/deeper/d.bin"), &seeded_bytes(504, 70_000));
    let (files, dirs) = (4, 3);
    let rt = runtime();
    let store = open_backupdb(
        &tmp.path().join("db"),
        &Target::Alias {
            alias: "rc".into(),
            path: "job".into(),
        },
    )
    .unwrap();
    let run = |label: &str, recheck: Option<&str>| {
        // Archives are named by the second: each run gets its own.
        wait_for_the_next_second();
        let mut task = configured_task(&grid, &src, "rc:job", recheck);
        let ctx = task_context(
            "backup.test",
            store.clone(),
            StopSignal::new(),
            BudgetHandle::unlimited("t"),
        );
        let before = node_uploads(&grid);
        let outcome = rt
            .block_on(task.run(&ctx))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(outcome, Outcome::Completed, "{label}");
        let p = ctx.progress();
        let counts = [
            counter::FILES_UPLOADED,
            counter::FILES_CHECKED,
            counter::FILES_REUSED,
            counter::DIRS_CREATED,
            counter::DIRS_CHECKED,
            counter::DIRS_REUSED,
        ]
        .map(|c| p.get(c));
        (counts, node_uploads(&grid) - before)
    };

    let (counts, uploads) = run("first run", None);
    assert_eq!(counts, [files, 0, 0, dirs, 0, 0]);
    assert_eq!(uploads, files + dirs);

    let lost = storage_index(&grid, "rc:job/Latest/sub/b.bin");
    assert!(delete_shares(&grid, &lost) > 0, "no shares found to delete");
    assert_eq!(delete_shares(&grid, &lost), 0);

    // Every reused capability is checked; b.bin alone is unhealthy and uploaded again. Its
    // new capability is the old one (same content, same convergence secret), so every
    // directory is reused after its check.
    let (counts, uploads) = run("run with recheck 0s", Some("0s"));
    assert_eq!(
        counts,
        [1, files, files - 1, 0, dirs, dirs],
        "[files uploaded, checked, reused, dirs created, checked, reused]"
    );
    assert_eq!(
        uploads, 1,
        "only the file whose shares were lost is uploaded"
    );
    assert_same_tree(&restore(&grid, "rc:job", tmp.path()), &tree_of(&src));

    // The default policy trusts what was just uploaded or checked.
    let (counts, uploads) = run("run with the default policy", None);
    assert_eq!(counts, [0, 0, files, 0, 0, dirs]);
    assert_eq!(uploads, 0);
    assert_eq!(archive_count(&grid, "rc:job"), 3);

    // The one-shot command: its own backupdb, so its first run uploads everything again
    // (the node counts the uploads even where the servers already hold the shares).
    let cli = |args: &[&str]| {
        let before = node_uploads(&grid);
        let mut all: Vec<&OsStr> = args.iter().map(|a| os(a)).collect();
        all.extend([os("--data-path"), os("node"), src.as_os_str(), os("rc:cli")]);
        let out = cli_backup(&grid, &all, false);
        assert_exit(&out, 0, &format!("tahoe-jobs backup {args:?}"));
        (lossy_text(&out.stdout), node_uploads(&grid) - before)
    };
    let (_, uploads) = cli(&[]);
    assert_eq!(uploads, files + dirs);
    let lost = storage_index(&grid, "rc:cli/Latest/sub/deeper/d.bin");
    assert!(delete_shares(&grid, &lost) > 0, "no shares found to delete");
    let (stdout, uploads) = cli(&["-v", "--recheck-after", "0s", "--recheck-all-after", "0s"]);
    assert!(
        stdout.contains(&format!(
            " 1 files uploaded ({} reused), 0 files skipped, 0 directories created ({dirs} reused)",
            files - 1
        )) && stdout.contains(&format!(
            " {files} files checked, {dirs} directories checked"
        )),
        "{stdout}"
    );
    assert_eq!(uploads, 1);
    assert_same_tree(&restore(&grid, "rc:cli", tmp.path()), &tree_of(&src));
    let (stdout, uploads) = cli(&["-v"]);
    assert!(
        stdout.contains(&format!(" 0 files uploaded ({files} reused)"))
            && stdout.contains(" 0 files checked, 0 directories checked"),
        "{stdout}"
    );
    assert_eq!(uploads, 0);
}

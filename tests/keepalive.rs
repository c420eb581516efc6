//! Partial shares of a stopped direct upload on real servers: the keeper's one-byte write is
//! accepted by a Tahoe 1.20 server, and the upload then continues the share it kept; a share
//! whose server restarted (which empties `shares/incoming/`) is found gone by the keeper,
//! sent again from the start by the next backup run, which completes and says so in its
//! `shares_restarted` counter. The schedule itself is tested on the paused clock in
//! `lafs/src/upload/keepalive_tests.rs`.
//!
//! An upload is stopped as a window close or `kill -9` stops it: its future is dropped, here
//! right after its first write was accepted (a `biased` select in one task, so it is dropped
//! before it can write the file's last segment).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tahoe_jobs_engine::{BudgetHandle, StopSignal};
use tahoe_jobs_lafs::discovery::load_servers;
use tahoe_jobs_lafs::lease::ClientLeaseSecrets;
use tahoe_jobs_lafs::storage::{StorageClient, Timeouts};
use tahoe_jobs_lafs::upload::keepalive::{KeepAlivePolicy, Keeper, StorageKeepAlive};
use tahoe_jobs_lafs::upload::partial::{PartialShareState, PartialShares};
use tahoe_jobs_lafs::upload::upload_secret_for;
use tahoe_jobs_tasks::backup::{open_backupdb, run_backup, BackupOptions, RunEnd, ShareKeeper};
use tahoe_jobs_tasks::DataPath;
use tokio::time::Instant;

use crate::lafs_upload::{assert_verified_and_readable, fresh_bytes, uploader};
use crate::support::backup_run::{backup_params, task_context};
use crate::support::files::write_file;
use crate::support::node::ls_json;
use crate::support::process::runtime;
use crate::support::{shared_grid, Grid, GridSpec};

const MIB: usize = 1024 * 1024;
/// Past the keep-alive interval (25 minutes) and before the server's limit (30).
const KEEP_ALIVE_DUE: Duration = Duration::from_secs(26 * 60);

/// Until the record holds `count` shares that their upload has written to.
async fn first_writes(shares: &PartialShares, count: usize) {
    let mut changes = shares.subscribe();
    loop {
        let states = shares.shares();
        if states.len() == count && states.iter().all(|s| s.upload_writes > 0) {
            return;
        }
        changes.changed().await.expect("the record lives");
    }
}

/// Polls `work` until the record holds `count` shares that their upload has written to, and
/// no further; panics if it ends first.
async fn pause_after_first_writes<F: Future>(
    shares: &PartialShares,
    count: usize,
    work: Pin<&mut F>,
) {
    tokio::select! {
        biased;
        () = first_writes(shares, count) => {}
        _ = work => panic!("the upload ended before it could be stopped"),
    }
}

/// Runs `work` until the record holds `count` shares that their upload has written to, then
/// drops it (a stop); panics if it ends first.
async fn stop_after_first_writes<F: Future>(shares: &PartialShares, count: usize, work: F) {
    let work = std::pin::pin!(work);
    pause_after_first_writes(shares, count, work).await;
}

/// Where server `i` keeps the partial share `state` while it is uploaded.
fn incoming_file(grid: &Grid, i: usize, state: &PartialShareState) -> PathBuf {
    let si = state.key.storage_index.to_string();
    grid.shares_dir(i)
        .join("incoming")
        .join(&si[..2])
        .join(&si)
        .join(state.key.shnum.to_string())
}

#[test]
fn a_kept_partial_share_is_continued_and_the_file_verifies() {
    let grid = shared_grid();
    let shares = Arc::new(PartialShares::new());
    let uploader = uploader(grid, 1).with_partial_shares(shares.clone());
    // Five segments: the first write (header and block 0) is far from the last.
    let data = fresh_bytes(140, 4 * MIB + 3);
    let uploaded = runtime().block_on(async {
        stop_after_first_writes(&shares, 1, uploader.upload_bytes(&data)).await;
        let stopped = shares.shares().remove(0);
        assert!(!stopped.dropped);
        assert!(
            incoming_file(grid, 0, &stopped).is_file(),
            "the server holds the partial share"
        );

        let keeper = Keeper::new(shares.clone(), StorageKeepAlive, KeepAlivePolicy::default());
        assert!(
            !keeper.run_due(Instant::now()).await,
            "nothing is due right after a write"
        );
        let due = Instant::now() + KEEP_ALIVE_DUE;
        assert!(keeper.run_due(due).await, "the keep-alive write is due");
        let kept = shares.shares().remove(0);
        assert!(!kept.dropped, "the server refused the keep-alive write");
        assert_eq!(kept.times.last_write, due, "the server accepted it");
        assert_eq!(kept.upload_writes, stopped.upload_writes);
        assert!(incoming_file(grid, 0, &stopped).is_file());

        // The next run continues the share: block 0 is not sent again.
        let uploaded = uploader
            .upload_bytes(&data)
            .await
            .expect("the resumed upload");
        assert_eq!((uploaded.shares_written, uploaded.shares_restarted), (1, 0));
        assert!(
            uploaded.bytes_sent <= (data.len() - MIB) as u64 + 4096,
            "{} bytes sent again",
            uploaded.bytes_sent
        );
        assert!(shares.is_empty(), "a complete share leaves the record");
        uploaded
    });
    assert_verified_and_readable(grid, &uploaded.cap, &data);
}

/// One share on each of two servers; the run is stopped mid-file; server 1 restarts, which
/// drops its partial share. The keeper's next write finds it gone (and keeps server 0's), and
/// the next run sends server 1's share from the start, continues server 0's, completes, and
/// counts one restarted share.
#[test]
fn a_share_dropped_by_a_restarted_server_is_started_again_and_the_run_completes() {
    let grid = Grid::start(GridSpec {
        storage_nodes: 2,
        needed: 1,
        happy: 2,
        total: 2,
    });
    grid.create_alias("ka");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let data = fresh_bytes(141, 4 * MIB + 7);
    write_file(&src.join("big.bin"), &data);
    let params = tahoe_jobs_tasks::backup::BackupParams {
        data_path: DataPath::Direct,
        ..backup_params(&src, "ka", "home", 1)
    };
    let store = open_backupdb(&tmp.path().join("db"), &params.target).unwrap();
    let keeper = ShareKeeper::new();
    let shares = keeper.shares().clone();
    let options = BackupOptions {
        keeper: Some(keeper.clone()),
        ..BackupOptions::default()
    };
    let context = || {
        task_context(
            "backup.ka",
            store.clone(),
            StopSignal::new(),
            BudgetHandle::unlimited("backup.ka"),
        )
    };

    // The first run is stopped after the first write to each server. One thread: the run's
    // upload task cannot get ahead of the test while the test drops it.
    let first = context();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(stop_after_first_writes(
            &shares,
            2,
            run_backup(grid.node_dir(), &params, &options, &first),
        ));
    let stopped = shares.shares();
    assert_eq!(stopped.len(), 2);
    let on_server = |state: &PartialShareState| {
        (0..2)
            .find(|&i| state.key.server_id == grid.server_id(i))
            .expect("a share on one of the grid's servers")
    };
    for s in &stopped {
        assert!(incoming_file(&grid, on_server(s), s).is_file());
    }

    grid.stop_node(1);
    grid.start_node(1);
    let on_1 = stopped.iter().find(|s| on_server(s) == 1).unwrap();
    assert!(
        !incoming_file(&grid, 1, on_1).exists(),
        "a restarted server keeps no partial share"
    );

    runtime().block_on(async {
        let keeper = Keeper::new(shares.clone(), StorageKeepAlive, KeepAlivePolicy::default());
        assert!(keeper.run_due(Instant::now() + KEEP_ALIVE_DUE).await);
        let dropped: Vec<usize> = shares
            .shares()
            .iter()
            .filter(|s| s.dropped)
            .map(on_server)
            .collect();
        assert_eq!(dropped, [1], "server 1's share is gone, server 0's kept");
    });

    let second = context();
    let end = runtime().block_on(run_backup(grid.node_dir(), &params, &options, &second));
    match end {
        Ok(RunEnd::Completed(summary)) => assert_eq!(summary.files_uploaded, 1),
        other => panic!("the second run did not complete: {other:?}"),
    }
    assert_eq!(second.progress().get("shares_restarted"), 1);
    assert!(shares.is_empty(), "nothing is left to keep alive");

    let listing = ls_json(&grid, "ka:home/Latest");
    let cap = listing[1]["children"]["big.bin"][1]["ro_uri"]
        .as_str()
        .expect("big.bin in Latest")
        .to_string();
    assert_verified_and_readable(&grid, &cap, &data);
}

/// A share that disappears from its server in the middle of an upload (aborted behind the
/// uploader's back, as the server's own idle timeout would): the next write is answered 404,
/// and the upload allocates the share again and sends the file from the start, once.
#[test]
fn a_share_gone_in_the_middle_of_an_upload_is_sent_again() {
    let grid = shared_grid();
    let shares = Arc::new(PartialShares::new());
    let uploader = uploader(grid, 1).with_partial_shares(shares.clone());
    let data = fresh_bytes(142, 4 * MIB + 11);
    let uploaded = runtime().block_on(async {
        let mut upload = std::pin::pin!(uploader.upload_bytes(&data));
        pause_after_first_writes(&shares, 1, upload.as_mut()).await;
        let state = shares.shares().remove(0);

        let servers = load_servers(grid.node_dir()).unwrap();
        let server = &servers[0];
        assert_eq!(server.server_id, state.key.server_id);
        let client = StorageClient::new(&server.nurls[0], "test", Timeouts::default()).unwrap();
        let lease = ClientLeaseSecrets::from_node_dir(grid.node_dir())
            .unwrap()
            .for_share(&state.key.storage_index, &server.lease_seed);
        client
            .abort_immutable(
                &state.key.storage_index,
                state.key.shnum,
                &upload_secret_for(&lease),
            )
            .await
            .expect("the partial share is aborted");
        assert!(!incoming_file(grid, 0, &state).exists());

        upload
            .await
            .expect("the upload starts the share again and completes")
    });
    assert_eq!((uploaded.shares_written, uploaded.shares_restarted), (1, 1));
    assert!(shares.is_empty());
    assert_verified_and_readable(grid, &uploaded.cap, &data);
}

//! A clean stop of the daemon (SIGTERM) in the middle of uploads, on the real grid: the uploads
//! the node has started are let finish within the shutdown budget instead of being cut off, so
//! the next start does not meet the node's abandoned partial shares
//! (`UploadUnhappinessError`), and the backup it completes restores byte for byte.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::daemon::Daemon;
use crate::support::files::{assert_same_tree, seeded_bytes, tree_of, write_file};
use crate::support::node::restore;
use crate::support::shared_grid;

/// `files` files of 1-4 KiB (real uploads, not literals) in 4 directories.
fn small_files(root: &Path, files: u64) {
    for i in 0..files {
        let len = 1024 + (i * 977) % 3072;
        write_file(
            &root.join(format!("d{}/f{i:04}", i % 4)),
            &seeded_bytes(0x5157_0000 + i, len as usize),
        );
    }
}

fn uploaded(job: &Value) -> u64 {
    job["counters"]["files_uploaded"].as_u64().unwrap_or(0)
}

#[test]
fn sigterm_during_uploads_lets_them_finish_and_the_next_run_completes() {
    let grid = shared_grid();
    grid.create_alias("sd_term");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    small_files(&src, 240);
    let toml = format!(
        "[backup.term]\nsource = \"{}\"\ntarget = \"sd_term:home\"\nfrequency = \"1week\"\n\
         concurrency = 4\n",
        src.display()
    );
    let job = "backup.term";
    let mut d = Daemon::unstarted_on_node(grid.node_dir(), &toml, tmp.path().join("state"));
    let mut stops = 0;
    loop {
        d.start();
        // Generous: the grid is shared with other tests on two busy cores.
        let limit = Instant::now() + Duration::from_secs(600);
        let completed = loop {
            let j = d.job_json(job);
            assert_ne!(
                j["state"],
                "failed",
                "after {stops} SIGTERMs the run failed: {j}\n{}",
                d.log_text()
            );
            if !j["last_completed"].is_null() {
                break true;
            }
            // Stop while files are being uploaded: some have gone through in this run (each run
            // counts afresh), others are on their way.
            if stops < 3 && j["state"] == "running" && uploaded(&j) >= 20 {
                break false;
            }
            assert!(
                Instant::now() < limit,
                "the backup did not go on after {stops} SIGTERMs: {j}\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if completed {
            break;
        }
        // SIGTERM; `stop` asserts a clean exit (code 0).
        d.stop();
        stops += 1;
        let log = d.log_text();
        assert!(log.contains("stopped cleanly"), "{log}");
    }
    assert_eq!(stops, 3, "every SIGTERM landed during the uploads");
    let j = d.job_json(job);
    assert_eq!(j["last_outcome"], "completed", "{j}");
    d.stop();
    assert_same_tree(&restore(grid, "sd_term:home", tmp.path()), &tree_of(&src));
}

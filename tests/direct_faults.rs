//! Direct (node-less) uploads under faults, on real 3-of-5 grids (happy 4) whose storage nodes
//! sit behind `scripts/lib/relay.py`, which counts the bytes each server receives:
//!
//! - `tahoe-jobs backup --data-path direct` of one large file killed with SIGKILL ten times at
//!   different points, decided by the relay's byte counts, then run once more: the last run
//!   completes at once, the servers received every byte of the shares once (plus what the kills
//!   cut off in flight and the requests' framing, bounded below), stock `tahoe cp -r` restores
//!   the file and `tahoe check --verify` finds it healthy;
//! - a storage server killed while an upload writes to it: the upload completes on the other
//!   four (happiness 4), and with two servers lost it fails with a clear "not enough storage
//!   servers", links nothing and leaves no partial share behind;
//! - a server whose disk is full (`[storage] reserved_space` above the free space): shares go to
//!   the others, or, with two full, a clear error from the uploader and from `tahoe-jobs backup`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use tahoe_jobs_lafs::base32;
use tahoe_jobs_lafs::chk::{
    convergent_key, encode_bytes, ChkEncoder, EncodingParams, DEFAULT_MAX_SEGMENT_SIZE,
};
use tahoe_jobs_lafs::upload::SEGMENTS_IN_FLIGHT;

use crate::lafs_upload::uploader;
use crate::support::files::{assert_same_tree, seeded_bytes, tree_of, write_file};
use crate::support::node::{latest_cap, restore};
use crate::support::process::{
    describe_output, lossy_text, os, tahoe_jobs_command, wait_for_the_next_second,
};
use crate::support::shares::files_below;
use crate::support::{Grid, GridSpec};

const MIB: usize = 1024 * 1024;

const THREE_OF_FIVE: GridSpec = GridSpec {
    storage_nodes: 5,
    needed: 3,
    happy: 4,
    total: 5,
};

/// The relay's delay each way: every write round trip costs at least 2 x this, which spreads
/// a segment-by-segment upload over time (it does not limit throughput).
const RELAY_DELAY_MS: u32 = 50;

/// The client node's convergence secret.
fn convergence(grid: &Grid) -> Vec<u8> {
    let text = std::fs::read_to_string(grid.node_dir().join("private/convergence")).unwrap();
    base32::decode(text.trim()).unwrap()
}

/// The client's encoding: the grid's k-of-N, Tahoe's segment size.
fn params(grid: &Grid) -> EncodingParams {
    let spec = grid.spec();
    EncodingParams {
        needed: spec.needed as u16,
        total: spec.total as u16,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    }
}

/// The shares of `data` as the grid's client encodes them (header, blocks, trailer each).
fn shares_of(grid: &Grid, data: &[u8]) -> Vec<Vec<u8>> {
    encode_bytes(data, &convergence(grid), &params(grid))
        .unwrap()
        .1
}

/// How the uploader writes each share of `data`: the offsets in the share at which one write
/// ends (after the header and block 0, after each further block, after the last block with
/// the trailer), and the header's length.
struct Writes {
    ends: Vec<u64>,
    header: u64,
}

impl Writes {
    fn of(grid: &Grid, data: &[u8]) -> Writes {
        let (params, secret, size) = (params(grid), convergence(grid), data.len() as u64);
        let key = convergent_key(data, &secret, &params, size).unwrap();
        let encoder = ChkEncoder::convergent(key, &secret, &params, size).unwrap();
        let layout = encoder.layout();
        let segments = encoder.plan().num_segments;
        let mut ends: Vec<u64> = (1..segments).map(|s| layout.block_offset(s)).collect();
        ends.push(layout.allocated_size());
        Writes {
            ends,
            header: layout.block_offset(0),
        }
    }

    /// The longest write.
    fn max(&self) -> u64 {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.ends
            .iter()
            .zip(starts)
            .map(|(e, s)| e - s)
            .max()
            .unwrap()
    }
}

/// `tahoe-jobs -d NODEDIR backup --data-path direct SOURCE TARGET`, not waited for.
fn spawn_backup(grid: &Grid, source: &Path, target: &str) -> Child {
    tahoe_jobs_command()
        .arg("-d")
        .arg(grid.node_dir())
        .args([os("backup"), os("--data-path"), os("direct")])
        .args([source.as_os_str(), os(target)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run tahoe-jobs")
}

fn backup(grid: &Grid, source: &Path, target: &str) -> Output {
    let out = spawn_backup(grid, source, target)
        .wait_with_output()
        .unwrap();
    let (stdout, stderr) = (lossy_text(&out.stdout), lossy_text(&out.stderr));
    assert!(
        !stdout.contains("URI:") && !stderr.contains("URI:"),
        "tahoe-jobs backup shows a capability"
    );
    out
}

/// Share bytes the servers hold in unfinished (incoming) immutable shares. An incoming share
/// file is a 12-byte container header, the share data written so far and the lease, which the
/// server writes past the end of the allocated size at once, leaving a hole in between: the
/// data ends at the first hole after the header (rounded up to a file system block), and since
/// the uploads here write each share front to back in whole writes, at the last write boundary
/// before it.
fn incoming_share_bytes(grid: &Grid, writes: &Writes) -> u64 {
    use std::os::fd::AsRawFd;
    (0..grid.storage_nodes())
        .flat_map(|i| files_below(&grid.shares_dir(i).join("incoming")))
        .map(|path| {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: plain syscall on a descriptor we own.
            let hole = unsafe { libc::lseek(file.as_raw_fd(), 12, libc::SEEK_HOLE) };
            assert!(hole >= 12, "lseek(SEEK_HOLE) failed on {}", path.display());
            let data_end = hole as u64 - 12;
            writes
                .ends
                .iter()
                .copied()
                .filter(|&b| b <= data_end)
                .max()
                .unwrap_or(0)
        })
        .sum()
}

/// Waits until `child` has sent at least `bytes` more to the servers than `from` (by the relay's
/// count), and kills it with SIGKILL; panics if it exits first. Returns the count at the kill.
fn kill_after(grid: &Grid, child: &mut Child, from: u64, bytes: u64, what: &str) -> u64 {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut out);
            }
            panic!("{what}: tahoe-jobs backup ended ({status}) before it could be killed: {out}");
        }
        let now = grid.relay().latest().total_up();
        if now >= from + bytes {
            child.kill().unwrap();
            child.wait().unwrap();
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Kill -9 during a large file, ten times at different points, then a run that completes:
/// every share byte reached the servers once, apart from the writes in flight at each kill.
#[test]
fn a_direct_backup_killed_ten_times_resumes_and_sends_each_byte_once() {
    const KILLS: u64 = 10;
    let grid = Grid::start_with_relay(THREE_OF_FIVE, RELAY_DELAY_MS);
    grid.create_alias("kill");
    let target = "kill:home";
    // The target and its Archives exist before counting, so the killed runs only read them.
    for dir in [target.to_string(), format!("{target}/Archives")] {
        let out = grid.tahoe(["mkdir", dir.as_str()]);
        assert!(out.status.success(), "{}", describe_output(&out));
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // Big enough that ten killed runs never finish it: a kill lands a few milliseconds after the
    // relay's count passes the mark, and with up to SEGMENTS_IN_FLIGHT segments' writes under
    // way a run on an idle machine gets 2-12 MB further by then (measured: 54 MB over nine
    // runs), where the marks below ask for only 1.3-2.3 MB a run.
    let data = seeded_bytes(1401, 96 * MIB + 5);
    write_file(&src.join("big.bin"), &data);
    let share_bytes: u64 = shares_of(&grid, &data).iter().map(|s| s.len() as u64).sum();
    let writes = Writes::of(&grid, &data);
    let total = grid.spec().total as u64;
    let block = DEFAULT_MAX_SEGMENT_SIZE.div_ceil(grid.spec().needed as u64);
    let segment_bytes = block * total;

    let start = grid.relay().counts().total_up();
    let mut at = start;
    for kill in 1..=KILLS {
        let mut child = spawn_backup(&grid, &src, target);
        // Each run sends at least a segment's writes, and a different part of one more
        // (a third more on each kill, in turn), before it is killed.
        let step = segment_bytes + segment_bytes * (kill % 3) / 3;
        let killed_at = kill_after(&grid, &mut child, at, step, &format!("run {kill}"));
        eprintln!(
            "run {kill}: killed after {} bytes received in this run",
            killed_at - at
        );
        at = killed_at;
    }
    let before_last = grid.relay().counts().total_up();
    // At most what the servers hold: a write the last kill cut off may still be on its way
    // through the relay (and land later), which only makes the last run's bound below looser.
    let committed = incoming_share_bytes(&grid, &writes);
    assert!(
        committed > 0 && committed < share_bytes,
        "after the kills the servers hold {committed} of {share_bytes} share bytes"
    );
    let out = backup(&grid, &src, target);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(
        lossy_text(&out.stdout).contains(" 1 files uploaded"),
        "{}",
        describe_output(&out)
    );
    let after_last = grid.relay().counts().total_up();

    // What a run costs besides the file's shares: the node reading and linking the mutable
    // directories, the immutable directory, TLS and HTTP. Measured by one more run with nothing
    // new to upload (Archives names are per second).
    wait_for_the_next_second();
    let out = backup(&grid, &src, target);
    assert!(out.status.success(), "{}", describe_output(&out));
    let per_run = grid.relay().counts().total_up() - after_last;

    // The bound. Share bytes go once each, in write requests of one block (the first with the
    // header, the last with the trailer), one per share and segment, up to
    // `SEGMENTS_IN_FLIGHT` segments at a time.
    // - A kill cuts off the writes in flight: a storage server stores a write only once its
    //   whole body has arrived, so each kill may waste up to that many writes per share.
    // - A resumed run claims each share it continues by writing its header again: one more
    //   write request per share and run, carrying the header.
    // - Each write request adds its HTTP request line and headers (the storage index, the
    //   upload secret and swissnum headers, Content-Range): under 1 KiB with TLS framing; TLS
    //   adds at most 64 bytes per 16 KiB record of body.
    // - Every run pays handshakes, the selection requests and the node's directory work: at
    //   most `per_run`, what a run with nothing to upload costs (it links a new archive, which
    //   the killed runs never get to).
    let runs = KILLS + 1;
    let requests = (writes.ends.len() as u64 + runs) * total;
    let framing = requests * 1024 + share_bytes * 64 / 16384 + runs * total * writes.header;
    let in_flight = KILLS * total * writes.max() * SEGMENTS_IN_FLIGHT as u64;
    let bound = share_bytes + in_flight + framing + runs * per_run;
    let received = after_last - start;
    eprintln!(
        "share bytes {share_bytes}; received {received} over {runs} runs ({:.4}x); bound \
         {bound}; last run received {} for {} share bytes not yet held; a run with nothing \
         new costs {per_run}",
        received as f64 / share_bytes as f64,
        after_last - before_last,
        share_bytes - committed,
    );
    assert!(
        received <= bound,
        "the servers received {received} bytes for {share_bytes} share bytes (bound {bound})"
    );
    // The last run, never killed, sent only what the servers still required. One allowance:
    // the writes the last kill left in flight (up to `SEGMENTS_IN_FLIGHT` per share) reach
    // their server through the relay's delay, maybe after the count above: then each is either
    // stored before the share files were read (not missing, yet counted to this run) or after
    // (missing), and if after this run asked what is missing, sent again. Either way at most
    // that many more writes per share.
    let last = after_last - before_last;
    let last_bound = (share_bytes - committed)
        + framing
        + per_run
        + total * writes.max() * SEGMENTS_IN_FLIGHT as u64;
    assert!(
        last <= last_bound,
        "the last run sent {last} bytes where {} share bytes were missing (bound {last_bound})",
        share_bytes - committed
    );

    assert_same_tree(&restore(&grid, target, tmp.path()), &tree_of(&src));
    let check = grid.tahoe([
        OsStr::new("check"),
        os("--verify"),
        os("kill:home/Latest/big.bin"),
    ]);
    assert!(
        check.status.success() && lossy_text(&check.stdout).contains("Summary: Healthy"),
        "tahoe check --verify: {}",
        lossy_text(&check.stdout)
            .lines()
            .filter(|l| !l.contains("URI:"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(latest_cap(&grid, target).is_some());
}

/// Runs `upload` on a runtime of its own while `watch` runs here; both results.
fn while_uploading<T: Send, W>(
    upload: impl std::future::Future<Output = T> + Send,
    watch: impl FnOnce() -> W,
) -> (T, W) {
    std::thread::scope(|scope| {
        let uploading = scope.spawn(|| crate::support::process::runtime().block_on(upload));
        let watched = watch();
        (uploading.join().expect("the upload panicked"), watched)
    })
}

/// Waits until storage node `i` has received `bytes` more than `from` (by the relay's count).
fn wait_until_received(grid: &Grid, i: usize, from: u64, bytes: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while grid.relay().latest().up[i] < from + bytes {
        assert!(
            std::time::Instant::now() < deadline,
            "storage node {i} did not receive {bytes} bytes within 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `tahoe check --verify --raw TARGET`'s results (a JSON object; holds no cap but is not shown).
fn verify(grid: &Grid, target: &str) -> serde_json::Value {
    let out = grid.tahoe(["check", "--verify", "--raw", target]);
    assert!(out.status.success(), "tahoe check --verify failed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check JSON");
    json["results"].clone()
}

/// Holds `data` as a file `name` in a fresh directory; the directory.
fn source_with(name: &str, data: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_file(&dir.path().join("src").join(name), data);
    dir
}

/// Sets `[storage] reserved_space` of storage node `i` (restarting it): a value above the free
/// disk space makes the server announce no room and refuse every allocation, as a full disk.
fn set_reserved_space(grid: &Grid, i: usize, value: &str) {
    grid.stop_node(i);
    let cfg = grid.storage_node_dir(i).join("tahoe.cfg");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("reserved_space"))
        .map(str::to_owned)
        .collect();
    let at = lines.iter().position(|l| l.trim() == "[storage]").unwrap() + 1;
    lines.insert(at, format!("reserved_space = {value}"));
    std::fs::write(&cfg, lines.join("\n") + "\n").unwrap();
    grid.start_node(i);
}

/// Files under storage node `i`'s shares directory (complete and incoming).
fn share_files(grid: &Grid, i: usize) -> Vec<PathBuf> {
    let mut files = files_below(&grid.shares_dir(i));
    files.sort();
    files
}

/// A server lost while the upload writes to it, then a full disk, on one 3-of-5 grid (happy 4):
/// one server down or full leaves four, which is happy; two leave three, which is not, and the
/// upload fails clearly, linking nothing and leaving no partial share behind.
#[test]
fn direct_uploads_survive_one_lost_or_full_server_and_fail_clearly_with_two() {
    let grid = Grid::start_with_relay(THREE_OF_FIVE, RELAY_DELAY_MS);
    let block = DEFAULT_MAX_SEGMENT_SIZE.div_ceil(3);

    // 1. Node 3 is killed after it has received two blocks of its share: the upload goes on
    //    with the four others and is happy.
    let data = seeded_bytes(1402, 16 * MIB + 3);
    let from = grid.relay().counts().up[3];
    let up = uploader(&grid, 4);
    let (uploaded, ()) = while_uploading(up.upload_bytes(&data), || {
        wait_until_received(&grid, 3, from, 2 * block);
        grid.kill_nodes(&[3]);
    });
    let uploaded = uploaded.expect("the upload goes on without the lost server");
    assert_eq!(
        (uploaded.shares_written, uploaded.happiness),
        (4, 4),
        "{uploaded:?}"
    );
    let cap = uploaded.cap.clone();
    let results = verify(&grid, &cap);
    assert_eq!(results["count-shares-good"], 4, "{results}");
    assert_eq!(results["recoverable"], true, "{results}");
    let got = tempfile::tempdir().unwrap();
    let out = got.path().join("got.bin");
    let get = grid.tahoe([OsStr::new("get"), OsStr::new(&cap), out.as_os_str()]);
    assert!(get.status.success() && std::fs::read(&out).unwrap() == data);
    grid.start_node(3);

    // 2. A backup whose file loses nodes 3 and 4 mid-upload fails, with a clear error, links
    //    nothing, and the live servers keep no partial share.
    grid.create_alias("lost");
    let target = "lost:home";
    let tmp = source_with("big.bin", &seeded_bytes(1403, 16 * MIB + 3));
    let from = grid.relay().counts().up[3];
    let child = spawn_backup(&grid, &tmp.path().join("src"), target);
    wait_until_received(&grid, 3, from, 2 * block);
    grid.kill_nodes(&[3, 4]);
    let out = child.wait_with_output().unwrap();
    let stderr = lossy_text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(
        stderr.matches("not enough storage servers").count() == 1 && stderr.contains("big.bin"),
        "{stderr}"
    );
    assert!(!stderr.contains("URI:") && !lossy_text(&out.stdout).contains("URI:"));
    assert!(
        latest_cap(&grid, target).is_none(),
        "a failed backup linked Latest"
    );
    for i in 0..3 {
        let partial = files_below(&grid.shares_dir(i).join("incoming"));
        assert!(
            partial.is_empty(),
            "node {i} keeps partial shares: {partial:?}"
        );
    }
    grid.start_node(3);
    grid.start_node(4);

    // 3. Node 4's disk is full: the other four take the five shares.
    set_reserved_space(&grid, 4, "1E");
    let on_full = share_files(&grid, 4);
    let data = seeded_bytes(1404, MIB + 11);
    let uploaded = crate::support::process::runtime()
        .block_on(uploader(&grid, 4).upload_bytes(&data))
        .expect("four servers with room are enough");
    assert_eq!(
        (uploaded.shares_written, uploaded.happiness),
        (5, 4),
        "{uploaded:?}"
    );
    assert_eq!(
        share_files(&grid, 4),
        on_full,
        "the full server got a share"
    );
    let results = verify(&grid, &uploaded.cap);
    assert_eq!(results["count-shares-good"], 5, "{results}");
    assert_eq!(results["healthy"], true, "{results}");

    // 4. Nodes 3 and 4 full: three servers are not happy. The uploader says so...
    set_reserved_space(&grid, 3, "1E");
    let data = seeded_bytes(1405, MIB + 13);
    let err = crate::support::process::runtime()
        .block_on(uploader(&grid, 4).upload_bytes(&data))
        .expect_err("three servers with room are not happy");
    let message = err.to_string();
    // Both full servers are named, as servers without room (Tahoe says "full").
    assert!(
        message.contains("not enough storage servers")
            && message.matches("has no room for a share").count() == 2
            && message.contains("storage3")
            && message.contains("storage4"),
        "{message}"
    );
    eprintln!("two full servers, the uploader says: {message}");
    // ... and so does a backup, which links nothing.
    let tmp = source_with("full.bin", &data);
    let out = backup(&grid, &tmp.path().join("src"), "lost:full");
    let stderr = lossy_text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(
        stderr.matches("not enough storage servers").count() == 1
            && stderr.contains("has no room for a share")
            && stderr.contains("full.bin"),
        "{stderr}"
    );
    eprintln!("two full servers, tahoe-jobs backup says: {stderr}");
    assert!(latest_cap(&grid, "lost:full").is_none());
    for i in 0..5 {
        let partial = files_below(&grid.shares_dir(i).join("incoming"));
        assert!(
            partial.is_empty(),
            "node {i} keeps partial shares: {partial:?}"
        );
    }
}

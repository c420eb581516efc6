//! Budgets on a real grid, through a real daemon (`tahoe-jobs run`):
//!
//! - a backup under a job bandwidth limit takes at least as long as its data allows;
//! - without shaping, a per-server limit written with the server's nickname holds the feed on
//!   estimates (the uploader says which servers its bytes go to);
//! - with shaping on (the client node's tahoe.cfg routes its storage traffic through the
//!   daemon's SOCKS5 proxy), a limited storage server receives no faster than its limit, counted
//!   by the proxy and on the server's own share files, while an unlimited one gets its share;
//!   `tahoe-jobs shaping` says so, and the status says which mode is in force.
//!
//! Only lower bounds on time and upper bounds on rates are asserted: a loaded CI machine makes
//! everything slower, never faster.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tahoe_jobs_config::jiff::Timestamp;

use crate::support::daemon::{free_port, http, Daemon};
use crate::support::node::{latest_cap, ls_json};
use crate::support::process::describe_output;
use crate::support::shares::stored_share_bytes;
use crate::support::{shared_grid, Grid, GridSpec};

/// How long a test backup may take before the test gives up (slow CI included).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// What a limiter may let through at once besides its rate: 100 ms worth (at least 512 bytes).
fn burst(limit: u64) -> u64 {
    (limit / 10).max(512)
}

/// Deterministic incompressible bytes; `seed` keeps tests (and files) apart, since Tahoe's
/// convergent encryption would store equal contents only once.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A source tree of `files` files of `size` bytes each; returns their total. The seed is xored
/// with each file's index: a test that counts uploaded bytes needs a seed no other test comes
/// near, since equal files are stored once on the shared grid.
fn make_source(dir: &Path, seed: u64, files: usize, size: usize) -> u64 {
    for i in 0..files {
        let data = noise(seed ^ (std::process::id() as u64) << 20 ^ i as u64, size);
        std::fs::write(dir.join(format!("f{i}.bin")), data).unwrap();
    }
    (files * size) as u64
}

/// The budget section of the public status JSON.
fn budget(d: &Daemon) -> Value {
    let (status, _, body) = http().get(&d.url("/?t=json"));
    assert_eq!(status.as_u16(), 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    view["budget"].clone()
}

fn timestamp(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        .parse()
        .unwrap()
}

/// Waits until `job` has completed a run; returns its JSON.
fn wait_completed(d: &Daemon, job: &str) -> Value {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let j = d.job_json(job);
        if !j["last_completed"].is_null() {
            return j;
        }
        assert!(
            j["consecutive_failures"] == 0,
            "the backup failed: {j}\n{}",
            d.log_text()
        );
        assert!(Instant::now() < deadline, "the backup did not finish: {j}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Seconds between a job's last start and completion.
fn run_seconds(job: &Value) -> f64 {
    let started = timestamp(&job["last_started"]);
    let completed = timestamp(&job["last_completed"]);
    completed.duration_since(started).as_secs_f64()
}

fn alias(what: &str) -> String {
    format!("budget{what}{}", std::process::id())
}

#[test]
fn a_backup_under_a_job_limit_finishes_no_sooner_than_its_data_allows() {
    let grid = shared_grid();
    let alias = alias("job");
    grid.create_alias(&alias);
    let src = tempfile::tempdir().unwrap();
    let data = make_source(src.path(), 1, 4, 300_000);
    let limit: u64 = 256 * 1024;
    let toml = format!(
        "[backup.j]\nsource = \"{}\"\ntarget = \"{alias}:j\"\nfrequency = \"1week\"\n\
         bandwidth = \"256KiB/s\"\n",
        src.path().display()
    );
    let d = Daemon::on_node(grid.node_dir(), &toml);
    let job = wait_completed(&d, "backup.j");
    assert_eq!(job["counters"]["files_uploaded"], 4, "{job}");
    let took = run_seconds(&job);
    let at_least = (data - burst(limit)) as f64 / limit as f64;
    assert!(
        took >= at_least,
        "{data} bytes under {limit} B/s took {took:.2} s, less than {at_least:.2} s"
    );
    // The job's figures count what it fed, under its limit.
    let b = budget(&d);
    let up = &b["jobs"]["backup.j"]["upload"];
    assert!(up["bytes"].as_u64().unwrap() >= data, "{b}");
    assert_eq!(up["limit_bytes_per_second"], limit, "{b}");
    assert!(up["throttled_seconds"].as_f64().unwrap() > 0.0, "{b}");
}

#[test]
fn without_shaping_a_server_limit_by_nickname_holds_the_feed_on_estimates() {
    let grid = shared_grid();
    let alias = alias("est");
    grid.create_alias(&alias);
    let src = tempfile::tempdir().unwrap();
    let data = make_source(src.path(), 2, 3, 300_000);
    let limit: u64 = 256 * 1024;
    // The shared grid's only server is the client itself, nicknamed storage0, holding the one
    // share (1-of-1) of every file: it receives all the data. Estimates are the node's data
    // path's (direct uploads charge each server exactly: see the test below).
    let toml = format!(
        "[backup.e]\nsource = \"{}\"\ntarget = \"{alias}:e\"\nfrequency = \"1week\"\n\
         data_path = \"node\"\n\n\
         [budget.server.storage0]\nupload = \"256KiB/s\"\n",
        src.path().display()
    );
    let d = Daemon::on_node(grid.node_dir(), &toml);
    let job = wait_completed(&d, "backup.e");
    let took = run_seconds(&job);
    let at_least = (data - burst(limit)) as f64 / limit as f64;
    assert!(
        took >= at_least,
        "{data} bytes to one server limited to {limit} B/s took {took:.2} s, less than \
         {at_least:.2} s"
    );
    let b = budget(&d);
    assert_eq!(b["accounting"], "estimated", "{b}");
    let notes = b["notes"].to_string();
    assert!(notes.contains("exact shaping is off"), "{b}");
    let server = &b["servers"][grid.server_id(0)];
    assert_eq!(server["accounting"], "estimated", "{b}");
    assert_eq!(server["upload"]["limit_bytes_per_second"], limit, "{b}");
    assert!(server["upload"]["bytes"].as_u64().unwrap() >= data, "{b}");
}

/// A direct backup (the default data path) under a per-server limit charges that server, in
/// the budget, exactly the share bytes it stored: every file's and every immutable directory's
/// shares on the server's disk, nothing estimated.
#[test]
fn a_direct_backup_charges_each_server_exactly_the_share_bytes_it_stored() {
    let grid = shared_grid();
    let alias = alias("exact");
    grid.create_alias(&alias);
    let src = tempfile::tempdir().unwrap();
    make_source(src.path(), 0x100, 3, 300_000);
    std::fs::create_dir(src.path().join("sub")).unwrap();
    make_source(&src.path().join("sub"), 0x200, 2, 150_000);
    let server = grid.server_id(0).to_string();
    let toml = format!(
        "[backup.x]\nsource = \"{}\"\ntarget = \"{alias}:x\"\nfrequency = \"1week\"\n\n\
         [budget.server.storage0]\nupload = \"8MiB/s\"\n",
        src.path().display()
    );
    let d = Daemon::on_node(grid.node_dir(), &toml);
    let job = wait_completed(&d, "backup.x");
    assert_eq!(job["counters"]["files_uploaded"], 5, "{job}");
    assert_eq!(
        job["counters"]["bytes_uploaded"],
        3 * 300_000 + 2 * 150_000,
        "{job}"
    );

    // Every immutable object of the backup: Latest, its subdirectory, the five files.
    let latest = latest_cap(grid, &format!("{alias}:x")).expect("Latest is linked");
    let mut caps = vec![latest];
    for dir in [format!("{alias}:x/Latest"), format!("{alias}:x/Latest/sub")] {
        let listing = ls_json(grid, &dir);
        for child in listing[1]["children"].as_object().unwrap().values() {
            caps.push(child[1]["ro_uri"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(caps.len(), 1 + 4 + 2, "Latest, 3 files and sub, 2 files");
    let stored: u64 = caps
        .iter()
        .map(|cap| {
            stored_share_bytes(grid, cap)
                .get(&server)
                .copied()
                .unwrap_or(0)
        })
        .sum();
    let b = budget(&d);
    let charged = &b["servers"][&server];
    assert_eq!(charged["accounting"], "exact", "{b}");
    assert_eq!(charged["upload"]["limit_bytes_per_second"], 8 << 20, "{b}");
    assert_eq!(
        charged["upload"]["bytes"].as_u64(),
        Some(stored),
        "the server was charged other than the share bytes it stored: {b}"
    );
    // The job's own figure counts the same share bytes (it sends them itself).
    assert_eq!(
        b["jobs"]["backup.x"]["upload"]["bytes"].as_u64(),
        Some(stored),
        "{b}"
    );
}

/// Bytes allocated on disk under `dir` (share files are created sparse at their full size, so
/// the allocated blocks, not the apparent size, tell how much has arrived).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            total += allocated(&e.path());
        } else if m.is_file() {
            total += m.blocks() * 512;
        }
    }
    total
}

/// Apparent sizes of the share files under `dir`.
fn share_sizes(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            total += share_sizes(&e.path());
        } else if m.is_file() {
            total += m.len();
        }
    }
    total
}

/// Adds the SOCKS5 recipe to a node's tahoe.cfg (`force_foolscap` into its `[client]`).
fn route_through_proxy(node_dir: &Path, port: u16) {
    let path = node_dir.join("tahoe.cfg");
    let cfg = std::fs::read_to_string(&path).unwrap();
    assert!(cfg.contains("\n[client]\n"), "{cfg}");
    let mut cfg = cfg.replacen("\n[client]\n", "\n[client]\nforce_foolscap = true\n", 1);
    cfg.push_str(&format!(
        "\n[connections]\ntcp = tor\n\n[tor]\nlaunch = false\nsocks.port = tcp:127.0.0.1:{port}\n"
    ));
    std::fs::write(&path, cfg).unwrap();
}

/// One look at the limited and the unlimited server: the disk, then the proxy's counts.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Before reading the disk and after the status request, so everything was read between.
    before: Instant,
    after: Instant,
    proxy_limited: u64,
    proxy_free: u64,
    disk_limited: u64,
}

#[test]
fn with_shaping_a_limited_server_receives_no_faster_than_its_limit_and_another_gets_its_share() {
    // Two storage servers, 1-of-2 with happy 2: every file goes whole to both. The client
    // (storage0) stays unlimited; storage1 is limited by nickname.
    let grid = Grid::start(GridSpec {
        storage_nodes: 2,
        needed: 1,
        happy: 2,
        total: 2,
    });
    let alias = alias("shaped");
    grid.create_alias(&alias);
    let src = tempfile::tempdir().unwrap();
    let data = make_source(src.path(), 3, 3, 300_000);
    let limit: u64 = 128 * 1024;
    let port = free_port();
    std::fs::write(
        grid.node_dir().join("tahoe-jobs.cfg"),
        format!(
            "[jobs]\nshaping.port = 127.0.0.1:{port}\n\n\
             [budget]\nserver.storage1.upload = 128KiB/s\nserver.nobody.upload = 1MiB/s\n\n\
             [backup]\ns.source = {}\ns.target = {alias}:s\ns.frequency = 1week\n\
             s.allowed_times = none\ns.data_path = node\n",
            src.path().display()
        ),
    )
    .unwrap();
    let d = Daemon::on_node(grid.node_dir(), "");

    // The node does not use the proxy yet: the command prints the lines and says so.
    let out = d.cli(&["shaping"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("socks.port = tcp:127.0.0.1:{port}"))
            && printed.contains("force_foolscap = true")
            && printed.contains("tcp = tor"),
        "{}",
        describe_output(&out)
    );
    assert!(
        printed.contains("WRONG tahoe.cfg"),
        "{}",
        describe_output(&out)
    );
    assert_eq!(budget(&d)["accounting"], "estimated");

    // Route the client's storage traffic through the daemon's proxy.
    route_through_proxy(grid.node_dir(), port);
    grid.stop_client();
    grid.start_client();
    let deadline = Instant::now() + Duration::from_secs(90);
    while budget(&d)["accounting"] != "exact" {
        assert!(
            Instant::now() < deadline,
            "exact shaping never came on: {}\n{}",
            budget(&d),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let out = d.cli(&["shaping"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Verified"),
        "{}",
        describe_output(&out)
    );
    let b = budget(&d);
    let notes = b["notes"].to_string();
    assert!(notes.contains("Exact shaping"), "{b}");
    assert!(notes.contains("server.nobody"), "{b}");

    let limited = grid.server_id(1).to_string();
    let free = grid.server_id(0).to_string();
    let sample = || {
        let before = Instant::now();
        // The disk first: whatever is on it had passed the proxy before the proxy is read.
        let disk_limited = allocated(&grid.shares_dir(1));
        let b = budget(&d);
        let after = Instant::now();
        let up = |id: &str| b["servers"][id]["upload"]["bytes"].as_u64().unwrap_or(0);
        Sample {
            before,
            after,
            proxy_limited: up(&limited),
            proxy_free: up(&free),
            disk_limited,
        }
    };
    let shares_before = [
        share_sizes(&grid.shares_dir(0)),
        share_sizes(&grid.shares_dir(1)),
    ];
    let first = sample();
    let out = d.cli(&["start", "backup.s", "--ignore-window"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let mut samples = vec![first];
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        samples.push(sample());
        let j = d.job_json("backup.s");
        if !j["last_completed"].is_null() {
            break;
        }
        assert!(j["consecutive_failures"] == 0, "{j}\n{}", d.log_text());
        assert!(Instant::now() < deadline, "the backup did not finish: {j}");
    }
    let last = *samples.last().unwrap();

    // Both servers hold a whole copy of every file now.
    let got = [
        share_sizes(&grid.shares_dir(0)) - shares_before[0],
        share_sizes(&grid.shares_dir(1)) - shares_before[1],
    ];
    assert!(
        got[0] >= data && got[1] >= data,
        "share bytes {got:?} < {data}"
    );
    // The proxy saw at least what landed in the share files, for each server.
    let sent = [
        last.proxy_free - first.proxy_free,
        last.proxy_limited - first.proxy_limited,
    ];
    assert!(
        sent[0] >= got[0] && sent[1] >= got[1],
        "the proxy counted {sent:?} bytes, the share files grew by {got:?}"
    );
    let b = budget(&d);
    assert_eq!(
        b["servers"][&limited]["upload"]["limit_bytes_per_second"], limit,
        "{b}"
    );
    assert!(
        b["servers"][&free]["upload"]["limit_bytes_per_second"].is_null(),
        "{b}"
    );
    assert_eq!(b["servers"][&limited]["accounting"], "exact", "{b}");

    // Over any stretch of the run, the proxy let no more reach the limited server than its
    // limit allows (plus one burst and one copy buffer in flight).
    let slack = burst(limit) + 64 * 1024;
    for (i, a) in samples.iter().enumerate() {
        for z in &samples[i + 1..] {
            let window = z.after.duration_since(a.before).as_secs_f64();
            let allowed = (limit as f64 * window) as u64 + slack;
            let by_proxy = z.proxy_limited - a.proxy_limited;
            assert!(
                by_proxy <= allowed,
                "the proxy let {by_proxy} bytes reach the limited server in {window:.2} s \
                 (at most {allowed})"
            );
        }
    }
    // The server's own share files agree: at no time did more land on its disk than the proxy
    // had counted, nor than the limit allows since the run began. (Not over shorter stretches:
    // bytes the proxy passed may wait in socket buffers while a busy server catches up.)
    // Allocation is in 4 KiB blocks: a few partly written ones per share file in progress.
    let blocks = 16 * 4096;
    for z in &samples {
        let on_disk = z.disk_limited.saturating_sub(first.disk_limited);
        let counted = z.proxy_limited - first.proxy_limited;
        assert!(
            on_disk <= counted + blocks,
            "{on_disk} bytes landed on the limited server, the proxy passed only {counted}"
        );
        let window = z.after.duration_since(first.before).as_secs_f64();
        let allowed = (limit as f64 * window) as u64 + slack + blocks;
        assert!(
            on_disk <= allowed,
            "{on_disk} bytes landed on the limited server in {window:.2} s (at most {allowed})"
        );
    }
    // And so the run took at least as long as the limited server's share needed.
    let took = run_seconds(&d.job_json("backup.s"));
    let at_least = (got[1] - slack) as f64 / limit as f64;
    assert!(
        took >= at_least,
        "{} share bytes at {limit} B/s arrived in {took:.2} s, less than {at_least:.2} s",
        got[1]
    );
}

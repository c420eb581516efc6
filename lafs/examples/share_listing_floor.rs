//! The storage servers' floor for a check pass: one share listing per immutable object on every
//! server (`GET /storage/v1/immutable/<si>/shares`), from a tight loop over this crate's client
//! with many objects in flight, so the time is what the servers (and the wire) need, not what a
//! checker does around the listings. With `--add-lease`, each listing is preceded by the lease
//! renewal on that server, as a check with add-lease does (`PUT /storage/v1/lease/<si>`).
//!
//! ```text
//! share_listing_floor NODEDIR CAPS_FILE [--concurrency N] [--add-lease]
//! ```
//!
//! CAPS_FILE holds one capability per line (read, verify or write caps; `tahoe manifest
//! --verify-cap` writes such a list after each path): CHK and DIR2-CHK objects are listed,
//! everything else (mutable, literal) is skipped, as `tahoe-jobs check` leaves those to the
//! node. Servers come from NODEDIR's introducer cache, as for `tahoe-jobs check`. Prints one line
//! `floor: ...` with the objects, requests, elapsed seconds and what was found; never a cap.
//! Fails when a server did not answer (the floor would then not be the same work).
//!
//! Used by `scripts/bench-check`; not a test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use tahoe_jobs_lafs::cap::Capability;
use tahoe_jobs_lafs::discovery::load_servers;
use tahoe_jobs_lafs::grid::StorageGrid;
use tahoe_jobs_lafs::lease::ClientLeaseSecrets;
use tahoe_jobs_lafs::storage::Timeouts;

struct Args {
    node_dir: PathBuf,
    caps_file: PathBuf,
    concurrency: usize,
    add_lease: bool,
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: share_listing_floor NODEDIR CAPS_FILE [--concurrency N] [--add-lease]";
    let mut positional = Vec::new();
    let mut concurrency = 64;
    let mut add_lease = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--concurrency" => {
                concurrency = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .ok_or("--concurrency needs a positive number")?;
            }
            "--add-lease" => add_lease = true,
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}\n{usage}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [node_dir, caps_file] = <[PathBuf; 2]>::try_from(positional).map_err(|_| usage)?;
    Ok(Args {
        node_dir,
        caps_file,
        concurrency,
        add_lease,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.caps_file)
        .map_err(|e| format!("cannot read {}: {e}", args.caps_file.display()))?;
    // `tahoe manifest` lines are "CAP PATH"; a bare list is one cap a line.
    // One listing per object, as a check pass visits each object once (a manifest may name an
    // object under two paths).
    let caps: Vec<Capability> = text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|word| Capability::parse(word).ok())
        .filter(|cap| cap.chk_params().is_some())
        .filter_map(|cap| Some((cap.storage_index()?.0, cap)))
        .collect::<BTreeMap<[u8; 16], Capability>>()
        .into_values()
        .collect();
    if caps.is_empty() {
        return Err(format!(
            "{} holds no CHK or DIR2-CHK capability",
            args.caps_file.display()
        ));
    }
    let servers = load_servers(&args.node_dir).map_err(|e| e.to_string())?;
    let grid = StorageGrid::new(&servers, Timeouts::default()).map_err(|e| e.to_string())?;
    if !grid.all_speak_http() {
        return Err("a server announces no NURL: the floor needs the storage protocol".into());
    }
    let lease = if args.add_lease {
        Some(ClientLeaseSecrets::from_node_dir(&args.node_dir).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let lease = lease.as_ref();
    let grid = &grid;

    let start = Instant::now();
    let results: Vec<_> = stream::iter(&caps)
        .map(|cap| async move { grid.check_immutable(cap, lease).await })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();

    let (mut healthy, mut shares, mut failures) = (0usize, 0u64, 0usize);
    for result in results {
        let checked = result.map_err(|e| e.to_string())?;
        healthy += usize::from(checked.results.healthy);
        shares += checked.results.count_shares_good;
        failures += checked.failures.len();
    }
    let per_server = if args.add_lease { 2 } else { 1 };
    println!(
        "floor: {} objects, {} servers, {} requests{}, concurrency {}: {:.3}s ({:.3} ms/object); {} healthy, {} shares found, {} failed answers",
        caps.len(),
        servers.len(),
        caps.len() * servers.len() * per_server,
        if args.add_lease { " (lease + listing)" } else { "" },
        args.concurrency,
        secs(elapsed),
        1000.0 * secs(elapsed) / caps.len() as f64,
        healthy,
        shares,
        failures,
    );
    if failures > 0 {
        return Err(format!(
            "{failures} answers failed: the floor did not do the same work"
        ));
    }
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("share_listing_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

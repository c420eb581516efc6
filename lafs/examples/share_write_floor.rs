//! The storage servers' floor for a first backup: the same share writes as uploading every file
//! of a tree, from a tight loop over this crate's client with many files in flight. For each
//! file bigger than a literal cap, shares of the size its CHK encoding has (k-of-N, the share
//! layout's allocated size) are placed on the servers in the file's permuted order, one
//! allocation per server (`POST /storage/v1/immutable/<si>`, which also adds the node's lease)
//! and one write per segment of each share (`PATCH`; the last one completes the share), up to
//! four in flight per share, as a pipelined upload sends them (a one-segment file is one write
//! per share, as a direct upload sends it). No encoding, no share listing before the allocation, no directory
//! and nothing through the node: what is left is what the servers must do to store the shares.
//!
//! ```text
//! share_write_floor NODEDIR TREE --needed K --total N [--concurrency C]
//! ```
//!
//! The storage indexes are random (the shares hold random bytes), so nothing is already on the
//! servers and the run leaves unreadable shares behind: use it on a throwaway grid only. Prints
//! one line `floor: ...`; fails when a server refuses a share.
//!
//! Used by `scripts/bench`; not a test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use tahoe_jobs_lafs::cap::StorageIndex;
use tahoe_jobs_lafs::chk::{
    EncodingParams, SegmentPlan, ShareLayout, DEFAULT_MAX_SEGMENT_SIZE, LIT_SIZE_THRESHOLD,
};
use tahoe_jobs_lafs::discovery::load_servers;
use tahoe_jobs_lafs::grid::StorageGrid;
use tahoe_jobs_lafs::lease::ClientLeaseSecrets;
use tahoe_jobs_lafs::storage::{StorageClient, Timeouts, UploadSecret};
use tahoe_jobs_lafs::upload::placement::permuted_order;

struct Args {
    node_dir: PathBuf,
    tree: PathBuf,
    params: EncodingParams,
    concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: share_write_floor NODEDIR TREE --needed K --total N [--concurrency C]";
    let mut positional = Vec::new();
    let (mut needed, mut total, mut concurrency) = (None, None, 32usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| {
            args.next()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .ok_or(format!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--needed" => needed = Some(number("--needed")?),
            "--total" => total = Some(number("--total")?),
            "--concurrency" => concurrency = number("--concurrency")?,
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}\n{usage}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [node_dir, tree] = <[PathBuf; 2]>::try_from(positional).map_err(|_| usage)?;
    let (Some(needed), Some(total)) = (needed, total) else {
        return Err(usage.into());
    };
    let params = EncodingParams {
        needed: u16::try_from(needed).map_err(|_| "--needed is too big")?,
        total: u16::try_from(total).map_err(|_| "--total is too big")?,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    };
    Ok(Args {
        node_dir,
        tree,
        params,
        concurrency,
    })
}

/// Sizes of the regular files under `dir` (symlinks not followed).
fn file_sizes(dir: &Path, sizes: &mut Vec<u64>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            file_sizes(&entry.path(), sizes)?;
        } else if kind.is_file() {
            sizes.push(entry.metadata()?.len());
        }
    }
    Ok(())
}

struct Server {
    client: StorageClient,
    permutation_seed: Vec<u8>,
    lease_seed: Vec<u8>,
}

/// Writes in flight per share.
const WRITES_IN_FLIGHT: usize = 4;

/// Allocates and writes the shares of one file of `size` bytes. Returns (shares, bytes, requests).
async fn store_one(
    servers: &[Server],
    lease: &ClientLeaseSecrets,
    params: &EncodingParams,
    size: u64,
    filler: &Bytes,
) -> Result<(u64, u64, u64), String> {
    let plan = SegmentPlan::new(params, size).map_err(|e| e.to_string())?;
    let allocated_size = ShareLayout::new(&plan).allocated_size();
    let segments = plan.num_segments;
    let mut si = [0u8; 16];
    getrandom::getrandom(&mut si).map_err(|e| e.to_string())?;
    let si = StorageIndex(si);
    let seeds: Vec<&[u8]> = servers
        .iter()
        .map(|s| s.permutation_seed.as_slice())
        .collect();
    let order = permuted_order(&si.0, &seeds);
    let mut placement: BTreeMap<usize, BTreeSet<u16>> = BTreeMap::new();
    for shnum in 0..params.total {
        let server = order[usize::from(shnum) % order.len()];
        placement.entry(server).or_default().insert(shnum);
    }
    let data = filler.slice(0..allocated_size as usize);
    let per_server = placement.iter().map(|(&i, shares)| {
        let server = &servers[i];
        let data = data.clone();
        async move {
            let secret = UploadSecret::random();
            let lease = lease.for_share(&si, &server.lease_seed);
            let allocation = server
                .client
                .allocate_immutable(&si, &secret, &lease, shares, allocated_size)
                .await
                .map_err(|e| e.to_string())?;
            if &allocation.allocated != shares {
                return Err(format!(
                    "{} allocated {} of {} shares",
                    server.client.name(),
                    allocation.allocated.len(),
                    shares.len()
                ));
            }
            try_join_all(shares.iter().map(|&shnum| {
                let data = data.clone();
                let secret = &secret;
                async move {
                    // One write per segment (the block, the first with the header, the last
                    // with the trailer), a few in flight: what a pipelined uploader sends.
                    let step = allocated_size.div_ceil(segments);
                    let answers: Vec<bool> =
                        stream::iter((0..allocated_size).step_by(step as usize))
                            .map(|offset| {
                                let end = (offset + step).min(allocated_size);
                                let chunk = data.slice(offset as usize..end as usize);
                                async move {
                                    server
                                        .client
                                        .write_immutable(&si, shnum, secret, offset, chunk)
                                        .await
                                        .map(|progress| progress.finished)
                                        .map_err(|e| e.to_string())
                                }
                            })
                            .buffer_unordered(WRITES_IN_FLIGHT)
                            .try_collect()
                            .await?;
                    if answers.contains(&true) {
                        Ok(answers.len() as u64)
                    } else {
                        Err(format!(
                            "{}: a whole share left ranges required",
                            server.client.name()
                        ))
                    }
                }
            }))
            .await
            .map(|writes| (shares.len() as u64, writes.iter().sum::<u64>()))
        }
    });
    let done = try_join_all(per_server).await?;
    let written: u64 = done.iter().map(|d| d.0).sum();
    let requests = placement.len() as u64 + done.iter().map(|d| d.1).sum::<u64>();
    Ok((written, written * allocated_size, requests))
}

async fn run(args: Args) -> Result<(), String> {
    let mut sizes = Vec::new();
    file_sizes(&args.tree, &mut sizes)
        .map_err(|e| format!("cannot walk {}: {e}", args.tree.display()))?;
    let literal = sizes.iter().filter(|&&s| s <= LIT_SIZE_THRESHOLD).count();
    sizes.retain(|&s| s > LIT_SIZE_THRESHOLD);
    if sizes.is_empty() {
        return Err(format!(
            "{} has no file bigger than a literal cap",
            args.tree.display()
        ));
    }
    let infos = load_servers(&args.node_dir).map_err(|e| e.to_string())?;
    let grid = StorageGrid::new(&infos, Timeouts::default()).map_err(|e| e.to_string())?;
    let servers: Vec<Server> = grid
        .servers()
        .iter()
        .filter_map(|s| {
            s.client.clone().map(|client| Server {
                client,
                permutation_seed: s.info.permutation_seed.clone(),
                lease_seed: s.info.lease_seed.clone(),
            })
        })
        .collect();
    if servers.is_empty() {
        return Err("no server announces the storage protocol".into());
    }
    let lease = ClientLeaseSecrets::from_node_dir(&args.node_dir).map_err(|e| e.to_string())?;
    let largest = sizes.iter().copied().max().unwrap_or(1);
    let plan = SegmentPlan::new(&args.params, largest).map_err(|e| e.to_string())?;
    let mut filler = vec![0u8; ShareLayout::new(&plan).allocated_size() as usize];
    getrandom::getrandom(&mut filler).map_err(|e| e.to_string())?;
    let filler = Bytes::from(filler);
    let (servers, lease, params, filler) = (&servers, &lease, &args.params, &filler);

    let start = Instant::now();
    let totals: Vec<(u64, u64, u64)> = stream::iter(sizes.iter().copied())
        .map(|size| store_one(servers, lease, params, size, filler))
        .buffer_unordered(args.concurrency)
        .try_collect()
        .await?;
    let elapsed = start.elapsed().as_secs_f64();
    let (shares, bytes, requests) = totals
        .iter()
        .fold((0, 0, 0), |a, t| (a.0 + t.0, a.1 + t.1, a.2 + t.2));
    println!(
        "floor: {} files ({} literal skipped), {}-of-{} on {} servers, {} shares ({} bytes), {} requests, concurrency {}: {:.3}s ({:.1} files/s)",
        sizes.len(),
        literal,
        params.needed,
        params.total,
        servers.len(),
        shares,
        bytes,
        requests,
        args.concurrency,
        elapsed,
        sizes.len() as f64 / elapsed,
    );
    Ok(())
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
            eprintln!("share_write_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

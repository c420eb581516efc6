//! Checks that need the node: `node.url`, the node running and answering, its storage servers,
//! the jobs' targets on the grid, and shaping as configured.

use std::path::Path;
use std::time::Duration;

use tahoe_jobs_config::{Config, NodeFacts, Target};
use tahoe_jobs_lafs::discovery::load_servers;
use tahoe_jobs_lafs::grid::StorageGrid;
use tahoe_jobs_lafs::storage::Timeouts;
use tahoe_jobs_tasks::backup::BackupParams;
use tahoe_jobs_tasks::check::CheckParams;
use tahoe_jobs_tasks::prune::PruneParams;
use tahoe_jobs_tasks::tahoe::servers::ServerMap;
use tahoe_jobs_tasks::tahoe::{read_node_url, Aliases, Cap, ClientOptions, TahoeClient};
use tahoe_jobs_tasks::DataPath;
use tokio::runtime::Runtime;

use super::finding::Finding;
use crate::commands::{node_watch, shaping};

/// How long the node gets to answer each question.
const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// A node that answers.
pub struct Node {
    runtime: Runtime,
    client: TahoeClient,
    servers: ServerMap,
}

/// `node.url`, the node's process, its web API, and its storage servers; answers the node
/// when it answers.
pub fn examine(node_dir: &Path, out: &mut Vec<Finding>) -> Option<Node> {
    let start = format!("start the node: tahoe run {}", node_dir.display());
    let url = match read_node_url(node_dir) {
        Ok(url) => {
            out.push(Finding::ok("node.url", format!("the web API is at {url}")));
            url
        }
        Err(_) => {
            out.push(Finding::fail(
                "node.url",
                format!(
                    "{} is missing: the node has never been started (it writes the file when \
                     it starts)",
                    node_dir.join("node.url").display()
                ),
                start,
            ));
            return None;
        }
    };
    // A node whose process is not visible (another pid namespace) but answers is running; a
    // node with neither is down, and one with a process but no answer has a stale node.url.
    let pid = node_watch::node_pid(node_dir);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            out.push(Finding::fail(
                "node reachable",
                format!("cannot start an async runtime: {e}"),
                "free some memory or file descriptors and try again",
            ));
            return None;
        }
    };
    let options = ClientOptions {
        request_timeout: NODE_TIMEOUT,
    };
    let looked = TahoeClient::new(&url, &options).and_then(|client| {
        let servers = runtime.block_on(ServerMap::fetch(&client))?;
        Ok((client, servers))
    });
    let (client, servers) = match looked {
        Ok(ok) => ok,
        Err(e) => {
            out.push(match pid {
                Some(pid) => Finding::ok("node running", format!("pid {pid}")),
                None => Finding::fail(
                    "node running",
                    "no node process runs for this directory (running.process names none)",
                    format!("{start}; under systemd: systemctl start tahoe-node (see the README)"),
                ),
            });
            out.push(Finding::fail(
                "node reachable",
                format!("the node's web API at {url} does not answer: {e}"),
                format!(
                    "{start} (if it runs, node.url is stale: restart it so it writes the \
                     address it listens on)"
                ),
            ));
            return None;
        }
    };
    out.push(match pid {
        Some(pid) => Finding::ok("node running", format!("pid {pid}")),
        None => Finding::ok(
            "node running",
            "it answers (its process is not visible from here)",
        ),
    });
    out.push(Finding::ok("node reachable", format!("{url} answers")));
    out.push(servers_finding(node_dir, &servers));
    Some(Node {
        runtime,
        client,
        servers,
    })
}

/// Whether enough storage servers are connected for an upload to succeed.
fn servers_finding(node_dir: &Path, servers: &ServerMap) -> Finding {
    const CHECK: &str = "storage servers";
    let happy = NodeFacts::read(node_dir)
        .map(|f| f.encoding.happy as usize)
        .unwrap_or(tahoe_jobs_config::Encoding::default().happy as usize);
    let connected = servers.connected_ids().len();
    let connected_ids = servers.connected_ids();
    let mut known_ids: Vec<&str> = servers.servers.iter().map(|s| s.nodeid.as_str()).collect();
    known_ids.sort();
    known_ids.dedup();
    let known = known_ids.len();
    let mut not: Vec<String> = servers
        .servers
        .iter()
        .filter(|s| !connected_ids.contains(&s.nodeid))
        .map(|s| {
            let name = if s.nickname.is_empty() {
                s.nodeid.clone()
            } else {
                s.nickname.clone()
            };
            format!("{name} ({})", s.status)
        })
        .collect();
    not.dedup();
    let fix_not = if not.is_empty() {
        format!(
            "start the storage servers that are not connected, or check their network: {}",
            not.join(", ")
        )
    } else {
        String::new()
    };
    if known == 0 {
        Finding::fail(
            CHECK,
            "the node knows no storage server",
            "check [client] introducer.furl in tahoe.cfg (or private/introducers.yaml) and that \
             the introducer runs; then restart the node",
        )
    } else if connected < happy {
        Finding::fail(
            CHECK,
            format!(
                "{connected} of {known} connected, but shares.happy = {happy}: uploads will \
                 fail"
            ),
            if fix_not.is_empty() {
                "start the storage servers that are down (or check their network), add storage \
                 servers, or lower [client] shares.happy in tahoe.cfg"
                    .into()
            } else {
                fix_not
            },
        )
    } else if connected < known {
        Finding::warn(
            CHECK,
            format!("{connected} of {known} connected (shares.happy = {happy} is met)"),
            fix_not,
        )
    } else {
        Finding::ok(
            CHECK,
            format!("all {known} connected (shares.happy = {happy})"),
        )
    }
}

/// Each job's target: its alias exists, a backup's is writable, and the directory is on the
/// grid. Capabilities are never printed, only their kind.
pub fn targets(node_dir: &Path, config: &Config, node: Option<&Node>, out: &mut Vec<Finding>) {
    let aliases = Aliases::read(node_dir).ok();
    for job in &config.jobs {
        // Prune unlinks archives, so it needs to write like a backup.
        let (target, needs_write) = if let Some(p) = job.params.get::<BackupParams>() {
            (&p.target, true)
        } else if let Some(p) = job.params.get::<CheckParams>() {
            (&p.target, p.repair)
        } else if let Some(p) = job.params.get::<PruneParams>() {
            (&p.target, true)
        } else {
            continue;
        };
        let check = format!("{} target", job.id());
        let cap = match target {
            Target::Alias { alias, .. } => match aliases.as_ref().and_then(|a| a.get(alias)) {
                Some(cap) => cap.clone(),
                None => {
                    out.push(Finding::fail(
                        &check,
                        format!("the node has no alias {alias:?}"),
                        format!(
                            "create it: tahoe -d {} create-alias {alias}",
                            node_dir.display()
                        ),
                    ));
                    continue;
                }
            },
            Target::Cap { cap, .. } => Cap::new(cap.clone()),
        };
        if !cap.is_directory() {
            out.push(Finding::fail(
                &check,
                format!("{target} is a {}, not a directory", shown_kind(&cap)),
                "point the target at a directory",
            ));
            continue;
        }
        if needs_write && (cap.kind().contains("-RO") || cap.is_immutable()) {
            out.push(Finding::fail(
                &check,
                format!(
                    "{target} is read-only ({}): the job must write there",
                    shown_kind(&cap)
                ),
                "give the job an alias made with a write capability (tahoe create-alias NAME)",
            ));
            continue;
        }
        let Some(node) = node else {
            out.push(Finding::skipped(
                &check,
                format!("{target} is known, but the node does not answer to look it up"),
            ));
            continue;
        };
        match node.runtime.block_on(node.client.list(&cap, "")) {
            Ok(_) => out.push(Finding::ok(
                &check,
                format!(
                    "{target}: the directory is on the grid{}",
                    if needs_write { " and writable" } else { "" }
                ),
            )),
            Err(e) => out.push(Finding::fail(
                &check,
                format!("the directory {target} cannot be read from the grid: {e}"),
                "if its servers are gone, make a new alias (tahoe create-alias) and point the job \
                 at it",
            )),
        }
    }
}

/// A capability's kind without the `URI:` that would make it look like one (`DIR2-RO`).
fn shown_kind(cap: &Cap) -> &str {
    cap.kind().trim_start_matches("URI:")
}

/// Shaping as configured: with `[jobs] shaping.port`, the node's tahoe.cfg routes through the
/// proxy and the running node uses it; `[budget] server.NAME` names servers the node knows.
pub fn shaping(node_dir: &Path, config: &Config, node: Option<&Node>, out: &mut Vec<Finding>) {
    const CHECK: &str = "shaping";
    match config.daemon.shaping_addr {
        None => out.push(Finding::ok(
            CHECK,
            "exact shaping is off ([jobs] shaping.port not set); limits are kept by pacing",
        )),
        Some(addr) => {
            let cfg = shaping::check_tahoe_cfg(node_dir, addr);
            for wrong in &cfg.wrong {
                out.push(Finding::fail(
                    CHECK,
                    format!("tahoe.cfg: {wrong}"),
                    "tahoe-jobs shaping --print shows the lines to add; restart the node after",
                ));
            }
            if cfg.wrong.is_empty() {
                out.push(Finding::ok(
                    CHECK,
                    format!("tahoe.cfg routes the node's storage traffic through {addr}"),
                ));
                if let Some(node) = node {
                    let mut f = shaping::Findings::default();
                    shaping::node_findings(&node.servers, &mut f);
                    for wrong in f.wrong {
                        out.push(Finding::fail(
                            CHECK,
                            format!("the running node: {wrong}"),
                            "restart the node after tahoe-jobs run is started; then run \
                             tahoe-jobs shaping",
                        ));
                    }
                }
            }
        }
    }
    let names = node_watch::configured_names(config);
    if names.is_empty() {
        return;
    }
    let Some(node) = node else {
        out.push(Finding::skipped(
            "server limits",
            "the node does not answer, so [budget] server names cannot be matched",
        ));
        return;
    };
    let resolution = node.servers.resolve_names(names.iter().map(String::as_str));
    if resolution.problems.is_empty() {
        out.push(Finding::ok(
            "server limits",
            format!(
                "every [budget] server name matches one server: {}",
                names.join(", ")
            ),
        ));
    }
    for problem in resolution.problems {
        out.push(Finding::fail(
            "server limits",
            problem.to_string(),
            "use the nickname or id shown on the node's welcome page",
        ));
    }
}

/// The direct path to the storage servers (Tahoe's storage protocol, without the node), where
/// a job uses it: every server the node has heard of is asked for its protocol version, with
/// the pin and swissnum of its announcement, as a job would.
pub fn direct_storage(node_dir: &Path, config: &Config, out: &mut Vec<Finding>) {
    let check = "direct storage";
    let users: Vec<String> = config
        .jobs
        .iter()
        .filter(|job| {
            let backup = job.params.get::<BackupParams>().map(|p| p.data_path);
            let check = job.params.get::<CheckParams>().map(|p| p.data_path);
            backup.or(check) == Some(DataPath::Direct)
        })
        .map(|job| job.id())
        .collect();
    if users.is_empty() {
        out.push(Finding::skipped(
            check,
            "no job uses it (every backup and check job has data_path = node)",
        ));
        return;
    }
    let servers = match load_servers(node_dir) {
        Ok(servers) => servers,
        Err(e) => {
            out.push(Finding::fail(
                check,
                format!("the node's server announcements cannot be read: {e}"),
                "start the node so that it hears the introducer (private/introducer_*_cache.yaml), \
                 or list the servers in private/servers.yaml",
            ));
            return;
        }
    };
    let grid = match StorageGrid::new(&servers, DOCTOR_TIMEOUTS) {
        Ok(grid) => grid,
        Err(e) => {
            out.push(Finding::fail(check, e.to_string(), "see the message"));
            return;
        }
    };
    let speaking: Vec<_> = grid
        .servers()
        .iter()
        .filter(|s| s.client.is_some())
        .collect();
    if speaking.is_empty() {
        out.push(Finding::warn(
            check,
            format!(
                "no storage server announces Tahoe's HTTPS storage protocol, so {} use the node \
                 instead (with one warning a run)",
                users.join(", ")
            ),
            "run Tahoe-LAFS 1.19 or later on the storage servers without force_foolscap, or set \
             data_path = node on those jobs",
        ));
        return;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            out.push(Finding::fail(
                check,
                format!("cannot start a runtime: {e}"),
                "see the message",
            ));
            return;
        }
    };
    for server in grid.servers() {
        let name = format!("{check}: {}", server.info.display_name());
        let Some(client) = &server.client else {
            out.push(Finding::warn(
                &name,
                "announces only Foolscap: direct uploads place no shares on it",
                "upgrade it to Tahoe-LAFS 1.19 or later, or set data_path = node",
            ));
            continue;
        };
        match runtime.block_on(client.version()) {
            Ok(_) => out.push(Finding::ok(&name, "answers the storage protocol")),
            Err(e) => out.push(Finding::warn(
                &name,
                // The error names the server and its address, never its swissnum.
                e.to_string(),
                "a direct check counts it as holding no shares and an upload places none on it; \
                 make sure it runs and that its tub.location is reachable from this machine",
            )),
        }
    }
}

/// Short, so that a server that is down does not hold doctor up.
const DOCTOR_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    request: Duration::from_secs(10),
};

//! The daemon's watch on its node: every 30 seconds (every 5 while exact shaping waits to be
//! verified, and at once after a reload) it
//!
//! - reads the node's pid from `NODEDIR/running.process`, so the CPU share covers the node (a
//!   restarted node has a new pid);
//! - lists the node's storage servers (`GET /?t=json`) and tells the engine which nickname is
//!   which server id, reporting `[budget] server.NAME` limits whose name matches no server or
//!   several;
//! - tells the shaping proxy which `host:port` is which server, and turns exact shaping on only
//!   while every connected server's traffic is seen flowing through the proxy (off again when
//!   it no longer is: the node restarted without the SOCKS lines, say);
//! - hands uploads the connected servers and the node's encoding for their per-server estimates.
//!
//! What it finds goes to the log (problems at warn, once per change) and, as notes, to the
//! budget section of the status page.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tahoe_jobs_config::{Config, NodeFacts};
use tahoe_jobs_engine::limits::Coding;
use tahoe_jobs_engine::shaping::ShapingControl;
use tahoe_jobs_engine::EngineHandle;
use tahoe_jobs_tasks::tahoe::servers::{self, ServerMap};
use tahoe_jobs_tasks::tahoe::{ClientOptions, TahoeClient};
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

/// How often the node is looked at once all is settled.
pub const REFRESH: Duration = Duration::from_secs(30);
/// How often while the shaping proxy runs but exact shaping is not verified yet.
pub const REFRESH_UNVERIFIED: Duration = Duration::from_secs(5);
/// How long the node gets to answer.
const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pid in a `running.process` file ("PID START_TIME").
pub fn parse_running_process(text: &str) -> Option<u32> {
    text.split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// The node's pid, if `running.process` names a process that runs.
pub fn node_pid(node_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(node_dir.join("running.process")).ok()?;
    let pid = parse_running_process(&text)?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// The processes whose CPU time `[budget] cpu` covers: this one and the node.
pub fn cpu_pids(node: Option<u32>) -> Vec<u32> {
    let mut pids = vec![std::process::id()];
    pids.extend(node);
    pids
}

/// The server names `[budget]` in the files uses (live overrides are read at each refresh).
pub fn configured_names(config: &Config) -> Vec<String> {
    config.budget.servers.keys().cloned().collect()
}

/// The note saying which enforcement holds servers and the total.
pub fn mode_note(proxy: Option<std::net::SocketAddr>, exact: bool, problems: &[String]) -> String {
    match (proxy, exact) {
        (None, _) => "Servers and the total are held by feed pacing, on estimates: exact shaping \
                      is off ([jobs] shaping.port; see `tahoe-jobs shaping`)."
            .to_string(),
        (Some(addr), true) => format!(
            "Exact shaping: the node's storage traffic flows through the shaping proxy at \
             {addr}, which counts and paces every byte per server and in total."
        ),
        (Some(addr), false) => format!(
            "Servers and the total are held by feed pacing, on estimates: the shaping proxy at \
             {addr} does not carry the node's traffic yet ({}). `tahoe-jobs shaping` prints \
             the tahoe.cfg lines and checks.",
            if problems.is_empty() {
                "not checked yet".to_string()
            } else {
                problems.join("; ")
            }
        ),
    }
}

/// A first look at the node before the engine starts, so that the first uploads already know
/// the servers and the encoding: publishes them and returns the nickname aliases (`None` when
/// the node does not answer within 5 s).
pub async fn first_look(node_dir: &Path) -> Option<BTreeMap<String, String>> {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(5),
    };
    let client = TahoeClient::from_node_dir(node_dir, &options).ok()?;
    let map = tokio::time::timeout(Duration::from_secs(5), ServerMap::fetch(&client))
        .await
        .ok()?
        .ok()?;
    servers::publish(client.node_url(), &map, node_coding(node_dir));
    Some(map.resolve_names(std::iter::empty()).aliases)
}

/// The node's encoding from its tahoe.cfg.
fn node_coding(node_dir: &Path) -> Option<Coding> {
    NodeFacts::read(node_dir)
        .ok()
        .and_then(|f| Coding::new(f.encoding.needed, f.encoding.total))
}

/// The daemon's view of its node; see the module header.
pub struct NodeWatch {
    node_dir: PathBuf,
    engine: EngineHandle,
    shaping: Option<ShapingControl>,
    names: Arc<RwLock<Vec<String>>>,
    pid: Option<u32>,
    aliases: Option<BTreeMap<String, String>>,
    routes: Option<HashMap<String, String>>,
    exact: bool,
    /// The problems with configured names found last, kept while the node cannot answer.
    name_problems: Vec<String>,
    /// Problems last logged, so each is logged once per change.
    logged: Vec<String>,
}

impl NodeWatch {
    /// `pid` is the node pid the engine was started with, `aliases` the nicknames it was given.
    pub fn new(
        node_dir: PathBuf,
        engine: EngineHandle,
        shaping: Option<ShapingControl>,
        (pid, aliases): (Option<u32>, Option<BTreeMap<String, String>>),
        names: Arc<RwLock<Vec<String>>>,
    ) -> Self {
        NodeWatch {
            node_dir,
            engine,
            shaping,
            names,
            pid,
            aliases,
            routes: None,
            exact: false,
            name_problems: Vec::new(),
            logged: Vec::new(),
        }
    }

    /// Refreshes until dropped (the task is aborted at shutdown), sending the notes after each
    /// refresh; `refresh` wakes it early.
    pub async fn run(mut self, notes: watch::Sender<Vec<String>>, refresh: Arc<Notify>) {
        loop {
            let found = self.refresh().await;
            notes.send_replace(found);
            let delay = if self.shaping.is_some() && !self.exact {
                REFRESH_UNVERIFIED
            } else {
                REFRESH
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = refresh.notified() => {}
            }
        }
    }

    /// One look at the node; returns the notes for the status page.
    pub async fn refresh(&mut self) -> Vec<String> {
        self.refresh_pid().await;
        let mut problems = Vec::new();
        let shaping_problems = match self.servers().await {
            Ok((map, node_url)) => {
                servers::publish(&node_url, &map, node_coding(&self.node_dir));
                self.name_problems = self.refresh_names(&map).await;
                problems.extend(self.name_problems.iter().cloned());
                self.refresh_shaping(&map).await
            }
            Err(e) => {
                problems.extend(self.name_problems.iter().cloned());
                problems.push(format!(
                    "cannot list the node's storage servers: {e}; nicknames in [budget] and \
                     the shaping proxy's routes stay as they were"
                ));
                Vec::new()
            }
        };
        let mut notes = vec![mode_note(
            self.shaping.as_ref().map(|s| s.stats().listening),
            self.exact,
            &shaping_problems,
        )];
        if problems != self.logged {
            for p in problems.iter().filter(|p| !self.logged.contains(p)) {
                warn!("{p}");
            }
            self.logged = problems.clone();
        }
        notes.extend(problems);
        notes
    }

    async fn refresh_pid(&mut self) {
        let pid = node_pid(&self.node_dir);
        if pid == self.pid {
            return;
        }
        match pid {
            Some(p) => info!(
                pid = p,
                "the node runs; its CPU time counts toward [budget] cpu"
            ),
            None => info!("the node is not running (no live pid in running.process)"),
        }
        if let Err(e) = self.engine.set_cpu_pids(cpu_pids(pid)).await {
            warn!("cannot update the CPU share's processes: {e}");
            return;
        }
        self.pid = pid;
    }

    /// The node's servers and its web API root (re-read each time: a restarted node may have
    /// moved).
    async fn servers(&self) -> Result<(ServerMap, String), String> {
        let options = ClientOptions {
            request_timeout: NODE_TIMEOUT,
        };
        let client =
            TahoeClient::from_node_dir(&self.node_dir, &options).map_err(|e| e.to_string())?;
        let map = tokio::time::timeout(NODE_TIMEOUT, ServerMap::fetch(&client))
            .await
            .map_err(|_| format!("the node at {} did not answer in time", client.node_url()))?
            .map_err(|e| e.to_string())?;
        Ok((map, client.node_url().to_string()))
    }

    /// Hands the engine the nicknames; returns the problems with the configured names.
    async fn refresh_names(&mut self, map: &ServerMap) -> Vec<String> {
        let mut names = self.names.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Ok(o) = self.engine.overrides().await {
            names.extend(servers::server_names_in_keys(
                o.budget.keys().map(String::as_str),
            ));
        }
        let resolution = map.resolve_names(names.iter().map(String::as_str));
        if self.aliases.as_ref() != Some(&resolution.aliases) {
            match self
                .engine
                .set_destination_aliases(resolution.aliases.clone())
                .await
            {
                Ok(()) => self.aliases = Some(resolution.aliases),
                Err(e) => warn!("cannot hand the engine the servers' nicknames: {e}"),
            }
        }
        resolution
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Updates the proxy's routes and the exact mode; returns why exact shaping is not on.
    async fn refresh_shaping(&mut self, map: &ServerMap) -> Vec<String> {
        let Some(shaping) = &self.shaping else {
            return Vec::new();
        };
        let routes = map.routes();
        if self.routes.as_ref() != Some(&routes) {
            shaping.set_routes(routes.clone());
            self.routes = Some(routes);
        }
        let problems = servers::shaping_problems(map, &shaping.stats());
        let exact = problems.is_empty();
        if exact != self.exact {
            match self.engine.set_exact_shaping(exact).await {
                Ok(()) => {
                    self.exact = exact;
                    if exact {
                        info!(
                            "exact shaping on: the node's storage traffic flows through the proxy"
                        );
                    } else {
                        warn!(
                            "exact shaping off, back to feed pacing: {}",
                            problems.join("; ")
                        );
                    }
                }
                Err(e) => warn!("cannot switch exact shaping: {e}"),
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_process_holds_pid_and_start_time() {
        assert_eq!(parse_running_process("12345 1712345678.9\n"), Some(12345));
        assert_eq!(parse_running_process("12345"), Some(12345));
        assert_eq!(parse_running_process(""), None);
        assert_eq!(parse_running_process("x 1"), None);
        assert_eq!(parse_running_process("0 1"), None);
    }

    #[test]
    fn node_pid_needs_a_live_process() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(node_pid(dir.path()), None);
        let me = std::process::id();
        std::fs::write(dir.path().join("running.process"), format!("{me} 1.0\n")).unwrap();
        assert_eq!(node_pid(dir.path()), Some(me));
        // Pid numbers stop well below this.
        std::fs::write(dir.path().join("running.process"), "4294967 1.0\n").unwrap();
        assert_eq!(node_pid(dir.path()), None);
        assert_eq!(cpu_pids(None), vec![me]);
        assert_eq!(cpu_pids(Some(7)), vec![me, 7]);
    }

    #[test]
    fn the_mode_note_says_which_enforcement_holds() {
        let addr = "127.0.0.1:3458".parse().unwrap();
        assert!(mode_note(None, false, &[]).contains("exact shaping is off"));
        let exact = mode_note(Some(addr), true, &[]);
        assert!(exact.starts_with("Exact shaping") && exact.contains("127.0.0.1:3458"));
        let waiting = mode_note(
            Some(addr),
            false,
            &["storage1 is connected directly".into()],
        );
        assert!(
            waiting.contains("feed pacing") && waiting.contains("storage1"),
            "{waiting}"
        );
    }
}

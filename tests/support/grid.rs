//! A real Tahoe-LAFS grid on loopback for the integration tests.
//!
//! tahoe-jobs talks to a real node, so its tests do too: an introducer plus N storage nodes from
//! `<workspace>/.venv/bin/tahoe`, each listening on 127.0.0.1 at a free port and announced as
//! `tcp:localhost:PORT`. The DNS name is deliberate: foolscap's SOCKS/tor handler refuses numeric
//! loopback addresses, and announcing by name keeps it possible to route a node's storage traffic
//! through a local SOCKS port (traffic shaping) later. Storage node 0 is also the client whose
//! web API and node directory the tests use.
//!
//! `shared_grid()` is one 1-of-1 grid for the whole test binary; it lives in a static that is never
//! dropped, so the nodes must die with the test process by other means. Four independent ones:
//! - every node gets `PR_SET_PDEATHSIG(SIGKILL)` and is spawned from one thread that lives as long
//!   as the process (the signal fires when the *thread* that forked the child ends, so spawning
//!   from a short-lived test thread would kill the shared grid as soon as its first test finished);
//! - every node's stdin is a pipe this process holds, and `tahoe run` (without
//!   `--allow-stdin-close`) stops when its stdin closes, which the kernel does when we die;
//! - grid directories are named after the owning process (pid and start time), and starting a
//!   grid first kills and removes what a dead owner left behind, without touching grids of test
//!   processes that still run (other builds share this working tree);
//! - `Drop` of a `Grid` stops its nodes (also while unwinding from a failed assertion; then the
//!   directory is kept for inspection and the next run removes it).
//!
//! [`Grid::start_with_relay`] puts `scripts/lib/relay.py` in front of every storage node, as
//! `scripts/lib/grid.sh` does with `GRID_RELAY_DELAY_MS`: each node announces the relay's port,
//! so the client node and tahoe-jobs both reach it through the relay, which counts the bytes
//! each server receives ([`super::relay`]).

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use super::relay::Relay;

/// How long a node may take to start or to be seen (dis)connected. Generous because CI runs the
/// grids of several tests at once on two cores, and a node spends seconds just importing Python.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a node gets to shut down cleanly before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The shape of a grid to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridSpec {
    /// Storage nodes to run; node 0 is also the client.
    pub storage_nodes: usize,
    /// `shares.needed` (k) of the client.
    pub needed: usize,
    /// `shares.happy` of the client.
    pub happy: usize,
    /// `shares.total` (N) of the client.
    pub total: usize,
}

impl GridSpec {
    /// One storage node that is also the client: enough for everything but check/repair.
    pub const ONE_OF_ONE: GridSpec = GridSpec {
        storage_nodes: 1,
        needed: 1,
        happy: 1,
        total: 1,
    };
}

/// A running introducer plus storage nodes, stopped on drop.
pub struct Grid {
    dir: PathBuf,
    spec: GridSpec,
    shared: bool,
    introducer: Node,
    storage: Vec<Node>,
    /// `tahoe create-alias` reads and appends `private/aliases` without locking it.
    alias_lock: Mutex<()>,
    /// Set when start-up failed, so that the logs survive for the error message's reader.
    keep_dir: bool,
    /// The relay's delay each way in ms, when the nodes are announced behind a relay.
    relay_delay_ms: Option<u32>,
    relay: Option<Relay>,
}

/// The grid every test in this binary may share; started on first use.
///
/// Use aliases and temporary directories of your own. Do not stop its nodes (`stop_node` panics
/// here): start a [`Grid`] of your own for that.
pub fn shared_grid() -> &'static Grid {
    static SHARED: OnceLock<Result<Grid, String>> = OnceLock::new();
    // The error is kept rather than retried so that every later test fails at once with the same
    // message instead of each waiting out its own start-up timeout.
    match SHARED.get_or_init(|| Grid::try_start_inner(GridSpec::ONE_OF_ONE, true, None)) {
        Ok(grid) => grid,
        Err(e) => panic!("the shared test grid did not start: {e}"),
    }
}

/// A reqwest client for the nodes' web APIs.
///
/// Proxies are turned off: a proxy from the environment must never see loopback test traffic
/// (and would break it).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("cannot build a reqwest client")
}

/// The workspace's `tahoe` executable; panics if it is not installed.
pub fn tahoe_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/tahoe");
    if !bin.is_file() {
        panic!(
            "Tahoe-LAFS is not installed in .venv: run scripts/test \
             (or: python3 -m venv .venv && .venv/bin/pip install tahoe-lafs==1.20.0) \
             [looked for {}]",
            bin.display()
        );
    }
    bin
}

impl Grid {
    /// Starts a grid and waits until its client sees every storage node connected; panics if it
    /// cannot.
    pub fn start(spec: GridSpec) -> Grid {
        Self::try_start(spec).unwrap_or_else(|e| panic!("test grid did not start: {e}"))
    }

    /// Like [`Grid::start`], but returns why a grid could not start.
    pub fn try_start(spec: GridSpec) -> Result<Grid, String> {
        Self::try_start_inner(spec, false, None)
    }

    /// Like [`Grid::start`], with `scripts/lib/relay.py` in front of every storage node,
    /// delaying each direction by `delay_ms` and counting the bytes each server receives
    /// ([`Grid::relay`]).
    pub fn start_with_relay(spec: GridSpec, delay_ms: u32) -> Grid {
        Self::try_start_inner(spec, false, Some(delay_ms))
            .unwrap_or_else(|e| panic!("test grid did not start: {e}"))
    }

    fn try_start_inner(
        spec: GridSpec,
        shared: bool,
        relay_delay_ms: Option<u32>,
    ) -> Result<Grid, String> {
        if spec.storage_nodes == 0 || spec.needed == 0 || spec.needed > spec.total {
            return Err(format!("impossible grid: {spec:?}"));
        }
        let tahoe = tahoe_bin();
        let root = grids_root();
        reap_leftovers(&root);
        // A free port can be taken by someone else between our probe and the node's bind; the
        // node then exits at once, and a second try with fresh ports almost surely works.
        let mut attempt = 1;
        loop {
            let mut grid = Grid::create(&root, spec, shared, relay_delay_ms)?;
            match grid.launch(&tahoe) {
                Ok(()) => return Ok(grid),
                Err(e) if e.node_exited && attempt < 3 => {
                    eprintln!("test grid: retrying with fresh ports after: {}", e.message);
                    attempt += 1;
                }
                Err(e) => {
                    grid.keep_dir = true;
                    return Err(format!(
                        "{} (grid directory kept: {})",
                        e.message,
                        grid.dir.display()
                    ));
                }
            }
        }
    }

    /// Makes the grid directory and the (not yet running) node list.
    fn create(
        root: &Path,
        spec: GridSpec,
        shared: bool,
        relay_delay_ms: Option<u32>,
    ) -> Result<Grid, String> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let (pid, start) = (std::process::id(), own_start_time());
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("{pid}-{start}-{seq}"));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Per storage node: its port, its web port and, behind a relay, the relay's port.
        let per_node = if relay_delay_ms.is_some() { 3 } else { 2 };
        let ports = free_ports(1 + per_node * spec.storage_nodes)?;
        let introducer = Node::new("introducer", dir.join("introducer"), ports[0], None);
        let storage = (0..spec.storage_nodes)
            .map(|i| {
                let first = 1 + per_node * i;
                let mut node = Node::new(
                    &format!("storage{i}"),
                    dir.join(format!("storage{i}")),
                    ports[first],
                    Some(ports[first + 1]),
                );
                if relay_delay_ms.is_some() {
                    node.announced_port = ports[first + 2];
                }
                node
            })
            .collect();
        Ok(Grid {
            dir,
            spec,
            shared,
            introducer,
            storage,
            alias_lock: Mutex::new(()),
            keep_dir: false,
            relay_delay_ms,
            relay: None,
        })
    }

    fn launch(&mut self, tahoe: &Path) -> Result<(), LaunchError> {
        let intro = &self.introducer;
        run_checked(
            Command::new(tahoe)
                .arg("create-introducer")
                .arg("--listen=tcp")
                .arg(format!("--port=tcp:{}:interface=127.0.0.1", intro.port))
                .arg(format!("--location=tcp:localhost:{}", intro.port))
                .arg(&intro.dir),
        )?;
        intro.spawn(tahoe)?;
        // The furl is written only once the introducer has started.
        let furl_file = intro.dir.join("private/introducer.furl");
        let furl = wait_for("the introducer to write its furl", || {
            intro.check_running()?;
            Ok(match fs::read_to_string(&furl_file) {
                Ok(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => None,
            })
        })?;

        // create-node is mostly Python start-up time, so the nodes are created side by side.
        let creating: Vec<_> = self
            .storage
            .iter()
            .map(|node| {
                Command::new(tahoe)
                    .arg("create-node")
                    .arg("--listen=tcp")
                    .arg(format!("--port=tcp:{}:interface=127.0.0.1", node.port))
                    .arg(format!("--location=tcp:localhost:{}", node.announced_port))
                    .arg(format!(
                        "--webport=tcp:{}:interface=127.0.0.1",
                        node.web_port.expect("storage nodes have a web port")
                    ))
                    .arg(format!("--introducer={furl}"))
                    .arg(format!("--nickname={}", node.name))
                    .arg(format!("--shares-needed={}", self.spec.needed))
                    .arg(format!("--shares-happy={}", self.spec.happy))
                    .arg(format!("--shares-total={}", self.spec.total))
                    .arg(&node.dir)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| LaunchError::from(format!("cannot run tahoe create-node: {e}")))
            })
            .collect();
        for child in creating {
            check_output("tahoe create-node", child?.wait_with_output())?;
        }
        if let Some(delay_ms) = self.relay_delay_ms {
            let pairs: Vec<(u16, u16)> = self
                .storage
                .iter()
                .map(|n| (n.announced_port, n.port))
                .collect();
            self.relay = Some(Relay::start(&self.dir.join("relay"), &pairs, delay_ms)?);
        }
        for node in &self.storage {
            node.spawn(tahoe)?;
        }
        let all: Vec<(usize, bool)> = (0..self.storage.len()).map(|i| (i, true)).collect();
        self.wait_for_servers(&all)?;
        Ok(())
    }

    /// The grid's base directory (holds `introducer/` and `storage<i>/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The relay in front of the storage nodes; panics unless the grid was started
    /// [`Grid::start_with_relay`].
    pub fn relay(&self) -> &Relay {
        self.relay
            .as_ref()
            .expect("this grid has no relay: start it with Grid::start_with_relay")
    }

    /// The shape the grid was started with.
    pub fn spec(&self) -> GridSpec {
        self.spec
    }

    /// The client's node directory (storage node 0): `tahoe.cfg`, `private/aliases`, ...
    pub fn node_dir(&self) -> &Path {
        &self.storage[0].dir
    }

    /// The client's web API, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn web_url(&self) -> &str {
        self.storage[0]
            .web_url
            .as_deref()
            .expect("storage nodes have a web port")
    }

    /// Number of storage nodes.
    pub fn storage_nodes(&self) -> usize {
        self.storage.len()
    }

    /// Node directory of storage node `i`.
    pub fn storage_node_dir(&self, i: usize) -> &Path {
        &self.storage[i].dir
    }

    /// Where storage node `i` keeps share files (`storage/shares/<prefix>/<storage index>/<shnum>`).
    pub fn shares_dir(&self, i: usize) -> PathBuf {
        self.storage[i].dir.join("storage/shares")
    }

    /// Web API of storage node `i` (no trailing slash).
    pub fn storage_web_url(&self, i: usize) -> &str {
        self.storage[i]
            .web_url
            .as_deref()
            .expect("storage nodes have a web port")
    }

    /// The server id (`v0-...`) the client uses for storage node `i`, as in check results'
    /// `servers-responding` and `sharemap`.
    pub fn server_id(&self, i: usize) -> &str {
        self.storage[i]
            .server_id
            .get()
            .expect("server ids are known once the grid has started")
    }

    /// Process ids of the nodes that run now (introducer included).
    pub fn node_pids(&self) -> Vec<u32> {
        std::iter::once(&self.introducer)
            .chain(&self.storage)
            .filter_map(|n| n.process().as_ref().map(|p| p.child.id()))
            .collect()
    }

    /// Whether storage node `i` runs (as far as this harness knows).
    pub fn is_running(&self, i: usize) -> bool {
        self.storage[i].process().is_some()
    }

    /// Stops storage node `i` and waits until the client sees it disconnected.
    ///
    /// Node 0 is the client and cannot be stopped; nor can any node of the shared grid.
    pub fn stop_node(&self, i: usize) {
        assert!(
            !self.shared,
            "stop_node on the shared grid would break the other tests using it; \
             start a Grid of your own"
        );
        assert!(
            i != 0,
            "storage node 0 is the grid's client; stop another one"
        );
        assert!(i < self.storage.len(), "no storage node {i}");
        let node = &self.storage[i];
        node.signal(libc::SIGTERM);
        node.wait_or_kill(Instant::now() + STOP_TIMEOUT);
        self.wait_for_servers(&[(i, false)])
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Kills storage nodes `nodes` with SIGKILL, as a crash or a pulled plug ends a node (its
    /// connections reset at once, unlike [`Grid::stop_node`]'s orderly shutdown), and waits
    /// until the client sees them disconnected. Not node 0, not on the shared grid.
    pub fn kill_nodes(&self, nodes: &[usize]) {
        for &i in nodes {
            assert!(
                !self.shared && i != 0 && i < self.storage.len(),
                "kill_nodes({i}): only storage nodes other than the client, on a grid of one's own"
            );
            self.storage[i].signal(libc::SIGKILL);
        }
        for &i in nodes {
            self.storage[i].wait_or_kill(Instant::now() + STOP_TIMEOUT);
        }
        let gone: Vec<(usize, bool)> = nodes.iter().map(|&i| (i, false)).collect();
        self.wait_for_servers(&gone)
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Starts storage node `i` again (no-op if it runs) and waits until the client sees it
    /// connected.
    pub fn start_node(&self, i: usize) {
        assert!(i < self.storage.len(), "no storage node {i}");
        let node = &self.storage[i];
        if node.process().is_none() {
            node.spawn(&tahoe_bin())
                .unwrap_or_else(|e| panic!("{}", e.message));
        }
        self.wait_for_servers(&[(i, true)])
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Stops the client (storage node 0) and waits until its web API no longer answers: what a
    /// job sees when the user's node goes down. Not allowed on the shared grid.
    pub fn stop_client(&self) {
        assert!(
            !self.shared,
            "stop_client on the shared grid would break the other tests using it; \
             start a Grid of your own"
        );
        let node = &self.storage[0];
        node.signal(libc::SIGTERM);
        node.wait_or_kill(Instant::now() + STOP_TIMEOUT);
        wait_for(
            "the client's web API to go away",
            || match server_statuses(self.web_url()) {
                Ok(_) => Err(Wait::Pending("it still answers".into())),
                Err(_) => Ok(Some(())),
            },
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Starts the client (storage node 0) again after [`Grid::stop_client`] (no-op if it runs),
    /// on the same ports, and waits until it sees every running storage node connected.
    pub fn start_client(&self) {
        let node = &self.storage[0];
        if node.process().is_none() {
            node.spawn(&tahoe_bin())
                .unwrap_or_else(|e| panic!("{}", e.message));
        }
        self.wait_all_connected();
    }

    /// Waits until the client sees every storage node that runs connected.
    pub fn wait_all_connected(&self) {
        let want: Vec<(usize, bool)> = (0..self.storage.len())
            .map(|i| (i, self.is_running(i)))
            .collect();
        self.wait_for_servers(&want)
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Runs the stock CLI against the client: `.venv/bin/tahoe -d NODEDIR ARGS...`.
    ///
    /// Its output may contain capabilities: do not print it in passing tests.
    pub fn tahoe<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new(tahoe_bin())
            .arg("-d")
            .arg(self.node_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run tahoe: {e}"))
    }

    /// `tahoe create-alias NAME` on the client; panics if it fails (e.g. the alias exists).
    pub fn create_alias(&self, name: &str) {
        let _guard = lock(&self.alias_lock);
        let out = self.tahoe(["create-alias", name]);
        assert!(
            out.status.success(),
            "tahoe create-alias {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    /// The directory write cap behind alias `name` in the client's `private/aliases`.
    ///
    /// A secret: use it in requests, never in messages.
    pub fn alias_cap(&self, name: &str) -> Option<String> {
        let aliases = fs::read_to_string(self.node_dir().join("private/aliases")).ok()?;
        aliases.lines().find_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (alias, cap) = line.split_once(':')?;
            (alias.trim() == name).then(|| cap.trim().to_owned())
        })
    }

    /// Polls the client's `/?t=json` until each listed storage node is (not) connected.
    fn wait_for_servers(&self, want: &[(usize, bool)]) -> Result<(), LaunchError> {
        let client = self.web_url();
        let what = want
            .iter()
            .map(|&(i, up)| {
                let state = if up { "connected" } else { "disconnected" };
                format!("{} {state}", self.storage[i].name)
            })
            .collect::<Vec<_>>()
            .join(", ");
        wait_for(&format!("the client at {client} to see {what}"), || {
            for &(i, up) in want {
                if up {
                    self.storage[i].check_running()?;
                }
            }
            let servers = match server_statuses(client) {
                Ok(servers) => servers,
                Err(e) => return Err(Wait::Pending(e)),
            };
            let mut pending = Vec::new();
            for &(i, up) in want {
                let node = &self.storage[i];
                let seen = servers.iter().find(|s| s.nickname == node.name);
                if let Some(s) = seen {
                    let _ = node.server_id.set(s.nodeid.clone());
                }
                let connected = seen.is_some_and(|s| s.connected);
                if connected != up {
                    let status = seen.map_or("not announced yet", |s| s.status.as_str());
                    pending.push(format!("{}: {}", node.name, shorten(status, 120)));
                }
            }
            if pending.is_empty() {
                Ok(Some(()))
            } else {
                Err(Wait::Pending(pending.join("; ")))
            }
        })
    }
}

impl Drop for Grid {
    fn drop(&mut self) {
        // Signal everyone first so the nodes shut down side by side.
        let nodes: Vec<&Node> = self
            .storage
            .iter()
            .chain(std::iter::once(&self.introducer))
            .collect();
        for node in &nodes {
            node.signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for node in &nodes {
            node.wait_or_kill(deadline);
        }
        if let Some(relay) = &self.relay {
            relay.stop();
        }
        if std::thread::panicking() || self.keep_dir {
            eprintln!(
                "test grid: kept {} for inspection (node logs: */run.log)",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// One Tahoe node directory and, while it runs, its process.
struct Node {
    name: String,
    dir: PathBuf,
    port: u16,
    /// The port in its `tub.location`: its own, or the relay's in front of it.
    announced_port: u16,
    web_port: Option<u16>,
    web_url: Option<String>,
    server_id: OnceLock<String>,
    process: Mutex<Option<NodeProcess>>,
}

struct NodeProcess {
    child: Child,
    /// Held, never written: `tahoe run` stops when its stdin closes, so the node dies with us.
    _stdin: Option<ChildStdin>,
}

impl Node {
    fn new(name: &str, dir: PathBuf, port: u16, web_port: Option<u16>) -> Node {
        Node {
            name: name.to_owned(),
            dir,
            port,
            announced_port: port,
            web_port,
            web_url: web_port.map(|p| format!("http://127.0.0.1:{p}")),
            server_id: OnceLock::new(),
            process: Mutex::new(None),
        }
    }

    fn process(&self) -> MutexGuard<'_, Option<NodeProcess>> {
        lock(&self.process)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("run.log")
    }

    fn spawn(&self, tahoe: &Path) -> Result<(), LaunchError> {
        let mut slot = self.process();
        if slot.is_some() {
            return Ok(());
        }
        // A killed node leaves these behind; waiting for fresh ones must not see stale ones.
        let _ = fs::remove_file(self.dir.join("running.process"));
        let _ = fs::remove_file(self.dir.join("node.url"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("cannot open {}: {e}", self.log_path().display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot clone log handle: {e}"))?;
        let mut cmd = Command::new(tahoe);
        cmd.arg("run")
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log2);
        let mut child = spawn_tied_to_us(cmd)
            .map_err(|e| format!("cannot start tahoe run for {}: {e}", self.name))?;
        // For the reaper of a later run, in case this one dies before running.process appears.
        let _ = fs::write(self.dir.join("harness.pid"), child.id().to_string());
        let stdin = child.stdin.take();
        *slot = Some(NodeProcess {
            child,
            _stdin: stdin,
        });
        Ok(())
    }

    /// Fails (as "node exited") if the node is not running, with the end of its log.
    fn check_running(&self) -> Result<(), Wait> {
        let mut slot = self.process();
        let Some(proc) = slot.as_mut() else {
            return Err(Wait::Exited(format!("{} is not running", self.name)));
        };
        match proc.child.try_wait() {
            // A port taken between our probe and the node's bind does not end the node: it
            // logs the failure and runs on without listening. Treat it as a failed start so
            // that the grid is retried with fresh ports.
            Ok(None) if log_tail(&self.log_path(), 200).contains("Address already in use") => {
                Err(Wait::Exited(format!(
                    "{} could not bind its port (Address already in use); end of {}:\n{}",
                    self.name,
                    self.log_path().display(),
                    log_tail(&self.log_path(), 25)
                )))
            }
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                *slot = None;
                Err(Wait::Exited(format!(
                    "{} exited ({status}); end of {}:\n{}",
                    self.name,
                    self.log_path().display(),
                    log_tail(&self.log_path(), 25)
                )))
            }
            Err(e) => Err(Wait::Exited(format!("cannot watch {}: {e}", self.name))),
        }
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(proc) = self.process().as_ref() {
            // The node leads its own process group (see spawn); signal the group so that nothing
            // it might have started outlives it.
            let pgid = proc.child.id() as libc::pid_t;
            // SAFETY: plain syscall; the child is not yet reaped (we hold it), so the id is ours.
            unsafe {
                libc::killpg(pgid, sig);
            }
        }
    }

    fn wait_or_kill(&self, deadline: Instant) {
        let mut slot = self.process();
        let Some(proc) = slot.as_mut() else { return };
        loop {
            match proc.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let pgid = proc.child.id() as libc::pid_t;
                    // SAFETY: as in signal().
                    unsafe {
                        libc::killpg(pgid, libc::SIGKILL);
                    }
                    let _ = proc.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        *slot = None;
    }
}

/// Why a wait ended early, or what it is still waiting for.
enum Wait {
    Pending(String),
    Exited(String),
}

struct LaunchError {
    message: String,
    /// A node died during start-up, e.g. because its port was taken: worth one more try.
    node_exited: bool,
}

impl From<String> for LaunchError {
    fn from(message: String) -> Self {
        LaunchError {
            message,
            node_exited: false,
        }
    }
}

/// Polls `probe` until it yields a value; fails when a node exits or after [`READY_TIMEOUT`],
/// naming what it waited for and the last state seen.
fn wait_for<T>(
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>, Wait>,
) -> Result<T, LaunchError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::from("nothing seen yet");
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(Wait::Pending(state)) => last = state,
            Err(Wait::Exited(msg)) => {
                return Err(LaunchError {
                    message: format!("while waiting for {what}: {msg}"),
                    node_exited: true,
                })
            }
        }
        if Instant::now() >= deadline {
            return Err(LaunchError::from(format!(
                "timed out after {}s waiting for {what}; last seen: {last}",
                READY_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

struct ServerStatus {
    nickname: String,
    nodeid: String,
    status: String,
    connected: bool,
}

/// The client's view of its storage servers, from `GET /?t=json`.
fn server_statuses(web_url: &str) -> Result<Vec<ServerStatus>, String> {
    let body = http_get(web_url, "/?t=json")?;
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("bad JSON from {web_url}: {e}"))?;
    let servers = json["servers"].as_array().cloned().unwrap_or_default();
    Ok(servers
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            let status = field("connection_status");
            ServerStatus {
                nickname: field("nickname"),
                nodeid: field("nodeid"),
                // "connected" over the HTTP storage protocol, "Connected to HOST via ..." over
                // foolscap; failures start with "failure:" or "Trying to connect".
                connected: status.to_ascii_lowercase().starts_with("connected"),
                status,
            }
        })
        .collect())
}

/// A minimal blocking GET, so that polling works the same from sync and async tests (a blocking
/// reqwest client would panic when dropped inside a tokio runtime).
fn http_get(base: &str, path: &str) -> Result<Vec<u8>, String> {
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http URL: {base}"))?
        .trim_end_matches('/');
    let addr: SocketAddr = host
        .parse()
        .map_err(|e| format!("bad address {host}: {e}"))?;
    let fail = |e: io::Error| format!("GET {base}{path}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(fail)?;
    // HTTP/1.0 so the body is neither chunked nor kept alive: it simply ends at EOF.
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(fail)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(fail)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET {base}{path}: malformed response"))?;
    let status_line = String::from_utf8_lossy(&response[..split])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("GET {base}{path}: {status_line}"));
    }
    Ok(response[split + 4..].to_vec())
}

/// Spawns `cmd` in a process group of its own, killed when this process dies; see the module
/// docs for why.
pub(super) fn spawn_tied_to_us(mut cmd: Command) -> io::Result<Child> {
    // Own process group: a terminal's Ctrl-C goes to cargo and the test process, whose death
    // then stops the children in order; and a stop can signal the whole group.
    cmd.process_group(0);
    // SAFETY: the closure only calls prctl(2), which is async-signal-safe, between fork and
    // exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    spawn_from_keeper(cmd)
}

/// Spawns `cmd` from a thread that lives as long as the process; see the module docs for why.
fn spawn_from_keeper(cmd: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static KEEPER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tahoe-node-keeper".into())
            .spawn(move || {
                // The sender sits in a static and is never dropped, so this loop (and with it
                // the thread) ends only with the process.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the tahoe node keeper thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("node keeper thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("node keeper thread is gone"))?
}

/// `<target dir>/test-grids`, found from the test executable (`<target>/<profile>/deps/...`) so
/// that it follows `CARGO_TARGET_DIR`.
fn grids_root() -> PathBuf {
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|target| target.join("CACHEDIR.TAG").exists() || target.ends_with("target"));
    from_exe
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("test-grids")
}

/// Kills nodes and removes directories of grids whose owning test process is gone, once per
/// process. Grids of test processes that still run are left alone.
fn reap_leftovers(root: &Path) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('-');
            let owner = (
                parts.next().and_then(|p| p.parse::<u32>().ok()),
                parts.next().and_then(|s| s.parse::<u64>().ok()),
            );
            let (Some(pid), Some(start)) = owner else {
                continue;
            };
            if process_start_time(pid) == Some(start) {
                continue;
            }
            kill_nodes_in(&entry.path());
            let _ = fs::remove_dir_all(entry.path());
        }
    });
}

/// SIGKILLs every process recorded in a node directory of `grid_dir` that still runs tahoe for
/// that very directory (pids get reused, so the command line is checked).
fn kill_nodes_in(grid_dir: &Path) {
    let Ok(nodes) = fs::read_dir(grid_dir) else {
        return;
    };
    for node in nodes.flatten() {
        for file in ["running.process", "harness.pid"] {
            let Ok(text) = fs::read_to_string(node.path().join(file)) else {
                continue;
            };
            let Some(pid) = text
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let dir = node.path().into_os_string().into_encoded_bytes();
            if cmdline.windows(dir.len()).any(|w| w == dir.as_slice()) {
                // SAFETY: plain syscall on a pid just checked to be a leftover node.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn own_start_time() -> u64 {
    process_start_time(std::process::id()).unwrap_or(0)
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot): with the pid it names a
/// process unambiguously.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Distinct free loopback ports; all listeners stay bound until every port is chosen so that the
/// kernel cannot hand out one port twice.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot find free ports: {e}"))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| format!("cannot find free ports: {e}"))
        })
        .collect()
}

fn run_checked(cmd: &mut Command) -> Result<(), LaunchError> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    check_output(&format!("{cmd:?}"), Ok(output))
}

fn check_output(what: &str, output: io::Result<Output>) -> Result<(), LaunchError> {
    let output = output.map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(LaunchError::from(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn shorten(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        format!("{}...", line.chars().take(max).collect::<String>())
    }
}

/// Locks even after another test panicked while holding the lock: the data (a child handle, or
/// nothing) stays valid, and cleanup must still run.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

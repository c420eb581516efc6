//! The shaping proxy: a loopback SOCKS5 server that carries a store node's connections to its
//! destinations, counts every byte each way per destination, and paces each direction to the
//! destination's limit and the total.
//!
//! Connections are named by the target the client asked for (`host:port`). Which destination
//! that is usually becomes known only after the node has connected (its status page then says
//! "connected to host:port"), so the name is looked up again whenever the caller updates the
//! routes, and a connection's bytes move to the destination's account from then on; bytes counted
//! under the bare `host:port` before are folded in when stats are taken.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::socks5::{self, Reply, TargetAddr};
use crate::budget::Direction;
use crate::limits::policy::{LimitsNow, PairLimits};
use crate::limits::stats::{Accounting, DestinationStats, DirectionStats, FlowStats};
use crate::limits::Bucket;

/// A client that has not finished its SOCKS5 request by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to try to reach a target before replying failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The copy buffer when no limit applies: large enough that shaping without limits costs little.
const BUFFER: usize = 64 * 1024;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShapingError {
    #[error(
        "the shaping proxy listens on loopback only, not {0}: it relays to any address, so on \
         another interface it would be an open proxy; use 127.0.0.1:PORT"
    )]
    /// The address to listen on is not a loopback address.
    NotLoopback(SocketAddr),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source} (is another program using the port?)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it could not be bound.
        #[source]
        source: io::Error,
    },
}

/// A bound, not yet running, shaping proxy.
#[derive(Debug)]
pub struct ShapingProxy {
    listener: TcpListener,
    control: ShapingControl,
}

/// The caller's side of a running proxy: routes, limits and stats. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShapingControl {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    listening: SocketAddr,
    routes: RwLock<HashMap<String, String>>,
    /// Bumped on every route change, so connections know to look their destination up again.
    routes_version: AtomicU64,
    limits: Mutex<Limits>,
    flows: Mutex<HashMap<String, Arc<Flow>>>,
    total: Arc<Flow>,
    open: AtomicU64,
    accepted: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct Limits {
    total: PairLimits,
    destinations: BTreeMap<String, PairLimits>,
}

/// One destination's (or the total's) buckets and exact byte counts.
#[derive(Debug)]
struct Flow {
    upload: Bucket,
    download: Bucket,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl Flow {
    fn new(limits: PairLimits) -> Self {
        Flow {
            upload: Bucket::new(limits.upload),
            download: Bucket::new(limits.download),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        }
    }

    fn bucket(&self, d: Direction) -> &Bucket {
        match d {
            Direction::Upload => &self.upload,
            Direction::Download => &self.download,
        }
    }

    fn count(&self, d: Direction, n: u64) {
        let c = match d {
            Direction::Upload => &self.bytes_up,
            Direction::Download => &self.bytes_down,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn set(&self, limits: PairLimits) {
        self.upload.set_rate(limits.upload);
        self.download.set_rate(limits.download);
    }

    /// Figures with the exact counts in place of the buckets' (which count bytes let through
    /// before they were written, including any a failed write lost).
    fn stats(&self) -> DirectionStats {
        let mut upload = self.upload.stats();
        upload.bytes = self.bytes_up.load(Ordering::Relaxed);
        let mut download = self.download.stats();
        download.bytes = self.bytes_down.load(Ordering::Relaxed);
        DirectionStats { upload, download }
    }
}

/// A serializable snapshot of the proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapingStats {
    /// The address the proxy listens on.
    pub listening: SocketAddr,
    /// All traffic through the proxy.
    pub total: DirectionStats,
    /// By destination id, or by `host:port` for targets no route names.
    pub destinations: BTreeMap<String, DestinationStats>,
    /// Connections open now.
    pub open_connections: u64,
    /// Connections accepted since the proxy started.
    pub accepted_connections: u64,
    /// Requests refused or targets not reached.
    pub failed_connections: u64,
}

impl ShapingProxy {
    /// Listens on `addr`, which must be a loopback address (port 0 lets the OS choose).
    pub async fn bind(addr: SocketAddr) -> Result<ShapingProxy, ShapingError> {
        if !addr.ip().is_loopback() {
            return Err(ShapingError::NotLoopback(addr));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ShapingError::Bind { addr, source })?;
        let listening = listener
            .local_addr()
            .map_err(|source| ShapingError::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            listening,
            routes: RwLock::new(HashMap::new()),
            routes_version: AtomicU64::new(0),
            limits: Mutex::new(Limits::default()),
            flows: Mutex::new(HashMap::new()),
            total: Arc::new(Flow::new(PairLimits::default())),
            open: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        Ok(ShapingProxy {
            listener,
            control: ShapingControl { shared },
        })
    }

    /// The address the proxy listens on (what goes in the node's `socks.port`).
    pub fn local_addr(&self) -> SocketAddr {
        self.control.shared.listening
    }

    /// A handle for setting the proxy's routes and limits and reading its stats; cheap to clone.
    pub fn control(&self) -> ShapingControl {
        self.control.clone()
    }

    /// Serves until `shutdown` resolves; open connections are closed then.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let listening = self.local_addr();
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = connections.join_next() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let shared = self.control.shared.clone();
                        shared.accepted.fetch_add(1, Ordering::Relaxed);
                        connections.spawn(async move {
                            let _open = OpenGuard::new(&shared.open);
                            if let Err(e) = serve_connection(&shared, stream).await {
                                tracing::debug!(error = %e, "shaping proxy connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, say: wait rather than spin.
                        tracing::warn!(error = %e, %listening, "shaping proxy cannot accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        connections.shutdown().await;
    }
}

impl ShapingControl {
    /// Replaces the routes: `host:port` (as the node connects to it) -> destination id.
    pub fn set_routes(&self, routes: HashMap<String, String>) {
        let routes = routes
            .into_iter()
            .map(|(target, id)| (normalize_key(&target), id))
            .collect();
        *self
            .shared
            .routes
            .write()
            .unwrap_or_else(|e| e.into_inner()) = routes;
        self.shared.routes_version.fetch_add(1, Ordering::Release);
    }

    /// Puts the total and per-destination limits in force at once, for waiting bytes too.
    /// Destinations are looked up by id, or by `host:port` for targets without a route.
    pub fn apply(&self, limits: &LimitsNow) {
        let new = Limits {
            total: limits.total,
            destinations: limits.destinations.clone(),
        };
        self.shared.total.set(new.total);
        let flows = self.shared.lock_flows();
        for (key, flow) in flows.iter() {
            flow.set(new.destinations.get(key).copied().unwrap_or_default());
        }
        *self.shared.lock_limits() = new;
    }

    /// A snapshot: exact byte counts per destination and in total.
    pub fn stats(&self) -> ShapingStats {
        let routes = self.shared.routes.read().unwrap_or_else(|e| e.into_inner());
        let limits = self.shared.lock_limits().clone();
        let mut destinations: BTreeMap<String, DestinationStats> = BTreeMap::new();
        for (key, flow) in self.shared.lock_flows().iter() {
            // A connection counted under its bare target before its route was known.
            let id = routes.get(key).unwrap_or(key);
            let s = flow.stats();
            let entry = destinations
                .entry(id.clone())
                .or_insert_with(|| DestinationStats {
                    mode: Accounting::Exact,
                    upload: FlowStats::default(),
                    download: FlowStats::default(),
                });
            entry.upload.merge(&s.upload);
            entry.download.merge(&s.download);
        }
        for (id, entry) in destinations.iter_mut() {
            let l = limits.destinations.get(id).copied().unwrap_or_default();
            entry.upload.limit = l.upload;
            entry.download.limit = l.download;
        }
        drop(routes);
        ShapingStats {
            listening: self.shared.listening,
            total: self.shared.total.stats(),
            destinations,
            open_connections: self.shared.open.load(Ordering::Relaxed),
            accepted_connections: self.shared.accepted.load(Ordering::Relaxed),
            failed_connections: self.shared.failed.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    fn lock_flows(&self) -> MutexGuard<'_, HashMap<String, Arc<Flow>>> {
        self.flows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The flow `target`'s bytes go to now: its destination's if a route names it, else its own.
    fn flow_for(&self, target: &str) -> Arc<Flow> {
        let key = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(target)
            .cloned()
            .unwrap_or_else(|| target.to_string());
        let mut flows = self.lock_flows();
        if let Some(f) = flows.get(&key) {
            return f.clone();
        }
        let limits = self
            .lock_limits()
            .destinations
            .get(&key)
            .copied()
            .unwrap_or_default();
        let flow = Arc::new(Flow::new(limits));
        flows.insert(key, flow.clone());
        flow
    }
}

/// Counts open connections for the stats.
struct OpenGuard<'a>(&'a AtomicU64);

impl<'a> OpenGuard<'a> {
    fn new(c: &'a AtomicU64) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        OpenGuard(c)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Socks(#[from] socks5::Socks5Error),
    #[error("SOCKS5 handshake timed out")]
    HandshakeTimeout,
    #[error("cannot reach {target}: {message}")]
    Unreachable { target: String, message: String },
    #[error("relaying to {target}: {source}")]
    Relay {
        target: String,
        #[source]
        source: io::Error,
    },
}

async fn serve_connection(
    shared: &Arc<Shared>,
    mut client: TcpStream,
) -> Result<(), ConnectionError> {
    let target =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, socks5::read_request(&mut client)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                return Err(e.into());
            }
            Err(_) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                return Err(ConnectionError::HandshakeTimeout);
            }
        };
    let key = target.key();
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, connect(&target)).await {
        Ok(Ok(s)) => s,
        Ok(Err((reply, e))) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            let _ = socks5::send_reply(&mut client, reply, None).await;
            return Err(ConnectionError::Unreachable {
                target: key,
                message: e.to_string(),
            });
        }
        Err(_) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            let _ = socks5::send_reply(&mut client, Reply::TtlExpired, None).await;
            return Err(ConnectionError::Unreachable {
                target: key,
                message: "timed out".into(),
            });
        }
    };
    // Pacing already groups bytes; Nagle would only add latency to the small messages between.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let bound = upstream.local_addr().ok();
    socks5::send_reply(&mut client, Reply::Succeeded, bound)
        .await
        .map_err(|source| ConnectionError::Relay {
            target: key.clone(),
            source,
        })?;

    let (client_read, client_write) = client.into_split();
    let (up_read, up_write) = upstream.into_split();
    let relay = |source| ConnectionError::Relay {
        target: key.clone(),
        source,
    };
    tokio::try_join!(
        pump(shared, &key, Direction::Upload, client_read, up_write),
        pump(shared, &key, Direction::Download, up_read, client_write),
    )
    .map_err(relay)?;
    Ok(())
}

/// Resolves and connects, trying each address in turn; the error says which reply fits.
async fn connect(target: &TargetAddr) -> Result<TcpStream, (Reply, io::Error)> {
    let addrs: Vec<SocketAddr> = match target {
        TargetAddr::Ip(a) => vec![*a],
        TargetAddr::Domain(host, port) => {
            match tokio::net::lookup_host((host.as_str(), *port)).await {
                Ok(a) => a.collect(),
                Err(e) => return Err((Reply::HostUnreachable, e)),
            }
        }
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err((Reply::for_connect_error(&last), last))
}

/// Copies one direction, pacing each read to the destination's and the total's limit, and
/// counting what was written. Reads are no larger than the tighter burst, so the wire sees
/// bytes spread evenly rather than a buffer at a time.
async fn pump<R, W>(
    shared: &Shared,
    target: &str,
    direction: Direction,
    mut from: R,
    mut to: W,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    let mut seen_version = u64::MAX;
    let mut flow: Option<Arc<Flow>> = None;
    loop {
        let version = shared.routes_version.load(Ordering::Acquire);
        let current = match &flow {
            Some(f) if version == seen_version => f.clone(),
            _ => {
                seen_version = version;
                let f = shared.flow_for(target);
                flow = Some(f.clone());
                f
            }
        };
        let dest_bucket = current.bucket(direction);
        let total_bucket = shared.total.bucket(direction);
        let max = [dest_bucket.burst(), total_bucket.burst()]
            .into_iter()
            .flatten()
            .map(|b| usize::try_from(b).unwrap_or(usize::MAX))
            .fold(BUFFER, usize::min);
        let n = from.read(&mut buf[..max]).await?;
        if n == 0 {
            // Pass the half-close on: the other direction may still have bytes to carry.
            to.shutdown().await?;
            return Ok(());
        }
        let n64 = n as u64;
        dest_bucket.acquire(n64).await;
        total_bucket.acquire(n64).await;
        to.write_all(&buf[..n]).await?;
        current.count(direction, n64);
        shared.total.count(direction, n64);
    }
}

/// The same `host:port` spelling as [`TargetAddr::key`], for routes given by the caller.
fn normalize_key(target: &str) -> String {
    match target.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) => socks5::target_key(host, p),
            Err(_) => target.to_ascii_lowercase(),
        },
        None => target.to_ascii_lowercase(),
    }
}

//! The node's storage servers, as its welcome page (`GET /?t=json`) lists them, and what the
//! budget needs from that list:
//!
//! - which nickname is which server id ([`ServerMap::resolve_names`]): `[budget] server.NAME.*`
//!   may name a server by nickname, which must match exactly one server the node knows;
//! - which `host:port` is which server ([`ServerMap::routes`]): the shaping proxy only sees the
//!   address the node connects to; foolscap's status says "Connected to tcp:HOST:PORT via tor";
//! - whether every connected server's traffic goes through the shaping proxy
//!   ([`shaping_problems`]), before the daemon turns exact shaping on;
//! - per-server estimates for feed pacing when shaping is off ([`Placement`]): an upload of S
//!   bytes sends about S/k to each share, and with the share placement unknown each connected
//!   server is assumed to get ceil(N / servers) shares.
//!
//! Connection statuses Tahoe-LAFS 1.20 reports (`allmydata/util/connection_status.py` and
//! `storage_client.py`): over foolscap "Connected to HINT via HANDLER" (HINT such as
//! `tcp:localhost:47211`, HANDLER `tcp` or `tor`), "Connected via listener (...)" when the server
//! connected to us, "Trying to connect", "Reconnecting in N seconds (...)", "unstarted"; over the
//! HTTP storage protocol only "connected" or "failure: ...". Only foolscap names the address, which
//! is one reason exact shaping needs `[client] force_foolscap = true`.
//!
//! Nothing here holds a capability: the welcome page has none.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tahoe_jobs_engine::limits::expansion::spread_evenly;
use tahoe_jobs_engine::limits::Coding;
use tahoe_jobs_engine::shaping::{target_key, ShapingStats};
use tahoe_jobs_engine::ByteRequest;

use super::cap::Cap;
use super::client::TahoeClient;
use super::error::TahoeError;

/// How a server is connected, from its `connection_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Connected over foolscap to `hint` through `handler` (`tcp`, or `tor` for a SOCKS5 proxy,
    /// which is how the shaping proxy is configured). `target` is the `host:port` the
    /// connection went to, keyed as the proxy keys it; `None` for a hint it cannot name.
    Via {
        /// The connection hint the connection used, e.g. `tcp:localhost:47211`.
        hint: String,
        /// The foolscap connection handler that made it: `tcp`, `tor`, ...
        handler: String,
        /// The `host:port` the connection went to, as the shaping proxy keys it; `None` when
        /// the hint names none.
        target: Option<String>,
    },
    /// Connected without a named route: the HTTP storage protocol ("connected"), or an inbound
    /// connection ("Connected via listener").
    Unrouted,
    /// Not connected (trying, waiting to retry, failed, not started).
    NotConnected,
}

impl Connection {
    /// True unless the server is [`NotConnected`](Connection::NotConnected).
    pub fn is_connected(&self) -> bool {
        !matches!(self, Connection::NotConnected)
    }

    /// True when the connection went through a SOCKS5 proxy (foolscap's `tor` handler).
    pub fn is_via_socks(&self) -> bool {
        matches!(self, Connection::Via { handler, .. } if handler == "tor")
    }
}

/// Parses a server's `connection_status`.
pub fn parse_connection_status(status: &str) -> Connection {
    let s = status.trim();
    if let Some(rest) = s.strip_prefix("Connected to ") {
        if let Some((hint, handler)) = rest.rsplit_once(" via ") {
            let hint = hint.trim().to_string();
            return Connection::Via {
                target: hint_target(&hint),
                hint,
                handler: handler.trim().to_string(),
            };
        }
        return Connection::Unrouted;
    }
    if s.eq_ignore_ascii_case("connected") || s.starts_with("Connected") {
        return Connection::Unrouted;
    }
    Connection::NotConnected
}

/// The `host:port` a foolscap connection hint points at, keyed as the shaping proxy keys its
/// targets: `tcp:localhost:47211` -> `localhost:47211`, `tor:abc.onion:80` -> `abc.onion:80`,
/// `tcp:[::1]:80` -> `[::1]:80`, and the legacy `localhost:47211` as is.
pub fn hint_target(hint: &str) -> Option<String> {
    let (rest, port) = hint.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = if rest.ends_with(']') {
        // `tcp:[::1]` or `[::1]`: the address is the bracketed part.
        &rest[rest.find('[')?..]
    } else {
        match rest.split_once(':') {
            Some((_, host)) => host,
            None => rest,
        }
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return None;
    }
    Some(target_key(host, port))
}

/// One server as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// The server id, `v0-...`.
    pub nodeid: String,
    /// The server's nickname; empty when the node reports none.
    pub nickname: String,
    /// `connection_status` as reported.
    pub status: String,
    /// `status`, parsed.
    pub connection: Connection,
}

/// Every server the node knows (connected or not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerMap {
    /// The servers, in the order the node lists them.
    pub servers: Vec<ServerEntry>,
}

/// A `[budget] server.NAME` that names no server, or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// A nickname no server the node knows has.
    UnknownNickname(String),
    /// A nickname several servers share (their ids).
    Ambiguous {
        /// The nickname.
        name: String,
        /// The ids of the servers that have it.
        ids: Vec<String>,
    },
    /// A `v0-...` id the node does not know (not announced yet, or a typo).
    UnknownId(String),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::UnknownNickname(name) => write!(
                f,
                "[budget] server.{name}: no storage server the node knows is called {name:?}, \
                 so this limit applies to nothing (nicknames must match exactly; the node's \
                 welcome page lists them)"
            ),
            NameProblem::Ambiguous { name, ids } => write!(
                f,
                "[budget] server.{name}: {} storage servers are called {name:?} ({}), so this \
                 limit applies to none of them; write server.<id> for each instead",
                ids.len(),
                ids.join(", ")
            ),
            NameProblem::UnknownId(id) => write!(
                f,
                "[budget] server.{id}: the node knows no storage server with this id (yet)"
            ),
        }
    }
}

/// Which configured name is which server id, and the names that could not be resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameResolution {
    /// Every nickname exactly one server has -> its id (configured or not, so that a limit
    /// set live with a known nickname applies at once).
    pub aliases: BTreeMap<String, String>,
    /// Problems with the configured names, in their order.
    pub problems: Vec<NameProblem>,
}

impl ServerMap {
    /// Reads the `servers` list of a welcome page.
    pub fn parse(welcome: &Value) -> Result<ServerMap, TahoeError> {
        let list = welcome
            .get("servers")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                TahoeError::Protocol("the welcome page (?t=json) has no servers list".into())
            })?;
        let servers = list
            .iter()
            .filter_map(|s| {
                let field = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_string);
                let nodeid = field("nodeid")?;
                let status = field("connection_status").unwrap_or_default();
                Some(ServerEntry {
                    connection: parse_connection_status(&status),
                    nodeid,
                    nickname: field("nickname").unwrap_or_default(),
                    status,
                })
            })
            .collect();
        Ok(ServerMap { servers })
    }

    /// `GET /?t=json` of the node behind `client`.
    pub async fn fetch(client: &TahoeClient) -> Result<ServerMap, TahoeError> {
        ServerMap::parse(&client.welcome().await?)
    }

    /// Ids of the servers connected now, sorted.
    pub fn connected_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .servers
            .iter()
            .filter(|s| s.connection.is_connected())
            .map(|s| s.nodeid.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// `host:port` -> server id, for the shaping proxy, from the connected servers' routes.
    pub fn routes(&self) -> HashMap<String, String> {
        self.servers
            .iter()
            .filter_map(|s| match &s.connection {
                Connection::Via {
                    target: Some(t), ..
                } => Some((t.clone(), s.nodeid.clone())),
                _ => None,
            })
            .collect()
    }

    /// The aliases for the engine (every unique nickname) and the problems with `configured`,
    /// the server names written in `[budget]` and its live overrides (ids and nicknames).
    pub fn resolve_names<'a>(
        &self,
        configured: impl IntoIterator<Item = &'a str>,
    ) -> NameResolution {
        let mut by_nickname: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for s in &self.servers {
            let ids = by_nickname.entry(s.nickname.as_str()).or_default();
            if !ids.contains(&s.nodeid.as_str()) {
                ids.push(&s.nodeid);
            }
        }
        let aliases = by_nickname
            .iter()
            .filter(|(name, ids)| !name.is_empty() && ids.len() == 1)
            .map(|(name, ids)| (name.to_string(), ids[0].to_string()))
            .collect();
        let mut problems = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for name in configured {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if name.starts_with("v0-") {
                if !self.servers.iter().any(|s| s.nodeid == name) {
                    problems.push(NameProblem::UnknownId(name.to_string()));
                }
                continue;
            }
            match by_nickname.get(name).map(Vec::as_slice) {
                None | Some([]) => problems.push(NameProblem::UnknownNickname(name.to_string())),
                Some([_]) => {}
                Some(ids) => {
                    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
                    ids.sort();
                    problems.push(NameProblem::Ambiguous {
                        name: name.to_string(),
                        ids,
                    });
                }
            }
        }
        NameResolution { aliases, problems }
    }

    fn label(&self, id: &str) -> String {
        match self.servers.iter().find(|s| s.nodeid == id) {
            Some(s) if !s.nickname.is_empty() => format!("{} ({})", s.nickname, short_id(id)),
            _ => short_id(id).to_string(),
        }
    }
}

/// The first characters of a server id, enough to tell servers apart in a message.
fn short_id(id: &str) -> &str {
    let end = id.char_indices().nth(11).map_or(id.len(), |(i, _)| i);
    &id[..end]
}

/// Server names written in `[budget] server.NAME.upload|download` keys (live overrides use the
/// same keys).
pub fn server_names_in_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = keys
        .into_iter()
        .filter_map(|k| k.strip_prefix("server."))
        .filter_map(|k| {
            k.strip_suffix(".upload")
                .or_else(|| k.strip_suffix(".download"))
        })
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Why the node's storage traffic cannot be taken to flow through the shaping proxy, given
/// the node's servers and the proxy's figures; empty when it does: every connected server is
/// connected through a SOCKS5 proxy (`via tor`), the shaping proxy has carried a connection to
/// each of them, and it holds at least that many connections open.
pub fn shaping_problems(map: &ServerMap, proxy: &ShapingStats) -> Vec<String> {
    let connected: Vec<&ServerEntry> = map
        .servers
        .iter()
        .filter(|s| s.connection.is_connected())
        .collect();
    if connected.is_empty() {
        return vec![format!(
            "the node is connected to no storage server (is it started after tahoe-jobs, with \
             [tor] socks.port = tcp:{}?)",
            proxy.listening
        )];
    }
    let mut problems = Vec::new();
    for s in &connected {
        let who = map.label(&s.nodeid);
        match &s.connection {
            Connection::Via { handler, .. } if handler == "tor" => {
                if !proxy.destinations.contains_key(&s.nodeid) {
                    problems.push(format!(
                        "{who} is connected through a SOCKS proxy, but not through this one at \
                         {} (is [tor] socks.port = tcp:{}?)",
                        proxy.listening, proxy.listening
                    ));
                }
            }
            Connection::Via { hint, handler, .. } => problems.push(format!(
                "{who} is connected directly ({hint} via {handler}), not through the proxy: \
                 add [connections] tcp = tor to the node's tahoe.cfg"
            )),
            Connection::Unrouted => problems.push(format!(
                "{who} is connected without a named route ({:?}): the HTTP storage protocol \
                 does not go through the proxy; add [client] force_foolscap = true",
                s.status
            )),
            Connection::NotConnected => {}
        }
    }
    if problems.is_empty() && (proxy.open_connections as usize) < connected.len() {
        problems.push(format!(
            "the proxy holds {} open connections for {} connected servers: some traffic may \
             go around it",
            proxy.open_connections,
            connected.len()
        ));
    }
    problems
}

/// Largest file Tahoe stores inside its cap (a `URI:LIT:`), sending nothing to any server.
pub const LIT_MAX: u64 = 55;

/// Tahoe's default encoding, used until the node's is known: 3-of-10.
pub const DEFAULT_CODING: Coding = Coding {
    needed: 3,
    total: 10,
};

/// The erasure coding of an immutable file cap (`URI:CHK:key:ueb:k:N:size`), if it has one.
pub fn coding_of_cap(cap: &Cap) -> Option<Coding> {
    let fields: Vec<&str> = cap.expose().split(':').collect();
    match fields.as_slice() {
        ["URI", "CHK", _, _, k, n, _] | ["URI", "DIR2-CHK", _, _, k, n, _] => {
            Coding::new(k.parse().ok()?, n.parse().ok()?)
        }
        _ => None,
    }
}

/// How one upload's bytes are expected to spread over the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The encoding (k-of-N) last learned from the node, else [`DEFAULT_CODING`].
    pub coding: Coding,
    /// The servers that may receive shares; empty when none are known or nothing leaves the
    /// node (a file small enough for a LIT cap).
    pub servers: Vec<String>,
}

impl Placement {
    /// The budget request for `bytes` of the file fed to the node, with per-server estimates.
    pub fn request(&self, bytes: u64) -> ByteRequest {
        let mut req = ByteRequest::upload(bytes);
        if !self.servers.is_empty() {
            req.destinations = spread_evenly(bytes, self.coding, &self.servers);
        }
        req
    }
}

/// What is known of one node, shared by every upload to it in this process.
#[derive(Debug, Clone)]
struct NodeView {
    servers: Vec<String>,
    coding: Option<Coding>,
    /// When the server list was last fetched or published (or a fetch failed).
    fetched: Option<Instant>,
}

/// How long a server list is used before it is fetched again.
pub const REFRESH: Duration = Duration::from_secs(30);

/// How long an upload waits for the welcome page before going on with what it knows.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Held while an upload fetches a server list, so the others wait for it (the first time) or
/// use the list they have (later) instead of asking the node too.
fn fetching() -> &'static tokio::sync::Mutex<()> {
    static FETCHING: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    FETCHING.get_or_init(|| tokio::sync::Mutex::new(()))
}

fn nodes() -> &'static Mutex<HashMap<String, NodeView>> {
    static NODES: OnceLock<Mutex<HashMap<String, NodeView>>> = OnceLock::new();
    NODES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn with_node<T>(node_url: &str, f: impl FnOnce(&mut NodeView) -> T) -> T {
    let mut nodes = nodes().lock().unwrap_or_else(|e| e.into_inner());
    let view = nodes.entry(node_url.to_string()).or_insert(NodeView {
        servers: Vec::new(),
        coding: None,
        fetched: None,
    });
    f(view)
}

/// Tells every upload to the node at `node_url` which servers are connected and, when known
/// (from its `tahoe.cfg`), how it encodes. The daemon calls this whenever it refreshes its view
/// of the node, so uploads need not fetch it themselves.
pub fn publish(node_url: &str, map: &ServerMap, coding: Option<Coding>) {
    with_node(node_url, |v| {
        v.servers = map.connected_ids();
        if coding.is_some() {
            v.coding = coding;
        }
        v.fetched = Some(Instant::now());
    });
}

/// Remembers the encoding of a file just uploaded: later estimates use what the node really did.
pub fn learn_coding(client: &TahoeClient, cap: &Cap) {
    if let Some(coding) = coding_of_cap(cap) {
        with_node(client.node_url(), |v| v.coding = Some(coding));
    }
}

/// The placement to assume for an upload of `size` bytes through `client`: the node's connected
/// servers (fetched at most every [`REFRESH`], by one upload at a time; the first uploads wait
/// for the first list) and its encoding (from the last upload's cap or [`publish`], else
/// Tahoe's default, which errs on the safe side for the usual 1-of-1 to 3-of-10). A node that
/// cannot answer leaves the last known list in use; with none, the upload is paced without
/// per-server estimates.
pub async fn upload_placement(client: &TahoeClient, size: u64) -> Placement {
    let url = client.node_url();
    let is_stale = || {
        with_node(
            url,
            |v| !matches!(v.fetched, Some(t) if t.elapsed() < REFRESH),
        )
    };
    let known = with_node(url, |v| v.fetched.is_some());
    if is_stale() {
        let guard = if known {
            fetching().try_lock().ok()
        } else {
            Some(fetching().lock().await)
        };
        // Another upload may have fetched it while this one waited.
        if guard.is_some() && is_stale() {
            let fetched = tokio::time::timeout(FETCH_TIMEOUT, ServerMap::fetch(client)).await;
            with_node(url, |v| {
                match fetched {
                    Ok(Ok(map)) => v.servers = map.connected_ids(),
                    Ok(Err(e)) => tracing::debug!(error = %e, "cannot list the node's servers"),
                    Err(_) => tracing::debug!("the node's server list took too long"),
                }
                // Not asked again before REFRESH, even after a failure.
                v.fetched = Some(Instant::now());
            });
        }
    }
    with_node(url, |v| Placement {
        coding: v.coding.unwrap_or(DEFAULT_CODING),
        servers: if size <= LIT_MAX {
            Vec::new()
        } else {
            v.servers.clone()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn via(hint: &str, handler: &str, target: Option<&str>) -> Connection {
        Connection::Via {
            hint: hint.into(),
            handler: handler.into(),
            target: target.map(str::to_string),
        }
    }

    #[test]
    fn connection_statuses_of_tahoe_1_20() {
        assert_eq!(
            parse_connection_status("Connected to tcp:localhost:47211 via tor"),
            via("tcp:localhost:47211", "tor", Some("localhost:47211"))
        );
        assert_eq!(
            parse_connection_status("Connected to tcp:Example.ORG:3457 via tcp"),
            via("tcp:Example.ORG:3457", "tcp", Some("example.org:3457"))
        );
        assert_eq!(
            parse_connection_status("Connected to tor:abcdef.onion:80 via tor"),
            via("tor:abcdef.onion:80", "tor", Some("abcdef.onion:80"))
        );
        assert_eq!(
            parse_connection_status("Connected to tcp:[::1]:80 via tcp"),
            via("tcp:[::1]:80", "tcp", Some("[::1]:80"))
        );
        assert_eq!(
            parse_connection_status("Connected to localhost:47211 via tcp"),
            via("localhost:47211", "tcp", Some("localhost:47211"))
        );
        assert_eq!(parse_connection_status("connected"), Connection::Unrouted);
        assert_eq!(
            parse_connection_status("Connected via listener (tcp:127.0.0.1:4000)"),
            Connection::Unrouted
        );
        for s in [
            "Trying to connect",
            "Reconnecting in 8 seconds (last attempt 3s ago)",
            "unstarted",
            "failure: [Failure instance: ConnectionRefused]",
            "",
        ] {
            assert_eq!(parse_connection_status(s), Connection::NotConnected, "{s}");
        }
        assert!(via("tcp:a:1", "tor", None).is_via_socks());
        assert!(!via("tcp:a:1", "tcp", None).is_via_socks());
    }

    #[test]
    fn odd_hints_name_no_target() {
        assert_eq!(hint_target("tcp:localhost"), None);
        assert_eq!(hint_target("tcp:localhost:notaport"), None);
        assert_eq!(hint_target("tcp::80"), None);
        assert_eq!(hint_target("i2p:abc.i2p:80"), Some("abc.i2p:80".into()));
    }

    fn welcome() -> Value {
        json!({
            "introducers": {"statuses": ["Connected to tcp:localhost:51015 via tor"]},
            "servers": [
                {"nodeid": "v0-aaaa", "nickname": "parents",
                 "connection_status": "Connected to tcp:localhost:1001 via tor"},
                {"nodeid": "v0-bbbb", "nickname": "twin",
                 "connection_status": "Connected to tcp:host-b:1002 via tcp"},
                {"nodeid": "v0-cccc", "nickname": "twin", "connection_status": "connected"},
                {"nodeid": "v0-dddd", "nickname": "away",
                 "connection_status": "Reconnecting in 8 seconds (last attempt 3s ago)"},
                {"nickname": "no id"}
            ]
        })
    }

    #[test]
    fn parses_servers_ids_and_routes() {
        let map = ServerMap::parse(&welcome()).unwrap();
        assert_eq!(map.servers.len(), 4, "an entry without nodeid is skipped");
        assert_eq!(map.connected_ids(), vec!["v0-aaaa", "v0-bbbb", "v0-cccc"]);
        let routes = map.routes();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes["localhost:1001"], "v0-aaaa");
        assert_eq!(routes["host-b:1002"], "v0-bbbb");
        assert!(ServerMap::parse(&json!({"introducers": {}})).is_err());
    }

    #[test]
    fn nicknames_must_name_exactly_one_server() {
        let map = ServerMap::parse(&welcome()).unwrap();
        let r = map.resolve_names(["parents", "twin", "nobody", "v0-dddd", "v0-zzzz", "parents"]);
        assert_eq!(
            r.aliases,
            BTreeMap::from([
                ("parents".to_string(), "v0-aaaa".to_string()),
                ("away".to_string(), "v0-dddd".to_string()),
            ])
        );
        assert_eq!(
            r.problems,
            vec![
                NameProblem::Ambiguous {
                    name: "twin".into(),
                    ids: vec!["v0-bbbb".into(), "v0-cccc".into()]
                },
                NameProblem::UnknownNickname("nobody".into()),
                NameProblem::UnknownId("v0-zzzz".into()),
            ]
        );
        let text = r.problems[0].to_string();
        assert!(
            text.contains("server.twin") && text.contains("v0-bbbb"),
            "{text}"
        );
        assert!(r.problems[1].to_string().contains("applies to nothing"));
        // Nicknames match exactly.
        let r = map.resolve_names(["Parents"]);
        assert_eq!(
            r.problems,
            vec![NameProblem::UnknownNickname("Parents".into())]
        );
    }

    #[test]
    fn server_names_from_budget_keys() {
        let names = server_names_in_keys([
            "upload",
            "server.parents.upload",
            "server.parents.download",
            "server.v0-abc.download",
            "server.my.dotted.name.upload",
            "server.bad",
            "cpu",
        ]);
        assert_eq!(names, vec!["my.dotted.name", "parents", "v0-abc"]);
    }

    fn proxy_stats(ids: &[&str], open: u64) -> ShapingStats {
        use tahoe_jobs_engine::limits::{Accounting, DestinationStats, FlowStats};
        ShapingStats {
            listening: "127.0.0.1:3458".parse().unwrap(),
            total: Default::default(),
            destinations: ids
                .iter()
                .map(|id| {
                    let d = DestinationStats {
                        mode: Accounting::Exact,
                        upload: FlowStats::default(),
                        download: FlowStats::default(),
                    };
                    (id.to_string(), d)
                })
                .collect(),
            open_connections: open,
            accepted_connections: open,
            failed_connections: 0,
        }
    }

    fn map_of(statuses: &[(&str, &str)]) -> ServerMap {
        let servers = statuses
            .iter()
            .map(|(id, status)| json!({"nodeid": id, "nickname": "n", "connection_status": status}))
            .collect::<Vec<_>>();
        ServerMap::parse(&json!({ "servers": servers })).unwrap()
    }

    #[test]
    fn shaping_is_verified_only_when_every_connection_goes_through_the_proxy() {
        let good = map_of(&[
            ("v0-a", "Connected to tcp:localhost:1 via tor"),
            ("v0-b", "Connected to tcp:localhost:2 via tor"),
            ("v0-c", "Trying to connect"),
        ]);
        assert!(shaping_problems(&good, &proxy_stats(&["v0-a", "v0-b"], 3)).is_empty());
        // A SOCKS proxy, but not ours.
        let p = shaping_problems(&good, &proxy_stats(&["v0-a"], 3));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("not through this one"), "{p:?}");
        // Fewer open connections than servers.
        let p = shaping_problems(&good, &proxy_stats(&["v0-a", "v0-b"], 1));
        assert!(p[0].contains("open connections"), "{p:?}");
        // Direct and HTTP connections.
        let bad = map_of(&[
            ("v0-a", "Connected to tcp:localhost:1 via tcp"),
            ("v0-b", "connected"),
        ]);
        let p = shaping_problems(&bad, &proxy_stats(&["v0-a", "v0-b"], 2));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("tcp = tor"), "{p:?}");
        assert!(p[1].contains("force_foolscap"), "{p:?}");
        // Nothing connected.
        let none = map_of(&[("v0-a", "Trying to connect")]);
        assert!(shaping_problems(&none, &proxy_stats(&[], 0))[0].contains("no storage server"));
    }

    #[test]
    fn coding_comes_from_chk_caps() {
        let chk = Cap::new("URI:CHK:key:ueb:3:10:123456");
        assert_eq!(coding_of_cap(&chk), Coding::new(3, 10));
        let dir = Cap::new("URI:DIR2-CHK:key:ueb:1:2:99");
        assert_eq!(coding_of_cap(&dir), Coding::new(1, 2));
        assert_eq!(coding_of_cap(&Cap::new("URI:LIT:abc")), None);
        assert_eq!(coding_of_cap(&Cap::new("URI:CHK:key:ueb:0:2:9")), None);
        assert_eq!(coding_of_cap(&Cap::new("URI:DIR2:a:b")), None);
    }

    #[test]
    fn placement_spreads_shares_over_connected_servers() {
        let servers: Vec<String> = ["v0-a", "v0-b", "v0-c", "v0-d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // 3-of-10 over 4 servers: ceil(10/4) = 3 shares each, so each gets 3/3 of the bytes.
        let p = Placement {
            coding: DEFAULT_CODING,
            servers: servers.clone(),
        };
        let req = p.request(300);
        assert_eq!(req.bytes, 300);
        assert_eq!(req.destinations.len(), 4);
        assert!(req.destinations.iter().all(|(_, b)| *b == 300), "{req:?}");
        // 1-of-2 over 3 servers: one share each, a whole copy.
        let p = Placement {
            coding: Coding::new(1, 2).unwrap(),
            servers,
        };
        assert!(p.request(1000).destinations.iter().all(|(_, b)| *b == 1000));
        // Nothing known: no estimates.
        let p = Placement {
            coding: DEFAULT_CODING,
            servers: Vec::new(),
        };
        assert!(p.request(1000).destinations.is_empty());
    }

    #[tokio::test]
    async fn placement_uses_published_servers_learned_coding_and_skips_lit_files() {
        // Nothing listens on port 1: the published list must be used without a fetch.
        let client = TahoeClient::new(
            "http://127.0.0.1:1/",
            &super::super::ClientOptions::default(),
        )
        .unwrap();
        let map = map_of(&[
            ("v0-a", "Connected to tcp:localhost:1 via tor"),
            ("v0-b", "Trying to connect"),
        ]);
        publish(client.node_url(), &map, Coding::new(2, 4));
        let p = upload_placement(&client, 1000).await;
        assert_eq!(p.servers, vec!["v0-a"]);
        assert_eq!(p.coding, Coding::new(2, 4).unwrap());
        learn_coding(&client, &Cap::new("URI:CHK:k:u:1:3:1000"));
        assert_eq!(
            upload_placement(&client, 1000).await.coding,
            Coding::new(1, 3).unwrap()
        );
        assert!(upload_placement(&client, LIT_MAX).await.servers.is_empty());
    }

    // On the paused clock: the slow welcome page's 200 ms are tokio's time, not the machine's.
    #[tokio::test(start_paused = true)]
    async fn the_first_uploads_wait_for_one_fetch_of_the_server_list() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        // A node whose welcome page takes a while to come.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let body = r#"{"servers": [{"nodeid": "v0-a", "nickname": "a",
                        "connection_status": "Connected to tcp:localhost:1 via tcp"}]}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        let client = TahoeClient::new(&url, &super::super::ClientOptions::default()).unwrap();
        let (a, b, c) = tokio::join!(
            upload_placement(&client, 1000),
            upload_placement(&client, 1000),
            upload_placement(&client, 1000)
        );
        for p in [a, b, c] {
            assert_eq!(p.servers, vec!["v0-a"]);
        }
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }
}

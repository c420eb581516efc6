//! `tahoe-jobs shaping`: prints the `tahoe.cfg` lines that send the node's storage traffic
//! through the daemon's shaping proxy, then checks that it really flows there:
//!
//! 1. the node's `tahoe.cfg` has the lines, with the proxy's port;
//! 2. the running node connects to every connected storage server through a SOCKS5 proxy
//!    (`/?t=json` says "Connected to tcp:HOST:PORT via tor");
//! 3. the running daemon says exact shaping is in force (it turns it on only once its proxy has
//!    carried a connection to each of those servers) and shows the servers' exact figures.
//!
//! Exit 0 when all three hold, 1 with what is wrong otherwise (`--print`: only the lines).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use tahoe_jobs_config::ini::parse_ini;
use tahoe_jobs_tasks::tahoe::servers::{Connection, ServerMap};
use tahoe_jobs_tasks::tahoe::{ClientOptions, TahoeClient};

use super::client::Client;
use crate::cli::GlobalArgs;
use crate::web::html::bytes;

/// The port suggested when `[jobs] shaping.port` is not set.
pub const SUGGESTED_PORT: u16 = 3458;

#[derive(Debug, Args)]
pub struct ShapingArgs {
    /// Only print the tahoe.cfg lines; do not check the node and the daemon.
    #[arg(long)]
    pub print: bool,
}

pub fn run(global: &GlobalArgs, args: &ShapingArgs) -> anyhow::Result<i32> {
    let node_dir = super::node_dir(global)?;
    let config = super::load_config(global).map_err(|e| anyhow::anyhow!("{e}"))?;
    let configured = config.daemon.shaping_addr;
    let addr = configured.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], SUGGESTED_PORT)));
    if configured.is_none() {
        println!(
            "Exact shaping is off. To turn it on, add to {}:\n\n[jobs]\nshaping.port = {addr}\n\n\
             and restart `tahoe-jobs run`. The lines below use that port.\n",
            node_dir.join(tahoe_jobs_config::JOB_FILE_NAME).display()
        );
    }
    print!("{}", tahoe_cfg_lines(&node_dir, addr));
    if args.print {
        return Ok(0);
    }
    println!("\nChecking that the node's storage traffic flows through {addr}:");
    let mut wrong = Vec::new();
    if configured.is_none() {
        wrong.push("exact shaping is off ([jobs] shaping.port is not set)".to_string());
    }
    let cfg = check_tahoe_cfg(&node_dir, addr);
    report("tahoe.cfg", &cfg, &mut wrong);
    let node = check_node(&node_dir);
    report("the running node", &node, &mut wrong);
    let daemon = check_daemon(global);
    report("the running daemon", &daemon, &mut wrong);
    if wrong.is_empty() {
        println!("\nVerified: the node's storage traffic flows through the shaping proxy.");
        Ok(0)
    } else {
        println!("\nNot verified:");
        for w in &wrong {
            println!("  - {w}");
        }
        Ok(1)
    }
}

/// A check's findings: what is fine, and what is wrong.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub ok: Vec<String>,
    pub wrong: Vec<String>,
}

fn report(what: &str, f: &Findings, wrong: &mut Vec<String>) {
    for line in &f.ok {
        println!("  ok    {what}: {line}");
    }
    for line in &f.wrong {
        println!("  WRONG {what}: {line}");
        wrong.push(format!("{what}: {line}"));
    }
}

/// The lines to add to the node's tahoe.cfg, with the caveats.
pub fn tahoe_cfg_lines(node_dir: &Path, addr: SocketAddr) -> String {
    format!(
        "Add to {cfg} (force_foolscap goes into the existing [client] section) and restart the node:\n\
         \n\
         [client]\n\
         force_foolscap = true\n\
         \n\
         [connections]\n\
         tcp = tor\n\
         \n\
         [tor]\n\
         launch = false\n\
         socks.port = tcp:{ip}:{port}\n\
         \n\
         - No Tor is involved: `tcp = tor` with `launch = false` only makes the node use the SOCKS5\n  \
           proxy at socks.port, which is tahoe-jobs.\n\
         - force_foolscap: the HTTP storage protocol does not work through this route.\n\
         - Every storage server (and the introducer) must be announced by a DNS name, such as\n  \
           --location=tcp:myserver.example.org:PORT (tcp:localhost:PORT on one machine): the node\n  \
           does not send numeric private addresses (127.x, 10.x, 192.168.x, IPv6) through a SOCKS proxy.\n\
         - Start `tahoe-jobs run` before the node (or restart the node after it): a node that found\n  \
           no proxy waits longer and longer before it tries again.\n",
        cfg = node_dir.join("tahoe.cfg").display(),
        ip = addr.ip(),
        port = addr.port(),
    )
}

/// What `tahoe.cfg` says against what the recipe needs.
pub(super) fn check_tahoe_cfg(node_dir: &Path, addr: SocketAddr) -> Findings {
    let path = node_dir.join("tahoe.cfg");
    let mut f = Findings::default();
    match std::fs::read_to_string(&path) {
        Err(e) => f.wrong.push(format!("cannot read {}: {e}", path.display())),
        Ok(text) => match parse_ini(&text) {
            Err(e) => f
                .wrong
                .push(format!("{} line {}: {}", path.display(), e.line, e.message)),
            Ok(entries) => {
                let get = |section: &str, key: &str| {
                    entries
                        .iter()
                        .find(|e| e.section == section && e.key == key)
                        .map(|e| e.value.as_str())
                };
                match cfg_problems(&get, addr) {
                    p if p.is_empty() => f.ok.push("has the lines, with the proxy's port".into()),
                    p => f.wrong.extend(p),
                }
            }
        },
    }
    f
}

/// What is missing or different in a tahoe.cfg read through `get(section, key)`.
fn cfg_problems<'a>(get: &dyn Fn(&str, &str) -> Option<&'a str>, addr: SocketAddr) -> Vec<String> {
    let mut wrong = Vec::new();
    let is = |v: Option<&str>, want: &[&str]| {
        v.is_some_and(|v| want.iter().any(|w| v.trim().eq_ignore_ascii_case(w)))
    };
    if !is(get("client", "force_foolscap"), &["true", "yes", "on", "1"]) {
        wrong.push("[client] force_foolscap = true is missing".to_string());
    }
    if !is(get("connections", "tcp"), &["tor"]) {
        wrong.push("[connections] tcp = tor is missing".to_string());
    }
    if !is(get("tor", "launch"), &["false", "no", "off", "0"]) {
        wrong.push("[tor] launch = false is missing".to_string());
    }
    match get("tor", "socks.port") {
        None => wrong.push(format!(
            "[tor] socks.port is missing (want tcp:{}:{})",
            addr.ip(),
            addr.port()
        )),
        Some(v) if !socks_port_matches(v, addr) => wrong.push(format!(
            "[tor] socks.port = {v}, but the shaping proxy listens on {addr} (want tcp:{}:{})",
            addr.ip(),
            addr.port()
        )),
        Some(_) => {}
    }
    wrong
}

/// Whether a Twisted endpoint (`tcp:127.0.0.1:3458`, `tcp:localhost:3458`,
/// `tcp:host=127.0.0.1:port=3458`) points at `addr`.
fn socks_port_matches(endpoint: &str, addr: SocketAddr) -> bool {
    let Some(rest) = endpoint.trim().strip_prefix("tcp:") else {
        return false;
    };
    let (mut host, mut port) = (None, None);
    for (i, part) in rest.split(':').enumerate() {
        if let Some(h) = part.strip_prefix("host=") {
            host = Some(h);
        } else if let Some(p) = part.strip_prefix("port=") {
            port = Some(p);
        } else if i == 0 {
            host = Some(part);
        } else if i == 1 {
            port = Some(part);
        }
    }
    let host_ok = host
        .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().ok() == Some(addr.ip()));
    host_ok && port.and_then(|p| p.parse::<u16>().ok()) == Some(addr.port())
}

/// Whether the node connects to its servers through a SOCKS5 proxy.
fn check_node(node_dir: &Path) -> Findings {
    let mut f = Findings::default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            f.wrong.push(format!("cannot start an async runtime: {e}"));
            return f;
        }
    };
    let map = runtime.block_on(async {
        let options = ClientOptions {
            request_timeout: Duration::from_secs(10),
        };
        let client = TahoeClient::from_node_dir(node_dir, &options)?;
        ServerMap::fetch(&client).await
    });
    match map {
        Err(e) => f
            .wrong
            .push(format!("cannot list its storage servers: {e}")),
        Ok(map) => node_findings(&map, &mut f),
    }
    f
}

pub(super) fn node_findings(map: &ServerMap, f: &mut Findings) {
    let mut connected = 0;
    for s in &map.servers {
        let who = if s.nickname.is_empty() {
            s.nodeid.clone()
        } else {
            format!("{} ({})", s.nickname, s.nodeid)
        };
        match &s.connection {
            c if c.is_via_socks() => {
                connected += 1;
                f.ok.push(format!("{who}: {}", s.status));
            }
            Connection::Via { .. } => {
                connected += 1;
                f.wrong.push(format!(
                    "{who}: {} (a direct connection, around the proxy: [connections] tcp = tor \
                     is not in force; restart the node after editing tahoe.cfg)",
                    s.status
                ));
            }
            Connection::Unrouted => {
                connected += 1;
                f.wrong.push(format!(
                    "{who}: {:?} (the HTTP storage protocol, around the proxy: [client] \
                     force_foolscap = true is not in force)",
                    s.status
                ));
            }
            Connection::NotConnected => {
                f.ok.push(format!("{who}: not connected ({}); not counted", s.status))
            }
        }
    }
    if connected == 0 {
        f.wrong.push(
            "it is connected to no storage server (if its status says \"Trying to connect\" or \
             \"Reconnecting\", is the daemon's proxy running, and is every server announced by \
             a DNS name?)"
                .into(),
        );
    }
}

/// Whether the daemon says exact shaping is in force, with per-server exact figures.
fn check_daemon(global: &GlobalArgs) -> Findings {
    let mut f = Findings::default();
    let view = match Client::new(global).and_then(|c| c.status()) {
        Ok(v) => v,
        Err(e) => {
            f.wrong.push(format!("{e:#}"));
            return f;
        }
    };
    let Some(budget) = view.public.budget else {
        f.wrong.push("its status has no budget section".into());
        return f;
    };
    if budget.accounting == "exact" {
        f.ok.push("exact shaping is in force".into());
        let exact: Vec<String> = budget
            .servers
            .iter()
            .filter(|(id, s)| s.accounting == "exact" && id.starts_with("v0-"))
            .map(|(id, s)| {
                format!(
                    "{id}: {} up, {} down",
                    bytes(s.upload.bytes),
                    bytes(s.download.bytes)
                )
            })
            .collect();
        if exact.is_empty() {
            f.wrong
                .push("the proxy has counted no bytes to any storage server yet".into());
        } else {
            f.ok.push(format!("counted by the proxy: {}", exact.join("; ")));
        }
    } else {
        f.wrong.push(format!(
            "servers are held by feed pacing with estimates, not by the proxy{}",
            budget
                .notes
                .first()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn addr() -> SocketAddr {
        "127.0.0.1:3458".parse().unwrap()
    }

    fn problems(cfg: &[(&str, &str, &str)]) -> Vec<String> {
        let map: BTreeMap<(String, String), String> = cfg
            .iter()
            .map(|(s, k, v)| ((s.to_string(), k.to_string()), v.to_string()))
            .collect();
        let get = |s: &str, k: &str| map.get(&(s.to_string(), k.to_string())).map(String::as_str);
        cfg_problems(&get, addr())
    }

    #[test]
    fn the_printed_lines_are_the_recipe() {
        let text = tahoe_cfg_lines(Path::new("/n"), addr());
        for line in [
            "/n/tahoe.cfg",
            "[client]\nforce_foolscap = true\n",
            "[connections]\ntcp = tor\n",
            "[tor]\nlaunch = false\nsocks.port = tcp:127.0.0.1:3458\n",
            "DNS name",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        // The printed lines pass the check.
        let entries = parse_ini(
            "[client]\nforce_foolscap = true\n[connections]\ntcp = tor\n[tor]\nlaunch = false\nsocks.port = tcp:127.0.0.1:3458\n",
        )
        .unwrap();
        let get = |s: &str, k: &str| {
            entries
                .iter()
                .find(|e| e.section == s && e.key == k)
                .map(|e| e.value.as_str())
        };
        assert!(cfg_problems(&get, addr()).is_empty());
    }

    #[test]
    fn a_tahoe_cfg_without_the_lines_says_what_is_missing() {
        let p = problems(&[]);
        assert_eq!(p.len(), 4, "{p:?}");
        let p = problems(&[
            ("client", "force_foolscap", "True"),
            ("connections", "tcp", "tor"),
            ("tor", "launch", "false"),
            ("tor", "socks.port", "tcp:127.0.0.1:9050"),
        ]);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("9050") && p[0].contains("3458"), "{p:?}");
    }

    #[test]
    fn socks_port_endpoints() {
        assert!(socks_port_matches("tcp:127.0.0.1:3458", addr()));
        assert!(socks_port_matches("tcp:localhost:3458", addr()));
        assert!(socks_port_matches("tcp:host=127.0.0.1:port=3458", addr()));
        assert!(!socks_port_matches("tcp:127.0.0.1:3459", addr()));
        assert!(!socks_port_matches("tcp:10.0.0.1:3458", addr()));
        assert!(!socks_port_matches("unix:/tmp/s", addr()));
    }

    #[test]
    fn node_statuses_decide_the_node_check() {
        let map = ServerMap::parse(&serde_json::json!({"servers": [
            {"nodeid": "v0-a", "nickname": "a", "connection_status": "Connected to tcp:localhost:1 via tor"},
            {"nodeid": "v0-b", "nickname": "b", "connection_status": "Trying to connect"},
        ]}))
        .unwrap();
        let mut f = Findings::default();
        node_findings(&map, &mut f);
        assert!(f.wrong.is_empty(), "{f:?}");
        let map = ServerMap::parse(&serde_json::json!({"servers": [
            {"nodeid": "v0-a", "nickname": "a", "connection_status": "Connected to tcp:localhost:1 via tcp"},
            {"nodeid": "v0-b", "nickname": "b", "connection_status": "connected"},
        ]}))
        .unwrap();
        let mut f = Findings::default();
        node_findings(&map, &mut f);
        assert_eq!(f.wrong.len(), 2, "{f:?}");
        let map = ServerMap::parse(&serde_json::json!({"servers": []})).unwrap();
        let mut f = Findings::default();
        node_findings(&map, &mut f);
        assert!(f.wrong[0].contains("no storage server"), "{f:?}");
    }
}

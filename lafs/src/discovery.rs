//! Which storage servers a client node knows, read from its node directory the way the node
//! reads it (`allmydata/introducer/client.py`, `client.py: init_client_storage_broker`,
//! `storage_client.py: _parse_announcement`):
//!
//! - `private/introducer_<petname>_cache.yaml`: every announcement heard from each introducer, a
//!   YAML list of `{ann: {...}, key_s: "v0-..."}`;
//! - `private/servers.yaml`: static servers, `storage: {<server id>: {ann: {...}}}`; a static
//!   server wins over an announcement with the same id, as in the node.
//!
//! [`ServerList`] reloads them when they change (the node rewrites a cache whenever it hears an
//! announcement). The fURLs and NURLs hold the servers' swissnums: none of this module's `Debug`
//! output or errors shows one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_yaml::Value;

use crate::base32;
use crate::nurl::Nurl;

/// A storage server as announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The server id, `v0-<base32>` (the node's `nodeid`; not secret).
    pub server_id: String,
    /// The server's nickname (may be empty).
    pub nickname: String,
    /// Input to the server-selection permutation.
    pub permutation_seed: Vec<u8>,
    /// Input to the lease secrets: the tub id of its fURL (20 bytes).
    pub lease_seed: Vec<u8>,
    /// Where it speaks the HTTPS storage protocol; empty when it announces only Foolscap.
    pub nurls: Vec<Nurl>,
}

impl ServerInfo {
    /// A short name for messages: the nickname, or the first characters of the id as the node
    /// shows them.
    pub fn display_name(&self) -> String {
        let short: String = self
            .server_id
            .trim_start_matches("v0-")
            .chars()
            .take(8)
            .collect();
        if self.nickname.is_empty() {
            short
        } else {
            format!("{} ({short})", self.nickname)
        }
    }
}

/// A server file that cannot be used. Names the file and what is wrong, never a swissnum.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what the node writes.
    #[error("{path} is not a server list the node writes ({reason}); the node rewrites its introducer cache when it next hears from the introducer, or fix private/servers.yaml")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (no secret).
        reason: String,
    },
}

/// The files the servers come from, in the order they are read.
pub fn server_files(node_dir: &Path) -> Vec<PathBuf> {
    let private = node_dir.join("private");
    let mut caches: Vec<PathBuf> = std::fs::read_dir(&private)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("introducer_") && n.ends_with("_cache.yaml"))
        })
        .collect();
    caches.sort();
    caches.push(private.join("servers.yaml"));
    caches
}

/// Every server the node directory names, sorted by server id.
pub fn load_servers(node_dir: &Path) -> Result<Vec<ServerInfo>, DiscoveryError> {
    let mut servers: BTreeMap<String, ServerInfo> = BTreeMap::new();
    for path in server_files(node_dir) {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(DiscoveryError::Read { path, source }),
        };
        let is_static = path.ends_with("servers.yaml");
        let found = if is_static {
            parse_static_servers(&text)
        } else {
            parse_introducer_cache(&text)
        }
        .map_err(|reason| DiscoveryError::Malformed {
            path: path.clone(),
            reason,
        })?;
        for server in found {
            servers.insert(server.server_id.clone(), server);
        }
    }
    Ok(servers.into_values().collect())
}

/// The servers of an introducer cache (`introducer_<petname>_cache.yaml`).
pub fn parse_introducer_cache(text: &str) -> Result<Vec<ServerInfo>, String> {
    let value = yaml(text)?;
    let entries = match &value {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(s) => s,
        _ => return Err("not a YAML list".into()),
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let key_s = entry
            .get("key_s")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("entry {i} has no key_s"))?;
        let ann = entry
            .get("ann")
            .ok_or_else(|| format!("entry {i} has no ann"))?;
        if ann.get("service-name").and_then(Value::as_str) != Some("storage") {
            continue;
        }
        out.push(announcement(key_s, ann).map_err(|e| format!("server {key_s}: {e}"))?);
    }
    Ok(out)
}

/// The servers of `private/servers.yaml`.
pub fn parse_static_servers(text: &str) -> Result<Vec<ServerInfo>, String> {
    let value = yaml(text)?;
    let Some(storage) = value.get("storage") else {
        return Ok(Vec::new());
    };
    let storage = match storage {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => return Err("`storage` is not a mapping".into()),
    };
    let mut out = Vec::new();
    for (id, server) in storage {
        let id = id.as_str().ok_or("a server id is not a string")?;
        let ann = server
            .get("ann")
            .ok_or_else(|| format!("server {id} has no ann"))?;
        out.push(announcement(id, ann).map_err(|e| format!("server {id}: {e}"))?);
    }
    Ok(out)
}

fn yaml(text: &str) -> Result<Value, String> {
    // serde_yaml's messages can quote the document, which holds swissnums: give the place only.
    serde_yaml::from_str(text).map_err(|e| match e.location() {
        Some(at) => format!("YAML syntax error at line {}", at.line()),
        None => "YAML syntax error".into(),
    })
}

fn announcement(server_id: &str, ann: &Value) -> Result<ServerInfo, String> {
    let text = |key: &str| ann.get(key).and_then(Value::as_str);
    let furl = text("anonymous-storage-FURL").ok_or("no anonymous-storage-FURL")?;
    let tubid = furl
        .strip_prefix("pb://")
        .and_then(|r| r.split_once('@'))
        .map(|(tubid, _)| tubid.to_ascii_lowercase())
        .ok_or("anonymous-storage-FURL is not pb://<tubid>@...")?;
    let lease_seed = base32::decode(&tubid).map_err(|_| "the fURL's tub id is not base32")?;
    let permutation_seed = match text("permutation-seed-base32") {
        Some(seed) => base32::decode(seed).map_err(|_| "permutation-seed-base32 is not base32")?,
        None => match server_id.strip_prefix("v0-").map(base32::decode) {
            Some(Ok(seed)) => seed,
            _ => {
                use sha2::Digest;
                sha2::Sha256::digest(server_id.as_bytes()).to_vec()
            }
        },
    };
    let nurls = match ann.get("anonymous-storage-NURLs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|n| {
                let n = n.as_str().ok_or("a NURL is not a string")?;
                Nurl::parse(n).map_err(|e| e.to_string())
            })
            .collect::<Result<_, String>>()?,
        Some(_) => return Err("anonymous-storage-NURLs is not a list".into()),
    };
    Ok(ServerInfo {
        server_id: server_id.to_string(),
        nickname: text("nickname").unwrap_or_default().to_string(),
        permutation_seed,
        lease_seed,
        nurls,
    })
}

/// The servers of a node directory, reloaded when its server files change.
#[derive(Debug)]
pub struct ServerList {
    node_dir: PathBuf,
    stamp: Vec<(PathBuf, Option<(u64, SystemTime)>)>,
    servers: Vec<ServerInfo>,
}

impl ServerList {
    /// Loads the servers of `node_dir`.
    pub fn load(node_dir: &Path) -> Result<ServerList, DiscoveryError> {
        let mut list = ServerList {
            node_dir: node_dir.to_path_buf(),
            stamp: Vec::new(),
            servers: Vec::new(),
        };
        list.refresh()?;
        Ok(list)
    }

    /// Reloads if any server file was added, removed or changed (size or modification time)
    /// since the last load; true when it reloaded. On error the previous list stays.
    pub fn refresh(&mut self) -> Result<bool, DiscoveryError> {
        let stamp = stamp(&self.node_dir);
        if !self.stamp.is_empty() && stamp == self.stamp {
            return Ok(false);
        }
        self.servers = load_servers(&self.node_dir)?;
        self.stamp = stamp;
        Ok(true)
    }

    /// The servers, sorted by id.
    pub fn servers(&self) -> &[ServerInfo] {
        &self.servers
    }
}

fn stamp(node_dir: &Path) -> Vec<(PathBuf, Option<(u64, SystemTime)>)> {
    server_files(node_dir)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (p, meta)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client node's `private/introducer_default_cache.yaml` as Tahoe 1.20 wrote it on a 1-of-1
    /// loopback grid.
    const CACHE: &str = "\
- ann:
    anonymous-storage-FURL: pb://jkx3bripnioaumcaep3iyyl66wchmtdt@tcp:localhost:47602/bpqvfvxo2mqe3hrpwc327jqlzhvn2rln
    anonymous-storage-NURLs:
    - pb://CsVT0HoLClGZeLVcZ-EgSU-ckIA4MrCy66h3g4qHacQ@localhost:47602/bpqvfvxo2mqe3hrpwc327jqlzhvn2rln#v=1
    app-versions: []
    my-version: tahoe-lafs/1.20.0
    nickname: ''
    nonce: sfmy7zhpmj4bqab5xvd57pjkxwex4wqeardib4mckk45goxabmcq
    oldest-supported: 1.0.0
    permutation-seed-base32: nu3gy2lxnnwxcz32nbxdeyzwofxhk4zspa2wc4zxo5vwo5tioj3xum3nnfudo3duouzti3tdmf4wm2juo5qq
    seqnum: 1
    service-name: storage
    version: 0
  key_s: v0-m6liwkmqgzhn2c6qnus2x5as7wkgvhrwz3mih7ltu34ncayfi4wa
";

    #[test]
    fn reads_the_introducer_cache() {
        let servers = parse_introducer_cache(CACHE).unwrap();
        assert_eq!(servers.len(), 1);
        let s = &servers[0];
        assert_eq!(
            s.server_id,
            "v0-m6liwkmqgzhn2c6qnus2x5as7wkgvhrwz3mih7ltu34ncayfi4wa"
        );
        assert_eq!(
            s.lease_seed,
            base32::decode("jkx3bripnioaumcaep3iyyl66wchmtdt").unwrap()
        );
        assert_eq!(s.lease_seed.len(), 20);
        // The node decodes the announced seed as it is (`_parse_announcement`).
        let seed =
            "nu3gy2lxnnwxcz32nbxdeyzwofxhk4zspa2wc4zxo5vwo5tioj3xum3nnfudo3duouzti3tdmf4wm2juo5qq";
        assert_eq!(s.permutation_seed, base32::decode(seed).unwrap());
        assert_eq!(s.nurls[0].port, 47602);
        assert_eq!(s.display_name(), "m6liwkmq");
        assert!(!format!("{s:?}").contains("bpqvfvxo"));
    }

    #[test]
    fn static_servers_win_and_files_are_reloaded_when_they_change() {
        let dir = std::env::temp_dir().join(format!("lafs-discovery-{}", std::process::id()));
        let private = dir.join("private");
        std::fs::create_dir_all(&private).unwrap();
        std::fs::write(private.join("introducer_default_cache.yaml"), CACHE).unwrap();
        let mut list = ServerList::load(&dir).unwrap();
        assert_eq!(list.servers()[0].nickname, "");
        assert!(!list.refresh().unwrap());

        let ann = CACHE
            .lines()
            .skip(1)
            .take(12)
            .collect::<Vec<_>>()
            .join("\n    ");
        let statics = format!(
            "storage:\n  v0-m6liwkmqgzhn2c6qnus2x5as7wkgvhrwz3mih7ltu34ncayfi4wa:\n    ann:\n    {}\n",
            ann.replace("nickname: ''", "nickname: attic")
        );
        std::fs::write(private.join("servers.yaml"), statics).unwrap();
        assert!(list.refresh().unwrap());
        assert_eq!(list.servers().len(), 1);
        assert_eq!(list.servers()[0].nickname, "attic");

        let broken = CACHE.replace("#v=1", "#v=9");
        std::fs::write(private.join("introducer_default_cache.yaml"), broken).unwrap();
        let err = list.refresh().unwrap_err().to_string();
        assert!(err.contains("introducer_default_cache.yaml"), "{err}");
        assert!(!err.contains("bpqvfvxo"), "{err}");
        assert_eq!(
            list.servers()[0].nickname,
            "attic",
            "the previous list stays"
        );
        std::fs::write(private.join("introducer_default_cache.yaml"), "- [unclosed").unwrap();
        let err = list.refresh().unwrap_err().to_string();
        assert!(err.contains("YAML syntax error"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Facts about the Tahoe node read from its directory: where its web API is and how it encodes.
//! tahoe.cfg is only ever read, never written: Tahoe 1.20 refuses unknown sections in it.

use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::ini::parse_ini;

/// Erasure-coding parameters from `[client] shares.*` (Tahoe's defaults: 3-of-10, happy 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Shares needed to read a file back (`shares.needed`, default 3).
    pub needed: u32,
    /// Servers that must hold shares for an upload to succeed (`shares.happy`, default 7).
    pub happy: u32,
    /// Shares written per file (`shares.total`, default 10).
    pub total: u32,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            needed: 3,
            happy: 7,
            total: 10,
        }
    }
}

/// What tahoe-jobs needs to know about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// The node directory that was read.
    pub node_dir: PathBuf,
    /// `[node] web.port` as written (an endpoint string such as `tcp:3456:interface=127.0.0.1`).
    pub web_port: Option<String>,
    /// The node's erasure-coding parameters, Tahoe's defaults for those not set.
    pub encoding: Encoding,
}

impl NodeFacts {
    /// Reads `NODEDIR/tahoe.cfg`.
    pub fn read(node_dir: &Path) -> Result<NodeFacts, ConfigError> {
        let path = node_dir.join("tahoe.cfg");
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let entries = parse_ini(&text).map_err(|e| ConfigError::Syntax {
            path: path.clone(),
            line: e.line,
            message: e.message,
        })?;
        let get = |section: &str, key: &str| {
            entries
                .iter()
                .find(|e| e.section == section && e.key == key)
                .map(|e| e.value.clone())
        };
        let defaults = Encoding::default();
        let num = |key: &str, default: u32| -> Result<u32, ConfigError> {
            match get("client", key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| ConfigError::Syntax {
                    path: path.clone(),
                    line: entries
                        .iter()
                        .find(|e| e.section == "client" && e.key == key)
                        .map_or(0, |e| e.line),
                    message: format!("[client] {key} = {v:?} is not a whole number"),
                }),
            }
        };
        Ok(NodeFacts {
            node_dir: node_dir.to_path_buf(),
            web_port: get("node", "web.port"),
            encoding: Encoding {
                needed: num("shares.needed", defaults.needed)?,
                happy: num("shares.happy", defaults.happy)?,
                total: num("shares.total", defaults.total)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_encoding_and_web_port() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tahoe.cfg"),
            "[node]\nnickname = a\nweb.port = tcp:3456:interface=127.0.0.1\n[client]\nshares.needed = 2\nshares.happy = 3\nshares.total = 3\n",
        )
        .unwrap();
        let facts = NodeFacts::read(dir.path()).unwrap();
        assert_eq!(
            facts.web_port.as_deref(),
            Some("tcp:3456:interface=127.0.0.1")
        );
        assert_eq!(
            facts.encoding,
            Encoding {
                needed: 2,
                happy: 3,
                total: 3
            }
        );
    }

    #[test]
    fn defaults_when_unset_and_error_on_junk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tahoe.cfg"), "[node]\n").unwrap();
        assert_eq!(
            NodeFacts::read(dir.path()).unwrap().encoding,
            Encoding::default()
        );
        std::fs::write(
            dir.path().join("tahoe.cfg"),
            "[client]\nshares.needed = x\n",
        )
        .unwrap();
        let err = NodeFacts::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("shares.needed"),
            "{err}"
        );
    }
}

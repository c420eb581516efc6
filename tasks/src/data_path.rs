//! `data_path`: which way a task reaches the grid's immutable data. A key of the `[backup]` and
//! `[check]` task types (declared in their `params.rs`), not of the configuration crate.
//!
//! Whether `direct` can be used is decided here, once per run, for both task types
//! ([`open_direct_grid`], its rule the pure [`direct_decision`]): direct when at least one
//! storage server speaks the HTTPS storage protocol, with one warning naming the servers that
//! speak only Foolscap (the direct path neither sees nor places shares on them); the node
//! otherwise.

use serde::{Deserialize, Deserializer};
use tahoe_jobs_engine::ProgressSink;
use tahoe_jobs_lafs::discovery::ServerInfo;
use tahoe_jobs_lafs::grid::StorageGrid;
use tahoe_jobs_lafs::storage::Timeouts;

/// What `data_path` accepts, for error messages and `KeyDoc`s.
pub const DATA_PATH_ACCEPTED: &str =
    "direct (immutable objects straight from the storage servers) or node (everything through the node)";

/// Which way a task reaches the grid's immutable data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataPath {
    /// Immutable objects straight from/to the storage servers over Tahoe's HTTPS storage
    /// protocol; mutable directories, verifying and listings through the node. Falls back to
    /// `Node` with one warning when no server announces the protocol.
    #[default]
    Direct,
    /// Everything through the node's web API.
    Node,
}

impl DataPath {
    /// The value as written in a config file.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPath::Direct => "direct",
            DataPath::Node => "node",
        }
    }
}

impl std::str::FromStr for DataPath {
    type Err = String;
    fn from_str(s: &str) -> Result<DataPath, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "direct" => Ok(DataPath::Direct),
            "node" => Ok(DataPath::Node),
            _ => Err(format!("{s:?} is not a data path")),
        }
    }
}

impl<'de> Deserialize<'de> for DataPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The name of the progress label that says which path a run uses (see [`PathUsed`]).
pub const DATA_PATH_LABEL: &str = "data_path";

/// Which way a run reaches immutable data, decided once at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathUsed {
    /// Straight to the storage servers.
    Direct,
    /// Through the node, as the job asked.
    Node,
    /// Through the node although the job asked for `direct`, and why (never a secret).
    Fallback(String),
}

impl PathUsed {
    /// `direct`, `node` or `node (fallback: <reason>)`.
    pub fn describe(&self) -> String {
        match self {
            PathUsed::Direct => "direct".into(),
            PathUsed::Node => "node".into(),
            PathUsed::Fallback(reason) => format!("node (fallback: {reason})"),
        }
    }

    /// Shows it with the run's progress (the status pages and `status --json` read the label
    /// [`DATA_PATH_LABEL`]).
    pub fn show(&self, progress: &ProgressSink) {
        progress.set_label(DATA_PATH_LABEL, self.describe());
    }
}

/// The rule for `data_path = direct`, given how many storage servers the node knows and the
/// names of those that announce no NURL (Foolscap only): `Err(reason)` when the node must be
/// used instead (no server at all, or none speaks the storage protocol); `Ok(None)` for the
/// direct path; `Ok(Some(warning))` for the direct path with a warning to give once.
pub fn direct_decision(servers: usize, foolscap_only: &[String]) -> Result<Option<String>, String> {
    if servers == 0 {
        return Err("the node knows no storage servers yet (its introducer cache is empty)".into());
    }
    let names = foolscap_only.join(", ");
    match foolscap_only.len() {
        0 => Ok(None),
        n if n >= servers => Err(format!(
            "no storage server announces the HTTPS storage protocol (a NURL): {names} \
             speak{} only Foolscap",
            if n == 1 { "s" } else { "" }
        )),
        n => Ok(Some(format!(
            "{n} of {servers} storage servers announce no NURL (Foolscap only: {names}): the \
             direct path neither sees nor places shares on them (data_path = node does)"
        ))),
    }
}

/// The node's storage servers opened for the direct path.
#[derive(Debug)]
pub struct DirectGrid {
    /// A client for every server that speaks the storage protocol (the others have none).
    pub grid: StorageGrid,
    /// What to warn about once for this run (servers that speak only Foolscap).
    pub warning: Option<String>,
    /// The ids of the servers that speak only Foolscap.
    pub foolscap_only: Vec<String>,
}

/// Opens `servers` (as the node's server files list them) for the direct path, by the rule of
/// [`direct_decision`]; the reason to use the node instead when it says so. Never names a
/// secret (a swissnum, a FURL).
pub fn open_direct_grid(servers: &[ServerInfo]) -> Result<DirectGrid, String> {
    let grid = StorageGrid::new(servers, Timeouts::default()).map_err(|e| e.to_string())?;
    let foolscap: Vec<_> = grid
        .servers()
        .iter()
        .filter(|s| s.client.is_none())
        .collect();
    let names: Vec<String> = foolscap.iter().map(|s| s.info.display_name()).collect();
    let warning = direct_decision(grid.servers().len(), &names)?;
    let foolscap_only = foolscap.iter().map(|s| s.info.server_id.clone()).collect();
    Ok(DirectGrid {
        grid,
        warning,
        foolscap_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_used_is_a_label_of_the_run() {
        let progress = ProgressSink::new();
        PathUsed::Fallback("no server speaks HTTPS".into()).show(&progress);
        assert_eq!(
            progress.snapshot().labels[DATA_PATH_LABEL],
            "node (fallback: no server speaks HTTPS)"
        );
        PathUsed::Direct.show(&progress);
        assert_eq!(progress.snapshot().labels[DATA_PATH_LABEL], "direct");
        assert_eq!(PathUsed::Node.describe(), "node");
    }

    #[test]
    fn direct_when_at_least_one_server_speaks_the_storage_protocol() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(direct_decision(3, &[]), Ok(None));
        let warning = direct_decision(3, &names(&["attic", "v0-abcd"]))
            .unwrap()
            .unwrap();
        assert!(warning.starts_with("2 of 3 storage servers"), "{warning}");
        assert!(warning.contains("attic, v0-abcd"), "{warning}");
        let none = direct_decision(2, &names(&["attic", "cellar"])).unwrap_err();
        assert!(none.contains("no storage server announces"), "{none}");
        assert!(none.contains("attic, cellar speak only Foolscap"), "{none}");
        let one = direct_decision(1, &names(&["attic"])).unwrap_err();
        assert!(one.contains("attic speaks only Foolscap"), "{one}");
        assert!(direct_decision(0, &[])
            .unwrap_err()
            .contains("no storage servers"));
    }

    #[test]
    fn parses_in_any_case_and_refuses_others() {
        assert_eq!("NODE".parse::<DataPath>(), Ok(DataPath::Node));
        assert_eq!(" direct ".parse::<DataPath>(), Ok(DataPath::Direct));
        assert!("fast".parse::<DataPath>().is_err());
        assert_eq!(DataPath::default(), DataPath::Direct);
    }
}

//! `data_path`: which way a task reaches the grid's immutable data. A key of the `[backup]` and
//! `[check]` task types (declared in their `params.rs`), not of the configuration crate.

use serde::{Deserialize, Deserializer};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_any_case_and_refuses_others() {
        assert_eq!("NODE".parse::<DataPath>(), Ok(DataPath::Node));
        assert_eq!(" direct ".parse::<DataPath>(), Ok(DataPath::Direct));
        assert!("fast".parse::<DataPath>().is_err());
        assert_eq!(DataPath::default(), DataPath::Direct);
    }
}

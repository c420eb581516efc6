//! What the node directory tells a client: where the web API listens (`node.url`) and which
//! directory capability each alias names (`private/aliases`, `private/root_dir.cap`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tahoe_jobs_config::Target;

use super::cap::Cap;
use super::error::TahoeError;

/// The name `tahoe` uses for `private/root_dir.cap`.
pub const DEFAULT_ALIAS: &str = "tahoe";

/// Reads `NODEDIR/node.url` (written by the node when it starts).
pub fn read_node_url(node_dir: &Path) -> Result<String, TahoeError> {
    let path = node_dir.join("node.url");
    let text = std::fs::read_to_string(&path).map_err(|e| TahoeError::NodeDir {
        message: if e.kind() == std::io::ErrorKind::NotFound {
            "no such file: is the node running? (`tahoe run` writes it at start)".into()
        } else {
            e.to_string()
        },
        path,
    })?;
    let url = text.trim();
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

/// Alias names and their directory capabilities.
#[derive(Clone, Default)]
pub struct Aliases {
    map: BTreeMap<String, Cap>,
    source: PathBuf,
}

impl std::fmt::Debug for Aliases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.map.keys()).finish()
    }
}

impl Aliases {
    /// Reads `private/aliases` and `private/root_dir.cap` (as `tahoe:` unless an alias of that
    /// name exists); missing files mean no aliases.
    pub fn read(node_dir: &Path) -> Result<Aliases, TahoeError> {
        let private = node_dir.join("private");
        let path = private.join("aliases");
        let mut map = match std::fs::read_to_string(&path) {
            Ok(text) => parse_aliases(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(TahoeError::NodeDir {
                    path,
                    message: e.to_string(),
                })
            }
        };
        if !map.contains_key(DEFAULT_ALIAS) {
            if let Ok(root) = std::fs::read_to_string(private.join("root_dir.cap")) {
                if !root.trim().is_empty() {
                    map.insert(DEFAULT_ALIAS.to_string(), Cap::new(root));
                }
            }
        }
        Ok(Aliases { map, source: path })
    }

    /// The directory capability of the alias named `alias` (without its colon); `None` if it
    /// is not defined.
    pub fn get(&self, alias: &str) -> Option<&Cap> {
        self.map.get(alias)
    }

    /// The directory capability and path below it that a target names.
    pub fn resolve(&self, target: &Target) -> Result<(Cap, String), TahoeError> {
        match target {
            Target::Cap { cap, path } => Ok((Cap::new(cap.clone()), path.clone())),
            Target::Alias { alias, path } => {
                let cap = self
                    .get(alias)
                    .ok_or_else(|| TahoeError::UnknownAlias {
                        alias: alias.clone(),
                        path: self.source.clone(),
                    })?
                    .clone();
                Ok((cap, path.trim_matches('/').to_string()))
            }
        }
    }
}

/// `name: cap` per line, split at the first colon; blank and `#` lines skipped (as the tahoe CLI
/// reads the file).
fn parse_aliases(text: &str) -> BTreeMap<String, Cap> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(name, cap)| (name.trim().to_string(), Cap::new(cap.trim())))
        .filter(|(name, cap)| !name.is_empty() && !cap.expose().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aliases_root_cap_and_node_url() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::write(
            private.join("aliases"),
            "# comment\n\nbackup: URI:DIR2:aaa:bbb\nother:URI:DIR2:ccc:ddd\n",
        )
        .unwrap();
        std::fs::write(private.join("root_dir.cap"), "URI:DIR2:root:xyz\n").unwrap();
        std::fs::write(dir.path().join("node.url"), "http://127.0.0.1:3456/\n").unwrap();

        let aliases = Aliases::read(dir.path()).unwrap();
        assert_eq!(aliases.get("backup").unwrap().expose(), "URI:DIR2:aaa:bbb");
        assert_eq!(aliases.get("other").unwrap().expose(), "URI:DIR2:ccc:ddd");
        assert_eq!(aliases.get("tahoe").unwrap().expose(), "URI:DIR2:root:xyz");
        let (cap, path) = aliases
            .resolve(&Target::Alias {
                alias: "backup".into(),
                path: "/pics/".into(),
            })
            .unwrap();
        assert_eq!((cap.expose(), path.as_str()), ("URI:DIR2:aaa:bbb", "pics"));
        let err = aliases
            .resolve(&Target::Alias {
                alias: "nope".into(),
                path: String::new(),
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("tahoe create-alias nope"), "{err}");
        assert!(!format!("{aliases:?}").contains("URI:"));
        assert_eq!(read_node_url(dir.path()).unwrap(), "http://127.0.0.1:3456/");
    }

    #[test]
    fn missing_node_url_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_node_url(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is the node running"), "{err}");
    }
}

//! Reads a `t=json` answer into what the traversal needs: for the object itself and each child,
//! its kind, the strongest cap the node gave (write caps matter: Tahoe repairs a mutable object
//! only through one), its verify cap (the object's identity) and its size.
//!
//! The client's [`DirListing`](crate::tahoe::DirListing) drops `verify_uri`, hence this reader of
//! the raw JSON.

use serde_json::{Map, Value};

use super::record::{FrontierEntry, ObjectKind};
use crate::tahoe::{Cap, TahoeError};

/// One object as a listing describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Whether it is a file or a directory.
    pub kind: ObjectKind,
    /// The strongest cap listed: the write cap if there is one, else the read cap.
    pub cap: Cap,
    /// Its verify cap (`verify_uri`); `None` when the listing gives none (LIT caps).
    pub verify_cap: Option<String>,
    /// Its size in bytes, if the listing gives one.
    pub size: Option<u64>,
}

impl Listed {
    /// The frontier entry for this object at `path`.
    pub fn entry(&self, path: String) -> FrontierEntry {
        FrontierEntry {
            path,
            cap: self.cap.expose().to_string(),
            verify_cap: self.verify_cap.clone(),
            kind: self.kind,
            size: self.size,
        }
    }
}

/// A `t=json` answer: the object itself and, for a directory, its children by name (sorted).
/// Children of unknown kinds or without any cap are left out, as deep-check leaves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The listed object itself.
    pub node: Listed,
    /// A directory's children, by name in sorted order; empty for a file.
    pub children: Vec<(String, Listed)>,
}

/// Reads a `t=json` answer; an error when it is not `["kind", {...}]` or the object itself has
/// no cap or an unknown kind.
pub fn parse_listing(value: &Value) -> Result<Listing, TahoeError> {
    let (kind, props) = tagged(value)
        .ok_or_else(|| TahoeError::Protocol("a listing is not [\"kind\", {...}]".into()))?;
    let node = listed(kind, props).ok_or_else(|| {
        TahoeError::Protocol("the listed object has no capability or an unknown kind".into())
    })?;
    let mut children: Vec<(String, Listed)> = props
        .get("children")
        .and_then(Value::as_object)
        .map(|kids| {
            kids.iter()
                .filter_map(|(name, kid)| {
                    let (kind, props) = tagged(kid)?;
                    Some((name.clone(), listed(kind, props)?))
                })
                .collect()
        })
        .unwrap_or_default();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Listing { node, children })
}

fn tagged(value: &Value) -> Option<(&str, &Map<String, Value>)> {
    match value.as_array().map(Vec::as_slice) {
        Some([Value::String(tag), Value::Object(props)]) => Some((tag.as_str(), props)),
        _ => None,
    }
}

fn listed(tag: &str, props: &Map<String, Value>) -> Option<Listed> {
    let kind = match tag {
        "filenode" => ObjectKind::File,
        "dirnode" => ObjectKind::Directory,
        _ => return None,
    };
    let text = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let cap = text("rw_uri").or_else(|| text("ro_uri"))?;
    Some(Listed {
        kind,
        cap: Cap::new(cap),
        verify_cap: text("verify_uri").map(str::to_string),
        size: props.get("size").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_node_and_its_children() {
        let v = json!(["dirnode", {"rw_uri": "URI:DIR2:w:x", "ro_uri": "URI:DIR2-RO:r:x",
        "verify_uri": "URI:DIR2-Verifier:v:x", "mutable": true, "children": {
            "b.txt": ["filenode", {"ro_uri": "URI:CHK:k:u:2:3:100", "verify_uri": "URI:CHK-Verifier:s:u:2:3:100", "size": 100}],
            "a": ["dirnode", {"rw_uri": "URI:DIR2:w2:y", "ro_uri": "URI:DIR2-RO:r2:y", "verify_uri": "URI:DIR2-Verifier:v2:y"}],
            "lit": ["filenode", {"ro_uri": "URI:LIT:nbuq", "size": 3}],
            "odd": ["unknown", {"ro_uri": "x"}],
            "nocap": ["filenode", {"size": 1}]
        }}]);
        let l = parse_listing(&v).unwrap();
        assert_eq!(l.node.kind, ObjectKind::Directory);
        assert_eq!(l.node.cap.kind(), "URI:DIR2");
        let names: Vec<&str> = l.children.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a", "b.txt", "lit"]);
        assert_eq!(l.children[0].1.cap.kind(), "URI:DIR2");
        assert_eq!(l.children[1].1.size, Some(100));
        assert_eq!(
            l.children[1].1.verify_cap.as_deref(),
            Some("URI:CHK-Verifier:s:u:2:3:100")
        );
        assert_eq!(l.children[2].1.verify_cap, None);
        let e = l.children[1].1.entry("d/b.txt".into());
        assert_eq!((e.path.as_str(), e.kind), ("d/b.txt", ObjectKind::File));
    }

    #[test]
    fn a_file_target_and_junk() {
        let f = parse_listing(&json!(["filenode", {"ro_uri": "URI:CHK:a:b:1:1:9", "size": 9}]))
            .unwrap();
        assert_eq!(f.node.kind, ObjectKind::File);
        assert!(f.children.is_empty());
        assert!(parse_listing(&json!({"x": 1})).is_err());
        assert!(parse_listing(&json!(["dirnode", {}])).is_err());
    }
}

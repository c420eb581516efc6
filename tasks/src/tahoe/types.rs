//! The JSON the web API speaks: directory listings (`t=json`), check results
//! (`t=check&output=JSON`) and the children of a new immutable directory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cap::Cap;
use super::error::TahoeError;

/// Whether a grid object is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A file (`filenode`).
    File,
    /// A directory (`dirnode`).
    Directory,
    /// A kind this client does not know (a future Tahoe's).
    Unknown,
}

impl NodeKind {
    /// The tag Tahoe uses in JSON: `filenode` / `dirnode`.
    pub fn tag(self) -> &'static str {
        match self {
            NodeKind::File => "filenode",
            NodeKind::Directory => "dirnode",
            NodeKind::Unknown => "unknown",
        }
    }

    fn from_tag(tag: &str) -> NodeKind {
        match tag {
            "filenode" => NodeKind::File,
            "dirnode" => NodeKind::Directory,
            _ => NodeKind::Unknown,
        }
    }
}

/// One child of a new immutable directory: its read cap and metadata. The metadata is anything
/// that serializes to the JSON object wanted: a caller holding many children can keep them in a
/// compact form and have the JSON written only into the request body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChild<M = Value> {
    /// Whether the child is a file or a directory; written as its tag.
    pub kind: NodeKind,
    /// The child's read cap, written as its `ro_uri`.
    pub cap: Cap,
    /// The child's metadata, written as its `metadata` object.
    pub metadata: M,
}

/// The `t=mkdir-immutable` body: `{"name": ["filenode", {"ro_uri": .., "metadata": {..}}], ..}`.
pub fn mkdir_immutable_body<'a>(
    children: impl IntoIterator<Item = (&'a str, &'a NewChild)>,
) -> Value {
    let map = children
        .into_iter()
        .map(|(name, child)| {
            let mut props = serde_json::Map::new();
            props.insert(
                "ro_uri".into(),
                Value::String(child.cap.expose().to_string()),
            );
            props.insert("metadata".into(), child.metadata.clone());
            (
                name.to_string(),
                Value::Array(vec![
                    Value::String(child.kind.tag().into()),
                    Value::Object(props),
                ]),
            )
        })
        .collect::<serde_json::Map<_, _>>();
    Value::Object(map)
}

/// The same body as [`mkdir_immutable_body`], serialized straight from the children, sorted by
/// name, without building a JSON tree first: a directory of 100,000 children needs its bytes
/// once, not a copy of every child's metadata as well.
pub fn mkdir_immutable_json<'a, M: Serialize + 'a>(
    children: impl IntoIterator<Item = (&'a str, &'a NewChild<M>)>,
) -> Result<Vec<u8>, serde_json::Error> {
    use serde::ser::{SerializeMap, SerializeTuple};

    struct Kids<'a, M>(Vec<(&'a str, &'a NewChild<M>)>);
    struct Kid<'a, M>(&'a NewChild<M>);
    #[derive(Serialize)]
    struct Props<'a, M> {
        ro_uri: &'a str,
        metadata: &'a M,
    }
    impl<M: Serialize> Serialize for Kids<'_, M> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (name, child) in &self.0 {
                map.serialize_entry(name, &Kid(child))?;
            }
            map.end()
        }
    }
    impl<M: Serialize> Serialize for Kid<'_, M> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut pair = s.serialize_tuple(2)?;
            pair.serialize_element(self.0.kind.tag())?;
            pair.serialize_element(&Props {
                ro_uri: self.0.cap.expose(),
                metadata: &self.0.metadata,
            })?;
            pair.end()
        }
    }
    let mut kids: Vec<(&str, &NewChild<M>)> = children.into_iter().collect();
    // The order a JSON object of them would have (and so which of two names that are equal
    // after NFC the node keeps: the later).
    kids.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    kids.dedup_by(|a, b| a.0 == b.0);
    serde_json::to_vec(&Kids(kids))
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedChild {
    /// Whether the child is a file or a directory (`Unknown` for any other tag).
    pub kind: NodeKind,
    /// The child's read cap (`ro_uri`), if the listing gives one.
    pub ro_cap: Option<Cap>,
    /// The child's write cap (`rw_uri`), if the listing gives one.
    pub rw_cap: Option<Cap>,
    /// The child's size in bytes, if the listing gives one.
    pub size: Option<u64>,
    /// Whether the child is mutable, if the listing says.
    pub mutable: Option<bool>,
    /// The child's `metadata` object as listed; `Null` when there is none.
    pub metadata: Value,
}

/// A directory's `t=json`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirListing {
    /// Whether the directory itself is mutable (false when the listing does not say).
    pub mutable: bool,
    /// The directory's read cap (`ro_uri`), if the listing gives one.
    pub ro_cap: Option<Cap>,
    /// The directory's write cap (`rw_uri`), if the listing gives one.
    pub rw_cap: Option<Cap>,
    /// The directory's entries, by name.
    pub children: BTreeMap<String, ListedChild>,
}

impl DirListing {
    pub(crate) fn parse(value: &Value) -> Result<DirListing, TahoeError> {
        let (tag, props) = tagged(value)?;
        if tag != "dirnode" {
            return Err(TahoeError::Protocol(format!(
                "expected a directory, the node says it is a {tag}"
            )));
        }
        let mut children = BTreeMap::new();
        if let Some(kids) = props.get("children").and_then(Value::as_object) {
            for (name, kid) in kids {
                let (kind, kp) = tagged(kid)?;
                children.insert(
                    name.clone(),
                    ListedChild {
                        kind: NodeKind::from_tag(kind),
                        ro_cap: cap_field(kp, "ro_uri"),
                        rw_cap: cap_field(kp, "rw_uri"),
                        size: kp.get("size").and_then(Value::as_u64),
                        mutable: kp.get("mutable").and_then(Value::as_bool),
                        metadata: kp.get("metadata").cloned().unwrap_or(Value::Null),
                    },
                );
            }
        }
        Ok(DirListing {
            mutable: props
                .get("mutable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ro_cap: cap_field(props, "ro_uri"),
            rw_cap: cap_field(props, "rw_uri"),
            children,
        })
    }
}

fn tagged(value: &Value) -> Result<(&str, &serde_json::Map<String, Value>), TahoeError> {
    match value.as_array().map(Vec::as_slice) {
        Some([Value::String(tag), Value::Object(props)]) => Ok((tag.as_str(), props)),
        _ => Err(TahoeError::Protocol(
            "a node in a listing is not [\"kind\", {...}]".into(),
        )),
    }
}

fn cap_field(props: &serde_json::Map<String, Value>, key: &str) -> Option<Cap> {
    props.get(key).and_then(Value::as_str).map(Cap::new)
}

/// Flags of a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Download and verify every share, not just ask servers whether they hold them.
    pub verify: bool,
    /// Repair the object if the check finds it unhealthy (`repair=true`).
    pub repair: bool,
    /// Add or renew this client's lease on every share found (`add-lease=true`).
    pub add_lease: bool,
}

/// The `results` of a check (all fields optional: LIT caps report only `healthy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct CheckResults {
    /// Whether the node judged the object healthy (false when the report omits it).
    pub healthy: bool,
    /// Whether enough shares were found to recover the object.
    pub recoverable: Option<bool>,
    /// The servers-of-happiness value of the shares found (`count-happiness`).
    pub count_happiness: Option<u64>,
    /// The number of distinct good shares found (`count-shares-good`).
    pub count_shares_good: Option<u64>,
    /// The number of shares needed to recover the object, k (`count-shares-needed`).
    pub count_shares_needed: Option<u64>,
    /// The number of shares the object was encoded into, N (`count-shares-expected`).
    pub count_shares_expected: Option<u64>,
    /// The number of servers holding at least one good share (`count-good-share-hosts`).
    pub count_good_share_hosts: Option<u64>,
    /// The number of corrupt shares found (`count-corrupt-shares`).
    pub count_corrupt_shares: Option<u64>,
    /// The number of shares of another version of the object (`count-wrong-shares`).
    pub count_wrong_shares: Option<u64>,
    /// The number of recoverable versions found, for mutable objects
    /// (`count-recoverable-versions`).
    pub count_recoverable_versions: Option<u64>,
    /// The number of unrecoverable versions found, for mutable objects
    /// (`count-unrecoverable-versions`).
    pub count_unrecoverable_versions: Option<u64>,
    /// The ids of the servers that answered the check.
    pub servers_responding: Vec<String>,
    /// Share number -> server ids holding it.
    pub sharemap: BTreeMap<String, Vec<String>>,
}

/// What a check (and possibly a repair) found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Not secret: the storage index names shares, it grants nothing.
    pub storage_index: String,
    /// The node's one-line summary of the (pre-repair) check, e.g. `Healthy`; empty if none.
    pub summary: String,
    /// Before any repair.
    pub results: CheckResults,
    /// What the repair did; `None` when the check was made without `repair`.
    pub repair: Option<RepairReport>,
}

/// The repair part of a check made with `repair`.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairReport {
    /// Whether the node attempted a repair (it does only for an unhealthy object).
    pub attempted: bool,
    /// Whether the attempted repair succeeded.
    pub successful: bool,
    /// The results after the repair; the pre-repair results when the node gives none.
    pub post_repair: CheckResults,
}

impl CheckReport {
    /// Healthy after whatever repair happened.
    pub fn healthy_now(&self) -> bool {
        match &self.repair {
            Some(r) if r.attempted => r.successful && r.post_repair.healthy,
            _ => self.results.healthy,
        }
    }

    pub(crate) fn parse(value: &Value) -> Result<CheckReport, TahoeError> {
        let results_of = |v: &Value| -> Result<CheckResults, TahoeError> {
            let results = v.get("results").cloned().unwrap_or(Value::Null);
            serde_json::from_value(results)
                .map_err(|e| TahoeError::Protocol(format!("check results: {e}")))
        };
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if let Some(pre) = value.get("pre-repair-results") {
            let post = value.get("post-repair-results").unwrap_or(pre);
            return Ok(CheckReport {
                storage_index: text(value, "storage-index"),
                summary: text(pre, "summary"),
                results: results_of(pre)?,
                repair: Some(RepairReport {
                    attempted: value
                        .get("repair-attempted")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    successful: value
                        .get("repair-successful")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    post_repair: results_of(post)?,
                }),
            });
        }
        Ok(CheckReport {
            storage_index: text(value, "storage-index"),
            summary: text(value, "summary"),
            results: results_of(value)?,
            repair: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mkdir_body_has_tahoe_shape() {
        let child = NewChild {
            kind: NodeKind::File,
            cap: Cap::new("URI:LIT:nbuq"),
            metadata: json!({"mtime": 1.5}),
        };
        let body = mkdir_immutable_body([("a", &child)]);
        let streamed: Value =
            serde_json::from_slice(&mkdir_immutable_json([("a", &child), ("a", &child)]).unwrap())
                .unwrap();
        assert_eq!(streamed, body);
        assert_eq!(
            body,
            json!({"a": ["filenode", {"ro_uri": "URI:LIT:nbuq", "metadata": {"mtime": 1.5}}]})
        );
    }

    #[test]
    fn parses_listing() {
        let v = json!(["dirnode", {"mutable": true, "rw_uri": "URI:DIR2:a:b", "ro_uri": "URI:DIR2-RO:c:d",
            "children": {"f": ["filenode", {"size": 3, "ro_uri": "URI:LIT:abc", "metadata": {"mtime": 1}}],
                         "d": ["dirnode", {"ro_uri": "URI:DIR2-CHK:x:y", "mutable": false}]}}]);
        let l = DirListing::parse(&v).unwrap();
        assert!(l.mutable);
        assert_eq!(l.children["f"].kind, NodeKind::File);
        assert_eq!(l.children["f"].size, Some(3));
        assert_eq!(l.children["d"].kind, NodeKind::Directory);
        assert_eq!(
            l.children["d"].ro_cap.as_ref().unwrap().kind(),
            "URI:DIR2-CHK"
        );
        assert!(DirListing::parse(&json!(["filenode", {}])).is_err());
    }

    #[test]
    fn parses_check_and_repair_reports() {
        let lit = CheckReport::parse(&json!({"storage-index": "", "results": {"healthy": true}}))
            .unwrap();
        assert!(lit.healthy_now());
        let check = json!({"storage-index": "abc", "summary": "Not Healthy", "results": {
            "healthy": false, "recoverable": true, "count-shares-good": 2, "count-shares-needed": 1,
            "count-shares-expected": 3, "servers-responding": ["v0-a"], "sharemap": {"0": ["v0-a"]}}});
        let r = CheckReport::parse(&check).unwrap();
        assert!(!r.healthy_now());
        assert_eq!(r.results.count_shares_good, Some(2));
        assert_eq!(r.results.sharemap["0"], vec!["v0-a".to_string()]);
        let repaired = json!({"storage-index": "abc", "repair-attempted": true, "repair-successful": true,
            "pre-repair-results": check, "post-repair-results": {"results": {"healthy": true}}});
        let r = CheckReport::parse(&repaired).unwrap();
        assert!(!r.results.healthy);
        assert!(r.healthy_now());
    }
}

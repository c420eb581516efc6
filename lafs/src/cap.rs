//! Capabilities (`URI:...`, `allmydata/uri.py`): parsing every kind Tahoe-LAFS 1.20 writes, and
//! the storage index each one names on the servers.
//!
//! A capability is a secret (a read cap grants reading, a write cap writing), so [`Capability`]
//! never shows one: its `Debug` and `Display` give only the kind, and [`CapError`] says what was
//! wrong without quoting the text. The storage index is not secret (the node shows it in its web
//! pages); it is [`StorageIndex`].

use std::fmt;

use crate::base32;
use crate::hashutil::tagged_hash;

const STORAGE_INDEX_TAG: &[u8] = b"allmydata_immutable_key_to_storage_index_v1";
const MUTABLE_READKEY_TAG: &[u8] = b"allmydata_mutable_writekey_to_readkey_v1";
const MUTABLE_STORAGEINDEX_TAG: &[u8] = b"allmydata_mutable_readkey_to_storage_index_v1";

/// A storage index: the 16 bytes that name an object's shares on every server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageIndex(pub [u8; 16]);

impl StorageIndex {
    /// Parses the 26-character base32 form (as in URLs and the node's check results).
    pub fn from_base32(text: &str) -> Option<StorageIndex> {
        fixed::<16>(text).map(StorageIndex)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for StorageIndex {
    /// Lower-case unpadded base32, 26 characters: the form in storage URLs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(&self.0))
    }
}

impl fmt::Debug for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageIndex({self})")
    }
}

/// The kind of a capability, named as its prefix (`URI:CHK`, `URI:DIR2-MDMF-RO`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CapKind {
    Chk,
    ChkVerifier,
    Lit,
    Ssk,
    SskRo,
    SskVerifier,
    Mdmf,
    MdmfRo,
    MdmfVerifier,
    Dir2,
    Dir2Ro,
    Dir2Verifier,
    Dir2Chk,
    Dir2ChkVerifier,
    Dir2Lit,
    Dir2Mdmf,
    Dir2MdmfRo,
    Dir2MdmfVerifier,
}

/// Every kind with its prefix; longer prefixes first so that `URI:DIR2-CHK:` is not read as
/// `URI:DIR2:` (they differ anyway at the colon, but the order keeps the lookup obvious).
const KINDS: &[(CapKind, &str)] = &[
    (CapKind::Dir2MdmfVerifier, "URI:DIR2-MDMF-Verifier"),
    (CapKind::Dir2MdmfRo, "URI:DIR2-MDMF-RO"),
    (CapKind::Dir2Mdmf, "URI:DIR2-MDMF"),
    (CapKind::Dir2ChkVerifier, "URI:DIR2-CHK-Verifier"),
    (CapKind::Dir2Chk, "URI:DIR2-CHK"),
    (CapKind::Dir2Lit, "URI:DIR2-LIT"),
    (CapKind::Dir2Verifier, "URI:DIR2-Verifier"),
    (CapKind::Dir2Ro, "URI:DIR2-RO"),
    (CapKind::Dir2, "URI:DIR2"),
    (CapKind::ChkVerifier, "URI:CHK-Verifier"),
    (CapKind::Chk, "URI:CHK"),
    (CapKind::Lit, "URI:LIT"),
    (CapKind::SskVerifier, "URI:SSK-Verifier"),
    (CapKind::SskRo, "URI:SSK-RO"),
    (CapKind::Ssk, "URI:SSK"),
    (CapKind::MdmfVerifier, "URI:MDMF-Verifier"),
    (CapKind::MdmfRo, "URI:MDMF-RO"),
    (CapKind::Mdmf, "URI:MDMF"),
];

impl CapKind {
    /// The prefix without its final colon, such as `URI:DIR2-CHK` (safe to show).
    pub fn prefix(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, p)| *p)
            .unwrap_or("URI")
    }

    /// True for directory kinds.
    pub fn is_directory(self) -> bool {
        self.prefix().starts_with("URI:DIR2")
    }

    /// True for kinds whose object never changes (CHK and LIT files and directories).
    pub fn is_immutable(self) -> bool {
        matches!(
            self,
            CapKind::Chk
                | CapKind::ChkVerifier
                | CapKind::Lit
                | CapKind::Dir2Chk
                | CapKind::Dir2ChkVerifier
                | CapKind::Dir2Lit
        )
    }

    /// True for literal kinds: the data is in the cap and nothing is stored on servers.
    pub fn is_literal(self) -> bool {
        matches!(self, CapKind::Lit | CapKind::Dir2Lit)
    }
}

impl fmt::Display for CapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// Erasure coding and size written into a CHK cap (not secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChkParams {
    /// Shares needed to recover the file (k).
    pub needed: u16,
    /// Shares written (N).
    pub total: u16,
    /// The file's size in bytes.
    pub size: u64,
}

#[derive(Clone, PartialEq, Eq)]
enum Body {
    Chk {
        key: [u8; 16],
        ueb_hash: [u8; 32],
        params: ChkParams,
    },
    ChkVerifier {
        si: StorageIndex,
        ueb_hash: [u8; 32],
        params: ChkParams,
    },
    Lit(Vec<u8>),
    MutableWrite {
        writekey: [u8; 16],
        fingerprint: [u8; 32],
    },
    MutableRead {
        readkey: [u8; 16],
        fingerprint: [u8; 32],
    },
    MutableVerify {
        si: StorageIndex,
        fingerprint: [u8; 32],
    },
}

/// A parsed capability. `Debug` and `Display` show only its kind.
#[derive(Clone, PartialEq, Eq)]
pub struct Capability {
    kind: CapKind,
    body: Body,
    /// Fields after the ones Tahoe reads (MDMF caps allow extensions); kept to write the cap back.
    extension: String,
}

/// Why a text is not a capability. Never holds the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// The text does not start with a prefix Tahoe-LAFS 1.20 writes.
    #[error("not a capability this version knows (no URI:CHK:, URI:DIR2:, ... prefix)")]
    UnknownKind,
    /// The prefix is known but the fields are not what that kind holds.
    #[error("malformed {kind} capability: {reason}")]
    Malformed {
        /// The kind the prefix names.
        kind: CapKind,
        /// What was wrong, without the text.
        reason: &'static str,
    },
}

impl Capability {
    /// Parses a capability as the node writes it; surrounding whitespace and the `ro.`/`imm.`
    /// prefixes the node accepts in directories are ignored.
    pub fn parse(text: &str) -> Result<Capability, CapError> {
        let text = text.trim();
        let text = text
            .strip_prefix("imm.")
            .or_else(|| text.strip_prefix("ro."))
            .unwrap_or(text);
        let (kind, rest) = KINDS
            .iter()
            .find_map(|(kind, prefix)| {
                text.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|rest| (*kind, rest))
            })
            .ok_or(CapError::UnknownKind)?;
        let bad = |reason| CapError::Malformed { kind, reason };
        let fields: Vec<&str> = rest.split(':').collect();
        let mut extension = String::new();
        let body = match kind {
            CapKind::Lit | CapKind::Dir2Lit => {
                Body::Lit(base32::decode(rest).map_err(|_| bad("data is not base32"))?)
            }
            CapKind::Chk | CapKind::Dir2Chk | CapKind::ChkVerifier | CapKind::Dir2ChkVerifier => {
                let [first, ueb, k, n, size] = fields[..] else {
                    return Err(bad("expected 5 fields (key:ueb-hash:k:N:size)"));
                };
                let first = fixed::<16>(first).ok_or(bad("key is not 16 bytes of base32"))?;
                let ueb_hash = fixed::<32>(ueb).ok_or(bad("UEB hash is not 32 bytes of base32"))?;
                let params = ChkParams {
                    needed: number(k).ok_or(bad("k is not a number"))?,
                    total: number(n).ok_or(bad("N is not a number"))?,
                    size: number(size).ok_or(bad("size is not a number"))?,
                };
                if params.needed == 0 || params.needed > params.total || params.total > 256 {
                    return Err(bad("k and N must satisfy 1 <= k <= N <= 256"));
                }
                if matches!(kind, CapKind::Chk | CapKind::Dir2Chk) {
                    Body::Chk {
                        key: first,
                        ueb_hash,
                        params,
                    }
                } else {
                    Body::ChkVerifier {
                        si: StorageIndex(first),
                        ueb_hash,
                        params,
                    }
                }
            }
            _ => {
                let (first, fp, ext) = match fields[..] {
                    [a, b] => (a, b, &[][..]),
                    [a, b, ref ext @ ..] if is_mdmf(kind) => (a, b, ext),
                    _ => return Err(bad("expected 2 fields (key:fingerprint)")),
                };
                if !ext.is_empty() {
                    extension = format!(":{}", ext.join(":"));
                }
                let first = fixed::<16>(first).ok_or(bad("key is not 16 bytes of base32"))?;
                let fingerprint =
                    fixed::<32>(fp).ok_or(bad("fingerprint is not 32 bytes of base32"))?;
                match kind {
                    CapKind::Ssk | CapKind::Mdmf | CapKind::Dir2 | CapKind::Dir2Mdmf => {
                        Body::MutableWrite {
                            writekey: first,
                            fingerprint,
                        }
                    }
                    CapKind::SskRo | CapKind::MdmfRo | CapKind::Dir2Ro | CapKind::Dir2MdmfRo => {
                        Body::MutableRead {
                            readkey: first,
                            fingerprint,
                        }
                    }
                    _ => Body::MutableVerify {
                        si: StorageIndex(first),
                        fingerprint,
                    },
                }
            }
        };
        Ok(Capability {
            kind,
            body,
            extension,
        })
    }

    /// The read cap of a CHK file (`URI:CHK:`), or with `directory` of the immutable directory
    /// whose packed body that file is (`URI:DIR2-CHK:`), as the encoder makes them.
    pub fn chk(
        key: [u8; 16],
        ueb_hash: [u8; 32],
        params: ChkParams,
        directory: bool,
    ) -> Capability {
        Capability {
            kind: if directory {
                CapKind::Dir2Chk
            } else {
                CapKind::Chk
            },
            body: Body::Chk {
                key,
                ueb_hash,
                params,
            },
            extension: String::new(),
        }
    }

    /// The literal cap of a small file (`URI:LIT:`): the data is the cap.
    pub fn literal(data: &[u8]) -> Capability {
        Capability {
            kind: CapKind::Lit,
            body: Body::Lit(data.to_vec()),
            extension: String::new(),
        }
    }

    /// The kind (safe to show).
    pub fn kind(&self) -> CapKind {
        self.kind
    }

    /// The storage index of the object's shares; `None` for literal caps, which have none.
    pub fn storage_index(&self) -> Option<StorageIndex> {
        let si = match &self.body {
            Body::Chk { key, .. } => chk_storage_index(key),
            Body::ChkVerifier { si, .. } | Body::MutableVerify { si, .. } => *si,
            Body::Lit(_) => return None,
            Body::MutableWrite { writekey, .. } => {
                mutable_storage_index(&tagged_hash(MUTABLE_READKEY_TAG, writekey, 16))
            }
            Body::MutableRead { readkey, .. } => mutable_storage_index(readkey),
        };
        Some(si)
    }

    /// Coding and size of a CHK or DIR2-CHK cap (and their verify caps).
    pub fn chk_params(&self) -> Option<ChkParams> {
        match &self.body {
            Body::Chk { params, .. } | Body::ChkVerifier { params, .. } => Some(*params),
            _ => None,
        }
    }

    /// The data of a literal cap.
    pub fn literal_data(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Lit(data) => Some(data),
            _ => None,
        }
    }

    /// The capability's text, as Tahoe writes it. This is the secret: send it where it must go,
    /// never to a log or a message.
    pub fn expose(&self) -> String {
        let fields = match &self.body {
            Body::Chk {
                key,
                ueb_hash,
                params,
            } => chk_fields(key, ueb_hash, params),
            Body::ChkVerifier {
                si,
                ueb_hash,
                params,
            } => chk_fields(&si.0, ueb_hash, params),
            Body::Lit(data) => base32::encode(data),
            Body::MutableWrite {
                writekey: key,
                fingerprint,
            }
            | Body::MutableRead {
                readkey: key,
                fingerprint,
            }
            | Body::MutableVerify {
                si: StorageIndex(key),
                fingerprint,
            } => format!("{}:{}", base32::encode(key), base32::encode(fingerprint)),
        };
        format!("{}:{}{}", self.kind.prefix(), fields, self.extension)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:…", self.kind)
    }
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capability({self})")
    }
}

/// SI of an immutable object from its encryption key.
pub fn chk_storage_index(key: &[u8; 16]) -> StorageIndex {
    StorageIndex(to_array(&tagged_hash(STORAGE_INDEX_TAG, key, 16)))
}

fn mutable_storage_index(readkey: &[u8]) -> StorageIndex {
    StorageIndex(to_array(&tagged_hash(
        MUTABLE_STORAGEINDEX_TAG,
        readkey,
        16,
    )))
}

fn chk_fields(first: &[u8; 16], ueb_hash: &[u8; 32], p: &ChkParams) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        base32::encode(first),
        base32::encode(ueb_hash),
        p.needed,
        p.total,
        p.size
    )
}

fn is_mdmf(kind: CapKind) -> bool {
    matches!(
        kind,
        CapKind::Mdmf
            | CapKind::MdmfRo
            | CapKind::MdmfVerifier
            | CapKind::Dir2Mdmf
            | CapKind::Dir2MdmfRo
            | CapKind::Dir2MdmfVerifier
    )
}

fn fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = base32::decode(text).ok()?;
    bytes.try_into().ok()
}

fn to_array(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&bytes[..16]);
    out
}

fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lafs/tests/data/cap-answers.txt`: made by `make_cap_answers.py` beside it, with Tahoe
    /// 1.20's `allmydata.uri` over the published capability vectors (see that script).
    const ANSWERS: &str = include_str!("../tests/data/cap-answers.txt");

    #[test]
    fn every_vector_cap_parses_to_tahoes_storage_index_and_writes_back() {
        let mut kinds = std::collections::HashSet::new();
        for line in ANSWERS.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let cap = Capability::parse(f[0]).unwrap_or_else(|e| panic!("{e}"));
            kinds.insert(cap.kind());
            assert_eq!(cap.expose(), f[0]);
            let si = cap.storage_index().map(|s| s.to_string());
            assert_eq!(si.as_deref().unwrap_or("-"), f[1], "{:?}", cap.kind());
            match cap.chk_params() {
                Some(p) => assert_eq!(
                    format!("{} {} {}", p.needed, p.total, p.size),
                    f[2..].join(" ")
                ),
                None => assert_eq!(f[2..], ["-", "-", "-"]),
            }
            if let Some(si) = cap.storage_index() {
                assert_eq!(StorageIndex::from_base32(f[1]), Some(si));
            }
        }
        assert_eq!(kinds.len(), KINDS.len(), "every kind is in the answers");
    }

    #[test]
    fn display_debug_and_errors_never_show_the_secret() {
        let text = ANSWERS.lines().next().unwrap().split(' ').next().unwrap();
        let cap = Capability::parse(text).unwrap();
        let secret = &text[8..20];
        for shown in [cap.to_string(), format!("{cap:?}")] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(cap.to_string(), "URI:CHK:…");
        let broken = text.replace(":1:", ":x:");
        let err = Capability::parse(&broken).unwrap_err().to_string();
        assert!(!err.contains(secret), "{err}");
        assert!(err.contains("URI:CHK"), "{err}");
    }

    #[test]
    fn refuses_what_tahoe_refuses() {
        assert_eq!(Capability::parse("URI:FOO:x"), Err(CapError::UnknownKind));
        assert_eq!(Capability::parse("http://x"), Err(CapError::UnknownKind));
        let chk = ANSWERS.lines().next().unwrap().split(' ').next().unwrap();
        assert!(Capability::parse(&format!("{chk}:7")).is_err());
        assert!(Capability::parse(&chk.replace("URI:CHK:", "URI:CHK:A")).is_err());
        assert!(Capability::parse("URI:LIT:1").is_err());
        let k_above_n = chk.rsplitn(4, ':').collect::<Vec<_>>();
        let bad = format!("{}:9:{}:{}", k_above_n[3], k_above_n[1], k_above_n[0]);
        assert!(Capability::parse(&bad).is_err());
    }

    #[test]
    fn made_caps_write_what_parsing_reads() {
        let chk = ANSWERS
            .lines()
            .map(|l| l.split(' ').next().unwrap())
            .find(|c| c.starts_with("URI:CHK:"))
            .unwrap();
        let parsed = Capability::parse(chk).unwrap();
        let Body::Chk {
            key,
            ueb_hash,
            params,
        } = parsed.body
        else {
            panic!("a CHK body");
        };
        let made = Capability::chk(key, ueb_hash, params, false);
        assert_eq!(made, parsed);
        assert_eq!(made.storage_index(), Some(chk_storage_index(&key)));
        let dir = Capability::chk(key, ueb_hash, params, true);
        assert_eq!(dir.expose(), chk.replacen("URI:CHK:", "URI:DIR2-CHK:", 1));
        assert_eq!(Capability::parse(&dir.expose()).unwrap(), dir);
        assert_eq!(Capability::literal(b"hello").expose(), "URI:LIT:nbswy3dp");
        assert_eq!(Capability::literal(b"").expose(), "URI:LIT:");
    }

    #[test]
    fn node_prefixes_and_whitespace_are_ignored() {
        let lit = Capability::parse(" imm.URI:LIT:nbswy3dp\n").unwrap();
        assert_eq!(lit.literal_data(), Some(&b"hello"[..]));
        assert_eq!(lit.storage_index(), None);
        assert!(lit.kind().is_literal() && lit.kind().is_immutable());
        assert!(CapKind::Dir2Chk.is_directory() && !CapKind::Dir2.is_immutable());
    }
}

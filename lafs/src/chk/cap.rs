//! The caps the encoder makes (`uri.py`). [`ChkCap`] is a typed view of a CHK read cap for the
//! encoder's callers (fields, the storage index as bytes); its text, its storage index and the
//! LIT caps come from the crate's one capability type, [`crate::cap::Capability`].

use crate::cap::{chk_storage_index, Capability, ChkParams};

/// A CHK read cap: `URI:CHK:<key>:<ueb-hash>:<k>:<N>:<size>`. A secret: anyone holding it
/// reads the file.
#[derive(Clone, PartialEq, Eq)]
pub struct ChkCap {
    /// The AES key.
    pub key: [u8; 16],
    /// Hash of the URI extension block.
    pub uri_extension_hash: [u8; 32],
    /// k.
    pub needed: u16,
    /// N.
    pub total: u16,
    /// File size.
    pub size: u64,
}

impl ChkCap {
    /// The file's cap (`URI:CHK:`), as the crate's capability type.
    pub fn capability(&self) -> Capability {
        Capability::chk(self.key, self.uri_extension_hash, self.params(), false)
    }

    /// The cap of the immutable directory whose body this file is (`URI:DIR2-CHK:`).
    pub fn dir_capability(&self) -> Capability {
        Capability::chk(self.key, self.uri_extension_hash, self.params(), true)
    }

    /// The cap's text.
    pub fn to_uri(&self) -> String {
        self.capability().expose()
    }

    /// The text of the immutable directory whose body this file is (`URI:DIR2-CHK:...`).
    pub fn to_dir_uri(&self) -> String {
        self.dir_capability().expose()
    }

    /// The storage index: where servers keep the shares.
    pub fn storage_index(&self) -> [u8; 16] {
        chk_storage_index(&self.key).0
    }

    fn params(&self) -> ChkParams {
        ChkParams {
            needed: self.needed,
            total: self.total,
            size: self.size,
        }
    }
}

impl std::fmt::Debug for ChkCap {
    /// Shows the parameters and size, never the key: a cap is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChkCap({}-of-{}, {} bytes)",
            self.needed, self.total, self.size
        )
    }
}

/// The LIT cap of a small file (55 bytes or less in Tahoe): `URI:LIT:<base32 of the data>`.
pub fn lit_cap(data: &[u8]) -> String {
    Capability::literal(data).expose()
}

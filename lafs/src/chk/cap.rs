//! The text of CHK and LIT caps (`uri.py`). A minimal formatter for the encoder's results; the
//! crate's caps module parses and classifies caps in general.

use crate::base32;
use crate::hashutil::tagged_hash;

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
    /// The cap's text.
    pub fn to_uri(&self) -> String {
        format!(
            "URI:CHK:{}:{}:{}:{}:{}",
            base32::encode(&self.key),
            base32::encode(&self.uri_extension_hash),
            self.needed,
            self.total,
            self.size
        )
    }

    /// The text of the immutable directory whose body this file is (`URI:DIR2-CHK:...`).
    pub fn to_dir_uri(&self) -> String {
        format!("URI:DIR2-{}", &self.to_uri()["URI:".len()..])
    }

    /// The storage index: where servers keep the shares.
    pub fn storage_index(&self) -> [u8; 16] {
        storage_index_of_key(&self.key)
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

/// `storage_index_hash(key)`: a CHK file's storage index from its AES key.
pub(crate) fn storage_index_of_key(key: &[u8; 16]) -> [u8; 16] {
    tagged_hash(b"allmydata_immutable_key_to_storage_index_v1", key, 16)
        .try_into()
        .expect("16 bytes")
}

/// The LIT cap of a small file (55 bytes or less in Tahoe): `URI:LIT:<base32 of the data>`.
pub fn lit_cap(data: &[u8]) -> String {
    format!("URI:LIT:{}", base32::encode(data))
}

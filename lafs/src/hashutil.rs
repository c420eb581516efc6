//! Tahoe-LAFS's tagged hashes (`allmydata/util/hashutil.py`): SHA-256d over a netstring tag.

use sha2::{Digest, Sha256};

use crate::netstring::netstring;

/// SHA256(SHA256(data)), the "SHA-256d" Tahoe uses everywhere.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    let inner = Sha256::digest(data);
    Sha256::digest(inner).into()
}

/// A SHA-256d hasher fed incrementally (for long inputs such as a file's plaintext).
#[derive(Clone, Default)]
pub struct Sha256dHasher {
    inner: Sha256,
}

impl Sha256dHasher {
    /// A hasher whose input starts with `netstring(tag)`, as [`tagged_hash`] does.
    pub fn tagged(tag: &[u8]) -> Self {
        let mut inner = Sha256::new();
        inner.update(netstring(tag));
        Sha256dHasher { inner }
    }

    /// Feeds more input.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The 32-byte SHA-256d of everything fed.
    pub fn finish(self) -> [u8; 32] {
        Sha256::digest(self.inner.finalize()).into()
    }
}

/// `tagged_hash(tag, val, truncate_to)`: the first `n` bytes (at most 32) of
/// SHA256d(netstring(tag) + val).
pub fn tagged_hash(tag: &[u8], val: &[u8], n: usize) -> Vec<u8> {
    let mut h = Sha256dHasher::tagged(tag);
    h.update(val);
    h.finish()[..n.min(32)].to_vec()
}

/// `tagged_pair_hash(tag, a, b)`: SHA256d(netstring(tag) + netstring(a) + netstring(b)), cut to `n`.
pub fn tagged_pair_hash(tag: &[u8], a: &[u8], b: &[u8], n: usize) -> Vec<u8> {
    let mut h = Sha256dHasher::tagged(tag);
    h.update(&netstring(a));
    h.update(&netstring(b));
    h.finish()[..n.min(32)].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_of_empty_input() {
        // SHA256(SHA256(b"")), computed with Python's hashlib.
        assert_eq!(
            hex(&sha256d(b"")),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut h = Sha256dHasher::tagged(b"tag");
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish().to_vec(), tagged_hash(b"tag", b"hello world", 32));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

//! The URI extension block (`uri.py: pack_extension`): the encoding's parameters and root hashes,
//! stored at the end of every share; its hash is in the cap.

use crate::hashutil::tagged_hash;
use crate::netstring::write_netstring;

use super::hashtree::Hash;
use super::SegmentPlan;

/// What the URI extension block of a CHK file holds (Tahoe 1.20 writes these eleven keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriExtension {
    /// The cut of the file.
    pub plan: SegmentPlan,
    /// SHA-256d (tagged) of the whole crypttext.
    pub crypttext_hash: Hash,
    /// Root of the tree over the crypttext segments' hashes.
    pub crypttext_root_hash: Hash,
    /// Root of the tree over the shares' block-tree roots.
    pub share_root_hash: Hash,
}

impl UriExtension {
    /// The packed block: `key:netstring(value)` for each key in sorted order.
    pub fn pack(&self) -> Vec<u8> {
        let plan = &self.plan;
        let (k, n) = (plan.needed, plan.total);
        let padded_tail = plan.tail_size.next_multiple_of(u64::from(k));
        let fields: [(&str, Vec<u8>); 11] = [
            ("codec_name", b"crs".to_vec()),
            (
                "codec_params",
                format!("{}-{k}-{n}", plan.segment_size).into_bytes(),
            ),
            ("crypttext_hash", self.crypttext_hash.to_vec()),
            ("crypttext_root_hash", self.crypttext_root_hash.to_vec()),
            ("needed_shares", k.to_string().into_bytes()),
            ("num_segments", plan.num_segments.to_string().into_bytes()),
            ("segment_size", plan.segment_size.to_string().into_bytes()),
            ("share_root_hash", self.share_root_hash.to_vec()),
            ("size", plan.file_size.to_string().into_bytes()),
            (
                "tail_codec_params",
                format!("{padded_tail}-{k}-{n}").into_bytes(),
            ),
            ("total_shares", n.to_string().into_bytes()),
        ];
        let mut out = Vec::with_capacity(400);
        for (key, value) in fields {
            out.extend_from_slice(key.as_bytes());
            out.push(b':');
            write_netstring(&mut out, &value);
        }
        out
    }

    /// The length of the packed block, known before any hash is (all hashes are 32 bytes).
    pub fn packed_len(plan: &SegmentPlan) -> u64 {
        UriExtension {
            plan: *plan,
            crypttext_hash: [0; 32],
            crypttext_root_hash: [0; 32],
            share_root_hash: [0; 32],
        }
        .pack()
        .len() as u64
    }
}

/// The hash of a packed URI extension block, as the cap carries it.
pub fn uri_extension_hash(packed: &[u8]) -> Hash {
    tagged_hash(b"allmydata_uri_extension_v1", packed, 32)
        .try_into()
        .expect("32 bytes")
}
